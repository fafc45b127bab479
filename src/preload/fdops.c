// SPDX-License-Identifier: MIT
/*
 * Operations on fd numbers: close, dup, fcntl, ioctl, close_range.
 */
#include "preload.h"

/* ---- closing and duplicating ---- */

/* @fd no longer refers to @s. @closed: the kernel already closed @fd. */
static int pw_unref(struct pw_sock *s, int fd, bool closed)
{
	/* Release and acquire: the last holder sees every use of the others
	 * before it frees @s. */
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) > 1) {
		if (s->kind == PW_K_CONN && s->ops->fd(s->xp) == fd)
			s->ops->set_fd(s->xp, pw_find_other_fd(s, fd));
		return closed ? 0 : pw_real.close(fd);
	}
	if (s->kind == PW_K_LISTEN) {
		atomic_fetch_sub_explicit(&pw_nlisten, 1, memory_order_relaxed);
		/* Claims of its parked channels go back to the queue first
		 * (reuse.c). The router drops the listener when the queue's
		 * last holder, of every process that shares it, closes it. */
		pw_reuse_listener_gone(s);
		pw_lq_close(fd, s);
		free(s->acc_opts);
		free(s);
		return closed ? 0 : pw_real.close(fd);
	}
	if (s->kind == PW_K_VIRT) {
		if (!closed)
			pw_adapt_conn_closing(fd, s);
		free(s);
		return closed ? 0 : pw_real.close(fd);
	}
	atomic_fetch_sub_explicit(&pw_nconns, 1, memory_order_relaxed);
	pw_adapt_conn_closing(fd, s);
	pw_dbg("fd %d: last close (%s)", fd,
	       atomic_load_explicit(&s->shared, memory_order_relaxed) ? "shared" : "own");
	if (closed)
		s->ops->set_fd(s->xp, -1);
	if (atomic_load_explicit(&s->shared, memory_order_relaxed)) {
		/* Other processes may still use it; the kernel tells the peer
		 * when the last one closes. */
		s->ops->detach(s->xp);
		free(s->opts);
		free(s);
		return closed ? 0 : pw_real.close(fd);
	}
	/* As TCP: closing with unread data, or with a zero linger, resets. */
	struct pw_opt *lo = pw_opt_find(s, SOL_SOCKET, SO_LINGER);
	struct linger lg = { 0 };
	if (lo && lo->len >= sizeof(lg))
		memcpy(&lg, lo->val, sizeof(lg));
	if (s->ops->avail(s->xp) > 0 || (lg.l_onoff && lg.l_linger == 0))
		s->ops->abort(s->xp);
	else if (closed || pw_reuse_park(fd, s) < 0)
		s->ops->close(s->xp); /* orderly: the peer reads the rest, then EOF */
	free(s->opts);
	free(s);
	return 0;
}

PW_EXPORT int close(int fd)
{
	pw_ensure();
	unsigned slot = pw_fresh_take_adapt(fd);
	if (slot && slot <= PW_ADAPT_SLOTS)
		pw_adapt_kernel_closing(fd, slot);
	pw_fresh_set(fd, false);
	pw_spare_forget(fd);
	pw_ep_discard(fd);
	struct pw_sock *s = pw_fdtab_take(fd);
	if (!s)
		return pw_real.close(fd);
	/* A channel that may be parked keeps its file alive: its fd leaves
	 * the epoll sets by hand, as the kernel would on the last close. */
	if (s->kind == PW_K_CONN && atomic_load_explicit(&s->refs, memory_order_relaxed) == 1 &&
	    pw_reuse_may_park(s))
		pw_ep_leave_everywhere(fd);
	else if (s->kind == PW_K_CONN)
		pw_ep_forget_everywhere(fd);
	return pw_unref(s, fd, false);
}

int pw_dup_track(int oldfd, int newfd)
{
	struct pw_sock *s = pw_fdtab_get(oldfd);

	/* Two numbers for one socket: an option set through either is ours to
	 * miss, so neither is fresh. */
	pw_fresh_set(oldfd, false);
	pw_fresh_set(newfd, false);
	if (newfd >= 0 && s) {
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
		/* Registered through either number, the file's registrations
		 * are more than the shadow can take off by hand: no reuse. */
		atomic_store_explicit(&s->reusable, false, memory_order_relaxed);
		pw_fdtab_put(newfd, s);
	}
	return newfd;
}

PW_EXPORT int dup(int fd)
{
	pw_ensure();
	return pw_dup_track(fd, pw_real.dup(fd));
}

