// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "util.h"

extern char **environ;

static int pw_spawn_start(char *const argv[], const struct pw_spawn_opts *o, int out_fd,
			  pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dfl;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
	pid_t pid;
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (o->err == PW_SPAWN_STDERR_CAPTURE)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 2);
	else if (o->err == PW_SPAWN_STDERR_NULL)
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init(&at);
	/* A daemon's loop may block or catch these; the program starts clean. */
	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &dfl);
	if (o->timeout_ms > 0) {
		/* Its own group, so that a timeout kills what it started too. */
		posix_spawnattr_setpgroup(&at, 0);
		flags |= POSIX_SPAWN_SETPGROUP;
	}
	posix_spawnattr_setflags(&at, flags);
	r = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r)
		return -r;
	*ret_pid = pid;
	return 0;
}

static int pw_spawn_ms_left(uint64_t deadline)
{
	uint64_t now = pw_now_ns();

	if (!deadline)
		return -1;
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* Read @fd to its end or the deadline; keep what fits. 0, -ETIMEDOUT, -errno. */
static int pw_spawn_read(int fd, uint64_t deadline, char *out, size_t cap)
{
	size_t len = 0;

	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int left = pw_spawn_ms_left(deadline);
		char tmp[512];

		if (!left)
			return -ETIMEDOUT;
		int r = poll(&pfd, 1, left);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return -errno;
		if (n == 0)
			return 0;
		if (n > 0 && cap && len + 1 < cap) {
			size_t k = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;
			memcpy(out + len, tmp, k);
			len += k;
			out[len] = '\0';
		}
	}
}

/* Reap @pid by the deadline (its output is closed: it is exiting). */
static int pw_spawn_wait(pid_t pid, uint64_t deadline, int *ret_status)
{
	for (;;) {
		int st;
		pid_t w = waitpid(pid, &st, deadline ? WNOHANG : 0);

		if (w == pid) {
			*ret_status = st;
			return 0;
		}
		if (w < 0 && errno != EINTR)
			return -errno;
		if (w == 0) {
			if (!pw_spawn_ms_left(deadline))
				return -ETIMEDOUT;
			nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
		}
	}
}

int pw_spawn_capture(char *const argv[], const struct pw_spawn_opts *o, char *out, size_t cap)
{
	static const struct pw_spawn_opts defaults = { 0 };
	int p[2], st = 0, r;
	pid_t pid = -1;

	if (!o)
		o = &defaults;
	uint64_t deadline =
		o->timeout_ms > 0 ? pw_now_ns() + (uint64_t)o->timeout_ms * 1000000u : 0;
	if (cap)
		out[0] = '\0';
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	r = pw_spawn_start(argv, o, p[1], &pid);
	close(p[1]);
	if (r < 0 || pid <= 0) {
		close(p[0]);
		return r < 0 ? r : -ECHILD;
	}
	r = pw_spawn_read(p[0], deadline, out, cap);
	close(p[0]);
	if (r == 0)
		r = pw_spawn_wait(pid, deadline, &st);
	if (r < 0) {
		if (deadline) /* out of time, or we cannot watch it: it goes */
			kill(-pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		return r;
	}
	return st;
}
