// SPDX-License-Identifier: MIT
/*
 * pw_ring against a hostile or corrupt peer: impossible peer indices must give
 * -EPROTO from every call that looks at them, and no call may touch memory
 * outside the data area (guard bytes here, ASan in the sanitized build). Also
 * pw_ring_init's argument and consistency checks.
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include <podwire/chan.h>

#include "ring.h"

#include "pw_test_chan.h"

#define GUARD	   256u
#define GUARD_BYTE 0xa5

static struct pw_shm_ring *shm;
static uint8_t *mem, *data;

static void setup(uint32_t size)
{
	free(shm);
	free(mem);
	shm = aligned_alloc(64, sizeof(*shm));
	mem = malloc(size + 2 * GUARD);
	PW_CHECK(shm && mem, "out of memory");
	memset(mem, GUARD_BYTE, size + 2 * GUARD);
	data = mem + GUARD;
	pw_ring_format(shm, size);
}

static void check_guards(uint32_t size)
{
	for (uint32_t i = 0; i < GUARD; i++) {
		PW_CHECK(mem[i] == GUARD_BYTE, "guard before data clobbered at -%u", GUARD - i);
		PW_CHECK(mem[GUARD + size + i] == GUARD_BYTE, "guard after data clobbered at +%u",
			 i);
	}
}

static void test_init_args(void)
{
	static const uint32_t bad[] = { 0,
					1,
					2,
					32,
					63,
					65,
					96,
					100,
					4095,
					4097,
					3u << 20,
					PW_RING_MAX + 1,
					PW_RING_MAX * 2u,
					UINT32_MAX };
	static const uint32_t good[] = { 64, 128, 4096, 1u << 20, PW_RING_MAX };
	struct pw_ring r, before;

	setup(64);
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(bad); i++) {
		for (int role = 0; role < 2; role++) {
			memset(&r, 0x3c, sizeof(r));
			before = r;
			PW_CHECK(pw_ring_init(&r, shm, data, bad[i], role) == -EINVAL,
				 "size %u role %d: %d", bad[i], role,
				 pw_ring_init(&r, shm, data, bad[i], role));
			PW_CHECK(memcmp(&r, &before, sizeof(r)) == 0, "failed init wrote *r");
		}
	}
	/* init only records the area: a small buffer is fine for these sizes. */
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(good); i++) {
		PW_CHECK_EQ(pw_ring_init(&r, shm, data, good[i], PW_RING_PRODUCER), 0);
		PW_CHECK_EQ(r.size, good[i]);
		PW_CHECK_EQ(r.win, 64); /* the window setup() formatted */
		PW_CHECK_EQ(r.mask, 63);
		PW_CHECK_EQ(pw_ring_init(&r, shm, data, good[i], PW_RING_CONSUMER), 0);
	}
	PW_CHECK_EQ(pw_ring_init(&r, shm, data, 64, (enum pw_ring_role)2), -EINVAL);
	PW_CHECK_EQ(pw_ring_init(&r, shm, data, 64, (enum pw_ring_role) - 1), -EINVAL);
	PW_CHECK_EQ(pw_ring_init(NULL, shm, data, 64, PW_RING_PRODUCER), -EINVAL);
	PW_CHECK_EQ(pw_ring_init(&r, NULL, data, 64, PW_RING_PRODUCER), -EINVAL);
	PW_CHECK_EQ(pw_ring_init(&r, shm, NULL, 64, PW_RING_PRODUCER), -EINVAL);
}

/* Initial shared indices (tail, head) and whether they are consistent for a ring of 64. */
static void test_init_indices(void)
{
	static const struct {
		uint32_t tail, head;
		bool ok;
	} cases[] = {
		{ 0, 0, true },
		{ 64, 0, true },  /* exactly full */
		{ 65, 0, false }, /* more than full */
		{ 1000, 0, false },
		{ 0, 1, false }, /* head ahead of tail */
		{ 5, 6, false },
		{ 3, UINT32_MAX - 60, true }, /* full across 2^32 */
		{ 3, UINT32_MAX - 61, false },
		{ UINT32_MAX, 0, false },
		{ 0, UINT32_MAX, true }, /* one byte, across 2^32 */
		{ 0x80000000u, 0, false },
		{ 0, 0x80000000u, false },
	};
	struct pw_ring r;

	setup(64);
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(cases); i++) {
		atomic_store(&shm->tail, cases[i].tail);
		atomic_store(&shm->head, cases[i].head);
		int want = cases[i].ok ? 0 : -EPROTO;

		for (int role = 0; role < 2; role++) {
			int ret = pw_ring_init(&r, shm, data, 64, role);

			PW_CHECK(ret == want, "tail %u head %u role %d: %d, want %d", cases[i].tail,
				 cases[i].head, role, ret, want);
			if (ret == 0) {
				PW_CHECK_EQ(r.pos, role ? cases[i].head : cases[i].tail);
				PW_CHECK_EQ(r.peer, role ? cases[i].tail : cases[i].head);
			}
		}
	}
}

