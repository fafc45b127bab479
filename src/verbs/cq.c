// SPDX-License-Identifier: MIT
/*
 * Completion queues. A CQ holds the completions its process makes itself
 * (sends, reads, atomics: the initiator completes them as it moves the
 * data), and takes, when polled, the completions a peer made in the slots of
 * the QPs whose receive CQ it is (shm.h). Events: req_notify_cq arms those
 * QPs' slots; a peer completing into an armed slot, or this process into an
 * armed CQ, writes the channel's eventfd; get_cq_event reads it and finds
 * which CQ it was for.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pwverbs.h"

#define PW_CQ_QPS 64u /* QPs one CQ serves */

struct pw_cq {
	struct ibv_cq cq;
	pthread_mutex_t lock;
	struct ibv_wc *ring; /* our own completions */
	unsigned size, head, tail;
	bool overflow;
	struct pw_qp *qps[PW_CQ_QPS];
	bool recv[PW_CQ_QPS]; /* qps[i] completes its receives here */
	unsigned nqps;
	_Atomic bool armed;	    /* req_notify_cq, until an event is made */
	_Atomic unsigned events;    /* events made, not yet taken by get_cq_event */
	struct pw_cq *next_on_chan; /* the channel's CQs (pw_chans) */
};

/* Every CQ with a channel, for get_cq_event to search. */
static pthread_mutex_t pw_chans_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pw_cq *pw_chans;

int pw_cq_channel_fd(const struct pw_cq *cq)
{
	return cq->cq.channel ? cq->cq.channel->fd : -1;
}

static void pw_cq_event(struct pw_cq *cq)
{
	if (!cq->cq.channel)
		return;
	atomic_fetch_add_explicit(&cq->events, 1, memory_order_release);
	eventfd_write(cq->cq.channel->fd, 1);
}

void pw_cq_push(struct pw_cq *cq, const struct ibv_wc *wc)
{
	pthread_mutex_lock(&cq->lock);
	if (cq->head - cq->tail == cq->size)
		cq->overflow = true; /* (the application sized it too small) */
	else
		cq->ring[cq->head++ & (cq->size - 1)] = *wc;
	pthread_mutex_unlock(&cq->lock);
	if (atomic_exchange_explicit(&cq->armed, false, memory_order_acq_rel))
		pw_cq_event(cq);
}

int pw_cq_attach(struct pw_cq *cq, struct pw_qp *qp, bool recv)
{
	int r = 0;

	pthread_mutex_lock(&cq->lock);
	if (cq->nqps == PW_CQ_QPS)
		r = -ENOMEM;
	else {
		cq->qps[cq->nqps] = qp;
		cq->recv[cq->nqps++] = recv;
		/* Armed before the QP was made (rping arms, then creates its
		 * QP): a receive completed into it is an event too. */
		if (recv && atomic_load_explicit(&cq->armed, memory_order_relaxed))
			pw_qp_arm(qp, true);
	}
	pthread_mutex_unlock(&cq->lock);
	return r;
}

void pw_cq_detach(struct pw_cq *cq, struct pw_qp *qp)
{
	pthread_mutex_lock(&cq->lock);
	for (unsigned i = 0; i < cq->nqps;)
		if (cq->qps[i] == qp) {
			cq->qps[i] = cq->qps[--cq->nqps];
			cq->recv[i] = cq->recv[cq->nqps];
		} else {
			i++;
		}
	pthread_mutex_unlock(&cq->lock);
}

/* Before taking completions: QPs whose peer went fail, queued sends go.
 * What that completes (here or in other CQs) is pushed without our lock. */
static void pw_cq_sweep(struct pw_cq *cq)
{
	struct pw_qp *qps[PW_CQ_QPS];
	bool recv[PW_CQ_QPS];
	unsigned n;

	pthread_mutex_lock(&cq->lock);
	n = cq->nqps;
	memcpy(qps, cq->qps, n * sizeof(struct pw_qp *));
	memcpy(recv, cq->recv, n * sizeof(recv[0]));
	pthread_mutex_unlock(&cq->lock);
	for (unsigned i = 0; i < n; i++) {
		pw_qp_check_peer(qps[i]);
		if (!recv[i] && pw_qp_has_pending(qps[i]))
			pw_qp_progress(qps[i]);
	}
}

