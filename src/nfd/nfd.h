/* SPDX-License-Identifier: MIT */
/*
 * podwire-nfd: node feature discovery. Probes (probe.c), external commands
 * with time limits (run.c), labels and outputs (labels.c), node labelling
 * through the API server (apilabel.c). Private to the tool.
 */
#ifndef PW_NFD_H
#define PW_NFD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define PW_NFD_PREFIX	   "podwire.io/"
#define PW_NFD_MAX_LABELS  96
#define PW_NFD_MAX_HP	   16
#define PW_NFD_MAX_WARN	   32
#define PW_NFD_MAX_IFNAMES 8

/* One PCI network controller (class 0x02xxxx), PF or VF. */
struct pw_nfd_nic {
	char addr[64];	     /* PCI address, e.g. 0000:3b:00.0 */
	uint32_t class_code; /* 24 bits */
	uint32_t vendor, device;
	char driver[64]; /* bound driver, "" when none */
	char physfn[64]; /* the PF's address when this is a VF, else "" */
	char ifnames[PW_NFD_MAX_IFNAMES][32];
	unsigned nifnames;
	long sriov_total; /* sriov_totalvfs; -1: no SR-IOV capability or unreadable */
	long sriov_num;	  /* sriov_numvfs; -1 as above */
	bool dpdk;	  /* bound to a DPDK-capable driver */
};

struct pw_nfd_hugepages {
	unsigned long size_kb;
	long total; /* nr_hugepages; -1 unreadable */
	long free;  /* free_hugepages; -1 unreadable */
	const char *source;
};

struct pw_nfd_rtt {
	bool ok;
	double min, mean, p50, p99; /* ns */
	double msgs;
	char error[96];
};

enum pw_nfd_path { PW_NFD_SHM, PW_NFD_TCP, PW_NFD_NPATHS };

/* Everything one probing pass found. */
struct pw_nfd_info {
	char kernel[128];
	struct pw_nfd_nic *nics;
	size_t nnics;
	unsigned sriov_nics;
	unsigned long vfs_total, vfs_num;
	unsigned ndpdk;

	struct pw_nfd_hugepages hp[PW_NFD_MAX_HP];
	size_t nhp;
	long mi_total, mi_free, mi_size_kb; /* /proc/meminfo; -1 unknown */

	char **rdma;
	size_t nrdma;

	bool af_xdp;
	const char *af_xdp_source; /* "procfs", "socket" or "none" */

	struct {
		bool probed;	      /* false with --no-ovs */
		bool vsctl, vswitchd; /* the commands exist */
		bool dpdk_built;      /* ovs-vswitchd --version mentions DPDK */
		int dpdk_initialized; /* from the database: 1, 0, -1 unknown */
		int dpdk_init_config; /* other_config:dpdk-init: 1, 0, -1 unknown */
		bool dpdk;	      /* the verdict */
		char version[96];
	} ovs;

	struct {
		bool up;
		uint32_t version;
		char prefixes[512]; /* comma-separated CIDRs */
		char error[96];
	} podwired;
	/* podwire-switch: packet interfaces for DPDK pods (docs/NFV.md). */
	struct {
		bool up;
		unsigned max_ports, ports; /* it gives; it has given */
		char error[96];
	} sw;
	/* The preload tree has libpodwire-verbs.so: with a router, pods get
	 * podwire0, the virtual RDMA device (docs/RDMA.md). */
	bool rdma_virtual;

	bool measured;
	struct pw_nfd_rtt rtt[PW_NFD_NPATHS];

	char warn[PW_NFD_MAX_WARN][160];
	unsigned nwarn;
};

struct pw_nfd_opts {
	const char *sysfs_root;
	const char *procfs_root;
	bool real_procfs; /* procfs_root is the live /proc: may ask the kernel directly */
	const char *podwired_socket;
	const char *switch_dir;	 /* podwire-switch's run directory */
	const char *preload_dir; /* the preload tree pods take (docs/DEPLOY.md) */
	bool ovs;
	bool measure;
	double measure_seconds; /* per path */
	const char *bench;	/* podwire-bench to run; NULL: not found */
};

struct pw_nfd_label {
	char key[128];
	char value[64];
};

struct pw_nfd_labels {
	struct pw_nfd_label l[PW_NFD_MAX_LABELS];
	size_t n;
};

/* probe.c */

