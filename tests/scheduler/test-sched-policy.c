// SPDX-License-Identifier: MIT
/*
 * Model and placement policy: tier boundaries (exactly 800, 5000, 10000 µs),
 * measured labels, scarce devices including bound pods, resources, taints,
 * selectors, co-location, the policy file, model updates.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "pw_test.h"
#include "sched_model.h"

static struct pw_policy pol;
static struct pw_model m;
static int nseq;

static void reset(const char *policy_json)
{
	char err[PW_SCHED_ERRLEN] = "";

	pw_model_free(&m);
	pw_policy_free(&pol);
	if (policy_json) {
		cJSON *doc = cJSON_Parse(policy_json);

		PW_CHECK(doc, "policy JSON");
		PW_CHECK(pw_policy_from_json(&pol, doc, err, sizeof(err)) == 0, "%s", err);
		cJSON_Delete(doc);
	} else {
		PW_CHECK_EQ(pw_policy_default(&pol), 0);
	}
	PW_CHECK_EQ(pw_model_init(&m, &pol), 0);
}

/* A Node: labels as JSON members, allocatable cpu/memory plus extra members. */
static void node(const char *name, const char *labels, const char *extra_alloc, const char *spec)
{
	char buf[2048], err[PW_SCHED_ERRLEN] = "";
	cJSON *o;

	snprintf(
		buf, sizeof(buf),
		"{\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\",\"labels\":{%s}},"
		"\"spec\":{%s},\"status\":{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"8Gi\","
		"\"pods\":\"110\"%s%s},\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}",
		name, labels ? labels : "", spec ? spec : "", extra_alloc ? "," : "",
		extra_alloc ? extra_alloc : "");
	o = cJSON_Parse(buf);
	PW_CHECK(o, "node JSON %s", buf);
	PW_CHECK(pw_model_put_node(&m, o, err, sizeof(err)) >= 0, "put node %s: %s", name, err);
	cJSON_Delete(o);
}

/* A pod from its annotations, container resources and extra spec members. */
static int pod_full(const char *name, const char *ann, const char *res, const char *spec,
		    const char *node_name)
{
	char buf[4096], err[PW_SCHED_ERRLEN] = "";
	cJSON *o;
	int pi;

	snprintf(buf, sizeof(buf),
		 "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":\"t\",\"uid\":\"u-%"
		 "s-%d\","
		 "\"annotations\":{%s}},\"spec\":{\"schedulerName\":\"podwire-scheduler\"%s%s%s"
		 "%s\"containers\":[{\"name\":\"c\",\"resources\":{%s}}]}}",
		 name, name, nseq++, ann ? ann : "", node_name ? ",\"nodeName\":\"" : "",
		 node_name ? node_name : "", node_name ? "\"" : "", spec ? spec : ",",
		 res ? res : "\"requests\":{\"cpu\":\"100m\",\"memory\":\"64Mi\"}");
	o = cJSON_Parse(buf);
	PW_CHECK(o, "pod JSON %s", buf);
	pi = pw_model_put_pod(&m, o, err, sizeof(err));
	PW_CHECK(pi >= 0, "put pod %s: %s", name, err);
	cJSON_Delete(o);
	return pi;
}

static int pod(const char *name, const char *ann)
{
	return pod_full(name, ann, NULL, NULL, NULL);
}

/* Place and bind; returns the node name or NULL, reason in *why. */
static const char *place(int pi, const char **why)
{
	static struct pw_decision d;

	PW_CHECK_EQ(pw_sched_place(&m, pi, &d), 0);
	if (why)
		*why = d.reason;
	if (d.node < 0)
		return NULL;
	PW_CHECK_EQ(pw_model_bind(&m, pi, d.node), 0);
	return m.nodes[d.node].name;
}

#define EXPECT(pi, want)                                                                           \
	do {                                                                                       \
		const char *why_, *got_ = place((pi), &why_);                                      \
		const char *w_ = (want);                                                           \
		if ((!got_ != !w_) || (got_ && strcmp(got_, w_)))                                  \
			PW_FAIL("pod %s: placed on %s, want %s (%s)", m.pods[pi].key,              \
				got_ ? got_ : "(none)", w_ ? w_ : "(none)", why_);                 \
	} while (0)

#define EXPECT_WHY(pi, want, substr)                                                               \
	do {                                                                                       \
		const char *why_, *got_ = place((pi), &why_);                                      \
		const char *w_ = (want);                                                           \
		if ((!got_ != !w_) || (got_ && strcmp(got_, w_)) || !strstr(why_, substr))         \
			PW_FAIL("pod %s: placed on %s (%s), want %s with \"%s\"", m.pods[pi].key,  \
				got_ ? got_ : "(none)", why_, w_ ? w_ : "(none)", substr);         \
	} while (0)

