// SPDX-License-Identifier: MIT
/*
 * The model's string map (src/scheduler/map.c): lookups on an empty map,
 * insert and lookup, keys that collide (one home slot, runs that wrap past
 * the end of the table), backward-shift deletion in the middle, at the
 * start and across the wrap of a run, growth past half full with every key
 * kept, and a random insert/delete sequence against a plain array.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pw_test.h"
#include "model_int.h"

#define NKEYS 2000

static char keys[NKEYS][16];

/* Every key must map to its index in @present, or be absent. */
static void check_all(const struct pw_map *mp, const bool *present, unsigned n)
{
	unsigned live = 0;

	for (unsigned i = 0; i < n; i++) {
		int id = pw_map_find(mp, keys[i]);

		if (present[i]) {
			live++;
			if (id != (int)i)
				PW_FAIL("key %s: id %d, want %u (map n %u cap %u)", keys[i], id, i,
					mp->n, mp->cap);
		} else if (id != -1) {
			PW_FAIL("deleted key %s still maps to %d (map n %u cap %u)", keys[i], id,
				mp->n, mp->cap);
		}
	}
	PW_CHECK_EQ(mp->n, live);
	PW_CHECK(mp->n * 2 <= mp->cap || !mp->cap, "at most half full: n %u cap %u", mp->n,
		 mp->cap);
}

/* Up to @want keys "c<i>" whose home slot in a 64-slot table is @home. */
static unsigned colliding(uint32_t home, char out[][16], unsigned want)
{
	unsigned n = 0;

	for (unsigned i = 0; n < want && i < 1000000; i++) {
		snprintf(out[n], sizeof(out[n]), "c%u", i);
		if ((pw_map_hash(out[n]) & 63) == home)
			n++;
	}
	return n;
}

static void test_empty(void)
{
	struct pw_map mp = { 0 };

	PW_CHECK_EQ(pw_map_find(&mp, "x"), -1);
	pw_map_del(&mp, "x"); /* no table yet: nothing happens */
	PW_CHECK_EQ(mp.n, 0);
	pw_map_free(&mp);
	PW_CHECK(!mp.e && !mp.cap, "free resets");
}

static void test_basic(void)
{
	struct pw_map mp = { 0 };

	PW_CHECK_EQ(pw_map_put(&mp, "default/a", 7), 0);
	PW_CHECK_EQ(pw_map_put(&mp, "default/b", 0), 0);
	PW_CHECK_EQ(mp.cap, 64);
	PW_CHECK_EQ(pw_map_find(&mp, "default/a"), 7);
	PW_CHECK_EQ(pw_map_find(&mp, "default/b"), 0);
	PW_CHECK_EQ(pw_map_find(&mp, "default/c"), -1);
	PW_CHECK_EQ(pw_map_find(&mp, "default/"), -1);
	PW_CHECK_EQ(pw_map_find(&mp, ""), -1);
	pw_map_del(&mp, "default/c");
	PW_CHECK_EQ(mp.n, 2);
	pw_map_del(&mp, "default/a");
	PW_CHECK_EQ(pw_map_find(&mp, "default/a"), -1);
	PW_CHECK_EQ(pw_map_find(&mp, "default/b"), 0);
	PW_CHECK_EQ(mp.n, 1);
	/* Keys are the caller's: a key with the same text finds the entry. */
	char copy[] = "default/b";
	PW_CHECK_EQ(pw_map_find(&mp, copy), 0);
	pw_map_free(&mp);
}

/*
 * A run of colliding keys at @home: deleting one in the middle, the first
 * and the last keeps the others reachable, including keys from a later home
 * that the run pushed along.
 */
static void test_collisions(uint32_t home)
{
	static char c[6][16], other[2][16];
	struct pw_map mp = { 0 };

	PW_CHECK_EQ(colliding(home, c, 6), 6);
	PW_CHECK_EQ(colliding((home + 2) & 63, other, 2), 2);
	for (int i = 0; i < 6; i++)
		PW_CHECK_EQ(pw_map_put(&mp, c[i], i), 0);
	/* Their home slots are taken by the run: they sit after it. */
	PW_CHECK_EQ(pw_map_put(&mp, other[0], 100), 0);
	PW_CHECK_EQ(pw_map_put(&mp, other[1], 101), 0);
	PW_CHECK_EQ(mp.cap, 64);
	for (int i = 0; i < 6; i++)
		PW_CHECK_EQ(pw_map_find(&mp, c[i]), i);
	pw_map_del(&mp, c[2]);
	PW_CHECK_EQ(pw_map_find(&mp, c[2]), -1);
	pw_map_del(&mp, c[0]);
	pw_map_del(&mp, c[5]);
	for (int i = 0; i < 6; i++)
		PW_CHECK_EQ(pw_map_find(&mp, c[i]), i == 0 || i == 2 || i == 5 ? -1 : i);
	PW_CHECK_EQ(pw_map_find(&mp, other[0]), 100);
	PW_CHECK_EQ(pw_map_find(&mp, other[1]), 101);
	pw_map_del(&mp, other[0]);
	PW_CHECK_EQ(pw_map_find(&mp, other[1]), 101);
	PW_CHECK_EQ(mp.n, 4);
	/* Re-inserting a deleted key finds a place again. */
	PW_CHECK_EQ(pw_map_put(&mp, c[2], 22), 0);
	PW_CHECK_EQ(pw_map_find(&mp, c[2]), 22);
	pw_map_free(&mp);
}

static void test_growth(void)
{
	static bool present[NKEYS];
	struct pw_map mp = { 0 };

	for (unsigned i = 0; i < NKEYS; i++) {
		PW_CHECK_EQ(pw_map_put(&mp, keys[i], (int32_t)i), 0);
		present[i] = true;
		/* 64 slots hold 32 keys; each doubling keeps the table half empty. */
		if (i == 31)
			PW_CHECK_EQ(mp.cap, 64);
		if (i == 32)
			PW_CHECK_EQ(mp.cap, 128);
	}
	PW_CHECK_EQ(mp.cap, 4096);
	check_all(&mp, present, NKEYS);
	for (unsigned i = 0; i < NKEYS; i += 3) {
		pw_map_del(&mp, keys[i]);
		present[i] = false;
	}
	check_all(&mp, present, NKEYS);
	PW_CHECK_EQ(mp.cap, 4096); /* deletion does not shrink */
	pw_map_free(&mp);
}

/* Random puts and deletes against a plain array, checked every step. */
static void test_random(void)
{
	static bool present[256];
	struct pw_map mp = { 0 };

	srand(10);
	for (int step = 0; step < 20000; step++) {
		unsigned k = (unsigned)rand() % 256;

		if (present[k]) {
			pw_map_del(&mp, keys[k]);
			present[k] = false;
		} else {
			PW_CHECK_EQ(pw_map_put(&mp, keys[k], (int32_t)k), 0);
			present[k] = true;
		}
		if (step % 97 == 0)
			check_all(&mp, present, 256);
	}
	check_all(&mp, present, 256);
	pw_map_free(&mp);
}

int main(void)
{
	for (unsigned i = 0; i < NKEYS; i++)
		snprintf(keys[i], sizeof(keys[i]), "ns%u/pod-%u", i % 7, i);
	test_empty();
	test_basic();
	test_collisions(5);
	test_collisions(62); /* the run wraps past the end of the table */
	test_growth();
	test_random();
	return 0;
}
