// SPDX-License-Identifier: MIT
/*
 * podwire's virtual RDMA device through the ordinary libibverbs API, run in a
 * lab pod under the preload (test-verbs-device.sh): the device list, the
 * queries against the identity the router gave (argv[1], the pod's IPv4
 * address), PDs, memory regions (re-backed in place, contents kept),
 * completion queues and channels, the QP state machine, async events, and
 * the verbs not offered failing with EOPNOTSUPP.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "pw_test.h"

static struct ibv_device *find_dev(struct ibv_device **list, int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), "podwire0"))
			return list[i];
	return NULL;
}

static void check_queries(struct ibv_context *ctx, const struct in_addr *pod)
{
	struct ibv_device_attr da;
	struct ibv_device_attr_ex dax;
	struct ibv_port_attr pa;
	union ibv_gid gid;
	struct ibv_gid_entry ge, table[4];
	__be16 pkey;

	PW_CHECK_EQ(ibv_query_device(ctx, &da), 0);
	PW_CHECK_EQ(da.phys_port_cnt, 1);
	PW_CHECK(da.node_guid == ibv_get_device_guid(ctx->device), "node guid");
	PW_CHECK_EQ(be64toh(da.node_guid) & 0xffffffffu, ntohl(pod->s_addr));
	PW_CHECK_EQ(da.vendor_part_id, 0);
	PW_CHECK_EQ(ibv_query_device_ex(ctx, NULL, &dax), 0);
	PW_CHECK_EQ(dax.orig_attr.max_pd, da.max_pd);
	PW_CHECK_EQ(dax.phys_port_cnt_ex, 1);

	/* The inline ibv_query_port (verbs_context->query_port). */
	memset(&pa, 0xa5, sizeof(pa));
	PW_CHECK_EQ(ibv_query_port(ctx, 1, &pa), 0);
	PW_CHECK_EQ(pa.state, IBV_PORT_ACTIVE);
	PW_CHECK_EQ(pa.link_layer, IBV_LINK_LAYER_ETHERNET);
	PW_CHECK_EQ(pa.active_mtu, IBV_MTU_4096);
	PW_CHECK_EQ(pa.gid_tbl_len, 1);
	PW_CHECK_EQ(pa.port_cap_flags2, 0); /* past the old layout: zeroed */
	/* The lab's prefix is 198.19.0.0/16: the LID is the offset in it. */
	PW_CHECK_EQ(pa.lid, ntohl(pod->s_addr) & 0xffff);
	PW_CHECK_EQ(ibv_query_port(ctx, 2, &pa), EINVAL);

	/* The exported ibv_query_port@IBVERBS_1.1 fills the old, shorter layout. */
	int (*exp_query_port)(struct ibv_context *, uint8_t, void *) =
		(int (*)(struct ibv_context *, uint8_t, void *))dlvsym(
			RTLD_DEFAULT, "ibv_query_port", "IBVERBS_1.1");
	PW_CHECK(exp_query_port, "ibv_query_port@IBVERBS_1.1 not found");
	unsigned char old[sizeof(pa) + 8];
	memset(old, 0xa5, sizeof(old));
	PW_CHECK_EQ(exp_query_port(ctx, 1, old), 0);
	PW_CHECK_EQ(((struct ibv_port_attr *)old)->state, IBV_PORT_ACTIVE);
	PW_CHECK_EQ(old[sizeof(pa) + 7], 0xa5); /* nothing written past it */

	/* GID 0: ::ffff:<pod address>, RoCE v2. */
	PW_CHECK_EQ(ibv_query_gid(ctx, 1, 0, &gid), 0);
	static const uint8_t v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	PW_CHECK(!memcmp(gid.raw, v4mapped, 12) && !memcmp(&gid.raw[12], pod, 4), "gid");
	errno = 0;
	PW_CHECK_EQ(ibv_query_gid(ctx, 1, 1, &gid), -1);
	PW_CHECK_EQ(errno, EINVAL);
	PW_CHECK_EQ(ibv_query_gid_ex(ctx, 1, 0, &ge, 0), 0);
	PW_CHECK_EQ(ge.gid_type, IBV_GID_TYPE_ROCE_V2);
	PW_CHECK_EQ(ge.port_num, 1);
	PW_CHECK(ge.ndev_ifindex > 0, "the GID's netdev: %u", ge.ndev_ifindex);
	PW_CHECK(!memcmp(&ge.gid.raw[12], pod, 4), "gid_ex");
	PW_CHECK_EQ(ibv_query_gid_ex(ctx, 1, 3, &ge, 0), EINVAL);
	PW_CHECK_EQ(ibv_query_gid_table(ctx, table, 4, 0), 1);
	PW_CHECK_EQ(table[0].gid_index, 0);
	PW_CHECK_EQ(ibv_query_gid_table(ctx, table, 0, 0), -EINVAL);

	PW_CHECK_EQ(ibv_query_pkey(ctx, 1, 0, &pkey), 0);
	PW_CHECK_EQ(be16toh(pkey), 0xffff);
	PW_CHECK_EQ(ibv_query_pkey(ctx, 1, 1, &pkey), -1);
	PW_CHECK_EQ(ibv_get_pkey_index(ctx, 1, htobe16(0xffff)), 0);
	PW_CHECK_EQ(ibv_get_pkey_index(ctx, 1, htobe16(0x8001)), -1);
}

