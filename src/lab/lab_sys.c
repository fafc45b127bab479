// SPDX-License-Identifier: MIT
/*
 * podwire lab plumbing: running iproute2 without a shell, entering named
 * network namespaces, finding and killing the processes inside them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/child.h"
#include "lab.h"

_Atomic int pw_lab_stop; /* lock-free int: safe to store from a handler */

static void pw_lab_signal_handle(int sig)
{
	(void)sig;
	atomic_store_explicit(&pw_lab_stop, 1, memory_order_relaxed);
}

void pw_lab_signals_catch(void)
{
	struct sigaction sa = { .sa_handler = pw_lab_signal_handle, .sa_flags = SA_RESTART };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

static void pw_lab_sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Run @argv, its stdout (and stderr too if @both) captured into @buf:
 * the wait status, or -errno if it could not start. */
static int pw_lab_argv_spawn(char *const argv[], bool both, char *buf, size_t len)
{
	struct pw_spawn_opts o = { .err = both ? PW_SPAWN_STDERR_CAPTURE
					       : PW_SPAWN_STDERR_INHERIT };

	return pw_spawn_capture(argv, &o, buf, len);
}

int pw_lab_argv_run(char *const argv[], bool quiet)
{
	char out[1024], line[1024];
	size_t off = 0;
	int st;

	if (pw_lab_stop_pending()) {
		if (!quiet)
			fprintf(stderr, "podwire lab: interrupted\n");
		return -EINTR;
	}
	st = pw_lab_argv_spawn(argv, true, out, sizeof(out));
	if (st == 0)
		return 0;
	if (quiet)
		return -1;
	line[0] = '\0';
	for (size_t i = 0; argv[i] && off < sizeof(line); i++)
		off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s", i ? " " : "",
					argv[i]);
	if (st < 0) {
		fprintf(stderr, "podwire lab: cannot run '%s': %s%s\n", line, strerror(-st),
			st == -ENOENT ? " (is iproute2 installed?)" : "");
		return -1;
	}
	size_t n = strlen(out);
	while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
	if (WIFEXITED(st))
		fprintf(stderr, "podwire lab: '%s' failed with exit status %d%s%s\n", line,
			WEXITSTATUS(st), n ? ": " : "", out);
	else
		fprintf(stderr, "podwire lab: '%s' was killed by signal %d\n", line,
			WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return -1;
}

int pw_lab_cmdline_run(const char *fmt, ...)
{
	char line[512], *argv[48];
	size_t n = 0;
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(line))
		return -ENAMETOOLONG;
	for (char *save = NULL, *w = strtok_r(line, " ", &save); w;
	     w = strtok_r(NULL, " ", &save)) {
		if (n + 1 >= sizeof(argv) / sizeof(argv[0]))
			return -E2BIG;
		argv[n++] = w;
	}
	argv[n] = NULL;
	return n ? pw_lab_argv_run(argv, false) : -EINVAL;
}

int pw_lab_argv_capture(char *const argv[], char *ret_buf, size_t len)
{
	int st = pw_lab_argv_spawn(argv, false, ret_buf, len);

	if (st < 0)
		return st;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int pw_lab_ns_open(const char *ns)
{
	char path[256];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), PW_LAB_NETNS_DIR "/%s", ns) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

bool pw_lab_ns_exists(const char *ns)
{
	char path[256];

	snprintf(path, sizeof(path), PW_LAB_NETNS_DIR "/%s", ns);
	return access(path, F_OK) == 0;
}

int pw_lab_ns_write(const char *ns, const char *path, const char *val)
{
	int self = -1, nsfd = -1, fd = -1, r;
	size_t len = strlen(val);

	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return -errno;
	nsfd = pw_lab_ns_open(ns);
	if (nsfd < 0) {
		r = nsfd;
		goto out;
	}
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		r = -errno;
		goto out;
	}
	/* /proc/sys/net resolves to the namespace of the process that opens it. */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	r = fd < 0 ? -errno : 0;
	if (fd >= 0 && write(fd, val, len) != (ssize_t)len)
		r = -errno;
	if (setns(self, CLONE_NEWNET) < 0) {
		/* Stranded in the wrong namespace: nothing later would be right. */
		perror("podwire lab: cannot return to the original network namespace");
		abort();
	}
