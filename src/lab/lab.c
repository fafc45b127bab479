// SPDX-License-Identifier: MIT
/*
 * podwire lab: a cluster of nodes and pods made of network namespaces, one
 * podwired per node, and a Flannel-like baseline between nodes (kernel VXLAN
 * or host-gw routes). Nothing is created in the caller's network namespace:
 * the underlay bridge lives in a namespace of its own. Topology, addresses
 * and commands: docs/LAB.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lab.h"

#define PW_LAB_RUN_DIR	     "/run/podwire/lab"
#define PW_LAB_NAME_MAX	     32
#define PW_LAB_NS_LEN	     64
#define PW_LAB_MAX_NODES     254
#define PW_LAB_MAX_PODS	     244 /* pod k of node n is 198.19.n.(10 + k) */
#define PW_LAB_POD_PREFIX    "198.19.0.0/16"
#define PW_LAB_METRICS	     "127.0.0.1:9470"
#define PW_LAB_PEER_PORT     7470u
#define PW_LAB_VXLAN_DEV     "flannel.1"
#define PW_LAB_VXLAN_PORT    8472u /* flannel's default on Linux */
#define PW_LAB_VXLAN_MTU     1450u /* 1500 less the 50 bytes of VXLAN over IPv4 */
#define PW_LAB_START_TIMEOUT 10	   /* seconds for a router to open its socket */

#ifndef PW_LAB_SBINDIR
#define PW_LAB_SBINDIR "sbin"
#endif
#ifndef PW_LAB_LIBDIR
#define PW_LAB_LIBDIR "lib"
#endif

enum pw_lab_overlay { PW_LAB_VXLAN, PW_LAB_HOSTGW };
static const char *const pw_lab_overlays[] = { "vxlan", "host-gw" };

struct pw_lab_router {
	pid_t pid;
	unsigned long long start; /* /proc start time: tells our router from a reused pid */
};

struct pw_lab {
	char name[PW_LAB_NAME_MAX + 1];
	char dir[sizeof(PW_LAB_RUN_DIR) + PW_LAB_NAME_MAX + 1];
	unsigned nodes, pods; /* pods per node */
	enum pw_lab_overlay overlay;
	bool podwire, federation;
	char podwired[PATH_MAX], lib[PATH_MAX];
	struct pw_lab_router *router; /* [nodes]; node n at n - 1 */
	char **made;		      /* namespaces this 'up' created: what a failure removes */
	size_t nmade;
};

static void pw_lab_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pw_lab_err(const char *fmt, ...)
{
	va_list ap;

	fputs("podwire lab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void pw_lab_free(struct pw_lab *lab)
{
	if (!lab)
		return;
	for (size_t i = 0; i < lab->nmade; i++)
		free(lab->made[i]);
	free(lab->made);
	free(lab->router);
	lab->made = NULL;
	lab->router = NULL;
	lab->nmade = 0;
}

static bool pw_lab_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > PW_LAB_NAME_MAX ||
	    !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return false;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *s))
			return false;
	return true;
}

/* The lab name from --name, else $PODWIRE_LAB, else "lab"; false (reported) if invalid. */
static bool pw_lab_set_name(struct pw_lab *lab, const char *opt)
{
	const char *env = getenv("PODWIRE_LAB");
	const char *name = opt ? opt : (env && *env ? env : "lab");

	if (!pw_lab_name_ok(name)) {
		pw_lab_err("bad lab name '%s': 1 to %d letters, digits, '_' or '-', starting with "
			   "a letter or digit",
			   name, PW_LAB_NAME_MAX);
		return false;
	}
	memcpy(lab->name, name, strlen(name) + 1);
	snprintf(lab->dir, sizeof(lab->dir), PW_LAB_RUN_DIR "/%s", name);
	return true;
}

/* Namespace of the underlay (node 0), of node n (pod 0), or of pod k of node n. */
static void pw_lab_ns(const struct pw_lab *lab, unsigned n, unsigned k, char *buf)
{
	if (!n)
		snprintf(buf, PW_LAB_NS_LEN, "pwlab-%s-u", lab->name);
	else if (!k)
		snprintf(buf, PW_LAB_NS_LEN, "pwlab-%s-n%u", lab->name, n);
	else
		snprintf(buf, PW_LAB_NS_LEN, "pwlab-%s-n%up%u", lab->name, n, k);
}

/* Files of node n's router: "podwired.sock" or "podwired.log". */
static void pw_lab_node_file(const struct pw_lab *lab, unsigned n, const char *file, char *buf,
			     size_t len)
{
	snprintf(buf, len, "%s/n%u/%s", lab->dir, n, file);
}

/* Parse "u", "nN" or "nNpK" (digits without leading zeros): which is the node, which the pod. */
static bool pw_lab_parse_target(const char *s, unsigned *n, unsigned *k)
{
	unsigned long v[2] = { 0, 0 };
	int i = 0;

	if (!strcmp(s, "u")) {
		*n = *k = 0;
		return true;
	}
	if (*s++ != 'n')
		return false;
	for (;;) {
		char *end;

		if (*s < '1' || *s > '9')
			return false;
		v[i] = strtoul(s, &end, 10);
		if (v[i] > 1000)
			return false;
		s = end;
		if (!*s)
			break;
		if (i || *s != 'p')
			return false;
		s++;
		i++;
	}
	*n = (unsigned)v[0];
	*k = (unsigned)v[1];
	return true;
}

/* Does namespace ns belong to lab name ("pwlab-NAME-" then u, nN or nNpK)? */
static bool pw_lab_ns_ours(const char *name, const char *ns)
{
	size_t len = strlen(name);
	unsigned n, k;

	if (strncmp(ns, "pwlab-", 6) != 0 || strncmp(ns + 6, name, len) != 0 || ns[6 + len] != '-')
		return false;
	return pw_lab_parse_target(ns + 7 + len, &n, &k);
}

static int pw_lab_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lab's namespaces that exist now, sorted; *out is malloc'd (free each). -errno on error. */
static int pw_lab_ns_list(const char *name, char ***out, size_t *n)
{
	DIR *d = opendir("/run/netns");
	char **v = NULL;
	size_t cap = 0;
	struct dirent *e;
	int r = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((e = readdir(d))) {
		if (!pw_lab_ns_ours(name, e->d_name))
			continue;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[*n] = strdup(e->d_name);
		if (!v[*n]) {
			r = -ENOMEM;
			break;
		}
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), pw_lab_cmp_str);
	*out = v;
	return r;
}

static void pw_lab_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static bool pw_lab_need_root(void)
{
	if (geteuid() == 0)
		return true;
	pw_lab_err("must run as root (it manages network namespaces)");
	return false;
}

static bool pw_lab_parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *v)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || x < lo || x > hi) {
		pw_lab_err("bad %s '%s': a number from %u to %u", opt, s, lo, hi);
		return false;
	}
	*v = (unsigned)x;
	return true;
}

/* getopt saw an unknown option or a missing argument: exit status 2. */
static int pw_lab_usage_error(const char *cmd)
{
	fprintf(stderr, "Try 'podwire lab %s --help'.\n", cmd);
	return 2;
}

