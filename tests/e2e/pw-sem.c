// SPDX-License-Identifier: MIT
/*
 * pw-sem: end-to-end socket-semantics tests, pod to pod (driven by
 * tests/e2e/test-semantics.sh). Each test is a pair of functions, one for
 * the server pod and one for the client pod. The same program must pass with
 * and without libpodwire.so preloaded: what it checks is the kernel's TCP
 * behaviour, which an accelerated socket must reproduce.
 *
 *   pw-sem list                       one test a line: name, the number of
 *                                     connections podwired must see claimed
 *                                     under the preload, description
 *   pw-sem server TEST IP PORT        listen on IP:PORT, print READY, serve
 *   pw-sem client TEST IP PORT        connect to IP:PORT and run the test
 *
 * Environment:
 *   PW_SEM_EXPECT=accel|kernel  fail when a connection is not carried as
 *                               expected. An accelerated fd is podwire's
 *                               AF_UNIX channel socket under the application's
 *                               fd number: the raw getsockopt(SO_DOMAIN)
 *                               system call, which the preload does not see,
 *                               tells which it is.
 *   PW_SEM_A, PW_SEM_B          the client's and the server's pod addresses
 *   PW_SEM_DURATION_MS          how long stream_long runs (1500)
 *   PW_SEM_SYNC_DIR             where the client-to-server side channel (a
 *                               FIFO) lives (/tmp); the driver's own dir
 *
 * Exit status: 0 pass, 1 fail (function:line and the step are printed), 77 skip.
 * A watchdog (alarm) turns a hang into a failure that names the step.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#include "../pw_test.h"

/* Built with musl-gcc too (tests/e2e/test-musl.sh): what musl lacks. */
#ifdef __GLIBC__
#include <linux/sockios.h>
#define PW_SEM_HAVE_CLOSE_RANGE 1
#else
#define SIOCINQ			FIONREAD
#define strerrorname_np(e)	strerror(e)
#define PW_SEM_HAVE_CLOSE_RANGE 0
static int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *ts,
			const sigset_t *mask)
{
	errno = ENOSYS; /* not in this libc: the test says so and goes on */
	return -1;
}
#endif

/* ---- state, failure reporting, watchdog ---- */

static const char *g_role = "?";
static const char *g_test = "?";
/* Read by the watchdog's signal handler: a lock-free atomic is signal-safe. */
static _Atomic(const char *) g_step = "start";
static struct sockaddr_in g_addr; /* the server's IP:PORT */
static const char *g_self;	  /* argv[0], for exec */
static bool g_done;

#define STEP(s) (g_step = (s))
#define SA(p)	((struct sockaddr *)(p))

/* A system call that must succeed; its value. */
#define SYS(expr)                                                                                  \
	({                                                                                         \
		long pw_sys_r_ = (long)(expr);                                                     \
		if (pw_sys_r_ < 0)                                                                 \
			PW_FAIL("%s: %s", #expr, strerror(errno));                                 \
		pw_sys_r_;                                                                         \
	})

/* A call that must fail with @err. */
#define CHECK_ERRNO(expr, err)                                                                     \
	do {                                                                                       \
		errno = 0;                                                                         \
		long pw_ce_r_ = (long)(expr);                                                      \
		int pw_ce_e_ = errno;                                                              \
		if (pw_ce_r_ != -1 || pw_ce_e_ != (err))                                           \
			PW_FAIL("%s: want -1 %s, got %ld %s", #expr, strerrorname_np(err),         \
				pw_ce_r_,                                                          \
				pw_ce_r_ < 0 ? strerrorname_np(pw_ce_e_) : "(no error)");          \
	} while (0)

static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0) {
	}
}

static void report_at_exit(void)
{
	if (!g_done)
		fprintf(stderr, "[%s %s] stopped at step: %s\n", g_role, g_test, g_step);
}

static void on_alarm(int sig)
{
	say("TIMEOUT: [");
	say(g_role);
	say(" ");
	say(g_test);
	say("] hung at step: ");
	say((const char *)g_step);
	say("\n");
	_exit(1);
}

static void on_sigpipe(int sig)
{
	say("FAIL: unexpected SIGPIPE at step: ");
	say((const char *)g_step);
	say("\n");
	_exit(1);
}

static void set_handler(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	SYS(sigaction(sig, &sa, NULL));
}

/* A forked helper: dies with its parent, never runs the parent's exit hooks. */
static void child_setup(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* fork(); in the child, set up as a helper named @role (for messages). */
static pid_t fork_as(const char *role)
{
	pid_t pid = (pid_t)SYS(fork());

	if (pid == 0) {
		child_setup();
		if (role)
			g_role = role;
	}
	return pid;
}

/* ---- time ---- */

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- addresses ---- */

static const char *fmt_addr(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN] = "?";

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u (family %d)", ip, ntohs(a->sin_port), a->sin_family);
	return buf;
}

static bool addr_eq(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
	       a->sin_addr.s_addr == b->sin_addr.s_addr;
}

#define CHECK_ADDR_EQ(a, b)                                                                        \
	do {                                                                                       \
		char pw_b1_[64], pw_b2_[64];                                                       \
		PW_CHECK(addr_eq(a, b), "%s != %s", fmt_addr(a, pw_b1_, sizeof(pw_b1_)),           \
			 fmt_addr(b, pw_b2_, sizeof(pw_b2_)));                                     \
	} while (0)

/* The pod address in environment variable @name; false if unset. */
static bool env_ip(const char *name, struct in_addr *ret)
{
	const char *v = getenv(name);

	return v && *v && inet_pton(AF_INET, v, ret) == 1;
}

/* ---- I/O helpers (they cope with non-blocking sockets) ---- */

static void wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { fd, ev, 0 };
	int r = poll(&p, 1, ms);

	if (r < 0 && errno == EINTR)
		return;
	PW_CHECK(r == 1, "poll(%s) on fd %d: nothing in %d ms (r %d)",
		 ev == POLLIN	 ? "POLLIN"
		 : ev == POLLOUT ? "POLLOUT"
		 : ev == POLLPRI ? "POLLPRI"
				 : "?",
		 fd, ms, r);
}

static bool is_nonblock(int fd)
{
	return (SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK) != 0;
}

static void set_nonblock(int fd, bool on)
{
	int fl = (int)SYS(fcntl(fd, F_GETFL));

	SYS(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

static void write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n) {
		ssize_t r = write(fd, p, n);

		if (r < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLOUT, 5000);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		PW_CHECK(r > 0, "write of %zu bytes: %s", n,
			 r < 0 ? strerror(errno) : "returned 0");
		p += r;
		n -= (size_t)r;
	}
}

/* Read exactly @n bytes; false if EOF comes before the first byte and @eof_ok. */
static bool read_exact2(int fd, void *buf, size_t n, bool eof_ok)
{
	char *p = buf;
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);

		if (r < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLIN, 5000);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0 && got == 0 && eof_ok)
			return false;
		PW_CHECK(r > 0, "read: %s after %zu of %zu bytes",
			 r < 0 ? strerror(errno) : "unexpected EOF", got, n);
		got += (size_t)r;
	}
	return true;
}

static void read_exact(int fd, void *buf, size_t n)
{
	read_exact2(fd, buf, n, false);
}

static void expect_eof(int fd)
{
	char c;

	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLIN, 5000);
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		PW_CHECK(r == 0, "want EOF, got %zd (%s)", r, r < 0 ? strerror(errno) : "data");
		return;
	}
}

static void send_str(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

static void expect_str(int fd, const char *s)
{
	char buf[256];
	size_t n = strlen(s);

	PW_CHECK(n < sizeof(buf), "string too long");
	read_exact(fd, buf, n);
	PW_CHECK(!memcmp(buf, s, n), "want \"%s\", got \"%.*s\"", s, (int)n, buf);
}

/* ---- a reproducible byte stream, to verify content ---- */

struct gen {
	uint64_t s, w;
	unsigned left;
	uint64_t pos;
};

static void gen_init(struct gen *g, uint64_t seed)
{
	g->s = seed * 0x9E3779B97F4A7C15ull + 0x1234567;
	g->left = 0;
	g->pos = 0;
}

static inline uint8_t gen_byte(struct gen *g)
{
	if (!g->left) {
		g->s ^= g->s << 13;
		g->s ^= g->s >> 7;
		g->s ^= g->s << 17;
		g->w = g->s;
		g->left = 8;
	}
	uint8_t b = (uint8_t)g->w;
	g->w >>= 8;
	g->left--;
	g->pos++;
	return b;
}

static void gen_fill(struct gen *g, void *buf, size_t n)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < n; i++)
		p[i] = gen_byte(g);
}

static void gen_check(struct gen *g, const void *buf, size_t n, const char *what)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < n; i++) {
		uint64_t at = g->pos;
		uint8_t b = gen_byte(g);

		if (p[i] != b)
			PW_FAIL("%s: stream byte %llu is 0x%02x, want 0x%02x", what,
				(unsigned long long)at, p[i], b);
	}
}

static void send_gen(int fd, struct gen *g, size_t n)
{
	static char buf[65536];

	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		gen_fill(g, buf, k);
		write_all(fd, buf, k);
		n -= k;
	}
}

static void recv_gen(int fd, struct gen *g, size_t n, const char *what)
{
	static char buf[65536];

	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		read_exact(fd, buf, k);
		gen_check(g, buf, k, what);
		n -= k;
	}
}

/* ---- connections ---- */

static int raw_domain(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	if (syscall(SYS_getsockopt, fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0)
		return -1;
	return v;
}

/* Report (and with PW_SEM_EXPECT check) what carries connection @fd. */
static void note_conn(int fd)
{
	int d = raw_domain(fd);
	const char *exp = getenv("PW_SEM_EXPECT");

	fprintf(stderr, "# [%s %s] fd %d carried by %s\n", g_role, g_test, fd,
		d == AF_UNIX			? "podwire"
		: d == AF_INET || d == AF_INET6 ? "kernel TCP"
						: "?");
	if (exp && !strcmp(exp, "accel"))
		PW_CHECK(d == AF_UNIX, "fd %d: connection not accelerated (PW_SEM_EXPECT=accel)",
			 fd);
	if (exp && !strcmp(exp, "kernel"))
		PW_CHECK(d == AF_INET || d == AF_INET6,
			 "fd %d: connection accelerated (PW_SEM_EXPECT=kernel)", fd);
}

static void srv_ready(void)
{
	static bool done;

	if (!done) {
		printf("READY\n");
		fflush(stdout);
		done = true;
	}
}

/*
 * A side channel for "I am ready" that does not go through the connection
 * under test (whose direction may be full): a FIFO in PW_SEM_SYNC_DIR (the
 * driver's private directory), named after the port. The server creates it
 * before listening; the client writes one byte.
 */
static char g_sync_path[256];

static void sync_init(void)
{
	const char *dir = getenv("PW_SEM_SYNC_DIR");

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(g_sync_path, sizeof(g_sync_path), "%s/pw-sem-sync.%u", dir,
		 ntohs(g_addr.sin_port));
}

static void sync_create(void)
{
	unlink(g_sync_path);
	SYS(mkfifo(g_sync_path, 0600));
}

/* Server: block until the client says so. */
static void sync_wait(void)
{
	char c;

	STEP("wait for the client's signal on the side channel");
	int fd = (int)SYS(open(g_sync_path, O_RDONLY | O_CLOEXEC));
	PW_CHECK_EQ(read(fd, &c, 1), 1);
	close(fd);
	unlink(g_sync_path);
}

/* Client: release the server. */
static void sync_signal(void)
{
	STEP("signal the server on the side channel");
	int fd = (int)SYS(open(g_sync_path, O_WRONLY | O_CLOEXEC));
	PW_CHECK_EQ(write(fd, "s", 1), 1);
	close(fd);
}

static int srv_socket(void)
{
	int one = 1;
	int fd = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));

	SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	return fd;
}

static void srv_bind_listen(int fd, int backlog)
{
	STEP("bind and listen");
	SYS(bind(fd, SA(&g_addr), sizeof(g_addr)));
	SYS(listen(fd, backlog));
	srv_ready();
}

static int srv_listen(void)
{
	int fd = srv_socket();

	srv_bind_listen(fd, 16);
	return fd;
}

static int srv_accept(int l)
{
	STEP("accept");
	for (;;) {
		wait_fd(l, POLLIN, 10000);
		int fd = accept(l, NULL, NULL);
		if (fd < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		PW_CHECK(fd >= 0, "accept: %s", strerror(errno));
		note_conn(fd);
		return fd;
	}
}

static int cli_socket(int flags)
{
	return (int)SYS(socket(AF_INET, SOCK_STREAM | flags, 0));
}

static int cli_connect(void)
{
	int fd = cli_socket(0);

	STEP("connect");
	SYS(connect(fd, SA(&g_addr), sizeof(g_addr)));
	note_conn(fd);
	return fd;
}

static void pingpong_cli(int fd)
{
	STEP("ping-pong");
	send_str(fd, "ping");
	expect_str(fd, "pong");
}

static void pingpong_srv(int fd)
{
	STEP("ping-pong");
	expect_str(fd, "ping");
	send_str(fd, "pong");
}

static int get_int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	SYS(getsockopt(fd, level, name, &v, &len));
	PW_CHECK_EQ(len, sizeof(int));
	return v;
}

static void set_int_opt(int fd, int level, int name, int v)
{
	SYS(setsockopt(fd, level, name, &v, sizeof(v)));
}

/* ---- the command server: the client drives, the server obeys ---- */

enum { OP_NOP = 1, OP_ACK, OP_SEND, OP_PIECES, OP_SHUTWR, OP_CLOSE, OP_DRAIN };

struct cmd {
	uint32_t op, arg, delay_ms, extra;
};

/* The server's outgoing byte stream; the client keeps its own copy. */
static struct gen g_srvpat;

static void cmd(int fd, uint32_t op, uint32_t arg, uint32_t delay_ms, uint32_t extra)
{
	struct cmd c = { op, arg, delay_ms, extra };

	write_all(fd, &c, sizeof(c));
}

static void recv_pat(int fd, size_t n)
{
	recv_gen(fd, &g_srvpat, n, "server pattern");
}

/*
 * OP_SEND arg: send arg pattern bytes. OP_PIECES arg, extra: arg pieces of
 * extra bytes, delay_ms apart. OP_SHUTWR arg: send arg bytes, shutdown(WR).
 * OP_CLOSE arg: send arg bytes, close. OP_DRAIN: wait for the client's
 * sync_signal(), read to EOF, reply the byte count (8 bytes), close.
 * delay_ms (but for PIECES): sleep first.
 */
static void srv_cmd_conn(int fd)
{
	for (;;) {
		struct cmd c;

		STEP("server: read command");
		if (!read_exact2(fd, &c, sizeof(c), true))
			break;
		if (c.delay_ms && c.op != OP_PIECES)
			sleep_ms((int)c.delay_ms);
		switch (c.op) {
		case OP_NOP:
			break;
		case OP_ACK:
			write_all(fd, "k", 1);
			break;
		case OP_SEND:
			STEP("server: OP_SEND");
			send_gen(fd, &g_srvpat, c.arg);
			break;
		case OP_PIECES:
			STEP("server: OP_PIECES");
			for (uint32_t i = 0; i < c.arg; i++) {
				if (i)
					sleep_ms((int)c.delay_ms);
				send_gen(fd, &g_srvpat, c.extra);
			}
			break;
		case OP_SHUTWR:
			STEP("server: OP_SHUTWR");
			send_gen(fd, &g_srvpat, c.arg);
			SYS(shutdown(fd, SHUT_WR));
			break;
		case OP_CLOSE:
			STEP("server: OP_CLOSE");
			send_gen(fd, &g_srvpat, c.arg);
			close(fd);
			return;
		case OP_DRAIN: {
			static char buf[65536];
			uint64_t n = 0;

			sync_wait();
			STEP("server: OP_DRAIN, read to EOF");
			for (;;) {
				ssize_t r = read(fd, buf, sizeof(buf));
				if (r < 0 && errno == EINTR)
					continue;
				PW_CHECK(r >= 0, "drain: %s", strerror(errno));
				if (r == 0)
					break;
				n += (uint64_t)r;
			}
			write_all(fd, &n, sizeof(n));
			close(fd);
			return;
		}
		default:
			PW_FAIL("bad command %u", c.op);
		}
	}
	close(fd);
}

static void srv_cmd(void)
{
	sync_create();
	int l = srv_listen();
	int fd = srv_accept(l);

	srv_cmd_conn(fd);
	close(l);
}

static void srv_cmd2(void)
{
	int l = srv_listen();

	for (int i = 0; i < 2; i++)
		srv_cmd_conn(srv_accept(l));
	close(l);
}

/* The server ping-pongs one connection, then waits for EOF. */
static void srv_pingpong(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	pingpong_srv(fd);
	STEP("wait for EOF");
	expect_eof(fd);
	close(fd);
	close(l);
}

/* Echo every byte back until EOF. */
static void srv_echo_conn(int fd)
{
	static char buf[65536];

	STEP("echo");
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		PW_CHECK(r >= 0, "echo read: %s", strerror(errno));
		if (r == 0)
			break;
		write_all(fd, buf, (size_t)r);
	}
	close(fd);
}

static void srv_echo(void)
{
	int l = srv_listen();

	srv_echo_conn(srv_accept(l));
	close(l);
}

/* ================= connection setup ================= */

static void cli_connect_block(void)
{
	int fd = cli_socket(0);

	STEP("blocking connect");
	PW_CHECK_EQ(connect(fd, SA(&g_addr), sizeof(g_addr)), 0);
	note_conn(fd);
	PW_CHECK(!is_nonblock(fd), "connect made the socket non-blocking");
	pingpong_cli(fd);
	close(fd);
}

static void cli_connect_nonblock(void)
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
static void cli_connect_nb_recheck(void)
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

static void cli_eisconn(void)
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
static void srv_accept4_flags(void)
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

static void cli_accept4_flags(void)
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

/* Five clients connect and write while the server has not accepted yet. */
#define BACKLOG_N 5

static void srv_backlog(void)
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

static void cli_backlog(void)
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
static void srv_reuseaddr(void)
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

static void cli_reuseaddr(void)
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

static void srv_relisten(void)
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

