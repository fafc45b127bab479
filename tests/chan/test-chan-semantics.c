// SPDX-License-Identifier: MIT
/*
 * The documented semantics of pw_chan, one process with both ends open:
 * partial and refused DONTWAIT writes, zero-length calls, readv/writev with
 * more iovecs than the implementation's window, PEEK, WAITALL with data
 * arriving in pieces (from a thread), shutdown in each direction, the poll
 * mask in each state, wait timeouts, argument errors, counters, and the
 * readiness fd contract.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE PW_RING_MIN
#define NIOV	  40

struct pair {
	struct pw_chan *a, *b; /* a = side 0, b = side 1 */
};

static void pair_open(struct pair *p, uint32_t ring_size)
{
	int memfd, sv[2];

	PW_CHECK_EQ(pw_chan_create(ring_size, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &p->a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &p->b), 0);
	close(memfd);
}

static void pair_close(struct pair *p)
{
	pw_chan_close(p->a);
	pw_chan_close(p->b);
}

/* Check the bits of @mask named in @want are set and those in @unwanted are clear. */
#define CHECK_MASK(mask, want, unwanted)                                                           \
	do {                                                                                       \
		short m_ = (short)(mask);                                                          \
		PW_CHECK((m_ & (want)) == (want) && !(m_ & (unwanted)),                            \
			 "mask %#x: want %#x set and %#x clear", m_, (unsigned)(want),             \
			 (unsigned)(unwanted));                                                    \
	} while (0)

static void test_args(void)
{
	int memfd = -1, sv[2] = { -1, -1 };
	struct pw_chan *c = NULL;
	struct pair p;
	uint8_t buf[16];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	int fds = pw_test_count_fds();

	static const uint32_t bad_sizes[] = { 0,
					      64,
					      2048,
					      PW_RING_MIN - 1,
					      PW_RING_MIN + 1,
					      3 * PW_RING_MIN,
					      PW_RING_MAX + 1,
					      PW_RING_MAX * 2u,
					      UINT32_MAX };
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(bad_sizes); i++)
		PW_CHECK(pw_chan_create(bad_sizes[i], 0, &memfd, sv) == -EINVAL, "size %u",
			 bad_sizes[i]);
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, NULL, sv), -EINVAL);
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, NULL), -EINVAL);
	PW_CHECK_EQ(pw_test_count_fds(), fds);

	/* Good sizes: the segment is exactly header + two rings, sealed. */
	static const uint32_t good_sizes[] = { PW_RING_MIN, 2 * PW_RING_MIN, 1u << 20 };
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(good_sizes); i++) {
		struct stat st;

		PW_CHECK_EQ(pw_chan_create(good_sizes[i], 0, &memfd, sv), 0);
		PW_CHECK_EQ(fstat(memfd, &st), 0);
		PW_CHECK_EQ(st.st_size, PW_SHM_DATA_OFF + 2ull * good_sizes[i]);
		int seals = fcntl(memfd, F_GET_SEALS);
		PW_CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) == (F_SEAL_SHRINK | F_SEAL_GROW),
			 "seals %#x", seals);
		PW_CHECK(ftruncate(memfd, 0) < 0, "the segment can shrink");
		for (int k = 0; k < 3; k++) {
			int fd = k == 0 ? memfd : sv[k - 1];
			PW_CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "fd %d not O_CLOEXEC", k);
		}
		close(memfd);
		close(sv[0]);
		close(sv[1]);
	}

	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 2, NULL, &c), -EINVAL);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 3, NULL, &c), -EINVAL);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], UINT_MAX, NULL, &c), -EINVAL);
	PW_CHECK(c == NULL, "failed open wrote *ret_chan");
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &p.a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &p.b), 0);
	close(memfd);

	PW_CHECK_EQ(pw_chan_readv(p.b, &iov, -1, 0), -EINVAL);
	PW_CHECK_EQ(pw_chan_writev(p.a, &iov, -1, 0), -EINVAL);
	PW_CHECK_EQ(pw_chan_readv(p.b, &iov, INT_MIN, PW_CHAN_DONTWAIT), -EINVAL);
	PW_CHECK_EQ(pw_chan_writev(p.a, &iov, INT_MIN, PW_CHAN_DONTWAIT), -EINVAL);
	PW_CHECK_EQ(pw_chan_shutdown(p.a, 7), -EINVAL);
	PW_CHECK_EQ(pw_chan_shutdown(p.a, -1), -EINVAL);
	/* None of that changed anything. */
	CHECK_MASK(pw_chan_poll(p.a), POLLOUT, POLLIN | POLLHUP | POLLERR | POLLRDHUP);
	CHECK_MASK(pw_chan_poll(p.b), POLLOUT, POLLIN | POLLHUP | POLLERR | POLLRDHUP);
	PW_CHECK_EQ(pw_chan_write(p.a, "abc", 3, 0), 3);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), 3);
	pair_close(&p);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	PW_CHECK_EQ(pw_test_count_maps("memfd:podwire-chan"), 0);
}

