// SPDX-License-Identifier: MIT
/*
 * podwire-cni: a CNI plugin (spec 1.0.0; 0.3.x and 0.4.0 configurations are
 * answered in their own result format). See docs/CNI.md.
 *
 * Two modes, chosen by the configuration:
 * - standalone (an "ipam" section of type "podwire"): a Linux bridge on the
 *   host with the gateway address, a veth pair into the pod, addresses and
 *   routes, and allocations from its own file-backed IPAM;
 * - chained (no "ipam"): after bridge + host-local; the interface exists, its
 *   addresses come from prevResult, which is passed through.
 * Either way, ADD registers the pod (its netns as an fd, its addresses) with
 * the node's podwired and DEL unregisters it. The router is optional: without
 * it the pod works over the kernel, and the plugin only warns.
 *
 * The runtime talks to us through the environment, stdin and stdout: stdout
 * carries the result or the error object and nothing else; logs go to stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "ipam.h"
#include "nl.h"
#include "reg.h"

#define PW_CNI_SPEC	       "1.0.0"
#define PW_CNI_DEFAULT_BRIDGE  "podwire0"
#define PW_CNI_DEFAULT_DATADIR "/var/lib/podwire/cni/networks"
#define PW_CNI_MAX_INPUT       (1u << 20)
#define PW_CNI_MAX_ROUTES      16u
#define PW_CNI_LOCK_MS	       10000

static const char *const pw_cni_versions[] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0" };

/* The spec's well-known error codes, and ours (100 and up). */
enum pw_cni_code {
	PW_CNI_E_VERSION = 1, /* incompatible CNI version */
	PW_CNI_E_FIELD = 2,   /* unsupported field in the configuration */
	PW_CNI_E_UNKNOWN = 3, /* container unknown or does not exist */
	PW_CNI_E_ENV = 4,     /* invalid necessary environment variables */
	PW_CNI_E_IO = 5,      /* I/O failure */
	PW_CNI_E_DECODE = 6,  /* failed to decode content */
	PW_CNI_E_CONFIG = 7,  /* invalid network configuration */
	PW_CNI_E_AGAIN = 11,  /* try again later */
	PW_CNI_E_IPAM = 100,  /* no address could be allocated */
	PW_CNI_E_LINK = 101,  /* setting up the interfaces failed */
	PW_CNI_E_CHECK = 102, /* CHECK found the networking not as ADD left it */
	PW_CNI_E_ROUTER = 103 /* CHECK: podwired does not know the pod */
};

enum pw_cni_cmd { PW_CNI_ADD, PW_CNI_DEL, PW_CNI_CHECK, PW_CNI_VERSION };

struct pw_cni_route {
	uint32_t dst, gw; /* network order; gw 0: the IPAM gateway */
	uint8_t len;
};

struct pw_cni {
	/* environment */
	enum pw_cni_cmd cmd;
	const char *id, *netns_path, *ifname;
	/* configuration */
	cJSON *conf;
	const char *version, *name, *sock;
	bool standalone;
	char bridge[IF_NAMESIZE];
	unsigned mtu;
	struct pw_ipam ipam;
	struct pw_cni_route routes[PW_CNI_MAX_ROUTES];
	unsigned nroutes;
	const cJSON *prev, *dns;
	int netns;
	/* the error to report, if any */
	int code;
	char msg[128], details[1024];
};

/* Record the error to report (the first one wins); returns -1. */
__attribute__((format(printf, 4, 5))) static int pw_cni_fail(struct pw_cni *c, int code,
							     const char *msg, const char *fmt, ...)
{
	va_list ap;

	if (c->code)
		return -1;
	c->code = code;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
	va_start(ap, fmt);
	vsnprintf(c->details, sizeof(c->details), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- versions ---- */

static bool pw_cni_version_ok(const char *v)
{
	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_cni_versions); i++)
		if (!strcmp(v, pw_cni_versions[i]))
			return true;
	return false;
}

/* Results before 1.0.0 carry "version" in each ips entry. */
static bool pw_cni_pre_1_0(const char *v)
{
	return strcmp(v, "1.0.0") != 0;
}

/* ---- input ---- */

