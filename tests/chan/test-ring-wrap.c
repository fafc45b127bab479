// SPDX-License-Identifier: MIT
/*
 * pw_ring in plain process memory, one thread: every start offset of small
 * rings, messages that cross the wrap, read/readv/peek, full and empty rings,
 * zero-length calls, writev, free-running indices crossing 2^32, and the
 * window widening only while the ring is empty.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include <podwire/chan.h>

#include "ring.h"

#include "pw_test_chan.h"

#define GUARD	   64u
#define GUARD_BYTE 0xa5

struct tring {
	struct pw_shm_ring *shm;
	uint8_t *mem; /* GUARD + size + GUARD */
	uint8_t *data;
	uint32_t size;
	struct pw_ring prod, cons;
};

static void tring_alloc(struct tring *t, uint32_t size)
{
	t->shm = aligned_alloc(64, sizeof(*t->shm));
	t->mem = malloc(size + 2 * GUARD);
	PW_CHECK(t->shm && t->mem, "out of memory");
	t->data = t->mem + GUARD;
	t->size = size;
}

static void tring_free(struct tring *t)
{
	free(t->shm);
	free(t->mem);
}

/* Format with both indices at @start, attach both roles. */
static void tring_reset(struct tring *t, uint32_t start)
{
	memset(t->shm, 0x5a, sizeof(*t->shm));
	memset(t->mem, GUARD_BYTE, t->size + 2 * GUARD);
	pw_ring_format(t->shm, t->size);
	PW_CHECK_EQ(atomic_load(&t->shm->tail), 0);
	PW_CHECK_EQ(atomic_load(&t->shm->head), 0);
	PW_CHECK_EQ(atomic_load(&t->shm->rx_sleep), 0);
	PW_CHECK_EQ(atomic_load(&t->shm->tx_sleep), 0);
	atomic_store(&t->shm->tail, start);
	atomic_store(&t->shm->head, start);
	PW_CHECK_EQ(pw_ring_init(&t->prod, t->shm, t->data, t->size, PW_RING_PRODUCER), 0);
	PW_CHECK_EQ(pw_ring_init(&t->cons, t->shm, t->data, t->size, PW_RING_CONSUMER), 0);
	PW_CHECK_EQ(t->prod.pos, start);
	PW_CHECK_EQ(t->cons.pos, start);
}

static void tring_check_guards(const struct tring *t)
{
	for (uint32_t i = 0; i < GUARD; i++) {
		PW_CHECK(t->mem[i] == GUARD_BYTE, "guard before data clobbered at -%u", GUARD - i);
		PW_CHECK(t->mem[GUARD + t->size + i] == GUARD_BYTE,
			 "guard after data clobbered at +%u", i);
	}
}

static void check_levels(struct tring *t, uint32_t fill)
{
	PW_CHECK_EQ(pw_ring_avail(&t->cons), fill);
	PW_CHECK_EQ(pw_ring_space(&t->prod), t->size - fill);
	PW_CHECK_EQ(atomic_load(&t->shm->tail) - atomic_load(&t->shm->head), fill);
}

/* Move both indices forward by @n bytes of filler. */
static void advance(struct tring *t, uint32_t n)
{
	uint8_t buf[4096];

	while (n) {
		uint32_t k = n < sizeof(buf) ? n : (uint32_t)sizeof(buf);

		if (k > t->size)
			k = t->size;
		memset(buf, 0xee, k);
		PW_CHECK_EQ(pw_ring_write(&t->prod, buf, k), k);
		PW_CHECK_EQ(pw_ring_read(&t->cons, buf, k), k);
		n -= k;
	}
}

enum method { M_READ, M_READV, M_PEEK_READ, M_PEEKV_READV, M_COUNT };

/*
 * Split @buf into @max iovecs of random sizes (some of them empty) covering
 * exactly @len bytes; returns the count.
 */
