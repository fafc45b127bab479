// SPDX-License-Identifier: MIT
/*
 * memif messages (src/memif/msg.c): what the server builds decodes to what
 * was put in, byte for byte where the protocol fixes the bytes; messages
 * from a peer of the wrong size, of no known type, with the wrong number of
 * fds or a field out of range are refused; names are cut, never overrun.
 */
#include <errno.h>
#include <string.h>

#include "memif.h"
#include "pw_test.h"

/* A message as raw bytes: its type, then its body. */
static void raw(uint8_t b[PW_MEMIF_MSG_SIZE], uint16_t type)
{
	memset(b, 0, PW_MEMIF_MSG_SIZE);
	memcpy(b, &type, 2);
}

static void test_built(void)
{
	struct pw_memif_msg m, d;
	char name[PW_MEMIF_NAME + 1];

	pw_memif_msg_hello(&m, "podwire-switch", 3, 7, 7, 14);
	PW_CHECK_EQ(pw_memif_msg_parse(&m, sizeof(m), 0, &d), 0);
	PW_CHECK_EQ(d.type, PW_MEMIF_HELLO);
	PW_CHECK_EQ(d.hello.min_version, 0x0200);
	PW_CHECK_EQ(d.hello.max_version, 0x0200);
	PW_CHECK_EQ(d.hello.max_region, 3);
	PW_CHECK_EQ(d.hello.max_m2s_ring, 7);
	PW_CHECK_EQ(d.hello.max_s2m_ring, 7);
	PW_CHECK_EQ(d.hello.max_log2_ring_size, 14);
	pw_memif_name(d.hello.name, PW_MEMIF_NAME, name);
	PW_CHECK(!strcmp(name, "podwire-switch"), "name %s", name);
	/* The protocol's bytes: type 2, the name at 2, the versions at 34. */
	const uint8_t *b = (const uint8_t *)&m;
	PW_CHECK(b[0] == 2 && b[1] == 0 && b[2] == 'p' && b[34] == 0x00 && b[35] == 0x02 &&
			 b[44] == 14,
		 "hello bytes: %02x %02x %02x %02x %02x %02x", b[0], b[1], b[2], b[34], b[35],
		 b[44]);

	/* A name of 40 bytes: cut at 32, no NUL in the field, read back whole. */
	pw_memif_msg_connected(&m, "0123456789012345678901234567890123456789");
	PW_CHECK_EQ(pw_memif_msg_parse(&m, sizeof(m), 0, &d), 0);
	PW_CHECK_EQ(d.type, PW_MEMIF_CONNECTED);
	pw_memif_name(d.connected.if_name, PW_MEMIF_NAME, name);
	PW_CHECK(!strcmp(name, "01234567890123456789012345678901"), "cut name %s", name);

	pw_memif_msg_ack(&m);
	PW_CHECK_EQ(pw_memif_msg_parse(&m, sizeof(m), 0, &d), 0);
	PW_CHECK_EQ(d.type, PW_MEMIF_ACK);

	char longer[200];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	pw_memif_msg_disconnect(&m, 5, longer);
	PW_CHECK_EQ(pw_memif_msg_parse(&m, sizeof(m), 0, &d), 0);
	PW_CHECK_EQ(d.disconnect.code, 5);
	PW_CHECK_EQ(d.disconnect.reason[PW_MEMIF_REASON - 1], 0);
	PW_CHECK_EQ(strlen((const char *)d.disconnect.reason), PW_MEMIF_REASON - 1);
}

