// SPDX-License-Identifier: MIT
/*
 * Connection after connection to one server: what a client with a
 * connection per request does (PRELOAD.md, "Reuse": under the preload the
 * channel of an ended connection carries the next). Each connection must be
 * a new one: its own bytes, its own end of stream, addresses that agree on
 * both sides, the flags its socket asked for, and a listener closed since
 * refuses.
 */
#include "pw-sem.h"

#define SEQ_CONNS 60
#define SEQ_WAVE  8

/* The request: the connection's number and the client's view of it. */
struct seq_req {
	uint32_t i, len;
	struct sockaddr_in cli_local, cli_peer;
};

static void seq_names(int fd, struct sockaddr_in *local, struct sockaddr_in *peer)
{
	socklen_t l1 = sizeof(*local), l2 = sizeof(*peer);

	SYS(getsockname(fd, SA(local), &l1));
	SYS(getpeername(fd, SA(peer), &l2));
}

/* Serve one connection: check the request against what this end sees,
 * answer @len pattern bytes, then close (@close_first) or wait for the
 * client's end of stream first. */
static void seq_serve(int fd, bool close_first)
{
	struct sockaddr_in local, peer;
	struct seq_req rq;
	struct gen g;

	read_exact(fd, &rq, sizeof(rq));
	seq_names(fd, &local, &peer);
	CHECK_ADDR_EQ(&local, &rq.cli_peer);
	CHECK_ADDR_EQ(&peer, &rq.cli_local);
	PW_CHECK(rq.len <= 256 * 1024, "request %u: length %u", rq.i, rq.len);
	gen_init(&g, rq.i);
	send_gen(fd, &g, rq.len);
	if (!close_first)
		expect_eof(fd);
	close(fd);
}

/* The longest answer asked for. */
static uint32_t seq_max_len = 200u * 1024u;

/* One connection as a client: request, answer, end of stream. */
static void seq_one(int fd, uint32_t i, bool close_first)
{
	struct seq_req rq = { .i = i, .len = (i * 7919u) % seq_max_len + 1 };
	struct gen g;

	seq_names(fd, &rq.cli_local, &rq.cli_peer);
	CHECK_ADDR_EQ(&rq.cli_peer, &g_addr);
	write_all(fd, &rq, sizeof(rq));
	gen_init(&g, i);
	recv_gen(fd, &g, rq.len, "answer");
	if (close_first) {
		expect_eof(fd);
	} else {
		shutdown(fd, SHUT_WR);
		expect_eof(fd);
	}
	close(fd);
}

/* Serve @n connections on @l, one after another. */
static void seq_serve_n(int l, int n, bool close_first)
{
	for (int i = 0; i < n; i++)
		seq_serve(srv_accept(l), close_first);
}

/* Connections @first to @first + @n - 1, one after another. */
static void seq_one_n(uint32_t first, uint32_t n, bool close_first)
{
	for (uint32_t i = first; i < first + n; i++) {
		STEP(close_first ? "one connection after another"
				 : "one connection after another, the client's end first");
		seq_one(cli_connect(), i, close_first);
	}
}

/* The server closes first, as HTTP with "Connection: close" does. */
void srv_seq_close(void)
{
	int l = srv_listen();

	seq_serve_n(l, SEQ_CONNS, true);
	close(l);
}

void cli_seq_close(void)
{
	seq_one_n(0, SEQ_CONNS, true);
}

/* The client ends first; the server closes after its end of stream. */
void srv_seq_client_first(void)
{
	int l = srv_listen();

	seq_serve_n(l, SEQ_CONNS, false);
	close(l);
}

void cli_seq_client_first(void)
{
	seq_one_n(0, SEQ_CONNS, false);
}

/*
 * An epoll server (non-blocking listener, edge-triggered, accept until
 * EAGAIN) and waves of non-blocking clients, each registered in epoll before
 * its connect, with options set on the fresh socket.
 */
