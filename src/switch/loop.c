// SPDX-License-Identifier: MIT
/*
 * The switch's one thread. While frames flow it polls every port's rings
 * (the clients see their rings' MASK_INT flag and send no interrupts). Once
 * nothing has come for the spin budget it asks every client for an
 * interrupt, looks once more, and sleeps in epoll on the clients'
 * interrupt eventfds, the sockets and the control socket. An idle switch
 * uses no CPU.
 *
 * DPDK's memif client publishes head and then reads the ring's flags with
 * no fence between, so on x86 it can miss the interrupt we asked for a
 * moment before. The sleep is therefore bounded (PW_SW_NAP_MS) while a
 * client is connected; a wake-up by that bound that finds frames is
 * counted (late_wakeups), so how often it happens is measured, not guessed.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "../common/log.h"
#include "../common/util.h"
#include "switch.h"

#define PW_SW_NAP_MS	 100	  /* the longest sleep while a client is connected */
#define PW_SW_CTL_NS	 1000000u /* between two looks at the sockets while polling */
#define PW_SW_EVENTS_MAX 64

int pw_sw_loop_add(int fd, uint32_t events, struct pw_sw_ev *ev)
{
	struct epoll_event e = { .events = events, .data.ptr = ev };

	return epoll_ctl(pw_sw.epfd, EPOLL_CTL_ADD, fd, &e) < 0 ? -errno : 0;
}

void pw_sw_loop_del(int fd)
{
	if (fd >= 0)
		epoll_ctl(pw_sw.epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* Wait up to @timeout_ms for events and handle them: how many there were,
 * or -errno. */
static int pw_sw_dispatch(int timeout_ms)
{
	struct epoll_event evs[PW_SW_EVENTS_MAX];
	int n = epoll_wait(pw_sw.epfd, evs, PW_SW_EVENTS_MAX, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct pw_sw_ev *ev = evs[i].data.ptr;
		ev->fn(ev, evs[i].events);
	}
	return n;
}

/* Ask every connected client for interrupts: false if one has frames
 * waiting already (then do not sleep). */
static bool pw_sw_arm(bool *any)
{
	bool quiet = true;

	*any = false;
	for (unsigned i = 0; i < pw_sw.top; i++) {
		struct pw_sw_port *p = &pw_sw.ports[i];
		if (!pw_sw_port_up(p))
			continue;
		*any = true;
		if (pw_memif_rx_arm(&p->conn))
			quiet = false;
	}
	return quiet;
}

static void pw_sw_unarm(void)
{
	for (unsigned i = 0; i < pw_sw.top; i++)
		if (pw_sw_port_up(&pw_sw.ports[i]))
			pw_memif_rx_poll(&pw_sw.ports[i].conn);
}

int pw_sw_run(void)
{
	const uint64_t spin_ns = (uint64_t)pw_sw.cfg.spin_us * 1000;
	uint64_t now = pw_now_ns(), last = now, busy_from = now, ctl_at = now;
	int r;

	while (!pw_sw.stop) {
		unsigned n = pw_sw_poll();

		now = pw_now_ns();
		if (n) {
			last = now;
		} else if (now - last >= spin_ns) {
			bool any, quiet = pw_sw_arm(&any);
			if (quiet) {
				pw_sw.busy_ns += now - busy_from;
				pw_sw.sleeps++;
				r = pw_sw_dispatch(any ? PW_SW_NAP_MS : -1);
				if (r < 0)
					return r;
				pw_sw_unarm();
				if (r == 0 && any && pw_sw_poll())
					pw_sw.late_wakeups++;
				busy_from = last = ctl_at = pw_now_ns();
				continue;
			}
			pw_sw_unarm();
			last = now;
		} else {
			pw_cpu_relax();
		}
		/* Sockets and control requests, now and then while polling (not
		 * a system call per round). */
		if (now - ctl_at >= PW_SW_CTL_NS) {
			ctl_at = now;
			if ((r = pw_sw_dispatch(0)) < 0)
				return r;
		}
	}
	return 0;
}
