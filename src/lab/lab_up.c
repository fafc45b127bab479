// SPDX-License-Identifier: MIT
/*
 * podwire lab up: the underlay namespace and bridge, the nodes and their
 * pods, the overlay routes between nodes, one podwired per node, then the
 * state file. Every address and link name comes from the plan in lab.h. A
 * failure (or a signal) removes what this 'up' created.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/addr.h"
#include "lab.h"

#define PW_LAB_START_TIMEOUT 10 /* seconds for a router to open its socket */

#ifndef PW_LAB_SBINDIR
#define PW_LAB_SBINDIR "sbin"
#endif
#ifndef PW_LAB_LIBDIR
#define PW_LAB_LIBDIR "lib"
#endif

/* ---- finding podwired and libpodwire.so ---- */

/*
 * The first of: the option, the environment variable, then next to the
 * running podwire: the build tree (src/cli/podwire -> src/router/podwired,
 * src/preload/libpodwire.so) or the installed layout (bin/podwire ->
 * sbin/podwired, lib/.../libpodwire.so). Resolved to an absolute path.
 */
static bool pw_lab_file_locate(char *ret_path, const char *opt, const char *env,
			       const char *build_rel, const char *inst_dir, const char *file,
			       int mode, const char *what)
{
	const char *e = getenv(env);
	char exe[PATH_MAX], cand[2][2 * PATH_MAX];
	int ncand = 0;

	if (opt || (e && *e)) {
		const char *p = opt ? opt : e;

		if (access(p, mode) < 0 || !realpath(p, ret_path)) {
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
		if (access(cand[i], mode) == 0 && realpath(cand[i], ret_path))
			return true;
	pw_lab_err("cannot find %s next to this podwire (tried %s%s%s); give its path with "
		   "--%s or $%s",
		   what, ncand ? cand[0] : "nothing", ncand > 1 ? " and " : "",
		   ncand > 1 ? cand[1] : "", mode == X_OK ? "podwired" : "lib", env);
	return false;
}

/* ---- namespaces and links ---- */

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
	if (pw_lab_cmdline_run("ip netns add %s", ns) < 0) {
		free(copy);
		return -1;
	}
	lab->made[lab->nmade++] = copy;
	return 0;
}

static int pw_lab_sysctl_set(const char *ns, const char *path, const char *val)
{
	int r = pw_lab_ns_write(ns, path, val);

	if (r < 0)
		pw_lab_err("cannot set %s to %s in %s: %s", path, val, ns, strerror(-r));
	return r;
}

/* The underlay: its namespace, holding only the bridge the nodes plug into. */
static int pw_lab_underlay_make(struct pw_lab *lab)
{
	char ns[PW_LAB_NS_LEN];

	pw_lab_ns_format(lab->name, 0, 0, ns);
	if (pw_lab_ns_add(lab, ns) < 0 || pw_lab_cmdline_run("ip -n %s link set lo up", ns) < 0 ||
	    pw_lab_cmdline_run("ip -n %s link add name " PW_LAB_UNDERLAY_BRIDGE " up type bridge",
			       ns) < 0)
		return -1;
	return 0;
}

static unsigned pw_lab_pod_mtu_get(const struct pw_lab *lab)
{
	return lab->overlay == PW_LAB_OVERLAY_VXLAN ? PW_LAB_VXLAN_MTU : PW_LAB_MTU;
}

/* Node n's flannel.1: the VXLAN device, with the node's VTEP address. */
static int pw_lab_vxlan_make(const char *ns, const struct pw_lab_node_addr *addr)
{
	if (pw_lab_cmdline_run("ip -n %s link add " PW_LAB_VXLAN_DEV
			       " address %s mtu %d type vxlan "
			       "id %d local %s dev " PW_LAB_UPLINK " dstport %d nolearning",
			       ns, addr->mac, PW_LAB_VXLAN_MTU, PW_LAB_VXLAN_VNI, addr->underlay,
			       PW_LAB_VXLAN_PORT) < 0 ||
	    pw_lab_cmdline_run("ip -n %s addr add %s/32 dev " PW_LAB_VXLAN_DEV, ns, addr->vtep) <
		    0 ||
	    pw_lab_cmdline_run("ip -n %s link set " PW_LAB_VXLAN_DEV " up", ns) < 0)
		return -1;
	return 0;
}

/* Pod k of node n (namespace node_ns): its namespace, and its veth on cni0. */
static int pw_lab_pod_make(struct pw_lab *lab, const char *node_ns,
			   const struct pw_lab_node_addr *node, unsigned n, unsigned k)
{
	char ns[PW_LAB_NS_LEN];
	struct pw_lab_pod_addr pod;
	unsigned mtu = pw_lab_pod_mtu_get(lab);

	pw_lab_ns_format(lab->name, n, k, ns);
	pw_lab_pod_addr_format(n, k, &pod);
	if (pw_lab_ns_add(lab, ns) < 0 || pw_lab_cmdline_run("ip -n %s link set lo up", ns) < 0 ||
	    pw_lab_cmdline_run("ip -n %s link add " PW_LAB_POD_VETH
			       " mtu %u master " PW_LAB_POD_BRIDGE
			       " up type veth peer name " PW_LAB_UPLINK " netns %s mtu %u",
			       node_ns, k, mtu, ns, mtu) < 0 ||
	    pw_lab_cmdline_run("ip -n %s addr add %s/%d dev " PW_LAB_UPLINK, ns, pod.ip,
			       PW_LAB_SUBNET_LEN) < 0 ||
	    pw_lab_cmdline_run("ip -n %s link set " PW_LAB_UPLINK " up", ns) < 0 ||
	    pw_lab_cmdline_run("ip -n %s route add default via %s", ns, node->gateway) < 0)
		return -1;
	return 0;
}

static int pw_lab_node_make(struct pw_lab *lab, unsigned n)
{
	char u[PW_LAB_NS_LEN], ns[PW_LAB_NS_LEN];
	struct pw_lab_node_addr addr;

	pw_lab_node_addr_format(n, &addr);
	pw_lab_ns_format(lab->name, 0, 0, u);
	pw_lab_ns_format(lab->name, n, 0, ns);
	if (pw_lab_ns_add(lab, ns) < 0)
		return -1;
	/*
	 * IPv4 settings of a new namespace are copied from the host's: make
	 * reverse-path filtering loose, or replies that come back over the
	 * other path (pod to another node's underlay address, VXLAN) drop.
	 */
	if (pw_lab_sysctl_set(ns, "/proc/sys/net/ipv4/conf/all/rp_filter", "0") < 0 ||
	    pw_lab_sysctl_set(ns, "/proc/sys/net/ipv4/conf/default/rp_filter", "0") < 0 ||
	    pw_lab_sysctl_set(ns, "/proc/sys/net/ipv4/ip_forward", "1") < 0)
		return -1;
	if (pw_lab_cmdline_run("ip -n %s link set lo up", ns) < 0 ||
	    pw_lab_cmdline_run("ip -n %s link add " PW_LAB_NODE_VETH
			       " master " PW_LAB_UNDERLAY_BRIDGE
			       " up type veth peer name " PW_LAB_UPLINK " netns %s",
			       u, n, ns) < 0 ||
	    pw_lab_cmdline_run("ip -n %s addr add %s/%d dev " PW_LAB_UPLINK, ns, addr.underlay,
			       PW_LAB_SUBNET_LEN) < 0 ||
	    pw_lab_cmdline_run("ip -n %s link set " PW_LAB_UPLINK " up", ns) < 0 ||
	    pw_lab_cmdline_run("ip -n %s link add name " PW_LAB_POD_BRIDGE " mtu %u up type bridge",
			       ns, pw_lab_pod_mtu_get(lab)) < 0 ||
	    pw_lab_cmdline_run("ip -n %s addr add %s/%d dev " PW_LAB_POD_BRIDGE, ns, addr.gateway,
			       PW_LAB_SUBNET_LEN) < 0)
		return -1;
	if (lab->overlay == PW_LAB_OVERLAY_VXLAN && pw_lab_vxlan_make(ns, &addr) < 0)
		return -1;
	for (unsigned k = 1; k <= lab->pods; k++)
		if (pw_lab_pod_make(lab, ns, &addr, n, k) < 0)
			return -1;
	return 0;
}

/* Routes from node n to every other node's pods: what flannel installs. */
static int pw_lab_routes_make(struct pw_lab *lab, unsigned n)
{
	char ns[PW_LAB_NS_LEN];

	pw_lab_ns_format(lab->name, n, 0, ns);
	for (unsigned m = 1; m <= lab->nodes; m++) {
		struct pw_lab_node_addr to;

		if (m == n)
			continue;
		pw_lab_node_addr_format(m, &to);
		if (lab->overlay == PW_LAB_OVERLAY_HOSTGW) {
			if (pw_lab_cmdline_run("ip -n %s route add %s via %s dev " PW_LAB_UPLINK,
					       ns, to.subnet, to.underlay) < 0)
				return -1;
			continue;
		}
		if (pw_lab_cmdline_run("ip -n %s neigh add %s lladdr %s dev " PW_LAB_VXLAN_DEV
				       " nud permanent",
				       ns, to.vtep, to.mac) < 0 ||
		    pw_lab_cmdline_run("bridge -n %s fdb append %s dev " PW_LAB_VXLAN_DEV
				       " dst %s self permanent",
				       ns, to.mac, to.underlay) < 0 ||
		    pw_lab_cmdline_run("ip -n %s route add %s via %s dev " PW_LAB_VXLAN_DEV
				       " onlink",
				       ns, to.subnet, to.vtep) < 0)
			return -1;
	}
	return 0;
}

/* ---- routers ---- */

static int pw_lab_secret_write(const struct pw_lab *lab)
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
	pw_lab_path_format(lab, "secret", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, hex, strlen(hex)) != (ssize_t)strlen(hex))
		r = -errno;
	pw_lab_fd_close(fd);
	if (r < 0)
		pw_lab_err("cannot write %s: %s", path, strerror(-r));
	return r;
}

