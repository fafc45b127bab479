/* SPDX-License-Identifier: MIT */
/*
 * Run a program and capture what it prints: the one way the tools start
 * helper programs (ip, ethtool, ovs-vsctl...). Not for library code.
 */
#ifndef PW_COMMON_CHILD_H
#define PW_COMMON_CHILD_H

#include <stddef.h>

enum pw_spawn_stderr {
	PW_SPAWN_STDERR_INHERIT, /* the caller's stderr */
	PW_SPAWN_STDERR_CAPTURE, /* into the output, with stdout */
	PW_SPAWN_STDERR_NULL,	 /* /dev/null */
};

struct pw_spawn_opts {
	enum pw_spawn_stderr err;
	/* > 0: kill the program (and its process group, which it leads) once
	 * this many ms have passed; 0: wait as long as it runs. */
	int timeout_ms;
};

/*
 * Run @argv (argv[0] searched in PATH) with stdin from /dev/null, no signal
 * blocked, and SIGINT, SIGTERM, SIGHUP and SIGPIPE at their defaults;
 * capture its stdout into @out (NUL-terminated; what does not fit in @cap
 * bytes is read and dropped) and wait for it. @o may be NULL (defaults).
 *
 * Returns its wait status (>= 0, see waitpid(2)). Errors: -ETIMEDOUT it ran
 * out of time (it was killed and reaped); -ENOENT and the other errors of
 * posix_spawnp(3), pipe2(2), poll(2) and waitpid(2).
 */
int pw_spawn_capture(char *const argv[], const struct pw_spawn_opts *o, char *out, size_t cap);

#endif /* PW_COMMON_CHILD_H */
