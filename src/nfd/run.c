// SPDX-License-Identifier: MIT
/*
 * Probes that run other programs: Open vSwitch's tools and podwire-bench.
 * Each runs in its own process group under a time limit and is killed with
 * its children when it overstays, so a wedged OvS database cannot hang us.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "../common/child.h"
#include "nfd.h"
#include "util.h"

static int pw_status_code(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int pw_nfd_run(char *const argv[], int timeout_ms, char *out, size_t cap)
{
	/* Its own process group, killed whole at the timeout. */
	struct pw_spawn_opts o = { .err = PW_SPAWN_STDERR_NULL, .timeout_ms = timeout_ms };
	int st = pw_spawn_capture(argv, &o, out, cap);

	return st < 0 ? st : pw_status_code(st);
}

bool pw_nfd_have(const char *name)
{
	const char *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(name, '/'))
		return access(name, X_OK) == 0;
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n &&
		    (size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, name) <
			    sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':')
			path++;
	}
	return false;
}

/* "true"/"false" (quoted or not) from ovs-vsctl: 1, 0, -1 other. */
static int pw_ovs_bool(const char *s)
{
	size_t n;

	if (*s == '"')
		s++;
	n = strcspn(s, "\"\n");
	if (n == 4 && !strncmp(s, "true", 4))
		return 1;
	/* dpdk-init=try: DPDK if it can, which dpdk_initialized then tells. */
	if (n == 3 && !strncmp(s, "try", 3))
		return 1;
	if (n == 5 && !strncmp(s, "false", 5))
		return 0;
	return -1;
}

/*
 * OvS with DPDK. The database knows best: dpdk_initialized (OvS >= 2.10)
 * says whether ovs-vswitchd really brought DPDK up; other_config:dpdk-init
 * says it was asked to. Without a database we fall back on seed 000's test:
 * the binary was built with DPDK ("DPDK" in ovs-vswitchd --version).
 */
void pw_nfd_probe_ovs(struct pw_nfd_info *info)
{
	/* clang-format off */
	char *ver[] = { "ovs-vswitchd", "--version", NULL };
	char *init[] = { "ovs-vsctl", "--timeout=2", "get", "Open_vSwitch", ".",
			 "dpdk_initialized", NULL };
	char *conf[] = { "ovs-vsctl", "--timeout=2", "get", "Open_vSwitch", ".",
			 "other_config:dpdk-init", NULL };
	/* clang-format on */
	char out[1024];
	int r;

	info->ovs.probed = true;
	info->ovs.vswitchd = pw_nfd_have("ovs-vswitchd");
	info->ovs.vsctl = pw_nfd_have("ovs-vsctl");
	if (info->ovs.vswitchd) {
		r = pw_nfd_run(ver, 3000, out, sizeof(out));
		if (r == 0) {
			info->ovs.dpdk_built = strstr(out, "DPDK") != NULL;
			snprintf(info->ovs.version, sizeof(info->ovs.version), "%.*s",
				 (int)strcspn(out, "\n"), out);
		} else {
			pw_nfd_warn(info, "ovs-vswitchd --version: %s",
				    r < 0 ? strerror(-r) : "failed");
		}
	}
	if (info->ovs.vsctl) {
		r = pw_nfd_run(init, 4000, out, sizeof(out));
		if (r == 0)
			info->ovs.dpdk_initialized = pw_ovs_bool(out);
		else if (r < 0)
			pw_nfd_warn(info, "ovs-vsctl: %s", strerror(-r));
		/* a database that did not answer once will not answer now */
		if (r != -ETIMEDOUT && pw_nfd_run(conf, 4000, out, sizeof(out)) == 0)
			info->ovs.dpdk_init_config = pw_ovs_bool(out);
	}
	if (info->ovs.dpdk_initialized >= 0)
		info->ovs.dpdk = info->ovs.dpdk_initialized == 1;
	else if (info->ovs.dpdk_init_config >= 0)
		info->ovs.dpdk = info->ovs.dpdk_init_config == 1 &&
				 (info->ovs.dpdk_built || !info->ovs.vswitchd);
	else
		info->ovs.dpdk = info->ovs.dpdk_built;
}

const char *pw_nfd_find_bench(void)
{
	static char path[PATH_MAX];
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			/* installed side by side, then the build tree (src/nfd, src/bench) */
			static const char *const rel[] = { "podwire-bench",
							   "../bench/podwire-bench" };
			for (size_t i = 0; i < PW_ARRAY_SIZE(rel); i++) {
				if ((size_t)snprintf(path, sizeof(path), "%s/%s", self, rel[i]) <
					    sizeof(path) &&
				    access(path, X_OK) == 0)
					return path;
			}
		}
	}
	return pw_nfd_have("podwire-bench") ? "podwire-bench" : NULL;
}

static void pw_nfd_measure_one(const struct pw_nfd_opts *o, const char *transport,
			       struct pw_nfd_rtt *rtt)
{
	char dur[32], warm[32], out[4096];
	double w = o->measure_seconds / 4;
	cJSON *j = NULL;
	int r;

	if (w < 0.05)
		w = 0.05;
	if (w > 0.2)
		w = 0.2;
	snprintf(dur, sizeof(dur), "%.3f", o->measure_seconds);
	snprintf(warm, sizeof(warm), "%.3f", w);
	char *argv[] = { (char *)o->bench,
			 "pingpong",
			 "-t",
			 (char *)transport,
			 "-s",
			 "64",
			 "-d",
			 dur,
			 "-w",
			 warm,
			 "-j",
			 NULL };
	r = pw_nfd_run(argv, (int)((o->measure_seconds + w) * 1000) + 5000, out, sizeof(out));
	if (r) {
		snprintf(rtt->error, sizeof(rtt->error), "%s: %s", o->bench,
			 r < 0 ? strerror(-r) : "exited with an error");
		goto out;
	}
	j = cJSON_Parse(out);
	const cJSON *h = pw_json_get(j, "rtt_ns");
	rtt->msgs = pw_json_get_num(j, "msgs", -1);
	rtt->min = pw_json_get_num(h, "min", -1);
	rtt->mean = pw_json_get_num(h, "mean", -1);
	rtt->p50 = pw_json_get_num(h, "p50", -1);
	rtt->p99 = pw_json_get_num(h, "p99", -1);
	if (!cJSON_IsObject(h) || rtt->msgs <= 0 || rtt->p50 <= 0 || rtt->p99 <= 0) {
		snprintf(rtt->error, sizeof(rtt->error), "%s: no round trips in its report",
			 o->bench);
		goto out;
	}
	rtt->ok = true;
out:
	cJSON_Delete(j);
}

void pw_nfd_measure(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	static const char *const names[PW_NFD_NPATHS] = { "shm", "tcp" };

	info->measured = true;
	for (int i = 0; i < PW_NFD_NPATHS; i++) {
		struct pw_nfd_rtt *rtt = &info->rtt[i];

		memset(rtt, 0, sizeof(*rtt));
		if (!o->bench) {
			snprintf(rtt->error, sizeof(rtt->error), "podwire-bench not found");
			continue;
		}
		pw_nfd_measure_one(o, names[i], rtt);
		if (!rtt->ok)
			pw_nfd_warn(info, "measuring %s: %s", names[i], rtt->error);
	}
}
