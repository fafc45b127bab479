// SPDX-License-Identifier: MIT
/*
 * The pod table. The CNI plugin registers each pod attachment (container id,
 * interface) with the pod's network namespace, passed as an fd, and its
 * addresses. Nothing is taken on trust: only uid 0 in the router's own
 * network namespace may register, the fd must be a network namespace, and
 * every address must be configured on that interface inside it. A later registration of an address
 * moves it: the attachment that held it before is forgotten (its DEL was lost).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

#define PW_PODS_MAX 65536u

struct pw_pod_reg {
	struct pw_wire_pod w;
	int netns;
	uint64_t ino;
	int64_t since;
	struct pw_pod_reg *next;
};

static struct pw_pod_reg *pw_pods;
static unsigned pw_npods;

static void pw_pod_reg_free(struct pw_pod_reg *p)
{
	if (!p)
		return;
	pw_close(p->netns);
	free(p);
}

static size_t pw_pod_addr_len(const struct pw_wire_prefix *a)
{
	return a->family == AF_INET ? 4 : 16;
}

static bool pw_pod_addr_eq(const struct pw_wire_prefix *a, const struct pw_wire_prefix *b)
{
	return a->family == b->family && !memcmp(a->addr, b->addr, pw_pod_addr_len(a));
}

/* Is @a configured on interface @ifname in the list @ifa? */
static bool pw_pod_addr_present(const struct ifaddrs *ifa, const char *ifname,
				const struct pw_wire_prefix *a)
{
	for (; ifa; ifa = ifa->ifa_next) {
		const void *p;

		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != a->family ||
		    strcmp(ifa->ifa_name, ifname) != 0)
			continue;
		if (a->family == AF_INET)
			p = &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
		else
			p = &((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
		if (!memcmp(p, a->addr, pw_pod_addr_len(a)))
			return true;
	}
	return false;
}

/*
 * Check @w against the namespace @netns: its fd type, then each address on
 * the interface, read inside the namespace. Returns 0, -EINVAL (not a netns,
 * bad family or length) or -EADDRNOTAVAIL (an address is not there).
 */
static int pw_pod_verify(int netns, const struct pw_wire_pod *w)
{
	struct ifaddrs *ifa = NULL;
	int r;

	if (!w->key.id[0] || !w->key.ifname[0] || w->flags)
		return -EINVAL;
	if (ioctl(netns, NS_GET_NSTYPE) != CLONE_NEWNET)
		return -EINVAL;
	for (uint32_t i = 0; i < w->count; i++) {
		const struct pw_wire_prefix *a = &w->addr[i];

		if ((a->family != AF_INET || a->len > 32) &&
		    (a->family != AF_INET6 || a->len > 128))
			return -EINVAL;
	}
	r = pw_netns_enter(netns);
	if (r < 0)
		return r;
	r = getifaddrs(&ifa) < 0 ? -errno : 0;
	pw_netns_leave();
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < w->count && r == 0; i++)
		if (!pw_pod_addr_present(ifa, w->key.ifname, &w->addr[i]))
			r = -EADDRNOTAVAIL;
	freeifaddrs(ifa);
	return r;
}

static bool pw_pod_key_eq(const struct pw_wire_pod_key *a, const struct pw_wire_pod_key *b)
{
	return !strcmp(a->id, b->id) && !strcmp(a->ifname, b->ifname);
}

/* Unlink and free every pod for which @match(pod, arg) holds; returns how many. */
static unsigned pw_pods_remove(bool (*match)(const struct pw_pod_reg *, const void *),
			       const void *arg)
{
	unsigned n = 0;

	for (struct pw_pod_reg **pp = &pw_pods; *pp;) {
		struct pw_pod_reg *p = *pp;

		if (match(p, arg)) {
			*pp = p->next;
			pw_pod_reg_free(p);
			pw_npods--;
			n++;
		} else {
			pp = &p->next;
		}
	}
	return n;
}

