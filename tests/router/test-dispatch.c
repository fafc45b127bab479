// SPDX-License-Identifier: MIT
/*
 * The router's request dispatch (src/router/client.c), in-process and without
 * root: malformed and unknown requests, the table, the ERR rule, and who
 * closes the fds that come with a request (router.h, pw_request_fn). Then
 * the real table: each request type reaches its handler.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "router_test.h"

static struct {
	int calls;
	uint16_t type;
	uint32_t seq;
	int fds[PW_WIRE_MAX_FDS];
	int ret;	  /* what the probe handler returns */
	bool take;	  /* it keeps fds[0] (sets the slot to -1) */
	bool close_early; /* it closes fds[0] itself and sets the slot to -1 */
	int kept;
} probe;

static int probe_fn(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS])
{
	probe.calls++;
	probe.type = m->type;
	probe.seq = m->seq;
	memcpy(probe.fds, fds, sizeof(probe.fds));
	if (probe.take) {
		probe.kept = fds[0];
		fds[0] = -1;
	}
	if (probe.close_early) {
		close(fds[0]);
		fds[0] = -1;
		/* Most likely the same number again: a second close would hit it. */
		probe.kept = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	}
	return probe.ret;
}

static const struct pw_request probe_table[] = {
	{ PW_MSG_HELLO, false, probe_fn },
	{ PW_MSG_CONNECT, true, probe_fn },
	{ PW_MSG_LISTEN, false, probe_fn },
};

static void probe_reset(int ret)
{
	memset(&probe, 0, sizeof(probe));
	probe.ret = ret;
	probe.kept = -1;
}

static int serve_probe(struct pw_client *c)
{
	return pw_client_serve(c, probe_table, PW_ARRAY_SIZE(probe_table));
}

/* A socket to pass: what it is does not matter to the dispatcher. */
static int any_fd(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	PW_CHECK(fd >= 0, "socket: %s", strerror(errno));
	return fd;
}

/* A TCP socket of this netns: a pod's proof where one is asked for. */
static int tcp_fd(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	PW_CHECK(fd >= 0, "socket: %s", strerror(errno));
	return fd;
}

static void send_req(int peer, uint16_t type, uint32_t seq, const void *body, size_t len, int fd)
{
	PW_CHECK_EQ(pw_msg_send(peer, type, seq, body, len, NULL, 0, &fd, fd >= 0), 0);
	if (fd >= 0)
		close(fd); /* the router has its copy */
}

static void test_routing(void)
{
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	struct pw_wire_hello hello = { 0 };
	struct pw_wire_connect conn = { 0 };
	int base = pw_test_count_fds();

	/* Nothing waiting: nothing done. */
	probe_reset(0);
	PW_CHECK_EQ(serve_probe(&c), 0);
	PW_CHECK_EQ(probe.calls, 0);

	/* Each type reaches the entry of its type, with its seq. */
	send_req(peer, PW_MSG_HELLO, 41, &hello, sizeof(hello), -1);
	PW_CHECK_EQ(serve_probe(&c), 0);
	PW_CHECK_EQ(probe.calls, 1);
	PW_CHECK_EQ(probe.type, PW_MSG_HELLO);
	PW_CHECK_EQ(probe.seq, 41);
	PW_CHECK_EQ(probe.fds[0], -1); /* slots past what the type carries */
	PW_CHECK_EQ(probe.fds[1], -1);
	RT_CHECK_NO_REPLY(peer); /* the probe answered nothing */

	probe_reset(0);
	send_req(peer, PW_MSG_CONNECT, 42, &conn, sizeof(conn), any_fd());
	PW_CHECK_EQ(serve_probe(&c), 0);
	PW_CHECK_EQ(probe.type, PW_MSG_CONNECT);
	PW_CHECK(probe.fds[0] >= 0, "the CONNECT socket came through");
	PW_CHECK_EQ(probe.fds[1], -1);
	/* The dispatcher closed the fd the handler left in its slot. */
	PW_CHECK(!rt_fd_open(probe.fds[0]), "fd %d still open", probe.fds[0]);
	PW_CHECK_EQ(pw_test_count_fds(), base);
	close(peer);
	close(c.fd);
}

