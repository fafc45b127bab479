// SPDX-License-Identifier: MIT
/*
 * A hostile pod against a running podwire-switch (test-switch-hostile.sh
 * starts it with port h at SOCKET, hairpinned to itself): over the real
 * socket, every way to get the memif protocol wrong, each answered with a
 * DISCONNECT and the socket closed; then a good client that gets its frame
 * back through the switch, and breaks its rings after: descriptors outside
 * its region are dropped (and counted by the switch), head moved past a
 * ring ends the connection. A second client while one is connected is
 * turned away. Usage: test-switch-hostile SOCKET
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "memif_client.h"
#include "proto.h"

static const char *sock_path;

static int dial(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock_path);
	PW_CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect %s: %s",
		 sock_path, strerror(errno));
	return fd;
}

/* The next message, within 5 s: its type, or 0 when the switch closed. */
static uint16_t next(int fd, struct pw_memif_msg *m)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	PW_CHECK(poll(&p, 1, 5000) == 1, "no answer from the switch");
	ssize_t n = recv(fd, m, sizeof(*m), 0);
	if (n == 0)
		return 0;
	PW_CHECK(n == (ssize_t)sizeof(*m), "message of %zd bytes: %s", n, strerror(errno));
	return m->type;
}

/* Send @len bytes of @buf with @nfds fds (taken). */
static void say(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	int n = pw_fds_send(fd, &iov, 1, fds, nfds);

	PW_CHECK(n == (int)len, "send: %s", strerror(-n));
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
}

static void say_msg(int fd, struct pw_memif_msg m, int mfd)
{
	say(fd, &m, sizeof(m), &mfd, mfd >= 0);
}

/* Expect a DISCONNECT, then the socket closed. */
static void refused(int fd, const char *what)
{
	struct pw_memif_msg m;
	uint16_t t = next(fd, &m);

	while (t == PW_MEMIF_ACK) /* (answers to what came before) */
		t = next(fd, &m);
	PW_CHECK(t == PW_MEMIF_DISCONNECT, "%s: got message %u, not DISCONNECT", what, t);
	PW_CHECK(next(fd, &m) == 0, "%s: the socket stays open", what);
	close(fd);
}

/* A connection that got HELLO. The switch may not have seen the last one
 * close yet, and turn this one away as a second client: retry, as DPDK
 * does. */
static int hello(void)
{
	struct pw_memif_msg m;

	for (int i = 0; i < 100; i++) {
		int fd = dial();
		uint16_t t = next(fd, &m);
		if (t == PW_MEMIF_HELLO)
			return fd;
		PW_CHECK_EQ(t, PW_MEMIF_DISCONNECT);
		close(fd);
		usleep(10000);
	}
	PW_FAIL("the port stays busy");
}

static void test_messages(void)
{
	struct pw_memif_msg m;
	int fd, fds[3];

	/* Not a message: too short; too long. */
	fd = hello();
	say(fd, "garbage", 7, NULL, 0);
	refused(fd, "7 bytes");
	fd = hello();
	static char big[4096];
	say(fd, big, sizeof(big), NULL, 0);
	refused(fd, "4096 bytes");
	/* An unknown type; a message only the server sends; out of turn. */
	fd = hello();
	say_msg(fd, pw_tc_msg_type(99), -1);
	refused(fd, "type 99");
	fd = hello();
	say_msg(fd, pw_tc_msg_type(PW_MEMIF_HELLO), -1);
	refused(fd, "HELLO");
	fd = hello();
	say_msg(fd, pw_tc_msg_region(0, 4096), pw_tc_region_fd(4096, true));
	refused(fd, "region before INIT");
	/* INIT: another interface, another version; with fds it does not take. */
	fd = hello();
	say_msg(fd, pw_tc_msg_init(5, NULL, PW_MEMIF_VERSION), -1);
	refused(fd, "interface 5");
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, 0x0100), -1);
	refused(fd, "version 1.0");
	fd = hello();
	m = pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION);
	for (int i = 0; i < 3; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	say(fd, &m, sizeof(m), fds, 3);
	refused(fd, "INIT with 3 fds");
	/* Regions: unsealed; longer than the file; not a file. */
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	say_msg(fd, pw_tc_msg_region(0, 4096), pw_tc_region_fd(4096, false));
	refused(fd, "unsealed region");
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	say_msg(fd, pw_tc_msg_region(0, 1 << 20), pw_tc_region_fd(4096, true));
	refused(fd, "region longer than its file");
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	say_msg(fd, pw_tc_msg_region(0, 8), eventfd(0, EFD_CLOEXEC));
	refused(fd, "region not a file");
	/* Rings: past the region; a pipe for the interrupt; CONNECT one way. */
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	say_msg(fd, pw_tc_msg_region(0, 4096), pw_tc_region_fd(4096, true));
	say_msg(fd, pw_tc_msg_ring(true, 0, 0, 0, 10), eventfd(0, EFD_CLOEXEC));
	refused(fd, "ring past its region");
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	say_msg(fd, pw_tc_msg_region(0, 1 << 20), pw_tc_region_fd(1 << 20, true));
	int pfd[2];
	PW_CHECK(pipe2(pfd, O_CLOEXEC) == 0, "pipe");
	close(pfd[1]);
	say_msg(fd, pw_tc_msg_ring(true, 0, 0, 0, 4), pfd[0]);
	refused(fd, "a pipe for an interrupt");
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	int rfd = pw_tc_region_fd(1 << 20, true);
	uint32_t k = PW_MEMIF_COOKIE;
	PW_CHECK(pwrite(rfd, &k, 4, 0) == 4, "cookie");
	say_msg(fd, pw_tc_msg_region(0, 1 << 20), rfd);
	say_msg(fd, pw_tc_msg_ring(true, 0, 0, 0, 4), eventfd(0, EFD_CLOEXEC));
	say_msg(fd, pw_tc_msg_type(PW_MEMIF_CONNECT), -1);
	refused(fd, "CONNECT with no ring to the client");
	/* Hang up mid-handshake. */
	fd = hello();
	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	close(fd);
}

