/* SPDX-License-Identifier: MIT */
/*
 * podwire lab: a multi-node cluster made of network namespaces (docs/LAB.md).
 * The one private header of src/lab, shared by its files:
 *   lab.c        dispatch, names and options, status, exec and down;
 *   lab_up.c     up: namespaces, links, overlay routes, routers;
 *   lab_state.c  the state file /run/podwire/lab/NAME/state.json;
 *   lab_sys.c    process, namespace and file plumbing.
 * Private to the podwire CLI; its unit tests are in tests/lab.
 */
#ifndef PW_LAB_H
#define PW_LAB_H

#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <cjson/cJSON.h>

/*
 * Entry point of `podwire lab SUBCOMMAND ...`; argv[0] is "lab". Prints its
 * own errors. Returns the process exit status: 0 success, 1 failure, 2 usage
 * error. `lab exec` does not return on success: it becomes the command.
 */
int pw_lab_main(int argc, char **argv);

/*
 * ---- The address plan ----
 *
 * Every address, subnet, link and namespace name of a lab comes from here.
 * Addresses are in 198.18.0.0/15 (set aside for benchmarks, RFC 2544) and
 * exist only inside the lab's namespaces, so labs of other names can run at
 * once with the same ones:
 *
 *   underlay   198.18.0.0/24 on bridge br0 in namespace pwlab-LAB-u;
 *              node N is 198.18.0.N/24 on its eth0 (veth nN on br0)
 *   pods       198.19.0.0/16, what the routers accelerate (--prefix);
 *              node N's pods are 198.19.N.0/24 on its bridge cni0
 *              (198.19.N.1, their default route); pod K is
 *              198.19.N.(10 + K)/24 on its eth0 (veth pK on cni0)
 *   VXLAN      node N's flannel.1 is 198.19.N.0/32: the next hop to N's
 *              pods from the other nodes
 *
 * Link names are fixed because each link lives in a lab namespace; only
 * namespace names carry the lab's name.
 */
#define PW_LAB_UNDERLAY_NET    "198.18.0" /* node N is .N */
#define PW_LAB_UNDERLAY_SUBNET PW_LAB_UNDERLAY_NET ".0/" PW_LAB_STR(PW_LAB_SUBNET_LEN)
#define PW_LAB_POD_NET	       "198.19" /* node N's pods are .N.0/24 */
#define PW_LAB_POD_PREFIX      PW_LAB_POD_NET ".0.0/16"
#define PW_LAB_SUBNET_LEN      24 /* of the underlay and of each node's pods */
#define PW_LAB_POD_HOST0       10 /* pod K is host 10 + K of its node's subnet */
#define PW_LAB_MAX_NODES       254
#define PW_LAB_MAX_PODS	       244 /* 10 + 244 = 254, the last host of a /24 */

#define PW_LAB_UNDERLAY_BRIDGE "br0"  /* in the underlay namespace */
#define PW_LAB_UPLINK	       "eth0" /* a node's link to br0, a pod's to cni0 */
#define PW_LAB_POD_BRIDGE      "cni0" /* in each node */
#define PW_LAB_NODE_VETH       "n%u"  /* node N's end on br0 */
#define PW_LAB_POD_VETH	       "p%u"  /* pod K's end on cni0 */
#define PW_LAB_MTU	       1500

/* Flannel's vxlan backend: its device name, VNI and port on Linux. */
#define PW_LAB_VXLAN_DEV  "flannel.1"
#define PW_LAB_VXLAN_VNI  1
#define PW_LAB_VXLAN_PORT 8472
#define PW_LAB_VXLAN_MTU  1450 /* 1500 less the 50 bytes of VXLAN over IPv4 */

/*
 * `up --kube`: the API server on the underlay's bridge (in its namespace),
 * which each node reaches on its eth0; Services' ClusterIPs from a range of
 * the plan that no interface holds.
 */
#define PW_LAB_API_IP		 PW_LAB_UNDERLAY_NET ".254"
#define PW_LAB_API_PORT		 6443
#define PW_LAB_SERVICE_CIDR	 "198.18.128.0/20"
#define PW_LAB_SERVICE_FIRST	 "198.18.128.1"	     /* the "kubernetes" Service */
#define PW_LAB_KUBECONFIG	 "admin.kubeconfig"  /* in the lab's kube directory */
#define PW_LAB_KUBECONFIG_ROUTER "router.kubeconfig" /* the routers' (podwire:router) */
#define PW_LAB_KUBECONFIG_PROXY	 "proxy.kubeconfig"  /* kube-proxy's (system:kube-proxy) */

/* Each node's router: metrics on the node's loopback, peers on the underlay. */
#define PW_LAB_METRICS	 "127.0.0.1:9470"
#define PW_LAB_PEER_PORT 7470

