// SPDX-License-Identifier: MIT
/*
 * The connection table (src/router/conns.c) on real channels, in-process and
 * without root: lookups by id and by channel socket, the CONN bodies, state
 * and byte counts from the channel, status pages, reaping, pending until
 * side 1 attaches, and a listener that closes with connections queued.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <podwire/chan.h>

#include "router_test.h"

/* A local connection with a channel, as CONNECT leaves it (but in the
 * table at once); the channel's socketpair ends in @ret_sv. */
static struct pw_conn *conn_make_ring(int ret_sv[2], uint32_t ring)
{
	struct pw_conn *cn = pw_conn_new();
	struct stat st0, st1;

	PW_CHECK(cn, "pw_conn_new");
	PW_CHECK_EQ(pw_chan_create(ring, PW_CHAN_ARMED, &cn->memfd, ret_sv), 0);
	PW_CHECK(fstat(ret_sv[0], &st0) == 0 && fstat(ret_sv[1], &st1) == 0, "fstat");
	cn->sock_ino[0] = st0.st_ino;
	cn->sock_ino[1] = st1.st_ino;
	cn->sock_dev = st0.st_dev;
	struct sockaddr_in a = rt_sin("198.18.0.1", 40000), b = rt_sin("198.18.0.2", 80);
	pw_addr_to_wire(&a, AF_INET, &cn->addr[0]);
	pw_addr_to_wire(&b, AF_INET, &cn->addr[1]);
	cn->fam[0] = cn->fam[1] = AF_INET;
	pw_conn_insert(cn);
	return cn;
}

static struct pw_conn *conn_make(int ret_sv[2])
{
	return conn_make_ring(ret_sv, 4096);
}

static void test_ids(void)
{
	struct pw_conn *a = pw_conn_new(), *b = pw_conn_new();

	PW_CHECK(a && b, "pw_conn_new");
	PW_CHECK(b->id > a->id, "ids grow: %llu, %llu", (unsigned long long)a->id,
		 (unsigned long long)b->id);
	PW_CHECK_EQ(a->state, PW_CONN_PENDING);
	PW_CHECK(a->memfd == -1, "no channel yet");
	pw_conn_insert(a);
	pw_conn_insert(b);
	PW_CHECK(pw_conn_by_id(a->id) == a && pw_conn_by_id(b->id) == b, "by id");
	PW_CHECK(!pw_conn_by_id(b->id + 100), "unknown id");
	uint64_t ida = a->id, idb = b->id;
	pw_conn_remove(a);
	PW_CHECK(!pw_conn_by_id(ida) && pw_conn_by_id(idb) == b, "a removed");
	pw_conn_remove(b);
	PW_CHECK(!pw_conn_by_id(idb), "b removed");
}

static void test_lookups(void)
{
	int sv[2], other[2];
	struct pw_conn *cn = conn_make(sv);
	struct pw_conn *cn2 = conn_make(other);
	unsigned side = 9;

	/* The channel's sockets prove which side a process holds. */
	PW_CHECK(pw_conn_by_sock(cn->id, sv[0], &side) == cn && side == 0, "side 0");
	PW_CHECK(pw_conn_by_sock(0, sv[1], &side) == cn && side == 1, "side 1, any id");
	PW_CHECK(pw_conn_by_sock(cn2->id, other[1], &side) == cn2 && side == 1, "another");
	PW_CHECK(!pw_conn_by_sock(cn2->id, sv[0], &side), "another connection's socket");
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	PW_CHECK(!pw_conn_by_sock(0, s, &side), "a socket of no connection");
	close(s);

	/* Each side sees its own address first, in its socket's family. */
	cn->fam[0] = AF_INET6;
	struct pw_wire_conn b0 = pw_conn_body(cn, 0), b1 = pw_conn_body(cn, 1);
	struct sockaddr_in a;
	int fam;
	PW_CHECK_EQ(b0.id, cn->id);
	PW_CHECK_EQ(b1.side, 1);
	PW_CHECK_EQ(pw_addr_from_wire(&b0.local, &a, &fam), 0);
	PW_CHECK(fam == AF_INET6 && ntohs(a.sin_port) == 40000, "side 0 local, mapped");
	PW_CHECK_EQ(pw_addr_from_wire(&b0.peer, &a, &fam), 0);
	PW_CHECK(fam == AF_INET6 && ntohs(a.sin_port) == 80, "side 0 peer, mapped");
	PW_CHECK_EQ(pw_addr_from_wire(&b1.local, &a, &fam), 0);
	PW_CHECK(fam == AF_INET && ntohs(a.sin_port) == 80, "side 1 local");
	PW_CHECK_EQ(pw_addr_from_wire(&b1.peer, &a, &fam), 0);
	PW_CHECK(fam == AF_INET && ntohs(a.sin_port) == 40000, "side 1 peer");

	pw_conn_remove(cn2);
	close(other[0]);
	close(other[1]);
	pw_conn_remove(cn);
	close(sv[0]);
	close(sv[1]);
}

