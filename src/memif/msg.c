// SPDX-License-Identifier: MIT
/*
 * memif messages: decoded from a peer, which may be hostile (every field a
 * length or an index is checked before anyone uses it), and built for it.
 */
#include <errno.h>
#include <string.h>

#include "memif.h"

unsigned pw_memif_msg_nfds(uint16_t type)
{
	return type == PW_MEMIF_ADD_REGION || type == PW_MEMIF_ADD_RING ? 1 : 0;
}

/* The body of a well-formed message of its type, field by field. */
static int pw_memif_msg_check(const struct pw_memif_msg *m)
{
	switch (m->type) {
	case PW_MEMIF_HELLO:
		if (m->hello.min_version > m->hello.max_version || !m->hello.max_log2_ring_size ||
		    m->hello.max_log2_ring_size > PW_MEMIF_LOG2_RING_MAX)
			return -EBADMSG;
		return 0;
	case PW_MEMIF_INIT:
		return m->init.mode <= PW_MEMIF_MODE_PUNT_INJECT ? 0 : -EBADMSG;
	case PW_MEMIF_ADD_REGION:
		return m->add_region.size ? 0 : -EBADMSG;
	case PW_MEMIF_ADD_RING:
		/* No private header: neither DPDK nor podwire-switch uses one. */
		if ((m->add_ring.flags & ~PW_MEMIF_RING_S2M) || !m->add_ring.log2_ring_size ||
		    m->add_ring.log2_ring_size > PW_MEMIF_LOG2_RING_MAX ||
		    m->add_ring.private_hdr_size)
			return -EBADMSG;
		return 0;
	case PW_MEMIF_ACK:
	case PW_MEMIF_CONNECT:
	case PW_MEMIF_CONNECTED:
	case PW_MEMIF_DISCONNECT:
		return 0;
	default:
		return -EBADMSG; /* NONE, or unknown */
	}
}

int pw_memif_msg_parse(const void *buf, size_t len, unsigned nfds, struct pw_memif_msg *ret)
{
	struct pw_memif_msg m;

	if (len != PW_MEMIF_MSG_SIZE)
		return -EBADMSG;
	memcpy(&m, buf, sizeof(m));
	int r = pw_memif_msg_check(&m);
	if (r < 0)
		return r;
	if (nfds != pw_memif_msg_nfds(m.type))
		return -EPROTO;
	*ret = m;
	return 0;
}

/* @s into the byte array @field of @n bytes, cut at @n, zero-filled. */
static void pw_memif_put_name(uint8_t *field, size_t n, const char *s)
{
	size_t l = s ? strnlen(s, n) : 0;

	memset(field, 0, n);
	memcpy(field, s ? s : "", l);
}

static void pw_memif_msg_new(struct pw_memif_msg *m, uint16_t type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

void pw_memif_msg_hello(struct pw_memif_msg *m, const char *name, uint16_t max_region,
			uint16_t max_m2s_ring, uint16_t max_s2m_ring, uint8_t max_log2_ring_size)
{
	pw_memif_msg_new(m, PW_MEMIF_HELLO);
	pw_memif_put_name(m->hello.name, PW_MEMIF_NAME, name);
	m->hello.min_version = PW_MEMIF_VERSION;
	m->hello.max_version = PW_MEMIF_VERSION;
	m->hello.max_region = max_region;
	m->hello.max_m2s_ring = max_m2s_ring;
	m->hello.max_s2m_ring = max_s2m_ring;
	m->hello.max_log2_ring_size = max_log2_ring_size;
}

void pw_memif_msg_ack(struct pw_memif_msg *m)
{
	pw_memif_msg_new(m, PW_MEMIF_ACK);
}

void pw_memif_msg_connected(struct pw_memif_msg *m, const char *if_name)
{
	pw_memif_msg_new(m, PW_MEMIF_CONNECTED);
	pw_memif_put_name(m->connected.if_name, PW_MEMIF_NAME, if_name);
}

void pw_memif_msg_disconnect(struct pw_memif_msg *m, uint32_t code, const char *reason)
{
	pw_memif_msg_new(m, PW_MEMIF_DISCONNECT);
	m->disconnect.code = code;
	/* (Always NUL-terminated: the last byte stays 0.) */
	pw_memif_put_name(m->disconnect.reason, PW_MEMIF_REASON - 1, reason);
}

void pw_memif_msg_init(struct pw_memif_msg *m, uint32_t id, const char *secret, const char *name)
{
	pw_memif_msg_new(m, PW_MEMIF_INIT);
	m->init.version = PW_MEMIF_VERSION;
	m->init.id = id;
	m->init.mode = PW_MEMIF_MODE_ETHERNET;
	pw_memif_put_name(m->init.secret, PW_MEMIF_SECRET, secret);
	pw_memif_put_name(m->init.name, PW_MEMIF_NAME, name);
}

void pw_memif_msg_add_region(struct pw_memif_msg *m, uint16_t index, uint64_t size)
{
	pw_memif_msg_new(m, PW_MEMIF_ADD_REGION);
	m->add_region.index = index;
	m->add_region.size = size;
}

void pw_memif_msg_add_ring(struct pw_memif_msg *m, bool s2m, uint16_t index, uint16_t region,
			   uint32_t offset, uint8_t log2)
{
	pw_memif_msg_new(m, PW_MEMIF_ADD_RING);
	m->add_ring.flags = s2m ? PW_MEMIF_RING_S2M : 0;
	m->add_ring.index = index;
	m->add_ring.region = region;
	m->add_ring.offset = offset;
	m->add_ring.log2_ring_size = log2;
}

void pw_memif_msg_connect(struct pw_memif_msg *m, const char *if_name)
{
	pw_memif_msg_new(m, PW_MEMIF_CONNECT);
	pw_memif_put_name(m->connect.if_name, PW_MEMIF_NAME, if_name);
}

void pw_memif_name(const uint8_t *field, size_t n, char *out)
{
	size_t l = strnlen((const char *)field, n);

	memcpy(out, field, l);
	out[l] = '\0';
}