void srv_seq_epoll(void)
{
	int l = srv_socket();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = l };
	int served = 0;

	set_nonblock(l, true);
	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev));
	srv_bind_listen(l, 64);
	STEP("serve waves of connections");
	while (served < SEQ_CONNS / SEQ_WAVE * SEQ_WAVE) {
		struct epoll_event out[16];
		int n = epoll_wait(ep, out, 16, 10000);
		PW_CHECK(n > 0, "epoll_wait: %d (%s) after %d served", n,
			 n < 0 ? strerror(errno) : "timeout", served);
		for (int j = 0; j < n; j++) {
			if (out[j].data.fd != l)
				continue;
			for (;;) {
				int fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
				if (fd < 0 && errno == EAGAIN)
					break;
				PW_CHECK(fd >= 0, "accept4: %s", strerror(errno));
				note_conn(fd);
				PW_CHECK(!is_nonblock(fd),
					 "accept4 without SOCK_NONBLOCK: O_NONBLOCK");
				PW_CHECK((SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC) != 0,
					 "accept4 with SOCK_CLOEXEC: no FD_CLOEXEC");
				seq_serve(fd, true);
				served++;
			}
		}
	}
	close(ep);
	close(l);
}

void cli_seq_epoll(void)
{
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));

	for (int w = 0; w < SEQ_CONNS / SEQ_WAVE; w++) {
		int fds[SEQ_WAVE];

		STEP("a wave of non-blocking connects, registered first");
		for (int k = 0; k < SEQ_WAVE; k++) {
			struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)k };
			fds[k] = cli_socket(SOCK_NONBLOCK);
			set_int_opt(fds[k], IPPROTO_TCP, TCP_NODELAY, 1);
			SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[k], &ev));
			int r = connect(fds[k], SA(&g_addr), sizeof(g_addr));
			PW_CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
		}
		for (int done = 0; done < SEQ_WAVE;) {
			struct epoll_event out[SEQ_WAVE];
			int n = epoll_wait(ep, out, SEQ_WAVE, 5000);
			PW_CHECK(n > 0, "epoll_wait for EPOLLOUT: %d", n);
			for (int j = 0; j < n; j++) {
				int fd = fds[out[j].data.u32];
				int err = -1;
				socklen_t len = sizeof(err);
				SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
				PW_CHECK_EQ(err, 0);
				SYS(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
				done++;
			}
		}
		for (int k = 0; k < SEQ_WAVE; k++) {
			note_conn(fds[k]);
			PW_CHECK(is_nonblock(fds[k]), "O_NONBLOCK lost by connect");
			PW_CHECK_EQ(get_int_opt(fds[k], IPPROTO_TCP, TCP_NODELAY), 1);
			set_nonblock(fds[k], false);
		}
		for (int k = 0; k < SEQ_WAVE; k++)
			seq_one(fds[k], (uint32_t)(w * SEQ_WAVE + k), true);
	}
	close(ep);
}

/*
 * A listener that closes between two connections: the next connect is
 * refused, as by the kernel, though the last connection ended in order (its
 * channel would have carried the next one). The server closes its listener
 * 300 ms after the first connection ended; the client connects again at
 * 800 ms.
 */
void srv_seq_listener_gone(void)
{
	int l = srv_listen();

	seq_serve(srv_accept(l), true);
	sleep_ms(300);
	STEP("close the listener");
	close(l);
	sleep_ms(1500);
}

void cli_seq_listener_gone(void)
{
	seq_one(cli_connect(), 0, true);
	sleep_ms(800);
	STEP("connect to the closed listener");
	int fd = cli_socket(0);
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), ECONNREFUSED);
	close(fd);
}

/*
 * The same with short connections (answers of at most 64 bytes), enough in
 * a row that the client keeps connections ready for the next (channels
 * parked, or across nodes a pool, FEDERATION.md): the listener closes with
 * those still held, and the next connect is refused all the same.
 */
#define SHORT_CONNS 16

void srv_seq_short_gone(void)
{
	int l = srv_listen();

	seq_serve_n(l, SHORT_CONNS, true);
	sleep_ms(300);
	STEP("close the listener");
	close(l);
	sleep_ms(1500);
}

