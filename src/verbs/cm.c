// SPDX-License-Identifier: MIT
/*
 * librdmacm's API on podwire0 (perftest -R, rping, rdma_* programs). The
 * real librdmacm talks to /dev/infiniband/rdma_cm, which these machines do
 * not have; here the connection manager is a TCP connection between the
 * two processes (through libpodwire.so when it is preloaded, so as fast as
 * any pod's socket), on the address and port the application listens on
 * (RDMA_PS_TCP's port is the TCP port). They swap their QPs' numbers and
 * GIDs and the private data (struct pw_wire_cm: REQ, REP, RTU, REJ, DREQ),
 * and each moves its QP through INIT, RTR and RTS as the kernel's CM would.
 *
 * A channel's fd is an epoll fd: it holds an eventfd, written while events
 * made by calls (ADDR_RESOLVED, ...) wait, and the sockets of its ids.
 * rdma_get_cm_event() turns what those sockets bring into events; an
 * application that polls the channel's fd is woken for either.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <rdma/rdma_cma.h>

#include "pwverbs.h"

/* The CM's sockets: through libpodwire.so when it is preloaded, as any
 * socket of the pod's. */
static int pw_cm_socket(void)
{
	return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

#define PW_CM_REJ_CONSUMER 28  /* IB CM's "consumer defined" reject reason */
#define PW_CM_REFUSED_MS   100 /* how long a port with no listener is tried */

struct pw_cm_ev {
	struct rdma_cm_event ev;
	uint8_t priv[PW_CM_PRIV_MAX];
	struct pw_cm_ev *next;
};

struct pw_cm_id;

struct pw_cm_chan {
	struct rdma_event_channel ch; /* fd: the epoll fd */
	pthread_mutex_t lock;
	int evfd;
	struct pw_cm_ev *head, *tail;
	struct pw_cm_id *waiting; /* accepted, before their REQ: ours alone */
	/* Threads between epoll_wait() and the end of what it returned: an
	 * id destroyed meanwhile may be in their hands, so it waits here. */
	unsigned busy;
	struct pw_cm_id *zombies;
	bool dead; /* destroyed: kept for threads still in rdma_get_cm_event */
	struct pw_cm_chan *next_spare;
};

enum pw_cm_state {
	PW_CMS_IDLE,
	PW_CMS_LISTEN,
	PW_CMS_REQ_SENT, /* active: waits for REP */
	PW_CMS_REQ_WAIT, /* passive child: waits for REQ */
	PW_CMS_REQ_RCVD, /* passive child: the application decides */
	PW_CMS_REP_SENT, /* passive: waits for RTU */
	PW_CMS_REP_RCVD, /* active, its own QP: waits for rdma_establish */
	PW_CMS_CONNECTED,
	PW_CMS_DISCONNECTED,
};

struct pw_cm_id {
	struct rdma_cm_id id; /* first: the application's pointer */
	struct pw_cm_chan *chan;
	int sock;
	enum pw_cm_state st;
	struct pw_wire_cm peer; /* REQ or REP, as it came */
	struct pw_wire_cm in;	/* being read */
	size_t got;
	uint8_t resp_res, init_depth;
	bool own_cqs;
	struct pw_cm_id *next_waiting; /* on chan->waiting */
	/* The state: the application's calls and the thread taking events
	 * (rping has one of each) take turns. */
	pthread_mutex_t lock;
	/* Events rdma_get_cm_event() gave for it, and those acknowledged:
	 * rdma_destroy_id() waits for the two to meet, as librdmacm's does. */
	unsigned reported, acked;
	pthread_cond_t acked_cv;
};

static void pw_cm_id_init(struct pw_cm_id *c)
{
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->acked_cv, NULL);
}

static void pw_cm_id_free(struct pw_cm_id *c)
{
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->acked_cv);
	free(c);
}

static void pw_cm_waiting_del(struct pw_cm_id *c)
{
	for (struct pw_cm_id **pp = &c->chan->waiting; *pp; pp = &(*pp)->next_waiting)
		if (*pp == c) {
			*pp = c->next_waiting;
			return;
		}
}

static pthread_mutex_t pw_cm_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ibv_context *pw_cm_ctx; /* podwire0, opened once, kept */

/* podwire0's context, opened at the first need. NULL with errno. */
static struct ibv_context *pw_cm_verbs(void)
{
	pthread_mutex_lock(&pw_cm_lock);
	if (!pw_cm_ctx) {
		int n = 0;
		struct ibv_device **list = ibv_get_device_list(&n);
		for (int i = 0; list && i < n && !pw_cm_ctx; i++)
			if (pw_verbs_dev_ours(list[i]))
				pw_cm_ctx = ibv_open_device(list[i]);
		if (list)
			ibv_free_device_list(list);
		if (!pw_cm_ctx && !errno)
			errno = ENODEV;
	}
	struct ibv_context *ctx = pw_cm_ctx;
	pthread_mutex_unlock(&pw_cm_lock);
	return ctx;
}

/* ---- events ---- */