static int pw_cni_read_stdin(struct pw_cni *c, char **ret)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return pw_cni_fail(c, PW_CNI_E_IO, "out of memory", "reading stdin");
	for (;;) {
		if (len + 1 == cap) {
			char *n = cap >= PW_CNI_MAX_INPUT ? NULL : realloc(buf, cap * 2);
			if (!n) {
				free(buf);
				return pw_cni_fail(c, PW_CNI_E_IO, "configuration too large",
						   "more than %u bytes on stdin", PW_CNI_MAX_INPUT);
			}
			buf = n;
			cap *= 2;
		}
		ssize_t n = read(STDIN_FILENO, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			free(buf);
			return pw_cni_fail(c, PW_CNI_E_IO, "cannot read the configuration",
					   "stdin: %s", strerror(err));
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

/* The spec's rule for container ids: [A-Za-z0-9][A-Za-z0-9_.-]*. Also used for
 * network names, which become a directory name. */
static bool pw_cni_id_ok(const char *s)
{
	if (!s ||
	    !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return false;
	return true;
}

/* Linux interface names: 1 to 15 bytes, not "." or "..", no '/', ':' or space. */
static bool pw_cni_ifname_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

static int pw_cni_env(struct pw_cni *c)
{
	const char *cmd = getenv("CNI_COMMAND");

	if (!cmd || !*cmd)
		return pw_cni_fail(c, PW_CNI_E_ENV, "missing CNI_COMMAND",
				   "CNI_COMMAND must be ADD, DEL, CHECK or VERSION");
	if (!strcmp(cmd, "ADD"))
		c->cmd = PW_CNI_ADD;
	else if (!strcmp(cmd, "DEL"))
		c->cmd = PW_CNI_DEL;
	else if (!strcmp(cmd, "CHECK"))
		c->cmd = PW_CNI_CHECK;
	else if (!strcmp(cmd, "VERSION"))
		c->cmd = PW_CNI_VERSION;
	else
		return pw_cni_fail(c, PW_CNI_E_ENV, "invalid CNI_COMMAND",
				   "CNI_COMMAND=\"%.64s\": must be ADD, DEL, CHECK or VERSION",
				   cmd);
	if (c->cmd == PW_CNI_VERSION)
		return 0;
	c->id = getenv("CNI_CONTAINERID");
	if (!pw_cni_id_ok(c->id))
		return pw_cni_fail(c, PW_CNI_E_ENV, "invalid CNI_CONTAINERID",
				   "CNI_CONTAINERID=\"%.80s\": must be [A-Za-z0-9][A-Za-z0-9_.-]*",
				   c->id ? c->id : "");
	c->ifname = getenv("CNI_IFNAME");
	if (!pw_cni_ifname_ok(c->ifname))
		return pw_cni_fail(c, PW_CNI_E_ENV, "invalid CNI_IFNAME",
				   "CNI_IFNAME=\"%.32s\": must be a Linux interface name "
				   "(1-15 bytes, no '/', ':' or white space)",
				   c->ifname ? c->ifname : "");
	c->netns_path = getenv("CNI_NETNS");
	if (c->netns_path && !*c->netns_path)
		c->netns_path = NULL;
	if (!c->netns_path && c->cmd != PW_CNI_DEL)
		return pw_cni_fail(c, PW_CNI_E_ENV, "missing CNI_NETNS",
				   "CNI_NETNS must name the container's network namespace");
	return 0;
}

/* ---- configuration ---- */

/* @key of @o as a string: *ret stays NULL if absent (an error if @required). */
static int pw_cni_str(struct pw_cni *c, const cJSON *o, const char *where, const char *key,
		      bool required, const char **ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	*ret = NULL;
	if (!v && !required)
		return 0;
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "%s%s must be a non-empty string", where, key);
	*ret = v->valuestring;
	return 0;
}

/* An IPv4 address (host order) from key @key of @o, inside the IPAM subnet. */
static int pw_cni_ipam_addr(struct pw_cni *c, const cJSON *o, const char *key, uint32_t *ret)
{
	const struct pw_ipam *p = &c->ipam;
	uint32_t bcast = p->net | ~pw_addr_mask(p->plen);
	const char *s;
	struct in_addr a;

	if (pw_cni_str(c, o, "ipam.", key, false, &s) < 0)
		return -1;
	if (!s)
		return 0;
	if (inet_pton(AF_INET, s, &a) != 1)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.%s=\"%.64s\" is not an IPv4 address", key, s);
	*ret = ntohl(a.s_addr);
	if ((*ret & pw_addr_mask(p->plen)) != p->net || *ret == p->net || *ret == bcast)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.%s=%s is not a host address of the subnet", key, s);
	return 0;
}

static int pw_cni_conf_routes(struct pw_cni *c, const cJSON *ipam)
{
	const cJSON *routes = cJSON_GetObjectItemCaseSensitive(ipam, "routes"), *r;
	char where[32];

	if (!routes)
		return 0;
	if (!cJSON_IsArray(routes) || cJSON_GetArraySize(routes) > (int)PW_CNI_MAX_ROUTES)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.routes must be an array of at most %u {\"dst\", \"gw\"}",
				   PW_CNI_MAX_ROUTES);
	cJSON_ArrayForEach(r, routes)
	{
		struct pw_cni_route *rt = &c->routes[c->nroutes];
		const char *dst, *gw;
		struct pw_wire_prefix pf;

		snprintf(where, sizeof(where), "ipam.routes[%u].", c->nroutes);
		if (!cJSON_IsObject(r) || pw_cni_str(c, r, where, "dst", true, &dst) < 0 ||
		    pw_cni_str(c, r, where, "gw", false, &gw) < 0)
			return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
					   "%s must be an object with \"dst\"", where);
		if (pw_addr_cidr_parse(dst, PW_ADDR_CIDR_NET, &pf) < 0)
			return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
					   "%sdst=\"%.64s\" is not an IPv4 CIDR", where, dst);
		memcpy(&rt->dst, pf.addr, 4);
		rt->len = pf.len;
		if (gw && inet_pton(AF_INET, gw, &rt->gw) != 1)
			return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
					   "%sgw=\"%.64s\" is not an IPv4 address", where, gw);
		c->nroutes++;
	}
	return 0;
}

