// SPDX-License-Identifier: MIT
/*
 * Probes of sysfs and procfs under configurable roots, so tests can point
 * them at fake trees. Every file is distrusted: a value that does not parse
 * becomes "unknown" and a warning, never a guess.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "addr.h"
#include "../common/json.h"
#include "nfd.h"
#include "swctl.h"
#include "proto.h"
#include "util.h"

#ifndef AF_XDP
#define AF_XDP 44
#endif

static const char *const pw_dpdk_drivers[] = { "vfio-pci", "igb_uio", "uio_pci_generic" };

void pw_nfd_warn(struct pw_nfd_info *info, const char *fmt, ...)
{
	va_list ap;

	if (info->nwarn >= PW_NFD_MAX_WARN)
		return;
	va_start(ap, fmt);
	vsnprintf(info->warn[info->nwarn++], sizeof(info->warn[0]), fmt, ap);
	va_end(ap);
}

/* Copy @src into @dst of @cap bytes, cut if longer. */
static void pw_nfd_str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Read a small file, trailing whitespace removed. Returns its length or -errno. */
static int pw_nfd_file_read(const char *path, char *buf, size_t cap)
{
	ssize_t n;
	size_t len;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	n = pw_read_full(fd, buf, cap - 1);
	if (n < 0) {
		r = (int)n;
		goto out;
	}
	len = (size_t)n;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	buf[len] = '\0';
	r = (int)len;
out:
	close(fd);
	return r;
}

static int pw_nfd_file_readf(char *buf, size_t cap, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int pw_nfd_file_readf(char *buf, size_t cap, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return pw_nfd_file_read(path, buf, cap);
}

/* A whole string as an unsigned number in @base (16 accepts "0x"). */
static bool pw_nfd_ul_parse(const char *s, int base, unsigned long *ret)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, base);
	if (errno || *end)
		return false;
	*ret = v;
	return true;
}

/* A numeric sysfs attribute: its value, -1 when absent, -2 when malformed
 * (warned). */
static long pw_nfd_num_read(struct pw_nfd_info *info, const char *dir, const char *name, int base)
{
	char buf[64];
	unsigned long v;
	int r = pw_nfd_file_readf(buf, sizeof(buf), "%s/%s", dir, name);

	if (r == -ENOENT)
		return -1;
	if (r < 0) {
		pw_nfd_warn(info, "%s/%s: %s", dir, name, strerror(-r));
		return -2;
	}
	if (!pw_nfd_ul_parse(buf, base, &v) || v > LONG_MAX) {
		pw_nfd_warn(info, "%s/%s: not a number: '%.40s'", dir, name, buf);
		return -2;
	}
	return (long)v;
}

/* The last component of the symlink @dir/@name into @out; "" if none. */
static void pw_link_base(const char *dir, const char *name, char *out, size_t cap)
{
	char path[PATH_MAX], target[PATH_MAX];
	ssize_t n;

	out[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return;
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	const char *b = strrchr(target, '/');
	pw_nfd_str_copy(out, cap, b ? b + 1 : target);
}

bool pw_nfd_is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Interface names in @dir/net/; false if there is no such directory. */
static bool pw_nic_netdir(struct pw_nfd_nic *nic, const char *dir)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if ((size_t)snprintf(path, sizeof(path), "%s/net", dir) >= sizeof(path))
		return false;
	d = opendir(path);
	if (!d)
		return false;
	while ((de = readdir(d)) && nic->nifnames < PW_NFD_MAX_IFNAMES) {
		if (de->d_name[0] == '.')
			continue;
		pw_nfd_str_copy(nic->ifnames[nic->nifnames++], sizeof(nic->ifnames[0]), de->d_name);
	}
	closedir(d);
	return true;
}

/* Interfaces sit in <dev>/net/ or, behind a bus such as virtio, one level
 * deeper (<dev>/virtio0/net/). */
