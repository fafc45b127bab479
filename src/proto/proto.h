/* SPDX-License-Identifier: MIT */
/*
 * Encoding and strict decoding of the control protocol (<podwire/wire.h>).
 * Shared by libpodwire.so and podwired; private to the project.
 */
#ifndef PW_PROTO_H
#define PW_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <podwire/wire.h>

/* One decoded message. Fixed bodies are copied out; list entries stay in the
 * packet buffer and are copied out one at a time by pw_msg_entry(). */
struct pw_msg {
	uint16_t type;
	uint32_t seq;
	union {
		struct pw_wire_hello hello;
		struct pw_wire_hello_ok hello_ok;
		struct pw_wire_listen listen;
		struct pw_wire_connect connect;
		struct pw_wire_err err;
		struct pw_wire_conn conn;
		struct pw_wire_conn_pool conn_pool;
		struct pw_wire_listen_pool listen_pool;
		struct pw_wire_verbs_dev verbs_dev;
		struct pw_wire_verbs_open verbs_open;
		struct pw_wire_verbs_qp verbs_qp;
		struct pw_wire_verbs_connect verbs_connect;
		struct pw_wire_verbs_paired verbs_paired;
		struct pw_wire_status status;
		struct pw_wire_reattach reattach;
		struct pw_wire_relay relay;
		struct pw_wire_pool pool;
		struct pw_wire_pod pod;
		struct pw_wire_pod_key pod_key;
		struct pw_wire_pods pods;
		struct pw_wire_peer_hello peer_hello;
		struct pw_wire_peer_auth peer_auth;
		struct pw_wire_peer_routes peer_routes;
		struct pw_wire_peer_connect peer_connect;
		struct pw_wire_peer_connect_ok peer_connect_ok;
		struct pw_wire_peer_connect_err peer_connect_err;
		struct pw_wire_peer_pool peer_pool;
		struct pw_wire_peer_pool_ok peer_pool_ok;
		struct pw_wire_peer_vqp peer_vqp;
	} u;
	/* HELLO_OK: prefixes; STATUS_OK: status entries; PODS_OK: pod entries */
	const uint8_t *entries;
	uint32_t nentries;
};

/*
 * Decode a packet of @len bytes that came with @nfds descriptors.
 * Errors: -EBADMSG bad magic, length or body size, or a POD_ADD/POD_DEL whose
 * strings are not NUL-terminated or whose address count is over
 * PW_WIRE_POD_MAX_ADDRS, or a CONN_POOL whose count is not 1..PW_POOL_MAX;
 * -EPROTONOSUPPORT other version; -EPROTO unknown type or wrong number of
 * fds; -EMSGSIZE too long.
 */
int pw_msg_parse(const void *buf, size_t len, unsigned nfds, struct pw_msg *ret_msg);

/* Copy list entry @i of a HELLO_OK (struct pw_wire_prefix), STATUS_OK
 * (struct pw_wire_status_entry), PODS_OK (struct pw_wire_pod_entry) or
 * CONN_POOL (struct pw_wire_pool_token) into @out. Errors: -ERANGE, -EINVAL. */
int pw_msg_entry(const struct pw_msg *m, uint32_t i, void *out, size_t out_len);

/* Number of fds a message of @type carries; PW_MSG_NFDS_PER_ENTRY: one per
 * list entry (CONN_POOL). */
#define PW_MSG_NFDS_PER_ENTRY 0xffffu
unsigned pw_msg_nfds(uint16_t type);

/*
 * sendmsg(2) of @iovcnt pieces with @nfds fds (SCM_RIGHTS; at most
 * PW_FDS_SEND_MAX, more than a message of ours takes, so that tests can
 * send too many), MSG_NOSIGNAL, retrying on EINTR: the bytes sent, or
 * -errno. Errors: -EINVAL too many fds; those of sendmsg(2).
 */
#define PW_FDS_SEND_MAX 64
struct iovec;
int pw_fds_send(int sock, const struct iovec *iov, unsigned iovcnt, const int *fds, unsigned nfds);

/*
 * Send one message: header, @body, then @extra (list entries), and @nfds fds.
 * Retries on EINTR. Errors: -EMSGSIZE too big; errors of sendmsg(2).
 */
int pw_msg_send(int sock, uint16_t type, uint32_t seq, const void *body, size_t body_len,
		const void *extra, size_t extra_len, const int *fds, unsigned nfds);

/*
 * Receive one packet into @buf (at least PW_WIRE_MAX bytes) and up to
 * PW_WIRE_MAX_FDS fds, opened O_CLOEXEC. Extra or truncated fds are closed and
 * reported as -EPROTO. Returns the packet size, 0 at EOF.
 * @flags go to recvmsg(2) (e.g. MSG_DONTWAIT). Retries on EINTR.
 * Errors: -EMSGSIZE truncated packet; -EPROTO bad fds; errors of recvmsg(2).
 */
ssize_t pw_msg_recv(int sock, void *buf, size_t cap, int fds[PW_WIRE_MAX_FDS], unsigned *ret_nfds,
		    int flags);

/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012) of @len bytes at @data with the
 * 16-byte @key: a keyed hash, short enough to seal a pooled connection's
 * token. (The preload cannot link a crypto library: it runs in programs of
 * either C library, see src/preload/meson.build.)
 */
uint64_t pw_siphash24(const uint8_t key[16], const void *data, size_t len);

/* Seal @t (its tag) with @key; check the seal, in constant time: true if good. */
void pw_pool_token_seal(struct pw_wire_pool_token *t, const uint8_t key[PW_POOL_KEY_LEN]);
bool pw_pool_token_check(const struct pw_wire_pool_token *t, const uint8_t key[PW_POOL_KEY_LEN]);

/*
 * Client side, for tools (not the preload library): connect to the router's
 * socket @path, send one request (@type, @body of @body_len bytes, and @fd by
 * SCM_RIGHTS when it is not -1), wait up to
 * @timeout_ms for the reply and decode it into @ret; list entries stay in @buf
 * (PW_WIRE_MAX bytes). Descriptors that come with the reply are closed.
 * Returns 0. Errors: -ENAMETOOLONG path too long; -ETIMEDOUT no reply;
 * -ECONNRESET closed without a reply; errors of socket(2), connect(2),
 * pw_msg_send(), pw_msg_recv() and pw_msg_parse().
 */
int pw_proto_call(const char *path, uint16_t type, const void *body, size_t body_len, int fd,
		  int timeout_ms, struct pw_msg *ret, uint8_t *buf);

#endif /* PW_PROTO_H */
