// SPDX-License-Identifier: MIT
/* pw-sem: tests of fds, flags and options: dup, O_NONBLOCK, FIONREAD, socket
 * options and their inheritance, timeouts. */
#include "pw-sem.h"

/* ================= fds, flags, options ================= */

/* Messages go out on one fd and their echo is read on another, through every
 * way of duplicating; closing copies one by one; EOF only after the last. */
#define DUP_MSGS 12

static int g_dup_k;

static void dup_xchg(int wfd, int rfd)
{
	char m[8], e[8];

	snprintf(m, sizeof(m), "dup-%03d", g_dup_k++);
	STEP("exchange through duplicates");
	write_all(wfd, m, sizeof(m));
	read_exact(rfd, e, sizeof(e));
	PW_CHECK(!memcmp(m, e, sizeof(m)), "echo of %s through fd %d/%d is %.8s", m, wfd, rfd, e);
}

void srv_dup(void)
{
	int l = srv_listen();
	int s = srv_accept(l);
	int p[2], q[2];
	char z;

	SYS(pipe(p));
	SYS(pipe(q));
	int d1 = (int)SYS(dup(s));
	int d2 = (int)SYS(dup2(s, p[0])); /* replaces an open pipe end */
	int d3 = (int)SYS(dup3(s, 200, O_CLOEXEC));
	int d4 = (int)SYS(fcntl(s, F_DUPFD, 300));
	int d5 = (int)SYS(fcntl(s, F_DUPFD_CLOEXEC, 400));

	STEP("flags of the duplicates");
	PW_CHECK_EQ(d2, p[0]);
	PW_CHECK_EQ(d3, 200);
	PW_CHECK(d4 >= 300 && d5 >= 400, "F_DUPFD gave %d, %d", d4, d5);
	PW_CHECK(!(SYS(fcntl(d1, F_GETFD)) & FD_CLOEXEC), "dup: CLOEXEC");
	PW_CHECK(!(SYS(fcntl(d2, F_GETFD)) & FD_CLOEXEC), "dup2: CLOEXEC");
	PW_CHECK(SYS(fcntl(d3, F_GETFD)) & FD_CLOEXEC, "dup3(O_CLOEXEC): no CLOEXEC");
	PW_CHECK(!(SYS(fcntl(d4, F_GETFD)) & FD_CLOEXEC), "F_DUPFD: CLOEXEC");
	PW_CHECK(SYS(fcntl(d5, F_GETFD)) & FD_CLOEXEC, "F_DUPFD_CLOEXEC: no CLOEXEC");
	CHECK_ERRNO(dup3(s, s, 0), EINVAL);
	PW_CHECK_EQ(dup2(s, s), s);

	dup_xchg(s, d1);
	dup_xchg(d1, d2);
	dup_xchg(d2, d3);
	dup_xchg(d3, d4);
	dup_xchg(d4, d5);
	dup_xchg(d5, s);
	STEP("close the original");
	SYS(close(s));
	dup_xchg(d1, d5);
	SYS(close(d1));
	dup_xchg(d2, d3);
	STEP("dup2 a pipe over a copy: that fd is a pipe now");
	SYS(dup2(q[0], d2));
	PW_CHECK_EQ(write(q[1], "z", 1), 1);
	PW_CHECK_EQ(read(d2, &z, 1), 1);
	PW_CHECK_EQ(z, 'z');
	dup_xchg(d3, d4);
	SYS(close(d3));
	dup_xchg(d4, d5);
	SYS(close(d4));
	dup_xchg(d5, d5);
	PW_CHECK_EQ(g_dup_k, DUP_MSGS - 1);
	dup_xchg(d5, d5);
	STEP("close the last copy");
	SYS(close(d5));
	close(q[0]);
	close(q[1]);
	close(p[1]);
	close(d2);
	close(l);
}

void cli_dup(void)
{
	int fd = cli_connect();
	int n = 0;
	char m[8];

	STEP("echo until EOF");
	while (read_exact2(fd, m, sizeof(m), true)) {
		write_all(fd, m, sizeof(m));
		n++;
	}
	PW_CHECK(n == DUP_MSGS, "EOF after %d messages, want %d", n, DUP_MSGS);
	close(fd);
}

