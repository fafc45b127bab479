// SPDX-License-Identifier: MIT
/*
 * podwire0 between nodes. Two connected QPs on different nodes share one
 * TCP connection between their processes, which their routers set up and
 * authenticate (PEER_VQP, VERBS_PAIRED_TCP) and then leave alone. Messages
 * are pw_wire_vmsg (wire.h): the initiator writes requests, the target
 * answers each, in order.
 *
 * The initiating thread writes its requests itself, straight from the
 * application's buffers. A progress thread per process reads every such
 * connection: as target it places WRITEs and SENDs, serves READs and
 * atomics, with no help from the application (which may be spinning on its
 * own buffer); as initiator it takes the answers and completes the work
 * requests. It sleeps in epoll_wait when nothing comes: no CPU when idle.
 *
 * Nothing read from a connection is trusted: every key, address and length
 * is checked against this process's own regions (mr.c) and the QP's
 * access flags, every answer against the request it claims to answer; a
 * peer that breaks the protocol loses the connection, as a peer that dies.
 *
 * Locks: pw_vr.lock (the progress thread holds it while it serves a
 * connection; a connection is freed only after it left the table under it),
 * then the QP's slock, then the connection's wlock (its writer). pw_vr.tlock,
 * innermost, guards the table's changes: a new connection comes from the
 * router's news, which a poster may apply under its slock.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pwverbs.h"

#define PW_VRESP   PW_VERBS_MAX_SEND_WR /* answers queued: one per request the peer has out */
#define PW_VBUF	   ((size_t)64 * 1024)	/* what one read takes from a connection */
#define PW_VDIRECT ((size_t)16 * 1024)	/* a payload this large left is read in place */
#define PW_VBATCH  64			/* messages read before the answers are written */
#define PW_VMSGS   64			/* messages written in one sendmsg() */
#define PW_VIOV	   256			/* ... and their iovecs */
/* Requests out (unanswered) from which a posting thread leaves its new small
 * ones (PW_VDEFER_LEN bytes at most) to the progress thread, which sends
 * them, many in one write, as the answers come: a sendmsg() and a TCP
 * segment per small request would cost more than the request. One request
 * alone (a ping-pong, a WRITE then a SEND) still goes at once, and so do
 * large ones. */
#define PW_VDEFER     8
#define PW_VDEFER_LEN 1024
#define PW_VMAXLEN    (1ull << 31) /* the longest message (the device's max_msg_sz) */

#define PW_VEV_WAKE UINT64_MAX
#define PW_VEV_CTL  (UINT64_MAX - 1)
#define PW_VEV_SVC  (UINT64_MAX - 2)

/* Where an incoming message's bytes go. */
struct pw_vdst {
	struct iovec iov[PW_VERBS_MAX_SEND_SGE];
	unsigned n, i;
	uint64_t left; /* bytes still to come, the last one included */
	uint8_t *last; /* the last byte goes here, last (release), or NULL */
	bool discard;  /* nowhere: dropped */
};

struct pw_vresp {
	struct pw_wire_vmsg h;
	const void *data; /* READ_RESP: h.len bytes of ours */
};

struct pw_vconn {
	struct pw_qp *qp;
	int fd;
	unsigned slot;
	uint32_t gen;

	/* The writer: under wlock, itself under the QP's slock. A batch of
	 * messages goes in one sendmsg(); wmsg[] says where each ends. */
	pthread_mutex_t wlock;
	struct iovec wiov[PW_VIOV];
	struct pw_wire_vmsg whdr[PW_VMSGS]; /* requests' headers */
	struct {
		enum { PW_VW_REQ, PW_VW_RESP, PW_VW_ERR } kind;
		unsigned end; /* its last iovec + 1 */
	} wmsg[PW_VMSGS];
	struct pw_vresp *resp; /* a ring of PW_VRESP */
	unsigned wn, wi;
	unsigned wmn, wmi;	/* messages in the batch, written */
	unsigned wreqs, wresps; /* requests, answers of it not yet written */
	unsigned rs_head, rs_tail;
	bool pollout;  /* EPOLLOUT asked for */
	bool err_want; /* our QP failed: tell the peer (VOP_ERR) */
	bool err_queued, err_sent;
	bool started; /* the writer has run: sq_sent is its own */
	bool fresh;   /* not yet read by the progress thread */

	/* Under slock. */
	bool peer_err; /* the peer's QP failed: it answers nothing more */
	int lerr;      /* the send after those out failed here (a local error), or 0 */

	/* The reader. Who reads: the progress thread, or an application
	 * thread polling a CQ (pw_vconn_poll), which then needs no other
	 * thread to run; rdlock says which. Edges (EPOLLET) wake the progress
	 * thread; one that finds the other reading says so (missed), and the
	 * other reads again as it lets go. */
	pthread_mutex_t rdlock;
	uint8_t *buf;
	size_t bhead, btail;
	size_t rgot;
	struct pw_wire_vmsg rh;
	struct pw_vdst dst; /* where rh's payload goes */
	/* What the message being read completes as. */
	struct pw_vcqe cqe;   /* SEND, WRITE_IMM: the receive's completion */
	int st;		      /* an ibv_wc_status: the answer's */
	uint32_t rq_tail;     /* the receive it takes */
	bool take_recv;	      /* ... if it takes one */
	bool claimed;	      /* an SRQ's, claimed and not yet completed */
	bool answer;	      /* a request: answer it */
	bool in_data;	      /* rh's payload is being read into dst */
	_Atomic bool stalled; /* a SEND waits for a receive; not read meanwhile */
	_Atomic bool dead;    /* the peer went (or broke the protocol) */
	_Atomic bool missed;
};

static struct {
	pthread_mutex_t lock;  /* the progress thread's work on the table */
	pthread_mutex_t tlock; /* changes to it, running, gen */
	pthread_t thread;
	bool running;
	_Atomic bool quit;
	_Atomic bool retry; /* pw_vremote_retry(): sends on this node wait */
	int ep, wake;
	/* By the QP's slot. Stored under tlock (release: a reader's acquire),
	 * cleared under lock and tlock, so one who holds lock may use what
	 * it loads. */
	_Atomic(struct pw_vconn *) conns[PW_VQPS];
	uint32_t gen;
} pw_vr = {
	.lock = PTHREAD_MUTEX_INITIALIZER, .tlock = PTHREAD_MUTEX_INITIALIZER, .ep = -1, .wake = -1
};