static void pw_nic_ifnames(struct pw_nfd_nic *nic, const char *dev)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (pw_nic_netdir(nic, dev))
		return;
	d = opendir(dev);
	if (!d)
		return;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "driver") ||
		    !strcmp(de->d_name, "physfn") || !strncmp(de->d_name, "virtfn", 6) ||
		    !strcmp(de->d_name, "subsystem") || !strcmp(de->d_name, "firmware_node"))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dev, de->d_name) >= sizeof(path))
			continue;
		if (pw_nfd_is_dir(path) && pw_nic_netdir(nic, path))
			break;
	}
	closedir(d);
}

/* Open @root/@rel (path left in @path); NULL when absent, and a warning
 * when it exists but cannot be read. */
static DIR *pw_nfd_dir_open(struct pw_nfd_info *info, char *path, size_t cap, const char *root,
			    const char *rel)
{
	DIR *d;

	if ((size_t)snprintf(path, cap, "%s/%s", root, rel) >= cap)
		return NULL;
	d = opendir(path);
	if (!d && errno != ENOENT)
		pw_nfd_warn(info, "%s: %s", path, strerror(errno));
	return d;
}

/* What pw_nfd_dir_scan calls for an entry @name of directory @dir; false stops the scan. */
typedef bool (*pw_nfd_entry_fn)(struct pw_nfd_info *info, const char *dir, const char *name,
				void *arg);

/*
 * @fn for each entry of @root/@rel but the hidden ones (".", "..", dot
 * files), in directory order, until it returns false. Nothing when the
 * directory is absent; a warning when it exists but cannot be read.
 */
static void pw_nfd_dir_scan(struct pw_nfd_info *info, const char *root, const char *rel,
			    pw_nfd_entry_fn fn, void *arg)
{
	char base[PATH_MAX];
	struct dirent *de;
	DIR *d = pw_nfd_dir_open(info, base, sizeof(base), root, rel);

	if (!d)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && !fn(info, base, de->d_name, arg))
			break;
	closedir(d);
}

/* Room for one more element in *@arr of *@cap, @n used; false on ENOMEM. */
static bool pw_nfd_array_grow(void *arr, size_t *cap, size_t n, size_t size)
{
	void **p = arr;

	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *m = realloc(*p, ncap * size);
	if (!m)
		return false;
	*p = m;
	*cap = ncap;
	return true;
}

static int pw_nic_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pw_nfd_nic *)a)->addr, ((const struct pw_nfd_nic *)b)->addr);
}

static int pw_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* sriov_totalvfs and sriov_numvfs of @nic at @dev: -1 when absent or not sane. */
static void pw_nfd_nic_sriov(struct pw_nfd_info *info, const char *dev, struct pw_nfd_nic *nic)
{
	nic->sriov_total = pw_nfd_num_read(info, dev, "sriov_totalvfs", 10);
	nic->sriov_num = -1;
	if (nic->sriov_total >= 0) {
		nic->sriov_num = pw_nfd_num_read(info, dev, "sriov_numvfs", 10);
		if (nic->sriov_num > nic->sriov_total) {
			pw_nfd_warn(info, "%s: sriov_numvfs %ld > sriov_totalvfs %ld", dev,
				    nic->sriov_num, nic->sriov_total);
			nic->sriov_num = -2;
		}
	}
	if (nic->sriov_total < 0)
		nic->sriov_total = -1;
	if (nic->sriov_num < 0)
		nic->sriov_num = -1;
}

