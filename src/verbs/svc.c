// SPDX-License-Identifier: MIT
/*
 * Regions that could not be re-backed (file-backed, SysV shared memory,
 * hugetlb: mr.c registers them PW_VKEY_SERVED): a peer on this node cannot
 * map them, so their owner serves it. The peer's posting thread writes a
 * request into the owner's service entry for its QP (shm.h, struct
 * pw_vsvc) with up to PW_VSVC_DATA bytes, wakes the owner's service
 * eventfd, and sleeps on the entry's done word; the owner's progress thread
 * checks the request against its own key table, copies or does the atomic
 * in its own address space, and wakes it. Two copies and two wake-ups per
 * PW_VSVC_DATA bytes: the slower path.
 *
 * A thread that waits for a peer's service serves its own process's
 * requests meanwhile: two processes whose progress threads each wait for
 * the other would otherwise wait for good.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pwverbs.h"

#define PW_SVC_LIVE  (1u << 31) /* pw_svc_qps[]: the slot holds a QP */
#define PW_SVC_SPIN  256	/* looks at done before sleeping */
#define PW_SVC_YIELD 64		/* ... then yields as many times */

/* The owner's side: one server at a time; what it last served per slot
 * (its own word, not the peer's), and each slot's QP access flags. */
static pthread_mutex_t pw_svc_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t pw_svc_seen[PW_VQPS];
static _Atomic unsigned pw_svc_qps[PW_VQPS];
static unsigned pw_svc_top; /* slots past the highest ever live (under pw_svc_lock) */

