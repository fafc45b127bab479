/* SPDX-License-Identifier: MIT */
/*
 * podwire lab: a multi-node cluster made of network namespaces (docs/LAB.md).
 * lab.c holds the subcommands and the topology; lab_sys.c the process,
 * namespace and file plumbing they share. Private to the podwire CLI.
 */
#ifndef PW_LAB_H
#define PW_LAB_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Entry point of `podwire lab SUBCOMMAND ...`; argv[0] is "lab". Prints its
 * own errors. Returns the process exit status: 0 success, 1 failure, 2 usage
 * error. `lab exec` does not return on success: it becomes the command.
 */
int pw_lab_main(int argc, char **argv);

/* ---- lab_sys.c ---- */

/* Set by SIGINT, SIGTERM or SIGHUP while pw_lab_catch_signals() is active. */
extern _Atomic int pw_lab_stop;

static inline bool pw_lab_stopped(void)
{
	return atomic_load_explicit(&pw_lab_stop, memory_order_relaxed) != 0;
}

/* Catch SIGINT/SIGTERM/SIGHUP into pw_lab_stop (so that `up` can roll back). */
void pw_lab_catch_signals(void);

/*
 * Run argv (argv[0] looked up in PATH, no shell) with stdin on /dev/null and
 * its output captured; wait for it. Returns 0 if it exited 0. Otherwise, unless
 * quiet, prints the command line, how it ended and its output to stderr, and
 * returns -1; -EINTR if pw_lab_stop was set before it ran.
 */
int pw_lab_run(char *const argv[], bool quiet);

/*
 * Format a command line and run it with pw_lab_run(). The line is split on
 * spaces into argv, so each formatted word must be free of whitespace: callers
 * pass only validated names, numbers and addresses, never paths.
 */
int pw_lab_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run argv and capture its stdout into buf (NUL-terminated, truncated). 0 or -errno/-1. */
int pw_lab_capture(char *const argv[], char *buf, size_t len);

/* An O_CLOEXEC fd on the named network namespace (/run/netns/NAME), or -errno. */
int pw_lab_ns_open(const char *ns);

/* Write val to the file at path (e.g. /proc/sys/net/...) from inside namespace ns. 0 or -errno. */
int pw_lab_ns_write(const char *ns, const char *path, const char *val);

/*
 * Kill every process in the named namespaces: SIGTERM, then SIGKILL for those
 * still there after a second. Returns how many survived (0 normally).
 */
size_t pw_lab_ns_kill(char *const *ns, size_t n);

/* The start time of pid (field 22 of /proc/PID/stat), 0 if it is gone or a zombie. */
unsigned long long pw_lab_proc_start(pid_t pid);

/* Remove a directory tree (no symlink following). 0, or -errno of the first failure. */
int pw_lab_rmtree(const char *path);

#endif /* PW_LAB_H */
