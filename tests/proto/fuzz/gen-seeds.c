// SPDX-License-Identifier: MIT
/*
 * Seed corpus for fuzz-proto: one valid packet of every message type (and
 * lists of a few lengths), each sent with pw_msg_send() over a SEQPACKET pair
 * and written as received into DIR/<name>.
 * Usage: gen-seeds DIR
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"

static union {
	uint8_t b[PW_WIRE_MAX];
	uint64_t align;
} rx, extra;

static const char *dir;
static int sv[2], fd;
static unsigned written;

static void die(const char *what, int err)
{
	fprintf(stderr, "gen-seeds: %s: %s\n", what, strerror(err));
	exit(1);
}

static void seed(const char *name, uint16_t type, const void *body, size_t body_len,
		 size_t extra_len)
{
	int fds[PW_WIRE_MAX_FDS], got[PW_WIRE_MAX_FDS];
	unsigned nfds = pw_msg_nfds(type), ngot;
	struct pw_msg m;
	char path[4096];
	ssize_t n;
	FILE *f;
	int ret;

	for (unsigned i = 0; i < PW_WIRE_MAX_FDS; i++)
		fds[i] = fd;
	if (nfds == PW_MSG_NFDS_PER_ENTRY) /* (CONN_POOL: the only such type) */
		nfds = ((const struct pw_wire_conn_pool *)body)->count;
	ret = pw_msg_send(sv[0], type, written + 1, body, body_len, extra.b, extra_len, fds, nfds);
	if (ret < 0)
		die(name, -ret);
	n = pw_msg_recv(sv[1], rx.b, sizeof(rx.b), got, &ngot, MSG_DONTWAIT);
	if (n < 0)
		die(name, (int)-n);
	for (unsigned i = 0; i < ngot; i++)
		close(got[i]);
	/* Only packets the decoder accepts make useful seeds. */
	ret = pw_msg_parse(rx.b, (size_t)n, ngot, &m);
	if (ret < 0)
		die(name, -ret);

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		die(name, ENAMETOOLONG);
	f = fopen(path, "we");
	if (!f)
		die(path, errno);
	if (fwrite(rx.b, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0)
		die(path, EIO);
	written++;
}