void cli_fcntl_nonblock(void)
{
	int fd = cli_connect();
	int fl = (int)SYS(fcntl(fd, F_GETFL)), on = 1, off = 0;
	char b[10];
	double t0;

	PW_CHECK(!(fl & O_NONBLOCK), "connected socket is non-blocking");
	STEP("F_SETFL O_NONBLOCK");
	SYS(fcntl(fd, F_SETFL, fl | O_NONBLOCK));
	PW_CHECK(is_nonblock(fd), "F_GETFL does not show O_NONBLOCK");
	CHECK_ERRNO(recv(fd, b, sizeof(b), 0), EAGAIN);
	CHECK_ERRNO(read(fd, b, sizeof(b)), EAGAIN);
	STEP("F_SETFL blocking again");
	SYS(fcntl(fd, F_SETFL, fl));
	cmd(fd, OP_SEND, 10, 150, 0);
	t0 = now_ms();
	PW_CHECK_EQ(recv(fd, b, 10, MSG_WAITALL), 10);
	PW_CHECK(now_ms() - t0 > 100, "recv did not block (%.0f ms)", now_ms() - t0);
	gen_check(&g_srvpat, b, 10, "data");

	STEP("FIONBIO 1");
	SYS(ioctl(fd, FIONBIO, &on));
	PW_CHECK(is_nonblock(fd), "FIONBIO not visible in F_GETFL");
	CHECK_ERRNO(recv(fd, b, sizeof(b), 0), EAGAIN);
	STEP("FIONBIO 0");
	SYS(ioctl(fd, FIONBIO, &off));
	PW_CHECK(!is_nonblock(fd), "FIONBIO 0 not visible in F_GETFL");
	cmd(fd, OP_SEND, 10, 150, 0);
	t0 = now_ms();
	PW_CHECK_EQ(recv(fd, b, 10, MSG_WAITALL), 10);
	PW_CHECK(now_ms() - t0 > 100, "recv did not block (%.0f ms)", now_ms() - t0);
	gen_check(&g_srvpat, b, 10, "data");

	STEP("O_NONBLOCK set through a dup applies to the original");
	int d = (int)SYS(dup(fd));
	SYS(fcntl(d, F_SETFL, fl | O_NONBLOCK));
	PW_CHECK(is_nonblock(fd), "flag set on the dup not seen on the original");
	CHECK_ERRNO(recv(fd, b, sizeof(b), 0), EAGAIN);
	SYS(fcntl(d, F_SETFL, fl));
	close(d);
	cmd(fd, OP_SEND, 10, 150, 0);
	t0 = now_ms();
	PW_CHECK_EQ(recv(fd, b, 10, MSG_WAITALL), 10);
	PW_CHECK(now_ms() - t0 > 100, "recv did not block (%.0f ms)", now_ms() - t0);
	gen_check(&g_srvpat, b, 10, "data");
	close(fd);
}

static void on_usr1_nop(int sig)
{
}

void *kicker_main(void *arg)
{
	struct kicker *k = arg;

	sleep_ms(k->after_ms);
	if (!atomic_load(&k->cancel))
		pthread_kill(k->target, k->sig);
	return NULL;
}

/* O_NONBLOCK is a property of the open file description that fork shares:
 * the child sets it, the parent's recv must not block. */
void cli_fork_shared_flags(void)
{
	int fd = cli_connect();
	int st;
	char b[10];

	pid_t pid = fork_as(NULL);
	if (pid == 0) {
		_exit(fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK) < 0 ? 2 : 0);
	}
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	PW_CHECK(is_nonblock(fd), "the child's O_NONBLOCK is not in F_GETFL");
	STEP("recv after the child set O_NONBLOCK (must not block)");
	set_handler(SIGUSR1, on_usr1_nop, 0);
	struct kicker k = { pthread_self(), 1500, SIGUSR1, false };
	pthread_t th;
	pthread_create(&th, NULL, kicker_main, &k);
	errno = 0;
	ssize_t r = recv(fd, b, sizeof(b), 0);
	int e = errno;
	atomic_store(&k.cancel, true);
	pthread_join(th, NULL);
	PW_CHECK(r == -1 && e == EAGAIN, "recv returned %zd %s, want EAGAIN%s", r,
		 strerrorname_np(e), e == EINTR ? " (it blocked until a signal)" : "");
	set_nonblock(fd, false);
	cmd(fd, OP_SEND, 10, 0, 0);
	recv_pat(fd, 10);
	close(fd);
}

void cli_fionread(void)
{
	int fd = cli_connect();
	int n = -1;
	static char buf[12345];

	cmd(fd, OP_SEND, 12345, 0, 0);
	wait_fd(fd, POLLIN, 5000);
	STEP("FIONREAD after the peer wrote 12345 bytes");
	for (double t0 = now_ms(); now_ms() - t0 < 2000; sleep_ms(20)) {
		SYS(ioctl(fd, FIONREAD, &n));
		if (n >= 12345)
			break;
	}
	sleep_ms(50);
	SYS(ioctl(fd, FIONREAD, &n));
	PW_CHECK_EQ(n, 12345);
	n = -1;
	SYS(ioctl(fd, SIOCINQ, &n));
	PW_CHECK_EQ(n, 12345);
	read_exact(fd, buf, 345);
	SYS(ioctl(fd, FIONREAD, &n));
	PW_CHECK_EQ(n, 12000);
	read_exact(fd, buf + 345, 12000);
	gen_check(&g_srvpat, buf, 12345, "data");
	SYS(ioctl(fd, FIONREAD, &n));
	PW_CHECK_EQ(n, 0);
	close(fd);
}