/* A whole handshake over @fd for client @t (HELLO already read). */
static void handshake(int fd, struct pw_tc *t)
{
	struct pw_memif_msg m;
	int rfd = pw_tc_layout(t, 6);

	say_msg(fd, pw_tc_msg_init(0, NULL, PW_MEMIF_VERSION), -1);
	PW_CHECK_EQ(next(fd, &m), PW_MEMIF_ACK);
	say_msg(fd, pw_tc_msg_region(0, t->size), rfd);
	PW_CHECK_EQ(next(fd, &m), PW_MEMIF_ACK);
	say_msg(fd, pw_tc_msg_ring(true, 0, 0, 0, 6), dup(t->s2m_evfd));
	PW_CHECK_EQ(next(fd, &m), PW_MEMIF_ACK);
	say_msg(fd, pw_tc_msg_ring(false, 0, 0, (uint32_t)pw_tc_ring_bytes(6), 6),
		dup(t->m2s_evfd));
	PW_CHECK_EQ(next(fd, &m), PW_MEMIF_ACK);
	say_msg(fd, pw_tc_msg_type(PW_MEMIF_CONNECT), -1);
	PW_CHECK_EQ(next(fd, &m), PW_MEMIF_CONNECTED);
}

/* Wait for the switch to fill M2S slot @slot: its length, or 0. */
static uint32_t wait_rx(struct pw_tc *t, uint16_t tail_want)
{
	for (int i = 0; i < 5000; i++) {
		if (atomic_load(&t->m2s->tail) == tail_want)
			return atomic_load(&t->m2s->desc[(tail_want - 1) & 63].length);
		usleep(1000);
	}
	return 0;
}

static void test_rings(void)
{
	struct pw_tc t;
	int fd = hello(), fd2;
	uint8_t frame[64];

	handshake(fd, &t);
	/* A second client while this one is connected: turned away. */
	fd2 = dial();
	refused(fd2, "a second client");

	/* A frame out, back through the hairpin (the client wants an
	 * interrupt for it: the switch sends one). */
	pw_tc_refill(&t);
	atomic_store(&t.m2s->flags, 0);
	memset(frame, 0xff, 6);
	memcpy(frame + 6, "\x02\x00\x00\x00\x00\x01", 6);
	memset(frame + 12, 0x77, sizeof(frame) - 12);
	uint32_t off = pw_tc_buf_off(&t, true, 0);
	memcpy(t.map + off, frame, sizeof(frame));
	atomic_store(&t.s2m->desc[0].offset, off);
	atomic_store(&t.s2m->desc[0].length, sizeof(frame));
	atomic_store(&t.s2m->head, 1);
	uint64_t one = 1;
	PW_CHECK(write(t.s2m_evfd, &one, 8) == 8, "interrupt");
	PW_CHECK_EQ(wait_rx(&t, 1), sizeof(frame));
	PW_CHECK(!memcmp(t.map + atomic_load(&t.m2s->desc[0].offset), frame, sizeof(frame)),
		 "the frame came back changed");
	struct pollfd p = { .fd = t.m2s_evfd, .events = POLLIN };
	PW_CHECK(poll(&p, 1, 5000) == 1, "no interrupt from the switch");

	/* Ten descriptors outside the region, then a good frame: only it
	 * comes back. */
	for (uint16_t i = 1; i <= 10; i++) {
		atomic_store(&t.s2m->desc[i].offset, (uint32_t)t.size - 8);
		atomic_store(&t.s2m->desc[i].length, 64);
	}
	atomic_store(&t.s2m->desc[11].offset, off);
	atomic_store(&t.s2m->desc[11].length, sizeof(frame));
	atomic_store(&t.s2m->head, 12);
	PW_CHECK(write(t.s2m_evfd, &one, 8) == 8, "interrupt");
	PW_CHECK_EQ(wait_rx(&t, 2), sizeof(frame));
	PW_CHECK_EQ(atomic_load(&t.s2m->tail), 12);

	/* head a ring and more ahead: the switch hangs up. */
	atomic_store(&t.s2m->head, 12 + 64 + 1);
	PW_CHECK(write(t.s2m_evfd, &one, 8) == 8, "interrupt");
	refused(fd, "head past the ring");
	pw_tc_close(&t);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-switch-hostile SOCKET\n");
		return 2;
	}
	sock_path = argv[1];
	test_messages();
	test_rings();
	printf("test-switch-hostile: ok\n");
	return 0;
}
