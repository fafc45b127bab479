/* SPDX-License-Identifier: MIT */
/*
 * The transport under an accelerated connection: what carries its bytes.
 *
 * The socket layer (the interposed calls, the fd table, options, addresses,
 * O_NONBLOCK, timeouts, the poll and epoll emulation, fork, exec and
 * SCM_RIGHTS bookkeeping) reaches a transport only through these operations,
 * in the spirit of the kernel's struct proto_ops. Each connection points at
 * one implementation and its state (pw_sock.ops, pw_sock.xp):
 *
 *   pw_xport_shm      the shared-memory channel (xport_shm.c), the only
 *                     code of the library that calls pw_chan_*;
 *   pw_xport_kernel   a kernel TCP socket to another node's pod
 *                     (xport_kernel.c): the kernel serves the data, so the
 *                     socket layer answers only its addresses and family.
 *
 * A transport that emulates a stream (not kernel_io) gives the application a
 * real kernel fd as its readiness fd: the transport's fd(), put on the
 * application's fd number. Its readiness must mean what a TCP socket's does
 * once prepare_wait() said it is armed, because the application's poll,
 * select and epoll sleep in the kernel on it. docs/ARCHITECTURE.md says how
 * to add a transport.
 *
 * All operations return a negative errno value on failure; none sets errno.
 * Threads: the socket layer serialises readers and writers of one
 * connection (one of each at a time); the readiness operations may run
 * concurrently with them.
 */
#ifndef PW_PRELOAD_XPORT_H
#define PW_PRELOAD_XPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Flags of readv() and writev(). */
#define PW_XP_DONTWAIT 0x1 /* never sleep: -EAGAIN instead */
#define PW_XP_PEEK     0x2 /* read without consuming */
#define PW_XP_WAITALL  0x4 /* read: block until the iovecs are full, EOF or error */
#define PW_XP_DISCARD  0x8 /* read: consume without copying (MSG_TRUNC) */

struct pw_xport_ops {
	const char *name;
	/* The application's fd is the transport's own kernel socket: the
	 * kernel serves data, readiness and shutdown, and every other
	 * operation is NULL. */
	bool kernel_io;
	/* The router can hand the connection to the program an exec() starts
	 * (PW_MSG_REATTACH by id). */
	bool exec_carry;

	/* Data. Bytes moved, 0 at end of stream; -EAGAIN (DONTWAIT, or the
	 * wait was cut short), -EPIPE, -ECONNRESET, -EPROTO (the peer broke
	 * the protocol: report it as a reset), -EINTR. */
	ssize_t (*readv)(void *xp, const struct iovec *iov, int cnt, int flags);
	ssize_t (*writev)(void *xp, const struct iovec *iov, int cnt, int flags);
	ssize_t (*avail)(void *xp); /* readable bytes now (FIONREAD) */
	ssize_t (*space)(void *xp); /* bytes a write would take now */

	/* Readiness. poll() is the mask now (POLLIN, POLLOUT, POLLRDHUP,
	 * POLLHUP, POLLERR, as the transport sees the connection); wait()
	 * blocks up to @ms for @events (the mask, 0 on timeout);
	 * prepare_wait() arms the readiness fd for @events before the caller
	 * sleeps on it in the kernel, and returns true if a wait would end at
	 * once; note_events() hands back what the kernel reported for the
	 * readiness fd (POLLHUP: the peer's process is gone). */
	short (*poll)(void *xp);
	int (*wait)(void *xp, short events, int ms);
	bool (*prepare_wait)(void *xp, short events);
	void (*note_events)(void *xp, short revents);
	/* Edge-triggered emulation: rx_mark() moves with every arrival or
	 * hang-up, tx_mark() with every time a write made the readiness fd
	 * unwritable. */
	uint32_t (*rx_mark)(void *xp);
	uint32_t (*tx_mark)(void *xp);
	/* Scheduling hints: before spinning on the connection, and after the
	 * kernel woke the caller for it. */
	void (*note_cpu)(void *xp);
	void (*spread)(void *xp);

	/* The readiness fd, which is the application's fd number once
	 * adopted; set_fd() follows it (dup, close), -1 when none is left. */
	int (*fd)(void *xp);
	void (*set_fd)(void *xp, int fd);

	/* The end of a connection: shutdown(SHUT_WR) tells the peer; close()
	 * is orderly (the peer reads the rest, then EOF), abort() resets;
	 * detach() frees the state without a word to the peer (other
	 * processes still hold the connection). Each frees @xp. */
	int (*shutdown)(void *xp, int how);
	void (*close)(void *xp);
	void (*abort)(void *xp);
	void (*detach)(void *xp);

	/* Process hooks. mark_shared(): other processes may use the
	 * connection from now on (fork, SCM_RIGHTS). restrict_io(): the
	 * process enters seccomp mode; from now on touch the readiness fd
	 * with read, write and poll only. */
	void (*mark_shared)(void *xp);
	void (*restrict_io)(void *xp);
	/* Reuse (reuse.c), NULL where the transport has none: an orderly close
	 * that keeps the end for the next connection between the same two
	 * ends, its readiness fd from now on @keep_fd (another fd of the same
	 * socket). 0: @xp is freed and *ret_parked holds the end; -EBUSY: not
	 * parkable, nothing happened (close as usual). */
	int (*park)(void *xp, int keep_fd, void **ret_parked);
};

extern const struct pw_xport_ops pw_xport_shm;
extern const struct pw_xport_ops pw_xport_kernel;

/*
 * The shared-memory transport's constructor: attach as @side to the channel
 * in @memfd, with @sock (the channel's socket end) as readiness fd.
 * @reattach: the side is open already (exec, SCM_RIGHTS take-over). On
 * success the state owns @sock; @memfd stays the caller's.
 */
int pw_xport_shm_attach(int memfd, int sock, unsigned side, bool reattach, void **ret_xp);

/*
 * Parked ends of the shared-memory transport (reuse.c): claim (connecting
 * end) or take (accepting end) one for a new connection, whose state is
 * then *ret_xp and whose readiness fd is the parked one's; drop it (a claim
 * that raced in is reset) or forget it (this process's copy only, after
 * fork). Errors as pw_chan_parked_claim() and pw_chan_parked_take().
 */
int pw_xport_shm_claim(void *parked, void **ret_xp);
int pw_xport_shm_take(void *parked, void **ret_xp);
void pw_xport_shm_drop(void *parked);
int pw_xport_shm_release(void *parked);
void pw_xport_shm_forget(void *parked);
int pw_xport_shm_parked_fd(void *parked);

/* The kernel transport's part of adopting the router's socket @sock for the
 * application's @fd: the options the application set on @fd, set on @sock. */
void pw_xport_kernel_carry_opts(int fd, int sock);
/* Only the carried options of @fd in @set (bit i: pw_carried_opts[i]): a
 * fresh socket's, which are the defaults but for those (fdtab.c). */
void pw_xport_kernel_carry_set(int fd, int sock, uint32_t set);
/* Options read from another socket (pw_opts_carry), set on @sock. */
struct pw_opt;
void pw_xport_kernel_apply(int sock, const struct pw_opt *opts, unsigned n);

#endif /* PW_PRELOAD_XPORT_H */
