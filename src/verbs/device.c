// SPDX-License-Identifier: MIT
/*
 * The device: podwire0, one per pod, whose identity the router gives
 * (PW_MSG_VERBS_DEV); its context, the queries, protection domains,
 * completion channels and async events. A real device's objects go to the
 * real libibverbs (forward.c).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "pwverbs.h"

#define PW_VERBS_CALL_MS 2000 /* the router answers at once, or is not there */
#define PW_VERBS_MAX_PD	 4096
#define PW_VERBS_PKEY	 0xffffu /* the default full-member P_Key, the only one */
/* ibv_port_attr's active_width and active_speed: 4X at QDR (10 Gbit/s a lane),
 * nominal: the data path runs at memory or TCP speed. */
#define PW_WIDTH_4X    2
#define PW_SPEED_QDR   4
#define PW_PHYS_LINKUP 5

/* libibverbs' IBVERBS_PRIVATE ABI: enum ibv_gid_type_sysfs (driver.h). */
enum { PW_GID_TYPE_SYSFS_IB_ROCE_V1 = 0, PW_GID_TYPE_SYSFS_ROCE_V2 = 1 };

/* The exported ibv_query_port() fills the port attributes of rdma-core 13
 * and before (struct _compat_ibv_port_attr, verbs.c): the fields up to flags. */
struct pw_compat_port_attr {
	enum ibv_port_state state;
	enum ibv_mtu max_mtu, active_mtu;
	int gid_tbl_len;
	uint32_t port_cap_flags, max_msg_sz, bad_pkey_cntr, qkey_viol_cntr;
	uint16_t pkey_tbl_len, lid, sm_lid;
	uint8_t lmc, max_vl_num, sm_sl, subnet_timeout, init_type_reply, active_width, active_speed,
		phys_state, link_layer, flags;
};
_Static_assert(offsetof(struct pw_compat_port_attr, flags) == offsetof(struct ibv_port_attr, flags),
	       "the compat port attributes are a prefix of today's");

static pthread_mutex_t pw_dev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ibv_device pw_dev;
static struct pw_wire_verbs_dev pw_dev_id;
static uint32_t pw_dev_ifindex;
static bool pw_dev_known;
static _Atomic unsigned pw_npds;

bool pw_verbs_dev_ours(const struct ibv_device *dev)
{
	return dev == &pw_dev;
}

bool pw_verbs_ctx_ours(const struct ibv_context *ctx)
{
	return ctx && ctx->device == &pw_dev;
}

/* The interface holding the pod's address: the GID's netdev. */
static uint32_t pw_verbs_ifindex(const uint8_t addr[4])
{
	struct ifaddrs *ifa;
	uint32_t r = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (const struct ifaddrs *i = ifa; i && !r; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !memcmp(&((const struct sockaddr_in *)i->ifa_addr)->sin_addr, addr, 4))
			r = if_nametoindex(i->ifa_name);
	freeifaddrs(ifa);
	return r;
}

/* Ask the router who this pod is: 0, or -errno (-ENODEV: podwire is off for
 * this process; the router's ERR; -EPROTO: a reply that makes no sense). */
static int pw_verbs_identity_fetch(struct pw_wire_verbs_dev *ret)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	const char *v = getenv("PODWIRE_DISABLE");
	const char *path = getenv("PODWIRE_SOCKET");
	static uint8_t buf[PW_WIRE_MAX]; /* (under pw_dev_lock) */
	struct pw_msg m;
	int s, r;

	if (v && *v && strcmp(v, "0") != 0)
		return -ENODEV;
	/* The proof of which pod we are: a socket made in our netns. */
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = pw_proto_call(path && *path ? path : PW_WIRE_DEFAULT_SOCKET, PW_MSG_VERBS_DEV, NULL, 0,
			  s, PW_VERBS_CALL_MS, &m, buf);
	close(s);
	if (r < 0)
		return r;
	if (m.type == PW_MSG_ERR)
		return m.u.err.err > 0 ? -(int)m.u.err.err : -EPROTO;
	if (m.type != PW_MSG_VERBS_DEV_OK || memcmp(m.u.verbs_dev.gid, v4mapped, 12) != 0)
		return -EPROTO;
	*ret = m.u.verbs_dev;
	return 0;
}

