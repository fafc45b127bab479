// SPDX-License-Identifier: MIT
/* podwire-nfd's label logic: value sanitising, rounding, classes, the label
 * set, ownership, the JSON patch, and the features.d writer. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nfd.h"
#include "pw_test.h"

static void test_value(void)
{
	char out[64], big[200];

	PW_CHECK(pw_nfd_label_value("5.15.0-91-generic+", out, sizeof(out)), "");
	PW_CHECK(!strcmp(out, "5.15.0-91-generic"), "%s", out);
	PW_CHECK(pw_nfd_label_value("a b/c", out, sizeof(out)) && !strcmp(out, "a_b_c"), "%s", out);
	PW_CHECK(pw_nfd_label_value("--x--", out, sizeof(out)) && !strcmp(out, "x"), "%s", out);
	PW_CHECK(!pw_nfd_label_value("", out, sizeof(out)) && !out[0], "%s", out);
	PW_CHECK(!pw_nfd_label_value("!!!", out, sizeof(out)) && !out[0], "%s", out);
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[62] = '.'; /* would end the cut value: trimmed */
	PW_CHECK(pw_nfd_label_value(big, out, sizeof(out)), "");
	PW_CHECK_EQ(strlen(out), 62);
	PW_CHECK(pw_nfd_label_value("abcdef", out, 4) && !strcmp(out, "abc"), "%s", out);
}

static void test_round_class(void)
{
	PW_CHECK_EQ(pw_nfd_round2(48637), 49000);
	PW_CHECK_EQ(pw_nfd_round2(52863), 53000);
	PW_CHECK_EQ(pw_nfd_round2(231), 230);
	PW_CHECK_EQ(pw_nfd_round2(99.4), 99);
	PW_CHECK_EQ(pw_nfd_round2(995), 1000);
	PW_CHECK_EQ(pw_nfd_round2(0), 0);
	PW_CHECK_EQ(pw_nfd_round2(-5), 0);
	PW_CHECK(!strcmp(pw_nfd_latency_class(1999), "ultra"), "");
	PW_CHECK(!strcmp(pw_nfd_latency_class(2000), "low"), "");
	PW_CHECK(!strcmp(pw_nfd_latency_class(19999), "low"), "");
	PW_CHECK(!strcmp(pw_nfd_latency_class(20000), "medium"), "");
	PW_CHECK(!strcmp(pw_nfd_latency_class(99999), "medium"), "");
	PW_CHECK(!strcmp(pw_nfd_latency_class(100000), "high"), "");
}

static const char *get(const struct pw_nfd_labels *ls, const char *k)
{
	const char *v = pw_nfd_labels_get(ls, k);

	return v ? v : "(none)";
}