/* State and bytes come from the channel; a closed connection is reaped. */
static void test_state_and_reap(void)
{
	int sv[2];
	struct pw_conn *cn = conn_make(sv);
	struct pw_chan *end[2];
	struct pw_wire_status_entry ents[4];
	struct pw_wire_status st;
	unsigned open, pending;
	uint64_t bytes, bytes0;

	pw_conns_totals(&open, &pending, &bytes0);
	PW_CHECK_EQ(pw_conn_state(cn, NULL, NULL), PW_CONN_PENDING);
	PW_CHECK_EQ(pending, 1);
	for (unsigned i = 0; i < 2; i++)
		PW_CHECK_EQ(pw_chan_open(cn->memfd, sv[i], i, NULL, &end[i]), 0);
	cn->state = PW_CONN_OPEN;
	cn->pid[0] = cn->pid[1] = getpid();
	PW_CHECK_EQ(pw_chan_write(end[0], "hello", 5, 0), 5);
	uint64_t b[2];
	PW_CHECK_EQ(pw_conn_state(cn, b, NULL), PW_CONN_OPEN);
	PW_CHECK_EQ(b[0], 5);
	PW_CHECK_EQ(b[1], 0);
	pw_conns_totals(&open, &pending, &bytes);
	PW_CHECK(open == 1 && pending == 0 && bytes == bytes0 + 5, "open %u pending %u", open,
		 pending);

	pw_conns_status(ents, 4, &st);
	PW_CHECK(st.count == 1 && st.total == 1, "status %u of %u", st.count, st.total);
	PW_CHECK(ents[0].id == cn->id && ents[0].state == PW_CONN_OPEN && ents[0].bytes[0] == 5,
		 "status entry");
	PW_CHECK_EQ(ents[0].pid[1], getpid());
	/* A 4 KiB ring uses all of itself from the start. */
	PW_CHECK(ents[0].window_log2[0] == 12 && ents[0].window_log2[1] == 12, "windows %u %u",
		 ents[0].window_log2[0], ents[0].window_log2[1]);

	PW_CHECK_EQ(pw_chan_shutdown(end[0], SHUT_WR), 0);
	PW_CHECK_EQ(pw_conn_state(cn, NULL, NULL), PW_CONN_HALF);
	pw_conns_reap();
	PW_CHECK(pw_conn_by_id(cn->id) == cn, "a half-closed connection stays");

	uint64_t id = cn->id;
	pw_chan_close(end[0]);
	pw_chan_close(end[1]);
	PW_CHECK_EQ(pw_conn_state(cn, NULL, NULL), PW_CONN_CLOSED);
	pw_conns_reap();
	PW_CHECK(!pw_conn_by_id(id), "a closed connection is reaped");
	/* What it carried still counts. */
	pw_conns_totals(&open, &pending, &bytes);
	PW_CHECK(open == 0 && bytes == bytes0 + 5, "after reaping: open %u", open);
}

/* A channel both ends parked (kept for the next connection) is neither open
 * nor reaped while their sockets live; once they are gone it is reaped. */
static void test_parked(void)
{
	int sv[2];
	struct pw_conn *cn = conn_make(sv);
	struct pw_chan *end[2];
	struct pw_chan_parked *p[2];
	unsigned open, pending;
	uint64_t bytes;

	for (unsigned i = 0; i < 2; i++)
		PW_CHECK_EQ(pw_chan_open(cn->memfd, sv[i], i, NULL, &end[i]), 0);
	cn->state = PW_CONN_OPEN;
	cn->pid[0] = cn->pid[1] = getpid();
	PW_CHECK_EQ(pw_chan_write(end[0], "hi", 2, 0), 2);
	char b[2];
	PW_CHECK_EQ(pw_chan_read(end[1], b, 2, 0), 2);
	for (unsigned i = 2; i-- > 0;) {
		int keep = fcntl(sv[i], F_DUPFD_CLOEXEC, 0);
		PW_CHECK(keep >= 0, "dup");
		PW_CHECK_EQ(pw_chan_park(end[i], keep, &p[i]), 0);
	}
	PW_CHECK_EQ(pw_conn_state(cn, NULL, NULL), PW_CONN_PARKED);
	pw_conns_totals(&open, &pending, &bytes);
	PW_CHECK(open == 0 && pending == 0, "parked counts as open: %u", open);
	uint64_t id = cn->id;
	pw_conns_reap();
	PW_CHECK(pw_conn_by_id(id) == cn, "a parked connection is reaped under its holders");
	pw_chan_parked_drop(p[0]);
	pw_chan_parked_drop(p[1]);
	pw_conns_reap();
	/* Gone sockets are seen through the kernel's socket diagnostics. */
	uint32_t *inodes = NULL;
	size_t n = 0;
	if (pw_diag_unix_inodes(&inodes, &n) == 0)
		PW_CHECK(!pw_conn_by_id(id), "a dropped parked connection is not reaped");
	else
		pw_conn_remove(cn);
	free(inodes);
}