static void check_sockopts(int fd)
{
	STEP("getsockopt SO_ERROR/SO_TYPE/SO_DOMAIN/SO_PROTOCOL/SO_ACCEPTCONN");
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_ERROR), 0);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_DOMAIN), AF_INET);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_PROTOCOL), IPPROTO_TCP);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN), 0);
	STEP("TCP_NODELAY");
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 0);
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	STEP("SO_KEEPALIVE");
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	STEP("TCP_CORK and flags: any nonzero int reads back 1; too short is EINVAL");
	set_int_opt(fd, IPPROTO_TCP, TCP_CORK, 7);
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_CORK), 1);
	set_int_opt(fd, IPPROTO_TCP, TCP_CORK, 0);
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_CORK), 0);
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, -3);
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	{
		long long wide = 0; /* longer than an int: the kernel reads the first int */
		short narrow = 1;

		PW_CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &wide, sizeof(wide)), 0);
		PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
		errno = 0;
		PW_CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &narrow, sizeof(narrow)), -1);
		PW_CHECK_EQ(errno, EINVAL);
		PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	}
	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	STEP("SO_RCVBUF/SO_SNDBUF (the kernel doubles the value)");
	set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, 32768);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_RCVBUF), 65536);
	set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, 32768);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_SNDBUF), 65536);
}

void srv_sockopts(void)
{
	int l = srv_listen();

	PW_CHECK_EQ(get_int_opt(l, SOL_SOCKET, SO_ACCEPTCONN), 1);
	int fd = srv_accept(l);
	check_sockopts(fd);
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_sockopts(void)
{
	int fd = cli_connect();

	check_sockopts(fd);
	pingpong_cli(fd);
	close(fd);
}

/* Options set on the socket before connect(), or on the listener before
 * accept(), are the connection's options afterwards. */
void srv_sockopt_inherit(void)
{
	int l = srv_socket();

	set_int_opt(l, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int_opt(l, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int_opt(l, SOL_SOCKET, SO_RCVBUF, 32768);
	srv_bind_listen(l, 16);
	int fd = srv_accept(l);
	STEP("options inherited from the listener");
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_RCVBUF), 65536);
	pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_sockopt_inherit(void)
{
	int fd = cli_socket(0);

	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, 32768);
	SYS(connect(fd, SA(&g_addr), sizeof(g_addr)));
	note_conn(fd);
	STEP("options set before connect()");
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_SNDBUF), 65536);
	pingpong_cli(fd);
	close(fd);
}

/* Options read back what was set. */
void cli_sockopt_roundtrip(void)
{
	static const struct {
		int level, name, val;
		const char *what;
	} opts[] = {
		{ IPPROTO_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE" },
		{ IPPROTO_TCP, TCP_KEEPINTVL, 11, "TCP_KEEPINTVL" },
		{ IPPROTO_TCP, TCP_KEEPCNT, 5, "TCP_KEEPCNT" },
		{ IPPROTO_TCP, TCP_USER_TIMEOUT, 1234, "TCP_USER_TIMEOUT" },
		{ IPPROTO_IP, IP_TOS, 0x10, "IP_TOS" },
		{ SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY" },
		{ SOL_SOCKET, SO_RCVLOWAT, 1, "SO_RCVLOWAT" },
	};
	int fd = cli_connect();
	int bad = 0;

	STEP("set then get");
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		set_int_opt(fd, opts[i].level, opts[i].name, opts[i].val);
		int v = get_int_opt(fd, opts[i].level, opts[i].name);
		if (v != opts[i].val) {
			fprintf(stderr, "%s: set %d, got back %d\n", opts[i].what, opts[i].val, v);
			bad++;
		}
	}
	struct linger lg = { 1, 7 }, lg2 = { 0, 0 };
	socklen_t len = sizeof(lg2);
	SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	SYS(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg2, &len));
	if (len != sizeof(lg2) || lg2.l_onoff != 1 || lg2.l_linger != 7) {
		fprintf(stderr, "SO_LINGER: set {1, 7}, got back {%d, %d} length %u\n", lg2.l_onoff,
			lg2.l_linger, len);
		bad++;
	}
	PW_CHECK(bad == 0, "%d options did not read back what was set", bad);
	lg.l_onoff = 0;
	SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	pingpong_cli(fd);
	close(fd);
}

