/* SPDX-License-Identifier: MIT */
/*
 * podwire channel: a duplex byte stream between two processes over shared
 * memory.
 *
 * A channel is one sealed memfd (control block plus two single-producer,
 * single-consumer byte rings, see <podwire/shm.h>) and one AF_UNIX
 * socketpair. The bytes travel through the rings; the socketpair carries only
 * wake-ups and hang-ups. Each process holds one end of the socketpair, so the
 * kernel tells the survivor when its peer dies, even by SIGKILL, and the
 * socket is the readiness fd that poll(2) and epoll(7) can watch.
 *
 * Waiting spins for a bounded budget, then sleeps in poll(2) on the socket.
 * A writer makes a wake-up syscall only when its reader announced it sleeps.
 *
 * Threads: each end may be used by one thread at a time.
 *
 * The socket carries two signals, like a TCP socket's readiness: wake bytes
 * make the reader's socket readable, and a writer facing a full ring fills its
 * own socket with filler so that it polls unwritable until the reader drains
 * it. See docs/CHANNEL.md.
 *
 * All functions return a negative errno value on failure; none of them sets
 * errno or prints.
 */
#ifndef PODWIRE_CHAN_H
#define PODWIRE_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <podwire/shm.h>

/*
 * pw_chan: the duplex channel.
 */
#define PW_CHAN_RING_DEFAULT	(256u * 1024u)
#define PW_CHAN_SPIN_NS_DEFAULT 5000u

/* Flags for pw_chan_read*() and pw_chan_write*(). */
#define PW_CHAN_DONTWAIT 0x1 /* never sleep: -EAGAIN instead */
#define PW_CHAN_PEEK	 0x2 /* read without consuming */
#define PW_CHAN_WAITALL	 0x4 /* read: block until @len bytes, EOF or error */
#define PW_CHAN_DISCARD	 0x8 /* read: consume the bytes without copying them */

struct pw_chan;

struct pw_chan_opts {
	uint32_t spin_ns; /* busy-wait budget before sleeping; 0 means the default */
	bool no_spin;	  /* sleep at once (spin_ns ignored) */
	/* The peer vanishing without an orderly close reads as end of stream,
	 * as it does on TCP when a process dies (not -ECONNRESET). */
	bool hup_is_eof;
	/* Sleep in recv(2)/send(2) on the (blocking) socket rather than in
	 * poll(2), so that a signal whose handler has SA_RESTART restarts the
	 * sleep instead of failing it with -EINTR, as on a blocking socket. */
	bool kernel_restart;
	/* Attach to a side that is already open: this process took over an end
	 * across exec(). */
	bool reattach;
};

struct pw_chan_stats {
	uint64_t bytes_out;  /* written by this end */
	uint64_t bytes_in;   /* read by this end */
	uint64_t wakes_sent; /* wake-up syscalls made for the peer */
	uint64_t sleeps;     /* times this end slept in the kernel */
};

/* Flags for pw_chan_create(). */
#define PW_CHAN_ARMED 0x1 /* both readers start asleep: see below */

/* True if @ring_size is a ring size pw_chan_create() accepts: a power of two
 * in [PW_RING_MIN, PW_RING_MAX]. */
bool pw_chan_ring_size_ok(uint32_t ring_size);
/* Bytes of shared memory a channel with rings of @ring_size holds. */
uint64_t pw_chan_mem_size(uint32_t ring_size);

/*
 * Create a channel: a sealed memfd of PW_SHM_DATA_OFF + 2 * @ring_size bytes,
 * formatted, and a socketpair. All three fds are O_CLOEXEC and owned by the
 * caller; hand *ret_memfd and ret_sock[1] to the peer (fork or SCM_RIGHTS) and
 * close ret_sock[1] locally, or the peer's death goes unnoticed.
 *
 * With PW_CHAN_ARMED both readers start as if asleep, so the first bytes of
 * each direction send a wake byte: a reader's socket then polls readable
 * when data is waiting even if that reader never waited (data sent before the
 * reader attached, a thread already asleep in epoll_wait(2) on the socket).
 *
 * Errors: -EINVAL @ring_size not a power of two in [PW_RING_MIN, PW_RING_MAX],
 * or an unknown flag; -EMFILE, -ENFILE, -ENOMEM from the kernel.
 */
