// SPDX-License-Identifier: MIT
/* pw-sem: tests of connection setup: connect, accept, backlog, re-listen, addresses. */
#include "pw-sem.h"

/* ================= connection setup ================= */

void cli_connect_block(void)
{
	int fd = cli_socket(0);

	STEP("blocking connect");
	PW_CHECK_EQ(connect(fd, SA(&g_addr), sizeof(g_addr)), 0);
	note_conn(fd);
	PW_CHECK(!is_nonblock(fd), "connect made the socket non-blocking");
	pingpong_cli(fd);
	close(fd);
}

void cli_connect_nonblock(void)
{
	int fd = cli_socket(SOCK_NONBLOCK);
	struct pollfd p = { fd, POLLOUT, 0 };
	int err = -1;
	socklen_t len = sizeof(err);

	STEP("non-blocking connect");
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), EINPROGRESS);
	STEP("poll POLLOUT");
	PW_CHECK_EQ(poll(&p, 1, 5000), 1);
	PW_CHECK(p.revents == POLLOUT, "revents %#x, want POLLOUT only", p.revents);
	STEP("SO_ERROR");
	SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
	PW_CHECK_EQ(err, 0);
	note_conn(fd);
	PW_CHECK(is_nonblock(fd), "O_NONBLOCK lost by connect");
	pingpong_cli(fd);
	close(fd);
}

/* Linux: once a non-blocking connect completed, the next connect() reports
 * success (0), the one after EISCONN. */
void cli_connect_nb_recheck(void)
{
	int fd = cli_socket(SOCK_NONBLOCK);

	STEP("non-blocking connect");
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), EINPROGRESS);
	wait_fd(fd, POLLOUT, 5000);
	note_conn(fd);
	STEP("connect() again once POLLOUT: returns 0 on Linux");
	PW_CHECK_EQ(connect(fd, SA(&g_addr), sizeof(g_addr)), 0);
	STEP("connect() a third time");
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), EISCONN);
	pingpong_cli(fd);
	close(fd);
}

void cli_eisconn(void)
{
	int fd = cli_connect();
	struct sockaddr_in other = g_addr;

	STEP("connect again, same address");
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), EISCONN);
	STEP("connect again, other address");
	other.sin_port = htons((uint16_t)(ntohs(other.sin_port) + 1));
	CHECK_ERRNO(connect(fd, SA(&other), sizeof(other)), EISCONN);
	pingpong_cli(fd);
	close(fd);
}

/* Four connections: accept4(NONBLOCK|CLOEXEC), accept, accept on a
 * non-blocking listener (no inheritance), accept4(CLOEXEC). */
void srv_accept4_flags(void)
{
	int l = srv_listen();
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	struct in_addr want;
	char b;

	STEP("accept4(SOCK_NONBLOCK|SOCK_CLOEXEC)");
	wait_fd(l, POLLIN, 10000);
	int fd = accept4(l, SA(&a), &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	PW_CHECK(fd >= 0, "accept4: %s", strerror(errno));
	note_conn(fd);
	PW_CHECK_EQ(alen, sizeof(a));
	PW_CHECK_EQ(a.sin_family, AF_INET);
	PW_CHECK(a.sin_port != 0, "peer port 0");
	if (env_ip("PW_SEM_A", &want))
		PW_CHECK(a.sin_addr.s_addr == want.s_addr,
			 "accept4 address is not the client pod's");
	PW_CHECK(SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK, "accepted fd lacks O_NONBLOCK");
	PW_CHECK(SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC, "accepted fd lacks FD_CLOEXEC");
	STEP("recv on the empty non-blocking accepted socket");
	CHECK_ERRNO(recv(fd, &b, 1, 0), EAGAIN);
	send_str(fd, "go");
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);

	STEP("accept (no flags)");
	fd = srv_accept(l);
	PW_CHECK(!(SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK), "accept: O_NONBLOCK set");
	PW_CHECK(!(SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC), "accept: FD_CLOEXEC set");
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);

	STEP("accept on a non-blocking listener: the new fd is blocking");
	set_nonblock(l, true);
	fd = srv_accept(l);
	PW_CHECK(!(SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK),
		 "accepted fd inherited O_NONBLOCK from the listener");
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);

	STEP("accept4(SOCK_CLOEXEC)");
	wait_fd(l, POLLIN, 10000);
	fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	PW_CHECK(fd >= 0, "accept4: %s", strerror(errno));
	note_conn(fd);
	PW_CHECK(!(SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK), "accept4(CLOEXEC): O_NONBLOCK set");
	PW_CHECK(SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC, "accept4(CLOEXEC): FD_CLOEXEC clear");
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_accept4_flags(void)
{
	int fd = cli_connect();

	expect_str(fd, "go");
	pingpong_cli(fd);
	close(fd);
	for (int i = 0; i < 3; i++) {
		fd = cli_connect();
		pingpong_cli(fd);
		close(fd);
	}
}