/* The table's connection in @slot. Under pw_vr.lock. */
static struct pw_vconn *pw_vconn_at(unsigned slot)
{
	return atomic_load_explicit(&pw_vr.conns[slot], memory_order_acquire);
}

static bool pw_vconn_dead(struct pw_vconn *c)
{
	return atomic_load_explicit(&c->dead, memory_order_acquire);
}

static uint64_t pw_vconn_tag(const struct pw_vconn *c)
{
	return (uint64_t)c->gen << 32 | c->slot;
}

/* Ask epoll for @c's input (unless it waits for a receive) and, while its
 * writer is stuck, output. */
static void pw_vconn_interest(struct pw_vconn *c)
{
	struct epoll_event ev = { .events = EPOLLET, .data.u64 = pw_vconn_tag(c) };

	if (pw_vconn_dead(c))
		return;
	if (!atomic_load_explicit(&c->stalled, memory_order_acquire))
		ev.events |= EPOLLIN;
	if (c->pollout)
		ev.events |= EPOLLOUT;
	epoll_ctl(pw_vr.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* ---- writing ---- */

/* @done bytes of iovecs [@i, @n) went (in or out): the first entry with
 * bytes left, the ones before it emptied. */
static unsigned pw_iov_advance(struct iovec *v, unsigned i, unsigned n, size_t done)
{
	for (; i < n; i++) {
		size_t k = done < v[i].iov_len ? done : v[i].iov_len;
		v[i].iov_base = (uint8_t *)v[i].iov_base + k;
		v[i].iov_len -= k;
		done -= k;
		if (v[i].iov_len)
			break;
	}
	return i;
}

static const uint8_t pw_vops[] = {
	[IBV_WR_SEND] = PW_VOP_SEND,
	[IBV_WR_SEND_WITH_IMM] = PW_VOP_SEND_IMM,
	[IBV_WR_RDMA_WRITE] = PW_VOP_WRITE,
	[IBV_WR_RDMA_WRITE_WITH_IMM] = PW_VOP_WRITE_IMM,
	[IBV_WR_RDMA_READ] = PW_VOP_READ,
	[IBV_WR_ATOMIC_CMP_AND_SWP] = PW_VOP_CAS,
	[IBV_WR_ATOMIC_FETCH_AND_ADD] = PW_VOP_FADD,
};

/* The request for @w into the batch, at header @h: 0, -ENOSPC (no room for
 * its iovecs), or the local error it completes with. */
static int pw_vconn_build(struct pw_vconn *c, const struct pw_swr *w, struct pw_wire_vmsg *h)
{
	uint64_t len = pw_swr_len(w);
	unsigned n = c->wn;

	if (n + 1 + w->nsge > PW_VIOV)
		return -ENOSPC;
	*h = (struct pw_wire_vmsg){ .op = pw_vops[w->op],
				    .len = (uint32_t)len,
				    .rkey = w->rkey,
				    .imm = w->imm,
				    .raddr = w->raddr,
				    .arg = w->cmp,
				    .arg2 = w->swp };
	c->wiov[n++] = (struct iovec){ h, sizeof(*h) };
	if (len > PW_VMAXLEN)
		return IBV_WC_LOC_LEN_ERR;
	switch (w->op) {
	case IBV_WR_RDMA_READ:
		/* The answer lands in our entries: they must take it. */
		for (unsigned i = 0; i < w->nsge; i++)
			if (!pw_swr_local(w, i, IBV_ACCESS_LOCAL_WRITE))
				return IBV_WC_LOC_PROT_ERR;
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		if (w->nsge != 1 || w->sge[0].length != 8 || (w->raddr & 7))
			return IBV_WC_LOC_LEN_ERR;
		if (!pw_swr_local(w, 0, IBV_ACCESS_LOCAL_WRITE))
			return IBV_WC_LOC_PROT_ERR;
		h->len = 8;
		break;
	default:
		if (w->flags & IBV_SEND_INLINE) {
			if (len)
				c->wiov[n++] = (struct iovec){ (void *)w->inl, len };
			break;
		}
		for (unsigned i = 0; i < w->nsge; i++) {
			uint8_t *p = pw_swr_local(w, i, 0);
			if (!p)
				return IBV_WC_LOC_PROT_ERR;
			if (w->sge[i].length)
				c->wiov[n++] = (struct iovec){ p, w->sge[i].length };
		}
	}
	c->wn = n;
	return 0;
}

/* A message of @kind ends the batch's iovecs so far. */
static void pw_vconn_add(struct pw_vconn *c, int kind)
{
	c->wmsg[c->wmn].kind = kind;
	c->wmsg[c->wmn++].end = c->wn;
}

/* Fill the batch: answers first (the peer's sends wait for them), then our
 * error, then our requests; from a posting thread (@app), requests only
 * while few are out. Under slock and wlock. */
static void pw_vconn_fill(struct pw_vconn *c, bool app)
{
	struct pw_qp *qp = c->qp;

	while (c->wmn < PW_VMSGS && c->wn + 2 <= PW_VIOV) {
		unsigned next = c->rs_tail + c->wresps;
		uint32_t idx = qp->sq_sent + c->wreqs;
		if (next != c->rs_head) {
			/* What we did for the peer is answered before anything
			 * else, our error too: an adapter acknowledges what it
			 * executed. */
			struct pw_vresp *r = &c->resp[next & (PW_VRESP - 1)];
			c->wiov[c->wn++] = (struct iovec){ &r->h, sizeof(r->h) };
			if (r->data && r->h.len)
				c->wiov[c->wn++] = (struct iovec){ (void *)r->data, r->h.len };
			pw_vconn_add(c, PW_VW_RESP);
			c->wresps++;
		} else if (c->err_want && !c->err_queued) {
			c->whdr[c->wmn] = (struct pw_wire_vmsg){ .op = PW_VOP_ERR };
			c->wiov[c->wn++] = (struct iovec){ &c->whdr[c->wmn], sizeof(c->whdr[0]) };
			pw_vconn_add(c, PW_VW_ERR);
			c->err_queued = true;
		} else if (idx != qp->sq_head && qp->qp.state == IBV_QPS_RTS && !c->err_queued &&
			   !c->lerr && !c->peer_err &&
			   !(app && idx - qp->sq_tail >= PW_VDEFER &&
			     pw_swr_len(&qp->sq[idx & (qp->sq_size - 1)]) <= PW_VDEFER_LEN)) {
			unsigned wn = c->wn;
			int st = pw_vconn_build(c, &qp->sq[idx & (qp->sq_size - 1)],
						&c->whdr[c->wmn]);
			if (st) {
				c->wn = wn;
				if (st > 0)
					c->lerr = st; /* it completes once those before are */
				return;
			}
			pw_vconn_add(c, PW_VW_REQ);
			c->wreqs++;
		} else {
			return;
		}
	}
}

/* Write the batch, and more, without blocking. Under slock and wlock. */
static void pw_vconn_write(struct pw_vconn *c, bool app)
{
	struct pw_qp *qp = c->qp;
	bool was = c->pollout;

	if (!c->started) {
		/* Nothing was sent before the connection came. */
		qp->sq_sent = qp->sq_tail;
		c->started = true;
	}
	c->pollout = false;
	while (!pw_vconn_dead(c)) {
		pw_vconn_fill(c, app);
		if (c->wi == c->wn)
			break;
		struct msghdr mh = { .msg_iov = &c->wiov[c->wi], .msg_iovlen = c->wn - c->wi };
		ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				c->pollout = true;
			else
				shutdown(c->fd, SHUT_RDWR); /* the reader sees it end */
			break;
		}
		c->wi = pw_iov_advance(c->wiov, c->wi, c->wn, (size_t)n);
		/* The messages written whole. */
		for (; c->wmi < c->wmn && c->wmsg[c->wmi].end <= c->wi; c->wmi++) {
			if (c->wmsg[c->wmi].kind == PW_VW_REQ) {
				qp->sq_sent++;
				c->wreqs--;
			} else if (c->wmsg[c->wmi].kind == PW_VW_RESP) {
				c->rs_tail++;
				c->wresps--;
			} else {
				c->err_sent = true;
			}
		}
		/* (The socket may have taken less than all: try again, to
		 * learn when it has room.) */
		if (c->wmi == c->wmn)
			c->wn = c->wi = c->wmn = c->wmi = 0;
	}
	if (c->pollout != was)
		pw_vconn_interest(c);
}

/* Send what waits, then: a send that failed here completes once those before
 * it are answered, and one after the peer failed finds nobody (as on a
 * device whose peer stopped answering); either fails the QP. Under slock. */
static void pw_vconn_run(struct pw_vconn *c, bool app)
{
	struct pw_qp *qp = c->qp;
	int st = 0;

	pthread_mutex_lock(&c->wlock);
	pw_vconn_write(c, app);
	bool idle = c->wmn == 0;
	pthread_mutex_unlock(&c->wlock);
	if (!idle || qp->qp.state != IBV_QPS_RTS || qp->sq_tail != qp->sq_sent ||
	    qp->sq_sent == qp->sq_head)
		return;
	if (c->lerr)
		st = c->lerr;
	else if (c->peer_err)
		st = IBV_WC_RETRY_EXC_ERR;
	else
		return;
	c->lerr = 0;
	pw_qp_complete(qp, &qp->sq[qp->sq_tail++ & (qp->sq_size - 1)], (enum ibv_wc_status)st, 0);
	qp->sq_sent = qp->sq_tail;
	pw_qp_error_locked(qp);
	if (st == IBV_WC_RETRY_EXC_ERR)
		pw_qp_flush_recvs(qp);
}

void pw_vconn_pump(struct pw_qp *qp)
{
	pw_vconn_run(pw_qp_conn(qp), true);
}

void pw_vconn_error(struct pw_qp *qp)
{
	struct pw_vconn *c = pw_qp_conn(qp);

	if (!c)
		return;
	pthread_mutex_lock(&c->wlock);
	/* What was out is flushed: its answers, if any come, are dropped. What
	 * is in the batch still goes (a message begun must end). */
	qp->sq_sent = qp->sq_tail - c->wreqs;
	c->started = true;
	c->lerr = 0;
	c->err_want = true;
	pw_vconn_write(c, false);
	pthread_mutex_unlock(&c->wlock);
}

/* An answer to the peer's request, queued; ACKs in a row with one status
 * become one. Under slock and wlock. false: the peer has more out than any
 * QP may (it broke the protocol). */
static bool pw_vconn_answer(struct pw_vconn *c, const struct pw_wire_vmsg *h, const void *data)
{
	unsigned queued = c->rs_head - c->rs_tail;
	/* Entries in the batch are no longer ours to change. */
	unsigned open = queued - c->wresps;

	if (h->op == PW_VOP_ACK && open) {
		struct pw_vresp *r = &c->resp[(c->rs_head - 1) & (PW_VRESP - 1)];
		if (r->h.op == PW_VOP_ACK && r->h.status == h->status) {
			r->h.len++;
			return true;
		}
	}
	if (queued == PW_VRESP)
		return false;
	c->resp[c->rs_head++ & (PW_VRESP - 1)] = (struct pw_vresp){ .h = *h, .data = data };
	return true;
}

/* ---- reading ---- */

/* Copy @n bytes from @src to where @d says (the last one last). */
static void pw_vdst_put(struct pw_vdst *d, const uint8_t *src, size_t n)
{
	d->left -= n;
	if (d->discard)
		return;
	while (n) {
		if (d->i == d->n) {
			/* Only the last byte is past the entries. Release:
			 * the rest before it, for whoever spins on it. */
			atomic_store_explicit((_Atomic uint8_t *)d->last, *src,
					      memory_order_release);
			return;
		}
		struct iovec *v = &d->iov[d->i];
		size_t k = n < v->iov_len ? n : v->iov_len;
		memcpy(v->iov_base, src, k);
		v->iov_base = (uint8_t *)v->iov_base + k;
		v->iov_len -= k;
		src += k;
		n -= k;
		if (!v->iov_len)
			d->i++;
	}
}

/* @d's entries over @len bytes at @p, the last byte last. */
static void pw_vdst_one(struct pw_vdst *d, uint8_t *p, uint64_t len)
{
	*d = (struct pw_vdst){ .left = len };
	if (!len)
		return;
	if (len > 1)
		d->iov[d->n++] = (struct iovec){ p, len - 1 };
	d->last = p + len - 1;
}

/* Is [@addr, +@len) ours under @key, with @access, and does @qp let the peer
 * do that? Our pointer, or NULL. */
static uint8_t *pw_vconn_mem(const struct pw_qp *qp, uint32_t key, uint64_t addr, uint64_t len,
			     unsigned access)
{
	if ((qp->attr.qp_access_flags & access) != access ||
	    pw_mr_check(key, addr, len, access) < 0)
		return NULL;
	return (uint8_t *)(uintptr_t)addr;
}

/* The peer went, or broke the protocol: as when its process dies. */
static void pw_vconn_gone(struct pw_vconn *c)
{
	if (pw_vconn_dead(c))
		return;
	atomic_store_explicit(&c->dead, true, memory_order_release);
	epoll_ctl(pw_vr.ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->claimed) {
		/* An SRQ's receive taken for a request that never came whole:
		 * it completes flushed, or its entry would never be posted
		 * again. */
		c->claimed = false;
		c->cqe.status = IBV_WC_WR_FLUSH_ERR;
		pw_slot_complete(c->qp->sh, c->qp->evfd, &c->cqe);
	}
	atomic_store_explicit(&c->qp->sh->peer_gone, 1, memory_order_release);
	pw_qp_check_peer(c->qp);
}

/* Our QP's next receive: from its own ring (looked at; taken when the
 * request is served), or claimed from its SRQ. */
static int pw_vconn_next_recv(struct pw_vconn *c, struct pw_vrecv *rv)
{
	struct pw_qp *qp = c->qp;

	if (!qp->srq)
		return pw_slot_recv(qp->sh, &c->rq_tail, rv);
	int st = pw_vsrq_take(pw_srq_shm(qp->srq), &c->rq_tail, rv);
	if (st == IBV_WC_SUCCESS)
		pw_srq_check_limit(qp->srq);
	return st;
}

/* A SEND or WRITE_IMM needs our next receive: 1 with it taken (into c),
 * 0 when none is posted (the connection waits: RNR), -1 broken. */
static int pw_vconn_take_recv(struct pw_vconn *c, struct pw_vrecv *rv)
{
	int st = pw_vconn_next_recv(c, rv);

	if (st == PW_RNR) {
		atomic_store_explicit(&c->stalled, true, memory_order_seq_cst);
		/* A receive posted just before the flag was seen: go on.
		 * (Seq_cst: pairs with pw_vconn_recv_posted().) */
		(void)atomic_load_explicit(c->qp->srq ? &pw_srq_shm(c->qp->srq)->rq_head
						      : &c->qp->sh->rq_head,
					   memory_order_seq_cst);
		st = pw_vconn_next_recv(c, rv);
		if (st == PW_RNR) {
			pw_vconn_interest(c);
			return 0;
		}
		atomic_store_explicit(&c->stalled, false, memory_order_relaxed);
	}
	if (st != IBV_WC_SUCCESS)
		return -1;
	c->take_recv = true;
	c->claimed = c->qp->srq != NULL;
	/* wr_id: the index taken (pw_qp_poll_recv() finds ours by it). */
	c->cqe = (struct pw_vcqe){ .wr_id = c->rq_tail, .src_qp = c->qp->peer_qpn };
	return 1;
}

/* A request's header is in: where its payload goes, or what it does. 1: go
 * on; 0: wait (RNR); -1: the peer broke the protocol. */
static int pw_vconn_request(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;
	const struct pw_wire_vmsg *h = &c->rh;
	struct pw_vrecv rv;
	uint8_t *p;
	int r;

	c->st = IBV_WC_SUCCESS;
	c->take_recv = false;
	c->answer = true;
	if (qp->qp.state != IBV_QPS_RTR && qp->qp.state != IBV_QPS_RTS) {
		/* Failed (we said so): nothing is done, nothing answered. */
		c->answer = false;
		c->dst = (struct pw_vdst){ .discard = true };
		if (h->op <= PW_VOP_WRITE_IMM)
			c->dst.left = h->len;
		return 1;
	}
	switch (h->op) {
	case PW_VOP_SEND:
	case PW_VOP_SEND_IMM: {
		r = pw_vconn_take_recv(c, &rv);
		if (r <= 0)
			return r;
		uint64_t cap = 0;
		c->dst = (struct pw_vdst){ .left = h->len };
		for (unsigned i = 0; i < rv.nsge; i++)
			cap += rv.sge[i].length;
		c->cqe.opcode = IBV_WC_RECV;
		c->cqe.byte_len = h->len;
		if (h->op == PW_VOP_SEND_IMM) {
			c->cqe.imm = h->imm;
			c->cqe.flags = IBV_WC_WITH_IMM;
		}
		if (h->len > cap) {
			c->cqe.status = IBV_WC_LOC_LEN_ERR;
			c->st = IBV_WC_REM_INV_REQ_ERR;
			c->dst.discard = true;
			return 1;
		}
		uint64_t at = 0;
		for (unsigned i = 0; i < rv.nsge && at < h->len; i++) {
			uint64_t n =
				rv.sge[i].length < h->len - at ? rv.sge[i].length : h->len - at;
			if (pw_mr_check(rv.sge[i].lkey, rv.sge[i].addr, n, IBV_ACCESS_LOCAL_WRITE) <
			    0) {
				c->cqe.status = IBV_WC_LOC_PROT_ERR;
				c->st = IBV_WC_REM_ACCESS_ERR;
				c->dst.discard = true;
				return 1;
			}
			c->dst.iov[c->dst.n++] =
				(struct iovec){ (void *)(uintptr_t)rv.sge[i].addr, n };
			at += n;
		}
		return 1;
	}
	case PW_VOP_WRITE:
	case PW_VOP_WRITE_IMM:
		p = h->len ? pw_vconn_mem(qp, h->rkey, h->raddr, h->len, IBV_ACCESS_REMOTE_WRITE)
			   : NULL;
		if (h->len && !p) {
			c->st = IBV_WC_REM_ACCESS_ERR;
			c->dst = (struct pw_vdst){ .left = h->len, .discard = true };
			return 1;
		}
		if (h->op == PW_VOP_WRITE_IMM) {
			r = pw_vconn_take_recv(c, &rv);
			if (r <= 0)
				return r;
			c->cqe.opcode = IBV_WC_RECV_RDMA_WITH_IMM;
			c->cqe.byte_len = h->len;
			c->cqe.imm = h->imm;
			c->cqe.flags = IBV_WC_WITH_IMM;
		}
		pw_vdst_one(&c->dst, p, h->len);
		return 1;
	case PW_VOP_READ:
	case PW_VOP_CAS:
	case PW_VOP_FADD:
		c->dst = (struct pw_vdst){ 0 }; /* no payload */
		return 1;
	default:
		return -1;
	}
}

/* A request read whole: complete the receive it took, answer it. Under
 * slock and wlock. false: the peer broke the protocol. */
static bool pw_vconn_served(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;
	const struct pw_wire_vmsg *h = &c->rh;
	struct pw_wire_vmsg a = { .op = PW_VOP_ACK, .status = (uint8_t)c->st, .len = 1 };
	const void *data = NULL;

	bool used = c->st == IBV_WC_SUCCESS || c->cqe.status != IBV_WC_SUCCESS;
	if (c->take_recv && qp->srq) {
		/* Claimed when the request came: it completes either way. */
		if (!used)
			c->cqe.status = IBV_WC_REM_ABORT_ERR;
		c->claimed = false;
		pw_slot_complete(qp->sh, qp->evfd, &c->cqe);
	} else if (c->take_recv && used) {
		/* Release: the receive's buffers, then that it is taken. */
		atomic_store_explicit(&qp->sh->rq_tail, c->rq_tail + 1, memory_order_release);
		pw_slot_complete(qp->sh, qp->evfd, &c->cqe);
	}
	if (!c->answer)
		return true;
	if (h->op == PW_VOP_READ) {
		a = (struct pw_wire_vmsg){ .op = PW_VOP_READ_RESP, .len = h->len };
		if (h->len > PW_VMAXLEN ||
		    (h->len && !(data = pw_vconn_mem(qp, h->rkey, h->raddr, h->len,
						     IBV_ACCESS_REMOTE_READ)))) {
			a.status = IBV_WC_REM_ACCESS_ERR;
			a.len = 0;
		}
	} else if (h->op == PW_VOP_CAS || h->op == PW_VOP_FADD) {
		_Atomic uint64_t *t =
			(h->raddr & 7) ? NULL
				       : (_Atomic uint64_t *)pw_vconn_mem(qp, h->rkey, h->raddr, 8,
									  IBV_ACCESS_REMOTE_ATOMIC);
		a = (struct pw_wire_vmsg){ .op = PW_VOP_ATOMIC_RESP };
		if (!t) {
			a.status = IBV_WC_REM_ACCESS_ERR;
		} else if (h->op == PW_VOP_CAS) {
			/* Our own memory: atomic with our own CPUs too. */
			uint64_t old = h->arg;
			atomic_compare_exchange_strong_explicit(
				t, &old, h->arg2, memory_order_seq_cst, memory_order_seq_cst);
			a.arg = old;
		} else {
			a.arg = atomic_fetch_add_explicit(t, h->arg, memory_order_seq_cst);
		}
	}
	return pw_vconn_answer(c, &a, data);
}

/* An answer's header is in: check it against the oldest request out. 1: go
 * on; -1: it answers nothing we asked. Under slock. */
static int pw_vconn_answered(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;
	const struct pw_wire_vmsg *h = &c->rh;

	c->dst = (struct pw_vdst){ 0 };
	c->st = h->status <= IBV_WC_TM_RNDV_INCOMPLETE ? h->status : IBV_WC_GENERAL_ERR;
	if (qp->qp.state == IBV_QPS_ERR || qp->sq_tail == qp->sq_sent) {
		/* Flushed already (or never asked: a broken peer). */
		if (qp->qp.state != IBV_QPS_ERR)
			return -1;
		if (h->op == PW_VOP_READ_RESP)
			c->dst = (struct pw_vdst){ .left = h->len, .discard = true };
		return 1;
	}
	const struct pw_swr *w = &qp->sq[qp->sq_tail & (qp->sq_size - 1)];
	switch (h->op) {
	case PW_VOP_ACK:
		if (h->len == 0 || h->len > qp->sq_sent - qp->sq_tail)
			return -1;
		for (uint32_t i = 0; i < h->len; i++) {
			enum ibv_wr_opcode op = qp->sq[(qp->sq_tail + i) & (qp->sq_size - 1)].op;
			if (op == IBV_WR_RDMA_READ || op == IBV_WR_ATOMIC_CMP_AND_SWP ||
			    op == IBV_WR_ATOMIC_FETCH_AND_ADD)
				return -1; /* those have answers of their own */
		}
		return 1;
	case PW_VOP_READ_RESP:
		if (w->op != IBV_WR_RDMA_READ ||
		    (h->status == IBV_WC_SUCCESS ? h->len != pw_swr_len(w) : h->len != 0))
			return -1;
		c->dst.left = h->len;
		for (unsigned i = 0; i < w->nsge; i++) {
			uint8_t *p = pw_swr_local(w, i, IBV_ACCESS_LOCAL_WRITE);
			if (!p) {
				/* (Deregistered since it was sent.) */
				c->st = IBV_WC_LOC_PROT_ERR;
				c->dst.discard = true;
				break;
			}
			if (w->sge[i].length)
				c->dst.iov[c->dst.n++] = (struct iovec){ p, w->sge[i].length };
		}
		return 1;
	case PW_VOP_ATOMIC_RESP:
		if (w->op != IBV_WR_ATOMIC_CMP_AND_SWP && w->op != IBV_WR_ATOMIC_FETCH_AND_ADD)
			return -1;
		return 1;
	default:
		return -1;
	}
}

/* An answer read whole: its requests complete. Under slock. */
static void pw_vconn_complete(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;
	const struct pw_wire_vmsg *h = &c->rh;
	unsigned n = h->op == PW_VOP_ACK ? h->len : 1;
	enum ibv_wc_status st = (enum ibv_wc_status)c->st;

	if (qp->qp.state == IBV_QPS_ERR)
		return;
	for (unsigned i = 0; i < n; i++) {
		const struct pw_swr *w = &qp->sq[qp->sq_tail & (qp->sq_size - 1)];
		if (h->op == PW_VOP_ATOMIC_RESP && st == IBV_WC_SUCCESS) {
			uint8_t *p = pw_swr_local(w, 0, IBV_ACCESS_LOCAL_WRITE);
			if (p)
				memcpy(p, &h->arg, 8);
			else
				st = IBV_WC_LOC_PROT_ERR;
		}
		qp->sq_tail++;
		pw_qp_complete(qp, w, st, st == IBV_WC_SUCCESS ? (uint32_t)pw_swr_len(w) : 0);
	}
	if (st != IBV_WC_SUCCESS) {
		pw_qp_error_locked(qp);
		return;
	}
	/* Room: requests left waiting go (PW_VDEFER). */
	pw_vconn_run(c, false);
}

/* The peer's QP failed: what we have out will not be answered. */
static void pw_vconn_peer_err(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;

	pthread_mutex_lock(&qp->slock);
	c->peer_err = true;
	if (qp->sq_tail != qp->sq_sent && qp->qp.state != IBV_QPS_ERR) {
		pw_qp_complete(qp, &qp->sq[qp->sq_tail++ & (qp->sq_size - 1)], IBV_WC_RETRY_EXC_ERR,
			       0);
		pw_qp_error_locked(qp);
		pw_qp_flush_recvs(qp);
	}
	pthread_mutex_unlock(&qp->slock);
}

static bool pw_vop_request(uint8_t op)
{
	return op >= PW_VOP_SEND && op <= PW_VOP_FADD;
}

/* A header is in: begin its message. 1: go on, 0: wait, -1: broken. */
static int pw_vconn_begin(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;
	int r;

	if (c->rh.len > PW_VMAXLEN)
		return -1;
	if (pw_vop_request(c->rh.op))
		return pw_vconn_request(c);
	if (c->rh.op == PW_VOP_ERR) {
		pw_vconn_peer_err(c);
		c->dst = (struct pw_vdst){ 0 };
		return 1;
	}
	pthread_mutex_lock(&qp->slock);
	r = pw_vconn_answered(c);
	pthread_mutex_unlock(&qp->slock);
	return r;
}

/* A message read whole. false: broken. */
static bool pw_vconn_end(struct pw_vconn *c)
{
	struct pw_qp *qp = c->qp;
	bool ok = true;

	if (c->rh.op == PW_VOP_ERR)
		return true;
	pthread_mutex_lock(&qp->slock);
	if (pw_vop_request(c->rh.op)) {
		pthread_mutex_lock(&c->wlock);
		ok = pw_vconn_served(c);
		pthread_mutex_unlock(&c->wlock);
	} else {
		pw_vconn_complete(c);
	}
	pthread_mutex_unlock(&qp->slock);
	return ok;
}

/* Answers queued by reading go out. */
static void pw_vconn_flush(struct pw_vconn *c)
{
	pthread_mutex_lock(&c->qp->slock);
	pw_vconn_run(c, false);
	pthread_mutex_unlock(&c->qp->slock);
}

/* More bytes into the buffer (it is empty): 1, 0 none yet, -1 the end. */
static int pw_vconn_refill(struct pw_vconn *c)
{
	ssize_t n;

	do
		n = recv(c->fd, c->buf, PW_VBUF, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	c->bhead = 0;
	c->btail = (size_t)n;
	return 1;
}

/* A large payload's entries straight from the socket (the buffer is
 * empty): 1, 0 none yet, -1 the end. */
static int pw_vconn_direct(struct pw_vconn *c)
{
	struct pw_vdst *d = &c->dst;
	struct msghdr mh = { .msg_iov = &d->iov[d->i], .msg_iovlen = d->n - d->i };
	ssize_t n;

	do
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0)
		return -1;
	d->left -= (uint64_t)n;
	d->i = pw_iov_advance(d->iov, d->i, d->n, (size_t)n);
	return 1;
}

/* Read and serve what @c has, until it has no more, or waits. */
static void pw_vconn_read(struct pw_vconn *c)
{
	int batch = 0, r;

	while (!pw_vconn_dead(c) && !atomic_load_explicit(&c->stalled, memory_order_acquire)) {
		size_t have = c->btail - c->bhead;
		if (!c->in_data) {
			size_t need = sizeof(c->rh) - c->rgot;
			if (need) {
				if (!have) {
					r = pw_vconn_refill(c);
					if (r <= 0)
						goto out;
					continue;
				}
				size_t k = have < need ? have : need;
				memcpy((uint8_t *)&c->rh + c->rgot, c->buf + c->bhead, k);
				c->bhead += k;
				c->rgot += k;
				if (k < need)
					continue;
			}
			r = pw_vconn_begin(c);
			if (r < 0)
				goto broken;
			if (r == 0)
				break; /* RNR: until a receive is posted */
			c->in_data = true;
		}
		if (c->dst.left) {
			have = c->btail - c->bhead;
			if (have) {
				size_t k = have < c->dst.left ? have : (size_t)c->dst.left;
				pw_vdst_put(&c->dst, c->buf + c->bhead, k);
				c->bhead += k;
			} else {
				bool direct = !c->dst.discard && c->dst.i < c->dst.n &&
					      c->dst.left >= PW_VDIRECT;
				r = direct ? pw_vconn_direct(c) : pw_vconn_refill(c);
				if (r <= 0)
					goto out;
			}
			if (c->dst.left)
				continue;
		}
		c->in_data = false;
		c->rgot = 0;
		if (!pw_vconn_end(c))
			goto broken;
		/* (A large message counts for more: its sender waits.) */
		batch += 1 + (int)(c->rh.op <= PW_VOP_WRITE_IMM ? c->rh.len / 16384 : 0);
		if (batch >= PW_VBATCH) {
			pw_vconn_flush(c);
			batch = 0;
		}
	}
	if (batch)
		pw_vconn_flush(c);
	return;
out:
	if (batch)
		pw_vconn_flush(c);
	if (r < 0)
		pw_vconn_gone(c);
	return;
broken:
	pw_vconn_gone(c);
}

/* ---- the progress thread ---- */

static struct pw_vconn *pw_vconn_by_tag(uint64_t tag)
{
	uint32_t slot = (uint32_t)tag;
	struct pw_vconn *c = slot < PW_VQPS ? pw_vconn_at(slot) : NULL;

	return c && c->gen == (uint32_t)(tag >> 32) ? c : NULL;
}

/* Read @c unless another thread does; the progress thread (@edge: woken
 * by new bytes) then tells that one to read again. */
static void pw_vconn_take(struct pw_vconn *c, bool edge)
{
	for (;;) {
		if (pthread_mutex_trylock(&c->rdlock) != 0) {
			if (!edge)
				return;
			atomic_store_explicit(&c->missed, true, memory_order_seq_cst);
			/* The reader may have let go before it saw that. */
			if (pthread_mutex_trylock(&c->rdlock) != 0)
				return;
		}
		atomic_store_explicit(&c->missed, false, memory_order_relaxed);
		pw_vconn_read(c);
		pthread_mutex_unlock(&c->rdlock);
		/* Seq_cst: the unlock before the look (pairs with the store above). */
		if (!atomic_exchange_explicit(&c->missed, false, memory_order_seq_cst))
			return;
		edge = false;
	}
}

static void *pw_vremote_main(void *arg)
{
	struct epoll_event evs[16];

	(void)arg;
	uint64_t retry_at = 0; /* ns: when waiting sends on this node are retried */

	while (!atomic_load_explicit(&pw_vr.quit, memory_order_acquire)) {
		/* Sends on this node that wait get PW_RNR_RETRY_MS to go on
		 * their own (the application's next post or poll), then this
		 * thread retries them: it takes a QP's lock only then. */
		int tmo = -1;
		if (atomic_load_explicit(&pw_vr.retry, memory_order_relaxed)) {
			uint64_t now = pw_now_ns();
			if (!retry_at)
				retry_at = now + PW_RNR_RETRY_MS * 1000000ull;
			if (now >= retry_at) {
				retry_at = 0;
				/* Acquire pairs with the release in
				 * pw_vremote_retry(): the QPs marked stuck before
				 * it are seen. */
				atomic_exchange_explicit(&pw_vr.retry, false, memory_order_acquire);
				if (pw_qp_retry_all()) /* (ours: no need to wake us) */
					atomic_store_explicit(&pw_vr.retry, true,
							      memory_order_relaxed);
				continue;
			}
			tmo = (int)((retry_at - now + 999999) / 1000000);
		}
		int n = epoll_wait(pw_vr.ep, evs, 16, tmo);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			uint64_t tag = evs[i].data.u64;
			if (tag == PW_VEV_CTL) {
				pw_vproc_drain(); /* PAIRED news: new connections */
				continue;
			}
			if (tag == PW_VEV_SVC) {
				/* A peer on this node asks for a region we serve. */
				eventfd_t v;
				eventfd_read(pw_vproc_svc_fd(), &v);
				pw_svc_serve(true);
				continue;
			}
			pthread_mutex_lock(&pw_vr.lock);
			if (tag == PW_VEV_WAKE) {
				eventfd_t v;
				eventfd_read(pw_vr.wake, &v);
				for (unsigned s = 0; s < PW_VQPS; s++) {
					struct pw_vconn *c = pw_vconn_at(s);
					if (!c || pw_vconn_dead(c))
						continue;
					/* New: sends posted before it go. */
					if (!c->started)
						pw_vconn_flush(c);
					if (c->fresh) {
						c->fresh = false;
						pw_vconn_take(c, false);
					}
					/* Receives were posted: SENDs waiting for
					 * one go on. */
					if (!atomic_load_explicit(&c->stalled,
								  memory_order_acquire))
						continue;
					pthread_mutex_lock(&c->rdlock);
					atomic_store_explicit(&c->stalled, false,
							      memory_order_relaxed);
					pw_vconn_interest(c);
					pw_vconn_read(c);
					pthread_mutex_unlock(&c->rdlock);
				}
			} else {
				struct pw_vconn *c = pw_vconn_by_tag(tag);
				if (c && (evs[i].events & EPOLLOUT))
					pw_vconn_flush(c);
				if (c && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					pw_vconn_take(c, true);
			}
			pthread_mutex_unlock(&pw_vr.lock);
		}
	}
	return NULL;
}

int pw_vremote_start(void)
{
	struct epoll_event ev = { .events = EPOLLIN };
	sigset_t all, old;
	int r = 0;

	pthread_mutex_lock(&pw_vr.lock);
	if (pw_vr.running)
		goto out;
	pw_vr.ep = epoll_create1(EPOLL_CLOEXEC);
	pw_vr.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (pw_vr.ep < 0 || pw_vr.wake < 0) {
		r = -errno;
		goto fail;
	}
	ev.data.u64 = PW_VEV_WAKE;
	if (epoll_ctl(pw_vr.ep, EPOLL_CTL_ADD, pw_vr.wake, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	/* The router's news (PAIRED_TCP) may come while the application makes
	 * no verbs call: an edge each time, drained by whoever holds the
	 * connection to the router then (proc.c). */
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = PW_VEV_CTL };
	if (epoll_ctl(pw_vr.ep, EPOLL_CTL_ADD, pw_vproc_ctl(), &ev) < 0) {
		r = -errno;
		goto fail;
	}
	/* Peers on this node that ask for regions we serve (svc.c). */
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = PW_VEV_SVC };
	if (epoll_ctl(pw_vr.ep, EPOLL_CTL_ADD, pw_vproc_svc_fd(), &ev) < 0) {
		r = -errno;
		goto fail;
	}
	atomic_store_explicit(&pw_vr.quit, false, memory_order_relaxed);
	/* The application's signals are for its own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = -pthread_create(&pw_vr.thread, NULL, pw_vremote_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&pw_vr.tlock);
	pw_vr.running = true;
	pthread_mutex_unlock(&pw_vr.tlock);
	goto out;
fail:
	if (pw_vr.ep >= 0)
		close(pw_vr.ep);
	if (pw_vr.wake >= 0)
		close(pw_vr.wake);
	pw_vr.ep = pw_vr.wake = -1;
out:
	pthread_mutex_unlock(&pw_vr.lock);
	return r;
}

void pw_vremote_retry(void)
{
	/* Release pairs with the progress thread's acquire exchange. */
	if (!atomic_exchange_explicit(&pw_vr.retry, true, memory_order_release) && pw_vr.wake >= 0)
		eventfd_write(pw_vr.wake, 1);
}

void pw_vremote_stop(void)
{
	pthread_mutex_lock(&pw_vr.lock);
	pthread_mutex_lock(&pw_vr.tlock);
	bool running = pw_vr.running;
	pw_vr.running = false;
	pthread_mutex_unlock(&pw_vr.tlock);
	pthread_mutex_unlock(&pw_vr.lock);
	if (!running)
		return;
	atomic_store_explicit(&pw_vr.quit, true, memory_order_release);
	eventfd_write(pw_vr.wake, 1);
	pthread_join(pw_vr.thread, NULL);
	close(pw_vr.ep);
	close(pw_vr.wake);
	pw_vr.ep = pw_vr.wake = -1;
}

/* ---- connections ---- */

void pw_vlock_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

void pw_qp_paired_tcp(uint32_t qpn, uint32_t peer_qpn, int sock)
{
	struct pw_qp *qp = pw_qp_by_num(qpn);
	struct pw_vconn *c = NULL;
	int one = 1;

	if (!qp || pw_qp_conn(qp) || atomic_load_explicit(&qp->paired, memory_order_acquire) ||
	    peer_qpn != qp->attr.dest_qp_num)
		goto drop;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->buf = malloc(PW_VBUF)) || !(c->resp = calloc(PW_VRESP, sizeof(*c->resp))))
		goto drop;
	if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) < 0)
		goto drop;
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = sock;
	c->qp = qp;
	c->slot = qp->slot;
	pw_vlock_init(&c->wlock);
	pw_vlock_init(&c->rdlock);
	c->fresh = true;
	/* tlock, not pw_vr.lock: a poster may apply this news under its
	 * slock, which the progress thread takes under pw_vr.lock. */
	pthread_mutex_lock(&pw_vr.tlock);
	c->gen = ++pw_vr.gen;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = pw_vconn_tag(c) };
	if (!pw_vr.running || pw_vconn_at(c->slot) ||
	    epoll_ctl(pw_vr.ep, EPOLL_CTL_ADD, sock, &ev) < 0) {
		pthread_mutex_unlock(&pw_vr.tlock);
		pthread_mutex_destroy(&c->wlock);
		pthread_mutex_destroy(&c->rdlock);
		goto drop;
	}
	/* The connection whole, then the pointers (release: pw_vconn_at()'s
	 * and pw_qp_conn()'s acquire), then the flag the posters test first. */
	atomic_store_explicit(&pw_vr.conns[c->slot], c, memory_order_release);
	qp->peer_qpn = peer_qpn;
	atomic_store_explicit(&qp->conn, c, memory_order_release);
	atomic_store_explicit(&qp->paired, true, memory_order_release);
	pthread_mutex_unlock(&pw_vr.tlock);
	/* Sends posted before this go, and bytes whose edge came before it
	 * was in the table are read: the progress thread does both. */
	eventfd_write(pw_vr.wake, 1);
	return;