static void test_zero_length(void)
{
	struct pair p;
	uint8_t buf[8];
	struct iovec iov[3] = {
		{ .iov_base = buf, .iov_len = 0 },
		{ .iov_base = NULL, .iov_len = 0 },
		{ .iov_base = buf, .iov_len = 0 },
	};

	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, buf, 0, 0), 0);
	PW_CHECK_EQ(pw_chan_write(p.a, NULL, 0, PW_CHAN_DONTWAIT), 0);
	PW_CHECK_EQ(pw_chan_writev(p.a, iov, 3, 0), 0);
	PW_CHECK_EQ(pw_chan_writev(p.a, NULL, 0, 0), 0);
	/* An empty ring: a zero-length read does not block and returns 0. */
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 0, 0), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 0, PW_CHAN_WAITALL), 0);
	PW_CHECK_EQ(pw_chan_readv(p.b, iov, 3, 0), 0);
	PW_CHECK_EQ(pw_chan_readv(p.b, NULL, 0, 0), 0);
	/* Nothing went through. */
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	/* With data waiting, a zero-length read consumes nothing. */
	PW_CHECK_EQ(pw_chan_write(p.a, "xy", 2, 0), 2);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 0, 0), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), 2);
	/* A full ring: a zero-length write does not block either. */
	static uint8_t big[RING_SIZE];
	PW_CHECK_EQ(pw_chan_write(p.a, big, RING_SIZE, 0), RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, big, 0, 0), 0);
	PW_CHECK_EQ(pw_chan_writev(p.a, iov, 3, 0), 0);

	struct pw_chan_stats st;
	pw_chan_get_stats(p.a, &st);
	PW_CHECK_EQ(st.bytes_out, 2 + RING_SIZE);
	pw_chan_get_stats(p.b, &st);
	PW_CHECK_EQ(st.bytes_in, 2);
	pair_close(&p);
}

