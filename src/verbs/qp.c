// SPDX-License-Identifier: MIT
/*
 * RC queue pairs on podwire0, between processes of one node. The router
 * numbers a QP (VERBS_QP) and, when two QPs point at each other at RTR
 * (VERBS_CONNECT), hands each the other's arena (VERBS_PAIRED). From then on
 * the initiating thread does the work of both HCAs: it copies into the
 * peer's registered memory (SEND into a posted receive, WRITE), out of it
 * (READ), operates on it (atomics), and completes on both sides. No router
 * and no thread of the target is on the path; the target may be spinning on
 * its own buffer.
 *
 * Everything read from the peer's arena is checked (shm.h). Sends posted
 * before the pairing, or that find no receive posted (RNR: retried for
 * ever, as rnr_retry 7), wait in the QP and go at the next post or poll.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "pwverbs.h"

static pthread_mutex_t pw_qps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pw_qp *pw_qps[PW_VQPS]; /* by slot */

/* ---- the peer's memory ---- */

static void pw_win_drop(struct pw_win *w)
{
	if (w->map)
		munmap(w->map, w->maplen);
	memset(w, 0, sizeof(*w));
}

/*
 * The peer's region @key, mapped, checked for @access and to hold [@addr,
 * @addr + @len): a pointer to @addr in our mapping, or NULL (no such key, not
 * allowed, out of bounds: a remote access error; or, with *@ret_served set,
 * a region its owner serves, which passed those checks: svc.c).
 */
static uint8_t *pw_peer_mem(struct pw_qp *qp, uint32_t key, uint64_t addr, uint64_t len,
			    unsigned access, bool *ret_served)
{
	const struct pw_vkey *k = &qp->peer_keys[key & (PW_VKEYS - 1)];
	uint32_t seq = atomic_load_explicit(&k->seq, memory_order_acquire);
	struct pw_win *w = NULL, *old = &qp->win[0];

	if (!key || (seq & 1))
		return NULL;
	for (unsigned i = 0; i < PW_WINS && !w; i++)
		if (qp->win[i].map && qp->win[i].key == key && qp->win[i].seq == seq)
			w = &qp->win[i];
	if (!w) {
		/* A snapshot of the entry, whole (the seqlock), then checked. */
		uint32_t k_key = k->key, k_access = k->access;
		uint64_t va = k->va, klen = k->len;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&k->seq, memory_order_relaxed) != seq || k_key != key ||
		    !klen || va >= PW_VARENA_META || klen > PW_VARENA_META - va)
			return NULL;
		if (k_access & PW_VKEY_SERVED) {
			/* Not in the arena: its owner checks again, and serves. */
			*ret_served = (k_access & access) == access && addr >= va && len <= klen &&
				      addr - va <= klen - len;
			return NULL;
		}
		long pg = sysconf(_SC_PAGESIZE);
		uint64_t base = va & ~(uint64_t)(pg - 1);
		uint64_t end = (va + klen + (uint64_t)pg - 1) & ~(uint64_t)(pg - 1);
		for (unsigned i = 1; i < PW_WINS; i++)
			if (!qp->win[i].map || qp->win[i].age < old->age)
				old = &qp->win[i];
		pw_win_drop(old);
		old->map = pw_varena_map(qp->peer_arena, base, end - base, PROT_READ | PROT_WRITE);
		if (!old->map)
			return NULL;
		old->maplen = end - base;
		old->mapva = base;
		old->key = key;
		old->seq = seq;
		old->va = va;
		old->len = klen;
		old->access = k_access;
		w = old;
	}
	w->age = ++qp->win_clock;
	if ((w->access & access) != access || addr < w->va || len > w->len ||
	    addr - w->va > w->len - len)
		return NULL;
	return w->map + (addr - w->mapva);
}

/* ---- completions ---- */

void pw_qp_complete(struct pw_qp *qp, const struct pw_swr *w, enum ibv_wc_status st, uint32_t len)
{
	static const enum ibv_wc_opcode ops[] = {
		[IBV_WR_RDMA_WRITE] = IBV_WC_RDMA_WRITE,
		[IBV_WR_RDMA_WRITE_WITH_IMM] = IBV_WC_RDMA_WRITE,
		[IBV_WR_SEND] = IBV_WC_SEND,
		[IBV_WR_SEND_WITH_IMM] = IBV_WC_SEND,
		[IBV_WR_RDMA_READ] = IBV_WC_RDMA_READ,
		[IBV_WR_ATOMIC_CMP_AND_SWP] = IBV_WC_COMP_SWAP,
		[IBV_WR_ATOMIC_FETCH_AND_ADD] = IBV_WC_FETCH_ADD,
	};
	if (st == IBV_WC_SUCCESS && !qp->sig_all && !(w->flags & IBV_SEND_SIGNALED))
		return;
	if (st != IBV_WC_SUCCESS) {
		/* An error completion puts the QP in the error state (the
		 * caller flushes the rest): before the completion can be
		 * polled, by another thread than this one too. */
		qp->qp.state = IBV_QPS_ERR;
		qp->attr.qp_state = IBV_QPS_ERR;
	}
	struct ibv_wc wc = { .wr_id = w->wr_id,
			     .status = st,
			     .opcode = ops[w->op],
			     .byte_len = len,
			     .qp_num = qp->qp.qp_num };
	pw_cq_push(qp->scq, &wc);
}

void pw_slot_complete(struct pw_vqp *p, int evfd, const struct pw_vcqe *c)
{
	uint32_t h = atomic_load_explicit(&p->cq_head, memory_order_relaxed);

	p->cq[h & (PW_VRQ_DEPTH - 1)] = *c;
	/* Release: the entry before the index; pairs with the owner's acquire
	 * in pw_qp_poll_recv(). */
	atomic_store_explicit(&p->cq_head, h + 1, memory_order_release);
	if (atomic_exchange_explicit(&p->armed, 0, memory_order_acq_rel))
		eventfd_write(evfd, 1);
}

/* A receive completion into the peer's slot, and its wake-up. */
static void pw_peer_complete(struct pw_qp *qp, const struct pw_vcqe *c)
{
	pw_slot_complete(qp->peer, qp->peer_evfd, c);
}

/* ---- moving the data ---- */

uint8_t *pw_swr_local(const struct pw_swr *w, unsigned i, unsigned access)
{
	if (w->flags & IBV_SEND_INLINE)
		return NULL;
	if (pw_mr_check(w->sge[i].lkey, w->sge[i].addr, w->sge[i].length, access) < 0)
		return NULL;
	return (uint8_t *)(uintptr_t)w->sge[i].addr;
}

/* The bytes of @w in order, into @dst (len bytes, already checked): all but
 * the last byte, then the last (release), so that whoever spins on it sees
 * the rest. false: a local protection error. */
