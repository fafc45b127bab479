// SPDX-License-Identifier: MIT
/* pw-sem: tests of processes, threads and signals: fork, shared listeners,
 * threads, EINTR and SA_RESTART, kill -9, long streams. */
#include "pw-sem.h"

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

void srv_fork_concurrent_writers(void)
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

void cli_fork_concurrent_writers(void)
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

void cli_fork_rw(void)
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

void cli_fork_parent_close(void)
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
#define WORKERS 2

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

void srv_fork_listener(void)
{
	fork_listener_run(false);
}

void srv_fork_listener_parent_closes(void)
{
	fork_listener_run(true);
}

void cli_fork_listener(void)
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

void duplex(int fd, uint64_t tx_seed, uint64_t rx_seed)
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

void srv_threads_duplex(void)
{
	int l = srv_listen();

	duplex(srv_accept(l), 2, 1);
	close(l);
}

void cli_threads_duplex(void)
{
	duplex(cli_connect(), 1, 2);
}

void cli_eintr(void)
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

void cli_eintr_restart(void)
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

void srv_kill_client(void)
{
	int l = srv_listen();

	survivor_reads(srv_accept(l));
	close(l);
}

void cli_kill_client(void)
{
	pid_t pid = fork_as("client-child");

	if (pid == 0) {
		stream_forever(cli_connect());
	}
	sleep_ms(400);
	kill_and_reap(pid);
}

void srv_kill_server(void)
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

void cli_kill_server(void)
{
	survivor_reads(cli_connect());
}

/* The survivor is blocked writing to a peer that does not read; the peer is
 * killed: the write fails, it does not hang. */
void srv_kill_reader(void)
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

void cli_kill_reader(void)
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

void cli_echo(void)
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

void cli_stream_long(void)
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