/* Is [p, p + len) mapped from podwire's arena (re-backed in place)? */
static bool rebacked(const void *p, size_t len)
{
	char line[512];
	uintptr_t a = (uintptr_t)p, covered = a;
	FILE *f = fopen("/proc/self/maps", "re");

	PW_CHECK(f, "maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) != 2 || e <= covered || s > covered)
			continue;
		if (!strstr(line, "/memfd:podwire-verbs"))
			break;
		covered = e;
		if (covered >= a + len)
			break;
	}
	fclose(f);
	return covered >= a + len;
}

static void check_mr(struct ibv_pd *pd)
{
	size_t len = 3 * 4096 + 100;
	uint8_t *buf = memalign(4096, 4 * 4096);
	PW_CHECK(buf, "memalign");
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7);
	uint8_t *other = malloc(64); /* the heap around it stays healthy */
	PW_CHECK(other, "malloc");
	memset(other, 0x5a, 64);

	struct ibv_mr *mr = ibv_reg_mr(pd, buf + 100, len - 100,
				       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
					       IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC);
	PW_CHECK(mr, "reg_mr: %s", strerror(errno));
	PW_CHECK(mr->lkey && mr->lkey == mr->rkey && mr->addr == buf + 100, "mr fields");
	PW_CHECK(rebacked(buf + 100, len - 100), "the region is not re-backed by the arena");
	for (size_t i = 0; i < len; i++)
		PW_CHECK(buf[i] == (uint8_t)(i * 7), "byte %zu changed by the registration", i);
	for (int i = 0; i < 64; i++)
		PW_CHECK_EQ(other[i], 0x5a);
	/* The same pages again, overlapping: found re-backed, a new key. */
	struct ibv_mr *mr2 = ibv_reg_mr(pd, buf, 4096, IBV_ACCESS_LOCAL_WRITE);
	PW_CHECK(mr2 && mr2->lkey != mr->lkey, "second region: %s", strerror(errno));
	PW_CHECK_EQ(ibv_dereg_mr(mr2), 0);
	PW_CHECK_EQ(ibv_dereg_mr(mr), 0);
	/* Still the application's memory after deregistration. */
	buf[5] = 99;
	PW_CHECK_EQ(buf[5], 99);

	/* Remote write without local write: EINVAL. */
	errno = 0;
	PW_CHECK(!ibv_reg_mr(pd, buf, 4096, IBV_ACCESS_REMOTE_WRITE), "remote write alone");
	PW_CHECK_EQ(errno, EINVAL);
	/* Memory that cannot be re-backed (a file mapping) is registered as it
	 * is: not re-backed, its bytes and the file's the same (its owner
	 * serves it). A read-only mapping registers for reading only; one not
	 * mapped at all, not: EFAULT, as the kernel's pinning says. */
	FILE *f = tmpfile();
	PW_CHECK(f && ftruncate(fileno(f), 8192) == 0, "tmpfile");
	uint8_t *fm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
	PW_CHECK(fm != MAP_FAILED, "mmap");
	fm[4095] = 0x77;
	struct ibv_mr *fmr =
		ibv_reg_mr(pd, fm, 8192, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	PW_CHECK(fmr, "a file mapping: %s", strerror(errno));
	PW_CHECK(!rebacked(fm, 8192), "a file mapping was re-backed");
	uint8_t b;
	PW_CHECK(pread(fileno(f), &b, 1, 4095) == 1 && b == 0x77, "the file's byte: %u", b);
	PW_CHECK_EQ(ibv_dereg_mr(fmr), 0);
	PW_CHECK_EQ(mprotect(fm + 4096, 4096, PROT_READ), 0);
	errno = 0;
	PW_CHECK(!ibv_reg_mr(pd, fm, 8192, IBV_ACCESS_LOCAL_WRITE), "read-only, for writing");
	PW_CHECK_EQ(errno, EFAULT);
	fmr = ibv_reg_mr(pd, fm + 4096, 4096, IBV_ACCESS_REMOTE_READ);
	PW_CHECK(fmr, "read-only, for reading: %s", strerror(errno));
	PW_CHECK_EQ(ibv_dereg_mr(fmr), 0);
	PW_CHECK_EQ(munmap(fm, 8192), 0);
	errno = 0;
	PW_CHECK(!ibv_reg_mr(pd, fm, 4096, IBV_ACCESS_LOCAL_WRITE), "unmapped");
	PW_CHECK_EQ(errno, EFAULT);
	fclose(f);
	free(other);
	free(buf);
}

