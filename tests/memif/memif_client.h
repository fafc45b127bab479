/* SPDX-License-Identifier: MIT */
/*
 * A memif client for the tests, laid out as DPDK's net_memif lays out copy
 * mode: one sealed memfd region holding the S2M ring, the M2S ring, then a
 * buffer per descriptor. Messages are built here and applied straight to a
 * server's connection (pw_memif_conn_apply), no socket between.
 */
#ifndef PW_MEMIF_CLIENT_H
#define PW_MEMIF_CLIENT_H

#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memif.h"
#include "pw_test.h"

/* A region fd of @len bytes, sealed against shrinking as DPDK seals it. */
static inline int pw_tc_region_fd(uint64_t len, bool seal)
{
	int fd = memfd_create("test-memif", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	PW_CHECK(fd >= 0 && ftruncate(fd, (off_t)len) == 0, "memfd: %s", strerror(errno));
	PW_CHECK(!seal || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) == 0, "seal: %s", strerror(errno));
	return fd;
}

/* The client's messages (the tests' INIT may carry another version). */
static inline struct pw_memif_msg pw_tc_msg_init(uint32_t id, const char *secret, uint16_t version)
{
	struct pw_memif_msg m;

	pw_memif_msg_init(&m, id, secret, "DPDK 22.11");
	m.init.version = version;
	return m;
}

static inline struct pw_memif_msg pw_tc_msg_region(uint16_t index, uint64_t size)
{
	struct pw_memif_msg m;

	pw_memif_msg_add_region(&m, index, size);
	return m;
}

static inline struct pw_memif_msg pw_tc_msg_ring(bool s2m, uint16_t index, uint16_t region,
						 uint32_t offset, uint8_t log2)
{
	struct pw_memif_msg m;

	pw_memif_msg_add_ring(&m, s2m, index, region, offset, log2);
	return m;
}

static inline struct pw_memif_msg pw_tc_msg_type(uint16_t type)
{
	struct pw_memif_msg m;

	memset(&m, 0, sizeof(m));
	m.type = type;
	return m;
}

/* Apply @m with @fd to @c: want @want, and a reply of @reply_type. */
static inline void pw_tc_apply(struct pw_memif_conn *c, struct pw_memif_msg m, int fd, int want,
			       uint16_t reply_type, int line)
{
	struct pw_memif_msg reply;

	memset(&reply, 0, sizeof(reply));
	int r = pw_memif_conn_apply(c, &m, fd, &reply);
	if (r != want || (want != 1 && reply.type != reply_type)) {
		fprintf(stderr, "apply:%d: message %u: %d, reply %u; want %d, reply %u\n", line,
			m.type, r, reply.type, want, reply_type);
		exit(1);
	}
}
#define PW_TC_APPLY(c, m, fd, want, type) pw_tc_apply(c, m, fd, want, type, __LINE__)

#define PW_TC_BUF 2048u /* DPDK's default pkt_buffer_size */

/* The client's side: its mapping of the region and its ring positions. */
struct pw_tc {
	uint8_t *map;
	size_t size;
	unsigned log2;
	struct pw_memif_ring *s2m, *m2s;
	uint16_t m2s_seen; /* the M2S tail the client has read up to */
	int s2m_evfd, m2s_evfd;
};

static inline size_t pw_tc_ring_bytes(unsigned log2)
{
	return sizeof(struct pw_memif_ring) + (sizeof(struct pw_memif_desc) << log2);
}

/* Offset of buffer @slot of ring @s2m (each ring's buffers follow both rings). */
static inline uint32_t pw_tc_buf_off(const struct pw_tc *t, bool s2m, unsigned slot)
{
	unsigned n = 1u << t->log2;

	return (uint32_t)(2 * pw_tc_ring_bytes(t->log2) + ((s2m ? 0 : n) + slot) * PW_TC_BUF);
}

