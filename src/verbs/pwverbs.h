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
 *   remote.c     a peer on another node: the TCP connection between the two
 *                processes, and the progress thread that serves it
 *   cm.c         librdmacm's API: a connection manager over TCP
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <podwire/shm.h>
#include <podwire/wire.h>

#include "../common/util.h"

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
struct pw_vsrq *pw_vproc_srq(unsigned slot);
struct pw_vsvc *pw_vproc_svc(unsigned slot);
int pw_vproc_arena(void);
/* The eventfd peers on this node wake us with when they ask for service. */
int pw_vproc_svc_fd(void);
/* The connection to the router. */
int pw_vproc_ctl(void);
/* An eventfd for QPs whose receive CQ has no channel: nobody reads it. */
int pw_vproc_null_evfd(void);
/* Map @len bytes of @arena from offset @off (page-aligned), @prot; NULL on error. */
void *pw_varena_map(int arena, uint64_t off, size_t len, int prot);

/* ---- mr.c: memory regions ---- */

/* Is [@addr, @addr + @len) inside our region @lkey, with @access? 0, or
 * -EPERM (no such key, or not allowed) / -EFAULT (out of its range). */
int pw_mr_check(uint32_t lkey, uint64_t addr, uint64_t len, unsigned access);
/* pw_mr_check(), then @fn(@arg) with the region kept registered meanwhile:
 * 0, or pw_mr_check()'s error (and no call). */
int pw_mr_hold(uint32_t lkey, uint64_t addr, uint64_t len, unsigned access, void (*fn)(void *),
	       void *arg);

/* ---- svc.c: regions served by their owner (PW_VKEY_SERVED) ---- */

struct pw_qp;
struct pw_swr;
/* Our QP slot @slot holds a QP (@live) whose access flags are @access. */
void pw_svc_qp(unsigned slot, bool live, unsigned access);
/* Serve the requests peers on this node wait for; @wait: even if another
 * thread serves now (then after it). */
void pw_svc_serve(bool wait);
/* Through the owner of @qp's peer: put bytes [@off, @off + @len) of @w's
 * payload at @addr of its region @key (op PW_VSVC_WRITE or PW_VSVC_PLACE);
 * get @len bytes from there into @w's local entries; do @w's atomic (the
 * old value in @ret_old). An ibv_wc_status: IBV_WC_SUCCESS, the owner's
 * IBV_WC_REM_ACCESS_ERR or IBV_WC_REM_INV_REQ_ERR, IBV_WC_LOC_PROT_ERR (our
 * own entries), IBV_WC_RETRY_EXC_ERR (no answer: the peer went, or its
 * transport timer ran out) or IBV_WC_REM_OP_ERR (a broken answer). */
int pw_svc_put(struct pw_qp *qp, int op, uint32_t key, uint64_t addr, uint64_t len,
	       const struct pw_swr *w, uint64_t off);
int pw_svc_get(struct pw_qp *qp, uint32_t key, uint64_t addr, uint64_t len, const struct pw_swr *w);
int pw_svc_atomic(struct pw_qp *qp, const struct pw_swr *w, uint64_t *ret_old);

/* ---- cq.c and qp.c ---- */

struct pw_cq;
struct pw_vconn;
struct pw_srq;

#define PW_WINS 16 /* the peer's regions mapped at a time, per QP */

/* A send work request, copied at post time. */
struct pw_swr {
	uint64_t wr_id;
	enum ibv_wr_opcode op;
	unsigned flags;
	uint32_t imm;
	uint64_t raddr;
	uint32_t rkey;
	uint64_t cmp, swp;
	unsigned nsge;
	struct ibv_sge sge[PW_VERBS_MAX_SEND_SGE];
	uint8_t inl[PW_VERBS_MAX_INLINE]; /* IBV_SEND_INLINE: the bytes themselves */
	uint32_t inl_len;
};

/* One of the peer's regions, mapped. */
struct pw_win {
	uint32_t key, seq;
	uint64_t va, len; /* the region, checked when mapped */
	unsigned access;
	uint8_t *map; /* the mapping, from the page of va */
	size_t maplen;
	uint64_t mapva; /* the address map stands for */
	unsigned age;
};