static void check_qp(struct ibv_context *ctx, struct ibv_pd *pd, struct ibv_comp_channel *ch)
{
	struct ibv_cq *cq = ibv_create_cq(ctx, 64, (void *)0x1234, ch, 0);
	PW_CHECK(cq, "create_cq: %s", strerror(errno));
	PW_CHECK(cq->cq_context == (void *)0x1234 && cq->channel == ch, "cq fields");
	PW_CHECK_EQ(ch->refcnt, 1);
	PW_CHECK_EQ(ibv_destroy_comp_channel(ch), EBUSY);
	PW_CHECK(!ibv_create_cq(ctx, 0, NULL, NULL, 0), "cqe 0");

	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC,
		.send_cq = cq,
		.recv_cq = cq,
		.cap = { .max_send_wr = 8, .max_recv_wr = 8, .max_send_sge = 2, .max_recv_sge = 2 }
	};
	struct ibv_qp *qp = ibv_create_qp(pd, &ia);
	PW_CHECK(qp, "create_qp: %s", strerror(errno));
	PW_CHECK(qp->qp_num >= 2 && qp->qp_num < (1u << 24), "qp_num %u", qp->qp_num);
	PW_CHECK_EQ(qp->state, IBV_QPS_RESET);
	PW_CHECK(ia.cap.max_send_wr >= 8 && ia.cap.max_recv_sge >= 2, "caps written back");
	PW_CHECK_EQ(ibv_destroy_cq(cq), EBUSY);

	/* RESET to INIT needs PKEY_INDEX, PORT and ACCESS_FLAGS. */
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1 };
	PW_CHECK_EQ(ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PORT), EINVAL);
	PW_CHECK_EQ(qp->state, IBV_QPS_RESET);
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	PW_CHECK_EQ(
		ibv_modify_qp(qp, &a,
			      IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
		0);
	PW_CHECK_EQ(qp->state, IBV_QPS_INIT);
	/* INIT to RTS skips RTR: EINVAL. A send before RTS: EINVAL. */
	a.qp_state = IBV_QPS_RTS;
	PW_CHECK_EQ(ibv_modify_qp(qp, &a, IBV_QP_STATE), EINVAL);
	struct ibv_send_wr wr = { .opcode = IBV_WR_SEND }, *bad = NULL;
	PW_CHECK_EQ(ibv_post_send(qp, &wr, &bad), EINVAL);
	PW_CHECK(bad == &wr, "bad_wr");

	struct ibv_qp_attr q;
	struct ibv_qp_init_attr qi;
	PW_CHECK_EQ(ibv_query_qp(qp, &q, IBV_QP_STATE, &qi), 0);
	PW_CHECK_EQ(q.qp_state, IBV_QPS_INIT);
	PW_CHECK_EQ(q.qp_access_flags, IBV_ACCESS_REMOTE_WRITE);
	PW_CHECK(qi.send_cq == cq && qi.qp_type == IBV_QPT_RC, "init attr");
	/* To ERR from anywhere, and back to RESET. */
	a.qp_state = IBV_QPS_ERR;
	PW_CHECK_EQ(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);
	a.qp_state = IBV_QPS_RESET;
	PW_CHECK_EQ(ibv_modify_qp(qp, &a, IBV_QP_STATE), 0);

	PW_CHECK_EQ(ibv_destroy_qp(qp), 0);
	PW_CHECK_EQ(ibv_destroy_cq(cq), 0);
	PW_CHECK_EQ(ch->refcnt, 0);
}