static void pw_futex_wake(_Atomic uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Sleep while *@w == @v, 1 ms at most (shared: the waker is another process). */
static void pw_futex_wait(_Atomic uint32_t *w, uint32_t v)
{
	struct timespec ts = { .tv_nsec = 1000000 };

	syscall(SYS_futex, w, FUTEX_WAIT, v, &ts, NULL, 0);
}

void pw_svc_qp(unsigned slot, bool live, unsigned access)
{
	if (slot >= PW_VQPS)
		return;
	if (live &&
	    !(atomic_load_explicit(&pw_svc_qps[slot], memory_order_relaxed) & PW_SVC_LIVE)) {
		/* A new QP in the slot: what an old peer asked is not its. */
		pthread_mutex_lock(&pw_svc_lock);
		pw_svc_seen[slot] =
			atomic_load_explicit(&pw_vproc_svc(slot)->req, memory_order_relaxed);
		if (slot >= pw_svc_top)
			pw_svc_top = slot + 1;
		pthread_mutex_unlock(&pw_svc_lock);
	}
	atomic_store_explicit(&pw_svc_qps[slot], live ? PW_SVC_LIVE | access : 0,
			      memory_order_relaxed);
}

/* What one request asks, read once from the peer's (hostile) memory. */
struct pw_svc_ask {
	uint32_t op, key;
	uint64_t addr, len, cmp, swp;
	struct pw_vsvc *s;
	uint64_t result;
};

/* Under the region's hold (mr.c): nothing unmaps it meanwhile. */
static void pw_svc_do(void *arg)
{
	struct pw_svc_ask *a = arg;
	uint8_t *p = (uint8_t *)(uintptr_t)a->addr;

	switch (a->op) {
	case PW_VSVC_WRITE:
	case PW_VSVC_PLACE:
		/* The last byte last (release): a spinning reader sees the rest. */
		memcpy(p, a->s->data, a->len - 1);
		atomic_store_explicit((_Atomic uint8_t *)(p + a->len - 1), a->s->data[a->len - 1],
				      memory_order_release);
		break;
	case PW_VSVC_READ:
		memcpy(a->s->data, p, a->len);
		break;
	case PW_VSVC_CAS:
		a->result = a->cmp;
		atomic_compare_exchange_strong_explicit((_Atomic uint64_t *)p, &a->result, a->swp,
							memory_order_seq_cst, memory_order_seq_cst);
		break;
	default: /* PW_VSVC_FAA */
		a->result = atomic_fetch_add_explicit((_Atomic uint64_t *)p, a->cmp,
						      memory_order_seq_cst);
		break;
	}
}

/* Serve slot @slot's request, if a new one waits. Under pw_svc_lock. */
static void pw_svc_serve_slot(unsigned slot, unsigned qp_access)
{
	struct pw_vsvc *s = pw_vproc_svc(slot);
	/* Acquire: pairs with the peer's release of req (pw_svc_call). */
	uint32_t req = atomic_load_explicit(&s->req, memory_order_acquire);

	if (req == pw_svc_seen[slot])
		return;
	pw_svc_seen[slot] = req;
	/* Each field read once: the peer may change them under us. */
	struct pw_svc_ask a = { .op = atomic_load_explicit(&s->op, memory_order_relaxed),
				.key = atomic_load_explicit(&s->key, memory_order_relaxed),
				.addr = atomic_load_explicit(&s->addr, memory_order_relaxed),
				.len = atomic_load_explicit(&s->len, memory_order_relaxed),
				.cmp = atomic_load_explicit(&s->cmp, memory_order_relaxed),
				.swp = atomic_load_explicit(&s->swp, memory_order_relaxed),
				.s = s };
	unsigned need = 0;
	uint32_t st = IBV_WC_SUCCESS;

	switch (a.op) {
	case PW_VSVC_WRITE:
		need = IBV_ACCESS_REMOTE_WRITE;
		break;
	case PW_VSVC_PLACE:
		need = IBV_ACCESS_LOCAL_WRITE; /* a receive's buffer */
		break;
	case PW_VSVC_READ:
		need = IBV_ACCESS_REMOTE_READ;
		break;
	case PW_VSVC_CAS:
	case PW_VSVC_FAA:
		need = IBV_ACCESS_REMOTE_ATOMIC;
		if (a.len != 8 || (a.addr & 7))
			st = IBV_WC_REM_INV_REQ_ERR;
		break;
	default:
		st = IBV_WC_REM_INV_REQ_ERR;
	}
	if (st == IBV_WC_SUCCESS && (!a.len || a.len > PW_VSVC_DATA))
		st = IBV_WC_REM_INV_REQ_ERR;
	/* The QP must allow it too (a receive's buffer needs no QP flag). */
	if (st == IBV_WC_SUCCESS && a.op != PW_VSVC_PLACE && (qp_access & need) != need)
		st = IBV_WC_REM_ACCESS_ERR;
	if (st == IBV_WC_SUCCESS && pw_mr_hold(a.key, a.addr, a.len, need, pw_svc_do, &a) < 0)
		st = IBV_WC_REM_ACCESS_ERR;
	atomic_store_explicit(&s->status, st, memory_order_relaxed);
	atomic_store_explicit(&s->result, a.result, memory_order_relaxed);
	/* Release: status, result and data before done; pairs with the
	 * peer's acquire in pw_svc_wait(). Seq_cst: done before the look at
	 * sleeping, which pairs with the peer's store of sleeping before its
	 * look at done; a peer still spinning costs no wake-up. */
	atomic_store_explicit(&s->done, req, memory_order_seq_cst);
	if (atomic_load_explicit(&s->sleeping, memory_order_seq_cst))
		pw_futex_wake(&s->done);
}

void pw_svc_serve(bool wait)
{
	if (wait)
		pthread_mutex_lock(&pw_svc_lock);
	else if (pthread_mutex_trylock(&pw_svc_lock) != 0)
		return; /* another thread serves */
	for (unsigned i = 0; i < pw_svc_top; i++) {
		unsigned q = atomic_load_explicit(&pw_svc_qps[i], memory_order_relaxed);
		if (q & PW_SVC_LIVE)
			pw_svc_serve_slot(i, q & ~PW_SVC_LIVE);
	}
	pthread_mutex_unlock(&pw_svc_lock);
}

/* ---- the peer's side ---- */

/* Wait for the answer to request @seq: IBV_WC_SUCCESS with the answer's
 * status in @ret_st, or IBV_WC_RETRY_EXC_ERR (the peer went, or its
 * transport timer ran out, as for a peer that never answers). */
static int pw_svc_wait(struct pw_qp *qp, struct pw_vsvc *s, uint32_t seq, uint32_t *ret_st)
{
	unsigned t = qp->attr.timeout;
	uint64_t limit = t && t <= 31 ? (4096ull << t) * (qp->attr.retry_cnt + 1u) : 0;
	uint64_t t0 = 0;

	for (unsigned i = 0;; i++) {
		/* Acquire: pairs with the owner's release of done. */
		uint32_t d = atomic_load_explicit(&s->done, memory_order_acquire);
		if (d == seq) {
			*ret_st = atomic_load_explicit(&s->status, memory_order_relaxed);
			return IBV_WC_SUCCESS;
		}
		if (i < PW_SVC_SPIN)
			continue;
		if (i < PW_SVC_SPIN + PW_SVC_YIELD) {
			/* The owner's thread is waking: give it the CPU if it
			 * is ours, rather than sleep and be woken. */
			sched_yield();
			continue;
		}
		if (!pw_qp_peer_alive(qp))
			return IBV_WC_RETRY_EXC_ERR;
		uint64_t now = pw_now_ns();
		if (!t0)
			t0 = now;
		else if (limit && now - t0 >= limit)
			return IBV_WC_RETRY_EXC_ERR;
		pw_svc_serve(false);
		/* Seq_cst: see pw_svc_serve_slot(). */
		atomic_store_explicit(&s->sleeping, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&s->done, memory_order_seq_cst) == d)
			pw_futex_wait(&s->done, d);
		atomic_store_explicit(&s->sleeping, 0, memory_order_relaxed);
	}
}

