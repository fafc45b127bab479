// SPDX-License-Identifier: MIT
/*
 * The lab's address plan (src/lab/lab.h) and names, without root: every
 * address of the largest lab lies in 198.18.0.0/15, in the subnet it
 * belongs to, and no two are the same; namespace names, targets and lab
 * names parse as docs/LAB.md says.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lab.h"
#include "pw_test.h"

#define PW_CHECK_STR(a, b)                                                                         \
	do {                                                                                       \
		const char *pw_a_ = (a), *pw_b_ = (b);                                             \
		if (strcmp(pw_a_, pw_b_) != 0)                                                     \
			PW_FAIL("%s == %s: '%s' != '%s'", #a, #b, pw_a_, pw_b_);                   \
	} while (0)

static uint32_t ip_parse(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		PW_FAIL("not an IPv4 address: '%s'", s);
	return ntohl(a.s_addr);
}

/* "a.b.c.d/len" into its network address and length. */
static void cidr_parse(const char *s, uint32_t *ret_net, unsigned *ret_len)
{
	char buf[32];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", s);
	slash = strchr(buf, '/');
	PW_CHECK(slash, "no length in '%s'", s);
	*slash = '\0';
	*ret_len = (unsigned)atoi(slash + 1);
	*ret_net = ip_parse(buf);
	PW_CHECK(*ret_len >= 1 && *ret_len <= 32, "length of '%s'", s);
}

static bool cidr_has(const char *cidr, uint32_t ip)
{
	uint32_t net, mask;
	unsigned len;

	cidr_parse(cidr, &net, &len);
	mask = ~0u << (32 - len);
	return (ip & mask) == (net & mask);
}

/* Every address used once, all inside 198.18.0.0/15. */
static uint8_t seen[1u << 17];

static void claim(uint32_t ip, const char *what)
{
	PW_CHECK(cidr_has("198.18.0.0/15", ip), "%s %08x is outside 198.18.0.0/15", what, ip);
	PW_CHECK(!seen[ip & 0x1ffff], "%s %08x is used twice", what, ip);
	seen[ip & 0x1ffff] = 1;
}

static void check_node_examples(void)
{
	struct pw_lab_node_addr a;
	struct pw_lab_pod_addr p;

	pw_lab_node_addr_format(2, &a);
	PW_CHECK_STR(a.name, "n2");
	PW_CHECK_STR(a.underlay, "198.18.0.2");
	PW_CHECK_STR(a.subnet, "198.19.2.0/24");
	PW_CHECK_STR(a.gateway, "198.19.2.1");
	PW_CHECK_STR(a.vtep, "198.19.2.0");
	PW_CHECK_STR(a.mac, "02:70:77:01:00:02");
	PW_CHECK_STR(a.peer, "198.18.0.2:7470");
	pw_lab_node_addr_format(PW_LAB_MAX_NODES, &a);
	PW_CHECK_STR(a.mac, "02:70:77:01:00:fe");
	PW_CHECK_STR(a.peer, "198.18.0.254:7470");
	pw_lab_pod_addr_format(1, 1, &p);
	PW_CHECK_STR(p.name, "n1p1");
	PW_CHECK_STR(p.ip, "198.19.1.11");
	pw_lab_pod_addr_format(PW_LAB_MAX_NODES, PW_LAB_MAX_PODS, &p);
	PW_CHECK_STR(p.name, "n254p244");
	PW_CHECK_STR(p.ip, "198.19.254.254");
	PW_CHECK_STR(PW_LAB_UNDERLAY_SUBNET, "198.18.0.0/24");
	PW_CHECK_STR(PW_LAB_POD_PREFIX, "198.19.0.0/16");
}