/* What a DPDK client sends, laid out by hand at the protocol's offsets. */
static void test_client(void)
{
	uint8_t b[PW_MEMIF_MSG_SIZE];
	struct pw_memif_msg d;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	raw(b, PW_MEMIF_INIT);
	u16 = 0x0200;
	memcpy(b + 2, &u16, 2);
	u32 = 0x01020304;
	memcpy(b + 4, &u32, 4);
	b[8] = PW_MEMIF_MODE_ETHERNET;
	memcpy(b + 9, "secret", 6);
	memcpy(b + 33, "dpdk", 4);
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 0, &d), 0);
	PW_CHECK_EQ(d.init.version, 0x0200);
	PW_CHECK_EQ(d.init.id, 0x01020304);
	PW_CHECK(!memcmp(d.init.secret, "secret", 6) && !memcmp(d.init.name, "dpdk", 4),
		 "init secret and name");
	b[8] = PW_MEMIF_MODE_PUNT_INJECT + 1;
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 0, &d), -EBADMSG);

	raw(b, PW_MEMIF_ADD_REGION);
	u16 = 1;
	memcpy(b + 2, &u16, 2);
	u64 = 1ull << 33;
	memcpy(b + 4, &u64, 8);
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 1, &d), 0);
	PW_CHECK_EQ(d.add_region.index, 1);
	PW_CHECK_EQ(d.add_region.size, 1ull << 33);
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 0, &d), -EPROTO); /* no fd */
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 2, &d), -EPROTO);
	u64 = 0;
	memcpy(b + 4, &u64, 8);
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 1, &d), -EBADMSG); /* size 0 */

	raw(b, PW_MEMIF_ADD_RING);
	u16 = PW_MEMIF_RING_S2M;
	memcpy(b + 2, &u16, 2);
	u16 = 3;
	memcpy(b + 4, &u16, 2);
	u16 = 1;
	memcpy(b + 6, &u16, 2);
	u32 = 4096;
	memcpy(b + 8, &u32, 4);
	b[12] = 10;
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 1, &d), 0);
	PW_CHECK_EQ(d.add_ring.flags, PW_MEMIF_RING_S2M);
	PW_CHECK_EQ(d.add_ring.index, 3);
	PW_CHECK_EQ(d.add_ring.region, 1);
	PW_CHECK_EQ(d.add_ring.offset, 4096);
	PW_CHECK_EQ(d.add_ring.log2_ring_size, 10);
	/* Out of range: a ring of 2^15 or of 2^0, unknown flags, a private header. */
	const struct {
		size_t at;
		uint8_t v;
	} bad[] = { { 12, 15 }, { 12, 0 }, { 2, 2 }, { 13, 8 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t c[PW_MEMIF_MSG_SIZE];
		memcpy(c, b, sizeof(c));
		c[bad[i].at] = bad[i].v;
		PW_CHECK(pw_memif_msg_parse(c, sizeof(c), 1, &d) == -EBADMSG, "add_ring bad %zu",
			 i);
	}

	raw(b, PW_MEMIF_CONNECT);
	memcpy(b + 2, "memif0", 6);
	PW_CHECK_EQ(pw_memif_msg_parse(b, sizeof(b), 0, &d), 0);
	PW_CHECK(!memcmp(d.connect.if_name, "memif0", 7), "connect name");
}

static void test_refused(void)
{
	uint8_t b[PW_MEMIF_MSG_SIZE + 1];
	struct pw_memif_msg d;

	memset(&d, 0x5a, sizeof(d));
	raw(b, PW_MEMIF_ACK);
	/* Not 128 bytes. */
	PW_CHECK_EQ(pw_memif_msg_parse(b, PW_MEMIF_MSG_SIZE - 1, 0, &d), -EBADMSG);
	PW_CHECK_EQ(pw_memif_msg_parse(b, PW_MEMIF_MSG_SIZE + 1, 0, &d), -EBADMSG);
	PW_CHECK_EQ(pw_memif_msg_parse(b, 0, 0, &d), -EBADMSG);
	/* No type, or one past the last. */
	raw(b, PW_MEMIF_NONE);
	PW_CHECK_EQ(pw_memif_msg_parse(b, PW_MEMIF_MSG_SIZE, 0, &d), -EBADMSG);
	raw(b, PW_MEMIF_DISCONNECT + 1);
	PW_CHECK_EQ(pw_memif_msg_parse(b, PW_MEMIF_MSG_SIZE, 0, &d), -EBADMSG);
	raw(b, 0xffff);
	PW_CHECK_EQ(pw_memif_msg_parse(b, PW_MEMIF_MSG_SIZE, 0, &d), -EBADMSG);
	/* An fd with a message that carries none. */
	raw(b, PW_MEMIF_CONNECT);
	PW_CHECK_EQ(pw_memif_msg_parse(b, PW_MEMIF_MSG_SIZE, 1, &d), -EPROTO);
	/* HELLO with its versions the wrong way round, or no ring size. */
	struct pw_memif_msg m;
	pw_memif_msg_hello(&m, "x", 0, 0, 0, 10);
	m.hello.min_version = 0x0201;
	PW_CHECK_EQ(pw_memif_msg_parse(&m, sizeof(m), 0, &d), -EBADMSG);
	pw_memif_msg_hello(&m, "x", 0, 0, 0, 0);
	PW_CHECK_EQ(pw_memif_msg_parse(&m, sizeof(m), 0, &d), -EBADMSG);
	/* Nothing written on a refusal. */
	PW_CHECK_EQ(d.type, 0x5a5a);
}

int main(void)
{
	test_built();
	test_client();
	test_refused();
	printf("test-memif-msg: ok\n");
	return 0;
}