static int pw_cni_conf_ipam(struct pw_cni *c, const cJSON *ipam)
{
	struct pw_ipam *p = &c->ipam;
	const char *type, *subnet, *dir;
	struct pw_wire_prefix pf;

	if (!cJSON_IsObject(ipam))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam must be an object");
	if (pw_cni_str(c, ipam, "ipam.", "type", true, &type) < 0)
		return -1;
	if (strcmp(type, "podwire") != 0)
		return pw_cni_fail(c, PW_CNI_E_FIELD, "unsupported IPAM type",
				   "ipam.type=\"%.64s\": podwire-cni allocates addresses itself "
				   "(\"podwire\"); for another IPAM, chain podwire-cni after the "
				   "bridge plugin",
				   type);
	if (pw_cni_str(c, ipam, "ipam.", "subnet", true, &subnet) < 0)
		return -1;
	if (pw_addr_cidr_parse(subnet, PW_ADDR_CIDR_INET6 | PW_ADDR_CIDR_NET, &pf) < 0)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.subnet=\"%.64s\" is not an address/prefix", subnet);
	if (pf.family != AF_INET)
		return pw_cni_fail(c, PW_CNI_E_FIELD, "unsupported field",
				   "ipam.subnet=\"%.64s\": only IPv4 subnets are supported",
				   subnet);
	p->plen = pf.len;
	if (p->plen < 8 || p->plen > 30)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.subnet=\"%.64s\": the prefix must be /8 to /30", subnet);
	uint32_t a;
	memcpy(&a, pf.addr, 4);
	p->net = ntohl(a);
	uint32_t bcast = p->net | ~pw_addr_mask(p->plen);
	p->gw = p->net + 1;
	p->start = p->net + 1;
	p->end = bcast - 1;
	if (pw_cni_ipam_addr(c, ipam, "gateway", &p->gw) < 0 ||
	    pw_cni_ipam_addr(c, ipam, "rangeStart", &p->start) < 0 ||
	    pw_cni_ipam_addr(c, ipam, "rangeEnd", &p->end) < 0)
		return -1;
	if (p->start > p->end)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.rangeStart is after ipam.rangeEnd");
	if (pw_cni_str(c, ipam, "ipam.", "dataDir", false, &dir) < 0)
		return -1;
	if (dir && dir[0] != '/')
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.dataDir=\"%.64s\" must be an absolute path", dir);
	if (snprintf(p->dir, sizeof(p->dir), "%s/%s", dir ? dir : PW_CNI_DEFAULT_DATADIR,
		     c->name) >= (int)sizeof(p->dir))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "ipam.dataDir is too long");
	return pw_cni_conf_routes(c, ipam);
}

static int pw_cni_conf(struct pw_cni *c, const char *input)
{
	const cJSON *v;
	const char *s;

	c->conf = cJSON_Parse(input);
	if (!c->conf || !cJSON_IsObject(c->conf)) {
		const char *at = cJSON_GetErrorPtr();
		int n = at ? (int)strcspn(at, "\r\n") : 0;
		return pw_cni_fail(c, PW_CNI_E_DECODE, "cannot decode the network configuration",
				   "stdin is not a JSON object%s%.*s%s", at ? " (near \"" : "",
				   n < 32 ? n : 32, at ? at : "", at ? "\")" : "");
	}
	v = cJSON_GetObjectItemCaseSensitive(c->conf, "cniVersion");
	if (cJSON_IsString(v))
		c->version = v->valuestring; /* errors are reported in this version */
	if (pw_cni_str(c, c->conf, "", "cniVersion", true, &s) < 0)
		return -1;
	if (!pw_cni_version_ok(s))
		return pw_cni_fail(c, PW_CNI_E_VERSION, "incompatible CNI version",
				   "cniVersion \"%.32s\" is not supported; podwire-cni supports "
				   "0.3.0, 0.3.1, 0.4.0 and 1.0.0",
				   s);
	if (c->cmd == PW_CNI_VERSION)
		return 0;
	if (pw_cni_str(c, c->conf, "", "name", true, &c->name) < 0 ||
	    pw_cni_str(c, c->conf, "", "type", true, &s) < 0)
		return -1;
	if (!pw_cni_id_ok(c->name))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "name=\"%.64s\" must be [A-Za-z0-9][A-Za-z0-9_.-]*", c->name);
	if (pw_cni_str(c, c->conf, "", "podwireSocket", false, &c->sock) < 0)
		return -1;
	if (!c->sock)
		c->sock = PW_WIRE_DEFAULT_SOCKET;
	v = cJSON_GetObjectItemCaseSensitive(c->conf, "prevResult");
	if (v && !cJSON_IsObject(v))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "prevResult must be an object");
	c->prev = v;
	v = cJSON_GetObjectItemCaseSensitive(c->conf, "dns");
	if (v && !cJSON_IsObject(v))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "dns must be an object");
	c->dns = v;
	v = cJSON_GetObjectItemCaseSensitive(c->conf, "mtu");
	if (v && (!cJSON_IsNumber(v) || v->valuedouble < 68 || v->valuedouble > 65535 ||
		  v->valuedouble != (double)(int)v->valuedouble))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "mtu must be an integer from 68 to 65535");
	c->mtu = v ? (unsigned)v->valueint : 0;

	v = cJSON_GetObjectItemCaseSensitive(c->conf, "ipam");
	c->standalone = v != NULL;
	if (!c->standalone)
		return 0;
	if (pw_cni_str(c, c->conf, "", "bridge", false, &s) < 0)
		return -1;
	if (s && !pw_cni_ifname_ok(s))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "bridge=\"%.32s\" is not a valid interface name", s);
	snprintf(c->bridge, sizeof(c->bridge), "%s", s ? s : PW_CNI_DEFAULT_BRIDGE);
	return pw_cni_conf_ipam(c, v);
}

/* ---- namespaces and names ---- */

static int pw_cni_open_netns(struct pw_cni *c)
{
	c->netns = open(c->netns_path, O_RDONLY | O_CLOEXEC);
	if (c->netns < 0) {
		int err = errno;
		return pw_cni_fail(c, err == ENOENT ? PW_CNI_E_UNKNOWN : PW_CNI_E_IO,
				   "cannot open the container's network namespace",
				   "CNI_NETNS=%.200s: %s", c->netns_path, strerror(err));
	}
	if (ioctl(c->netns, NS_GET_NSTYPE) != CLONE_NEWNET)
		return pw_cni_fail(c, PW_CNI_E_ENV, "invalid CNI_NETNS",
				   "CNI_NETNS=%.200s is not a network namespace", c->netns_path);
	return 0;
}