static void three_tiers(const char *dpdk_count)
{
	char l[128];

	snprintf(l, sizeof(l), "\"podwire.io/dpdk-interfaces\":\"%s\"", dpdk_count);
	node("dpdk", l, NULL, NULL);
	node("ovs", "\"podwire.io/ovs-dpdk\":\"true\"", NULL, NULL);
	node("plain", NULL, NULL, NULL);
}

static void test_boundaries(void)
{
	static const struct {
		const char *lat, *node;
	} cases[] = {
		{ "0", NULL },	      { "799", NULL },		 { "800", "dpdk" },
		{ "801", "dpdk" },    { "4999", "dpdk" },	 { "5000", "ovs" },
		{ "5001", "ovs" },    { "9999", "ovs" },	 { "10000", "plain" },
		{ "10001", "plain" }, { "4294967294", "plain" },
	};
	char ann[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset(NULL);
		three_tiers("100");
		snprintf(ann, sizeof(ann), "\"podwire.io/max-latency-us\":\"%s\"", cases[i].lat);
		EXPECT(pod("p", ann), cases[i].node);
		/* seed 000's annotation means the same */
		snprintf(ann, sizeof(ann), "\"latency\":\"%s\"", cases[i].lat);
		EXPECT(pod("q", ann), cases[i].node);
	}
	/* no requirement: the least capable node */
	reset(NULL);
	three_tiers("1");
	EXPECT_WHY(pod("none", NULL), "plain", "no latency requirement");
	/* podwire.io/max-latency-us wins over latency */
	EXPECT(pod("both", "\"podwire.io/max-latency-us\":\"900\",\"latency\":\"50000\""), "dpdk");
}

static void test_seed000(void)
{
	const char *why;

	reset(NULL);
	node("dpdk-node", "\"dpdk\":\"2\"", NULL, NULL);
	node("ovs-node", "\"ovs-dpdk\":\"true\"", NULL, NULL);
	node("plain-node", NULL, NULL, NULL);
	int p100 = pod("l100", "\"latency\":\"100\"");
	int p800 = pod("l800", "\"latency\":\"800\"");
	int p3000 = pod("l3000", "\"latency\":\"3000\"");
	int p7000 = pod("l7000", "\"latency\":\"7000\"");
	int p20000 = pod("l20000", "\"latency\":\"20000\"");

	PW_CHECK(!place(p100, &why), "100us placed");
	PW_CHECK(strstr(why, "0/3 nodes fit: 3 no path <= 100us (best 800us)"), "%s", why);
	EXPECT_WHY(p800, "dpdk-node", "dpdk 1/2 in use");
	EXPECT_WHY(p3000, "dpdk-node", "dpdk 2/2 in use");
	EXPECT(p7000, "ovs-node");
	EXPECT(p20000, "plain-node");
	/* interfaces ran out: the next DPDK pod is told so */
	int p900 = pod("l900", "\"latency\":\"900\"");
	PW_CHECK(!place(p900, &why), "placed with no interface left");
	PW_CHECK(strstr(why, "1 no free dpdk") && strstr(why, "2 no path <= 900us"), "%s", why);
	/* a pod that leaves gives its interface back */
	PW_CHECK_EQ(pw_model_del_pod(&m, "t", "l800"), 0);
	EXPECT(p900 = pod("l900b", "\"latency\":\"900\""), "dpdk-node");
	/* label "0" or "false": no such path */
	reset(NULL);
	node("zero", "\"dpdk\":\"0\",\"ovs-dpdk\":\"false\"", NULL, NULL);
	PW_CHECK(!place(pod("l800", "\"latency\":\"800\""), &why), "dpdk=0 used");
	PW_CHECK(!place(pod("l6000", "\"latency\":\"6000\""), &why), "ovs-dpdk=false used");
}

/* Packet interfaces of podwire-switch (issue 13): counted as the seed's
 * DPDK interfaces are, from podwire-nfd's label; a DPDK node still wins a
 * pod that needs 800 us. */
static void test_packet_interfaces(void)
{
	const char *why;

	reset(NULL);
	node("sw-node", "\"podwire.io/packet-interfaces\":\"1\"", NULL, NULL);
	node("dpdk-node", "\"dpdk\":\"1\"", NULL, NULL);
	node("plain-node", NULL, NULL, NULL);
	EXPECT(pod("l800", "\"latency\":\"800\""), "dpdk-node");
	EXPECT_WHY(pod("l1000", "\"latency\":\"1000\""), "sw-node", "memif 1/1 in use");
	int p = pod("l1000b", "\"latency\":\"1000\"");
	PW_CHECK(!place(p, &why), "placed with no packet interface left");
	PW_CHECK(strstr(why, "no free memif"), "%s", why);
	EXPECT(pod("l20000", "\"latency\":\"20000\""), "plain-node");
	/* a pod that leaves gives its interface back */
	PW_CHECK_EQ(pw_model_del_pod(&m, "t", "l1000"), 0);
	EXPECT(pod("l1000c", "\"latency\":\"1000\""), "sw-node");
}