static void cli_relisten(void)
{
	for (int i = 0; i < RELISTEN_N; i++) {
		int fd = cli_connect();

		pingpong_cli(fd);
		STEP("EOF: the server listens again");
		expect_eof(fd);
		close(fd);
	}
}

/* getsockname/getpeername on both ends agree; the server's are the pod's. */
struct addr_view {
	struct sockaddr_in local, peer;
};

static void get_view(int fd, struct addr_view *v)
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

static void srv_addrs(void)
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

static void cli_addrs(void)
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

/* ================= data ================= */

enum { M_RW, M_V, M_SR, M_TO, M_TOA, M_MSG, M_MSGA, M_NMETH };
static const char *const meth_name[] = {
	"read/write",		"readv/writev",		 "recv/send",
	"recvfrom/sendto",	"recvfrom/sendto(addr)", "recvmsg/sendmsg",
	"recvmsg/sendmsg(name)"
};

/* One call of method @m writing up to @n bytes. */
static ssize_t meth_write(int m, int fd, const char *p, size_t n)
{
	struct iovec iov[3];
	struct msghdr mh;
	size_t a = n / 3, b = a;

	switch (m) {
	case M_RW:
		return write(fd, p, n);
	case M_V:
		iov[0] = (struct iovec){ (void *)p, a };
		iov[1] = (struct iovec){ (void *)(p + a), b };
		iov[2] = (struct iovec){ (void *)(p + a + b), n - a - b };
		return writev(fd, iov, 3);
	case M_SR:
		return send(fd, p, n, 0);
	case M_TO:
		return sendto(fd, p, n, 0, NULL, 0);
	case M_TOA: /* a connected TCP socket ignores the address */
		return sendto(fd, p, n, 0, SA(&g_addr), sizeof(g_addr));
	case M_MSG:
	case M_MSGA:
		memset(&mh, 0, sizeof(mh));
		iov[0] = (struct iovec){ (void *)p, a };
		iov[1] = (struct iovec){ (void *)(p + a), n - a };
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		if (m == M_MSGA) {
			mh.msg_name = &g_addr;
			mh.msg_namelen = sizeof(g_addr);
		}
		return sendmsg(fd, &mh, 0);
	}
	return -1;
}

static ssize_t meth_read(int m, int fd, char *p, size_t n)
{
	struct iovec iov[3];
	struct msghdr mh;
	struct sockaddr_storage ss;
	socklen_t alen = sizeof(ss);
	size_t a = n / 3, b = a;
	ssize_t r;

	switch (m) {
	case M_RW:
		return read(fd, p, n);
	case M_V:
		iov[0] = (struct iovec){ p, a };
		iov[1] = (struct iovec){ p + a, b };
		iov[2] = (struct iovec){ p + a + b, n - a - b };
		return readv(fd, iov, 3);
	case M_SR:
		return recv(fd, p, n, 0);
	case M_TO:
		return recvfrom(fd, p, n, 0, NULL, NULL);
	case M_TOA:
		memset(&ss, 0xa5, sizeof(ss));
		r = recvfrom(fd, p, n, 0, SA(&ss), &alen);
		if (r > 0)
			PW_CHECK(alen == 0, "recvfrom on TCP set addrlen to %u, want 0", alen);
		return r;
	case M_MSG:
	case M_MSGA:
		memset(&mh, 0, sizeof(mh));
		iov[0] = (struct iovec){ p, a };
		iov[1] = (struct iovec){ p + a, n - a };
		mh.msg_iov = iov;
		mh.msg_iovlen = 2;
		if (m == M_MSGA) {
			mh.msg_name = &ss;
			mh.msg_namelen = sizeof(ss);
		}
		mh.msg_flags = 0x7fff0000;
		r = recvmsg(fd, &mh, 0);
		if (r > 0) {
			PW_CHECK(mh.msg_flags == 0, "recvmsg msg_flags %#x", mh.msg_flags);
			PW_CHECK(mh.msg_controllen == 0, "recvmsg msg_controllen %zu",
				 (size_t)mh.msg_controllen);
			if (m == M_MSGA)
				PW_CHECK(mh.msg_namelen == 0, "recvmsg msg_namelen %u",
					 mh.msg_namelen);
		}
		return r;
	}
	return -1;
}

static void meth_write_all(int m, int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t r = meth_write(m, fd, p, n);
		PW_CHECK(r > 0, "%s: %s", meth_name[m], r < 0 ? strerror(errno) : "0");
		p += r;
		n -= (size_t)r;
	}
}

static void meth_read_all(int m, int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = meth_read(m, fd, p, n);
		PW_CHECK(r > 0, "%s: %s", meth_name[m], r < 0 ? strerror(errno) : "EOF");
		p += r;
		n -= (size_t)r;
	}
}

static const size_t rw_sizes[M_NMETH] = { 100, 3001, 50, 40, 41, 7000, 70 };

/* Client writes block i with method i, server reads it with method i and
 * echoes it with method (i+1) % N, which the client reads the same way. */
static void srv_rw_calls(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	static char buf[8192];

	for (int i = 0; i < M_NMETH; i++) {
		int e = (i + 1) % M_NMETH;

		STEP(meth_name[i]);
		meth_read_all(i, fd, buf, rw_sizes[i]);
		meth_write_all(e, fd, buf, rw_sizes[i]);
	}
	STEP("zero-length send");
	PW_CHECK_EQ(send(fd, buf, 0, 0), 0);
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_rw_calls(void)
{
	int fd = cli_connect();
	static char out[8192], in[8192];
	struct gen g;

	gen_init(&g, 42);
	for (int i = 0; i < M_NMETH; i++) {
		int e = (i + 1) % M_NMETH;

		STEP(meth_name[i]);
		gen_fill(&g, out, rw_sizes[i]);
		meth_write_all(i, fd, out, rw_sizes[i]);
		memset(in, 0, rw_sizes[i]);
		meth_read_all(e, fd, in, rw_sizes[i]);
		PW_CHECK(!memcmp(in, out, rw_sizes[i]), "block %d (%s) came back different", i,
			 meth_name[e]);
	}
	STEP("zero-length send");
	PW_CHECK_EQ(send(fd, out, 0, 0), 0);
	close(fd);
}

static void cli_peek(void)
{
	int fd = cli_connect();
	char p1[16], p2[4], r[16], b;
	double t0 = now_ms();
	ssize_t n;

	cmd(fd, OP_SEND, sizeof(p1), 0, 0);
	STEP("MSG_PEEK until all 16 bytes are there");
	for (;;) {
		n = recv(fd, p1, sizeof(p1), MSG_PEEK);
		PW_CHECK(n > 0, "recv(MSG_PEEK): %s", n < 0 ? strerror(errno) : "EOF");
		if (n == (ssize_t)sizeof(p1))
			break;
		PW_CHECK(now_ms() - t0 < 2000, "only %zd bytes to peek after 2 s", n);
		sleep_ms(5);
	}
	STEP("peek again, shorter");
	PW_CHECK_EQ(recv(fd, p2, sizeof(p2), MSG_PEEK), sizeof(p2));
	PW_CHECK(!memcmp(p1, p2, sizeof(p2)), "second peek differs");
	STEP("read returns the peeked bytes");
	read_exact(fd, r, sizeof(r));
	PW_CHECK(!memcmp(p1, r, sizeof(r)), "read differs from peek");
	gen_check(&g_srvpat, r, sizeof(r), "peeked data");
	STEP("peek on the empty socket, MSG_DONTWAIT");
	CHECK_ERRNO(recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT), EAGAIN);
	close(fd);
}

/* More iovecs than podwire's 16-entry window, zero-length entries, IOV_MAX. */
#define IOVS 40

static size_t iov_layout(struct iovec *iov, char *buf, unsigned mult)
{
	size_t off = 0;

	for (int i = 0; i < IOVS; i++) {
		size_t n = (size_t)(i * mult) % 97; /* some are 0 */
		iov[i] = (struct iovec){ buf + off, n };
		off += n;
	}
	return off;
}

static void recvmsg_all(int fd, struct iovec *iov, size_t total)
{
	struct msghdr mh;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = IOVS;
	ssize_t r = recvmsg(fd, &mh, MSG_WAITALL);
	PW_CHECK(r == (ssize_t)total, "recvmsg(MSG_WAITALL, %d iovecs): %zd of %zu (%s)", IOVS, r,
		 total, r < 0 ? strerror(errno) : "");
}

static void srv_iov_edges(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	static char buf[8192];
	struct iovec iov[IOVS];
	size_t total = iov_layout(iov, buf, 13);

	STEP("recvmsg into 40 iovecs");
	recvmsg_all(fd, iov, total);
	STEP("writev 40 iovecs back");
	PW_CHECK_EQ(writev(fd, iov, IOVS), total);
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_iov_edges(void)
{
	int fd = cli_connect();
	static char out[8192], in[8192];
	static struct iovec big[IOV_MAX + 1];
	struct iovec iov[IOVS];
	size_t total = iov_layout(iov, out, 13);
	struct gen g;

	gen_init(&g, 4);
	gen_fill(&g, out, total);
	STEP("writev with 40 iovecs");
	PW_CHECK_EQ(writev(fd, iov, IOVS), total);
	STEP("recvmsg into 40 iovecs");
	iov_layout(iov, in, 13);
	recvmsg_all(fd, iov, total);
	PW_CHECK(!memcmp(in, out, total), "data differs");
	STEP("iovcnt 0 and IOV_MAX + 1");
	PW_CHECK_EQ(writev(fd, iov, 0), 0);
	for (int i = 0; i <= IOV_MAX; i++)
		big[i] = (struct iovec){ out, 1 };
	CHECK_ERRNO(writev(fd, big, IOV_MAX + 1), EINVAL);
	CHECK_ERRNO(readv(fd, big, IOV_MAX + 1), EINVAL);
	close(fd);
}

/* TCP's MSG_TRUNC discards the bytes (the buffer may be NULL). */
static void cli_msg_trunc(void)
{
	int fd = cli_connect();
	char buf[10], want[10];
	int n = 0;

	cmd(fd, OP_SEND, 20, 0, 0);
	for (double t0 = now_ms(); n < 20; sleep_ms(5)) {
		SYS(ioctl(fd, FIONREAD, &n));
		PW_CHECK(now_ms() - t0 < 3000, "only %d bytes arrived", n);
	}
	STEP("recv(NULL, 5, MSG_TRUNC)");
	PW_CHECK_EQ(recv(fd, NULL, 5, MSG_TRUNC), 5);
	STEP("recv(buf, 5, MSG_TRUNC): buffer untouched");
	memset(buf, 'Z', sizeof(buf));
	PW_CHECK_EQ(recv(fd, buf, 5, MSG_TRUNC), 5);
	PW_CHECK(buf[0] == 'Z' && buf[4] == 'Z', "MSG_TRUNC wrote into the buffer");
	gen_fill(&g_srvpat, want, 10); /* the 10 bytes discarded */
	STEP("the rest");
	read_exact(fd, buf, 10);
	gen_check(&g_srvpat, buf, 10, "after the discarded bytes");
	close(fd);
}

/* Urgent data: the MSG_OOB byte leaves the normal stream (no SO_OOBINLINE),
 * poll shows POLLPRI, recv(MSG_OOB) returns it. */
static void srv_msg_oob(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	char buf[2], c = 0;

	STEP("normal data up to the urgent mark");
	read_exact(fd, buf, 2);
	PW_CHECK(!memcmp(buf, "ab", 2), "got \"%.2s\"", buf);
	STEP("POLLPRI for the urgent byte");
	wait_fd(fd, POLLPRI, 3000);
	STEP("recv(MSG_OOB)");
	PW_CHECK_EQ(recv(fd, &c, 1, MSG_OOB), 1);
	PW_CHECK_EQ(c, 'c');
	send_str(fd, "k1");
	STEP("normal data after the mark, without the urgent byte");
	read_exact(fd, buf, 2);
	PW_CHECK(!memcmp(buf, "de", 2), "got \"%.2s\"", buf);
	send_str(fd, "k2");
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_msg_oob(void)
{
	int fd = cli_connect();

	set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, 1);
	STEP("send \"ab\", then urgent \"c\"");
	PW_CHECK_EQ(send(fd, "ab", 2, 0), 2);
	PW_CHECK_EQ(send(fd, "c", 1, MSG_OOB), 1);
	expect_str(fd, "k1");
	PW_CHECK_EQ(send(fd, "de", 2, 0), 2);
	expect_str(fd, "k2");
	close(fd);
}

/* Fill the socket with non-blocking sends until EAGAIN; the byte count. */
static uint64_t fill_until_eagain(int fd, int flags)
{
	static char buf[65536];
	uint64_t total = 0;

	STEP("fill until EAGAIN");
	for (;;) {
		ssize_t r = send(fd, buf, sizeof(buf), flags | MSG_NOSIGNAL);
		if (r < 0 && errno == EAGAIN)
			return total;
		PW_CHECK(r > 0, "send: %s", r < 0 ? strerror(errno) : "0");
		total += (uint64_t)r;
		PW_CHECK(total < (1ull << 30), "1 GiB accepted and still no EAGAIN");
	}
}

static void cli_dontwait(void)
{
	int fd = cli_connect();
	char b[16];
	double t0;
	uint64_t total, got;
	ssize_t n;

	STEP("MSG_DONTWAIT on an empty blocking socket");
	CHECK_ERRNO(recv(fd, b, sizeof(b), MSG_DONTWAIT), EAGAIN);
	PW_CHECK(!is_nonblock(fd), "MSG_DONTWAIT changed the file flags");
	STEP("blocking recv still blocks");
	cmd(fd, OP_SEND, 10, 150, 0);
	t0 = now_ms();
	n = recv(fd, b, 10, MSG_WAITALL);
	PW_CHECK_EQ(n, 10);
	PW_CHECK(now_ms() - t0 > 100, "blocking recv returned after %.0f ms", now_ms() - t0);
	gen_check(&g_srvpat, b, 10, "data");
	CHECK_ERRNO(recv(fd, b, sizeof(b), MSG_DONTWAIT), EAGAIN);
	STEP("send(MSG_DONTWAIT) on a blocking socket until EAGAIN");
	cmd(fd, OP_DRAIN, 0, 0, 0);
	total = fill_until_eagain(fd, MSG_DONTWAIT);
	PW_CHECK(!is_nonblock(fd), "MSG_DONTWAIT changed the file flags");
	sync_signal();
	SYS(shutdown(fd, SHUT_WR));
	STEP("the server counts what it drained");
	read_exact(fd, &got, sizeof(got));
	PW_CHECK(got == total, "server read %llu bytes, client sent %llu", (unsigned long long)got,
		 (unsigned long long)total);
	expect_eof(fd);
	close(fd);
}

static void cli_waitall(void)
{
	int fd = cli_connect();
	static char buf[4000];
	double t0;

	STEP("MSG_WAITALL over four pieces 50 ms apart");
	cmd(fd, OP_PIECES, 4, 50, 1000);
	t0 = now_ms();
	PW_CHECK_EQ(recv(fd, buf, 4000, MSG_WAITALL), 4000);
	PW_CHECK(now_ms() - t0 > 120, "all four pieces after %.0f ms?", now_ms() - t0);
	gen_check(&g_srvpat, buf, 4000, "pieces");
	STEP("MSG_WAITALL cut short by EOF");
	cmd(fd, OP_SHUTWR, 500, 0, 0);
	PW_CHECK_EQ(recv(fd, buf, 1000, MSG_WAITALL), 500);
	gen_check(&g_srvpat, buf, 500, "tail");
	PW_CHECK_EQ(recv(fd, buf, 1000, MSG_WAITALL), 0);
	close(fd);
}

/* ---- SIGPIPE ---- */

static _Atomic int g_sigpipes; /* lock-free: safe in a signal handler */

static void count_sigpipe(int sig)
{
	g_sigpipes++;
}

/* The peer closed: write until the first failure (within 2 s); its errno. */
static int write_until_fail(int fd, bool use_send_nosignal)
{
	char buf[100] = { 0 };
	double t0 = now_ms();

	STEP("write to a closed peer until it fails");
	for (;;) {
		ssize_t r = use_send_nosignal ? send(fd, buf, sizeof(buf), MSG_NOSIGNAL)
					      : write(fd, buf, sizeof(buf));
		if (r < 0)
			return errno;
		PW_CHECK(now_ms() - t0 < 2000, "writes to a closed peer succeed for 2 s");
		sleep_ms(10);
	}
}

static int cli_closed_peer(void)
{
	int fd = cli_connect();

	cmd(fd, OP_CLOSE, 0, 0, 0);
	STEP("read EOF");
	expect_eof(fd);
	return fd;
}

static void cli_sigpipe_nosignal(void)
{
	set_handler(SIGPIPE, SIG_DFL, 0);
	int fd = cli_closed_peer();
	int e = write_until_fail(fd, true);
	PW_CHECK(e == EPIPE, "send(MSG_NOSIGNAL) failed with %s, want EPIPE", strerrorname_np(e));
	close(fd);
}

static void cli_sigpipe_ignored(void)
{
	set_handler(SIGPIPE, SIG_IGN, 0);
	int fd = cli_closed_peer();
	int e = write_until_fail(fd, false);
	PW_CHECK(e == EPIPE, "write failed with %s, want EPIPE", strerrorname_np(e));
	close(fd);
}

static void cli_sigpipe_handler(void)
{
	set_handler(SIGPIPE, count_sigpipe, 0);
	int fd = cli_closed_peer();
	int e = write_until_fail(fd, false);
	PW_CHECK(e == EPIPE, "write failed with %s, want EPIPE", strerrorname_np(e));
	PW_CHECK(g_sigpipes == 1, "SIGPIPE handler ran %d times, want once", (int)g_sigpipes);
	STEP("MSG_NOSIGNAL: EPIPE, no signal");
	CHECK_ERRNO(send(fd, "x", 1, MSG_NOSIGNAL), EPIPE);
	PW_CHECK(g_sigpipes == 1, "SIGPIPE raised despite MSG_NOSIGNAL");
	close(fd);
}

/* With the default disposition the writer dies of SIGPIPE. */
static void cli_sigpipe_default(void)
{
	int st;
	pid_t pid = fork_as(NULL);

	if (pid == 0) {
		set_handler(SIGPIPE, SIG_DFL, 0);
		int fd = cli_closed_peer();
		write_until_fail(fd, false);
		fprintf(stderr, "FAIL: write failed but SIGPIPE did not kill the writer\n");
		_exit(3);
	}
	STEP("wait for the writer to die of SIGPIPE");
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE,
		 "writer: status %#x, want killed by SIGPIPE", st);
}