/*
 * After a subcommand's options: no stray arguments, the lab's name, and root
 * if needed. 0, or the exit status (reported): 2 usage, 1 not root.
 */
static int pw_lab_opts_done(struct pw_lab *lab, const char *name, int argc, char **argv, bool root)
{
	if (optind < argc) {
		pw_lab_err("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (!pw_lab_set_name(lab, name))
		return 2;
	return !root || pw_lab_need_root() ? 0 : 1;
}

enum { PW_LAB_OPT_JSON = 1, PW_LAB_OPT_NOPW = 2, PW_LAB_OPT_CMD = 4 };

struct pw_lab_opts {
	const char *name;
	bool json, nopw;
};

/*
 * Options of status, exec and down: --name, --help and those in flags
 * (PW_LAB_OPT_CMD: stop at the first argument, which starts a command line).
 * Returns -1 to go on, or the exit status (0 after --help, 2 on a bad option).
 */
static int pw_lab_getopt(int argc, char **argv, const char *cmd, const char *usage, unsigned flags,
			 struct pw_lab_opts *o)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-podwire", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, flags & PW_LAB_OPT_CMD ? "+h" : "h", longopts, NULL)) !=
	       -1) {
		if (c == 'n') {
			o->name = optarg;
		} else if (c == 'j' && (flags & PW_LAB_OPT_JSON)) {
			o->json = true;
		} else if (c == 'N' && (flags & PW_LAB_OPT_NOPW)) {
			o->nopw = true;
		} else if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		} else {
			if (c == 'j' || c == 'N')
				pw_lab_err("%s takes no %s", cmd, argv[optind - 1]);
			return pw_lab_usage_error(cmd);
		}
	}
	return -1;
}

/* ---- state: /run/podwire/lab/NAME/state.json ---- */

static cJSON *pw_lab_json(const struct pw_lab *lab, bool live)
{
	char ns[PW_LAB_NS_LEN], buf[PATH_MAX];
	cJSON *o = cJSON_CreateObject(), *nodes, *u;

	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "name", lab->name);
	cJSON_AddStringToObject(o, "state_dir", lab->dir);
	cJSON_AddStringToObject(o, "overlay", pw_lab_overlays[lab->overlay]);
	cJSON_AddBoolToObject(o, "podwire", lab->podwire);
	cJSON_AddBoolToObject(o, "federation", lab->federation);
	cJSON_AddNumberToObject(o, "node_count", lab->nodes);
	cJSON_AddNumberToObject(o, "pods_per_node", lab->pods);
	cJSON_AddStringToObject(o, "pod_prefix", PW_LAB_POD_PREFIX);
	if (lab->podwire) {
		cJSON_AddStringToObject(o, "podwired", lab->podwired);
		cJSON_AddStringToObject(o, "lib", lab->lib);
	} else {
		cJSON_AddNullToObject(o, "podwired");
		cJSON_AddNullToObject(o, "lib");
	}
	snprintf(buf, sizeof(buf), "%s/secret", lab->dir);
	cJSON_AddStringToObject(o, "secret_file", buf);
	u = cJSON_AddObjectToObject(o, "underlay");
	pw_lab_ns(lab, 0, 0, ns);
	cJSON_AddStringToObject(u, "netns", ns);
	cJSON_AddStringToObject(u, "bridge", "br0");
	cJSON_AddStringToObject(u, "subnet", "198.18.0.0/24");
	nodes = cJSON_AddArrayToObject(o, "nodes");
	for (unsigned n = 1; n <= lab->nodes; n++) {
		cJSON *no = cJSON_CreateObject(), *pods;

		cJSON_AddItemToArray(nodes, no);
		snprintf(buf, sizeof(buf), "n%u", n);
		cJSON_AddStringToObject(no, "name", buf);
		pw_lab_ns(lab, n, 0, ns);
		cJSON_AddStringToObject(no, "netns", ns);
		if (live) {
			snprintf(buf, sizeof(buf), "/run/netns/%s", ns);
			cJSON_AddBoolToObject(no, "netns_present", access(buf, F_OK) == 0);
		}
		snprintf(buf, sizeof(buf), "198.18.0.%u", n);
		cJSON_AddStringToObject(no, "underlay_ip", buf);
		snprintf(buf, sizeof(buf), "198.19.%u.0/24", n);
		cJSON_AddStringToObject(no, "pod_subnet", buf);
		snprintf(buf, sizeof(buf), "198.19.%u.1", n);
		cJSON_AddStringToObject(no, "gateway", buf);
		if (lab->podwire) {
			const struct pw_lab_router *rt = &lab->router[n - 1];
			cJSON *r = cJSON_AddObjectToObject(no, "router");

			cJSON_AddNumberToObject(r, "pid", rt->pid);
			cJSON_AddNumberToObject(r, "start_time", (double)rt->start);
			if (live)
				cJSON_AddBoolToObject(r, "alive",
						      rt->start && pw_lab_proc_start(rt->pid) ==
									   rt->start);
			pw_lab_node_file(lab, n, "podwired.sock", buf, sizeof(buf));
			cJSON_AddStringToObject(r, "socket", buf);
			pw_lab_node_file(lab, n, "podwired.log", buf, sizeof(buf));
			cJSON_AddStringToObject(r, "log", buf);
			cJSON_AddStringToObject(r, "metrics", PW_LAB_METRICS);
		} else {
			cJSON_AddNullToObject(no, "router");
		}
		pods = cJSON_AddArrayToObject(no, "pods");
		for (unsigned k = 1; k <= lab->pods; k++) {
			cJSON *po = cJSON_CreateObject();

			cJSON_AddItemToArray(pods, po);
			snprintf(buf, sizeof(buf), "n%up%u", n, k);
			cJSON_AddStringToObject(po, "name", buf);
			pw_lab_ns(lab, n, k, ns);
			cJSON_AddStringToObject(po, "netns", ns);
			if (live) {
				snprintf(buf, sizeof(buf), "/run/netns/%s", ns);
				cJSON_AddBoolToObject(po, "netns_present", access(buf, F_OK) == 0);
			}
			snprintf(buf, sizeof(buf), "198.19.%u.%u", n, 10 + k);
			cJSON_AddStringToObject(po, "ip", buf);
		}
	}
	return o;
}

static int pw_lab_save(const struct pw_lab *lab)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	cJSON *o = pw_lab_json(lab, false);
	char *s = o ? cJSON_Print(o) : NULL;
	int fd = -1, r = 0;

	if (!s) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/state.json", lab->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	size_t len = strlen(s);
	if (write(fd, s, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		goto out;
	}
	if (rename(tmp, path) < 0)
		r = -errno;
out:
	if (fd >= 0)
		close(fd);
	cJSON_free(s);
	cJSON_Delete(o);
	return r;
}

static const char *pw_lab_jstr(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	return s ? s : "";
}

/*
 * Read the state of lab->name (set by pw_lab_set_name). Returns 0, -ENOENT if
 * there is no state file, -EINVAL if it does not parse (reported), -errno.
 */