static void test_bound_pods_count(void)
{
	const char *why;

	reset(NULL);
	three_tiers("2");
	/* Bound by someone else, needing DPDK: holds an interface. Without a
	 * requirement: holds none. Finished: holds nothing. */
	pod_full("b1", "\"latency\":\"1000\"", NULL, NULL, "dpdk");
	pod_full("b2", NULL, NULL, NULL, "dpdk");
	char done[512];
	snprintf(done, sizeof(done),
		 "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"b3\",\"namespace\":"
		 "\"t\",\"annotations\":{\"latency\":\"1000\"}},\"spec\":{\"nodeName\":\"dpdk\"},"
		 "\"status\":{\"phase\":\"Succeeded\"}}");
	cJSON *o = cJSON_Parse(done);
	PW_CHECK(pw_model_put_pod(&m, o, NULL, 0) >= 0, "b3");
	cJSON_Delete(o);
	EXPECT_WHY(pod("p1", "\"latency\":\"1000\""), "dpdk", "dpdk 2/2 in use");
	PW_CHECK(!place(pod("p2", "\"latency\":\"1000\""), &why), "third interface");
	/* The node says it has a device plugin resource: that count wins over the label. */
	reset(NULL);
	node("dp", "\"podwire.io/dpdk-interfaces\":\"8\"", "\"podwire.io/dpdk-interface\":\"1\"",
	     NULL);
	EXPECT(pod("p1", "\"latency\":\"1000\""), "dp");
	PW_CHECK(!place(pod("p2", "\"latency\":\"1000\""), &why), "allocatable ignored");
	/* An explicit request names the path and counts against both. */
	reset(NULL);
	node("dp", NULL, "\"podwire.io/dpdk-interface\":\"2\"", NULL);
	node("plain", NULL, NULL, NULL);
	int e1 = pod_full("e1", NULL,
			  "\"requests\":{\"podwire.io/dpdk-interface\":\"2\"},\"limits\":{"
			  "\"podwire.io/dpdk-interface\":\"2\"}",
			  NULL, NULL);
	EXPECT_WHY(e1, "dp", "dpdk 2/2 in use");
	int e2 = pod_full("e2", NULL, "\"limits\":{\"podwire.io/dpdk-interface\":\"1\"}", NULL,
			  NULL);
	PW_CHECK(!place(e2, &why), "explicit over capacity");
	PW_CHECK(strstr(why, "insufficient podwire.io/dpdk-interface"), "%s", why);
	PW_CHECK(!place(pod("l1000", "\"latency\":\"1000\""), &why), "implicit over capacity");
}

static void test_measured(void)
{
	const char *why;

	reset(NULL);
	/* measured OvS-DPDK path of 3 ms: a 3000-us pod now fits there (least capable) */
	node("dpdk", "\"podwire.io/dpdk-interfaces\":\"4\"", NULL, NULL);
	node("ovs", "\"podwire.io/ovs-dpdk\":\"true\",\"podwire.io/ovs-dpdk-rtt-ns\":\"3000000\"",
	     NULL, NULL);
	EXPECT_WHY(pod("p3000", "\"latency\":\"3000\""), "ovs", "ovs-dpdk 3000us <= 3000us");
	/* ns round up to whole µs: 3000001 ns is 3001 µs */
	reset(NULL);
	node("ovs", "\"podwire.io/ovs-dpdk\":\"true\",\"podwire.io/ovs-dpdk-rtt-ns\":\"3000001\"",
	     NULL, NULL);
	PW_CHECK(!place(pod("p3000", "\"latency\":\"3000\""), &why), "3001us met 3000us");
	PW_CHECK(strstr(why, "best 3001us"), "%s", why);
	/* a measured kernel path makes a plain node a low-latency one */
	reset(NULL);
	node("fast", "\"podwire.io/kernel-rtt-ns\":\"400000\"", NULL, NULL);
	EXPECT(pod("p500", "\"latency\":\"500\""), "fast");
	/* garbage in a measured label is ignored, not trusted */
	reset(NULL);
	node("bad", "\"podwire.io/kernel-rtt-ns\":\"fast\"", NULL, NULL);
	PW_CHECK(!place(pod("p500", "\"latency\":\"500\""), &why), "bad label trusted");
}