/* ---- shutdown and close ---- */

static void srv_shutdown_wr(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	char buf[64];
	size_t got = 0;
	struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP, 0 };

	STEP("read to EOF");
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);
		PW_CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	PW_CHECK(got == 12 && !memcmp(buf, "request-data", 12), "got %zu bytes \"%.*s\"", got,
		 (int)got, buf);
	STEP("poll after the peer's SHUT_WR");
	PW_CHECK_EQ(poll(&p, 1, 0), 1);
	PW_CHECK(p.revents == (POLLIN | POLLOUT | POLLRDHUP),
		 "revents %#x, want POLLIN|POLLOUT|POLLRDHUP", p.revents);
	STEP("write back after EOF");
	send_str(fd, "reply-after-eof");
	close(fd);
	close(l);
}

static void cli_shutdown_wr(void)
{
	int fd = cli_connect();
	char buf[64];
	size_t got = 0;

	send_str(fd, "request-data");
	STEP("shutdown(SHUT_WR)");
	SYS(shutdown(fd, SHUT_WR));
	STEP("send after SHUT_WR");
	CHECK_ERRNO(send(fd, "x", 1, MSG_NOSIGNAL), EPIPE);
	STEP("read the reply, then EOF");
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);
		PW_CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	PW_CHECK(got == 15 && !memcmp(buf, "reply-after-eof", 15), "got %zu bytes \"%.*s\"", got,
		 (int)got, buf);
	close(fd);
}

/* The client writes and closes at once; the server reads everything later. */
#define PENDING_N 100000

static void srv_close_pending(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	struct gen g;

	STEP("let the client close first");
	sleep_ms(300);
	gen_init(&g, 9);
	STEP("read what the closed peer wrote");
	recv_gen(fd, &g, PENDING_N, "pending data");
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_close_pending(void)
{
	int fd = cli_connect();
	struct gen g;

	gen_init(&g, 9);
	send_gen(fd, &g, PENDING_N);
	STEP("close with data not yet read by the peer");
	close(fd);
}

/* Closing with unread received data sends a reset: the peer gets ECONNRESET. */
static void srv_close_unread_rst(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	int avail = 0;
	double t0 = now_ms();

	STEP("wait for 100 unread bytes");
	while (avail < 100) {
		SYS(ioctl(fd, FIONREAD, &avail));
		PW_CHECK(now_ms() - t0 < 3000, "FIONREAD %d after 3 s", avail);
		sleep_ms(5);
	}
	STEP("close without reading");
	close(fd);
	close(l);
}

static void cli_close_unread_rst(void)
{
	int fd = cli_connect();
	char buf[100] = { 0 };

	write_all(fd, buf, sizeof(buf));
	STEP("read: the peer closed with our data unread");
	CHECK_ERRNO(read(fd, buf, sizeof(buf)), ECONNRESET);
	STEP("send after the reset");
	CHECK_ERRNO(send(fd, buf, 1, MSG_NOSIGNAL), EPIPE);
	close(fd);
}

/* SO_LINGER {1, 0}: close() resets the connection. */
static void srv_linger_rst(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	expect_str(fd, "x");
	STEP("read after the peer's abortive close");
	char b;
	CHECK_ERRNO(read(fd, &b, 1), ECONNRESET);
	close(fd);
	close(l);
}

static void cli_linger_rst(void)
{
	int fd = cli_connect();
	struct linger lg = { 1, 0 };

	SYS(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	send_str(fd, "x");
	sleep_ms(100);
	STEP("abortive close");
	close(fd);
}

/* shutdown(SHUT_RD): our reads see EOF, the peer's writes still succeed. */
static void srv_shutdown_rd(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	char b[10] = { 0 };

	expect_str(fd, "rd-shut");
	STEP("write to a peer that shut down reading");
	PW_CHECK_EQ(send(fd, b, sizeof(b), MSG_NOSIGNAL), sizeof(b));
	sleep_ms(50);
	PW_CHECK_EQ(send(fd, b, sizeof(b), MSG_NOSIGNAL), sizeof(b));
	STEP("the peer can still write to us");
	expect_str(fd, "still-writing");
	close(fd);
	close(l);
}

static void cli_shutdown_rd(void)
{
	int fd = cli_connect();
	char b[10];

	STEP("shutdown(SHUT_RD)");
	SYS(shutdown(fd, SHUT_RD));
	PW_CHECK_EQ(recv(fd, b, sizeof(b), 0), 0);
	send_str(fd, "rd-shut");
	sleep_ms(200);
	send_str(fd, "still-writing");
	sleep_ms(100);
	close(fd);
}

/* The listener closes with a connection still in its accept queue: that
 * connection is reset. */
static void srv_listener_closed_pending(void)
{
	int l = srv_listen();

	STEP("wait for a pending connection");
	wait_fd(l, POLLIN, 10000);
	sleep_ms(200);
	STEP("close the listener without accepting");
	close(l);
}

static void cli_listener_closed_pending(void)
{
	int fd = cli_connect();
	char b[10];

	send_str(fd, "hello");
	STEP("read: the listener closed before accepting us");
	CHECK_ERRNO(read(fd, b, sizeof(b)), ECONNRESET);
	STEP("send after the reset");
	CHECK_ERRNO(send(fd, b, 1, MSG_NOSIGNAL), EPIPE);
	close(fd);
}

/* The client writes at once; the server accepts much later. */
static void srv_accept_late(void)
{
	int l = srv_listen();

	STEP("wait for a pending connection, accept later");
	wait_fd(l, POLLIN, 10000);
	sleep_ms(700);
	int fd = srv_accept(l);
	STEP("read what was written before accept");
	expect_str(fd, "hello-late");
	send_str(fd, "ok");
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_accept_late(void)
{
	int fd = cli_connect();

	send_str(fd, "hello-late");
	STEP("reply after the late accept");
	expect_str(fd, "ok");
	close(fd);
}

/* sendfile() from a regular file, with and without an offset pointer. */
#define SF_SIZE (1024 * 1024 + 123)
#define SF_OFF	1000
#define SF_TAIL 5000

static void srv_sendfile(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	char path[] = "/tmp/pw-sem-sendfile.XXXXXX";
	int ffd = (int)SYS(mkstemp(path));
	char *data = malloc(SF_SIZE);
	struct gen g;
	off_t off = SF_OFF;

	unlink(path);
	gen_init(&g, 555);
	gen_fill(&g, data, SF_SIZE);
	PW_CHECK_EQ(write(ffd, data, SF_SIZE), SF_SIZE);
	SYS(lseek(ffd, 0, SEEK_SET));
	STEP("sendfile with an offset pointer");
	while (off < SF_SIZE) {
		off_t before = off;
		ssize_t n = sendfile(fd, ffd, &off, (size_t)(SF_SIZE - off));
		PW_CHECK(n > 0, "sendfile: %s", n < 0 ? strerror(errno) : "0");
		PW_CHECK(off == before + n, "offset %lld after sending %zd from %lld",
			 (long long)off, n, (long long)before);
	}
	PW_CHECK_EQ(lseek(ffd, 0, SEEK_CUR), 0);
	STEP("sendfile from the file position");
	size_t left = SF_TAIL;
	while (left) {
		ssize_t n = sendfile(fd, ffd, NULL, left);
		PW_CHECK(n > 0, "sendfile: %s", n < 0 ? strerror(errno) : "0");
		left -= (size_t)n;
	}
	PW_CHECK_EQ(lseek(ffd, 0, SEEK_CUR), SF_TAIL);
	close(ffd);
	free(data);
	close(fd);
	close(l);
}

static void cli_sendfile(void)
{
	int fd = cli_connect();
	char *data = malloc(SF_SIZE), *got = malloc(SF_SIZE);
	struct gen g;

	gen_init(&g, 555);
	gen_fill(&g, data, SF_SIZE);
	STEP("receive the file from the offset");
	read_exact(fd, got, SF_SIZE - SF_OFF);
	PW_CHECK(!memcmp(got, data + SF_OFF, SF_SIZE - SF_OFF), "file content differs");
	STEP("receive the head of the file");
	read_exact(fd, got, SF_TAIL);
	PW_CHECK(!memcmp(got, data, SF_TAIL), "file head differs");
	expect_eof(fd);
	free(data);
	free(got);
	close(fd);
}

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

static void srv_dup(void)
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

static void cli_dup(void)
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

static void cli_fcntl_nonblock(void)
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

struct kicker {
	pthread_t target;
	int after_ms;
	int sig;
	atomic_bool cancel;
};

static void *kicker_main(void *arg)
{
	struct kicker *k = arg;

	sleep_ms(k->after_ms);
	if (!atomic_load(&k->cancel))
		pthread_kill(k->target, k->sig);
	return NULL;
}

/* O_NONBLOCK is a property of the open file description that fork shares:
 * the child sets it, the parent's recv must not block. */
static void cli_fork_shared_flags(void)
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

static void cli_fionread(void)
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
	STEP("SO_RCVBUF/SO_SNDBUF (the kernel doubles the value)");
	set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, 32768);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_RCVBUF), 65536);
	set_int_opt(fd, SOL_SOCKET, SO_SNDBUF, 32768);
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_SNDBUF), 65536);
}

static void srv_sockopts(void)
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

static void cli_sockopts(void)
{
	int fd = cli_connect();

	check_sockopts(fd);
	pingpong_cli(fd);
	close(fd);
}

/* Options set on the socket before connect(), or on the listener before
 * accept(), are the connection's options afterwards. */
static void srv_sockopt_inherit(void)
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

static void cli_sockopt_inherit(void)
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
static void cli_sockopt_roundtrip(void)
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

static void cli_sockopt_unknown(void)
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

static void srv_rcvtimeo(void)
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

static void cli_rcvtimeo(void)
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
static void cli_sndtimeo(void)
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

/* ================= readiness ================= */

enum { W_POLL, W_PPOLL, W_SELECT, W_PSELECT };

/* Wait for @ev on @fd with mechanism @w; returns the poll-style revents (0 on
 * timeout). */
static short wait_with(int w, int fd, short ev, int ms)
{
	struct pollfd p = { fd, ev, 0 };
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	fd_set r, wr;
	int n;

	switch (w) {
	case W_POLL:
		n = poll(&p, 1, ms);
		PW_CHECK(n >= 0, "poll: %s", strerror(errno));
		return n ? p.revents : 0;
	case W_PPOLL:
		n = ppoll(&p, 1, &ts, NULL);
		PW_CHECK(n >= 0, "ppoll: %s", strerror(errno));
		return n ? p.revents : 0;
	default:
		FD_ZERO(&r);
		FD_ZERO(&wr);
		if (ev & POLLIN)
			FD_SET(fd, &r);
		if (ev & POLLOUT)
			FD_SET(fd, &wr);
		n = w == W_SELECT ? select(fd + 1, &r, &wr, NULL, &tv)
				  : pselect(fd + 1, &r, &wr, NULL, &ts, NULL);
		PW_CHECK(n >= 0, "select: %s", strerror(errno));
		if (w == W_SELECT && n == 0)
			PW_CHECK(tv.tv_sec == 0 && tv.tv_usec == 0,
				 "select timed out leaving %ld.%06ld s", (long)tv.tv_sec,
				 (long)tv.tv_usec);
		return (short)((FD_ISSET(fd, &r) ? POLLIN : 0) | (FD_ISSET(fd, &wr) ? POLLOUT : 0));
	}
}

static _Atomic int g_usr1; /* lock-free: safe in a signal handler */

static void count_usr1(int sig)
{
	g_usr1++;
}

static void readiness_basic(int w)
{
	int fd = cli_connect();
	char buf[10];
	double t0;
	short re;

	STEP("nothing to read: zero timeout");
	PW_CHECK_EQ(wait_with(w, fd, POLLIN, 0), 0);
	STEP("nothing to read: 100 ms timeout");
	t0 = now_ms();
	PW_CHECK_EQ(wait_with(w, fd, POLLIN, 100), 0);
	PW_CHECK(now_ms() - t0 >= 90 && now_ms() - t0 < 1000, "timeout took %.0f ms",
		 now_ms() - t0);
	STEP("writable at once");
	PW_CHECK_EQ(wait_with(w, fd, POLLOUT, 0), POLLOUT);
	STEP("data arrives while waiting");
	cmd(fd, OP_SEND, 10, 50, 0);
	re = wait_with(w, fd, POLLIN | (w <= W_PPOLL ? POLLRDHUP : 0), 3000);
	PW_CHECK(re == POLLIN, "revents %#x, want POLLIN", re);
	read_exact(fd, buf, 10);
	gen_check(&g_srvpat, buf, 10, "data");
	STEP("read everything: not readable");
	PW_CHECK_EQ(wait_with(w, fd, POLLIN, 0), 0);
	STEP("readable and writable together");
	cmd(fd, OP_SEND, 10, 0, 0);
	re = wait_with(w, fd, POLLIN | POLLOUT, 3000);
	if (!(re & POLLIN)) { /* writable at once; wait for the data */
		wait_fd(fd, POLLIN, 3000);
		re = wait_with(w, fd, POLLIN | POLLOUT, 0);
	}
	PW_CHECK(re == (POLLIN | POLLOUT), "revents %#x, want POLLIN|POLLOUT", re);
	read_exact(fd, buf, 10);
	gen_check(&g_srvpat, buf, 10, "data");

	if (w == W_PPOLL || w == W_PSELECT) {
		STEP("signal mask: a blocked pending signal interrupts the wait");
		sigset_t blk, empty;
		struct pollfd p = { fd, POLLIN, 0 };
		struct timespec ts = { 3, 0 };
		fd_set r;

		set_handler(SIGUSR1, count_usr1, 0);
		sigemptyset(&blk);
		sigaddset(&blk, SIGUSR1);
		sigemptyset(&empty);
		SYS(sigprocmask(SIG_BLOCK, &blk, NULL));
		raise(SIGUSR1);
		PW_CHECK_EQ(g_usr1, 0);
		t0 = now_ms();
		if (w == W_PPOLL) {
			CHECK_ERRNO(ppoll(&p, 1, &ts, &empty), EINTR);
		} else {
			FD_ZERO(&r);
			FD_SET(fd, &r);
			CHECK_ERRNO(pselect(fd + 1, &r, NULL, NULL, &ts, &empty), EINTR);
		}
		PW_CHECK(now_ms() - t0 < 1000, "took %.0f ms", now_ms() - t0);
		PW_CHECK_EQ(g_usr1, 1);
		SYS(sigprocmask(SIG_UNBLOCK, &blk, NULL));
	}
	close(fd);
}

static void cli_poll(void)
{
	readiness_basic(W_POLL);
}

static void cli_ppoll(void)
{
	readiness_basic(W_PPOLL);
}

static void cli_select(void)
{
	readiness_basic(W_SELECT);
}

static void cli_pselect(void)
{
	readiness_basic(W_PSELECT);
}

/* The peer close()d: readable and writable, RDHUP, but no HUP (that needs
 * both directions shut). */
static void cli_peer_close_revents(void)
{
	int fd = cli_connect();
	struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP, 0 };
	struct epoll_event ev = { EPOLLIN | EPOLLOUT | EPOLLRDHUP, { .u64 = 1 } }, out[2];
	double t0 = now_ms();
	char buf[5];

	cmd(fd, OP_CLOSE, 5, 0, 0);
	STEP("poll until POLLRDHUP");
	for (;;) {
		PW_CHECK_EQ(poll(&p, 1, 3000), 1);
		if (p.revents & POLLRDHUP)
			break;
		PW_CHECK(now_ms() - t0 < 3000, "no POLLRDHUP");
		sleep_ms(5);
	}
	PW_CHECK(p.revents == (POLLIN | POLLOUT | POLLRDHUP),
		 "poll revents %#x, want POLLIN|POLLOUT|POLLRDHUP (no POLLHUP: only the peer "
		 "closed)",
		 p.revents);
	STEP("epoll");
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	PW_CHECK_EQ(epoll_wait(ep, out, 2, 1000), 1);
	PW_CHECK(out[0].events == (EPOLLIN | EPOLLOUT | EPOLLRDHUP),
		 "epoll events %#x, want EPOLLIN|EPOLLOUT|EPOLLRDHUP", out[0].events);
	close(ep);
	read_exact(fd, buf, 5);
	gen_check(&g_srvpat, buf, 5, "data");
	expect_eof(fd);
	close(fd);
}

static int ep_wait1(int ep, struct epoll_event *out, int ms)
{
	int n = epoll_wait(ep, out, 4, ms);

	PW_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
	return n;
}

static void ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { events, { .u64 = data } };

	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

static void ep_mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { events, { .u64 = data } };

	SYS(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
}

