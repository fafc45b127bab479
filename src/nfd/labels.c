// SPDX-License-Identifier: MIT
/* From probe results to labels (docs/NFD.md), the JSON report, and NFD's
 * features.d file. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nfd.h"
#include "util.h"

static bool pw_nfd_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool pw_nfd_label_value(const char *in, char *out, size_t cap)
{
	size_t n = 0;

	/* skip to the first alphanumeric */
	while (*in && !pw_nfd_is_alnum(*in))
		in++;
	for (; *in && n + 1 < cap && n < 63; in++)
		out[n++] =
			pw_nfd_is_alnum(*in) || *in == '.' || *in == '-' || *in == '_' ? *in : '_';
	while (n && !pw_nfd_is_alnum(out[n - 1]))
		n--;
	out[n] = '\0';
	return n > 0;
}

const char *pw_nfd_latency_class(double ns)
{
	if (ns < 2000)
		return "ultra";
	if (ns < 20000)
		return "low";
	if (ns < 100000)
		return "medium";
	return "high";
}

unsigned long pw_nfd_round2(double v)
{
	double mag;

	if (!(v > 0))
		return 0;
	if (v < 100)
		return (unsigned long)llround(v);
	mag = pow(10, floor(log10(v)) - 1);
	return (unsigned long)llround(llround(v / mag) * mag);
}

