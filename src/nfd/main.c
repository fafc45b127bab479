// SPDX-License-Identifier: MIT
/*
 * podwire-nfd: node feature discovery for podwire's latency-aware
 * scheduling. Probes the node, then reports as JSON, as an NFD features.d
 * file and/or as labels on the Node object; once, or every --interval
 * seconds as a DaemonSet.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <podwire/wire.h>

#include "kube.h"
#include "log.h"
#include "../common/parse.h"
#include "nfd.h"
#include "swctl.h"

static const char pw_usage[] =
	"Usage: podwire-nfd [OPTIONS]\n"
	"\n"
	"Node feature discovery for podwire: find this node's fast data paths (SR-IOV\n"
	"NICs and VFs, DPDK-bound devices, huge pages, RDMA, AF_XDP, OvS-DPDK, a\n"
	"running podwired), measure podwire's shared-memory and kernel TCP round\n"
	"trips with podwire-bench, and publish the result as podwire.io/ labels\n"
	"(docs/NFD.md lists them).\n"
	"\n"
	"Probing:\n"
	"      --sysfs-root DIR      read sysfs under DIR (default /sys)\n"
	"      --procfs-root DIR     read procfs under DIR (default /proc); any other\n"
	"                            value also disables the live AF_XDP socket check\n"
	"      --podwire-socket PATH podwired's control socket (default $PODWIRE_SOCKET,\n"
	"                            else " PW_WIRE_DEFAULT_SOCKET ")\n"
	"      --switch-dir DIR      podwire-switch's run directory (default\n"
	"                            " PW_SW_DEFAULT_DIR "): podwire.io/packet-interfaces\n"
	"                            and -free, the memif ports it gives and has left\n"
	"      --preload-dir DIR     the preload tree pods take (default\n"
	"                            /run/podwire/preload): with libpodwire-verbs.so\n"
	"                            there and a router, podwire.io/rdma-virtual=true\n"
	"      --ovs                 probe Open vSwitch (default): ovs-vsctl and\n"
	"                            ovs-vswitchd from PATH, 3-4 s limit each\n"
	"      --no-ovs              skip that probe\n"
	"      --measure             measure round trips with podwire-bench (default)\n"
	"      --no-measure          do not measure\n"
	"      --measure-seconds S   seconds measured per path (default 0.4, max 10)\n"
	"      --bench PATH          podwire-bench to run (default: beside this program,\n"
	"                            then the build tree, then PATH)\n"
	"\n"
	"Output (any combination):\n"
	"      --json                print the report as JSON on stdout (the default\n"
	"                            without --interval)\n"
	"      --no-json             do not print it\n"
	"      --features-file PATH  write the labels to PATH in NFD's features.d format\n"
	"                            (key=value lines), atomically\n"
	"      --features-expiry S   expire that file's labels after S seconds (NFD's\n"
	"                            expiry-time; default with --interval: 3 intervals\n"
	"                            plus a minute, else none)\n"
	"      --label               label this node through the API server: kubeconfig\n"
	"                            from $KUBECONFIG, else in-cluster, else\n"
	"                            ~/.kube/config\n"
	"      --kubeconfig PATH     the same with this kubeconfig (implies --label)\n"
	"      --node-name NAME      the Node to label (default $NODE_NAME, else the\n"
	"                            host name)\n"
	"      --no-compat-labels    neither set nor own seed 000's dpdk and ovs-dpdk\n"
	"                            labels\n"
	"\n"
	"Running:\n"
	"      --oneshot             probe and report once, then exit (default)\n"
	"      --interval S          probe and report every S seconds until SIGTERM or\n"
	"                            SIGINT (a DaemonSet); failures are logged and\n"
	"                            retried next time\n"
	"  -l, --log-level L         error, warn, info (default) or debug, on stderr\n"
	"  -h, --help                show this help\n"
	"\n"
	"Labelling sends one JSON patch: it adds or replaces the labels above and\n"
	"removes stale ones it owns (keys under podwire.io/, plus dpdk and ovs-dpdk);\n"
	"other labels are never touched.\n"
	"\n"
	"Exit status: 0 success; 1 an output failed (file, API server); 2 usage.\n";

enum {
	PW_NFD_OPT_SYSFS = 256,
	PW_NFD_OPT_PROCFS,
	PW_NFD_OPT_SOCKET,
	PW_NFD_OPT_SWITCH,
	PW_NFD_OPT_PRELOAD,
	PW_NFD_OPT_OVS,
	PW_NFD_OPT_NO_OVS,
	PW_NFD_OPT_MEASURE,
	PW_NFD_OPT_NO_MEASURE,
	PW_NFD_OPT_MEASURE_S,
	PW_NFD_OPT_BENCH,
	PW_NFD_OPT_JSON,
	PW_NFD_OPT_NO_JSON,
	PW_NFD_OPT_FEATURES,
	PW_NFD_OPT_EXPIRY,
	PW_NFD_OPT_LABEL,
	PW_NFD_OPT_KUBECONFIG,
	PW_NFD_OPT_NODE,
	PW_NFD_OPT_NO_COMPAT,
	PW_NFD_OPT_ONESHOT,
	PW_NFD_OPT_INTERVAL,
};

struct pw_nfd_cfg {
	struct pw_nfd_opts probe;
	int json; /* -1: default */
	const char *features;
	double expiry;
	bool label;
	const char *kubeconfig;
	const char *node;
	bool compat;
	double interval; /* 0: oneshot */
};

