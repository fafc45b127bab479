// SPDX-License-Identifier: MIT
/*
 * Seccomp: stepping aside for a sandboxed process.
 */
#include "preload.h"

/* ---- seccomp: stepping aside ---- */

/*
 * A process in seccomp mode dies (or gets an error) for any system call its
 * filter does not expect, and the library's calls are not the application's:
 * OpenSSH's pre-authentication child allows read and write but not recvfrom,
 * sendto, fcntl or sched_setaffinity. So, before a filter is installed
 * (prctl(PR_SET_SECCOMP), or seccomp() through libc's syscall()), the
 * library steps aside for the process:
 *   - each accelerated connection becomes a kernel stream that podwired
 *     relays to the channel, if the process can still reach the router and
 *     receive a descriptor; the kernel then answers every call on it;
 *   - if it cannot (OpenSSH has chrooted, changed user and set
 *     RLIMIT_NOFILE to its open fds by then), the connection stays a channel
 *     that touches its socket with read, write and poll only
 *     (restrict_io, xport.h), and the library's waits use the application's
 *     own poll, select or epoll call;
 *   - registered listeners are dropped (new clients use the kernel), and no
 *     new connection is accelerated.
 * A process that starts under a filter (container runtimes put every
 * process under one) is accelerated as usual: see docs/PRELOAD.md. A filter
 * installed with a bare system call instruction is not seen.
 */
#define PW_SECCOMP_MODE_STRICT	   1
#define PW_SECCOMP_MODE_FILTER	   2
#define PW_SECCOMP_SET_MODE_STRICT 0
#define PW_SECCOMP_SET_MODE_FILTER 1

static pthread_mutex_t pw_restrict_lock = PTHREAD_MUTEX_INITIALIZER;

struct pw_swap {
	const struct pw_sock *s;
	int stream;
};

/* Put the stream under @fd if it refers to the swapped connection. */
static bool pw_restrict_swap_one(int fd, struct pw_sock *s, void *arg)
{
	const struct pw_swap *w = arg;

	if (s != w->s)
		return true;
	int fdfl = pw_real.fcntl(fd, F_GETFD);
	pw_ep_swap_file(fd, true);
	pw_real.dup3(w->stream, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	pw_ep_swap_file(fd, false);
	/* Not freed: another thread may be inside a call on it. */
	pw_fdtab_take(fd);
	return true;
}

static bool pw_highest_fd(int fd, struct pw_sock *s, void *arg)
{
	(void)s;
	*(int *)arg = fd;
	return true;
}

/* Can this process still get a relayed stream for each connection: reach
 * the router, receive a descriptor and put it on every fd number? */
static bool pw_restrict_can_relay(void)
{
	struct rlimit rl;
	int high = -1;

	if (!pw_ctl_reachable() || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return false;
	pw_fdtab_each(pw_highest_fd, &high);
	/* dup3 onto fd N needs N below the limit; a received fd needs a free
	 * number below it, as does this probe. */
	if (high >= 0 && (rlim_t)high >= rl.rlim_cur)
		return false;
	int probe = pw_real.fcntl(0, F_DUPFD_CLOEXEC, 0);
	if (probe < 0)
		probe = pw_real.fcntl(high >= 0 ? high : 2, F_DUPFD_CLOEXEC, 0);
	if (probe < 0)
		return false;
	pw_real.close(probe);
	return true;
}

struct pw_restriction {
	bool relay;
	unsigned restricted;
};

static bool pw_restrict_one(int fd, struct pw_sock *s, void *arg)
{
	struct pw_restriction *r = arg;

	if (s->kind == PW_K_VIRT) /* a kernel socket already */
		return true;
	if (s->kind == PW_K_LISTEN) {
		/* Its queue's connections could not be taken here, nor the
		 * claims of its parked channels. */
		pw_lq_close(fd, s);
		pw_reuse_listener_gone(s);
		pw_fdtab_take(fd);
		return true;
	}
	int stream = r->relay ? pw_relay_stream(fd, s, PW_RELAY_NOW) : -1;
	if (stream >= 0) {
		struct pw_swap w = { .s = s, .stream = stream };
		pw_fdtab_each(pw_restrict_swap_one, &w);
		pw_real.close(stream);
	} else {
		s->ops->restrict_io(s->xp); /* once per fd of it: harmless */
		r->restricted++;
	}
	return true;
}

static void pw_restrict(void)
{
	pthread_mutex_lock(&pw_restrict_lock);
	if (pw_cfg.restricted) {
		pthread_mutex_unlock(&pw_restrict_lock);
		return;
	}
	/* (Nothing accelerated, nothing to ask the router.) */
	bool any = atomic_load_explicit(&pw_nconns, memory_order_relaxed) ||
		   atomic_load_explicit(&pw_nlisten, memory_order_relaxed);
	struct pw_restriction r = { .relay = any && pw_restrict_can_relay() };
	pw_fdtab_each(pw_restrict_one, &r);
	pw_reuse_drop_all();
	if (!r.restricted)
		atomic_store_explicit(&pw_nconns, 0, memory_order_relaxed);
	atomic_store_explicit(&pw_nlisten, 0, memory_order_relaxed);
	pw_cfg.disabled = true;
	pw_cfg.restricted = true; /* and silent from now on: see pw_plog() */
	pw_ctl_close();
	pthread_mutex_unlock(&pw_restrict_lock);
}

PW_EXPORT int prctl(int option, ...)
{
	unsigned long a[4];
	va_list ap;

	pw_ensure();
	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP &&
	    (a[0] == PW_SECCOMP_MODE_STRICT || (a[0] == PW_SECCOMP_MODE_FILTER && a[1])))
		pw_restrict();
	return pw_real.prctl ? pw_real.prctl(option, a[0], a[1], a[2], a[3]) : pw_fail(ENOSYS);
}

PW_EXPORT long syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	pw_ensure();
	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	/* libseccomp probes with a NULL program: that installs nothing. */
	if ((nr == SYS_seccomp && (a[0] == PW_SECCOMP_SET_MODE_STRICT ||
				   (a[0] == PW_SECCOMP_SET_MODE_FILTER && a[2]))) ||
	    (nr == SYS_prctl && a[0] == PR_SET_SECCOMP &&
	     (a[1] == PW_SECCOMP_MODE_STRICT || (a[1] == PW_SECCOMP_MODE_FILTER && a[2])))) {
		pw_restrict();
	}
	return pw_real.syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}