static void pw_nfd_label_add(struct pw_nfd_labels *ls, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pw_nfd_label_add(struct pw_nfd_labels *ls, const char *key, const char *fmt, ...)
{
	char raw[256];
	va_list ap;

	if (ls->n == PW_NFD_MAX_LABELS)
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	struct pw_nfd_label *l = &ls->l[ls->n];
	if (!pw_nfd_label_value(raw, l->value, sizeof(l->value)))
		return;
	snprintf(l->key, sizeof(l->key), "%s", key);
	ls->n++;
}

/* 2048 kB -> "2Mi", 1048576 kB -> "1Gi", 64 kB -> "64Ki" (resource quantity
 * suffixes, as in the hugepages-2Mi resource). */
static void pw_nfd_hp_name(unsigned long kb, char *out, size_t cap)
{
	if (kb % (1024ul * 1024) == 0)
		snprintf(out, cap, "%luGi", kb / (1024ul * 1024));
	else if (kb % 1024 == 0)
		snprintf(out, cap, "%luMi", kb / 1024);
	else
		snprintf(out, cap, "%luKi", kb);
}

static const char *pw_nfd_bool_str(bool b)
{
	return b ? "true" : "false";
}

void pw_nfd_labels_build(const struct pw_nfd_info *info, bool compat, struct pw_nfd_labels *ls)
{
	static const char *const path_name[PW_NFD_NPATHS] = { "shm", "tcp" };
	char key[128], hp[32];

	ls->n = 0;
	pw_nfd_label_add(ls, PW_NFD_PREFIX "nics", "%zu", info->nnics);
	pw_nfd_label_add(ls, PW_NFD_PREFIX "sriov-nics", "%u", info->sriov_nics);
	pw_nfd_label_add(ls, PW_NFD_PREFIX "sriov-vfs-total", "%lu", info->vfs_total);
	pw_nfd_label_add(ls, PW_NFD_PREFIX "sriov-vfs", "%lu", info->vfs_num);
	pw_nfd_label_add(ls, PW_NFD_PREFIX "dpdk-interfaces", "%u", info->ndpdk);
	for (size_t i = 0; i < info->nhp; i++) {
		pw_nfd_hp_name(info->hp[i].size_kb, hp, sizeof(hp));
		if (info->hp[i].total >= 0) {
			snprintf(key, sizeof(key), PW_NFD_PREFIX "hugepages-%s", hp);
			pw_nfd_label_add(ls, key, "%ld", info->hp[i].total);
		}
		if (info->hp[i].free >= 0) {
			snprintf(key, sizeof(key), PW_NFD_PREFIX "hugepages-%s-free", hp);
			pw_nfd_label_add(ls, key, "%ld", info->hp[i].free);
		}
	}
	pw_nfd_label_add(ls, PW_NFD_PREFIX "rdma-devices", "%zu", info->nrdma);
	pw_nfd_label_add(ls, PW_NFD_PREFIX "af-xdp", "%s", pw_nfd_bool_str(info->af_xdp));
	if (info->kernel[0])
		pw_nfd_label_add(ls, PW_NFD_PREFIX "kernel", "%s", info->kernel);
	if (info->ovs.probed)
		pw_nfd_label_add(ls, PW_NFD_PREFIX "ovs-dpdk", "%s",
				 pw_nfd_bool_str(info->ovs.dpdk));
	pw_nfd_label_add(ls, PW_NFD_PREFIX "podwired", "%s", pw_nfd_bool_str(info->podwired.up));
	/* Packet interfaces podwire-switch gives (the scheduler's capacity, as
	 * dpdk-interfaces), and how many it can still give. */
	pw_nfd_label_add(ls, PW_NFD_PREFIX "packet-interfaces", "%u",
			 info->sw.up ? info->sw.max_ports : 0);
	pw_nfd_label_add(ls, PW_NFD_PREFIX "packet-interfaces-free", "%u",
			 info->sw.up ? info->sw.max_ports - info->sw.ports : 0);
	/* podwire0 needs both: the library in the pods, the router to name them. */
	pw_nfd_label_add(ls, PW_NFD_PREFIX "rdma-virtual", "%s",
			 pw_nfd_bool_str(info->podwired.up && info->rdma_virtual));
	for (int i = 0; i < PW_NFD_NPATHS && info->measured; i++) {
		if (!info->rtt[i].ok)
			continue;
		snprintf(key, sizeof(key), PW_NFD_PREFIX "%s-rtt-ns", path_name[i]);
		pw_nfd_label_add(ls, key, "%lu", pw_nfd_round2(info->rtt[i].p50));
		snprintf(key, sizeof(key), PW_NFD_PREFIX "%s-latency-class", path_name[i]);
		pw_nfd_label_add(ls, key, "%s", pw_nfd_latency_class(info->rtt[i].p50));
	}
	/* Pods on this node use shm only through a running router. */
	const struct pw_nfd_rtt *best = NULL;
	if (info->measured && info->podwired.up && info->rtt[PW_NFD_SHM].ok)
		best = &info->rtt[PW_NFD_SHM];
	if (!best && info->measured && info->rtt[PW_NFD_TCP].ok)
		best = &info->rtt[PW_NFD_TCP];
	if (best)
		pw_nfd_label_add(ls, PW_NFD_PREFIX "latency-class", "%s",
				 pw_nfd_latency_class(best->p50));
	if (compat) {
		pw_nfd_label_add(ls, "dpdk", "%u", info->ndpdk);
		if (info->ovs.probed)
			pw_nfd_label_add(ls, "ovs-dpdk", "%s", pw_nfd_bool_str(info->ovs.dpdk));
	}
}

const char *pw_nfd_labels_get(const struct pw_nfd_labels *ls, const char *key)
{
	for (size_t i = 0; i < ls->n; i++)
		if (!strcmp(ls->l[i].key, key))
			return ls->l[i].value;
	return NULL;
}

bool pw_nfd_label_owned(const char *key, bool compat)
{
	if (!strncmp(key, PW_NFD_PREFIX, strlen(PW_NFD_PREFIX)))
		return true;
	return compat && (!strcmp(key, "dpdk") || !strcmp(key, "ovs-dpdk"));
}

static cJSON *pw_nfd_json_hex(cJSON *o, const char *k, unsigned long v, int digits)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "0x%0*lx", digits, v);
	return cJSON_AddStringToObject(o, k, buf);
}

static cJSON *pw_nfd_json_nic(const struct pw_nfd_nic *n)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *ifs;

	cJSON_AddStringToObject(o, "address", n->addr);
	pw_nfd_json_hex(o, "class", n->class_code, 6);
	pw_nfd_json_hex(o, "vendor", n->vendor, 4);
	pw_nfd_json_hex(o, "device", n->device, 4);
	if (n->driver[0])
		cJSON_AddStringToObject(o, "driver", n->driver);
	else
		cJSON_AddNullToObject(o, "driver");
	cJSON_AddBoolToObject(o, "dpdk", n->dpdk);
	if (n->physfn[0])
		cJSON_AddStringToObject(o, "physfn", n->physfn);
	ifs = cJSON_AddArrayToObject(o, "interfaces");
	for (unsigned i = 0; i < n->nifnames; i++)
		cJSON_AddItemToArray(ifs, cJSON_CreateString(n->ifnames[i]));
	if (n->sriov_total >= 0) {
		cJSON *s = cJSON_AddObjectToObject(o, "sriov");
		cJSON_AddNumberToObject(s, "total_vfs", (double)n->sriov_total);
		if (n->sriov_num >= 0)
			cJSON_AddNumberToObject(s, "num_vfs", (double)n->sriov_num);
		else
			cJSON_AddNullToObject(s, "num_vfs");
	} else {
		cJSON_AddNullToObject(o, "sriov");
	}
	return o;
}

