// SPDX-License-Identifier: MIT
/*
 * The verbs podwire's device does not offer yet: on its objects they fail as
 * a device without the feature does (EOPNOTSUPP); a real device's objects go
 * to the real library. docs/RDMA.md keeps the table of what is offered.
 */
#include <errno.h>
#include <stddef.h>

#include "pwverbs.h"

/* On podwire's objects: NULL or -1 with errno EOPNOTSUPP. */
#define PW_NOT_OURS_OR(ctx, fail)                                                                  \
	do {                                                                                       \
		if (pw_verbs_ctx_ours(ctx)) {                                                      \
			errno = EOPNOTSUPP;                                                        \
			return fail;                                                               \
		}                                                                                  \
	} while (0)

/* On podwire's objects: the error number itself, as these verbs return it. */
#define PW_NOT_OURS_ERR(ctx)                                                                       \
	do {                                                                                       \
		if (pw_verbs_ctx_ours(ctx))                                                        \
			return EOPNOTSUPP;                                                         \
	} while (0)

/* ---- memory regions ---- */

PW_EXPORT struct ibv_mr *ibv_reg_dmabuf_mr(struct ibv_pd *pd, uint64_t offset, size_t length,
					   uint64_t iova, int fd, int access)
{
	PW_NOT_OURS_OR(pd->context, NULL);
	PW_FORWARD("IBVERBS_1.12", ibv_reg_dmabuf_mr, NULL, pd, offset, length, iova, fd, access);
}

PW_EXPORT int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr,
			   size_t length, int access)
{
	PW_NOT_OURS_OR(mr->context, IBV_REREG_MR_ERR_INPUT);
	PW_FORWARD("IBVERBS_1.1", ibv_rereg_mr, IBV_REREG_MR_ERR_INPUT, mr, flags, pd, addr, length,
		   access);
}

/* ---- queue pairs ---- */

PW_EXPORT struct ibv_qp_ex *ibv_qp_to_qp_ex(struct ibv_qp *qp)
{
	PW_NOT_OURS_OR(qp->context, NULL);
	PW_FORWARD("IBVERBS_1.6", ibv_qp_to_qp_ex, NULL, qp);
}

PW_EXPORT int ibv_query_qp_data_in_order(struct ibv_qp *qp, enum ibv_wr_opcode op, uint32_t flags)
{
	if (pw_verbs_ctx_ours(qp->context))
		return 0; /* promises nothing */
	PW_FORWARD("IBVERBS_1.14", ibv_query_qp_data_in_order, 0, qp, op, flags);
}

PW_EXPORT int ibv_query_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	PW_NOT_OURS_ERR(qp->context);
	PW_FORWARD("IBVERBS_1.10", ibv_query_ece, ENOSYS, qp, ece);
}

PW_EXPORT int ibv_set_ece(struct ibv_qp *qp, struct ibv_ece *ece)
{
	PW_NOT_OURS_ERR(qp->context);
	PW_FORWARD("IBVERBS_1.10", ibv_set_ece, ENOSYS, qp, ece);
}

PW_EXPORT int ibv_attach_mcast(struct ibv_qp *qp, const union ibv_gid *gid, uint16_t lid)
{
	PW_NOT_OURS_ERR(qp->context);
	PW_FORWARD("IBVERBS_1.1", ibv_attach_mcast, ENOSYS, qp, gid, lid);
}

PW_EXPORT int ibv_detach_mcast(struct ibv_qp *qp, const union ibv_gid *gid, uint16_t lid)
{
	PW_NOT_OURS_ERR(qp->context);
	PW_FORWARD("IBVERBS_1.1", ibv_detach_mcast, ENOSYS, qp, gid, lid);
}

/* ---- address handles (UD: not offered) ---- */

PW_EXPORT struct ibv_ah *ibv_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	PW_NOT_OURS_OR(pd->context, NULL);
	PW_FORWARD("IBVERBS_1.1", ibv_create_ah, NULL, pd, attr);
}

PW_EXPORT int ibv_destroy_ah(struct ibv_ah *ah)
{
	PW_NOT_OURS_ERR(ah->context);
	PW_FORWARD("IBVERBS_1.1", ibv_destroy_ah, ENOSYS, ah);
}

PW_EXPORT struct ibv_ah *ibv_create_ah_from_wc(struct ibv_pd *pd, struct ibv_wc *wc,
					       struct ibv_grh *grh, uint8_t port_num)
{
	PW_NOT_OURS_OR(pd->context, NULL);
	PW_FORWARD("IBVERBS_1.1", ibv_create_ah_from_wc, NULL, pd, wc, grh, port_num);
}

PW_EXPORT int ibv_init_ah_from_wc(struct ibv_context *ctx, uint8_t port_num, struct ibv_wc *wc,
				  struct ibv_grh *grh, struct ibv_ah_attr *ah_attr)
{
	PW_NOT_OURS_OR(ctx, -1);
	PW_FORWARD("IBVERBS_1.1", ibv_init_ah_from_wc, -1, ctx, port_num, wc, grh, ah_attr);
}

PW_EXPORT int ibv_resolve_eth_l2_from_gid(struct ibv_context *ctx, struct ibv_ah_attr *attr,
					  uint8_t eth_mac[6], uint16_t *vid)
{
	PW_NOT_OURS_ERR(ctx);
	PW_FORWARD("IBVERBS_1.1", ibv_resolve_eth_l2_from_gid, ENOSYS, ctx, attr, eth_mac, vid);
}

/* ---- imports (of another process's kernel objects) ---- */

PW_EXPORT struct ibv_pd *ibv_import_pd(struct ibv_context *ctx, uint32_t handle)
{
	PW_NOT_OURS_OR(ctx, NULL);
	PW_FORWARD("IBVERBS_1.10", ibv_import_pd, NULL, ctx, handle);
}

PW_EXPORT void ibv_unimport_pd(struct ibv_pd *pd)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD_VOID("IBVERBS_1.10", ibv_unimport_pd, pd);
}

PW_EXPORT struct ibv_mr *ibv_import_mr(struct ibv_pd *pd, uint32_t handle)
{
	PW_NOT_OURS_OR(pd->context, NULL);
	PW_FORWARD("IBVERBS_1.10", ibv_import_mr, NULL, pd, handle);
}

PW_EXPORT void ibv_unimport_mr(struct ibv_mr *mr)
{
	if (!pw_verbs_ctx_ours(mr->context))
		PW_FORWARD_VOID("IBVERBS_1.10", ibv_unimport_mr, mr);
}

PW_EXPORT struct ibv_dm *ibv_import_dm(struct ibv_context *ctx, uint32_t handle)
{
	PW_NOT_OURS_OR(ctx, NULL);
	PW_FORWARD("IBVERBS_1.13", ibv_import_dm, NULL, ctx, handle);
}

PW_EXPORT void ibv_unimport_dm(struct ibv_dm *dm)
{
	if (!pw_verbs_ctx_ours(dm->context))
		PW_FORWARD_VOID("IBVERBS_1.13", ibv_unimport_dm, dm);
}