/* One PCI device @name under @dir: kept when it is a network controller. */
static bool pw_nfd_pci_dev(struct pw_nfd_info *info, const char *dir, const char *name, void *arg)
{
	size_t *cap = arg;
	char dev[PATH_MAX], buf[64];
	unsigned long cls;
	int r;

	if ((size_t)snprintf(dev, sizeof(dev), "%s/%s", dir, name) >= sizeof(dev))
		return true;
	r = pw_nfd_file_readf(buf, sizeof(buf), "%s/class", dev);
	if (r < 0) {
		pw_nfd_warn(info, "%s/class: %s", dev, strerror(-r));
		return true;
	}
	if (!pw_nfd_ul_parse(buf, 16, &cls) || cls > 0xffffff) {
		pw_nfd_warn(info, "%s/class: not a PCI class: '%.40s'", dev, buf);
		return true;
	}
	if (cls >> 16 != 0x02)
		return true;
	if (!pw_nfd_array_grow(&info->nics, cap, info->nnics, sizeof(info->nics[0]))) {
		pw_nfd_warn(info, "out of memory listing PCI devices");
		return false;
	}
	struct pw_nfd_nic *nic = &info->nics[info->nnics++];
	memset(nic, 0, sizeof(*nic));
	pw_nfd_str_copy(nic->addr, sizeof(nic->addr), name);
	nic->class_code = (uint32_t)cls;
	long v = pw_nfd_num_read(info, dev, "vendor", 16);
	nic->vendor = v > 0 && v <= 0xffff ? (uint32_t)v : 0;
	v = pw_nfd_num_read(info, dev, "device", 16);
	nic->device = v > 0 && v <= 0xffff ? (uint32_t)v : 0;
	pw_link_base(dev, "driver", nic->driver, sizeof(nic->driver));
	pw_link_base(dev, "physfn", nic->physfn, sizeof(nic->physfn));
	pw_nic_ifnames(nic, dev);
	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_dpdk_drivers); i++)
		if (!strcmp(nic->driver, pw_dpdk_drivers[i]))
			nic->dpdk = true;
	pw_nfd_nic_sriov(info, dev, nic);
	if (nic->sriov_total > 0) {
		info->sriov_nics++;
		info->vfs_total += (unsigned long)nic->sriov_total;
	}
	if (nic->sriov_num > 0)
		info->vfs_num += (unsigned long)nic->sriov_num;
	if (nic->dpdk)
		info->ndpdk++;
	return true;
}

static void pw_probe_pci(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	size_t cap = 0;

	pw_nfd_dir_scan(info, o->sysfs_root, "bus/pci/devices", pw_nfd_pci_dev, &cap);
	if (info->nnics)
		qsort(info->nics, info->nnics, sizeof(info->nics[0]), pw_nic_cmp);
}

static int pw_hp_cmp(const void *a, const void *b)
{
	unsigned long x = ((const struct pw_nfd_hugepages *)a)->size_kb;
	unsigned long y = ((const struct pw_nfd_hugepages *)b)->size_kb;

	return x < y ? -1 : x > y;
}

static void pw_probe_meminfo(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	char path[PATH_MAX], line[256];
	FILE *f;

	info->mi_total = info->mi_free = info->mi_size_kb = -1;
	snprintf(path, sizeof(path), "%s/meminfo", o->procfs_root);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		static const struct {
			const char *key;
			size_t off;
		} keys[] = {
			{ "HugePages_Total:", offsetof(struct pw_nfd_info, mi_total) },
			{ "HugePages_Free:", offsetof(struct pw_nfd_info, mi_free) },
			{ "Hugepagesize:", offsetof(struct pw_nfd_info, mi_size_kb) },
		};
		for (size_t i = 0; i < PW_ARRAY_SIZE(keys); i++) {
			size_t kl = strlen(keys[i].key);
			char *end;

			if (strncmp(line, keys[i].key, kl) != 0)
				continue;
			errno = 0;
			long v = strtol(line + kl, &end, 10);
			while (*end == ' ')
				end++;
			if (errno || end == line + kl || v < 0 ||
			    (*end && strcmp(end, "\n") != 0 && strcmp(end, "kB\n") != 0)) {
				pw_nfd_warn(info, "%s: bad %s line", path, keys[i].key);
				continue;
			}
			*(long *)((char *)info + keys[i].off) = v;
		}
	}
	fclose(f);
}

/* One hugepages-<size>kB directory @name under @dir; false when the table is full. */
static bool pw_nfd_hp_dir(struct pw_nfd_info *info, const char *dir, const char *name, void *arg)
{
	char num[32], path[PATH_MAX];
	size_t len = strlen(name);
	unsigned long kb;

	if (strncmp(name, "hugepages-", 10) != 0 || len < 13 || len - 12 >= sizeof(num) ||
	    strcmp(name + len - 2, "kB") != 0)
		return true;
	memcpy(num, name + 10, len - 12);
	num[len - 12] = '\0';
	if (!pw_nfd_ul_parse(num, 10, &kb) || !kb) {
		pw_nfd_warn(info, "%s/%s: unknown page size", dir, name);
		return true;
	}
	if (info->nhp == PW_NFD_MAX_HP)
		return false;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return true;
	struct pw_nfd_hugepages *h = &info->hp[info->nhp++];
	h->size_kb = kb;
	h->total = pw_nfd_num_read(info, path, "nr_hugepages", 10);
	h->free = pw_nfd_num_read(info, path, "free_hugepages", 10);
	h->total = h->total < 0 ? -1 : h->total;
	h->free = h->free < 0 ? -1 : h->free;
	h->source = "sysfs";
	return true;
}