static void test_dontwait_partial(void)
{
	static uint8_t src[2 * RING_SIZE], dst[2 * RING_SIZE];
	struct pair p;

	pair_open(&p, RING_SIZE);
	pw_stream_fill(1, 0, src, sizeof(src));
	PW_CHECK_EQ(pw_chan_write(p.a, src, RING_SIZE - 100, PW_CHAN_DONTWAIT), RING_SIZE - 100);
	CHECK_MASK(pw_chan_poll(p.a), POLLOUT, POLLIN | POLLERR | POLLHUP);
	/* Nearly full: a short count, then -EAGAIN, nothing written. */
	PW_CHECK_EQ(pw_chan_write(p.a, src + RING_SIZE - 100, 300, PW_CHAN_DONTWAIT), 100);
	CHECK_MASK(pw_chan_poll(p.a), 0, POLLOUT);
	PW_CHECK_EQ(pw_chan_write(p.a, src + RING_SIZE, 1, PW_CHAN_DONTWAIT), -EAGAIN);
	struct iovec iov[2] = { { .iov_base = src, .iov_len = 0 },
				{ .iov_base = src, .iov_len = 10 } };
	PW_CHECK_EQ(pw_chan_writev(p.a, iov, 2, PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_wait(p.a, POLLOUT, 0), 0);
	CHECK_MASK(pw_chan_poll(p.b), POLLIN | POLLOUT, POLLERR | POLLHUP | POLLRDHUP);

	/* Reading some makes room for exactly that much. */
	PW_CHECK_EQ(pw_chan_read(p.b, dst, 50, 0), 50);
	CHECK_MASK(pw_chan_poll(p.a), POLLOUT, 0);
	PW_CHECK(pw_chan_wait(p.a, POLLOUT, 0) & POLLOUT, "wait");
	PW_CHECK_EQ(pw_chan_write(p.a, src + RING_SIZE, 60, PW_CHAN_DONTWAIT), 50);
	PW_CHECK_EQ(pw_chan_read(p.b, dst + 50, sizeof(dst), 0), RING_SIZE);
	PW_CHECK(memcmp(dst, src, RING_SIZE + 50) == 0, "data");
	PW_CHECK_EQ(pw_chan_read(p.b, dst, 1, PW_CHAN_DONTWAIT), -EAGAIN);

	struct pw_chan_stats st;
	pw_chan_get_stats(p.a, &st);
	PW_CHECK_EQ(st.bytes_out, RING_SIZE + 50);
	PW_CHECK_EQ(st.bytes_in, 0);
	pw_chan_get_stats(p.b, &st);
	PW_CHECK_EQ(st.bytes_in, RING_SIZE + 50);
	PW_CHECK_EQ(st.bytes_out, 0);
	pair_close(&p);
}

/* @n iovecs with sizes 0..17 cycling, over @buf; returns the total. */
static size_t many_iov(struct iovec *iov, int n, uint8_t *buf, unsigned salt)
{
	size_t off = 0;

	for (int i = 0; i < n; i++) {
		size_t len = (size_t)((i * 7 + salt) % 18);

		iov[i] = (struct iovec){ .iov_base = buf + off, .iov_len = len };
		off += len;
	}
	return off;
}

static void test_many_iov(void)
{
	static uint8_t src[NIOV * 18], dst[NIOV * 18 + 64];
	struct iovec wv[NIOV], rv[NIOV];
	struct pair p;

	pair_open(&p, RING_SIZE);
	for (unsigned salt = 0; salt < 18; salt++) {
		size_t wt = many_iov(wv, NIOV, src, salt);

		pw_stream_fill(salt, 0, src, wt);
		PW_CHECK_EQ(pw_chan_writev(p.a, wv, NIOV, 0), wt);
		/* Read with a different split; the iovecs take it all. */
		size_t rt = many_iov(rv, NIOV, dst, salt + 5);
		if (rt < wt) /* room for all of it */
			rv[NIOV - 1].iov_len += wt - rt;
		memset(dst, 0, sizeof(dst));
		PW_CHECK_EQ(pw_chan_readv(p.b, rv, NIOV, 0), wt);
		PW_CHECK(memcmp(dst, src, wt) == 0, "salt %u: data differs", salt);
		PW_CHECK_EQ(pw_chan_read(p.b, dst, 1, PW_CHAN_DONTWAIT), -EAGAIN);
	}
	/* Fewer bytes than the iovecs hold, across more than one window: a short
	 * count, with the bytes where the iovecs say. */
	size_t wt = many_iov(wv, NIOV, src, 3);
	pw_stream_fill(77, 0, src, wt);
	PW_CHECK_EQ(pw_chan_write(p.a, src, 300, 0), 300);
	size_t rt = many_iov(rv, NIOV, dst, 3);
	PW_CHECK(rt > 300, "rt %zu", rt);
	memset(dst, 0, sizeof(dst));
	PW_CHECK_EQ(pw_chan_readv(p.b, rv, NIOV, 0), 300);
	PW_CHECK(memcmp(dst, src, 300) == 0, "short readv data differs");
	/* Peek across windows: peeking may stop early but must be a prefix. */
	PW_CHECK_EQ(pw_chan_write(p.a, src, 300, 0), 300);
	memset(dst, 0, sizeof(dst));
	ssize_t n = pw_chan_readv(p.b, rv, NIOV, PW_CHAN_PEEK);
	PW_CHECK(n > 0 && n <= 300, "peekv %zd", n);
	PW_CHECK(memcmp(dst, src, (size_t)n) == 0, "peekv data");
	PW_CHECK_EQ(pw_chan_read(p.b, dst, sizeof(dst), 0), 300);
	/* A DONTWAIT writev larger than the space: a short count, in order. */
	static uint8_t big[RING_SIZE + 4000];
	struct iovec bv[NIOV];
	for (int i = 0; i < NIOV; i++)
		bv[i] = (struct iovec){ .iov_base = big + (size_t)i * 200, .iov_len = 200 };
	pw_stream_fill(78, 0, big, sizeof(big));
	PW_CHECK_EQ(pw_chan_writev(p.a, bv, NIOV, PW_CHAN_DONTWAIT), RING_SIZE);
	static uint8_t back[RING_SIZE];
	PW_CHECK_EQ(pw_chan_read(p.b, back, sizeof(back), PW_CHAN_WAITALL), RING_SIZE);
	PW_CHECK(memcmp(back, big, RING_SIZE) == 0, "big writev data");
	pair_close(&p);
}

static void test_peek(void)
{
	uint8_t a[64], b[64];
	struct pair p;

	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, "0123456789", 10, 0), 10);
	PW_CHECK_EQ(pw_chan_read(p.b, a, 4, PW_CHAN_PEEK), 4);
	PW_CHECK(memcmp(a, "0123", 4) == 0, "peek");
	PW_CHECK_EQ(pw_chan_read(p.b, a, sizeof(a), PW_CHAN_PEEK | PW_CHAN_DONTWAIT), 10);
	/* PEEK with WAITALL does not wait for more. */
	PW_CHECK_EQ(pw_chan_read(p.b, a, sizeof(a), PW_CHAN_PEEK | PW_CHAN_WAITALL), 10);
	CHECK_MASK(pw_chan_poll(p.b), POLLIN, 0);
	struct pw_chan_stats st;
	pw_chan_get_stats(p.b, &st);
	PW_CHECK_EQ(st.bytes_in, 0);
	PW_CHECK_EQ(pw_chan_read(p.b, b, sizeof(b), 0), 10);
	PW_CHECK(memcmp(a, b, 10) == 0 && memcmp(b, "0123456789", 10) == 0, "read after peek");
	PW_CHECK_EQ(pw_chan_read(p.b, a, sizeof(a), PW_CHAN_PEEK | PW_CHAN_DONTWAIT), -EAGAIN);
	pw_chan_get_stats(p.b, &st);
	PW_CHECK_EQ(st.bytes_in, 10);
	/* At EOF, a peek returns 0 too. */
	PW_CHECK_EQ(pw_chan_shutdown(p.a, SHUT_WR), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, a, sizeof(a), PW_CHAN_PEEK), 0);
	pair_close(&p);
}

/* A thread that writes @pieces pieces of @piece bytes, pausing between them. */
struct dribble {
	struct pw_chan *c;
	int pieces;
	size_t piece;
	unsigned pause_ms;
	bool shut_after;
	_Atomic int written;
};

static void *dribble_main(void *arg)
{
	struct dribble *d = arg;
	uint8_t buf[512];

	for (int i = 0; i < d->pieces; i++) {
		pw_test_sleep_ms(d->pause_ms);
		pw_stream_fill(5, (uint64_t)i * d->piece, buf, d->piece);
		if (pw_chan_write(d->c, buf, d->piece, 0) != (ssize_t)d->piece)
			PW_FAIL("dribble write %d", i);
		atomic_store(&d->written, i + 1);
	}
	if (d->shut_after && pw_chan_shutdown(d->c, SHUT_WR) != 0)
		PW_FAIL("dribble shutdown");
	return NULL;
}