/* accept() on a listener switched between non-blocking and blocking, with a
 * receive timeout and without: podwire's accept waits on its queue too. */
void srv_accept_blocking(void)
{
	int l = srv_listen(), zero = 0;
	struct timeval tv = { .tv_sec = 0, .tv_usec = 300000 };

	STEP("non-blocking listener, nobody connecting: EAGAIN");
	set_nonblock(l, true);
	CHECK_ERRNO(accept(l, NULL, NULL), EAGAIN);
	STEP("blocking again (FIONBIO), SO_RCVTIMEO 300 ms: EAGAIN after it");
	SYS(ioctl(l, FIONBIO, &zero));
	SYS(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	double t0 = now_ms();
	CHECK_ERRNO(accept(l, NULL, NULL), EAGAIN);
	double waited = now_ms() - t0;
	PW_CHECK(waited >= 250 && waited < 900, "accept timed out after %.0f ms", waited);
	STEP("no timeout: a blocking accept returns the client's connection");
	tv.tv_usec = 0;
	SYS(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	int fd = SYS(accept(l, NULL, NULL));
	note_conn(fd);
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_accept_blocking(void)
{
	sleep_ms(1200); /* the server's first accepts see nobody */
	int fd = cli_connect();

	pingpong_cli(fd);
	close(fd);
}

/* Five clients connect and write while the server has not accepted yet. */
#define BACKLOG_N 5

void srv_backlog(void)
{
	int fds[BACKLOG_N];
	int l = srv_socket();

	sync_create();
	srv_bind_listen(l, 8);
	STEP("no accept() until every client has connected and written");
	sync_wait();
	for (int i = 0; i < BACKLOG_N; i++) {
		uint32_t id;
		int avail = -1;

		fds[i] = srv_accept(l);
		STEP("the client's bytes are queued before accept");
		SYS(ioctl(fds[i], FIONREAD, &avail));
		PW_CHECK(avail == (int)sizeof(id),
			 "connection %d: FIONREAD %d right after accept, want 4", i, avail);
		read_exact(fds[i], &id, sizeof(id));
		id += 1000;
		write_all(fds[i], &id, sizeof(id));
	}
	for (int i = 0; i < BACKLOG_N; i++) {
		expect_eof(fds[i]);
		close(fds[i]);
	}
	close(l);
}

void cli_backlog(void)
{
	int fds[BACKLOG_N];

	/* The server accepts nothing before sync_signal(): a connect() that
	 * waited for accept() would hang here (the watchdog fails it). */
	for (uint32_t i = 0; i < BACKLOG_N; i++) {
		fds[i] = cli_connect();
		write_all(fds[i], &i, sizeof(i));
	}
	sync_signal();
	for (uint32_t i = 0; i < BACKLOG_N; i++) {
		uint32_t id;

		STEP("read the reply");
		read_exact(fds[i], &id, sizeof(id));
		PW_CHECK_EQ(id, i + 1000);
		close(fds[i]);
	}
}

/* The server closes first (its side goes to TIME_WAIT), then listens on the
 * same port again: SO_REUSEADDR makes that bind succeed. */
void srv_reuseaddr(void)
{
	int one = 1;
	int l = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));

	SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	PW_CHECK(get_int_opt(l, SOL_SOCKET, SO_REUSEADDR) != 0, "SO_REUSEADDR reads back 0");
	srv_bind_listen(l, 16);
	int fd = srv_accept(l);
	pingpong_srv(fd);
	STEP("active close by the server (listener first: no connection may queue on it)");
	close(l);
	close(fd);
	sleep_ms(100);

	STEP("listen again on the same port with SO_REUSEADDR");
	l = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));
	SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	SYS(bind(l, SA(&g_addr), sizeof(g_addr)));
	SYS(listen(l, 16));
	fd = srv_accept(l);
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_reuseaddr(void)
{
	int fd = cli_connect();

	pingpong_cli(fd);
	STEP("EOF from the server's close");
	expect_eof(fd);
	close(fd);
	STEP("connect to the new listener (retry while refused)");
	double t0 = now_ms();
	for (;;) {
		fd = cli_socket(0);
		if (connect(fd, SA(&g_addr), sizeof(g_addr)) == 0)
			break;
		PW_CHECK(errno == ECONNREFUSED, "connect: %s", strerror(errno));
		close(fd);
		PW_CHECK(now_ms() - t0 < 3000, "the server did not listen again within 3 s");
		sleep_ms(20);
	}
	note_conn(fd);
	pingpong_cli(fd);
	close(fd);
}