/* Every consumer call with an impossible tail fails with -EPROTO. */
static void expect_consumer_eproto(struct pw_ring *c, uint32_t size)
{
	uint8_t buf[8192];
	struct iovec iov[3] = {
		{ .iov_base = buf, .iov_len = 1 },
		{ .iov_base = buf + 1, .iov_len = 0 },
		{ .iov_base = buf + 1, .iov_len = size + 7 },
	};
	uint32_t pos = c->pos;

	PW_CHECK_EQ(pw_ring_avail(c), -EPROTO);
	/* Ask for more than a ring's worth, so no cached view can satisfy it. */
	PW_CHECK_EQ(pw_ring_read(c, buf, size + 1), -EPROTO);
	PW_CHECK_EQ(pw_ring_peek(c, buf, size + 1), -EPROTO);
	PW_CHECK_EQ(pw_ring_readv(c, iov + 2, 1), -EPROTO);
	PW_CHECK_EQ(pw_ring_peekv(c, iov + 1, 2), -EPROTO);
	PW_CHECK_EQ(c->pos, pos);
	PW_CHECK_EQ(atomic_load(&shm->head), pos);
}

static void expect_producer_eproto(struct pw_ring *p, uint32_t size)
{
	uint8_t buf[8192];
	struct iovec iov[2] = {
		{ .iov_base = buf, .iov_len = 0 },
		{ .iov_base = buf, .iov_len = size + 1 },
	};
	uint32_t pos = p->pos;

	memset(buf, 0x77, sizeof(buf));
	PW_CHECK_EQ(pw_ring_space(p), -EPROTO);
	PW_CHECK_EQ(pw_ring_write(p, buf, size + 1), -EPROTO);
	PW_CHECK_EQ(pw_ring_writev(p, iov, 2), -EPROTO);
	PW_CHECK_EQ(p->pos, pos);
	PW_CHECK_EQ(atomic_load(&shm->tail), pos);
}

/*
 * After a normal start, the peer publishes fixed hostile indices relative to
 * our own: beyond a full ring, behind us, and far away.
 */
static void test_fixed_hostile(uint32_t size, uint32_t start)
{
	const uint32_t deltas[] = { size + 1,
				    size + 2,
				    2 * size,
				    UINT32_MAX,
				    UINT32_MAX - size,
				    0x80000000u,
				    (uint32_t) - (int32_t)size - 1 };
	uint8_t buf[8192];
	struct pw_ring p, c;

	setup(size);
	atomic_store(&shm->tail, start);
	atomic_store(&shm->head, start);
	PW_CHECK_EQ(pw_ring_init(&p, shm, data, size, PW_RING_PRODUCER), 0);
	PW_CHECK_EQ(pw_ring_init(&c, shm, data, size, PW_RING_CONSUMER), 0);
	PW_CHECK_EQ(pw_ring_write(&p, buf, 10), 10);
	PW_CHECK_EQ(pw_ring_read(&c, buf, 3), 3);
	/* Now tail = start + 10, head = start + 3. */

	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(deltas); i++) {
		/* Consumer: tail - head > size is impossible. */
		atomic_store(&shm->tail, c.pos + deltas[i]);
		expect_consumer_eproto(&c, size);
		/* Producer: tail - head > size is impossible, e.g. head ahead of tail. */
		atomic_store(&shm->tail, p.pos);
		atomic_store(&shm->head, p.pos - deltas[i]);
		expect_producer_eproto(&p, size);
		atomic_store(&shm->head, c.pos);
		check_guards(size);
	}
	/* A consumer whose producer moved backwards behind it. */
	atomic_store(&shm->tail, c.pos - 1);
	expect_consumer_eproto(&c, size);
	/* Honest values again: both roles recover (the ring does not latch). */
	atomic_store(&shm->tail, p.pos);
	atomic_store(&shm->head, c.pos);
	PW_CHECK_EQ(pw_ring_avail(&c), 7);
	PW_CHECK_EQ(pw_ring_space(&p), size - 7);
	check_guards(size);
}

/* Start both roles afresh with an empty ring at index @at. */
static void resync(struct pw_ring *p, struct pw_ring *c, uint32_t size, uint32_t at)
{
	atomic_store(&shm->tail, at);
	atomic_store(&shm->head, at);
	PW_CHECK_EQ(pw_ring_init(p, shm, data, size, PW_RING_PRODUCER), 0);
	PW_CHECK_EQ(pw_ring_init(c, shm, data, size, PW_RING_CONSUMER), 0);
}

/*
 * Random peer indices, some near the valid window and some anywhere. Each
 * call must either fail with -EPROTO or behave exactly as the index says, and
 * stay inside the data area.
 */