int pw_chan_create(uint32_t ring_size, unsigned flags, int *ret_memfd, int ret_sock[2]);

/*
 * Attach as @side (0 or 1) to the channel in @memfd, signalling through
 * @sockfd. @memfd is only mapped (the caller still closes it). On success the
 * channel owns @sockfd; on failure the caller still does.
 *
 * Errors: -EINVAL bad side, or @memfd is not a sealed podwire segment of a
 * matching size; -EPROTO the header or indices are inconsistent; -EBUSY the
 * side is already attached; -ENOMEM; errors of fstat(2) and mmap(2).
 */
int pw_chan_open(int memfd, int sockfd, unsigned side, const struct pw_chan_opts *opts,
		 struct pw_chan **ret_chan);

/* Orderly close: the peer reads what was written, then EOF. Accepts NULL. */
void pw_chan_close(struct pw_chan *c);

/* Abortive close: the peer reads what is already in the ring, then every call
 * fails with -ECONNRESET; its writes fail at once. Accepts NULL. */
void pw_chan_abort(struct pw_chan *c);

/*
 * Write all of @len bytes, sleeping for space unless PW_CHAN_DONTWAIT, in which
 * case a short count may be returned. A zero-length write returns 0.
 *
 * Errors: -EAGAIN no space and PW_CHAN_DONTWAIT (nothing written); -EPIPE we
 * shut down writing, or the peer closed, shut its reading side or died; -ECONNRESET the peer
 * aborted; -EPROTO the shared memory is corrupt (the channel is dead from then on); -EINTR a signal
 * arrived while sleeping and nothing was written. If some bytes were written before an error, the
 * count is returned and the error is reported by the next call.
 */
ssize_t pw_chan_write(struct pw_chan *c, const void *buf, size_t len, int flags);
ssize_t pw_chan_writev(struct pw_chan *c, const struct iovec *iov, int iovcnt, int flags);

/*
 * Read up to @len bytes; sleep until some are there unless PW_CHAN_DONTWAIT.
 * Return 0 at end of stream (the peer shut down writing or closed).
 * PW_CHAN_PEEK leaves the bytes in place; PW_CHAN_WAITALL waits for all @len;
 * PW_CHAN_DISCARD consumes them without copying (the iovec bases are unused).
 *
 * Errors: -EAGAIN nothing to read and PW_CHAN_DONTWAIT; -ECONNRESET the peer
 * aborted or died without closing; -EPROTO corrupt shared memory; -EINTR a
 * signal arrived while sleeping and nothing was read.
 */
ssize_t pw_chan_read(struct pw_chan *c, void *buf, size_t len, int flags);
ssize_t pw_chan_readv(struct pw_chan *c, const struct iovec *iov, int iovcnt, int flags);

/*
 * Shut down reading (SHUT_RD), writing (SHUT_WR) or both (SHUT_RDWR).
 * Errors: -EINVAL bad @how.
 */
int pw_chan_shutdown(struct pw_chan *c, int how);

/*
 * Readiness without blocking: a mask of POLLIN (data or end of stream),
 * POLLOUT (space), POLLRDHUP (peer shut writing), POLLHUP (peer gone or both
 * directions shut) and POLLERR (reset or corruption).
 */
short pw_chan_poll(struct pw_chan *c);

/*
 * Wait until one of @events (POLLIN, POLLOUT) is ready or a hang-up or error
 * holds, spinning first, then sleeping; @timeout_ms < 0 waits forever.
 * Returns the pw_chan_poll() mask, or 0 on timeout.
 * Errors: -EINTR a signal arrived.
 */
int pw_chan_wait(struct pw_chan *c, short events, int timeout_ms);

/*
 * The readiness fd, for poll(2) or epoll(7), level- or edge-triggered. It
 * means what a socket's readiness means: after a read returned -EAGAIN it
 * turns readable (POLLIN) once a read can make progress (data, end of stream,
 * reset); after a write returned -EAGAIN it stays unwritable until a write can
 * make progress (POLLOUT). The peer's death shows as POLLHUP. It may turn
 * readable spuriously; a read then returns -EAGAIN. Do not read or write it.
 */
int pw_chan_fd(const struct pw_chan *c);

/*
 * For a socket layer that moves the channel's socket between fd numbers (dup,
 * close of one copy): use @fd from now on. The old fd is left alone.
 */
