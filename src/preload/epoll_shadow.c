// SPDX-License-Identifier: MIT
/*
 * The epoll shadow: what the application registered, per epoll fd.
 */
#include "preload.h"

/* ---- the epoll shadow: what the application registered, per epoll fd ---- */

static _Atomic(struct pw_ep *) pw_eptab[65536];

/* One past the highest epoll fd that ever had a shadow: scans stop there. */
static _Atomic int pw_ep_end;

struct pw_ep *pw_ep_get(int epfd, bool create)
{
	if (epfd < 0 || epfd >= 65536)
		return NULL;
	struct pw_ep *e = atomic_load_explicit(&pw_eptab[epfd], memory_order_acquire);
	if (!e && create) {
		struct pw_ep *n = calloc(1, sizeof(*n));
		if (!n)
			return NULL;
		pthread_mutex_init(&n->lock, NULL);
		n->kick = -1;
		/* Release pairs with the acquire loads of pw_eptab (here and in the
		 * scans): the shadow is seen initialised. Acquire on failure: we
		 * use the winner's. */
		if (!atomic_compare_exchange_strong_explicit(
			    &pw_eptab[epfd], &e, n, memory_order_acq_rel, memory_order_acquire)) {
			free(n);
			return e;
		}
		e = n;
		/* Relaxed: a bound for scans, which read each slot with acquire. */
		int end = atomic_load_explicit(&pw_ep_end, memory_order_relaxed);
		while (end < epfd + 1 && !atomic_compare_exchange_weak_explicit(
						 &pw_ep_end, &end, epfd + 1, memory_order_relaxed,
						 memory_order_relaxed))
			;
	}
	return e;
}

static void pw_ep_forget_fd(struct pw_ep *e, int fd)
{
	for (unsigned i = 0; i < e->n; i++)
		if (e->regs[i].fd == fd) {
			e->regs[i] = e->regs[--e->n];
			return;
		}
}

void pw_ep_record(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct pw_ep *e = pw_ep_get(epfd, op == EPOLL_CTL_ADD);

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	if (op == EPOLL_CTL_DEL) {
		pw_ep_forget_fd(e, fd);
	} else {
		struct pw_ep_reg *r = NULL;
		for (unsigned i = 0; i < e->n; i++)
			if (e->regs[i].fd == fd)
				r = &e->regs[i];
		if (!r && op == EPOLL_CTL_ADD) {
			if (e->n == e->cap) {
				unsigned cap = e->cap ? e->cap * 2 : 16;
				struct pw_ep_reg *nr = realloc(e->regs, cap * sizeof(*nr));
				if (!nr)
					goto out;
				e->regs = nr;
				e->cap = cap;
			}
			r = &e->regs[e->n++];
			memset(r, 0, sizeof(*r));
			r->fd = fd;
		}
		if (r && ev) {
			r->events = ev->events;
			r->data = ev->data;
			r->disabled = false;
			r->mark = 0;
			r->out_seen = false;
		}
	}
out:
	pthread_mutex_unlock(&e->lock);
}

/* Call @fn on each epoll shadow, with its lock held. */
static void pw_ep_each(void (*fn)(int epfd, struct pw_ep *e, void *arg), void *arg)
{
	for (int epfd = 0, end = atomic_load_explicit(&pw_ep_end, memory_order_relaxed); epfd < end;
	     epfd++) {
		/* Pairs with the publishing release in pw_ep_get(). */
		struct pw_ep *e = atomic_load_explicit(&pw_eptab[epfd], memory_order_acquire);
		if (!e)
			continue;
		pthread_mutex_lock(&e->lock);
		fn(epfd, e, arg);
		pthread_mutex_unlock(&e->lock);
	}
}

struct pw_ep_swap {
	int fd;
	bool before;
};

static void pw_ep_swap_one(int epfd, struct pw_ep *e, void *arg)
{
	const struct pw_ep_swap *w = arg;

	for (unsigned i = 0; i < e->n; i++) {
		struct pw_ep_reg *r = &e->regs[i];

		if (r->fd != w->fd)
			continue;
		if (w->before) {
			r->readd = pw_real.epoll_ctl(epfd, EPOLL_CTL_DEL, w->fd, NULL) == 0;
			if (!r->readd)
				e->regs[i--] = e->regs[--e->n];
		} else if (r->readd) {
			struct epoll_event ev = { .events = r->events, .data = r->data };
			pw_real.epoll_ctl(epfd, EPOLL_CTL_ADD, w->fd, &ev);
			r->readd = false;
		}
	}
}

/*
 * @fd's file is about to change under it (dup3 of the channel socket). The
 * kernel keys registrations by file, so take ours off the old file (@before)
 * and put them on the new one afterwards. A registration the kernel no longer
 * has (its fd was closed and the number reused) is stale: forget it.
 */