static void test_colocation(void)
{
	const char *why;

	reset(NULL);
	node("a", "\"podwire.io/podwired\":\"true\",\"podwire.io/shm-rtt-ns\":\"480\"", NULL, NULL);
	node("b", "\"podwire.io/podwired\":\"true\"", NULL, NULL);
	node("c", "\"podwire.io/dpdk-interfaces\":\"2\"", NULL, NULL);
	pod_full("server", NULL, NULL, NULL, "a");
	pod_full("server-b", NULL, NULL, NULL, "b");
	pod_full("server-c", NULL, NULL, NULL, "c");
	/* 100 us only with the peer, over shm (measured 480 ns = 1 us) */
	EXPECT_WHY(pod("client", "\"latency\":\"100\",\"podwire.io/peer\":\"server\""), "a",
		   "path shm 1us <= 100us");
	/* without a measurement the policy's 100 us default applies: exactly met */
	EXPECT_WHY(pod("client-b", "\"latency\":\"100\",\"podwire.io/peer\":\"t/server-b\""), "b",
		   "path shm 100us <= 100us");
	/* a node without podwired offers no shm path, even to the peer */
	PW_CHECK(!place(pod("client-c", "\"latency\":\"100\",\"podwire.io/peer\":\"server-c\""),
			&why),
		 "no shm on c");
	PW_CHECK(strstr(why, "peer t/server-c is on c"), "%s", why);
	/* no peer: nowhere */
	PW_CHECK(!place(pod("alone", "\"latency\":\"100\""), &why), "alone placed");
	/* a peer that does not exist */
	PW_CHECK(!place(pod("lost", "\"latency\":\"100\",\"podwire.io/peer\":\"nobody\""), &why),
		 "lost placed");
	PW_CHECK(strstr(why, "peer t/nobody not found"), "%s", why);
	/* with a peer, a pod that DPDK would serve keeps the interface free (shm meets) */
	EXPECT_WHY(pod("c2", "\"latency\":\"1000\",\"podwire.io/peer\":\"server-c\""), "c",
		   "dpdk 1/2");
	EXPECT_WHY(pod("a2", "\"latency\":\"1000\",\"podwire.io/peer\":\"server\""), "a",
		   "path shm");
	/* two pending peers: the first starts the pair on a shm node, the second follows */
	reset(NULL);
	node("plain", NULL, NULL, NULL);
	node("shm", "\"podwire.io/podwired\":\"true\"", NULL, NULL);
	int x = pod("x", "\"latency\":\"100\",\"podwire.io/peer\":\"y\"");
	int y = pod("y", "\"latency\":\"100\",\"podwire.io/peer\":\"x\"");
	EXPECT(x, "shm");
	EXPECT_WHY(y, "shm", "with peer t/x");
	/* a peer that is the same node but without a requirement: co-location breaks ties */
	reset(NULL);
	node("p1", NULL, NULL, NULL);
	node("p2", NULL, NULL, NULL);
	pod_full("srv", NULL, NULL, NULL, "p2");
	EXPECT(pod("cli", "\"podwire.io/peer\":\"srv\""), "p2");
}