void pw_chan_set_fd(struct pw_chan *c, int fd);

/*
 * Drop this process's view of the channel (mapping and state) without closing
 * the socket or telling the peer: for an end that another process still uses
 * (after fork), whose last close the kernel reports as a hang-up. Accepts NULL.
 */
void pw_chan_detach(struct pw_chan *c);

/*
 * Reuse: a connection that ends in order leaves its channel to the next
 * connection between the same two ends, which then costs no router, memfd,
 * mapping or page fault (docs/CHANNEL.md, "Reuse"). Each end parks at its
 * close; once both have, the connecting end claims the channel for a new
 * connection and the accepting end takes it. Each parked end keeps its own
 * copy of its socket: the peer sees no hang-up while it is parked.
 */
struct pw_chan_parked;

/*
 * Orderly close that parks the end: as pw_chan_close() (the peer reads what
 * was written, then end of stream, and @c's socket is closed), but the
 * mapping stays, and @keep_fd, another fd of the same socket, becomes the
 * parked end's. Nothing unread may be left for us: a close with unread bytes
 * is a reset on TCP.
 *
 * Errors: -EINVAL @keep_fd or @ret_parked missing; -EBUSY not parkable (the
 * end was shared, restricted, shut down for reading, reset or corrupt; the
 * peer reset, shut down reading or is gone; bytes wait unread): nothing
 * happened, close @c as usual; -ENOMEM.
 */
int pw_chan_park(struct pw_chan *c, int keep_fd, struct pw_chan_parked **ret_parked);

/*
 * The connecting end: start a new connection over @p. On success @p is
 * consumed, *ret_chan is the new connection, as fresh from pw_chan_open()
 * with its peer not yet attached, and the peer's socket got a wake byte.
 *
 * Errors: -EAGAIN not yet (the peer has not parked); -EPIPE never (the peer
 * closed without parking, dropped its end, died, or left bytes behind): drop
 * @p; -ENOMEM. @p stays the caller's on error.
 */
int pw_chan_parked_claim(struct pw_chan_parked *p, const struct pw_chan_opts *opts,
			 struct pw_chan **ret_chan);

/*
 * The accepting end, when its parked socket turned readable: has the peer
 * claimed it? On success @p is consumed and *ret_chan is the new connection.
 *
 * Errors: -EAGAIN not claimed (a late wake byte of the last connection,
 * consumed now); -EPIPE the peer is gone: drop @p; -ENOMEM. @p stays the
 * caller's on error.
 */
int pw_chan_parked_take(struct pw_chan_parked *p, const struct pw_chan_opts *opts,
			struct pw_chan **ret_chan);

/* Give up a parked end: unmap it and close its socket. A claim that came in
 * meanwhile is reset (its connecting end reads -ECONNRESET). Accepts NULL. */
void pw_chan_parked_drop(struct pw_chan_parked *p);

/*
 * The first half of a drop: unpark the end, so that no claim comes in from
 * now on. 0: done (or there was no parked end to claim any more); -EBUSY:
 * an accepting end that was claimed and not taken, whose new connection the
 * caller may give to someone else (its socket, as a side that never
 * attached) before it forgets the end, or reset with pw_chan_parked_drop().
 */
int pw_chan_parked_release(struct pw_chan_parked *p);

/* Forget a parked end in this process only: unmap it and close this
 * process's copy of its socket, without a word to the peer (a fork child's
 * copy of its parent's parked end). Accepts NULL. */
void pw_chan_parked_forget(struct pw_chan_parked *p);

/* The parked end's socket (to watch it for a claim), and its side. */
int pw_chan_parked_fd(const struct pw_chan_parked *p);
unsigned pw_chan_parked_side(const struct pw_chan_parked *p);

/*
 * Before sleeping in poll(2)/epoll(7) outside the library: make sure the
 * socket turns readable when data, end of stream or reset arrives. Cheap when
 * already armed. Returns true if the channel is readable now, so the caller
 * must not sleep; false if it may.
 */
bool pw_chan_prepare_read_wait(struct pw_chan *c);

/* A marker that changes whenever new bytes arrive for reading, the peer
 * shuts down or closes, or its process goes (for edge-triggered readiness). */
uint32_t pw_chan_rx_mark(const struct pw_chan *c);