static int pw_cm_queue(struct pw_cm_id *c, enum rdma_cm_event_type type, int status,
		       const struct pw_wire_cm *m, struct pw_cm_id *listen)
{
	struct pw_cm_chan *ch = c->chan;
	struct pw_cm_ev *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->ev.id = &c->id;
	e->ev.listen_id = listen ? &listen->id : NULL;
	e->ev.event = type;
	e->ev.status = status;
	if (m) {
		unsigned n = m->priv_len <= PW_CM_PRIV_MAX ? m->priv_len : PW_CM_PRIV_MAX;
		memcpy(e->priv, m->priv, n);
		e->ev.param.conn.private_data = n ? e->priv : NULL;
		e->ev.param.conn.private_data_len = (uint8_t)(n < 255 ? n : 255);
		e->ev.param.conn.responder_resources = m->resp_res;
		e->ev.param.conn.initiator_depth = m->init_depth;
		e->ev.param.conn.retry_count = m->retry;
		e->ev.param.conn.rnr_retry_count = m->rnr_retry;
		e->ev.param.conn.qp_num = m->qpn;
	}
	pthread_mutex_lock(&ch->lock);
	if (ch->tail)
		ch->tail->next = e;
	else
		ch->head = e;
	ch->tail = e;
	pthread_mutex_unlock(&ch->lock);
	eventfd_write(ch->evfd, 1);
	return 0;
}

/*
 * Channels are kept, not freed: a thread may still be in (or come back to)
 * rdma_get_cm_event() on a channel another thread destroys, as rping's does
 * at its end. With the kernel's CM that thread blocks in read() for ever;
 * here it finds the channel dead and parks (pw_cm_park). A new channel
 * takes a dead one's memory.
 */
static struct pw_cm_chan *pw_cm_spare; /* under pw_cm_lock */

static _Noreturn void pw_cm_park(void)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

	pthread_mutex_lock(&m);
	for (;;)
		pthread_cond_wait(&never, &m);
}

PW_EXPORT struct rdma_event_channel *rdma_create_event_channel(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct pw_cm_chan *ch;

	pthread_mutex_lock(&pw_cm_lock);
	ch = pw_cm_spare;
	if (ch)
		pw_cm_spare = ch->next_spare;
	pthread_mutex_unlock(&pw_cm_lock);
	if (!ch) {
		ch = calloc(1, sizeof(*ch));
		if (!ch)
			return NULL;
		pthread_mutex_init(&ch->lock, NULL);
	}
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	int evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (epfd < 0 || evfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) < 0) {
		int err = errno;
		if (epfd >= 0)
			close(epfd);
		if (evfd >= 0)
			close(evfd);
		pthread_mutex_lock(&pw_cm_lock);
		ch->next_spare = pw_cm_spare;
		pw_cm_spare = ch;
		pthread_mutex_unlock(&pw_cm_lock);
		errno = err;
		return NULL;
	}
	pthread_mutex_lock(&ch->lock);
	ch->ch.fd = epfd;
	ch->evfd = evfd;
	ch->head = ch->tail = NULL;
	ch->waiting = ch->zombies = NULL;
	ch->busy = 0;
	ch->dead = false;
	ch->next_spare = NULL;
	pthread_mutex_unlock(&ch->lock);
	return &ch->ch;
}

PW_EXPORT void rdma_destroy_event_channel(struct rdma_event_channel *channel)
{
	struct pw_cm_chan *ch = (struct pw_cm_chan *)channel;

	pthread_mutex_lock(&ch->lock);
	while (ch->waiting) {
		struct pw_cm_id *c = ch->waiting;
		ch->waiting = c->next_waiting;
		close(c->sock);
		pw_cm_id_free(c);
	}
	/* (Zombies: a thread busy with them frees them when it is done.) */
	if (!ch->busy)
		while (ch->zombies) {
			struct pw_cm_id *c = ch->zombies;
			ch->zombies = c->next_waiting;
			pw_cm_id_free(c);
		}
	while (ch->head) {
		struct pw_cm_ev *e = ch->head;
		ch->head = e->next;
		free(e);
	}
	ch->tail = NULL;
	ch->dead = true;
	close(ch->ch.fd);
	close(ch->evfd);
	ch->ch.fd = ch->evfd = -1;
	pthread_mutex_unlock(&ch->lock);
	pthread_mutex_lock(&pw_cm_lock);
	ch->next_spare = pw_cm_spare;
	pw_cm_spare = ch;
	pthread_mutex_unlock(&pw_cm_lock);
}