static int pw_dup_onto(int oldfd, int newfd, int flags, bool is_dup3)
{
	if (oldfd == newfd)
		return is_dup3 ? pw_fail(EINVAL) : (pw_real.fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd);
	struct pw_sock *old_target = pw_fdtab_get(newfd);
	int r = is_dup3 ? pw_real.dup3(oldfd, newfd, flags) : pw_real.dup2(oldfd, newfd);
	if (r < 0)
		return r;
	pw_spare_forget(newfd); /* (replaced: closed, as far as we know) */
	if (old_target && pw_fdtab_take(newfd) == old_target)
		pw_unref(old_target, newfd, true);
	return pw_dup_track(oldfd, r);
}

PW_EXPORT int dup2(int oldfd, int newfd)
{
	pw_ensure();
	return pw_dup_onto(oldfd, newfd, 0, false);
}

PW_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	pw_ensure();
	return pw_dup_onto(oldfd, newfd, flags, true);
}

PW_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	pw_ensure();
	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	int r = pw_real.fcntl(fd, cmd, arg);
	if (r < 0)
		return r;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return pw_dup_track(fd, r);
	if (cmd == F_SETFL || cmd == F_SETFD)
		pw_fresh_note_flag(fd, cmd == F_SETFD,
				   (arg & (cmd == F_SETFD ? FD_CLOEXEC : O_NONBLOCK)) != 0);
	/* Anything else that may change it (O_ASYNC, an owner, a lease). */
	if ((cmd == F_SETFL && (arg & (O_APPEND | O_ASYNC | O_DIRECT | O_NOATIME))) ||
	    (cmd != F_SETFL && cmd != F_SETFD && cmd != F_GETFL && cmd != F_GETFD))
		pw_fresh_note_odd(fd);
	struct pw_sock *s = pw_fdtab_get(fd);
	if (!s)
		return r;
	if (cmd == F_SETFL)
		pw_sock_set_nonblock(s, (arg & O_NONBLOCK) != 0);
	return r;
}

#ifdef __GLIBC__ /* musl's fcntl64 is a macro for fcntl */
PW_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));
#endif

PW_EXPORT int ioctl(int fd, pw_ioctl_req_t req, ...)
{
	va_list ap;
	void *arg;

	pw_ensure();
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	struct pw_sock *s = pw_fdtab_get(fd);
	if (!s && req != FIONBIO && req != FIOCLEX && req != FIONCLEX)
		pw_fresh_note_odd(fd); /* (FIOASYNC, an owner: more than the word says) */
	if (!s && (req == FIONBIO || req == FIOCLEX || req == FIONCLEX)) {
		int r = pw_real.ioctl(fd, req, arg);
		if (r == 0)
			pw_fresh_note_flag(fd, req != FIONBIO,
					   req == FIONBIO ? *(int *)arg != 0 : req == FIOCLEX);
		return r;
	}
	/* A listener's O_NONBLOCK is kept too: accept() reads it. */
	if (!s || (s->kind != PW_K_CONN && !(s->kind == PW_K_LISTEN && req == FIONBIO)))
		return pw_real.ioctl(fd, req, arg);
	if (req == FIONREAD) {
		ssize_t avail = s->ops->avail(s->xp);
		*(int *)arg = avail > 0 ? (int)(avail > INT32_MAX ? INT32_MAX : avail) : 0;
		return 0;
	}
	if (req == FIONBIO) {
		int r = pw_real.ioctl(fd, req, arg);
		if (r == 0)
			pw_sock_set_nonblock(s, *(int *)arg != 0);
		return r;
	}
	if (req == SIOCOUTQ) {
		*(int *)arg = 0;
		return 0;
	}
	return pw_real.ioctl(fd, req, arg);
}

/* ---- close_range, closefrom ---- */

static bool pw_forget_one(int fd, struct pw_sock *seen, void *arg)
{
	struct pw_sock *s = pw_fdtab_take(fd); /* what is there now */

	(void)seen;
	(void)arg;
	if (!s)
		return true;
	if (s->kind == PW_K_CONN)
		pw_ep_forget_everywhere(fd);
	pw_unref(s, fd, true);
	return true;
}

/* The kernel closed [first, last]: forget what we knew of those fds. */
static void pw_forget_range(unsigned first, unsigned last)
{
	pw_fdtab_each_in(first, last, pw_forget_one, NULL);
	pw_fresh_clear_range(first, last);
	pw_spare_forget_range(first, last);
	pw_ep_kicks_closed(first, last);
	for (unsigned fd = first; fd <= last && fd < 65536; fd++)
		pw_ep_discard((int)fd);
}

PW_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	pw_ensure();
	int r = pw_real.close_range ? pw_real.close_range(first, last, flags) : pw_fail(ENOSYS);
	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		pw_forget_range(first, last);
	return r;
}

PW_EXPORT void closefrom(int lowfd)
{
	pw_ensure();
	if (pw_real.closefrom)
		pw_real.closefrom(lowfd);
	pw_forget_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u);
}
