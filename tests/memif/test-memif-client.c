// SPDX-License-Identifier: MIT
/*
 * The client's side of memif (src/memif/client.c) against the server's
 * (conn.c, ring.c) over a real socket pair: the handshake (the server in a
 * thread), frames both ways through the rings, the ring full, refill; and a
 * server that refuses (another interface): -ECONNREFUSED with its reason,
 * nothing left open.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "memif.h"
#include "proto.h"
#include "pw_test.h"

struct server {
	int sock;
	uint32_t id;
	struct pw_memif_conn conn;
	int result;
};

/* The server's handshake: HELLO, then apply each message until CONNECTED
 * or a refusal. */
static void *serve(void *arg)
{
	struct server *s = arg;
	struct pw_memif_msg m, reply;
	uint8_t buf[256];
	int fds[PW_WIRE_MAX_FDS];

	pw_memif_conn_init(&s->conn, s->id, NULL);
	pw_memif_conn_hello(&m, "test-server");
	s->result = -EIO;
	if (send(s->sock, &m, sizeof(m), MSG_NOSIGNAL) != sizeof(m))
		return NULL;
	for (;;) {
		unsigned nfds = 0;
		ssize_t n = pw_msg_recv(s->sock, buf, sizeof(buf), fds, &nfds, 0);
		if (n <= 0 || pw_memif_msg_parse(buf, (size_t)n, nfds, &m) < 0)
			return NULL;
		int r = pw_memif_conn_apply(&s->conn, &m, nfds ? fds[0] : -1, &reply);
		if (send(s->sock, &reply, sizeof(reply), MSG_NOSIGNAL) != sizeof(reply))
			return NULL;
		if (r < 0 || s->conn.state == PW_MEMIF_S_CONNECTED) {
			s->result = r;
			return NULL;
		}
	}
}

/* A client over a socket pair to a server of interface @id in a thread:
 * what the client's open returned. */
static int connect_pair(int sv[2], struct server *s, uint32_t id, struct pw_memif_client *c)
{
	pthread_t t;

	PW_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
	s->sock = sv[1];
	s->id = id;
	PW_CHECK(pthread_create(&t, NULL, serve, s) == 0, "thread");
	int r = pw_memif_client_open(c, sv[0], 3, NULL, "pktgen", 4, 2048, 5000);
	pthread_join(t, NULL);
	return r;
}

static void test_frames(void)
{
	int sv[2], fds = pw_test_count_fds();
	struct server s;
	struct pw_memif_client c;
	int r = connect_pair(sv, &s, 3, &c);

	PW_CHECK(r == 0, "open: %s (%s)", strerror(-r), c.reason);
	PW_CHECK_EQ(s.result, 0);
	PW_CHECK(!strcmp(c.peer, "test-server"), "peer %s", c.peer);
	PW_CHECK(!strcmp(s.conn.peer, "pktgen"), "peer %s", s.conn.peer);
	pw_memif_rx_poll(&s.conn); /* the server polls: no interrupts */

	/* Client to server: 20 frames into 16 slots. */
	uint8_t f[100];
	struct pw_memif_pkt out[20];
	memset(f, 0x3c, sizeof(f));
	for (unsigned i = 0; i < 20; i++)
		out[i] = (struct pw_memif_pkt){ f, (uint32_t)(60 + i) };
	PW_CHECK_EQ(pw_memif_client_tx(&c, out, 20), 16);
	struct pw_memif_burst b = { .gather = NULL };
	PW_CHECK_EQ(pw_memif_rx(&s.conn, 0, &b), 16);
	PW_CHECK(b.pkt[15].len == 75 && b.pkt[15].data[74] == 0x3c, "frame 15");
	/* Back to the client: the buffers were offered at open. */
	PW_CHECK_EQ(pw_memif_tx(&s.conn, 0, b.pkt, b.n), 16);
	pw_memif_rx_done(&s.conn, 0, &b);
	PW_CHECK_EQ(pw_memif_client_tx(&c, out + 16, 4), 4);

	struct pw_memif_pkt in[32];
	PW_CHECK_EQ(pw_memif_client_rx(&c, in, 32), 16);
	PW_CHECK(in[0].len == 60 && in[15].len == 75 && in[15].data[0] == 0x3c, "back");
	PW_CHECK_EQ(pw_memif_client_rx(&c, in, 32), 0);
	/* Not refilled yet: the server has no room. */
	PW_CHECK_EQ(pw_memif_rx(&s.conn, 0, &b), 4);
	PW_CHECK_EQ(pw_memif_tx(&s.conn, 0, b.pkt, b.n), 0);
	PW_CHECK_EQ(s.conn.stats.tx_full, 4);
	pw_memif_rx_done(&s.conn, 0, &b);
	pw_memif_client_refill(&c);
	pw_memif_client_tx(&c, out, 2);
	PW_CHECK_EQ(pw_memif_rx(&s.conn, 0, &b), 2);
	PW_CHECK_EQ(pw_memif_tx(&s.conn, 0, b.pkt, b.n), 2);
	pw_memif_rx_done(&s.conn, 0, &b);
	PW_CHECK_EQ(pw_memif_client_rx(&c, in, 32), 2);

	/* The server wants interrupts: the client sends one. */
	PW_CHECK_EQ(c.irqs, 0);
	pw_memif_rx_arm(&s.conn);
	pw_memif_client_tx(&c, out, 1);
	PW_CHECK_EQ(c.irqs, 1);

	pw_memif_client_close(&c);
	pw_memif_conn_close(&s.conn);
	close(sv[0]);
	close(sv[1]);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
}

static void test_refused(void)
{
	int sv[2], fds = pw_test_count_fds();
	struct server s;
	struct pw_memif_client c;
	int r = connect_pair(sv, &s, 9, &c);

	PW_CHECK_EQ(r, -ECONNREFUSED);
	PW_CHECK(!strcmp(c.reason, "refused"), "reason %s", c.reason);
	pw_memif_conn_close(&s.conn);
	close(sv[0]);
	close(sv[1]);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	/* Bad sizes. */
	PW_CHECK_EQ(pw_memif_client_open(&c, -1, 0, NULL, "x", 0, 2048, 10), -EINVAL);
	PW_CHECK_EQ(pw_memif_client_open(&c, -1, 0, NULL, "x", 4, 32, 10), -EINVAL);
}

int main(void)
{
	test_frames();
	test_refused();
	printf("test-memif-client: ok\n");
	return 0;
}
