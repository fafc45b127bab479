// SPDX-License-Identifier: MIT
/*
 * Which path a new connection takes: shared memory, or the kernel.
 *
 * A channel costs more to set up than a kernel TCP connection on loopback or
 * a veth (the router's round trip, a memfd, its first pages, a mapping in
 * each process: docs/BENCHMARKS.md), and pays that back only over several
 * exchanges or many bytes. A process that opens a connection per request
 * would run slower accelerated than not. So each process remembers, per
 * destination, whether its recent connections there stayed short; after
 * PW_ADAPT_RUN short ones in a row, connect() leaves the next to the kernel.
 * Those are watched too (TCP_INFO at close, tcpinfo.c): one long connection
 * either way brings shared memory back.
 *
 * A destination where the router found no podwire listener is left to the
 * kernel for PW_ADAPT_NONE_MS without asking again: a pod that talks to a
 * server without podwire would otherwise pay the router's round trip on
 * every connect (a connect cycle to such a server took 145-186 us against
 * the kernel's 79-106, BENCHMARKS.md). A listener that appears meanwhile is
 * found at most that much later; until then the kernel carries it.
 *
 * A hint, not state: entries are overwritten on collision, updates race
 * benignly (relaxed atomics), and a wrong guess costs speed, never data.
 */
#include "preload.h"

struct pw_adapt_slot {
	_Atomic uint64_t key;	     /* pw_adapt_key(); 0: free */
	_Atomic uint32_t run;	     /* short connections in a row, saturating */
	_Atomic uint32_t none_until; /* pw_adapt_ms(): no listener there until then, or 0 */
};

static struct pw_adapt_slot pw_adapt_tab[PW_ADAPT_SLOTS];
static _Atomic bool pw_adapt_off;

/* Nonzero for every IPv4 address and port. */
static uint64_t pw_adapt_key(const struct sockaddr_in *dst)
{
	return 1ull << 48 | (uint64_t)ntohl(dst->sin_addr.s_addr) << 16 | ntohs(dst->sin_port);
}

static struct pw_adapt_slot *pw_adapt_slot_of(uint64_t key)
{
	/* Fibonacci hashing: the top bits of the product are well mixed. */
	return &pw_adapt_tab[(key * 0x9e3779b97f4a7c15ull) >> (64 - 6)];
}

_Static_assert(PW_ADAPT_SLOTS == 1u << 6, "the hash takes 6 bits");

/* A coarse monotonic clock in ms, never 0, compared modulo 2^32. */
static uint32_t pw_adapt_ms(void)
{
	return (uint32_t)(pw_now_ns() / 1000000u) | 1u;
}

/* @e for @key: taken over (counts and marks cleared) if it held another. */
static void pw_adapt_claim(struct pw_adapt_slot *e, uint64_t key)
{
	if (atomic_load_explicit(&e->key, memory_order_relaxed) == key)
		return;
	atomic_store_explicit(&e->run, 0, memory_order_relaxed);
	atomic_store_explicit(&e->none_until, 0, memory_order_relaxed);
	atomic_store_explicit(&e->key, key, memory_order_relaxed);
}

void pw_adapt_enable(bool on)
{
	atomic_store_explicit(&pw_adapt_off, !on, memory_order_relaxed);
}

unsigned pw_adapt_kernel(const struct sockaddr_in *dst)
{
	if (atomic_load_explicit(&pw_adapt_off, memory_order_relaxed))
		return 0;
	uint64_t key = pw_adapt_key(dst);
	struct pw_adapt_slot *e = pw_adapt_slot_of(key);

	if (atomic_load_explicit(&e->key, memory_order_relaxed) != key)
		return 0;
	if (atomic_load_explicit(&e->run, memory_order_relaxed) >= PW_ADAPT_RUN)
		return (unsigned)(e - pw_adapt_tab) + 1;
	uint32_t until = atomic_load_explicit(&e->none_until, memory_order_relaxed);
	if (until && (int32_t)(until - pw_adapt_ms()) > 0)
		return PW_ADAPT_FALLBACK; /* no count to keep: nothing to choose there */
	return 0;
}

void pw_adapt_note_none(const struct sockaddr_in *dst, uint32_t ttl_ms)
{
	if (atomic_load_explicit(&pw_adapt_off, memory_order_relaxed))
		return;
	uint64_t key = pw_adapt_key(dst);
	struct pw_adapt_slot *e = pw_adapt_slot_of(key);

	pw_adapt_claim(e, key);
	atomic_store_explicit(&e->none_until, (pw_adapt_ms() + ttl_ms) | 1u, memory_order_relaxed);
}

bool pw_adapt_is_long(uint64_t xfers, uint64_t bytes)
{
	return xfers >= PW_ADAPT_LONG_XFERS || bytes >= PW_ADAPT_LONG_BYTES;
}

/* One more connection to @e's destination ended. */
static void pw_adapt_count(struct pw_adapt_slot *e, bool long_conn)
{
	if (long_conn) {
		atomic_store_explicit(&e->run, 0, memory_order_relaxed);
		return;
	}
	uint32_t run = atomic_load_explicit(&e->run, memory_order_relaxed);
	if (run < UINT8_MAX)
		atomic_store_explicit(&e->run, run + 1, memory_order_relaxed);
}

void pw_adapt_note(const struct sockaddr_in *dst, bool long_conn)
{
	uint64_t key = pw_adapt_key(dst);
	struct pw_adapt_slot *e = pw_adapt_slot_of(key);

	if (atomic_load_explicit(&e->key, memory_order_relaxed) != key && long_conn)
		return; /* no entry means shared memory already */
	pw_adapt_claim(e, key);
	pw_adapt_count(e, long_conn);
}

void pw_adapt_note_slot(unsigned slot, bool long_conn)
{
	/* The slot may have gone to another destination meanwhile: then this
	 * counts for that one, which is as likely right as wrong (a hint). */
	if (slot >= 1 && slot <= PW_ADAPT_SLOTS)
		pw_adapt_count(&pw_adapt_tab[slot - 1], long_conn);
}