/* Has @cq completions to take (a hint: no lock)? */
static bool pw_cq_ready(struct pw_cq *cq)
{
	pthread_mutex_lock(&cq->lock);
	bool ready = cq->tail != cq->head;
	for (unsigned i = 0; i < cq->nqps && !ready; i++)
		ready = cq->recv[i] && pw_qp_recv_ready(cq->qps[i]);
	pthread_mutex_unlock(&cq->lock);
	return ready;
}

/* Nothing to take: QPs with a peer on another node read their connections
 * here, this thread being awake anyway (remote.c). */
static void pw_cq_read(struct pw_cq *cq)
{
	struct pw_qp *qps[PW_CQ_QPS];
	unsigned n;

	pthread_mutex_lock(&cq->lock);
	n = cq->nqps;
	memcpy(qps, cq->qps, n * sizeof(struct pw_qp *));
	pthread_mutex_unlock(&cq->lock);
	for (unsigned i = 0; i < n; i++)
		pw_vconn_poll(qps[i]);
}

int pw_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct pw_cq *cq = (struct pw_cq *)ibcq;
	int got = 0;

	if (n < 0)
		return -EINVAL;
	pw_cq_sweep(cq);
	if (!pw_cq_ready(cq))
		pw_cq_read(cq);
	pthread_mutex_lock(&cq->lock);
	if (cq->overflow) {
		pthread_mutex_unlock(&cq->lock);
		return -EOVERFLOW;
	}
	while (got < n && cq->tail != cq->head)
		wc[got++] = cq->ring[cq->tail++ & (cq->size - 1)];
	for (unsigned i = 0; i < cq->nqps && got < n; i++)
		if (cq->recv[i])
			got += pw_qp_poll_recv(cq->qps[i], n - got, wc + got);
	pthread_mutex_unlock(&cq->lock);
	return got;
}

int pw_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct pw_cq *cq = (struct pw_cq *)ibcq;

	(void)solicited_only; /* every completion is an event: solicited ones too */
	/* For the next completion (IBA 11.4.2.2): those already in the CQ make
	 * none. Applications arm, then poll, then wait; perftest -e takes an
	 * event to mean a completion is there to poll. */
	pthread_mutex_lock(&cq->lock);
	atomic_store_explicit(&cq->armed, true, memory_order_seq_cst);
	for (unsigned i = 0; i < cq->nqps; i++)
		if (cq->recv[i])
			pw_qp_arm(cq->qps[i], true);
	pthread_mutex_unlock(&cq->lock);
	return 0;
}

/* Did a peer make an event for @cq (took an armed slot of it)? Then it is
 * disarmed and counted. */
static void pw_cq_collect(struct pw_cq *cq)
{
	bool fired = false;

	pthread_mutex_lock(&cq->lock);
	if (atomic_load_explicit(&cq->armed, memory_order_acquire))
		for (unsigned i = 0; i < cq->nqps && !fired; i++)
			fired = cq->recv[i] && pw_qp_arm_taken(cq->qps[i]);
	if (fired && atomic_exchange_explicit(&cq->armed, false, memory_order_acq_rel)) {
		for (unsigned i = 0; i < cq->nqps; i++)
			if (cq->recv[i])
				pw_qp_arm(cq->qps[i], false);
		atomic_fetch_add_explicit(&cq->events, 1, memory_order_release);
	}
	pthread_mutex_unlock(&cq->lock);
}

/* A CQ of @ch with an event made, taken; or NULL. */
static struct pw_cq *pw_cq_take_event(struct ibv_comp_channel *ch)
{
	struct pw_cq *found = NULL;

	pthread_mutex_lock(&pw_chans_lock);
	for (struct pw_cq *c = pw_chans; c && !found; c = c->next_on_chan) {
		if (c->cq.channel != ch)
			continue;
		pw_cq_sweep(c); /* (a peer gone makes completions, and the event) */
		pw_cq_collect(c);
		unsigned e = atomic_load_explicit(&c->events, memory_order_acquire);
		while (e && !atomic_compare_exchange_weak_explicit(&c->events, &e, e - 1,
								   memory_order_acq_rel,
								   memory_order_acquire))
			;
		if (e)
			found = c;
	}
	pthread_mutex_unlock(&pw_chans_lock);
	return found;
}