static void test_err_rule(void)
{
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	struct pw_wire_connect conn = { 0 };
	struct pw_wire_hello hello = { 0 };

	/* reply_err: a negative errno is answered with ERR. */
	probe_reset(-EACCES);
	send_req(peer, PW_MSG_CONNECT, 7, &conn, sizeof(conn), any_fd());
	PW_CHECK_EQ(serve_probe(&c), 0);
	RT_CHECK_ERR(peer, 7, EACCES);
	PW_CHECK(!rt_fd_open(probe.fds[0]), "fd %d still open after ERR", probe.fds[0]);

	/* Answered later: no reply now, the client stays. */
	probe_reset(PW_REQUEST_LATER);
	send_req(peer, PW_MSG_CONNECT, 8, &conn, sizeof(conn), any_fd());
	PW_CHECK_EQ(serve_probe(&c), 0);
	RT_CHECK_NO_REPLY(peer);
	PW_CHECK(!rt_fd_open(probe.fds[0]), "fd %d still open", probe.fds[0]);

	/* Without reply_err a negative return is a failed answer: drop. */
	probe_reset(-EPIPE);
	send_req(peer, PW_MSG_HELLO, 9, &hello, sizeof(hello), -1);
	PW_CHECK_EQ(serve_probe(&c), -EPIPE);
	RT_CHECK_NO_REPLY(peer);
	close(peer);
	close(c.fd);
}

static void test_fd_rule(void)
{
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	struct pw_wire_connect conn = { 0 };
	struct pw_wire_listen lis = { 0 };
	int base = pw_test_count_fds();

	/* A handler that takes its fd keeps it: the dispatcher leaves it. */
	probe_reset(0);
	probe.take = true;
	send_req(peer, PW_MSG_CONNECT, 1, &conn, sizeof(conn), any_fd());
	PW_CHECK_EQ(serve_probe(&c), 0);
	PW_CHECK(probe.kept >= 0 && rt_fd_open(probe.kept), "the taken fd %d was closed",
		 probe.kept);
	PW_CHECK_EQ(pw_test_count_fds(), base + 1);
	close(probe.kept);

	/* One that closes it early (as LISTEN does) is not closed twice: the
	 * fd number, reused at once, survives the dispatcher. */
	probe_reset(0);
	probe.close_early = true;
	send_req(peer, PW_MSG_LISTEN, 2, &lis, sizeof(lis), any_fd());
	PW_CHECK_EQ(serve_probe(&c), 0);
	PW_CHECK(probe.kept >= 0 && rt_fd_open(probe.kept), "fd %d closed twice", probe.kept);
	close(probe.kept);
	PW_CHECK_EQ(pw_test_count_fds(), base);
	close(peer);
	close(c.fd);
}

static void test_malformed(void)
{
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	struct pw_wire_hello hello = { 0 };
	uint64_t bad = pw_router_stats.bad_msgs;
	int base = pw_test_count_fds();

	/* A short packet: the client is dropped unanswered, and counted. */
	probe_reset(0);
	PW_CHECK_EQ(send(peer, "abc", 3, 0), 3);
	PW_CHECK(serve_probe(&c) < 0, "a short packet was served");
	PW_CHECK_EQ(probe.calls, 0);
	PW_CHECK_EQ(pw_router_stats.bad_msgs, bad + 1);
	RT_CHECK_NO_REPLY(peer);

	/* A HELLO of the version before (a library loaded before an upgrade,
	 * whose channels this router's would not match): dropped unanswered,
	 * counted, so that library leaves everything to the kernel. */
	struct {
		struct pw_wire_hdr h;
		struct pw_wire_hello b;
	} old = { .h = { .magic = PW_WIRE_MAGIC,
			 .version = PW_WIRE_VERSION - 1,
			 .type = PW_MSG_HELLO,
			 .len = sizeof(old),
			 .seq = 2 } };
	PW_CHECK_EQ(send(peer, &old, sizeof(old), 0), (ssize_t)sizeof(old));
	PW_CHECK(serve_probe(&c) < 0, "a HELLO of another version was served");
	PW_CHECK_EQ(probe.calls, 0);
	PW_CHECK_EQ(pw_router_stats.bad_msgs, bad + 2);
	RT_CHECK_NO_REPLY(peer);
	bad++;

	/* An fd with a type that carries none: refused, the fd closed. */
	int fd = any_fd();
	PW_CHECK_EQ(pw_msg_send(peer, PW_MSG_HELLO, 3, &hello, sizeof(hello), NULL, 0, &fd, 1), 0);
	close(fd);
	PW_CHECK(serve_probe(&c) < 0, "a HELLO with an fd was served");
	PW_CHECK_EQ(probe.calls, 0);
	PW_CHECK_EQ(pw_router_stats.bad_msgs, bad + 2);
	PW_CHECK_EQ(pw_test_count_fds(), base);

	/* A type the table has no entry for (a reply sent as a request), with
	 * fds: dropped, counted, the fds closed. */
	struct pw_wire_conn body = { 0 };
	int two[2] = { any_fd(), any_fd() };
	PW_CHECK_EQ(pw_msg_send(peer, PW_MSG_CONN, 4, &body, sizeof(body), NULL, 0, two, 2), 0);
	close(two[0]);
	close(two[1]);
	PW_CHECK_EQ(serve_probe(&c), -EPROTO);
	PW_CHECK_EQ(probe.calls, 0);
	PW_CHECK_EQ(pw_router_stats.bad_msgs, bad + 3);
	PW_CHECK_EQ(pw_test_count_fds(), base);
	RT_CHECK_NO_REPLY(peer);

	/* The peer went away. */
	close(peer);
	PW_CHECK_EQ(serve_probe(&c), -EPIPE);
	close(c.fd);
}

