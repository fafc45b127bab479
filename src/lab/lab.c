// SPDX-License-Identifier: MIT
/*
 * podwire lab: a cluster of nodes and pods made of network namespaces, one
 * podwired per node, and a Flannel-like baseline between nodes (kernel VXLAN
 * or host-gw routes). Nothing is created in the caller's network namespace:
 * the underlay bridge lives in a namespace of its own. Topology, addresses
 * and commands: docs/LAB.md; the address plan: lab.h.
 *
 * This file: the dispatch, the names and options every command shares, and
 * the commands status, exec and down ('up' is in lab_up.c).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "lab.h"

void pw_lab_err(const char *fmt, ...)
{
	va_list ap;

	fputs("podwire lab: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- names ---- */

bool pw_lab_name_is_valid(const char *s)
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

bool pw_lab_name_set(struct pw_lab *lab, const char *opt)
{
	const char *env = getenv("PODWIRE_LAB");
	const char *name = opt ? opt : (env && *env ? env : PW_LAB_DEFAULT);

	if (!pw_lab_name_is_valid(name)) {
		pw_lab_err("bad lab name '%s': 1 to %d letters, digits, '_' or '-', starting with "
			   "a letter or digit",
			   name, PW_LAB_NAME_MAX);
		return false;
	}
	memcpy(lab->name, name, strlen(name) + 1);
	snprintf(lab->dir, sizeof(lab->dir), PW_LAB_RUN_DIR "/%s", name);
	return true;
}

bool pw_lab_target_parse(const char *s, unsigned *ret_node, unsigned *ret_pod)
{
	unsigned long v[2] = { 0, 0 };
	int i = 0;

	if (!strcmp(s, "u")) {
		*ret_node = *ret_pod = 0;
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
	*ret_node = (unsigned)v[0];
	*ret_pod = (unsigned)v[1];
	return true;
}

bool pw_lab_ns_is_ours(const char *name, const char *ns)
{
	size_t pre = strlen(PW_LAB_NS_PREFIX), len = strlen(name);
	unsigned n, k;

	if (strncmp(ns, PW_LAB_NS_PREFIX, pre) != 0 || strncmp(ns + pre, name, len) != 0 ||
	    ns[pre + len] != '-')
		return false;
	return pw_lab_target_parse(ns + pre + len + 1, &n, &k);
}

static int pw_lab_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int pw_lab_ns_list(const char *name, char ***ret_ns, size_t *ret_n)
{
	DIR *d = opendir(PW_LAB_NETNS_DIR);
	char **v = NULL;
	size_t cap = 0, n = 0;
	struct dirent *e;
	int r = 0;

	if (!d) {
		*ret_ns = NULL;
		*ret_n = 0;
		return errno == ENOENT ? 0 : -errno;
	}
	while ((e = readdir(d))) {
		if (!pw_lab_ns_is_ours(name, e->d_name))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(v, ncap * sizeof(*nv));

			if (!nv) {
				r = -ENOMEM;
				break;
			}
			v = nv;
			cap = ncap;
		}
		v[n] = strdup(e->d_name);
		if (!v[n]) {
			r = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(d);
	if (n)
		qsort(v, n, sizeof(*v), pw_lab_str_cmp);
	*ret_ns = v;
	*ret_n = n;
	return r;
}

void pw_lab_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- options ---- */

bool pw_lab_root_check(void)
{
	if (geteuid() == 0)
		return true;
	pw_lab_err("must run as root (it manages network namespaces)");
	return false;
}

bool pw_lab_uint_parse(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *ret_val)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || x < lo || x > hi) {
		pw_lab_err("bad %s '%s': a number from %u to %u", opt, s, lo, hi);
		return false;
	}
	*ret_val = (unsigned)x;
	return true;
}

int pw_lab_usage_err(const char *cmd)
{
	fprintf(stderr, "Try 'podwire lab %s --help'.\n", cmd);
	return 2;
}

