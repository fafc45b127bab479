/* SPDX-License-Identifier: MIT */
/*
 * podwire-scheduler's cluster model and placement policy (no I/O).
 *
 * The model holds nodes and pods parsed from Kubernetes JSON into compact
 * structs, and keeps what bound pods consume on each node: resources, pod
 * slots and the scarce data-path devices (DPDK interfaces, SR-IOV VFs).
 * Objects live in arrays and are named by index; a freed slot is reused.
 * Functions return 0 or a negative errno; parse errors also fill @err.
 */
#ifndef PW_SCHED_H
#define PW_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#define PW_SCHED_MAX_RES   32	      /* distinct resource names in one model */
#define PW_SCHED_MAX_PATHS 8	      /* data paths in a policy */
#define PW_SCHED_MAX_ALIAS 4	      /* labels or annotations naming the same thing */
#define PW_LAT_NONE	   UINT32_MAX /* no requirement / no such path */
#define PW_SCHED_ERRLEN	   256

/* Fixed resource ids; others (extended resources, hugepages) are interned. */
enum { PW_RES_CPU, PW_RES_MEMORY, PW_RES_EPHEMERAL, PW_RES_PODS, PW_RES_FIRST_EXT };

/*
 * Parse a Kubernetes quantity ("500m", "2", "1Gi", "1.5G", "1e3") into an
 * integer count of 10^@scale units, rounding up like resource.Quantity's
 * Value() (@scale 0) and MilliValue() (@scale -3). Returns 0, -EINVAL for a
 * malformed string or -ERANGE if the value does not fit in int64.
 */
int pw_qty_parse(const char *s, int scale, int64_t *ret_v);
/* The same for a cJSON string or number. */
int pw_qty_parse_json(const cJSON *v, int scale, int64_t *ret_v);

/* strdup(@s), NULL for NULL; sets *@oom when out of memory (and keeps it). */
char *pw_sched_strdup(const char *s, bool *oom);
/* Whole file into a NUL-terminated buffer (caller frees); -errno with @err. */
int pw_sched_read_file(const char *path, char **ret_buf, size_t *ret_len, char *err, size_t errlen);

/* ---- policy ---- */

struct pw_path_def {
	char *name;
	uint32_t lat_us;			/* default latency; PW_LAT_NONE: only measured */
	bool colocated;				/* only between pods on the same node */
	bool always;				/* every node has it */
	char *count_labels[PW_SCHED_MAX_ALIAS]; /* scarce: label holds the count */
	unsigned ncount;
	char *flag_labels[PW_SCHED_MAX_ALIAS]; /* label value "true" */
	unsigned nflag;
	char *measured_label; /* RTT in ns measured on the node; overrides lat_us */
	char *resource;	      /* extended resource counting the same devices */
};

struct pw_policy {
	char *scheduler_name;
	struct pw_path_def paths[PW_SCHED_MAX_PATHS];
	unsigned npaths;
	char *latency_annotations[PW_SCHED_MAX_ALIAS];
	unsigned nlat_annot;
	char *peer_annotation;
};

/* Seed 000's tiers plus podwire's own paths (see docs/SCHEDULER.md). */
int pw_policy_default(struct pw_policy *p);
/* Defaults overridden by a JSON document; -EINVAL with @err on bad input. */
int pw_policy_from_json(struct pw_policy *p, const cJSON *doc, char *err, size_t errlen);
int pw_policy_load(struct pw_policy *p, const char *path, char *err, size_t errlen);
cJSON *pw_policy_to_json(const struct pw_policy *p);
void pw_policy_free(struct pw_policy *p);

/* ---- model ---- */

struct pw_kv {
	char *key, *val;
};

enum { PW_EFFECT_ANY, PW_EFFECT_NOSCHEDULE, PW_EFFECT_PREFER, PW_EFFECT_NOEXECUTE };

struct pw_taint {
	char *key, *val;
	uint8_t effect;
};

struct pw_toleration {
	char *key, *val;
	bool exists; /* operator Exists (else Equal) */
	uint8_t effect;
};

enum { PW_SEL_IN, PW_SEL_NOTIN, PW_SEL_EXISTS, PW_SEL_NOTEXIST, PW_SEL_GT, PW_SEL_LT };

struct pw_selreq {
	char *key;
	char **vals;
	unsigned nvals;
	uint8_t op;
	bool field; /* matchFields (metadata.name) rather than labels */
};

struct pw_selterm {
	struct pw_selreq *reqs;
	unsigned nreqs;
};

struct pw_node_path {
	uint32_t lat_us; /* PW_LAT_NONE: the node lacks this path */
	int32_t cap;	 /* devices for a scarce path, -1 unlimited */
	int32_t used;
};

struct pw_node {
	char *name; /* NULL: free slot */
	char *rv;   /* resourceVersion */
	struct pw_kv *labels;
	unsigned nlabels;
	struct pw_taint *taints;
	unsigned ntaints;
	bool unschedulable, not_ready;
	uint32_t alloc_mask; /* resources the node reports */
	int64_t alloc[PW_SCHED_MAX_RES];
	int64_t used[PW_SCHED_MAX_RES];
	struct pw_node_path path[PW_SCHED_MAX_PATHS];
};

/* The part of a node each placement reads, packed for the node scan. */
enum { PW_HOT_FREE = 1, PW_HOT_SLOW = 2 /* taints, cordoned or not ready */ };

struct pw_node_hot {
	uint32_t flags;
	uint32_t cap_lat; /* best free network path: lower is more capable */
	int64_t cpu_alloc, cpu_used, mem_alloc, mem_used, pods_alloc, pods_used;
};

