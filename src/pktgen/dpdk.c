// SPDX-License-Identifier: MIT
/*
 * podwire-pktgen's DPDK port (built when libdpdk is found): any ethdev DPDK
 * has, such as virtio_user for a vhost-user socket (OvS-DPDK's ports, a
 * net_vhost pod). The EAL is set up once, from --eal, at the first such
 * port; a port is dpdk:N, ethdev N of those the arguments made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "../common/parse.h"
#include "pktgen.h"

#define PW_PG_DPDK_RING	 1024
#define PW_PG_DPDK_MBUFS 8191

static struct rte_mempool *pw_pg_pool;

static int pw_pg_dpdk_tx(struct pw_pg_port *p, const struct pw_memif_pkt *f, unsigned n)
{
	struct rte_mbuf *m[PW_PG_BURST];

	if (n > PW_PG_BURST)
		n = PW_PG_BURST;
	if (rte_pktmbuf_alloc_bulk(pw_pg_pool, m, n) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		char *d = rte_pktmbuf_append(m[i], (uint16_t)f[i].len);
		if (d)
			memcpy(d, f[i].data, f[i].len);
	}
	uint16_t k = rte_eth_tx_burst(p->dpdk_port, 0, m, (uint16_t)n);
	if (k < n)
		rte_pktmbuf_free_bulk(m + k, n - k);
	return k;
}

static int pw_pg_dpdk_rx(struct pw_pg_port *p, struct pw_memif_pkt *f, unsigned max)
{
	struct rte_mbuf **m = (struct rte_mbuf **)p->mbufs;

	if (max > PW_PG_BURST)
		max = PW_PG_BURST;
	uint16_t k = rte_eth_rx_burst(p->dpdk_port, 0, m, (uint16_t)max);
	for (uint16_t i = 0; i < k; i++) {
		f[i].data = rte_pktmbuf_mtod(m[i], const uint8_t *);
		f[i].len = rte_pktmbuf_data_len(m[i]);
	}
	p->nmbufs = k;
	return k;
}

static void pw_pg_dpdk_done(struct pw_pg_port *p)
{
	rte_pktmbuf_free_bulk((struct rte_mbuf **)p->mbufs, p->nmbufs);
	p->nmbufs = 0;
}

static void pw_pg_dpdk_close(struct pw_pg_port *p)
{
	rte_eth_dev_stop(p->dpdk_port);
	rte_eth_dev_close(p->dpdk_port);
}

/* The EAL, once, from @args (split at spaces). */
static int pw_pg_dpdk_eal(const char *args, char *err, size_t errlen)
{
	static char *argv[64];
	static char buf[1024];
	int argc = 0;

	if (pw_pg_pool)
		return 0;
	if (!args || strlen(args) >= sizeof(buf)) {
		snprintf(err, errlen, "dpdk: give the EAL's arguments with --eal");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", args);
	argv[argc++] = "podwire-pktgen";
	for (char *save = NULL, *t = strtok_r(buf, " ", &save); t && argc < 63;
	     t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	if (rte_eal_init(argc, argv) < 0) {
		snprintf(err, errlen, "dpdk: EAL: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}
	pw_pg_pool = rte_pktmbuf_pool_create("podwire-pktgen", PW_PG_DPDK_MBUFS, 256, 0,
					     RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!pw_pg_pool) {
		snprintf(err, errlen, "dpdk: mbuf pool: %s", rte_strerror(rte_errno));
		return -rte_errno;
	}
	return 0;
}

int pw_pg_dpdk_open(struct pw_pg_port *p, const char *id, const char *eal, char *err, size_t errlen)
{
	struct rte_eth_conf conf;
	uint64_t n;
	int r = pw_pg_dpdk_eal(eal, err, errlen);

	if (r < 0)
		return r;
	if (pw_parse_u64(id, RTE_MAX_ETHPORTS - 1, &n) < 0 ||
	    !rte_eth_dev_is_valid_port((uint16_t)n)) {
		snprintf(err, errlen, "dpdk:%s: no such port (%u made by --eal)", id,
			 rte_eth_dev_count_avail());
		return -ENODEV;
	}
	p->dpdk_port = (uint16_t)n;
	memset(&conf, 0, sizeof(conf));
	if ((r = rte_eth_dev_configure(p->dpdk_port, 1, 1, &conf)) < 0 ||
	    (r = rte_eth_rx_queue_setup(p->dpdk_port, 0, PW_PG_DPDK_RING,
					(unsigned)rte_eth_dev_socket_id(p->dpdk_port), NULL,
					pw_pg_pool)) < 0 ||
	    (r = rte_eth_tx_queue_setup(p->dpdk_port, 0, PW_PG_DPDK_RING,
					(unsigned)rte_eth_dev_socket_id(p->dpdk_port), NULL)) < 0 ||
	    (r = rte_eth_dev_start(p->dpdk_port)) < 0) {
		snprintf(err, errlen, "dpdk:%s: %s", id, rte_strerror(-r));
		return r;
	}
	rte_eth_promiscuous_enable(p->dpdk_port);
	p->tx = pw_pg_dpdk_tx;
	p->rx = pw_pg_dpdk_rx;
	p->done = pw_pg_dpdk_done;
	p->close = pw_pg_dpdk_close;
	return 0;
}

void pw_pg_dpdk_cleanup(void)
{
	if (pw_pg_pool)
		rte_eal_cleanup();
}