static bool pw_gather(const struct pw_swr *w, uint8_t *dst, uint64_t len)
{
	const uint8_t *last = NULL;
	uint64_t at = 0;

	if (!len)
		return true;
	if (w->flags & IBV_SEND_INLINE) {
		memcpy(dst, w->inl, len - 1);
		last = &w->inl[len - 1];
	} else {
		for (unsigned i = 0; i < w->nsge && at < len; i++) {
			const uint8_t *src = pw_swr_local(w, i, 0);
			uint64_t n = w->sge[i].length;
			if (!src)
				return false;
			if (n && at + n == len) {
				last = src + n - 1;
				n--;
			}
			memcpy(dst + at, src, n);
			at += n;
		}
	}
	if (!last)
		return false; /* (the entries hold fewer bytes than counted) */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit((_Atomic uint8_t *)(dst + len - 1), *last, memory_order_relaxed);
	return true;
}

bool pw_swr_copy_out(const struct pw_swr *w, uint64_t off, uint8_t *dst, uint64_t n)
{
	if (w->flags & IBV_SEND_INLINE) {
		if (off > w->inl_len || n > w->inl_len - off)
			return false;
		memcpy(dst, w->inl + off, n);
		return true;
	}
	for (unsigned i = 0; i < w->nsge && n; i++) {
		uint64_t l = w->sge[i].length;
		if (off >= l) {
			off -= l;
			continue;
		}
		const uint8_t *src = pw_swr_local(w, i, 0);
		uint64_t k = l - off < n ? l - off : n;
		if (!src)
			return false;
		memcpy(dst, src + off, k);
		dst += k;
		n -= k;
		off = 0;
	}
	return n == 0;
}

bool pw_swr_copy_in(const struct pw_swr *w, uint64_t off, const uint8_t *src, uint64_t n)
{
	for (unsigned i = 0; i < w->nsge && n; i++) {
		uint64_t l = w->sge[i].length;
		if (off >= l) {
			off -= l;
			continue;
		}
		uint8_t *dst = pw_swr_local(w, i, IBV_ACCESS_LOCAL_WRITE);
		uint64_t k = l - off < n ? l - off : n;
		if (!dst)
			return false;
		memcpy(dst + off, src, k);
		src += k;
		n -= k;
		off = 0;
	}
	return n == 0;
}

uint64_t pw_swr_len(const struct pw_swr *w)
{
	uint64_t n = 0;

	if (w->flags & IBV_SEND_INLINE)
		return w->inl_len;
	for (unsigned i = 0; i < w->nsge; i++)
		n += w->sge[i].length;
	return n;
}

int pw_slot_recv(struct pw_vqp *p, uint32_t *ret_tail, struct pw_vrecv *ret)
{
	uint32_t tail = atomic_load_explicit(&p->rq_tail, memory_order_relaxed);
	/* Acquire: pairs with pw_post_recv()'s release of rq_head. */
	uint32_t head = atomic_load_explicit(&p->rq_head, memory_order_acquire);

	if (head == tail)
		return PW_RNR;
	if (head - tail > PW_VRQ_DEPTH)
		return IBV_WC_REM_OP_ERR; /* a broken peer */
	*ret = p->rq[tail & (PW_VRQ_DEPTH - 1)];
	*ret_tail = tail;
	if (ret->nsge > PW_VSGE_MAX)
		return IBV_WC_REM_OP_ERR;
	return IBV_WC_SUCCESS;
}

/* SEND and WRITE_WITH_IMM take the peer's next receive. */
static int pw_peer_recv(struct pw_qp *qp, uint32_t *ret_tail, struct pw_vrecv *ret)
{
	if (!pw_qp_peer_alive(qp))
		return IBV_WC_RETRY_EXC_ERR; /* the peer's QP is gone */
	if (qp->peer_srq)
		return pw_vsrq_take(qp->peer_srq, ret_tail, ret); /* (claimed now) */
	return pw_slot_recv(qp->peer, ret_tail, ret);
}

/* The receive at @tail that pw_peer_recv() gave is taken (its buffers
 * written): a QP's own ring moves on; an SRQ's entry was claimed already. */
static void pw_peer_recv_done(struct pw_qp *qp, uint32_t tail)
{
	if (!qp->peer_srq)
		/* Release: the receive's buffers, then that it is taken. */
		atomic_store_explicit(&qp->peer->rq_tail, tail + 1, memory_order_release);
}

/* Are @w's local entries all registered for reading? (Before an SRQ's
 * receive is claimed: a send that fails here leaves it posted.) */
static bool pw_swr_readable(const struct pw_swr *w)
{
	for (unsigned i = 0; i < w->nsge && !(w->flags & IBV_SEND_INLINE); i++)
		if (w->sge[i].length && !pw_swr_local(w, i, 0))
			return false;
	return true;
}

static int pw_do_send(struct pw_qp *qp, const struct pw_swr *w, uint32_t *ret_len)
{
	struct pw_vrecv rv;
	uint32_t tail;
	uint64_t len = pw_swr_len(w), cap = 0, at = 0;
	if (qp->peer_srq && !pw_swr_readable(w))
		return IBV_WC_LOC_PROT_ERR;
	int st = pw_peer_recv(qp, &tail, &rv);

	if (st != IBV_WC_SUCCESS)
		return st;
	for (unsigned i = 0; i < rv.nsge; i++)
		cap += rv.sge[i].length;
	/* wr_id: the index taken (the owner keeps the wr_ids). */
	struct pw_vcqe c = { .wr_id = tail,
			     .opcode = IBV_WC_RECV,
			     .byte_len = (uint32_t)len,
			     .src_qp = qp->qp.qp_num };
	if (w->op == IBV_WR_SEND_WITH_IMM) {
		c.imm = w->imm;
		c.flags = IBV_WC_WITH_IMM;
	}
	if (len > cap) {
		c.status = IBV_WC_LOC_LEN_ERR;
		st = IBV_WC_REM_INV_REQ_ERR;
	} else {
		/* Scatter over the receive's entries, each checked against
		 * the peer's keys; the last byte of the message last. */
		for (unsigned i = 0; i < rv.nsge && at < len && st == IBV_WC_SUCCESS; i++) {
			uint64_t n = rv.sge[i].length < len - at ? rv.sge[i].length : len - at;
			bool served = false;
			uint8_t *dst = pw_peer_mem(qp, rv.sge[i].lkey, rv.sge[i].addr, n,
						   IBV_ACCESS_LOCAL_WRITE, &served);
			if (served) {
				/* Its owner places this entry's part. */
				st = pw_svc_put(qp, PW_VSVC_PLACE, rv.sge[i].lkey, rv.sge[i].addr,
						n, w, at);
				if (st == IBV_WC_REM_ACCESS_ERR)
					c.status = IBV_WC_LOC_PROT_ERR;
				else if (st != IBV_WC_SUCCESS && st != IBV_WC_LOC_PROT_ERR)
					c.status = IBV_WC_REM_ABORT_ERR;
				at += n;
				continue;
			}
			if (!dst) {
				c.status = IBV_WC_LOC_PROT_ERR;
				st = IBV_WC_REM_ACCESS_ERR;
				break;
			}
			if (at == 0 && n == len) {
				if (!pw_gather(w, dst, n))
					st = IBV_WC_LOC_PROT_ERR;
			} else if (!pw_swr_copy_out(w, at, dst, n)) {
				/* (Spread over several entries: in order.) */
				st = IBV_WC_LOC_PROT_ERR;
			}
			at += n;
		}
		if (st == IBV_WC_LOC_PROT_ERR && !qp->peer_srq)
			return st; /* ours: the peer's receive stays posted */
		if (st == IBV_WC_LOC_PROT_ERR)
			c.status = IBV_WC_REM_ABORT_ERR; /* (claimed: deregistered since) */
	}
	pw_peer_recv_done(qp, tail);
	pw_peer_complete(qp, &c);
	*ret_len = (uint32_t)len;
	return st;
}