drop:
	if (c) {
		free(c->buf);
		free(c->resp);
		free(c);
	}
	close(sock);
}

void pw_vconn_recv_posted(struct pw_qp *qp)
{
	struct pw_vconn *c = pw_qp_conn(qp);

	/* Seq_cst, as pw_post_recv()'s store of rq_head: the reader stores the
	 * flag, then looks at rq_head (pw_vconn_take_recv), so one of the two
	 * sees the other. */
	if (c && atomic_load_explicit(&c->stalled, memory_order_seq_cst))
		eventfd_write(pw_vr.wake, 1);
}

void pw_vconn_poll(struct pw_qp *qp)
{
	struct pw_vconn *c = pw_qp_conn(qp);

	if (c && !pw_vconn_dead(c))
		pw_vconn_take(c, false);
}

void pw_vconn_drop(struct pw_qp *qp)
{
	struct pw_vconn *c;

	pthread_mutex_lock(&pw_vr.lock);
	pthread_mutex_lock(&pw_vr.tlock);
	c = pw_qp_conn(qp);
	if (c) {
		atomic_store_explicit(&pw_vr.conns[c->slot], NULL, memory_order_relaxed);
		if (!pw_vconn_dead(c))
			epoll_ctl(pw_vr.ep, EPOLL_CTL_DEL, c->fd, NULL);
	}
	pthread_mutex_unlock(&pw_vr.tlock);
	pthread_mutex_unlock(&pw_vr.lock);
	if (!c)
		return;
	pthread_mutex_lock(&qp->slock);
	/* Answers owed go before the end (an adapter acknowledged them). */
	if (!pw_vconn_dead(c)) {
		pthread_mutex_lock(&c->wlock);
		pw_vconn_write(c, false);
		pthread_mutex_unlock(&c->wlock);
	}
	atomic_store_explicit(&qp->conn, NULL, memory_order_relaxed);
	atomic_store_explicit(&qp->paired, false, memory_order_relaxed);
	pthread_mutex_unlock(&qp->slock);
	close(c->fd); /* the peer reads the end: its QP fails */
	pthread_mutex_destroy(&c->wlock);
	pthread_mutex_destroy(&c->rdlock);
	free(c->buf);
	free(c->resp);
	free(c);
}