static void cli_epoll_lt(void)
{
	int fd = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];
	char buf[100];

	ep_add(ep, fd, EPOLLIN, 0xabc);
	STEP("nothing yet");
	PW_CHECK_EQ(ep_wait1(ep, out, 0), 0);
	STEP("data arrives");
	cmd(fd, OP_SEND, 100, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	PW_CHECK_EQ(out[0].data.u64, 0xabc);
	STEP("partly read: still reported");
	read_exact(fd, buf, 50);
	PW_CHECK_EQ(ep_wait1(ep, out, 0), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	read_exact(fd, buf + 50, 50);
	gen_check(&g_srvpat, buf, 100, "data");
	STEP("all read: quiet");
	PW_CHECK_EQ(ep_wait1(ep, out, 50), 0);
	STEP("EPOLL_CTL_MOD adds EPOLLOUT");
	ep_mod(ep, fd, EPOLLIN | EPOLLOUT, 0xdef);
	PW_CHECK_EQ(ep_wait1(ep, out, 0), 1);
	PW_CHECK_EQ(out[0].events, EPOLLOUT);
	PW_CHECK_EQ(out[0].data.u64, 0xdef);
	ep_mod(ep, fd, EPOLLIN, 0xabc);
	STEP("epoll_pwait");
	cmd(fd, OP_SEND, 10, 20, 0);
	PW_CHECK_EQ(epoll_pwait(ep, out, 4, 3000, NULL), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	recv_pat(fd, 10);
	STEP("epoll_pwait2");
	cmd(fd, OP_SEND, 10, 20, 0);
	struct timespec ts = { 3, 0 };
	int n = epoll_pwait2(ep, out, 4, &ts, NULL);
	if (n < 0 && errno == ENOSYS) {
		fprintf(stderr, "# epoll_pwait2: ENOSYS, not checked\n");
		wait_fd(fd, POLLIN, 3000);
	} else {
		PW_CHECK_EQ(n, 1);
		PW_CHECK_EQ(out[0].events, EPOLLIN);
	}
	recv_pat(fd, 10);
	STEP("EPOLL_CTL_DEL: no more events");
	SYS(epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL));
	cmd(fd, OP_SEND, 10, 0, 0);
	wait_fd(fd, POLLIN, 3000);
	PW_CHECK_EQ(ep_wait1(ep, out, 50), 0);
	recv_pat(fd, 10);
	close(ep);
	close(fd);
}

/* Read to EAGAIN; the byte count. */
static size_t read_to_eagain(int fd, char *buf, size_t cap)
{
	size_t got = 0;

	for (;;) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EAGAIN)
			return got;
		PW_CHECK(r > 0, "read: %s", r < 0 ? strerror(errno) : "EOF");
		got += (size_t)r;
		PW_CHECK(got < cap, "more data than expected");
	}
}

static void cli_epoll_et(void)
{
	int fd = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];
	char buf[512];

	set_nonblock(fd, true);
	ep_add(ep, fd, EPOLLIN | EPOLLET, 7);
	PW_CHECK_EQ(ep_wait1(ep, out, 50), 0);
	STEP("data arrives: one event");
	cmd(fd, OP_SEND, 100, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	PW_CHECK_EQ(out[0].data.u64, 7);
	STEP("no new data, nothing read: no event");
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	STEP("partial read: no event");
	read_exact(fd, buf, 30);
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	STEP("read to EAGAIN: no event");
	PW_CHECK_EQ(read_to_eagain(fd, buf + 30, sizeof(buf) - 30), 70);
	gen_check(&g_srvpat, buf, 100, "data");
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	STEP("new data after EAGAIN: a new event");
	cmd(fd, OP_SEND, 50, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	STEP("more data while unread data is pending: a new event");
	cmd(fd, OP_SEND, 50, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	STEP("drain");
	wait_fd(fd, POLLIN, 1000);
	size_t got = 0;
	double t0 = now_ms();
	while (got < 100) { /* the second 50 may still be in flight on a kernel path */
		got += read_to_eagain(fd, buf + got, sizeof(buf) - got);
		PW_CHECK(now_ms() - t0 < 3000, "only %zu of 100 bytes", got);
		if (got < 100)
			sleep_ms(5);
	}
	PW_CHECK_EQ(got, 100);
	gen_check(&g_srvpat, buf, 100, "data");
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	close(ep);
	close(fd);
}

static void cli_epoll_oneshot(void)
{
	int fd = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];
	char buf[20];

	ep_add(ep, fd, EPOLLIN | EPOLLONESHOT, 9);
	STEP("first data: one event");
	cmd(fd, OP_SEND, 10, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	STEP("more data: disarmed, no event");
	cmd(fd, OP_SEND, 10, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 150), 0);
	STEP("EPOLL_CTL_MOD re-arms: event for the pending data");
	ep_mod(ep, fd, EPOLLIN | EPOLLONESHOT, 10);
	PW_CHECK_EQ(ep_wait1(ep, out, 1000), 1);
	PW_CHECK_EQ(out[0].events, EPOLLIN);
	PW_CHECK_EQ(out[0].data.u64, 10);
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	read_exact(fd, buf, 20);
	gen_check(&g_srvpat, buf, 20, "data");
	STEP("re-armed with nothing pending: no event");
	ep_mod(ep, fd, EPOLLIN | EPOLLONESHOT, 11);
	PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
	STEP("new data: one event");
	cmd(fd, OP_SEND, 10, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].data.u64, 11);
	recv_pat(fd, 10);
	close(ep);
	close(fd);
}

static void cli_epoll_rdhup(void)
{
	int fd = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];
	struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP, 0 };
	double t0 = now_ms();
	char buf[5];

	ep_add(ep, fd, EPOLLIN | EPOLLRDHUP, 3);
	cmd(fd, OP_SHUTWR, 5, 0, 0);
	STEP("wait for EPOLLRDHUP");
	for (;;) {
		PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
		if (out[0].events & EPOLLRDHUP)
			break;
		PW_CHECK(now_ms() - t0 < 3000, "no EPOLLRDHUP after the peer's SHUT_WR");
		sleep_ms(5);
	}
	PW_CHECK(out[0].events == (EPOLLIN | EPOLLRDHUP), "events %#x, want EPOLLIN|EPOLLRDHUP",
		 out[0].events);
	STEP("poll agrees");
	PW_CHECK_EQ(poll(&p, 1, 0), 1);
	PW_CHECK(p.revents == (POLLIN | POLLOUT | POLLRDHUP),
		 "revents %#x, want POLLIN|POLLOUT|POLLRDHUP", p.revents);
	read_exact(fd, buf, 5);
	gen_check(&g_srvpat, buf, 5, "data");
	expect_eof(fd);
	STEP("still reported after EOF (level)");
	PW_CHECK_EQ(ep_wait1(ep, out, 0), 1);
	PW_CHECK(out[0].events == (EPOLLIN | EPOLLRDHUP), "events %#x", out[0].events);
	STEP("we can still write");
	cmd(fd, OP_NOP, 0, 0, 0);
	close(ep);
	close(fd);
}

/* Two epoll sets, each with the listener under EPOLLEXCLUSIVE, one thread
 * each: every connection is accepted exactly once. */
#define EXCL_CONNS 4

struct excl {
	int l, ep;
	atomic_int *served, *wakeups;
};

static void *excl_main(void *arg)
{
	struct excl *x = arg;
	struct epoll_event ev;
	double t0 = now_ms();

	while (atomic_load(x->served) < EXCL_CONNS) {
		int n = epoll_wait(x->ep, &ev, 1, 100);
		PW_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
		PW_CHECK(now_ms() - t0 < 8000, "only %d connections served",
			 atomic_load(x->served));
		if (!n)
			continue;
		atomic_fetch_add(x->wakeups, 1);
		int fd = accept4(x->l, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0 && errno == EAGAIN)
			continue; /* the other set's thread took it */
		PW_CHECK(fd >= 0, "accept4: %s", strerror(errno));
		note_conn(fd);
		uint32_t id;
		read_exact(fd, &id, sizeof(id));
		write_all(fd, &id, sizeof(id));
		expect_eof(fd);
		close(fd);
		atomic_fetch_add(x->served, 1);
	}
	return NULL;
}

static void srv_epoll_exclusive(void)
{
	int l = srv_listen();
	atomic_int served = 0, wakeups = 0;
	struct excl x[2];
	pthread_t th[2];

	set_nonblock(l, true);
	for (int i = 0; i < 2; i++) {
		int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
		x[i] = (struct excl){ l, ep, &served, &wakeups };
		ep_add(x[i].ep, l, EPOLLIN | EPOLLEXCLUSIVE, (uint64_t)i);
	}
	STEP("EPOLLEXCLUSIVE cannot be modified");
	struct epoll_event ev = { EPOLLIN | EPOLLEXCLUSIVE, { 0 } };
	CHECK_ERRNO(epoll_ctl(x[0].ep, EPOLL_CTL_MOD, l, &ev), EINVAL);
	STEP("two threads accept");
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, excl_main, &x[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	PW_CHECK_EQ(atomic_load(&served), EXCL_CONNS);
	PW_CHECK(atomic_load(&wakeups) >= EXCL_CONNS, "%d wake-ups", atomic_load(&wakeups));
	close(x[0].ep);
	close(x[1].ep);
	close(l);
}

static void cli_epoll_exclusive(void)
{
	for (uint32_t i = 0; i < EXCL_CONNS; i++) {
		int fd = cli_connect();
		uint32_t id;

		write_all(fd, &i, sizeof(i));
		read_exact(fd, &id, sizeof(id));
		PW_CHECK_EQ(id, i);
		close(fd);
	}
}

/* Registered on the unconnected socket; events must flow after connect(). */
static void epoll_before_connect(bool et)
{
	int fd = cli_socket(SOCK_NONBLOCK);
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];
	double t0 = now_ms();
	int err = -1;
	socklen_t len = sizeof(err);
	char buf[10];

	STEP("register before connect");
	ep_add(ep, fd, EPOLLIN | EPOLLOUT | (et ? EPOLLET : 0), 42);
	CHECK_ERRNO(connect(fd, SA(&g_addr), sizeof(g_addr)), EINPROGRESS);
	STEP("EPOLLOUT once connected");
	for (;;) {
		int n = ep_wait1(ep, out, 3000);
		PW_CHECK(n == 1, "no event within 3 s of connect()");
		PW_CHECK(!(out[0].events & (EPOLLERR | EPOLLHUP)), "events %#x", out[0].events);
		if (out[0].events & EPOLLOUT)
			break;
		PW_CHECK(now_ms() - t0 < 3000, "no EPOLLOUT");
	}
	PW_CHECK_EQ(out[0].data.u64, 42);
	SYS(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
	PW_CHECK_EQ(err, 0);
	note_conn(fd);
	STEP("EPOLLIN when data arrives");
	cmd(fd, OP_SEND, 10, 20, 0);
	t0 = now_ms();
	for (;;) {
		int n = ep_wait1(ep, out, 3000);
		PW_CHECK(n == 1, "no EPOLLIN for the data");
		if (out[0].events & EPOLLIN)
			break;
		PW_CHECK(now_ms() - t0 < 3000, "no EPOLLIN");
	}
	PW_CHECK_EQ(out[0].data.u64, 42);
	read_exact(fd, buf, 10);
	gen_check(&g_srvpat, buf, 10, "data");
	if (et) {
		STEP("edge-triggered: quiet without new data");
		PW_CHECK_EQ(ep_wait1(ep, out, 100), 0);
		cmd(fd, OP_SEND, 10, 0, 0);
		PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
		PW_CHECK(out[0].events & EPOLLIN, "events %#x", out[0].events);
		recv_pat(fd, 10);
	} else {
		STEP("level-triggered: writable stays reported");
		PW_CHECK_EQ(ep_wait1(ep, out, 0), 1);
		PW_CHECK_EQ(out[0].events, EPOLLOUT);
	}
	close(ep);
	close(fd);
}

static void cli_epoll_before_connect(void)
{
	epoll_before_connect(false);
}

static void cli_epoll_before_connect_et(void)
{
	epoll_before_connect(true);
}

/* Level-triggered epoll hands out ready fds round-robin: with maxevents 1
 * and two readable sockets, both are reported. */
static void srv_epoll_fairness(void)
{
	int l = srv_listen();
	int a = srv_accept(l), b = srv_accept(l);

	send_str(a, "0123456789");
	send_str(b, "0123456789");
	expect_eof(a);
	expect_eof(b);
	close(a);
	close(b);
	close(l);
}

static void cli_epoll_fairness(void)
{
	int a = cli_connect(), b = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[1];
	int seen[3] = { 0 };

	wait_fd(a, POLLIN, 3000);
	wait_fd(b, POLLIN, 3000);
	ep_add(ep, a, EPOLLIN, 1);
	ep_add(ep, b, EPOLLIN, 2);
	STEP("epoll_wait(maxevents 1) four times, nothing read");
	for (int i = 0; i < 4; i++) {
		PW_CHECK_EQ(epoll_wait(ep, out, 1, 1000), 1);
		PW_CHECK(out[0].data.u64 == 1 || out[0].data.u64 == 2, "data %llu",
			 (unsigned long long)out[0].data.u64);
		seen[out[0].data.u64]++;
	}
	PW_CHECK(seen[1] && seen[2], "one socket starved: first reported %d times, second %d",
		 seen[1], seen[2]);
	expect_str(a, "0123456789");
	expect_str(b, "0123456789");
	close(ep);
	close(a);
	close(b);
}

/* close() ends the fd's epoll registrations: a new connection that gets the
 * same fd number is not reported to a set it was never added to. */
static void cli_epoll_close_reuse(void)
{
	int a = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];

	ep_add(ep, a, EPOLLIN, 111);
	STEP("close without EPOLL_CTL_DEL");
	close(a);
	int b = cli_connect();
	if (b != a)
		fprintf(stderr, "# fd number not reused (%d, %d)\n", a, b);
	cmd(b, OP_SEND, 10, 0, 0);
	wait_fd(b, POLLIN, 3000);
	STEP("the set must not report the new connection");
	int n = ep_wait1(ep, out, 100);
	PW_CHECK(n == 0, "%d event(s), data %llu: the closed fd's registration is alive", n,
		 (unsigned long long)out[0].data.u64);
	recv_pat(b, 10);
	STEP("register the new connection");
	ep_add(ep, b, EPOLLIN, 222);
	cmd(b, OP_SEND, 10, 0, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].data.u64, 222);
	recv_pat(b, 10);
	close(ep);
	close(b);
}

/* Fill until EAGAIN; the peer starts draining later; we must see POLLOUT. */
enum { O_POLL, O_EPOLL_LT, O_EPOLL_ET };

static bool out_ready(int mode, int fd, int ep, int ms)
{
	struct epoll_event out[4];

	if (mode == O_POLL) {
		struct pollfd p = { fd, POLLOUT, 0 };
		int n = poll(&p, 1, ms);
		PW_CHECK(n >= 0, "poll: %s", strerror(errno));
		PW_CHECK(!(p.revents & (POLLERR | POLLHUP)), "revents %#x", p.revents);
		return n == 1 && (p.revents & POLLOUT);
	}
	int n = ep_wait1(ep, out, ms);
	PW_CHECK(!n || !(out[0].events & (EPOLLERR | EPOLLHUP)), "events %#x", out[0].events);
	return n == 1 && (out[0].events & EPOLLOUT);
}

static void pollout_after_drain(int mode)
{
	int fd = cli_connect();
	int ep = -1;
	uint64_t total = 0, got;
	int rounds = 0;

	if (mode != O_POLL) {
		ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
		ep_add(ep, fd, EPOLLOUT | (mode == O_EPOLL_ET ? EPOLLET : 0), 5);
	}
	cmd(fd, OP_DRAIN, 0, 0, 0);
	set_nonblock(fd, true);
	if (mode == O_EPOLL_ET) {
		STEP("initial edge");
		PW_CHECK(out_ready(mode, fd, ep, 1000), "no initial EPOLLOUT");
	}
	/* Until unwritable for 20 ms (acks may free space after an EAGAIN). */
	for (;;) {
		total += fill_until_eagain(fd, 0);
		STEP("unwritable after EAGAIN?");
		if (!out_ready(mode, fd, ep, 20))
			break;
		PW_CHECK(++rounds < 200, "still writable after %d fills", rounds);
	}
	sync_signal();
	STEP("writable again once the peer drains (bounded)");
	double t0 = now_ms();
	PW_CHECK(out_ready(mode, fd, ep, 5000), "no POLLOUT within 5 s of the peer draining");
	double el = now_ms() - t0;
	fprintf(stderr, "# writable after %.0f ms (%llu bytes queued)\n", el,
		(unsigned long long)total);
	STEP("a write makes progress now");
	char b[1000] = { 0 };
	ssize_t r = send(fd, b, sizeof(b), MSG_NOSIGNAL);
	PW_CHECK(r > 0, "send after POLLOUT: %s", r < 0 ? strerror(errno) : "0");
	total += (uint64_t)r;
	SYS(shutdown(fd, SHUT_WR));
	read_exact(fd, &got, sizeof(got));
	PW_CHECK(got == total, "server read %llu, client sent %llu", (unsigned long long)got,
		 (unsigned long long)total);
	if (ep >= 0)
		close(ep);
	close(fd);
}

static void cli_pollout_drain(void)
{
	pollout_after_drain(O_POLL);
}

static void cli_epollout_lt(void)
{
	pollout_after_drain(O_EPOLL_LT);
}

static void cli_epollout_et(void)
{
	pollout_after_drain(O_EPOLL_ET);
}

/* A pipe written by a thread after @ms. */
struct pipe_writer {
	int fd, ms;
};

static void *pipe_writer_main(void *arg)
{
	struct pipe_writer *w = arg;

	sleep_ms(w->ms);
	if (write(w->fd, "p", 1) != 1)
		abort();
	return NULL;
}

static void cli_epoll_mixed(void)
{
	int fd = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[4];
	int p[2];
	char c;
	pthread_t th;

	SYS(pipe(p));
	ep_add(ep, fd, EPOLLIN, 1);
	ep_add(ep, p[0], EPOLLIN, 2);
	STEP("the pipe wakes the set");
	struct pipe_writer w = { p[1], 100 };
	pthread_create(&th, NULL, pipe_writer_main, &w);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].data.u64, 2);
	pthread_join(th, NULL);
	PW_CHECK_EQ(read(p[0], &c, 1), 1);
	STEP("the socket wakes the set");
	cmd(fd, OP_SEND, 10, 50, 0);
	PW_CHECK_EQ(ep_wait1(ep, out, 3000), 1);
	PW_CHECK_EQ(out[0].data.u64, 1);
	recv_pat(fd, 10);
	STEP("both");
	cmd(fd, OP_SEND, 10, 0, 0);
	PW_CHECK_EQ(write(p[1], "q", 1), 1);
	bool seen[3] = { false };
	double t0 = now_ms();
	while (!(seen[1] && seen[2])) {
		int n = ep_wait1(ep, out, 3000);
		for (int i = 0; i < n; i++) {
			PW_CHECK(out[i].data.u64 == 1 || out[i].data.u64 == 2, "data %llu",
				 (unsigned long long)out[i].data.u64);
			seen[out[i].data.u64] = true;
		}
		PW_CHECK(now_ms() - t0 < 3000, "socket %d pipe %d", seen[1], seen[2]);
	}
	recv_pat(fd, 10);
	PW_CHECK_EQ(read(p[0], &c, 1), 1);
	PW_CHECK_EQ(ep_wait1(ep, out, 50), 0);
	close(ep);
	close(p[0]);
	close(p[1]);
	close(fd);
}