static void pw_nfd_json_rtt(cJSON *o, const char *k, const struct pw_nfd_rtt *r)
{
	cJSON *x = cJSON_AddObjectToObject(o, k);

	if (!r->ok) {
		cJSON_AddStringToObject(x, "error", r->error);
		return;
	}
	cJSON_AddNumberToObject(x, "msgs", r->msgs);
	cJSON_AddNumberToObject(x, "min_ns", r->min);
	cJSON_AddNumberToObject(x, "mean_ns", r->mean);
	cJSON_AddNumberToObject(x, "p50_ns", r->p50);
	cJSON_AddNumberToObject(x, "p99_ns", r->p99);
	cJSON_AddStringToObject(x, "class", pw_nfd_latency_class(r->p50));
}

/* "pci_network", "sriov" and "dpdk". */
static void pw_nfd_json_devices(cJSON *o, const struct pw_nfd_info *info)
{
	cJSON *a, *x;

	a = cJSON_AddArrayToObject(o, "pci_network");
	for (size_t i = 0; i < info->nnics; i++)
		cJSON_AddItemToArray(a, pw_nfd_json_nic(&info->nics[i]));

	x = cJSON_AddObjectToObject(o, "sriov");
	cJSON_AddNumberToObject(x, "nics", info->sriov_nics);
	cJSON_AddNumberToObject(x, "vfs_total", (double)info->vfs_total);
	cJSON_AddNumberToObject(x, "vfs", (double)info->vfs_num);

	x = cJSON_AddObjectToObject(o, "dpdk");
	cJSON_AddNumberToObject(x, "count", info->ndpdk);
	a = cJSON_AddArrayToObject(x, "devices");
	for (size_t i = 0; i < info->nnics; i++)
		if (info->nics[i].dpdk) {
			cJSON *d = cJSON_CreateObject();
			cJSON_AddStringToObject(d, "address", info->nics[i].addr);
			cJSON_AddStringToObject(d, "driver", info->nics[i].driver);
			cJSON_AddItemToArray(a, d);
		}
}

/* "hugepages" and, when /proc/meminfo had them, "meminfo_hugepages". */
static void pw_nfd_json_hugepages(cJSON *o, const struct pw_nfd_info *info)
{
	cJSON *a, *x;
	char hp[32];

	a = cJSON_AddArrayToObject(o, "hugepages");
	for (size_t i = 0; i < info->nhp; i++) {
		const struct pw_nfd_hugepages *h = &info->hp[i];
		cJSON *e = cJSON_CreateObject();

		pw_nfd_hp_name(h->size_kb, hp, sizeof(hp));
		cJSON_AddStringToObject(e, "size", hp);
		cJSON_AddNumberToObject(e, "size_kb", (double)h->size_kb);
		if (h->total >= 0)
			cJSON_AddNumberToObject(e, "total", (double)h->total);
		else
			cJSON_AddNullToObject(e, "total");
		if (h->free >= 0)
			cJSON_AddNumberToObject(e, "free", (double)h->free);
		else
			cJSON_AddNullToObject(e, "free");
		cJSON_AddStringToObject(e, "source", h->source);
		cJSON_AddItemToArray(a, e);
	}
	if (info->mi_total >= 0) {
		x = cJSON_AddObjectToObject(o, "meminfo_hugepages");
		cJSON_AddNumberToObject(x, "total", (double)info->mi_total);
		cJSON_AddNumberToObject(x, "free", (double)info->mi_free);
		cJSON_AddNumberToObject(x, "size_kb", (double)info->mi_size_kb);
	}
}

/* "ovs": what the probe found, when it ran. */
static void pw_nfd_json_ovs(cJSON *o, const struct pw_nfd_info *info)
{
	cJSON *x = cJSON_AddObjectToObject(o, "ovs");

	cJSON_AddBoolToObject(x, "probed", info->ovs.probed);
	if (!info->ovs.probed)
		return;
	cJSON_AddBoolToObject(x, "ovs_vswitchd", info->ovs.vswitchd);
	cJSON_AddBoolToObject(x, "ovs_vsctl", info->ovs.vsctl);
	if (info->ovs.version[0])
		cJSON_AddStringToObject(x, "version", info->ovs.version);
	cJSON_AddBoolToObject(x, "dpdk_built", info->ovs.dpdk_built);
	if (info->ovs.dpdk_initialized >= 0)
		cJSON_AddBoolToObject(x, "dpdk_initialized", info->ovs.dpdk_initialized);
	else
		cJSON_AddNullToObject(x, "dpdk_initialized");
	if (info->ovs.dpdk_init_config >= 0)
		cJSON_AddBoolToObject(x, "dpdk_init", info->ovs.dpdk_init_config);
	else
		cJSON_AddNullToObject(x, "dpdk_init");
	cJSON_AddBoolToObject(x, "dpdk", info->ovs.dpdk);
}