static int split_iov(struct pw_rng *rng, uint8_t *buf, size_t len, struct iovec *iov, int max)
{
	size_t off = 0;
	int n = 0;

	while (n < max - 1 && off < len) {
		size_t k = pw_rng_range(rng, 0, 3) == 0 ? 0 : pw_rng_range(rng, 0, len - off);

		iov[n].iov_base = buf + off;
		iov[n].iov_len = k;
		off += k;
		n++;
	}
	iov[n].iov_base = buf + off;
	iov[n].iov_len = len - off;
	n++;
	if (n < max) { /* a trailing empty one */
		iov[n].iov_base = buf + len;
		iov[n].iov_len = 0;
		n++;
	}
	return n;
}

static void one_message(struct tring *t, struct pw_rng *rng, uint32_t start, uint32_t len,
			enum method m)
{
	uint8_t src[4096], dst[4096 + 16], peeked[4096];
	struct iovec iov[8];
	uint64_t seed = (uint64_t)start << 32 | len << 4 | m;
	int cnt;

	tring_reset(t, 0);
	advance(t, start);
	PW_CHECK_EQ(t->prod.pos, start);
	check_levels(t, 0);

	pw_stream_fill(seed, 0, src, len);
	if (pw_rng_range(rng, 0, 1)) {
		PW_CHECK_EQ(pw_ring_write(&t->prod, src, len), len);
	} else {
		cnt = split_iov(rng, src, len, iov, 8);
		PW_CHECK_EQ(pw_ring_writev(&t->prod, iov, cnt), len);
	}
	PW_CHECK_EQ(atomic_load(&t->shm->tail), start + len);
	check_levels(t, len);

	/* The bytes sit where the index says, wrapping at the end. */
	for (uint32_t i = 0; i < len; i++)
		PW_CHECK(t->data[(start + i) & (t->size - 1)] == src[i],
			 "size %u start %u len %u: byte %u misplaced", t->size, start, len, i);

	memset(dst, 0, sizeof(dst));
	switch (m) {
	case M_READ:
		/* Ask for more than there is: get exactly what there is. */
		PW_CHECK_EQ(pw_ring_read(&t->cons, dst, len + 16), len);
		break;
	case M_READV:
		cnt = split_iov(rng, dst, len + 16, iov, 8);
		PW_CHECK_EQ(pw_ring_readv(&t->cons, iov, cnt), len);
		break;
	case M_PEEK_READ:
		memset(peeked, 0, sizeof(peeked));
		PW_CHECK_EQ(pw_ring_peek(&t->cons, peeked, len), len);
		PW_CHECK(memcmp(peeked, src, len) == 0, "peek: start %u len %u", start, len);
		/* Peek consumed nothing: same levels, same shared head. */
		PW_CHECK_EQ(atomic_load(&t->shm->head), start);
		check_levels(t, len);
		/* A partial peek, then the read returns the same bytes. */
		PW_CHECK_EQ(pw_ring_peek(&t->cons, peeked, len / 2), len / 2);
		PW_CHECK(memcmp(peeked, src, len / 2) == 0, "short peek");
		PW_CHECK_EQ(pw_ring_read(&t->cons, dst, len), len);
		break;
	case M_PEEKV_READV:
		memset(peeked, 0, sizeof(peeked));
		cnt = split_iov(rng, peeked, len, iov, 8);
		PW_CHECK_EQ(pw_ring_peekv(&t->cons, iov, cnt), len);
		PW_CHECK(memcmp(peeked, src, len) == 0, "peekv: start %u len %u", start, len);
		check_levels(t, len);
		cnt = split_iov(rng, dst, len, iov, 8);
		PW_CHECK_EQ(pw_ring_readv(&t->cons, iov, cnt), len);
		break;
	default:
		PW_FAIL("method %d", m);
	}
	PW_CHECK(memcmp(dst, src, len) == 0, "size %u start %u len %u method %d: data differs",
		 t->size, start, len, m);
	for (uint32_t i = len; i < len + 16; i++)
		PW_CHECK(dst[i] == 0, "read wrote past the data: byte %u", i);
	PW_CHECK_EQ(atomic_load(&t->shm->head), start + len);
	check_levels(t, 0);
	PW_CHECK_EQ(pw_ring_read(&t->cons, dst, sizeof(dst)), 0);
	tring_check_guards(t);
}