/* A QP pointed at a QP number nobody connects back from (a wrong or
 * forged one): with timeout T and retry_cnt R its send fails after about
 * 4.096 us x 2^T x (R + 1), with IBV_WC_RETRY_EXC_ERR, and the QP is in
 * error; with timeout 0 it waits (for ever, as IBA has it). */
static int forged_send(struct ibv_context *ctx, struct ibv_pd *pd, uint8_t timeout,
		       struct ibv_wc *ret, int ms)
{
	struct ibv_cq *cq = ibv_create_cq(ctx, 8, NULL, NULL, 0);
	struct ibv_qp_init_attr ia = {
		.qp_type = IBV_QPT_RC, .send_cq = cq, .recv_cq = cq, .cap = { 4, 4, 1, 1, 0 }
	};
	struct ibv_qp *qp = cq ? ibv_create_qp(pd, &ia) : NULL;
	uint8_t *b = memalign(4096, 4096);
	struct ibv_mr *mr = ibv_reg_mr(pd, b, 4096, IBV_ACCESS_LOCAL_WRITE);
	union ibv_gid gid;
	int n = 0;

	PW_CHECK(cq && qp && b && mr, "objects: %s", strerror(errno));
	PW_CHECK_EQ(ibv_query_gid(ctx, 1, 0, &gid), 0);
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1 };
	PW_CHECK_EQ(
		ibv_modify_qp(qp, &a,
			      IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
		0);
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTR,
				  .path_mtu = IBV_MTU_1024,
				  .dest_qp_num = 0xabcdef, /* nobody's */
				  .ah_attr = { .is_global = 1, .port_num = 1, .grh.dgid = gid } };
	PW_CHECK_EQ(ibv_modify_qp(qp, &a,
				  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
					  IBV_QP_MIN_RNR_TIMER),
		    0);
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS, .timeout = timeout, .retry_cnt = 1 };
	PW_CHECK_EQ(ibv_modify_qp(qp, &a,
				  IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					  IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC),
		    0);
	struct ibv_sge sg = { (uintptr_t)b, 64, mr->lkey };
	struct ibv_send_wr wr = { .wr_id = 5,
				  .sg_list = &sg,
				  .num_sge = 1,
				  .opcode = IBV_WR_SEND,
				  .send_flags = IBV_SEND_SIGNALED },
			   *bad;
	PW_CHECK_EQ(ibv_post_send(qp, &wr, &bad), 0);
	for (int i = 0; i < ms && !n; i++) {
		n = ibv_poll_cq(cq, 1, ret);
		if (!n)
			usleep(1000);
	}
	if (n) {
		struct ibv_qp_attr q;
		struct ibv_qp_init_attr qi;
		PW_CHECK_EQ(ibv_query_qp(qp, &q, IBV_QP_STATE, &qi), 0);
		PW_CHECK_EQ(q.qp_state, IBV_QPS_ERR);
	}
	PW_CHECK_EQ(ibv_destroy_qp(qp), 0);
	PW_CHECK_EQ(ibv_dereg_mr(mr), 0);
	PW_CHECK_EQ(ibv_destroy_cq(cq), 0);
	free(b);
	return n;
}

static void check_forged(struct ibv_context *ctx, struct ibv_pd *pd)
{
	struct ibv_wc wc;

	/* 4.096 us x 2^10 x 2: about 8 ms. */
	PW_CHECK_EQ(forged_send(ctx, pd, 10, &wc, 2000), 1);
	PW_CHECK(wc.wr_id == 5 && wc.status == IBV_WC_RETRY_EXC_ERR, "wc %s",
		 ibv_wc_status_str(wc.status));
	PW_CHECK_EQ(forged_send(ctx, pd, 0, &wc, 200), 0);
}