static void test_resources(void)
{
	const char *why;

	reset(NULL);
	node("n", NULL, "\"example.com/gpu\":\"2\"", NULL);
	/* 4 cpus: 3 + 1 fit, then nothing */
	EXPECT(pod_full("a", NULL, "\"requests\":{\"cpu\":\"3\"}", NULL, NULL), "n");
	EXPECT(pod_full("b", NULL, "\"requests\":{\"cpu\":\"1000m\"}", NULL, NULL), "n");
	PW_CHECK(!place(pod_full("c", NULL, "\"requests\":{\"cpu\":\"1m\"}", NULL, NULL), &why),
		 "cpu over");
	PW_CHECK(strstr(why, "1 insufficient cpu"), "%s", why);
	/* limits stand in for requests */
	reset(NULL);
	node("n", NULL, "\"example.com/gpu\":\"2\"", NULL);
	PW_CHECK(!place(pod_full("big", NULL, "\"limits\":{\"memory\":\"9Gi\"}", NULL, NULL), &why),
		 "limit ignored");
	PW_CHECK(strstr(why, "insufficient memory"), "%s", why);
	/* extended resources */
	for (int i = 0; i < 2; i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "g%d", i);
		EXPECT(pod_full(nm, NULL, "\"limits\":{\"example.com/gpu\":\"1\"}", NULL, NULL),
		       "n");
	}
	PW_CHECK(!place(pod_full("g2", NULL, "\"limits\":{\"example.com/gpu\":\"1\"}", NULL, NULL),
			&why),
		 "gpu over");
	PW_CHECK(strstr(why, "insufficient example.com/gpu"), "%s", why);
	/* a node that does not have the resource at all */
	PW_CHECK(!place(pod_full("f", NULL, "\"limits\":{\"example.com/fpga\":\"1\"}", NULL, NULL),
			&why),
		 "fpga");
	/* init containers: the largest one, or the sum of the app containers */
	reset(NULL);
	node("n", NULL, NULL, NULL);
	int pi = pod_full("init", NULL, "\"requests\":{\"cpu\":\"1\"}",
			  ",\"initContainers\":[{\"name\":\"i\",\"resources\":{\"requests\":{"
			  "\"cpu\":\"3500m\"}}}],",
			  NULL);
	PW_CHECK_EQ(m.pods[pi].cpu, 3500);
	/* a sidecar (restartPolicy Always) runs beside the app containers */
	pi = pod_full("side", NULL, "\"requests\":{\"cpu\":\"1\"}",
		      ",\"initContainers\":[{\"name\":\"s\",\"restartPolicy\":\"Always\","
		      "\"resources\":{\"requests\":{\"cpu\":\"500m\"}}},{\"name\":\"i\","
		      "\"resources\":{\"requests\":{\"cpu\":\"1200m\"}}}],",
		      NULL);
	PW_CHECK_EQ(m.pods[pi].cpu, 1700); /* max(1+0.5, 0.5+1.2) */
	pi = pod_full("ovh", NULL, "\"requests\":{\"cpu\":\"1\"}",
		      ",\"overhead\":{\"cpu\":\"250m\",\"memory\":\"1Mi\"},", NULL);
	PW_CHECK_EQ(m.pods[pi].cpu, 1250);
	PW_CHECK_EQ(m.pods[pi].mem, 1 << 20);
	/* pod slots */
	reset(NULL);
	char spec[256];
	snprintf(spec, sizeof(spec), "\"status\":{}");
	cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"tiny\"},\"status\":{\"allocatable\":"
			       "{\"cpu\":\"4\",\"memory\":\"1Gi\",\"pods\":\"1\"}}}");
	PW_CHECK(pw_model_put_node(&m, o, NULL, 0) >= 0, "tiny");
	cJSON_Delete(o);
	EXPECT(pod("one", NULL), "tiny");
	PW_CHECK(!place(pod("two", NULL), &why), "second pod");
	PW_CHECK(strstr(why, "too many pods"), "%s", why);
	/* a bad quantity makes the pod unschedulable with the reason */
	PW_CHECK(
		!place(pod_full("badq", NULL, "\"requests\":{\"cpu\":\"lots\"}", NULL, NULL), &why),
		"bad quantity");
	PW_CHECK(strstr(why, "invalid pod") && strstr(why, "cpu=\"lots\""), "%s", why);
	PW_CHECK(!place(pod_full("negq", NULL, "\"requests\":{\"memory\":\"-1\"}", NULL, NULL),
			&why),
		 "negative quantity");
}