/* Make podwire0 known: 0, or -errno when this process has no such device. */
static int pw_verbs_device_get(void)
{
	struct pw_wire_verbs_dev id;
	int r = 0;

	pthread_mutex_lock(&pw_dev_lock);
	if (pw_dev_known)
		goto out;
	r = pw_verbs_identity_fetch(&id);
	if (r < 0)
		goto out;
	pw_dev_id = id;
	pw_dev_ifindex = pw_verbs_ifindex(&id.gid[12]);
	pw_dev.node_type = IBV_NODE_CA;
	pw_dev.transport_type = IBV_TRANSPORT_IB;
	snprintf(pw_dev.name, sizeof(pw_dev.name), "%s", PW_VERBS_DEV_NAME);
	snprintf(pw_dev.dev_name, sizeof(pw_dev.dev_name), "uverbs_%s", PW_VERBS_DEV_NAME);
	/* No sysfs behind it: tools that read there find nothing. */
	pw_dev.dev_path[0] = pw_dev.ibdev_path[0] = '\0';
	pw_dev_known = true;
out:
	pthread_mutex_unlock(&pw_dev_lock);
	return r;
}

/* ---- the device list ---- */

struct pw_devlist {
	struct ibv_device **real; /* the real library's list, freed with ours */
	struct ibv_device *devs[];
};

PW_EXPORT struct ibv_device **ibv_get_device_list(int *num_devices)
{
	static _Atomic(void *) slot;
	struct ibv_device **(*real_get)(int *) =
		pw_verbs_real(&slot, "ibv_get_device_list", "IBVERBS_1.1");
	int nreal = 0, err = ENOSYS, n = 0;
	struct ibv_device **real = NULL;

	if (real_get) {
		real = real_get(&nreal);
		err = errno;
	}
	bool ours = pw_verbs_device_get() == 0;
	if (!real) {
		nreal = 0;
		if (!ours) {
			errno = err;
			return NULL;
		}
	}
	struct pw_devlist *l =
		calloc(1, sizeof(*l) + ((size_t)nreal + 2) * sizeof(struct ibv_device *));
	if (!l) {
		/* (The real list goes back: it holds references.) */
		if (real)
			ibv_free_device_list(real);
		errno = ENOMEM;
		return NULL;
	}
	l->real = real;
	/* A real device first: an application that takes the first device
	 * keeps the NIC the node has; podwire0 is there by name. */
	for (int i = 0; i < nreal; i++)
		l->devs[n++] = real[i];
	if (ours)
		l->devs[n++] = &pw_dev;
	l->devs[n] = NULL;
	if (num_devices)
		*num_devices = n;
	return l->devs;
}

PW_EXPORT void ibv_free_device_list(struct ibv_device **list)
{
	static _Atomic(void *) slot;

	if (!list)
		return;
	struct pw_devlist *l =
		(struct pw_devlist *)((char *)list - offsetof(struct pw_devlist, devs));
	if (l->real) {
		void (*real_free)(struct ibv_device **) =
			pw_verbs_real(&slot, "ibv_free_device_list", "IBVERBS_1.1");
		if (real_free)
			real_free(l->real);
	}
	free(l);
}

PW_EXPORT const char *ibv_get_device_name(struct ibv_device *device)
{
	if (pw_verbs_dev_ours(device))
		return pw_dev.name;
	PW_FORWARD("IBVERBS_1.1", ibv_get_device_name, NULL, device);
}

PW_EXPORT __be64 ibv_get_device_guid(struct ibv_device *device)
{
	if (pw_verbs_dev_ours(device))
		return pw_dev_id.guid;
	PW_FORWARD("IBVERBS_1.1", ibv_get_device_guid, 0, device);
}

PW_EXPORT int ibv_get_device_index(struct ibv_device *device)
{
	if (pw_verbs_dev_ours(device))
		return -1; /* no kernel device index: it has none */
	PW_FORWARD("IBVERBS_1.9", ibv_get_device_index, -1, device);
}