static void test_waitall(void)
{
	uint8_t buf[2048];
	struct pair p;
	pthread_t th;

	/* All 1000 bytes arrive in 10 pieces; WAITALL returns them all at once. */
	pair_open(&p, RING_SIZE);
	struct dribble d = { .c = p.a, .pieces = 10, .piece = 100, .pause_ms = 5 };
	uint64_t t0 = pw_test_now_ns();
	PW_CHECK_EQ(pthread_create(&th, NULL, dribble_main, &d), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 1000, PW_CHAN_WAITALL), 1000);
	/* The last piece cannot come before 10 pauses of 5 ms. */
	uint64_t dt = pw_test_now_ns() - t0;
	PW_CHECK(dt >= 45000000ull, "WAITALL returned after %.3f ms", (double)dt / 1e6);
	PW_CHECK(pw_stream_check(5, 0, buf, 1000) < 0, "WAITALL data");
	PW_CHECK_EQ(pthread_join(th, NULL), 0);
	PW_CHECK_EQ(atomic_load(&d.written), 10);

	/* Same with readv and iovecs smaller than the pieces. */
	struct dribble d2 = { .c = p.a, .pieces = 6, .piece = 50, .pause_ms = 5 };
	struct iovec iov[NIOV];
	size_t t = many_iov(iov, NIOV, buf, 1);
	PW_CHECK(t >= 300, "iov total %zu", t);
	/* Cut the iovecs down to exactly 300 bytes (trailing ones empty). */
	for (int i = NIOV - 1; t > 300; i--) {
		size_t cut = iov[i].iov_len < t - 300 ? iov[i].iov_len : t - 300;
		iov[i].iov_len -= cut;
		t -= cut;
	}
	PW_CHECK_EQ(pthread_create(&th, NULL, dribble_main, &d2), 0);
	PW_CHECK_EQ(pw_chan_readv(p.b, iov, NIOV, PW_CHAN_WAITALL), 300);
	PW_CHECK(pw_stream_check(5, 0, buf, 300) < 0, "WAITALL readv data");
	PW_CHECK_EQ(pthread_join(th, NULL), 0);

	/* Without WAITALL, a read returns what is there. */
	struct dribble d3 = { .c = p.a, .pieces = 3, .piece = 100, .pause_ms = 20 };
	PW_CHECK_EQ(pthread_create(&th, NULL, dribble_main, &d3), 0);
	ssize_t n = pw_chan_read(p.b, buf, sizeof(buf), 0);
	/* Normally the first piece alone; more if this thread was slow to run. */
	PW_CHECK(n == 100 || n == 200 || n == 300, "read %zd", n);
	PW_CHECK_EQ(pthread_join(th, NULL), 0);
	if (n < 300)
		PW_CHECK_EQ(pw_chan_read(p.b, buf + n, sizeof(buf), 0), 300 - n);
	PW_CHECK(pw_stream_check(5, 0, buf, 300) < 0, "plain read data");

	/* EOF before all of it: WAITALL returns the short count, then 0. */
	struct dribble d4 = {
		.c = p.a, .pieces = 3, .piece = 100, .pause_ms = 5, .shut_after = true
	};
	PW_CHECK_EQ(pthread_create(&th, NULL, dribble_main, &d4), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 1000, PW_CHAN_WAITALL), 300);
	PW_CHECK(pw_stream_check(5, 0, buf, 300) < 0, "WAITALL short data");
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 1000, PW_CHAN_WAITALL), 0);
	PW_CHECK_EQ(pthread_join(th, NULL), 0);

	/* WAITALL with DONTWAIT does not wait. */
	PW_CHECK_EQ(pw_chan_read(p.a, buf, 10, PW_CHAN_WAITALL | PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_write(p.b, "abc", 3, 0), 3);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, 10, PW_CHAN_WAITALL | PW_CHAN_DONTWAIT), 3);
	pair_close(&p);
}