void cli_seq_short_gone(void)
{
	seq_max_len = 64;
	seq_one_n(0, SHORT_CONNS, true);
	sleep_ms(800);
	STEP("connect to the closed listener");
	int fd = cli_socket(0);
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), ECONNREFUSED);
	close(fd);
}

/*
 * A server that restarts its listener on the same port (a rolling update)
 * after short connections enough that the client keeps the next ready: the
 * client's next connections reach the new listener, whatever it kept for
 * the old one.
 */
void srv_seq_relisten_short(void)
{
	int l = srv_listen();

	seq_serve_n(l, SHORT_CONNS, true);
	STEP("close the listener, and listen on the same port again");
	close(l);
	l = srv_listen();
	seq_serve_n(l, 2, true);
	close(l);
}

void cli_seq_relisten_short(void)
{
	seq_max_len = 64;
	seq_one_n(0, SHORT_CONNS, true);
	sleep_ms(500);
	STEP("the next connections, to the new listener");
	seq_one(cli_connect(), SHORT_CONNS, true);
	seq_one(cli_connect(), SHORT_CONNS + 1, true);
}

/*
 * Prefork workers that end after a few connections each (worker recycling:
 * Apache's MaxConnectionsPerChild, gunicorn's max_requests), and a parent
 * that holds the listener without accepting and forks the next one. A
 * connection the client makes while a worker ends must be served by
 * another, as the kernel's shared accept queue would.
 */
#define PREFORK_PER 5

void srv_seq_prefork(void)
{
	int l = srv_listen();
	int spawned = 0, alive = 0, status;

	STEP("fork workers, each serving a few connections");
	while (spawned * PREFORK_PER < SEQ_CONNS || alive) {
		while (alive < 2 && spawned * PREFORK_PER < SEQ_CONNS) {
			if (fork_as("server-worker") == 0) {
				seq_serve_n(l, PREFORK_PER, true);
				g_done = true;
				exit(0); /* its exit hooks run: a worker's end */
			}
			spawned++;
			alive++;
		}
		pid_t pid = waitpid(-1, &status, 0);
		PW_CHECK(pid > 0, "waitpid: %s", strerror(errno));
		PW_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d ended with %#x",
			 (int)pid, status);
		alive--;
	}
	close(l);
}

void cli_seq_prefork(void)
{
	seq_one_n(0, SEQ_CONNS, true); /* to workers that come and go */
}

/* The first worker serves @first connections and ends without accepting
 * the next; the second serves two. */
static void seq_handoff_srv(int first)
{
	int l = srv_listen();
	int status;

	for (int w = 0; w < 2; w++) {
		pid_t pid = fork_as("server-worker");
		if (pid == 0) {
			seq_serve_n(l, w == 0 ? first : 2, true);
			if (w == 0)
				sleep_ms(500); /* the client's next connect comes meanwhile */
			g_done = true;
			exit(0);
		}
		PW_CHECK_EQ(waitpid(pid, &status, 0), pid);
		PW_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d ended with %#x",
			 w, status);
	}
	close(l);
}

static void seq_handoff_cli(uint32_t first)
{
	seq_one_n(0, first, true); /* to the first worker */
	STEP("the next, while that worker ends; the next worker answers it");
	double t0 = now_ms();
	seq_one(cli_connect(), first, true);
	fprintf(stderr, "# answered after %.0f ms\n", now_ms() - t0);
	seq_one(cli_connect(), first + 1, true);
}

/*
 * A worker ends without accepting the connection the client made after its
 * last one (under the preload: a claim of the channel it parked), and the
 * next worker, forked only then, accepts it: nothing is lost in between.
 */
void srv_seq_handoff(void)
{
	seq_handoff_srv(1);
}

void cli_seq_handoff(void)
{
	seq_handoff_cli(1);
}

/*
 * The same after short connections enough that the client keeps the next
 * ready (a channel parked, or across nodes a pooled connection): the first
 * worker holds the claimed channel when it ends, and it goes back to the
 * queue; a pooled connection waits in the kernel's queue of the listener's
 * socket on the underlay, which the parent holds. The next worker accepts
 * it.
 */
void srv_seq_handoff_short(void)
{
	seq_handoff_srv(SHORT_CONNS);
}

