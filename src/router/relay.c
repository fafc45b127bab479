// SPDX-License-Identifier: MIT
/*
 * Relays: a connection handed to another process over a Unix socket
 * (SCM_RIGHTS). The receiver may not run the library, so the sender passes a
 * kernel stream (one end of a socketpair) instead of the channel's socket,
 * and the router carries bytes between the other end and the channel, as the
 * side the sender held. A receiver that runs the library proves it holds the
 * stream (PW_MSG_TAKE) and gets the channel itself, provided the relay has
 * moved nothing yet: so the relay waits PW_RELAY_GRACE_MS before it moves
 * the peer's bytes, and starts at once when the receiver writes or closes.
 * See docs/PRELOAD.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <podwire/chan.h>

#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

#define PW_RELAY_BUF	  65536
#define PW_RELAY_GRACE_MS 100
/* Each relay costs two buffers and a socketpair here: pods must not be able
 * to make the router run out (the sender then gets ENOBUFS). */
#define PW_RELAY_MAX 4096

struct pw_relay;

/* One watched fd of a relay: the event points here. */
struct pw_relay_end {
	struct pw_ev ev; /* first: the event loop casts to it */
	struct pw_relay *r;
	uint32_t mask; /* what epoll watches now; 0: not registered */
};

enum { PW_RELAY_TO_APP = 0, PW_RELAY_TO_CHAN = 1 }; /* the two directions */

struct pw_relay {
	struct pw_relay_end chan_end, app_end;
	uint64_t id;
	unsigned side;
	struct pw_chan *chan; /* owns the router's copy of the channel socket */
	int app;	      /* our end of the stream; the application has the other */
	dev_t peer_dev;	      /* the application's end, to recognise it in TAKE */
	ino_t peer_ino;
	bool started;
	uint64_t start_ns;
	uint64_t moved;
	uint8_t *buf[2];
	size_t off[2], len[2];
	bool eof[2];   /* PW_RELAY_TO_APP: the channel ended; PW_RELAY_TO_CHAN: the application shut
			  writing */
	bool app_gone; /* the application closed its end */
	struct pw_relay *next;
};

static struct {
	struct pw_relay *list;
	unsigned count;
	int tfd;
	struct pw_ev ev_timer;
	uint64_t taken, relayed;
} pw_relays = { .tfd = -1 };

static void pw_relay_watch(struct pw_relay_end *e, int fd, uint32_t mask)
{
	if (mask == e->mask)
		return;
	if (!mask)
		pw_loop_del(fd, &e->ev);
	else if (!e->mask)
		pw_loop_add(fd, mask, &e->ev);
	else
		pw_loop_mod(fd, mask, &e->ev);
	e->mask = mask;
}

static void pw_relay_unlink(struct pw_relay *r)
{
	for (struct pw_relay **pp = &pw_relays.list; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			pw_relays.count--;
			return;
		}
}

/*
 * The relay is over: both directions ended, or the application's end went.
 * We only drop our copy of the channel's socket: other processes may hold
 * the side too (the sender, or a forked sibling of a process that sandboxed
 * itself); the peer sees the end when the last copy goes, and what is left
 * in the ring stays for them.
 */
static void pw_relay_finish(struct pw_relay *r)
{
	int sock = pw_chan_fd(r->chan);

	pw_relay_watch(&r->chan_end, sock, 0);
	pw_relay_watch(&r->app_end, r->app, 0);
	pw_relay_unlink(r);
	pw_dbg("relay of conn %" PRIu64 " side %u: done (%" PRIu64 " bytes)", r->id, r->side,
	       r->moved);
	pw_chan_detach(r->chan);
	close(sock);
	close(r->app);
	free(r->buf[0]);
	free(r->buf[1]);
	free(r);
}

