// SPDX-License-Identifier: MIT
/*
 * podwire's virtual RDMA device through the ordinary libibverbs API, run in a
 * lab pod under the preload (test-verbs-device.sh): the device list, the
 * queries against the identity the router gave (argv[1], the pod's IPv4
 * address), PDs, completion channels, async events, and the verbs not
 * offered yet failing with EOPNOTSUPP.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <infiniband/verbs.h>
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

	/* Not offered yet: a clean EOPNOTSUPP, never a crash. */
	static char buf[4096];
	errno = 0;
	PW_CHECK(!ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE), "reg_mr");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	errno = 0;
	PW_CHECK(!ibv_create_cq(ctx, 16, NULL, ch, 0), "create_cq");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	struct ibv_qp_init_attr qa = { .qp_type = IBV_QPT_RC, .cap = { 1, 1, 1, 1, 0 } };
	errno = 0;
	PW_CHECK(!ibv_create_qp(pd, &qa), "create_qp");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 1, .max_sge = 1 } };
	errno = 0;
	PW_CHECK(!ibv_create_srq(pd, &sa), "create_srq");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	struct ibv_ah_attr aa = { .port_num = 1 };
	errno = 0;
	PW_CHECK(!ibv_create_ah(pd, &aa), "create_ah");
	PW_CHECK_EQ(errno, EOPNOTSUPP);
	errno = 0;
	PW_CHECK(!ibv_alloc_mw(pd, IBV_MW_TYPE_1), "alloc_mw");
	PW_CHECK_EQ(errno, EOPNOTSUPP);

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