/* The host end of the veth: derived from (network, container, interface) so
 * that a repeated ADD or a DEL finds it without any state. */
static void pw_cni_host_ifname(const struct pw_cni *c, char name[IF_NAMESIZE])
{
	uint64_t h = 0xcbf29ce484222325ull;
	const char *parts[3] = { c->name, c->id, c->ifname };

	for (int i = 0; i < 3; i++)
		for (const char *p = parts[i];; p++) {
			h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
			if (!*p)
				break;
		}
	snprintf(name, IF_NAMESIZE, "pwv%012llx", (unsigned long long)(h & 0xffffffffffffull));
}

/* ---- results ---- */

static void pw_cni_fmt_mac(const struct pw_nl_link *l, char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", l->mac[0], l->mac[1], l->mac[2],
		 l->mac[3], l->mac[4], l->mac[5]);
}

static void pw_cni_add_iface(cJSON *arr, const struct pw_nl_link *l, const char *sandbox)
{
	cJSON *o = cJSON_CreateObject();
	char mac[18];

	cJSON_AddStringToObject(o, "name", l->name);
	if (l->has_mac) {
		pw_cni_fmt_mac(l, mac);
		cJSON_AddStringToObject(o, "mac", mac);
	}
	if (sandbox)
		cJSON_AddStringToObject(o, "sandbox", sandbox);
	cJSON_AddItemToArray(arr, o);
}

static const char *pw_cni_ntop(uint32_t be, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &be, buf, INET_ADDRSTRLEN);
}

/* "a.b.c.d/len" of @be (network order). */
static const char *pw_cni_cidr(uint32_t be, uint8_t len, char buf[static PW_ADDR_CIDR_STRLEN])
{
	struct pw_wire_prefix p = { .family = AF_INET, .len = len };

	memcpy(p.addr, &be, 4);
	return pw_addr_cidr_format(&p, buf);
}

/* Bring a result (ours or a prevResult) to the format of our cniVersion. */
static void pw_cni_result_format(const struct pw_cni *c, cJSON *res)
{
	cJSON *ips = cJSON_GetObjectItemCaseSensitive(res, "ips"), *ip;

	if (cJSON_GetObjectItemCaseSensitive(res, "cniVersion"))
		cJSON_ReplaceItemInObjectCaseSensitive(res, "cniVersion",
						       cJSON_CreateString(c->version));
	else
		cJSON_AddStringToObject(res, "cniVersion", c->version);
	cJSON_ArrayForEach(ip, ips)
	{
		const cJSON *addr = cJSON_GetObjectItemCaseSensitive(ip, "address");

		cJSON_DeleteItemFromObjectCaseSensitive(ip, "version");
		if (pw_cni_pre_1_0(c->version) && cJSON_IsString(addr))
			cJSON_AddStringToObject(ip, "version",
						strchr(addr->valuestring, ':') ? "6" : "4");
	}
}

static cJSON *pw_cni_result(const struct pw_cni *c, const struct pw_nl_link *br,
			    const struct pw_nl_link *host, const struct pw_nl_link *cont,
			    uint32_t ip)
{
	cJSON *res = cJSON_CreateObject();
	cJSON *ifs, *ips, *routes, *o = cJSON_CreateObject();
	char a[INET_ADDRSTRLEN], cidr[PW_ADDR_CIDR_STRLEN];

	cJSON_AddStringToObject(res, "cniVersion", c->version);
	ifs = cJSON_AddArrayToObject(res, "interfaces");
	ips = cJSON_AddArrayToObject(res, "ips");
	routes = cJSON_AddArrayToObject(res, "routes");

	pw_cni_add_iface(ifs, br, NULL);
	pw_cni_add_iface(ifs, host, NULL);
	pw_cni_add_iface(ifs, cont, c->netns_path);
	cJSON_AddStringToObject(o, "address", pw_cni_cidr(htonl(ip), c->ipam.plen, cidr));
	cJSON_AddStringToObject(o, "gateway", pw_cni_ntop(htonl(c->ipam.gw), a));
	cJSON_AddNumberToObject(o, "interface", 2);
	cJSON_AddItemToArray(ips, o);
	for (unsigned i = 0; i < c->nroutes; i++) {
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "dst",
					pw_cni_cidr(c->routes[i].dst, c->routes[i].len, cidr));
		if (c->routes[i].gw)
			cJSON_AddStringToObject(o, "gw", pw_cni_ntop(c->routes[i].gw, a));
		cJSON_AddItemToArray(routes, o);
	}
	cJSON_AddItemToObject(res, "dns",
			      c->dns ? cJSON_Duplicate(c->dns, true) : cJSON_CreateObject());
	pw_cni_result_format(c, res);
	return res;
}

/*
 * The pod's addresses in a result: those of the interface named CNI_IFNAME
 * with a sandbox, or with no interface index at all. Fills @pod (key and
 * addresses); *@ret_iface is that interface's index in "interfaces" or -1.
 */