static pw_request_fn real_fn(uint16_t type, bool *ret_reply_err)
{
	for (size_t i = 0; i < pw_nrequests; i++)
		if (pw_requests[i].type == type) {
			*ret_reply_err = pw_requests[i].reply_err;
			return pw_requests[i].fn;
		}
	return NULL;
}

/* The table podwired serves: every request type, no reply type, once. */
static void test_table(void)
{
	static const struct {
		pw_request_fn fn;
		uint16_t type;
		bool reply_err;
	} want[] = {
		{ pw_request_hello, PW_MSG_HELLO, false },
		{ pw_request_listen, PW_MSG_LISTEN, false },
		{ pw_request_connect, PW_MSG_CONNECT, true },
		{ pw_request_status, PW_MSG_STATUS, false },
		{ pw_request_reattach, PW_MSG_REATTACH, true },
		{ pw_request_pods, PW_MSG_POD_ADD, false },
		{ pw_request_pods, PW_MSG_POD_DEL, false },
		{ pw_request_pods, PW_MSG_PODS, false },
		{ pw_request_relay, PW_MSG_RELAY, true },
		{ pw_request_take, PW_MSG_TAKE, true },
		{ pw_request_requeue, PW_MSG_REQUEUE, true },
		{ pw_request_pool, PW_MSG_POOL, true },
		{ pw_request_verbs_dev, PW_MSG_VERBS_DEV, true },
		{ pw_request_verbs_open, PW_MSG_VERBS_OPEN, true },
		{ pw_request_verbs_qp, PW_MSG_VERBS_QP, true },
		{ pw_request_verbs_qp, PW_MSG_VERBS_QP_DEL, true },
		{ pw_request_verbs_connect, PW_MSG_VERBS_CONNECT, true },
	};
	bool reply_err = false;

	PW_CHECK_EQ(pw_nrequests, PW_ARRAY_SIZE(want));
	for (size_t i = 0; i < PW_ARRAY_SIZE(want); i++) {
		pw_request_fn fn = real_fn(want[i].type, &reply_err);
		PW_CHECK(fn == want[i].fn, "type %u: wrong handler", want[i].type);
		PW_CHECK(reply_err == want[i].reply_err, "type %u: reply_err %d", want[i].type,
			 reply_err);
		for (size_t k = i + 1; k < pw_nrequests; k++)
			PW_CHECK(pw_requests[k].type != pw_requests[i].type, "type %u twice",
				 pw_requests[i].type);
	}
	for (unsigned t = PW_MSG_OK; t <= PW_MSG_VERBS_PAIRED_TCP; t++)
		PW_CHECK(!real_fn((uint16_t)t, &reply_err), "reply type %u has a handler", t);
}

static int serve(struct pw_client *c)
{
	return pw_client_serve(c, pw_requests, pw_nrequests);
}

/* Each request type reaches its real handler, seen by what it answers to a
 * request that needs no privilege. */
