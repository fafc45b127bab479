// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the memif message decoder (src/memif/msg.c), what a
 * hostile pod sends podwire-switch. Each input is decoded as a packet that
 * came with 0 to 3 fds; whatever pw_memif_msg_parse() accepts must be the
 * input's own bytes, of a known type, with its type's fds, its fields in
 * range. A violation traps; an out-of-bounds access is ASan's to find (the
 * input is decoded from a heap copy of exactly its size).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memif.h"
#include "pw_fuzz.h"

static void check_msg(const uint8_t *buf, size_t size, unsigned nfds, const struct pw_memif_msg *m)
{
	CHECK(size == PW_MEMIF_MSG_SIZE);
	CHECK(memcmp(m, buf, size) == 0);
	CHECK(m->type >= PW_MEMIF_ACK && m->type <= PW_MEMIF_DISCONNECT);
	CHECK(nfds == (m->type == PW_MEMIF_ADD_REGION || m->type == PW_MEMIF_ADD_RING ? 1u : 0u));
	switch (m->type) {
	case PW_MEMIF_HELLO:
		CHECK(m->hello.min_version <= m->hello.max_version);
		CHECK(m->hello.max_log2_ring_size >= 1 &&
		      m->hello.max_log2_ring_size <= PW_MEMIF_LOG2_RING_MAX);
		break;
	case PW_MEMIF_INIT:
		CHECK(m->init.mode <= PW_MEMIF_MODE_PUNT_INJECT);
		break;
	case PW_MEMIF_ADD_REGION:
		CHECK(m->add_region.size != 0);
		break;
	case PW_MEMIF_ADD_RING:
		CHECK(!(m->add_ring.flags & ~PW_MEMIF_RING_S2M));
		CHECK(m->add_ring.log2_ring_size >= 1 &&
		      m->add_ring.log2_ring_size <= PW_MEMIF_LOG2_RING_MAX);
		CHECK(m->add_ring.private_hdr_size == 0);
		break;
	default:
		break;
	}
	/* A name read back is bounded by its field, whatever its bytes. */
	char name[PW_MEMIF_NAME + 1];
	pw_memif_name(m->connect.if_name, PW_MEMIF_NAME, name);
	CHECK(strlen(name) <= PW_MEMIF_NAME);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	struct pw_memif_msg m;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	for (unsigned nfds = 0; nfds <= 3; nfds++) {
		int ret = pw_memif_msg_parse(buf, size, nfds, &m);
		if (ret == 0)
			check_msg(buf, size, nfds, &m);
		else
			CHECK(ret == -EBADMSG || ret == -EPROTO);
	}
	/* The decoder only reads its input. */
	CHECK(size == 0 || memcmp(buf, data, size) == 0);
	free(buf);
	return 0;
}
