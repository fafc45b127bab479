/* SPDX-License-Identifier: MIT */
/*
 * libpodwire-verbs.so: podwire's virtual RDMA device (docs/RDMA.md).
 * Private to src/verbs.
 *
 *   device.c     the device list, the device and its context, queries,
 *                protection domains, completion channels, async events
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

#include <podwire/wire.h>

/* verbs.h makes these macros; the library defines the functions. */
#undef ibv_query_port
#undef ibv_reg_mr
#undef ibv_reg_mr_iova

#define PW_EXPORT __attribute__((visibility("default")))

#define PW_VERBS_DEV_NAME "podwire0"

/* The context podwire hands out: the application sees vc.context. */
struct pw_vctx {
	struct verbs_context vc;
	int async_wr; /* the write end of the async event pipe (vc.context.async_fd) */
};

/* Is @ctx (an open context, maybe a real device's) podwire's? */
bool pw_verbs_ctx_ours(const struct ibv_context *ctx);
bool pw_verbs_dev_ours(const struct ibv_device *dev);

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
