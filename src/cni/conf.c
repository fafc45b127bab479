// SPDX-License-Identifier: MIT
/* podwire-cni: the runtime's input: versions, the environment, stdin and the
 * network configuration. */
#include "cni.h"

/* ---- versions ---- */

static bool pw_cni_version_ok(const char *v)
{
	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_cni_versions); i++)
		if (!strcmp(v, pw_cni_versions[i]))
			return true;
	return false;
}

/* Results before 1.0.0 carry "version" in each ips entry. */
bool pw_cni_pre_1_0(const char *v)
{
	return strcmp(v, "1.0.0") != 0;
}

/* ---- input ---- */

int pw_cni_read_stdin(struct pw_cni *c, char **ret)
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
bool pw_cni_id_ok(const char *s)
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

int pw_cni_env(struct pw_cni *c)
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
	int r = pw_json_want_str(pw_json_get(o, key), false, ret, NULL, NULL, 0);

	if (r == -ENOENT && !required) {
		*ret = NULL;
		return 0;
	}
	if (r < 0)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "%s%s must be a non-empty string", where, key);
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
	const cJSON *routes = pw_json_get(ipam, "routes"), *r;
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

int pw_cni_conf(struct pw_cni *c, const char *input)
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
	v = pw_json_get(c->conf, "cniVersion");
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
	v = pw_json_get(c->conf, "prevResult");
	if (v && !cJSON_IsObject(v))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "prevResult must be an object");
	c->prev = v;
	v = pw_json_get(c->conf, "dns");
	if (v && !cJSON_IsObject(v))
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "dns must be an object");
	c->dns = v;
	long long mtu = 0;
	int r = pw_json_want_int(pw_json_get(c->conf, "mtu"), 68, 65535, &mtu, NULL, NULL, 0);
	if (r < 0 && r != -ENOENT)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "mtu must be an integer from 68 to 65535");
	c->mtu = (unsigned)mtu;

	v = pw_json_get(c->conf, "memif");
	if (v) {
		if (pw_json_get(c->conf, "ipam"))
			return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
					   "a \"memif\" network has no \"ipam\": its interface "
					   "carries frames, not addresses");
		return pw_cni_conf_memif(c, v);
	}
	v = pw_json_get(c->conf, "ipam");
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
