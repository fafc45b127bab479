/* SPDX-License-Identifier: MIT */
/*
 * Shared-memory layout of a podwire channel. Both processes of a channel map
 * this; everything here is ABI between them, so every size and offset is
 * pinned with _Static_assert. Bump PW_SHM_VERSION on any change, and
 * PW_WIRE_VERSION with it (wire.h).
 *
 * Segment (one sealed memfd):
 *
 *   0x0000  struct pw_shm_hdr        immutable after creation
 *   0x0040  struct pw_shm_ctl        per-side state flags
 *   0x0080  struct pw_shm_ring[0]    side 0 -> side 1
 *   0x0180  struct pw_shm_ring[1]    side 1 -> side 0
 *   0x1000  data of ring 0           ring_size bytes
 *   0x1000 + ring_size  data of ring 1
 *
 * Nothing read from here is trusted: the peer may be hostile or dead.
 */
#ifndef PODWIRE_SHM_H
#define PODWIRE_SHM_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PW_CACHELINE	64u
#define PW_SHM_MAGIC	0x50574331u /* "PWC1" */
#define PW_SHM_VERSION	3u
#define PW_SHM_DATA_OFF 4096u
#define PW_RING_MIN	4096u
#define PW_RING_MAX	(1u << 30)
/* A ring starts using this much of its data area (or all of it, if smaller)
 * and widens when a connection moves bulk data (CHANNEL.md, "Window"). */
#define PW_RING_WINDOW_START (64u << 10)

/* pw_shm_ctl.side[] flags, each written only by its own side. */
#define PW_SIDE_OPEN	0x1u  /* side has attached */
#define PW_SIDE_SHUT_WR 0x2u  /* side will write no more: peer reads EOF after draining */
#define PW_SIDE_CLOSED	0x4u  /* orderly close: no reads, no writes */
#define PW_SIDE_RESET	0x8u  /* abortive close: peer gets ECONNRESET */
#define PW_SIDE_SHUT_RD 0x10u /* side reads no more: peer's writes get EPIPE */
/* With CLOSED: the side closed in order, its rings empty, and keeps its end
 * mapped for a next connection between the same two ends. While a side is
 * parked its word may be written by the peer too: a claim swaps it to 0, as
 * a side not yet attached (CHANNEL.md, "Reuse"). */
#define PW_SIDE_PARKED 0x20u

struct pw_shm_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t hdr_size;  /* sizeof(struct pw_shm_hdr) */
	uint32_t ring_size; /* bytes of data per ring, power of two */
	uint32_t reserved0;
	uint64_t total_size; /* PW_SHM_DATA_OFF + 2 * ring_size */
	uint8_t pad[40];
};

struct pw_shm_ctl {
	alignas(PW_CACHELINE) _Atomic uint32_t side[2];
	/* CPU each side last spun on, or -1: a hint for spreading the two
	 * spinners over two CPUs (pw_chan_spread). Never trusted as an index. */
	_Atomic int32_t cpu[2];
	uint8_t pad[48];
};

/*
 * One direction. The producer owns tail, the consumer owns head; each sits on
 * its own line so the two cores never false-share. The wake line is written
 * only around sleeps, so the hot path finds it clean in both caches.
 */
struct pw_shm_ring {
	alignas(PW_CACHELINE) _Atomic uint32_t tail; /* producer: bytes ever written */
	/* producer: bytes of the data area in use, a power of two <= ring_size;
	 * only grows, and only while the ring is empty. Beside tail, so the
	 * consumer's load of tail brings it in the same line. */
	_Atomic uint32_t window;
	_Atomic uint64_t total; /* producer: bytes ever written, 64-bit, for status only */
	uint8_t pad0[48];
	alignas(PW_CACHELINE) _Atomic uint32_t head; /* consumer: bytes ever read */
	uint8_t pad1[60];
	/* 1: consumer is about to sleep until tail moves (set by consumer,
	 * cleared by whichever side takes it with an exchange). */
	alignas(PW_CACHELINE) _Atomic uint32_t rx_sleep;
	/* 1: producer is about to sleep until head moves. */
	_Atomic uint32_t tx_sleep;
	uint8_t pad2[56];
	uint8_t guard[PW_CACHELINE];
};