static void test_taints_selectors(void)
{
	const char *why;

	/* Taints are named, grouped by kind, as kube-scheduler names them. */
	reset(NULL);
	for (int i = 0; i < 2; i++)
		node(i ? "a2" : "a1", NULL, NULL,
		     "\"taints\":[{\"key\":\"k1\",\"value\":\"v1\",\"effect\":\"NoSchedule\"}]");
	node("b", NULL, NULL,
	     "\"taints\":[{\"key\":\"k2\",\"value\":\"\",\"effect\":\"NoExecute\"}]");
	PW_CHECK(!place(pod("t", NULL), &why), "placed on a tainted node");
	PW_CHECK(strstr(why, "0/3 nodes fit: 2 untolerated taint {k1: v1}, 1 untolerated taint "
			     "{k2: } (NoExecute)"),
		 "%s", why);

	reset(NULL);
	node("tainted", NULL, NULL,
	     "\"taints\":[{\"key\":\"dedicated\",\"value\":\"infra\",\"effect\":\"NoSchedule\"}]");
	node("cordoned", NULL, NULL, "\"unschedulable\":true");
	cJSON *o = cJSON_Parse("{\"metadata\":{\"name\":\"sick\",\"labels\":{\"zone\":\"a\"}},"
			       "\"status\":{\"allocatable\":{\"cpu\":\"4\",\"memory\":\"8Gi\","
			       "\"pods\":\"9\"},\"conditions\":[{\"type\":\"Ready\",\"status\":"
			       "\"Unknown\"}]}}");
	PW_CHECK(pw_model_put_node(&m, o, NULL, 0) >= 0, "sick");
	cJSON_Delete(o);
	PW_CHECK(!place(pod("p", NULL), &why), "placed on a bad node");
	PW_CHECK(strstr(why, "0/3 nodes fit: 1 not ready, 1 unschedulable, 1 untolerated taint "
			     "{dedicated: infra}"),
		 "%s", why);
	EXPECT(pod_full("tol", NULL, NULL,
			",\"tolerations\":[{\"key\":\"dedicated\",\"operator\":\"Equal\","
			"\"value\":\"infra\",\"effect\":\"NoSchedule\"}],",
			NULL),
	       "tainted");
	PW_CHECK(!place(pod_full("tolwrong", NULL, NULL,
				 ",\"tolerations\":[{\"key\":\"dedicated\",\"value\":\"other\"}],",
				 NULL),
			&why),
		 "wrong value tolerated");
	/* an empty key with Exists tolerates every taint, the cordon's too: least loaded */
	EXPECT(pod_full("tolall", NULL, NULL, ",\"tolerations\":[{\"operator\":\"Exists\"}],",
			NULL),
	       "cordoned");
	EXPECT(pod_full("tolcordon", NULL, NULL,
			",\"tolerations\":[{\"key\":\"node.kubernetes.io/unschedulable\","
			"\"operator\":\"Exists\",\"effect\":\"NoSchedule\"}],",
			NULL),
	       "cordoned");
	/* PreferNoSchedule is only a preference */
	reset(NULL);
	node("soft", NULL, NULL, "\"taints\":[{\"key\":\"k\",\"effect\":\"PreferNoSchedule\"}]");
	EXPECT(pod("p", NULL), "soft");

	/* nodeSelector and required node affinity */
	reset(NULL);
	node("za", "\"zone\":\"a\",\"gen\":\"5\"", NULL, NULL);
	node("zb", "\"zone\":\"b\",\"gen\":\"7\"", NULL, NULL);
	EXPECT(pod_full("sel", NULL, NULL, ",\"nodeSelector\":{\"zone\":\"b\"},", NULL), "zb");
	PW_CHECK(!place(pod_full("selx", NULL, NULL, ",\"nodeSelector\":{\"zone\":\"c\"},", NULL),
			&why),
		 "selector");
	PW_CHECK(strstr(why, "2 node selector/affinity mismatch"), "%s", why);
#define AFF(expr)                                                                                  \
	",\"affinity\":{\"nodeAffinity\":{\"requiredDuringSchedulingIgnoredDuringExecution\":"     \
	"{\"nodeSelectorTerms\":[" expr "]}}},"
	EXPECT(pod_full("in", NULL, NULL,
			AFF("{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":\"In\","
			    "\"values\":[\"a\",\"c\"]}]}"),
			NULL),
	       "za");
	EXPECT(pod_full("gt", NULL, NULL,
			AFF("{\"matchExpressions\":[{\"key\":\"gen\",\"operator\":\"Gt\","
			    "\"values\":[\"6\"]}]}"),
			NULL),
	       "zb");
	EXPECT(pod_full("or", NULL, NULL,
			AFF("{\"matchExpressions\":[{\"key\":\"nope\",\"operator\":\"Exists\"}]},"
			    "{\"matchFields\":[{\"key\":\"metadata.name\",\"operator\":\"In\","
			    "\"values\":[\"zb\"]}]}"),
			NULL),
	       "zb");
	PW_CHECK(!place(pod_full("notin", NULL, NULL,
				 AFF("{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":"
				     "\"NotIn\",\"values\":[\"a\",\"b\"]}]}"),
				 NULL),
			&why),
		 "NotIn");
	PW_CHECK(!place(pod_full("empty", NULL, NULL, AFF("{}"), NULL), &why),
		 "an empty term matches nothing");
	PW_CHECK(!place(pod_full("badop", NULL, NULL,
				 AFF("{\"matchExpressions\":[{\"key\":\"zone\",\"operator\":"
				     "\"Near\"}]}"),
				 NULL),
			&why),
		 "bad operator");
	PW_CHECK(strstr(why, "invalid pod"), "%s", why);
}

static void test_invalid_pods(void)
{
	const char *why;

	reset(NULL);
	three_tiers("2");
	static const char *const bad[] = { "\"latency\":\"fast\"",
					   "\"latency\":\"-5\"",
					   "\"latency\":\"5ms\"",
					   "\"latency\":\"\"",
					   "\"podwire.io/max-latency-us\":\"99999999999\"",
					   "\"latency\":\" 800\"",
					   "\"podwire.io/peer\":\"\"" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char nm[16];

		snprintf(nm, sizeof(nm), "bad%zu", i);
		PW_CHECK(!place(pod(nm, bad[i]), &why), "%s accepted", bad[i]);
		PW_CHECK(strstr(why, "invalid pod: annotation"), "%s: %s", bad[i], why);
	}
	/* numbers in hand-written JSON are fine */
	EXPECT(pod("num", "\"latency\":800"), "dpdk");
	/* structurally broken objects are refused with a reason */
	char err[PW_SCHED_ERRLEN] = "";
	cJSON *o = cJSON_Parse("{\"metadata\":{\"namespace\":\"x\"}}");
	PW_CHECK_EQ(pw_model_put_pod(&m, o, err, sizeof(err)), -EINVAL);
	PW_CHECK(strstr(err, "metadata.name"), "%s", err);
	PW_CHECK_EQ(pw_model_put_node(&m, o, err, sizeof(err)), -EINVAL);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"metadata\":{\"name\":\"n\"},\"status\":{\"allocatable\":{\"cpu\":"
			"\"many\"}}}");
	PW_CHECK_EQ(pw_model_put_node(&m, o, err, sizeof(err)), -EINVAL);
	PW_CHECK(strstr(err, "cpu") && strstr(err, "many"), "%s", err);
	cJSON_Delete(o);
	o = cJSON_Parse("[1,2]");
	PW_CHECK_EQ(pw_model_put_pod(&m, o, err, sizeof(err)), -EINVAL);
	cJSON_Delete(o);
}

