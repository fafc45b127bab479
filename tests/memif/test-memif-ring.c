// SPDX-License-Identifier: MIT
/*
 * The server's packet path on a memif (src/memif/ring.c), against a client
 * laid out as DPDK's copy mode lays itself out: packets received whole and
 * chained, the slots handed back; packets sent into the buffers offered,
 * chained where one is too short, the rest dropped when the ring is full;
 * interrupts both ways. Then a hostile client: descriptors outside their
 * region, empty, chains too long or published before their end, head moved past a ring,
 * buffers offered outside the region. Each is dropped and counted, or the
 * connection marked broken; nothing outside the region is touched.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memif_client.h"

#define LOG2  4 /* 16 slots */
#define HLOG2 6 /* room for a chain too long */

static uint8_t gather[PW_MEMIF_BURST * PW_MEMIF_PKT_MAX];

static bool all_bytes(const uint8_t *p, uint32_t n, uint8_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void test_rx(void)
{
	struct pw_memif_conn c;
	struct pw_memif_burst b = { .gather = gather };
	struct pw_tc t;

	pw_tc_connect(&t, &c, LOG2);
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 0);
	pw_tc_send(&t, 0xa1, 60, true);
	pw_tc_send(&t, 0xa2, 1514, true);
	pw_tc_send(&t, 0xa3, 5000, true); /* three descriptors */
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 3);
	PW_CHECK(b.pkt[0].len == 60 && all_bytes(b.pkt[0].data, 60, 0xa1), "pkt 0");
	PW_CHECK(b.pkt[1].len == 1514 && all_bytes(b.pkt[1].data, 1514, 0xa2), "pkt 1");
	PW_CHECK(b.pkt[2].len == 5000 && all_bytes(b.pkt[2].data, 5000, 0xa3), "pkt 2");
	PW_CHECK(b.pkt[2].data == gather + 2 * PW_MEMIF_PKT_MAX, "chain gathered");
	PW_CHECK(b.pkt[0].data >= c.regions[0].map && b.pkt[0].data < c.regions[0].map + t.size,
		 "single in place");
	PW_CHECK_EQ(atomic_load(&t.s2m->tail), 0); /* not handed back yet */
	pw_memif_rx_done(&c, 0, &b);
	PW_CHECK_EQ(atomic_load(&t.s2m->tail), 5);
	PW_CHECK(c.stats.rx_pkts == 3 && c.stats.rx_bytes == 6574 && !c.stats.rx_bad, "stats");

	/* Without a gather buffer a chain is dropped, the slots still used. */
	b.gather = NULL;
	pw_tc_send(&t, 0xb1, 3000, true);
	pw_tc_send(&t, 0xb2, 64, true);
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 1);
	PW_CHECK(b.pkt[0].len == 64 && all_bytes(b.pkt[0].data, 64, 0xb2), "after chain");
	pw_memif_rx_done(&c, 0, &b);
	PW_CHECK_EQ(c.stats.rx_bad, 1);

	/* A burst stops at PW_MEMIF_BURST; the free-running index wraps. */
	b.gather = gather;
	for (unsigned round = 0; round < 5000; round++) {
		pw_tc_send(&t, (uint8_t)round, 100, true);
		PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 1);
		PW_CHECK(all_bytes(b.pkt[0].data, 100, (uint8_t)round), "round %u", round);
		pw_memif_rx_done(&c, 0, &b);
	}
	PW_CHECK_EQ(atomic_load(&t.s2m->tail), (uint16_t)(5 + 3 + 5000));
	pw_memif_conn_close(&c);
	pw_tc_close(&t);
}

/* Each hostile descriptor is dropped and counted; the good packet after it
 * arrives. */