static void test_shutdown(void)
{
	uint8_t buf[64];
	struct pair p;

	/* SHUT_WR: the peer drains, then EOF; our writes fail with EPIPE. */
	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, "last words", 10, 0), 10);
	PW_CHECK_EQ(pw_chan_shutdown(p.a, SHUT_WR), 0);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, 0), -EPIPE);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, PW_CHAN_DONTWAIT), -EPIPE);
	CHECK_MASK(pw_chan_poll(p.a), POLLOUT, POLLIN | POLLHUP | POLLERR | POLLRDHUP);
	CHECK_MASK(pw_chan_poll(p.b), POLLIN | POLLRDHUP | POLLOUT, POLLHUP | POLLERR);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, 4, 0), 4);
	PW_CHECK_EQ(pw_chan_read(p.b, buf + 4, sizeof(buf), 0), 6);
	PW_CHECK(memcmp(buf, "last words", 10) == 0, "drained data");
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 0);
	CHECK_MASK(pw_chan_wait(p.b, POLLIN, -1), POLLIN | POLLRDHUP, POLLERR);
	/* The other direction still works. */
	PW_CHECK_EQ(pw_chan_write(p.b, "reply", 5, 0), 5);
	CHECK_MASK(pw_chan_poll(p.a), POLLIN | POLLOUT, POLLHUP | POLLERR | POLLRDHUP);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), 5);
	PW_CHECK(memcmp(buf, "reply", 5) == 0, "reply");
	/* Both directions shut: hang-up on both ends. */
	PW_CHECK_EQ(pw_chan_shutdown(p.b, SHUT_WR), 0);
	CHECK_MASK(pw_chan_poll(p.a), POLLIN | POLLRDHUP | POLLHUP, POLLERR);
	CHECK_MASK(pw_chan_poll(p.b), POLLIN | POLLRDHUP | POLLHUP, POLLERR);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), 0);
	/* Shutting down twice is harmless. */
	PW_CHECK_EQ(pw_chan_shutdown(p.a, SHUT_WR), 0);
	pair_close(&p);

	/* SHUT_RD: our reads return 0, even with data waiting; writing still works. */
	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, "unread", 6, 0), 6);
	PW_CHECK_EQ(pw_chan_shutdown(p.b, SHUT_RD), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_PEEK), 0);
	CHECK_MASK(pw_chan_poll(p.b), POLLIN | POLLOUT, POLLERR | POLLHUP);
	PW_CHECK_EQ(pw_chan_write(p.b, "still", 5, 0), 5);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), 5);
	pair_close(&p);

	/* SHUT_RDWR: both. */
	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, "unread", 6, 0), 6);
	PW_CHECK_EQ(pw_chan_shutdown(p.b, SHUT_RDWR), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_write(p.b, "x", 1, 0), -EPIPE);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), 0);
	CHECK_MASK(pw_chan_poll(p.a), POLLIN | POLLRDHUP, POLLERR);
	pair_close(&p);
}

static void test_close_abort(void)
{
	uint8_t buf[64];
	struct pair p;

	/* Peer closes: data first, then EOF; writes fail with EPIPE. */
	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.b, "bye", 3, 0), 3);
	pw_chan_close(p.b);
	CHECK_MASK(pw_chan_poll(p.a), POLLIN | POLLHUP, POLLERR);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), 3);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, 0), -EPIPE);
	CHECK_MASK(pw_chan_wait(p.a, POLLIN | POLLOUT, -1), POLLHUP, POLLERR);
	pw_chan_close(p.a);

	/* Peer aborts: reset on read and write, POLLERR. */
	pair_open(&p, RING_SIZE);
	pw_chan_abort(p.b);
	CHECK_MASK(pw_chan_poll(p.a), POLLERR | POLLHUP, 0);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), 0), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_read(p.a, buf, sizeof(buf), PW_CHAN_DONTWAIT), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, 0), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, PW_CHAN_DONTWAIT), -ECONNRESET);
	CHECK_MASK(pw_chan_wait(p.a, POLLIN, -1), POLLERR, 0);
	pw_chan_close(p.a);

	pw_chan_close(NULL);
	pw_chan_abort(NULL);
}

static void test_poll_wait(void)
{
	static uint8_t big[RING_SIZE];
	uint8_t buf[8];
	struct pair p;

	pair_open(&p, RING_SIZE);
	/* Fresh: writable, nothing else. */
	CHECK_MASK(pw_chan_poll(p.a), POLLOUT, POLLIN | POLLHUP | POLLERR | POLLRDHUP);
	/* wait: timeout 0 and 20 ms return 0; the latter waits at least 20 ms. */
	PW_CHECK_EQ(pw_chan_wait(p.b, POLLIN, 0), 0);
	uint64_t t0 = pw_test_now_ns();
	PW_CHECK_EQ(pw_chan_wait(p.b, POLLIN, 20), 0);
	uint64_t dt = pw_test_now_ns() - t0;
	PW_CHECK(dt >= 19000000ull, "wait(20 ms) returned after %.3f ms", (double)dt / 1e6);
	PW_CHECK(dt < 5000000000ull, "wait(20 ms) returned after %.3f ms", (double)dt / 1e6);
	/* Ready events return at once, with the mask. */
	CHECK_MASK(pw_chan_wait(p.b, POLLOUT, -1), POLLOUT, POLLIN);
	CHECK_MASK(pw_chan_wait(p.b, POLLIN | POLLOUT, 0), POLLOUT, POLLIN);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, 0), 1);
	CHECK_MASK(pw_chan_poll(p.b), POLLIN | POLLOUT, POLLHUP | POLLERR | POLLRDHUP);
	CHECK_MASK(pw_chan_wait(p.b, POLLIN, -1), POLLIN, 0);
	CHECK_MASK(pw_chan_wait(p.b, POLLIN, 0), POLLIN, 0);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), 1);
	/* Full: POLLOUT goes, wait(POLLOUT) times out. */
	PW_CHECK_EQ(pw_chan_write(p.a, big, sizeof(big), 0), RING_SIZE);
	CHECK_MASK(pw_chan_poll(p.a), 0, POLLOUT | POLLIN);
	PW_CHECK_EQ(pw_chan_wait(p.a, POLLOUT, 0), 0);
	PW_CHECK_EQ(pw_chan_wait(p.a, POLLOUT, 20), 0);
	/* Waiting for POLLIN on the side without data while the other has some. */
	PW_CHECK_EQ(pw_chan_wait(p.a, POLLIN, 20), 0);
	PW_CHECK_EQ(pw_chan_read(p.b, big, sizeof(big), 0), RING_SIZE);
	CHECK_MASK(pw_chan_poll(p.a), POLLOUT, POLLIN);
	pair_close(&p);
}

