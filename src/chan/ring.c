// SPDX-License-Identifier: MIT
/*
 * Single-producer, single-consumer byte ring over shared memory.
 *
 * Indices are free-running uint32_t byte counters; the offset in the data area
 * is index & mask, and tail - head (mod 2^32) is the fill level. The peer's
 * index is hostile input: any value implying a fill level above the window
 * is rejected with -EPROTO before it is used to address memory, and so is a
 * window that is not a power of two within the data area.
 *
 * The window is the part of the data area in use. A connection of small
 * messages stays in the first PW_RING_WINDOW_START bytes (that much memory
 * and cache); one that moves bulk data opens it to the whole area while the
 * ring is empty, when no byte's offset can change under the consumer.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <podwire/chan.h>

#include "ring.h"

#define PW_RING_MIN_TEST 64u

static inline uint32_t pw_min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

void pw_ring_format(struct pw_shm_ring *shm, uint32_t window)
{
	atomic_store_explicit(&shm->tail, 0, memory_order_relaxed);
	atomic_store_explicit(&shm->window, window, memory_order_relaxed);
	atomic_store_explicit(&shm->total, 0, memory_order_relaxed);
	atomic_store_explicit(&shm->head, 0, memory_order_relaxed);
	atomic_store_explicit(&shm->rx_sleep, 0, memory_order_relaxed);
	atomic_store_explicit(&shm->tx_sleep, 0, memory_order_relaxed);
}

/* Take a window read from shared memory, if it is one this ring can have. */
static int pw_ring_set_window(struct pw_ring *r, uint32_t win)
{
	if (win < PW_RING_MIN_TEST || win > r->size || (win & (win - 1)))
		return -EPROTO;
	r->win = win;
	r->mask = win - 1;
	return 0;
}

/*
 * Refresh the peer index. The producer needs the consumer's head only to know
 * that space was freed, so it reads it acquire (pairs with the consumer's
 * store of head at C1: the consumer's reads of the data are done before we
 * overwrite it). The consumer reads tail acquire (pairs with the producer's
 * store at P1: the data bytes are visible before the index that covers them).
 */
static int pw_ring_refresh(struct pw_ring *r)
{
	uint32_t peer, fill;

	if (r->follow) {
		/* Another process may have moved our index (after fork). */
		if (r->role == PW_RING_PRODUCER) {
			r->pos = atomic_load_explicit(&r->shm->tail, memory_order_relaxed);
			r->total = atomic_load_explicit(&r->shm->total, memory_order_relaxed);
			if (pw_ring_set_window(r, atomic_load_explicit(&r->shm->window,
								       memory_order_relaxed)) < 0)
				return -EPROTO;
		} else {
			r->pos = atomic_load_explicit(&r->shm->head, memory_order_relaxed);
		}
	}

	if (r->role == PW_RING_PRODUCER) {
		peer = atomic_load_explicit(&r->shm->head, memory_order_acquire); /* A1 */
		fill = r->pos - peer;
	} else {
		peer = atomic_load_explicit(&r->shm->tail, memory_order_acquire); /* A2 */
		/* After A2: the window the bytes up to this tail were written
		 * in. The producer changes it only while the ring is empty, so
		 * it cannot change again before we publish a head == peer. */
		if (pw_ring_set_window(
			    r, atomic_load_explicit(&r->shm->window, memory_order_relaxed)) < 0)
			return -EPROTO;
		fill = peer - r->pos;
	}
	if (fill > r->win)
		return -EPROTO;
	r->peer = peer;
	return 0;
}

int pw_ring_init(struct pw_ring *r, struct pw_shm_ring *shm, void *data, uint32_t size,
		 enum pw_ring_role role)
{
	if (!r || !shm || !data)
		return -EINVAL;
	if (size < PW_RING_MIN_TEST || size > PW_RING_MAX || (size & (size - 1)))
		return -EINVAL;
	if (role != PW_RING_PRODUCER && role != PW_RING_CONSUMER)
		return -EINVAL;

