// SPDX-License-Identifier: MIT
/*
 * Readiness: poll, ppoll, select, pselect.
 */
#include "preload.h"

/* ---- readiness: poll, select, epoll ---- */

/* What @s reports for @events, as poll(2) would. */
short pw_sock_revents(struct pw_sock *s, short events)
{
	short m = s->ops->poll(s->xp);

	/* TCP: POLLHUP once both directions are shut, or on reset. The peer
	 * closing is POLLIN|POLLRDHUP while we may still write. */
	if ((m & POLLHUP) && !(m & POLLERR) && !s->wr_shut)
		m &= (short)~POLLHUP;
	if (s->rd_shut)
		m |= POLLIN;

	return (short)(m & (events | POLLHUP | POLLERR));
}

/*
 * Before the kernel may put us to sleep: make each accelerated fd's socket
 * signal what the caller waits for. Returns true if one is ready already.
 */
bool pw_prepare(struct pw_sock *s, short events)
{
	if (pw_sock_revents(s, events))
		return true;
	return s->ops->prepare_wait(s->xp, events);
}

uint64_t pw_ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

/*
 * The kernel's waits are made with the call the application made (poll for
 * poll, epoll_wait for epoll_wait...): a seccomp filter lets through the
 * application's calls, not others.
 */
enum pw_wait_call { PW_W_POLL, PW_W_PPOLL, PW_W_SELECT, PW_W_PSELECT };

int pw_ms_of(int64_t ns)
{
	return ns < 0 ? -1 : ns / 1000000 >= INT32_MAX ? INT32_MAX : (int)((ns + 999999) / 1000000);
}

/*
 * select(2) for a set of pollfds, in a restricted process (which may be
 * allowed select and not ppoll): readable, writable and exceptional become
 * POLLIN, POLLOUT and POLLPRI.
 */
static int pw_kernel_select(struct pollfd *fds, nfds_t n, int64_t ns, const sigset_t *mask,
			    bool use_pselect)
{
	fd_set r, w, x;
	int maxfd = -1;

	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&x);
	for (nfds_t i = 0; i < n; i++) {
		if (fds[i].fd < 0 || fds[i].fd >= FD_SETSIZE)
			continue;
		if (fds[i].events & POLLIN)
			FD_SET(fds[i].fd, &r);
		if (fds[i].events & POLLOUT)
			FD_SET(fds[i].fd, &w);
		if (fds[i].events & POLLPRI)
			FD_SET(fds[i].fd, &x);
		maxfd = fds[i].fd > maxfd ? fds[i].fd : maxfd;
	}
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	struct timeval tv = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) / 1000 };
	int k = use_pselect ? pw_real.pselect(maxfd + 1, &r, &w, &x, ns < 0 ? NULL : &ts, mask)
			    : pw_real.select(maxfd + 1, &r, &w, &x, ns < 0 ? NULL : &tv);
	if (k < 0)
		return k;
	k = 0;
	for (nfds_t i = 0; i < n; i++) {
		fds[i].revents = 0;
		if (fds[i].fd < 0 || fds[i].fd >= FD_SETSIZE)
			continue;
		fds[i].revents = (short)((FD_ISSET(fds[i].fd, &r) ? POLLIN : 0) |
					 (FD_ISSET(fds[i].fd, &w) ? POLLOUT : 0) |
					 (FD_ISSET(fds[i].fd, &x) ? POLLPRI : 0));
		k += fds[i].revents != 0;
	}
	return k;
}

static int pw_kernel_poll(struct pollfd *fds, nfds_t n, int64_t ns, const sigset_t *mask,
			  enum pw_wait_call call)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	if (call == PW_W_POLL)
		return pw_real.poll(fds, n, pw_ms_of(ns));
	if (call == PW_W_PPOLL || !pw_cfg.restricted)
		return pw_real.ppoll(fds, n, ns < 0 ? NULL : &ts, mask);
	return pw_kernel_select(fds, n, ns, mask, call == PW_W_PSELECT);
}

/*
 * The core of poll/ppoll/select/pselect. @timeout_ns < 0 waits forever.
 * Accelerated fds get their readiness from the rings; others from the kernel.
 */
static int pw_poll_fds(struct pollfd *fds, nfds_t n, int64_t timeout_ns, const sigset_t *mask,
		       enum pw_wait_call call)
{
	bool any = false;

	for (nfds_t i = 0; i < n && !any; i++)
		any = fds[i].fd >= 0 && pw_conn_of(fds[i].fd);
	if (!any)
		return pw_kernel_poll(fds, n, timeout_ns, mask, call);