/* Node N and pod K of node N, in commands, state and targets ('u' is the underlay). */
#define PW_LAB_NODE_FMT "n%u"
#define PW_LAB_POD_FMT	PW_LAB_NODE_FMT "p%u"

/* Namespaces: pwlab-LAB-u, pwlab-LAB-nN, pwlab-LAB-nNpK, in iproute2's directory. */
#define PW_LAB_NETNS_DIR "/run/netns"
#define PW_LAB_NS_PREFIX "pwlab-"
#define PW_LAB_NAME_MAX	 32
#define PW_LAB_NS_LEN	 64

/* A number of the plan as a string literal. */
#define PW_LAB_STR(x)  PW_LAB_STR_(x)
#define PW_LAB_STR_(x) #x

/* The plan in words, for help texts. */
#define PW_LAB_TEXT_LEN	    "/" PW_LAB_STR(PW_LAB_SUBNET_LEN)
#define PW_LAB_TEXT_NODE_IP PW_LAB_UNDERLAY_NET ".N"
#define PW_LAB_TEXT_GATEWAY PW_LAB_POD_NET ".N.1"
#define PW_LAB_TEXT_POD_IP  PW_LAB_POD_NET ".N.(" PW_LAB_STR(PW_LAB_POD_HOST0) "+K)"
#define PW_LAB_TEXT_HOSTGW  PW_LAB_POD_NET ".M.0" PW_LAB_TEXT_LEN " via " PW_LAB_UNDERLAY_NET ".M"
#define PW_LAB_TEXT_PEER    PW_LAB_TEXT_NODE_IP ":" PW_LAB_STR(PW_LAB_PEER_PORT)
#define PW_LAB_TEXT_VXLAN_ID                                                                       \
	"VNI " PW_LAB_STR(PW_LAB_VXLAN_VNI) ", port " PW_LAB_STR(PW_LAB_VXLAN_PORT)
#define PW_LAB_TEXT_VXLAN_MTU "MTU " PW_LAB_STR(PW_LAB_VXLAN_MTU)
#define PW_LAB_TEXT_MAX_NODES PW_LAB_STR(PW_LAB_MAX_NODES)
#define PW_LAB_TEXT_MAX_PODS  PW_LAB_STR(PW_LAB_MAX_PODS)

/* Node n's addresses as text. */
struct pw_lab_node_addr {
	char name[16];	   /* nN */
	char underlay[24]; /* 198.18.0.N, on its eth0 */
	char subnet[32];   /* 198.19.N.0/24, its pods */
	char gateway[24];  /* 198.19.N.1, on cni0: its pods' default route */
	char vtep[24];	   /* 198.19.N.0, on flannel.1: the next hop to its pods */
	char mac[24];	   /* flannel.1's MAC: fixed, so that peers know it up front */
	char peer[32];	   /* 198.18.0.N:7470, where its router meets the others */
};

static inline void pw_lab_node_addr_format(unsigned n, struct pw_lab_node_addr *ret_addr)
{
	memset(ret_addr, 0, sizeof(*ret_addr));
	snprintf(ret_addr->name, sizeof(ret_addr->name), PW_LAB_NODE_FMT, n);
	snprintf(ret_addr->underlay, sizeof(ret_addr->underlay), PW_LAB_UNDERLAY_NET ".%u", n);
	snprintf(ret_addr->subnet, sizeof(ret_addr->subnet), PW_LAB_POD_NET ".%u.0/%d", n,
		 PW_LAB_SUBNET_LEN);
	snprintf(ret_addr->gateway, sizeof(ret_addr->gateway), PW_LAB_POD_NET ".%u.1", n);
	snprintf(ret_addr->vtep, sizeof(ret_addr->vtep), PW_LAB_POD_NET ".%u.0", n);
	snprintf(ret_addr->mac, sizeof(ret_addr->mac), "02:70:77:01:00:%02x", n);
	snprintf(ret_addr->peer, sizeof(ret_addr->peer), PW_LAB_UNDERLAY_NET ".%u:%d", n,
		 PW_LAB_PEER_PORT);
}

/* Pod k of node n as text. */
struct pw_lab_pod_addr {
	char name[24]; /* nNpK */
	char ip[24];   /* 198.19.N.(10 + K), on its eth0 */
};

static inline void pw_lab_pod_addr_format(unsigned n, unsigned k, struct pw_lab_pod_addr *ret_addr)
{
	memset(ret_addr, 0, sizeof(*ret_addr));
	snprintf(ret_addr->name, sizeof(ret_addr->name), PW_LAB_POD_FMT, n, k);
	snprintf(ret_addr->ip, sizeof(ret_addr->ip), PW_LAB_POD_NET ".%u.%u", n,
		 PW_LAB_POD_HOST0 + k);
}