static int pw_cni_result_pod(struct pw_cni *c, const cJSON *res, struct pw_wire_pod *pod,
			     int *ret_iface)
{
	const cJSON *ifs = cJSON_GetObjectItemCaseSensitive(res, "interfaces");
	const cJSON *ips = cJSON_GetObjectItemCaseSensitive(res, "ips"), *v;
	int idx = -1, i = 0;

	memset(pod, 0, sizeof(*pod));
	snprintf(pod->key.id, sizeof(pod->key.id), "%s", c->id);
	snprintf(pod->key.ifname, sizeof(pod->key.ifname), "%s", c->ifname);
	cJSON_ArrayForEach(v, ifs)
	{
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(v, "name");
		const cJSON *sb = cJSON_GetObjectItemCaseSensitive(v, "sandbox");

		if (idx < 0 && cJSON_IsString(name) && !strcmp(name->valuestring, c->ifname) &&
		    cJSON_IsString(sb) && sb->valuestring[0])
			idx = i;
		i++;
	}
	*ret_iface = idx;
	i = 0;
	cJSON_ArrayForEach(v, ips)
	{
		const cJSON *addr = cJSON_GetObjectItemCaseSensitive(v, "address");
		const cJSON *iface = cJSON_GetObjectItemCaseSensitive(v, "interface");
		struct pw_wire_prefix p;

		if (!cJSON_IsString(addr) ||
		    pw_addr_cidr_parse(addr->valuestring, PW_ADDR_CIDR_INET6, &p) < 0)
			return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid prevResult",
					   "ips[%d].address is not an address/prefix", i);
		i++;
		if (iface && (!cJSON_IsNumber(iface) || iface->valueint != idx))
			continue;
		if (pod->count == PW_WIRE_POD_MAX_ADDRS) {
			pw_warn("more than %u addresses on %s: registering the first %u",
				PW_WIRE_POD_MAX_ADDRS, c->ifname, PW_WIRE_POD_MAX_ADDRS);
			break;
		}
		pod->addr[pod->count++] = p;
	}
	return 0;
}

/* Acceleration is optional: failing to register is a warning, never an error. */
static void pw_cni_register(const struct pw_cni *c, const struct pw_wire_pod *pod)
{
	int r;

	if (strlen(c->id) >= sizeof(pod->key.id)) {
		pw_warn("container id longer than %u bytes: not registered with podwired",
			PW_WIRE_POD_ID_LEN - 1);
		return;
	}
	r = pw_reg_add(c->sock, pod, c->netns);
	if (r < 0)
		pw_warn("cannot register the pod with podwired at %s: %s; it works, without "
			"podwire acceleration",
			c->sock, strerror(-r));
}

static void pw_cni_unregister(const struct pw_cni *c)
{
	struct pw_wire_pod_key key = { 0 };
	int r;

	if (strlen(c->id) >= sizeof(key.id))
		return;
	snprintf(key.id, sizeof(key.id), "%s", c->id);
	snprintf(key.ifname, sizeof(key.ifname), "%s", c->ifname);
	r = pw_reg_del(c->sock, &key);
	/* Gone already, or no router: both are what DEL wants. */
	if (r < 0 && r != -ENOENT && r != -ECONNREFUSED)
		pw_warn("podwired at %s: unregistering the pod: %s", c->sock, strerror(-r));
}

/* ---- standalone mode: links ---- */

/* Ignore "already there": a repeated ADD finds its own work done. */
static int pw_cni_exist_ok(int r)
{
	return r == -EEXIST ? 0 : r;
}

static int pw_cni_bridge(struct pw_cni *c, struct pw_nl *h, struct pw_nl_link *br)
{
	int r = pw_nl_link_get(h, c->bridge, br);

	if (r == -ENODEV) {
		r = pw_cni_exist_ok(pw_nl_bridge_add(h, c->bridge, c->mtu));
		if (r == 0)
			r = pw_nl_link_get(h, c->bridge, br);
	}
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_LINK, "cannot set up the bridge", "bridge %s: %s",
				   c->bridge, strerror(-r));
	if (strcmp(br->kind, "bridge") != 0)
		return pw_cni_fail(c, PW_CNI_E_LINK, "cannot set up the bridge",
				   "%s exists and is not a bridge (kind \"%s\")", c->bridge,
				   br->kind);
	r = pw_cni_exist_ok(pw_nl_addr_add(h, br->index, htonl(c->ipam.gw), c->ipam.plen));
	if (r == 0)
		r = pw_nl_link_up(h, br->index, 0);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_LINK, "cannot set up the bridge",
				   "bridge %s: gateway address or link up: %s", c->bridge,
				   strerror(-r));
	return 0;
}

/*
 * The veth pair, the pod's address and routes. A CNI_IFNAME that exists is
 * accepted only if it is our veth (its peer is our host end): that is a
 * repeated ADD. *@ret_created tells whether this call made the pair.
 */
static int pw_cni_links(struct pw_cni *c, uint32_t ip, struct pw_nl_link *br,
			struct pw_nl_link *host, struct pw_nl_link *cont, bool *ret_created)
{
	struct pw_nl h = { 0 }, ns = { 0 };
	char hname[IF_NAMESIZE];
	int r;