/* ---- the context ---- */

static int pw_query_port_ex(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr,
			    size_t len);
static int pw_query_device_ex(struct ibv_context *ctx, const struct ibv_query_device_ex_input *in,
			      struct ibv_device_attr_ex *attr, size_t len);

PW_EXPORT struct ibv_context *ibv_open_device(struct ibv_device *device)
{
	if (!pw_verbs_dev_ours(device))
		PW_FORWARD("IBVERBS_1.1", ibv_open_device, NULL, device);

	struct pw_vctx *c = NULL;
	int p[2], r;

	/* The process's arena and router connection, which the context's
	 * objects need: once, at the first open. */
	r = pw_vproc_open();
	if (r < 0) {
		errno = -r;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		pw_vproc_close();
		errno = ENOMEM;
		return NULL;
	}
	/* Async events: records in a pipe, so that the application can poll,
	 * block or set O_NONBLOCK on async_fd as on a real device. */
	if (pipe2(p, O_CLOEXEC) < 0) {
		free(c);
		pw_vproc_close();
		return NULL;
	}
	fcntl(p[1], F_SETFL, O_NONBLOCK); /* (the write end is ours alone) */
	struct ibv_context *ctx = &c->vc.context;
	c->async_wr = p[1];
	c->vc.sz = sizeof(struct verbs_context);
	c->vc.query_port = pw_query_port_ex;
	c->vc.query_device_ex = pw_query_device_ex;
	ctx->ops.poll_cq = pw_poll_cq;
	ctx->ops.req_notify_cq = pw_req_notify_cq;
	ctx->ops.post_send = pw_post_send;
	ctx->ops.post_recv = pw_post_recv;
	ctx->ops.post_srq_recv = pw_post_srq_recv;
	ctx->device = device;
	ctx->cmd_fd = -1;
	ctx->async_fd = p[0];
	ctx->num_comp_vectors = 1;
	pthread_mutex_init(&ctx->mutex, NULL);
	ctx->abi_compat = __VERBS_ABI_IS_EXTENDED;
	return ctx;
}

PW_EXPORT int ibv_close_device(struct ibv_context *ctx)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_close_device, ENOSYS, ctx);

	struct pw_vctx *c = (struct pw_vctx *)((char *)ctx - offsetof(struct pw_vctx, vc.context));
	close(ctx->async_fd);
	close(c->async_wr);
	pthread_mutex_destroy(&ctx->mutex);
	free(c);
	pw_vproc_close();
	return 0;
}

/* ---- queries ---- */

static void pw_device_attr(struct ibv_device_attr *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->fw_ver, sizeof(a->fw_ver), "podwire %u", PW_WIRE_VERSION);
	a->node_guid = a->sys_image_guid = pw_dev_id.guid;
	a->max_mr_size = PW_VARENA_META;
	a->page_size_cap = (uint64_t)sysconf(_SC_PAGESIZE);
	/* An unknown vendor and part: applications take their generic paths. */
	a->vendor_id = 0;
	a->vendor_part_id = 0;
	/* What the device offers today, and nothing more (docs/RDMA.md). */
	a->max_pd = PW_VERBS_MAX_PD;
	a->max_mr = PW_VKEYS;
	a->max_qp = PW_VQPS;
	a->max_qp_wr = PW_VERBS_MAX_SEND_WR;
	a->max_sge = PW_VSGE_MAX; /* (sends take up to PW_VERBS_MAX_SEND_SGE) */
	a->max_sge_rd = PW_VERBS_MAX_SEND_SGE;
	a->max_cq = 4096;
	a->max_cqe = PW_VERBS_MAX_CQE;
	a->max_qp_rd_atom = a->max_qp_init_rd_atom = PW_VERBS_MAX_QP_RD_ATOM;
	a->max_res_rd_atom = PW_VQPS * PW_VERBS_MAX_QP_RD_ATOM;
	/* Atomics on shared memory: atomic with the target's CPU as well. */
	a->atomic_cap = IBV_ATOMIC_GLOB;
	a->max_srq = PW_VSRQS;
	a->max_srq_wr = PW_VRQ_DEPTH;
	a->max_srq_sge = PW_VSGE_MAX;
	/* (No IBV_DEVICE_SRQ_RESIZE: an SRQ keeps the size it was made with.) */
	a->device_cap_flags = IBV_DEVICE_RC_RNR_NAK_GEN;
	a->max_pkeys = 1;
	a->phys_port_cnt = 1;
}

