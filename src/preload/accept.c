// SPDX-License-Identifier: MIT
/*
 * Listening and accepting. An accelerated listener is the application's
 * kernel listening socket plus the accept queue the router gave us for it
 * (src/router/listeners.c): a SOCK_SEQPACKET socket with one message per
 * connection from a pod, which carries the connection itself (a channel, or
 * a kernel socket from another node). accept() takes from the queue first,
 * then from the kernel (clients without podwire). Wherever the application
 * waits for the listener (poll, select, epoll, a blocking accept), the queue
 * is waited for with it: its readiness is the listener's.
 */
#include "preload.h"

/* The listener's queue: the router gone and every message taken (or the
 * process restricted). The listener is the kernel's alone from now on. */
void pw_lq_close(int lfd, struct pw_sock *ls)
{
	int q = atomic_exchange_explicit(&ls->lq, -1, memory_order_relaxed);

	if (q < 0)
		return;
	pw_ep_queue(lfd, q, false, true);
	pw_real.close(q);
}

void pw_listener_opts_stale(struct pw_sock *ls)
{
	atomic_store_explicit(&ls->acc_ok, false, memory_order_relaxed);
}

/*
 * A listener's socket on the underlay (pool.c) stands in for it: the kernel
 * copies its options into each connection it accepts, as it would the
 * application's listener's. So it gets them before it listens, and every
 * change after, when the application makes it: nothing is set per accept.
 */
static int pw_listener_ul_start(int lfd, int ul, int backlog)
{
	pw_xport_kernel_carry_opts(lfd, ul);
	return pw_real.listen(ul, backlog);
}

void pw_listener_opts_mirror(struct pw_sock *ls, int level, int name, const void *val,
			     socklen_t len)
{
	int ul = atomic_load_explicit(&ls->ul, memory_order_relaxed), saved = errno;

	/* (What the socket of another family refuses, the application's
	 * listener's connections from it would not show either.) */
	if (ul >= 0 && pw_opt_carried(level, name) >= 0)
		pw_real.setsockopt(ul, level, name, val, len);
	errno = saved;
}

/* Read @ls's options and timeouts once, until setsockopt makes them stale.
 * Under @ls->rlock. */
static void pw_listener_opts_load(int lfd, struct pw_sock *ls, int family)
{
	if (atomic_load_explicit(&ls->acc_ok, memory_order_relaxed))
		return;
	struct pw_sock t = { .family = family };

	pw_opts_carry(&t, lfd);
	free(ls->acc_opts);
	ls->acc_opts = t.opts;
	ls->acc_nopts = t.nopts;
	ls->acc_rcvtimeo_ms = pw_timeo_ms(lfd, SO_RCVTIMEO);
	ls->acc_sndtimeo_ms = pw_timeo_ms(lfd, SO_SNDTIMEO);
	atomic_store_explicit(&ls->acc_ok, true, memory_order_relaxed);
}

/* The listener's own SO_RCVTIMEO, which bounds a blocking accept. */
static int pw_listener_rcvtimeo(int lfd, struct pw_sock *ls)
{
	pthread_mutex_lock(&ls->rlock);
	pw_listener_opts_load(lfd, ls, ls->family);
	int ms = ls->acc_rcvtimeo_ms;
	pthread_mutex_unlock(&ls->rlock);
	return ms;
}

/* Give @s what a connection accepted on @lfd (@ls) inherits from it, as the
 * kernel copies a listener's options into each socket it accepts. */