	*ret_created = false;
	pw_cni_host_ifname(c, hname);
	r = pw_nl_open(&h, -1);
	if (r == 0)
		r = pw_nl_open(&ns, c->netns);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_LINK, "cannot open netlink", "%s", strerror(-r));
		goto out;
	}
	r = pw_cni_bridge(c, &h, br);
	if (r < 0)
		goto out;

	r = pw_nl_link_get(&ns, c->ifname, cont);
	if (r == 0) {
		if (pw_nl_link_get(&h, hname, host) < 0 || strcmp(cont->kind, "veth") != 0 ||
		    cont->peer != host->index) {
			r = pw_cni_fail(c, PW_CNI_E_LINK, "interface already exists",
					"%s already exists in %s and is not podwire-cni's veth",
					c->ifname, c->netns_path);
			goto out;
		}
	} else if (r == -ENODEV) {
		/* A host end without its peer is debris of an interrupted ADD. */
		if (pw_nl_link_get(&h, hname, host) == 0)
			pw_nl_link_del(&h, host->index);
		r = pw_nl_veth_add(&h, hname, c->ifname, c->netns, c->mtu);
		if (r < 0) {
			pw_cni_fail(c, PW_CNI_E_LINK, "cannot create the veth pair", "%s/%s: %s",
				    hname, c->ifname, strerror(-r));
			goto out;
		}
		*ret_created = true;
		r = pw_nl_link_get(&h, hname, host);
		if (r == 0)
			r = pw_nl_link_get(&ns, c->ifname, cont);
	}
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_LINK, "cannot find the interfaces", "%s/%s: %s", hname,
			    c->ifname, strerror(-r));
		goto out;
	}
	r = pw_nl_link_up(&h, host->index, br->index);
	if (r == 0)
		r = pw_cni_exist_ok(pw_nl_addr_add(&ns, cont->index, htonl(ip), c->ipam.plen));
	if (r == 0)
		r = pw_nl_link_up(&ns, cont->index, 0);
	for (unsigned i = 0; i < c->nroutes && r == 0; i++) {
		uint32_t gw = c->routes[i].gw ? c->routes[i].gw : htonl(c->ipam.gw);

		r = pw_cni_exist_ok(
			pw_nl_route_add(&ns, cont->index, c->routes[i].dst, c->routes[i].len, gw));
	}
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_LINK, "cannot configure the interfaces",
			    "%s (host %s, bridge %s): %s", c->ifname, hname, c->bridge,
			    strerror(-r));
		goto out;
	}
	/* Addresses as they are now: a bridge takes its MAC from its ports. */
	if (pw_nl_link_get(&h, c->bridge, br) < 0 || pw_nl_link_get(&h, hname, host) < 0 ||
	    pw_nl_link_get(&ns, c->ifname, cont) < 0)
		r = pw_cni_fail(c, PW_CNI_E_LINK, "interfaces vanished", "%s/%s", hname, c->ifname);
out:
	if (r < 0 && *ret_created && host->index > 0)
		pw_nl_link_del(&h, host->index);
	pw_nl_close(&ns);
	pw_nl_close(&h);
	return r < 0 ? -1 : 0;
}

static int pw_cni_ipam_lock(struct pw_cni *c)
{
	int lock = pw_ipam_lock(c->ipam.dir, PW_CNI_LOCK_MS);

	if (lock == -EAGAIN)
		return pw_cni_fail(c, PW_CNI_E_AGAIN, "IPAM is busy",
				   "%s/lock still held after %d ms", c->ipam.dir, PW_CNI_LOCK_MS);
	if (lock < 0)
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot open the IPAM data directory", "%s: %s",
				   c->ipam.dir, strerror(-lock));
	return lock;
}

static int pw_cni_add_standalone(struct pw_cni *c, cJSON **ret)
{
	struct pw_nl_link br, host = { 0 }, cont;
	struct pw_wire_pod pod;
	uint32_t ip = 0;
	bool fresh, created;
	int lock, r, idx;

	if (pw_cni_open_netns(c) < 0)
		return -1;
	lock = pw_cni_ipam_lock(c);
	if (lock < 0)
		return -1;
	r = pw_ipam_alloc(&c->ipam, c->id, c->ifname, &ip, &fresh);
	pw_ipam_unlock(lock);
	if (r == -ENOSPC) {
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
		return pw_cni_fail(c, PW_CNI_E_IPAM, "no free address",
				   "all addresses from %s to %s of network %s are allocated (%s)",
				   pw_cni_ntop(htonl(c->ipam.start), a),
				   pw_cni_ntop(htonl(c->ipam.end), b), c->name, c->ipam.dir);
	}
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot allocate an address", "%s: %s",
				   c->ipam.dir, strerror(-r));
	if (pw_cni_links(c, ip, &br, &host, &cont, &created) < 0) {
		if (fresh) {
			lock = pw_ipam_lock(c->ipam.dir, PW_CNI_LOCK_MS);
			if (lock >= 0)
				pw_ipam_release(c->ipam.dir, c->id, c->ifname);
			pw_ipam_unlock(lock);
		}
		return -1;
	}
	*ret = pw_cni_result(c, &br, &host, &cont, ip);
	if (pw_cni_result_pod(c, *ret, &pod, &idx) == 0)
		pw_cni_register(c, &pod);
	return 0;
}

static int pw_cni_del_standalone(struct pw_cni *c)
{
	struct pw_nl h = { 0 }, ns = { 0 };
	struct pw_nl_link l;
	char hname[IF_NAMESIZE];
	int lock, r;

	pw_cni_unregister(c);
	pw_cni_host_ifname(c, hname);
	/* Removing one end of a veth removes both. */
	r = pw_nl_open(&h, -1);
	if (r == 0 && pw_nl_link_get(&h, hname, &l) == 0 && strcmp(l.kind, "veth") == 0) {
		r = pw_nl_link_del(&h, l.index);
		if (r < 0 && r != -ENODEV)
			pw_warn("deleting %s: %s", hname, strerror(-r));
	}
	pw_nl_close(&h);
	/* The netns may be gone, which is fine; if not, our end may be left. */
	if (c->netns_path) {
		c->netns = open(c->netns_path, O_RDONLY | O_CLOEXEC);
		if (c->netns >= 0 && pw_nl_open(&ns, c->netns) == 0 &&
		    pw_nl_link_get(&ns, c->ifname, &l) == 0 && strcmp(l.kind, "veth") == 0)
			pw_nl_link_del(&ns, l.index);
		pw_nl_close(&ns);
	}
	lock = pw_cni_ipam_lock(c);
	if (lock < 0)
		return -1;
	r = pw_ipam_release(c->ipam.dir, c->id, c->ifname);
	pw_ipam_unlock(lock);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_IO, "cannot release the address", "%s: %s",
				   c->ipam.dir, strerror(-r));
	return 0;
}