	uint64_t start = pw_now_ns();
	struct pw_spin sp;
	pw_wait_spin_start(&sp, timeout_ns);
	for (;;) {
		int ready = 0;
		bool mine_ready = false;

		/* Look at the rings; spin a little while the caller can wait. */
		bool noted = false;
		do {
			for (nfds_t i = 0; i < n; i++) {
				struct pw_sock *s = fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
				if (!s)
					continue;
				if (!noted)
					s->ops->note_cpu(s->xp);
				if (pw_sock_revents(s, fds[i].events))
					mine_ready = true;
			}
			noted = true;
		} while (!mine_ready && pw_spin_more(&sp));
		if (!mine_ready)
			for (nfds_t i = 0; i < n; i++) {
				struct pw_sock *s = fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
				if (s && pw_prepare(s, fds[i].events))
					mine_ready = true;
			}

		int64_t left = -1;
		if (timeout_ns >= 0) {
			uint64_t el = pw_now_ns() - start;
			left = el >= (uint64_t)timeout_ns ? 0 : timeout_ns - (int64_t)el;
		}
		if (mine_ready) {
			static __thread uint64_t kernel_ns;
			uint64_t now = pw_now_ns();

			if (now - kernel_ns < PW_KERNEL_EVERY_NS) {
				for (nfds_t i = 0; i < n; i++) {
					struct pw_sock *s =
						fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
					fds[i].revents = s ? pw_sock_revents(s, fds[i].events) : 0;
					ready += fds[i].revents != 0;
				}
				return ready;
			}
			kernel_ns = now;
			left = 0;
		}
		int r = pw_kernel_poll(fds, n, left, mask, call);
		if (r < 0)
			return r;
		for (nfds_t i = 0; i < n; i++) {
			struct pw_sock *s = fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
			if (s && r > 0 && fds[i].revents) {
				/* A hang-up on the socket: the peer's process is gone. */
				s->ops->note_events(s->xp, fds[i].revents);
				if (left != 0)
					s->ops->spread(
						s->xp); /* woken by the peer: leave its CPU */
			}
			if (s)
				fds[i].revents = (short)(pw_sock_revents(s, fds[i].events) |
							 (fds[i].revents & POLLNVAL));
			if (fds[i].revents)
				ready++;
		}
		if (ready || left == 0)
			return ready;
		/* Only stale wake bytes woke us: arm again and wait the rest. */
	}
}

/* The accept queue (@which 0) or the parked channels' epoll fd (1,
 * reuse.c) of @fd, a listener asked for POLLIN, or -1. */
static int pw_poll_queue_of(const struct pollfd *p, int which)
{
	struct pw_sock *s = p->fd >= 0 && (p->events & POLLIN) ? pw_fdtab_get(p->fd) : NULL;

	if (!s || s->kind != PW_K_LISTEN)
		return -1;
	return which ? pw_reuse_ready_fd(s) : atomic_load_explicit(&s->lq, memory_order_relaxed);
}

/*
 * pw_poll_fds, and for each listener with an accept queue the queue too: a
 * connection in it makes the listener readable. A queue that hung up empty
 * (its router is gone) is dropped here, and the wait goes on without it.
 */
static int pw_poll_core(struct pollfd *fds, nfds_t n, int64_t timeout_ns, const sigset_t *mask,
			enum pw_wait_call call)
{
	nfds_t nq = 0;

	if (atomic_load_explicit(&pw_nlisten, memory_order_relaxed))
		for (nfds_t i = 0; i < n; i++)
			for (int w = 0; w < 2; w++)
				nq += pw_poll_queue_of(&fds[i], w) >= 0;
	if (!nq)
		return pw_poll_fds(fds, n, timeout_ns, mask, call);

	struct {
		nfds_t of;
		bool parked; /* the parked channels' epoll fd, not the queue */
	} stack[64], *x = n + nq <= 64 ? stack : calloc(n + nq, sizeof(*x));
	struct pollfd pstack[64], *p = n + nq <= 64 ? pstack : calloc(n + nq, sizeof(*p));
	nfds_t k = n;
	int r = -1;
	uint64_t start = pw_now_ns();
	bool dropped = false;

	if (!x || !p) {
		errno = ENOMEM;
		goto out;
	}
	memcpy(p, fds, n * sizeof(*p));
	for (nfds_t i = 0; i < n; i++)
		for (int w = 0; w < 2 && k < n + nq; w++) {
			int q = pw_poll_queue_of(&fds[i], w);
			if (q >= 0) {
				x[k].of = i;
				x[k].parked = w;
				p[k++] = (struct pollfd){ .fd = q, .events = POLLIN };
			}
		}
	r = pw_poll_fds(p, k, timeout_ns, mask, call);
	if (r < 0)
		goto out;
	for (nfds_t i = 0; i < n; i++)
		fds[i].revents = p[i].revents;
	for (nfds_t j = n; j < k; j++) {
		short q = p[j].revents;
		/* A hang-up with the queue empty is the router gone: no
		 * connection, and the queue is dropped. */
		if (!x[j].parked && (q & POLLHUP) && !pw_lq_hup_check(fds[x[j].of].fd)) {
			q = 0;
			dropped = true;
		}
		if (q & (POLLIN | POLLHUP))
			fds[x[j].of].revents |= POLLIN;
	}
	r = 0;
	for (nfds_t i = 0; i < n; i++)
		r += fds[i].revents != 0;
	if (!r && dropped && timeout_ns != 0) {
		/* Only a dead router's queue woke us: wait the rest without it. */
		uint64_t el = pw_now_ns() - start;
		if (timeout_ns < 0 || el < (uint64_t)timeout_ns)
			r = pw_poll_core(fds, n, timeout_ns < 0 ? -1 : timeout_ns - (int64_t)el,
					 mask, call);
	}
out:
	if (x != stack)
		free(x);
	if (p != pstack)
		free(p);
	return r;
}

