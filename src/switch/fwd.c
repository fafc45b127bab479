// SPDX-License-Identifier: MIT
/*
 * Switching: a burst from one port's ring goes, frame by frame, to the port
 * its rule names, or by destination MAC to the port it was learned on,
 * flooded when unknown or multicast. Frames are copied straight from the
 * source's ring into the destinations' (one copy), a burst per destination.
 * A port given a MAC sends only from it: other frames are dropped, and no
 * other port can learn it away.
 */
#include <string.h>

#include "../common/util.h"
#include "switch.h"

#define PW_SW_PROBE 4 /* slots looked at per MAC */

struct pw_sw_mac {
	uint64_t key; /* the MAC, with bit 48 set; 0: empty */
	uint16_t port;
	uint32_t gen; /* the port's gen when learned: stale once it moves on */
};

static struct pw_sw_mac pw_sw_macs[PW_SW_MAC_ENTRIES];

/* The frames of one burst, by destination. */
static struct {
	struct pw_memif_pkt pkt[PW_SW_PORTS][PW_MEMIF_BURST];
	unsigned n[PW_SW_PORTS];
	uint16_t touched[PW_SW_PORTS];
	unsigned ntouched;
} pw_sw_out;

static uint8_t pw_sw_gather[PW_MEMIF_BURST * PW_MEMIF_PKT_MAX];

static uint64_t pw_sw_mac_key(const uint8_t *m)
{
	return 1ull << 48 | (uint64_t)m[0] << 40 | (uint64_t)m[1] << 32 | (uint64_t)m[2] << 24 |
	       (uint64_t)m[3] << 16 | (uint64_t)m[4] << 8 | m[5];
}

static unsigned pw_sw_mac_hash(uint64_t key)
{
	return (unsigned)((key * 0x9E3779B97F4A7C15ull) >> 52) & (PW_SW_MAC_ENTRIES - 1);
}

_Static_assert((PW_SW_MAC_ENTRIES & (PW_SW_MAC_ENTRIES - 1)) == 0, "a power of two");

static bool pw_sw_mac_live(const struct pw_sw_mac *e)
{
	const struct pw_sw_port *p = &pw_sw.ports[e->port];

	return e->key && p->used && p->gen == e->gen;
}

/* The port @mac was learned on, or -1. */
static int pw_sw_mac_lookup(uint64_t key)
{
	unsigned h = pw_sw_mac_hash(key);

	for (unsigned i = 0; i < PW_SW_PROBE; i++) {
		const struct pw_sw_mac *e = &pw_sw_macs[(h + i) & (PW_SW_MAC_ENTRIES - 1)];
		if (e->key == key)
			return pw_sw_mac_live(e) ? e->port : -1;
	}
	return -1;
}

static void pw_sw_mac_learn(uint64_t key, const struct pw_sw_port *p)
{
	unsigned h = pw_sw_mac_hash(key);
	struct pw_sw_mac *free = NULL;

	for (unsigned i = 0; i < PW_SW_PROBE; i++) {
		struct pw_sw_mac *e = &pw_sw_macs[(h + i) & (PW_SW_MAC_ENTRIES - 1)];
		if (e->key == key) {
			if (e->port == p->idx && e->gen == p->gen)
				return;
			/* A MAC pinned to a live port stays there. */
			if (pw_sw_mac_live(e) && pw_sw.ports[e->port].has_mac &&
			    pw_sw_mac_key(pw_sw.ports[e->port].mac) == key)
				return;
			free = e;
			break;
		}
		if (!free && !pw_sw_mac_live(e))
			free = e;
	}
	/* Full: the first slot goes (a pod sending from many MACs only
	 * makes the switch flood more). */
	if (!free)
		free = &pw_sw_macs[h];
	free->key = key;
	free->port = (uint16_t)p->idx;
	free->gen = p->gen;
}

static void pw_sw_out_add(unsigned dst, const struct pw_memif_pkt *pkt)
{
	if (!pw_sw_out.n[dst])
		pw_sw_out.touched[pw_sw_out.ntouched++] = (uint16_t)dst;
	pw_sw_out.pkt[dst][pw_sw_out.n[dst]++] = *pkt;
}