static void cli_poll_mixed(void)
{
	int fd = cli_connect();
	int p[2];
	char c;
	pthread_t th;
	struct pollfd pf[3];
	fd_set r;
	struct timeval tv;

	SYS(pipe(p));
	pf[0] = (struct pollfd){ fd, POLLIN, 0 };
	pf[1] = (struct pollfd){ -1, POLLIN, 0 };
	pf[2] = (struct pollfd){ p[0], POLLIN, 0 };
	STEP("poll: the pipe wakes the set");
	struct pipe_writer w = { p[1], 100 };
	pthread_create(&th, NULL, pipe_writer_main, &w);
	PW_CHECK_EQ(poll(pf, 3, 3000), 1);
	PW_CHECK(pf[0].revents == 0 && pf[1].revents == 0 && pf[2].revents == POLLIN,
		 "revents %#x %#x %#x", pf[0].revents, pf[1].revents, pf[2].revents);
	pthread_join(th, NULL);
	PW_CHECK_EQ(read(p[0], &c, 1), 1);
	STEP("poll: the socket wakes the set");
	cmd(fd, OP_SEND, 10, 50, 0);
	PW_CHECK_EQ(poll(pf, 3, 3000), 1);
	PW_CHECK(pf[0].revents == POLLIN && pf[2].revents == 0, "revents %#x %#x", pf[0].revents,
		 pf[2].revents);
	recv_pat(fd, 10);
	STEP("select: the pipe wakes the set");
	pthread_create(&th, NULL, pipe_writer_main, &w);
	FD_ZERO(&r);
	FD_SET(fd, &r);
	FD_SET(p[0], &r);
	tv = (struct timeval){ 3, 0 };
	PW_CHECK_EQ(select((fd > p[0] ? fd : p[0]) + 1, &r, NULL, NULL, &tv), 1);
	PW_CHECK(FD_ISSET(p[0], &r) && !FD_ISSET(fd, &r), "wrong fd set");
	pthread_join(th, NULL);
	PW_CHECK_EQ(read(p[0], &c, 1), 1);
	STEP("select: the socket wakes the set");
	cmd(fd, OP_SEND, 10, 50, 0);
	FD_ZERO(&r);
	FD_SET(fd, &r);
	FD_SET(p[0], &r);
	tv = (struct timeval){ 3, 0 };
	PW_CHECK_EQ(select((fd > p[0] ? fd : p[0]) + 1, &r, NULL, NULL, &tv), 1);
	PW_CHECK(FD_ISSET(fd, &r) && !FD_ISSET(p[0], &r), "wrong fd set");
	recv_pat(fd, 10);
	close(p[0]);
	close(p[1]);
	close(fd);
}

/* ================= processes, threads, signals ================= */

/* A worker sleeps in epoll_wait on a set with nothing ready; another thread
 * adds a connection that already holds the client's request: the worker
 * wakes (thread-pool servers hand new connections over this way). */
struct ep_worker {
	int ep;
	int n;
	double woke;
	struct epoll_event ev;
};

static void *ep_worker_main(void *arg)
{
	struct ep_worker *w = arg;

	w->n = epoll_wait(w->ep, &w->ev, 1, 3000);
	w->woke = now_ms();
	return NULL;
}

static void srv_epoll_add_while_waiting(void)
{
	int l = srv_listen();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct ep_worker w = { ep, 0, 0, { 0, { 0 } } };
	pthread_t th;

	STEP("the worker waits on an empty set");
	pthread_create(&th, NULL, ep_worker_main, &w);
	wait_fd(l, POLLIN, 10000);
	int fd = srv_accept(l);
	sleep_ms(150); /* the request is there, the worker asleep */
	STEP("add the connection from the main thread");
	double t0 = now_ms();
	ep_add(w.ep, fd, EPOLLIN, (uint64_t)fd);
	pthread_join(th, NULL);
	PW_CHECK(w.n == 1, "the worker did not wake for a readable fd added to its set (n %d)",
		 w.n);
	PW_CHECK(w.woke - t0 < 1000, "the worker woke %.0f ms after the add", w.woke - t0);
	PW_CHECK_EQ(w.ev.data.u64, (uint64_t)fd);
	expect_str(fd, "req");
	send_str(fd, "rsp");
	expect_eof(fd);
	close(w.ep);
	close(fd);
	close(l);
}

static void cli_epoll_add_while_waiting(void)
{
	int fd = cli_connect();

	send_str(fd, "req");
	STEP("reply");
	expect_str(fd, "rsp");
	close(fd);
}

/* shutdown(SHUT_RDWR) from one thread wakes another blocked in recv. */
struct blocked_reader {
	int fd;
	ssize_t r;
	int err;
	atomic_bool done;
	double at;
};

static void *blocked_reader_main(void *arg)
{
	struct blocked_reader *b = arg;
	char buf[10];

	b->r = recv(b->fd, buf, sizeof(buf), MSG_WAITALL);
	b->err = errno;
	b->at = now_ms();
	atomic_store(&b->done, true);
	return NULL;
}

static void srv_shutdown_wakes_reader(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	STEP("EOF from the client's SHUT_RDWR; keep the connection open");
	expect_eof(fd);
	sleep_ms(1500);
	close(fd);
	close(l);
}

static void cli_shutdown_wakes_reader(void)
{
	int fd = cli_connect();
	struct blocked_reader b = { fd, 0, 0, false, 0 };
	pthread_t th;

	pthread_create(&th, NULL, blocked_reader_main, &b);
	sleep_ms(200);
	STEP("shutdown(SHUT_RDWR) while another thread is blocked in recv");
	double t0 = now_ms();
	SYS(shutdown(fd, SHUT_RDWR));
	while (!atomic_load(&b.done) && now_ms() - t0 < 1000)
		sleep_ms(5);
	PW_CHECK(atomic_load(&b.done), "the blocked recv did not return within 1 s of shutdown");
	pthread_join(th, NULL);
	PW_CHECK(b.r == 0, "the blocked recv returned %zd (%s), want 0", b.r,
		 b.r < 0 ? strerrorname_np(b.err) : "");
	close(fd);
}

/* A thread blocked in recv does not make another thread's MSG_DONTWAIT recv
 * block. */
static void cli_dontwait_while_blocked(void)
{
	int fd = cli_connect();
	struct blocked_reader b = { fd, 0, 0, false, 0 };
	pthread_t th;
	char c;

	cmd(fd, OP_SEND, 10, 800, 0);
	pthread_create(&th, NULL, blocked_reader_main, &b);
	sleep_ms(100);
	STEP("recv(MSG_DONTWAIT) while another thread is blocked in recv");
	double t0 = now_ms();
	ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
	int e = errno;
	double el = now_ms() - t0;
	PW_CHECK(el < 300, "recv(MSG_DONTWAIT) took %.0f ms: it waited for the other thread", el);
	PW_CHECK(r == -1 && e == EAGAIN, "recv(MSG_DONTWAIT): %zd %s", r, strerrorname_np(e));
	pthread_join(th, NULL);
	PW_CHECK(b.r == 10, "the blocked recv returned %zd", b.r);
	close(fd);
}

/* After fork, parent and child write at full speed at the same time. TCP
 * may interleave their sends anywhere, so each byte names its writer (even:
 * parent, odd: child) and carries that writer's counter: the reader checks
 * every byte and both totals, whatever the interleaving. */
#define CW_BYTES (8u << 20)

static void cw_write(int fd, unsigned who)
{
	static char buf[4096];
	unsigned seq = 0;
	size_t left = CW_BYTES, k = 1;

	while (left) {
		k = (k * 13 + 7) % 64 + 1; /* many small writes: more collisions */
		if (k > left)
			k = left;
		for (size_t i = 0; i < k; i++)
			buf[i] = (char)(((seq++ % 128) << 1) | who);
		write_all(fd, buf, k);
		left -= k;
	}
}

static void srv_fork_concurrent_writers(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	static unsigned char buf[65536];
	unsigned seq[2] = { 0, 0 };

	STEP("read both writers' bytes until EOF");
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		PW_CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		for (ssize_t i = 0; i < r; i++) {
			unsigned who = buf[i] & 1;
			PW_CHECK((buf[i] >> 1) == seq[who] % 128,
				 "%s byte %u is %u, want %u: bytes lost, doubled or overwritten",
				 who ? "child" : "parent", seq[who], buf[i] >> 1, seq[who] % 128);
			seq[who]++;
		}
	}
	PW_CHECK(seq[0] == CW_BYTES && seq[1] == CW_BYTES, "got %u parent and %u child bytes",
		 seq[0], seq[1]);
	close(fd);
	close(l);
}

static void cli_fork_concurrent_writers(void)
{
	int fd = cli_connect();
	int go[2], st;
	char c;

	SYS(pipe(go));
	pid_t pid = fork_as("client-child");
	if (pid == 0) {
		STEP("child waits for the start");
		PW_CHECK_EQ(read(go[0], &c, 1), 1);
		STEP("child writes while the parent writes");
		cw_write(fd, 1);
		g_done = true;
		_exit(0);
	}
	STEP("parent and child write at the same time");
	PW_CHECK_EQ(write(go[1], "g", 1), 1);
	cw_write(fd, 0);
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	close(go[0]);
	close(go[1]);
	close(fd);
}

#define FORK_MSGS 100

static void cli_fork_rw(void)
{
	int fd = cli_connect();
	char m[10], e[FORK_MSGS * 10];
	int st;

	pid_t pid = fork_as("client-child");
	if (pid == 0) {
		for (int i = 0; i < FORK_MSGS; i++) {
			snprintf(m, sizeof(m), "child-%03d", i);
			write_all(fd, m, sizeof(m));
		}
		close(fd);
		g_done = true;
		exit(0);
	}
	STEP("parent reads the echo of the child's writes");
	read_exact(fd, e, sizeof(e));
	for (int i = 0; i < FORK_MSGS; i++) {
		snprintf(m, sizeof(m), "child-%03d", i);
		PW_CHECK(!memcmp(e + i * 10, m, 10), "message %d is %.10s", i, e + i * 10);
	}
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	STEP("parent keeps using the socket");
	send_str(fd, "parent-end");
	expect_str(fd, "parent-end");
	close(fd);
}

static void cli_fork_parent_close(void)
{
	int fd = cli_connect();
	int st;

	pid_t pid = fork_as("client-child");
	if (pid == 0) {
		sleep_ms(100);
		STEP("the child keeps using the socket after the parent closed");
		send_str(fd, "hello");
		expect_str(fd, "hello");
		send_str(fd, "bye");
		expect_str(fd, "bye");
		close(fd);
		g_done = true;
		exit(0);
	}
	STEP("parent closes its copy");
	close(fd);
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* nginx-style: the listener is created, then workers are forked and accept. */
#define WORKERS	     2
#define WORKER_CONNS 4

/* @parent_closes: the parent closes its copy once the workers run (a
 * prefork server whose master does not accept). */
static void fork_listener_run(bool parent_closes)
{
	int l = srv_listen();
	int done[2];
	pid_t w[WORKERS];

	SYS(pipe(done));
	for (int i = 0; i < WORKERS; i++) {
		w[i] = fork_as("server-worker");
		if (w[i] == 0) {
			close(done[0]);
			for (;;) {
				int fd = srv_accept(l);
				uint32_t id, rep[2];
				read_exact(fd, &id, sizeof(id));
				rep[0] = id;
				rep[1] = (uint32_t)getpid();
				write_all(fd, rep, sizeof(rep));
				expect_eof(fd);
				close(fd);
				PW_CHECK_EQ(write(done[1], "x", 1), 1);
			}
		}
	}
	close(done[1]);
	if (parent_closes) {
		STEP("the parent closes the listener");
		close(l);
	}
	STEP("wait for the workers to serve the connections");
	for (int i = 0; i < WORKER_CONNS; i++) {
		char c;
		wait_fd(done[0], POLLIN, 10000);
		PW_CHECK(read(done[0], &c, 1) == 1, "a worker died");
	}
	for (int i = 0; i < WORKERS; i++) {
		int st;
		kill(w[i], SIGKILL);
		SYS(waitpid(w[i], &st, 0));
		PW_CHECK(WIFSIGNALED(st), "worker %d exited on its own, status %#x", i, st);
	}
	if (!parent_closes)
		close(l);
}

static void srv_fork_listener(void)
{
	fork_listener_run(false);
}

static void srv_fork_listener_parent_closes(void)
{
	fork_listener_run(true);
}

static void cli_fork_listener(void)
{
	for (uint32_t i = 0; i < WORKER_CONNS; i++) {
		int fd = cli_connect();
		uint32_t rep[2];

		write_all(fd, &i, sizeof(i));
		read_exact(fd, rep, sizeof(rep));
		PW_CHECK_EQ(rep[0], i);
		fprintf(stderr, "# connection %u served by worker %u\n", i, rep[1]);
		close(fd);
	}
}

/* One thread reads while another writes the same socket, 64 MiB each way. */
#define DUPLEX_BYTES (64ull << 20)

struct duplex {
	int fd;
	uint64_t seed;
};

static void *duplex_writer(void *arg)
{
	struct duplex *d = arg;
	static char buf[65536];
	struct gen g;
	uint64_t left = DUPLEX_BYTES;
	size_t k = 1;

	gen_init(&g, d->seed);
	while (left) {
		k = (k * 7 + 4093) % sizeof(buf) + 1; /* varied sizes */
		if (k > left)
			k = (size_t)left;
		gen_fill(&g, buf, k);
		write_all(d->fd, buf, k);
		left -= k;
	}
	SYS(shutdown(d->fd, SHUT_WR));
	return NULL;
}

static void duplex(int fd, uint64_t tx_seed, uint64_t rx_seed)
{
	static char buf[65536];
	struct duplex d = { fd, tx_seed };
	struct gen g;
	uint64_t got = 0;
	pthread_t th;
	double t0 = now_ms();

	gen_init(&g, rx_seed);
	pthread_create(&th, NULL, duplex_writer, &d);
	STEP("read 64 MiB while the other thread writes 64 MiB");
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		PW_CHECK(r >= 0, "read: %s", strerror(errno));
		if (r == 0)
			break;
		gen_check(&g, buf, (size_t)r, "duplex stream");
		got += (uint64_t)r;
	}
	PW_CHECK(got == DUPLEX_BYTES, "EOF after %llu bytes", (unsigned long long)got);
	pthread_join(th, NULL);
	fprintf(stderr, "# duplex: 2 x 64 MiB in %.0f ms\n", now_ms() - t0);
	close(fd);
}

static void srv_threads_duplex(void)
{
	int l = srv_listen();

	duplex(srv_accept(l), 2, 1);
	close(l);
}

static void cli_threads_duplex(void)
{
	duplex(cli_connect(), 1, 2);
}

static void cli_eintr(void)
{
	int fd = cli_connect();
	char b[10];
	pthread_t th;

	set_handler(SIGUSR1, count_usr1, 0); /* no SA_RESTART */
	struct kicker k = { pthread_self(), 200, SIGUSR1, false };
	pthread_create(&th, NULL, kicker_main, &k);
	STEP("blocking recv interrupted by a signal without SA_RESTART");
	double t0 = now_ms();
	CHECK_ERRNO(recv(fd, b, sizeof(b), 0), EINTR);
	PW_CHECK(now_ms() - t0 >= 150, "EINTR after %.0f ms", now_ms() - t0);
	PW_CHECK_EQ(g_usr1, 1);
	pthread_join(th, NULL);
	STEP("the socket still works");
	cmd(fd, OP_SEND, 10, 0, 0);
	recv_pat(fd, 10);
	close(fd);
}

static void cli_eintr_restart(void)
{
	int fd = cli_connect();
	char b[10];
	pthread_t th;

	set_handler(SIGUSR1, count_usr1, SA_RESTART);
	cmd(fd, OP_SEND, 10, 600, 0);
	struct kicker k = { pthread_self(), 200, SIGUSR1, false };
	pthread_create(&th, NULL, kicker_main, &k);
	STEP("blocking recv with SA_RESTART: restarted after the handler");
	double t0 = now_ms();
	ssize_t r = recv(fd, b, sizeof(b), MSG_WAITALL);
	PW_CHECK(r == 10, "recv returned %zd (%s), want 10", r,
		 r < 0 ? strerrorname_np(errno) : "");
	PW_CHECK(now_ms() - t0 >= 450, "returned after %.0f ms", now_ms() - t0);
	PW_CHECK_EQ(g_usr1, 1);
	pthread_join(th, NULL);
	gen_check(&g_srvpat, b, 10, "data");
	close(fd);
}

/* ---- kill -9 ---- */

/* The peer was killed while streaming to us: EOF (or reset) soon after its
 * last bytes, then writes fail soon. */
static void survivor_reads(int fd)
{
	static char buf[65536];
	double last = now_ms();
	uint64_t total = 0;
	int e = 0;

	STEP("read until the killed peer's end");
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0) {
			total += (uint64_t)r;
			last = now_ms();
			continue;
		}
		if (r < 0)
			e = errno;
		PW_CHECK(r == 0 || e == ECONNRESET, "read: %s, want EOF or ECONNRESET",
			 strerror(e));
		break;
	}
	double gap = now_ms() - last;
	fprintf(stderr, "# survivor: %llu bytes, then %s %.0f ms after the last\n",
		(unsigned long long)total, e ? "ECONNRESET" : "EOF", gap);
	PW_CHECK(total > 0, "no data before the end");
	PW_CHECK(gap < 2000, "end of stream %.0f ms after the last data", gap);
	e = write_until_fail(fd, true);
	PW_CHECK(e == EPIPE || e == ECONNRESET, "write failed with %s", strerrorname_np(e));
	close(fd);
}

static void stream_forever(int fd)
{
	static char buf[4096];

	memset(buf, 'k', sizeof(buf));
	for (;;)
		write_all(fd, buf, sizeof(buf));
}

static void kill_and_reap(pid_t pid)
{
	int st;

	STEP("kill -9 the peer process");
	SYS(kill(pid, SIGKILL));
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "peer status %#x", st);
}