	struct pw_ring tmp = {
		.shm = shm,
		.data = data,
		.size = size,
		.role = role,
	};
	if (pw_ring_set_window(&tmp, atomic_load_explicit(&shm->window, memory_order_relaxed)) < 0)
		return -EPROTO;
	if (role == PW_RING_PRODUCER) {
		tmp.pos = atomic_load_explicit(&shm->tail, memory_order_relaxed);
		tmp.total = atomic_load_explicit(&shm->total, memory_order_relaxed);
	} else {
		tmp.pos = atomic_load_explicit(&shm->head, memory_order_relaxed);
	}
	int ret = pw_ring_refresh(&tmp);
	if (ret < 0)
		return ret;
	*r = tmp;
	return 0;
}

static inline uint32_t pw_ring_fill(const struct pw_ring *r)
{
	return r->role == PW_RING_PRODUCER ? r->pos - r->peer : r->peer - r->pos;
}

ssize_t pw_ring_space(struct pw_ring *r)
{
	int ret = pw_ring_refresh(r);
	return ret < 0 ? ret : (ssize_t)(r->win - pw_ring_fill(r));
}

ssize_t pw_ring_avail(struct pw_ring *r)
{
	int ret = pw_ring_refresh(r);
	return ret < 0 ? ret : (ssize_t)pw_ring_fill(r);
}

/* Copy @n bytes into the ring at index @at, splitting at the wrap. */
static void pw_ring_copy_in(struct pw_ring *r, uint32_t at, const uint8_t *src, uint32_t n)
{
	uint32_t off = at & r->mask;
	uint32_t first = pw_min_u32(n, r->win - off);

	memcpy(r->data + off, src, first);
	if (n > first)
		memcpy(r->data, src + first, n - first);
}

static void pw_ring_copy_out(const struct pw_ring *r, uint32_t at, uint8_t *dst, uint32_t n)
{
	uint32_t off = at & r->mask;
	uint32_t first = pw_min_u32(n, r->win - off);

	memcpy(dst, r->data + off, first);
	if (n > first)
		memcpy(dst + first, r->data, n - first);
}

/* Clamp a size_t request to what fits a ring, so the u32 math stays exact. */
static inline uint32_t pw_clamp(size_t len)
{
	return len > PW_RING_MAX ? PW_RING_MAX : (uint32_t)len;
}

static void pw_ring_publish(struct pw_ring *r)
{
	if (r->role == PW_RING_PRODUCER)
		/* P1: pairs with A2 in the consumer. seq_cst, not just release:
		 * the writer then loads rx_sleep, and the store must not pass
		 * that load (the consumer's mirror is its seq_cst store of
		 * rx_sleep followed by a seq_cst load of tail). */
		atomic_store_explicit(&r->shm->tail, r->pos, memory_order_seq_cst);
	else
		/* C1: pairs with A1 in the producer; seq_cst for the same
		 * Dekker pairing with tx_sleep. */
		atomic_store_explicit(&r->shm->head, r->pos, memory_order_seq_cst);
}

/*
 * Producer, after a refresh that found the window short for a write (or with
 * a widening pending): open the whole data area if the ring is empty, else
 * remember to at the next empty moment. An empty ring has no byte whose
 * offset could move: the consumer takes the new window with the next tail
 * it loads, after the data written in it (P1 orders this relaxed store
 * before that tail).
 *
 * All of it, not the next power of two that fits: a bulk stream runs faster
 * the longer a region of the ring rests between reuses (256 KiB messages
 * across two CPUs, podwire-bench: 22 us round trip in a 2 MiB ring, 28 in
 * 1 MiB, 44 in 512 KiB; CHANNEL.md, "Window").
 */
static void pw_ring_widen(struct pw_ring *r)
{
	if (r->win == r->size)
		return;
	if (pw_ring_fill(r)) {
		r->widen = true;
		return;
	}
	r->win = r->size;
	r->mask = r->win - 1;
	r->widen = false;
	atomic_store_explicit(&r->shm->window, r->win, memory_order_relaxed);
}

void pw_ring_widen_for(struct pw_ring *r, size_t len)
{
	uint32_t want = pw_clamp(len);

	if (r->role != PW_RING_PRODUCER || r->win == r->size)
		return;
	/* Half the window or more is bulk too: a message that nearly fills
	 * the window waits for the last one to drain (64 KiB messages,
	 * podwire-bench: 18 us round trip in a 64 KiB window, 11 in 1 MiB).
	 * Otherwise only a write the window cannot take, by the cached view
	 * and then by a fresh one. */
	bool bulk = want >= r->win / 2;
	if (!bulk && want <= r->win - pw_ring_fill(r))
		return;
	if (pw_ring_refresh(r) == 0 && (bulk || want > r->win - pw_ring_fill(r)))
		pw_ring_widen(r);
}