static int pw_get_cq_event(struct ibv_comp_channel *ch, struct ibv_cq **ret, void **ret_ctx)
{
	for (;;) {
		struct pw_cq *cq = pw_cq_take_event(ch);
		if (cq) {
			*ret = &cq->cq;
			*ret_ctx = cq->cq.cq_context;
			return 0;
		}
		/* Sleep in the kernel, as blocking (or not) as the channel's
		 * fd. (Sends waiting for a receive are retried by the
		 * progress thread meanwhile: remote.c.) */
		eventfd_t v;
		if (eventfd_read(ch->fd, &v) < 0)
			return -1;
	}
}

PW_EXPORT struct ibv_cq *ibv_create_cq(struct ibv_context *ctx, int cqe, void *cq_context,
				       struct ibv_comp_channel *channel, int comp_vector)
{
	if (!pw_verbs_ctx_ours(ctx))
		PW_FORWARD("IBVERBS_1.1", ibv_create_cq, NULL, ctx, cqe, cq_context, channel,
			   comp_vector);
	if (cqe < 1 || cqe > PW_VERBS_MAX_CQE || comp_vector < 0 ||
	    comp_vector >= ctx->num_comp_vectors || (channel && channel->context != ctx)) {
		errno = EINVAL;
		return NULL;
	}
	struct pw_cq *cq = calloc(1, sizeof(*cq));
	unsigned size = 1;
	while (size < (unsigned)cqe)
		size <<= 1;
	if (!cq || !(cq->ring = calloc(size, sizeof(*cq->ring)))) {
		free(cq);
		errno = ENOMEM;
		return NULL;
	}
	cq->size = size;
	pw_vlock_init(&cq->lock);
	cq->cq.context = ctx;
	cq->cq.channel = channel;
	cq->cq.cq_context = cq_context;
	cq->cq.cqe = cqe;
	pthread_mutex_init(&cq->cq.mutex, NULL);
	pthread_cond_init(&cq->cq.cond, NULL);
	if (channel) {
		pthread_mutex_lock(&ctx->mutex);
		channel->refcnt++;
		pthread_mutex_unlock(&ctx->mutex);
		pthread_mutex_lock(&pw_chans_lock);
		cq->next_on_chan = pw_chans;
		pw_chans = cq;
		pthread_mutex_unlock(&pw_chans_lock);
	}
	return &cq->cq;
}

PW_EXPORT int ibv_destroy_cq(struct ibv_cq *ibcq)
{
	if (!pw_verbs_ctx_ours(ibcq->context))
		PW_FORWARD("IBVERBS_1.1", ibv_destroy_cq, ENOSYS, ibcq);

	struct pw_cq *cq = (struct pw_cq *)ibcq;
	pthread_mutex_lock(&cq->lock);
	unsigned nqps = cq->nqps;
	pthread_mutex_unlock(&cq->lock);
	if (nqps)
		return EBUSY; /* QPs still complete here */
	if (ibcq->channel) {
		pthread_mutex_lock(&pw_chans_lock);
		for (struct pw_cq **pp = &pw_chans; *pp; pp = &(*pp)->next_on_chan)
			if (*pp == cq) {
				*pp = cq->next_on_chan;
				break;
			}
		pthread_mutex_unlock(&pw_chans_lock);
		pthread_mutex_lock(&ibcq->context->mutex);
		ibcq->channel->refcnt--;
		pthread_mutex_unlock(&ibcq->context->mutex);
	}
	pthread_mutex_destroy(&cq->lock);
	free(cq->ring);
	free(cq);
	return 0;
}

PW_EXPORT int ibv_resize_cq(struct ibv_cq *cq, int cqe)
{
	if (!pw_verbs_ctx_ours(cq->context))
		PW_FORWARD("IBVERBS_1.1", ibv_resize_cq, ENOSYS, cq, cqe);
	return EOPNOTSUPP;
}

PW_EXPORT int ibv_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq,
			       void **cq_context)
{
	if (!pw_verbs_ctx_ours(channel->context))
		PW_FORWARD("IBVERBS_1.1", ibv_get_cq_event, -1, channel, cq, cq_context);
	return pw_get_cq_event(channel, cq, cq_context);
}

PW_EXPORT void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	if (!pw_verbs_ctx_ours(cq->context)) {
		PW_FORWARD_VOID("IBVERBS_1.1", ibv_ack_cq_events, cq, nevents);
		return;
	}
	pthread_mutex_lock(&cq->mutex);
	cq->comp_events_completed += nevents;
	pthread_cond_signal(&cq->cond);
	pthread_mutex_unlock(&cq->mutex);
}