static void test_offsets(uint32_t size, const uint32_t *starts, size_t nstarts)
{
	const uint32_t lens[] = { 1, size / 2, size - 1, size };
	struct pw_rng rng;
	struct tring t;

	pw_rng_seed(&rng, size);
	tring_alloc(&t, size);
	for (size_t s = 0; s < nstarts; s++)
		for (size_t l = 0; l < PW_TEST_ARRAY_SIZE(lens); l++)
			for (int m = 0; m < M_COUNT; m++)
				one_message(&t, &rng, starts[s], lens[l], m);
	tring_free(&t);
}

static void test_all_offsets(uint32_t size)
{
	uint32_t starts[128];

	for (uint32_t i = 0; i < size; i++)
		starts[i] = i;
	test_offsets(size, starts, size);
}

static void test_full_empty(void)
{
	uint8_t src[256], dst[256];
	struct iovec iov[6];
	struct tring t;

	tring_alloc(&t, 64);
	for (uint32_t start = 0; start < 64; start += 7) {
		tring_reset(&t, 0);
		advance(&t, start);

		/* Empty: reads, peeks and readv return 0; zero-length calls too. */
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, sizeof(dst)), 0);
		PW_CHECK_EQ(pw_ring_peek(&t.cons, dst, sizeof(dst)), 0);
		PW_CHECK_EQ(pw_ring_readv(&t.cons, NULL, 0), 0);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src, 0), 0);
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, 0), 0);
		PW_CHECK_EQ(pw_ring_writev(&t.prod, NULL, 0), 0);
		PW_CHECK_EQ(atomic_load(&t.shm->tail), start);
		check_levels(&t, 0);

		/* Partial write returns what fits. */
		pw_stream_fill(start, 0, src, sizeof(src));
		PW_CHECK_EQ(pw_ring_write(&t.prod, src, 40), 40);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src + 40, 100), 24);
		check_levels(&t, 64);
		/* Full: writes return 0, zero-length too. */
		PW_CHECK_EQ(pw_ring_write(&t.prod, src, 1), 0);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src, 0), 0);
		iov[0] = (struct iovec){ .iov_base = src, .iov_len = 5 };
		PW_CHECK_EQ(pw_ring_writev(&t.prod, iov, 1), 0);
		PW_CHECK_EQ(atomic_load(&t.shm->tail), start + 64);
		/* A zero-length read of a full ring reads nothing. */
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, 0), 0);
		check_levels(&t, 64);

		/* Free 10, write 10 more across the wrap via writev. */
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, 10), 10);
		PW_CHECK(memcmp(dst, src, 10) == 0, "first 10");
		iov[0] = (struct iovec){ .iov_base = src + 64, .iov_len = 3 };
		iov[1] = (struct iovec){ .iov_base = src + 67, .iov_len = 0 };
		iov[2] = (struct iovec){ .iov_base = src + 67, .iov_len = 4 };
		iov[3] = (struct iovec){ .iov_base = src + 71, .iov_len = 20 }; /* 3 fit */
		iov[4] = (struct iovec){ .iov_base = src + 91, .iov_len = 5 };
		PW_CHECK_EQ(pw_ring_writev(&t.prod, iov, 5), 10);
		check_levels(&t, 64);
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, sizeof(dst)), 64);
		PW_CHECK(memcmp(dst, src + 10, 64) == 0, "start %u: after refill", start);
		check_levels(&t, 0);
		tring_check_guards(&t);
	}
	tring_free(&t);
}