/* The peer's QP still there? Its slot says so (the router clears it when
 * the peer's process dies). */
bool pw_qp_peer_alive(const struct pw_qp *qp)
{
	return atomic_load_explicit(&qp->peer->qpn, memory_order_acquire) == qp->peer_qpn &&
	       !atomic_load_explicit(&qp->sh->peer_gone, memory_order_acquire);
}

static int pw_do_write(struct pw_qp *qp, const struct pw_swr *w, uint32_t *ret_len)
{
	uint64_t len = pw_swr_len(w);
	struct pw_vrecv rv;
	uint32_t tail = 0;
	int st = IBV_WC_SUCCESS;

	if (!pw_qp_peer_alive(qp))
		return IBV_WC_RETRY_EXC_ERR;

	/* WRITE_WITH_IMM needs a receive: look before writing anything (an
	 * SRQ's is claimed then: the checks come first). */
	uint8_t *dst = NULL;
	bool served = false;
	if (len && qp->peer_srq) {
		dst = pw_peer_mem(qp, w->rkey, w->raddr, len, IBV_ACCESS_REMOTE_WRITE, &served);
		if (!dst && !served)
			return IBV_WC_REM_ACCESS_ERR;
		if (!pw_swr_readable(w))
			return IBV_WC_LOC_PROT_ERR;
	}
	if (w->op == IBV_WR_RDMA_WRITE_WITH_IMM) {
		st = pw_peer_recv(qp, &tail, &rv);
		if (st != IBV_WC_SUCCESS)
			return st;
	}
	if (len) {
		if (!dst && !served)
			dst = pw_peer_mem(qp, w->rkey, w->raddr, len, IBV_ACCESS_REMOTE_WRITE,
					  &served);
		if (served)
			st = pw_svc_put(qp, PW_VSVC_WRITE, w->rkey, w->raddr, len, w, 0);
		else if (!dst)
			return IBV_WC_REM_ACCESS_ERR;
		else if (!pw_gather(w, dst, len))
			st = IBV_WC_LOC_PROT_ERR;
		if (st != IBV_WC_SUCCESS && (w->op != IBV_WR_RDMA_WRITE_WITH_IMM || !qp->peer_srq))
			return st; /* (a receive of the QP's own stays posted) */
	}
	if (w->op == IBV_WR_RDMA_WRITE_WITH_IMM) {
		struct pw_vcqe c = { .wr_id = tail,
				     .status = st == IBV_WC_SUCCESS ? IBV_WC_SUCCESS
								    : IBV_WC_REM_ABORT_ERR,
				     .opcode = IBV_WC_RECV_RDMA_WITH_IMM,
				     .byte_len = (uint32_t)len,
				     .imm = w->imm,
				     .flags = IBV_WC_WITH_IMM,
				     .src_qp = qp->qp.qp_num };
		pw_peer_recv_done(qp, tail);
		pw_peer_complete(qp, &c);
	}
	*ret_len = (uint32_t)len;
	return st;
}

static int pw_do_read(struct pw_qp *qp, const struct pw_swr *w, uint32_t *ret_len)
{
	if (!pw_qp_peer_alive(qp))
		return IBV_WC_RETRY_EXC_ERR;
	uint64_t len = pw_swr_len(w), at = 0;
	bool served = false;
	const uint8_t *src =
		len ? pw_peer_mem(qp, w->rkey, w->raddr, len, IBV_ACCESS_REMOTE_READ, &served)
		    : NULL;

	if (served) {
		int st = pw_svc_get(qp, w->rkey, w->raddr, len, w);
		*ret_len = (uint32_t)len;
		return st;
	}
	if (len && !src)
		return IBV_WC_REM_ACCESS_ERR;
	for (unsigned i = 0; i < w->nsge; i++) {
		uint8_t *dst = pw_swr_local(w, i, IBV_ACCESS_LOCAL_WRITE);
		if (!dst)
			return IBV_WC_LOC_PROT_ERR;
		if (!w->sge[i].length || !src)
			continue;
		memcpy(dst, src + at, w->sge[i].length);
		at += w->sge[i].length;
	}
	*ret_len = (uint32_t)len;
	return IBV_WC_SUCCESS;
}

static int pw_do_atomic(struct pw_qp *qp, const struct pw_swr *w, uint32_t *ret_len)
{
	if (!pw_qp_peer_alive(qp))
		return IBV_WC_RETRY_EXC_ERR;
	if (w->nsge != 1 || w->sge[0].length != 8 || (w->raddr & 7))
		return IBV_WC_LOC_LEN_ERR;
	uint64_t *dst = (uint64_t *)pw_swr_local(w, 0, IBV_ACCESS_LOCAL_WRITE);
	bool served = false;
	_Atomic uint64_t *t = (_Atomic uint64_t *)pw_peer_mem(qp, w->rkey, w->raddr, 8,
							      IBV_ACCESS_REMOTE_ATOMIC, &served);
	uint64_t old;

	if (!dst)
		return IBV_WC_LOC_PROT_ERR;
	if (served) {
		/* Its owner does it: atomic with its own CPU as well. */
		int st = pw_svc_atomic(qp, w, &old);
		if (st == IBV_WC_SUCCESS)
			memcpy(dst, &old, 8);
		*ret_len = 8;
		return st;
	}
	if (!t)
		return IBV_WC_REM_ACCESS_ERR;
	/* Shared memory: atomic with the target's own CPU too. */
	if (w->op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		old = w->cmp;
		atomic_compare_exchange_strong_explicit(t, &old, w->swp, memory_order_seq_cst,
							memory_order_seq_cst);
	} else {
		old = atomic_fetch_add_explicit(t, w->cmp, memory_order_seq_cst);
	}
	memcpy(dst, &old, 8);
	*ret_len = 8;
	return IBV_WC_SUCCESS;
}

static int pw_exec(struct pw_qp *qp, const struct pw_swr *w, uint32_t *len)
{
	switch (w->op) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		return pw_do_send(qp, w, len);
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return pw_do_write(qp, w, len);
	case IBV_WR_RDMA_READ:
		return pw_do_read(qp, w, len);
	default:
		return pw_do_atomic(qp, w, len);
	}
}

/* Receives posted and not taken by the peer complete flushed, as a QP in
 * the error state flushes them. */
