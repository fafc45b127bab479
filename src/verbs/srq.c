// SPDX-License-Identifier: MIT
/*
 * Shared receive queues. An SRQ is a ring in the owner's arena (struct
 * pw_vsrq, shm.h) that the peers of all its QPs take receives from: on one
 * node the sender's thread claims an entry with a compare-and-swap and
 * completes it into its own QP's slot, as it does with a QP's own receives;
 * across nodes this process's progress thread does the same for the peer.
 * The completion names the index it claimed; the owner keeps the wr_ids.
 */
#include <errno.h>
#include <stdlib.h>

#include "pwverbs.h"

struct pw_srq {
	struct ibv_srq srq;
	unsigned slot;
	struct pw_vsrq *sh;
	/* Posting, polling and the QPs: under lock. */
	pthread_mutex_t lock;
	uint32_t head;	      /* our copy of sh->rq_head */
	uint32_t outstanding; /* posted and not yet polled */
	uint32_t max_wr, limit;
	uint32_t events;    /* async events made for it */
	struct pw_qp **qps; /* the QPs that take from it */
	unsigned nqps, capqps;
	uint64_t wrid[PW_VRQ_DEPTH];
	uint32_t cap[PW_VRQ_DEPTH]; /* the bytes each receive can take */
	bool busy[PW_VRQ_DEPTH];    /* posted there and not yet polled */
};

static pthread_mutex_t pw_srqs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pw_srq *pw_srqs[PW_VSRQS]; /* by slot */