PW_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	pw_ensure();
	return pw_poll_core(fds, n, timeout < 0 ? -1 : (int64_t)timeout * 1000000, NULL, PW_W_POLL);
}

PW_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	pw_ensure();
	return pw_poll_core(fds, n, ts ? (int64_t)pw_ts_ns(ts) : -1, mask, PW_W_PPOLL);
}

/* Does the select set hold an accelerated fd? (If not, it is the kernel's.) */
static bool pw_select_any(int nfds, const fd_set *r, const fd_set *w)
{
	bool conns = atomic_load_explicit(&pw_nconns, memory_order_relaxed) != 0;
	bool listeners = atomic_load_explicit(&pw_nlisten, memory_order_relaxed) != 0;

	if (!conns && !listeners)
		return false;
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		if (conns && ((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w))) && pw_conn_of(fd))
			return true;
		if (listeners && r && FD_ISSET(fd, r) &&
		    (pw_poll_queue_of(&(struct pollfd){ .fd = fd, .events = POLLIN }, 0) >= 0 ||
		     pw_poll_queue_of(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1) >= 0))
			return true;
	}
	return false;
}

static int pw_select_core(int nfds, fd_set *r, fd_set *w, fd_set *x, int64_t timeout_ns,
			  const sigset_t *mask, enum pw_wait_call call)
{
	struct pollfd stackfds[64];
	struct pollfd *pfd = stackfds;
	nfds_t n = 0;

	if (nfds < 0 || nfds > FD_SETSIZE)
		return pw_fail(EINVAL);
	if (nfds > 64) {
		pfd = calloc((size_t)nfds, sizeof(*pfd));
		if (!pfd)
			return pw_fail(ENOMEM);
	}
	for (int fd = 0; fd < nfds; fd++) {
		short ev = (short)(((r && FD_ISSET(fd, r)) ? POLLIN : 0) |
				   ((w && FD_ISSET(fd, w)) ? POLLOUT : 0) |
				   ((x && FD_ISSET(fd, x)) ? POLLPRI : 0));
		if (ev)
			pfd[n++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	int ret = pw_poll_core(pfd, n, timeout_ns, mask, call);
	if (ret >= 0) {
		ret = 0;
		if (r)
			FD_ZERO(r);
		if (w)
			FD_ZERO(w);
		if (x)
			FD_ZERO(x);
		for (nfds_t i = 0; i < n; i++) {
			short re = pfd[i].revents;
			if (re & POLLNVAL) {
				ret = pw_fail(EBADF);
				break;
			}
			if (r && (pfd[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR)))
				FD_SET(pfd[i].fd, r), ret++;
			if (w && (pfd[i].events & POLLOUT) && (re & (POLLOUT | POLLERR)))
				FD_SET(pfd[i].fd, w), ret++;
			if (x && (pfd[i].events & POLLPRI) && (re & POLLPRI))
				FD_SET(pfd[i].fd, x), ret++;
		}
	}
	if (pfd != stackfds)
		free(pfd);
	return ret;
}

PW_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	pw_ensure();
	if (!pw_select_any(nfds, r, w))
		return pw_real.select(nfds, r, w, x, tv);
	int64_t t = tv ? (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000 : -1;
	uint64_t start = pw_now_ns();
	int ret = pw_select_core(nfds, r, w, x, t, NULL, PW_W_SELECT);
	if (tv && t >= 0) {
		/* Linux select() reports the time left. */
		int64_t left = t - (int64_t)(pw_now_ns() - start);
		if (left < 0)
			left = 0;
		tv->tv_sec = left / 1000000000;
		tv->tv_usec = (left % 1000000000) / 1000;
	}
	return ret;
}

PW_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
		      const sigset_t *mask)
{
	pw_ensure();
	if (!pw_select_any(nfds, r, w))
		return pw_real.pselect(nfds, r, w, x, ts, mask);
	return pw_select_core(nfds, r, w, x, ts ? (int64_t)pw_ts_ns(ts) : -1, mask, PW_W_PSELECT);
}