struct pw_qp {
	struct ibv_qp qp;
	unsigned slot;
	struct pw_vqp *sh; /* our slot */
	struct ibv_qp_cap cap;
	bool sig_all;
	struct ibv_qp_attr attr; /* as modify_qp set it */
	struct pw_cq *scq, *rcq;
	int evfd; /* given to the router with VERBS_CONNECT */

	bool failed;		 /* its peer went (the router said so): in error for good */
	uint64_t unpaired_since; /* ns: when work first waited for a peer, or 0 */

	/* The peer: set once (PAIRED), then read by the posting thread. */
	_Atomic bool paired;
	uint32_t peer_qpn;
	int peer_arena, peer_evfd;
	const struct pw_vkey *peer_keys;
	struct pw_vqp *peer; /* its slot */
	void *peer_map;
	size_t peer_maplen;
	struct pw_vsrq *peer_srq; /* the SRQ its receives come from, or NULL */
	void *peer_srq_map;
	size_t peer_srq_maplen;
	struct pw_vsvc *peer_svc; /* its owner's service for this QP (svc.c) */
	int peer_svc_fd;
	struct pw_win win[PW_WINS];
	unsigned win_clock;

	/* Sends waiting (unpaired, or RNR): a ring, under slock. With a peer
	 * on another node: [sq_tail, sq_sent) are sent and wait for their
	 * answers, [sq_sent, sq_head) are still to be sent. */
	pthread_mutex_t slock;
	struct pw_swr *sq;
	unsigned sq_size, sq_head, sq_tail, sq_sent;
	/* Sends on this node wait in it (set under slock): a hint that lets
	 * the progress thread pass over the others without their lock. */
	_Atomic bool stuck;

	/* A peer on another node (remote.c): set once, released after it is
	 * whole (pw_qp_conn() acquires). */
	_Atomic(struct pw_vconn *) conn;

	/* Receives: our copy of what we posted (wr_id by ring index), and how
	 * many completions we took. Under the receive CQ's lock, or the
	 * poster's (rlock). */
	pthread_mutex_t rlock;
	uint64_t rq_wrid[PW_VRQ_DEPTH];
	uint32_t rq_cap[PW_VRQ_DEPTH]; /* and how many bytes each can take */
	uint32_t rq_head, cq_tail;
	struct pw_srq *srq; /* our receives come from it (set at create) */
};

/* ---- srq.c: shared receive queues ---- */

/* Claim the next receive posted in @q (a peer's or ours): its index in
 * @ret_idx and a copy in @ret; IBV_WC_SUCCESS, PW_RNR (none),
 * IBV_WC_REM_OP_ERR (a broken queue). */
int pw_vsrq_take(struct pw_vsrq *q, uint32_t *ret_idx, struct pw_vrecv *ret);
struct pw_vsrq *pw_srq_shm(struct pw_srq *srq);
/* @qp takes its receives from @srq (create), or no longer (destroy). */
int pw_srq_attach(struct pw_srq *srq, struct pw_qp *qp);
void pw_srq_detach(struct pw_srq *srq, struct pw_qp *qp);
/* A completion of @srq's receive @idx, polled: its wr_id (ours) into
 * @ret_wrid, the bytes it can take into @ret_cap; false if @idx is not one of
 * ours in flight (a broken peer). */
bool pw_srq_polled(struct pw_srq *srq, uint32_t idx, uint64_t *ret_wrid, uint32_t *ret_cap);
/* A receive was claimed in this process (the progress thread): the limit
 * event, if armed and reached. */
void pw_srq_check_limit(struct pw_srq *srq);
int pw_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);
/* @wr into the receive entry @e (its lkeys checked, LOCAL_WRITE), the bytes
 * it can take into @ret_cap: 0 or EINVAL. */
int pw_vrecv_fill(struct pw_vrecv *e, const struct ibv_recv_wr *wr, uint32_t *ret_cap);
/* An async event for @element on @ctx's async_fd (device.c). */
void pw_async_post(struct ibv_context *ctx, enum ibv_event_type type, uint64_t element);

#define PW_RNR 1000 /* (not a wc status: wait for a receive) */

/* @qp's connection to a peer on another node, or NULL. */
static inline struct pw_vconn *pw_qp_conn(struct pw_qp *qp)
{
	/* Acquire: pairs with pw_qp_paired_tcp()'s release. */
	return atomic_load_explicit(&qp->conn, memory_order_acquire);
}

