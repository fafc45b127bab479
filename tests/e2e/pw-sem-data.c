// SPDX-License-Identifier: MIT
/* pw-sem: tests of the data calls: every read and write call, PEEK, DONTWAIT,
 * WAITALL, SIGPIPE, shutdown and close, resets, sendfile, iovecs, MSG_TRUNC/OOB. */
#include "pw-sem.h"

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
void srv_rw_calls(void)
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

void cli_rw_calls(void)
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

void cli_peek(void)
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

void srv_iov_edges(void)
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

void cli_iov_edges(void)
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
void cli_msg_trunc(void)
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
void srv_msg_oob(void)
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

void cli_msg_oob(void)
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
uint64_t fill_until_eagain(int fd, int flags)
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

void cli_dontwait(void)
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

void cli_waitall(void)
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
int write_until_fail(int fd, bool use_send_nosignal)
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

void cli_sigpipe_nosignal(void)
{
	set_handler(SIGPIPE, SIG_DFL, 0);
	int fd = cli_closed_peer();
	int e = write_until_fail(fd, true);
	PW_CHECK(e == EPIPE, "send(MSG_NOSIGNAL) failed with %s, want EPIPE", strerrorname_np(e));
	close(fd);
}

/* The kernel's TCP takes the first write after the peer closed (its reset
 * comes back) and fails the next one. */
void cli_write_after_close(void)
{
	set_handler(SIGPIPE, SIG_DFL, 0);
	int fd = cli_closed_peer();
	STEP("the first write after the peer's close is taken");
	PW_CHECK_EQ(send(fd, "x", 1, MSG_NOSIGNAL), 1);
	sleep_ms(50);
	STEP("the next one fails");
	CHECK_ERRNO(send(fd, "x", 1, MSG_NOSIGNAL), EPIPE);
	close(fd);
}

void cli_sigpipe_ignored(void)
{
	set_handler(SIGPIPE, SIG_IGN, 0);
	int fd = cli_closed_peer();
	int e = write_until_fail(fd, false);
	PW_CHECK(e == EPIPE, "write failed with %s, want EPIPE", strerrorname_np(e));
	close(fd);
}

void cli_sigpipe_handler(void)
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
void cli_sigpipe_default(void)
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

void srv_shutdown_wr(void)
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

void cli_shutdown_wr(void)
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

void srv_close_pending(void)
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

void cli_close_pending(void)
{
	int fd = cli_connect();
	struct gen g;

	gen_init(&g, 9);
	send_gen(fd, &g, PENDING_N);
	STEP("close with data not yet read by the peer");
	close(fd);
}

/* Closing with unread received data sends a reset: the peer gets ECONNRESET. */
void srv_close_unread_rst(void)
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

void cli_close_unread_rst(void)
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
void srv_linger_rst(void)
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

void cli_linger_rst(void)
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
void srv_shutdown_rd(void)
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

void cli_shutdown_rd(void)
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
void srv_listener_closed_pending(void)
{
	int l = srv_listen();

	STEP("wait for a pending connection");
	wait_fd(l, POLLIN, 10000);
	sleep_ms(200);
	STEP("close the listener without accepting");
	close(l);
}

void cli_listener_closed_pending(void)
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
void srv_accept_late(void)
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

void cli_accept_late(void)
{
	int fd = cli_connect();

	send_str(fd, "hello-late");
	STEP("reply after the late accept");
	expect_str(fd, "ok");
	close(fd);
}

/* sendfile() from a regular file, with and without an offset pointer. */
#define SF_SIZE (1024 * 1024 + 123)

#define SF_OFF 1000

#define SF_TAIL 5000

void srv_sendfile(void)
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

void cli_sendfile(void)
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