out:
	pw_lab_fd_close(fd);
	pw_lab_fd_close(nsfd);
	close(self);
	return r;
}

struct pw_lab_nsid {
	dev_t dev;
	ino_t ino;
};

/* Pids (not ours) whose network namespace is one of ids[]; *ret_n of them in a malloc'd array. */
static pid_t *pw_lab_ns_pids_find(const struct pw_lab_nsid *ids, size_t nids, size_t *ret_n)
{
	DIR *d = opendir("/proc");
	pid_t *pids = NULL, self = getpid();
	size_t cap = 0;
	struct dirent *e;

	*ret_n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		char path[300], *end;
		struct stat st;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", e->d_name);
		/* Fails for zombies (no namespaces left) and vanished processes. */
		if (stat(path, &st) < 0)
			continue;
		for (size_t i = 0; i < nids; i++) {
			if (st.st_dev != ids[i].dev || st.st_ino != ids[i].ino)
				continue;
			if (*ret_n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				pid_t *np = realloc(pids, ncap * sizeof(*np));

				if (!np)
					goto out;
				pids = np;
				cap = ncap;
			}
			pids[(*ret_n)++] = (pid_t)pid;
			break;
		}
	}
out:
	closedir(d);
	return pids;
}

size_t pw_lab_ns_kill(char *const *ns, size_t n)
{
	struct pw_lab_nsid *ids = calloc(n ? n : 1, sizeof(*ids));
	static const int sigs[] = { SIGTERM, SIGKILL };
	size_t nids = 0, left = 0;

	if (!ids)
		return n;
	for (size_t i = 0; i < n; i++) {
		char path[256];
		struct stat st;

		snprintf(path, sizeof(path), PW_LAB_NETNS_DIR "/%s", ns[i]);
		if (stat(path, &st) == 0)
			ids[nids++] = (struct pw_lab_nsid){ st.st_dev, st.st_ino };
	}
	for (size_t s = 0; s < sizeof(sigs) / sizeof(sigs[0]) && nids; s++) {
		pid_t *pids = pw_lab_ns_pids_find(ids, nids, &left);

		for (size_t i = 0; i < left; i++)
			kill(pids[i], sigs[s]);
		free(pids);
		/* A second for SIGTERM, three for SIGKILL to take effect. */
		for (int t = 0; left && t < (s ? 150 : 50); t++) {
			pw_lab_sleep_ms(20);
			free(pw_lab_ns_pids_find(ids, nids, &left));
		}
		if (!left)
			break;
	}
	free(ids);
	return left;
}

unsigned long long pw_lab_proc_start_time(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	ssize_t n;
	int fd;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* "pid (comm) S ..." where comm may hold spaces and parentheses. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	p += 2;
	/* p is field 3 (state); the start time is field 22. */
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (p)
		start = strtoull(p, NULL, 10);
	return start;
}

static int pw_lab_tree_remove_one(const char *path, const struct stat *st, int flag,
				  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

int pw_lab_tree_remove(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, pw_lab_tree_remove_one, 16, FTW_DEPTH | FTW_PHYS) ? -(errno ? errno : EIO)
									    : 0;
}

pid_t pw_lab_ns_spawn(const char *ns, char *const argv[], const char *log)
{
	int nsfd = pw_lab_ns_open(ns), logfd = -1, nullfd = -1, err;
	pid_t pid = -1;

	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || logfd < 0 || nullfd < 0) {
		err = nsfd < 0 ? -nsfd : errno;
		pw_lab_err("cannot prepare %s in %s: %s", argv[0], ns, strerror(err));
		pid = -err;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		err = errno;
		pw_lab_err("fork: %s", strerror(err));
		pid = -err;
		goto out;
	}
	if (pid == 0) {
		sigset_t none;

		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (setns(nsfd, CLONE_NEWNET) < 0 || setsid() < 0 || dup2(nullfd, 0) < 0 ||
		    dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0) {
			dprintf(logfd, "podwire lab: cannot start %s: %s\n", argv[0],
				strerror(errno));
			_exit(127);
		}
		unsetenv("LD_PRELOAD");
		execvp(argv[0], argv);
		dprintf(2, "podwire lab: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
out:
	pw_lab_fd_close(nsfd);
	pw_lab_fd_close(logfd);
	pw_lab_fd_close(nullfd);
	return pid;
}