/* ---- CHECK ---- */

/* The pod's interface and addresses in its netns, as @pod lists them. */
static int pw_cni_check_pod(struct pw_cni *c, const cJSON *prev, int idx,
			    const struct pw_wire_pod *pod)
{
	struct pw_nl ns = { 0 };
	struct pw_nl_link l;
	int r;

	r = pw_nl_open(&ns, c->netns);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_CHECK, "cannot open netlink", "%s", strerror(-r));
		goto out;
	}
	r = pw_nl_link_get(&ns, c->ifname, &l);
	if (r < 0) {
		pw_cni_fail(c, PW_CNI_E_CHECK, "interface missing", "%s in %s: %s", c->ifname,
			    c->netns_path, strerror(-r));
		goto out;
	}
	if (!(l.flags & IFF_UP)) {
		r = pw_cni_fail(c, PW_CNI_E_CHECK, "interface down", "%s in %s is down", c->ifname,
				c->netns_path);
		goto out;
	}
	const cJSON *ifs = cJSON_GetObjectItemCaseSensitive(prev, "interfaces");
	const cJSON *ifc = idx >= 0 ? cJSON_GetArrayItem(ifs, idx) : NULL;
	const cJSON *mac = cJSON_GetObjectItemCaseSensitive(ifc, "mac");
	char now[18];
	pw_cni_fmt_mac(&l, now);
	if (cJSON_IsString(mac) && l.has_mac && strcasecmp(mac->valuestring, now) != 0) {
		r = pw_cni_fail(c, PW_CNI_E_CHECK, "interface changed",
				"%s has MAC %s, prevResult says %.32s", c->ifname, now,
				mac->valuestring);
		goto out;
	}
	for (uint32_t i = 0; i < pod->count; i++) {
		const struct pw_wire_prefix *p = &pod->addr[i];
		char a[PW_ADDR_CIDR_STRLEN];

		r = pw_nl_addr_has(&ns, l.index, p->family, p->addr, p->len);
		if (r <= 0) {
			r = pw_cni_fail(c, PW_CNI_E_CHECK, "address missing", "%s on %s: %s",
					pw_addr_cidr_format(p, a), c->ifname,
					r < 0 ? strerror(-r) : "not configured");
			goto out;
		}
	}
	r = 0;
out:
	pw_nl_close(&ns);
	return r < 0 ? -1 : 0;
}

/* Standalone: our host end on our bridge, and the IPAM reservation. */
static int pw_cni_check_standalone(struct pw_cni *c, const struct pw_wire_pod *pod)
{
	struct pw_nl h = { 0 };
	struct pw_nl_link br, host;
	char hname[IF_NAMESIZE], a[INET_ADDRSTRLEN];
	uint32_t held;
	int r;

	pw_cni_host_ifname(c, hname);
	r = pw_nl_open(&h, -1);
	if (r == 0)
		r = pw_nl_link_get(&h, c->bridge, &br);
	if (r == 0)
		r = pw_nl_link_get(&h, hname, &host);
	pw_nl_close(&h);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_CHECK, "host interface missing", "%s or %s: %s",
				   c->bridge, hname, strerror(-r));
	if (host.master != br.index || !(host.flags & IFF_UP))
		return pw_cni_fail(c, PW_CNI_E_CHECK, "host interface changed",
				   "%s is not up on bridge %s", hname, c->bridge);
	r = pw_ipam_find(c->ipam.dir, c->id, c->ifname, &held);
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_CHECK, "IP reservation missing",
				   "no allocation for %s/%s in %s", c->id, c->ifname, c->ipam.dir);
	held = htonl(held);
	for (uint32_t i = 0; i < pod->count; i++)
		if (pod->addr[i].family == AF_INET && !memcmp(pod->addr[i].addr, &held, 4))
			return 0;
	return pw_cni_fail(c, PW_CNI_E_CHECK, "IP reservation changed",
			   "%s/%s holds %s, which prevResult does not list", c->id, c->ifname,
			   pw_cni_ntop(held, a));
}

/* The router, if there is one, must know the pod with these addresses. */
static int pw_cni_check_registered(struct pw_cni *c, const struct pw_wire_pod *pod)
{
	struct pw_wire_pod got;
	int r = pw_reg_find(c->sock, &pod->key, &got);

	if (r == -ENOENT)
		return pw_cni_fail(c, PW_CNI_E_ROUTER, "pod not registered with podwired",
				   "podwired at %s does not know %s/%s (restarted since ADD?)",
				   c->sock, c->id, c->ifname);
	if (r < 0) {
		pw_warn("cannot check the registration with podwired at %s: %s", c->sock,
			strerror(-r));
		return 0;
	}
	for (uint32_t i = 0; i < pod->count; i++) {
		bool found = false;

		for (uint32_t k = 0; k < got.count && k < PW_WIRE_POD_MAX_ADDRS; k++)
			found |= got.addr[k].family == pod->addr[i].family &&
				 !memcmp(got.addr[k].addr, pod->addr[i].addr,
					 pod->addr[i].family == AF_INET ? 4 : 16);
		if (!found)
			return pw_cni_fail(c, PW_CNI_E_ROUTER, "registration differs",
					   "podwired knows %s/%s with other addresses", c->id,
					   c->ifname);
	}
	return 0;
}