/* As iperf3 -s between tests: close the listener and bind the port again at
 * once, with SO_REUSEADDR. Nothing may keep the old listener alive past
 * close() (the router's copy of it did: EADDRINUSE). The old connection is
 * closed only after the new listener is up, so the client's next connect
 * never races the server's listen(). */
#define RELISTEN_N 100

static int relisten_open(void)
{
	int fd = srv_socket();

	SYS(bind(fd, SA(&g_addr), sizeof(g_addr)));
	SYS(listen(fd, 16));
	return fd;
}

void srv_relisten(void)
{
	int l = relisten_open();

	srv_ready();
	for (int i = 0; i < RELISTEN_N; i++) {
		int fd = srv_accept(l);

		pingpong_srv(fd);
		STEP("close the listener and listen again at once");
		close(l);
		if (i + 1 < RELISTEN_N)
			l = relisten_open();
		close(fd);
	}
}

void cli_relisten(void)
{
	for (int i = 0; i < RELISTEN_N; i++) {
		int fd = cli_connect();

		pingpong_cli(fd);
		STEP("EOF: the server listens again");
		expect_eof(fd);
		close(fd);
	}
}

void get_view(int fd, struct addr_view *v)
{
	socklen_t len = sizeof(v->local);

	memset(v, 0, sizeof(*v));
	SYS(getsockname(fd, SA(&v->local), &len));
	PW_CHECK_EQ(len, sizeof(v->local));
	len = sizeof(v->peer);
	SYS(getpeername(fd, SA(&v->peer), &len));
	PW_CHECK_EQ(len, sizeof(v->peer));
	PW_CHECK_EQ(v->local.sin_family, AF_INET);
	PW_CHECK_EQ(v->peer.sin_family, AF_INET);
	PW_CHECK(v->local.sin_port != 0 && v->peer.sin_port != 0, "a port is 0");
}

void srv_addrs(void)
{
	int l = srv_listen();
	struct sockaddr_in acc, ls;
	socklen_t alen = sizeof(acc), llen = sizeof(ls);
	struct addr_view me, cli;
	struct in_addr a;

	SYS(getsockname(l, SA(&ls), &llen));
	CHECK_ADDR_EQ(&ls, &g_addr);
	wait_fd(l, POLLIN, 10000);
	int fd = (int)SYS(accept(l, SA(&acc), &alen));
	note_conn(fd);
	PW_CHECK_EQ(alen, sizeof(acc));
	STEP("server's own view");
	get_view(fd, &me);
	CHECK_ADDR_EQ(&acc, &me.peer);
	CHECK_ADDR_EQ(&me.local, &g_addr);
	if (env_ip("PW_SEM_A", &a))
		PW_CHECK(me.peer.sin_addr.s_addr == a.s_addr,
			 "peer address is not the client pod's");
	STEP("compare with the client's view");
	read_exact(fd, &cli, sizeof(cli));
	CHECK_ADDR_EQ(&cli.local, &me.peer);
	CHECK_ADDR_EQ(&cli.peer, &me.local);
	write_all(fd, &me, sizeof(me));
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_addrs(void)
{
	int fd = cli_connect();
	struct addr_view me, srv;
	struct in_addr a;
	char small[4];
	socklen_t slen = sizeof(small);

	STEP("client's own view");
	get_view(fd, &me);
	CHECK_ADDR_EQ(&me.peer, &g_addr);
	if (env_ip("PW_SEM_A", &a))
		PW_CHECK(me.local.sin_addr.s_addr == a.s_addr, "local address is not the pod's");
	STEP("getsockname into a short buffer: truncated, full length reported");
	SYS(getsockname(fd, SA(small), &slen));
	PW_CHECK_EQ(slen, sizeof(struct sockaddr_in));
	PW_CHECK(!memcmp(small, &me.local, sizeof(small)), "truncated address differs");
	write_all(fd, &me, sizeof(me));
	STEP("compare with the server's view");
	read_exact(fd, &srv, sizeof(srv));
	CHECK_ADDR_EQ(&srv.local, &me.peer);
	CHECK_ADDR_EQ(&srv.peer, &me.local);
	close(fd);
}