static void test_build(void)
{
	static struct pw_nfd_info info;
	static struct pw_nfd_labels ls;
	static const unsigned long kb[] = { 64, 1536, 2048, 3072, 1048576, 16777216 };
	static const char *const names[] = { "64Ki", "1536Ki", "2Mi", "3Mi", "1Gi", "16Gi" };
	char key[64];

	memset(&info, 0, sizeof(info));
	for (size_t i = 0; i < 6; i++)
		info.hp[info.nhp++] = (struct pw_nfd_hugepages){ kb[i], (long)i, -1, "sysfs" };
	info.measured = true;
	info.rtt[PW_NFD_SHM] = (struct pw_nfd_rtt){ .ok = true, .p50 = 1500, .p99 = 3000 };
	info.rtt[PW_NFD_TCP] = (struct pw_nfd_rtt){ .ok = true, .p50 = 25000, .p99 = 50000 };
	info.ndpdk = 3;
	info.ovs.probed = true;
	info.ovs.dpdk = true;
	pw_nfd_labels_build(&info, true, &ls);
	for (size_t i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "podwire.io/hugepages-%s", names[i]);
		PW_CHECK(atoi(get(&ls, key)) == (int)i, "%s=%s", key, get(&ls, key));
		snprintf(key, sizeof(key), "podwire.io/hugepages-%s-free", names[i]);
		PW_CHECK(!pw_nfd_labels_get(&ls, key), "unreadable free: no %s", key);
	}
	PW_CHECK(!strcmp(get(&ls, "podwire.io/shm-rtt-ns"), "1500"), "%s",
		 get(&ls, "podwire.io/shm-rtt-ns"));
	PW_CHECK(!strcmp(get(&ls, "podwire.io/shm-latency-class"), "ultra"), "");
	PW_CHECK(!strcmp(get(&ls, "podwire.io/tcp-latency-class"), "medium"), "");
	/* without a router, pods on this node talk TCP */
	PW_CHECK(!strcmp(get(&ls, "podwire.io/latency-class"), "medium"), "%s",
		 get(&ls, "podwire.io/latency-class"));
	PW_CHECK(!strcmp(get(&ls, "dpdk"), "3") && !strcmp(get(&ls, "ovs-dpdk"), "true"), "");
	PW_CHECK(!strcmp(get(&ls, "podwire.io/podwired"), "false"), "");
	/* podwire0 needs the library and the router both. */
	info.rdma_virtual = true;
	pw_nfd_labels_build(&info, true, &ls);
	PW_CHECK(!strcmp(get(&ls, "podwire.io/rdma-virtual"), "false"), "no router");
	info.podwired.up = true;
	pw_nfd_labels_build(&info, false, &ls);
	PW_CHECK(!strcmp(get(&ls, "podwire.io/rdma-virtual"), "true"), "");
	PW_CHECK(!strcmp(get(&ls, "podwire.io/latency-class"), "ultra"), "");
	PW_CHECK(!pw_nfd_labels_get(&ls, "dpdk") && !pw_nfd_labels_get(&ls, "ovs-dpdk"),
		 "no compat labels");
	info.rtt[PW_NFD_SHM].ok = false;
	pw_nfd_labels_build(&info, false, &ls);
	PW_CHECK(!pw_nfd_labels_get(&ls, "podwire.io/shm-rtt-ns"), "failed measurement: no label");
	PW_CHECK(!strcmp(get(&ls, "podwire.io/latency-class"), "medium"), "");
	for (size_t i = 0; i < ls.n; i++)
		PW_CHECK(pw_nfd_label_owned(ls.l[i].key, false), "%s owned", ls.l[i].key);
}

static void test_owned(void)
{
	PW_CHECK(pw_nfd_label_owned("podwire.io/x", false), "");
	PW_CHECK(!pw_nfd_label_owned("podwire.io", true), "");
	PW_CHECK(!pw_nfd_label_owned("sched.podwire.io/x", true), "");
	PW_CHECK(!pw_nfd_label_owned("xpodwire.io/x", true), "");
	PW_CHECK(pw_nfd_label_owned("dpdk", true) && pw_nfd_label_owned("ovs-dpdk", true), "");
	PW_CHECK(!pw_nfd_label_owned("dpdk", false) && !pw_nfd_label_owned("ovs-dpdk", false), "");
	PW_CHECK(!pw_nfd_label_owned("dpdk2", true), "");
}

static struct pw_nfd_labels *mk(size_t n, const char *const kv[])
{
	static struct pw_nfd_labels ls;

	ls.n = n;
	for (size_t i = 0; i < n; i++) {
		snprintf(ls.l[i].key, sizeof(ls.l[i].key), "%s", kv[2 * i]);
		snprintf(ls.l[i].value, sizeof(ls.l[i].value), "%s", kv[2 * i + 1]);
	}
	return &ls;
}

static void expect_ops(const cJSON *ops, const char *want)
{
	char *got = cJSON_PrintUnformatted(ops);

	PW_CHECK(got && !strcmp(got, want), "\n got  %s\n want %s", got, want);
	cJSON_free(got);
}