void cli_sockopt_unknown(void)
{
	int fd = cli_connect();
	int v = 1;
	socklen_t len = sizeof(v);

	STEP("unknown options");
	CHECK_ERRNO(getsockopt(fd, SOL_SOCKET, 0x7fff, &v, &len), ENOPROTOOPT);
	CHECK_ERRNO(setsockopt(fd, SOL_SOCKET, 0x7fff, &v, sizeof(v)), ENOPROTOOPT);
	len = sizeof(v);
	CHECK_ERRNO(getsockopt(fd, IPPROTO_TCP, 0x7fff, &v, &len), ENOPROTOOPT);
	STEP("short option length");
	CHECK_ERRNO(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, 1), EINVAL);
	pingpong_cli(fd);
	close(fd);
}

/* SO_RCVTIMEO: set before connect (client) or on the listener (server). */
static void set_timeo(int fd, int name, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	SYS(setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)));
}

static void check_timeo(int fd, int name, int ms)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	SYS(getsockopt(fd, SOL_SOCKET, name, &tv, &len));
	PW_CHECK_EQ(len, sizeof(tv));
	long got = tv.tv_sec * 1000 + tv.tv_usec / 1000;
	PW_CHECK(got >= ms - 10 && got <= ms + 10, "timeout reads back %ld ms, want %d", got, ms);
}

static void recv_times_out(int fd, int ms)
{
	char b;
	double t0 = now_ms();

	STEP("blocking recv with SO_RCVTIMEO and no data");
	CHECK_ERRNO(recv(fd, &b, 1, 0), EAGAIN);
	double el = now_ms() - t0;
	PW_CHECK(el >= 0.8 * ms && el <= 5.0 * ms, "timed out after %.0f ms, want ~%d", el, ms);
}

void srv_rcvtimeo(void)
{
	int l = srv_socket();

	set_timeo(l, SO_RCVTIMEO, 300);
	srv_bind_listen(l, 16);
	int fd = srv_accept(l);
	STEP("timeout inherited from the listener");
	check_timeo(fd, SO_RCVTIMEO, 300);
	recv_times_out(fd, 300);
	set_timeo(fd, SO_RCVTIMEO, 0);
	expect_str(fd, "go");
	sleep_ms(100);
	send_str(fd, "data");
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_rcvtimeo(void)
{
	int fd = cli_socket(0);

	set_timeo(fd, SO_RCVTIMEO, 300);
	SYS(connect(fd, SA(&g_addr), sizeof(g_addr)));
	note_conn(fd);
	check_timeo(fd, SO_RCVTIMEO, 300);
	recv_times_out(fd, 300);
	STEP("change the timeout on the connected socket");
	set_timeo(fd, SO_RCVTIMEO, 200);
	check_timeo(fd, SO_RCVTIMEO, 200);
	recv_times_out(fd, 200);
	set_timeo(fd, SO_RCVTIMEO, 0);
	send_str(fd, "go");
	STEP("no timeout: recv waits for the data");
	expect_str(fd, "data");
	close(fd);
}

/* SO_SNDTIMEO: a blocking send to a peer that does not read gives up. */
void cli_sndtimeo(void)
{
	int fd = cli_connect();
	size_t big = 64u << 20;
	char *buf = calloc(1, big);
	uint64_t total = 0, got;
	ssize_t r;

	set_timeo(fd, SO_SNDTIMEO, 200);
	cmd(fd, OP_DRAIN, 0, 0, 0);
	STEP("first blocking send: a short count");
	double t0 = now_ms();
	r = send(fd, buf, big, MSG_NOSIGNAL);
	PW_CHECK(r > 0 && (size_t)r < big, "send returned %zd (%s)", r,
		 r < 0 ? strerror(errno) : "");
	PW_CHECK(now_ms() - t0 < 1000, "took %.0f ms", now_ms() - t0);
	total += (uint64_t)r;
	STEP("blocking sends: EAGAIN after the timeout");
	for (int i = 0;; i++) {
		PW_CHECK(i < 3, "no EAGAIN after %d sends", i);
		t0 = now_ms();
		r = send(fd, buf, 1 << 20, MSG_NOSIGNAL);
		double el = now_ms() - t0;
		PW_CHECK(el <= 1000, "blocking send took %.0f ms", el);
		if (r > 0) { /* acks made some room meanwhile */
			total += (uint64_t)r;
			continue;
		}
		PW_CHECK(r < 0 && errno == EAGAIN, "send: %zd %s", r, strerror(errno));
		PW_CHECK(el >= 160, "EAGAIN after %.0f ms, want ~200", el);
		break;
	}
	sync_signal();
	SYS(shutdown(fd, SHUT_WR));
	STEP("server's count");
	read_exact(fd, &got, sizeof(got));
	PW_CHECK(got == total, "server read %llu, client sent %llu", (unsigned long long)got,
		 (unsigned long long)total);
	free(buf);
	close(fd);
}