/* The command line of node n's router, and what its words point to. */
struct pw_lab_router_cmd {
	struct pw_lab_node_addr addr;
	char sock[PATH_MAX], log[PATH_MAX], secret[PATH_MAX], kubeconfig[PATH_MAX];
	char *peers; /* malloc'd: the other nodes' peer addresses */
	char *argv[24];
};

/* Fill ret_cmd for node n. 0, or -ENOMEM (reported); free ret_cmd->peers either way. */
static int pw_lab_router_cmd_build(struct pw_lab *lab, unsigned n,
				   struct pw_lab_router_cmd *ret_cmd)
{
	struct pw_lab_router_cmd *c = ret_cmd;
	size_t cap = (size_t)lab->nodes * sizeof(c->addr.peer) + 1, off = 0;
	int a = 0;

	pw_lab_node_addr_format(n, &c->addr);
	pw_lab_node_path_format(lab, n, "podwired.sock", c->sock, sizeof(c->sock));
	pw_lab_node_path_format(lab, n, "podwired.log", c->log, sizeof(c->log));
	pw_lab_path_format(lab, "secret", c->secret, sizeof(c->secret));
	c->peers = NULL;
	c->argv[a++] = lab->podwired;
	c->argv[a++] = "--foreground";
	c->argv[a++] = "--socket";
	c->argv[a++] = c->sock;
	c->argv[a++] = "--prefix";
	/* With Services, their range too: a connect to a ClusterIP asks the router. */
	c->argv[a++] = lab->kube ? PW_LAB_POD_PREFIX "," PW_LAB_SERVICE_CIDR : PW_LAB_POD_PREFIX;
	c->argv[a++] = "--metrics";
	c->argv[a++] = PW_LAB_METRICS;
	c->argv[a] = NULL;
	if (!lab->federation)
		return 0;
	c->peers = calloc(1, cap);
	if (!c->peers) {
		pw_lab_err("out of memory");
		return -ENOMEM;
	}
	for (unsigned m = 1; m <= lab->nodes; m++) {
		struct pw_lab_node_addr other;

		if (m == n)
			continue;
		pw_lab_node_addr_format(m, &other);
		off += (size_t)snprintf(c->peers + off, cap - off, "%s%s", off ? "," : "",
					other.peer);
	}
	c->argv[a++] = "--node-name";
	c->argv[a++] = c->addr.name;
	c->argv[a++] = "--pod-cidr";
	c->argv[a++] = c->addr.subnet;
	c->argv[a++] = "--peer-listen";
	c->argv[a++] = c->addr.peer;
	if (lab->kube) {
		/* The peers come from the Node objects. */
		pw_lab_kube_path(lab, PW_LAB_KUBECONFIG_ROUTER, c->kubeconfig,
				 sizeof(c->kubeconfig));
		c->argv[a++] = "--kube-peers";
		c->argv[a++] = "--kube-services";
		c->argv[a++] = "--kubeconfig";
		c->argv[a++] = c->kubeconfig;
	} else if (off) {
		c->argv[a++] = "--peers";
		c->argv[a++] = c->peers;
	}
	c->argv[a++] = "--secret-file";
	c->argv[a++] = c->secret;
	c->argv[a] = NULL;
	return 0;
}