static int pw_listener_opts_give(int lfd, struct pw_sock *ls, struct pw_sock *s)
{
	int r = 0;

	pthread_mutex_lock(&ls->rlock);
	pw_listener_opts_load(lfd, ls, s->family);
	s->rcvtimeo_ms = ls->acc_rcvtimeo_ms;
	s->sndtimeo_ms = ls->acc_sndtimeo_ms;
	if (ls->acc_nopts) {
		s->opts = malloc(ls->acc_nopts * sizeof(*s->opts));
		if (s->opts) {
			memcpy(s->opts, ls->acc_opts, ls->acc_nopts * sizeof(*s->opts));
			s->nopts = ls->acc_nopts;
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&ls->rlock);
	return r;
}

bool pw_lq_hup_check(int lfd)
{
	struct pw_sock *ls = pw_fdtab_get(lfd);
	char b;

	if (!ls || ls->kind != PW_K_LISTEN)
		return false;
	int q = atomic_load_explicit(&ls->lq, memory_order_relaxed);
	if (q < 0)
		return false;
	ssize_t n = pw_real.recvfrom(q, &b, 1, MSG_PEEK | MSG_DONTWAIT, NULL, NULL);
	if (n != 0)
		return true; /* a connection waits (or an error accept() will meet) */
	pw_lq_close(lfd, ls);
	return false;
}

PW_EXPORT int listen(int fd, int backlog)
{
	pw_ensure();
	int r = pw_real.listen(fd, backlog);
	if (r < 0 || pw_cfg.disabled || pw_fdtab_get(fd) || !pw_tcp_family(fd))
		return r;

	int saved = errno;
	struct pw_wire_listen req = { .backlog = backlog };
	struct sockaddr_in a; /* a dual-stack listener on :: is 0.0.0.0 */
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];

	if (pw_sockname4(fd, &a) == 0 && (a.sin_addr.s_addr == htonl(INADDR_ANY) ||
					  (pw_ctl_prefixes_known() && pw_in_prefixes(&a)))) {
		pw_addr_to_wire(&a, AF_INET, &req.addr);
		int n = pw_ctl_call(PW_MSG_LISTEN, &req, sizeof(req), &fd, 1, &m, fds);
		bool ok = (n == 1 && m.type == PW_MSG_LISTEN_OK) ||
			  (n == 2 && m.type == PW_MSG_LISTEN_POOL);
		struct pw_sock *s = ok ? pw_sock_new(PW_K_LISTEN) : NULL;
		if (s) {
			int fl = pw_real.fcntl(fd, F_GETFL);
			s->local = a;
			atomic_init(&s->lq, fds[0]);
			/* Without it, connections from other nodes take the
			 * router's way (the pooled ones are refused). */
			if (n == 2 && pw_listener_ul_start(fd, fds[1], backlog) < 0) {
				pw_real.close(fds[1]);
				n = 1;
			}
			atomic_init(&s->ul, n == 2 ? fds[1] : -1);
			if (n == 2)
				memcpy(s->ulkey, m.u.listen_pool.key, sizeof(s->ulkey));
			atomic_init(&s->nonblock, fl >= 0 && (fl & O_NONBLOCK));
			n = 0;
			atomic_fetch_add_explicit(&pw_nlisten, 1, memory_order_relaxed);
			pw_fdtab_put(fd, s);
			/* An epoll set may hold the socket from before listen(). */
			pw_ep_queue(fd, fds[0], true, true);
			pw_reuse_listen(fd, s);
			pw_dbg("fd %d: listener registered", fd);
		}
		for (int i = 0; i < n; i++)
			pw_real.close(fds[i]);
	}
	errno = saved;
	return r;
}

/* Give the new connection's @fd exactly the flags accept4() asked for (the
 * queue's fds come close-on-exec; a channel's socket, @blocking, blocking). */
static int pw_accept_flags(int fd, int flags, bool blocking)
{
	if (!(flags & SOCK_CLOEXEC) && pw_real.fcntl(fd, F_SETFD, 0) < 0)
		return -1;
	/* A channel's socket comes blocking: a syscall only to change that. */
	if (blocking && !(flags & SOCK_NONBLOCK))
		return 0;
	return pw_real.fcntl(fd, F_SETFL, (flags & SOCK_NONBLOCK) ? O_NONBLOCK : 0);
}