/* writev and readv with several iovecs each, random splits, random offsets. */
static void test_vectors(void)
{
	uint8_t src[512], dst[512 + 8];
	struct iovec wv[8], rv[8];
	struct pw_rng rng;
	struct tring t;

	pw_rng_seed(&rng, 7);
	tring_alloc(&t, 128);
	tring_reset(&t, 0);
	for (int i = 0; i < 5000; i++) {
		uint32_t len = (uint32_t)pw_rng_range(&rng, 0, 128);
		uint32_t before = t.prod.pos;

		pw_stream_fill(i, 0, src, len);
		int wc = split_iov(&rng, src, len, wv, (int)pw_rng_range(&rng, 1, 8));
		PW_CHECK_EQ(pw_ring_writev(&t.prod, wv, wc), len);
		PW_CHECK_EQ(atomic_load(&t.shm->tail), before + len);
		memset(dst, 0, sizeof(dst));
		int rc = split_iov(&rng, dst, len + 8, rv, (int)pw_rng_range(&rng, 1, 8));
		PW_CHECK_EQ(pw_ring_readv(&t.cons, rv, rc), len);
		PW_CHECK(memcmp(dst, src, len) == 0, "iteration %d len %u", i, len);
		/* Leave a random amount behind so the next offsets vary. */
		uint32_t keep = (uint32_t)pw_rng_range(&rng, 0, 50);
		advance(&t, keep);
	}
	tring_check_guards(&t);
	tring_free(&t);
}

/* Free-running indices across 2^32: start both at UINT32_MAX - 10. */
static void test_index_wrap(uint32_t size)
{
	uint8_t src[4096], dst[4096];
	const uint32_t start = UINT32_MAX - 10;
	uint64_t wpos = 0, rpos = 0;
	struct pw_rng rng;
	struct tring t;

	pw_rng_seed(&rng, size + 1);
	tring_alloc(&t, size);
	tring_reset(&t, start);
	check_levels(&t, 0);
	/* Well past the boundary, with varying fill levels around it. */
	while (rpos < 40ull * size) {
		uint32_t w = (uint32_t)pw_rng_range(&rng, 0, size);
		uint32_t space = size - (uint32_t)(wpos - rpos);
		uint32_t expect = w < space ? w : space;

		pw_stream_fill(99, wpos, src, w);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src, w), expect);
		wpos += expect;
		PW_CHECK_EQ(atomic_load(&t.shm->tail), (uint32_t)(start + wpos));
		check_levels(&t, (uint32_t)(wpos - rpos));

		uint32_t r = (uint32_t)pw_rng_range(&rng, 0, size);
		uint32_t have = (uint32_t)(wpos - rpos);
		expect = r < have ? r : have;
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, r), expect);
		long long bad = pw_stream_check(99, rpos, dst, expect);
		PW_CHECK(bad < 0, "size %u: byte %lld at stream pos %llu (index %u)", size, bad,
			 (unsigned long long)(rpos + (uint64_t)bad),
			 (uint32_t)(start + rpos + (uint64_t)bad));
		rpos += expect;
		PW_CHECK_EQ(atomic_load(&t.shm->head), (uint32_t)(start + rpos));
	}
	/* The counters really wrapped. */
	PW_CHECK(t.cons.pos < start, "head %u did not cross 2^32", t.cons.pos);
	/* A full ring straddling the boundary exactly. */
	tring_reset(&t, UINT32_MAX - size / 2 + 1);
	pw_stream_fill(5, 0, src, size);
	PW_CHECK_EQ(pw_ring_write(&t.prod, src, size), size);
	check_levels(&t, size);
	PW_CHECK_EQ(pw_ring_write(&t.prod, src, 1), 0);
	PW_CHECK_EQ(atomic_load(&t.shm->tail), size / 2);
	PW_CHECK_EQ(pw_ring_read(&t.cons, dst, size), size);
	PW_CHECK(memcmp(src, dst, size) == 0, "full ring across 2^32");
	check_levels(&t, 0);
	tring_check_guards(&t);
	tring_free(&t);
}

/* Write @len bytes of stream position @wpos, read them back and check them. */
static void through(struct tring *t, uint64_t *wpos, uint32_t len)
{
	uint8_t src[4096], dst[4096];

	pw_stream_fill(7, *wpos, src, len);
	PW_CHECK_EQ(pw_ring_write(&t->prod, src, len), len);
	PW_CHECK_EQ(pw_ring_read(&t->cons, dst, len), len);
	PW_CHECK(memcmp(src, dst, len) == 0, "%u bytes at stream pos %llu", len,
		 (unsigned long long)*wpos);
	*wpos += len;
}

