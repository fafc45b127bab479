// SPDX-License-Identifier: MIT
/* podwire-pktgen's ports: a memif client, or AF_PACKET on an interface. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/parse.h"
#include "../common/util.h"
#include "pktgen.h"

#define PW_PG_CONNECT_NS 10000000000ull /* how long a memif port is retried */

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

/* ---- memif ---- */

static int pw_pg_memif_tx(struct pw_pg_port *p, const struct pw_memif_pkt *f, unsigned n)
{
	return (int)pw_memif_client_tx(&p->mc, f, n);
}

static int pw_pg_memif_rx(struct pw_pg_port *p, struct pw_memif_pkt *f, unsigned max)
{
	return pw_memif_client_rx(&p->mc, f, max);
}

static void pw_pg_memif_done(struct pw_pg_port *p)
{
	pw_memif_client_refill(&p->mc);
}

static void pw_pg_memif_close(struct pw_pg_port *p)
{
	pw_memif_client_close(&p->mc);
	p->sock = pw_close(p->sock);
}

static int pw_pg_memif_open(struct pw_pg_port *p, char *args, char *err, size_t errlen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char *save = NULL, *path = strtok_r(args, ",", &save), *tok;
	const char *secret = NULL;
	bool abstract = false;
	uint64_t id = 0;
	int r;

	if (!path || !*path) {
		snprintf(err, errlen, "memif: no socket path");
		return -EINVAL;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strcmp(tok, "abstract"))
			abstract = true;
		else if (!strncmp(tok, "id=", 3) && pw_parse_u64(tok + 3, UINT32_MAX, &id) == 0)
			;
		else if (!strncmp(tok, "secret=", 7))
			secret = tok + 7;
		else {
			snprintf(err, errlen, "memif: unknown option %s", tok);
			return -EINVAL;
		}
	}
	size_t n = strlen(path);
	if (n + 2 > sizeof(a.sun_path)) {
		snprintf(err, errlen, "memif: socket path too long");
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path + abstract, path, n);
	socklen_t len =
		(socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + n + !abstract);
	/* A server starting beside us may not listen or answer yet (DPDK's
	 * binds at probe and refuses until its port starts): retry a while. */
	uint64_t deadline = pw_now_ns() + PW_PG_CONNECT_NS;
	for (;;) {
		p->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (p->sock < 0 || connect(p->sock, (struct sockaddr *)&a, len) < 0)
			r = -errno;
		else
			r = pw_memif_client_open(&p->mc, p->sock, (uint32_t)id, secret,
						 "podwire-pktgen", 10, PW_PG_MAX_FRAME, 5000);
		if (r == 0)
			break;
		p->sock = pw_close(p->sock);
		bool again = r == -ENOENT || r == -ECONNREFUSED || r == -ECONNRESET;
		if (!again || pw_now_ns() >= deadline) {
			snprintf(err, errlen, "memif %s%s: %s%s%s", abstract ? "@" : "", path,
				 strerror(-r), p->mc.reason[0] ? ": " : "", p->mc.reason);
			return r;
		}
		usleep(100000);
	}
	p->tx = pw_pg_memif_tx;
	p->rx = pw_pg_memif_rx;
	p->done = pw_pg_memif_done;
	p->close = pw_pg_memif_close;
	return 0;
}

/* ---- AF_PACKET ---- */

/* @n message headers, each over one buffer of @iov. */
static void pw_pg_afp_msgs(struct mmsghdr *m, struct iovec *iov, unsigned n)
{
	memset(m, 0, sizeof(m[0]) * n);
	for (unsigned i = 0; i < n; i++) {
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
}

static int pw_pg_afp_tx(struct pw_pg_port *p, const struct pw_memif_pkt *f, unsigned n)
{
	struct mmsghdr m[PW_PG_BURST];
	struct iovec iov[PW_PG_BURST];

	if (n > PW_PG_BURST)
		n = PW_PG_BURST;
	for (unsigned i = 0; i < n; i++)
		iov[i] = (struct iovec){ (void *)f[i].data, f[i].len };
	pw_pg_afp_msgs(m, iov, n);
	int k = sendmmsg(p->fd, m, n, MSG_DONTWAIT);
	if (k < 0)
		return errno == EAGAIN || errno == ENOBUFS || errno == EINTR ? 0 : -errno;
	return k;
}

static int pw_pg_afp_rx(struct pw_pg_port *p, struct pw_memif_pkt *f, unsigned max)
{
	struct mmsghdr m[PW_PG_BURST];
	struct iovec iov[PW_PG_BURST];

	if (max > PW_PG_BURST)
		max = PW_PG_BURST;
	for (unsigned i = 0; i < max; i++)
		iov[i] = (struct iovec){ p->rxbuf[i], sizeof(p->rxbuf[i]) };
	pw_pg_afp_msgs(m, iov, max);
	int k = recvmmsg(p->fd, m, max, MSG_DONTWAIT, NULL);
	if (k < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (int i = 0; i < k; i++) {
		f[i].data = p->rxbuf[i];
		f[i].len = m[i].msg_len;
	}
	return k;
}

static void pw_pg_afp_done(struct pw_pg_port *p)
{
	(void)p;
}

static void pw_pg_afp_close(struct pw_pg_port *p)
{
	p->fd = pw_close(p->fd);
}

static int pw_pg_afp_open(struct pw_pg_port *p, const char *ifname, char *err, size_t errlen)
{
	unsigned idx = if_nametoindex(ifname);
	int one = 1, r;

	if (!idx) {
		snprintf(err, errlen, "af_packet: no interface %s", ifname);
		return -ENODEV;
	}
	p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	struct sockaddr_ll ll = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(ETH_P_ALL),
				  .sll_ifindex = (int)idx };
	if (p->fd < 0 || bind(p->fd, (struct sockaddr *)&ll, sizeof(ll)) < 0 ||
	    setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) < 0 ||
	    setsockopt(p->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		r = -errno;
		snprintf(err, errlen, "af_packet %s: %s", ifname, strerror(-r));
		p->fd = pw_close(p->fd);
		return r;
	}
	p->tx = pw_pg_afp_tx;
	p->rx = pw_pg_afp_rx;
	p->done = pw_pg_afp_done;
	p->close = pw_pg_afp_close;
	return 0;
}

int pw_pg_port_open(struct pw_pg_port *p, const char *spec, const char *eal, char *err,
		    size_t errlen)
{
	char buf[256];
	int r;

	memset(p, 0, sizeof(*p));
	p->sock = p->fd = -1;
	p->spec = spec;
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "%.32s...: too long", spec);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	if (!strncmp(buf, "memif:", 6))
		r = pw_pg_memif_open(p, buf + 6, err, errlen);
	else if (!strncmp(buf, "af_packet:", 10))
		r = pw_pg_afp_open(p, buf + 10, err, errlen);
#ifdef PW_PG_DPDK
	else if (!strncmp(buf, "dpdk:", 5))
		r = pw_pg_dpdk_open(p, buf + 5, eal, err, errlen);
#endif
	else {
		(void)eal;
		snprintf(err, errlen, "%s: a port is memif:PATH[,...], af_packet:IFNAME%s", spec,
#ifdef PW_PG_DPDK
			 " or dpdk:N"
#else
			 " (this build has no DPDK)"
#endif
		);
		r = -EINVAL;
	}
	return r;
}