void pw_qp_flush_recvs(struct pw_qp *qp)
{
	pthread_mutex_lock(&qp->rlock);
	/* The peer takes no more (its check of our slot). */
	atomic_store_explicit(&qp->sh->qpn, 0, memory_order_release);
	uint32_t taken = atomic_load_explicit(&qp->sh->rq_tail, memory_order_acquire);
	if (qp->rq_head - taken > PW_VRQ_DEPTH)
		taken = qp->rq_head; /* (a broken peer's word) */
	for (uint32_t i = taken; i != qp->rq_head; i++) {
		struct ibv_wc wc = { .wr_id = qp->rq_wrid[i & (PW_VRQ_DEPTH - 1)],
				     .status = IBV_WC_WR_FLUSH_ERR,
				     .opcode = IBV_WC_RECV,
				     .qp_num = qp->qp.qp_num };
		pw_cq_push(qp->rcq, &wc);
	}
	/* (The slot's ring is done with: what follows completes directly.) */
	pthread_mutex_unlock(&qp->rlock);
}

/* The QP fails: every waiting send completes flushed. Under slock. */
void pw_qp_error_locked(struct pw_qp *qp)
{
	qp->qp.state = IBV_QPS_ERR;
	qp->attr.qp_state = IBV_QPS_ERR;
	while (qp->sq_tail != qp->sq_head) {
		const struct pw_swr *w = &qp->sq[qp->sq_tail++ & (qp->sq_size - 1)];
		pw_qp_complete(qp, w, IBV_WC_WR_FLUSH_ERR, 0);
	}
	pw_vconn_error(qp); /* a peer on another node learns it */
}

/*
 * No peer has answered (it never pointed its QP back at this one: a wrong
 * or forged QP number, or a peer that never got to RTR). As an adapter
 * whose transport timer runs out: 4.096 us x 2^timeout per try, retry_cnt
 * retries; then the send completes with IBV_WC_RETRY_EXC_ERR and the QP
 * fails. timeout 0 waits for ever (IBA 9.7.6.1.3). Under slock.
 */
static void pw_qp_unanswered(struct pw_qp *qp)
{
	unsigned t = qp->attr.timeout;
	uint64_t now = pw_now_ns();

	if (qp->sq_tail == qp->sq_head || qp->qp.state != IBV_QPS_RTS) {
		qp->unpaired_since = 0;
		return;
	}
	if (!qp->unpaired_since)
		qp->unpaired_since = now;
	if (!t || t > 31)
		return;
	uint64_t limit = (4096ull << t) * (qp->attr.retry_cnt + 1u);
	if (now - qp->unpaired_since < limit)
		return;
	pw_qp_complete(qp, &qp->sq[qp->sq_tail++ & (qp->sq_size - 1)], IBV_WC_RETRY_EXC_ERR, 0);
	pw_qp_error_locked(qp);
	pw_qp_flush_recvs(qp);
}

static void pw_qp_progress_locked(struct pw_qp *qp)
{
	if (!atomic_load_explicit(&qp->paired, memory_order_acquire)) {
		pw_vproc_drain();
		if (!atomic_load_explicit(&qp->paired, memory_order_acquire)) {
			pw_qp_unanswered(qp);
			return;
		}
	}
	if (pw_qp_conn(qp)) {
		pw_vconn_pump(qp); /* its answers come to the progress thread */
		return;
	}
	while (qp->sq_tail != qp->sq_head && qp->qp.state == IBV_QPS_RTS) {
		const struct pw_swr *w = &qp->sq[qp->sq_tail & (qp->sq_size - 1)];
		uint32_t len = 0;
		int st = pw_exec(qp, w, &len);
		if (st == PW_RNR)
			return;
		qp->sq_tail++;
		pw_qp_complete(qp, w, (enum ibv_wc_status)st, len);
		if (st != IBV_WC_SUCCESS)
			pw_qp_error_locked(qp);
	}
}

void pw_qp_check_peer(struct pw_qp *qp)
{
	if (!atomic_load_explicit(&qp->sh->peer_gone, memory_order_acquire) || qp->failed)
		return;
	pthread_mutex_lock(&qp->slock);
	if (!qp->failed) {
		/* As a device whose peer stopped answering: the send in
		 * flight runs out of retries, the rest are flushed, and so
		 * are the receives. */
		qp->failed = true;
		if (qp->sq_tail != qp->sq_head)
			pw_qp_complete(qp, &qp->sq[qp->sq_tail++ & (qp->sq_size - 1)],
				       IBV_WC_RETRY_EXC_ERR, 0);
		pw_qp_error_locked(qp);
		pw_qp_flush_recvs(qp);
	}
	pthread_mutex_unlock(&qp->slock);
}

/* Do sends on this node wait in @qp? Noted for the progress thread. Under
 * slock. */
static bool pw_qp_note_stuck(struct pw_qp *qp)
{
	bool stuck = pw_qp_has_pending(qp) && qp->qp.state == IBV_QPS_RTS;

	atomic_store_explicit(&qp->stuck, stuck, memory_order_relaxed);
	return stuck;
}

void pw_qp_progress(struct pw_qp *qp)
{
	if (pthread_mutex_trylock(&qp->slock) != 0)
		return; /* the poster is at it */
	pw_qp_progress_locked(qp);
	pw_qp_note_stuck(qp);
	pthread_mutex_unlock(&qp->slock);
}

bool pw_qp_has_pending(struct pw_qp *qp)
{
	/* (A peer on another node: the progress thread sees to them.) */
	return qp->sq_head != qp->sq_tail && !pw_qp_conn(qp);
}

bool pw_qp_retry_all(void)
{
	bool more = false;

	pw_vproc_drain(); /* PAIRED news first */
	/* Under the table's lock, a QP is not freed under us: destroy takes
	 * it after the QP's own (trylock here: no order between them). */
	pthread_mutex_lock(&pw_qps_lock);
	for (unsigned i = 0; i < PW_VQPS; i++) {
		struct pw_qp *qp = pw_qps[i];
		/* Relaxed: a hint; slock orders what is under it. */
		if (!qp || !atomic_load_explicit(&qp->stuck, memory_order_relaxed) ||
		    !atomic_load_explicit(&qp->sh->qpn, memory_order_relaxed))
			continue; /* (nothing waits, or it is being destroyed) */
		if (pthread_mutex_trylock(&qp->slock) != 0) {
			more = true; /* its poster is at it: next time */
			continue;
		}
		if (pw_qp_note_stuck(qp)) {
			if (atomic_load_explicit(&qp->paired, memory_order_acquire))
				pw_qp_progress_locked(qp);
			else
				pw_qp_unanswered(qp); /* (no drain here: news came first) */
			more |= pw_qp_note_stuck(qp);
		}
		pthread_mutex_unlock(&qp->slock);
	}
	pthread_mutex_unlock(&pw_qps_lock);
	return more;
}

/* ---- posting ---- */

