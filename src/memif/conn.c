// SPDX-License-Identifier: MIT
/*
 * The server's side of a memif connection: the client's INIT, regions and
 * rings, checked, then CONNECT. The client is a pod, and hostile: a region
 * is mapped only as large as its file is, a ring only where it fits whole
 * in a region, every index in order and bounded, every fd of its kind.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "../common/util.h"
#include "memif.h"

void pw_memif_conn_init(struct pw_memif_conn *c, uint32_t id, const char *secret)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	for (unsigned d = 0; d < 2; d++)
		for (unsigned i = 0; i < PW_MEMIF_RINGS; i++)
			c->rings[d][i].evfd = -1;
	if (secret) {
		c->has_secret = true;
		memcpy(c->secret, secret, strnlen(secret, PW_MEMIF_SECRET));
	}
}

void pw_memif_conn_hello(struct pw_memif_msg *m, const char *name)
{
	pw_memif_msg_hello(m, name, PW_MEMIF_REGIONS - 1, PW_MEMIF_RINGS - 1, PW_MEMIF_RINGS - 1,
			   PW_MEMIF_LOG2_RING_MAX);
}

/* Do two secrets agree? In time that does not depend on where they differ. */
static bool pw_memif_secret_eq(const uint8_t *a, const uint8_t *b)
{
	uint8_t d = 0;

	for (unsigned i = 0; i < PW_MEMIF_SECRET; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

static int pw_memif_on_init(struct pw_memif_conn *c, const struct pw_memif_init *in)
{
	if (in->version != PW_MEMIF_VERSION || in->id != c->id ||
	    (c->has_secret && !pw_memif_secret_eq(in->secret, c->secret)))
		return -EPERM;
	if (in->mode != PW_MEMIF_MODE_ETHERNET)
		return -EINVAL;
	pw_memif_name(in->name, PW_MEMIF_NAME, c->peer);
	c->state = PW_MEMIF_S_INIT;
	return 0;
}

static int pw_memif_on_region(struct pw_memif_conn *c, const struct pw_memif_add_region *r, int fd)
{
	struct stat st;

	/* In order, bounded, a file at least as long as it says and sealed so
	 * that it stays so: a client that shrank it under our mapping would
	 * kill the switch with SIGBUS. (DPDK and VPP seal their regions.) */
	int seals = fcntl(fd, F_GET_SEALS);
	if (r->index != c->nregions || c->nregions == PW_MEMIF_REGIONS ||
	    r->size > PW_MEMIF_REGION_MAX || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < r->size || seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EINVAL;
	void *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	c->regions[c->nregions].map = p;
	c->regions[c->nregions].size = r->size;
	c->nregions++;
	return 0;
}

static int pw_memif_on_ring(struct pw_memif_conn *c, const struct pw_memif_add_ring *r, int fd)
{
	unsigned dir = r->flags & PW_MEMIF_RING_S2M ? 0 : 1;
	uint64_t bytes = sizeof(struct pw_memif_ring) +
			 ((uint64_t)sizeof(struct pw_memif_desc) << r->log2_ring_size);

	if (r->index != c->nrings[dir] || c->nrings[dir] == PW_MEMIF_RINGS ||
	    r->region >= c->nregions || r->offset % PW_CACHELINE ||
	    r->offset > c->regions[r->region].size ||
	    bytes > c->regions[r->region].size - r->offset || !pw_fd_is_eventfd(fd))
		return -EINVAL;
	struct pw_memif_ringref *ref = &c->rings[dir][c->nrings[dir]++];
	ref->ring = (struct pw_memif_ring *)(c->regions[r->region].map + r->offset);
	ref->log2 = r->log2_ring_size;
	ref->evfd = fd;
	return 0;
}

static int pw_memif_on_connect(struct pw_memif_conn *c)
{
	if (!c->nrings[0] || !c->nrings[1])
		return -EINVAL;
	/* The client made its rings before it said so. */
	for (unsigned d = 0; d < 2; d++)
		for (unsigned i = 0; i < c->nrings[d]; i++)
			if (c->rings[d][i].ring->cookie != PW_MEMIF_COOKIE)
				return -EINVAL;
	c->state = PW_MEMIF_S_CONNECTED;
	return 0;
}

int pw_memif_conn_apply(struct pw_memif_conn *c, const struct pw_memif_msg *m, int fd,
			struct pw_memif_msg *reply)
{
	int r = -EPROTO;

	if (m->type == PW_MEMIF_DISCONNECT) {
		pw_close(fd);
		c->state = PW_MEMIF_S_DEAD;
		return 1;
	}
	if (c->state == PW_MEMIF_S_HELLO && m->type == PW_MEMIF_INIT)
		r = pw_memif_on_init(c, &m->init);
	else if (c->state == PW_MEMIF_S_INIT && m->type == PW_MEMIF_ADD_REGION)
		r = pw_memif_on_region(c, &m->add_region, fd);
	else if (c->state == PW_MEMIF_S_INIT && m->type == PW_MEMIF_ADD_RING) {
		r = pw_memif_on_ring(c, &m->add_ring, fd);
		if (!r)
			fd = -1; /* (kept) */
	} else if (c->state == PW_MEMIF_S_INIT && m->type == PW_MEMIF_CONNECT)
		r = pw_memif_on_connect(c);
	pw_close(fd); /* (a region's fd is not needed once it is mapped) */
	if (r < 0) {
		static const char *const why[] = { "message out of turn", "refused",
						   "bad region or ring", "cannot map a region" };
		const char *s = r == -EPROTO   ? why[0]
				: r == -EPERM  ? why[1]
				: r == -EINVAL ? why[2]
					       : why[3];
		c->state = PW_MEMIF_S_DEAD;
		pw_memif_msg_disconnect(reply, (uint32_t)-r, s);
		return r;
	}
	if (c->state == PW_MEMIF_S_CONNECTED)
		pw_memif_msg_connected(reply, "podwire");
	else
		pw_memif_msg_ack(reply);
	return 0;
}

void pw_memif_conn_close(struct pw_memif_conn *c)
{
	for (unsigned i = 0; i < c->nregions; i++)
		munmap(c->regions[i].map, c->regions[i].size);
	for (unsigned d = 0; d < 2; d++)
		for (unsigned i = 0; i < c->nrings[d]; i++)
			pw_close(c->rings[d][i].evfd);
	c->nregions = 0;
	c->nrings[0] = c->nrings[1] = 0;
	c->state = PW_MEMIF_S_DEAD;
}