enum { PW_PHASE_PENDING, PW_PHASE_RUNNING, PW_PHASE_SUCCEEDED, PW_PHASE_FAILED, PW_PHASE_UNKNOWN };

struct pw_req {
	uint16_t id;
	int64_t v;
};

struct pw_pod {
	char *key; /* "ns/name"; NULL: free slot */
	char *ns;
	const char *name; /* inside key */
	char *uid, *rv, *sched_name, *node_name, *peer;
	char *invalid; /* why it cannot be scheduled at all (bad annotation...) */
	uint32_t max_lat_us;
	uint8_t phase;
	bool deleting;
	struct pw_req *req; /* effective requests, without the pod slot */
	unsigned nreq;
	int64_t cpu, mem;
	bool other_req; /* requests beyond cpu and memory */
	struct pw_toleration *tols;
	unsigned ntols;
	struct pw_kv *selector;
	unsigned nselector;
	struct pw_selterm *affinity; /* required node affinity, ORed terms */
	unsigned naffinity;
	bool has_affinity;
	/* what the model charged to a node for this pod */
	int32_t acct_node;
	int8_t acct_path;
	int32_t acct_path_n;
	/* the live scheduler's retry state; kept when the same pod (uid) is updated */
	uint32_t attempts;
	uint64_t retry_at_ns, failed_at_ns, fail_gen;
	char *fail_event;      /* name of the FailedScheduling Event repeats update */
	uint32_t fail_event_n; /* and its count */
	/* The message of the pod's PodScheduled=False/Unschedulable condition as
	 * the server has it (NULL: none), so it is patched only when it changes. */
	char *unsched_msg;
};

struct pw_map_ent;
struct pw_map {
	struct pw_map_ent *e;
	uint32_t cap, n;
};

struct pw_model {
	const struct pw_policy *pol;
	char *res[PW_SCHED_MAX_RES];
	unsigned nres;
	int path_res[PW_SCHED_MAX_PATHS]; /* resource id of each path, -1 */
	struct pw_node *nodes;
	struct pw_node_hot *hot;
	unsigned nnodes, cap_nodes, live_nodes;
	struct pw_pod *pods;
	unsigned npods, cap_pods, live_pods;
	struct pw_map node_map, pod_map;
	int32_t *peer_pods; /* pods with a peer annotation (may hold stale entries) */
	unsigned npeer_pods, cap_peer_pods;
	/* bumped by changes that may let an unschedulable pod fit: node added or
	 * changed, pod deleted, finished or bound */
	uint64_t gen;
};

int pw_model_init(struct pw_model *m, const struct pw_policy *pol);
void pw_model_free(struct pw_model *m);
int pw_model_res_id(struct pw_model *m, const char *name, bool add);

/*
 * Insert or replace a Node/Pod from its JSON. Replacing keeps the index and
 * re-charges bound pods. Returns the index, or -EINVAL (malformed object, with
 * @err), -ENOMEM. A pod whose fields make it unschedulable (a bad annotation
 * or quantity) is still stored, with the reason in pod->invalid.
 */
int pw_model_put_node(struct pw_model *m, const cJSON *obj, char *err, size_t errlen);
int pw_model_put_pod(struct pw_model *m, const cJSON *obj, char *err, size_t errlen);
/* Parse without storing (extender requests); free with pw_node_clear/pw_pod_clear. */
int pw_pod_parse(struct pw_model *m, const cJSON *obj, struct pw_pod *p, char *err, size_t errlen);
void pw_pod_clear(struct pw_pod *p);
/* Undo pw_model_bind (a binding the API server refused). */
int pw_model_unbind(struct pw_model *m, int pod);
int pw_node_parse(struct pw_model *m, const cJSON *obj, struct pw_node *n, char *err,
		  size_t errlen);
void pw_node_clear(struct pw_node *n);
int pw_model_del_node(struct pw_model *m, const char *name);
int pw_model_del_pod(struct pw_model *m, const char *ns, const char *name);
int pw_model_find_node(const struct pw_model *m, const char *name);
int pw_model_find_pod(const struct pw_model *m, const char *ns, const char *name);
/* Record that @pod now runs on @node and charge it. -EEXIST if already bound. */
int pw_model_bind(struct pw_model *m, int pod, int node);

static inline bool pw_pod_pending(const struct pw_pod *p)
{
	return p->key && !p->node_name && !p->deleting &&
	       (p->phase == PW_PHASE_PENDING || p->phase == PW_PHASE_UNKNOWN);
}

/* ---- placement ---- */

struct pw_decision {
	int node; /* -1: unschedulable */
	int path; /* path the pod's requirement is met by, -1 */
	unsigned feasible;
	char reason[PW_SCHED_ERRLEN];
};

/* Choose a node for pending pod @pod; the model is not changed. */
int pw_sched_place(struct pw_model *m, int pod, struct pw_decision *d);

/*
 * Check one node for the extender: the podwire part of the filter only
 * (latency paths and scarce devices; kube-scheduler checks the rest).
 * Returns true if it fits; otherwise @why says why. @cap_lat gets the
 * node's capability for scoring.
 */
bool pw_sched_check_node(struct pw_model *m, const struct pw_pod *pod, const struct pw_node *n,
			 int node_idx, char *why, size_t whylen, uint32_t *cap_lat);

/* Index of the node pod @p's peer runs on, or a negative value. */
int pw_sched_peer_node(const struct pw_model *m, const struct pw_pod *p);

#endif /* PW_SCHED_H */
