// SPDX-License-Identifier: MIT
/* pw-sem: tests of what real programs do: stdio, exec, close_range, peer death
 * seen by every wait, a child per connection, edge-triggered short writes,
 * small stacks, dual-stack sockets, SCM_RIGHTS, seccomp, forked syscalls. */
#include "pw-sem.h"

/* ================= extras: ways to reach a socket without the socket API ================= */

/* stdio on a socket: fdopen, fgets, fputs, fclose. */
void srv_stdio(void)
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

void cli_stdio(void)
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
int exec_echo_main(void)
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

void srv_exec_inherit(void)
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

void cli_exec_inherit(void)
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
void srv_exec_nofork(void)
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

void cli_exec_stream(void)
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
void srv_close_range(void)
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

void cli_close_range(void)
{
	if (!PW_SEM_HAVE_CLOSE_RANGE)
		PW_SKIP("this libc has no close_range()");
	int fd = cli_connect();

	send_str(fd, "hi");
	STEP("EOF after the peer's close_range");
	expect_eof(fd);
	close(fd);
}

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

void srv_death_poll(void)
{
	srv_peer_death(WD_POLL);
}
void cli_death_poll(void)
{
	cli_peer_death(WD_POLL);
}
void srv_death_select(void)
{
	srv_peer_death(WD_SELECT);
}
void cli_death_select(void)
{
	cli_peer_death(WD_SELECT);
}
void srv_death_epoll_lt(void)
{
	srv_peer_death(WD_EPOLL_LT);
}
void cli_death_epoll_lt(void)
{
	cli_peer_death(WD_EPOLL_LT);
}
void srv_death_epoll_et(void)
{
	srv_peer_death(WD_EPOLL_ET);
}
void cli_death_epoll_et(void)
{
	cli_peer_death(WD_EPOLL_ET);
}
void srv_fork_per_conn(void)
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

void cli_fork_per_conn(void)
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

void srv_epoll_et_partial(void)
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

void cli_epoll_et_partial(void)
{
	epoll_et_partial(false);
}

void cli_epoll_et_sendfile(void)
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

void srv_threads_small_stack(void)
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

void cli_threads_small_stack(void)
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

void srv_v6_client(void)
{
	int l = srv_listen();
	struct addr_view me;

	srv_v6_accept_view(l, &me, false);
	close(l);
}

void cli_v6_client(void)
{
	int fd = cli_connect6();
	struct addr_view me;

	get_view6(fd, &me);
	exchange_views(fd, &me, false);
	close(fd);
}

void srv_v6_listener(void)
{
	int l = srv_listen6();
	struct addr_view me;

	srv_v6_accept_view(l, &me, true); /* an IPv4 client */
	srv_v6_accept_view(l, &me, true); /* an AF_INET6 client */
	close(l);
}

void cli_v6_listener(void)
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

int scm_worker_main(int argc, char **argv)
{
	g_role = "scm-worker";
	g_test = "scm_rights_unpreloaded";
	PW_CHECK(argc == 3, "usage: pw-sem scm-worker FD");
	const char *exp = getenv("PW_SEM_EXPECT");
	/* Addresses only where no connection can be podwire's: a worker
	 * without the library holds a plain relayed stream (PRELOAD.md). */
	scm_worker(atoi(argv[2]), !exp || !strcmp(exp, "kernel"));
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

void srv_scm_rights(void)
{
	srv_scm(false);
}

void srv_scm_rights_unpreloaded(void)
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
void cli_scm_rights(void)
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

void srv_seccomp(void)
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

void cli_seccomp_relayed(void)
{
	cli_seccomp(false);
}

void cli_seccomp_chrooted(void)
{
	cli_seccomp(true);
}
#else
void srv_seccomp(void)
{
	PW_SKIP("seccomp tests are built with glibc only");
}
void cli_seccomp_relayed(void)
{
	PW_SKIP("seccomp tests are built with glibc only");
}
void cli_seccomp_chrooted(void)
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

void srv_fork_syscalls(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	for (int i = 0; i < 2 * SYSCALL_ROUNDS; i++)
		pingpong_srv(fd);
	expect_eof(fd);
	close(fd);
	close(l);
}

void cli_fork_syscalls(void)
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
