// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness for the control-protocol decoder. Each input is decoded as
 * a packet that came with 0 to PW_WIRE_MAX_FDS fds; whatever pw_msg_parse() accepts must
 * be consistent with the packet and with <podwire/wire.h>, checked against a
 * layout table written out here. A violation traps; an out-of-bounds access
 * is ASan's to find, so the input is decoded from a heap copy of exactly its
 * size.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "pw_fuzz.h"

struct layout {
	size_t fixed, entry;
	unsigned nfds; /* PW_MSG_NFDS_PER_ENTRY: one per entry, and 1 at least */
	uint32_t max_entries;
};

static int layout_of(uint16_t type, struct layout *l)
{
	memset(l, 0, sizeof(*l));
	switch (type) {
	case PW_MSG_HELLO:
		l->fixed = sizeof(struct pw_wire_hello);
		return 0;
	case PW_MSG_LISTEN:
		l->fixed = sizeof(struct pw_wire_listen);
		l->nfds = 1;
		return 0;
	case PW_MSG_CONNECT:
		l->fixed = sizeof(struct pw_wire_connect);
		l->nfds = 1;
		return 0;
	case PW_MSG_LISTEN_OK:
		l->nfds = 1;
		return 0;
	case PW_MSG_REATTACH:
	case PW_MSG_REQUEUE:
		l->fixed = sizeof(struct pw_wire_reattach);
		l->nfds = 1;
		return 0;
	case PW_MSG_RELAY:
		l->fixed = sizeof(struct pw_wire_relay);
		l->nfds = 1;
		return 0;
	case PW_MSG_TAKE:
		l->fixed = 0;
		l->nfds = 1;
		return 0;
	case PW_MSG_STATUS:
	case PW_MSG_OK:
		return 0;
	case PW_MSG_ERR:
		l->fixed = sizeof(struct pw_wire_err);
		return 0;
	case PW_MSG_HELLO_OK:
		l->fixed = sizeof(struct pw_wire_hello_ok);
		l->entry = sizeof(struct pw_wire_prefix);
		l->max_entries = PW_WIRE_MAX_PREFIXES;
		return 0;
	case PW_MSG_CONN:
		l->fixed = sizeof(struct pw_wire_conn);
		l->nfds = 2;
		return 0;
	case PW_MSG_STATUS_OK:
		l->fixed = sizeof(struct pw_wire_status);
		l->entry = sizeof(struct pw_wire_status_entry);
		l->max_entries = UINT32_MAX;
		return 0;
	case PW_MSG_POD_ADD:
		l->fixed = sizeof(struct pw_wire_pod);
		l->nfds = 1;
		return 0;
	case PW_MSG_POD_DEL:
		l->fixed = sizeof(struct pw_wire_pod_key);
		return 0;
	case PW_MSG_PODS:
		return 0;
	case PW_MSG_PODS_OK:
		l->fixed = sizeof(struct pw_wire_pods);
		l->entry = sizeof(struct pw_wire_pod_entry);
		l->max_entries = UINT32_MAX;
		return 0;
	case PW_MSG_POOL:
		l->fixed = sizeof(struct pw_wire_pool);
		l->nfds = 1;
		return 0;
	case PW_MSG_CONN_POOL:
		l->fixed = sizeof(struct pw_wire_conn_pool);
		l->entry = sizeof(struct pw_wire_pool_token);
		l->max_entries = PW_POOL_MAX;
		l->nfds = PW_MSG_NFDS_PER_ENTRY;
		return 0;
	case PW_MSG_LISTEN_POOL:
		l->fixed = sizeof(struct pw_wire_listen_pool);
		l->nfds = 2;
		return 0;
	case PW_MSG_VERBS_DEV:
		l->fixed = 0;
		l->nfds = 1;
		return 0;
	case PW_MSG_VERBS_OPEN:
		l->fixed = sizeof(struct pw_wire_verbs_open);
		l->nfds = 3;
		return 0;
	case PW_MSG_VERBS_DEV_OK:
		l->fixed = sizeof(struct pw_wire_verbs_dev);
		return 0;
	case PW_MSG_VERBS_QP:
	case PW_MSG_VERBS_QP_OK:
	case PW_MSG_VERBS_QP_DEL:
		l->fixed = sizeof(struct pw_wire_verbs_qp);
		return 0;
	case PW_MSG_VERBS_CONNECT:
		l->fixed = sizeof(struct pw_wire_verbs_connect);
		l->nfds = 1;
		return 0;
	case PW_MSG_VERBS_PAIRED:
		l->fixed = sizeof(struct pw_wire_verbs_paired);
		l->nfds = 3;
		return 0;
	case PW_MSG_VERBS_PAIRED_TCP:
		l->fixed = sizeof(struct pw_wire_verbs_paired);
		l->nfds = 1;
		return 0;
	case PW_MSG_CONN_TCP:
	case PW_MSG_RELAY_OK:
		l->fixed = sizeof(struct pw_wire_conn);
		l->nfds = 1;
		return 0;
	case PW_PEER_HELLO:
		l->fixed = sizeof(struct pw_wire_peer_hello);
		return 0;
	case PW_PEER_AUTH:
		l->fixed = sizeof(struct pw_wire_peer_auth);
		return 0;
	case PW_PEER_ROUTES:
		l->fixed = sizeof(struct pw_wire_peer_routes);
		l->entry = sizeof(struct pw_wire_prefix);
		l->max_entries = PW_WIRE_MAX_PREFIXES;
		return 0;
	case PW_PEER_CONNECT:
		l->fixed = sizeof(struct pw_wire_peer_connect);
		return 0;
	case PW_PEER_POOL:
		l->fixed = sizeof(struct pw_wire_peer_pool);
		return 0;
	case PW_PEER_POOL_OK:
		l->fixed = sizeof(struct pw_wire_peer_pool_ok);
		return 0;
	case PW_PEER_VQP:
		l->fixed = sizeof(struct pw_wire_peer_vqp);
		return 0;
	case PW_PEER_CONNECT_OK:
		l->fixed = sizeof(struct pw_wire_peer_connect_ok);
		return 0;
	case PW_PEER_CONNECT_ERR:
		l->fixed = sizeof(struct pw_wire_peer_connect_err);
		return 0;
	default:
		return -1;
	}
}