static void srv_kill_client(void)
{
	int l = srv_listen();

	survivor_reads(srv_accept(l));
	close(l);
}

static void cli_kill_client(void)
{
	pid_t pid = fork_as("client-child");

	if (pid == 0) {
		stream_forever(cli_connect());
	}
	sleep_ms(400);
	kill_and_reap(pid);
}

static void srv_kill_server(void)
{
	int l = srv_listen();
	int sync[2];
	char c;

	SYS(pipe(sync));
	pid_t pid = fork_as("server-child");
	if (pid == 0) {
		int fd = srv_accept(l);
		PW_CHECK_EQ(write(sync[1], "a", 1), 1);
		stream_forever(fd);
	}
	wait_fd(sync[0], POLLIN, 10000);
	PW_CHECK_EQ(read(sync[0], &c, 1), 1);
	sleep_ms(300);
	kill_and_reap(pid);
	close(l);
}

static void cli_kill_server(void)
{
	survivor_reads(cli_connect());
}

/* The survivor is blocked writing to a peer that does not read; the peer is
 * killed: the write fails, it does not hang. */
static void srv_kill_reader(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	static char buf[65536];
	uint64_t total = 0;
	char b;

	STEP("blocking writes to a peer that does not read");
	for (;;) {
		double t0 = now_ms();
		ssize_t r = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		double el = now_ms() - t0;
		if (r > 0) {
			total += (uint64_t)r;
			continue;
		}
		PW_CHECK(r < 0 && (errno == EPIPE || errno == ECONNRESET), "send: %zd %s", r,
			 strerror(errno));
		fprintf(stderr, "# blocked writer failed after %.0f ms (%llu bytes)\n", el,
			(unsigned long long)total);
		PW_CHECK(el < 2500, "the blocked write took %.0f ms to fail", el);
		break;
	}
	STEP("read after the peer died");
	ssize_t r = read(fd, &b, 1);
	PW_CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "read: %zd %s", r,
		 r < 0 ? strerror(errno) : "data");
	close(fd);
	close(l);
}

static void cli_kill_reader(void)
{
	pid_t pid = fork_as("client-child");

	if (pid == 0) {
		(void)cli_connect();
		for (;;)
			pause();
	}
	sleep_ms(500);
	kill_and_reap(pid);
}

/* ================= plain traffic (mixed peers, router scenarios) ================= */

static void cli_echo(void)
{
	static const size_t sizes[] = { 1, 100, 1000, 10000, 100000, 1000000 };
	static char out[16384], in[16384];
	int fd = cli_connect();
	struct gen g;

	gen_init(&g, 31);
	STEP("echo");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (size_t left = sizes[i]; left;) {
			size_t k = left < sizeof(out) ? left : sizeof(out);
			gen_fill(&g, out, k);
			write_all(fd, out, k);
			read_exact(fd, in, k);
			PW_CHECK(!memcmp(in, out, k), "echo differs");
			left -= k;
		}
	}
	close(fd);
}

static void cli_stream_long(void)
{
	static char out[8192], in[8192];
	const char *v = getenv("PW_SEM_DURATION_MS");
	int ms = v && *v ? atoi(v) : 1500;
	int fd = cli_connect();
	struct gen g;
	double t0 = now_ms();
	unsigned long n = 0;

	gen_init(&g, 77);
	STEP("ping-pong for the duration");
	while (now_ms() - t0 < ms) {
		size_t k = 1 + (n * 7919) % sizeof(out);
		gen_fill(&g, out, k);
		write_all(fd, out, k);
		read_exact(fd, in, k);
		PW_CHECK(!memcmp(in, out, k), "echo %lu differs", n);
		n++;
	}
	fprintf(stderr, "# stream_long: %lu round trips in %d ms\n", n, ms);
	close(fd);
}

/* ================= extras: ways to reach a socket without the socket API ================= */

/* stdio on a socket: fdopen, fgets, fputs, fclose. */
static void srv_stdio(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	FILE *f = fdopen(fd, "r+");
	char line[64];

	PW_CHECK(f != NULL, "fdopen: %s", strerror(errno));
	STEP("fgets from the socket");
	PW_CHECK(fgets(line, sizeof(line), f) != NULL, "fgets: %s",
		 ferror(f) ? strerror(errno) : "EOF");
	PW_CHECK(!strcmp(line, "hello stdio\n"), "got \"%s\"", line);
	STEP("fputs to the socket");
	fprintf(f, "echo: %s", line);
	PW_CHECK(fflush(f) == 0, "fflush: %s", strerror(errno));
	PW_CHECK(fgets(line, sizeof(line), f) != NULL, "fgets: EOF or error");
	PW_CHECK(!strcmp(line, "bye\n"), "got \"%s\"", line);
	STEP("fclose");
	fclose(f);
	close(l);
}

static void cli_stdio(void)
{
	int fd = cli_connect();

	STEP("send a line, read the server's stdio reply");
	send_str(fd, "hello stdio\n");
	expect_str(fd, "echo: hello stdio\n");
	send_str(fd, "bye\n");
	STEP("EOF after the server's fclose");
	expect_eof(fd);
	close(fd);
}

/* inetd-style: the accepted socket becomes stdin/stdout of an exec'd program. */
static int exec_echo_main(void)
{
	static char buf[4096];

	g_role = "exec-echo";
	g_test = "exec_inherit";
	note_conn(0);
	for (;;) {
		ssize_t r = read(0, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		PW_CHECK(r >= 0, "read(0): %s", strerror(errno));
		if (r == 0)
			break;
		write_all(1, buf, (size_t)r);
	}
	g_done = true;
	return 0;
}

static void srv_exec_inherit(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	int st;

	pid_t pid = fork_as(NULL);
	if (pid == 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		close(fd);
		close(l);
		alarm(8);
		execl(g_self, g_self, "exec-echo", (char *)NULL);
		_exit(127);
	}
	close(fd);
	STEP("wait for the exec'd echo program");
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exec'd program: status %#x", st);
	close(l);
}

static void cli_exec_inherit(void)
{
	int fd = cli_connect();

	send_str(fd, "hello exec\n");
	STEP("echo from the exec'd program");
	expect_str(fd, "hello exec\n");
	SYS(shutdown(fd, SHUT_WR));
	expect_eof(fd);
	close(fd);
}

/* socat ...,nofork and systemd Accept=yes: the accepting process itself puts
 * the connection on fds 0 and 1 and exec()s the handler, no fork. */
static void srv_exec_nofork(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	close(l);
	SYS(dup2(fd, 0));
	SYS(dup2(fd, 1));
	close(fd);
	alarm(8);
	execl(g_self, g_self, "exec-echo", (char *)NULL);
	PW_FAIL("execl: %s", strerror(errno));
}

/* The same, with a stream far larger than a ring (the exec'd program holds
 * the connection on two fds: 0 and 1). */
#define EXEC_STREAM (4u << 20)

static void *exec_stream_writer(void *arg)
{
	struct gen g;

	gen_init(&g, 5);
	send_gen(*(int *)arg, &g, EXEC_STREAM);
	return NULL;
}

static void cli_exec_stream(void)
{
	int fd = cli_connect();
	pthread_t th;
	struct gen g;

	STEP("4 MiB through the exec'd echo program");
	PW_CHECK_EQ(pthread_create(&th, NULL, exec_stream_writer, &fd), 0);
	sleep_ms(300); /* the echo's writes fill the way back and wait */
	gen_init(&g, 5);
	recv_gen(fd, &g, EXEC_STREAM, "echo from the exec'd program");
	PW_CHECK_EQ(pthread_join(th, NULL), 0);
	SYS(shutdown(fd, SHUT_WR));
	expect_eof(fd);
	close(fd);
}

/* close_range() closes the socket; the fd number is reused by a pipe. (A
 * raw syscall(SYS_close_range) is out of any preload's reach.) */
static void srv_close_range(void)
{
	if (!PW_SEM_HAVE_CLOSE_RANGE)
		PW_SKIP("this libc has no close_range()");
	int l = srv_listen();
	int fd = srv_accept(l);
	int p[2];
	char b[4];

	expect_str(fd, "hi");
	STEP("close_range (the glibc function, as programs call it)");
#if PW_SEM_HAVE_CLOSE_RANGE
	SYS(close_range((unsigned)fd, (unsigned)fd, 0));
#endif
	SYS(pipe(p));
	STEP("a pipe on the reused fd number");
	PW_CHECK(p[0] == fd || p[1] == fd, "the fd number %d was not reused (%d %d)", fd, p[0],
		 p[1]);
	PW_CHECK_EQ(write(p[1], "pipe", 4), 4);
	ssize_t r = read(p[0], b, 4);
	PW_CHECK(r == 4 && !memcmp(b, "pipe", 4), "read from the pipe: %zd %s", r,
		 r < 0 ? strerror(errno) : "");
	close(p[0]);
	close(p[1]);
	close(l);
}

static void cli_close_range(void)
{
	if (!PW_SEM_HAVE_CLOSE_RANGE)
		PW_SKIP("this libc has no close_range()");
	int fd = cli_connect();

	send_str(fd, "hi");
	STEP("EOF after the peer's close_range");
	expect_eof(fd);
	close(fd);
}

/* ================= issue 9: what real programs do ================= */

/*
 * A peer process that exits or is killed without close(): every way of
 * waiting sees the end of stream within 100 ms, and burns no CPU meanwhile
 * (TCP: the kernel closes the dead process's socket and sends FIN).
 */
enum { WD_POLL, WD_SELECT, WD_EPOLL_LT, WD_EPOLL_ET };
enum { DIE_EXIT, DIE_KILL };

static double cpu_ms(void)
{
	struct rusage ru;

	SYS(getrusage(RUSAGE_SELF, &ru));
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Wait with @w until @fd is readable; the time waited, or -1 after @ms. */
static double wait_readable(int fd, int w, int ms)
{
	double t0 = now_ms();
	int n;

	if (w == WD_POLL || w == WD_SELECT) {
		short re = wait_with(w == WD_POLL ? W_POLL : W_SELECT, fd, POLLIN, ms);
		return re & POLLIN ? now_ms() - t0 : -1;
	}
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event ev = { EPOLLIN | EPOLLRDHUP | (w == WD_EPOLL_ET ? EPOLLET : 0),
				  { .u64 = 7 } },
			   out[2];

	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	do
		n = epoll_wait(ep, out, 2, ms);
	while (n < 0 && errno == EINTR);
	PW_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
	close(ep);
	PW_CHECK(n == 0 || out[0].data.u64 == 7, "epoll data %llu",
		 (unsigned long long)out[0].data.u64);
	return n == 1 && (out[0].events & EPOLLIN) ? now_ms() - t0 : -1;
}

static const char *const g_wd_names[] = { "poll", "select", "epoll (LT)", "epoll (ET)" };

/* Send two bytes, then die 300 ms later without closing. */
static void die_after_hi(int fd, int how)
{
	write_all(fd, "hi", 2);
	sleep_ms(300);
	if (how == DIE_KILL)
		raise(SIGKILL);
	_exit(0);
}

/* We read the peer's two bytes; it dies 300 ms later: EOF seen in time. */
static void see_death(int fd, int w, int how)
{
	char b[2];

	STEP(how == DIE_KILL ? "wait for the killed peer's EOF" : "wait for the exited peer's EOF");
	read_exact(fd, b, 2);
	double c0 = cpu_ms();
	double waited = wait_readable(fd, w, 4000);
	double cpu = cpu_ms() - c0;

	fprintf(stderr, "# %s: peer %s seen after %.0f ms (it died at ~300), %.1f ms CPU\n",
		g_wd_names[w], how == DIE_KILL ? "killed" : "exited", waited, cpu);
	PW_CHECK(waited >= 0, "%s: the peer's death not seen in 4 s", g_wd_names[w]);
	PW_CHECK(waited >= 200, "%s: readable after %.0f ms, before the peer died", g_wd_names[w],
		 waited);
	PW_CHECK(waited <= 400, "%s: the peer's death seen %.0f ms after it (want <= 100)",
		 g_wd_names[w], waited - 300);
	PW_CHECK(cpu <= 60, "%s: %.0f ms of CPU burnt waiting %.0f ms", g_wd_names[w], cpu, waited);
	expect_eof(fd);
	close(fd);
}

static void reap_child(pid_t pid)
{
	int st;

	SYS(waitpid(pid, &st, 0));
}

static void srv_peer_death(int w)
{
	int l = srv_listen();

	/* Fork per connection: the child dies, the parent closed its copy. */
	for (int how = DIE_EXIT; how <= DIE_KILL; how++) {
		int fd = srv_accept(l);
		pid_t pid = fork_as(NULL);

		if (pid == 0) {
			close(l);
			die_after_hi(fd, how);
		}
		close(fd);
		reap_child(pid);
	}
	/* The client's child dies: this server sees it, and serves on. */
	for (int how = DIE_EXIT; how <= DIE_KILL; how++)
		see_death(srv_accept(l), w, how);
	pingpong_srv(srv_accept(l));
	close(l);
}

static void cli_peer_death(int w)
{
	for (int how = DIE_EXIT; how <= DIE_KILL; how++)
		see_death(cli_connect(), w, how);
	for (int how = DIE_EXIT; how <= DIE_KILL; how++) {
		pid_t pid = fork_as("client-child");

		if (pid == 0) {
			die_after_hi(cli_connect(), how);
		}
		reap_child(pid);
	}
	STEP("the server still serves");
	int fd = cli_connect();
	pingpong_cli(fd);
	close(fd);
}

static void srv_death_poll(void)
{
	srv_peer_death(WD_POLL);
}
static void cli_death_poll(void)
{
	cli_peer_death(WD_POLL);
}
static void srv_death_select(void)
{
	srv_peer_death(WD_SELECT);
}
static void cli_death_select(void)
{
	cli_peer_death(WD_SELECT);
}
static void srv_death_epoll_lt(void)
{
	srv_peer_death(WD_EPOLL_LT);
}
static void cli_death_epoll_lt(void)
{
	cli_peer_death(WD_EPOLL_LT);
}
static void srv_death_epoll_et(void)
{
	srv_peer_death(WD_EPOLL_ET);
}
static void cli_death_epoll_et(void)
{
	cli_peer_death(WD_EPOLL_ET);
}

/*
 * A server that forks a child per connection; the parent closes its copy at
 * once and the child exits after its reply, without close(). Every client,
 * waiting in poll, sees its reply and then EOF.
 */
#define FORK_CONNS 40

static void srv_fork_per_conn(void)
{
	int l = srv_socket();
	pid_t kids[FORK_CONNS];

	/* Room for every client: this test is about the children, not the
	 * backlog (a full one makes the kernel drop SYNs, and podwired then
	 * leaves the connection to the kernel). */
	srv_bind_listen(l, FORK_CONNS);
	for (int i = 0; i < FORK_CONNS; i++) {
		int fd = srv_accept(l);
		pid_t pid = fork_as("server-child");

		if (pid == 0) {
			char req[16], rep[32];

			close(l);
			read_exact(fd, req, sizeof(req));
			snprintf(rep, sizeof(rep), "re:%.16s", req);
			write_all(fd, rep, strlen(rep));
			_exit(0);
		}
		close(fd);
		kids[i] = pid;
	}
	for (int i = 0; i < FORK_CONNS; i++)
		reap_child(kids[i]);
	close(l);
}

static void cli_fork_per_conn(void)
{
	struct pollfd p[FORK_CONNS];
	char got[FORK_CONNS][32];
	size_t len[FORK_CONNS];
	int open = FORK_CONNS;

	for (int i = 0; i < FORK_CONNS; i++) {
		char req[17];

		p[i] = (struct pollfd){ cli_connect(), POLLIN, 0 };
		snprintf(req, sizeof(req), "request %08d", i);
		write_all(p[i].fd, req, 16);
		len[i] = 0;
	}
	STEP("poll every connection for its reply and EOF");
	double t0 = now_ms();
	while (open) {
		int n = poll(p, FORK_CONNS, 3000);
		PW_CHECK(n > 0, "poll: %d (%s); %d of %d connections never saw EOF", n,
			 n < 0 ? strerror(errno) : "timeout", open, FORK_CONNS);
		for (int i = 0; i < FORK_CONNS; i++) {
			if (p[i].fd < 0 || !p[i].revents)
				continue;
			ssize_t r = read(p[i].fd, got[i] + len[i], sizeof(got[i]) - 1 - len[i]);
			PW_CHECK(r >= 0, "read: %s", strerror(errno));
			if (r > 0) {
				len[i] += (size_t)r;
				continue;
			}
			got[i][len[i]] = '\0';
			char want[32];
			snprintf(want, sizeof(want), "re:request %08d", i);
			PW_CHECK(!strcmp(got[i], want), "connection %d: \"%s\", want \"%s\"", i,
				 got[i], want);
			close(p[i].fd);
			p[i].fd = -1;
			open--;
		}
	}
	fprintf(stderr, "# %d forked servers answered and ended in %.0f ms\n", FORK_CONNS,
		now_ms() - t0);
}

/*
 * An edge-triggered writer (nginx, proxies): a write that takes only part of
 * the buffer means "full"; the next EPOLLOUT edge says when to go on.
 */
#define ET_TOTAL (16u << 20)
#define ET_CHUNK (1u << 20)

static void srv_epoll_et_partial(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	struct gen g;

	gen_init(&g, 99);
	STEP("read 16 MiB");
	recv_gen(fd, &g, ET_TOTAL, "edge-triggered writer's stream");
	expect_eof(fd);
	send_str(fd, "ok");
	close(fd);
	close(l);
}

/* With write(2), or with sendfile(2) from a file (nginx's static files). */
static void epoll_et_partial(bool use_sendfile)
{
	int fd = cli_connect();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	char *buf = malloc(ET_CHUNK);
	struct epoll_event out[2];
	unsigned partial = 0, edges = 0;
	int file = -1;
	struct gen g;

	PW_CHECK(buf != NULL, "malloc");
	if (use_sendfile) {
		char path[] = "/tmp/pw-sem-sendfile.XXXXXX";
		file = (int)SYS(mkstemp(path));
		unlink(path);
	}
	set_nonblock(fd, true);
	ep_add(ep, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, 1);
	gen_init(&g, 99);
	STEP("send 16 MiB in 1 MiB calls, waiting for EPOLLOUT after each short one");
	for (size_t sent = 0; sent < ET_TOTAL;) {
		gen_fill(&g, buf, ET_CHUNK);
		if (use_sendfile) {
			SYS(ftruncate(file, 0));
			PW_CHECK_EQ(pwrite(file, buf, ET_CHUNK, 0), ET_CHUNK);
		}
		for (size_t off = 0; off < ET_CHUNK;) {
			off_t foff = (off_t)off;
			ssize_t r = use_sendfile ? sendfile(fd, file, &foff, ET_CHUNK - off)
						 : write(fd, buf + off, ET_CHUNK - off);
			if (r > 0) {
				off += (size_t)r;
				sent += (size_t)r;
				if (off == ET_CHUNK)
					break;
				partial++; /* short: the socket is full now */
			} else {
				PW_CHECK(r < 0 && errno == EAGAIN, "write: %zd %s", r,
					 strerror(errno));
			}
			for (;;) {
				int n = epoll_wait(ep, out, 2, 5000);
				if (n < 0 && errno == EINTR)
					continue;
				PW_CHECK(n == 1,
					 "no EPOLLOUT edge in 5 s after a short write "
					 "(%zu bytes sent, %u edges so far)",
					 sent, edges);
				if (out[0].events & EPOLLOUT)
					break;
			}
			edges++;
		}
	}
	fprintf(stderr, "# %u short writes, %u EPOLLOUT edges\n", partial, edges);
	set_nonblock(fd, false);
	SYS(shutdown(fd, SHUT_WR));
	expect_str(fd, "ok");
	close(ep);
	free(buf);
	if (file >= 0)
		close(file);
	close(fd);
}

static void cli_epoll_et_partial(void)
{
	epoll_et_partial(false);
}

static void cli_epoll_et_sendfile(void)
{
	epoll_et_partial(true);
}

/*
 * Threads with small stacks (Node.js starts one with 32 KiB): the library's
 * thread-local storage and stack use must leave them room.
 */
static void *small_stack_main(void *arg)
{
	int fd = cli_connect();
	struct pollfd p = { fd, POLLIN, 0 };

	(void)arg;
	pingpong_cli(fd);
	STEP("poll and epoll in the small-stack thread");
	PW_CHECK_EQ(poll(&p, 1, 0), 0);
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event out[1];
	ep_add(ep, fd, EPOLLIN, 1);
	PW_CHECK_EQ(epoll_wait(ep, out, 1, 0), 0);
	close(ep);
	close(fd);
	return NULL;
}

static void srv_threads_small_stack(void)
{
	int l = srv_listen();

	for (int i = 0; i < 2; i++) {
		int fd = srv_accept(l);
		pingpong_srv(fd);
		expect_eof(fd);
		close(fd);
	}
	close(l);
}

static void cli_threads_small_stack(void)
{
	static const size_t sizes[] = { 16384, 32768 };

	for (size_t i = 0; i < 2; i++) {
		pthread_attr_t a;
		pthread_t th;

		STEP("pthread_create with a small stack");
		PW_CHECK_EQ(pthread_attr_init(&a), 0);
		PW_CHECK_EQ(pthread_attr_setstacksize(&a, sizes[i]), 0);
		int r = pthread_create(&th, &a, small_stack_main, NULL);
		PW_CHECK(r == 0, "pthread_create with a %zu-byte stack: %s", sizes[i], strerror(r));
		PW_CHECK_EQ(pthread_join(th, NULL), 0);
		pthread_attr_destroy(&a);
	}
}

/*
 * Dual-stack sockets: Java opens every socket as AF_INET6 and connects to
 * IPv4 peers at ::ffff:a.b.c.d; Node listens on :: and accepts IPv4
 * clients there. Their traffic is IPv4 and is accelerated; every address
 * they see is in the v4-mapped form the kernel would give them.
 */
static void check_mapped(const struct sockaddr_storage *ss, socklen_t len, struct sockaddr_in *ret,
			 const char *what)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

	PW_CHECK(ss->ss_family == AF_INET6, "%s: family %d, want AF_INET6", what, ss->ss_family);
	PW_CHECK(len == sizeof(*s6), "%s: length %u, want %zu", what, len, sizeof(*s6));
	PW_CHECK(IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr), "%s: not an IPv4-mapped address", what);
	PW_CHECK(s6->sin6_port != 0, "%s: port 0", what);
	memset(ret, 0, sizeof(*ret));
	ret->sin_family = AF_INET;
	ret->sin_port = s6->sin6_port;
	memcpy(&ret->sin_addr, &s6->sin6_addr.s6_addr[12], 4);
}

