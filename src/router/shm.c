// SPDX-License-Identifier: MIT
/*
 * The router's side of the shared-memory transport: it makes each channel
 * (both readers armed), watches it for status and metrics, and speaks for an
 * accepting side that never came. The channel's memory is src/chan's: the
 * router goes through pw_chan's creator API (docs/CHANNEL.md, "Who maps a
 * channel"). relay.c is the other place where the router uses a channel: a
 * relay is one end of it.
 */
#include <errno.h>
#include <sys/stat.h>

#include <podwire/chan.h>

#include "../common/util.h"
#include "router.h"

/* Channels made ahead of need, between events: making one (memfd_create,
 * ftruncate, seals, the control block, socketpair) is then off the path of
 * the connect that takes it. Each holds 3 fds and one page. */
#define PW_CHAN_POOL 8u

static struct pw_pooled_chan {
	int memfd, sock[2];
	struct pw_chan_ids ids;
} pw_chan_pool[PW_CHAN_POOL];
static unsigned pw_chan_npool;

static int pw_conn_chan_new(uint32_t ring_size, int *ret_memfd, int ret_sock[2],
			    struct pw_chan_ids *ret_ids)
{
	struct stat st0, st1;
	/* Both readers start armed: a socket with data waiting is readable to
	 * poll and epoll even if its reader never waited (data sent before
	 * accept, a thread already asleep in epoll_wait when the fd is added). */
	int r = pw_chan_create(ring_size, PW_CHAN_ARMED, ret_memfd, ret_sock);

	if (r < 0)
		return r;
	/* The socket ends' identities: proof for re-attach and relays. */
	*ret_ids = (struct pw_chan_ids){ 0 };
	if (fstat(ret_sock[0], &st0) == 0 && fstat(ret_sock[1], &st1) == 0)
		*ret_ids = (struct pw_chan_ids){ .ino = { st0.st_ino, st1.st_ino },
						 .dev = st0.st_dev };
	return 0;
}

int pw_conn_chan_make(uint32_t ring_size, int *ret_memfd, int ret_sock[2],
		      struct pw_chan_ids *ret_ids)
{
	/* The pool holds channels of the configured size; the small rings of
	 * a pod near its memory limit are made on demand. */
	if (!pw_chan_npool || ring_size != pw_router_cfg.ring_size)
		return pw_conn_chan_new(ring_size, ret_memfd, ret_sock, ret_ids);
	const struct pw_pooled_chan *p = &pw_chan_pool[--pw_chan_npool];
	*ret_memfd = p->memfd;
	ret_sock[0] = p->sock[0];
	ret_sock[1] = p->sock[1];
	*ret_ids = p->ids;
	return 0;
}

void pw_conn_chan_pool_fill(void)
{
	while (pw_chan_npool < PW_CHAN_POOL) {
		struct pw_pooled_chan *p = &pw_chan_pool[pw_chan_npool];

		if (pw_conn_chan_new(pw_router_cfg.ring_size, &p->memfd, p->sock, &p->ids) < 0)
			return; /* out of fds or memory: connects make their own */
		pw_chan_npool++;
	}
}

void pw_conn_chan_pool_drain(void)
{
	while (pw_chan_npool) {
		struct pw_pooled_chan *p = &pw_chan_pool[--pw_chan_npool];

		pw_close(p->memfd);
		pw_close(p->sock[0]);
		pw_close(p->sock[1]);
	}
}

/* @cn's channel now, read without mapping it (the router maps no channel). */
static int pw_conn_chan_state(const struct pw_conn *cn, struct pw_chan_state *ret)
{
	return cn->memfd >= 0 ? pw_chan_state_read(cn->memfd, ret) : -EBADF;
}

void pw_conn_chan_reset(struct pw_conn *cn)
{
	if (cn->memfd >= 0)
		pw_chan_reset_unattached(cn->memfd, 1);
}

/* log2 of a window the pods wrote (their word: only shown), 0 if not a power of two. */
static uint8_t pw_log2_of(uint32_t w)
{
	return w && !(w & (w - 1)) ? (uint8_t)__builtin_ctz(w) : 0;
}

uint32_t pw_conn_state(const struct pw_conn *cn, uint64_t ret_bytes[2], uint8_t ret_win[2])
{
	struct pw_chan_state st;

	if (pw_conn_chan_state(cn, &st) < 0) {
		if (ret_bytes)
			ret_bytes[0] = ret_bytes[1] = 0;
		if (ret_win)
			ret_win[0] = ret_win[1] = 0;
		return cn->state;
	}
	if (ret_bytes) {
		ret_bytes[0] = st.bytes[0];
		ret_bytes[1] = st.bytes[1];
	}
	if (ret_win) {
		ret_win[0] = pw_log2_of(st.window[0]);
		ret_win[1] = pw_log2_of(st.window[1]);
	}
	if (cn->state == PW_CONN_PENDING && !st.attached[1] && !st.closed[1])
		return PW_CONN_PENDING; /* in the listener's queue */
	/* A side whose socket is gone ended, even without saying so (its
	 * process died, or the last of several holders closed). */
	bool closed0 = st.closed[0] || cn->gone[0], closed1 = st.closed[1] || cn->gone[1];
	if (closed0 && closed1)
		return PW_CONN_CLOSED;
	/* A parked side keeps its socket until its process drops the channel:
	 * reaped once its socket is gone. */
	if ((closed0 || st.parked[0]) && (closed1 || st.parked[1]))
		return PW_CONN_PARKED;
	if (st.wr_done[0] || st.wr_done[1] || closed0 || closed1)
		return PW_CONN_HALF;
	return PW_CONN_OPEN;
}

bool pw_conn_unattached(const struct pw_conn *cn)
{
	struct pw_chan_state st;

	/* Claimed and not taken, side 1 is as a side that never attached. */
	return pw_conn_chan_state(cn, &st) == 0 && !st.attached[1] && !st.closed[1] &&
	       !st.parked[1];
}

bool pw_conn_attached(const struct pw_conn *cn)
{
	struct pw_chan_state st;

	if (pw_conn_chan_state(cn, &st) < 0)
		return false;
	return st.attached[1] || st.closed[1];
}