static int pw_lab_load(struct pw_lab *lab)
{
	char path[PATH_MAX], *text = NULL;
	cJSON *o = NULL;
	struct stat st;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/state.json", lab->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > (1 << 24)) {
		r = -EINVAL;
		goto out;
	}
	text = calloc(1, (size_t)st.st_size + 1);
	if (!text || read(fd, text, (size_t)st.st_size) != st.st_size) {
		r = -EIO;
		goto out;
	}
	o = cJSON_Parse(text);
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(o, "nodes");
	double nn = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "node_count"));
	double np = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "pods_per_node"));
	const char *ov = pw_lab_jstr(o, "overlay");
	if (!o || strcmp(pw_lab_jstr(o, "name"), lab->name) != 0 ||
	    !(nn >= 1 && nn <= PW_LAB_MAX_NODES) || !(np >= 0 && np <= PW_LAB_MAX_PODS) ||
	    cJSON_GetArraySize(nodes) != (int)nn ||
	    (strcmp(ov, "vxlan") != 0 && strcmp(ov, "host-gw") != 0)) {
		pw_lab_err("%s is not a lab state file this podwire understands", path);
		r = -EINVAL;
		goto out;
	}
	lab->nodes = (unsigned)nn;
	lab->pods = (unsigned)np;
	lab->overlay = strcmp(ov, "vxlan") ? PW_LAB_HOSTGW : PW_LAB_VXLAN;
	lab->podwire = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "podwire"));
	lab->federation = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "federation"));
	snprintf(lab->podwired, sizeof(lab->podwired), "%s", pw_lab_jstr(o, "podwired"));
	snprintf(lab->lib, sizeof(lab->lib), "%s", pw_lab_jstr(o, "lib"));
	lab->router = calloc(lab->nodes, sizeof(*lab->router));
	if (!lab->router) {
		r = -ENOMEM;
		goto out;
	}
	for (unsigned n = 0; n < lab->nodes; n++) {
		const cJSON *rt = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetArrayItem(nodes, (int)n), "router");
		double pid = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rt, "pid"));
		double start =
			cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(rt, "start_time"));

		if (pid > 0 && pid < INT_MAX && start > 0) {
			lab->router[n].pid = (pid_t)pid;
			lab->router[n].start = (unsigned long long)start;
		}
	}
out:
	cJSON_Delete(o);
	free(text);
	close(fd);
	return r;
}

/* ---- finding podwired and libpodwire.so ---- */

/*
 * The first of: the option, the environment variable, then next to the
 * running podwire: the build tree (src/cli/podwire -> src/router/podwired,
 * src/preload/libpodwire.so) or the installed layout (bin/podwire ->
 * sbin/podwired, lib/.../libpodwire.so). Resolved to an absolute path.
 */
static bool pw_lab_locate(char *out, const char *opt, const char *env, const char *build_rel,
			  const char *inst_dir, const char *file, int mode, const char *what)
{
	const char *e = getenv(env);
	char exe[PATH_MAX], cand[2][2 * PATH_MAX];
	int ncand = 0;

	if (opt || (e && *e)) {
		const char *p = opt ? opt : e;

		if (access(p, mode) < 0 || !realpath(p, out)) {
			pw_lab_err("%s %s (from %s): %s", what, p, opt ? "the option" : env,
				   strerror(errno));
			return false;
		}
		return true;
	}
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(cand[ncand++], sizeof(cand[0]), "%s/../%s/%s", exe, build_rel, file);
		if (*inst_dir == '/')
			snprintf(cand[ncand++], sizeof(cand[0]), "%s/%s", inst_dir, file);
		else
			snprintf(cand[ncand++], sizeof(cand[0]), "%s/../%s/%s", exe, inst_dir,
				 file);
	}
	for (int i = 0; i < ncand; i++)
		if (access(cand[i], mode) == 0 && realpath(cand[i], out))
			return true;
	pw_lab_err("cannot find %s next to this podwire (tried %s%s%s); give its path with "
		   "--%s or $%s",
		   what, ncand ? cand[0] : "nothing", ncand > 1 ? " and " : "",
		   ncand > 1 ? cand[1] : "", mode == X_OK ? "podwired" : "lib", env);
	return false;
}

/*
 * The LD_PRELOAD value for pods: DIR/$LIB/libpodwire.so when the preload tree
 * lies next to @lib (build: src/preload/preload/, installed: podwire/preload/
 * beside it), so that glibc and musl programs each load their own build
 * (docs/PRELOAD.md); else @lib itself.
 */
static void pw_lab_preload_value(const char *lib, char *out, size_t len)
{
	static const char *const trees[] = { "preload", "podwire/preload" };
	char dir[PATH_MAX], probe[PATH_MAX + 64];
	const char *slash = strrchr(lib, '/');

	snprintf(out, len, "%s", lib);
	if (!slash || (size_t)(slash - lib) >= sizeof(dir))
		return;
	memcpy(dir, lib, (size_t)(slash - lib));
	dir[slash - lib] = '\0';
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		snprintf(probe, sizeof(probe), "%s/%s/lib/libpodwire.so", dir, trees[i]);
		if (access(probe, R_OK) == 0) {
			int n = snprintf(out, len, "%s/%s/$LIB/libpodwire.so", dir, trees[i]);
			if (n < 0 || (size_t)n >= len)
				snprintf(out, len, "%s", lib);
			return;
		}
	}
}

/* ---- up ---- */

static int pw_lab_ns_add(struct pw_lab *lab, const char *ns)
{
	char **v = realloc(lab->made, (lab->nmade + 1) * sizeof(*v));
	char *copy = strdup(ns);

	if (v)
		lab->made = v;
	if (!v || !copy) {
		free(copy);
		pw_lab_err("out of memory");
		return -ENOMEM;
	}
	if (pw_lab_cmd("ip netns add %s", ns) < 0) {
		free(copy);
		return -1;
	}
	lab->made[lab->nmade++] = copy;
	return 0;
}

static int pw_lab_sysctl(const char *ns, const char *path, const char *val)
{
	int r = pw_lab_ns_write(ns, path, val);

	if (r < 0)
		pw_lab_err("cannot set %s to %s in %s: %s", path, val, ns, strerror(-r));
	return r;
}

/* The VXLAN device's MAC address of node n: fixed, so that peers know it up front. */
static void pw_lab_vxlan_mac(unsigned n, char *buf, size_t len)
{
	snprintf(buf, len, "02:70:77:01:00:%02x", n);
}