/* Fill @info from the trees under @o and the live checks it allows. Never
 * fails: what cannot be read is absent or noted in info->warn. */
void pw_nfd_probe(const struct pw_nfd_opts *o, struct pw_nfd_info *info);
void pw_nfd_info_free(struct pw_nfd_info *info);
void pw_nfd_warn(struct pw_nfd_info *info, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* True when @path is a directory (following links). */
bool pw_nfd_is_dir(const char *path);

/* run.c */

/*
 * Run @argv (searched in PATH) with stdin and stderr on /dev/null, its stdout
 * into @out (NUL-terminated, cut at @cap - 1), in its own process group,
 * killed after @timeout_ms. Returns the exit status (0..255), 128 + signal
 * when it died of one. Errors: -ENOENT not found, -ETIMEDOUT killed at the
 * limit, errors of posix_spawnp(3) and pipe2(2).
 */
int pw_nfd_run(char *const argv[], int timeout_ms, char *out, size_t cap);
/* True when @name is an executable file in PATH (or a path to one). */
bool pw_nfd_have(const char *name);
void pw_nfd_probe_ovs(struct pw_nfd_info *info);
void pw_nfd_measure(const struct pw_nfd_opts *o, struct pw_nfd_info *info);
/* The podwire-bench beside this program, in the build tree or in PATH;
 * NULL if none. Returns static storage. */
const char *pw_nfd_find_bench(void);

/* labels.c */

/* Copy @in into @out as a valid label value: characters outside
 * [A-Za-z0-9._-] become '_', at most 63, trimmed to start and end with an
 * alphanumeric. Returns false (and "") when nothing is left. */
bool pw_nfd_label_value(const char *in, char *out, size_t cap);
/* "ultra", "low", "medium" or "high" for a round trip of @ns. */
const char *pw_nfd_latency_class(double ns);
/* @v rounded to two significant digits. */
unsigned long pw_nfd_round2(double v);
/* The labels @info stands for; @compat adds seed 000's dpdk and ovs-dpdk. */
void pw_nfd_labels_build(const struct pw_nfd_info *info, bool compat, struct pw_nfd_labels *ls);
const char *pw_nfd_labels_get(const struct pw_nfd_labels *ls, const char *key);
/* True when this tool owns label @key (see docs/NFD.md). */
bool pw_nfd_label_owned(const char *key, bool compat);
/* The report: probe results and labels. NULL on allocation failure. */
cJSON *pw_nfd_json(const struct pw_nfd_info *info, const struct pw_nfd_labels *ls,
		   const char *node);
/*
 * Write @ls to @path in NFD's features.d format, atomically: a hidden temp
 * file in the same directory (NFD skips dot files), fsync, rename, fsync of
 * the directory. @expiry (Unix time, 0 for none) adds NFD's expiry-time
 * directive. Returns 0 or -errno.
 */
int pw_nfd_features_write(const char *path, const struct pw_nfd_labels *ls, long long expiry);

/* apilabel.c */

struct pw_kube;

/*
 * The JSON patch (an array of RFC 6902 ops) that turns the node's labels
 * @cur (its metadata.labels; NULL or not an object when it has none) into
 * @cur plus @ls minus the owned labels @ls lacks; a `test` op precedes each
 * replace and remove. *@nchanges counts labels added, changed or removed
 * (0: nothing to send). NULL on allocation failure.
 */
cJSON *pw_nfd_label_patch(const cJSON *cur, const struct pw_nfd_labels *ls, bool compat,
			  unsigned *nchanges);
/* The annotation naming podwired's socket (a path: not a label value). */
#define PW_NFD_SOCKET_ANNOTATION PW_NFD_PREFIX "podwired-socket"
/*
 * Read node @node, patch its labels as above and its annotation
 * PW_NFD_SOCKET_ANNOTATION to @socket (NULL: removed) in the same patch (no
 * request when nothing changes), re-reading and retrying when a concurrent
 * writer makes a test fail. Returns 0 with *@nchanges (labels and the
 * annotation), or a pw_kube error code (PW_KUBE_E_HTTP for a non-2xx answer,
 * e.g. 404 no such node, 403 no RBAC).
 */
int pw_nfd_label_node(struct pw_kube *k, const char *node, const struct pw_nfd_labels *ls,
		      bool compat, const char *socket, unsigned *nchanges);

#endif /* PW_NFD_H */