int pw_lab_opts_finish(struct pw_lab *lab, const char *name, int argc, char **argv, bool root)
{
	if (optind < argc) {
		pw_lab_err("unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (!pw_lab_name_set(lab, name))
		return 2;
	return !root || pw_lab_root_check() ? 0 : 1;
}

enum {
	PW_LAB_OPT_JSON = 1, /* --json */
	PW_LAB_OPT_NOPW = 2, /* --no-podwire */
	PW_LAB_OPT_CMD = 4,  /* stop at the first argument: it starts a command line */
};

struct pw_lab_opts {
	const char *name;
	bool json, nopw;
};

/*
 * status, exec and down: they share --name and --help, and work on a lab.
 * run gets the parsed options, with optind at the first argument left.
 */
struct pw_lab_cmd_spec {
	const char *name;
	unsigned flags; /* PW_LAB_OPT_*: the options it takes besides --name and --help */
	int (*run)(struct pw_lab *lab, const struct pw_lab_opts *o, int argc, char **argv);
	const char *usage;
};

/*
 * Options of status, exec and down: --name, --help and those in spec->flags.
 * Returns -1 to go on, or the exit status (0 after --help, 2 on a bad option).
 */
static int pw_lab_opts_parse(int argc, char **argv, const struct pw_lab_cmd_spec *spec,
			     struct pw_lab_opts *ret_opts)
{
	static const struct option longopts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-podwire", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *shortopts = spec->flags & PW_LAB_OPT_CMD ? "+h" : "h";
	int c;

	optind = 0; /* also resets getopt's own state (glibc, musl): parses can repeat */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == 'n') {
			ret_opts->name = optarg;
		} else if (c == 'j' && (spec->flags & PW_LAB_OPT_JSON)) {
			ret_opts->json = true;
		} else if (c == 'N' && (spec->flags & PW_LAB_OPT_NOPW)) {
			ret_opts->nopw = true;
		} else if (c == 'h') {
			fputs(spec->usage, stdout);
			return 0;
		} else {
			if (c == 'j' || c == 'N')
				pw_lab_err("%s takes no %s", spec->name, argv[optind - 1]);
			return pw_lab_usage_err(spec->name);
		}
	}
	return -1;
}

/* ---- status ---- */

void pw_lab_status_print(const struct pw_lab *lab)
{
	char ns[PW_LAB_NS_LEN], buf[64];

	printf("lab %s: %u node%s, %u pod%s per node, overlay %s, podwire %s%s\n", lab->name,
	       lab->nodes, lab->nodes == 1 ? "" : "s", lab->pods, lab->pods == 1 ? "" : "s",
	       pw_lab_overlay_name(lab->overlay), lab->podwire ? "on" : "off",
	       !lab->podwire ? ""
			     : (lab->federation ? " (federated routers)" : " (no federation)"));
	printf("state %s\n\n", lab->dir);
	printf("%-6s %-14s %-16s %-24s %s\n", "NODE", "UNDERLAY", "POD SUBNET", "ROUTER", "NETNS");
	for (unsigned n = 1; n <= lab->nodes; n++) {
		struct pw_lab_node_addr addr;

		pw_lab_node_addr_format(n, &addr);
		if (lab->podwire)
			snprintf(buf, sizeof(buf), "pid %d %s", (int)lab->router[n - 1].pid,
				 pw_lab_router_is_alive(&lab->router[n - 1]) ? "running" : "DEAD");
		else
			snprintf(buf, sizeof(buf), "-");
		pw_lab_ns_format(lab->name, n, 0, ns);
		printf("%-6s %-14s %-16s %-24s %s\n", addr.name, addr.underlay, addr.subnet, buf,
		       ns);
	}
	if (!lab->pods)
		return;
	printf("\n%-8s %-6s %-14s %s\n", "POD", "NODE", "ADDRESS", "NETNS");
	for (unsigned n = 1; n <= lab->nodes; n++) {
		struct pw_lab_node_addr node;

		pw_lab_node_addr_format(n, &node);
		for (unsigned k = 1; k <= lab->pods; k++) {
			struct pw_lab_pod_addr pod;

			pw_lab_pod_addr_format(n, k, &pod);
			pw_lab_ns_format(lab->name, n, k, ns);
			printf("%-8s %-6s %-14s %s\n", pod.name, node.name, pod.ip, ns);
		}
	}
}

void pw_lab_name_opt_format(const struct pw_lab *lab, char *ret_opt, size_t len)
{
	if (strcmp(lab->name, PW_LAB_DEFAULT) != 0)
		snprintf(ret_opt, len, " --name %s", lab->name);
	else if (len)
		*ret_opt = '\0';
}

