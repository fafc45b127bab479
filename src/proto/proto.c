// SPDX-License-Identifier: MIT
/*
 * The control protocol codec. Everything here treats its input as hostile:
 * sizes are checked against the packet before anything is copied.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/sys.h"
#include "proto.h"

/* Fixed body size of each type, and the size of one list entry (0: none). */
static int pw_msg_layout(uint16_t type, size_t *ret_fixed, size_t *ret_entry)
{
	size_t entry = 0, fixed;

	switch (type) {
	case PW_MSG_HELLO:
		fixed = sizeof(struct pw_wire_hello);
		break;
	case PW_MSG_LISTEN:
		fixed = sizeof(struct pw_wire_listen);
		break;
	case PW_MSG_CONNECT:
		fixed = sizeof(struct pw_wire_connect);
		break;
	case PW_MSG_STATUS:
	case PW_MSG_VERBS_DEV:
	case PW_MSG_OK:
	case PW_MSG_LISTEN_OK:
	case PW_MSG_TAKE:
		fixed = 0;
		break;
	case PW_MSG_REATTACH:
	case PW_MSG_REQUEUE:
		fixed = sizeof(struct pw_wire_reattach);
		break;
	case PW_MSG_RELAY:
		fixed = sizeof(struct pw_wire_relay);
		break;
	case PW_MSG_POOL:
		fixed = sizeof(struct pw_wire_pool);
		break;
	case PW_MSG_ERR:
		fixed = sizeof(struct pw_wire_err);
		break;
	case PW_MSG_HELLO_OK:
		fixed = sizeof(struct pw_wire_hello_ok);
		entry = sizeof(struct pw_wire_prefix);
		break;
	case PW_MSG_CONN:
	case PW_MSG_CONN_TCP:
	case PW_MSG_RELAY_OK:
		fixed = sizeof(struct pw_wire_conn);
		break;
	case PW_MSG_CONN_POOL:
		fixed = sizeof(struct pw_wire_conn_pool);
		entry = sizeof(struct pw_wire_pool_token);
		break;
	case PW_MSG_LISTEN_POOL:
		fixed = sizeof(struct pw_wire_listen_pool);
		break;
	case PW_MSG_VERBS_DEV_OK:
		fixed = sizeof(struct pw_wire_verbs_dev);
		break;
	case PW_MSG_VERBS_OPEN:
		fixed = sizeof(struct pw_wire_verbs_open);
		break;
	case PW_MSG_VERBS_QP:
	case PW_MSG_VERBS_QP_OK:
	case PW_MSG_VERBS_QP_DEL:
		fixed = sizeof(struct pw_wire_verbs_qp);
		break;
	case PW_MSG_VERBS_CONNECT:
		fixed = sizeof(struct pw_wire_verbs_connect);
		break;
	case PW_MSG_VERBS_PAIRED:
	case PW_MSG_VERBS_PAIRED_TCP:
		fixed = sizeof(struct pw_wire_verbs_paired);
		break;
	case PW_PEER_HELLO:
		fixed = sizeof(struct pw_wire_peer_hello);
		break;
	case PW_PEER_AUTH:
		fixed = sizeof(struct pw_wire_peer_auth);
		break;
	case PW_PEER_ROUTES:
		fixed = sizeof(struct pw_wire_peer_routes);
		entry = sizeof(struct pw_wire_prefix);
		break;
	case PW_PEER_CONNECT:
		fixed = sizeof(struct pw_wire_peer_connect);
		break;
	case PW_PEER_POOL:
		fixed = sizeof(struct pw_wire_peer_pool);
		break;
	case PW_PEER_POOL_OK:
		fixed = sizeof(struct pw_wire_peer_pool_ok);
		break;
	case PW_PEER_VQP:
		fixed = sizeof(struct pw_wire_peer_vqp);
		break;
	case PW_PEER_CONNECT_OK:
		fixed = sizeof(struct pw_wire_peer_connect_ok);
		break;
	case PW_PEER_CONNECT_ERR:
		fixed = sizeof(struct pw_wire_peer_connect_err);
		break;
	case PW_MSG_STATUS_OK:
		fixed = sizeof(struct pw_wire_status);
		entry = sizeof(struct pw_wire_status_entry);
		break;
	case PW_MSG_POD_ADD:
		fixed = sizeof(struct pw_wire_pod);
		break;
	case PW_MSG_POD_DEL:
		fixed = sizeof(struct pw_wire_pod_key);
		break;
	case PW_MSG_PODS:
		fixed = 0;
		break;
	case PW_MSG_PODS_OK:
		fixed = sizeof(struct pw_wire_pods);
		entry = sizeof(struct pw_wire_pod_entry);
		break;
	default:
		return -EPROTO;
	}
	*ret_fixed = fixed;
	*ret_entry = entry;
	return 0;
}