static void test_random_hostile(uint32_t size, uint64_t seed)
{
	uint8_t buf[8192 + 64];
	struct pw_rng rng;
	struct pw_ring p, c;

	pw_rng_seed(&rng, seed);
	setup(size);
	resync(&p, &c, size, (uint32_t)pw_rng_next(&rng));

	for (int i = 0; i < 20000; i++) {
		uint32_t v;

		switch (pw_rng_range(&rng, 0, 2)) {
		case 0:
			v = (uint32_t)pw_rng_next(&rng);
			break;
		case 1: /* near the window */
			v = c.pos + (uint32_t)pw_rng_range(&rng, 0, 4 * size) - 2 * size;
			break;
		default:
			v = p.pos + (uint32_t)pw_rng_range(&rng, 0, 4 * size) - 2 * size;
			break;
		}
		bool consumer = pw_rng_range(&rng, 0, 1);
		ssize_t ret;

		if (consumer) {
			/* The hostile producer publishes tail = v. */
			uint32_t fill = v - c.pos;
			bool ok = fill <= size;
			uint32_t pos = c.pos;

			atomic_store(&shm->tail, v);
			switch (pw_rng_range(&rng, 0, 2)) {
			case 0:
				ret = pw_ring_avail(&c);
				PW_CHECK(ret == (ok ? (ssize_t)fill : -EPROTO),
					 "avail: pos %u tail %u: %zd", pos, v, ret);
				break;
			case 1:
				ret = pw_ring_read(&c, buf, sizeof(buf));
				PW_CHECK(ret == (ok ? (ssize_t)fill : -EPROTO),
					 "read: pos %u tail %u: %zd", pos, v, ret);
				PW_CHECK_EQ(c.pos, ok ? v : pos);
				break;
			default:
				ret = pw_ring_peek(&c, buf, size + 1);
				PW_CHECK(ret == (ok ? (ssize_t)fill : -EPROTO),
					 "peek: pos %u tail %u: %zd", pos, v, ret);
				PW_CHECK_EQ(c.pos, pos);
				break;
			}
			resync(&p, &c, size, c.pos);
		} else {
			/* The hostile consumer publishes head = v. */
			uint32_t fill = p.pos - v;
			bool ok = fill <= size;
			uint32_t pos = p.pos;

			atomic_store(&shm->head, v);
			if (pw_rng_range(&rng, 0, 1)) {
				ret = pw_ring_space(&p);
				PW_CHECK(ret == (ok ? (ssize_t)(size - fill) : -EPROTO),
					 "space: pos %u head %u: %zd", pos, v, ret);
			} else {
				memset(buf, 0x42, size + 1);
				ret = pw_ring_write(&p, buf, size + 1);
				PW_CHECK(ret == (ok ? (ssize_t)(size - fill) : -EPROTO),
					 "write: pos %u head %u: %zd", pos, v, ret);
				PW_CHECK_EQ(p.pos, ok ? pos + (size - fill) : pos);
			}
			resync(&p, &c, size, p.pos);
		}
		check_guards(size);
	}
}

/*
 * The window is the producer's word. A consumer takes only a window its ring
 * can have, and a legal but false one moves its offsets only inside the
 * data area; a producer never re-reads it, so a consumer's scribble cannot
 * move the producer's writes.
 */
static void test_window_hostile(uint32_t size, uint32_t start)
{
	const uint32_t bad[] = { 0, 1, 32, 63, 96, size + 64, 2 * size, 0x80000000u, UINT32_MAX };
	uint8_t buf[8192];
	struct pw_ring p, c;

	setup(size);
	pw_ring_format(shm, 64);
	resync(&p, &c, size, start);
	PW_CHECK_EQ(pw_ring_write(&p, buf, 10), 10);
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(bad); i++) {
		atomic_store(&shm->window, bad[i]);
		expect_consumer_eproto(&c, size);
		atomic_store(&shm->window, 64);
		PW_CHECK_EQ(pw_ring_avail(&c), 10);
		PW_CHECK_EQ(c.win, 64);
	}
	/* At init too, for either role. */
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(bad); i++) {
		struct pw_ring r;

		atomic_store(&shm->window, bad[i]);
		for (int role = 0; role < 2; role++)
			PW_CHECK(pw_ring_init(&r, shm, data, size, role) == -EPROTO,
				 "window %u role %d", bad[i], role);
	}
	for (uint32_t w = 128; w <= size; w *= 2) {
		atomic_store(&shm->window, w);
		PW_CHECK_EQ(pw_ring_peek(&c, buf, sizeof(buf)), 10);
		PW_CHECK_EQ(c.win, w);
		check_guards(size);
		/* The producer keeps its own window of 64. */
		PW_CHECK_EQ(pw_ring_space(&p), 54);
		PW_CHECK_EQ(p.win, 64);
	}
	memset(buf, 0x11, sizeof(buf));
	PW_CHECK_EQ(pw_ring_write(&p, buf, sizeof(buf)), 54);
	check_guards(size);
}

int main(void)
{
	test_init_args();
	test_init_indices();
	for (uint32_t size = 64; size <= 4096; size *= 4) {
		test_fixed_hostile(size, 0);
		test_fixed_hostile(size, UINT32_MAX - 5);
		test_fixed_hostile(size, 0x7ffffff0u);
	}
	test_window_hostile(4096, 0);
	test_window_hostile(4096, UINT32_MAX - 5);
	for (uint64_t seed = 1; seed <= 4; seed++) {
		test_random_hostile(64, seed);
		test_random_hostile(4096, seed);
	}
	free(shm);
	free(mem);
	return 0;
}