struct pw_shm_chan {
	struct pw_shm_hdr hdr;
	struct pw_shm_ctl ctl;
	struct pw_shm_ring ring[2];
};

_Static_assert(sizeof(_Atomic uint32_t) == 4, "atomic u32 must be lock-free sized");
_Static_assert(sizeof(struct pw_shm_hdr) == 64, "hdr is one line");
_Static_assert(sizeof(struct pw_shm_ctl) == 64, "ctl is one line");
_Static_assert(sizeof(struct pw_shm_ring) == 256, "ring descriptor is four lines");
_Static_assert(offsetof(struct pw_shm_ring, tail) == 0, "tail line");
_Static_assert(offsetof(struct pw_shm_ring, window) == 4, "window beside tail");
_Static_assert(offsetof(struct pw_shm_ring, total) == 8, "total beside tail");
_Static_assert(offsetof(struct pw_shm_ring, head) == 64, "head line");
_Static_assert(offsetof(struct pw_shm_ring, rx_sleep) == 128, "wake line");
_Static_assert(offsetof(struct pw_shm_ring, tx_sleep) == 132, "wake line");
_Static_assert(offsetof(struct pw_shm_chan, ctl) == 64, "ctl offset");
_Static_assert(offsetof(struct pw_shm_ctl, cpu) == 8, "cpu hints beside the flags");
_Static_assert(offsetof(struct pw_shm_chan, ring) == 128, "ring offset");
_Static_assert(sizeof(struct pw_shm_chan) == 640, "channel header size");
_Static_assert(sizeof(struct pw_shm_chan) <= PW_SHM_DATA_OFF, "header fits below data");
_Static_assert((PW_RING_MIN & (PW_RING_MIN - 1)) == 0, "ring min is a power of two");
_Static_assert((PW_RING_WINDOW_START & (PW_RING_WINDOW_START - 1)) == 0,
	       "window start is a power of two");
_Static_assert(PW_RING_WINDOW_START >= PW_RING_MIN, "window start fits the smallest ring");

/*
 * ---- The virtual RDMA device's arena (src/verbs, docs/RDMA.md) ----
 *
 * Each process using podwire0 has one arena: a sparse memfd that the router
 * passes to the peer of a connected queue pair. Offsets below
 * PW_VARENA_META are the process's own addresses: a registered page at
 * address A is re-backed in place by the arena's page at offset A, so a
 * peer finds any registered byte at the offset of its address. Above it:
 *
 *   PW_VARENA_META + 0             struct pw_vkey[PW_VKEYS]  the key table
 *   PW_VARENA_META + PW_VQP_OFF    struct pw_vqp[PW_VQPS]    queue pair slots
 *   PW_VARENA_META + PW_VSRQ_OFF   struct pw_vsrq[PW_VSRQS]  shared receive queues
 *   PW_VARENA_META + PW_VSVC_OFF   struct pw_vsvc[PW_VQPS]   the owner's service, by QP slot
 *
 * A peer reads the key table and its QP's slot, pops posted receives and
 * pushes completions there; the router (which holds every arena's fd) marks
 * a slot whose peer went. Every index and length read here is checked:
 * the peer may be hostile, and the owner never trusts its own table from
 * here either (it keeps a private copy).
 */
#define PW_VARENA_VERSION 3u	       /* this layout; VERBS_OPEN says which a process uses */
#define PW_VARENA_META	  (1ull << 47) /* past every user address on x86-64 */
#define PW_VKEYS	  4096u	       /* memory regions per process */
#define PW_VQPS		  1024u	       /* queue pairs per process */
#define PW_VRQ_DEPTH	  4096u	       /* receives a QP can have posted */
#define PW_VSGE_MAX	  4u	       /* scatter/gather entries of a receive */
#define PW_VQP_OFF	  (1ull << 20)
#define PW_VSRQS	  64u /* shared receive queues per process */
/* pw_vkey.access: a region that could not be re-backed (file-backed, SysV
 * shared memory, hugetlb): a peer on this node asks its owner (pw_vsvc). */
