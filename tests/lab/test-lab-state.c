// SPDX-License-Identifier: MIT
/*
 * The lab's state file (src/lab/lab_state.c) in a temporary directory,
 * without root: a written state reads back the same, its JSON holds the
 * plan's addresses and paths, live fields come only when asked for, and a
 * file that is not a state of this lab is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lab.h"
#include "pw_test.h"

static char tmpdir[] = "/tmp/podwire-test-lab-state.XXXXXX";

/* A lab named "t" whose state directory is the temporary one. */
static void lab_init(struct pw_lab *lab)
{
	memset(lab, 0, sizeof(*lab));
	snprintf(lab->name, sizeof(lab->name), "t");
	snprintf(lab->dir, sizeof(lab->dir), "%s", tmpdir);
}

static void state_put(const char *text)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/state.json", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	PW_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	PW_CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
}

static cJSON *state_get(void)
{
	char path[PATH_MAX], buf[1 << 16];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/state.json", tmpdir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	PW_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	PW_CHECK(n > 0 && buf[n - 1] == '\n', "state ends without a newline");
	buf[n] = '\0';
	return cJSON_Parse(buf);
}

static const char *jstr(const cJSON *o, const char *path)
{
	char key[64];
	const char *dot = strchr(path, '.');

	if (!dot)
		return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, path));
	snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
	return jstr(cJSON_GetObjectItemCaseSensitive(o, key), dot + 1);
}

static void check_round_trip(void)
{
	struct pw_lab w, r;
	cJSON *j, *n2, *pod;
	char want[PATH_MAX];

	lab_init(&w);
	w.nodes = 3;
	w.pods = 2;
	w.overlay = PW_LAB_OVERLAY_HOSTGW;
	w.podwire = w.federation = true;
	snprintf(w.podwired, sizeof(w.podwired), "/x/podwired");
	snprintf(w.lib, sizeof(w.lib), "/x/libpodwire.so");
	w.router = calloc(w.nodes, sizeof(*w.router));
	PW_CHECK(w.router, "calloc");
	for (unsigned i = 0; i < w.nodes; i++)
		w.router[i] = (struct pw_lab_router){ .pid = 1000 + (pid_t)i, .start = 5000 + i };
	PW_CHECK_EQ(pw_lab_state_write(&w), 0);

	lab_init(&r);
	PW_CHECK_EQ(pw_lab_state_read(&r), 0);
	PW_CHECK(r.nodes == 3 && r.pods == 2, "%u %u", r.nodes, r.pods);
	PW_CHECK_EQ(r.overlay, PW_LAB_OVERLAY_HOSTGW);
	PW_CHECK(r.podwire && r.federation, "%d %d", r.podwire, r.federation);
	PW_CHECK(!strcmp(r.podwired, w.podwired) && !strcmp(r.lib, w.lib), "%s %s", r.podwired,
		 r.lib);
	for (unsigned i = 0; i < r.nodes; i++)
		PW_CHECK(r.router[i].pid == w.router[i].pid &&
				 r.router[i].start == w.router[i].start,
			 "router %u: %d %llu", i, (int)r.router[i].pid, r.router[i].start);

	/* The file: the plan's addresses, the lab's paths, no live fields. */
	j = state_get();
	PW_CHECK(j, "state.json does not parse");
	PW_CHECK(!strcmp(jstr(j, "overlay"), "host-gw"), "%s", jstr(j, "overlay"));
	PW_CHECK(!strcmp(jstr(j, "pod_prefix"), "198.19.0.0/16"), "pod_prefix");
	PW_CHECK(!strcmp(jstr(j, "underlay.subnet"), "198.18.0.0/24"), "underlay");
	PW_CHECK(!strcmp(jstr(j, "underlay.bridge"), "br0"), "bridge");
	PW_CHECK(!strcmp(jstr(j, "underlay.netns"), "pwlab-t-u"), "underlay netns");
	snprintf(want, sizeof(want), "%s/secret", tmpdir);
	PW_CHECK(!strcmp(jstr(j, "secret_file"), want), "%s", jstr(j, "secret_file"));
	n2 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "nodes"), 1);
	PW_CHECK(!strcmp(jstr(n2, "name"), "n2") && !strcmp(jstr(n2, "netns"), "pwlab-t-n2"), "%s",
		 jstr(n2, "name"));
	PW_CHECK(!strcmp(jstr(n2, "underlay_ip"), "198.18.0.2"), "%s", jstr(n2, "underlay_ip"));
	PW_CHECK(!strcmp(jstr(n2, "pod_subnet"), "198.19.2.0/24"), "%s", jstr(n2, "pod_subnet"));
	PW_CHECK(!strcmp(jstr(n2, "gateway"), "198.19.2.1"), "%s", jstr(n2, "gateway"));
	snprintf(want, sizeof(want), "%s/n2/podwired.sock", tmpdir);
	PW_CHECK(!strcmp(jstr(n2, "router.socket"), want), "%s", jstr(n2, "router.socket"));
	PW_CHECK(!strcmp(jstr(n2, "router.metrics"), "127.0.0.1:9470"), "metrics");
	PW_CHECK(!cJSON_GetObjectItemCaseSensitive(n2, "netns_present"), "live field in the file");
	pod = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(n2, "pods"), 1);
	PW_CHECK(!strcmp(jstr(pod, "name"), "n2p2") && !strcmp(jstr(pod, "ip"), "198.19.2.12"),
		 "%s %s", jstr(pod, "name"), jstr(pod, "ip"));
	PW_CHECK(!strcmp(jstr(pod, "netns"), "pwlab-t-n2p2"), "%s", jstr(pod, "netns"));
	cJSON_Delete(j);
	pw_lab_free(&w);
	pw_lab_free(&r);
	pw_lab_free(NULL);
}