cJSON *pw_nfd_json(const struct pw_nfd_info *info, const struct pw_nfd_labels *ls, const char *node)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *a, *x;

	if (!o)
		return NULL;
	if (node)
		cJSON_AddStringToObject(o, "node", node);
	else
		cJSON_AddNullToObject(o, "node");
	cJSON_AddStringToObject(o, "kernel", info->kernel);
	pw_nfd_json_devices(o, info);
	pw_nfd_json_hugepages(o, info);

	x = cJSON_AddObjectToObject(o, "rdma");
	cJSON_AddNumberToObject(x, "count", (double)info->nrdma);
	a = cJSON_AddArrayToObject(x, "devices");
	for (size_t i = 0; i < info->nrdma; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(info->rdma[i]));

	x = cJSON_AddObjectToObject(o, "af_xdp");
	cJSON_AddBoolToObject(x, "supported", info->af_xdp);
	cJSON_AddStringToObject(x, "source", info->af_xdp_source);

	pw_nfd_json_ovs(o, info);

	x = cJSON_AddObjectToObject(o, "podwired");
	cJSON_AddBoolToObject(x, "running", info->podwired.up);
	cJSON_AddBoolToObject(x, "rdma_virtual", info->rdma_virtual);
	if (info->podwired.up) {
		cJSON_AddNumberToObject(x, "version", info->podwired.version);
		cJSON_AddStringToObject(x, "prefixes", info->podwired.prefixes);
	} else {
		cJSON_AddStringToObject(x, "error", info->podwired.error);
	}

	x = cJSON_AddObjectToObject(o, "switch");
	cJSON_AddBoolToObject(x, "running", info->sw.up);
	if (info->sw.up) {
		cJSON_AddNumberToObject(x, "max_ports", info->sw.max_ports);
		cJSON_AddNumberToObject(x, "ports", info->sw.ports);
	} else {
		cJSON_AddStringToObject(x, "error", info->sw.error);
	}

	if (info->measured) {
		x = cJSON_AddObjectToObject(o, "latency");
		pw_nfd_json_rtt(x, "shm", &info->rtt[PW_NFD_SHM]);
		pw_nfd_json_rtt(x, "tcp", &info->rtt[PW_NFD_TCP]);
	} else {
		cJSON_AddNullToObject(o, "latency");
	}

	x = cJSON_AddObjectToObject(o, "labels");
	for (size_t i = 0; i < ls->n; i++)
		cJSON_AddStringToObject(x, ls->l[i].key, ls->l[i].value);

	a = cJSON_AddArrayToObject(o, "warnings");
	for (unsigned i = 0; i < info->nwarn; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(info->warn[i]));
	return o;
}

static int pw_nfd_write_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

int pw_nfd_features_write(const char *path, const struct pw_nfd_labels *ls, long long expiry)
{
	char dir[PATH_MAX], tmp[PATH_MAX], line[256];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int fd = -1, dfd = -1, r;

	if (!*base)
		return -EISDIR;
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path + (slash == path)), path);
	else
		snprintf(dir, sizeof(dir), ".");
	/* NFD skips files whose names start with '.', so it never reads a half
	 * written temp file. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0644) < 0) {
		r = -errno;
		goto fail;
	}
	snprintf(line, sizeof(line), "# written by podwire-nfd; see docs/NFD.md\n");
	r = pw_nfd_write_all(fd, line, strlen(line));
	if (!r && expiry > 0) {
		time_t t = (time_t)expiry;
		struct tm tm;
		char when[64];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(line, sizeof(line), "# +expiry-time=%s\n", when);
		r = pw_nfd_write_all(fd, line, strlen(line));
	}
	for (size_t i = 0; !r && i < ls->n; i++) {
		snprintf(line, sizeof(line), "%s=%s\n", ls->l[i].key, ls->l[i].value);
		r = pw_nfd_write_all(fd, line, strlen(line));
	}
	if (r)
		goto fail;
	if (fsync(fd) < 0) {
		r = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		r = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	/* the rename itself must survive a crash */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	pw_close(fd);
	unlink(tmp);
	return r;
}