static int pw_swr_copy(struct pw_qp *qp, const struct ibv_send_wr *wr, struct pw_swr *w)
{
	switch (wr->opcode) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
	case IBV_WR_RDMA_READ:
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		break;
	default:
		return EINVAL; /* not RC's, or not offered */
	}
	if (wr->num_sge < 0 || (unsigned)wr->num_sge > qp->cap.max_send_sge)
		return EINVAL;
	w->wr_id = wr->wr_id;
	w->op = wr->opcode;
	w->flags = wr->send_flags;
	w->imm = wr->imm_data;
	w->nsge = (unsigned)wr->num_sge;
	memcpy(w->sge, wr->sg_list, w->nsge * sizeof(w->sge[0]));
	if (wr->opcode == IBV_WR_ATOMIC_CMP_AND_SWP || wr->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		w->raddr = wr->wr.atomic.remote_addr;
		w->rkey = wr->wr.atomic.rkey;
		w->cmp = wr->wr.atomic.compare_add;
		w->swp = wr->wr.atomic.swap;
		w->flags &= ~(unsigned)IBV_SEND_INLINE;
	} else {
		w->raddr = wr->wr.rdma.remote_addr;
		w->rkey = wr->wr.rdma.rkey;
	}
	if (w->op == IBV_WR_RDMA_READ)
		w->flags &= ~(unsigned)IBV_SEND_INLINE;
	if (w->flags & IBV_SEND_INLINE) {
		/* The bytes now: the application may reuse them at return. */
		uint64_t n = 0;
		for (unsigned i = 0; i < w->nsge; i++) {
			if (w->sge[i].length > qp->cap.max_inline_data - n)
				return EINVAL;
			memcpy(w->inl + n, (const void *)(uintptr_t)w->sge[i].addr,
			       w->sge[i].length);
			n += w->sge[i].length;
		}
		w->inl_len = (uint32_t)n;
	}
	return 0;
}

int pw_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	struct pw_qp *qp = (struct pw_qp *)ibqp;
	int r = 0;

	pthread_mutex_lock(&qp->slock);
	if (qp->qp.state != IBV_QPS_RTS && qp->qp.state != IBV_QPS_ERR)
		r = EINVAL;
	for (; wr && !r; wr = wr->next) {
		if (qp->sq_head - qp->sq_tail == qp->sq_size) {
			r = ENOMEM; /* more than max_send_wr outstanding */
			break;
		}
		struct pw_swr *w = &qp->sq[qp->sq_head & (qp->sq_size - 1)];
		r = pw_swr_copy(qp, wr, w);
		if (r)
			break;
		qp->sq_head++;
	}
	if (r && bad)
		*bad = wr;
	if (qp->qp.state == IBV_QPS_ERR)
		pw_qp_error_locked(qp);
	else
		pw_qp_progress_locked(qp);
	bool waits = pw_qp_note_stuck(qp);
	pthread_mutex_unlock(&qp->slock);
	if (waits)
		pw_vremote_retry();
	return r;
}

int pw_vrecv_fill(struct pw_vrecv *e, const struct ibv_recv_wr *wr, uint32_t *ret_cap)
{
	uint64_t cap = 0;

	for (int i = 0; i < wr->num_sge; i++) {
		if (pw_mr_check(wr->sg_list[i].lkey, wr->sg_list[i].addr, wr->sg_list[i].length,
				IBV_ACCESS_LOCAL_WRITE) < 0)
			return EINVAL;
		cap += wr->sg_list[i].length;
	}
	*ret_cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	e->wr_id = wr->wr_id;
	e->nsge = (uint32_t)wr->num_sge;
	for (int i = 0; i < wr->num_sge; i++)
		e->sge[i] = (struct pw_vsge){ wr->sg_list[i].addr, wr->sg_list[i].length,
					      wr->sg_list[i].lkey };
	return 0;
}

int pw_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	struct pw_qp *qp = (struct pw_qp *)ibqp;
	int r = 0;

	pthread_mutex_lock(&qp->rlock);
	if (qp->qp.state == IBV_QPS_RESET || qp->srq)
		r = EINVAL; /* (an SRQ's QP takes receives from it only) */
	for (; wr && !r && qp->qp.state == IBV_QPS_ERR; wr = wr->next) {
		/* In the error state a receive completes flushed at once. */
		struct ibv_wc wc = { .wr_id = wr->wr_id,
				     .status = IBV_WC_WR_FLUSH_ERR,
				     .opcode = IBV_WC_RECV,
				     .qp_num = qp->qp.qp_num };
		pw_cq_push(qp->rcq, &wc);
	}
	for (; wr && !r; wr = wr->next) {
		if (wr->num_sge < 0 || (unsigned)wr->num_sge > qp->cap.max_recv_sge) {
			r = EINVAL;
			break;
		}
		/* Room: every receive posted and not yet polled has its
		 * completion slot (shm.h). */
		if (qp->rq_head - qp->cq_tail >= qp->cap.max_recv_wr) {
			r = ENOMEM;
			break;
		}
		r = pw_vrecv_fill(&qp->sh->rq[qp->rq_head & (PW_VRQ_DEPTH - 1)], wr,
				  &qp->rq_cap[qp->rq_head & (PW_VRQ_DEPTH - 1)]);
		if (r)
			break;
		qp->rq_wrid[qp->rq_head & (PW_VRQ_DEPTH - 1)] = wr->wr_id;
		/* Release: the entry before the index; the peer's acquire.
		 * Seq_cst besides: a peer on another node's reader may be
		 * about to wait for it (pw_vconn_recv_posted()). */
		atomic_store_explicit(&qp->sh->rq_head, ++qp->rq_head, memory_order_seq_cst);
	}
	if (r && bad)
		*bad = wr;
	pthread_mutex_unlock(&qp->rlock);
	pw_vconn_recv_posted(qp);
	return r;
}

/* ---- receive completions (under the receive CQ's lock) ---- */

int pw_qp_poll_recv(struct pw_qp *qp, int n, struct ibv_wc *wc)
{
	uint32_t head = atomic_load_explicit(&qp->sh->cq_head, memory_order_acquire);
	int got = 0;

	/* The peer may only complete what we posted (an SRQ: no more than
	 * it holds, each checked below). */
	uint32_t most = qp->srq ? PW_VRQ_DEPTH : qp->rq_head - qp->cq_tail;
	if (head - qp->cq_tail > most)
		head = qp->cq_tail + most;
	while (got < n && qp->cq_tail != head) {
		uint32_t i = qp->cq_tail & (PW_VRQ_DEPTH - 1);
		struct pw_vcqe c = qp->sh->cq[i];
		uint64_t wr_id = qp->rq_wrid[i]; /* ours, not the peer's word */
		uint32_t cap = qp->rq_cap[i];
		if (qp->srq && !pw_srq_polled(qp->srq, (uint32_t)c.wr_id, &wr_id, &cap)) {
			wr_id = 0; /* (an index not in flight: a broken peer) */
			c.status = IBV_WC_GENERAL_ERR;
		}
		if (c.opcode != IBV_WC_RECV_RDMA_WITH_IMM && c.byte_len > cap) {
			/* More than the receive holds: not what a peer of ours
			 * writes. The application must not read past it. */
			c.byte_len = cap;
			if (c.status == IBV_WC_SUCCESS)
				c.status = IBV_WC_LOC_LEN_ERR;
		}
		wc[got] = (struct ibv_wc){
			.wr_id = wr_id,
			.status = c.status <= IBV_WC_TM_RNDV_INCOMPLETE
					  ? (enum ibv_wc_status)c.status
					  : IBV_WC_GENERAL_ERR,
			.opcode = c.opcode == IBV_WC_RECV_RDMA_WITH_IMM ? IBV_WC_RECV_RDMA_WITH_IMM
									: IBV_WC_RECV,
			.byte_len = c.byte_len,
			.imm_data = c.imm,
			.qp_num = qp->qp.qp_num,
			.src_qp = c.src_qp & 0xffffffu, /* (the sender's word: a number) */
			.wc_flags = c.flags & IBV_WC_WITH_IMM,
		};
		got++;
		qp->cq_tail++;
	}
	atomic_store_explicit(&qp->sh->cq_tail, qp->cq_tail, memory_order_release);
	return got;
}