void cli_seq_handoff_short(void)
{
	seq_max_len = 64;
	seq_handoff_cli(SHORT_CONNS);
}

/*
 * A client that forks between its connections (the child connects too, with
 * what it inherited), duplicates one (dup: the connection lives on through
 * the other number), and passes through exec-less children: every
 * connection is its own, and the server sees them all.
 */
#define FORKY_CONNS 12

void srv_seq_fork_client(void)
{
	int l = srv_listen();

	seq_serve_n(l, FORKY_CONNS, true);
	close(l);
}

void cli_seq_fork_client(void)
{
	uint32_t n = 0;

	STEP("connections before a fork");
	seq_one(cli_connect(), n++, true);
	seq_one(cli_connect(), n++, true);
	STEP("a child connects, with the parent's parked channels inherited");
	pid_t pid = fork_as("client-child");
	if (pid == 0) {
		seq_one(cli_connect(), 100, true);
		seq_one(cli_connect(), 101, true);
		g_done = true;
		_exit(0);
	}
	int status;
	PW_CHECK_EQ(waitpid(pid, &status, 0), pid);
	PW_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child ended with %#x", status);
	STEP("the parent goes on");
	seq_one(cli_connect(), n++, true);
	seq_one(cli_connect(), n++, true);
	STEP("a connection used through a duplicate, the original closed first");
	int fd = cli_connect();
	int d = (int)SYS(dup(fd));
	close(fd);
	seq_one(d, n++, true);
	STEP("and the next ones");
	for (; n < FORKY_CONNS - 2; n++)
		seq_one(cli_connect(), n, true);
}

/*
 * A socket() after short connections (across nodes, pooled ones: the socket
 * each replaced may be kept for the next socket(), sock.c's spare) is as
 * new as the kernel makes it: the lowest free number, the flags it asked
 * for, unbound, and no option of an earlier socket: not the flags set on
 * each (TCP_NODELAY, SO_KEEPALIVE: set back off), and not an option that
 * is not carried (TCP_MAXSEG, on every third) or one changed after a
 * fork (on the third from last, which sets none itself); and a child's
 * socket() (before the fifth from last) is not the parent's next: one
 * socket in both would carry the child's TCP_MAXSEG.
 */
#define FRESH_CONNS (SHORT_CONNS + 8)

void srv_seq_socket_after_short(void)
{
	int l = srv_listen();

	seq_serve_n(l, FRESH_CONNS, true);
	close(l);
}

static int opt_int(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	SYS(getsockopt(fd, level, name, &v, &len));
	return v;
}

/* A socket as new as @mss_default says, with @flags, at the lowest number. */
static int fresh_socket_checked(int flags, int mss_default, uint32_t i)
{
	int lowest = (int)SYS(open("/dev/null", O_RDONLY));
	close(lowest);
	int fd = cli_socket(flags);
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	PW_CHECK(fd == lowest, "connection %u: socket() gave %d, %d is free", i, fd, lowest);
	PW_CHECK(opt_int(fd, IPPROTO_TCP, TCP_NODELAY) == 0, "connection %u: TCP_NODELAY on", i);
	PW_CHECK(opt_int(fd, SOL_SOCKET, SO_KEEPALIVE) == 0, "connection %u: SO_KEEPALIVE on", i);
	PW_CHECK(opt_int(fd, IPPROTO_TCP, TCP_MAXSEG) == mss_default, "connection %u: MSS %d", i,
		 opt_int(fd, IPPROTO_TCP, TCP_MAXSEG));
	PW_CHECK(opt_int(fd, SOL_SOCKET, SO_ERROR) == 0, "connection %u: an error", i);
	PW_CHECK(((int)SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK) ==
			 (flags & SOCK_NONBLOCK ? O_NONBLOCK : 0),
		 "connection %u: O_NONBLOCK not as asked", i);
	PW_CHECK(((int)SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC) ==
			 (flags & SOCK_CLOEXEC ? FD_CLOEXEC : 0),
		 "connection %u: FD_CLOEXEC not as asked", i);
	SYS(getsockname(fd, SA(&a), &alen));
	PW_CHECK(a.sin_port == 0 && a.sin_addr.s_addr == htonl(INADDR_ANY),
		 "connection %u: bound to port %u", i, ntohs(a.sin_port));
	return fd;
}

