// SPDX-License-Identifier: MIT
/*
 * Every message size from 1 byte to 4 MiB (each power of two, one less and
 * one more), between two threads over a channel with the router's default
 * ring (256 KiB): the writer splits each message at random points into
 * write and writev calls, the reader takes it in random-sized reads, some
 * with WAITALL, and answers with one byte, so every message starts with the
 * reader asleep or spinning. Every byte is checked.
 *
 * Then, with one thread, what a message larger than a publication chunk
 * must still do in one call: a write that fits, a peek and a plain read
 * each move it whole.
 */
#include <pthread.h>
#include <sys/uio.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE (256u << 10)
#define MAX_SIZE  (4u << 20)

struct end {
	struct pw_chan *c;
	struct pw_rng rng;
	uint8_t *buf;
};

static uint32_t sizes[3 * 23];
static unsigned nsizes;

static void sizes_add(uint32_t v, uint32_t max)
{
	if (v && v <= max && (!nsizes || v > sizes[nsizes - 1]))
		sizes[nsizes++] = v;
}

static void sizes_make(void)
{
	uint32_t max = PW_TEST_TSAN ? (1u << 20) : MAX_SIZE; /* TSan is slow */

	for (uint32_t p = 1; p && p <= max; p <<= 1) {
		sizes_add(p - 1, max);
		sizes_add(p, max);
		sizes_add(p + 1, max);
	}
}

static void *writer(void *arg)
{
	struct end *e = arg;
	uint8_t ack;

	for (unsigned i = 0; i < nsizes; i++) {
		uint32_t size = sizes[i], pos = 0;

		pw_stream_fill(i, 0, e->buf, size);
		while (pos < size) {
			uint32_t len = (uint32_t)pw_rng_range(&e->rng, 1, size - pos);
			ssize_t n;

			if (pw_rng_range(&e->rng, 0, 1)) {
				n = pw_chan_write(e->c, e->buf + pos, len, 0);
			} else {
				uint32_t cut = (uint32_t)pw_rng_range(&e->rng, 0, len);
				struct iovec iov[2] = {
					{ .iov_base = e->buf + pos, .iov_len = cut },
					{ .iov_base = e->buf + pos + cut, .iov_len = len - cut },
				};
				n = pw_chan_writev(e->c, iov, 2, 0);
			}
			PW_CHECK(n == (ssize_t)len, "size %u: write of %u at %u: %zd", size, len,
				 pos, n);
			pos += len;
		}
		PW_CHECK_EQ(pw_chan_read(e->c, &ack, 1, 0), 1);
		PW_CHECK(ack == (uint8_t)i, "size %u: ack %u", size, ack);
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct end *e = arg;

	for (unsigned i = 0; i < nsizes; i++) {
		uint32_t size = sizes[i], pos = 0;
		uint8_t ack = (uint8_t)i;

		memset(e->buf, 0, size);
		while (pos < size) {
			uint32_t len = (uint32_t)pw_rng_range(&e->rng, 1, size - pos);
			int flags = pw_rng_range(&e->rng, 0, 3) ? 0 : PW_CHAN_WAITALL;
			ssize_t n = pw_chan_read(e->c, e->buf + pos, len, flags);

			PW_CHECK(n > 0 && n <= (ssize_t)len, "size %u: read of %u at %u: %zd", size,
				 len, pos, n);
			PW_CHECK(!(flags & PW_CHAN_WAITALL) || n == (ssize_t)len,
				 "size %u: WAITALL read of %u: %zd", size, len, n);
			pos += (uint32_t)n;
		}
		long long bad = pw_stream_check(i, 0, e->buf, size);
		PW_CHECK(bad < 0, "size %u: byte %lld differs", size, bad);
		PW_CHECK_EQ(pw_chan_write(e->c, &ack, 1, 0), 1);
	}
	return NULL;
}

static void test_sizes(void)
{
	struct end a = { 0 }, b = { 0 };
	int memfd, sv[2];
	pthread_t ta, tb;

	sizes_make();
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a.c), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b.c), 0);
	close(memfd);
	pw_rng_seed(&a.rng, 1);
	pw_rng_seed(&b.rng, 2);
	a.buf = malloc(MAX_SIZE);
	b.buf = malloc(MAX_SIZE);
	PW_CHECK(a.buf && b.buf, "malloc");
	PW_CHECK_EQ(pthread_create(&ta, NULL, writer, &a), 0);
	PW_CHECK_EQ(pthread_create(&tb, NULL, reader, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	printf("ok: %u sizes, 1 B to %u B, every byte checked\n", nsizes, sizes[nsizes - 1]);
	pw_chan_close(a.c);
	pw_chan_close(b.c);
	free(a.buf);
	free(b.buf);
}

/* Larger than a chunk, smaller than the ring: one call moves it whole. */
static void test_one_call(void)
{
	static uint8_t src[200u << 10], dst[sizeof(src)];
	struct pw_chan *a, *b;
	int memfd, sv[2];

	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b), 0);
	close(memfd);
	pw_stream_fill(99, 0, src, sizeof(src));
	PW_CHECK_EQ(pw_chan_write(a, src, sizeof(src), PW_CHAN_DONTWAIT), (ssize_t)sizeof(src));
	PW_CHECK_EQ(pw_chan_read(b, dst, sizeof(dst), PW_CHAN_PEEK), (ssize_t)sizeof(src));
	PW_CHECK(memcmp(src, dst, sizeof(src)) == 0, "peek data");
	memset(dst, 0, sizeof(dst));
	PW_CHECK_EQ(pw_chan_read(b, dst, sizeof(dst), PW_CHAN_DONTWAIT), (ssize_t)sizeof(src));
	PW_CHECK(memcmp(src, dst, sizeof(src)) == 0, "read data");
	pw_chan_close(a);
	pw_chan_close(b);
}

