// SPDX-License-Identifier: MIT
/*
 * The server's side of a memif connection (src/memif/conn.c), driven with
 * the messages a DPDK client sends: a whole handshake (INIT, a region, one
 * ring each way, CONNECT: ACKs, then CONNECTED), then every way a hostile
 * pod can get it wrong, each answered with DISCONNECT and no fd or mapping
 * left behind: another interface, secret or version; a region longer than
 * its file, out of order, not a file or not sealed against shrinking; a ring past its region's end,
 * in no region, misaligned or with an fd that is not an eventfd; CONNECT with no ring one way or a
 * ring without its cookie; a message out of turn.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memif_client.h"

#define REGION (1u << 20)

static int region_fd(uint64_t len)
{
	return pw_tc_region_fd(len, true);
}

/* Two rings at offsets 0 and 64 KiB of a region fd, with their cookies. */
static void put_cookies(int fd)
{
	uint32_t k = PW_MEMIF_COOKIE;

	PW_CHECK(pwrite(fd, &k, 4, 0) == 4 && pwrite(fd, &k, 4, 65536) == 4, "cookies");
}

#define msg_init   pw_tc_msg_init
#define msg_region pw_tc_msg_region
#define msg_ring   pw_tc_msg_ring
#define msg_type   pw_tc_msg_type
#define APPLY	   PW_TC_APPLY

/* A connection through INIT and region 0 (1 MiB, cookies in place). */
static void begin(struct pw_memif_conn *c)
{
	int fd = region_fd(REGION);

	put_cookies(fd);
	pw_memif_conn_init(c, 7, "sesame");
	APPLY(c, msg_init(7, "sesame", PW_MEMIF_VERSION), -1, 0, PW_MEMIF_ACK);
	APPLY(c, msg_region(0, REGION), fd, 0, PW_MEMIF_ACK);
}

static void test_handshake(void)
{
	struct pw_memif_conn c;
	struct pw_memif_msg hello;
	int fds = pw_test_count_fds();

	pw_memif_conn_hello(&hello, "podwire-switch");
	PW_CHECK_EQ(hello.hello.max_region, PW_MEMIF_REGIONS - 1);
	begin(&c);
	PW_CHECK(!strcmp(c.peer, "DPDK 22.11"), "peer %s", c.peer);
	APPLY(&c, msg_ring(true, 0, 0, 0, 10), eventfd(0, EFD_CLOEXEC), 0, PW_MEMIF_ACK);
	APPLY(&c, msg_ring(false, 0, 0, 65536, 10), eventfd(0, EFD_CLOEXEC), 0, PW_MEMIF_ACK);
	APPLY(&c, msg_type(PW_MEMIF_CONNECT), -1, 0, PW_MEMIF_CONNECTED);
	PW_CHECK_EQ(c.state, PW_MEMIF_S_CONNECTED);
	PW_CHECK_EQ(c.nregions, 1);
	PW_CHECK(c.nrings[0] == 1 && c.nrings[1] == 1, "rings %u %u", c.nrings[0], c.nrings[1]);
	PW_CHECK_EQ(c.rings[1][0].ring->cookie, PW_MEMIF_COOKIE);
	/* Out of turn once connected; then the client's DISCONNECT. */
	APPLY(&c, msg_type(PW_MEMIF_CONNECT), -1, -EPROTO, PW_MEMIF_DISCONNECT);
	APPLY(&c, msg_type(PW_MEMIF_DISCONNECT), -1, 1, 0);
	pw_memif_conn_close(&c);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
}