static void test_updates(void)
{
	const char *why;

	reset(NULL);
	three_tiers("1");
	int a = pod("a", "\"latency\":\"1000\"");
	EXPECT(a, "dpdk");
	uint64_t gen = m.gen;
	/* the node gains interfaces: its bound pod keeps its charge */
	node("dpdk", "\"podwire.io/dpdk-interfaces\":\"2\"", NULL, NULL);
	PW_CHECK(m.gen != gen, "node update did not bump gen");
	EXPECT_WHY(pod("b", "\"latency\":\"1000\""), "dpdk", "dpdk 2/2 in use");
	PW_CHECK(!place(pod("c", "\"latency\":\"1000\""), &why), "third");
	/* node deleted: pods bound there stop counting, new ones cannot go there */
	PW_CHECK_EQ(pw_model_del_node(&m, "dpdk"), 0);
	PW_CHECK(!place(pod("d", "\"latency\":\"1000\""), &why), "deleted node used");
	PW_CHECK(strstr(why, "0/2 nodes"), "%s", why);
	/* and back: both bound pods are charged again */
	node("dpdk", "\"podwire.io/dpdk-interfaces\":\"2\"", NULL, NULL);
	int ni = pw_model_find_node(&m, "dpdk");
	PW_CHECK_EQ(m.nodes[ni].path[0].used, 2);
	PW_CHECK_EQ(m.nodes[ni].used[PW_RES_PODS], 2);
	PW_CHECK_EQ(m.nodes[ni].used[PW_RES_CPU], 200);
	/* a pod update with the same uid keeps one charge */
	int pi = pw_model_find_pod(&m, "t", "a");
	char buf[512];
	snprintf(
		buf, sizeof(buf),
		"{\"metadata\":{\"name\":\"a\",\"namespace\":\"t\",\"uid\":\"%s\",\"annotations\":"
		"{\"latency\":\"1000\"}},\"spec\":{\"nodeName\":\"dpdk\",\"containers\":[{\"name\":"
		"\"c\",\"resources\":{\"requests\":{\"cpu\":\"300m\"}}}]},\"status\":{\"phase\":"
		"\"Running\"}}",
		m.pods[pi].uid);
	cJSON *o = cJSON_Parse(buf);
	PW_CHECK(pw_model_put_pod(&m, o, NULL, 0) == pi, "same slot");
	cJSON_Delete(o);
	PW_CHECK_EQ(m.nodes[ni].used[PW_RES_CPU], 400);
	PW_CHECK_EQ(m.nodes[ni].path[0].used, 2);
	PW_CHECK_EQ(m.live_pods, 4);
	/* unbind gives back */
	PW_CHECK_EQ(pw_model_unbind(&m, pw_model_find_pod(&m, "t", "b")), 0);
	PW_CHECK_EQ(m.nodes[ni].path[0].used, 1);
	/* many pods in and out: slots and the map stay consistent */
	for (int i = 0; i < 3000; i++) {
		char nm[32];

		snprintf(nm, sizeof(nm), "churn%d", i);
		pod(nm, NULL);
		if (i % 3 == 0) {
			snprintf(nm, sizeof(nm), "churn%d", i / 2);
			pw_model_del_pod(&m, "t", nm);
		}
	}
	unsigned live = 0;
	for (unsigned i = 0; i < m.npods; i++)
		if (m.pods[i].key) {
			live++;
			PW_CHECK(pw_model_find_pod(&m, m.pods[i].ns, m.pods[i].name) == (int)i,
				 "map lost %s", m.pods[i].key);
		}
	PW_CHECK_EQ(live, m.live_pods);
}