PW_EXPORT int rdma_create_id(struct rdma_event_channel *channel, struct rdma_cm_id **id,
			     void *context, enum rdma_port_space ps)
{
	struct pw_cm_id *c;

	if (!channel || (ps != RDMA_PS_TCP && ps != RDMA_PS_IB)) {
		errno = channel ? EOPNOTSUPP : EINVAL; /* (no synchronous ids, no UD) */
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->chan = (struct pw_cm_chan *)channel;
	c->sock = -1;
	pw_cm_id_init(c);
	c->id.channel = channel;
	c->id.context = context;
	c->id.ps = ps;
	c->id.qp_type = IBV_QPT_RC;
	*id = &c->id;
	return 0;
}

static void pw_cm_unwatch(struct pw_cm_id *c)
{
	if (c->sock < 0)
		return;
	epoll_ctl(c->chan->ch.fd, EPOLL_CTL_DEL, c->sock, NULL);
	close(c->sock);
	c->sock = -1;
}

PW_EXPORT int rdma_destroy_id(struct rdma_cm_id *id)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;
	struct pw_cm_chan *ch = c->chan;

	pthread_mutex_lock(&c->lock);
	pw_cm_unwatch(c); /* (sock -1: a reader holding it skips it) */
	/* Its events given out are acknowledged first: the thread taking
	 * them is back in rdma_get_cm_event() before the channel can go
	 * (rping destroys it under that thread). */
	while (c->acked != c->reported)
		pthread_cond_wait(&c->acked_cv, &c->lock);
	pthread_mutex_unlock(&c->lock);
	/* A listener's connections whose REQ has not come go with it. */
	for (struct pw_cm_id **pp = &ch->waiting; *pp;) {
		struct pw_cm_id *w = *pp;
		if (w->id.context == c) {
			*pp = w->next_waiting;
			pw_cm_unwatch(w);
			pw_cm_id_free(w);
		} else {
			pp = &w->next_waiting;
		}
	}
	/* Events for it not taken yet go with it. */
	pthread_mutex_lock(&ch->lock);
	for (struct pw_cm_ev **pp = &ch->head; *pp;) {
		struct pw_cm_ev *e = *pp;
		if (e->ev.id == id) {
			*pp = e->next;
			free(e);
		} else {
			pp = &e->next;
		}
	}
	ch->tail = ch->head;
	while (ch->tail && ch->tail->next)
		ch->tail = ch->tail->next;
	bool later = ch->busy > 0;
	if (later) {
		c->next_waiting = ch->zombies;
		ch->zombies = c;
	}
	pthread_mutex_unlock(&ch->lock);
	if (!later)
		pw_cm_id_free(c);
	return 0;
}

/* Watch @c's socket on its channel. */
static int pw_cm_watch(struct pw_cm_id *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	return epoll_ctl(c->chan->ch.fd, EPOLL_CTL_ADD, c->sock, &ev);
}

/* ---- addresses ---- */

static void pw_cm_gids(struct pw_cm_id *c)
{
	struct rdma_ib_addr *ib = &c->id.route.addr.addr.ibaddr;

	if (c->id.verbs)
		ibv_query_gid(c->id.verbs, 1, 0, &ib->sgid);
	memset(&ib->dgid, 0, sizeof(ib->dgid));
	ib->dgid.raw[10] = ib->dgid.raw[11] = 0xff;
	memcpy(&ib->dgid.raw[12], &c->id.route.addr.dst_sin.sin_addr, 4);
	ib->pkey = htons(0xffff);
}

PW_EXPORT int rdma_bind_addr(struct rdma_cm_id *id, struct sockaddr *addr)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	if (!addr || addr->sa_family != AF_INET) {
		errno = addr ? EAFNOSUPPORT : EINVAL; /* IPv4 pods only */
		return -1;
	}
	memcpy(&id->route.addr.src_sin, addr, sizeof(struct sockaddr_in));
	id->verbs = pw_cm_verbs();
	if (!id->verbs)
		return -1;
	id->port_num = 1;
	pw_cm_gids(c);
	return 0;
}

PW_EXPORT int rdma_resolve_addr(struct rdma_cm_id *id, struct sockaddr *src_addr,
				struct sockaddr *dst_addr, int timeout_ms)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;
	struct sockaddr_in me;
	socklen_t len = sizeof(me);
	int s;

	(void)timeout_ms;
	if (!dst_addr || dst_addr->sa_family != AF_INET) {
		errno = dst_addr ? EAFNOSUPPORT : EINVAL;
		return -1;
	}
	memcpy(&id->route.addr.dst_sin, dst_addr, sizeof(struct sockaddr_in));
	if (src_addr && src_addr->sa_family == AF_INET) {
		memcpy(&me, src_addr, sizeof(me));
	} else {
		/* The address the route to @dst_addr leaves from. */
		s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			return -1;
		if (connect(s, dst_addr, sizeof(struct sockaddr_in)) < 0 ||
		    getsockname(s, (struct sockaddr *)&me, &len) < 0) {
			int err = errno;
			close(s);
			return pw_cm_queue(c, RDMA_CM_EVENT_ADDR_ERROR, -err, NULL, NULL) < 0 ? -1
											      : 0;
		}
		close(s);
		me.sin_port = 0;
	}
	id->route.addr.src_sin = me;
	id->verbs = pw_cm_verbs();
	if (!id->verbs)
		return -1;
	id->port_num = 1;
	pw_cm_gids(c);
	return pw_cm_queue(c, RDMA_CM_EVENT_ADDR_RESOLVED, 0, NULL, NULL) < 0 ? -1 : 0;
}

PW_EXPORT int rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms)
{
	(void)timeout_ms;
	if (!id->verbs) {
		errno = EINVAL;
		return -1;
	}
	return pw_cm_queue((struct pw_cm_id *)id, RDMA_CM_EVENT_ROUTE_RESOLVED, 0, NULL, NULL) < 0
		       ? -1
		       : 0;
}

/* ---- queue pairs ---- */