static void test_refused(void)
{
	struct pw_memif_conn c;
	int fds = pw_test_count_fds();

	/* INIT: another interface, another secret, another version, no INIT. */
	pw_memif_conn_init(&c, 7, "sesame");
	APPLY(&c, msg_init(8, "sesame", PW_MEMIF_VERSION), -1, -EPERM, PW_MEMIF_DISCONNECT);
	PW_CHECK_EQ(c.state, PW_MEMIF_S_DEAD);
	pw_memif_conn_init(&c, 7, "sesame");
	APPLY(&c, msg_init(7, "sesamf", PW_MEMIF_VERSION), -1, -EPERM, PW_MEMIF_DISCONNECT);
	pw_memif_conn_init(&c, 7, NULL);
	APPLY(&c, msg_init(7, NULL, 0x0100), -1, -EPERM, PW_MEMIF_DISCONNECT);
	pw_memif_conn_init(&c, 7, NULL);
	APPLY(&c, msg_region(0, REGION), region_fd(REGION), -EPROTO, PW_MEMIF_DISCONNECT);

	/* Regions: longer than the file, out of order, not a file, too large. */
	pw_memif_conn_init(&c, 7, NULL);
	APPLY(&c, msg_init(7, NULL, PW_MEMIF_VERSION), -1, 0, PW_MEMIF_ACK);
	APPLY(&c, msg_region(0, REGION + 1), region_fd(REGION), -EINVAL, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);
	begin(&c);
	APPLY(&c, msg_region(2, REGION), region_fd(REGION), -EINVAL, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);
	begin(&c);
	APPLY(&c, msg_region(1, 8), eventfd(0, EFD_CLOEXEC), -EINVAL, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);
	begin(&c);
	APPLY(&c, msg_region(1, PW_MEMIF_REGION_MAX + 4096), region_fd(4096), -EINVAL,
	      PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);
	/* A file the client could shrink under our mapping (SIGBUS). */
	begin(&c);
	APPLY(&c, msg_region(1, 4096), pw_tc_region_fd(4096, false), -EINVAL, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);

	/* Rings: past the region's end (by one descriptor), in no region,
	 * misaligned, out of order, an fd that is not an eventfd. */
	const struct {
		struct pw_memif_msg m;
		bool evfd;
	} bad[] = {
		{ msg_ring(true, 0, 0, REGION - 128 - (16u << 10) + 64, 10), true },
		{ msg_ring(true, 0, 1, 0, 10), true },
		{ msg_ring(true, 0, 0, 8, 10), true },
		{ msg_ring(true, 1, 0, 0, 10), true },
		{ msg_ring(true, 0, 0, 0, 10), false },
		{ msg_ring(true, 0, 0, UINT32_MAX - 63, 1), true },
	};
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		begin(&c);
		int fd = bad[i].evfd ? eventfd(0, EFD_CLOEXEC) : region_fd(4096);
		APPLY(&c, bad[i].m, fd, -EINVAL, PW_MEMIF_DISCONNECT);
		pw_memif_conn_close(&c);
	}
	/* The last ring that fits is taken. */
	begin(&c);
	APPLY(&c, msg_ring(true, 0, 0, REGION - 128 - (16u << 10), 10), eventfd(0, EFD_CLOEXEC), 0,
	      PW_MEMIF_ACK);
	pw_memif_conn_close(&c);

	/* CONNECT with no ring one way; with a ring without its cookie. */
	begin(&c);
	APPLY(&c, msg_ring(true, 0, 0, 0, 10), eventfd(0, EFD_CLOEXEC), 0, PW_MEMIF_ACK);
	APPLY(&c, msg_type(PW_MEMIF_CONNECT), -1, -EINVAL, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);
	begin(&c);
	APPLY(&c, msg_ring(true, 0, 0, 0, 10), eventfd(0, EFD_CLOEXEC), 0, PW_MEMIF_ACK);
	APPLY(&c, msg_ring(false, 0, 0, 4096, 8), eventfd(0, EFD_CLOEXEC), 0, PW_MEMIF_ACK);
	APPLY(&c, msg_type(PW_MEMIF_CONNECT), -1, -EINVAL, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);

	/* Messages only the server sends. */
	begin(&c);
	APPLY(&c, msg_type(PW_MEMIF_CONNECTED), -1, -EPROTO, PW_MEMIF_DISCONNECT);
	pw_memif_conn_close(&c);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
}

int main(void)
{
	test_handshake();
	test_refused();
	printf("test-memif-conn: ok\n");
	return 0;
}
