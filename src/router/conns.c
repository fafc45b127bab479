// SPDX-License-Identifier: MIT
/*
 * The connection table: every connection the router set up, from CONNECT
 * until both ends are gone. Each holds its channel's memfd, for re-attach
 * after exec and for status; the channel's ends are the client's and, once
 * handed over, the listener's queue's. A connection is pending until its
 * side 1 attached (a server accepted it), which we learn from the channel.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <podwire/chan.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

/* What one pod (network namespace) holds: see pw_conn_charge(). */
struct pw_pod_acct {
	uint64_t cookie;
	unsigned pending;
	uint64_t memory;
	struct pw_pod_acct *next;
};

static struct pw_pod_acct *pw_pod_accts;

static struct {
	struct pw_conn *list;
	uint64_t next_id;
	uint64_t bytes_reaped; /* carried by connections already forgotten */
} pw_conns;

struct pw_conn *pw_conn_new(void)
{
	struct pw_conn *cn = calloc(1, sizeof(*cn));

	if (!cn)
		return NULL;
	cn->id = ++pw_conns.next_id;
	cn->state = PW_CONN_PENDING;
	cn->memfd = -1;
	return cn;
}

void pw_conn_insert(struct pw_conn *cn)
{
	cn->next = pw_conns.list;
	pw_conns.list = cn;
}

static struct pw_pod_acct *pw_pod_acct_find(uint64_t cookie)
{
	struct pw_pod_acct *a = pw_pod_accts;

	while (a && a->cookie != cookie)
		a = a->next;
	return a;
}

/*
 * The ring of one more channel of @cookie's, or 0 if none fits its memory
 * limit. Large rings make bulk transfers fast (CHANNEL.md, "Window"), but
 * each is charged at its full size, whatever its window: past half the
 * limit a pod gets rings of the starting window, which hold 15 times as
 * many connections in the same memory.
 */
static uint32_t pw_pod_acct_ring(uint64_t cookie)
{
	const struct pw_pod_acct *a = pw_pod_acct_find(cookie);
	uint64_t used = a ? a->memory : 0, max = pw_router_cfg.pod_max_memory;
	uint32_t ring = pw_router_cfg.ring_size;
	uint32_t small = ring < PW_RING_WINDOW_START ? ring : PW_RING_WINDOW_START;

	if (used + pw_chan_mem_size(ring) <= max / 2)
		return ring;
	return used + pw_chan_mem_size(small) <= max ? small : 0;
}

static void pw_conns_reap_closed(bool diag);

int pw_conn_charge(struct pw_conn *cn, uint64_t cookie)
{
	static uint64_t reaped_at;
	struct pw_pod_acct *a = pw_pod_acct_find(cookie);

	if (a && a->pending >= pw_router_cfg.pod_max_pending) {
		pw_conns_refresh(); /* servers may have taken some since */
		if (a->pending >= pw_router_cfg.pod_max_pending) {
			pw_router_stats.limit_pending++;
			return -EAGAIN;
		}
	}
	uint32_t ring = pw_pod_acct_ring(cookie);
	if (ring != pw_router_cfg.ring_size) {
		/* Closed connections are only reaped once a second: a pod that
		 * opens and closes many would find its memory still charged.
		 * Forget those both ends closed (at most every 10 ms, or now
		 * before refusing), and then those whose processes died. */
		uint64_t now = pw_now_ns();
		bool diag = now - reaped_at >= 10000000u;

		if (diag || !ring) {
			if (diag)
				reaped_at = now;
			pw_conns_reap_closed(diag);
			ring = pw_pod_acct_ring(cookie);
			a = pw_pod_acct_find(cookie);
		}
		if (!ring) {
			pw_router_stats.limit_memory++;
			return -ENOBUFS;
		}
	}
	if (!a) {
		a = calloc(1, sizeof(*a));
		if (!a)
			return -ENOMEM;
		a->cookie = cookie;
		a->next = pw_pod_accts;
		pw_pod_accts = a;
	}
	a->pending++;
	a->memory += pw_chan_mem_size(ring);
	cn->ring_size = ring;
	cn->acct = a;
	cn->acct_pending = true;
	return 0;
}

/* Give back what @cn was charged; a pod that holds nothing is forgotten. */
static void pw_conn_uncharge(struct pw_conn *cn)
{
	struct pw_pod_acct *a = cn->acct;

	if (!a)
		return;
	if (cn->acct_pending)
		a->pending--;
	a->memory -= pw_chan_mem_size(cn->ring_size);
	cn->acct = NULL;
	cn->acct_pending = false;
	if (a->pending || a->memory)
		return;
	for (struct pw_pod_acct **pp = &pw_pod_accts; *pp; pp = &(*pp)->next)
		if (*pp == a) {
			*pp = a->next;
			break;
		}
	free(a);
}

void pw_conn_unpend(struct pw_conn *cn)
{
	if (cn->state == PW_CONN_PENDING && cn->listener)
		pw_listener_unqueue(cn->listener);
	if (cn->acct_pending) {
		cn->acct->pending--;
		cn->acct_pending = false;
	}
	cn->state = PW_CONN_OPEN;
}

void pw_conns_refresh(void)
{
	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next)
		if (cn->state == PW_CONN_PENDING && !cn->remote && pw_conn_attached(cn))
			pw_conn_unpend(cn);
}

void pw_conns_listener_gone(uint64_t serial)
{
	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next) {
		if (cn->state != PW_CONN_PENDING || cn->listener != serial)
			continue;
		/* Speak for the accepting side that never came: the client gets
		 * ECONNRESET, as from a listener that closed with the connection
		 * in its queue. (-EBUSY: a server took it after all.) */
		pw_conn_chan_reset(cn);
		pw_conn_unpend(cn);
	}
}