bool pw_qp_recv_ready(struct pw_qp *qp)
{
	return atomic_load_explicit(&qp->sh->cq_head, memory_order_relaxed) != qp->cq_tail;
}

void pw_qp_arm(struct pw_qp *qp, bool on)
{
	atomic_store_explicit(&qp->sh->armed, on, memory_order_seq_cst);
}

bool pw_qp_arm_taken(struct pw_qp *qp)
{
	return !atomic_load_explicit(&qp->sh->armed, memory_order_acquire);
}

/* ---- pairing ---- */

struct pw_qp *pw_qp_by_num(uint32_t qpn)
{
	struct pw_qp *qp = NULL;

	pthread_mutex_lock(&pw_qps_lock);
	for (unsigned i = 0; i < PW_VQPS && !qp; i++)
		if (pw_qps[i] && pw_qps[i]->qp.qp_num == qpn)
			qp = pw_qps[i];
	pthread_mutex_unlock(&pw_qps_lock);
	return qp;
}

/* @size bytes at @off of the peer's @arena, mapped read-write from the page
 * they start in: a pointer to them, the mapping in @ret_map and @ret_len;
 * NULL if it could not be mapped. */
static void *pw_peer_part(int arena, uint64_t off, size_t size, void **ret_map, size_t *ret_len)
{
	uint64_t base = off & ~(uint64_t)(sysconf(_SC_PAGESIZE) - 1);
	size_t len = (size_t)(off - base) + size;
	void *map = pw_varena_map(arena, base, len, PROT_READ | PROT_WRITE);

	if (!map)
		return NULL;
	*ret_map = map;
	*ret_len = len;
	return (uint8_t *)map + (off - base);
}

void pw_qp_paired(uint32_t qpn, uint32_t peer_qpn, uint32_t peer_slot, int arena, int evfd, int svc)
{
	struct pw_qp *qp = pw_qp_by_num(qpn);

	if (!qp || atomic_load_explicit(&qp->paired, memory_order_relaxed) || peer_slot >= PW_VQPS)
		goto drop;
	qp->peer_keys =
		pw_varena_map(arena, PW_VARENA_META, PW_VKEYS * sizeof(struct pw_vkey), PROT_READ);
	qp->peer = pw_peer_part(
		arena, PW_VARENA_META + PW_VQP_OFF + (uint64_t)peer_slot * sizeof(struct pw_vqp),
		sizeof(struct pw_vqp), &qp->peer_map, &qp->peer_maplen);
	if (!qp->peer_keys || !qp->peer)
		goto unmap;
	/* Its receives from an SRQ of the peer's: that ring too. */
	uint32_t srq = atomic_load_explicit(&qp->peer->srq, memory_order_acquire);
	if (srq > PW_VSRQS)
		srq = 0; /* (a broken peer: its own receives, which it has none of) */
	if (srq) {
		qp->peer_srq = pw_peer_part(
			arena, PW_VARENA_META + PW_VSRQ_OFF + (srq - 1) * sizeof(struct pw_vsrq),
			sizeof(struct pw_vsrq), &qp->peer_srq_map, &qp->peer_srq_maplen);
		if (!qp->peer_srq)
			goto unmap;
	}
	/* Its owner's service for what it could not re-back (svc.c): our QP's
	 * entry alone, on pages of its own. */
	qp->peer_svc = pw_varena_map(
		arena, PW_VARENA_META + PW_VSVC_OFF + (uint64_t)peer_slot * sizeof(struct pw_vsvc),
		sizeof(struct pw_vsvc), PROT_READ | PROT_WRITE);
	if (!qp->peer_svc)
		goto unmap;
	qp->peer_qpn = peer_qpn;
	qp->peer_arena = arena;
	qp->peer_evfd = evfd;
	qp->peer_svc_fd = svc;
	/* Release: the peer's fields before the flag; the poster's acquire. */
	atomic_store_explicit(&qp->paired, true, memory_order_release);
	pw_vremote_retry(); /* sends posted before may wait */
	return;
unmap:
	if (qp->peer_keys)
		munmap((void *)qp->peer_keys, PW_VKEYS * sizeof(struct pw_vkey));
	if (qp->peer)
		munmap(qp->peer_map, qp->peer_maplen);
	if (qp->peer_srq_map)
		munmap(qp->peer_srq_map, qp->peer_srq_maplen);
	qp->peer_keys = NULL;
	qp->peer = NULL;
	qp->peer_map = NULL;
	qp->peer_srq = NULL;
	qp->peer_srq_map = NULL;
drop:
	close(arena);
	close(evfd);
	close(svc);
}

static void pw_qp_unpair(struct pw_qp *qp)
{
	if (!atomic_load_explicit(&qp->paired, memory_order_acquire))
		return;
	for (unsigned i = 0; i < PW_WINS; i++)
		pw_win_drop(&qp->win[i]);
	munmap((void *)qp->peer_keys, PW_VKEYS * sizeof(struct pw_vkey));
	munmap(qp->peer_map, qp->peer_maplen);
	if (qp->peer_srq_map)
		munmap(qp->peer_srq_map, qp->peer_srq_maplen);
	munmap(qp->peer_svc, sizeof(struct pw_vsvc));
	qp->peer_srq = NULL;
	qp->peer_srq_map = NULL;
	qp->peer_svc = NULL;
	close(qp->peer_arena);
	close(qp->peer_evfd);
	close(qp->peer_svc_fd);
	qp->peer_svc_fd = -1;
	atomic_store_explicit(&qp->paired, false, memory_order_relaxed);
}

/* ---- the verbs ---- */

struct pw_qp_rule {
	enum ibv_qp_state from, to;
	int req, opt;
};

/* RC's transitions (IBA 11.2.4.2, Table 91), with the attributes each needs
 * and those it may take. To RESET and to ERR: from any state, nothing more. */
static const struct pw_qp_rule pw_qp_rules[] = {
	{ IBV_QPS_RESET, IBV_QPS_INIT, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS, 0 },
	{ IBV_QPS_INIT, IBV_QPS_INIT, 0, IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS },
	{ IBV_QPS_INIT, IBV_QPS_RTR,
	  IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER,
	  IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS | IBV_QP_PKEY_INDEX },
	{ IBV_QPS_RTR, IBV_QPS_RTS,
	  IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
		  IBV_QP_MAX_QP_RD_ATOMIC,
	  IBV_QP_CUR_STATE | IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS | IBV_QP_MIN_RNR_TIMER |
		  IBV_QP_PATH_MIG_STATE },
	{ IBV_QPS_RTS, IBV_QPS_RTS, 0,
	  IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS | IBV_QP_ALT_PATH | IBV_QP_PATH_MIG_STATE |
		  IBV_QP_MIN_RNR_TIMER },
};