static void expect_windows(int memfd, uint32_t w0, uint32_t w1)
{
	struct pw_chan_state st;

	PW_CHECK_EQ(pw_chan_state_read(memfd, &st), 0);
	PW_CHECK(st.window[0] == w0 && st.window[1] == w1, "windows %u %u, want %u %u",
		 st.window[0], st.window[1], w0, w1);
}

/* Move @len bytes from @w to @r, every byte checked. */
static void move(struct pw_chan *w, struct pw_chan *r, uint64_t seed, size_t len)
{
	static uint8_t src[1u << 20], dst[sizeof(src)];

	pw_stream_fill(seed, 0, src, len);
	PW_CHECK_EQ(pw_chan_write(w, src, len, PW_CHAN_DONTWAIT), (ssize_t)len);
	PW_CHECK_EQ(pw_chan_read(r, dst, len, PW_CHAN_WAITALL), (ssize_t)len);
	PW_CHECK(memcmp(src, dst, len) == 0, "%zu bytes", len);
}

/* A channel uses 64 KiB of each 1 MiB ring until a write is bulk: half the
 * window or more, or more than fits. Each direction on its own. */
static void test_window(void)
{
	const uint32_t start = PW_RING_WINDOW_START, full = 1u << 20;
	static uint8_t buf[48u << 10];
	struct pw_chan *a, *b;
	int memfd, sv[2];

	PW_CHECK_EQ(pw_chan_create(full, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b), 0);
	expect_windows(memfd, start, start);
	for (int i = 0; i < 100; i++)
		move(a, b, (uint64_t)i, start / 2 - 1);
	expect_windows(memfd, start, start);
	move(a, b, 1000, start / 2);
	expect_windows(memfd, full, start);
	move(a, b, 1001, full);
	/* Bulk with bytes unread: the window opens at the next empty moment. */
	PW_CHECK_EQ(pw_chan_write(b, buf, 10, PW_CHAN_DONTWAIT), 10);
	PW_CHECK_EQ(pw_chan_write(b, buf, sizeof(buf), PW_CHAN_DONTWAIT), (ssize_t)sizeof(buf));
	expect_windows(memfd, full, start);
	PW_CHECK_EQ(pw_chan_read(a, buf, sizeof(buf), PW_CHAN_WAITALL), (ssize_t)sizeof(buf));
	PW_CHECK_EQ(pw_chan_read(a, buf, 10, PW_CHAN_WAITALL), 10);
	move(b, a, 1002, 1);
	expect_windows(memfd, full, full);
	move(b, a, 1003, full);
	pw_chan_close(a);
	pw_chan_close(b);
	close(memfd);
}

int main(void)
{
	pw_test_watchdog(PW_TEST_SANITIZED ? 240 : 60);
	test_one_call();
	test_window();
	test_sizes();
	return 0;
}