static int pw_lab_make_node(struct pw_lab *lab, unsigned n)
{
	char u[PW_LAB_NS_LEN], ns[PW_LAB_NS_LEN], pod[PW_LAB_NS_LEN], mac[32];
	unsigned mtu = lab->overlay == PW_LAB_VXLAN ? PW_LAB_VXLAN_MTU : 1500u;

	pw_lab_ns(lab, 0, 0, u);
	pw_lab_ns(lab, n, 0, ns);
	if (pw_lab_ns_add(lab, ns) < 0)
		return -1;
	/*
	 * IPv4 settings of a new namespace are copied from the host's: make
	 * reverse-path filtering loose, or replies that come back over the
	 * other path (pod to another node's underlay address, VXLAN) drop.
	 */
	if (pw_lab_sysctl(ns, "/proc/sys/net/ipv4/conf/all/rp_filter", "0") < 0 ||
	    pw_lab_sysctl(ns, "/proc/sys/net/ipv4/conf/default/rp_filter", "0") < 0 ||
	    pw_lab_sysctl(ns, "/proc/sys/net/ipv4/ip_forward", "1") < 0)
		return -1;
	if (pw_lab_cmd("ip -n %s link set lo up", ns) < 0 ||
	    pw_lab_cmd("ip -n %s link add n%u master br0 up type veth peer name eth0 netns %s", u,
		       n, ns) < 0 ||
	    pw_lab_cmd("ip -n %s addr add 198.18.0.%u/24 dev eth0", ns, n) < 0 ||
	    pw_lab_cmd("ip -n %s link set eth0 up", ns) < 0 ||
	    pw_lab_cmd("ip -n %s link add name cni0 mtu %u up type bridge", ns, mtu) < 0 ||
	    pw_lab_cmd("ip -n %s addr add 198.19.%u.1/24 dev cni0", ns, n) < 0)
		return -1;
	if (lab->overlay == PW_LAB_VXLAN) {
		pw_lab_vxlan_mac(n, mac, sizeof(mac));
		if (pw_lab_cmd("ip -n %s link add " PW_LAB_VXLAN_DEV
			       " address %s mtu %u type vxlan "
			       "id 1 local 198.18.0.%u dev eth0 dstport %u nolearning",
			       ns, mac, PW_LAB_VXLAN_MTU, n, PW_LAB_VXLAN_PORT) < 0 ||
		    pw_lab_cmd("ip -n %s addr add 198.19.%u.0/32 dev " PW_LAB_VXLAN_DEV, ns, n) <
			    0 ||
		    pw_lab_cmd("ip -n %s link set " PW_LAB_VXLAN_DEV " up", ns) < 0)
			return -1;
	}
	for (unsigned k = 1; k <= lab->pods; k++) {
		pw_lab_ns(lab, n, k, pod);
		if (pw_lab_ns_add(lab, pod) < 0 || pw_lab_cmd("ip -n %s link set lo up", pod) < 0 ||
		    pw_lab_cmd(
			    "ip -n %s link add p%u mtu %u master cni0 up type veth peer name eth0 "
			    "netns %s mtu %u",
			    ns, k, mtu, pod, mtu) < 0 ||
		    pw_lab_cmd("ip -n %s addr add 198.19.%u.%u/24 dev eth0", pod, n, 10 + k) < 0 ||
		    pw_lab_cmd("ip -n %s link set eth0 up", pod) < 0 ||
		    pw_lab_cmd("ip -n %s route add default via 198.19.%u.1", pod, n) < 0)
			return -1;
	}
	return 0;
}

/* Routes from node n to every other node's pods: what flannel installs. */
static int pw_lab_make_routes(struct pw_lab *lab, unsigned n)
{
	char ns[PW_LAB_NS_LEN], mac[32];

	pw_lab_ns(lab, n, 0, ns);
	for (unsigned m = 1; m <= lab->nodes; m++) {
		if (m == n)
			continue;
		if (lab->overlay == PW_LAB_HOSTGW) {
			if (pw_lab_cmd("ip -n %s route add 198.19.%u.0/24 via 198.18.0.%u dev eth0",
				       ns, m, m) < 0)
				return -1;
			continue;
		}
		pw_lab_vxlan_mac(m, mac, sizeof(mac));
		if (pw_lab_cmd("ip -n %s neigh add 198.19.%u.0 lladdr %s dev " PW_LAB_VXLAN_DEV
			       " nud permanent",
			       ns, m, mac) < 0 ||
		    pw_lab_cmd("bridge -n %s fdb append %s dev " PW_LAB_VXLAN_DEV
			       " dst 198.18.0.%u self permanent",
			       ns, mac, m) < 0 ||
		    pw_lab_cmd("ip -n %s route add 198.19.%u.0/24 via 198.19.%u.0 "
			       "dev " PW_LAB_VXLAN_DEV " onlink",
			       ns, m, m) < 0)
			return -1;
	}
	return 0;
}

static int pw_lab_write_secret(const struct pw_lab *lab)
{
	unsigned char key[32];
	char path[PATH_MAX], hex[2 * sizeof(key) + 1];
	size_t got = 0;
	int fd, r = 0;

	while (got < sizeof(key)) {
		ssize_t n = getrandom(key + got, sizeof(key) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			pw_lab_err("getrandom: %s", strerror(errno));
			return -errno;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(key); i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	snprintf(path, sizeof(path), "%s/secret", lab->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex))
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r < 0)
		pw_lab_err("cannot write %s: %s", path, strerror(-r));
	return r;
}