static bool pw_pod_reg_match_key(const struct pw_pod_reg *p, const void *key)
{
	return pw_pod_key_eq(&p->w.key, key);
}

/* Does @p hold any address of @w (another attachment)? */
static bool pw_pod_reg_match_addrs(const struct pw_pod_reg *p, const void *arg)
{
	const struct pw_wire_pod *w = arg;

	for (uint32_t i = 0; i < p->w.count; i++)
		for (uint32_t k = 0; k < w->count; k++)
			if (pw_pod_addr_eq(&p->w.addr[i], &w->addr[k]))
				return true;
	return false;
}

static int pw_pods_add(const struct pw_wire_pod *w, int fd)
{
	struct pw_pod_reg *p;
	struct stat st;
	char buf[PW_ADDR_CIDR_STRLEN];
	int r;

	r = pw_pod_verify(fd, w);
	if (r < 0)
		return r;
	/* Registering again replaces: the pod may have a new netns or addresses. */
	pw_pods_remove(pw_pod_reg_match_key, &w->key);
	unsigned stale = pw_pods_remove(pw_pod_reg_match_addrs, w);
	if (stale)
		pw_info("pod %.12s/%s takes over addresses from %u stale registration(s)",
			w->key.id, w->key.ifname, stale);
	if (pw_npods >= PW_PODS_MAX)
		return -ENOSPC;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->netns = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (p->netns < 0) {
		r = -errno;
		free(p);
		return r;
	}
	p->w = *w;
	p->ino = fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
	p->since = (int64_t)time(NULL);
	p->next = pw_pods;
	pw_pods = p;
	pw_npods++;
	pw_info("pod %.12s/%s registered (netns %" PRIu64 ", %u address(es)%s%s)", w->key.id,
		w->key.ifname, p->ino, w->count, w->count ? ", first " : "",
		w->count ? pw_addr_cidr_format(&w->addr[0], buf) : "");
	return 0;
}

static int pw_pods_list(int sock, uint32_t seq)
{
	static struct pw_wire_pod_entry ents[PW_WIRE_PODS_PAGE];
	struct pw_wire_pods h = { 0 };

	for (const struct pw_pod_reg *p = pw_pods; p; p = p->next) {
		h.total++;
		if (h.count == PW_WIRE_PODS_PAGE)
			continue;
		struct pw_wire_pod_entry *e = &ents[h.count++];
		memset(e, 0, sizeof(*e));
		e->pod = p->w;
		e->netns_ino = p->ino;
		e->since = p->since;
	}
	return pw_msg_send(sock, PW_MSG_PODS_OK, seq, &h, sizeof(h), ents,
			   h.count * sizeof(ents[0]), NULL, 0);
}

/* Is @pid in the same network namespace as we are? */
static bool pw_pods_host_peer(pid_t pid)
{
	char path[64];
	struct stat a, b;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	return pid > 0 && stat(path, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

int pw_request_pods(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	bool allowed = m->type != PW_MSG_PODS && c->uid == 0 && pw_pods_host_peer(c->pid);
	int r;

	switch (m->type) {
	case PW_MSG_PODS:
		return pw_pods_list(c->fd, m->seq);
	case PW_MSG_POD_ADD:
		r = !allowed ? -EPERM : pw_pods_add(&m->u.pod, fds[0]);
		if (r < 0)
			pw_warn("pod %.12s/%s: registration by pid %d refused: %s", m->u.pod.key.id,
				m->u.pod.key.ifname, (int)c->pid, strerror(-r));
		break;
	case PW_MSG_POD_DEL:
		if (!allowed) {
			r = -EPERM;
			break;
		}
		r = pw_pods_remove(pw_pod_reg_match_key, &m->u.pod_key) ? 0 : -ENOENT;
		if (r == 0)
			pw_info("pod %.12s/%s unregistered", m->u.pod_key.id, m->u.pod_key.ifname);
		break;
	default:
		r = -EPROTO;
	}
	return pw_client_reply(c, m->seq, r);
}