/* The namespace of the underlay (n = 0), of node n (k = 0), or of pod k of node n. */
static inline void pw_lab_ns_format(const char *lab, unsigned n, unsigned k,
				    char ret_ns[static PW_LAB_NS_LEN])
{
	if (!n)
		snprintf(ret_ns, PW_LAB_NS_LEN, PW_LAB_NS_PREFIX "%s-u", lab);
	else if (!k)
		snprintf(ret_ns, PW_LAB_NS_LEN, PW_LAB_NS_PREFIX "%s-" PW_LAB_NODE_FMT, lab, n);
	else
		snprintf(ret_ns, PW_LAB_NS_LEN, PW_LAB_NS_PREFIX "%s-" PW_LAB_POD_FMT, lab, n, k);
}

/*
 * Parse a target: "u" (the underlay: node 0), "nN" (node N, pod 0) or "nNpK",
 * digits without leading zeros, each at most 1000. False if it is none of these.
 */
bool pw_lab_target_parse(const char *s, unsigned *ret_node, unsigned *ret_pod);

/* Does namespace ns belong to lab name ("pwlab-NAME-" then u, nN or nNpK)? */
bool pw_lab_ns_is_ours(const char *name, const char *ns);

/* ---- a lab, and its state file (lab_state.c) ---- */

#define PW_LAB_RUN_PARENT "/run/podwire"
#define PW_LAB_RUN_DIR	  PW_LAB_RUN_PARENT "/lab" /* a lab's state is in RUN_DIR/NAME */
#define PW_LAB_DEFAULT	  "lab"			   /* the name without --name or $PODWIRE_LAB */

enum pw_lab_overlay { PW_LAB_OVERLAY_VXLAN, PW_LAB_OVERLAY_HOSTGW };

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
	bool kube; /* a control plane in the underlay (`up --kube`, lab_kube.c) */
	char podwired[PATH_MAX], lib[PATH_MAX];
	struct pw_lab_router *router; /* [nodes]; node n at n - 1 */
	char **made;		      /* namespaces this 'up' created: what a failure removes */
	size_t nmade;
};

/* "vxlan" or "host-gw". */
const char *pw_lab_overlay_name(enum pw_lab_overlay overlay);

/* The overlay named s ("vxlan" or "host-gw"): 0, or -EINVAL. */
int pw_lab_overlay_parse(const char *s, enum pw_lab_overlay *ret_overlay);

/* Free what lab points to (not lab itself); NULL is fine. */
void pw_lab_free(struct pw_lab *lab);

/* Files of node n's router: file is "podwired.sock" or "podwired.log". */
void pw_lab_node_path_format(const struct pw_lab *lab, unsigned n, const char *file, char *ret_path,
			     size_t len);

/* Files of the lab's control plane: lab->dir/kube/file (file NULL: the directory). */
void pw_lab_kube_path(const struct pw_lab *lab, const char *file, char *ret_path, size_t len);

/*
 * `up --kube`: certificates, tokens and kubeconfigs in lab->dir/kube, etcd
 * and kube-apiserver in the underlay namespace, a Node object per lab node.
 * After the namespaces, before the routers. 0, or -1 (reported).
 */
int pw_lab_kube_up(struct pw_lab *lab);

/* Files of the lab: lab->dir/file. */
void pw_lab_path_format(const struct pw_lab *lab, const char *file, char *ret_path, size_t len);

/* Does node n's router still run (the same process that 'up' started)? */
bool pw_lab_router_is_alive(const struct pw_lab_router *rt);

/*
 * The lab as the state file holds it; live adds what is true now: whether
 * each namespace exists and each router runs. NULL if out of memory.
 */
cJSON *pw_lab_state_to_json(const struct pw_lab *lab, bool live);

/* Write lab->dir/state.json (through a temporary file and rename). 0 or -errno. */
int pw_lab_state_write(const struct pw_lab *lab);

/*
 * Read lab->dir/state.json into lab, whose name and dir are set. Returns 0,
 * -ENOENT if there is no state file, -EINVAL if it does not parse (reported),
 * -errno.
 */
int pw_lab_state_read(struct pw_lab *lab);

/* ---- the commands (lab.c, lab_up.c) ---- */

/* Report an error as "podwire lab: ..." on stderr. */
void pw_lab_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Set lab's name (and state dir) from opt, else $PODWIRE_LAB, else "lab"; false (reported) if
 * invalid. */
bool pw_lab_name_set(struct pw_lab *lab, const char *opt);

/* For hints that show a command line: " --name NAME", or "" for the default lab. */
void pw_lab_name_opt_format(const struct pw_lab *lab, char *ret_opt, size_t len);