#define PW_VKEY_SERVED (1u << 31)
#define PW_VSVC_DATA   1048576u /* bytes one service request carries */

/* A memory region, as peers see it. key == 0: free. seq is a seqlock (odd
 * while the owner writes the entry): read it, the fields, then seq again. */
struct pw_vkey {
	_Atomic uint32_t seq;
	uint32_t key;	 /* the lkey and rkey; its low bits index the table */
	uint32_t access; /* IBV_ACCESS_* */
	uint32_t pad;
	uint64_t va, len; /* the registered range, in the owner's addresses */
};

struct pw_vsge {
	uint64_t addr;
	uint32_t length, lkey;
};

/* A posted receive: written by the owner before rq_head moves past it. */
struct pw_vrecv {
	uint64_t wr_id;
	uint32_t nsge, pad;
	struct pw_vsge sge[PW_VSGE_MAX];
};

/* A completion the peer made for the owner (a receive consumed). */
struct pw_vcqe {
	uint64_t wr_id;
	uint32_t status;   /* enum ibv_wc_status */
	uint32_t opcode;   /* enum ibv_wc_opcode */
	uint32_t byte_len; /* bytes placed */
	uint32_t imm;	   /* immediate data, network order */
	uint32_t flags;	   /* IBV_WC_WITH_IMM */
	uint32_t src_qp;   /* the sender's QP number */
};

/*
 * A queue pair's slot. The receive ring: the owner writes rq[] and moves
 * rq_head (release; the peer's acquire load of rq_head pairs with it), the
 * peer consumes and moves rq_tail. The completion ring: the peer writes cq[]
 * and moves cq_head (release; the owner's acquire), the owner moves cq_tail.
 * The owner posts a receive only while rq_head - cq_tail < PW_VRQ_DEPTH, so
 * every receive the peer consumes has a completion slot. armed: the owner's
 * receive CQ asks for an event; the peer that completes into it exchanges it
 * to 0 and, if it was set, wakes the owner's completion channel.
 */
struct pw_vqp {
	alignas(PW_CACHELINE) _Atomic uint32_t rq_head;
	alignas(PW_CACHELINE) _Atomic uint32_t rq_tail;
	alignas(PW_CACHELINE) _Atomic uint32_t cq_head;
	alignas(PW_CACHELINE) _Atomic uint32_t cq_tail;
	alignas(PW_CACHELINE) _Atomic uint32_t armed;
	_Atomic uint32_t qpn; /* the owner's QP number while the slot is live, else 0 */
	/* Set by the router (it writes through the arena's fd) when the peer's
	 * QP or process is gone: the owner's QP goes to the error state. */
	_Atomic uint32_t peer_gone;
	/* The owner's SRQ slot + 1 when the QP takes its receives from one
	 * (then rq[] is unused), else 0. Set before the QP is connected. */
	_Atomic uint32_t srq;
	alignas(PW_CACHELINE) struct pw_vrecv rq[PW_VRQ_DEPTH];
	struct pw_vcqe cq[PW_VRQ_DEPTH];
};

/*
 * A shared receive queue: the owner writes rq[] and moves rq_head (release);
 * consumers, the peers of every QP of the owner's that uses it, claim an
 * entry by moving rq_tail with a compare-and-swap (acq_rel), having read it
 * first, then complete into their own QP's slot with wr_id = the index they
 * claimed. The owner posts into an index only when the receive last there
 * was polled, so a claimed entry stays as it was read.
 */
struct pw_vsrq {
	alignas(PW_CACHELINE) _Atomic uint32_t rq_head;
	alignas(PW_CACHELINE) _Atomic uint32_t rq_tail;
	alignas(PW_CACHELINE) struct pw_vrecv rq[PW_VRQ_DEPTH];
};

#define PW_VSRQ_OFF (PW_VQP_OFF + (uint64_t)PW_VQPS * sizeof(struct pw_vqp))

