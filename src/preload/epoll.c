// SPDX-License-Identifier: MIT
/*
 * Readiness: epoll_ctl and the epoll waits.
 */
#include "preload.h"

static bool pw_epoll_kicked(struct pw_ep *e, const struct epoll_event *ev);
static void pw_epoll_joined(int epfd, int fd);

PW_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	pw_ensure();
	int r = pw_real.epoll_ctl(epfd, op, fd, ev);
	if (r < 0)
		return r;
	pw_ep_record(epfd, op, fd, ev);
	if (op != EPOLL_CTL_DEL)
		pw_epoll_joined(epfd, fd);
	struct pw_sock *s =
		atomic_load_explicit(&pw_nlisten, memory_order_relaxed) ? pw_fdtab_get(fd) : NULL;
	if (s && s->kind == PW_K_LISTEN) {
		/* The accept queue stands for the listener in the set, and so
		 * do the channels parked for it (reuse.c): an epoll fd, which
		 * cannot be added EPOLLEXCLUSIVE, and is this process's own. */
		int q = atomic_load_explicit(&s->lq, memory_order_relaxed);
		if (q >= 0)
			pw_ep_ctl_beside(epfd, op, q, ev, true);
		int pq = pw_reuse_ready_fd(s);
		if (pq >= 0)
			pw_ep_ctl_beside(epfd, op, pq, ev, false);
	}
	return r;
}

static uint32_t pw_poll_to_epoll(short m)
{
	uint32_t e = 0;

	if (m & POLLIN)
		e |= EPOLLIN;
	if (m & POLLOUT)
		e |= EPOLLOUT;
	if (m & POLLRDHUP)
		e |= EPOLLRDHUP;
	if (m & POLLHUP)
		e |= EPOLLHUP;
	if (m & POLLERR)
		e |= EPOLLERR;
	return e;
}

/* Readiness of an accelerated registration, honouring EPOLLET and ONESHOT. */
static uint32_t pw_ep_check(struct pw_ep_reg *reg, struct pw_sock *s, bool report)
{
	if (reg->disabled)
		return 0;
	uint32_t want = reg->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	uint32_t ev = pw_poll_to_epoll(pw_sock_revents(s, POLLIN | POLLOUT | POLLRDHUP)) &
		      (want | EPOLLHUP | EPOLLERR);

	if (ev && (reg->events & EPOLLET)) {
		uint32_t mark = s->ops->rx_mark(s->xp);
		/* An edge: report readable data once per arrival. Writability
		 * edges come from the kernel (the socket is exact for POLLOUT). */
		if (mark == reg->mark)
			ev &= ~(uint32_t)(EPOLLIN | EPOLLRDHUP);
		ev &= ~(uint32_t)EPOLLOUT;
		if (report && ev)
			reg->mark = mark;
	}
	if (report && ev && (reg->events & EPOLLONESHOT))
		reg->disabled = true;
	return ev;
}

enum pw_epoll_call { PW_W_EPOLL_WAIT, PW_W_EPOLL_PWAIT, PW_W_EPOLL_PWAIT2 };

/* The kernel's epoll wait, with the call the application made. */
static int pw_kernel_epoll(int epfd, struct epoll_event *out, int max, int64_t ns,
			   const sigset_t *mask, enum pw_epoll_call call)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	switch (call) {
	case PW_W_EPOLL_WAIT:
		return pw_real.epoll_wait(epfd, out, max, pw_ms_of(ns));
	case PW_W_EPOLL_PWAIT:
		return pw_real.epoll_pwait(epfd, out, max, pw_ms_of(ns), mask);
	default:
		return pw_real.epoll_pwait2
			       ? pw_real.epoll_pwait2(epfd, out, max, ns < 0 ? NULL : &ts, mask)
			       : pw_fail(ENOSYS);
	}
}

/* Step 1, with e->lock held: the accelerated fds ready now, into @out;
 * spins (dropping the lock meanwhile) while @sp allows. */
