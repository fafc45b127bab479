/* SPDX-License-Identifier: MIT */
/* Private to src/chan: the ring under the channel. Only the channel and its
 * tests use it; everyone else goes through <podwire/chan.h>. */
#ifndef PODWIRE_CHAN_RING_H
#define PODWIRE_CHAN_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <podwire/shm.h>

/*
 * pw_ring: the single-producer, single-consumer byte ring.
 *
 * Each role keeps its own index in private memory and only publishes it to
 * shared memory; the peer's index is re-read and validated on every refresh.
 * Publishing stores are sequentially consistent so that a caller may pair them
 * with a sequentially consistent load of the wake flags (Dekker), which is how
 * pw_chan avoids lost wake-ups without a syscall per message.
 */
enum pw_ring_role {
	PW_RING_PRODUCER = 0,
	PW_RING_CONSUMER = 1,
};

struct pw_ring {
	struct pw_shm_ring *shm;
	uint8_t *data;
	uint32_t size;	/* data area, copied at init: never re-read from shared memory */
	uint32_t win;	/* window in use: a power of two <= size (producer's word) */
	uint32_t mask;	/* win - 1 */
	uint32_t pos;	/* own index: tail for the producer, head for the consumer */
	uint32_t peer;	/* last validated index of the peer */
	uint64_t total; /* producer: bytes written through this end */
	bool follow;	/* own index may move elsewhere (fork): reload it first */
	bool widen;	/* producer: a write found the window short; widen when empty */
	enum pw_ring_role role;
};

/*
 * Zero the shared indices and wake flags of a ring nobody uses yet, and set
 * its starting @window (a power of two, at most the data area; pw_ring_init
 * refuses anything else).
 */
void pw_ring_format(struct pw_shm_ring *shm, uint32_t window);

/*
 * Attach to a ring. @size must be a power of two between 64 and PW_RING_MAX
 * and @data must hold @size bytes. The own index and the window are taken
 * from @shm and checked against the peer's index and @size.
 *
 * The producer widens the window to @size when a write finds it short, at a
 * moment the ring is empty, so that no byte in flight moves; the consumer
 * follows the window with each tail it loads.
 *
 * Errors: -EINVAL bad size or role; -EPROTO the shared indices or the window
 * are inconsistent.
 */
int pw_ring_init(struct pw_ring *r, struct pw_shm_ring *shm, void *data, uint32_t size,
		 enum pw_ring_role role);

/*
 * Producer: copy up to @len bytes in; return the count copied (0 when full).
 * Errors: -EPROTO the consumer's index is impossible (corrupt or hostile peer).
 */
ssize_t pw_ring_write(struct pw_ring *r, const void *buf, size_t len);
ssize_t pw_ring_writev(struct pw_ring *r, const struct iovec *iov, int iovcnt);

/*
 * Producer: @len bytes are about to be written, perhaps in several calls.
 * If they do not fit, or take half the window or more, widens the window
 * now if the ring is empty, else marks it to widen at the next empty
 * moment. Never fails: an impossible peer index is left for the write to
 * report.
 */
void pw_ring_widen_for(struct pw_ring *r, size_t len);

/*
 * Consumer: copy up to @len bytes out; return the count copied (0 when empty).
 * pw_ring_peek() copies without consuming.
 * Errors: -EPROTO the producer's index is impossible.
 */
ssize_t pw_ring_read(struct pw_ring *r, void *buf, size_t len);
ssize_t pw_ring_readv(struct pw_ring *r, const struct iovec *iov, int iovcnt);
ssize_t pw_ring_peek(struct pw_ring *r, void *buf, size_t len);
ssize_t pw_ring_peekv(struct pw_ring *r, const struct iovec *iov, int iovcnt);

/*
 * Consumer: drop up to @len bytes without copying them; return the count.
 * Errors: -EINVAL not the consumer; -EPROTO the producer's index is impossible.
 */
ssize_t pw_ring_skip(struct pw_ring *r, size_t len);

/*
 * Producer: free bytes; consumer: readable bytes. Refreshes the peer index.
 * Errors: -EPROTO.
 */
ssize_t pw_ring_space(struct pw_ring *r);
ssize_t pw_ring_avail(struct pw_ring *r);

#endif /* PODWIRE_CHAN_RING_H */