int pw_vsrq_take(struct pw_vsrq *q, uint32_t *ret_idx, struct pw_vrecv *ret)
{
	/* Acquire: the entry of the tail we read is the one it claims. */
	uint32_t tail = atomic_load_explicit(&q->rq_tail, memory_order_acquire);

	for (;;) {
		/* Acquire: pairs with the owner's release of rq_head. */
		uint32_t head = atomic_load_explicit(&q->rq_head, memory_order_acquire);
		if (head == tail)
			return PW_RNR;
		if (head - tail > PW_VRQ_DEPTH)
			return IBV_WC_REM_OP_ERR; /* a broken owner */
		*ret = q->rq[tail & (PW_VRQ_DEPTH - 1)];
		/* Acq_rel: our copy before the claim; another claimer's entry
		 * (it failed us) before we read the next one. */
		if (atomic_compare_exchange_weak_explicit(&q->rq_tail, &tail, tail + 1,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	*ret_idx = tail;
	return ret->nsge > PW_VSGE_MAX ? IBV_WC_REM_OP_ERR : IBV_WC_SUCCESS;
}

struct pw_vsrq *pw_srq_shm(struct pw_srq *srq)
{
	return srq->sh;
}

int pw_srq_attach(struct pw_srq *srq, struct pw_qp *qp)
{
	int r = 0;

	pthread_mutex_lock(&srq->lock);
	if (srq->nqps == srq->capqps) {
		unsigned cap = srq->capqps ? srq->capqps * 2 : 8;
		struct pw_qp **n = realloc(srq->qps, cap * sizeof(struct pw_qp *));
		if (!n)
			r = -ENOMEM;
		else {
			srq->qps = n;
			srq->capqps = cap;
		}
	}
	if (!r)
		srq->qps[srq->nqps++] = qp;
	pthread_mutex_unlock(&srq->lock);
	return r;
}

void pw_srq_detach(struct pw_srq *srq, struct pw_qp *qp)
{
	pthread_mutex_lock(&srq->lock);
	for (unsigned i = 0; i < srq->nqps; i++)
		if (srq->qps[i] == qp) {
			srq->qps[i] = srq->qps[--srq->nqps];
			break;
		}
	pthread_mutex_unlock(&srq->lock);
}

/* Under srq->lock. */
static void pw_srq_limit_locked(struct pw_srq *srq)
{
	uint32_t tail = atomic_load_explicit(&srq->sh->rq_tail, memory_order_relaxed);

	/* Fewer receives posted than the limit: the event, once, as IBA's
	 * SRQ limit has it. */
	if (srq->limit && srq->head - tail <= PW_VRQ_DEPTH && srq->head - tail < srq->limit) {
		srq->limit = 0;
		srq->events++;
		pw_async_post(srq->srq.context, IBV_EVENT_SRQ_LIMIT_REACHED,
			      (uint64_t)(uintptr_t)&srq->srq);
	}
}

void pw_srq_check_limit(struct pw_srq *srq)
{
	pthread_mutex_lock(&srq->lock);
	pw_srq_limit_locked(srq);
	pthread_mutex_unlock(&srq->lock);
}

bool pw_srq_polled(struct pw_srq *srq, uint32_t idx, uint64_t *ret_wrid, uint32_t *ret_cap)
{
	bool ok;

	pthread_mutex_lock(&srq->lock);
	uint32_t i = idx & (PW_VRQ_DEPTH - 1);
	/* One we posted (behind head), claimed and not polled yet. */
	ok = srq->head - idx - 1 < PW_VRQ_DEPTH && srq->busy[i];
	if (ok) {
		*ret_wrid = srq->wrid[i];
		*ret_cap = srq->cap[i];
		srq->busy[i] = false;
		srq->outstanding--;
	}
	pw_srq_limit_locked(srq);
	pthread_mutex_unlock(&srq->lock);
	return ok;
}

int pw_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	struct pw_srq *srq = (struct pw_srq *)ibsrq;
	int r = 0;

	pthread_mutex_lock(&srq->lock);
	for (; wr; wr = wr->next) {
		uint32_t i = srq->head & (PW_VRQ_DEPTH - 1);
		if (wr->num_sge < 0 || wr->num_sge > (int)PW_VSGE_MAX) {
			r = EINVAL;
			break;
		}
		/* Room: max_wr posted and not polled, and the entry's last
		 * receive polled (claimed entries stay as their claimer read
		 * them). */
		if (srq->outstanding >= srq->max_wr || srq->busy[i]) {
			r = ENOMEM;
			break;
		}
		r = pw_vrecv_fill(&srq->sh->rq[i], wr, &srq->cap[i]);
		if (r)
			break;
		srq->wrid[i] = wr->wr_id;
		srq->busy[i] = true;
		srq->outstanding++;
		/* Release: the entry before the index; claimers' acquire.
		 * Seq_cst besides, as pw_post_recv(): a stalled reader of a
		 * peer on another node (pw_vconn_recv_posted()). */
		atomic_store_explicit(&srq->sh->rq_head, ++srq->head, memory_order_seq_cst);
	}
	if (r && bad)
		*bad = wr;
	/* A peer on another node may wait for a receive (no lock taken). */
	for (unsigned k = 0; k < srq->nqps; k++)
		pw_vconn_recv_posted(srq->qps[k]);
	pthread_mutex_unlock(&srq->lock);
	return r;
}

PW_EXPORT struct ibv_srq *ibv_create_srq(struct ibv_pd *pd, struct ibv_srq_init_attr *attr)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD("IBVERBS_1.1", ibv_create_srq, NULL, pd, attr);

	unsigned slot;
	struct pw_srq *srq;

	if (!attr || attr->attr.max_wr == 0 || attr->attr.max_wr > PW_VRQ_DEPTH ||
	    attr->attr.max_sge > PW_VSGE_MAX) {
		errno = EINVAL;
		return NULL;
	}
	srq = calloc(1, sizeof(*srq));
	if (!srq) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&pw_srqs_lock);
	for (slot = 0; slot < PW_VSRQS && pw_srqs[slot]; slot++)
		;
	if (slot < PW_VSRQS)
		pw_srqs[slot] = srq;
	pthread_mutex_unlock(&pw_srqs_lock);
	if (slot == PW_VSRQS) {
		free(srq);
		errno = ENOMEM;
		return NULL;
	}
	srq->slot = slot;
	srq->sh = pw_vproc_srq(slot);
	atomic_store_explicit(&srq->sh->rq_head, 0, memory_order_relaxed);
	atomic_store_explicit(&srq->sh->rq_tail, 0, memory_order_relaxed);
	srq->max_wr = attr->attr.max_wr;
	pw_vlock_init(&srq->lock);
	/* What it holds, as a device reports back. */
	attr->attr.max_sge = PW_VSGE_MAX;
	srq->srq.context = pd->context;
	srq->srq.srq_context = attr->srq_context;
	srq->srq.pd = pd;
	srq->srq.handle = slot;
	pthread_mutex_init(&srq->srq.mutex, NULL);
	pthread_cond_init(&srq->srq.cond, NULL);
	return &srq->srq;
}

