// SPDX-License-Identifier: MIT
/*
 * The model's string map (key -> index): open addressing with linear
 * probing, at most half full, and backward-shift deletion, so a lookup never
 * meets a tombstone. Keys are not copied: they belong to the objects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

struct pw_map_ent {
	const char *key; /* owned by the object */
	uint32_t hash;
	int32_t id;
};

uint32_t pw_map_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

int pw_map_find(const struct pw_map *mp, const char *key)
{
	uint32_t h, i;

	if (!mp->cap)
		return -1;
	h = pw_map_hash(key);
	for (i = h & (mp->cap - 1); mp->e[i].key; i = (i + 1) & (mp->cap - 1))
		if (mp->e[i].hash == h && !strcmp(mp->e[i].key, key))
			return mp->e[i].id;
	return -1;
}

static void pw_map_insert(struct pw_map *mp, const char *key, uint32_t h, int32_t id)
{
	uint32_t i = h & (mp->cap - 1);

	while (mp->e[i].key)
		i = (i + 1) & (mp->cap - 1);
	mp->e[i] = (struct pw_map_ent){ key, h, id };
	mp->n++;
}

int pw_map_put(struct pw_map *mp, const char *key, int32_t id)
{
	if ((mp->n + 1) * 2 > mp->cap) {
		uint32_t ncap = mp->cap ? mp->cap * 2 : 64;
		struct pw_map_ent *old = mp->e, *ne = calloc(ncap, sizeof(*ne));
		uint32_t ocap = mp->cap;

		if (!ne)
			return -ENOMEM;
		mp->e = ne;
		mp->cap = ncap;
		mp->n = 0;
		for (uint32_t i = 0; i < ocap; i++)
			if (old[i].key)
				pw_map_insert(mp, old[i].key, old[i].hash, old[i].id);
		free(old);
	}
	pw_map_insert(mp, key, pw_map_hash(key), id);
	return 0;
}

void pw_map_del(struct pw_map *mp, const char *key)
{
	uint32_t h, i, j, mask = mp->cap - 1;

	if (!mp->cap)
		return;
	h = pw_map_hash(key);
	for (i = h & mask; mp->e[i].key; i = (i + 1) & mask)
		if (mp->e[i].hash == h && !strcmp(mp->e[i].key, key))
			break;
	if (!mp->e[i].key)
		return;
	/* Shift later members of the probe run back over the hole. */
	for (j = (i + 1) & mask; mp->e[j].key; j = (j + 1) & mask) {
		uint32_t home = mp->e[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			mp->e[i] = mp->e[j];
			i = j;
		}
	}
	mp->e[i].key = NULL;
	mp->n--;
}

void pw_map_free(struct pw_map *mp)
{
	free(mp->e);
	memset(mp, 0, sizeof(*mp));
}