static int pw_query_device_ex(struct ibv_context *ctx, const struct ibv_query_device_ex_input *in,
			      struct ibv_device_attr_ex *attr, size_t len)
{
	struct ibv_device_attr_ex a;

	if ((in && in->comp_mask) || len < sizeof(a.orig_attr))
		return EINVAL;
	memset(&a, 0, sizeof(a));
	pw_device_attr(&a.orig_attr);
	a.phys_port_cnt_ex = 1;
	memcpy(attr, &a, len < sizeof(a) ? len : sizeof(a));
	if (len > sizeof(a)) /* newer headers than ours: their fields are 0 */
		memset((char *)attr + sizeof(a), 0, len - sizeof(a));
	return 0;
}

PW_EXPORT int ibv_query_device(struct ibv_context *ctx, struct ibv_device_attr *attr)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_query_device, ENOSYS, ctx, attr);
	pw_device_attr(attr);
	return 0;
}

static int pw_query_port_ex(struct ibv_context *ctx, uint8_t port, struct ibv_port_attr *attr,
			    size_t len)
{
	struct ibv_port_attr a = {
		.state = IBV_PORT_ACTIVE,
		.max_mtu = IBV_MTU_4096,
		.active_mtu = IBV_MTU_4096,
		.gid_tbl_len = 1,
		.port_cap_flags = IBV_PORT_IP_BASED_GIDS,
		.max_msg_sz = 1u << 31, /* RC's limit */
		.pkey_tbl_len = 1,
		.lid = be16toh(pw_dev_id.lid),
		.max_vl_num = 1,
		.active_width = PW_WIDTH_4X,
		.active_speed = PW_SPEED_QDR,
		.phys_state = PW_PHYS_LINKUP,
		.link_layer = IBV_LINK_LAYER_ETHERNET,
	};

	if (port != 1)
		return EINVAL;
	memcpy(attr, &a, len < sizeof(a) ? len : sizeof(a));
	if (len > sizeof(a))
		memset((char *)attr + sizeof(a), 0, len - sizeof(a));
	return 0;
}

PW_EXPORT int ibv_query_port(struct ibv_context *ctx, uint8_t port,
			     struct _compat_ibv_port_attr *attr)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_query_port, ENOSYS, ctx, port, attr);
	return pw_query_port_ex(ctx, port, (struct ibv_port_attr *)attr,
				sizeof(struct pw_compat_port_attr));
}

/* Port 1 and index 0 are the only GID and P_Key there is: else EINVAL, as
 * libibverbs says when its table has no such entry. */
static bool pw_slot_bad(uint8_t port, long index)
{
	if (port == 1 && index == 0)
		return false;
	errno = EINVAL;
	return true;
}

static void pw_gid_entry(struct ibv_gid_entry *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->gid.raw, pw_dev_id.gid, sizeof(e->gid.raw));
	e->gid_index = 0;
	e->port_num = 1;
	e->gid_type = IBV_GID_TYPE_ROCE_V2;
	e->ndev_ifindex = pw_dev_ifindex;
}

PW_EXPORT int ibv_query_gid(struct ibv_context *ctx, uint8_t port, int index, union ibv_gid *gid)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_query_gid, -1, ctx, port, index, gid);
	if (pw_slot_bad(port, index))
		return -1;
	memcpy(gid->raw, pw_dev_id.gid, sizeof(gid->raw));
	return 0;
}