/* The largest lab: every address in its place, none twice, MACs distinct. */
static void check_plan_whole(void)
{
	char macs[PW_LAB_MAX_NODES + 1][24];

	memset(seen, 0, sizeof(seen));
	for (unsigned n = 1; n <= PW_LAB_MAX_NODES; n++) {
		struct pw_lab_node_addr a;
		uint32_t under, gw, vtep, net;
		unsigned len;

		pw_lab_node_addr_format(n, &a);
		under = ip_parse(a.underlay);
		gw = ip_parse(a.gateway);
		vtep = ip_parse(a.vtep);
		claim(under, "underlay");
		claim(gw, "gateway");
		claim(vtep, "vtep");
		PW_CHECK(cidr_has(PW_LAB_UNDERLAY_SUBNET, under), "n%u underlay %s", n, a.underlay);
		PW_CHECK(!cidr_has(PW_LAB_POD_PREFIX, under), "n%u underlay is a pod address", n);
		PW_CHECK(cidr_has(PW_LAB_POD_PREFIX, gw) && cidr_has(a.subnet, gw), "n%u gw", n);
		PW_CHECK(cidr_has(a.subnet, vtep), "n%u vtep %s", n, a.vtep);
		cidr_parse(a.subnet, &net, &len);
		PW_CHECK_EQ(len, PW_LAB_SUBNET_LEN);
		PW_CHECK(cidr_has(PW_LAB_POD_PREFIX, net), "n%u subnet %s", n, a.subnet);
		PW_CHECK(strncmp(a.peer, a.underlay, strlen(a.underlay)) == 0, "n%u peer", n);
		for (unsigned k = 1; k <= PW_LAB_MAX_PODS; k++) {
			struct pw_lab_pod_addr p;
			uint32_t ip;

			pw_lab_pod_addr_format(n, k, &p);
			ip = ip_parse(p.ip);
			claim(ip, p.name);
			PW_CHECK(cidr_has(a.subnet, ip), "%s %s outside %s", p.name, p.ip,
				 a.subnet);
			PW_CHECK((ip & 0xff) != 0xff, "%s is a broadcast address", p.name);
		}
		snprintf(macs[n], sizeof(macs[n]), "%s", a.mac);
		for (unsigned m = 1; m < n; m++)
			PW_CHECK(strcmp(macs[m], macs[n]) != 0, "n%u and n%u share %s", m, n,
				 a.mac);
	}
}

static void check_ns_names(void)
{
	char ns[PW_LAB_NS_LEN], name[PW_LAB_NAME_MAX + 1];
	unsigned n, k;

	pw_lab_ns_format("lab", 0, 0, ns);
	PW_CHECK_STR(ns, "pwlab-lab-u");
	pw_lab_ns_format("lab", 3, 0, ns);
	PW_CHECK_STR(ns, "pwlab-lab-n3");
	pw_lab_ns_format("lab", 3, 4, ns);
	PW_CHECK_STR(ns, "pwlab-lab-n3p4");
	/* The longest lab name and target fit. */
	memset(name, 'x', PW_LAB_NAME_MAX);
	name[PW_LAB_NAME_MAX] = '\0';
	pw_lab_ns_format(name, PW_LAB_MAX_NODES, PW_LAB_MAX_PODS, ns);
	PW_CHECK_EQ(strlen(ns), strlen("pwlab--n254p244") + PW_LAB_NAME_MAX);
	PW_CHECK(pw_lab_ns_is_ours(name, ns), "%s", ns);
	PW_CHECK(pw_lab_target_parse(ns + strlen("pwlab-") + PW_LAB_NAME_MAX + 1, &n, &k), "%s",
		 ns);
	PW_CHECK(n == PW_LAB_MAX_NODES && k == PW_LAB_MAX_PODS, "%u %u", n, k);

	PW_CHECK(pw_lab_ns_is_ours("lab", "pwlab-lab-u"), "u");
	PW_CHECK(pw_lab_ns_is_ours("lab", "pwlab-lab-n1p2"), "n1p2");
	PW_CHECK(!pw_lab_ns_is_ours("lab", "pwlab-lab2-n1"), "another lab");
	PW_CHECK(!pw_lab_ns_is_ours("la", "pwlab-lab-n1"), "a prefix of the name");
	PW_CHECK(!pw_lab_ns_is_ours("lab", "pwlab-lab-x"), "not a target");
	PW_CHECK(!pw_lab_ns_is_ours("lab", "pwlab-lab-n01"), "leading zero");
	PW_CHECK(!pw_lab_ns_is_ours("lab", "xwlab-lab-n1"), "prefix");
	PW_CHECK(!pw_lab_ns_is_ours("lab", "pwlab-lab"), "no target");
}