/* A status page holds what fits; total counts them all. */
static void test_status_page(void)
{
	struct pw_wire_status_entry ents[2];
	struct pw_wire_status st;
	struct pw_conn *v[3];

	for (int i = 0; i < 3; i++) {
		v[i] = pw_conn_new();
		PW_CHECK(v[i], "pw_conn_new");
		pw_conn_insert(v[i]);
	}
	pw_conns_status(ents, 2, &st);
	PW_CHECK(st.count == 2 && st.total == 3, "status %u of %u", st.count, st.total);
	PW_CHECK(ents[0].state == PW_CONN_PENDING && ents[0].bytes[0] == 0, "pending entry");
	pw_conns_teardown();
	pw_conns_status(ents, 2, &st);
	PW_CHECK_EQ(st.total, 0);
}

/* A connection is pending until a server attaches side 1; a listener that
 * closes resets those still in its queue, and only those. */
static void test_pending_and_listener_gone(void)
{
	int sv[2], sv2[2];
	struct pw_conn *cn = conn_make(sv), *cn2 = conn_make(sv2);
	struct pw_chan *client, *server;
	char b[4];

	cn->listener = cn2->listener = 7;
	PW_CHECK_EQ(pw_chan_open(cn->memfd, sv[0], 0, NULL, &client), 0);
	PW_CHECK_EQ(pw_conn_state(cn, NULL, NULL), PW_CONN_PENDING);
	PW_CHECK_EQ(pw_chan_open(cn2->memfd, sv2[1], 1, NULL, &server), 0);
	PW_CHECK_EQ(pw_conn_state(cn2, NULL, NULL), PW_CONN_OPEN); /* accepted */

	pw_conns_listener_gone(8); /* another listener */
	PW_CHECK_EQ(pw_chan_read(client, b, sizeof(b), PW_CHAN_DONTWAIT), -EAGAIN);
	pw_conns_listener_gone(7);
	PW_CHECK_EQ(pw_chan_read(client, b, sizeof(b), PW_CHAN_DONTWAIT), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_write(server, "x", 1, PW_CHAN_DONTWAIT), 1); /* untouched */
	PW_CHECK(cn->state != PW_CONN_PENDING, "reset: no longer pending");
	pw_chan_close(client);
	pw_chan_close(server);
	pw_conn_remove(cn);
	pw_conn_remove(cn2);
	close(sv[0]);
	close(sv[1]);
	close(sv2[0]);
	close(sv2[1]);
}

/* Status shows each ring's window: 64 KiB of a 1 MiB ring, then all of it
 * for the side that wrote bulk data. */
static void test_status_window(void)
{
	static uint8_t bulk[40u << 10];
	struct pw_wire_status_entry ents[4];
	struct pw_wire_status st;
	struct pw_chan *end[2];
	int sv[2];
	struct pw_conn *cn = conn_make_ring(sv, 1u << 20);

	for (unsigned i = 0; i < 2; i++)
		PW_CHECK_EQ(pw_chan_open(cn->memfd, sv[i], i, NULL, &end[i]), 0);
	cn->state = PW_CONN_OPEN;
	uint8_t w[2];
	PW_CHECK_EQ(pw_conn_state(cn, NULL, w), PW_CONN_OPEN);
	PW_CHECK(w[0] == 16 && w[1] == 16, "windows %u %u", w[0], w[1]);
	PW_CHECK_EQ(pw_chan_write(end[1], bulk, sizeof(bulk), 0), (ssize_t)sizeof(bulk));
	pw_conns_status(ents, 4, &st);
	PW_CHECK(st.count == 1 && ents[0].window_log2[0] == 16 && ents[0].window_log2[1] == 20,
		 "windows %u %u", ents[0].window_log2[0], ents[0].window_log2[1]);
	uint64_t id = cn->id;
	pw_chan_close(end[0]);
	pw_chan_close(end[1]);
	pw_conns_reap();
	PW_CHECK(!pw_conn_by_id(id), "reaped");
}

int main(void)
{
	int base = pw_test_count_fds();

	test_ids();
	test_lookups();
	test_state_and_reap();
	test_parked();
	test_status_page();
	test_pending_and_listener_gone();
	test_status_window();
	PW_CHECK_EQ(pw_test_count_fds(), base);
	return 0;
}