void pw_conn_free(struct pw_conn *cn)
{
	if (cn->state == PW_CONN_PENDING)
		pw_conn_unpend(cn); /* out of its listener's count */
	pw_conn_uncharge(cn);
	cn->memfd = pw_close(cn->memfd);
	free(cn);
}

void pw_conn_remove(struct pw_conn *cn)
{
	for (struct pw_conn **pp = &pw_conns.list; *pp; pp = &(*pp)->next)
		if (*pp == cn) {
			*pp = cn->next;
			break;
		}
	pw_conn_free(cn);
}

struct pw_conn *pw_conn_by_id(uint64_t id)
{
	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next)
		if (cn->id == id)
			return cn;
	return NULL;
}

struct pw_conn *pw_conn_by_sock(uint64_t id, int fd, unsigned *ret_side)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return NULL;
	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next) {
		if ((id && cn->id != id) || cn->memfd < 0 || st.st_dev != cn->sock_dev)
			continue;
		for (unsigned side = 0; side < 2; side++)
			if (cn->sock_ino[side] == st.st_ino) {
				*ret_side = side;
				return cn;
			}
	}
	return NULL;
}

struct pw_wire_conn pw_conn_body(const struct pw_conn *cn, unsigned side)
{
	struct pw_wire_conn body = { .id = cn->id, .side = side };
	struct sockaddr_in a;

	pw_addr_from_wire(&cn->addr[side], &a, NULL);
	pw_addr_to_wire(&a, cn->fam[side], &body.local);
	/* A client of a Service sees the ClusterIP, as through kube-proxy. */
	pw_addr_from_wire(side == 0 && cn->has_vip ? &cn->vip : &cn->addr[!side], &a, NULL);
	pw_addr_to_wire(&a, cn->fam[side], &body.peer);
	return body;
}

static bool pw_pid_alive(pid_t pid)
{
	return pid <= 0 || kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * Which channel sockets are gone, from one look at every Unix socket of our
 * namespace (the channels' socketpairs are made here). Without the kernel's
 * socket diagnostics, a side whose process is gone counts as gone.
 */
static void pw_conns_check_sockets(void)
{
	uint32_t *inodes = NULL;
	size_t n = 0;
	bool any = false;

	for (struct pw_conn *cn = pw_conns.list; cn && !any; cn = cn->next)
		any = cn->state != PW_CONN_PENDING && !cn->remote;
	if (!any)
		return;
	int r = pw_diag_unix_inodes(&inodes, &n);
	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next) {
		if (cn->state == PW_CONN_PENDING || cn->remote)
			continue;
		for (unsigned side = 0; side < 2; side++)
			cn->gone[side] =
				r == 0 ? !pw_diag_has(inodes, n, (uint32_t)cn->sock_ino[side])
				       : !pw_pid_alive(cn->pid[side]);
	}
	free(inodes);
}

/* Forget the connections whose both ends are gone; with @diag, first ask
 * the kernel which channel sockets still exist (a process that died). */
static void pw_conns_reap_closed(bool diag)
{
	pw_conns_refresh();
	if (diag)
		pw_conns_check_sockets();
	for (struct pw_conn **pp = &pw_conns.list; *pp;) {
		struct pw_conn *cn = *pp;
		uint64_t b[2];
		bool gone = cn->state != PW_CONN_PENDING &&
			    pw_conn_state(cn, b, NULL) == PW_CONN_CLOSED;

		if (gone) {
			pw_dbg("conn %" PRIu64 ": reaped", cn->id);
			pw_conns.bytes_reaped += b[0] + b[1];
			*pp = cn->next;
			pw_conn_free(cn);
		} else {
			pp = &cn->next;
		}
	}
}

void pw_conns_reap(void)
{
	pw_conns_reap_closed(true);
}

void pw_conns_status(struct pw_wire_status_entry *ents, uint32_t max, struct pw_wire_status *ret)
{
	struct pw_wire_status st = { 0 };

	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next) {
		st.total++;
		if (st.count == max)
			continue;
		struct pw_wire_status_entry *e = &ents[st.count++];
		memset(e, 0, sizeof(*e));
		e->id = cn->id;
		e->addr[0] = cn->addr[0];
		e->addr[1] = cn->addr[1];
		e->pid[0] = cn->pid[0];
		e->pid[1] = cn->pid[1];
		e->state = pw_conn_state(cn, e->bytes, e->window_log2);
	}
	*ret = st;
}

void pw_conns_totals(unsigned *ret_open, unsigned *ret_pending, uint64_t *ret_bytes)
{
	unsigned open = 0, pending = 0;
	uint64_t bytes = pw_conns.bytes_reaped;

	for (struct pw_conn *cn = pw_conns.list; cn; cn = cn->next) {
		uint64_t b[2];
		uint32_t state = pw_conn_state(cn, b, NULL);

		if (cn->state == PW_CONN_PENDING)
			pending++;
		else if (state != PW_CONN_CLOSED && state != PW_CONN_PARKED)
			open++;
		bytes += b[0] + b[1];
	}
	*ret_open = open;
	*ret_pending = pending;
	*ret_bytes = bytes;
}

void pw_conns_teardown(void)
{
	while (pw_conns.list) {
		struct pw_conn *cn = pw_conns.list;
		pw_conns.list = cn->next;
		pw_conn_free(cn);
	}
}