static void check_no_podwire(void)
{
	struct pw_lab w, r;
	cJSON *j;

	lab_init(&w);
	w.nodes = 1;
	w.router = calloc(1, sizeof(*w.router));
	PW_CHECK(w.router, "calloc");
	PW_CHECK_EQ(pw_lab_state_write(&w), 0);
	j = state_get();
	PW_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "podwired")), "podwired");
	PW_CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(
			 cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "nodes"), 0),
			 "router")),
		 "router");
	PW_CHECK_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
			    cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "nodes"), 0),
			    "pods")),
		    0);
	cJSON_Delete(j);
	lab_init(&r);
	PW_CHECK_EQ(pw_lab_state_read(&r), 0);
	PW_CHECK(!r.podwire && r.nodes == 1 && r.pods == 0 && r.overlay == PW_LAB_OVERLAY_VXLAN,
		 "%d %u %u %d", r.podwire, r.nodes, r.pods, r.overlay);
	PW_CHECK(r.router[0].pid == 0 && r.router[0].start == 0, "router %d", r.router[0].pid);
	pw_lab_free(&w);
	pw_lab_free(&r);
}

/* Live fields: a namespace that does not exist, a router that is us (or not). */
static void check_live(void)
{
	struct pw_lab lab;
	cJSON *j, *node, *rt;

	lab_init(&lab);
	snprintf(lab.name, sizeof(lab.name), "no-such-lab-%d", (int)getpid());
	lab.nodes = 2;
	lab.pods = 1;
	lab.podwire = true;
	lab.router = calloc(2, sizeof(*lab.router));
	PW_CHECK(lab.router, "calloc");
	lab.router[0].pid = getpid();
	lab.router[0].start = pw_lab_proc_start_time(getpid());
	PW_CHECK(lab.router[0].start > 0, "no start time for ourselves");
	lab.router[1] = lab.router[0];
	lab.router[1].start++; /* a reused pid */
	PW_CHECK(pw_lab_router_is_alive(&lab.router[0]), "we are not alive");
	PW_CHECK(!pw_lab_router_is_alive(&lab.router[1]), "a reused pid is alive");
	j = pw_lab_state_to_json(&lab, true);
	PW_CHECK(j, "no JSON");
	node = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "nodes"), 0);
	PW_CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(node, "netns_present")), "netns");
	rt = cJSON_GetObjectItemCaseSensitive(node, "router");
	PW_CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rt, "alive")), "alive");
	node = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "nodes"), 1);
	rt = cJSON_GetObjectItemCaseSensitive(node, "router");
	PW_CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(rt, "alive")), "alive");
	PW_CHECK(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
			 cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(node, "pods"), 0),
			 "netns_present")),
		 "pod netns");
	cJSON_Delete(j);
	pw_lab_free(&lab);
}

static void check_refused(void)
{
	static const struct {
		const char *what, *text;
	} bad[] = {
		{ "not JSON", "{" },
		{ "another lab", "{\"name\":\"u\",\"node_count\":1,\"pods_per_node\":0,"
				 "\"overlay\":\"vxlan\",\"nodes\":[{}]}" },
		{ "no nodes", "{\"name\":\"t\",\"node_count\":0,\"pods_per_node\":0,"
			      "\"overlay\":\"vxlan\",\"nodes\":[]}" },
		{ "too many nodes", "{\"name\":\"t\",\"node_count\":255,\"pods_per_node\":0,"
				    "\"overlay\":\"vxlan\",\"nodes\":[]}" },
		{ "too many pods", "{\"name\":\"t\",\"node_count\":1,\"pods_per_node\":245,"
				   "\"overlay\":\"vxlan\",\"nodes\":[{}]}" },
		{ "node count", "{\"name\":\"t\",\"node_count\":2,\"pods_per_node\":0,"
				"\"overlay\":\"vxlan\",\"nodes\":[{}]}" },
		{ "overlay", "{\"name\":\"t\",\"node_count\":1,\"pods_per_node\":0,"
			     "\"overlay\":\"geneve\",\"nodes\":[{}]}" },
	};
	struct pw_lab lab;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		state_put(bad[i].text);
		lab_init(&lab);
		PW_CHECK(pw_lab_state_read(&lab) == -EINVAL, "%s: accepted", bad[i].what);
		pw_lab_free(&lab);
	}
	/* A bad router entry is only ignored. */
	state_put("{\"name\":\"t\",\"node_count\":1,\"pods_per_node\":0,\"overlay\":\"vxlan\","
		  "\"nodes\":[{\"router\":{\"pid\":-5,\"start_time\":7}}]}");
	lab_init(&lab);
	PW_CHECK_EQ(pw_lab_state_read(&lab), 0);
	PW_CHECK_EQ(lab.router[0].pid, 0);
	pw_lab_free(&lab);
	PW_CHECK_EQ(pw_lab_tree_remove(tmpdir), 0);
	lab_init(&lab);
	PW_CHECK_EQ(pw_lab_state_read(&lab), -ENOENT);
}

static void tmpdir_remove(void)
{
	pw_lab_tree_remove(tmpdir);
}

int main(void)
{
	PW_CHECK(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
	atexit(tmpdir_remove); /* a failed check exits too */
	check_round_trip();
	check_no_podwire();
	check_live();
	check_refused();
	return 0;
}