static void check_targets(void)
{
	static const struct {
		const char *s;
		bool ok;
		unsigned n, k;
	} cases[] = {
		{ "u", true, 0, 0 },	   { "n1", true, 1, 0 },
		{ "n12p3", true, 12, 3 },  { "n1000p1000", true, 1000, 1000 },
		{ "n0", false, 0, 0 },	   { "n01", false, 0, 0 },
		{ "n1p0", false, 0, 0 },   { "n1p01", false, 0, 0 },
		{ "p1", false, 0, 0 },	   { "n", false, 0, 0 },
		{ "n1p", false, 0, 0 },	   { "n1001", false, 0, 0 },
		{ "n1p1p1", false, 0, 0 }, { "", false, 0, 0 },
		{ "u1", false, 0, 0 },	   { "n1 ", false, 0, 0 },
		{ "n-1", false, 0, 0 },	   { "N1", false, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned n = 77, k = 77;
		bool ok = pw_lab_target_parse(cases[i].s, &n, &k);

		PW_CHECK(ok == cases[i].ok, "'%s': %d", cases[i].s, ok);
		if (ok)
			PW_CHECK(n == cases[i].n && k == cases[i].k, "'%s': %u %u", cases[i].s, n,
				 k);
		else
			PW_CHECK(n == 77 && k == 77, "'%s' wrote its results", cases[i].s);
	}
}

static void check_lab_names(void)
{
	char longest[PW_LAB_NAME_MAX + 2];

	memset(longest, 'a', sizeof(longest));
	longest[PW_LAB_NAME_MAX] = '\0';
	PW_CHECK(pw_lab_name_is_valid(longest), "%d letters", PW_LAB_NAME_MAX);
	longest[PW_LAB_NAME_MAX] = 'a';
	longest[PW_LAB_NAME_MAX + 1] = '\0';
	PW_CHECK(!pw_lab_name_is_valid(longest), "%d letters", PW_LAB_NAME_MAX + 1);
	PW_CHECK(pw_lab_name_is_valid("lab"), "lab");
	PW_CHECK(pw_lab_name_is_valid("0a_b-C"), "0a_b-C");
	PW_CHECK(!pw_lab_name_is_valid(""), "empty");
	PW_CHECK(!pw_lab_name_is_valid("-a"), "-a");
	PW_CHECK(!pw_lab_name_is_valid("_a"), "_a");
	PW_CHECK(!pw_lab_name_is_valid("a/b"), "a/b");
	PW_CHECK(!pw_lab_name_is_valid("a.b"), "a.b");
	PW_CHECK(!pw_lab_name_is_valid("a b"), "a b");
}

static void check_overlays(void)
{
	enum pw_lab_overlay o = PW_LAB_OVERLAY_HOSTGW;

	PW_CHECK_EQ(pw_lab_overlay_parse("vxlan", &o), 0);
	PW_CHECK_EQ(o, PW_LAB_OVERLAY_VXLAN);
	PW_CHECK_EQ(pw_lab_overlay_parse("host-gw", &o), 0);
	PW_CHECK_EQ(o, PW_LAB_OVERLAY_HOSTGW);
	PW_CHECK_EQ(pw_lab_overlay_parse("geneve", &o), -EINVAL);
	PW_CHECK_EQ(pw_lab_overlay_parse("", &o), -EINVAL);
	PW_CHECK_EQ(o, PW_LAB_OVERLAY_HOSTGW);
	PW_CHECK_STR(pw_lab_overlay_name(PW_LAB_OVERLAY_VXLAN), "vxlan");
	PW_CHECK_STR(pw_lab_overlay_name(PW_LAB_OVERLAY_HOSTGW), "host-gw");
}

/* The help texts' wording of the plan says what the plan does. */
static void check_texts(void)
{
	PW_CHECK_STR(PW_LAB_TEXT_NODE_IP PW_LAB_TEXT_LEN, "198.18.0.N/24");
	PW_CHECK_STR(PW_LAB_TEXT_GATEWAY, "198.19.N.1");
	PW_CHECK_STR(PW_LAB_TEXT_POD_IP, "198.19.N.(10+K)");
	PW_CHECK_STR(PW_LAB_TEXT_HOSTGW, "198.19.M.0/24 via 198.18.0.M");
	PW_CHECK_STR(PW_LAB_TEXT_PEER, "198.18.0.N:7470");
	PW_CHECK_STR(PW_LAB_TEXT_VXLAN_ID ", " PW_LAB_TEXT_VXLAN_MTU, "VNI 1, port 8472, MTU 1450");
	PW_CHECK_STR(PW_LAB_TEXT_MAX_NODES " " PW_LAB_TEXT_MAX_PODS, "254 244");
}

int main(void)
{
	check_node_examples();
	check_plan_whole();
	check_ns_names();
	check_targets();
	check_lab_names();
	check_overlays();
	check_texts();
	return 0;
}