unsigned pw_msg_nfds(uint16_t type)
{
	switch (type) {
	case PW_MSG_LISTEN:
	case PW_MSG_CONNECT:
	case PW_MSG_REATTACH:
	case PW_MSG_REQUEUE:
	case PW_MSG_POD_ADD:
	case PW_MSG_CONN_TCP:
	case PW_MSG_POOL:
	case PW_MSG_VERBS_DEV:
	case PW_MSG_VERBS_CONNECT:
	case PW_MSG_RELAY:
	case PW_MSG_TAKE:
	case PW_MSG_RELAY_OK:
	case PW_MSG_LISTEN_OK:
	case PW_MSG_VERBS_PAIRED_TCP:
		return 1;
	case PW_MSG_CONN:
	case PW_MSG_LISTEN_POOL:
		return 2;
	case PW_MSG_VERBS_OPEN:
	case PW_MSG_VERBS_PAIRED:
		return 3;
	case PW_MSG_CONN_POOL:
		return PW_MSG_NFDS_PER_ENTRY;
	default:
		return 0;
	}
}

static bool pw_str_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool pw_pod_key_ok(const struct pw_wire_pod_key *k)
{
	return pw_str_terminated(k->id, sizeof(k->id)) &&
	       pw_str_terminated(k->ifname, sizeof(k->ifname));
}

int pw_msg_parse(const void *buf, size_t len, unsigned nfds, struct pw_msg *ret_msg)
{
	struct pw_wire_hdr h;
	struct pw_msg m = { 0 };
	size_t fixed, entry, body;
	int ret;

	if (len > PW_WIRE_MAX)
		return -EMSGSIZE;
	if (len < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf, sizeof(h));
	if (h.magic != PW_WIRE_MAGIC)
		return -EBADMSG;
	if (h.version != PW_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	if (h.len != len)
		return -EBADMSG;
	ret = pw_msg_layout(h.type, &fixed, &entry);
	if (ret < 0)
		return ret;
	unsigned want = pw_msg_nfds(h.type);
	if (want != PW_MSG_NFDS_PER_ENTRY && nfds != want)
		return -EPROTO;
	body = len - sizeof(h);
	if (body < fixed)
		return -EBADMSG;

	const uint8_t *p = (const uint8_t *)buf + sizeof(h);
	memcpy(&m.u, p, fixed);
	if (entry) {
		/* The count is read from the body: it must match the bytes left. */
		uint32_t count = h.type == PW_MSG_HELLO_OK    ? m.u.hello_ok.count
				 : h.type == PW_MSG_PODS_OK   ? m.u.pods.count
				 : h.type == PW_PEER_ROUTES   ? m.u.peer_routes.count
				 : h.type == PW_MSG_CONN_POOL ? m.u.conn_pool.count
							      : m.u.status.count;

		if ((body - fixed) % entry || (body - fixed) / entry != count)
			return -EBADMSG;
		if ((h.type == PW_MSG_HELLO_OK || h.type == PW_PEER_ROUTES) &&
		    count > PW_WIRE_MAX_PREFIXES)
			return -EBADMSG;
		if (h.type == PW_MSG_CONN_POOL && (count == 0 || count > PW_POOL_MAX))
			return -EBADMSG;
		if (want == PW_MSG_NFDS_PER_ENTRY && nfds != count)
			return -EPROTO;
		m.entries = p + fixed;
		m.nentries = count;
	} else if (body != fixed) {
		return -EBADMSG;
	}
	if (h.type == PW_MSG_POD_ADD &&
	    (m.u.pod.count > PW_WIRE_POD_MAX_ADDRS || !pw_pod_key_ok(&m.u.pod.key)))
		return -EBADMSG;
	if (h.type == PW_MSG_POD_DEL && !pw_pod_key_ok(&m.u.pod_key))
		return -EBADMSG;
	if (h.type == PW_PEER_HELLO &&
	    !pw_str_terminated(m.u.peer_hello.name, sizeof(m.u.peer_hello.name)))
		return -EBADMSG;
	m.type = h.type;
	m.seq = h.seq;
	*ret_msg = m;
	return 0;
}

int pw_msg_entry(const struct pw_msg *m, uint32_t i, void *out, size_t out_len)
{
	size_t fixed, entry;

	if (pw_msg_layout(m->type, &fixed, &entry) < 0 || entry == 0 || out_len != entry)
		return -EINVAL;
	if (i >= m->nentries)
		return -ERANGE;
	memcpy(out, m->entries + (size_t)i * entry, entry);
	return 0;
}

int pw_fds_send(int sock, const struct iovec *iov, unsigned iovcnt, const int *fds, unsigned nfds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PW_FDS_SEND_MAX)];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = iovcnt };
	ssize_t n;

	if (nfds > PW_FDS_SEND_MAX)
		return -EINVAL;
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = pw_sys_sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (int)n;
}