static bool pw_qp_mask_ok(enum ibv_qp_state from, enum ibv_qp_state to, int mask)
{
	int extra = mask & ~(IBV_QP_STATE | IBV_QP_CUR_STATE);

	if (to == IBV_QPS_RESET || to == IBV_QPS_ERR)
		return (mask & IBV_QP_STATE) && !extra;
	for (size_t i = 0; i < sizeof(pw_qp_rules) / sizeof(pw_qp_rules[0]); i++) {
		const struct pw_qp_rule *r = &pw_qp_rules[i];
		if (r->from == from && r->to == to)
			return (mask & r->req) == r->req &&
			       !(mask & ~(r->req | r->opt | IBV_QP_STATE));
	}
	return false;
}

/* Where the AV points: an IPv4 pod address from a RoCE v2 GID, or the LID. */
static int pw_qp_dest(const struct ibv_ah_attr *ah, uint32_t *ret_addr, uint16_t *ret_lid)
{
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (ah->port_num != 1)
		return EINVAL;
	*ret_addr = 0;
	*ret_lid = ah->dlid;
	if (ah->is_global) {
		if (ah->grh.sgid_index != 0 || memcmp(ah->grh.dgid.raw, v4mapped, 12) != 0)
			return EINVAL;
		memcpy(ret_addr, &ah->grh.dgid.raw[12], 4);
	} else if (!ah->dlid) {
		return EINVAL;
	}
	return 0;
}

static int pw_qp_connect(struct pw_qp *qp, const struct ibv_qp_attr *attr)
{
	struct pw_wire_verbs_connect body = { .qpn = qp->qp.qp_num, .dest_qpn = attr->dest_qp_num };
	uint16_t lid;
	struct pw_msg m;
	int fd, r;

	r = pw_qp_dest(&attr->ah_attr, &body.dest, &lid);
	if (r)
		return r;
	body.dlid = lid;
	fd = qp->rcq && pw_cq_channel_fd(qp->rcq) >= 0 ? pw_cq_channel_fd(qp->rcq)
						       : pw_vproc_null_evfd();
	qp->evfd = fd;
	/* Should the peer be on another node, the progress thread serves it. */
	r = pw_vremote_start();
	if (r < 0)
		return -r;
	r = pw_vproc_call(PW_MSG_VERBS_CONNECT, &body, sizeof(body), fd, &m);
	return r < 0 ? -r : 0;
}

static int pw_modify_qp(struct pw_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	enum ibv_qp_state cur = qp->qp.state;
	enum ibv_qp_state to = (mask & IBV_QP_STATE) ? attr->qp_state : cur;
	int r;

	if ((mask & IBV_QP_CUR_STATE) && attr->cur_qp_state != cur)
		return EINVAL;
	if (!pw_qp_mask_ok(cur, to, mask))
		return EINVAL;
	if (((mask & IBV_QP_PORT) && attr->port_num != 1) ||
	    ((mask & IBV_QP_PKEY_INDEX) && attr->pkey_index != 0) ||
	    ((mask & IBV_QP_PATH_MTU) &&
	     (attr->path_mtu < IBV_MTU_256 || attr->path_mtu > IBV_MTU_4096)) ||
	    ((mask & IBV_QP_MAX_QP_RD_ATOMIC) && attr->max_rd_atomic > PW_VERBS_MAX_QP_RD_ATOM) ||
	    ((mask & IBV_QP_MAX_DEST_RD_ATOMIC) &&
	     attr->max_dest_rd_atomic > PW_VERBS_MAX_QP_RD_ATOM))
		return EINVAL;
	if (cur == IBV_QPS_INIT && to == IBV_QPS_RTR) {
		/* (Before: the pairing may come with the router's answer.) */
		uint32_t was = qp->attr.dest_qp_num;
		qp->attr.dest_qp_num = attr->dest_qp_num;
		r = pw_qp_connect(qp, attr);
		if (r) {
			qp->attr.dest_qp_num = was;
			return r;
		}
	}
	/* Keep what was set, for query_qp. */
	struct ibv_qp_attr *a = &qp->attr;
	if (mask & IBV_QP_ACCESS_FLAGS) {
		a->qp_access_flags = attr->qp_access_flags;
		pw_svc_qp(qp->slot, true, attr->qp_access_flags);
	}
	if (mask & IBV_QP_PORT)
		a->port_num = attr->port_num;
	if (mask & IBV_QP_PKEY_INDEX)
		a->pkey_index = attr->pkey_index;
	if (mask & IBV_QP_AV)
		a->ah_attr = attr->ah_attr;
	if (mask & IBV_QP_PATH_MTU)
		a->path_mtu = attr->path_mtu;
	if (mask & IBV_QP_DEST_QPN)
		a->dest_qp_num = attr->dest_qp_num;
	if (mask & IBV_QP_RQ_PSN)
		a->rq_psn = attr->rq_psn;
	if (mask & IBV_QP_SQ_PSN)
		a->sq_psn = attr->sq_psn;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		a->max_dest_rd_atomic = attr->max_dest_rd_atomic;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		a->max_rd_atomic = attr->max_rd_atomic;
	if (mask & IBV_QP_MIN_RNR_TIMER)
		a->min_rnr_timer = attr->min_rnr_timer;
	if (mask & IBV_QP_TIMEOUT)
		a->timeout = attr->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		a->retry_cnt = attr->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		a->rnr_retry = attr->rnr_retry;
	pthread_mutex_lock(&qp->slock);
	qp->qp.state = to;
	a->qp_state = to;
	if (to == IBV_QPS_ERR && cur != IBV_QPS_ERR) {
		pw_qp_error_locked(qp);
		pw_qp_flush_recvs(qp);
	}
	pthread_mutex_unlock(&qp->slock);
	return 0;
}

PW_EXPORT int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	if (!pw_verbs_ctx_ours(qp->context))
		PW_FORWARD("IBVERBS_1.1", ibv_modify_qp, ENOSYS, qp, attr, mask);
	return pw_modify_qp((struct pw_qp *)qp, attr, mask);
}

PW_EXPORT int ibv_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask,
			   struct ibv_qp_init_attr *init)
{
	if (!pw_verbs_ctx_ours(ibqp->context))
		PW_FORWARD("IBVERBS_1.1", ibv_query_qp, ENOSYS, ibqp, attr, mask, init);

	struct pw_qp *qp = (struct pw_qp *)ibqp;
	*attr = qp->attr;
	attr->cur_qp_state = qp->qp.state;
	attr->cap = qp->cap;
	*init = (struct ibv_qp_init_attr){ .qp_context = ibqp->qp_context,
					   .send_cq = ibqp->send_cq,
					   .recv_cq = ibqp->recv_cq,
					   .cap = qp->cap,
					   .qp_type = IBV_QPT_RC,
					   .sq_sig_all = qp->sig_all };
	return 0;
}