/* A child sets TCP_MAXSEG @mss on @fd, or (-1) on a socket() of its own. */
static void child_sets_mss(int fd, int mss)
{
	pid_t pid = fork_as("client-child");

	if (pid == 0) {
		int s = fd >= 0 ? fd : cli_socket(0);
		SYS(setsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)));
		g_done = true;
		_exit(0);
	}
	int status;
	PW_CHECK_EQ(waitpid(pid, &status, 0), pid);
	PW_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child ended with %#x", status);
}

void cli_seq_socket_after_short(void)
{
	int one = 1, mss = 1000;

	seq_max_len = 64;
	int probe = cli_socket(0);
	int mss_default = opt_int(probe, IPPROTO_TCP, TCP_MAXSEG);
	close(probe);
	for (uint32_t i = 0; i < FRESH_CONNS; i++) {
		if (i == FRESH_CONNS - 5) {
			STEP("a child's socket() is not the parent's next");
			child_sets_mss(-1, mss);
		}
		STEP("a socket after connections, as new as the kernel makes it");
		int flags = i % 2 ? SOCK_CLOEXEC : 0;
		int fd = fresh_socket_checked(flags, mss_default, i);
		SYS(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)));
		SYS(setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one)));
		if (i % 3 == 2)
			SYS(setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof(mss)));
		if (i == FRESH_CONNS - 3)
			child_sets_mss(fd, mss); /* (the parent cannot see that) */
		SYS(connect(fd, SA(&g_addr), sizeof(g_addr)));
		note_conn(fd);
		seq_one(fd, i, true);
	}
	close(fresh_socket_checked(SOCK_CLOEXEC, mss_default, FRESH_CONNS));
}

/*
 * What a listener's connections inherit from it (the kernel copies its
 * options into each it accepts) over short connections; across nodes,
 * pooled ones come from the listener's socket on the underlay, which must
 * carry them: the options set before listen(), and those the listener
 * changes between two connections.
 */
#define INHERIT_CONNS  (SHORT_CONNS + 8)
#define INHERIT_CHANGE (SHORT_CONNS + 2) /* the listener changes after this one */

static void inherit_check(int fd, int i)
{
	bool late = i > INHERIT_CHANGE;

	PW_CHECK(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY) == !late,
		 "connection %d: TCP_NODELAY %d", i, get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY));
	PW_CHECK(get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE) == (late ? 99 : 77),
		 "connection %d: TCP_KEEPIDLE %d", i, get_int_opt(fd, IPPROTO_TCP, TCP_KEEPIDLE));
	PW_CHECK(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE) == 1, "connection %d: SO_KEEPALIVE off",
		 i);
	PW_CHECK(get_int_opt(fd, SOL_SOCKET, SO_RCVBUF) == 65536, "connection %d: SO_RCVBUF %d", i,
		 get_int_opt(fd, SOL_SOCKET, SO_RCVBUF));
}

void srv_seq_inherit_short(void)
{
	int l = srv_socket();

	set_int_opt(l, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int_opt(l, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int_opt(l, SOL_SOCKET, SO_RCVBUF, 32768);
	set_int_opt(l, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	srv_bind_listen(l, 16);
	for (int i = 0; i < INHERIT_CONNS; i++) {
		int fd = srv_accept(l);

		STEP("options inherited from the listener");
		inherit_check(fd, i);
		if (i == INHERIT_CHANGE) {
			/* (The client's next connection waits for this one's
			 * answer: none is made while they change.) */
			STEP("the listener's options change between two connections");
			set_int_opt(l, IPPROTO_TCP, TCP_NODELAY, 0);
			set_int_opt(l, IPPROTO_TCP, TCP_KEEPIDLE, 99);
		}
		seq_serve(fd, true);
	}
	close(l);
}

void cli_seq_inherit_short(void)
{
	seq_max_len = 64;
	seq_one_n(0, INHERIT_CONNS, true);
}
