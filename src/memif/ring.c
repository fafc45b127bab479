// SPDX-License-Identifier: MIT
/*
 * The server's packet path on a connected memif (copy mode): packets out of
 * the client's S2M rings, packets into the buffers it offers in its M2S
 * rings. Both rings and buffers are in the client's memory: every index is
 * checked against our own position, every descriptor read once and its
 * buffer checked to lie wholly inside its region before it is touched.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "memif.h"

/* The @len bytes at @off of region @region, or NULL if not all inside it. */
static uint8_t *pw_memif_buf(const struct pw_memif_conn *c, uint16_t region, uint32_t off,
			     uint32_t len)
{
	if (region >= c->nregions)
		return NULL;
	const struct pw_memif_region *r = &c->regions[region];
	if (len > r->size || off > r->size - len)
		return NULL;
	return r->map + off;
}

void pw_memif_stats_add(struct pw_memif_stats *dst, const struct pw_memif_stats *src)
{
	dst->rx_pkts += src->rx_pkts;
	dst->rx_bytes += src->rx_bytes;
	dst->rx_bad += src->rx_bad;
	dst->tx_pkts += src->tx_pkts;
	dst->tx_bytes += src->tx_bytes;
	dst->tx_full += src->tx_full;
	dst->tx_bad += src->tx_bad;
	dst->irqs += src->irqs;
}

int pw_memif_rx(struct pw_memif_conn *c, unsigned q, struct pw_memif_burst *b)
{
	struct pw_memif_ringref *ref = &c->rings[0][q];
	struct pw_memif_ring *ring = ref->ring;
	const uint16_t mask = (uint16_t)((1u << ref->log2) - 1);
	uint16_t pos = ref->pos;

	b->n = 0;
	b->end = pos;
	if (c->err)
		return c->err;
	/* acquire: pairs with the client's release of head, after it wrote
	 * the descriptors and their buffers. */
	uint16_t avail = (uint16_t)(atomic_load_explicit(&ring->head, memory_order_acquire) - pos);
	if (avail > mask + 1u) {
		c->err = -EPROTO;
		return -EPROTO;
	}
	while (avail && b->n < PW_MEMIF_BURST) {
		uint8_t *g = b->gather ? b->gather + (size_t)b->n * PW_MEMIF_PKT_MAX : NULL;
		const uint8_t *first = NULL;
		uint32_t total = 0;
		unsigned nd = 0;
		bool bad = false, more;

		uint16_t start = pos;

		do {
			if (!avail) {
				if (bad)
					break; /* dropped: what is here goes */
				/* A chain published before its end: wait for it. */
				pos = start;
				goto out;
			}
			struct pw_memif_desc *d = &ring->desc[pos & mask];
			more = atomic_load_explicit(&d->flags, memory_order_relaxed) &
			       PW_MEMIF_DESC_NEXT;
			uint16_t region = atomic_load_explicit(&d->region, memory_order_relaxed);
			uint32_t len = atomic_load_explicit(&d->length, memory_order_relaxed);
			uint32_t off = atomic_load_explicit(&d->offset, memory_order_relaxed);
			const uint8_t *p = pw_memif_buf(c, region, off, len);
			pos++;
			avail--;
			if (bad || ++nd > PW_MEMIF_CHAIN || !p || len > PW_MEMIF_PKT_MAX - total) {
				bad = true;
				continue; /* the rest of the chain goes with it */
			}
			if (nd == 1) {
				first = p;
			} else if (!g) {
				bad = true;
				continue;
			} else {
				if (nd == 2)
					memcpy(g, first, total);
				memcpy(g + total, p, len);
			}
			total += len;
		} while (more);
		if (bad || !total) {
			c->stats.rx_bad++;
			continue;
		}
		b->pkt[b->n].data = nd == 1 ? first : g;
		b->pkt[b->n].len = total;
		b->n++;
		c->stats.rx_pkts++;
		c->stats.rx_bytes += total;
	}
out:
	b->end = pos;
	return (int)b->n;
}

void pw_memif_rx_done(struct pw_memif_conn *c, unsigned q, const struct pw_memif_burst *b)
{
	struct pw_memif_ringref *ref = &c->rings[0][q];

	if (c->err || b->end == ref->pos)
		return;
	ref->pos = b->end;
	/* release: pairs with the client's acquire of tail before it reuses
	 * the buffers; we have read them. */
	atomic_store_explicit(&ref->ring->tail, ref->pos, memory_order_release);
}