ssize_t pw_ring_writev(struct pw_ring *r, const struct iovec *iov, int iovcnt)
{
	uint32_t done = 0;

	if (iovcnt < 0)
		return -EINVAL;
	if (r->follow && pw_ring_refresh(r) < 0)
		return -EPROTO;
	/* Pending until the ring is seen empty: a load of head per write, for
	 * as long as a bulk stream keeps the ring from draining. */
	if (r->widen && pw_ring_refresh(r) == 0)
		pw_ring_widen(r);
	uint32_t space = r->win - pw_ring_fill(r);
	/* Only re-read the consumer's head when the cached view looks short. */
	for (int i = 0; i < iovcnt; i++) {
		uint32_t want = pw_clamp(iov[i].iov_len);

		if (want == 0)
			continue;
		if (want > space) {
			int ret = pw_ring_refresh(r);
			if (ret < 0)
				return done ? (ssize_t)done : ret;
			if (r->widen || want > r->win - pw_ring_fill(r))
				pw_ring_widen(r);
			space = r->win - pw_ring_fill(r);
		}
		uint32_t n = pw_min_u32(want, space);
		if (n == 0)
			break;
		pw_ring_copy_in(r, r->pos, iov[i].iov_base, n);
		r->pos += n;
		space -= n;
		done += n;
		if (n < want)
			break;
	}
	if (done) {
		r->total += done;
		/* Read only by podwired's status; a plain store on our own line. */
		atomic_store_explicit(&r->shm->total, r->total, memory_order_relaxed);
		pw_ring_publish(r);
	}
	return done;
}

ssize_t pw_ring_write(struct pw_ring *r, const void *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return pw_ring_writev(r, &iov, 1);
}

/* Copy out up to the iovec total; advance only when @consume. */
static ssize_t pw_ring_getv(struct pw_ring *r, const struct iovec *iov, int iovcnt, bool consume)
{
	uint32_t done = 0;

	if (iovcnt < 0)
		return -EINVAL;
	if (r->follow && pw_ring_refresh(r) < 0)
		return -EPROTO;
	uint32_t avail = pw_ring_fill(r);
	uint32_t at = r->pos;
	for (int i = 0; i < iovcnt; i++) {
		uint32_t want = pw_clamp(iov[i].iov_len);

		if (want == 0)
			continue;
		if (want > avail) {
			int ret = pw_ring_refresh(r);
			if (ret < 0)
				return done ? (ssize_t)done : ret;
			avail = pw_ring_fill(r) - done;
		}
		uint32_t n = pw_min_u32(want, avail);
		if (n == 0)
			break;
		pw_ring_copy_out(r, at, iov[i].iov_base, n);
		at += n;
		avail -= n;
		done += n;
		if (n < want)
			break;
	}
	if (done && consume) {
		r->pos = at;
		pw_ring_publish(r);
	}
	return done;
}

ssize_t pw_ring_readv(struct pw_ring *r, const struct iovec *iov, int iovcnt)
{
	return pw_ring_getv(r, iov, iovcnt, true);
}

ssize_t pw_ring_read(struct pw_ring *r, void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	return pw_ring_getv(r, &iov, 1, true);
}

ssize_t pw_ring_peekv(struct pw_ring *r, const struct iovec *iov, int iovcnt)
{
	return pw_ring_getv(r, iov, iovcnt, false);
}

ssize_t pw_ring_peek(struct pw_ring *r, void *buf, size_t len)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	return pw_ring_getv(r, &iov, 1, false);
}

ssize_t pw_ring_skip(struct pw_ring *r, size_t len)
{
	if (r->role != PW_RING_CONSUMER)
		return -EINVAL;
	int ret = pw_ring_refresh(r);
	if (ret < 0)
		return ret;
	uint32_t n = pw_min_u32(pw_clamp(len), pw_ring_fill(r));
	if (n) {
		r->pos += n;
		pw_ring_publish(r);
	}
	return n;
}
