// SPDX-License-Identifier: MIT
/* pw-sem: tests of readiness: poll, ppoll, select, pselect and epoll in every
 * mode, mixed sets, fairness, fd reuse. */
#include "pw-sem.h"

/* Wait for @ev on @fd with mechanism @w; returns the poll-style revents (0 on
 * timeout). */
short wait_with(int w, int fd, short ev, int ms)
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

_Atomic int g_usr1; /* lock-free: safe in a signal handler */

void count_usr1(int sig)
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

void cli_poll(void)
{
	readiness_basic(W_POLL);
}

void cli_ppoll(void)
{
	readiness_basic(W_PPOLL);
}

void cli_select(void)
{
	readiness_basic(W_SELECT);
}

void cli_pselect(void)
{
	readiness_basic(W_PSELECT);
}

/* The peer close()d: readable and writable, RDHUP, but no HUP (that needs
 * both directions shut). */
void cli_peer_close_revents(void)
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

void ep_add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { events, { .u64 = data } };

	SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
}

static void ep_mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { events, { .u64 = data } };

	SYS(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev));
}

void cli_epoll_lt(void)
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

void cli_epoll_et(void)
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

void cli_epoll_oneshot(void)
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

void cli_epoll_rdhup(void)
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

void srv_epoll_exclusive(void)
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

void cli_epoll_exclusive(void)
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

void cli_epoll_before_connect(void)
{
	epoll_before_connect(false);
}

void cli_epoll_before_connect_et(void)
{
	epoll_before_connect(true);
}

/* Level-triggered epoll hands out ready fds round-robin: with maxevents 1
 * and two readable sockets, both are reported. */
void srv_epoll_fairness(void)
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

void cli_epoll_fairness(void)
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
void cli_epoll_close_reuse(void)
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

void cli_pollout_drain(void)
{
	pollout_after_drain(O_POLL);
}

void cli_epollout_lt(void)
{
	pollout_after_drain(O_EPOLL_LT);
}

void cli_epollout_et(void)
{
	pollout_after_drain(O_EPOLL_ET);
}

static void *pipe_writer_main(void *arg)
{
	struct pipe_writer *w = arg;

	sleep_ms(w->ms);
	if (write(w->fd, "p", 1) != 1)
		abort();
	return NULL;
}

void cli_epoll_mixed(void)
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

void cli_poll_mixed(void)
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

static void *ep_worker_main(void *arg)
{
	struct ep_worker *w = arg;

	w->n = epoll_wait(w->ep, &w->ev, 1, 3000);
	w->woke = now_ms();
	return NULL;
}

/*
 * A connection added to a set the worker already sleeps on: with its
 * request there already (@data_first), or with the request sent only after
 * the add (rdma_cm's connect: the socket joins the channel's set under the
 * thread taking events, and the answer comes after). For the second, a
 * blocking read that slept first spends the connection's wake-up, so
 * nothing is armed on it when it joins.
 */
static void srv_epoll_added(bool data_first)
{
	int l = srv_listen();
	int ep = (int)SYS(epoll_create1(EPOLL_CLOEXEC));
	struct ep_worker w = { ep, 0, 0, { 0, { 0 } } };
	pthread_t th;

	STEP("the worker waits on an empty set");
	pthread_create(&th, NULL, ep_worker_main, &w);
	wait_fd(l, POLLIN, 10000);
	int fd = srv_accept(l);
	if (data_first)
		sleep_ms(150); /* the request is there, the worker asleep */
	else
		expect_str(fd, "hello");
	STEP("add the connection from the main thread");
	double t0 = now_ms();
	ep_add(w.ep, fd, EPOLLIN, (uint64_t)fd);
	if (!data_first)
		send_str(fd, "go");
	pthread_join(th, NULL);
	PW_CHECK(w.n == 1, "the worker did not wake for a connection added to its set (n %d)", w.n);
	PW_CHECK(w.woke - t0 < 1000, "the worker woke %.0f ms after the add", w.woke - t0);
	PW_CHECK_EQ(w.ev.data.u64, (uint64_t)fd);
	expect_str(fd, "req");
	send_str(fd, "rsp");
	expect_eof(fd);
	close(w.ep);
	close(fd);
	close(l);
}

void srv_epoll_add_while_waiting(void)
{
	srv_epoll_added(true);
}

void cli_epoll_add_while_waiting(void)
{
	int fd = cli_connect();

	send_str(fd, "req");
	STEP("reply");
	expect_str(fd, "rsp");
	close(fd);
}

void srv_epoll_add_then_data(void)
{
	srv_epoll_added(false);
}

void cli_epoll_add_then_data(void)
{
	int fd = cli_connect();

	sleep_ms(100); /* the server's read asleep */
	send_str(fd, "hello");
	expect_str(fd, "go");
	sleep_ms(50);
	send_str(fd, "req");
	STEP("reply");
	expect_str(fd, "rsp");
	close(fd);
}

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

void srv_shutdown_wakes_reader(void)
{
	int l = srv_listen();
	int fd = srv_accept(l);

	STEP("EOF from the client's SHUT_RDWR; keep the connection open");
	expect_eof(fd);
	sleep_ms(1500);
	close(fd);
	close(l);
}

void cli_shutdown_wakes_reader(void)
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
void cli_dontwait_while_blocked(void)
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