PW_EXPORT int rdma_init_qp_attr(struct rdma_cm_id *id, struct ibv_qp_attr *attr, int *mask)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	switch (attr->qp_state) {
	case IBV_QPS_INIT:
		*attr = (struct ibv_qp_attr){ .qp_state = IBV_QPS_INIT,
					      .port_num = 1,
					      .qp_access_flags = IBV_ACCESS_REMOTE_WRITE };
		*mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
		return 0;
	case IBV_QPS_RTR:
		if (c->st != PW_CMS_REQ_RCVD && c->st != PW_CMS_REP_SENT &&
		    c->st != PW_CMS_REP_RCVD && c->st != PW_CMS_CONNECTED)
			break;
		*attr = (struct ibv_qp_attr){
			.qp_state = IBV_QPS_RTR,
			.path_mtu = IBV_MTU_4096,
			.dest_qp_num = c->peer.qpn,
			.rq_psn = c->peer.psn,
			.max_dest_rd_atomic = c->resp_res ? c->resp_res : 1,
			.min_rnr_timer = 12,
			/* The kernel's CM: READ and atomics for a responder. */
			.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
					   IBV_ACCESS_REMOTE_ATOMIC,
			.ah_attr = { .is_global = 1, .port_num = 1, .grh = { .hop_limit = 64 } }
		};
		memcpy(attr->ah_attr.grh.dgid.raw, c->peer.gid, 16);
		*mask = IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
			IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER |
			IBV_QP_ACCESS_FLAGS;
		return 0;
	case IBV_QPS_RTS:
		*attr = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS,
					      .sq_psn = 0, /* (ours, as REQ and REP say) */
					      .timeout = 14,
					      .retry_cnt = 7,
					      .rnr_retry = 7,
					      .max_rd_atomic = c->init_depth ? c->init_depth : 1 };
		*mask = IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
			IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
		return 0;
	default:
		break;
	}
	errno = EINVAL;
	return -1;
}

/* @c's QP to @state, with what the CM says. 0 or -1 with errno. */
static int pw_cm_qp_to(struct pw_cm_id *c, enum ibv_qp_state state)
{
	struct ibv_qp_attr a = { .qp_state = state };
	int mask, r;

	if (!c->id.qp)
		return 0;
	if (rdma_init_qp_attr(&c->id, &a, &mask) < 0)
		return -1;
	r = ibv_modify_qp(c->id.qp, &a, mask);
	if (r) {
		errno = r;
		return -1;
	}
	return 0;
}

PW_EXPORT int rdma_create_qp_ex(struct rdma_cm_id *id, struct ibv_qp_init_attr_ex *ax)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;
	struct ibv_qp_init_attr a = { .qp_context = ax->qp_context,
				      .send_cq = ax->send_cq,
				      .recv_cq = ax->recv_cq,
				      .srq = ax->srq,
				      .cap = ax->cap,
				      .qp_type = ax->qp_type,
				      .sq_sig_all = ax->sq_sig_all };
	struct ibv_pd *pd = (ax->comp_mask & IBV_QP_INIT_ATTR_PD) ? ax->pd : id->pd;

	if (!id->verbs || !pd || pd->context != id->verbs || ax->qp_type != IBV_QPT_RC) {
		errno = EINVAL;
		return -1;
	}
	if (!a.send_cq || !a.recv_cq) {
		/* As librdmacm: CQs of the QP's own, sized for it. */
		int n = (int)(ax->cap.max_send_wr + ax->cap.max_recv_wr);
		id->send_cq = a.send_cq ? NULL : ibv_create_cq(id->verbs, n ? n : 1, NULL, NULL, 0);
		id->recv_cq = id->send_cq;
		if (!a.send_cq)
			a.send_cq = id->send_cq;
		if (!a.recv_cq)
			a.recv_cq = id->send_cq;
		if (!a.send_cq)
			return -1;
		c->own_cqs = true;
	}
	id->qp = ibv_create_qp(pd, &a);
	if (!id->qp)
		return -1;
	ax->cap = a.cap;
	id->pd = pd;
	if (pw_cm_qp_to(c, IBV_QPS_INIT) < 0) {
		int err = errno;
		ibv_destroy_qp(id->qp);
		id->qp = NULL;
		errno = err;
		return -1;
	}
	return 0;
}

PW_EXPORT int rdma_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd,
			     struct ibv_qp_init_attr *qp_init_attr)
{
	struct ibv_qp_init_attr_ex ax = { .qp_context = qp_init_attr->qp_context,
					  .send_cq = qp_init_attr->send_cq,
					  .recv_cq = qp_init_attr->recv_cq,
					  .srq = qp_init_attr->srq,
					  .cap = qp_init_attr->cap,
					  .qp_type = qp_init_attr->qp_type,
					  .sq_sig_all = qp_init_attr->sq_sig_all,
					  .comp_mask = IBV_QP_INIT_ATTR_PD,
					  .pd = pd ? pd : id->pd };
	int r = rdma_create_qp_ex(id, &ax);

	if (r == 0)
		qp_init_attr->cap = ax.cap;
	return r;
}

PW_EXPORT void rdma_destroy_qp(struct rdma_cm_id *id)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	if (id->qp)
		ibv_destroy_qp(id->qp);
	id->qp = NULL;
	if (c->own_cqs && id->send_cq)
		ibv_destroy_cq(id->send_cq);
	if (c->own_cqs)
		id->send_cq = id->recv_cq = NULL;
	c->own_cqs = false;
}

/* ---- connecting ---- */