/* A send's completion (if signalled, or an error) into its send CQ. */
void pw_qp_complete(struct pw_qp *qp, const struct pw_swr *w, enum ibv_wc_status st, uint32_t len);
/* The QP fails: waiting sends complete flushed. Under slock. */
void pw_qp_error_locked(struct pw_qp *qp);
/* Receives posted and not taken complete flushed. */
void pw_qp_flush_recvs(struct pw_qp *qp);
/* The bytes @w carries; where its entry @i lives, checked for @access (NULL:
 * a local protection error, or inline data). */
uint64_t pw_swr_len(const struct pw_swr *w);
uint8_t *pw_swr_local(const struct pw_swr *w, unsigned i, unsigned access);
/* The next receive posted in slot @p: its index in @ret_tail and a copy in
 * @ret; IBV_WC_SUCCESS, PW_RNR (none), IBV_WC_REM_OP_ERR (a broken ring). */
int pw_slot_recv(struct pw_vqp *p, uint32_t *ret_tail, struct pw_vrecv *ret);
/* A receive completion into slot @p, and the wake-up on @evfd if armed. */
void pw_slot_complete(struct pw_vqp *p, int evfd, const struct pw_vcqe *c);
/* The peer of our QP @qpn is there (PAIRED): its arena, its eventfd and its
 * process's service eventfd, taken. */
void pw_qp_paired(uint32_t qpn, uint32_t peer_qpn, uint32_t peer_slot, int arena, int evfd,
		  int svc);
/* Is @qp's peer (on this node) still there? */
bool pw_qp_peer_alive(const struct pw_qp *qp);
/* Bytes [@off, @off + @n) of @w's payload into @dst; @src into @w's local
 * entries (LOCAL_WRITE) at payload offset @off. false: an entry is not
 * registered for it (a local protection error), or too short. */
bool pw_swr_copy_out(const struct pw_swr *w, uint64_t off, uint8_t *dst, uint64_t n);
bool pw_swr_copy_in(const struct pw_swr *w, uint64_t off, const uint8_t *src, uint64_t n);
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
/* Has @qp receive completions not yet taken? (Under the CQ's lock.) */
bool pw_qp_recv_ready(struct pw_qp *qp);
void pw_qp_arm(struct pw_qp *qp, bool on);
bool pw_qp_arm_taken(struct pw_qp *qp);
int pw_cq_channel_fd(const struct pw_cq *cq);

int pw_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int pw_req_notify_cq(struct ibv_cq *cq, int solicited_only);
int pw_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
int pw_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

/* ---- remote.c: a peer on another node ---- */

/* Our QP numbered @qpn, or NULL. */
struct pw_qp *pw_qp_by_num(uint32_t qpn);

/* Our QP @qpn's peer @peer_qpn is on another node: @sock (taken) connects
 * the two processes. */
void pw_qp_paired_tcp(uint32_t qpn, uint32_t peer_qpn, int sock);
/* Start the progress thread that serves such peers (once; 0 or -errno), and
 * stop it (at the last close). */
int pw_vremote_start(void);
void pw_vremote_stop(void);
#define PW_RNR_RETRY_MS 1 /* how often sends that met no receive are retried */

/* Sends of a QP on this node wait (for its peer, or for a receive): the
 * progress thread retries them every PW_RNR_RETRY_MS, as an adapter retries
 * on its own, while the application may be asleep anywhere. */
void pw_vremote_retry(void);
/* Retry the waiting sends of every QP on this node; true if some still wait
 * (qp.c, called by the progress thread). */
bool pw_qp_retry_all(void);
/* @qp's connection: send what its send queue holds (under slock); a
 * receive was posted (a peer's SEND may wait for it); @qp went to the error
 * state (under slock: the peer is told); @qp goes (before it is freed). */
void pw_vconn_pump(struct pw_qp *qp);
void pw_vconn_recv_posted(struct pw_qp *qp);
/* Read @qp's connection now, from a thread polling a CQ (unless another
 * thread reads it). */
void pw_vconn_poll(struct pw_qp *qp);
void pw_vconn_error(struct pw_qp *qp);
void pw_vconn_drop(struct pw_qp *qp);

/* A lock of the data path: held for short spans by the posting thread and
 * the progress thread at once, so a waiter spins a little before it sleeps
 * (a futex sleep and wake-up cost more than the hold). */
void pw_vlock_init(pthread_mutex_t *m);

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