static int pw_cni_check(struct pw_cni *c)
{
	struct pw_wire_pod pod;
	int idx;

	if (!strcmp(c->version, "0.3.0") || !strcmp(c->version, "0.3.1"))
		return pw_cni_fail(c, PW_CNI_E_VERSION, "incompatible CNI version",
				   "CHECK needs cniVersion 0.4.0 or later, not %s", c->version);
	if (!c->prev)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "CHECK needs prevResult");
	if (pw_cni_open_netns(c) < 0 || pw_cni_result_pod(c, c->prev, &pod, &idx) < 0 ||
	    pw_cni_check_pod(c, c->prev, idx, &pod) < 0)
		return -1;
	if (c->standalone && pw_cni_check_standalone(c, &pod) < 0)
		return -1;
	return pw_cni_check_registered(c, &pod);
}

/* ---- commands ---- */

static int pw_cni_add_chained(struct pw_cni *c, cJSON **ret)
{
	struct pw_wire_pod pod;
	int idx;

	if (!c->prev)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "no \"ipam\" section, so podwire-cni runs chained and needs "
				   "prevResult: put it after the bridge plugin in a conflist");
	if (pw_cni_open_netns(c) < 0 || pw_cni_result_pod(c, c->prev, &pod, &idx) < 0)
		return -1;
	if (idx < 0)
		pw_warn("prevResult has no interface %s with a sandbox: registering the "
			"addresses without an interface index",
			c->ifname);
	pw_cni_register(c, &pod);
	*ret = cJSON_Duplicate(c->prev, true);
	pw_cni_result_format(c, *ret);
	return 0;
}

static int pw_cni_version_cmd(struct pw_cni *c, const char *input, cJSON **ret)
{
	cJSON *arr;

	/* Older runtimes send nothing: answer in our own version. */
	if (input[strspn(input, " \t\r\n")] != '\0' && pw_cni_conf(c, input) < 0 &&
	    c->code != PW_CNI_E_VERSION)
		return -1;
	c->code = 0; /* an unknown version is a question VERSION answers */
	*ret = cJSON_CreateObject();
	cJSON_AddStringToObject(*ret, "cniVersion", c->version ? c->version : PW_CNI_SPEC);
	arr = cJSON_AddArrayToObject(*ret, "supportedVersions");
	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_cni_versions); i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(pw_cni_versions[i]));
	return 0;
}

static int pw_cni_run(struct pw_cni *c, cJSON **ret)
{
	char *input = NULL;
	int r;

	if (pw_cni_env(c) < 0 || pw_cni_read_stdin(c, &input) < 0)
		return -1;
	if (c->cmd == PW_CNI_VERSION) {
		r = pw_cni_version_cmd(c, input, ret);
		free(input);
		return r;
	}
	r = pw_cni_conf(c, input);
	free(input);
	if (r < 0)
		return -1;
	switch (c->cmd) {
	case PW_CNI_ADD:
		return c->standalone ? pw_cni_add_standalone(c, ret) : pw_cni_add_chained(c, ret);
	case PW_CNI_DEL:
		if (c->standalone)
			return pw_cni_del_standalone(c);
		pw_cni_unregister(c);
		return 0;
	case PW_CNI_CHECK:
		return pw_cni_check(c);
	default:
		return -1;
	}
}

static int pw_cni_print(cJSON *o)
{
	char *s = cJSON_Print(o);
	int r = 0;

	if (!s || printf("%s\n", s) < 0 || fflush(stdout) != 0)
		r = -1;
	cJSON_free(s);
	return r;
}

static const char pw_cni_usage[] =
	"Usage: podwire-cni [--help | --version]\n"
	"\n"
	"A CNI plugin (container network interface, spec " PW_CNI_SPEC "; also 0.3.0,\n"
	"0.3.1 and 0.4.0). Container runtimes run it with CNI_COMMAND=ADD, DEL, CHECK\n"
	"or VERSION, CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME in the environment and\n"
	"the network configuration on stdin; it prints the result, or an error\n"
	"object with its code, on stdout, and logs on stderr.\n"
	"\n"
	"With an \"ipam\" section of type \"podwire\" it connects the container to a\n"
	"bridge itself (veth pair, addresses, routes, file-backed IPAM). Without one\n"
	"it runs chained after the bridge plugin and passes prevResult through.\n"
	"Either way it registers the pod with podwired (key \"podwireSocket\",\n"
	"default " PW_WIRE_DEFAULT_SOCKET ").\n"
	"\n"
	"Exit status: 0 success, 1 failure (the error object says why).\n"
	"See docs/CNI.md for the configuration keys.\n";

int main(int argc, char **argv)
{
	struct pw_cni c = { .netns = -1 };
	cJSON *out = NULL;
	int rc = 0;

	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			fputs(pw_cni_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[1], "--version")) {
			printf("podwire-cni (podwire) CNI spec %s\n", PW_CNI_SPEC);
			return 0;
		}
		fprintf(stderr,
			"podwire-cni: unexpected argument '%s'\nTry 'podwire-cni --help'.\n",
			argv[1]);
		return 2;
	}
	pw_log_ident = "podwire-cni";
	if (pw_cni_run(&c, &out) < 0 && !c.code)
		pw_cni_fail(&c, PW_CNI_E_IO, "internal error", "unexpected failure");
	if (c.code) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "cniVersion", c.version ? c.version : PW_CNI_SPEC);
		cJSON_AddNumberToObject(e, "code", c.code);
		cJSON_AddStringToObject(e, "msg", c.msg);
		cJSON_AddStringToObject(e, "details", c.details);
		pw_cni_print(e);
		cJSON_Delete(e);
		pw_err("%s: %s", c.msg, c.details);
		rc = 1;
	} else if (out && pw_cni_print(out) < 0) {
		pw_err("cannot write the result: %s", strerror(errno));
		rc = 1;
	}
	cJSON_Delete(out);
	cJSON_Delete(c.conf);
	pw_close(c.netns);
	return rc;
}