PW_EXPORT int ibv_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr, int mask)
{
	if (!pw_verbs_ctx_ours(ibsrq->context))
		PW_FORWARD("IBVERBS_1.1", ibv_modify_srq, ENOSYS, ibsrq, attr, mask);

	struct pw_srq *srq = (struct pw_srq *)ibsrq;
	int r = 0;

	/* Resizing (IBV_SRQ_MAX_WR) is not offered: no IBV_DEVICE_SRQ_RESIZE. */
	if (mask & ~IBV_SRQ_LIMIT || !(mask & IBV_SRQ_LIMIT))
		return EINVAL;
	pthread_mutex_lock(&srq->lock);
	if (attr->srq_limit >= srq->max_wr)
		r = EINVAL;
	else {
		srq->limit = attr->srq_limit; /* 0: disarmed */
		pw_srq_limit_locked(srq);
	}
	pthread_mutex_unlock(&srq->lock);
	return r;
}

PW_EXPORT int ibv_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	if (!pw_verbs_ctx_ours(ibsrq->context))
		PW_FORWARD("IBVERBS_1.1", ibv_query_srq, ENOSYS, ibsrq, attr);

	struct pw_srq *srq = (struct pw_srq *)ibsrq;

	pthread_mutex_lock(&srq->lock);
	*attr = (struct ibv_srq_attr){ .max_wr = srq->max_wr,
				       .max_sge = PW_VSGE_MAX,
				       .srq_limit = srq->limit };
	pthread_mutex_unlock(&srq->lock);
	return 0;
}

PW_EXPORT int ibv_destroy_srq(struct ibv_srq *ibsrq)
{
	if (!pw_verbs_ctx_ours(ibsrq->context))
		PW_FORWARD("IBVERBS_1.1", ibv_destroy_srq, ENOSYS, ibsrq);

	struct pw_srq *srq = (struct pw_srq *)ibsrq;

	pthread_mutex_lock(&srq->lock);
	unsigned nqps = srq->nqps;
	uint32_t events = srq->events;
	pthread_mutex_unlock(&srq->lock);
	if (nqps)
		return EBUSY; /* QPs still take from it */
	/* Its events acknowledged first, as libibverbs waits for them. */
	pthread_mutex_lock(&ibsrq->mutex);
	while (ibsrq->events_completed != events)
		pthread_cond_wait(&ibsrq->cond, &ibsrq->mutex);
	pthread_mutex_unlock(&ibsrq->mutex);
	pthread_mutex_lock(&pw_srqs_lock);
	pw_srqs[srq->slot] = NULL;
	pthread_mutex_unlock(&pw_srqs_lock);
	atomic_store_explicit(&srq->sh->rq_head, 0, memory_order_relaxed);
	atomic_store_explicit(&srq->sh->rq_tail, 0, memory_order_relaxed);
	pthread_mutex_destroy(&srq->lock);
	pthread_mutex_destroy(&ibsrq->mutex);
	pthread_cond_destroy(&ibsrq->cond);
	free(srq->qps);
	free(srq);
	return 0;
}