static void test_real_handlers(void)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	int base = pw_test_count_fds();
	struct pw_msg m;

	PW_CHECK_EQ(pw_router_prefixes_parse("198.18.0.0/15"), 0);
	struct pw_wire_hello hello = { 0 };
	send_req(peer, PW_MSG_HELLO, 1, &hello, sizeof(hello), -1);
	PW_CHECK_EQ(serve(&c), 0);
	PW_CHECK_EQ(rt_reply(peer, &m, buf), 0);
	PW_CHECK_EQ(m.type, PW_MSG_HELLO_OK);
	PW_CHECK_EQ(m.seq, 1);
	PW_CHECK_EQ(m.nentries, 1);

	send_req(peer, PW_MSG_STATUS, 2, NULL, 0, -1);
	PW_CHECK_EQ(serve(&c), 0);
	PW_CHECK_EQ(rt_reply(peer, &m, buf), 0);
	PW_CHECK_EQ(m.type, PW_MSG_STATUS_OK);
	PW_CHECK_EQ(m.u.status.total, 0);

	send_req(peer, PW_MSG_PODS, 3, NULL, 0, -1);
	PW_CHECK_EQ(serve(&c), 0);
	PW_CHECK_EQ(rt_reply(peer, &m, buf), 0);
	PW_CHECK_EQ(m.type, PW_MSG_PODS_OK);
	PW_CHECK_EQ(m.u.pods.total, 0);

	/* A UDP socket is no TCP socket to listen or connect; 3 and 5 (UNLISTEN
	 * and CLAIM of version 1) are no requests any more. */
	struct pw_wire_listen lis = { 0 };
	struct pw_wire_connect conn = { 0 };
	uint64_t connects = pw_router_stats.connects;
	send_req(peer, PW_MSG_LISTEN, 4, &lis, sizeof(lis), any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 4, EPROTOTYPE);
	send_req(peer, PW_MSG_CONNECT, 6, &conn, sizeof(conn), any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 6, EPROTOTYPE);
	PW_CHECK_EQ(pw_router_stats.connects, connects + 1);
	bool rerr;
	PW_CHECK(!real_fn(3, &rerr) && !real_fn(5, &rerr), "retired types served");

	/* No connection has these sockets. */
	struct pw_wire_reattach re = { .id = 0 };
	struct pw_wire_relay rel = { .id = 5 };
	send_req(peer, PW_MSG_REATTACH, 8, &re, sizeof(re), any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 8, ENOENT);
	send_req(peer, PW_MSG_RELAY, 9, &rel, sizeof(rel), any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 9, ENOENT);
	send_req(peer, PW_MSG_TAKE, 10, NULL, 0, any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 10, ENOENT);

	/* POOL: a TCP socket proves the pod; at most PW_POOL_MAX a request,
	 * 16384 a second a pod; without federation, nowhere to dial. */
	struct pw_wire_pool pool = { .peer = { .family = AF_INET }, .count = 16 };
	uint64_t limited = pw_router_stats.limit_pool;
	send_req(peer, PW_MSG_POOL, 13, &pool, sizeof(pool), any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 13, EPROTOTYPE);
	pool.count = PW_POOL_MAX + 1;
	send_req(peer, PW_MSG_POOL, 14, &pool, sizeof(pool), tcp_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 14, EINVAL);
	pool.count = 16;
	for (uint32_t i = 0; i < 16384 / 16; i++) {
		send_req(peer, PW_MSG_POOL, 100 + i, &pool, sizeof(pool), tcp_fd());
		PW_CHECK_EQ(serve(&c), 0);
		RT_CHECK_ERR(peer, 100 + i, ENETUNREACH);
	}
	send_req(peer, PW_MSG_POOL, 15, &pool, sizeof(pool), tcp_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 15, EAGAIN);
	PW_CHECK_EQ(pw_router_stats.limit_pool, limited + 1);

	/* The pod table takes changes from uid 0 in the router's netns only. */
	struct pw_wire_pod_key key = { .id = "c1", .ifname = "eth0" };
	struct pw_wire_pod pod = { .key = key };
	send_req(peer, PW_MSG_POD_DEL, 11, &key, sizeof(key), -1);
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 11, EPERM);
	send_req(peer, PW_MSG_POD_ADD, 12, &pod, sizeof(pod), any_fd());
	PW_CHECK_EQ(serve(&c), 0);
	RT_CHECK_ERR(peer, 12, EPERM);

	/* Every fd that came with those requests is closed. */
	PW_CHECK_EQ(pw_test_count_fds(), base);
	close(peer);
	close(c.fd);
}

int main(void)
{
	test_routing();
	test_err_rule();
	test_fd_rule();
	test_malformed();
	test_table();
	test_real_handlers();
	return 0;
}