/* The window starts at 64 of 4096 bytes and opens to all of them only when
 * the ring is empty; the consumer follows it; bytes never move. */
static void test_widen(uint32_t start, bool large_first)
{
	uint8_t src[4096], dst[4096];
	uint64_t wpos = 0;
	struct tring t;

	tring_alloc(&t, 4096);
	tring_reset(&t, start);
	pw_ring_format(t.shm, 64);
	atomic_store(&t.shm->tail, start);
	atomic_store(&t.shm->head, start);
	PW_CHECK_EQ(pw_ring_init(&t.prod, t.shm, t.data, 4096, PW_RING_PRODUCER), 0);
	PW_CHECK_EQ(pw_ring_init(&t.cons, t.shm, t.data, 4096, PW_RING_CONSUMER), 0);
	PW_CHECK_EQ(t.prod.win, 64);
	PW_CHECK_EQ(pw_ring_space(&t.prod), 64);
	/* Small writes that fit leave it. */
	for (int i = 0; i < 40; i++)
		through(&t, &wpos, 33);
	PW_CHECK_EQ(atomic_load(&t.shm->window), 64);

	if (large_first) {
		/* On an empty ring a write larger than the window opens it. */
		through(&t, &wpos, 65);
		PW_CHECK_EQ(atomic_load(&t.shm->window), 4096);
		PW_CHECK_EQ(t.cons.win, 4096);
	} else {
		/* Full: a short write leaves the window, with bytes in flight. */
		pw_stream_fill(7, wpos, src, 65);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src, 64), 64);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src + 64, 1), 0);
		PW_CHECK_EQ(atomic_load(&t.shm->window), 64);
		PW_CHECK(t.prod.widen, "a short write on a full ring marks the widening");
		/* Partly drained: not empty, so still 64. */
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst, 30), 30);
		PW_CHECK_EQ(pw_ring_write(&t.prod, src + 64, 1), 1);
		PW_CHECK_EQ(atomic_load(&t.shm->window), 64);
		PW_CHECK_EQ(pw_ring_read(&t.cons, dst + 30, 35), 35);
		PW_CHECK(memcmp(src, dst, 65) == 0, "bytes written across the short write");
		wpos += 65;
		PW_CHECK_EQ(t.cons.win, 64);
		/* Empty with a widening pending: the next write, however small,
		 * opens the window. */
		through(&t, &wpos, 10);
		PW_CHECK_EQ(atomic_load(&t.shm->window), 4096);
		PW_CHECK_EQ(t.cons.win, 4096);
		PW_CHECK(!t.prod.widen, "widening done");
	}
	/* The whole area, and never past it. */
	for (int i = 0; i < 4; i++)
		through(&t, &wpos, 4096);
	pw_stream_fill(7, wpos, src, 4096);
	PW_CHECK_EQ(pw_ring_write(&t.prod, src, 4096), 4096);
	PW_CHECK_EQ(pw_ring_write(&t.prod, src, 1), 0);
	PW_CHECK_EQ(pw_ring_read(&t.cons, dst, 4096), 4096);
	PW_CHECK(memcmp(src, dst, 4096) == 0, "a full window");
	PW_CHECK_EQ(atomic_load(&t.shm->window), 4096);
	PW_CHECK_EQ(pw_ring_space(&t.prod), 4096);
	tring_check_guards(&t);
	tring_free(&t);
}

int main(void)
{
	static const uint32_t big_starts[] = { 0, 1, 63, 64, 2047, 2048, 2049, 4000, 4094, 4095 };

	test_all_offsets(64);
	test_all_offsets(128);
	test_offsets(4096, big_starts, PW_TEST_ARRAY_SIZE(big_starts));
	test_full_empty();
	test_vectors();
	test_index_wrap(64);
	test_index_wrap(128);
	test_index_wrap(4096);
	for (int large = 0; large < 2; large++) {
		test_widen(0, large);
		test_widen(37, large);
		test_widen(UINT32_MAX - 10, large);
	}
	return 0;
}