/* getsockname/getpeername of a dual-stack socket, as IPv4 for comparing. */
static void get_view6(int fd, struct addr_view *v)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int ro = -1;

	SYS(getsockname(fd, SA(&ss), &len));
	check_mapped(&ss, len, &v->local, "getsockname");
	len = sizeof(ss);
	SYS(getpeername(fd, SA(&ss), &len));
	check_mapped(&ss, len, &v->peer, "getpeername");
	PW_CHECK_EQ(get_int_opt(fd, SOL_SOCKET, SO_DOMAIN), AF_INET6);
	PW_CHECK_EQ(get_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 0);
	STEP("IPV6_TCLASS reads back as set");
	set_int_opt(fd, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
	ro = get_int_opt(fd, IPPROTO_IPV6, IPV6_TCLASS);
	PW_CHECK_EQ(ro, 0x20);
}

/* Both sides' views agree, the addresses are the pods'; then ping-pong. */
static void exchange_views(int fd, struct addr_view *me, bool server)
{
	struct addr_view other;
	struct in_addr a;

	if (env_ip("PW_SEM_A", &a))
		PW_CHECK((server ? me->peer : me->local).sin_addr.s_addr == a.s_addr,
			 "the client's address is not its pod's");
	CHECK_ADDR_EQ(server ? &me->local : &me->peer, &g_addr);
	STEP("compare with the other side's view");
	write_all(fd, me, sizeof(*me));
	read_exact(fd, &other, sizeof(other));
	CHECK_ADDR_EQ(&other.local, &me->peer);
	CHECK_ADDR_EQ(&other.peer, &me->local);
	if (server)
		pingpong_srv(fd);
	else
		pingpong_cli(fd);
}

/* Listen on [::]:port, dual-stack (Node's server.listen(port)). */
static int srv_listen6(void)
{
	struct sockaddr_in6 any = { .sin6_family = AF_INET6, .sin6_port = g_addr.sin_port };
	int one = 1, zero = 0;
	int l = (int)SYS(socket(AF_INET6, SOCK_STREAM, 0));

	SYS(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	SYS(setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)));
	STEP("bind [::]:port and listen");
	SYS(bind(l, SA(&any), sizeof(any)));
	SYS(listen(l, 16));
	srv_ready();
	return l;
}

static void srv_v6_accept_view(int l, struct addr_view *me, bool mapped)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	struct sockaddr_in from;

	wait_fd(l, POLLIN, 10000);
	int fd = (int)SYS(accept(l, SA(&ss), &len));
	note_conn(fd);
	if (mapped) {
		check_mapped(&ss, len, &from, "accept's address");
		get_view6(fd, me);
	} else {
		PW_CHECK_EQ(len, sizeof(struct sockaddr_in));
		memcpy(&from, &ss, sizeof(from));
		get_view(fd, me);
	}
	CHECK_ADDR_EQ(&from, &me->peer);
	exchange_views(fd, me, true);
	expect_eof(fd);
	close(fd);
}

/* A dual-stack AF_INET6 client connecting to ::ffff:server (Java's Socket). */
static int cli_connect6(void)
{
	struct sockaddr_in6 dst = { .sin6_family = AF_INET6, .sin6_port = g_addr.sin_port };
	int fd = (int)SYS(socket(AF_INET6, SOCK_STREAM, 0));

	dst.sin6_addr.s6_addr[10] = 0xff;
	dst.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&dst.sin6_addr.s6_addr[12], &g_addr.sin_addr, 4);
	STEP("connect an AF_INET6 socket to ::ffff:server");
	SYS(connect(fd, SA(&dst), sizeof(dst)));
	note_conn(fd);
	return fd;
}

static void srv_v6_client(void)
{
	int l = srv_listen();
	struct addr_view me;

	srv_v6_accept_view(l, &me, false);
	close(l);
}

static void cli_v6_client(void)
{
	int fd = cli_connect6();
	struct addr_view me;

	get_view6(fd, &me);
	exchange_views(fd, &me, false);
	close(fd);
}

static void srv_v6_listener(void)
{
	int l = srv_listen6();
	struct addr_view me;

	srv_v6_accept_view(l, &me, true); /* an IPv4 client */
	srv_v6_accept_view(l, &me, true); /* an AF_INET6 client */
	close(l);
}

static void cli_v6_listener(void)
{
	struct addr_view me;
	int fd = cli_connect();

	get_view(fd, &me);
	exchange_views(fd, &me, false);
	close(fd);
	fd = cli_connect6();
	get_view6(fd, &me);
	exchange_views(fd, &me, false);
	close(fd);
}

/*
 * A connection handed to another process over a Unix socket (SCM_RIGHTS):
 * prefork pools whose parent accepts and passes each connection to a
 * worker, then closes its copy; supervisors and Python's send_handle do
 * the same. The worker may run the library or not (exec'd without it).
 */
#define SCM_CONNS 10
#define SCM_BYTES 1000000

static void send_fd(int via, int fd)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	char b = 'f';
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	STEP("sendmsg(SCM_RIGHTS)");
	PW_CHECK(sendmsg(via, &mh, 0) == 1, "sendmsg: %s", strerror(errno));
}

/* The next fd from @via, or -1 at EOF. */
static int recv_fd(int via)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	char b;
	struct iovec iov = { &b, 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	int fd = -1;

	STEP("recvmsg(SCM_RIGHTS)");
	ssize_t r = recvmsg(via, &mh, MSG_CMSG_CLOEXEC);
	PW_CHECK(r >= 0, "recvmsg: %s", strerror(errno));
	if (r == 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	PW_CHECK(c && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)),
		 "no fd in the message");
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	PW_CHECK((SYS(fcntl(fd, F_GETFD)) & FD_CLOEXEC) != 0, "MSG_CMSG_CLOEXEC not honoured");
	return fd;
}

/* The worker: echo each connection it is handed until EOF. A worker with
 * the library (or on the kernel) sees the connection's addresses; one
 * without it, under podwire, holds a plain stream (docs/PRELOAD.md). */
static void scm_worker(int via, bool check_addrs)
{
	int fd;

	while ((fd = recv_fd(via)) >= 0) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		struct in_addr a;

		if (check_addrs) {
			SYS(getpeername(fd, SA(&peer), &len));
			if (env_ip("PW_SEM_A", &a))
				PW_CHECK(peer.sin_addr.s_addr == a.s_addr,
					 "the handed connection's peer is not the client pod");
		}
		srv_echo_conn(fd);
	}
}

static int scm_worker_main(int argc, char **argv)
{
	g_role = "scm-worker";
	g_test = "scm_rights_unpreloaded";
	PW_CHECK(argc == 3, "usage: pw-sem scm-worker FD");
	const char *exp = getenv("PW_SEM_EXPECT");
	scm_worker(atoi(argv[2]), !exp || strcmp(exp, "accel"));
	g_done = true;
	return 0;
}

static void srv_scm(bool unpreloaded)
{
	int l = srv_listen();
	int sv[2];

	SYS(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
	pid_t pid = fork_as("worker");
	if (pid == 0) {
		close(l);
		close(sv[0]);
		if (!unpreloaded)
			scm_worker(sv[1], true);
		else {
			char fdarg[16];

			/* A program without the library: the handed fd must be a
			 * working stream for it too. */
			unsetenv("LD_PRELOAD");
			snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
			SYS(fcntl(sv[1], F_SETFD, 0));
			execl(g_self, g_self, "scm-worker", fdarg, (char *)NULL);
			PW_FAIL("execl: %s", strerror(errno));
		}
		_exit(0);
	}
	close(sv[1]);
	for (int i = 0; i < SCM_CONNS; i++) {
		int fd = srv_accept(l);
		send_fd(sv[0], fd);
		close(fd); /* the worker holds it now */
	}
	close(sv[0]);
	STEP("wait for the worker");
	int st;
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker: status %#x", st);
	close(l);
}

static void srv_scm_rights(void)
{
	srv_scm(false);
}

static void srv_scm_rights_unpreloaded(void)
{
	srv_scm(true);
}

static void *scm_writer(void *arg)
{
	struct {
		int fd;
		size_t n;
		const char *p;
	} *w = arg;

	write_all(w->fd, w->p, w->n);
	return NULL;
}

/* Each connection: the request goes out before the server has handed it
 * over; then a larger echo, then EOF after our shutdown. */
static void cli_scm_rights(void)
{
	static char out[SCM_BYTES], in[SCM_BYTES];
	struct gen g;

	gen_init(&g, 3);
	for (int i = 0; i < SCM_CONNS; i++) {
		int fd = cli_connect();
		pthread_t th;
		struct {
			int fd;
			size_t n;
			const char *p;
		} w;

		gen_fill(&g, out, SCM_BYTES);
		w.fd = fd;
		w.n = SCM_BYTES;
		w.p = out;
		STEP("echo 1 MB through the handed-over connection");
		PW_CHECK_EQ(pthread_create(&th, NULL, scm_writer, &w), 0);
		read_exact(fd, in, SCM_BYTES);
		PW_CHECK(!memcmp(in, out, SCM_BYTES), "connection %d: the echo differs", i);
		PW_CHECK_EQ(pthread_join(th, NULL), 0);
		SYS(shutdown(fd, SHUT_WR));
		expect_eof(fd);
		close(fd);
	}
}

/*
 * A process that sandboxes itself with seccomp (OpenSSH's pre-authentication
 * child, vsftpd): a forked child installs a filter that kills it for any
 * system call its kernel twin does not make, then uses the inherited
 * connection (blocking reads and writes, poll, select, epoll, 1 MB each
 * way). Under the preload it must survive: the library steps aside. With
 * the router reachable the connection is relayed; from a chroot (as
 * OpenSSH does) it stays a channel used with read, write and poll only.
 */
#ifdef __GLIBC__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#define SC_ALLOW(nr)                                                                               \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                           \
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static void seccomp_lockdown(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		SC_ALLOW(SYS_read),
		SC_ALLOW(SYS_write),
		SC_ALLOW(SYS_poll),
		SC_ALLOW(SYS_ppoll),
		SC_ALLOW(SYS_select),
		SC_ALLOW(SYS_pselect6),
		SC_ALLOW(SYS_epoll_create1),
		SC_ALLOW(SYS_epoll_ctl),
		SC_ALLOW(SYS_epoll_wait),
		SC_ALLOW(SYS_epoll_pwait),
		SC_ALLOW(SYS_close),
		SC_ALLOW(SYS_shutdown),
		SC_ALLOW(SYS_exit),
		SC_ALLOW(SYS_exit_group),
		SC_ALLOW(SYS_rt_sigreturn),
		SC_ALLOW(SYS_rt_sigprocmask),
		SC_ALLOW(SYS_brk),
		SC_ALLOW(SYS_mmap),
		SC_ALLOW(SYS_munmap),
		SC_ALLOW(SYS_madvise),
		SC_ALLOW(SYS_futex),
		SC_ALLOW(SYS_clock_gettime),
		SC_ALLOW(SYS_clock_nanosleep),
		SC_ALLOW(SYS_nanosleep),
		SC_ALLOW(SYS_getpid),
		SC_ALLOW(SYS_gettid),
		SC_ALLOW(SYS_tgkill),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { .len = (unsigned short)(sizeof(f) / sizeof(f[0])), .filter = f };

	STEP("seccomp: only what the kernel twin calls");
	SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	SYS(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog));
}

/* In the sandbox: the inherited connection, every way of using it. */
static void sandboxed_use(int fd)
{
	static char out[1 << 20], in[1 << 20];
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct epoll_event ev = { EPOLLIN, { .u64 = 1 } }, got[1];
	struct gen g;

	STEP("sandboxed: ping-pong, blocking");
	for (int i = 0; i < 100; i++)
		pingpong_cli(fd);
	STEP("sandboxed: poll, select, epoll");
	send_str(fd, "ping");
	wait_fd(fd, POLLIN, 5000);
	expect_str(fd, "pong");
	send_str(fd, "ping");
	PW_CHECK_EQ(wait_with(W_SELECT, fd, POLLIN, 5000), POLLIN);
	expect_str(fd, "pong");
	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	send_str(fd, "ping");
	PW_CHECK_EQ(epoll_wait(ep, got, 1, 5000), 1);
	expect_str(fd, "pong");
	close(ep);
	STEP("sandboxed: 1 MB each way");
	send_str(fd, "bulk");
	gen_init(&g, 11);
	gen_fill(&g, out, sizeof(out));
	write_all(fd, out, sizeof(out));
	read_exact(fd, in, sizeof(in));
	PW_CHECK(!memcmp(in, out, sizeof(in)), "the bulk echo differs");
	SYS(shutdown(fd, SHUT_WR));
	expect_eof(fd);
}