/* One request, its fields already in @s: send it, wait for its answer.
 * The answer's status (IBV_WC_SUCCESS or the owner's error), or
 * IBV_WC_RETRY_EXC_ERR. */
static int pw_svc_call(struct pw_qp *qp, struct pw_vsvc *s)
{
	uint32_t seq = atomic_load_explicit(&s->req, memory_order_relaxed) + 1, st;

	/* Release: the request and its data before req; the owner's acquire
	 * in pw_svc_serve_slot(). */
	atomic_store_explicit(&s->req, seq, memory_order_release);
	eventfd_write(qp->peer_svc_fd, 1);
	int r = pw_svc_wait(qp, s, seq, &st);
	if (r != IBV_WC_SUCCESS)
		return r;
	/* A broken owner's status is not passed on as ours to trust. */
	return st == IBV_WC_SUCCESS || st == IBV_WC_REM_ACCESS_ERR || st == IBV_WC_REM_INV_REQ_ERR
		       ? (int)st
		       : IBV_WC_REM_OP_ERR;
}

/* A request for @n bytes at @addr of region @key, sent; its answer. */
static int pw_svc_ask(struct pw_qp *qp, uint32_t op, uint32_t key, uint64_t addr, uint64_t n)
{
	struct pw_vsvc *s = qp->peer_svc;

	atomic_store_explicit(&s->op, op, memory_order_relaxed);
	atomic_store_explicit(&s->key, key, memory_order_relaxed);
	atomic_store_explicit(&s->addr, addr, memory_order_relaxed);
	atomic_store_explicit(&s->len, n, memory_order_relaxed);
	return pw_svc_call(qp, s);
}

int pw_svc_put(struct pw_qp *qp, int op, uint32_t key, uint64_t addr, uint64_t len,
	       const struct pw_swr *w, uint64_t off)
{
	struct pw_vsvc *s = qp->peer_svc;

	for (uint64_t at = 0; at < len;) {
		uint64_t n = len - at < PW_VSVC_DATA ? len - at : PW_VSVC_DATA;
		if (!pw_swr_copy_out(w, off + at, s->data, n))
			return IBV_WC_LOC_PROT_ERR;
		int st = pw_svc_ask(qp, (uint32_t)op, key, addr + at, n);
		if (st != IBV_WC_SUCCESS)
			return st;
		at += n;
	}
	return IBV_WC_SUCCESS;
}

int pw_svc_get(struct pw_qp *qp, uint32_t key, uint64_t addr, uint64_t len, const struct pw_swr *w)
{
	struct pw_vsvc *s = qp->peer_svc;

	for (uint64_t at = 0; at < len;) {
		uint64_t n = len - at < PW_VSVC_DATA ? len - at : PW_VSVC_DATA;
		int st = pw_svc_ask(qp, PW_VSVC_READ, key, addr + at, n);
		if (st != IBV_WC_SUCCESS)
			return st;
		if (!pw_swr_copy_in(w, at, s->data, n))
			return IBV_WC_LOC_PROT_ERR;
		at += n;
	}
	return IBV_WC_SUCCESS;
}

int pw_svc_atomic(struct pw_qp *qp, const struct pw_swr *w, uint64_t *ret_old)
{
	struct pw_vsvc *s = qp->peer_svc;

	atomic_store_explicit(&s->cmp, w->cmp, memory_order_relaxed);
	atomic_store_explicit(&s->swp, w->swp, memory_order_relaxed);
	int st = pw_svc_ask(qp, w->op == IBV_WR_ATOMIC_CMP_AND_SWP ? PW_VSVC_CAS : PW_VSVC_FAA,
			    w->rkey, w->raddr, 8);
	if (st == IBV_WC_SUCCESS)
		*ret_old = atomic_load_explicit(&s->result, memory_order_relaxed);
	return st;
}