static void check_pod_key(const struct pw_wire_pod_key *k)
{
	CHECK(memchr(k->id, '\0', sizeof(k->id)) && memchr(k->ifname, '\0', sizeof(k->ifname)));
}

/* Everything a successful decode of @buf promises. */
static void check_msg(const uint8_t *buf, size_t size, unsigned nfds, const struct pw_msg *m)
{
	uint8_t out[sizeof(struct pw_wire_pod_entry) + 8];
	struct pw_wire_hdr h;
	struct layout l;
	size_t body, list;
	uint32_t count;

	CHECK(size >= sizeof(h) && size <= PW_WIRE_MAX);
	memcpy(&h, buf, sizeof(h));
	CHECK(h.magic == PW_WIRE_MAGIC && h.version == PW_WIRE_VERSION);
	CHECK(h.len == size);
	CHECK(m->type == h.type && m->seq == h.seq);
	CHECK(layout_of(m->type, &l) == 0);
	CHECK(pw_msg_nfds(m->type) == l.nfds);
	CHECK(l.nfds == PW_MSG_NFDS_PER_ENTRY ? nfds == m->nentries && nfds >= 1 : nfds == l.nfds);

	body = size - sizeof(h);
	CHECK(body >= l.fixed);
	/* The fixed body is copied out verbatim. */
	CHECK(memcmp(&m->u, buf + sizeof(h), l.fixed) == 0);
	list = body - l.fixed;
	if (m->type == PW_MSG_POD_ADD) {
		CHECK(m->u.pod.count <= PW_WIRE_POD_MAX_ADDRS);
		check_pod_key(&m->u.pod.key);
	}
	if (m->type == PW_MSG_POD_DEL)
		check_pod_key(&m->u.pod_key);
	if (m->type == PW_PEER_HELLO)
		CHECK(memchr(m->u.peer_hello.name, '\0', sizeof(m->u.peer_hello.name)));
	if (!l.entry) {
		CHECK(list == 0 && m->nentries == 0);
		CHECK(pw_msg_entry(m, 0, out, sizeof(struct pw_wire_prefix)) == -EINVAL);
		CHECK(pw_msg_entry(m, 0, out, sizeof(struct pw_wire_status_entry)) == -EINVAL);
		return;
	}

	count = m->type == PW_MSG_HELLO_OK    ? m->u.hello_ok.count
		: m->type == PW_MSG_PODS_OK   ? m->u.pods.count
		: m->type == PW_MSG_CONN_POOL ? m->u.conn_pool.count
					      : m->u.status.count;
	CHECK(m->nentries == count && count <= l.max_entries);
	CHECK((uint64_t)m->nentries * l.entry == list);
	CHECK(m->entries == buf + sizeof(h) + l.fixed);
	for (uint32_t i = 0; i < m->nentries; i++) {
		memset(out, 0xcc, sizeof(out));
		CHECK(pw_msg_entry(m, i, out, l.entry) == 0);
		CHECK(memcmp(out, buf + sizeof(h) + l.fixed + (size_t)i * l.entry, l.entry) == 0);
		for (size_t k = l.entry; k < sizeof(out); k++)
			CHECK(out[k] == 0xcc);
	}
	CHECK(pw_msg_entry(m, m->nentries, out, l.entry) == -ERANGE);
	CHECK(pw_msg_entry(m, UINT32_MAX, out, l.entry) == -ERANGE);
	CHECK(pw_msg_entry(m, 0, out, l.entry - 1) == -EINVAL);
	CHECK(pw_msg_entry(m, 0, out, l.entry + 1) == -EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Exactly @size bytes on the heap: 16-byte aligned, and ASan sees past the end. */
	uint8_t *buf = malloc(size ? size : 1);
	struct pw_msg m;

	if (!buf)
		return 0;
	CHECK(((uintptr_t)buf & 7) == 0);
	if (size)
		memcpy(buf, data, size);
	for (unsigned nfds = 0; nfds <= PW_WIRE_MAX_FDS; nfds++) {
		int ret = pw_msg_parse(buf, size, nfds, &m);

		if (ret == 0) {
			check_msg(buf, size, nfds, &m);
			continue;
		}
		CHECK(ret == -EBADMSG || ret == -EPROTONOSUPPORT || ret == -EPROTO ||
		      ret == -EMSGSIZE);
	}
	/* The decoder only reads its input. */
	CHECK(size == 0 || memcmp(buf, data, size) == 0);
	free(buf);
	return 0;
}