static void srv_seccomp(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);
	static char buf[1 << 20];
	char w[4];

	for (;;) {
		read_exact(fd, w, 4);
		if (!memcmp(w, "bulk", 4))
			break;
		PW_CHECK(!memcmp(w, "ping", 4), "got \"%.4s\"", w);
		send_str(fd, "pong");
	}
	read_exact(fd, buf, sizeof(buf));
	write_all(fd, buf, sizeof(buf));
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_seccomp(bool chrooted)
{
	int fd = cli_connect();
	int st;
	pid_t pid = fork_as("sandboxed-child");

	if (pid == 0) {
		if (chrooted) {
			char dir[] = "/tmp/pw-sem-chroot.XXXXXX";
			PW_CHECK(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
			SYS(chroot(dir));
			SYS(chdir("/"));
			rmdir(dir); /* gone outside; we stay inside */
		}
		seccomp_lockdown();
		sandboxed_use(fd);
		g_done = true;
		_exit(0);
	}
	close(fd);
	STEP("wait for the sandboxed child");
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sandboxed child: %s %d",
		 WIFSIGNALED(st) ? "killed by signal" : "exit",
		 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static void cli_seccomp_relayed(void)
{
	cli_seccomp(false);
}

static void cli_seccomp_chrooted(void)
{
	cli_seccomp(true);
}
#else
static void srv_seccomp(void)
{
	PW_SKIP("seccomp tests are built with glibc only");
}
static void cli_seccomp_relayed(void)
{
	PW_SKIP("seccomp tests are built with glibc only");
}
static void cli_seccomp_chrooted(void)
{
	PW_SKIP("seccomp tests are built with glibc only");
}
#endif

/*
 * For tests/e2e/test-syscalls.sh, which runs the client under strace: the
 * same 2000 ping-pongs, first by the process that connected, then by a
 * forked child on the inherited socket, each between two getppid() calls
 * (markers). A forked socket must cost no system call the unforked one
 * does not (before: an fcntl(F_GETFL) per call).
 */
#define SYSCALL_ROUNDS 2000

static void marked_pingpongs(int fd)
{
	syscall(SYS_getppid);
	for (int i = 0; i < SYSCALL_ROUNDS; i++)
		pingpong_cli(fd);
	syscall(SYS_getppid);
}

static void srv_fork_syscalls(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	for (int i = 0; i < 2 * SYSCALL_ROUNDS; i++)
		pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

static void cli_fork_syscalls(void)
{
	int fd = cli_connect();
	int st;

	STEP("ping-pongs on the connecting process's socket");
	marked_pingpongs(fd);
	pid_t pid = fork_as("client-child");
	if (pid == 0) {
		STEP("ping-pongs on the inherited socket");
		marked_pingpongs(fd);
		close(fd);
		g_done = true;
		_exit(0);
	}
	close(fd);
	SYS(waitpid(pid, &st, 0));
	PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
}

/* ================= the list ================= */

struct test {
	const char *name;
	void (*srv)(void);
	void (*cli)(void);
	int timeout_s;
	const char *doc;
	int claims; /* connections podwired must see claimed under the preload (-1: none) */
};

static const struct test tests[] = {
	/* connection setup */
	{ "connect_block", srv_pingpong, cli_connect_block, 0, "blocking connect", 0 },
	{ "connect_nonblock", srv_pingpong, cli_connect_nonblock, 0,
	  "EINPROGRESS, POLLOUT, SO_ERROR 0", 0 },
	{ "eisconn", srv_pingpong, cli_eisconn, 0, "connect on a connected socket: EISCONN", 0 },
	{ "connect_nb_recheck", srv_pingpong, cli_connect_nb_recheck, 0,
	  "extra: connect() again after a non-blocking connect completed returns 0", 0 },
	{ "accept4_flags", srv_accept4_flags, cli_accept4_flags, 0,
	  "accept4 NONBLOCK|CLOEXEC, accept, no flag inheritance from the listener", 0 },
	{ "backlog", srv_backlog, cli_backlog, 0, "five clients pending in the backlog", 0 },
	{ "reuseaddr", srv_reuseaddr, cli_reuseaddr, 0, "SO_REUSEADDR re-listen after close", 0 },
	{ "relisten", srv_relisten, cli_relisten, 0,
	  "close the listener, bind again at once; 100 rounds (iperf3 -s)", 0 },
	{ "addrs", srv_addrs, cli_addrs, 0, "ephemeral ports, getsockname/getpeername agree", 0 },
	/* data */
	{ "rw_calls", srv_rw_calls, cli_rw_calls, 0,
	  "read/write readv/writev recv/send recvfrom/sendto recvmsg/sendmsg", 0 },
	{ "peek", srv_cmd, cli_peek, 0, "MSG_PEEK then read", 0 },
	{ "dontwait", srv_cmd, cli_dontwait, 0, "MSG_DONTWAIT on a blocking socket", 0 },
	{ "waitall", srv_cmd, cli_waitall, 0, "MSG_WAITALL over pieces, and cut by EOF", 0 },
	{ "sigpipe_nosignal", srv_cmd, cli_sigpipe_nosignal, 0, "MSG_NOSIGNAL: EPIPE", 0 },
	{ "sigpipe_ignored", srv_cmd, cli_sigpipe_ignored, 0, "SIGPIPE ignored: EPIPE", 0 },
	{ "sigpipe_handler", srv_cmd, cli_sigpipe_handler, 0, "SIGPIPE handler runs once", 0 },
	{ "sigpipe_default", srv_cmd, cli_sigpipe_default, 0, "default SIGPIPE kills the writer",
	  0 },
	{ "shutdown_wr", srv_shutdown_wr, cli_shutdown_wr, 0,
	  "SHUT_WR: peer reads EOF and can still write", 0 },
	{ "close_pending", srv_close_pending, cli_close_pending, 0,
	  "close with data the peer has not read yet", 0 },
	{ "close_unread_rst", srv_close_unread_rst, cli_close_unread_rst, 4,
	  "extra: close with unread received data resets (ECONNRESET)", 0 },
	{ "linger_rst", srv_linger_rst, cli_linger_rst, 4,
	  "extra: SO_LINGER {1,0} close resets (ECONNRESET)", 0 },
	{ "shutdown_rd", srv_shutdown_rd, cli_shutdown_rd, 4,
	  "extra: SHUT_RD reads EOF, the peer can still write", 0 },
	{ "accept_late", srv_accept_late, cli_accept_late, 0,
	  "data written before a late accept() arrives", 0 },
	{ "listener_closed_pending", srv_listener_closed_pending, cli_listener_closed_pending, 4,
	  "extra: the listener closes with us in its queue: ECONNRESET", -1 },
	{ "sendfile", srv_sendfile, cli_sendfile, 0, "sendfile from a file, offset updated", 0 },
	{ "iov_edges", srv_iov_edges, cli_iov_edges, 0,
	  "40 iovecs (zero-length ones too), iovcnt 0, IOV_MAX + 1", 0 },
	{ "msg_trunc", srv_cmd, cli_msg_trunc, 0, "extra: recv(MSG_TRUNC) discards, NULL buffer",
	  0 },
	{ "msg_oob", srv_msg_oob, cli_msg_oob, 0, "extra: MSG_OOB urgent byte out of band", 0 },
	/* fds, flags, options */
	{ "dup", srv_dup, cli_dup, 0, "dup/dup2/dup3/F_DUPFD(_CLOEXEC), EOF on last close", 0 },
	{ "fcntl_nonblock", srv_cmd, cli_fcntl_nonblock, 0, "O_NONBLOCK and FIONBIO toggling", 0 },
	{ "fork_shared_flags", srv_cmd, cli_fork_shared_flags, 4,
	  "extra: O_NONBLOCK set by a forked child applies to the parent", 0 },
	{ "fionread", srv_cmd, cli_fionread, 0, "FIONREAD/SIOCINQ", 0 },
	{ "sockopts", srv_sockopts, cli_sockopts, 0,
	  "SO_ERROR/TYPE/DOMAIN/PROTOCOL, TCP_NODELAY, SO_KEEPALIVE, SO_RCVBUF/SNDBUF", 0 },
	{ "sockopt_inherit", srv_sockopt_inherit, cli_sockopt_inherit, 0,
	  "extra: options set before connect/on the listener persist", 0 },
	{ "sockopt_roundtrip", srv_pingpong, cli_sockopt_roundtrip, 0,
	  "extra: TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, IP_TOS, SO_PRIORITY, SO_LINGER read "
	  "back",
	  0 },
	{ "sockopt_unknown", srv_pingpong, cli_sockopt_unknown, 0,
	  "extra: unknown options ENOPROTOOPT, short optlen EINVAL", 0 },
	{ "rcvtimeo", srv_rcvtimeo, cli_rcvtimeo, 0, "SO_RCVTIMEO: EAGAIN after the timeout", 0 },
	{ "sndtimeo", srv_cmd, cli_sndtimeo, 0, "extra: SO_SNDTIMEO: short count, then EAGAIN", 0 },
	/* readiness */
	{ "poll", srv_cmd, cli_poll, 0, "poll", 0 },
	{ "ppoll", srv_cmd, cli_ppoll, 0, "ppoll, with a signal mask", 0 },
	{ "select", srv_cmd, cli_select, 0, "select, remaining time", 0 },
	{ "pselect", srv_cmd, cli_pselect, 0, "pselect, with a signal mask", 0 },
	{ "peer_close_revents", srv_cmd, cli_peer_close_revents, 0,
	  "extra: after the peer's close: IN|OUT|RDHUP, no HUP", 0 },
	{ "epoll_lt", srv_cmd, cli_epoll_lt, 0, "level-triggered epoll, MOD, DEL, pwait, pwait2",
	  0 },
	{ "epoll_et", srv_cmd, cli_epoll_et, 0, "EPOLLET: one event per arrival", 0 },
	{ "epoll_oneshot", srv_cmd, cli_epoll_oneshot, 0, "EPOLLONESHOT and re-arming", 0 },
	{ "epoll_rdhup", srv_cmd, cli_epoll_rdhup, 0, "EPOLLRDHUP on the peer's SHUT_WR", 0 },
	{ "epoll_fairness", srv_epoll_fairness, cli_epoll_fairness, 0,
	  "extra: level-triggered epoll, maxevents 1: ready fds take turns", 0 },
	{ "epoll_close_reuse", srv_cmd2, cli_epoll_close_reuse, 0,
	  "extra: close() ends registrations; a reused fd number is not reported", 0 },
	{ "epoll_exclusive", srv_epoll_exclusive, cli_epoll_exclusive, 0,
	  "EPOLLEXCLUSIVE listener in two epoll sets", 0 },
	{ "epoll_before_connect", srv_cmd, cli_epoll_before_connect, 0,
	  "registered before connect (LT)", 0 },
	{ "epoll_before_connect_et", srv_cmd, cli_epoll_before_connect_et, 0,
	  "registered before connect (ET)", 0 },
	{ "pollout_drain", srv_cmd, cli_pollout_drain, 0, "POLLOUT after the peer drains", 0 },
	{ "epollout_lt", srv_cmd, cli_epollout_lt, 0, "EPOLLOUT (LT) after the peer drains", 0 },
	{ "epollout_et", srv_cmd, cli_epollout_et, 0, "EPOLLOUT (ET) after the peer drains", 0 },
	{ "epoll_mixed", srv_cmd, cli_epoll_mixed, 0, "epoll over a socket and a pipe", 0 },
	{ "poll_mixed", srv_cmd, cli_poll_mixed, 0, "poll/select over a socket and a pipe", 0 },
	/* processes, threads, signals */
	{ "fork_rw", srv_echo, cli_fork_rw, 0, "fork: the child writes, the parent reads", 0 },
	{ "fork_parent_close", srv_echo, cli_fork_parent_close, 0,
	  "fork: the parent closes, the child goes on", 0 },
	{ "fork_listener", srv_fork_listener, cli_fork_listener, 0,
	  "listener before fork, workers accept", 0 },
	{ "fork_listener_parent_closes", srv_fork_listener_parent_closes, cli_fork_listener, 0,
	  "listener before fork, the parent closes it, workers accept", 0 },
	{ "epoll_add_while_waiting", srv_epoll_add_while_waiting, cli_epoll_add_while_waiting, 0,
	  "a readable fd added to a set another thread waits on wakes it", 0 },
	{ "shutdown_wakes_reader", srv_shutdown_wakes_reader, cli_shutdown_wakes_reader, 0,
	  "extra: shutdown(SHUT_RDWR) wakes a recv blocked in another thread", 0 },
	{ "dontwait_while_blocked", srv_cmd, cli_dontwait_while_blocked, 0,
	  "extra: MSG_DONTWAIT does not wait for another thread's blocked recv", 0 },
	{ "fork_concurrent_writers", srv_fork_concurrent_writers, cli_fork_concurrent_writers, 0,
	  "extra: parent and child write 8 MiB each at the same time, no byte lost", 0 },
	{ "threads_duplex", srv_threads_duplex, cli_threads_duplex, 20,
	  "a reader and a writer thread, 64 MiB each way", 0 },
	{ "eintr", srv_cmd, cli_eintr, 0, "blocking recv: EINTR without SA_RESTART", 0 },
	{ "eintr_restart", srv_cmd, cli_eintr_restart, 4,
	  "extra: blocking recv restarted with SA_RESTART", 0 },
	{ "kill_client", srv_kill_client, cli_kill_client, 0, "kill -9 of the writing client", 0 },
	{ "kill_server", srv_kill_server, cli_kill_server, 0, "kill -9 of the writing server", 0 },
	{ "kill_reader", srv_kill_reader, cli_kill_reader, 0,
	  "kill -9 of a peer that does not read: the blocked writer fails", 0 },
	/* traffic */
	{ "echo", srv_echo, cli_echo, 0, "echo, 1 B .. 1 MB", 0 },
	{ "stream_long", srv_echo, cli_stream_long, 20, "ping-pong for PW_SEM_DURATION_MS", 0 },
	/* extras: the socket reached without the socket API */
	{ "stdio", srv_stdio, cli_stdio, 4, "extra: fdopen/fgets/fprintf/fclose on a socket", 0 },
	{ "exec_inherit", srv_exec_inherit, cli_exec_inherit, 4,
	  "extra: inetd-style, the socket is stdin/stdout of an exec'd program", 0 },
	{ "exec_stream", srv_exec_inherit, cli_exec_stream, 10,
	  "inetd-style, 4 MiB each way through an exec'd program on fds 0 and 1", 0 },
	{ "exec_nofork_stream", srv_exec_nofork, cli_exec_stream, 10,
	  "socat nofork-style: the accepting process exec()s with the connection on fds 0 and 1",
	  0 },
	{ "close_range", srv_close_range, cli_close_range, 4,
	  "extra: close_range(), then the fd number is reused", 0 },
	/* issue 9: what real programs do */
	{ "death_poll", srv_death_poll, cli_death_poll, 0,
	  "a peer exits or is killed without close(): poll sees EOF in time, idle", 5 },
	{ "death_select", srv_death_select, cli_death_select, 0,
	  "a peer exits or is killed without close(): select sees EOF in time, idle", 5 },
	{ "death_epoll_lt", srv_death_epoll_lt, cli_death_epoll_lt, 0,
	  "a peer exits or is killed without close(): epoll (LT) sees EOF in time, idle", 5 },
	{ "death_epoll_et", srv_death_epoll_et, cli_death_epoll_et, 0,
	  "a peer exits or is killed without close(): epoll (ET) sees EOF in time, idle", 5 },
	{ "fork_per_conn", srv_fork_per_conn, cli_fork_per_conn, 0,
	  "a child per connection, the parent closes: 40 clients see reply and EOF", FORK_CONNS },
	{ "epoll_et_partial", srv_epoll_et_partial, cli_epoll_et_partial, 20,
	  "EPOLLET writer: a short write is followed by an EPOLLOUT edge (16 MiB)", 0 },
	{ "scm_rights", srv_scm_rights, cli_scm_rights, 20,
	  "the parent accepts, hands each connection to a worker (SCM_RIGHTS), closes", SCM_CONNS },
	{ "scm_rights_unpreloaded", srv_scm_rights_unpreloaded, cli_scm_rights, 20,
	  "the same, to a worker without the library (exec'd without LD_PRELOAD)", SCM_CONNS },
	{ "seccomp_relayed", srv_seccomp, cli_seccomp_relayed, 0,
	  "a child in a seccomp sandbox (kill for calls its kernel twin does not make) uses "
	  "the inherited connection",
	  0 },
	{ "seccomp_chrooted", srv_seccomp, cli_seccomp_chrooted, 0,
	  "the same from a chroot, where the router is out of reach (OpenSSH's preauth)", 0 },
	{ "v6_client", srv_v6_client, cli_v6_client, 0,
	  "a dual-stack AF_INET6 client to ::ffff:server (Java): v4-mapped addresses", 0 },
	{ "v6_listener", srv_v6_listener, cli_v6_listener, 0,
	  "a dual-stack listener on [::] (Node): IPv4 and AF_INET6 clients, mapped", 2 },
	{ "epoll_et_sendfile", srv_epoll_et_partial, cli_epoll_et_sendfile, 20,
	  "the same with sendfile from a file (nginx): a short count, then an EPOLLOUT edge", 0 },
	{ "fork_syscalls", srv_fork_syscalls, cli_fork_syscalls, 20,
	  "2000 ping-pongs before and after fork, between markers (test-syscalls.sh)", 0 },
	{ "threads_small_stack", srv_threads_small_stack, cli_threads_small_stack, 0,
	  "threads with 16 and 32 KiB stacks connect, poll and epoll", 2 },
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static void usage(void)
{
	fprintf(stderr, "usage: pw-sem list | server TEST IP PORT | client TEST IP PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct test *t = NULL;

	g_self = argv[0];
	setvbuf(stderr, NULL, _IONBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		for (size_t i = 0; i < NTESTS; i++)
			printf("%s\t%d\t%s\n", tests[i].name,
			       tests[i].claims < 0 ? 0
			       : tests[i].claims   ? tests[i].claims
						   : 1,
			       tests[i].doc);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "exec-echo"))
		return exec_echo_main();
	if (argc >= 2 && !strcmp(argv[1], "scm-worker"))
		return scm_worker_main(argc, argv);
	if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
		usage();
	for (size_t i = 0; i < NTESTS; i++)
		if (!strcmp(tests[i].name, argv[2]))
			t = &tests[i];
	if (!t) {
		fprintf(stderr, "pw-sem: no test %s\n", argv[2]);
		return 2;
	}
	g_role = argv[1];
	g_test = t->name;
	g_addr.sin_family = AF_INET;
	g_addr.sin_port = htons((uint16_t)atoi(argv[4]));
	if (inet_pton(AF_INET, argv[3], &g_addr.sin_addr) != 1)
		usage();
	gen_init(&g_srvpat, 77);
	sync_init();
	atexit(report_at_exit);
	set_handler(SIGALRM, on_alarm, 0);
	set_handler(SIGPIPE, on_sigpipe, 0);
	alarm((unsigned)(t->timeout_s ? t->timeout_s : 10));

	if (!strcmp(g_role, "server"))
		t->srv();
	else
		t->cli();
	g_done = true;
	return 0;
}