static void check_objects(struct ibv_context *ctx)
{
	struct ibv_pd *pd = ibv_alloc_pd(ctx);
	PW_CHECK(pd, "alloc_pd: %s", strerror(errno));
	PW_CHECK(pd->context == ctx, "pd context");
	struct ibv_pd *pd2 = ibv_alloc_pd(ctx);
	PW_CHECK(pd2 && pd2->handle != pd->handle, "a second pd");

	struct ibv_comp_channel *ch = ibv_create_comp_channel(ctx);
	PW_CHECK(ch, "comp channel: %s", strerror(errno));
	PW_CHECK(ch->fd >= 0 && (fcntl(ch->fd, F_GETFD) & FD_CLOEXEC), "channel fd");
	PW_CHECK_EQ(ch->refcnt, 0);

	check_mr(pd);
	check_qp(ctx, pd, ch);
	check_forged(ctx, pd);

	/* Not offered: a clean EOPNOTSUPP, never a crash. */
	struct ibv_cq *cq = ibv_create_cq(ctx, 16, NULL, NULL, 0);
	PW_CHECK(cq, "create_cq: %s", strerror(errno));
	struct ibv_qp_init_attr ud = {
		.qp_type = IBV_QPT_UD, .send_cq = cq, .recv_cq = cq, .cap = { 1, 1, 1, 1, 0 }
	};
	errno = 0;
	PW_CHECK(!ibv_create_qp(pd, &ud), "create_qp UD");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	/* SRQs: made within the device's limits, refused beyond them. */
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 4096, .max_sge = 4 } };
	struct ibv_srq *srq = ibv_create_srq(pd, &sa);
	PW_CHECK(srq, "create_srq: %s", strerror(errno));
	struct ibv_srq_attr sq;
	PW_CHECK_EQ(ibv_query_srq(srq, &sq), 0);
	PW_CHECK(sq.max_wr == 4096 && sq.max_sge == 4 && sq.srq_limit == 0, "query_srq: %u %u %u",
		 sq.max_wr, sq.max_sge, sq.srq_limit);
	sq.srq_limit = 4096;
	PW_CHECK_EQ(ibv_modify_srq(srq, &sq, IBV_SRQ_LIMIT), EINVAL); /* (not below max_wr) */
	PW_CHECK_EQ(ibv_destroy_srq(srq), 0);
	sa.attr.max_wr = 4097;
	errno = 0;
	PW_CHECK(!ibv_create_srq(pd, &sa), "create_srq beyond max_srq_wr");
	PW_CHECK_EQ(errno, EINVAL);
	struct ibv_ah_attr aa = { .port_num = 1 };
	errno = 0;
	PW_CHECK(!ibv_create_ah(pd, &aa), "create_ah");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	errno = 0;
	PW_CHECK(!ibv_alloc_mw(pd, IBV_MW_TYPE_1), "alloc_mw");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	PW_CHECK_EQ(ibv_destroy_cq(cq), 0);

	PW_CHECK_EQ(ibv_destroy_comp_channel(ch), 0);
	PW_CHECK_EQ(ibv_dealloc_pd(pd2), 0);
	PW_CHECK_EQ(ibv_dealloc_pd(pd), 0);
}

static void check_async(struct ibv_context *ctx)
{
	struct ibv_async_event ev;
	int fl = fcntl(ctx->async_fd, F_GETFL);

	PW_CHECK(fl >= 0 && !(fl & O_NONBLOCK), "async_fd blocks, as a device's does");
	PW_CHECK(fcntl(ctx->async_fd, F_GETFD) & FD_CLOEXEC, "async_fd close-on-exec");
	/* No event: a non-blocking async_fd says so. */
	PW_CHECK_EQ(fcntl(ctx->async_fd, F_SETFL, fl | O_NONBLOCK), 0);
	errno = 0;
	PW_CHECK_EQ(ibv_get_async_event(ctx, &ev), -1);
	PW_CHECK_EQ(errno, EAGAIN);
}

int main(int argc, char **argv)
{
	struct in_addr pod;
	int n = -1, fds;

	if (argc != 2 || inet_pton(AF_INET, argv[1], &pod) != 1)
		PW_FAIL("usage: test-verbs-api POD-IPV4");
	fds = pw_test_count_fds();
	struct ibv_device **list = ibv_get_device_list(&n);
	PW_CHECK(list, "ibv_get_device_list: %s", strerror(errno));
	struct ibv_device *dev = find_dev(list, n);
	PW_CHECK(dev, "podwire0 not among %d device(s)", n);
	PW_CHECK_EQ(dev->node_type, IBV_NODE_CA);
	PW_CHECK_EQ(dev->transport_type, IBV_TRANSPORT_IB);
	PW_CHECK_EQ(list[n], NULL);

	struct ibv_context *ctx = ibv_open_device(dev);
	PW_CHECK(ctx, "open: %s", strerror(errno));
	PW_CHECK_EQ(ctx->num_comp_vectors, 1);
	check_queries(ctx, &pod);
	check_objects(ctx);
	check_async(ctx);
	PW_CHECK_EQ(ibv_close_device(ctx), 0);
	ibv_free_device_list(list);
	PW_CHECK_EQ(pw_test_count_fds(), fds); /* nothing left open */
	printf("test-verbs-api: ok\n");
	return 0;
}