/* Service request ops (pw_vsvc.op). */
enum {
	PW_VSVC_WRITE = 1, /* data[0, len) to addr: REMOTE_WRITE */
	PW_VSVC_PLACE,	   /* the same into a receive's buffer: LOCAL_WRITE */
	PW_VSVC_READ,	   /* addr to data[0, len): REMOTE_READ */
	PW_VSVC_CAS,	   /* compare-and-swap at addr: REMOTE_ATOMIC */
	PW_VSVC_FAA,	   /* fetch-and-add at addr: REMOTE_ATOMIC */
};

/*
 * The owner's service for a peer on this node, one per QP slot, each on its
 * own pages (a peer maps only its QP's). A region the owner could not
 * re-back (PW_VKEY_SERVED) is reached through it: the peer writes a request
 * (and its data), then req (release; the owner's acquire), and wakes the
 * owner's service eventfd; the owner checks it against its own key table,
 * does it, writes status, result and data, then done = req (release; the
 * peer's acquire), and wakes done as a futex if the peer said it sleeps
 * there (sleeping, stored before the peer's last look at done: seq_cst on
 * both sides). One request at a time.
 */
struct pw_vsvc {
	alignas(PW_CACHELINE) _Atomic uint32_t req;
	_Atomic uint32_t op;  /* PW_VSVC_* */
	_Atomic uint32_t key; /* the owner's lkey/rkey */
	uint32_t pad;
	_Atomic uint64_t addr, len; /* in the owner's addresses; len <= PW_VSVC_DATA */
	_Atomic uint64_t cmp, swp;  /* CAS: compare, swap; FAA: the addend in cmp */
	alignas(PW_CACHELINE) _Atomic uint32_t done;
	_Atomic uint32_t status;   /* enum ibv_wc_status: 0, or the remote error */
	_Atomic uint64_t result;   /* CAS, FAA: the value before */
	_Atomic uint32_t sleeping; /* the peer sleeps on done: the owner wakes it */
	alignas(4096) uint8_t data[PW_VSVC_DATA];
};

#define PW_VSVC_OFF                                                                                \
	((PW_VSRQ_OFF + (uint64_t)PW_VSRQS * sizeof(struct pw_vsrq) + 4095) & ~(uint64_t)4095)

_Static_assert(sizeof(struct pw_vkey) == 32, "vkey");
_Static_assert(offsetof(struct pw_vkey, va) == 16, "vkey va");
_Static_assert(sizeof(struct pw_vsge) == 16, "vsge");
_Static_assert(sizeof(struct pw_vrecv) == 80, "vrecv");
_Static_assert(offsetof(struct pw_vrecv, sge) == 16, "vrecv sge");
_Static_assert(sizeof(struct pw_vcqe) == 32, "vcqe");
_Static_assert(offsetof(struct pw_vqp, rq_tail) == 64, "vqp rq_tail");
_Static_assert(offsetof(struct pw_vqp, cq_head) == 128, "vqp cq_head");
_Static_assert(offsetof(struct pw_vqp, cq_tail) == 192, "vqp cq_tail");
_Static_assert(offsetof(struct pw_vqp, armed) == 256, "vqp armed");
_Static_assert(offsetof(struct pw_vqp, qpn) == 260, "vqp qpn");
_Static_assert(offsetof(struct pw_vqp, peer_gone) == 264, "vqp peer_gone");
_Static_assert(offsetof(struct pw_vqp, srq) == 268, "vqp srq");
_Static_assert(offsetof(struct pw_vqp, rq) == 320, "vqp rq");
_Static_assert(offsetof(struct pw_vqp, cq) == 320 + 80 * PW_VRQ_DEPTH, "vqp cq");
_Static_assert(sizeof(struct pw_vqp) == 320 + 112 * PW_VRQ_DEPTH, "vqp size");
_Static_assert((PW_VRQ_DEPTH & (PW_VRQ_DEPTH - 1)) == 0, "receive ring is a power of two");
_Static_assert((PW_VKEYS & (PW_VKEYS - 1)) == 0, "key table is a power of two");
_Static_assert(PW_VKEYS * sizeof(struct pw_vkey) <= PW_VQP_OFF, "keys fit before the QPs");
_Static_assert(offsetof(struct pw_vsrq, rq_tail) == 64, "vsrq rq_tail");
_Static_assert(offsetof(struct pw_vsrq, rq) == 128, "vsrq rq");
_Static_assert(sizeof(struct pw_vsrq) == 128 + 80 * PW_VRQ_DEPTH, "vsrq size");
_Static_assert(PW_VSRQ_OFF % 4096 == 0, "SRQs start on a page");
_Static_assert(offsetof(struct pw_vsvc, op) == 4, "vsvc op");
_Static_assert(offsetof(struct pw_vsvc, addr) == 16, "vsvc addr");
_Static_assert(offsetof(struct pw_vsvc, cmp) == 32, "vsvc cmp");
_Static_assert(offsetof(struct pw_vsvc, done) == 64, "vsvc done");
_Static_assert(offsetof(struct pw_vsvc, status) == 68, "vsvc status");
_Static_assert(offsetof(struct pw_vsvc, result) == 72, "vsvc result");
_Static_assert(offsetof(struct pw_vsvc, sleeping) == 80, "vsvc sleeping");
_Static_assert(offsetof(struct pw_vsvc, data) == 4096, "vsvc data on its own page");
_Static_assert(sizeof(struct pw_vsvc) == 4096 + PW_VSVC_DATA, "vsvc size: whole pages");
_Static_assert(PW_VSVC_OFF % 4096 == 0, "services start on a page");