static void test_stats(void)
{
	uint8_t buf[3000];
	struct pw_chan_stats st;
	struct pair p;
	uint64_t out = 0, in = 0, rounds = 0;

	pair_open(&p, RING_SIZE);
	pw_chan_get_stats(p.a, &st);
	PW_CHECK(st.bytes_out == 0 && st.bytes_in == 0 && st.wakes_sent == 0 && st.sleeps == 0,
		 "fresh stats %llu %llu %llu %llu", (unsigned long long)st.bytes_out,
		 (unsigned long long)st.bytes_in, (unsigned long long)st.wakes_sent,
		 (unsigned long long)st.sleeps);
	for (size_t len = 1; len <= sizeof(buf); len = len * 3 + 1) {
		PW_CHECK_EQ(pw_chan_write(p.a, buf, len, 0), len);
		out += len;
		PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_PEEK), len);
		PW_CHECK_EQ(pw_chan_read(p.b, buf, len / 2 + 1, 0), len / 2 + 1);
		in += len / 2 + 1;
		if (len > len / 2 + 1) {
			PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), 0), len - (len / 2 + 1));
			in += len - (len / 2 + 1);
		}
		PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
		PW_CHECK_EQ(pw_chan_write(p.b, buf, 7, 0), 7);
		PW_CHECK_EQ(pw_chan_read(p.a, buf, 7, 0), 7);
		rounds++;
	}
	PW_CHECK_EQ(pw_chan_write(p.a, buf, 5, PW_CHAN_DONTWAIT), 5);
	out += 5;
	pw_chan_get_stats(p.a, &st);
	PW_CHECK_EQ(st.bytes_out, out);
	PW_CHECK_EQ(st.bytes_in, 7 * rounds);
	pw_chan_get_stats(p.b, &st);
	PW_CHECK_EQ(st.bytes_in, in);
	PW_CHECK_EQ(st.bytes_out, 7 * rounds);
	/* Nobody slept: no wake-ups, no sleeps. */
	PW_CHECK_EQ(st.wakes_sent, 0);
	PW_CHECK_EQ(st.sleeps, 0);
	pair_close(&p);
}

/*
 * -EINTR: a signal while sleeping ends the call, unless it already moved
 * bytes. A thread signals the main thread every 20 ms until told to stop, so
 * that one signal surely lands in the sleep (a signal during the spin is just
 * handled and the call goes on).
 */
struct signaller {
	pthread_t target, th;
	atomic_bool stop;
};

static atomic_int sigusr1_count;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigusr1_count, 1);
}

static void *signaller_main(void *arg)
{
	struct signaller *s = arg;

	while (!atomic_load(&s->stop)) {
		pw_test_sleep_ms(20);
		if (!atomic_load(&s->stop))
			pthread_kill(s->target, SIGUSR1);
	}
	return NULL;
}

static void signaller_start(struct signaller *s)
{
	s->target = pthread_self();
	atomic_store(&s->stop, false);
	PW_CHECK_EQ(pthread_create(&s->th, NULL, signaller_main, s), 0);
}

static void signaller_stop(struct signaller *s)
{
	atomic_store(&s->stop, true);
	PW_CHECK_EQ(pthread_join(s->th, NULL), 0);
}

static void test_eintr(void)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 }; /* no SA_RESTART */
	static uint8_t big[RING_SIZE];
	uint8_t buf[64];
	struct signaller sig;
	struct pair p;
	ssize_t n;

	sigemptyset(&sa.sa_mask);
	PW_CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	pair_open(&p, RING_SIZE);

	signaller_start(&sig);
	n = pw_chan_read(p.b, buf, sizeof(buf), 0);
	signaller_stop(&sig);
	PW_CHECK_EQ(n, -EINTR);
	PW_CHECK(atomic_load(&sigusr1_count) > 0, "no signal");

	signaller_start(&sig);
	int m = pw_chan_wait(p.b, POLLIN, -1);
	signaller_stop(&sig);
	PW_CHECK_EQ(m, -EINTR);

	/* WAITALL that has some bytes returns them. */
	PW_CHECK_EQ(pw_chan_write(p.a, "abc", 3, 0), 3);
	signaller_start(&sig);
	n = pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_WAITALL);
	signaller_stop(&sig);
	PW_CHECK_EQ(n, 3);
	PW_CHECK(memcmp(buf, "abc", 3) == 0, "data");

	/* A writer on a full ring. */
	PW_CHECK_EQ(pw_chan_write(p.a, big, sizeof(big), 0), RING_SIZE);
	signaller_start(&sig);
	n = pw_chan_write(p.a, "x", 1, 0);
	signaller_stop(&sig);
	PW_CHECK_EQ(n, -EINTR);
	/* A writer that got some bytes in returns the count. */
	PW_CHECK_EQ(pw_chan_read(p.b, big, 100, 0), 100);
	signaller_start(&sig);
	n = pw_chan_write(p.a, big, 1000, 0);
	signaller_stop(&sig);
	PW_CHECK_EQ(n, 100);
	/* Nothing was lost or doubled on the way. */
	PW_CHECK_EQ(pw_chan_read(p.b, big, sizeof(big), 0), RING_SIZE);
	PW_CHECK_EQ(pw_chan_read(p.b, big, sizeof(big), PW_CHAN_DONTWAIT), -EAGAIN);

	sa.sa_handler = SIG_DFL;
	PW_CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	pair_close(&p);
}