/* Send one CM message of @type on @c's socket, our QP and @priv in it. */
static int pw_cm_send(struct pw_cm_id *c, enum pw_cm_type type, uint32_t qpn,
		      const struct rdma_conn_param *p, const void *priv, uint8_t priv_len)
{
	struct pw_wire_cm m = { .magic = PW_CM_MAGIC, .type = (uint16_t)type, .qpn = qpn };
	union ibv_gid gid;
	size_t done = 0;

	if (c->id.verbs && ibv_query_gid(c->id.verbs, 1, 0, &gid) == 0)
		memcpy(m.gid, gid.raw, 16);
	if (p) {
		m.resp_res = p->responder_resources;
		m.init_depth = p->initiator_depth;
		m.retry = p->retry_count;
		m.rnr_retry = p->rnr_retry_count;
		if (!qpn && !c->id.qp)
			m.qpn = p->qp_num;
	}
	m.priv_len = priv_len;
	if (priv_len)
		memcpy(m.priv, priv, priv_len);
	while (done < sizeof(m)) {
		ssize_t n = send(c->sock, (const char *)&m + done, sizeof(m) - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int pw_cm_connect_locked(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;
	struct sockaddr_in to = id->route.addr.dst_sin;

	if (!id->verbs || c->sock >= 0 || (p && p->private_data_len > 56)) {
		errno = EINVAL;
		return -1;
	}
	/* A port with no listener is tried again for PW_CM_REFUSED_MS, as
	 * the kernel's CM retries a REQ that met no answer: perftest -R
	 * listens anew for its second connection while the client may
	 * already connect, and perftest 4.5-0.17 retries a rejected one
	 * with ids it destroyed. */
	uint64_t until = pw_now_ns() + PW_CM_REFUSED_MS * 1000000ull;
	for (;;) {
		c->sock = pw_cm_socket();
		if (c->sock < 0)
			return -1;
		if (connect(c->sock, (struct sockaddr *)&to, sizeof(to)) == 0)
			break;
		int err = errno;
		close(c->sock);
		c->sock = -1;
		if (err == ECONNREFUSED && pw_now_ns() < until) {
			struct timespec ts = { 0, 2000000 };
			nanosleep(&ts, NULL);
			continue;
		}
		/* As the kernel's CM says it: no one listens there. */
		return pw_cm_queue(c,
				   err == ECONNREFUSED ? RDMA_CM_EVENT_REJECTED
						       : RDMA_CM_EVENT_UNREACHABLE,
				   err == ECONNREFUSED ? PW_CM_REJ_CONSUMER : -err, NULL, NULL) < 0
			       ? -1
			       : 0;
	}
	if (p) {
		c->resp_res = p->responder_resources;
		c->init_depth = p->initiator_depth;
	}
	/* The state first: another thread may take the answer as soon as
	 * the socket is watched (rping's CM thread). */
	c->st = PW_CMS_REQ_SENT;
	if (pw_cm_send(c, PW_CM_REQ, id->qp ? id->qp->qp_num : 0, p, p ? p->private_data : NULL,
		       p ? p->private_data_len : 0) < 0 ||
	    pw_cm_watch(c) < 0) {
		int err = errno;
		c->st = PW_CMS_IDLE;
		close(c->sock);
		c->sock = -1;
		errno = err;
		return -1;
	}
	return 0;
}

PW_EXPORT int rdma_connect(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	pthread_mutex_lock(&c->lock);
	int r = pw_cm_connect_locked(id, p);
	pthread_mutex_unlock(&c->lock);
	return r;
}

PW_EXPORT int rdma_listen(struct rdma_cm_id *id, int backlog)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;
	int one = 1;

	if (c->sock >= 0 || id->route.addr.src_sin.sin_family != AF_INET) {
		errno = EINVAL;
		return -1;
	}
	c->sock = pw_cm_socket();
	if (c->sock < 0)
		return -1;
	setsockopt(c->sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	c->st = PW_CMS_LISTEN;
	if (bind(c->sock, (struct sockaddr *)&id->route.addr.src_sin, sizeof(struct sockaddr_in)) <
		    0 ||
	    listen(c->sock, backlog > 0 ? backlog : 16) < 0 || pw_cm_watch(c) < 0) {
		int err = errno;
		close(c->sock);
		c->sock = -1;
		c->st = PW_CMS_IDLE;
		errno = err;
		return -1;
	}
	return 0;
}

static int pw_cm_accept_locked(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	if (c->st != PW_CMS_REQ_RCVD || (p && p->private_data_len > PW_CM_PRIV_MAX)) {
		errno = EINVAL;
		return -1;
	}
	if (p) {
		c->resp_res = p->responder_resources;
		c->init_depth = p->initiator_depth;
	}
	if (pw_cm_qp_to(c, IBV_QPS_RTR) < 0 || pw_cm_qp_to(c, IBV_QPS_RTS) < 0)
		return -1;
	c->st = PW_CMS_REP_SENT; /* (before: the RTU may be read at once) */
	if (pw_cm_send(c, PW_CM_REP, id->qp ? id->qp->qp_num : 0, p, p ? p->private_data : NULL,
		       p ? p->private_data_len : 0) < 0) {
		c->st = PW_CMS_REQ_RCVD;
		return -1;
	}
	return 0;
}

PW_EXPORT int rdma_accept(struct rdma_cm_id *id, struct rdma_conn_param *p)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	pthread_mutex_lock(&c->lock);
	int r = pw_cm_accept_locked(id, p);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int pw_cm_reject_locked(struct rdma_cm_id *id, const void *private_data, uint8_t len)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	if (c->st != PW_CMS_REQ_RCVD || len > PW_CM_PRIV_MAX) {
		errno = EINVAL;
		return -1;
	}
	pw_cm_send(c, PW_CM_REJ, 0, NULL, private_data, len);
	c->st = PW_CMS_DISCONNECTED;
	return 0;
}

PW_EXPORT int rdma_reject(struct rdma_cm_id *id, const void *private_data, uint8_t len)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	pthread_mutex_lock(&c->lock);
	int r = pw_cm_reject_locked(id, private_data, len);
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int pw_cm_establish_locked(struct rdma_cm_id *id)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	if (c->st != PW_CMS_REP_RCVD) {
		errno = EINVAL;
		return -1;
	}
	c->st = PW_CMS_CONNECTED;
	if (pw_cm_send(c, PW_CM_RTU, 0, NULL, NULL, 0) < 0) {
		c->st = PW_CMS_REP_RCVD;
		return -1;
	}
	return 0;
}

PW_EXPORT int rdma_establish(struct rdma_cm_id *id)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	pthread_mutex_lock(&c->lock);
	int r = pw_cm_establish_locked(id);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* @c's connection ended (DREQ, or the socket closed): its QP fails, and the
 * application hears it once. */
static void pw_cm_down(struct pw_cm_id *c)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_ERR };

	if (c->st != PW_CMS_CONNECTED && c->st != PW_CMS_REP_SENT && c->st != PW_CMS_REP_RCVD)
		return;
	c->st = PW_CMS_DISCONNECTED;
	/* Nothing more comes for it: its socket no longer wakes the channel
	 * (the kernel's CM makes no event after DISCONNECTED; rping destroys
	 * the channel under the thread still waiting on it). The socket stays
	 * open until the id goes, so that our DREQ reaches the peer. */
	if (c->sock >= 0)
		epoll_ctl(c->chan->ch.fd, EPOLL_CTL_DEL, c->sock, NULL);
	if (c->id.qp)
		ibv_modify_qp(c->id.qp, &a, IBV_QP_STATE);
	pw_cm_queue(c, RDMA_CM_EVENT_DISCONNECTED, 0, NULL, NULL);
}