static bool pw_relay_again(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* Move what can move, both ways, without blocking; then watch for the rest. */
static void pw_relay_pump(struct pw_relay *r)
{
	bool progress;

	do {
		progress = false;
		if (!r->len[PW_RELAY_TO_APP] && !r->eof[PW_RELAY_TO_APP]) {
			ssize_t n = pw_chan_read(r->chan, r->buf[PW_RELAY_TO_APP], PW_RELAY_BUF,
						 PW_CHAN_DONTWAIT);
			if (n > 0) {
				r->off[PW_RELAY_TO_APP] = 0;
				r->len[PW_RELAY_TO_APP] = (size_t)n;
				r->moved += (uint64_t)n;
				progress = true;
			} else if (n != -EAGAIN) {
				/* End of stream, reset or a dead peer: the application
				 * reads EOF (a Unix stream carries no reset). */
				r->eof[PW_RELAY_TO_APP] = true;
				shutdown(r->app, SHUT_WR);
				progress = true;
			}
		}
		if (r->len[PW_RELAY_TO_APP]) {
			ssize_t w = send(r->app, r->buf[PW_RELAY_TO_APP] + r->off[PW_RELAY_TO_APP],
					 r->len[PW_RELAY_TO_APP], MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0) {
				r->off[PW_RELAY_TO_APP] += (size_t)w;
				r->len[PW_RELAY_TO_APP] -= (size_t)w;
				progress = true;
			} else if (w < 0 && !pw_relay_again(errno)) {
				r->app_gone = true;
			}
		}
		if (!r->len[PW_RELAY_TO_CHAN] && !r->eof[PW_RELAY_TO_CHAN] && !r->app_gone) {
			ssize_t n =
				recv(r->app, r->buf[PW_RELAY_TO_CHAN], PW_RELAY_BUF, MSG_DONTWAIT);
			if (n > 0) {
				r->off[PW_RELAY_TO_CHAN] = 0;
				r->len[PW_RELAY_TO_CHAN] = (size_t)n;
				r->moved += (uint64_t)n;
				progress = true;
			} else if (n == 0) {
				r->eof[PW_RELAY_TO_CHAN] = true;
				pw_chan_shutdown(r->chan, SHUT_WR);
				progress = true;
			} else if (!pw_relay_again(errno)) {
				r->app_gone = true;
			}
		}
		if (r->len[PW_RELAY_TO_CHAN]) {
			ssize_t w = pw_chan_write(
				r->chan, r->buf[PW_RELAY_TO_CHAN] + r->off[PW_RELAY_TO_CHAN],
				r->len[PW_RELAY_TO_CHAN], PW_CHAN_DONTWAIT);
			if (w > 0) {
				r->off[PW_RELAY_TO_CHAN] += (size_t)w;
				r->len[PW_RELAY_TO_CHAN] -= (size_t)w;
				progress = true;
			} else if (w != -EAGAIN) {
				/* The peer will read no more: drop what it would not get. */
				r->len[PW_RELAY_TO_CHAN] = 0;
				r->eof[PW_RELAY_TO_CHAN] = true;
				progress = true;
			}
		}
	} while (progress && !r->app_gone);

	if (r->app_gone || (r->eof[PW_RELAY_TO_APP] && !r->len[PW_RELAY_TO_APP] &&
			    r->eof[PW_RELAY_TO_CHAN] && !r->len[PW_RELAY_TO_CHAN])) {
		pw_relay_finish(r);
		return;
	}
	uint32_t cm = (!r->len[PW_RELAY_TO_APP] && !r->eof[PW_RELAY_TO_APP] ? EPOLLIN : 0) |
		      (r->len[PW_RELAY_TO_CHAN] ? EPOLLOUT : 0);
	uint32_t am = (!r->len[PW_RELAY_TO_CHAN] && !r->eof[PW_RELAY_TO_CHAN] ? EPOLLIN : 0) |
		      (r->len[PW_RELAY_TO_APP] ? EPOLLOUT : 0) | EPOLLRDHUP;
	pw_relay_watch(&r->chan_end, pw_chan_fd(r->chan), cm);
	pw_relay_watch(&r->app_end, r->app, am);
}

static void pw_relay_start_moving(struct pw_relay *r)
{
	if (r->started)
		return;
	r->started = true;
	pw_relays.relayed++;
	pw_dbg("relay of conn %" PRIu64 " side %u: moving bytes", r->id, r->side);
	pw_relay_pump(r);
}

/* Arm the timer for the earliest relay still in its grace period. */
static void pw_relay_arm(void)
{
	uint64_t next = 0;
	struct itimerspec its = { 0 };

	for (struct pw_relay *r = pw_relays.list; r; r = r->next)
		if (!r->started && (!next || r->start_ns < next))
			next = r->start_ns;
	if (next) {
		its.it_value.tv_sec = (time_t)(next / 1000000000u);
		its.it_value.tv_nsec = (long)(next % 1000000000u);
	}
	timerfd_settime(pw_relays.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Relays whose grace period ended start moving bytes. */
static void pw_relay_timer(struct pw_ev *ev, uint32_t events)
{
	uint64_t ticks, now = pw_now_ns();

	if (read(pw_relays.tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	for (struct pw_relay *r = pw_relays.list, *next; r; r = next) {
		next = r->next;
		if (!r->started && r->start_ns <= now)
			pw_relay_start_moving(r);
	}
	pw_relay_arm();
}

/* The application's end of the stream. */
static void pw_relay_app_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_relay *r = ((struct pw_relay_end *)ev)->r;

	if (!r->started) {
		/* The application wrote or closed: it reads this stream itself. */
		pw_relay_start_moving(r);
		pw_relay_arm();
		return;
	}
	pw_relay_pump(r);
}

/* The channel's socket: what it says of the peer goes to the channel first. */
static void pw_relay_chan_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_relay *r = ((struct pw_relay_end *)ev)->r;

	pw_chan_note_events(r->chan, (short)((events & EPOLLHUP ? POLLHUP : 0) |
					     (events & EPOLLERR ? POLLERR : 0)));
	pw_relay_app_event(ev, events);
}

static int pw_relay_setup(void)
{
	if (pw_relays.tfd >= 0)
		return 0;
	pw_relays.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (pw_relays.tfd < 0)
		return -errno;
	pw_relays.ev_timer.fn = pw_relay_timer;
	if (pw_loop_add(pw_relays.tfd, EPOLLIN, &pw_relays.ev_timer) < 0) {
		int r = -errno;
		pw_relays.tfd = pw_close(pw_relays.tfd);
		return r;
	}
	return 0;
}

int pw_relay_start(uint64_t id, int memfd, int sock, unsigned side, bool now, int *ret_app)
{
	struct pw_chan_opts co = { .no_spin = true, .hup_is_eof = true, .reattach = true };
	struct pw_relay *r = NULL;
	int sv[2] = { -1, -1 }, ret;
	struct stat st;

	ret = pw_relays.count >= PW_RELAY_MAX ? -EAGAIN : pw_relay_setup();
	if (ret < 0)
		goto fail;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || fstat(sv[0], &st) < 0) {
		ret = -errno;
		goto fail;
	}
	r = calloc(1, sizeof(*r));
	if (!r || !(r->buf[0] = malloc(PW_RELAY_BUF)) || !(r->buf[1] = malloc(PW_RELAY_BUF))) {
		ret = -ENOMEM;
		goto fail;
	}
	/* Nonblocking on our side only: O_NONBLOCK is per open file. */
	int fl = fcntl(sv[1], F_GETFL);
	if (fl < 0 || fcntl(sv[1], F_SETFL, fl | O_NONBLOCK) < 0) {
		ret = -errno;
		goto fail;
	}
	ret = pw_chan_open(memfd, sock, side, &co, &r->chan);
	if (ret < 0)
		goto fail;
	/* The sender may still hold this side too: load its indices first. */
	pw_chan_mark_shared(r->chan);
	r->chan_end = (struct pw_relay_end){ .ev.fn = pw_relay_chan_event, .r = r };
	r->app_end = (struct pw_relay_end){ .ev.fn = pw_relay_app_event, .r = r };
	r->id = id;
	r->side = side;
	r->app = sv[1];
	r->peer_dev = st.st_dev;
	r->peer_ino = st.st_ino;
	r->start_ns = pw_now_ns() + PW_RELAY_GRACE_MS * 1000000ull;
	r->next = pw_relays.list;
	pw_relays.list = r;
	pw_relays.count++;
	*ret_app = sv[0];
	if (now) {
		pw_relay_start_moving(r);
	} else {
		/* Until it starts, only the application's first write or close. */
		pw_relay_watch(&r->app_end, r->app, EPOLLIN | EPOLLRDHUP);
		pw_relay_arm();
	}
	pw_dbg("relay of conn %" PRIu64 " side %u: ready", id, side);
	return 0;
fail:
	if (r) {
		free(r->buf[0]);
		free(r->buf[1]);
		free(r);
	}
	pw_close(sv[0]);
	pw_close(sv[1]);
	close(sock);
	return ret;
}

int pw_relay_take(int app, uint64_t *ret_id, unsigned *ret_side, int *ret_sock)
{
	struct stat st;

	if (fstat(app, &st) < 0)
		return -errno;
	for (struct pw_relay *r = pw_relays.list; r; r = r->next) {
		if (r->peer_dev != st.st_dev || r->peer_ino != st.st_ino)
			continue;
		if (r->moved || r->eof[PW_RELAY_TO_APP] || r->eof[PW_RELAY_TO_CHAN] || r->app_gone)
			return -EBUSY; /* bytes are in the stream: it stays relayed */
		int sock = pw_chan_fd(r->chan);
		pw_relay_watch(&r->chan_end, sock, 0);
		pw_relay_watch(&r->app_end, r->app, 0);
		pw_relay_unlink(r);
		/* The side stays as it is for the taker; the socket goes to it. */
		pw_chan_detach(r->chan);
		close(r->app);
		*ret_id = r->id;
		*ret_side = r->side;
		*ret_sock = sock;
		free(r->buf[0]);
		free(r->buf[1]);
		free(r);
		pw_relays.taken++;
		pw_relay_arm();
		return 0;
	}
	return -ENOENT;
}

void pw_relays_teardown(void)
{
	while (pw_relays.list) {
		pw_relays.list->app_gone = true;
		pw_relay_finish(pw_relays.list);
	}
	pw_relays.tfd = pw_close(pw_relays.tfd);
}

void pw_relays_metrics(FILE *f)
{
	fprintf(f,
		"# HELP podwire_relays Connections handed to another process, carried by the "
		"router\n# TYPE podwire_relays gauge\npodwire_relays %u\n",
		pw_relays.count);
	fprintf(f,
		"# HELP podwire_relays_taken_total Handed connections the receiver took over "
		"(no relay)\n# TYPE podwire_relays_taken_total counter\n"
		"podwire_relays_taken_total %" PRIu64 "\n",
		pw_relays.taken);
	fprintf(f,
		"# HELP podwire_relays_started_total Handed connections the router relayed\n"
		"# TYPE podwire_relays_started_total counter\npodwire_relays_started_total %" PRIu64
		"\n",
		pw_relays.relayed);
}