int pw_msg_send(int sock, uint16_t type, uint32_t seq, const void *body, size_t body_len,
		const void *extra, size_t extra_len, const int *fds, unsigned nfds)
{
	size_t len = sizeof(struct pw_wire_hdr) + body_len + extra_len;
	struct pw_wire_hdr h = {
		.magic = PW_WIRE_MAGIC,
		.version = PW_WIRE_VERSION,
		.type = type,
		.len = (uint32_t)len,
		.seq = seq,
	};
	struct iovec iov[3] = {
		{ .iov_base = &h, .iov_len = sizeof(h) },
		{ .iov_base = (void *)body, .iov_len = body_len },
		{ .iov_base = (void *)extra, .iov_len = extra_len },
	};

	/* Each part alone first, so the sum above cannot have wrapped. */
	if (body_len > PW_WIRE_MAX || extra_len > PW_WIRE_MAX || len > PW_WIRE_MAX ||
	    nfds > PW_WIRE_MAX_FDS)
		return -EMSGSIZE;
	int n = pw_fds_send(sock, iov, 3, fds, nfds);
	if (n < 0)
		return n;
	return n == (int)len ? 0 : -EMSGSIZE;
}

static void pw_close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pw_sys_close(fds[i]);
}

ssize_t pw_msg_recv(int sock, void *buf, size_t cap, int fds[PW_WIRE_MAX_FDS], unsigned *ret_nfds,
		    int flags)
{
	union {
		/* Room for more than we accept, so excess fds are seen and
		 * closed, beside credentials and a pidfd (SO_PASSCRED,
		 * SO_PASSPIDFD). */
		char buf[CMSG_SPACE(sizeof(struct ucred)) +
			 CMSG_SPACE(sizeof(int) * 2 * PW_WIRE_MAX_FDS) + CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	unsigned nfds = 0;
	bool bad = false;
	ssize_t n;

	do
		n = pw_sys_recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		/* Every one the kernel gave (the buffer bounds them): those past
		 * what a message carries are closed. */
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < PW_WIRE_MAX_FDS)
				fds[nfds++] = fd;
			else {
				pw_sys_close(fd);
				bad = true;
			}
		}
	}
	if (bad || (mh.msg_flags & MSG_CTRUNC)) {
		pw_close_fds(fds, nfds);
		*ret_nfds = 0;
		return -EPROTO;
	}
	if (n == 0 && nfds) {
		/* An empty packet that carries fds is no EOF: refuse it whole. */
		pw_close_fds(fds, nfds);
		*ret_nfds = 0;
		return -EPROTO;
	}
	if (mh.msg_flags & MSG_TRUNC) {
		pw_close_fds(fds, nfds);
		*ret_nfds = 0;
		return -EMSGSIZE;
	}
	*ret_nfds = nfds;
	return n;
}

/* ---- SipHash-2-4, from its paper's description ---- */

static inline uint64_t pw_rotl64(uint64_t x, unsigned b)
{
	return x << b | x >> (64 - b);
}

static inline uint64_t pw_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline void pw_sip_round(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = pw_rotl64(v[1], 13) ^ v[0];
	v[0] = pw_rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = pw_rotl64(v[3], 16) ^ v[2];
	v[0] += v[3];
	v[3] = pw_rotl64(v[3], 21) ^ v[0];
	v[2] += v[1];
	v[1] = pw_rotl64(v[1], 17) ^ v[2];
	v[2] = pw_rotl64(v[2], 32);
}

uint64_t pw_siphash24(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t k0 = pw_le64(key), k1 = pw_le64(key + 8);
	uint64_t v[4] = { k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull,
			  k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull };
	uint64_t m;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		m = pw_le64(p + i);
		v[3] ^= m;
		pw_sip_round(v);
		pw_sip_round(v);
		v[0] ^= m;
	}
	/* The last block: the bytes left, and the length's low byte on top. */
	m = (uint64_t)(len & 0xff) << 56;
	for (size_t j = 0; i + j < len; j++)
		m |= (uint64_t)p[i + j] << (8 * j);
	v[3] ^= m;
	pw_sip_round(v);
	pw_sip_round(v);
	v[0] ^= m;
	v[2] ^= 0xff;
	for (unsigned r = 0; r < 4; r++)
		pw_sip_round(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static void pw_pool_token_tag(const struct pw_wire_pool_token *t,
			      const uint8_t key[PW_POOL_KEY_LEN], uint8_t tag[8])
{
	uint64_t h = pw_siphash24(key, t, offsetof(struct pw_wire_pool_token, tag));

	for (unsigned i = 0; i < 8; i++)
		tag[i] = (uint8_t)(h >> (8 * i));
}

void pw_pool_token_seal(struct pw_wire_pool_token *t, const uint8_t key[PW_POOL_KEY_LEN])
{
	pw_pool_token_tag(t, key, t->tag);
}

bool pw_pool_token_check(const struct pw_wire_pool_token *t, const uint8_t key[PW_POOL_KEY_LEN])
{
	uint8_t tag[8], d = 0;

	pw_pool_token_tag(t, key, tag);
	for (unsigned i = 0; i < sizeof(tag); i++)
		d |= tag[i] ^ t->tag[i];
	return d == 0;
}