/* A channel accepted on @lfd (@ls) may be reused once it ends, for the
 * next connection to the same listener (reuse.c). */
static void pw_accepted_from(struct pw_sock *s, int lfd, const struct pw_sock *ls)
{
	s->lfd = lfd;
	s->lserial = ls->lserial;
	atomic_store_explicit(&s->reusable, true, memory_order_relaxed);
}

int pw_accept_tcp(int lfd, struct pw_sock *ls, int sock, const struct pw_wire_conn *body, int flags,
		  bool from_ul)
{
	struct pw_sock *s = NULL;
	int r = !from_ul		  ? pw_accept_flags(sock, flags, false)
		: !(flags & SOCK_CLOEXEC) ? pw_real.fcntl(sock, F_SETFD, 0)
					  : 0;

	if (r == 0 && !from_ul) {
		/* What the kernel copies from a listener into what it accepts
		 * (from the socket on the underlay, the kernel copied it). */
		pthread_mutex_lock(&ls->rlock);
		pw_listener_opts_load(lfd, ls, ls->family);
		pw_xport_kernel_apply(sock, ls->acc_opts, ls->acc_nopts);
		pthread_mutex_unlock(&ls->rlock);
	}
	if (r == 0)
		s = pw_conn_new(&pw_xport_kernel, body);
	if (!s) {
		pw_real.close(sock);
		return -1;
	}
	atomic_store_explicit(&s->nonblock, (flags & SOCK_NONBLOCK) != 0, memory_order_relaxed);
	pw_conn_publish(sock, s);
	return sock;
}

/* One queued connection (@m, with its @n fds) under a new fd, with @lfd's
 * options as a kernel accept() gives them. The new fd or -1 (fds closed). */
static int pw_accept_adopt(int lfd, struct pw_sock *ls, const struct pw_msg *m, int n,
			   const int *fds, int flags)
{
	bool nb = (flags & SOCK_NONBLOCK) != 0;
	struct pw_sock *s = NULL;
	int sock = -1;

	if (n == 2 && m->type == PW_MSG_CONN && m->u.conn.side == 1) {
		sock = fds[1];
		if (pw_accept_flags(sock, flags, true) == 0)
			s = pw_conn_new_shm(fds[0], sock, &m->u.conn, -1, nb, false);
		if (s)
			pw_accepted_from(s, lfd, ls);
		if (s && pw_listener_opts_give(lfd, ls, s) < 0) {
			s->ops->set_fd(s->xp, -1);
			s->ops->detach(s->xp);
			free(s);
			s = NULL;
		}
	} else if (n == 1 && m->type == PW_MSG_CONN_TCP) {
		return pw_accept_tcp(lfd, ls, fds[0], &m->u.conn, flags, false);
	}
	if (s) {
		pw_conn_publish(sock, s);
		if (n == 2)
			pw_real.close(fds[0]);
		return sock;
	}
	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]);
	return -1;
}

int pw_accept_parked(int lfd, struct pw_sock *ls, int sock, void *xp,
		     const struct pw_wire_conn *body, int flags)
{
	struct pw_sock *s = NULL;

	/* The parked socket's file keeps the last connection's flags. */
	if (pw_accept_flags(sock, flags, false) == 0)
		s = pw_conn_new(&pw_xport_shm, body);
	if (!s) {
		pw_xport_shm.abort(xp);
		return -1;
	}
	s->xp = xp;
	atomic_store_explicit(&s->nonblock, (flags & SOCK_NONBLOCK) != 0, memory_order_relaxed);
	if (pw_listener_opts_give(lfd, ls, s) < 0) {
		pw_xport_shm.abort(xp);
		free(s);
		return -1;
	}
	pw_accepted_from(s, lfd, ls);
	pw_conn_publish(sock, s);
	pw_dbg("fd %d: accepted over podwire (conn %llu, a parked channel)", sock,
	       (unsigned long long)s->id);
	return sock;
}