static int pw_qp_caps(struct ibv_qp_cap *c)
{
	if (c->max_send_wr > PW_VERBS_MAX_SEND_WR || c->max_recv_wr > PW_VRQ_DEPTH ||
	    c->max_send_sge > PW_VERBS_MAX_SEND_SGE || c->max_recv_sge > PW_VSGE_MAX ||
	    c->max_inline_data > PW_VERBS_MAX_INLINE)
		return EINVAL;
	/* What the QP really holds, as a device reports back. */
	c->max_send_wr = c->max_send_wr ? c->max_send_wr : 1;
	c->max_recv_wr = c->max_recv_wr ? c->max_recv_wr : 1;
	c->max_send_sge = PW_VERBS_MAX_SEND_SGE;
	c->max_recv_sge = PW_VSGE_MAX;
	c->max_inline_data = PW_VERBS_MAX_INLINE;
	return 0;
}

PW_EXPORT struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *init)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD("IBVERBS_1.1", ibv_create_qp, NULL, pd, init);

	struct pw_qp *qp = NULL;
	struct pw_msg m;
	unsigned slot = PW_VQPS;
	int r;

	if (init->qp_type != IBV_QPT_RC) {
		errno = EOPNOTSUPP; /* RC only (docs/RDMA.md) */
		return NULL;
	}
	if (init->srq && !pw_verbs_ctx_ours(init->srq->context)) {
		errno = EINVAL;
		return NULL;
	}
	if (!init->send_cq || !init->recv_cq || !pw_verbs_ctx_ours(init->send_cq->context) ||
	    !pw_verbs_ctx_ours(init->recv_cq->context) || pw_qp_caps(&init->cap)) {
		errno = EINVAL;
		return NULL;
	}
	qp = calloc(1, sizeof(*qp));
	unsigned size = 1;
	while (size < init->cap.max_send_wr)
		size <<= 1;
	if (!qp || !(qp->sq = calloc(size, sizeof(*qp->sq)))) {
		r = ENOMEM;
		goto fail;
	}
	qp->sq_size = size;
	pthread_mutex_lock(&pw_qps_lock);
	for (slot = 0; slot < PW_VQPS && pw_qps[slot]; slot++)
		;
	if (slot < PW_VQPS)
		pw_qps[slot] = qp;
	pthread_mutex_unlock(&pw_qps_lock);
	if (slot == PW_VQPS) {
		r = ENOMEM;
		goto fail;
	}
	qp->slot = slot;
	qp->peer_svc_fd = -1;
	qp->sh = pw_vproc_slot(slot);
	atomic_store_explicit(&qp->sh->rq_head, 0, memory_order_relaxed);
	atomic_store_explicit(&qp->sh->rq_tail, 0, memory_order_relaxed);
	atomic_store_explicit(&qp->sh->cq_head, 0, memory_order_relaxed);
	atomic_store_explicit(&qp->sh->cq_tail, 0, memory_order_relaxed);
	atomic_store_explicit(&qp->sh->armed, 0, memory_order_relaxed);
	qp->srq = (struct pw_srq *)init->srq;
	atomic_store_explicit(&qp->sh->srq, qp->srq ? (uint32_t)init->srq->handle + 1 : 0,
			      memory_order_release);
	struct pw_wire_verbs_qp body = { .slot = slot };
	r = -pw_vproc_call(PW_MSG_VERBS_QP, &body, sizeof(body), -1, &m);
	if (r || m.type != PW_MSG_VERBS_QP_OK) {
		r = r ? r : EPROTO;
		goto fail;
	}
	qp->cap = init->cap;
	qp->sig_all = init->sq_sig_all;
	qp->scq = (struct pw_cq *)init->send_cq;
	qp->rcq = (struct pw_cq *)init->recv_cq;
	pw_vlock_init(&qp->slock);
	pw_vlock_init(&qp->rlock);
	qp->qp.context = pd->context;
	qp->qp.qp_context = init->qp_context;
	qp->qp.pd = pd;
	qp->qp.send_cq = init->send_cq;
	qp->qp.recv_cq = init->recv_cq;
	qp->qp.handle = slot;
	qp->qp.qp_num = m.u.verbs_qp.qpn;
	qp->qp.state = IBV_QPS_RESET;
	qp->qp.qp_type = IBV_QPT_RC;
	pthread_mutex_init(&qp->qp.mutex, NULL);
	pthread_cond_init(&qp->qp.cond, NULL);
	atomic_store_explicit(&qp->sh->qpn, qp->qp.qp_num, memory_order_release);
	pw_svc_qp(slot, true, 0);
	if (pw_cq_attach(qp->scq, qp, false) < 0 || pw_cq_attach(qp->rcq, qp, true) < 0 ||
	    (qp->srq && pw_srq_attach(qp->srq, qp) < 0)) {
		pw_cq_detach(qp->scq, qp);
		pw_cq_detach(qp->rcq, qp);
		r = ENOMEM;
		goto fail_reg;
	}
	return &qp->qp;
fail_reg:
	pw_svc_qp(slot, false, 0);
	body.qpn = qp->qp.qp_num;
	pw_vproc_call(PW_MSG_VERBS_QP_DEL, &body, sizeof(body), -1, &m);
fail:
	if (slot < PW_VQPS) {
		pthread_mutex_lock(&pw_qps_lock);
		pw_qps[slot] = NULL;
		pthread_mutex_unlock(&pw_qps_lock);
	}
	if (qp)
		free(qp->sq);
	free(qp);
	errno = r;
	return NULL;
}

PW_EXPORT int ibv_destroy_qp(struct ibv_qp *ibqp)
{
	if (!pw_verbs_ctx_ours(ibqp->context))
		PW_FORWARD("IBVERBS_1.1", ibv_destroy_qp, ENOSYS, ibqp);

	struct pw_qp *qp = (struct pw_qp *)ibqp;
	struct pw_wire_verbs_qp body = { .qpn = ibqp->qp_num };
	struct pw_msg m;

	/* Peers see the slot empty before anything else goes. */
	atomic_store_explicit(&qp->sh->qpn, 0, memory_order_release);
	pw_svc_qp(qp->slot, false, 0);
	pw_vconn_drop(qp);
	pw_vproc_call(PW_MSG_VERBS_QP_DEL, &body, sizeof(body), -1, &m);
	pw_cq_detach(qp->scq, qp);
	pw_cq_detach(qp->rcq, qp);
	if (qp->srq)
		pw_srq_detach(qp->srq, qp);
	pthread_mutex_lock(&qp->slock);
	pw_qp_unpair(qp);
	pthread_mutex_unlock(&qp->slock);
	pthread_mutex_lock(&pw_qps_lock);
	pw_qps[qp->slot] = NULL;
	pthread_mutex_unlock(&pw_qps_lock);
	pthread_mutex_destroy(&qp->slock);
	pthread_mutex_destroy(&qp->rlock);
	free(qp->sq);
	free(qp);
	return 0;
}