/* Load a lab's state, or say why there is none. 0, or an exit status. */
static int pw_lab_open(struct pw_lab *lab)
{
	char **ns = NULL, opt[PW_LAB_NAME_MAX + 16];
	size_t nns = 0;
	int r = pw_lab_state_read(lab);

	if (r == 0)
		return 0;
	if (r == -ENOENT) {
		pw_lab_ns_list(lab->name, &ns, &nns);
		pw_lab_name_opt_format(lab, opt, sizeof(opt));
		if (nns || access(lab->dir, F_OK) == 0)
			pw_lab_err("lab '%s' is incomplete (being created, or an 'up' was killed); "
				   "'podwire lab down --name %s' removes it",
				   lab->name, lab->name);
		else
			pw_lab_err("no lab named '%s' (start one with 'podwire lab up%s')",
				   lab->name, opt);
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

static int pw_lab_status(struct pw_lab *lab, const struct pw_lab_opts *o, int argc, char **argv)
{
	int rc = pw_lab_opts_finish(lab, o->name, argc, argv, false);

	if (rc)
		return rc;
	rc = pw_lab_open(lab);
	if (rc)
		return rc;
	if (o->json) {
		cJSON *j = pw_lab_state_to_json(lab, true);
		char *s = j ? cJSON_Print(j) : NULL;

		if (s)
			puts(s);
		else
			pw_lab_err("out of memory");
		rc = s ? 0 : 1;
		cJSON_free(s);
		cJSON_Delete(j);
	} else {
		pw_lab_status_print(lab);
	}
	return rc;
}

/* ---- exec ---- */

/* Like 'ip netns exec': a private mount namespace whose /sys shows this network namespace. */
static void pw_lab_sys_remount(const char *ns)
{
	if (unshare(CLONE_NEWNS) < 0 || mount("", "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		pw_lab_err("warning: no private /sys for %s: %s", ns, strerror(errno));
		return;
	}
	umount2("/sys", MNT_DETACH);
	if (mount(ns, "/sys", "sysfs", 0, NULL) < 0)
		pw_lab_err("warning: cannot mount /sys for %s: %s", ns, strerror(errno));
}

/*
 * The LD_PRELOAD value for pods: DIR/$LIB/libpodwire.so when the preload tree
 * lies next to @lib (build: src/preload/preload/, installed: podwire/preload/
 * beside it), so that glibc and musl programs each load their own build
 * (docs/PRELOAD.md), and DIR/$LIB/libpodwire-verbs.so after it when the tree
 * has the virtual RDMA device (docs/RDMA.md); else @lib itself.
 */
static void pw_lab_preload_resolve(const char *lib, char *ret_val, size_t len)
{
	static const char *const trees[] = { "preload", "podwire/preload" };
	char dir[PATH_MAX], probe[PATH_MAX + 64];
	const char *slash = strrchr(lib, '/');

	snprintf(ret_val, len, "%s", lib);
	if (!slash || (size_t)(slash - lib) >= sizeof(dir))
		return;
	memcpy(dir, lib, (size_t)(slash - lib));
	dir[slash - lib] = '\0';
	for (size_t i = 0; i < sizeof(trees) / sizeof(trees[0]); i++) {
		snprintf(probe, sizeof(probe), "%s/%s/lib/libpodwire.so", dir, trees[i]);
		if (access(probe, R_OK) == 0) {
			snprintf(probe, sizeof(probe), "%s/%s/lib/libpodwire-verbs.so", dir,
				 trees[i]);
			int n = access(probe, R_OK) == 0
					? snprintf(ret_val, len,
						   "%s/%s/$LIB/libpodwire.so:%s/%s/$LIB/"
						   "libpodwire-verbs.so",
						   dir, trees[i], dir, trees[i])
					: snprintf(ret_val, len, "%s/%s/$LIB/libpodwire.so", dir,
						   trees[i]);
			if (n < 0 || (size_t)n >= len)
				snprintf(ret_val, len, "%s", lib);
			return;
		}
	}
}

/*
 * The environment of a command in node n (pod k, or 0): PODWIRE_LAB, and in a
 * podwire lab unless nopw PODWIRE_SOCKET, and in a pod LD_PRELOAD before any
 * the caller had. 0, or -ENOMEM (reported).
 */
static int pw_lab_exec_env_set(const struct pw_lab *lab, unsigned n, unsigned k, bool nopw)
{
	char sock[PATH_MAX], inject[2 * PATH_MAX + 64];
	const char *old = getenv("LD_PRELOAD");
	size_t len;
	char *pre;

	setenv("PODWIRE_LAB", lab->name, 1);
	if (!lab->podwire || nopw || !n)
		return 0;
	pw_lab_node_path_format(lab, n, "podwired.sock", sock, sizeof(sock));
	setenv("PODWIRE_SOCKET", sock, 1);
	if (!k)
		return 0;
	pw_lab_preload_resolve(lab->lib, inject, sizeof(inject));
	len = strlen(inject) + (old ? strlen(old) + 1 : 0) + 1;
	pre = malloc(len);
	if (!pre) {
		pw_lab_err("out of memory");
		return -ENOMEM;
	}
	snprintf(pre, len, "%s%s%s", inject, old && *old ? ":" : "", old ? old : "");
	setenv("LD_PRELOAD", pre, 1);
	free(pre);
	return 0;
}

/* Enter the lab's namespace of node n (pod k) and set the environment. 0, or an exit status. */
static int pw_lab_exec_enter(const struct pw_lab *lab, unsigned n, unsigned k, bool nopw)
{
	char ns[PW_LAB_NS_LEN];
	int fd;

	if (!pw_lab_root_check())
		return 1;
	pw_lab_ns_format(lab->name, n, k, ns);
	fd = pw_lab_ns_open(ns);
	if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
		pw_lab_err("cannot enter network namespace %s: %s", ns,
			   strerror(fd < 0 ? -fd : errno));
		pw_lab_fd_close(fd);
		return 1;
	}
	close(fd);
	pw_lab_sys_remount(ns);
	return pw_lab_exec_env_set(lab, n, k, nopw) < 0 ? 1 : 0;
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
	"  podwire lab exec n2p1 -- sockperf server --tcp -i " PW_LAB_POD_NET ".2.11\n"
	"  podwire lab exec n1p1 -- sockperf ping-pong --tcp -i " PW_LAB_POD_NET ".2.11 -t 5\n"
	"  podwire lab exec n1 -- curl -s http://" PW_LAB_METRICS "/metrics\n"
	"\n"
	"Needs root.\n";

static int pw_lab_exec(struct pw_lab *lab, const struct pw_lab_opts *o, int argc, char **argv)
{
	const char *target;
	unsigned n, k;
	int rc;

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
	if (!pw_lab_name_set(lab, o->name))
		return 2;
	rc = pw_lab_open(lab);
	if (rc)
		return rc;
	if (!pw_lab_target_parse(target, &n, &k) || n > lab->nodes || k > lab->pods) {
		pw_lab_err("lab '%s' has no pod or node '%s' (nodes n1..n%u, pods n1p1..n%up%u)",
			   lab->name, target, lab->nodes, lab->nodes, lab->pods);
		return 2;
	}
	rc = pw_lab_exec_enter(lab, n, k, o->nopw);
	if (rc)
		return rc;
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
	"routers, lost state): it finds the namespaces by name (" PW_LAB_NS_PREFIX
	"LAB-*). Removing a\n"
	"lab that does not exist succeeds.\n"
	"\n"
	"Options:\n"
	"      --name LAB   lab name (default $PODWIRE_LAB, else 'lab')\n"
	"  -h, --help       show this help\n"
	"\n"
	"Needs root. Exit status: 0 removed (or nothing to remove), 1 if something\n"
	"could not be removed.\n";

/* Kill and delete namespaces ns[0..n) and the routers lab's state names. False if any is left. */
static bool pw_lab_ns_remove(const struct pw_lab *lab, char **ns, size_t n)
{
	size_t left = pw_lab_ns_kill(ns, n);
	bool ok = true;

	if (left) {
		pw_lab_err("%zu process%s in the lab's namespaces would not die", left,
			   left == 1 ? "" : "es");
		ok = false;
	}
	for (unsigned i = 0; i < lab->nodes; i++)
		if (pw_lab_router_is_alive(&lab->router[i]))
			kill(lab->router[i].pid, SIGKILL);
	for (size_t i = 0; i < n; i++)
		if (pw_lab_cmdline_run("ip netns del %s", ns[i]) < 0)
			ok = false;
	return ok;
}

static int pw_lab_down(struct pw_lab *lab, const struct pw_lab_opts *o, int argc, char **argv)
{
	char **ns = NULL;
	size_t nns = 0;
	bool had_dir, failed = false;
	int r = pw_lab_opts_finish(lab, o->name, argc, argv, true);

	if (r)
		return r;
	/* The state is optional here: it only adds routers whose namespace is gone. */
	if (pw_lab_state_read(lab) < 0)
		lab->nodes = 0;
	had_dir = access(lab->dir, F_OK) == 0;
	r = pw_lab_ns_list(lab->name, &ns, &nns);
	if (r < 0) {
		pw_lab_err("cannot list " PW_LAB_NETNS_DIR ": %s", strerror(-r));
		failed = true;
	}
	if (!pw_lab_ns_remove(lab, ns, nns))
		failed = true;
	r = pw_lab_tree_remove(lab->dir);
	if (r < 0) {
		pw_lab_err("cannot remove %s: %s", lab->dir, strerror(-r));
		failed = true;
	}
	rmdir(PW_LAB_RUN_DIR); /* only if no other lab is left */
	if (!nns && !had_dir)
		printf("no lab named '%s': nothing to remove\n", lab->name);
	else if (!failed)
		printf("lab '%s' removed (%zu namespace%s)\n", lab->name, nns, nns == 1 ? "" : "s");
	pw_lab_strv_free(ns, nns);
	return failed ? 1 : 0;
}

/* ---- dispatch ---- */

static const struct pw_lab_cmd_spec pw_lab_specs[] = {
	/* exec's options end at POD|NODE, so COMMAND's options stay COMMAND's. */
	{ "exec", PW_LAB_OPT_NOPW | PW_LAB_OPT_CMD, pw_lab_exec, pw_lab_exec_usage },
	{ "status", PW_LAB_OPT_JSON, pw_lab_status, pw_lab_status_usage },
	{ "down", 0, pw_lab_down, pw_lab_down_usage },
};

/* status, exec or down (argv[0]): the options they share, then the command. */
static int pw_lab_spec_run(int argc, char **argv)
{
	const struct pw_lab_cmd_spec *spec = NULL;
	struct pw_lab_opts o = { 0 };
	struct pw_lab lab = { 0 };
	int rc;

	for (size_t i = 0; i < sizeof(pw_lab_specs) / sizeof(pw_lab_specs[0]) && !spec; i++)
		if (!strcmp(argv[0], pw_lab_specs[i].name))
			spec = &pw_lab_specs[i];
	if (!spec) /* pw_lab_cmds names a command pw_lab_specs lacks */
		return 2;
	rc = pw_lab_opts_parse(argc, argv, spec, &o);
	if (rc >= 0)
		return rc;
	rc = spec->run(&lab, &o, argc, argv);
	pw_lab_free(&lab);
	return rc;
}

static int pw_lab_help(int argc, char **argv);

static const struct pw_cli_cmd pw_lab_cmds[] = {
	{ "up", pw_lab_up, "create a lab: nodes, pods, overlay, one podwired per node" },
	{ "exec", pw_lab_spec_run, "run a command in a pod or node (with the preload in pods)" },
	{ "status", pw_lab_spec_run, "show nodes, pods, addresses and routers (--json)" },
	{ "down", pw_lab_spec_run, "remove a lab and everything it made" },
	{ "help", pw_lab_help, "show this help" },
};

static int pw_lab_help(int argc, char **argv)
{
	printf("Usage: podwire lab COMMAND [OPTIONS]\n\n"
	       "A local multi-node cluster made of network namespaces: nodes n1..nN on an\n"
	       "underlay bridge (" PW_LAB_TEXT_NODE_IP PW_LAB_TEXT_LEN
	       "), pods nNpK on each node's bridge\n"
	       "(" PW_LAB_TEXT_POD_IP PW_LAB_TEXT_LEN
	       "), a VXLAN or host-gw overlay between nodes and one podwired\n"
	       "per node. All commands take --name LAB (default $PODWIRE_LAB, else 'lab').\n"
	       "See docs/LAB.md.\n\nCommands:\n");
	pw_cli_cmd_list(pw_lab_cmds, sizeof(pw_lab_cmds) / sizeof(pw_lab_cmds[0]), 8);
	printf("\nRun 'podwire lab COMMAND --help' for a command's options.\n"
	       "Example:\n"
	       "  podwire lab up --nodes 2 --pods-per-node 2\n"
	       "  podwire lab exec n2p1 -- sockperf server --tcp -i " PW_LAB_POD_NET ".2.11 &\n"
	       "  podwire lab exec n1p1 -- sockperf ping-pong --tcp -i " PW_LAB_POD_NET
	       ".2.11 -t 2\n"
	       "  podwire lab down\n");
	return 0;
}

int pw_lab_main(int argc, char **argv)
{
	return pw_cli_cmd_dispatch(pw_lab_cmds, sizeof(pw_lab_cmds) / sizeof(pw_lab_cmds[0]), argc,
				   argv, "podwire lab");
}