/* Is @fd readable right now? */
static bool fd_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* Is @fd writable right now? */
static bool fd_writable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT);
}

/*
 * The readiness fd means what a socket's does: after a read got -EAGAIN it
 * turns readable once a read could progress; after a write got -EAGAIN it is
 * unwritable until a write could progress.
 */
static void test_readiness_fd(void)
{
	static uint8_t big[RING_SIZE];
	uint8_t buf[16];
	struct pair p;

	pair_open(&p, RING_SIZE);
	PW_CHECK(pw_chan_fd(p.a) >= 0 && pw_chan_fd(p.b) >= 0 && pw_chan_fd(p.a) != pw_chan_fd(p.b),
		 "fds %d %d", pw_chan_fd(p.a), pw_chan_fd(p.b));
	/* Reader: EAGAIN, then data arrives -> readable. */
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_write(p.a, "d", 1, 0), 1);
	PW_CHECK(fd_readable(pw_chan_fd(p.b)), "data arrived but the fd is not readable");
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 1);
	/* Again (the stale wake-up must not hide the next one). */
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_write(p.a, "e", 1, 0), 1);
	PW_CHECK(fd_readable(pw_chan_fd(p.b)), "second data: fd not readable");
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 1);
	/* Writer: EAGAIN on a full ring makes the fd unwritable; the reader
	 * frees space -> writable again. */
	PW_CHECK(fd_writable(pw_chan_fd(p.a)), "ring empty but the fd is not writable");
	PW_CHECK_EQ(pw_chan_write(p.a, big, sizeof(big), 0), RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK(!fd_writable(pw_chan_fd(p.a)), "ring full after -EAGAIN but the fd is writable");
	PW_CHECK_EQ(pw_chan_read(p.b, big, 100, 0), 100);
	PW_CHECK(fd_writable(pw_chan_fd(p.a)), "space freed but the fd is not writable");
	PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, PW_CHAN_DONTWAIT), 1);
	PW_CHECK_EQ(pw_chan_read(p.b, big, sizeof(big), 0), RING_SIZE - 99);
	/* Shutdown by the peer -> readable. */
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_shutdown(p.a, SHUT_WR), 0);
	PW_CHECK(fd_readable(pw_chan_fd(p.b)), "shutdown but the fd is not readable");
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 0);
	pair_close(&p);

	/*
	 * One end used in both directions from one event loop, as an fd for
	 * epoll invites: a read got -EAGAIN, then data came, then a write got
	 * -EAGAIN. The read could now progress, so the fd must be readable.
	 */
	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_write(p.a, "d", 1, 0), 1);
	PW_CHECK_EQ(pw_chan_write(p.b, big, sizeof(big), 0), RING_SIZE);
	PW_CHECK_EQ(pw_chan_write(p.b, "x", 1, PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK(fd_readable(pw_chan_fd(p.b)),
		 "data is waiting after a read's EAGAIN, but a later write's EAGAIN consumed "
		 "the wake-up: the fd is not readable");
	pair_close(&p);
}

/* chan.h: writes fail with -EPIPE once the peer "shut its reading side". */
/* Events epoll reports for @fd within @ms, 0 if none. */
static uint32_t epoll_events(int ep, int ms)
{
	struct epoll_event ev = { 0 };
	int n;

	do
		n = epoll_wait(ep, &ev, 1, ms);
	while (n < 0 && errno == EINTR);
	PW_CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
	return n ? ev.events : 0;
}

/* Edge-triggered epoll on the readiness fd: each -EAGAIN is followed by exactly
 * one edge when progress becomes possible, for reads and for writes. */
static void test_epoll_et(void)
{
	static uint8_t big[RING_SIZE];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	uint8_t buf[16];
	struct pair p;
	int ep_r, ep_w;

	pair_open(&p, RING_SIZE);
	ep_r = epoll_create1(EPOLL_CLOEXEC);
	ep_w = epoll_create1(EPOLL_CLOEXEC);
	PW_CHECK(ep_r >= 0 && ep_w >= 0, "epoll_create1: %s", strerror(errno));
	PW_CHECK_EQ(epoll_ctl(ep_r, EPOLL_CTL_ADD, pw_chan_fd(p.b), &ev), 0);
	ev.events = EPOLLOUT | EPOLLET;
	PW_CHECK_EQ(epoll_ctl(ep_w, EPOLL_CTL_ADD, pw_chan_fd(p.a), &ev), 0);

	for (int round = 0; round < 3; round++) {
		PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
		epoll_events(ep_r, 0); /* forget edges from before the -EAGAIN */
		PW_CHECK_EQ(epoll_events(ep_r, 0), 0);
		PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, 0), 1);
		PW_CHECK(epoll_events(ep_r, 1000) & EPOLLIN, "round %d: no EPOLLIN edge", round);
		PW_CHECK_EQ(pw_chan_read(p.b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 1);
	}

	epoll_events(ep_w, 0); /* the edge of the registration itself */
	for (int round = 0; round < 3; round++) {
		ssize_t fill = pw_chan_write(p.a, big, sizeof(big), PW_CHAN_DONTWAIT);

		PW_CHECK(fill > 0, "round %d: fill %zd", round, fill);
		PW_CHECK_EQ(pw_chan_write(p.a, "x", 1, PW_CHAN_DONTWAIT), -EAGAIN);
		epoll_events(ep_w, 0);
		PW_CHECK_EQ(epoll_events(ep_w, 0), 0);
		PW_CHECK_EQ(pw_chan_read(p.b, big, 100, 0), 100);
		PW_CHECK(epoll_events(ep_w, 1000) & EPOLLOUT, "round %d: no EPOLLOUT edge", round);
		PW_CHECK_EQ(pw_chan_write(p.a, big, 100, PW_CHAN_DONTWAIT), 100);
		PW_CHECK_EQ(pw_chan_read(p.b, big, sizeof(big), 0), RING_SIZE);
	}
	close(ep_r);
	close(ep_w);
	pair_close(&p);
}