static const struct option pw_nfd_longopts[] = {
	{ "sysfs-root", required_argument, NULL, PW_NFD_OPT_SYSFS },
	{ "procfs-root", required_argument, NULL, PW_NFD_OPT_PROCFS },
	{ "podwire-socket", required_argument, NULL, PW_NFD_OPT_SOCKET },
	{ "switch-dir", required_argument, NULL, PW_NFD_OPT_SWITCH },
	{ "preload-dir", required_argument, NULL, PW_NFD_OPT_PRELOAD },
	{ "ovs", no_argument, NULL, PW_NFD_OPT_OVS },
	{ "no-ovs", no_argument, NULL, PW_NFD_OPT_NO_OVS },
	{ "measure", no_argument, NULL, PW_NFD_OPT_MEASURE },
	{ "no-measure", no_argument, NULL, PW_NFD_OPT_NO_MEASURE },
	{ "measure-seconds", required_argument, NULL, PW_NFD_OPT_MEASURE_S },
	{ "bench", required_argument, NULL, PW_NFD_OPT_BENCH },
	{ "json", no_argument, NULL, PW_NFD_OPT_JSON },
	{ "no-json", no_argument, NULL, PW_NFD_OPT_NO_JSON },
	{ "features-file", required_argument, NULL, PW_NFD_OPT_FEATURES },
	{ "features-expiry", required_argument, NULL, PW_NFD_OPT_EXPIRY },
	{ "label", no_argument, NULL, PW_NFD_OPT_LABEL },
	{ "kubeconfig", required_argument, NULL, PW_NFD_OPT_KUBECONFIG },
	{ "node-name", required_argument, NULL, PW_NFD_OPT_NODE },
	{ "no-compat-labels", no_argument, NULL, PW_NFD_OPT_NO_COMPAT },
	{ "oneshot", no_argument, NULL, PW_NFD_OPT_ONESHOT },
	{ "interval", required_argument, NULL, PW_NFD_OPT_INTERVAL },
	{ "log-level", required_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* --@name's seconds @arg, more than 0, @min to @max, into *@ret; 2 after a
 * message. */
static int pw_nfd_seconds_opt(const char *name, const char *arg, double min, double max,
			      const char *range, double *ret)
{
	if (pw_parse_seconds(arg, min, max, ret) < 0 || *ret <= 0) {
		fprintf(stderr, "podwire-nfd: bad --%s '%s'%s\n", name, arg, range);
		return 2;
	}
	return 0;
}

/* One option @o (argument @arg) into @c. 0, or 2 after a message. */
static int pw_nfd_cfg_opt(struct pw_nfd_cfg *c, int o, const char *arg)
{
	int lvl;

	switch (o) {
	case PW_NFD_OPT_SYSFS:
		c->probe.sysfs_root = arg;
		return 0;
	case PW_NFD_OPT_PROCFS:
		c->probe.procfs_root = arg;
		return 0;
	case PW_NFD_OPT_SOCKET:
		c->probe.podwired_socket = arg;
		return 0;
	case PW_NFD_OPT_SWITCH:
		c->probe.switch_dir = arg;
		return 0;
	case PW_NFD_OPT_PRELOAD:
		c->probe.preload_dir = arg;
		return 0;
	case PW_NFD_OPT_OVS:
	case PW_NFD_OPT_NO_OVS:
		c->probe.ovs = o == PW_NFD_OPT_OVS;
		return 0;
	case PW_NFD_OPT_MEASURE:
	case PW_NFD_OPT_NO_MEASURE:
		c->probe.measure = o == PW_NFD_OPT_MEASURE;
		return 0;
	case PW_NFD_OPT_MEASURE_S:
		return pw_nfd_seconds_opt("measure-seconds", arg, 0, 10, " (0 < S <= 10)",
					  &c->probe.measure_seconds);
	case PW_NFD_OPT_BENCH:
		c->probe.bench = arg;
		return 0;
	case PW_NFD_OPT_JSON:
	case PW_NFD_OPT_NO_JSON:
		c->json = o == PW_NFD_OPT_JSON;
		return 0;
	case PW_NFD_OPT_FEATURES:
		c->features = arg;
		return 0;
	case PW_NFD_OPT_EXPIRY:
		return pw_nfd_seconds_opt("features-expiry", arg, 0, 1e9, "", &c->expiry);
	case PW_NFD_OPT_KUBECONFIG:
		c->kubeconfig = arg;
		/* fall through */
	case PW_NFD_OPT_LABEL:
		c->label = true;
		return 0;
	case PW_NFD_OPT_NODE:
		c->node = arg;
		return 0;
	case PW_NFD_OPT_NO_COMPAT:
		c->compat = false;
		return 0;
	case PW_NFD_OPT_ONESHOT:
		c->interval = 0;
		return 0;
	case PW_NFD_OPT_INTERVAL:
		return pw_nfd_seconds_opt("interval", arg, 1, 86400 * 7, " (1 s to a week)",
					  &c->interval);
	case 'l':
		lvl = pw_log_parse(arg);
		if (lvl < 0) {
			fprintf(stderr, "podwire-nfd: bad --log-level '%s'\n", arg);
			return 2;
		}
		pw_log_max = (enum pw_log_level)lvl;
		return 0;
	case 'h':
		fputs(pw_usage, stdout);
		exit(0);
	default:
		fprintf(stderr, "Try 'podwire-nfd --help'.\n");
		return 2;
	}
}

static int pw_nfd_cfg_parse(int argc, char **argv, struct pw_nfd_cfg *c)
{
	const char *env = getenv("PODWIRE_SOCKET");
	int o, r;

	*c = (struct pw_nfd_cfg){
		.probe = {
			.sysfs_root = "/sys",
			.procfs_root = "/proc",
			.podwired_socket = env && *env ? env : PW_WIRE_DEFAULT_SOCKET,
			.switch_dir = PW_SW_DEFAULT_DIR,
			.preload_dir = "/run/podwire/preload",
			.ovs = true,
			.measure = true,
			.measure_seconds = 0.4,
		},
		.json = -1,
		.compat = true,
	};
	while ((o = getopt_long(argc, argv, "l:h", pw_nfd_longopts, NULL)) != -1) {
		r = pw_nfd_cfg_opt(c, o, optarg);
		if (r)
			return r;
	}
	if (optind < argc) {
		fprintf(stderr, "podwire-nfd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

static bool pw_nfd_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* One probe-and-report pass. Returns 0 or 1 (an output failed). */
static int pw_nfd_pass(const struct pw_nfd_cfg *c, struct pw_kube *k, bool first)
{
	struct pw_nfd_info info;
	struct pw_nfd_labels ls;
	int rc = 0, r;

	pw_nfd_probe(&c->probe, &info);
	for (unsigned i = 0; i < info.nwarn; i++) {
		if (first)
			pw_warn("%s", info.warn[i]);
		else
			pw_dbg("%s", info.warn[i]);
	}
	pw_nfd_labels_build(&info, c->compat, &ls);
	if (c->json == 1 || (c->json < 0 && !c->interval)) {
		cJSON *j = pw_nfd_json(&info, &ls, c->label ? c->node : NULL);
		char *s = j ? cJSON_Print(j) : NULL;

		if (!s) {
			pw_err("cannot build the JSON report: out of memory");
			rc = 1;
		} else {
			puts(s);
			fflush(stdout);
		}
		cJSON_free(s);
		cJSON_Delete(j);
	}
	if (c->features) {
		long long exp = 0;
		double secs = c->expiry ? c->expiry : c->interval ? 3 * c->interval + 60 : 0;

		if (secs)
			exp = (long long)time(NULL) + (long long)secs;
		r = pw_nfd_features_write(c->features, &ls, exp);
		if (r < 0) {
			pw_err("cannot write %s: %s", c->features, strerror(-r));
			rc = 1;
		} else {
			pw_dbg("wrote %zu labels to %s", ls.n, c->features);
		}
	}
	if (k) {
		unsigned n = 0;

		/* The socket a pod mounts and names in PODWIRE_SOCKET, while podwired runs. */
		r = pw_nfd_label_node(k, c->node, &ls, c->compat,
				      info.podwired.up ? c->probe.podwired_socket : NULL, &n);
		if (r < 0) {
			pw_err("cannot label node %s: %s", c->node, pw_kube_last_error(k));
			rc = 1;
		} else if (n) {
			pw_info("node %s: %u labels (or the socket annotation) added, changed or "
				"removed",
				c->node, n);
		} else {
			pw_dbg("node %s: labels up to date", c->node);
		}
	}
	pw_nfd_info_free(&info);
	return rc;
}

/* Sleep up to @secs; true when SIGTERM or SIGINT (blocked) arrived. */
static bool pw_nfd_signal_wait(const sigset_t *set, double secs)
{
	struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
	uint64_t end = (uint64_t)time(NULL) + (uint64_t)secs + 1;

	for (;;) {
		int s = sigtimedwait(set, NULL, &ts);
		if (s > 0) {
			pw_info("signal %d: exiting", s);
			return true;
		}
		if (s < 0 && errno == EAGAIN)
			return false;
		/* EINTR from another signal: wait out the rest, roughly */
		if ((uint64_t)time(NULL) >= end)
			return false;
		ts = (struct timespec){ 1, 0 };
	}
}

int main(int argc, char **argv)
{
	static char host[HOST_NAME_MAX + 1];
	struct pw_kube *k = NULL;
	struct pw_nfd_cfg c;
	sigset_t set;
	int r;

	pw_log_ident = "podwire-nfd";
	r = pw_nfd_cfg_parse(argc, argv, &c);
	if (r)
		return r;
	if (!pw_nfd_is_dir(c.probe.sysfs_root) || !pw_nfd_is_dir(c.probe.procfs_root)) {
		fprintf(stderr,
			"podwire-nfd: --sysfs-root and --procfs-root must be directories\n");
		return 2;
	}
	c.probe.real_procfs = pw_nfd_same_file(c.probe.procfs_root, "/proc");
	if (c.probe.measure && !c.probe.bench) {
		c.probe.bench = pw_nfd_find_bench();
		if (!c.probe.bench)
			pw_warn("podwire-bench not found: no measured latency labels");
	}
	if (c.label) {
		if (!c.node) {
			const char *env = getenv("NODE_NAME");

			if (env && *env) {
				c.node = env;
			} else if (gethostname(host, sizeof(host) - 1) == 0 && host[0]) {
				c.node = host;
			} else {
				fprintf(stderr, "podwire-nfd: no --node-name and no $NODE_NAME\n");
				return 2;
			}
		}
		r = pw_kube_open(c.kubeconfig, &k);
		if (r < 0) {
			pw_err("cannot reach the API server: %s", pw_kube_last_error(NULL));
			return 1;
		}
		pw_kube_set_timeouts(k, 5000, 15000);
		pw_kube_set_user_agent(k, "podwire-nfd");
	}
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (c.interval)
		sigprocmask(SIG_BLOCK, &set, NULL);

	r = pw_nfd_pass(&c, k, true);
	if (c.interval) {
		pw_info("re-probing every %g s", c.interval);
		while (!pw_nfd_signal_wait(&set, c.interval))
			pw_nfd_pass(&c, k, false);
		r = 0;
	}
	pw_kube_close(k);
	return r;
}