static void pw_probe_hugepages(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	pw_probe_meminfo(o, info);
	pw_nfd_dir_scan(info, o->sysfs_root, "kernel/mm/hugepages", pw_nfd_hp_dir, NULL);
	/* A container that masks /sys/kernel still sees /proc/meminfo, which
	 * covers the default page size. */
	bool have_default = false;
	for (size_t i = 0; i < info->nhp; i++)
		if ((long)info->hp[i].size_kb == info->mi_size_kb)
			have_default = true;
	if (!have_default && info->mi_size_kb > 0 && info->mi_total >= 0 &&
	    info->nhp < PW_NFD_MAX_HP) {
		info->hp[info->nhp++] = (struct pw_nfd_hugepages){
			.size_kb = (unsigned long)info->mi_size_kb,
			.total = info->mi_total,
			.free = info->mi_free,
			.source = "meminfo",
		};
	}
	qsort(info->hp, info->nhp, sizeof(info->hp[0]), pw_hp_cmp);
}

/* One RDMA device @name; false when out of memory. */
static bool pw_nfd_rdma_dev(struct pw_nfd_info *info, const char *dir, const char *name, void *arg)
{
	if (!pw_nfd_array_grow(&info->rdma, arg, info->nrdma, sizeof(info->rdma[0])))
		return false;
	info->rdma[info->nrdma] = strdup(name);
	if (!info->rdma[info->nrdma])
		return false;
	info->nrdma++;
	return true;
}

static void pw_probe_rdma(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	size_t cap = 0;

	pw_nfd_dir_scan(info, o->sysfs_root, "class/infiniband", pw_nfd_rdma_dev, &cap);
	if (info->nrdma)
		qsort(info->rdma, info->nrdma, sizeof(info->rdma[0]), pw_str_cmp);
}

/*
 * AF_XDP: the kernel lists the XDP socket protocol in /proc/net/protocols
 * once the family is registered (CONFIG_XDP_SOCKETS, built in, no module to
 * load). Where that file is not visible and we look at the live /proc, ask
 * the kernel: socket(AF_XDP) fails with EAFNOSUPPORT only when the family is
 * missing (EPERM without CAP_NET_RAW still proves it exists).
 */
static void pw_probe_af_xdp(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	char path[PATH_MAX], line[256];
	bool seen_file = false;
	FILE *f;

	info->af_xdp = false;
	info->af_xdp_source = "none";
	snprintf(path, sizeof(path), "%s/net/protocols", o->procfs_root);
	f = fopen(path, "re");
	if (f) {
		seen_file = true;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "XDP ", 4) || !strncmp(line, "XDP\t", 4)) {
				info->af_xdp = true;
				info->af_xdp_source = "procfs";
			}
		fclose(f);
	}
	if (info->af_xdp || !o->real_procfs)
		return;
	int s = socket(AF_XDP, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (s >= 0 || errno == EPERM || errno == EACCES) {
		info->af_xdp = true;
		info->af_xdp_source = "socket";
	} else if (!seen_file) {
		info->af_xdp_source = "socket";
	}
	if (s >= 0)
		close(s);
}

static void pw_probe_kernel(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	char path[PATH_MAX];
	struct utsname u;

	snprintf(path, sizeof(path), "%s/sys/kernel/osrelease", o->procfs_root);
	if (pw_nfd_file_read(path, info->kernel, sizeof(info->kernel)) > 0)
		return;
	info->kernel[0] = '\0';
	if (o->real_procfs && uname(&u) == 0)
		snprintf(info->kernel, sizeof(info->kernel), "%s", u.release);
}