/* Start node n's podwired inside the node's namespace, detached, logging to its file. */
static int pw_lab_router_start(struct pw_lab *lab, unsigned n)
{
	struct pw_lab_router_cmd cmd;
	char ns[PW_LAB_NS_LEN], dir[PATH_MAX];
	pid_t pid;
	int r = -1;

	pw_lab_ns_format(lab->name, n, 0, ns);
	pw_lab_node_path_format(lab, n, NULL, dir, sizeof(dir));
	if (mkdir(dir, 0755) < 0) {
		pw_lab_err("mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (pw_lab_router_cmd_build(lab, n, &cmd) < 0)
		goto out;
	pid = pw_lab_ns_spawn(ns, cmd.argv, cmd.log);
	if (pid < 0)
		goto out;
	lab->router[n - 1].pid = pid;
	lab->router[n - 1].start = pw_lab_proc_start_time(pid);
	r = 0;
out:
	free(cmd.peers);
	return r;
}

static bool pw_lab_socket_probe(const char *path)
{
	struct sockaddr_un a;
	int s;
	bool ok;

	if (pw_addr_unix(path, &a) < 0)
		return false;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	ok = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(s);
	return ok;
}

/* Print the last lines of a log file to stderr, indented. */
static void pw_lab_log_tail_print(const char *path)
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

/* Reap node n's router if it exited while starting: true, reported with the end of its log. */
static bool pw_lab_router_reap(struct pw_lab *lab, unsigned n)
{
	struct pw_lab_router *rt = &lab->router[n - 1];
	char path[PATH_MAX];
	int st;

	if (waitpid(rt->pid, &st, WNOHANG) != rt->pid)
		return false;
	rt->pid = 0;
	pw_lab_node_path_format(lab, n, "podwired.log", path, sizeof(path));
	if (WIFEXITED(st))
		pw_lab_err("podwired of n%u exited with status %d while starting; %s ends with:", n,
			   WEXITSTATUS(st), path);
	else
		pw_lab_err("podwired of n%u was killed by signal %d while starting; %s ends with:",
			   n, WIFSIGNALED(st) ? WTERMSIG(st) : 0, path);
	pw_lab_log_tail_print(path);
	return true;
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
	for (int t = 0; t < PW_LAB_START_TIMEOUT * 50 && left && !pw_lab_stop_pending(); t++) {
		for (unsigned n = 1; n <= lab->nodes; n++) {
			if (ready[n - 1])
				continue;
			if (pw_lab_router_reap(lab, n))
				goto out;
			pw_lab_node_path_format(lab, n, "podwired.sock", path, sizeof(path));
			if (pw_lab_socket_probe(path)) {
				ready[n - 1] = true;
				left--;
			}
		}
		if (left) {
			struct timespec ts = { 0, 20 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	if (pw_lab_stop_pending()) {
		pw_lab_err("interrupted");
		goto out;
	}
	for (unsigned n = 1; n <= lab->nodes && left; n++) {
		if (ready[n - 1])
			continue;
		pw_lab_node_path_format(lab, n, "podwired.log", path, sizeof(path));
		pw_lab_err("podwired of n%u did not open its socket within %d s; %s ends with:", n,
			   PW_LAB_START_TIMEOUT, path);
		pw_lab_log_tail_print(path);
		goto out;
	}
	r = 0;
out:
	free(ready);
	return r;
}

/* ---- up ---- */

/* Remove what a failed 'up' created: processes, namespaces (and their links), state. */
static void pw_lab_up_rollback(struct pw_lab *lab)
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
		pw_lab_cmdline_run("ip netns del %s", lab->made[i]);
	pw_lab_tree_remove(lab->dir);
	rmdir(PW_LAB_RUN_DIR);
}

static const char pw_lab_up_usage[] =
	"Usage: podwire lab up [--nodes N] [--pods-per-node M] [--overlay vxlan|host-gw]\n"
	"                      [--no-podwire] [--name LAB] [--podwired PATH] [--lib PATH]\n"
	"                      [--kube]\n"
	"\n"
	"Create a cluster of network namespaces: an underlay namespace holding a bridge,\n"
	"N nodes n1..nN (underlay address " PW_LAB_TEXT_NODE_IP PW_LAB_TEXT_LEN
	", pod bridge " PW_LAB_POD_BRIDGE " with\n" PW_LAB_TEXT_GATEWAY PW_LAB_TEXT_LEN
	") and M pods per node n1p1..nNpM (" PW_LAB_UPLINK " " PW_LAB_TEXT_POD_IP PW_LAB_TEXT_LEN
	", default\n"
	"route via " PW_LAB_TEXT_GATEWAY "). The host's own network namespace is not touched.\n"
	"\n"
	"Options:\n"
	"      --nodes N            nodes, 1 to " PW_LAB_TEXT_MAX_NODES " (default 2)\n"
	"      --pods-per-node M    pods on each node, 0 to " PW_LAB_TEXT_MAX_PODS " (default 2)\n"
	"      --overlay MODE       how pods reach other nodes, without NAT:\n"
	"                           vxlan (default): like flannel's vxlan backend, a\n"
	"                             VXLAN device " PW_LAB_VXLAN_DEV
	" per node (" PW_LAB_TEXT_VXLAN_ID ",\n"
	"                             " PW_LAB_TEXT_VXLAN_MTU
	") with static FDB, neighbour and route\n"
	"                             entries for every other node;\n"
	"                           host-gw: routes " PW_LAB_TEXT_HOSTGW "\n"
	"      --no-podwire         start no routers; 'lab exec' adds no preload\n"
	"      --name LAB           lab name (default $PODWIRE_LAB, else 'lab'); labs with\n"
	"                           different names coexist; namespaces are " PW_LAB_NS_PREFIX
	"LAB-*\n"
	"      --podwired PATH      the router (default $PODWIRE_PODWIRED, else found\n"
	"                           next to this podwire: build tree or installed)\n"
	"      --lib PATH           libpodwire.so (default $PODWIRE_LIB, else found the same way)\n"
	"      --kube               also a real Kubernetes control plane: etcd and\n"
	"                           kube-apiserver in the underlay namespace, serving on\n"
	"                           https://" PW_LAB_API_IP
	":" PW_LAB_STR(PW_LAB_API_PORT) " (br0), Services from\n"
					"                           " PW_LAB_SERVICE_CIDR
					"; a Node object per node (Ready,\n"
					"                           InternalIP, podCIDR); the "
					"routers find each other\n"
					"                           from them (podwired "
					"--kube-peers, no --peers). The\n"
					"                           binaries come from "
					"$PODWIRE_KUBE_DIR, else the newest\n"
					"                           build tools/kube-build.sh "
					"cached; etcd from PATH.\n"
					"                           'lab status --json' gives the "
					"admin kubeconfig\n"
					"                           (key kubeconfig): use it "
					"inside the lab, e.g.\n"
					"                           podwire lab exec u -- kubectl "
					"--kubeconfig PATH get nodes\n"
					"  -h, --help               show this help\n"
					"\n"
					"Each node runs one podwired in its namespace "
					"(--prefix " PW_LAB_POD_PREFIX
					", metrics on\n" PW_LAB_METRICS
					" inside the node), logging to\n" PW_LAB_RUN_DIR
					"/LAB/nN/podwired.log; its socket is " PW_LAB_RUN_DIR
					"/LAB/nN/podwired.sock.\n"
					"If podwired supports federation (--peers in its --help), "
					"each router also gets\n"
					"--node-name, --pod-cidr, --peer-listen " PW_LAB_TEXT_PEER
					", --peers (the other nodes)\n"
					"and --secret-file " PW_LAB_RUN_DIR "/LAB/secret.\n"
					"\n"
					"Fails if a lab of that name exists. A failed 'up' removes "
					"what it created.\n"
					"Needs root. Exit status: 0 up, 1 failed, 2 usage error.\n";

enum {
	PW_LAB_UP_OPT_NODES = 256,
	PW_LAB_UP_OPT_PODS,
	PW_LAB_UP_OPT_OVERLAY,
	PW_LAB_UP_OPT_NOPW,
	PW_LAB_UP_OPT_NAME,
	PW_LAB_UP_OPT_PODWIRED,
	PW_LAB_UP_OPT_LIB,
	PW_LAB_UP_OPT_KUBE,
};

/* One option of 'up' (c from getopt_long, its argument arg). False on a usage error (reported). */
static bool pw_lab_up_opt_apply(int c, const char *arg, struct pw_lab *lab,
				struct pw_lab_up_opts *opts)
{
	switch (c) {
	case PW_LAB_UP_OPT_NODES:
		return pw_lab_uint_parse("--nodes", arg, 1, PW_LAB_MAX_NODES, &lab->nodes);
	case PW_LAB_UP_OPT_PODS:
		return pw_lab_uint_parse("--pods-per-node", arg, 0, PW_LAB_MAX_PODS, &lab->pods);
	case PW_LAB_UP_OPT_OVERLAY:
		if (pw_lab_overlay_parse(arg, &lab->overlay) < 0) {
			pw_lab_err("bad --overlay '%s': vxlan or host-gw", arg);
			return false;
		}
		break;
	case PW_LAB_UP_OPT_NOPW:
		lab->podwire = false;
		break;
	case PW_LAB_UP_OPT_NAME:
		opts->name = arg;
		break;
	case PW_LAB_UP_OPT_PODWIRED:
		opts->podwired = arg;
		break;
	case PW_LAB_UP_OPT_LIB:
		opts->lib = arg;
		break;
	case PW_LAB_UP_OPT_KUBE:
		lab->kube = true;
		break;
	default:
		return false;
	}
	return true;
}

int pw_lab_up_opts_parse(int argc, char **argv, struct pw_lab *lab, struct pw_lab_up_opts *ret_opts)
{
	static const struct option longopts[] = {
		{ "nodes", required_argument, NULL, PW_LAB_UP_OPT_NODES },
		{ "pods-per-node", required_argument, NULL, PW_LAB_UP_OPT_PODS },
		{ "overlay", required_argument, NULL, PW_LAB_UP_OPT_OVERLAY },
		{ "no-podwire", no_argument, NULL, PW_LAB_UP_OPT_NOPW },
		{ "name", required_argument, NULL, PW_LAB_UP_OPT_NAME },
		{ "podwired", required_argument, NULL, PW_LAB_UP_OPT_PODWIRED },
		{ "lib", required_argument, NULL, PW_LAB_UP_OPT_LIB },
		{ "kube", no_argument, NULL, PW_LAB_UP_OPT_KUBE },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 0; /* also resets getopt's own state (glibc, musl): parses can repeat */
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(pw_lab_up_usage, stdout);
			return 0;
		}
		if (c == '?' || c == ':')
			return pw_lab_usage_err("up");
		if (!pw_lab_up_opt_apply(c, optarg, lab, ret_opts))
			return 2;
	}
	return -1;
}

/*
 * Find podwired and libpodwire.so, and whether that podwired federates (only
 * then does it get the federation flags). 0, or -1 (reported).
 */
static int pw_lab_up_tools_find(struct pw_lab *lab, const struct pw_lab_up_opts *opts)
{
	char help[] = "--help", out[8192], *hargv[] = { lab->podwired, help, NULL };

	if (!pw_lab_file_locate(lab->podwired, opts->podwired, "PODWIRE_PODWIRED", "router",
				PW_LAB_SBINDIR, "podwired", X_OK, "podwired") ||
	    !pw_lab_file_locate(lab->lib, opts->lib, "PODWIRE_LIB", "preload", PW_LAB_LIBDIR,
				"libpodwire.so", R_OK, "libpodwire.so"))
		return -1;
	if (pw_lab_argv_capture(hargv, out, sizeof(out)) < 0) {
		pw_lab_err("'%s --help' failed: is it podwired?", lab->podwired);
		return -1;
	}
	lab->federation = strstr(out, "--peers") != NULL;
	return 0;
}

/*
 * Refuse to build over an existing lab, whole or in parts, then create the
 * state directory: that is the lock against a concurrent 'up'. 0, or -1
 * (reported) with nothing created.
 */
static int pw_lab_up_dir_claim(const struct pw_lab *lab)
{
	char **existing = NULL;
	size_t nexisting = 0;
	int r = -1;

	if (access(lab->dir, F_OK) == 0) {
		pw_lab_err("a lab named '%s' exists (state in %s); remove it first with "
			   "'podwire lab down --name %s'",
			   lab->name, lab->dir, lab->name);
		goto out;
	}
	if (pw_lab_ns_list(lab->name, &existing, &nexisting) < 0 || nexisting) {
		pw_lab_err("network namespace %s exists: part of a lab named '%s' is left; remove "
			   "it with 'podwire lab down --name %s'",
			   nexisting ? existing[0] : "?", lab->name, lab->name);
		goto out;
	}
	if ((mkdir(PW_LAB_RUN_PARENT, 0755) < 0 && errno != EEXIST) ||
	    (mkdir(PW_LAB_RUN_DIR, 0755) < 0 && errno != EEXIST)) {
		pw_lab_err("mkdir " PW_LAB_RUN_DIR ": %s", strerror(errno));
		goto out;
	}
	if (mkdir(lab->dir, 0755) < 0) {
		if (errno == EEXIST)
			pw_lab_err("a lab named '%s' is being created or exists (%s)", lab->name,
				   lab->dir);
		else
			pw_lab_err("mkdir %s: %s", lab->dir, strerror(errno));
		goto out;
	}
	r = 0;
out:
	pw_lab_strv_free(existing, nexisting);
	return r;
}

/* Everything but the state file: secret, namespaces, links, routes, routers. 0 or -1 (reported). */
static int pw_lab_up_build(struct pw_lab *lab)
{
	if (pw_lab_secret_write(lab) < 0 || pw_lab_underlay_make(lab) < 0)
		return -1;
	for (unsigned n = 1; n <= lab->nodes; n++)
		if (pw_lab_node_make(lab, n) < 0)
			return -1;
	for (unsigned n = 1; n <= lab->nodes; n++)
		if (pw_lab_routes_make(lab, n) < 0)
			return -1;
	if (lab->kube && pw_lab_kube_up(lab) < 0)
		return -1;
	if (lab->podwire) {
		for (unsigned n = 1; n <= lab->nodes; n++)
			if (pw_lab_router_start(lab, n) < 0)
				return -1;
		if (pw_lab_routers_wait(lab) < 0)
			return -1;
	}
	if (pw_lab_stop_pending()) {
		pw_lab_err("interrupted");
		return -1;
	}
	return 0;
}

int pw_lab_up(int argc, char **argv)
{
	struct pw_lab lab = {
		.nodes = 2, .pods = 2, .overlay = PW_LAB_OVERLAY_VXLAN, .podwire = true
	};
	struct pw_lab_up_opts opts = { 0 };
	char opt[PW_LAB_NAME_MAX + 16];
	bool created = false;
	int r, rc = pw_lab_up_opts_parse(argc, argv, &lab, &opts);

	if (rc >= 0)
		return rc;
	rc = pw_lab_opts_finish(&lab, opts.name, argc, argv, true);
	if (rc)
		return rc;
	rc = 1; /* until the lab is up */
	if (lab.podwire && pw_lab_up_tools_find(&lab, &opts) < 0)
		return 1;
	lab.router = calloc(lab.nodes, sizeof(*lab.router));
	if (!lab.router) {
		pw_lab_err("out of memory");
		return 1;
	}
	if (pw_lab_up_dir_claim(&lab) < 0)
		goto out;
	created = true;
	pw_lab_signals_catch();
	if (pw_lab_up_build(&lab) < 0)
		goto out;
	r = pw_lab_state_write(&lab);
	if (r < 0) {
		pw_lab_err("cannot write %s/state.json: %s", lab.dir, strerror(-r));
		goto out;
	}
	rc = 0;
	pw_lab_name_opt_format(&lab, opt, sizeof(opt));
	printf("lab '%s' is up. Run a command in a pod: podwire lab exec%s n1p1 -- CMD...\n\n",
	       lab.name, opt);
	pw_lab_status_print(&lab);
out:
	if (rc && created) {
		pw_lab_up_rollback(&lab);
		pw_lab_err("'up' failed; removed what it had created");
	}
	pw_lab_free(&lab);
	return rc;
}
