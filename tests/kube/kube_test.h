/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the pwkube tests: run the API-server double (apiserver.py) as a
 * child that dies with us, talk to its /_test/ endpoints, temp dirs.
 * Everything started here is stopped at exit, also when a check fails.
 */
#ifndef PW_KUBE_TEST_H
#define PW_KUBE_TEST_H

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kube.h"
#include "../pw_test.h"

#define KT_MAX_DOUBLES 4

struct kt_double {
	pid_t pid;
	int port;
	char url[80];
};

static const char *kt_script;
static struct kt_double *kt_doubles[KT_MAX_DOUBLES];
static char kt_tmp[256];

static inline double kt_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void kt_msleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* SIGTERM, then wait up to 5 s; returns the exit status (or -1). */
static inline int kt_double_stop(struct kt_double *d)
{
	int st = -1;

	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(d->pid, &st, WNOHANG);

		if (r == d->pid) {
			d->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		kt_msleep(10);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &st, 0);
	d->pid = 0;
	return -1;
}

static int kt_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void kt_cleanup(void)
{
	for (int i = 0; i < KT_MAX_DOUBLES; i++)
		if (kt_doubles[i])
			kt_double_stop(kt_doubles[i]);
	if (kt_tmp[0])
		nftw(kt_tmp, kt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Call first: argv[1] is apiserver.py. Makes a temp dir, unsets proxies. */
static inline void kt_init(int argc, char **argv)
{
	if (argc < 2)
		PW_FAIL("usage: %s APISERVER.py", argv[0]);
	kt_script = argv[1];
	if (access(kt_script, R_OK))
		PW_FAIL("%s: %s", kt_script, strerror(errno));
	snprintf(kt_tmp, sizeof(kt_tmp), "%s/pwkube-test.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(kt_tmp))
		PW_FAIL("mkdtemp: %s", strerror(errno));
	atexit(kt_cleanup);
	signal(SIGPIPE, SIG_IGN);
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("HTTPS_PROXY");
	unsetenv("ALL_PROXY");
	unsetenv("all_proxy");
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
}

/* Start the double with extra args (NULL-terminated); fills d. */
static inline void kt_double_start(struct kt_double *d, const char *const *args)
{
	const char *argv[40] = { "python3", kt_script, "--port", "0" };
	char line[32] = { 0 };
	struct pollfd pfd;
	int p[2], n = 4, slot = -1;
	size_t got = 0;

	for (; args && *args && n < 38; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	for (int i = 0; i < KT_MAX_DOUBLES; i++)
		if (!kt_doubles[i]) {
			slot = i;
			break;
		}
	if (slot < 0)
		PW_FAIL("too many doubles");
	if (pipe2(p, O_CLOEXEC))
		PW_FAIL("pipe: %s", strerror(errno));
	d->pid = fork();
	if (d->pid < 0)
		PW_FAIL("fork: %s", strerror(errno));
	if (d->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(p[1], 1);
		execvp("python3", (char *const *)argv);
		_exit(127);
	}
	kt_doubles[slot] = d;
	close(p[1]);
	pfd = (struct pollfd){ .fd = p[0], .events = POLLIN };
	while (!strchr(line, '\n') && got < sizeof(line) - 1) {
		ssize_t r;

		if (poll(&pfd, 1, 15000) <= 0)
			PW_FAIL("the API-server double did not print its port");
		r = read(p[0], line + got, sizeof(line) - 1 - got);
		if (r <= 0)
			PW_FAIL("the API-server double exited before printing its port");
		got += (size_t)r;
	}
	close(p[0]);
	d->port = atoi(line);
	if (d->port <= 0)
		PW_FAIL("bad port line from the double: %s", line);
	snprintf(d->url, sizeof(d->url), "http://127.0.0.1:%d", d->port);
}

/* A /_test/ request through k; fails the test unless 200. Returns the answer. */
/* A handle on d, no token. */
static inline struct pw_kube *kt_open(const struct kt_double *d)
{
	struct pw_kube *k;

	if (pw_kube_open_url(d->url, NULL, &k))
		PW_FAIL("open %s: %s", d->url, pw_kube_last_error(NULL));
	return k;
}

/* kt_init, start d with args, and return a control handle for it. */
static inline struct pw_kube *kt_start(int argc, char **argv, struct kt_double *d,
				       const char *const *args)
{
	kt_init(argc, argv);
	kt_double_start(d, args);
	return kt_open(d);
}

/* Close the control handle; d must exit 0 on SIGTERM. */
static inline void kt_finish(struct pw_kube *ctl, struct kt_double *d, const char *name)
{
	int st;

	pw_kube_close(ctl);
	st = kt_double_stop(d);
	if (st != 0)
		PW_FAIL("the double exited with %d on SIGTERM", st);
	printf("%s: ok\n", name);
}

__attribute__((format(printf, 4, 0))) static inline cJSON *
kt_vctl(struct pw_kube *k, const char *method, const char *path, const char *fmt, va_list ap)
{
	char *body = NULL, *text;
	cJSON *out = NULL;
	long st = 0;
	int rc;

	if (fmt && vasprintf(&body, fmt, ap) < 0)
		PW_FAIL("vasprintf");
	rc = pw_kube_request(k, method, path, body ? "application/json" : NULL, body, &st, &out);
	if (rc || st != 200) {
		text = out ? cJSON_PrintUnformatted(out) : NULL;
		PW_FAIL("%s %s: rc %d (%s) status %ld: %s", method, path, rc, pw_kube_last_error(k),
			st, text ? text : "");
	}
	free(body);
	return out;
}

/* A /_test/ request through k; fails the test unless 200. Returns the answer. */
__attribute__((format(printf, 4, 5))) static inline cJSON *
kt_ctl(struct pw_kube *k, const char *method, const char *path, const char *fmt, ...)
{
	va_list ap;
	cJSON *out;

	va_start(ap, fmt);
	out = kt_vctl(k, method, path, fmt, ap);
	va_end(ap);
	return out;
}

__attribute__((format(printf, 4, 5))) static inline void
kt_ctl0(struct pw_kube *k, const char *method, const char *path, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cJSON_Delete(kt_vctl(k, method, path, fmt, ap));
	va_end(ap);
}

/* Number of logged API requests matching method and a path substring, with status (0: any). */
static inline int kt_count_requests(struct pw_kube *k, const char *method, const char *needle,
				    long status)
{
	cJSON *r = kt_ctl(k, "GET", "/_test/requests", NULL), *e;
	int n = 0;

	cJSON_ArrayForEach(e, cJSON_GetObjectItem(r, "requests"))
	{
		const cJSON *m = cJSON_GetObjectItem(e, "method"),
			    *p = cJSON_GetObjectItem(e, "path");
		const cJSON *s = cJSON_GetObjectItem(e, "status");

		if (!strcmp(m->valuestring, method) && strstr(p->valuestring, needle) &&
		    (!status || (cJSON_IsNumber(s) && s->valueint == status)))
			n++;
	}
	cJSON_Delete(r);
	return n;
}

/* The bearer token of the last logged API request (static buffer; "" if none). */
static inline const char *kt_last_auth(struct pw_kube *k)
{
	static char tok[256];
	cJSON *r = kt_ctl(k, "GET", "/_test/requests", NULL);
	cJSON *reqs = cJSON_GetObjectItem(r, "requests");
	int n = cJSON_GetArraySize(reqs);
	const cJSON *a = n ? cJSON_GetObjectItem(cJSON_GetArrayItem(reqs, n - 1), "auth") : NULL;

	snprintf(tok, sizeof(tok), "%s", cJSON_IsString(a) ? a->valuestring : "");
	cJSON_Delete(r);
	return tok;
}

/* Wait until the double has exactly n open watches (up to 10 s). */
static inline void kt_wait_watches(struct pw_kube *k, int n)
{
	double end = kt_now() + 10;

	while (kt_now() < end) {
		cJSON *r = kt_ctl(k, "GET", "/_test/watches", NULL);
		int open = cJSON_GetObjectItem(r, "open")->valueint;

		cJSON_Delete(r);
		if (open == n)
			return;
		kt_msleep(20);
	}
	PW_FAIL("the double never had exactly %d open watches", n);
}

__attribute__((format(printf, 2, 3))) static inline void kt_write_file(const char *path,
								       const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	va_list ap;

	if (!f)
		PW_FAIL("fopen %s: %s", path, strerror(errno));
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	if (fclose(f))
		PW_FAIL("write %s: %s", path, strerror(errno));
}

/* path under the test's temp dir (static rotating buffers). */
static inline const char *kt_path(const char *name)
{
	static char buf[8][512];
	static int i;
	char *b = buf[i++ % 8];

	snprintf(b, sizeof(buf[0]), "%s/%s", kt_tmp, name);
	return b;
}

#endif /* PW_KUBE_TEST_H */
