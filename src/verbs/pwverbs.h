/* SPDX-License-Identifier: MIT */
/*
 * libpodwire-verbs.so: podwire's virtual RDMA device (docs/RDMA.md).
 * Private to src/verbs.
 *
 *   device.c     the device list, the device and its context, queries,
 *                protection domains, completion channels, async events
 *   proc.c       the process's arena (shm.h) and its connection to the router
 *   mr.c         memory regions, re-backed in place by the arena
 *   cq.c         completion queues, their events
 *   qp.c         RC queue pairs: states, posting, and the data path to the
 *                peer's memory on this node
 *   unoffered.c  the verbs podwire's device does not offer (yet): EOPNOTSUPP
 *   forward.c    objects of a real RDMA device, passed to libibverbs untouched
 *
 * The library replaces libibverbs' exported API (LD_PRELOAD, beside
 * libpodwire.so) and mirrors its symbol versions (verbs.map). Every export
 * that takes an object first asks whose it is: a real device's objects go to
 * the real library, ours are served here.
 */
#ifndef PW_VERBS_H
#define PW_VERBS_H

#include <infiniband/verbs.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <podwire/shm.h>
#include <podwire/wire.h>

/* verbs.h makes these macros; the library defines the functions. */
#undef ibv_query_port
#undef ibv_reg_mr
#undef ibv_reg_mr_iova

#define PW_EXPORT __attribute__((visibility("default")))

#define PW_VERBS_DEV_NAME "podwire0"

/* The device's limits (ibv_query_device): what the code below holds. */
#define PW_VERBS_MAX_CQE	(1 << 20)
#define PW_VERBS_MAX_SEND_WR	4096
#define PW_VERBS_MAX_SEND_SGE	16
#define PW_VERBS_MAX_INLINE	1024
#define PW_VERBS_MAX_QP_RD_ATOM 16

/* The context podwire hands out: the application sees vc.context. */
struct pw_vctx {
	struct verbs_context vc;
	int async_wr; /* the write end of the async event pipe (vc.context.async_fd) */
};

/* Is @ctx (an open context, maybe a real device's) podwire's? */
bool pw_verbs_ctx_ours(const struct ibv_context *ctx);
bool pw_verbs_dev_ours(const struct ibv_device *dev);

/* ---- proc.c: the process's arena and its connection to the router ---- */

struct pw_msg;

/* Make the arena and the router connection (VERBS_OPEN) at the first open
 * context: 0 or -errno. pw_vproc_close() at each close: the last one ends
 * them. */
int pw_vproc_open(void);
void pw_vproc_close(void);
/* One request on that connection and its reply (PAIRED messages met on the
 * way are applied): 0 with @reply filled, or -errno. */
int pw_vproc_call(uint16_t type, const void *body, size_t len, int fd, struct pw_msg *reply);
/* Apply the PAIRED messages waiting, without blocking. */
void pw_vproc_drain(void);
/* Our own view of the arena's key table and QP slots. */
struct pw_vkey *pw_vproc_keys(void);
struct pw_vqp *pw_vproc_slot(unsigned slot);
int pw_vproc_arena(void);
/* An eventfd for QPs whose receive CQ has no channel: nobody reads it. */
int pw_vproc_null_evfd(void);
/* Map @len bytes of @arena from offset @off (page-aligned), @prot; NULL on error. */
void *pw_varena_map(int arena, uint64_t off, size_t len, int prot);

/* ---- mr.c: memory regions ---- */

/* Is [@addr, @addr + @len) inside our region @lkey, with @access? 0, or
 * -EPERM (no such key, or not allowed) / -EFAULT (out of its range). */
int pw_mr_check(uint32_t lkey, uint64_t addr, uint64_t len, unsigned access);

/* ---- cq.c and qp.c ---- */

struct pw_cq;
struct pw_qp;
/* The peer of our QP @qpn is there (PAIRED): its arena and eventfd, taken. */
void pw_qp_paired(uint32_t qpn, uint32_t peer_qpn, uint32_t peer_slot, int arena, int evfd);
/* Run the queued work of @qp (sends waiting for their peer, or for a receive). */
void pw_qp_progress(struct pw_qp *qp);
/* If @qp's peer went (the router marked its slot), put @qp in the error state:
 * its sends and receives complete with errors. */
void pw_qp_check_peer(struct pw_qp *qp);
/* Completions: a send completion of our own into @cq, and the wake-up. */
void pw_cq_push(struct pw_cq *cq, const struct ibv_wc *wc);
/* @qp's receive completions land in @cq (attach), or no longer (detach). */
int pw_cq_attach(struct pw_cq *cq, struct pw_qp *qp, bool recv);
void pw_cq_detach(struct pw_cq *cq, struct pw_qp *qp);
/* What poll_cq takes from a QP: its received completions, its queued sends. */
int pw_qp_poll_recv(struct pw_qp *qp, int n, struct ibv_wc *wc);
bool pw_qp_has_pending(struct pw_qp *qp);
void pw_qp_arm(struct pw_qp *qp, bool on);
bool pw_qp_arm_taken(struct pw_qp *qp);
int pw_cq_channel_fd(const struct pw_cq *cq);

int pw_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int pw_req_notify_cq(struct ibv_cq *cq, int solicited_only);
int pw_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
int pw_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

/* ---- forward.c ---- */

/* libibverbs' own @name of version @ver, looked up once into @slot; NULL when
 * the real library is not loaded (then no real object exists either). */
void *pw_verbs_real(_Atomic(void *) *slot, const char *name, const char *ver);

/* Return what the real library's @name returns for the same arguments, or
 * @fail with errno ENOSYS when it is not there. */
#define PW_FORWARD(ver, name, fail, ...)                                                           \
	do {                                                                                       \
		static _Atomic(void *) pw_slot_;                                                   \
		__typeof__(&name) pw_fn_ = pw_verbs_real(&pw_slot_, #name, ver);                   \
		if (!pw_fn_) {                                                                     \
			errno = ENOSYS;                                                            \
			return fail;                                                               \
		}                                                                                  \
		return pw_fn_(__VA_ARGS__);                                                        \
	} while (0)

/* The same for a verb that returns nothing. */
#define PW_FORWARD_VOID(ver, name, ...)                                                            \
	do {                                                                                       \
		static _Atomic(void *) pw_slot_;                                                   \
		__typeof__(&name) pw_fn_ = pw_verbs_real(&pw_slot_, #name, ver);                   \
		if (pw_fn_)                                                                        \
			pw_fn_(__VA_ARGS__);                                                       \
	} while (0)

#endif /* PW_VERBS_H */
