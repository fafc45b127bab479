// SPDX-License-Identifier: MIT
/* Running a helper program: its output and status, stderr in each mode,
 * truncation, a program that is not there, and a timeout that kills the
 * program and what it started. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../src/common/child.h"
#include "../../src/common/util.h"
#include "pw_test.h"

static int run(const char *script, enum pw_spawn_stderr err, int timeout_ms, char *out, size_t cap)
{
	char *argv[] = { "sh", "-c", (char *)script, NULL };
	struct pw_spawn_opts o = { .err = err, .timeout_ms = timeout_ms };

	return pw_spawn_capture(argv, &o, out, cap);
}

int main(void)
{
	char out[64];
	int st;

	st = run("echo hello; echo oops >&2; exit 3", PW_SPAWN_STDERR_NULL, 0, out, sizeof(out));
	PW_CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 3, "status %d", st);
	PW_CHECK(!strcmp(out, "hello\n"), "out \"%s\"", out);

	st = run("echo hello; echo oops >&2", PW_SPAWN_STDERR_CAPTURE, 0, out, sizeof(out));
	PW_CHECK(st == 0 && !strcmp(out, "hello\noops\n"), "status %d, out \"%s\"", st, out);

	/* More than fits: cut, NUL-terminated, and the program still ends. */
	st = run("yes 0123456789 | head -c 100000", PW_SPAWN_STDERR_NULL, 0, out, 8);
	PW_CHECK(st == 0 && strlen(out) == 7, "status %d, %zu bytes", st, strlen(out));

	/* Signals a daemon blocks are the program's defaults again. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	st = run("kill -TERM $$; sleep 5", PW_SPAWN_STDERR_NULL, 0, out, sizeof(out));
	PW_CHECK(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "status %d", st);
	sigprocmask(SIG_UNBLOCK, &set, NULL);

	char *missing[] = { "podwire-no-such-program", NULL };
	PW_CHECK_EQ(pw_spawn_capture(missing, NULL, out, sizeof(out)), -ENOENT);

	/* A timeout kills the program and its children, promptly. */
	uint64_t t0 = pw_now_ns();
	st = run("sleep 30 & sleep 30; echo late", PW_SPAWN_STDERR_NULL, 200, out, sizeof(out));
	uint64_t ms = (pw_now_ns() - t0) / 1000000;
	PW_CHECK(st == -ETIMEDOUT && ms < 5000, "status %d after %llu ms", st,
		 (unsigned long long)ms);
	PW_CHECK(!strcmp(out, ""), "out \"%s\"", out);
	return 0;
}