static int pw_cm_disconnect_locked(struct rdma_cm_id *id)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	if (c->st == PW_CMS_DISCONNECTED)
		return 0; /* (both sides may say it) */
	if (c->sock < 0) {
		errno = ENOTCONN;
		return -1;
	}
	if (c->st == PW_CMS_CONNECTED || c->st == PW_CMS_REP_SENT || c->st == PW_CMS_REP_RCVD)
		pw_cm_send(c, PW_CM_DREQ, 0, NULL, NULL, 0);
	pw_cm_down(c);
	return 0;
}

PW_EXPORT int rdma_disconnect(struct rdma_cm_id *id)
{
	struct pw_cm_id *c = (struct pw_cm_id *)id;

	pthread_mutex_lock(&c->lock);
	int r = pw_cm_disconnect_locked(id);
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* A whole message came on @c. */
static void pw_cm_msg(struct pw_cm_id *c, const struct pw_wire_cm *m)
{
	struct pw_cm_id *listen = NULL;

	switch (m->type) {
	case PW_CM_REQ:
		if (c->st != PW_CMS_REQ_WAIT)
			break;
		c->peer = *m;
		c->resp_res = m->init_depth;
		c->init_depth = m->resp_res;
		c->st = PW_CMS_REQ_RCVD;
		pw_cm_waiting_del(c);			   /* the application's from now on */
		listen = (struct pw_cm_id *)c->id.context; /* (until the event is taken) */
		c->id.context = listen->id.context;
		pw_cm_queue(c, RDMA_CM_EVENT_CONNECT_REQUEST, 0, m, listen);
		return;
	case PW_CM_REP:
		if (c->st != PW_CMS_REQ_SENT)
			break;
		c->peer = *m;
		if (!c->id.qp) {
			/* The application's own QP: it moves it (rdma_init_qp_attr),
			 * then says so (rdma_establish). */
			c->st = PW_CMS_REP_RCVD;
			pw_cm_queue(c, RDMA_CM_EVENT_CONNECT_RESPONSE, 0, m, NULL);
			return;
		}
		c->st = PW_CMS_REP_RCVD;
		if (pw_cm_qp_to(c, IBV_QPS_RTR) < 0 || pw_cm_qp_to(c, IBV_QPS_RTS) < 0 ||
		    pw_cm_send(c, PW_CM_RTU, 0, NULL, NULL, 0) < 0) {
			c->st = PW_CMS_DISCONNECTED;
			pw_cm_queue(c, RDMA_CM_EVENT_CONNECT_ERROR, -errno, NULL, NULL);
			return;
		}
		c->st = PW_CMS_CONNECTED;
		pw_cm_queue(c, RDMA_CM_EVENT_ESTABLISHED, 0, m, NULL);
		return;
	case PW_CM_RTU:
		if (c->st != PW_CMS_REP_SENT)
			break;
		c->st = PW_CMS_CONNECTED;
		pw_cm_queue(c, RDMA_CM_EVENT_ESTABLISHED, 0, NULL, NULL);
		return;
	case PW_CM_REJ:
		if (c->st != PW_CMS_REQ_SENT)
			break;
		c->st = PW_CMS_DISCONNECTED;
		pw_cm_queue(c, RDMA_CM_EVENT_REJECTED, PW_CM_REJ_CONSUMER, m, NULL);
		return;
	case PW_CM_DREQ:
		pw_cm_down(c);
		return;
	default:
		break;
	}
	/* Out of turn, or not a message of ours: the connection is broken. */
	pw_cm_unwatch(c);
	pw_cm_down(c);
}

/* @c's socket is readable (a listener's: a connection to accept). */
static void pw_cm_readable(struct pw_cm_id *c)
{
	pthread_mutex_lock(&c->lock);
	bool listening = c->st == PW_CMS_LISTEN && c->sock >= 0;
	int ls = c->sock;
	pthread_mutex_unlock(&c->lock);
	if (listening) {
		int s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		struct pw_cm_id *n = s >= 0 ? calloc(1, sizeof(*n)) : NULL;
		if (!n) {
			if (s >= 0)
				close(s);
			return;
		}
		socklen_t len = sizeof(struct sockaddr_in);
		n->chan = c->chan;
		n->sock = s;
		pw_cm_id_init(n);
		n->st = PW_CMS_REQ_WAIT;
		n->id = (struct rdma_cm_id){ .verbs = c->id.verbs,
					     .channel = c->id.channel,
					     .context = c, /* the listener, until the REQ */
					     .ps = c->id.ps,
					     .port_num = 1,
					     .qp_type = IBV_QPT_RC };
		n->next_waiting = c->chan->waiting;
		c->chan->waiting = n;
		getsockname(s, (struct sockaddr *)&n->id.route.addr.src_sin, &len);
		len = sizeof(struct sockaddr_in);
		getpeername(s, (struct sockaddr *)&n->id.route.addr.dst_sin, &len);
		if (!n->id.verbs)
			n->id.verbs = pw_cm_verbs();
		pw_cm_gids(n);
		if (pw_cm_watch(n) < 0) {
			pw_cm_waiting_del(n);
			close(s);
			pw_cm_id_free(n);
		}
		return;
	}
	pthread_mutex_lock(&c->lock);
	if (c->sock < 0) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	ssize_t r = recv(c->sock, (char *)&c->in + c->got, sizeof(c->in) - c->got, MSG_DONTWAIT);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		goto out;
	if (r <= 0) {
		/* The peer went: a connection still to be made fails. */
		bool waiting = c->st == PW_CMS_REQ_SENT;
		pw_cm_unwatch(c);
		if (waiting) {
			c->st = PW_CMS_DISCONNECTED;
			pw_cm_queue(c, RDMA_CM_EVENT_UNREACHABLE, -ECONNRESET, NULL, NULL);
		} else if (c->st == PW_CMS_REQ_WAIT) {
			pw_cm_waiting_del(c);
			pthread_mutex_unlock(&c->lock);
			pw_cm_id_free(c); /* never seen by the application */
			return;
		} else {
			pw_cm_down(c);
		}
		goto out;
	}
	c->got += (size_t)r;
	if (c->got < sizeof(c->in))
		goto out;
	c->got = 0;
	if (c->in.magic != PW_CM_MAGIC || c->in.priv_len > PW_CM_PRIV_MAX)
		c->in.type = 0; /* broken */
	pw_cm_msg(c, &c->in);
out:
	pthread_mutex_unlock(&c->lock);
}

PW_EXPORT int rdma_get_cm_event(struct rdma_event_channel *channel, struct rdma_cm_event **event)
{
	struct pw_cm_chan *ch = (struct pw_cm_chan *)channel;

	for (;;) {
		pthread_mutex_lock(&ch->lock);
		if (ch->dead) {
			pthread_mutex_unlock(&ch->lock);
			pw_cm_park();
		}
		int epfd = ch->ch.fd;
		struct pw_cm_ev *e = ch->head;
		if (e) {
			ch->head = e->next;
			if (!ch->head) {
				ch->tail = NULL;
				eventfd_t v;
				eventfd_read(ch->evfd, &v);
			}
		}
		pthread_mutex_unlock(&ch->lock);
		if (e) {
			struct pw_cm_id *c = (struct pw_cm_id *)e->ev.id;
			pthread_mutex_lock(&c->lock);
			c->id.event = &e->ev;
			c->reported++;
			pthread_mutex_unlock(&c->lock);
			*event = &e->ev;
			return 0;
		}
		struct epoll_event evs[8];
		bool nonblock = fcntl(epfd, F_GETFL) & O_NONBLOCK;
		int n = epoll_wait(epfd, evs, 8, nonblock ? 0 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			pthread_mutex_lock(&ch->lock);
			bool dead = ch->dead;
			pthread_mutex_unlock(&ch->lock);
			if (dead)
				pw_cm_park(); /* (closed under us) */
			errno = err;
			return -1;
		}
		if (n == 0) {
			errno = EAGAIN;
			return -1;
		}
		pthread_mutex_lock(&ch->lock);
		ch->busy++;
		pthread_mutex_unlock(&ch->lock);
		for (int i = 0; i < n; i++)
			if (evs[i].data.ptr)
				pw_cm_readable(evs[i].data.ptr);
		pthread_mutex_lock(&ch->lock);
		struct pw_cm_id *dead = --ch->busy ? NULL : ch->zombies;
		if (dead)
			ch->zombies = NULL;
		pthread_mutex_unlock(&ch->lock);
		while (dead) {
			struct pw_cm_id *next = dead->next_waiting;
			pw_cm_id_free(dead);
			dead = next;
		}
	}
}

PW_EXPORT int rdma_ack_cm_event(struct rdma_cm_event *event)
{
	struct pw_cm_ev *e = (struct pw_cm_ev *)event;
	struct pw_cm_id *c = (struct pw_cm_id *)event->id;

	if (c) {
		pthread_mutex_lock(&c->lock);
		if (c->id.event == event)
			c->id.event = NULL;
		c->acked++;
		pthread_cond_broadcast(&c->acked_cv);
		pthread_mutex_unlock(&c->lock);
	}
	free(e);
	return 0;
}

PW_EXPORT const char *rdma_event_str(enum rdma_cm_event_type event)
{
	static const char *const names[] = {
		"RDMA_CM_EVENT_ADDR_RESOLVED",	 "RDMA_CM_EVENT_ADDR_ERROR",
		"RDMA_CM_EVENT_ROUTE_RESOLVED",	 "RDMA_CM_EVENT_ROUTE_ERROR",
		"RDMA_CM_EVENT_CONNECT_REQUEST", "RDMA_CM_EVENT_CONNECT_RESPONSE",
		"RDMA_CM_EVENT_CONNECT_ERROR",	 "RDMA_CM_EVENT_UNREACHABLE",
		"RDMA_CM_EVENT_REJECTED",	 "RDMA_CM_EVENT_ESTABLISHED",
		"RDMA_CM_EVENT_DISCONNECTED",	 "RDMA_CM_EVENT_DEVICE_REMOVAL",
		"RDMA_CM_EVENT_MULTICAST_JOIN",	 "RDMA_CM_EVENT_MULTICAST_ERROR",
		"RDMA_CM_EVENT_ADDR_CHANGE",	 "RDMA_CM_EVENT_TIMEWAIT_EXIT",
	};

	return (unsigned)event < sizeof(names) / sizeof(names[0]) ? names[event] : "UNKNOWN EVENT";
}

PW_EXPORT int rdma_set_option(struct rdma_cm_id *id, int level, int optname, void *optval,
			      size_t optlen)
{
	(void)id, (void)level, (void)optname, (void)optval, (void)optlen;
	return 0; /* (TOS, reuse, timeouts: nothing here depends on them) */
}

PW_EXPORT int rdma_notify(struct rdma_cm_id *id, enum ibv_event_type event)
{
	(void)id, (void)event;
	return 0;
}

PW_EXPORT struct ibv_context **rdma_get_devices(int *num_devices)
{
	struct ibv_context **list = calloc(2, sizeof(struct ibv_context *));

	if (!list)
		return NULL;
	list[0] = pw_cm_verbs();
	if (num_devices)
		*num_devices = list[0] ? 1 : 0;
	return list;
}

PW_EXPORT void rdma_free_devices(struct ibv_context **list)
{
	free(list);
}

PW_EXPORT __be16 rdma_get_src_port(struct rdma_cm_id *id)
{
	return id->route.addr.src_sin.sin_port;
}

PW_EXPORT __be16 rdma_get_dst_port(struct rdma_cm_id *id)
{
	return id->route.addr.dst_sin.sin_port;
}

/* ---- names ---- */

PW_EXPORT int rdma_getaddrinfo(const char *node, const char *service,
			       const struct rdma_addrinfo *hints, struct rdma_addrinfo **res)
{
	struct addrinfo h = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai;
	bool passive = hints && (hints->ai_flags & RAI_PASSIVE);
	struct rdma_addrinfo *r;
	int e;

	if (hints && (hints->ai_flags & RAI_NUMERICHOST))
		h.ai_flags |= AI_NUMERICHOST;
	if (passive)
		h.ai_flags |= AI_PASSIVE;
	e = getaddrinfo(node, service, &h, &ai);
	if (e)
		return e; /* as librdmacm: getaddrinfo's code */
	r = calloc(1, sizeof(*r) + sizeof(struct sockaddr_in));
	if (!r) {
		freeaddrinfo(ai);
		return EAI_MEMORY;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)(r + 1);
	memcpy(sin, ai->ai_addr, sizeof(*sin));
	freeaddrinfo(ai);
	r->ai_flags = hints ? hints->ai_flags : 0;
	r->ai_family = AF_INET;
	r->ai_qp_type = IBV_QPT_RC;
	r->ai_port_space = RDMA_PS_TCP;
	if (passive) {
		r->ai_src_addr = (struct sockaddr *)sin;
		r->ai_src_len = sizeof(*sin);
	} else {
		r->ai_dst_addr = (struct sockaddr *)sin;
		r->ai_dst_len = sizeof(*sin);
	}
	*res = r;
	return 0;
}

PW_EXPORT void rdma_freeaddrinfo(struct rdma_addrinfo *res)
{
	while (res) {
		struct rdma_addrinfo *next = res->ai_next;
		free(res);
		res = next;
	}
}
