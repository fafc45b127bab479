// SPDX-License-Identifier: MIT
/*
 * The shared-memory transport: a pw_chan (docs/CHANNEL.md) under an
 * accelerated connection. The only file of the library that calls pw_chan_*.
 */
#include "preload.h"

_Static_assert(PW_XP_DONTWAIT == PW_CHAN_DONTWAIT && PW_XP_PEEK == PW_CHAN_PEEK &&
		       PW_XP_WAITALL == PW_CHAN_WAITALL && PW_XP_DISCARD == PW_CHAN_DISCARD,
	       "transport flags pass through to the channel unchanged");

/* The library's channel options. */
static struct pw_chan_opts pw_xshm_opts(bool reattach)
{
	return (struct pw_chan_opts){
		.spin_ns = pw_cfg.spin_ns,
		.no_spin = pw_cfg.spin_ns == 0,
		.hup_is_eof = true, /* a dead peer process reads as EOF, as on TCP */
		.kernel_restart = true,
		.reattach = reattach,
	};
}

int pw_xport_shm_attach(int memfd, int sock, unsigned side, bool reattach, void **ret_xp)
{
	struct pw_chan_opts co = pw_xshm_opts(reattach);
	struct pw_chan *chan = NULL;
	int r = pw_chan_open(memfd, sock, side, &co, &chan);

	if (r < 0)
		return r;
	*ret_xp = chan;
	return 0;
}

/* A new connection over the parked end @parked: claimed (connecting end) or
 * taken (accepting end, @take). */
static int pw_xshm_reuse(void *parked, bool take, void **ret_xp)
{
	struct pw_chan_opts co = pw_xshm_opts(false);
	struct pw_chan *chan = NULL;
	int r = take ? pw_chan_parked_take(parked, &co, &chan)
		     : pw_chan_parked_claim(parked, &co, &chan);

	if (r == 0)
		*ret_xp = chan;
	return r;
}

int pw_xport_shm_claim(void *parked, void **ret_xp)
{
	return pw_xshm_reuse(parked, false, ret_xp);
}

int pw_xport_shm_take(void *parked, void **ret_xp)
{
	return pw_xshm_reuse(parked, true, ret_xp);
}

void pw_xport_shm_drop(void *parked)
{
	pw_chan_parked_drop(parked);
}

int pw_xport_shm_release(void *parked)
{
	return pw_chan_parked_release(parked);
}

void pw_xport_shm_forget(void *parked)
{
	pw_chan_parked_forget(parked);
}

int pw_xport_shm_parked_fd(void *parked)
{
	return pw_chan_parked_fd(parked);
}

static ssize_t pw_xshm_readv(void *xp, const struct iovec *iov, int cnt, int flags)
{
	return pw_chan_readv(xp, iov, cnt, flags);
}

static ssize_t pw_xshm_writev(void *xp, const struct iovec *iov, int cnt, int flags)
{
	return pw_chan_writev(xp, iov, cnt, flags);
}

static ssize_t pw_xshm_avail(void *xp)
{
	return pw_chan_avail(xp);
}

static ssize_t pw_xshm_space(void *xp)
{
	return pw_chan_space(xp);
}

static short pw_xshm_poll(void *xp)
{
	return pw_chan_poll(xp);
}

static int pw_xshm_wait(void *xp, short events, int ms)
{
	return pw_chan_wait(xp, events, ms);
}

static bool pw_xshm_prepare_wait(void *xp, short events)
{
	return ((events & POLLIN) && pw_chan_prepare_read_wait(xp)) ||
	       ((events & POLLOUT) && pw_chan_prepare_write_wait(xp));
}

static void pw_xshm_note_events(void *xp, short revents)
{
	pw_chan_note_events(xp, revents);
}

static uint32_t pw_xshm_rx_mark(void *xp)
{
	return pw_chan_rx_mark(xp);
}

static uint32_t pw_xshm_tx_mark(void *xp)
{
	return pw_chan_tx_mark(xp);
}

static void pw_xshm_note_cpu(void *xp)
{
	pw_chan_note_cpu(xp);
}

static void pw_xshm_spread(void *xp)
{
	pw_chan_spread(xp);
}

static int pw_xshm_fd(void *xp)
{
	return pw_chan_fd(xp);
}

static void pw_xshm_set_fd(void *xp, int fd)
{
	pw_chan_set_fd(xp, fd);
}

static int pw_xshm_shutdown(void *xp, int how)
{
	return pw_chan_shutdown(xp, how);
}

static void pw_xshm_close(void *xp)
{
	pw_chan_close(xp);
}

static void pw_xshm_abort(void *xp)
{
	pw_chan_abort(xp);
}

static void pw_xshm_detach(void *xp)
{
	pw_chan_detach(xp);
}

static void pw_xshm_mark_shared(void *xp)
{
	pw_chan_mark_shared(xp);
}

static void pw_xshm_restrict_io(void *xp)
{
	pw_chan_restrict(xp);
}

static int pw_xshm_park(void *xp, int keep_fd, void **ret_parked)
{
	struct pw_chan_parked *p = NULL;
	int r = pw_chan_park(xp, keep_fd, &p);

	if (r == 0)
		*ret_parked = p;
	return r;
}

const struct pw_xport_ops pw_xport_shm = {
	.name = "shared memory",
	.exec_carry = true,
	.readv = pw_xshm_readv,
	.writev = pw_xshm_writev,
	.avail = pw_xshm_avail,
	.space = pw_xshm_space,
	.poll = pw_xshm_poll,
	.wait = pw_xshm_wait,
	.prepare_wait = pw_xshm_prepare_wait,
	.note_events = pw_xshm_note_events,
	.rx_mark = pw_xshm_rx_mark,
	.tx_mark = pw_xshm_tx_mark,
	.note_cpu = pw_xshm_note_cpu,
	.spread = pw_xshm_spread,
	.fd = pw_xshm_fd,
	.set_fd = pw_xshm_set_fd,
	.shutdown = pw_xshm_shutdown,
	.close = pw_xshm_close,
	.abort = pw_xshm_abort,
	.detach = pw_xshm_detach,
	.mark_shared = pw_xshm_mark_shared,
	.restrict_io = pw_xshm_restrict_io,
	.park = pw_xshm_park,
};
