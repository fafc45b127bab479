// SPDX-License-Identifier: MIT
/* pw-sem: the harness: state and failure reporting, time, addresses, I/O
 * helpers, the reproducible byte stream, connections and the command server. */
#include "pw-sem.h"

/* ---- state, failure reporting, watchdog ---- */

const char *g_role = "?";
const char *g_test = "?";
/* Read by the watchdog's signal handler: a lock-free atomic is signal-safe. */
_Atomic(const char *) g_step = "start";
struct sockaddr_in g_addr; /* the server's IP:PORT */
const char *g_self;	   /* argv[0], for exec */
bool g_done;
static void say(const char *s)
{
	if (write(2, s, strlen(s)) < 0) {
	}
}

void report_at_exit(void)
{
	if (!g_done)
		fprintf(stderr, "[%s %s] stopped at step: %s\n", g_role, g_test, g_step);
}

void on_alarm(int sig)
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

void on_sigpipe(int sig)
{
	say("FAIL: unexpected SIGPIPE at step: ");
	say((const char *)g_step);
	say("\n");
	_exit(1);
}

void set_handler(int sig, void (*fn)(int), int flags)
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
pid_t fork_as(const char *role)
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

double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- addresses ---- */

const char *fmt_addr(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN] = "?";

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, len, "%s:%u (family %d)", ip, ntohs(a->sin_port), a->sin_family);
	return buf;
}

bool addr_eq(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
	       a->sin_addr.s_addr == b->sin_addr.s_addr;
}
/* The pod address in environment variable @name; false if unset. */
bool env_ip(const char *name, struct in_addr *ret)
{
	const char *v = getenv(name);

	return v && *v && inet_pton(AF_INET, v, ret) == 1;
}

/* ---- I/O helpers (they cope with non-blocking sockets) ---- */

void wait_fd(int fd, short ev, int ms)
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

bool is_nonblock(int fd)
{
	return (SYS(fcntl(fd, F_GETFL)) & O_NONBLOCK) != 0;
}

void set_nonblock(int fd, bool on)
{
	int fl = (int)SYS(fcntl(fd, F_GETFL));

	SYS(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK));
}

void write_all(int fd, const void *buf, size_t n)
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
bool read_exact2(int fd, void *buf, size_t n, bool eof_ok)
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

void read_exact(int fd, void *buf, size_t n)
{
	read_exact2(fd, buf, n, false);
}

void expect_eof(int fd)
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

void send_str(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

void expect_str(int fd, const char *s)
{
	char buf[256];
	size_t n = strlen(s);

	PW_CHECK(n < sizeof(buf), "string too long");
	read_exact(fd, buf, n);
	PW_CHECK(!memcmp(buf, s, n), "want \"%s\", got \"%.*s\"", s, (int)n, buf);
}

void gen_init(struct gen *g, uint64_t seed)
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

void gen_fill(struct gen *g, void *buf, size_t n)
{
	uint8_t *p = buf;

	for (size_t i = 0; i < n; i++)
		p[i] = gen_byte(g);
}

void gen_check(struct gen *g, const void *buf, size_t n, const char *what)
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

void send_gen(int fd, struct gen *g, size_t n)
{
	static char buf[65536];

	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);
		gen_fill(g, buf, k);
		write_all(fd, buf, k);
		n -= k;
	}
}

void recv_gen(int fd, struct gen *g, size_t n, const char *what)
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
void note_conn(int fd)
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

void srv_ready(void)
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

void sync_init(void)
{
	const char *dir = getenv("PW_SEM_SYNC_DIR");

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(g_sync_path, sizeof(g_sync_path), "%s/pw-sem-sync.%u", dir,
		 ntohs(g_addr.sin_port));
}

void sync_create(void)
{
	unlink(g_sync_path);
	SYS(mkfifo(g_sync_path, 0600));
}

/* Server: block until the client says so. */
void sync_wait(void)
{
	char c;

	STEP("wait for the client's signal on the side channel");
	int fd = (int)SYS(open(g_sync_path, O_RDONLY | O_CLOEXEC));
	PW_CHECK_EQ(read(fd, &c, 1), 1);
	close(fd);
	unlink(g_sync_path);
}

/* Client: release the server. */
void sync_signal(void)
{
	STEP("signal the server on the side channel");
	int fd = (int)SYS(open(g_sync_path, O_WRONLY | O_CLOEXEC));
	PW_CHECK_EQ(write(fd, "s", 1), 1);
	close(fd);
}

int srv_socket(void)
{
	int one = 1;
	int fd = (int)SYS(socket(AF_INET, SOCK_STREAM, 0));

	SYS(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	return fd;
}

void srv_bind_listen(int fd, int backlog)
{
	STEP("bind and listen");
	SYS(bind(fd, SA(&g_addr), sizeof(g_addr)));
	SYS(listen(fd, backlog));
	srv_ready();
}

int srv_listen(void)
{
	int fd = srv_socket();

	srv_bind_listen(fd, 16);
	return fd;
}

int srv_accept(int l)
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

int cli_socket(int flags)
{
	return (int)SYS(socket(AF_INET, SOCK_STREAM | flags, 0));
}

int cli_connect(void)
{
	int fd = cli_socket(0);

	STEP("connect");
	SYS(connect(fd, SA(&g_addr), sizeof(g_addr)));
	note_conn(fd);
	return fd;
}

void pingpong_cli(int fd)
{
	STEP("ping-pong");
	send_str(fd, "ping");
	expect_str(fd, "pong");
}

void pingpong_srv(int fd)
{
	STEP("ping-pong");
	expect_str(fd, "ping");
	send_str(fd, "pong");
}

int get_int_opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	SYS(getsockopt(fd, level, name, &v, &len));
	PW_CHECK_EQ(len, sizeof(int));
	return v;
}

void set_int_opt(int fd, int level, int name, int v)
{
	SYS(setsockopt(fd, level, name, &v, sizeof(v)));
}

/* The server's outgoing byte stream; the client keeps its own copy. */
struct gen g_srvpat;

void cmd(int fd, uint32_t op, uint32_t arg, uint32_t delay_ms, uint32_t extra)
{
	struct cmd c = { op, arg, delay_ms, extra };

	write_all(fd, &c, sizeof(c));
}

void recv_pat(int fd, size_t n)
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

void srv_cmd(void)
{
	sync_create();
	int l = srv_listen();
	int fd = srv_accept(l);

	srv_cmd_conn(fd);
	close(l);
}

void srv_cmd2(void)
{
	int l = srv_listen();

	for (int i = 0; i < 2; i++)
		srv_cmd_conn(srv_accept(l));
	close(l);
}

/* The server ping-pongs one connection, then waits for EOF. */
void srv_pingpong(void)
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
void srv_echo_conn(int fd)
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

void srv_echo(void)
{
	int l = srv_listen();

	srv_echo_conn(srv_accept(l));
	close(l);
}