static void test_policy_file(void)
{
	const char *why;
	char err[PW_SCHED_ERRLEN];

	reset("{\"paths\":[{\"name\":\"dpdk\",\"latencyUs\":700},{\"name\":\"sriov\","
	      "\"disabled\":true},{\"name\":\"rdma\",\"latencyUs\":300,\"countLabels\":"
	      "\"example.com/rdma\"}],\"latencyAnnotations\":[\"lat\"],\"schedulerName\":\"x\"}");
	PW_CHECK(!strcmp(pol.scheduler_name, "x"), "name");
	node("dpdk", "\"podwire.io/dpdk-interfaces\":\"1\",\"podwire.io/sriov-vfs\":\"8\"", NULL,
	     NULL);
	node("rdma", "\"example.com/rdma\":\"1\"", NULL, NULL);
	EXPECT(pod("p700", "\"lat\":\"700\""), "dpdk");
	EXPECT_WHY(pod("p300", "\"lat\":\"300\""), "rdma", "rdma 1/1");
	/* sriov is gone, and "latency" is no longer read */
	PW_CHECK(!place(pod("p750", "\"lat\":\"750\""), &why), "sriov still there");
	EXPECT_WHY(pod("old", "\"latency\":\"5\""), "dpdk", "no latency requirement");

	static const char *const bad[] = {
		"[]",
		"{\"tiers\":1}",
		"{\"paths\":[{\"name\":\"dpdk\",\"latencyUs\":-1}]}",
		"{\"paths\":[{\"name\":\"dpdk\",\"latencyUs\":1.5}]}",
		"{\"paths\":[{\"name\":\"dpdk\",\"latencyUs\":\"800\"}]}",
		"{\"paths\":[{\"name\":\"x\",\"latencyUs\":5}]}",
		"{\"paths\":[{\"name\":\"dpdk\",\"colour\":\"red\"}]}",
		"{\"paths\":[{\"latencyUs\":5}]}",
		"{\"paths\":[{\"name\":\"shm\",\"countLabels\":[\"x\"]}]}",
		"{\"latencyAnnotations\":[1]}",
		"{\"latencyAnnotations\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
		"{\"schedulerName\":\"\"}",
		/* 6 default paths + 3 = more than PW_SCHED_MAX_PATHS */
		("{\"paths\":[{\"name\":\"a\",\"always\":true},{\"name\":\"b\",\"always\":true},"
		 "{\"name\":\"c\",\"always\":true}]}"),
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pw_policy p2;
		cJSON *doc = cJSON_Parse(bad[i]);

		err[0] = 0;
		PW_CHECK(doc, "%s", bad[i]);
		PW_CHECK(pw_policy_from_json(&p2, doc, err, sizeof(err)) == -EINVAL && *err,
			 "accepted %s", bad[i]);
		cJSON_Delete(doc);
	}
	/* the defaults survive a round trip through JSON */
	struct pw_policy d, d2;
	PW_CHECK_EQ(pw_policy_default(&d), 0);
	cJSON *j = pw_policy_to_json(&d);
	PW_CHECK(j && pw_policy_from_json(&d2, j, err, sizeof(err)) == 0, "%s", err);
	PW_CHECK_EQ(d2.npaths, d.npaths);
	for (unsigned i = 0; i < d.npaths; i++)
		PW_CHECK(d.paths[i].lat_us == d2.paths[i].lat_us &&
				 !strcmp(d.paths[i].name, d2.paths[i].name),
			 "path %u", i);
	cJSON_Delete(j);
	pw_policy_free(&d);
	pw_policy_free(&d2);
}

static void test_least_capable_then_load(void)
{
	reset(NULL);
	node("dpdk", "\"podwire.io/dpdk-interfaces\":\"8\"", NULL, NULL);
	node("plain1", NULL, NULL, NULL);
	node("plain2", NULL, NULL, NULL);
	/* big pods: 3 cpu each; least capable first, alternating by load */
	EXPECT(pod_full("a", NULL, "\"requests\":{\"cpu\":\"3\"}", NULL, NULL), "plain1");
	EXPECT(pod_full("b", NULL, "\"requests\":{\"cpu\":\"3\"}", NULL, NULL), "plain2");
	/* the plain nodes are full: the capable one is used before refusing */
	EXPECT(pod_full("c", NULL, "\"requests\":{\"cpu\":\"3\"}", NULL, NULL), "dpdk");
	/* and the DPDK pod finds its interface still free (c took none) */
	EXPECT_WHY(pod_full("d", "\"latency\":\"800\"", "\"requests\":{\"cpu\":\"1\"}", NULL, NULL),
		   "dpdk", "dpdk 1/8");
}

int main(void)
{
	test_boundaries();
	test_seed000();
	test_packet_interfaces();
	test_bound_pods_count();
	test_measured();
	test_colocation();
	test_resources();
	test_taints_selectors();
	test_invalid_pods();
	test_updates();
	test_policy_file();
	test_least_capable_then_load();
	pw_model_free(&m);
	pw_policy_free(&pol);
	printf("policy: ok\n");
	return 0;
}