static int pw_epoll_collect(struct pw_ep *e, struct epoll_event *out, int max, struct pw_spin *sp)
{
	int n = 0;

	for (bool noted = false;; noted = true) {
		unsigned first = e->n ? e->next % e->n : 0;
		for (unsigned k = 0; k < e->n && n < max; k++) {
			unsigned i = (first + k) % e->n;
			struct pw_sock *s = pw_conn_of(e->regs[i].fd);
			if (!s)
				continue;
			if (!noted)
				s->ops->note_cpu(s->xp);
			uint32_t ev = pw_ep_check(&e->regs[i], s, true);
			if (ev) {
				out[n].events = ev;
				out[n].data = e->regs[i].data;
				n++;
				e->next = i + 1; /* the kernel's ready list rotates too */
			}
		}
		if (n)
			return n;
		pthread_mutex_unlock(&e->lock);
		bool more = pw_spin_more(sp);
		pthread_mutex_lock(&e->lock);
		if (!more)
			return 0;
	}
}

/* Step 2, with e->lock held: nothing was ready; arm each accelerated fd so
 * that its socket wakes the kernel's epoll. True if one is ready after all
 * (then do not sleep). */
static bool pw_epoll_arm(struct pw_ep *e)
{
	bool ready = false;

	for (unsigned i = 0; i < e->n; i++) {
		struct pw_sock *s = pw_conn_of(e->regs[i].fd);
		if (!s || e->regs[i].disabled)
			continue;
		short want = (short)(((e->regs[i].events & EPOLLIN) ? POLLIN : 0) |
				     ((e->regs[i].events & EPOLLOUT) ? POLLOUT : 0));
		if (pw_prepare(s, want) && pw_ep_check(&e->regs[i], s, false))
			ready = true;
	}
	return ready;
}

/* Wake the threads asleep in the kernel's wait on @e (the set @epfd): its
 * eventfd, made and put in the set at the first need. With e->lock held. */