static void test_rx_hostile(void)
{
	struct pw_memif_conn c;
	struct pw_memif_burst b = { .gather = gather };
	struct pw_tc t;
	uint16_t mask = (1u << HLOG2) - 1;

	pw_tc_connect(&t, &c, HLOG2);
	const struct {
		uint16_t region;
		uint32_t offset, length;
	} bad[] = {
		{ 1, 0, 64 },			  /* no such region */
		{ 0, (uint32_t)t.size - 63, 64 }, /* past its end by one */
		{ 0, UINT32_MAX - 10, 64 },	  /* offset + length wraps */
		{ 0, 0, UINT32_MAX },		  /* longer than the region */
		{ 0, 0, 0 },			  /* empty */
		{ 0, 0, PW_MEMIF_PKT_MAX + 1 },	  /* longer than a packet */
	};
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		uint16_t h = atomic_load(&t.s2m->head);
		pw_tc_send(&t, 0xcc, 64, false);
		struct pw_memif_desc *d = &t.s2m->desc[h & mask];
		atomic_store(&d->region, bad[i].region);
		atomic_store(&d->offset, bad[i].offset);
		atomic_store(&d->length, bad[i].length);
		atomic_store(&t.s2m->head, (uint16_t)(h + 1));
		pw_tc_send(&t, 0x5a, 64, true);
		PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 1);
		PW_CHECK(all_bytes(b.pkt[0].data, 64, 0x5a), "case %zu", i);
		pw_memif_rx_done(&c, 0, &b);
		PW_CHECK_EQ(c.stats.rx_bad, i + 1);
	}

	/* A chain of PW_MEMIF_CHAIN + 1 descriptors (each small); a chain cut
	 * off at head. */
	uint16_t h = atomic_load(&t.s2m->head);
	for (unsigned i = 0; i <= PW_MEMIF_CHAIN; i++) {
		pw_tc_send(&t, 0xdd, 8, false);
		atomic_store(&t.s2m->desc[(h + i) & mask].flags,
			     i < PW_MEMIF_CHAIN ? PW_MEMIF_DESC_NEXT : 0);
		atomic_store(&t.s2m->head, (uint16_t)(h + i + 1));
		if (i == 8) { /* half of it is all there is for now: left */
			PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 0);
			PW_CHECK_EQ(b.end, h);
			pw_memif_rx_done(&c, 0, &b);
			PW_CHECK_EQ(atomic_load(&t.s2m->tail), h);
		}
	}
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 0); /* all of it: too long */
	pw_memif_rx_done(&c, 0, &b);
	PW_CHECK_EQ(c.stats.rx_bad, PW_ARRAY_SIZE(bad) + 1);
	/* A chain of two published in two steps arrives whole. */
	h = atomic_load(&t.s2m->head);
	pw_tc_send(&t, 0xee, PW_TC_BUF + 10, false);
	atomic_store(&t.s2m->head, (uint16_t)(h + 1));
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 0);
	pw_memif_rx_done(&c, 0, &b);
	atomic_store(&t.s2m->head, (uint16_t)(h + 2));
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 1);
	PW_CHECK(b.pkt[0].len == PW_TC_BUF + 10 && all_bytes(b.pkt[0].data, b.pkt[0].len, 0xee),
		 "two steps");
	pw_memif_rx_done(&c, 0, &b);
	PW_CHECK_EQ(atomic_load(&t.s2m->tail), atomic_load(&t.s2m->head));

	/* head moved more than a ring ahead: broken, nothing read. */
	atomic_store(&t.s2m->head, (uint16_t)(atomic_load(&t.s2m->head) + (1u << HLOG2) + 1));
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), -EPROTO);
	PW_CHECK_EQ(c.err, -EPROTO);
	PW_CHECK_EQ(b.n, 0);
	pw_memif_conn_close(&c);
	pw_tc_close(&t);
}