PW_EXPORT int _ibv_query_gid_ex(struct ibv_context *ctx, uint32_t port, uint32_t index,
				struct ibv_gid_entry *entry, uint32_t flags, size_t entry_size)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.11", _ibv_query_gid_ex, ENOSYS, ctx, port, index, entry,
			   flags, entry_size);
	if (flags || entry_size < sizeof(*entry) || port != 1 || index != 0)
		return EINVAL;
	pw_gid_entry(entry);
	return 0;
}

PW_EXPORT ssize_t _ibv_query_gid_table(struct ibv_context *ctx, struct ibv_gid_entry *entries,
				       size_t max_entries, uint32_t flags, size_t entry_size)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.11", _ibv_query_gid_table, -ENOSYS, ctx, entries, max_entries,
			   flags, entry_size);
	if (flags || entry_size < sizeof(*entries) || max_entries < 1)
		return -EINVAL;
	pw_gid_entry(entries);
	return 1;
}

/* IBVERBS_PRIVATE_34, which ibv_devinfo uses. */
PW_EXPORT int ibv_query_gid_type(struct ibv_context *ctx, uint8_t port, unsigned int index,
				 int *type);
PW_EXPORT int ibv_query_gid_type(struct ibv_context *ctx, uint8_t port, unsigned int index,
				 int *type)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_PRIVATE_34", ibv_query_gid_type, -1, ctx, port, index, type);
	if (pw_slot_bad(port, index))
		return -1;
	*type = PW_GID_TYPE_SYSFS_ROCE_V2;
	return 0;
}

PW_EXPORT int ibv_query_pkey(struct ibv_context *ctx, uint8_t port, int index, __be16 *pkey)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_query_pkey, -1, ctx, port, index, pkey);
	if (pw_slot_bad(port, index))
		return -1;
	*pkey = htobe16(PW_VERBS_PKEY);
	return 0;
}

PW_EXPORT int ibv_get_pkey_index(struct ibv_context *ctx, uint8_t port, __be16 pkey)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.5", ibv_get_pkey_index, -1, ctx, port, pkey);
	if (port != 1 || pkey != htobe16(PW_VERBS_PKEY)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* ---- protection domains ---- */

PW_EXPORT struct ibv_pd *ibv_alloc_pd(struct ibv_context *ctx)
{
	static _Atomic uint32_t handles;

	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_alloc_pd, NULL, ctx);
	if (atomic_fetch_add_explicit(&pw_npds, 1, memory_order_relaxed) >= PW_VERBS_MAX_PD) {
		atomic_fetch_sub_explicit(&pw_npds, 1, memory_order_relaxed);
		errno = ENOMEM; /* as a device out of PDs says */
		return NULL;
	}
	struct ibv_pd *pd = calloc(1, sizeof(*pd));
	if (!pd) {
		atomic_fetch_sub_explicit(&pw_npds, 1, memory_order_relaxed);
		errno = ENOMEM;
		return NULL;
	}
	pd->context = ctx;
	pd->handle = atomic_fetch_add_explicit(&handles, 1, memory_order_relaxed);
	return pd;
}

PW_EXPORT int ibv_dealloc_pd(struct ibv_pd *pd)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD("IBVERBS_1.1", ibv_dealloc_pd, ENOSYS, pd);
	free(pd);
	atomic_fetch_sub_explicit(&pw_npds, 1, memory_order_relaxed);
	return 0;
}

/* ---- completion channels ---- */

PW_EXPORT struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ctx)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.0", ibv_create_comp_channel, NULL, ctx);

	struct ibv_comp_channel *ch = calloc(1, sizeof(*ch));
	if (!ch) {
		errno = ENOMEM;
		return NULL;
	}
	/* Blocking, as the kernel's channel fd is; the application may change that. */
	ch->fd = eventfd(0, EFD_CLOEXEC);
	if (ch->fd < 0) {
		free(ch);
		return NULL;
	}
	ch->context = ctx;
	ch->refcnt = 0;
	return ch;
}