static void pw_epoll_kick(int epfd, struct pw_ep *e)
{
	if (e->kick < 0) {
		if (pw_cfg.restricted)
			return; /* (a call the seccomp filter may refuse) */
		int k = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (k < 0)
			return;
		int high = pw_real.fcntl(k, F_DUPFD_CLOEXEC, 100);
		if (high >= 0) {
			pw_real.close(k);
			k = high;
		}
		struct epoll_event kev = { .events = EPOLLIN, .data.ptr = e };
		if (pw_real.epoll_ctl(epfd, EPOLL_CTL_ADD, k, &kev) < 0) {
			pw_real.close(k);
			return;
		}
		e->kick = k;
	}
	uint64_t one = 1;
	while (pw_real.write(e->kick, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

/* True if @ev is @e's kick (then it is taken): not the application's. With
 * e->lock held. */
static bool pw_epoll_kicked(struct pw_ep *e, const struct epoll_event *ev)
{
	uint64_t v;

	if (e->kick < 0 || ev->data.ptr != e)
		return false;
	while (pw_real.read(e->kick, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	return true;
}

/*
 * @fd joined the set @epfd, or changed what it waits for. A thread already
 * asleep in the kernel's wait armed the fds it knew, not this one: arm it
 * now, and if it is ready already, wake them.
 */
static void pw_epoll_joined(int epfd, int fd)
{
	struct pw_sock *s = pw_conn_of(fd);
	struct pw_ep *e = s ? pw_ep_get(epfd, false) : NULL;

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; e->users && i < e->n; i++) {
		struct pw_ep_reg *reg = &e->regs[i];
		if (reg->fd != fd || reg->disabled)
			continue;
		short want = (short)(((reg->events & EPOLLIN) ? POLLIN : 0) |
				     ((reg->events & EPOLLOUT) ? POLLOUT : 0));
		if (pw_prepare(s, want) && pw_ep_check(reg, s, false))
			pw_epoll_kick(epfd, e);
	}
	pthread_mutex_unlock(&e->lock);
}

/* The accelerated registration whose data the kernel reported, or NULL. */
static struct pw_ep_reg *pw_epoll_reg_of(struct pw_ep *e, const struct epoll_event *ev)
{
	for (unsigned i = 0; i < e->n; i++)
		if (e->regs[i].data.u64 == ev->data.u64 && pw_conn_of(e->regs[i].fd))
			return &e->regs[i];
	return NULL;
}

/*
 * Step 3's second half, with e->lock held: the kernel reported @k events
 * after the @n that step 1 collected. Events of accelerated fds are wake
 * bytes: the transports say what is true, so drop duplicates and spurious
 * ones; the set's kick is ours alone. @slept: the kernel may have put us to
 * sleep. Returns the new total.
 */
static int pw_epoll_merge(struct pw_ep *e, struct epoll_event *out, int n, int k, bool slept)
{
	int total = n;
	bool conns = atomic_load_explicit(&pw_nconns, memory_order_relaxed) != 0;

	for (int j = n; j < n + k; j++) {
		if (pw_epoll_kicked(e, &out[j]))
			continue;
		/* (No accelerated fd in the process: no lookup per event.) */
		struct pw_ep_reg *reg = conns ? pw_epoll_reg_of(e, &out[j]) : NULL;
		if (!reg) {
			out[total++] = out[j];
			continue;
		}
		struct pw_sock *s = pw_conn_of(reg->fd);
		/* A hang-up on the socket: the peer's process is gone. */
		s->ops->note_events(s->xp, (short)(((out[j].events & EPOLLHUP) ? POLLHUP : 0) |
						   ((out[j].events & EPOLLERR) ? POLLERR : 0)));
		if (slept)
			s->ops->spread(s->xp); /* woken by the peer: leave its CPU */
		bool dup = false;
		for (int d = 0; d < n; d++)
			dup |= out[d].data.u64 == out[j].data.u64;
		uint32_t kout = out[j].events & EPOLLOUT;
		uint32_t ev = dup ? 0 : pw_ep_check(reg, s, true);
		/* The kernel's writability edge counts once after registration
		 * and then only after a write found the transport full (EAGAIN
		 * or a short count): wake bytes also re-queue the socket in its
		 * epoll. */
		uint32_t seq = s->ops->tx_mark(s->xp);
		if ((reg->events & EPOLLET) && !dup && kout &&
		    (!reg->out_seen || reg->out_mark != seq)) {
			ev |= kout;
			reg->out_seen = true;
			reg->out_mark = seq;
		}
		if (ev) {
			out[total].events = ev;
			out[total].data = reg->data;
			total++;
		}
	}
	return total;
}

/* The listener of @e whose registration has @data, if it has an accept queue. */
static int pw_epoll_listener_of(struct pw_ep *e, epoll_data_t data)
{
	int lfd = -1;

	pthread_mutex_lock(&e->lock);
	for (unsigned i = 0; i < e->n && lfd < 0; i++) {
		struct pw_sock *s =
			e->regs[i].data.u64 == data.u64 ? pw_fdtab_get(e->regs[i].fd) : NULL;
		if (s && s->kind == PW_K_LISTEN &&
		    atomic_load_explicit(&s->lq, memory_order_relaxed) >= 0)
			lfd = e->regs[i].fd;
	}
	pthread_mutex_unlock(&e->lock);
	return lfd;
}

/*
 * Drop from the @n events in @out those of accept queues whose router is
 * gone (a hang-up with the listener's data, the queue empty: the listener
 * never reports one itself), closing those queues. Returns how many are left.
 */
static int pw_epoll_queues(int epfd, struct epoll_event *out, int n)
{
	struct pw_ep *e;
	int total = 0;

	if (n <= 0 || !atomic_load_explicit(&pw_nlisten, memory_order_relaxed) ||
	    !(e = pw_ep_get(epfd, false)))
		return n;
	for (int j = 0; j < n; j++) {
		int lfd = (out[j].events & EPOLLHUP) ? pw_epoll_listener_of(e, out[j].data) : -1;
		if (lfd >= 0 && !pw_lq_hup_check(lfd))
			continue;
		out[total++] = out[j];
	}
	return total;
}

/* The kernel's wait, without the hang-ups of accept queues whose router is
 * gone: those end in nothing, and the wait goes on for the time left. */
static int pw_kernel_epoll_q(int epfd, struct epoll_event *out, int max, int64_t ns,
			     const sigset_t *mask, enum pw_epoll_call call)
{
	uint64_t start = pw_now_ns();

	for (;;) {
		int k = pw_kernel_epoll(epfd, out, max, ns, mask, call);
		int n = pw_epoll_queues(epfd, out, k);
		if (n || k <= 0 || ns == 0)
			return n;
		if (ns > 0) {
			uint64_t el = pw_now_ns() - start;
			if (el >= (uint64_t)ns)
				return 0;
			ns -= (int64_t)el;
			start += el;
		}
	}
}

static int pw_epoll_core(int epfd, struct epoll_event *out, int max, int64_t timeout_ns,
			 const sigset_t *mask, enum pw_epoll_call call)
{
	/* Every wait has its set's shadow, to be counted among its users: an
	 * fd added meanwhile must know to wake it (pw_epoll_joined). */
	struct pw_ep *e = max > 0 ? pw_ep_get(epfd, true) : NULL;
	if (!e)
		return pw_kernel_epoll_q(epfd, out, max, timeout_ns, mask, call);

	uint64_t start = pw_now_ns();
	struct pw_spin sp;
	pw_wait_spin_start(&sp, timeout_ns);
	for (bool first = true;; first = false) {
		/* 1. accelerated fds ready now, spinning briefly if we may wait;
		 * 2. nothing: arm each so its socket wakes the kernel's epoll */
		pthread_mutex_lock(&e->lock);
		/* Counted while the lock is held, before anything is armed:
		 * an fd recorded after this sees us (pw_epoll_joined), one
		 * recorded before is armed by step 2. Until pw_ep_unuse(). */
		if (first)
			e->users++;
		int n = 0;
		if (atomic_load_explicit(&pw_nconns, memory_order_relaxed)) {
			n = pw_epoll_collect(e, out, max, &sp);
			if (!n && pw_epoll_arm(e)) {
				pthread_mutex_unlock(&e->lock);
				pw_spin_start(&sp, 0);
				continue; /* collect it in step 1 */
			}
		}
		int64_t left = -1;
		if (timeout_ns >= 0) {
			uint64_t el = pw_now_ns() - start;
			left = el >= (uint64_t)timeout_ns ? 0 : timeout_ns - (int64_t)el;
		}
		if (n) {
			/* Transports are ready: look at the kernel's fds now and
			 * then only, not at the cost of a syscall per event. */
			uint64_t now = pw_now_ns();
			if (now - e->kernel_ns < PW_KERNEL_EVERY_NS) {
				pw_ep_unuse(e);
				return n;
			}
			e->kernel_ns = now;
			left = 0;
		}
		pthread_mutex_unlock(&e->lock);

		/* 3. the kernel: other fds, and sleeping */
		int k = pw_kernel_epoll(epfd, out + n, max - n, left, mask, call);
		pthread_mutex_lock(&e->lock);
		int total = k < 0 ? n : pw_epoll_merge(e, out, n, k, left != 0);
		pthread_mutex_unlock(&e->lock);
		if (k >= 0)
			total = n + pw_epoll_queues(epfd, out + n, total - n);
		int err = errno;
		pthread_mutex_lock(&e->lock);
		if (k < 0 || total || left == 0 || e->orphan) {
			/* (Orphan: the set was closed under us. Its number may
			 * be another set's by now: not ours to wait on.) */
			if (k >= 0 && !total && e->orphan) {
				k = -1;
				err = EBADF;
			}
			pw_ep_unuse(e);
			errno = err;
			return k < 0 ? (n ? n : k) : total;
		}
		pthread_mutex_unlock(&e->lock);
	}
}

PW_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	pw_ensure();
	return pw_epoll_core(epfd, ev, max, timeout < 0 ? -1 : (int64_t)timeout * 1000000, NULL,
			     PW_W_EPOLL_WAIT);
}

PW_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
			  const sigset_t *mask)
{
	pw_ensure();
	return pw_epoll_core(epfd, ev, max, timeout < 0 ? -1 : (int64_t)timeout * 1000000, mask,
			     PW_W_EPOLL_PWAIT);
}

PW_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
			   const sigset_t *mask)
{
	pw_ensure();
	return pw_epoll_core(epfd, ev, max, ts ? (int64_t)pw_ts_ns(ts) : -1, mask,
			     PW_W_EPOLL_PWAIT2);
}