int main(int argc, char **argv)
{
	const size_t max_status =
		(PW_WIRE_MAX - sizeof(struct pw_wire_hdr) - sizeof(struct pw_wire_status)) /
		sizeof(struct pw_wire_status_entry);
	struct pw_wire_hello hello = { .flags = 1 };
	struct pw_wire_listen lsn = { .addr = { .family = 2, .port = 0x901f }, .backlog = 16 };
	struct pw_wire_connect conn_req = { .local = { .family = 10 }, .peer = { .family = 10 } };
	struct pw_wire_err err = { .err = ECONNREFUSED };
	struct pw_wire_conn conn = { .id = 42, .side = 1 };
	struct pw_wire_hello_ok ho = { .node_version = 1 };
	struct pw_wire_status st = { 0 };

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair", errno);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("/dev/null", errno);
	for (size_t i = 0; i < sizeof(extra.b); i++)
		extra.b[i] = (uint8_t)(i * 7 + 1);

	seed("hello", PW_MSG_HELLO, &hello, sizeof(hello), 0);
	seed("listen", PW_MSG_LISTEN, &lsn, sizeof(lsn), 0);
	seed("connect", PW_MSG_CONNECT, &conn_req, sizeof(conn_req), 0);
	seed("listen-ok", PW_MSG_LISTEN_OK, NULL, 0, 0);
	seed("status", PW_MSG_STATUS, NULL, 0, 0);
	struct pw_wire_reattach ra = { .id = 42 };
	seed("reattach", PW_MSG_REATTACH, &ra, sizeof(ra), 0);
	struct pw_wire_relay rl = { .id = 42, .flags = PW_RELAY_NOW };
	seed("relay", PW_MSG_RELAY, &rl, sizeof(rl), 0);
	seed("take", PW_MSG_TAKE, NULL, 0, 0);
	seed("requeue", PW_MSG_REQUEUE, &ra, sizeof(ra), 0);
	seed("ok", PW_MSG_OK, NULL, 0, 0);
	seed("err", PW_MSG_ERR, &err, sizeof(err), 0);
	seed("conn", PW_MSG_CONN, &conn, sizeof(conn), 0);
	seed("relay-ok", PW_MSG_RELAY_OK, &conn, sizeof(conn), 0);
	struct pw_wire_pool pool = { .peer = { .family = 2 }, .count = PW_POOL_MAX };
	seed("pool", PW_MSG_POOL, &pool, sizeof(pool), 0);
	struct pw_wire_conn_pool cp = { .conn = conn, .count = 1 };
	seed("conn-pool", PW_MSG_CONN_POOL, &cp, sizeof(cp), sizeof(struct pw_wire_pool_token));
	cp.count = PW_POOL_MAX;
	seed("conn-pool-16", PW_MSG_CONN_POOL, &cp, sizeof(cp),
	     PW_POOL_MAX * sizeof(struct pw_wire_pool_token));
	struct pw_wire_listen_pool lp = { .key = { 1, 2, 3 } };
	seed("listen-pool", PW_MSG_LISTEN_POOL, &lp, sizeof(lp), 0);
	seed("verbs-dev", PW_MSG_VERBS_DEV, NULL, 0, 0);
	struct pw_wire_verbs_open vo = { .layout = 1 };
	seed("verbs-open", PW_MSG_VERBS_OPEN, &vo, sizeof(vo), 0);
	struct pw_wire_verbs_dev vd = { .gid = { [10] = 0xff, [11] = 0xff, 198, 19, 1, 11 },
					.lid = 267 };
	seed("verbs-dev-ok", PW_MSG_VERBS_DEV_OK, &vd, sizeof(vd), 0);
	struct pw_wire_verbs_qp vq = { .slot = 3, .qpn = 17 };
	seed("verbs-qp", PW_MSG_VERBS_QP, &vq, sizeof(vq), 0);
	seed("verbs-qp-ok", PW_MSG_VERBS_QP_OK, &vq, sizeof(vq), 0);
	seed("verbs-qp-del", PW_MSG_VERBS_QP_DEL, &vq, sizeof(vq), 0);
	struct pw_wire_verbs_connect vc = { .qpn = 17, .dest_qpn = 18, .dest = 0x0b0113c6 };
	seed("verbs-connect", PW_MSG_VERBS_CONNECT, &vc, sizeof(vc), 0);
	struct pw_wire_verbs_paired vp = { .qpn = 17, .peer_qpn = 18, .peer_slot = 2 };
	seed("verbs-paired", PW_MSG_VERBS_PAIRED, &vp, sizeof(vp), 0);
	vp.peer_slot = 0;
	seed("verbs-paired-tcp", PW_MSG_VERBS_PAIRED_TCP, &vp, sizeof(vp), 0);
	ho.count = 0;
	seed("hello-ok-0", PW_MSG_HELLO_OK, &ho, sizeof(ho), 0);
	ho.count = 2;
	seed("hello-ok-2", PW_MSG_HELLO_OK, &ho, sizeof(ho), 2 * sizeof(struct pw_wire_prefix));
	ho.count = PW_WIRE_MAX_PREFIXES;
	seed("hello-ok-max", PW_MSG_HELLO_OK, &ho, sizeof(ho),
	     PW_WIRE_MAX_PREFIXES * sizeof(struct pw_wire_prefix));
	st.count = st.total = 0;
	seed("status-ok-0", PW_MSG_STATUS_OK, &st, sizeof(st), 0);
	st.count = st.total = 3;
	seed("status-ok-3", PW_MSG_STATUS_OK, &st, sizeof(st),
	     3 * sizeof(struct pw_wire_status_entry));
	st.count = st.total = (uint32_t)max_status;
	seed("status-ok-max", PW_MSG_STATUS_OK, &st, sizeof(st),
	     max_status * sizeof(struct pw_wire_status_entry));

	/* The pod registry. */
	struct pw_wire_pod pod = { .key = { .id = "0123456789abcdef", .ifname = "eth0" } };
	pod.count = 1;
	pod.addr[0] = (struct pw_wire_prefix){ .family = 2, .len = 24, .addr = { 198, 19, 1, 2 } };
	seed("pod-add", PW_MSG_POD_ADD, &pod, sizeof(pod), 0);
	pod.count = PW_WIRE_POD_MAX_ADDRS;
	seed("pod-add-max", PW_MSG_POD_ADD, &pod, sizeof(pod), 0);
	seed("pod-del", PW_MSG_POD_DEL, &pod.key, sizeof(pod.key), 0);
	seed("pods", PW_MSG_PODS, NULL, 0, 0);
	struct pw_wire_pods pods = { 0 };
	seed("pods-ok-0", PW_MSG_PODS_OK, &pods, sizeof(pods), 0);
	pods.count = pods.total = 2;
	/* Entries are not checked by the decoder: the pattern bytes do. */
	seed("pods-ok-2", PW_MSG_PODS_OK, &pods, sizeof(pods),
	     2 * sizeof(struct pw_wire_pod_entry));

	close(fd);
	close(sv[0]);
	close(sv[1]);
	printf("gen-seeds: %u packets in %s\n", written, dir);
	return 0;
}