/* The next connection in @ls's queue, as a new fd; -EAGAIN when there is
 * none (or no queue any more). */
static int pw_accept_queued(int lfd, struct pw_sock *ls, struct sockaddr *addr, socklen_t *alen,
			    int flags)
{
	for (;;) {
		int q = atomic_load_explicit(&ls->lq, memory_order_relaxed);
		uint8_t buf[256];
		int fds[PW_WIRE_MAX_FDS];
		unsigned n = 0;
		struct pw_msg m;

		if (q < 0)
			return -EAGAIN;
		ssize_t len = pw_msg_recv(q, buf, sizeof(buf), fds, &n, MSG_DONTWAIT);
		if (len == -EAGAIN || len == -EWOULDBLOCK)
			return -EAGAIN;
		if (len == 0) {
			/* The router is gone and the queue empty. */
			pw_lq_close(lfd, ls);
			return -EAGAIN;
		}
		if (len < 0) {
			/* A connection whose fds could not be received (no fd
			 * left: it is lost, as the kernel would refuse it). */
			if (len == -EPROTO)
				continue;
			return (int)len;
		}
		if (pw_msg_parse(buf, (size_t)len, n, &m) < 0) {
			for (unsigned i = 0; i < n; i++)
				pw_real.close(fds[i]);
			continue;
		}
		int fd = pw_accept_adopt(lfd, ls, &m, (int)n, fds, flags);
		if (fd < 0)
			continue; /* refused: as one the client aborted */
		struct pw_sock *s = pw_fdtab_get(fd);
		pw_dbg("fd %d: accepted over podwire (conn %llu)", fd,
		       (unsigned long long)m.u.conn.id);
		pw_copy_addr(&s->peer, s->family, addr, alen);
		return fd;
	}
}

/* Where connections may wait for accept(): the kernel's backlog, or ours
 * (the accept queue, a claimed parked channel). */
#define PW_ACC_KERNEL 0x1
#define PW_ACC_QUEUE  0x2 /* the accept queue */
#define PW_ACC_PARKED 0x4 /* pq: claimed parked channels, the underlay socket's connections */
#define PW_ACC_OURS   (PW_ACC_QUEUE | PW_ACC_PARKED)

/* A blocking accept on @lfd: wait for the queue, the parked channels or the
 * kernel, as long as SO_RCVTIMEO allows. A mask of PW_ACC_*, or -1. */
static int pw_accept_wait(int lfd, struct pw_sock *ls)
{
	int q = atomic_load_explicit(&ls->lq, memory_order_relaxed);
	/* A negative fd is skipped by poll(2). */
	struct pollfd p[3] = { { .fd = lfd, .events = POLLIN },
			       { .fd = q, .events = POLLIN },
			       { .fd = pw_reuse_ready_fd(ls), .events = POLLIN } };
	int ms = pw_listener_rcvtimeo(lfd, ls);
	int r = pw_real.poll(p, 3, ms > 0 ? ms : -1);

	if (r < 0)
		return -1; /* EINTR: as accept() interrupted by a signal */
	if (r == 0)
		return pw_fail(EAGAIN);
	/* (A hang-up of the queue is ours too: the router gone, it closes.) */
	return (p[0].revents ? PW_ACC_KERNEL : 0) | (p[1].revents ? PW_ACC_QUEUE : 0) |
	       (p[2].revents ? PW_ACC_PARKED : 0);
}

/* A connection of ours: from pq or the next in the queue (those of @ready,
 * PW_ACC_*), the queue first if @queue_first; -EAGAIN if none has one. */