int pw_memif_tx(struct pw_memif_conn *c, unsigned q, const struct pw_memif_pkt *pkts, unsigned n)
{
	struct pw_memif_ringref *ref = &c->rings[1][q];
	struct pw_memif_ring *ring = ref->ring;
	const uint16_t mask = (uint16_t)((1u << ref->log2) - 1);
	uint16_t pos = ref->pos;
	unsigned sent = 0, i;

	if (c->err)
		return c->err;
	/* acquire: pairs with the client's release of head, after it set the
	 * lengths of the buffers it offers. */
	uint16_t room = (uint16_t)(atomic_load_explicit(&ring->head, memory_order_acquire) - pos);
	if (room > mask + 1u)
		goto broken;
	for (i = 0; i < n; i++) {
		const uint8_t *src = pkts[i].data;
		uint32_t left = pkts[i].len, done = 0;
		uint16_t p = pos, r = room;

		for (;;) {
			if (!r)
				break;
			struct pw_memif_desc *d = &ring->desc[p & mask];
			uint16_t region = atomic_load_explicit(&d->region, memory_order_relaxed);
			uint32_t cap = atomic_load_explicit(&d->length, memory_order_relaxed);
			uint32_t off = atomic_load_explicit(&d->offset, memory_order_relaxed);
			uint8_t *dst = pw_memif_buf(c, region, off, cap);
			/* A buffer we cannot fill stays in the ring for every
			 * packet after it: the client broke its ring. */
			if (!dst || !cap) {
				c->stats.tx_bad += n - i;
				goto broken;
			}
			uint32_t k = left < cap ? left : cap;
			memcpy(dst, src + done, k);
			atomic_store_explicit(&d->length, k, memory_order_relaxed);
			done += k;
			left -= k;
			p++;
			r--;
			atomic_store_explicit(&d->flags, left ? PW_MEMIF_DESC_NEXT : 0,
					      memory_order_relaxed);
			if (!left)
				break;
		}
		if (left) {
			c->stats.tx_full += n - i;
			break;
		}
		pos = p;
		room = r;
		sent++;
		c->stats.tx_pkts++;
		c->stats.tx_bytes += pkts[i].len;
	}
	if (!sent)
		return 0;
	ref->pos = pos;
	/* release: pairs with the client's acquire of tail before it reads
	 * the descriptors and buffers we filled. */
	atomic_store_explicit(&ring->tail, pos, memory_order_release);
	if (!(atomic_load_explicit(&ring->flags, memory_order_seq_cst) & PW_MEMIF_RING_MASK_INT)) {
		uint64_t one = 1;
		ssize_t w;
		do
			w = write(ref->evfd, &one, sizeof(one));
		while (w < 0 && errno == EINTR);
		c->stats.irqs++;
	}
	return (int)sent;
broken:
	c->err = -EPROTO;
	return -EPROTO;
}

bool pw_memif_rx_pending(struct pw_memif_conn *c)
{
	for (unsigned q = 0; q < c->nrings[0]; q++) {
		const struct pw_memif_ringref *ref = &c->rings[0][q];
		/* seq_cst: after pw_memif_rx_arm()'s store of the flags, so a
		 * packet the client published before it read them is seen. */
		if (atomic_load_explicit(&ref->ring->head, memory_order_seq_cst) != ref->pos)
			return true;
	}
	return false;
}

bool pw_memif_rx_arm(struct pw_memif_conn *c)
{
	if (c->err)
		return true;
	/* seq_cst: pairs with the client's store of head then load of the
	 * flags: either it sees interrupts wanted, or we see its packet. */
	for (unsigned q = 0; q < c->nrings[0]; q++)
		atomic_store_explicit(&c->rings[0][q].ring->flags, 0, memory_order_seq_cst);
	return pw_memif_rx_pending(c);
}

void pw_memif_rx_poll(struct pw_memif_conn *c)
{
	for (unsigned q = 0; q < c->nrings[0]; q++)
		atomic_store_explicit(&c->rings[0][q].ring->flags, PW_MEMIF_RING_MASK_INT,
				      memory_order_relaxed);
}