/* A marker that changes whenever a write found the ring full and made the
 * socket unwritable: the kernel's next POLLOUT edge on it is a real one. */
uint32_t pw_chan_tx_mark(const struct pw_chan *c);

/*
 * The readiness fd was polled outside the channel (poll(2), epoll(7)) and the
 * kernel reported @revents. A hang-up (POLLHUP) or error there means every
 * copy of the peer's socket is closed: its process exited or was killed. The
 * channel records it, so pw_chan_poll() reports end of stream at once instead
 * of waiting for data that cannot come.
 */
void pw_chan_note_events(struct pw_chan *c, short revents);

/* Free bytes in the sending ring now (0 when full); -EPROTO if corrupt. */
ssize_t pw_chan_space(struct pw_chan *c);

/* Bytes waiting to be read now; -EPROTO if corrupt. */
ssize_t pw_chan_avail(struct pw_chan *c);

/*
 * The write-side twin of pw_chan_prepare_read_wait(): if the ring is full,
 * make the socket unwritable until a write can make progress. Returns true if
 * a write can make progress now.
 */
bool pw_chan_prepare_write_wait(struct pw_chan *c);

/*
 * Spinning is only fast when the two ends run on different CPUs, and the
 * kernel tends to wake a sleeper on its waker's CPU. Call pw_chan_note_cpu()
 * when starting to spin for this channel, and pw_chan_spread() after waking
 * from a kernel sleep: if the peer spins on our CPU, this thread moves to
 * another CPU it is allowed on (its affinity mask is left as it was).
 */
void pw_chan_note_cpu(struct pw_chan *c);
void pw_chan_spread(struct pw_chan *c);

/*
 * After fork, both processes hold this end, each with its own copy of the
 * indices. Mark it shared: from then on every operation first reloads this
 * end's indices from shared memory, so either process may take over from the
 * other. Two processes using one end at the same moment are not supported.
 */
void pw_chan_mark_shared(struct pw_chan *c);

/*
 * From now on this end touches its socket with read(2), write(2) and poll(2)
 * only, and does not spin (no sched_yield(2)) nor move between CPUs: for a
 * process entering seccomp mode, whose filter allows what its own socket
 * I/O needs and nothing else. Costs: a wake-up is a poll and a write, a
 * queue is drained whole, and a signal ends a blocking wait with -EINTR even
 * under SA_RESTART.
 */
void pw_chan_restrict(struct pw_chan *c);

/* Copy the counters of this end. */
void pw_chan_get_stats(const struct pw_chan *c, struct pw_chan_stats *ret_stats);

/*
 * A third party's access to a channel: the process that created it and handed
 * both ends out (podwired) watches it without being an end, and without
 * mapping it. See docs/CHANNEL.md for what each process may touch.
 */
struct pw_chan_state {
	uint64_t bytes[2];  /* written so far by side 0 and side 1 */
	bool attached[2];   /* the side has opened its end */
	bool wr_done[2];    /* the side writes no more: shut down for writing or closed */
	bool closed[2];	    /* the side closed its end, orderly or not, and did not park it */
	bool parked[2];	    /* the side closed in order and keeps its end for reuse */
	uint32_t window[2]; /* bytes of side 0's and side 1's ring in use (CHANNEL.md) */
};

/*
 * A snapshot of both sides, read from @memfd with pread(2): for the creator,
 * which looks at the segment rarely (podwired's reaper and status). The
 * values are the peers' word, not checked.
 *
 * Errors: -EPROTO not a podwire segment (short, or another magic); errors
 * of pread(2) (-EBADF, -ESPIPE for a socket, ...).
 */
int pw_chan_state_read(int memfd, struct pw_chan_state *ret_state);

/*
 * Speak for @side of the channel in @memfd, which never attached and never
 * will: its peer reads what is in the ring, then gets -ECONNRESET, as from a
 * TCP listener that closed with the connection in its queue.
 *
 * Errors: -EINVAL bad side, or @memfd is not a sealed podwire segment;
 * -EPROTO its header is not podwire's; -EBUSY the side has attached (it
 * speaks for itself); errors of fstat(2) and mmap(2).
 */
int pw_chan_reset_unattached(int memfd, unsigned side);

#endif /* PODWIRE_CHAN_H */