/* Is s a lab name: 1 to PW_LAB_NAME_MAX letters, digits, '_' or '-', not starting with '_' or '-'?
 */
bool pw_lab_name_is_valid(const char *s);

/* Parse option opt's value s, a number from lo to hi; false (reported) otherwise. */
bool pw_lab_uint_parse(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *ret_val);

/* getopt saw an unknown option or a missing argument: a hint, and exit status 2. */
int pw_lab_usage_err(const char *cmd);

/* False (reported) unless we run as root. */
bool pw_lab_root_check(void);

/*
 * After a subcommand's options: no stray arguments, the lab's name, and root
 * if needed. 0, or the exit status (reported): 2 usage, 1 not root.
 */
int pw_lab_opts_finish(struct pw_lab *lab, const char *name, int argc, char **argv, bool root);

/*
 * The lab's namespaces that exist now, sorted; *ret_ns is malloc'd (free with
 * pw_lab_strv_free). On error -errno, and what was found until then.
 */
int pw_lab_ns_list(const char *name, char ***ret_ns, size_t *ret_n);

void pw_lab_strv_free(char **v, size_t n);

/* Print the lab as 'podwire lab status' does. */
void pw_lab_status_print(const struct pw_lab *lab);

/* The options of 'lab up' (lab_up.c). */
struct pw_lab_up_opts {
	const char *name, *podwired, *lib;
};

/*
 * Parse the options of 'lab up' into lab (nodes, pods, overlay, podwire) and
 * ret_opts. Returns -1 to go on, or the exit status: 0 after --help, 2 on a
 * usage error (reported).
 */
int pw_lab_up_opts_parse(int argc, char **argv, struct pw_lab *lab,
			 struct pw_lab_up_opts *ret_opts);

/* `podwire lab up`: argv[0] is "up". Returns the exit status. */
int pw_lab_up(int argc, char **argv);

/* ---- plumbing (lab_sys.c) ---- */

/* Set by SIGINT, SIGTERM or SIGHUP while pw_lab_signals_catch() is active. */
extern _Atomic int pw_lab_stop;

static inline bool pw_lab_stop_pending(void)
{
	return atomic_load_explicit(&pw_lab_stop, memory_order_relaxed) != 0;
}

/* Catch SIGINT/SIGTERM/SIGHUP into pw_lab_stop (so that `up` can roll back). */
void pw_lab_signals_catch(void);

/* close(fd) unless it is negative: the cleanup of fds that start at -1. */
static inline void pw_lab_fd_close(int fd)
{
	if (fd >= 0)
		close(fd);
}

/*
 * Run argv (argv[0] looked up in PATH, no shell) with stdin on /dev/null and
 * its output captured; wait for it. Returns 0 if it exited 0. Otherwise, unless
 * quiet, prints the command line, how it ended and its output to stderr, and
 * returns -1; -EINTR if pw_lab_stop was set before it ran.
 */
int pw_lab_argv_run(char *const argv[], bool quiet);

/*
 * Format a command line and run it with pw_lab_argv_run(). The line is split
 * on spaces into argv, so each formatted word must be free of whitespace:
 * callers pass only validated names, numbers and addresses, never paths.
 */
int pw_lab_cmdline_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run argv and capture its stdout into ret_buf (NUL-terminated, truncated). 0 or -errno/-1. */
int pw_lab_argv_capture(char *const argv[], char *ret_buf, size_t len);

/* An O_CLOEXEC fd on the named network namespace (/run/netns/NAME), or -errno. */
int pw_lab_ns_open(const char *ns);

/* Does the named network namespace exist? */
bool pw_lab_ns_exists(const char *ns);

/*
 * Start argv (argv[0] looked up in PATH) inside namespace ns, detached (its
 * own session, stdin on /dev/null, stdout and stderr appended to log), with
 * default signal handling and no LD_PRELOAD. Returns its pid, or -errno
 * (reported). `lab down` ends it with the namespace's other processes.
 */
pid_t pw_lab_ns_spawn(const char *ns, char *const argv[], const char *log);

/* Write val to the file at path (e.g. /proc/sys/net/...) from inside namespace ns. 0 or -errno. */
int pw_lab_ns_write(const char *ns, const char *path, const char *val);

/*
 * Kill every process in the named namespaces: SIGTERM, then SIGKILL for those
 * still there after a second. Returns how many survived (0 normally).
 */
size_t pw_lab_ns_kill(char *const *ns, size_t n);

/* The start time of pid (field 22 of /proc/PID/stat), 0 if it is gone or a zombie. */
unsigned long long pw_lab_proc_start_time(pid_t pid);

/* Remove a directory tree (no symlink following). 0, or -errno of the first failure. */
int pw_lab_tree_remove(const char *path);

#endif /* PW_LAB_H */