static void test_peer_shut_rd(void)
{
	struct pair p;

	pair_open(&p, RING_SIZE);
	PW_CHECK_EQ(pw_chan_shutdown(p.b, SHUT_RD), 0);
	ssize_t n = pw_chan_write(p.a, "x", 1, PW_CHAN_DONTWAIT);
	PW_CHECK(n == -EPIPE, "write after the peer's SHUT_RD returned %zd, chan.h says -EPIPE", n);
	pair_close(&p);
}

/* What podwired uses: armed readers, the state read without a mapping, and
 * speaking for a side that never attached. */
static void test_third_party(void)
{
	int memfd, sv[2];
	struct pw_chan *a, *b;
	struct pw_chan_state st;
	char buf[16];

	PW_CHECK(pw_chan_ring_size_ok(RING_SIZE) && !pw_chan_ring_size_ok(RING_SIZE + 1) &&
			 !pw_chan_ring_size_ok(PW_RING_MAX * 2u),
		 "ring size check");
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0x2, &memfd, sv), -EINVAL);
	PW_CHECK_EQ(pw_chan_state_read(-1, &st), -EBADF);
	PW_CHECK_EQ(pw_chan_state_read(sv[0] = socket(AF_UNIX, SOCK_STREAM, 0), &st), -ESPIPE);
	close(sv[0]);
	int other = memfd_create("not-podwire", MFD_CLOEXEC);
	PW_CHECK(other >= 0 && ftruncate(other, 8192) == 0, "memfd");
	PW_CHECK_EQ(pw_chan_state_read(other, &st), -EPROTO);
	PW_CHECK(ftruncate(other, 100) == 0, "ftruncate");
	PW_CHECK_EQ(pw_chan_state_read(other, &st), -EPROTO); /* short */
	close(other);

	/* Armed: the first byte side 0 writes makes side 1's socket readable
	 * although side 1 never waited. */
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, PW_CHAN_ARMED, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_state_read(memfd, &st), 0);
	PW_CHECK(!st.attached[0] && !st.attached[1] && !st.closed[0] && !st.closed[1] &&
			 st.bytes[0] == 0 && st.bytes[1] == 0,
		 "fresh state");
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_write(a, "hello", 5, 0), 5);
	PW_CHECK(fd_readable(sv[1]), "armed reader's socket not readable");
	PW_CHECK_EQ(pw_chan_state_read(memfd, &st), 0);
	PW_CHECK(st.attached[0] && !st.attached[1] && st.bytes[0] == 5 && st.bytes[1] == 0 &&
			 !st.closed[0] && !st.closed[1],
		 "attached %d %d bytes %llu %llu", st.attached[0], st.attached[1],
		 (unsigned long long)st.bytes[0], (unsigned long long)st.bytes[1]);

	/* Side 1 never comes: the creator speaks for it, and side 0 reads a
	 * reset. A side that attached speaks for itself. */
	PW_CHECK_EQ(pw_chan_reset_unattached(memfd, 2), -EINVAL);
	PW_CHECK_EQ(pw_chan_reset_unattached(memfd, 0), -EBUSY);
	PW_CHECK_EQ(pw_chan_reset_unattached(memfd, 1), 0);
	PW_CHECK_EQ(pw_chan_state_read(memfd, &st), 0);
	PW_CHECK(st.closed[1] && st.wr_done[1] && !st.closed[0], "reset state");
	PW_CHECK_EQ(pw_chan_read(a, buf, sizeof(buf), PW_CHAN_DONTWAIT), -ECONNRESET);
	pw_chan_abort(a);
	PW_CHECK_EQ(pw_chan_state_read(memfd, &st), 0);
	PW_CHECK(st.closed[0], "side 0 closed");
	close(memfd);
	close(sv[1]);

	/* Unarmed: no wake byte for a reader that never slept. */
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b), 0);
	PW_CHECK_EQ(pw_chan_reset_unattached(memfd, 1), -EBUSY);
	close(memfd);
	PW_CHECK_EQ(pw_chan_write(a, "x", 1, 0), 1);
	PW_CHECK(!fd_readable(pw_chan_fd(b)), "unarmed reader woken");
	pw_chan_close(a);
	pw_chan_close(b);
}

int main(void)
{
	pw_test_watchdog(50);
	test_args();
	test_zero_length();
	test_dontwait_partial();
	test_many_iov();
	test_peek();
	test_waitall();
	test_shutdown();
	test_close_abort();
	test_poll_wait();
	test_stats();
	test_eintr();
	test_readiness_fd();
	test_epoll_et();
	test_peer_shut_rd();
	test_third_party();
	return 0;
}
