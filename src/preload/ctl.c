// SPDX-License-Identifier: MIT
/*
 * The library's side of the control protocol: one SOCK_SEQPACKET connection
 * to podwired per process, opened lazily, reopened after fork and after the
 * router restarts. Requests are synchronous and serialised by a mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "preload.h"

#define PW_CTL_TIMEOUT_MS 1000
#define PW_CTL_RETRY_NS	  200000000ull /* after a failure, wait before trying again */

static pthread_mutex_t pw_ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static int pw_ctl_fd = -1;
static uint32_t pw_ctl_seq;
static uint64_t pw_ctl_failed_at;
static bool pw_ctl_have_prefixes;
static pid_t pw_ctl_router_pid = -1; /* as this process sees it (0: another pid namespace) */
/* Replies land here, under the lock: never on an application thread's stack
 * (a thread may have as little as 16 KiB of it). */
static uint8_t pw_ctl_buf[PW_WIRE_MAX] __attribute__((aligned(8)));

static void pw_ctl_drop(void)
{
	if (pw_ctl_fd >= 0)
		pw_real.close(pw_ctl_fd);
	pw_ctl_fd = -1;
	pw_ctl_failed_at = pw_now_ns();
}

/* Send @type and wait for its reply, with the lock held. */
static int pw_ctl_call_locked(uint16_t type, const void *body, size_t len, const int *fds,
			      unsigned nfds, struct pw_msg *ret, int ret_fds[PW_WIRE_MAX_FDS])
{
	uint8_t *buf = pw_ctl_buf;
	uint32_t seq = ++pw_ctl_seq;
	unsigned got = 0;
	int r = pw_msg_send(pw_ctl_fd, type, seq, body, len, NULL, 0, fds, nfds);

	if (r < 0)
		return r;
	for (;;) {
		struct pollfd pfd = { .fd = pw_ctl_fd, .events = POLLIN };
		int n = pw_real.poll(&pfd, 1, PW_CTL_TIMEOUT_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ETIMEDOUT : -errno;
		ssize_t m = pw_msg_recv(pw_ctl_fd, buf, PW_WIRE_MAX, ret_fds, &got, MSG_DONTWAIT);
		if (m == -EAGAIN)
			continue;
		if (m <= 0)
			return m == 0 ? -ECONNRESET : (int)m;
		r = pw_msg_parse(buf, (size_t)m, got, ret);
		if (r == 0 && (int32_t)(ret->seq - seq) < 0) {
			/* The late answer to a call that timed out. */
			for (unsigned i = 0; i < got; i++)
				pw_real.close(ret_fds[i]);
			continue;
		}
		if (r < 0 || ret->seq != seq) {
			for (unsigned i = 0; i < got; i++)
				pw_real.close(ret_fds[i]);
			return r < 0 ? r : -EPROTO;
		}
		return (int)got;
	}
}

int pw_ctl_dial(int flags)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, r;

	if (pw_addr_unix(pw_cfg.socket_path, &a) < 0)
		return -ENAMETOOLONG;
	fd = pw_real.socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
	if (fd < 0)
		return -errno;
	/* Out of the application's low fd numbers. */
	int high = pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 100);
	if (high >= 0) {
		pw_real.close(fd);
		fd = high;
	}
	/* (Non-blocking, it connects at once or not at all: a Unix socket.) */
	if (pw_real.connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		pw_real.close(fd);
		return r;
	}
	return fd;
}

static int pw_ctl_open_locked(void)
{
	struct pw_wire_hello hello = { 0 };
	struct pw_msg m = { 0 };
	int fds[PW_WIRE_MAX_FDS];
	int r;

	if (pw_ctl_fd >= 0)
		return 0;
	if (pw_cfg.restricted) /* seccomp: never again (see pw_restrict) */
		return -EPERM;
	if (pw_ctl_failed_at && pw_now_ns() - pw_ctl_failed_at < PW_CTL_RETRY_NS)
		return -ECONNREFUSED;
	pw_ctl_fd = pw_ctl_dial(0);
	if (pw_ctl_fd < 0) {
		r = pw_ctl_fd;
		pw_dbg("router at %s: %s", pw_cfg.socket_path, strerror(-r));
		pw_ctl_fd = -1;
		pw_ctl_failed_at = pw_now_ns();
		return r;
	}
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (pw_real.getsockopt(pw_ctl_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		pw_ctl_router_pid = cred.pid;
	r = pw_ctl_call_locked(PW_MSG_HELLO, &hello, sizeof(hello), NULL, 0, &m, fds);
	if (r < 0 || m.type != PW_MSG_HELLO_OK) {
		pw_warn("router at %s: bad hello reply (%s)", pw_cfg.socket_path,
			strerror(r < 0 ? -r : EPROTO));
		pw_ctl_drop();
		return r < 0 ? r : -EPROTO;
	}
	if (!pw_cfg.prefix_from_env) {
		struct pw_prefixes t;

		pw_prefixes_from_wire(&m, &t);
		if (pw_prefixes_publish(&t) == 0)
			pw_ctl_have_prefixes = true;
	}
	pw_ctl_failed_at = 0;
	pw_dbg("connected to router %s", pw_cfg.socket_path);
	return 0;
}

int pw_ctl_call(uint16_t type, const void *body, size_t len, const int *fds, unsigned nfds,
		struct pw_msg *ret, int ret_fds[PW_WIRE_MAX_FDS])
{
	int r;

	pthread_mutex_lock(&pw_ctl_lock);
	r = pw_ctl_open_locked();
	if (r == 0) {
		r = pw_ctl_call_locked(type, body, len, fds, nfds, ret, ret_fds);
		ret->entries = NULL; /* they live in pw_ctl_buf: not past the lock */
		/* A router that went away or spoke nonsense: reconnect next time. */
		if (r < 0 && r != -ENOENT)
			pw_ctl_drop();
	}
	pthread_mutex_unlock(&pw_ctl_lock);
	return r;
}

bool pw_ctl_reachable(void)
{
	pthread_mutex_lock(&pw_ctl_lock);
	bool yes = pw_ctl_open_locked() == 0;
	pthread_mutex_unlock(&pw_ctl_lock);
	return yes;
}

bool pw_ctl_made_by_router(pid_t creator)
{
	pthread_mutex_lock(&pw_ctl_lock);
	pw_ctl_open_locked();
	bool yes = pw_ctl_fd >= 0 && creator == pw_ctl_router_pid;
	pthread_mutex_unlock(&pw_ctl_lock);
	return yes;
}

bool pw_ctl_prefixes_known(void)
{
	if (pw_cfg.prefix_from_env || pw_ctl_have_prefixes)
		return true;
	pthread_mutex_lock(&pw_ctl_lock);
	pw_ctl_open_locked();
	pthread_mutex_unlock(&pw_ctl_lock);
	return pw_ctl_have_prefixes;
}

void pw_ctl_close(void)
{
	pthread_mutex_lock(&pw_ctl_lock);
	if (pw_ctl_fd >= 0)
		pw_real.close(pw_ctl_fd);
	pw_ctl_fd = -1;
	pthread_mutex_unlock(&pw_ctl_lock);
}

/* In the child after fork: the parent's connection is not ours to use. */
void pw_ctl_atfork_child(void)
{
	pthread_mutex_init(&pw_ctl_lock, NULL);
	if (pw_ctl_fd >= 0)
		pw_real.close(pw_ctl_fd);
	pw_ctl_fd = -1;
	pw_ctl_failed_at = 0;
}