static void pw_probe_podwired(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	struct pw_wire_hello hello = { 0 };
	struct pw_msg m = { 0 };
	size_t off = 0;
	int r;

	info->podwired.up = false;
	r = pw_proto_call(o->podwired_socket, PW_MSG_HELLO, &hello, sizeof(hello), -1, 2000, &m,
			  buf);
	if (r < 0) {
		snprintf(info->podwired.error, sizeof(info->podwired.error), "%s", strerror(-r));
		return;
	}
	if (m.type != PW_MSG_HELLO_OK) {
		snprintf(info->podwired.error, sizeof(info->podwired.error),
			 "unexpected reply type %u", m.type);
		return;
	}
	info->podwired.up = true;
	info->podwired.version = m.u.hello_ok.node_version;
	for (uint32_t i = 0; i < m.nentries; i++) {
		struct pw_wire_prefix p;
		char cidr[PW_ADDR_CIDR_STRLEN];

		if (pw_msg_entry(&m, i, &p, sizeof(p)) < 0)
			continue;
		int n = snprintf(info->podwired.prefixes + off,
				 sizeof(info->podwired.prefixes) - off, "%s%s", off ? "," : "",
				 pw_addr_cidr_format(&p, cidr));
		if (n < 0 || (size_t)n >= sizeof(info->podwired.prefixes) - off)
			break;
		off += (size_t)n;
	}
}

/* podwire-switch: how many packet interfaces it gives, how many it has. */
static void pw_probe_switch(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	cJSON *req = cJSON_CreateObject(), *reply;
	char err[256];

	info->sw.up = false;
	cJSON_AddStringToObject(req, "cmd", "status");
	reply = pw_swctl_call(o->switch_dir, req, 2000, err, sizeof(err), NULL);
	cJSON_Delete(req);
	if (!reply || !pw_json_get_bool(reply, "ok", false)) {
		snprintf(info->sw.error, sizeof(info->sw.error), "%.95s", reply ? "refused" : err);
		cJSON_Delete(reply);
		return;
	}
	int max = pw_json_get_int(reply, "max_ports", -1),
	    used = pw_json_get_int(reply, "ports_used", -1);
	cJSON_Delete(reply);
	if (max < 0 || used < 0 || used > max) {
		snprintf(info->sw.error, sizeof(info->sw.error), "status without port counts");
		return;
	}
	info->sw.up = true;
	info->sw.max_ports = (unsigned)max;
	info->sw.ports = (unsigned)used;
}

/* Does the preload tree hold the virtual RDMA device's library, under one
 * of its $LIB directories? */
static void pw_probe_verbs(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	static const char *const subs[] = { "/*/libpodwire-verbs.so", "/*/*/libpodwire-verbs.so" };
	char pat[PATH_MAX];

	info->rdma_virtual = false;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]) && !info->rdma_virtual; i++) {
		glob_t g;
		if (!o->preload_dir ||
		    snprintf(pat, sizeof(pat), "%s%s", o->preload_dir, subs[i]) >= (int)sizeof(pat))
			return;
		if (glob(pat, GLOB_NOSORT, NULL, &g) == 0)
			info->rdma_virtual = g.gl_pathc > 0;
		globfree(&g);
	}
}

void pw_nfd_probe(const struct pw_nfd_opts *o, struct pw_nfd_info *info)
{
	memset(info, 0, sizeof(*info));
	info->ovs.dpdk_initialized = info->ovs.dpdk_init_config = -1;
	pw_probe_kernel(o, info);
	pw_probe_pci(o, info);
	pw_probe_hugepages(o, info);
	pw_probe_rdma(o, info);
	pw_probe_af_xdp(o, info);
	pw_probe_podwired(o, info);
	if (o->switch_dir)
		pw_probe_switch(o, info);
	pw_probe_verbs(o, info);
	if (o->ovs)
		pw_nfd_probe_ovs(info);
	if (o->measure)
		pw_nfd_measure(o, info);
}

void pw_nfd_info_free(struct pw_nfd_info *info)
{
	if (!info)
		return;
	free(info->nics);
	for (size_t i = 0; i < info->nrdma; i++)
		free(info->rdma[i]);
	free(info->rdma);
	info->nics = NULL;
	info->rdma = NULL;
	info->nnics = info->nrdma = 0;
}