/* Lay out client @t's region (rings with cookies, buffers): its fd. */
static inline int pw_tc_layout(struct pw_tc *t, unsigned log2)
{
	unsigned n = 1u << log2;

	memset(t, 0, sizeof(*t));
	t->log2 = log2;
	t->size = 2 * pw_tc_ring_bytes(log2) + 2ull * n * PW_TC_BUF;
	int fd = pw_tc_region_fd(t->size, true);
	t->map = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	PW_CHECK(t->map != MAP_FAILED, "mmap: %s", strerror(errno));
	t->s2m = (struct pw_memif_ring *)t->map;
	t->m2s = (struct pw_memif_ring *)(t->map + pw_tc_ring_bytes(log2));
	for (unsigned d = 0; d < 2; d++) {
		struct pw_memif_ring *r = d ? t->m2s : t->s2m;
		r->cookie = PW_MEMIF_COOKIE;
		for (unsigned i = 0; i < n; i++) {
			atomic_store(&r->desc[i].offset, pw_tc_buf_off(t, !d, i));
			atomic_store(&r->desc[i].length, PW_TC_BUF);
		}
	}
	t->s2m_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	t->m2s_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return fd;
}

/* Connect client @t to @c (interface 0, no secret): a whole handshake. */
static inline void pw_tc_connect(struct pw_tc *t, struct pw_memif_conn *c, unsigned log2)
{
	int fd = pw_tc_layout(t, log2);

	pw_memif_conn_init(c, 0, NULL);
	PW_TC_APPLY(c, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1, 0, PW_MEMIF_ACK);
	PW_TC_APPLY(c, pw_tc_msg_region(0, t->size), fd, 0, PW_MEMIF_ACK);
	PW_TC_APPLY(c, pw_tc_msg_ring(true, 0, 0, 0, (uint8_t)log2), dup(t->s2m_evfd), 0,
		    PW_MEMIF_ACK);
	PW_TC_APPLY(c, pw_tc_msg_ring(false, 0, 0, (uint32_t)pw_tc_ring_bytes(log2), (uint8_t)log2),
		    dup(t->m2s_evfd), 0, PW_MEMIF_ACK);
	PW_TC_APPLY(c, pw_tc_msg_type(PW_MEMIF_CONNECT), -1, 0, PW_MEMIF_CONNECTED);
	/* As DPDK's client: it polls its M2S ring. */
	atomic_store(&t->m2s->flags, PW_MEMIF_RING_MASK_INT);
}

static inline void pw_tc_close(struct pw_tc *t)
{
	munmap(t->map, t->size);
	close(t->s2m_evfd);
	close(t->m2s_evfd);
}

/* Put a packet of @len bytes (@fill) into S2M slot head, in @nseg pieces
 * of at most PW_TC_BUF; publish with @publish. */
static inline void pw_tc_send(struct pw_tc *t, uint8_t fill, uint32_t len, bool publish)
{
	uint16_t head = atomic_load(&t->s2m->head), mask = (uint16_t)((1u << t->log2) - 1);

	do {
		struct pw_memif_desc *d = &t->s2m->desc[head & mask];
		uint32_t k = len < PW_TC_BUF ? len : PW_TC_BUF;
		uint32_t off = pw_tc_buf_off(t, true, head & mask);
		memset(t->map + off, fill, k);
		atomic_store(&d->region, 0);
		atomic_store(&d->offset, off);
		atomic_store(&d->length, k);
		len -= k;
		atomic_store(&d->flags, len ? PW_MEMIF_DESC_NEXT : 0);
		head++;
	} while (len);
	if (publish)
		atomic_store(&t->s2m->head, head);
}

/* Offer every free M2S buffer to the server, as DPDK's refill does. */
static inline void pw_tc_refill(struct pw_tc *t)
{
	uint16_t head = atomic_load(&t->m2s->head), mask = (uint16_t)((1u << t->log2) - 1);

	while ((uint16_t)(head - t->m2s_seen) < (1u << t->log2)) {
		atomic_store(&t->m2s->desc[head & mask].length, PW_TC_BUF);
		head++;
	}
	atomic_store(&t->m2s->head, head);
}

#endif /* PW_MEMIF_CLIENT_H */