/* Start node n's podwired inside the node's namespace, detached, logging to its file. */
static int pw_lab_router_start(struct pw_lab *lab, unsigned n)
{
	char ns[PW_LAB_NS_LEN], dir[PATH_MAX], sock[PATH_MAX], log[PATH_MAX], secret[PATH_MAX];
	char node[16], cidr[32], listen[32], *peers = NULL, *argv[24];
	int nsfd = -1, logfd = -1, nullfd = -1, r = -1, a = 0;
	pid_t pid;

	pw_lab_ns(lab, n, 0, ns);
	snprintf(dir, sizeof(dir), "%s/n%u", lab->dir, n);
	pw_lab_node_file(lab, n, "podwired.sock", sock, sizeof(sock));
	pw_lab_node_file(lab, n, "podwired.log", log, sizeof(log));
	snprintf(secret, sizeof(secret), "%s/secret", lab->dir);
	snprintf(node, sizeof(node), "n%u", n);
	snprintf(cidr, sizeof(cidr), "198.19.%u.0/24", n);
	snprintf(listen, sizeof(listen), "198.18.0.%u:%u", n, PW_LAB_PEER_PORT);
	if (mkdir(dir, 0755) < 0) {
		pw_lab_err("mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	argv[a++] = lab->podwired;
	argv[a++] = "--foreground";
	argv[a++] = "--socket";
	argv[a++] = sock;
	argv[a++] = "--prefix";
	argv[a++] = PW_LAB_POD_PREFIX;
	argv[a++] = "--metrics";
	argv[a++] = PW_LAB_METRICS;
	if (lab->federation) {
		size_t cap = (size_t)lab->nodes * 24 + 1, off = 0;

		peers = calloc(1, cap);
		if (!peers) {
			pw_lab_err("out of memory");
			goto out;
		}
		for (unsigned m = 1; m <= lab->nodes; m++)
			if (m != n)
				off += (size_t)snprintf(peers + off, cap - off, "%s198.18.0.%u:%u",
							off ? "," : "", m, PW_LAB_PEER_PORT);
		argv[a++] = "--node-name";
		argv[a++] = node;
		argv[a++] = "--pod-cidr";
		argv[a++] = cidr;
		argv[a++] = "--peer-listen";
		argv[a++] = listen;
		if (off) {
			argv[a++] = "--peers";
			argv[a++] = peers;
		}
		argv[a++] = "--secret-file";
		argv[a++] = secret;
	}
	argv[a] = NULL;

	nsfd = pw_lab_ns_open(ns);
	logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || logfd < 0 || nullfd < 0) {
		pw_lab_err("cannot prepare podwired for %s: %s", node,
			   strerror(nsfd < 0 ? -nsfd : errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		pw_lab_err("fork: %s", strerror(errno));
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
			dprintf(logfd, "podwire lab: cannot start podwired: %s\n", strerror(errno));
			_exit(127);
		}
		unsetenv("LD_PRELOAD");
		execv(argv[0], argv);
		dprintf(2, "podwire lab: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	lab->router[n - 1].pid = pid;
	lab->router[n - 1].start = pw_lab_proc_start(pid);
	r = 0;
out:
	if (nsfd >= 0)
		close(nsfd);
	if (logfd >= 0)
		close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	free(peers);
	return r;
}

static bool pw_lab_socket_ready(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int s;
	bool ok;

	if (strlen(path) >= sizeof(a.sun_path))
		return false;
	memcpy(a.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

/* Print the last lines of a log file to stderr, indented. */
static void pw_lab_print_tail(const char *path)
{
	char buf[2048], *p = buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t end;
	ssize_t n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	if (end > (off_t)sizeof(buf) - 1)
		lseek(fd, end - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (end > n && (p = strchr(buf, '\n')))
		p++;
	for (char *save = NULL, *l = strtok_r(p, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "    %s\n", l);
}

/* Wait until every router accepts on its socket; fail if one exits or is too slow. */
static int pw_lab_routers_wait(struct pw_lab *lab)
{
	char path[PATH_MAX];
	bool *ready = calloc(lab->nodes + 1, sizeof(*ready));
	unsigned left = lab->nodes;
	int r = -1;

	if (!ready)
		return -ENOMEM;
	for (int t = 0; t < PW_LAB_START_TIMEOUT * 50 && left && !pw_lab_stopped(); t++) {
		for (unsigned n = 1; n <= lab->nodes; n++) {
			int st;

			if (ready[n - 1])
				continue;
			if (waitpid(lab->router[n - 1].pid, &st, WNOHANG) ==
			    lab->router[n - 1].pid) {
				lab->router[n - 1].pid = 0;
				pw_lab_node_file(lab, n, "podwired.log", path, sizeof(path));
				if (WIFEXITED(st))
					pw_lab_err("podwired of n%u exited with status %d while "
						   "starting; %s ends with:",
						   n, WEXITSTATUS(st), path);
				else
					pw_lab_err("podwired of n%u was killed by signal %d while "
						   "starting; %s ends with:",
						   n, WIFSIGNALED(st) ? WTERMSIG(st) : 0, path);
				pw_lab_print_tail(path);
				goto out;
			}
			pw_lab_node_file(lab, n, "podwired.sock", path, sizeof(path));
			if (pw_lab_socket_ready(path)) {
				ready[n - 1] = true;
				left--;
			}
		}
		if (left) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (pw_lab_stopped()) {
		pw_lab_err("interrupted");
		goto out;
	}
	for (unsigned n = 1; n <= lab->nodes && left; n++) {
		if (ready[n - 1])
			continue;
		pw_lab_node_file(lab, n, "podwired.log", path, sizeof(path));
		pw_lab_err("podwired of n%u did not open its socket within %d s; %s ends with:", n,
			   PW_LAB_START_TIMEOUT, path);
		pw_lab_print_tail(path);
		goto out;
	}
	r = 0;
out:
	free(ready);
	return r;
}

/* Remove what a failed 'up' created: processes, namespaces (and their links), state. */
static void pw_lab_rollback(struct pw_lab *lab)
{
	/* An interrupted 'up' still cleans up: no more stopping from here. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	atomic_store_explicit(&pw_lab_stop, 0, memory_order_relaxed);
	pw_lab_ns_kill(lab->made, lab->nmade);
	for (unsigned n = 0; lab->router && n < lab->nodes; n++)
		if (lab->router[n].pid > 0)
			waitpid(lab->router[n].pid, NULL, WNOHANG);
	for (size_t i = lab->nmade; i-- > 0;)
		pw_lab_cmd("ip netns del %s", lab->made[i]);
	pw_lab_rmtree(lab->dir);
	rmdir(PW_LAB_RUN_DIR);
}

static void pw_lab_print_status(const struct pw_lab *lab);

static const char pw_lab_up_usage[] =
	"Usage: podwire lab up [--nodes N] [--pods-per-node M] [--overlay vxlan|host-gw]\n"
	"                      [--no-podwire] [--name LAB] [--podwired PATH] [--lib PATH]\n"
	"\n"
	"Create a cluster of network namespaces: an underlay namespace holding a bridge,\n"
	"N nodes n1..nN (underlay address 198.18.0.N/24, pod bridge cni0 with\n"
	"198.19.N.1/24) and M pods per node n1p1..nNpM (eth0 198.19.N.(10+K)/24, default\n"
	"route via 198.19.N.1). The host's own network namespace is not touched.\n"
	"\n"
	"Options:\n"
	"      --nodes N            nodes, 1 to 254 (default 2)\n"
	"      --pods-per-node M    pods on each node, 0 to 244 (default 2)\n"
	"      --overlay MODE       how pods reach other nodes, without NAT:\n"
	"                           vxlan (default): like flannel's vxlan backend, a\n"
	"                             VXLAN device flannel.1 per node (VNI 1, port 8472,\n"
	"                             MTU 1450) with static FDB, neighbour and route\n"
	"                             entries for every other node;\n"
	"                           host-gw: routes 198.19.M.0/24 via 198.18.0.M\n"
	"      --no-podwire         start no routers; 'lab exec' adds no preload\n"
	"      --name LAB           lab name (default $PODWIRE_LAB, else 'lab'); labs with\n"
	"                           different names coexist; namespaces are pwlab-LAB-*\n"
	"      --podwired PATH      the router (default $PODWIRE_PODWIRED, else found\n"
	"                           next to this podwire: build tree or installed)\n"
	"      --lib PATH           libpodwire.so (default $PODWIRE_LIB, else found the same way)\n"
	"  -h, --help               show this help\n"
	"\n"
	"Each node runs one podwired in its namespace (--prefix " PW_LAB_POD_PREFIX
	", metrics on\n" PW_LAB_METRICS " inside the node), logging to\n" PW_LAB_RUN_DIR
	"/LAB/nN/podwired.log; its socket is " PW_LAB_RUN_DIR "/LAB/nN/podwired.sock.\n"
	"If podwired supports federation (--peers in its --help), each router also gets\n"
	"--node-name, --pod-cidr, --peer-listen 198.18.0.N:7470, --peers (the other nodes)\n"
	"and --secret-file " PW_LAB_RUN_DIR "/LAB/secret.\n"
	"\n"
	"Fails if a lab of that name exists. A failed 'up' removes what it created.\n"
	"Needs root. Exit status: 0 up, 1 failed, 2 usage error.\n";

static int pw_lab_up(int argc, char **argv)
{
	enum { O_NODES = 256, O_PODS, O_OVERLAY, O_NOPW, O_NAME, O_PODWIRED, O_LIB };
	static const struct option longopts[] = {
		{ "nodes", required_argument, NULL, O_NODES },
		{ "pods-per-node", required_argument, NULL, O_PODS },
		{ "overlay", required_argument, NULL, O_OVERLAY },
		{ "no-podwire", no_argument, NULL, O_NOPW },
		{ "name", required_argument, NULL, O_NAME },
		{ "podwired", required_argument, NULL, O_PODWIRED },
		{ "lib", required_argument, NULL, O_LIB },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pw_lab lab = { .nodes = 2, .pods = 2, .overlay = PW_LAB_VXLAN, .podwire = true };
	const char *name = NULL, *opt_podwired = NULL, *opt_lib = NULL;
	char ns[PW_LAB_NS_LEN], **existing = NULL;
	size_t nexisting = 0;
	bool created = false;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case O_NODES:
			if (!pw_lab_parse_uint("--nodes", optarg, 1, PW_LAB_MAX_NODES, &lab.nodes))
				return 2;
			break;
		case O_PODS:
			if (!pw_lab_parse_uint("--pods-per-node", optarg, 0, PW_LAB_MAX_PODS,
					       &lab.pods))
				return 2;
			break;
		case O_OVERLAY:
			if (!strcmp(optarg, "vxlan")) {
				lab.overlay = PW_LAB_VXLAN;
			} else if (!strcmp(optarg, "host-gw")) {
				lab.overlay = PW_LAB_HOSTGW;
			} else {
				pw_lab_err("bad --overlay '%s': vxlan or host-gw", optarg);
				return 2;
			}
			break;
		case O_NOPW:
			lab.podwire = false;
			break;
		case O_NAME:
			name = optarg;
			break;
		case O_PODWIRED:
			opt_podwired = optarg;
			break;
		case O_LIB:
			opt_lib = optarg;
			break;
		case 'h':
			fputs(pw_lab_up_usage, stdout);
			return 0;
		default:
			return pw_lab_usage_error("up");
		}
	}
	rc = pw_lab_opts_done(&lab, name, argc, argv, true);
	if (rc)
		return rc;
	rc = 1; /* until the lab is up */
	if (lab.podwire) {
		char help[] = "--help", out[8192], *hargv[] = { lab.podwired, help, NULL };

		if (!pw_lab_locate(lab.podwired, opt_podwired, "PODWIRE_PODWIRED", "router",
				   PW_LAB_SBINDIR, "podwired", X_OK, "podwired") ||
		    !pw_lab_locate(lab.lib, opt_lib, "PODWIRE_LIB", "preload", PW_LAB_LIBDIR,
				   "libpodwire.so", R_OK, "libpodwire.so"))
			return 1;
		/* Federation flags only for a podwired that knows them. */
		if (pw_lab_capture(hargv, out, sizeof(out)) < 0) {
			pw_lab_err("'%s --help' failed: is it podwired?", lab.podwired);
			return 1;
		}
		lab.federation = strstr(out, "--peers") != NULL;
	}
	lab.router = calloc(lab.nodes, sizeof(*lab.router));
	if (!lab.router) {
		pw_lab_err("out of memory");
		return 1;
	}

	/* Refuse to build over an existing lab, whole or in parts. */
	if (access(lab.dir, F_OK) == 0) {
		pw_lab_err("a lab named '%s' exists (state in %s); remove it first with "
			   "'podwire lab down --name %s'",
			   lab.name, lab.dir, lab.name);
		goto out;
	}
	if (pw_lab_ns_list(lab.name, &existing, &nexisting) < 0 || nexisting) {
		pw_lab_err("network namespace %s exists: part of a lab named '%s' is left; remove "
			   "it with 'podwire lab down --name %s'",
			   nexisting ? existing[0] : "?", lab.name, lab.name);
		goto out;
	}
	if ((mkdir("/run/podwire", 0755) < 0 && errno != EEXIST) ||
	    (mkdir(PW_LAB_RUN_DIR, 0755) < 0 && errno != EEXIST)) {
		pw_lab_err("mkdir " PW_LAB_RUN_DIR ": %s", strerror(errno));
		goto out;
	}
	/* Creating the state directory is the lock against a concurrent 'up'. */
	if (mkdir(lab.dir, 0755) < 0) {
		if (errno == EEXIST)
			pw_lab_err("a lab named '%s' is being created or exists (%s)", lab.name,
				   lab.dir);
		else
			pw_lab_err("mkdir %s: %s", lab.dir, strerror(errno));
		goto out;
	}
	created = true;
	pw_lab_catch_signals();

	if (pw_lab_write_secret(&lab) < 0)
		goto out;
	pw_lab_ns(&lab, 0, 0, ns);
	if (pw_lab_ns_add(&lab, ns) < 0 || pw_lab_cmd("ip -n %s link set lo up", ns) < 0 ||
	    pw_lab_cmd("ip -n %s link add name br0 up type bridge", ns) < 0)
		goto out;
	for (unsigned n = 1; n <= lab.nodes; n++)
		if (pw_lab_make_node(&lab, n) < 0)
			goto out;
	for (unsigned n = 1; n <= lab.nodes; n++)
		if (pw_lab_make_routes(&lab, n) < 0)
			goto out;
	if (lab.podwire) {
		for (unsigned n = 1; n <= lab.nodes; n++)
			if (pw_lab_router_start(&lab, n) < 0)
				goto out;
		if (pw_lab_routers_wait(&lab) < 0)
			goto out;
	}
	if (pw_lab_stopped()) {
		pw_lab_err("interrupted");
		goto out;
	}
	c = pw_lab_save(&lab);
	if (c < 0) {
		pw_lab_err("cannot write %s/state.json: %s", lab.dir, strerror(-c));
		goto out;
	}
	rc = 0;
	printf("lab '%s' is up. Run a command in a pod: podwire lab exec%s%s n1p1 -- CMD...\n\n",
	       lab.name, strcmp(lab.name, "lab") ? " --name " : "",
	       strcmp(lab.name, "lab") ? lab.name : "");
	pw_lab_print_status(&lab);
out:
	if (rc && created) {
		pw_lab_rollback(&lab);
		pw_lab_err("'up' failed; removed what it had created");
	}
	pw_lab_strv_free(existing, nexisting);
	pw_lab_free(&lab);
	return rc;
}

/* ---- status ---- */

static bool pw_lab_router_alive(const struct pw_lab_router *rt)
{
	return rt->start && pw_lab_proc_start(rt->pid) == rt->start;
}

static void pw_lab_print_status(const struct pw_lab *lab)
{
	char ns[PW_LAB_NS_LEN], buf[64];

	printf("lab %s: %u node%s, %u pod%s per node, overlay %s, podwire %s%s\n", lab->name,
	       lab->nodes, lab->nodes == 1 ? "" : "s", lab->pods, lab->pods == 1 ? "" : "s",
	       pw_lab_overlays[lab->overlay], lab->podwire ? "on" : "off",
	       !lab->podwire ? ""
			     : (lab->federation ? " (federated routers)" : " (no federation)"));
	printf("state %s\n\n", lab->dir);
	printf("%-6s %-14s %-16s %-24s %s\n", "NODE", "UNDERLAY", "POD SUBNET", "ROUTER", "NETNS");
	for (unsigned n = 1; n <= lab->nodes; n++) {
		char node[16], under[32], sub[32];

		snprintf(node, sizeof(node), "n%u", n);
		snprintf(under, sizeof(under), "198.18.0.%u", n);
		snprintf(sub, sizeof(sub), "198.19.%u.0/24", n);
		if (lab->podwire)
			snprintf(buf, sizeof(buf), "pid %d %s", (int)lab->router[n - 1].pid,
				 pw_lab_router_alive(&lab->router[n - 1]) ? "running" : "DEAD");
		else
			snprintf(buf, sizeof(buf), "-");
		pw_lab_ns(lab, n, 0, ns);
		printf("%-6s %-14s %-16s %-24s %s\n", node, under, sub, buf, ns);
	}
	if (!lab->pods)
		return;
	printf("\n%-8s %-6s %-14s %s\n", "POD", "NODE", "ADDRESS", "NETNS");
	for (unsigned n = 1; n <= lab->nodes; n++) {
		for (unsigned k = 1; k <= lab->pods; k++) {
			char pod[24], node[16], ip[32];

			snprintf(pod, sizeof(pod), "n%up%u", n, k);
			snprintf(node, sizeof(node), "n%u", n);
			snprintf(ip, sizeof(ip), "198.19.%u.%u", n, 10 + k);
			pw_lab_ns(lab, n, k, ns);
			printf("%-8s %-6s %-14s %s\n", pod, node, ip, ns);
		}
	}
}

/* Load a lab's state, or say why there is none. 0, or an exit status. */
static int pw_lab_open(struct pw_lab *lab)
{
	char **ns = NULL;
	size_t nns = 0;
	int r = pw_lab_load(lab);

	if (r == 0)
		return 0;
	if (r == -ENOENT) {
		pw_lab_ns_list(lab->name, &ns, &nns);
		if (nns || access(lab->dir, F_OK) == 0)
			pw_lab_err("lab '%s' is incomplete (being created, or an 'up' was killed); "
				   "'podwire lab down --name %s' removes it",
				   lab->name, lab->name);
		else
			pw_lab_err("no lab named '%s' (start one with 'podwire lab up%s%s')",
				   lab->name, strcmp(lab->name, "lab") ? " --name " : "",
				   strcmp(lab->name, "lab") ? lab->name : "");
		pw_lab_strv_free(ns, nns);
	} else if (r != -EINVAL) {
		pw_lab_err("cannot read %s/state.json: %s", lab->dir, strerror(-r));
	}
	return 1;
}

static const char pw_lab_status_usage[] =
	"Usage: podwire lab status [--name LAB] [--json]\n"
	"\n"
	"Show a lab: its nodes with their underlay addresses, pod subnets and routers\n"
	"(pid, running or dead), its pods with their addresses, and the overlay. --json\n"
	"prints the lab's state (" PW_LAB_RUN_DIR "/LAB/state.json) with live fields\n"
	"added: router.alive and netns_present. Exit status: 0, or 1 if there is no\n"
	"such lab.\n";

static int pw_lab_status(int argc, char **argv)
{
	struct pw_lab_opts o = { 0 };
	struct pw_lab lab = { 0 };
	int rc;

	rc = pw_lab_getopt(argc, argv, "status", pw_lab_status_usage, PW_LAB_OPT_JSON, &o);
	if (rc >= 0)
		return rc;
	rc = pw_lab_opts_done(&lab, o.name, argc, argv, false);
	if (rc)
		return rc;
	rc = pw_lab_open(&lab);
	if (rc)
		return rc;
	if (o.json) {
		cJSON *j = pw_lab_json(&lab, true);
		char *s = j ? cJSON_Print(j) : NULL;

		if (s)
			puts(s);
		else
			pw_lab_err("out of memory");
		rc = s ? 0 : 1;
		cJSON_free(s);
		cJSON_Delete(j);
	} else {
		pw_lab_print_status(&lab);
	}
	pw_lab_free(&lab);
	return rc;
}

/* ---- exec ---- */

/* Like 'ip netns exec': a private mount namespace whose /sys shows this network namespace. */
static void pw_lab_remount_sys(const char *ns)
{
	if (unshare(CLONE_NEWNS) < 0 || mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		pw_lab_err("warning: no private /sys for %s: %s", ns, strerror(errno));
		return;
	}
	umount2("/sys", MNT_DETACH);
	if (mount(ns, "/sys", "sysfs", 0, NULL) < 0)
		pw_lab_err("warning: cannot mount /sys for %s: %s", ns, strerror(errno));
}

static const char pw_lab_exec_usage[] =
	"Usage: podwire lab exec [--name LAB] [--no-podwire] POD|NODE [--] COMMAND [ARG...]\n"
	"\n"
	"Run COMMAND in the network namespace of a pod (n1p1, n2p3, ...) or a node (n1,\n"
	"n2, ...; 'u' is the underlay namespace) and become it: stdin, stdout and stderr\n"
	"pass through and the exit status is COMMAND's (127 if it cannot be run). As\n"
	"with 'ip netns exec', /sys is remounted privately to show that namespace.\n"
	"\n"
	"In a pod of a lab with podwire, COMMAND gets LD_PRELOAD=libpodwire.so and\n"
	"PODWIRE_SOCKET=the socket of its node's podwired: its TCP connections to pods\n"
	"are accelerated. In a node it gets PODWIRE_SOCKET only (so 'podwire status'\n"
	"works there) and no preload. PODWIRE_LAB is set to the lab's name.\n"
	"\n"
	"Options:\n"
	"      --name LAB       lab name (default $PODWIRE_LAB, else 'lab')\n"
	"      --no-podwire     no LD_PRELOAD or PODWIRE_SOCKET: the kernel path, for\n"
	"                       baselines\n"
	"  -h, --help           show this help\n"
	"\n"
	"Examples:\n"
	"  podwire lab exec n2p1 -- sockperf server --tcp -i 198.19.2.11\n"
	"  podwire lab exec n1p1 -- sockperf ping-pong --tcp -i 198.19.2.11 -t 5\n"
	"  podwire lab exec n1 -- curl -s http://" PW_LAB_METRICS "/metrics\n"
	"\n"
	"Needs root.\n";

static int pw_lab_exec(int argc, char **argv)
{
	struct pw_lab_opts o = { 0 };
	struct pw_lab lab = { 0 };
	const char *target;
	char ns[PW_LAB_NS_LEN], sock[PATH_MAX];
	unsigned n, k;
	int fd, rc;

	/* Options end at POD|NODE, so COMMAND's options stay COMMAND's. */
	rc = pw_lab_getopt(argc, argv, "exec", pw_lab_exec_usage, PW_LAB_OPT_NOPW | PW_LAB_OPT_CMD,
			   &o);
	if (rc >= 0)
		return rc;
	if (optind >= argc) {
		pw_lab_err("exec: which pod or node? Try 'podwire lab exec --help'.");
		return 2;
	}
	target = argv[optind++];
	if (optind < argc && !strcmp(argv[optind], "--"))
		optind++;
	if (optind >= argc) {
		pw_lab_err("exec: no command to run in %s", target);
		return 2;
	}
	if (!pw_lab_set_name(&lab, o.name))
		return 2;
	rc = pw_lab_open(&lab);
	if (rc)
		return rc;
	if (!pw_lab_parse_target(target, &n, &k) || n > lab.nodes || k > lab.pods) {
		pw_lab_err("lab '%s' has no pod or node '%s' (nodes n1..n%u, pods n1p1..n%up%u)",
			   lab.name, target, lab.nodes, lab.nodes, lab.pods);
		pw_lab_free(&lab);
		return 2;
	}
	if (!pw_lab_need_root()) {
		pw_lab_free(&lab);
		return 1;
	}
	pw_lab_ns(&lab, n, k, ns);
	fd = pw_lab_ns_open(ns);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		pw_lab_err("cannot enter network namespace %s: %s", ns,
			   strerror(fd < 0 ? -fd : errno));
		pw_lab_free(&lab);
		return 1;
	}
	close(fd);
	pw_lab_remount_sys(ns);
	setenv("PODWIRE_LAB", lab.name, 1);
	if (lab.podwire && !o.nopw && n) {
		pw_lab_node_file(&lab, n, "podwired.sock", sock, sizeof(sock));
		setenv("PODWIRE_SOCKET", sock, 1);
		if (k) {
			const char *old = getenv("LD_PRELOAD");
			char inject[PATH_MAX + 32];
			pw_lab_preload_value(lab.lib, inject, sizeof(inject));
			size_t len = strlen(inject) + (old ? strlen(old) + 1 : 0) + 1;
			char *pre = malloc(len);

			if (!pre) {
				pw_lab_err("out of memory");
				pw_lab_free(&lab);
				return 1;
			}
			snprintf(pre, len, "%s%s%s", inject, old && *old ? ":" : "",
				 old ? old : "");
			setenv("LD_PRELOAD", pre, 1);
			free(pre);
		}
	}
	pw_lab_free(&lab);
	execvp(argv[optind], argv + optind);
	rc = errno == ENOENT ? 127 : 126;
	pw_lab_err("cannot run %s in %s: %s", argv[optind], target, strerror(errno));
	return rc;
}

/* ---- down ---- */

static const char pw_lab_down_usage[] =
	"Usage: podwire lab down [--name LAB]\n"
	"\n"
	"Remove a lab: stop every process in its namespaces (SIGTERM, then SIGKILL),\n"
	"delete the namespaces (with them every link of the lab) and the state\n"
	"directory " PW_LAB_RUN_DIR "/LAB. Works on a partial lab (a killed 'up', dead\n"
	"routers, lost state): it finds the namespaces by name (pwlab-LAB-*). Removing a\n"
	"lab that does not exist succeeds.\n"
	"\n"
	"Options:\n"
	"      --name LAB   lab name (default $PODWIRE_LAB, else 'lab')\n"
	"  -h, --help       show this help\n"
	"\n"
	"Needs root. Exit status: 0 removed (or nothing to remove), 1 if something\n"
	"could not be removed.\n";

static int pw_lab_down(int argc, char **argv)
{
	struct pw_lab_opts o = { 0 };
	struct pw_lab lab = { 0 };
	char **ns = NULL;
	size_t nns = 0, left;
	bool had_dir, failed = false;
	int r;

	r = pw_lab_getopt(argc, argv, "down", pw_lab_down_usage, 0, &o);
	if (r >= 0)
		return r;
	r = pw_lab_opts_done(&lab, o.name, argc, argv, true);
	if (r)
		return r;
	/* The state is optional here: it only adds routers whose namespace is gone. */
	if (pw_lab_load(&lab) < 0)
		lab.nodes = 0;
	had_dir = access(lab.dir, F_OK) == 0;
	r = pw_lab_ns_list(lab.name, &ns, &nns);
	if (r < 0) {
		pw_lab_err("cannot list /run/netns: %s", strerror(-r));
		failed = true;
	}
	left = pw_lab_ns_kill(ns, nns);
	if (left) {
		pw_lab_err("%zu process%s in the lab's namespaces would not die", left,
			   left == 1 ? "" : "es");
		failed = true;
	}
	for (unsigned n = 0; n < lab.nodes; n++)
		if (pw_lab_router_alive(&lab.router[n]))
			kill(lab.router[n].pid, SIGKILL);
	for (size_t i = 0; i < nns; i++)
		if (pw_lab_cmd("ip netns del %s", ns[i]) < 0)
			failed = true;
	r = pw_lab_rmtree(lab.dir);
	if (r < 0) {
		pw_lab_err("cannot remove %s: %s", lab.dir, strerror(-r));
		failed = true;
	}
	rmdir(PW_LAB_RUN_DIR); /* only if no other lab is left */
	if (!nns && !had_dir)
		printf("no lab named '%s': nothing to remove\n", lab.name);
	else if (!failed)
		printf("lab '%s' removed (%zu namespace%s)\n", lab.name, nns, nns == 1 ? "" : "s");
	pw_lab_strv_free(ns, nns);
	pw_lab_free(&lab);
	return failed ? 1 : 0;
}

/* ---- dispatch ---- */

static int pw_lab_help(int argc, char **argv);

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} pw_lab_cmds[] = {
	{ "up", pw_lab_up, "create a lab: nodes, pods, overlay, one podwired per node" },
	{ "exec", pw_lab_exec, "run a command in a pod or node (with the preload in pods)" },
	{ "status", pw_lab_status, "show nodes, pods, addresses and routers (--json)" },
	{ "down", pw_lab_down, "remove a lab and everything it made" },
	{ "help", pw_lab_help, "show this help" },
};

static int pw_lab_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("Usage: podwire lab COMMAND [OPTIONS]\n\n"
	       "A local multi-node cluster made of network namespaces: nodes n1..nN on an\n"
	       "underlay bridge (198.18.0.N/24), pods nNpK on each node's bridge\n"
	       "(198.19.N.(10+K)/24), a VXLAN or host-gw overlay between nodes and one podwired\n"
	       "per node. All commands take --name LAB (default $PODWIRE_LAB, else 'lab').\n"
	       "See docs/LAB.md.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof(pw_lab_cmds) / sizeof(pw_lab_cmds[0]); i++)
		printf("  %-8s %s\n", pw_lab_cmds[i].name, pw_lab_cmds[i].help);
	printf("\nRun 'podwire lab COMMAND --help' for a command's options.\n"
	       "Example:\n"
	       "  podwire lab up --nodes 2 --pods-per-node 2\n"
	       "  podwire lab exec n2p1 -- sockperf server --tcp -i 198.19.2.11 &\n"
	       "  podwire lab exec n1p1 -- sockperf ping-pong --tcp -i 198.19.2.11 -t 2\n"
	       "  podwire lab down\n");
	return 0;
}

int pw_lab_main(int argc, char **argv)
{
	if (argc < 2) {
		pw_lab_help(0, NULL);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return pw_lab_help(0, NULL);
	for (size_t i = 0; i < sizeof(pw_lab_cmds) / sizeof(pw_lab_cmds[0]); i++)
		if (!strcmp(argv[1], pw_lab_cmds[i].name))
			return pw_lab_cmds[i].fn(argc - 1, argv + 1);
	pw_lab_err("unknown command '%s'\nTry 'podwire lab help'.", argv[1]);
	return 2;
}