static void test_tx(void)
{
	struct pw_memif_conn c;
	struct pw_tc t;
	static uint8_t big[5000];
	uint8_t small[100];
	uint16_t mask = (1u << LOG2) - 1;

	pw_tc_connect(&t, &c, LOG2);
	memset(small, 0x42, sizeof(small));
	memset(big, 0x43, sizeof(big));
	struct pw_memif_pkt one = { small, sizeof(small) }, chain = { big, sizeof(big) };

	/* Nothing offered yet: dropped. */
	PW_CHECK_EQ(pw_memif_tx(&c, 0, &one, 1), 0);
	PW_CHECK_EQ(c.stats.tx_full, 1);
	pw_tc_refill(&t);
	struct pw_memif_pkt v[] = { one, chain, one };
	PW_CHECK_EQ(pw_memif_tx(&c, 0, v, 3), 3);
	PW_CHECK_EQ(atomic_load(&t.m2s->tail), 5); /* 1 + 3 + 1 descriptors */
	const struct pw_memif_desc *d = t.m2s->desc;
	PW_CHECK(atomic_load(&d[0].length) == 100 && atomic_load(&d[0].flags) == 0, "d0");
	PW_CHECK(atomic_load(&d[1].length) == PW_TC_BUF &&
			 atomic_load(&d[1].flags) == PW_MEMIF_DESC_NEXT,
		 "d1");
	PW_CHECK(atomic_load(&d[3].length) == 5000 - 2 * PW_TC_BUF && atomic_load(&d[3].flags) == 0,
		 "d3");
	for (unsigned i = 0; i < 5; i++)
		PW_CHECK(all_bytes(t.map + atomic_load(&d[i].offset), atomic_load(&d[i].length),
				   i == 0 || i == 4 ? 0x42 : 0x43),
			 "slot %u", i);
	/* The client polls: no interrupt. */
	uint64_t n = 0;
	PW_CHECK(read(t.m2s_evfd, &n, sizeof(n)) < 0 && errno == EAGAIN, "no interrupt");

	/* 11 slots left: ten singles fit, the chain after them does not, nor
	 * the single after it (in order, as a NIC's queue). */
	struct pw_memif_pkt w[13];
	for (unsigned i = 0; i < 13; i++)
		w[i] = i == 10 ? chain : one;
	PW_CHECK_EQ(pw_memif_tx(&c, 0, w, 13), 10);
	PW_CHECK_EQ(c.stats.tx_full, 1 + 3);
	PW_CHECK_EQ(atomic_load(&t.m2s->tail), 15);

	/* The client reads all, refills, and wants interrupts. */
	t.m2s_seen = 15;
	pw_tc_refill(&t);
	atomic_store(&t.m2s->flags, 0);
	PW_CHECK_EQ(pw_memif_tx(&c, 0, &one, 1), 1);
	PW_CHECK(read(t.m2s_evfd, &n, sizeof(n)) == 8 && n == 1, "interrupt");
	PW_CHECK_EQ(c.stats.irqs, 1);

	/* A buffer offered outside the region: broken, nothing written. */
	atomic_store(&t.m2s->desc[16 & mask].offset, (uint32_t)t.size - 100);
	PW_CHECK_EQ(pw_memif_tx(&c, 0, &one, 1), -EPROTO);
	PW_CHECK_EQ(atomic_load(&t.m2s->tail), 16);
	PW_CHECK_EQ(c.stats.tx_bad, 1);
	PW_CHECK_EQ(pw_memif_tx(&c, 0, &one, 1), -EPROTO); /* sticky */
	pw_memif_conn_close(&c);
	pw_tc_close(&t);

	/* head more than a ring ahead of what we filled. */
	pw_tc_connect(&t, &c, LOG2);
	atomic_store(&t.m2s->head, (1u << LOG2) + 1);
	PW_CHECK_EQ(pw_memif_tx(&c, 0, &one, 1), -EPROTO);
	pw_memif_conn_close(&c);
	pw_tc_close(&t);
}

static void test_interrupts(void)
{
	struct pw_memif_conn c;
	struct pw_tc t;
	struct pw_memif_burst b = { .gather = gather };

	pw_tc_connect(&t, &c, LOG2);
	pw_memif_rx_poll(&c);
	PW_CHECK_EQ(atomic_load(&t.s2m->flags), PW_MEMIF_RING_MASK_INT);
	PW_CHECK(!pw_memif_rx_arm(&c), "nothing waiting");
	PW_CHECK_EQ(atomic_load(&t.s2m->flags), 0);
	pw_tc_send(&t, 1, 64, true);
	PW_CHECK(pw_memif_rx_pending(&c), "pending");
	PW_CHECK(pw_memif_rx_arm(&c), "waiting: do not sleep");
	PW_CHECK_EQ(pw_memif_rx(&c, 0, &b), 1);
	pw_memif_rx_done(&c, 0, &b);
	PW_CHECK(!pw_memif_rx_pending(&c), "drained");
	pw_memif_conn_close(&c);
	pw_tc_close(&t);
}

int main(void)
{
	int fds = pw_test_count_fds();

	test_rx();
	test_rx_hostile();
	test_tx();
	test_interrupts();
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	printf("test-memif-ring: ok\n");
	return 0;
}
