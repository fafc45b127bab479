// SPDX-License-Identifier: MIT
/*
 * The event loop: one epoll set. Each watched fd points at a struct pw_ev,
 * the first member of the object behind it, whose handler does the rest; the
 * loop knows nothing of clients, connections or peers.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

#define PW_LOOP_EVENTS 64

static struct {
	int ep;
	bool stop;
	/* The round being handled: pw_loop_del() clears what it must not see. */
	struct epoll_event evs[PW_LOOP_EVENTS];
	int next, n;
} pw_loop = { .ep = -1 };

int pw_loop_open(void)
{
	pw_loop.ep = epoll_create1(EPOLL_CLOEXEC);
	return pw_loop.ep < 0 ? -errno : 0;
}

void pw_loop_close(void)
{
	pw_loop.ep = pw_close(pw_loop.ep);
}

int pw_loop_add(int fd, uint32_t events, struct pw_ev *ev)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(pw_loop.ep, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

int pw_loop_mod(int fd, uint32_t events, struct pw_ev *ev)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(pw_loop.ep, EPOLL_CTL_MOD, fd, &e) < 0 ? -errno : 0;
}

void pw_loop_del(int fd, struct pw_ev *ev)
{
	epoll_ctl(pw_loop.ep, EPOLL_CTL_DEL, fd, NULL);
	for (int i = pw_loop.next; i < pw_loop.n; i++)
		if (pw_loop.evs[i].data.ptr == ev)
			pw_loop.evs[i].data.ptr = NULL;
}

void pw_loop_stop(void)
{
	pw_loop.stop = true;
}

int pw_loop_run(void)
{
	while (!pw_loop.stop) {
		int n = epoll_wait(pw_loop.ep, pw_loop.evs, PW_LOOP_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			pw_err("epoll_wait: %s", strerror(err));
			return -err;
		}
		/* A handler may free another object with an event in this round
		 * (a relay's two ends, a link the tick expires): its events are
		 * dropped by pw_loop_del(), before they are reached. */
		pw_loop.n = n;
		for (pw_loop.next = 0; pw_loop.next < pw_loop.n;) {
			const struct epoll_event *e = &pw_loop.evs[pw_loop.next++];
			struct pw_ev *ev = e->data.ptr;

			if (ev)
				ev->fn(ev, e->events);
		}
		pw_loop.n = 0;
		/* Between events: what the next connect will need. */
		pw_conn_chan_pool_fill();
	}
	return 0;
}