static void test_patch(void)
{
	static const char *const kv[] = {
		"podwire.io/keep", "v", "podwire.io/new", "1", "dpdk", "4", "podwire.io/a~b", "t"
	};
	cJSON *cur =
		cJSON_Parse("{\"a/b\":\"1\",\"podwire.io/x\":\"old\",\"podwire.io/keep\":\"v\","
			    "\"dpdk\":\"3\",\"ovs-dpdk\":\"true\",\"kubernetes.io/os\":\"linux\"}");
	unsigned n = 99;
	cJSON *ops;

	ops = pw_nfd_label_patch(cur, mk(4, kv), true, &n);
	PW_CHECK_EQ(n, 5);
	expect_ops(
		ops,
		"[{\"op\":\"add\",\"path\":\"/metadata/labels/podwire.io~1new\",\"value\":\"1\"},"
		"{\"op\":\"test\",\"path\":\"/metadata/labels/dpdk\",\"value\":\"3\"},"
		"{\"op\":\"replace\",\"path\":\"/metadata/labels/dpdk\",\"value\":\"4\"},"
		"{\"op\":\"add\",\"path\":\"/metadata/labels/podwire.io~1a~0b\",\"value\":\"t\"},"
		"{\"op\":\"test\",\"path\":\"/metadata/labels/podwire.io~1x\",\"value\":\"old\"},"
		"{\"op\":\"remove\",\"path\":\"/metadata/labels/podwire.io~1x\"},"
		"{\"op\":\"test\",\"path\":\"/metadata/labels/ovs-dpdk\",\"value\":\"true\"},"
		"{\"op\":\"remove\",\"path\":\"/metadata/labels/ovs-dpdk\"}]");
	cJSON_Delete(ops);
	/* without compat, dpdk and ovs-dpdk are someone else's */
	ops = pw_nfd_label_patch(cur, mk(2, kv), false, &n);
	PW_CHECK_EQ(n, 2);
	cJSON_Delete(ops);
	/* nothing to change */
	cJSON *same = cJSON_Parse("{\"podwire.io/keep\":\"v\",\"other\":\"x\"}");
	ops = pw_nfd_label_patch(same, mk(1, kv), true, &n);
	PW_CHECK_EQ(n, 0);
	expect_ops(ops, "[]");
	cJSON_Delete(ops);
	cJSON_Delete(same);
	/* no labels map on the node */
	ops = pw_nfd_label_patch(NULL, mk(1, kv), true, &n);
	PW_CHECK_EQ(n, 1);
	expect_ops(
		ops,
		"[{\"op\":\"add\",\"path\":\"/metadata/labels\",\"value\":{}},"
		"{\"op\":\"add\",\"path\":\"/metadata/labels/podwire.io~1keep\",\"value\":\"v\"}]");
	cJSON_Delete(ops);
	cJSON_Delete(cur);
}

static void test_features(void)
{
	static const char *const kv[] = { "podwire.io/a", "1", "dpdk", "2" };
	char dir[] = "/tmp/nfd-labels-XXXXXX", path[128], buf[512];
	struct dirent *de;
	int n = 0;
	FILE *f;
	DIR *d;

	PW_CHECK(mkdtemp(dir), "mkdtemp");
	snprintf(path, sizeof(path), "%s/podwire", dir);
	PW_CHECK_EQ(pw_nfd_features_write(path, mk(2, kv), 0), 0);
	PW_CHECK_EQ(pw_nfd_features_write(path, mk(2, kv), 1700000000), 0);
	f = fopen(path, "r");
	PW_CHECK(f, "%s", path);
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	buf[len] = '\0';
	fclose(f);
	PW_CHECK(strstr(buf, "\n# +expiry-time=2023-11-14T22:13:20Z\npodwire.io/a=1\ndpdk=2\n"),
		 "%s", buf);
	d = opendir(dir);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	PW_CHECK_EQ(n, 1);
	PW_CHECK_EQ(pw_nfd_features_write(dir, mk(2, kv), 0), -EISDIR);
	snprintf(path, sizeof(path), "%s/", dir);
	PW_CHECK_EQ(pw_nfd_features_write(path, mk(2, kv), 0), -EISDIR);
	snprintf(path, sizeof(path), "%s/podwire", dir);
	unlink(path);
	PW_CHECK_EQ(rmdir(dir), 0);
}

int main(void)
{
	test_value();
	test_round_class();
	test_build();
	test_owned();
	test_patch();
	test_features();
	return 0;
}