static int pw_accept_ours(int lfd, struct pw_sock *ls, struct sockaddr *addr, socklen_t *alen,
			  int flags, int ready, bool queue_first)
{
	for (int i = 0; i < 2; i++) {
		bool queue = (i == 0) == queue_first;
		if (!(ready & (queue ? PW_ACC_QUEUE : PW_ACC_PARKED)))
			continue;
		if (queue) {
			int fd = pw_accept_queued(lfd, ls, addr, alen, flags);
			if (fd != -EAGAIN)
				return fd;
			continue;
		}
		/* A claimed channel's client is already writing. */
		int fd = pw_reuse_accept(lfd, ls, flags);
		if (fd >= 0) {
			struct pw_sock *s = pw_fdtab_get(fd);
			pw_copy_addr(&s->peer, s->family, addr, alen);
			return fd;
		}
	}
	return -EAGAIN;
}

/* The kernel's accept4(); out of fds while parked channels hold some
 * (reuse.c), theirs go and it tries again. */
static int pw_kernel_accept(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	int fd = pw_real.accept4(lfd, addr, alen, flags);

	if (fd < 0 && errno == EMFILE && pw_reuse_release_fds())
		fd = pw_real.accept4(lfd, addr, alen, flags);
	return fd;
}

PW_EXPORT int accept4(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	pw_ensure();
	struct pw_sock *ls = pw_fdtab_get(lfd);

	if (!ls || ls->kind != PW_K_LISTEN) {
		int fd = pw_kernel_accept(lfd, addr, alen, flags);
		pw_fresh_set(fd, false);
		return fd;
	}
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return pw_fail(EINVAL);
	/* A blocking accept waits for any first: no look at an empty queue
	 * before the kernel's connection. */
	bool wait = !pw_sock_nonblock_of(ls, lfd);
	for (;;) {
		if (atomic_load_explicit(&ls->lq, memory_order_relaxed) < 0 &&
		    atomic_load_explicit(&ls->pq, memory_order_relaxed) < 0)
			return pw_kernel_accept(lfd, addr, alen, flags);
		int ready = PW_ACC_KERNEL | PW_ACC_OURS;
		/* Another node's pooled connection is cheap to look for: a
		 * poll(2) fewer for a server that polled before it accepts.
		 * (Not on the kernel's turn, as below: it does not starve.) */
		if (wait && atomic_load_explicit(&ls->ul, memory_order_relaxed) >= 0 &&
		    atomic_load_explicit(&ls->acc_turn, memory_order_relaxed) % 3 != 2) {
			int fd = pw_reuse_accept(lfd, ls, flags);
			if (fd >= 0) {
				atomic_fetch_add_explicit(&ls->acc_turn, 1, memory_order_relaxed);
				struct pw_sock *s = pw_fdtab_get(fd);
				pw_copy_addr(&s->peer, s->family, addr, alen);
				return fd;
			}
		}
		if (wait && (ready = pw_accept_wait(lfd, ls)) < 0)
			return -1;
		/* Three sources feed one listener, and they take turns: none
		 * waits while another keeps coming (clients that reuse channels
		 * as fast as they are taken would starve the kernel's). */
		unsigned turn =
			atomic_fetch_add_explicit(&ls->acc_turn, 1, memory_order_relaxed) % 3;
		if (turn == 2 && (ready & PW_ACC_KERNEL)) {
			int fd = pw_kernel_accept(lfd, addr, alen, flags);
			if (fd >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				return fd;
			ready &= ~PW_ACC_KERNEL; /* (non-blocking: it said so) */
		}
		if (ready & PW_ACC_OURS) {
			int fd = pw_accept_ours(lfd, ls, addr, alen, flags, ready, turn == 1);
			if (fd != -EAGAIN)
				return fd >= 0 ? fd : pw_fail(-fd);
		}
		if (ready & PW_ACC_KERNEL)
			return pw_kernel_accept(lfd, addr, alen, flags);
		if (!wait)
			return pw_fail(EAGAIN);
	}
}

PW_EXPORT int accept(int lfd, struct sockaddr *addr, socklen_t *alen)
{
	return accept4(lfd, addr, alen, 0);
}