/*
 * ---- memif rings (src/memif, issue 13) ----
 *
 * The shared-memory interface DPDK's net_memif and VPP speak (protocol 2.0;
 * its messages are in wire.h). The client (a DPDK pod) makes the regions
 * and puts its rings in them; the server (podwire-switch) maps them. A
 * ring: the producer writes descriptors and moves head, the consumer moves
 * tail; free-running 16-bit indices, 2^log2 descriptors. Whoever maps a
 * ring of a pod's must check every index, region, offset and length in it:
 * the pod is hostile.
 */
#define PW_MEMIF_COOKIE	       0x3E31F20u
#define PW_MEMIF_RING_MASK_INT 1u /* ring flags: the consumer polls; no interrupt wanted */
#define PW_MEMIF_DESC_NEXT     1u /* desc flags: the packet goes on in the next one */

/* Every field either side may write while the other reads is _Atomic (a
 * plain load of the pod's memory could be read twice by the compiler). */
struct pw_memif_desc {
	_Atomic uint16_t flags;
	_Atomic uint16_t region; /* the region the buffer is in */
	_Atomic uint32_t length; /* bytes in the buffer */
	_Atomic uint32_t offset; /* where it starts in the region */
	uint32_t metadata;
};

struct pw_memif_ring {
	alignas(PW_CACHELINE) uint32_t cookie; /* PW_MEMIF_COOKIE */
	_Atomic uint16_t flags;		       /* written by the ring's consumer */
	_Atomic uint16_t head;
	alignas(PW_CACHELINE) _Atomic uint16_t tail;
	alignas(PW_CACHELINE) struct pw_memif_desc desc[];
};

_Static_assert(sizeof(struct pw_memif_desc) == 16, "memif desc");
_Static_assert(offsetof(struct pw_memif_desc, region) == 2, "memif desc region");
_Static_assert(offsetof(struct pw_memif_desc, length) == 4, "memif desc length");
_Static_assert(offsetof(struct pw_memif_desc, offset) == 8, "memif desc offset");
_Static_assert(offsetof(struct pw_memif_desc, metadata) == 12, "memif desc metadata");
_Static_assert(offsetof(struct pw_memif_ring, flags) == 4, "memif ring flags");
_Static_assert(offsetof(struct pw_memif_ring, head) == 6, "memif ring head");
_Static_assert(offsetof(struct pw_memif_ring, tail) == 64, "memif ring tail");
_Static_assert(offsetof(struct pw_memif_ring, desc) == 128, "memif ring desc");
_Static_assert(sizeof(struct pw_memif_ring) == 128, "memif ring header");

#endif /* PODWIRE_SHM_H */