/* Switch one frame from port @p. */
static void pw_sw_frame(struct pw_sw_port *p, const struct pw_memif_pkt *pkt)
{
	uint8_t hdr[12];

	if (pkt->len < 14) {
		p->no_dest++;
		return;
	}
	/* The pod may change its bytes under us: decide on one copy. */
	memcpy(hdr, pkt->data, sizeof(hdr));
	uint64_t dst = pw_sw_mac_key(hdr), src = pw_sw_mac_key(hdr + 6);
	if (p->has_mac && src != pw_sw_mac_key(p->mac)) {
		p->spoofed++;
		return;
	}
	if (p->rule >= 0) {
		if (pw_sw_port_up(&pw_sw.ports[p->rule]))
			pw_sw_out_add((unsigned)p->rule, pkt);
		else
			p->no_dest++;
		return;
	}
	if (!(hdr[6] & 1))
		pw_sw_mac_learn(src, p);
	int to = hdr[0] & 1 ? -1 : pw_sw_mac_lookup(dst);
	if (to >= 0) {
		if (to != (int)p->idx && pw_sw_port_up(&pw_sw.ports[to]))
			pw_sw_out_add((unsigned)to, pkt);
		else
			p->no_dest++;
		return;
	}
	/* Broadcast, multicast, unknown: every other port that is up. */
	unsigned sent = 0;
	for (unsigned i = 0; i < pw_sw.top; i++)
		if (i != p->idx && pw_sw_port_up(&pw_sw.ports[i]) && pw_sw.ports[i].rule < 0) {
			pw_sw_out_add(i, pkt);
			sent++;
		}
	if (!sent)
		p->no_dest++;
}

/* Send each destination its frames, on the ring matching the source's. A
 * destination that breaks its ring is marked (conn.err: no longer up) and
 * disconnected by pw_sw_poll() once no burst points into any pod's memory. */
static bool pw_sw_flush(unsigned q)
{
	bool broke = false;

	for (unsigned i = 0; i < pw_sw_out.ntouched; i++) {
		unsigned d = pw_sw_out.touched[i];
		struct pw_sw_port *to = &pw_sw.ports[d];
		if (pw_sw_port_up(to) && pw_memif_tx(&to->conn, q % to->conn.nrings[1],
						     pw_sw_out.pkt[d], pw_sw_out.n[d]) < 0)
			broke = true;
		pw_sw_out.n[d] = 0;
	}
	pw_sw_out.ntouched = 0;
	return broke;
}

unsigned pw_sw_poll(void)
{
	struct pw_memif_burst b = { .gather = pw_sw_gather };
	unsigned total = 0;
	bool broke = false;

	for (unsigned i = 0; i < pw_sw.top; i++) {
		struct pw_sw_port *p = &pw_sw.ports[i];
		if (!pw_sw_port_up(p))
			continue;
		for (unsigned q = 0; q < p->conn.nrings[0] && pw_sw_port_up(p); q++) {
			int n = pw_memif_rx(&p->conn, q, &b);
			if (n < 0) {
				broke = true;
				continue;
			}
			for (int k = 0; k < n; k++)
				pw_sw_frame(p, &b.pkt[k]);
			/* The frames are read straight from the source's ring:
			 * hand its slots back (and those of frames dropped as
			 * malformed) only once they are copied. */
			if (n && pw_sw_flush(q))
				broke = true;
			pw_memif_rx_done(&p->conn, q, &b);
			total += (unsigned)n;
		}
	}
	/* Connections whose pod broke a ring (conn.err), now that no burst
	 * points into any pod's memory. */
	for (unsigned i = 0; broke && i < pw_sw.top; i++) {
		struct pw_sw_port *p = &pw_sw.ports[i];
		if (p->used && p->cfd >= 0 && p->conn.err)
			pw_sw_port_disconnect(p, "broken ring");
	}
	return total;
}