void pw_ep_swap_file(int fd, bool before)
{
	struct pw_ep_swap w = { .fd = fd, .before = before };

	pw_ep_each(pw_ep_swap_one, &w);
}

void pw_ep_ctl_beside(int epfd, int op, int q, const struct epoll_event *ev, bool exclusive_ok)
{
	struct epoll_event qev = { 0 };

	if (ev) {
		qev = *ev;
		/* An epoll fd cannot be added EPOLLEXCLUSIVE (EINVAL). */
		if (!exclusive_ok)
			qev.events &= ~(uint32_t)EPOLLEXCLUSIVE;
	}
	pw_real.epoll_ctl(epfd, op, q, ev ? &qev : NULL);
}

struct pw_ep_q {
	int lfd, q;
	bool add, exclusive_ok;
};

static void pw_ep_queue_one(int epfd, struct pw_ep *e, void *arg)
{
	const struct pw_ep_q *w = arg;

	for (unsigned i = 0; i < e->n; i++) {
		struct epoll_event ev = { .events = e->regs[i].events, .data = e->regs[i].data };

		if (e->regs[i].fd == w->lfd)
			pw_ep_ctl_beside(epfd, w->add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, w->q, &ev,
					 w->exclusive_ok);
	}
}

void pw_ep_queue(int lfd, int q, bool add, bool exclusive_ok)
{
	struct pw_ep_q w = { .lfd = lfd, .q = q, .add = add, .exclusive_ok = exclusive_ok };

	pw_ep_each(pw_ep_queue_one, &w);
}

static void pw_ep_forget_in(int epfd, struct pw_ep *e, void *arg)
{
	(void)epfd;
	pw_ep_forget_fd(e, *(const int *)arg);
}

/* A closed accelerated fd leaves every epoll set (as the kernel's does). */
void pw_ep_forget_everywhere(int fd)
{
	pw_ep_each(pw_ep_forget_in, &fd);
}

static void pw_ep_leave_in(int epfd, struct pw_ep *e, void *arg)
{
	int fd = *(const int *)arg;

	for (unsigned i = 0; i < e->n; i++)
		if (e->regs[i].fd == fd) {
			pw_real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
			e->regs[i] = e->regs[--e->n];
			return;
		}
}

/* As pw_ep_forget_everywhere, for an fd whose file outlives it (a parked
 * channel's socket): the kernel drops a registration only with the file,
 * so take each off by hand. */
void pw_ep_leave_everywhere(int fd)
{
	pw_ep_each(pw_ep_leave_in, &fd);
}

/* Is @fd registered in any epoll set this process knows? Without the
 * shadows' locks: for the child after fork, whose only thread we are (a
 * lock another thread of the parent held stays held). */
bool pw_ep_has_fd_unlocked(int fd)
{
	for (int epfd = 0, end = atomic_load_explicit(&pw_ep_end, memory_order_relaxed); epfd < end;
	     epfd++) {
		/* Pairs with the publishing release in pw_ep_get(). */
		struct pw_ep *e = atomic_load_explicit(&pw_eptab[epfd], memory_order_acquire);
		for (unsigned i = 0; e && i < e->n; i++)
			if (e->regs[i].fd == fd)
				return true;
	}
	return false;
}

/* @epfd is closed: its shadow goes with it. */
static void pw_ep_free(struct pw_ep *e)
{
	if (e->kick >= 0)
		pw_real.close(e->kick);
	pthread_mutex_destroy(&e->lock);
	free(e->regs);
	free(e);
}

void pw_ep_discard(int epfd)
{
	if (epfd < 0 || epfd >= 65536)
		return;
	/* Acquire pairs with the publishing release in pw_ep_get(). */
	struct pw_ep *e = atomic_exchange_explicit(&pw_eptab[epfd], NULL, memory_order_acquire);
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	bool used = e->users > 0;
	e->orphan = true;
	pthread_mutex_unlock(&e->lock);
	if (!used)
		pw_ep_free(e);
}

void pw_ep_unuse(struct pw_ep *e)
{
	bool gone = --e->users == 0 && e->orphan;

	pthread_mutex_unlock(&e->lock);
	if (gone)
		pw_ep_free(e);
}

static void pw_ep_kick_closed(int epfd, struct pw_ep *e, void *arg)
{
	const unsigned *range = arg;

	(void)epfd;
	if (e->kick >= 0 && (unsigned)e->kick >= range[0] && (unsigned)e->kick <= range[1])
		e->kick = -1; /* (its number may be the application's by now) */
}

void pw_ep_kicks_closed(unsigned first, unsigned last)
{
	unsigned range[2] = { first, last };

	pw_ep_each(pw_ep_kick_closed, range);
}