PW_EXPORT int ibv_destroy_comp_channel(struct ibv_comp_channel *ch)
{
	if (!pw_verbs_ctx_ours(ch->context))
		PW_FORWARD("IBVERBS_1.0", ibv_destroy_comp_channel, ENOSYS, ch);

	struct ibv_context *ctx = ch->context;
	int r = 0;

	pthread_mutex_lock(&ctx->mutex);
	if (ch->refcnt)
		r = EBUSY;
	pthread_mutex_unlock(&ctx->mutex);
	if (r)
		return r;
	close(ch->fd);
	free(ch);
	return 0;
}

/* ---- async events ---- */

/* What async_fd carries: one record per event. */
struct pw_async_rec {
	uint32_t type; /* enum ibv_event_type */
	uint32_t port;
	uint64_t element; /* the object's address */
};

PW_EXPORT int ibv_get_async_event(struct ibv_context *ctx, struct ibv_async_event *ev)
{
	struct pw_async_rec rec;
	ssize_t n;

	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_get_async_event, -1, ctx, ev);
	/* (EINTR and EAGAIN go to the caller, as libibverbs' read does.) */
	n = read(ctx->async_fd, &rec, sizeof(rec));
	if (n != (ssize_t)sizeof(rec))
		return -1;
	ev->event_type = (enum ibv_event_type)rec.type;
	switch (ev->event_type) {
	case IBV_EVENT_CQ_ERR:
		ev->element.cq = (struct ibv_cq *)(uintptr_t)rec.element;
		break;
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED:
		ev->element.srq = (struct ibv_srq *)(uintptr_t)rec.element;
		break;
	case IBV_EVENT_PORT_ACTIVE:
	case IBV_EVENT_PORT_ERR:
	case IBV_EVENT_LID_CHANGE:
	case IBV_EVENT_PKEY_CHANGE:
	case IBV_EVENT_SM_CHANGE:
	case IBV_EVENT_CLIENT_REREGISTER:
	case IBV_EVENT_GID_CHANGE:
		ev->element.port_num = (int)rec.port;
		break;
	case IBV_EVENT_DEVICE_FATAL:
		ev->element.port_num = 0;
		break;
	default:
		ev->element.qp = (struct ibv_qp *)(uintptr_t)rec.element;
		break;
	}
	return 0;
}

void pw_async_post(struct ibv_context *ctx, enum ibv_event_type type, uint64_t element)
{
	struct pw_vctx *c = (struct pw_vctx *)((char *)ctx - offsetof(struct pw_vctx, vc.context));
	struct pw_async_rec rec = { .type = (uint32_t)type, .element = element };

	/* (A full pipe loses the event: 4096 of them unread.) */
	if (write(c->async_wr, &rec, sizeof(rec)) < 0)
		return;
}

/* One more event of an object acknowledged, for its destroy to wait on. */
static void pw_event_acked(pthread_mutex_t *m, pthread_cond_t *c, uint32_t *count)
{
	pthread_mutex_lock(m);
	(*count)++;
	pthread_cond_signal(c);
	pthread_mutex_unlock(m);
}

PW_EXPORT void ibv_ack_async_event(struct ibv_async_event *ev)
{
	struct ibv_cq *cq = ev->element.cq;
	struct ibv_qp *qp = ev->element.qp;
	struct ibv_srq *srq = ev->element.srq;

	switch (ev->event_type) {
	case IBV_EVENT_CQ_ERR:
		if (!pw_verbs_ctx_ours(cq->context))
			break;
		pw_event_acked(&cq->mutex, &cq->cond, &cq->async_events_completed);
		return;
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_COMM_EST:
	case IBV_EVENT_SQ_DRAINED:
	case IBV_EVENT_PATH_MIG:
	case IBV_EVENT_PATH_MIG_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED:
		if (!pw_verbs_ctx_ours(qp->context))
			break;
		pw_event_acked(&qp->mutex, &qp->cond, &qp->events_completed);
		return;
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED:
		if (!pw_verbs_ctx_ours(srq->context))
			break;
		pw_event_acked(&srq->mutex, &srq->cond, &srq->events_completed);
		return;
	default:
		return; /* port and device events: nothing to count */
	}
	PW_FORWARD_VOID("IBVERBS_1.1", ibv_ack_async_event, ev);
}
