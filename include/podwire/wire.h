/* SPDX-License-Identifier: MIT */
/*
 * Control protocol between libpodwire.so and podwired, over a Unix
 * SOCK_SEQPACKET socket: one message per packet, fds in SCM_RIGHTS.
 *
 * Every message is a pw_wire_hdr followed by a body whose size is fixed by
 * its type (or, for lists, a count and that many fixed-size entries). The
 * receiver checks magic, version, that len equals the packet size, that the
 * body has exactly the size its type demands, and how many fds came with it.
 * All integers are in host order (both ends are on one node); ports and
 * addresses in pw_wire_addr are in network order, as in sockaddr_in.
 */
#ifndef PODWIRE_WIRE_H
#define PODWIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define PW_WIRE_MAGIC 0x31525750u /* "PWR1" in memory order */
/* Bumped with PW_SHM_VERSION too: the router hands out channels, so a library
 * and a router that disagree on their layout must not talk at all (the
 * library then leaves everything to the kernel) rather than exchange a
 * channel one of them refuses. 3: rings with a window; 4: parked channels;
 * 5: pools of connections to other nodes (POOL, CONN_POOL, PEER_POOL);
 * 6: pooled connections go to the listener's own socket on the underlay,
 * with TCP Fast Open and a sealed token (LISTEN_POOL, PEER_POOL_OK);
 * 7: a POOL's connections come together, in one CONN_POOL;
 * 8: LISTEN_POOL's socket on the underlay comes bound, and the library
 * listens on it.
 */
#define PW_WIRE_VERSION	       8u
#define PW_WIRE_MAX	       65536u /* largest packet either side accepts */
#define PW_WIRE_MAX_FDS	       32u    /* a CONN_POOL's: PW_POOL_MAX */
#define PW_WIRE_MAX_PREFIXES   64u
#define PW_WIRE_POD_ID_LEN     72u /* container id: up to 71 bytes and a NUL */
#define PW_WIRE_POD_IFNAME_LEN 16u
#define PW_WIRE_POD_MAX_ADDRS  8u
/* Entries in one STATUS_OK reply; pw_wire_status.total counts the rest. */
#define PW_WIRE_STATUS_PAGE 700u

/* The router's control socket, where no option or PODWIRE_SOCKET names another. */
#define PW_WIRE_DEFAULT_SOCKET "/run/podwire/podwired.sock"

enum pw_wire_type {
	/* requests, library -> router */
	PW_MSG_HELLO = 1,  /* body hello; reply HELLO_OK */
	PW_MSG_LISTEN = 2, /* body listen, fd: the listening socket; reply LISTEN_OK or ERR */
	/* 3 and 5 were UNLISTEN and CLAIM (version 1): the accept queue replaced them */
	PW_MSG_CONNECT = 4,  /* body connect, fd: the application's socket; reply CONN or ERR */
	PW_MSG_STATUS = 6,   /* no body; reply STATUS */
	PW_MSG_REATTACH = 7, /* body reattach, fd: the channel's socket; reply CONN or ERR */
	/* the pod registry: POD_ADD and POD_DEL only from uid 0 in the router's netns */
	PW_MSG_POD_ADD = 8, /* body pod, fd: the pod's netns; reply OK or ERR */
	PW_MSG_POD_DEL = 9, /* body pod_key; reply OK or ERR (ENOENT: not known) */
	PW_MSG_PODS = 10,   /* no body; reply PODS_OK */
	/* handing a connection to another process (SCM_RIGHTS, docs/PRELOAD.md) */
	PW_MSG_RELAY = 11, /* body relay, fd: the channel's socket (proof); reply
			      RELAY_OK: a kernel stream the router relays to the channel */
	PW_MSG_TAKE = 12,  /* no body, fd: such a stream (proof); reply CONN (the
			      channel itself, while the relay has moved nothing) or ERR */
	/* reuse (docs/PRELOAD.md): a parked channel a client claimed, which this
	 * process gives up before taking it, goes back to its listener's queue */
	PW_MSG_REQUEUE = 13, /* body reattach, fd: the accepting end's socket (proof);
				reply OK or ERR */
	/* a pool (docs/FEDERATION.md, "Pools"): connections to another node's
	 * pod dialled before the application asks, each started later by
	 * writing its token on it */
	PW_MSG_POOL = 14, /* body pool, fd: a TCP socket of the client's netns (proof);
			     reply: a CONN_POOL with the connections dialled,
			     and an ERR for each asked for and not dialled */
	/* 15 was REQUEUE_TCP (version 5): pooled connections wait in the kernel now */
	/* the virtual RDMA device (docs/RDMA.md): who the caller's pod is */
	PW_MSG_VERBS_DEV = 16, /* no body, fd: a socket of the caller's netns (proof);
				  reply VERBS_DEV_OK, or ERR (ENOENT: no pod address) */
	/* a process's connection for the device's queue pairs, kept open */
	PW_MSG_VERBS_OPEN = 17,	   /* body verbs_open, fds: the proof socket, the
				      process's arena (shm.h) and its service eventfd
				      (pw_vsvc); reply VERBS_DEV_OK or ERR
				      (EPROTONOSUPPORT: another arena layout) */
	PW_MSG_VERBS_QP = 18,	   /* body verbs_qp (slot); reply VERBS_QP_OK (qpn) */
	PW_MSG_VERBS_CONNECT = 19, /* body verbs_connect, fd: the eventfd that wakes the
				      QP's receive completions; reply OK or ERR; when
				      the peer QP connected back, VERBS_PAIRED to both */
	PW_MSG_VERBS_QP_DEL = 20,  /* body verbs_qp (qpn); reply OK */
	/* replies, router -> library; seq echoes the request's */
	PW_MSG_OK = 64,		      /* no body */
	PW_MSG_ERR = 65,	      /* body err */
	PW_MSG_HELLO_OK = 66,	      /* body hello_ok + prefixes */
	PW_MSG_CONN = 67,	      /* body conn, fds: memfd, socket end */
	PW_MSG_STATUS_OK = 68,	      /* body status + entries */
	PW_MSG_PODS_OK = 69,	      /* body pods + pod_entry entries */
	PW_MSG_CONN_TCP = 70,	      /* body conn, fd: a connected kernel TCP socket (another
					 node's pod is the peer; see PEER_* below) */
	PW_MSG_RELAY_OK = 71,	      /* body conn, fd: the relayed stream's end */
	PW_MSG_LISTEN_OK = 72,	      /* no body, fd: the listener's accept queue (SOCK_SEQPACKET),
					 where the router puts one CONN or CONN_TCP per connection
					 (seq 0) for accept() to take */
	PW_MSG_CONN_POOL = 73,	      /* body conn_pool and a token per connection, fds: one
					 pooled kernel TCP socket to another node's pod per
					 token, the reply to POOL: the client starts one by
					 writing its token */
	PW_MSG_LISTEN_POOL = 74,      /* body listen_pool, fds: the accept queue and the
					 listener's socket on the node's underlay (pooled
					 connections from other nodes), with federation:
					 bound, for the library to listen on */
	PW_MSG_VERBS_DEV_OK = 75,     /* body verbs_dev: the pod's device identity */
	PW_MSG_VERBS_QP_OK = 76,      /* body verbs_qp: the QP number given */
	PW_MSG_VERBS_PAIRED = 77,     /* seq 0; body verbs_paired, fds: the peer's arena,
					 its eventfd (VERBS_CONNECT) and its process's
					 service eventfd (VERBS_OPEN) */
	PW_MSG_VERBS_PAIRED_TCP = 78, /* seq 0; body verbs_paired (peer_slot 0), fd: a TCP
					 connection to the peer's process on another node,
					 carrying pw_wire_vmsg */

	/*
	 * Router to router, over TCP on the underlay (a byte stream: each
	 * message is read as a header, then len - 16 bytes). No fds.
	 */
	PW_PEER_HELLO = 128,	   /* body peer_hello; both ways, first */
	PW_PEER_AUTH = 129,	   /* body peer_auth; initiator, after the responder's HELLO */
	PW_PEER_ROUTES = 130,	   /* body peer_routes + prefix entries: "these live here" */
	PW_PEER_CONNECT = 131,	   /* body peer_connect; reply CONNECT_OK or CONNECT_ERR */
	PW_PEER_CONNECT_OK = 132,  /* body peer_connect_ok */
	PW_PEER_CONNECT_ERR = 133, /* body peer_connect_err */
	PW_PEER_POOL = 134,	   /* body peer_pool; reply POOL_OK or CONNECT_ERR */
	PW_PEER_POOL_OK = 135,	   /* body peer_pool_ok: where to dial, and the key */
	PW_PEER_VQP = 136,	   /* body peer_vqp: a queue pair of podwire0 (no reply) */
};

struct pw_wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len; /* header + body, bytes */
	uint32_t seq;
};

/* An IPv4 or IPv6 endpoint. */
struct pw_wire_addr {
	uint16_t family; /* AF_INET or AF_INET6 */
	uint16_t port;	 /* network order */
	uint32_t scope_id;
	uint8_t addr[16]; /* IPv4 in the first 4 bytes, network order */
};

struct pw_wire_prefix {
	uint16_t family;
	uint8_t len; /* prefix length in bits */
	uint8_t pad;
	uint8_t addr[16];
};

struct pw_wire_hello {
	uint32_t flags;
	uint32_t reserved;
};

struct pw_wire_hello_ok {
	uint32_t node_version;
	uint32_t count; /* pw_wire_prefix entries that follow */
};

struct pw_wire_listen {
	struct pw_wire_addr addr; /* as bound */
	int32_t backlog;
	uint32_t reserved;
};

struct pw_wire_connect {
	struct pw_wire_addr local; /* the address the socket will have (bound) */
	struct pw_wire_addr peer;  /* the destination */
};

/* After exec: the program holds the channel's socket (proof) and asks for
 * the rest of the connection again. */
struct pw_wire_reattach {
	uint64_t id;
};

/* POOL: dial @count connections to @peer, another node's pod, for later. */
#define PW_POOL_MAX 32u /* connections one POOL asks for, at most */
struct pw_wire_pool {
	struct pw_wire_addr peer;
	uint32_t count;
	uint32_t reserved;
};

/* Relay the connection @id whose channel socket comes along (proof). */
#define PW_RELAY_NOW 0x1u /* move bytes at once: nobody will take it over */
struct pw_wire_relay {
	uint64_t id;
	uint32_t flags;
	uint32_t reserved;
};

struct pw_wire_err {
	int32_t err; /* positive errno */
	uint32_t reserved;
};

struct pw_wire_conn {
	uint64_t id;
	struct pw_wire_addr local; /* what getsockname() returns */
	struct pw_wire_addr peer;  /* what getpeername() returns */
	uint32_t side;		   /* channel side of the receiver */
	uint32_t reserved;
};

/*
 * What the client of a pooled connection writes first, when the application
 * connects: who it is, sealed with the key of the listener it goes to, which
 * only the routers and that listener's processes hold. The server's library
 * accepts it from the listener's socket on the underlay, which the kernel
 * lets through with these bytes (in the SYN: TCP Fast Open; or after the
 * handshake: TCP_DEFER_ACCEPT), and checks the seal, and that the
 * connection comes from @via, port @sport. Addresses and ports in network
 * order.
 */
#define PW_POOL_KEY_LEN 16u
struct pw_wire_pool_token {
	uint32_t src;	/* the client pod's IPv4 address, network order */
	uint32_t dst;	/* the listener's address the client connected to */
	uint32_t via;	/* the client node's underlay address */
	uint16_t sport; /* the client's port, and its source port on the underlay */
	uint16_t dport;
	uint8_t tag[8]; /* SipHash-2-4(key, the 16 bytes before) */
};

/* The reply to POOL: @count connections, each an fd and a token (the
 * entries, in the fds' order) that starts it. @conn is what they share: its
 * local port is 0, each one's is its token's sport. One message for them
 * all: one sendmsg and one recvmsg, not one for each. */
struct pw_wire_conn_pool {
	struct pw_wire_conn conn;
	uint32_t count; /* 1..PW_POOL_MAX */
	uint32_t reserved;
};

/* LISTEN's reply with federation: the key pooled connections are sealed with. */
struct pw_wire_listen_pool {
	uint8_t key[PW_POOL_KEY_LEN];
};

/*
 * VERBS_DEV's reply: the identity of the pod's virtual RDMA device, which the
 * router gives from the netns the proof socket lives in (a pod cannot claim
 * another's). GID 0 is the pod's IPv4 address as a RoCE v2 GID
 * (::ffff:a.b.c.d); lid is its offset in the router's prefix, unique in the
 * cluster, or 0 when that does not fit a unicast LID; guid is the node GUID.
 * All in network order.
 */
struct pw_wire_verbs_dev {
	uint8_t gid[16];
	uint64_t guid;
	uint16_t lid;
	uint16_t pad;
	uint32_t reserved;
};

/* VERBS_OPEN: the layout of the caller's arena (PW_VARENA_VERSION): peers
 * read each other's, so the router takes only its own. */
struct pw_wire_verbs_open {
	uint32_t layout;
	uint32_t reserved;
};

/* VERBS_QP, VERBS_QP_OK, VERBS_QP_DEL. */
struct pw_wire_verbs_qp {
	uint32_t slot; /* the QP's slot in the caller's arena (request) */
	uint32_t qpn;  /* its number (reply; QP_DEL: which) */
};

/* VERBS_CONNECT: QP @qpn of the caller goes to RTR towards @dest_qpn at @dest
 * (an IPv4 pod address, network order), or, when @dest is 0, at the pod with
 * LID @dlid. */
struct pw_wire_verbs_connect {
	uint32_t qpn;
	uint32_t dest_qpn;
	uint32_t dest;
	uint32_t dlid;
};

/* VERBS_PAIRED: the caller's QP @qpn and the peer's @peer_qpn, in slot
 * @peer_slot of the peer's arena, are connected both ways. */
struct pw_wire_verbs_paired {
	uint32_t qpn;
	uint32_t peer_qpn;
	uint32_t peer_slot;
	uint32_t reserved;
};

/*
 * The cross-node transport of podwire0 (docs/RDMA.md): one TCP connection per
 * pair of connected QPs, between the two processes. Each message is this
 * header and, for SEND, WRITE and READ_RESP, @len bytes of data. Requests
 * (SEND ... FADD) go from the initiator to the target, which answers each,
 * in order: ACK (@len requests of the SEND and WRITE kinds, all with
 * @status), READ_RESP, ATOMIC_RESP (@arg: the value before). ERR: the
 * sender's QP went to the error state; it answers nothing more. Host order
 * (the nodes of one cluster share a byte order; the QPs' own numbers are
 * checked at the pairing).
 */
enum pw_vop {
	PW_VOP_SEND = 1,
	PW_VOP_SEND_IMM = 2,
	PW_VOP_WRITE = 3,
	PW_VOP_WRITE_IMM = 4,
	PW_VOP_READ = 5, /* @len bytes from @raddr */
	PW_VOP_CAS = 6,	 /* compare @arg, swap @arg2 */
	PW_VOP_FADD = 7, /* add @arg */
	PW_VOP_ACK = 16,
	PW_VOP_READ_RESP = 17,
	PW_VOP_ATOMIC_RESP = 18,
	PW_VOP_ERR = 19,
};

struct pw_wire_vmsg {
	uint8_t op;	/* PW_VOP_* */
	uint8_t status; /* responses: an ibv_wc_status */
	uint16_t reserved;
	uint32_t len;
	uint32_t rkey;
	uint32_t imm; /* network order, as ibv_send_wr.imm_data */
	uint64_t raddr;
	uint64_t arg, arg2;
};

/*
 * podwire0's connection manager (librdmacm's API, src/verbs/cm.c): the two
 * processes talk over a TCP connection the active side makes to the
 * listener's address and port. REQ (active: its QP), REP (passive: its QP),
 * RTU (active: ready), REJ (passive: refused), DREQ (either: disconnected).
 * Host order; @gid is the sender's GID 0.
 */
#define PW_CM_MAGIC    0x4d435750u /* "PWCM" in memory order */
#define PW_CM_PRIV_MAX 196u	   /* private data: IB CM's largest (REP) */

enum pw_cm_type {
	PW_CM_REQ = 1,
	PW_CM_REP = 2,
	PW_CM_RTU = 3,
	PW_CM_REJ = 4,
	PW_CM_DREQ = 5,
};

struct pw_wire_cm {
	uint32_t magic;
	uint16_t type;	   /* pw_cm_type */
	uint16_t priv_len; /* <= PW_CM_PRIV_MAX */
	uint32_t qpn, psn;
	uint8_t gid[16];
	uint8_t resp_res, init_depth, retry, rnr_retry;
	uint32_t reserved;
	uint8_t priv[PW_CM_PRIV_MAX];
};

struct pw_wire_status {
	uint32_t count; /* pw_wire_status_entry entries that follow */
	uint32_t total; /* entries the router has (count may be fewer) */
};

struct pw_wire_status_entry {
	uint64_t id;
	struct pw_wire_addr addr[2]; /* side 0 (connecting) and side 1 (accepting) */
	int32_t pid[2];		     /* 0 while unclaimed */
	uint64_t bytes[2];	     /* written by side 0, by side 1 */
	uint32_t state;		     /* PW_CONN_* */
	uint8_t window_log2[2];	     /* each side's ring window, log2 of bytes; 0: unknown */
	uint16_t reserved;
};

/*
 * A pod's network attachment, as CNI names it: (container id, interface).
 * Both strings are NUL-terminated inside their arrays; the decoder rejects
 * them otherwise.
 */
struct pw_wire_pod_key {
	char id[PW_WIRE_POD_ID_LEN];
	char ifname[PW_WIRE_POD_IFNAME_LEN];
};

/* POD_ADD: the attachment and its addresses (prefix len as configured). */
struct pw_wire_pod {
	struct pw_wire_pod_key key;
	uint32_t count; /* addr entries in use, at most PW_WIRE_POD_MAX_ADDRS */
	uint32_t flags; /* 0 */
	struct pw_wire_prefix addr[PW_WIRE_POD_MAX_ADDRS];
};

struct pw_wire_pods {
	uint32_t count; /* pw_wire_pod_entry entries that follow */
	uint32_t total; /* pods the router has (count may be fewer) */
};

struct pw_wire_pod_entry {
	struct pw_wire_pod pod;
	uint64_t netns_ino; /* inode of the pod's network namespace */
	int64_t since;	    /* registration time, seconds since the epoch */
};

/* Entries in one PODS_OK reply: as many as a packet holds. */
#define PW_WIRE_PODS_PAGE                                                                          \
	((PW_WIRE_MAX - sizeof(struct pw_wire_hdr) - sizeof(struct pw_wire_pods)) /                \
	 sizeof(struct pw_wire_pod_entry))

/* ---- router to router ---- */

#define PW_PEER_NAME_LEN  32u
#define PW_PEER_NONCE_LEN 16u
#define PW_PEER_MAC_LEN	  32u	/* HMAC-SHA256 */
#define PW_PEER_TOKEN_LEN 16u	/* written first on a data connection */
#define PW_PEER_MSG_MAX	  4096u /* largest peer message either side accepts */

/*
 * Mutual authentication with the cluster's shared secret S: the initiator
 * sends HELLO with its nonce and a zero mac; the responder answers HELLO with
 * mac = HMAC(S, "podwire-peer-r" | nonce_i | nonce_r | name_r); the initiator
 * checks it and sends AUTH with HMAC(S, "podwire-peer-i" | nonce_r | nonce_i |
 * name_i). Nothing else is accepted before that.
 */
struct pw_wire_peer_hello {
	char name[PW_PEER_NAME_LEN]; /* node name, NUL-terminated */
	uint8_t nonce[PW_PEER_NONCE_LEN];
	struct pw_wire_addr data; /* where this router accepts data connections */
	uint8_t mac[PW_PEER_MAC_LEN];
};

struct pw_wire_peer_auth {
	uint8_t mac[PW_PEER_MAC_LEN];
};

struct pw_wire_peer_routes {
	uint32_t count; /* pw_wire_prefix entries that follow; replaces earlier ones */
	uint32_t reserved;
};

/*
 * "Connect @src to @dst, a pod of yours; my data connection will come from
 * @data and start with @token." The responder connects to the pod's listener
 * before it answers, so a refused connection is an error here, not later.
 */
struct pw_wire_peer_connect {
	uint64_t req;
	uint8_t token[PW_PEER_TOKEN_LEN];
	struct pw_wire_addr src;
	struct pw_wire_addr dst;
	struct pw_wire_addr data;
};

struct pw_wire_peer_connect_ok {
	uint64_t req;
	uint64_t conn; /* the responder's connection id */
};

/* "@count pooled connections from @src, a pod of mine, to @dst, a pod of
 * yours: where do I dial them?" */
struct pw_wire_peer_pool {
	uint64_t req;
	struct pw_wire_addr src;
	struct pw_wire_addr dst;
	uint32_t count;
	uint32_t reserved;
};

/* "At my underlay address, @port: the listener's own socket there." */
struct pw_wire_peer_pool_ok {
	uint64_t req;
	uint16_t port; /* network order */
	uint16_t reserved;
	uint32_t count; /* granted */
	uint8_t key[PW_POOL_KEY_LEN];
};

/*
 * A queue pair of podwire0 connected across nodes. UP: "my pod's QP
 * @src_qpn at @src went to RTR towards your pod's @dst_qpn at @dst"; a
 * router pairs two QPs when it has both sides' UP. DIAL: "my data
 * connection for that pair comes from @data, starting with @token"; the side
 * whose (address, QP number) is lower dials, when it has paired them. GONE:
 * "@src_qpn at @src is no more". Addresses IPv4, network order.
 */
enum pw_peer_vqp_op {
	PW_PEER_VQP_UP = 1,
	PW_PEER_VQP_DIAL = 2,
	PW_PEER_VQP_GONE = 3,
};

struct pw_wire_peer_vqp {
	uint32_t op; /* pw_peer_vqp_op */
	uint32_t src, src_qpn;
	uint32_t dst, dst_qpn;
	uint32_t reserved;
	uint8_t token[PW_PEER_TOKEN_LEN];
	struct pw_wire_addr data;
};

struct pw_wire_peer_connect_err {
	uint64_t req;
	int32_t err; /* positive errno */
	uint32_t reserved;
};

enum pw_conn_state {
	PW_CONN_PENDING = 1, /* the server has not accepted yet */
	PW_CONN_OPEN = 2,
	PW_CONN_HALF = 3,   /* one side shut down writing */
	PW_CONN_CLOSED = 4, /* both sides closed; kept until reaped */
	PW_CONN_PARKED = 5, /* closed in order, the channel kept for the next
			       connection between the same two ends */
};

_Static_assert(sizeof(struct pw_wire_hdr) == 16, "hdr");
_Static_assert(sizeof(struct pw_wire_addr) == 24, "addr");
_Static_assert(sizeof(struct pw_wire_prefix) == 20, "prefix");
_Static_assert(sizeof(struct pw_wire_hello) == 8, "hello");
_Static_assert(sizeof(struct pw_wire_hello_ok) == 8, "hello_ok");
_Static_assert(sizeof(struct pw_wire_listen) == 32, "listen");
_Static_assert(sizeof(struct pw_wire_connect) == 48, "connect");
_Static_assert(sizeof(struct pw_wire_err) == 8, "err");
_Static_assert(sizeof(struct pw_wire_reattach) == 8, "reattach");
_Static_assert(sizeof(struct pw_wire_pool) == 32, "pool");
_Static_assert(sizeof(struct pw_wire_pool_token) == 24, "pool token");
_Static_assert(offsetof(struct pw_wire_pool_token, tag) == 16, "pool token tag");
_Static_assert(sizeof(struct pw_wire_conn_pool) == 72, "conn pool");
_Static_assert(PW_POOL_MAX <= PW_WIRE_MAX_FDS, "a CONN_POOL carries a POOL's connections");
_Static_assert(offsetof(struct pw_wire_conn_pool, count) == 64, "conn pool count");
_Static_assert(sizeof(struct pw_wire_listen_pool) == PW_POOL_KEY_LEN, "listen pool");
_Static_assert(sizeof(struct pw_wire_verbs_dev) == 32, "verbs dev");
_Static_assert(sizeof(struct pw_wire_verbs_open) == 8, "verbs open");
_Static_assert(sizeof(struct pw_wire_verbs_qp) == 8, "verbs qp");
_Static_assert(sizeof(struct pw_wire_verbs_connect) == 16, "verbs connect");
_Static_assert(sizeof(struct pw_wire_verbs_paired) == 16, "verbs paired");
_Static_assert(offsetof(struct pw_wire_verbs_dev, guid) == 16, "verbs dev guid");
_Static_assert(offsetof(struct pw_wire_verbs_dev, lid) == 24, "verbs dev lid");
_Static_assert(sizeof(struct pw_wire_peer_pool) == 64, "peer pool");
_Static_assert(sizeof(struct pw_wire_peer_vqp) == 64, "peer vqp");
_Static_assert(offsetof(struct pw_wire_peer_vqp, token) == 24, "peer vqp token");
_Static_assert(sizeof(struct pw_wire_vmsg) == 40, "vmsg");
_Static_assert(sizeof(struct pw_wire_cm) == 236, "cm");
_Static_assert(offsetof(struct pw_wire_cm, priv) == 40, "cm priv");
_Static_assert(offsetof(struct pw_wire_vmsg, raddr) == 16, "vmsg raddr");
_Static_assert(offsetof(struct pw_wire_vmsg, arg2) == 32, "vmsg arg2");
_Static_assert(sizeof(struct pw_wire_peer_pool_ok) == 32, "peer pool ok");
_Static_assert(sizeof(struct pw_wire_conn) == 64, "conn");
_Static_assert(sizeof(struct pw_wire_status) == 8, "status");
_Static_assert(sizeof(struct pw_wire_status_entry) == 88, "status entry");
_Static_assert(sizeof(struct pw_wire_pod_key) == 88, "pod key");
_Static_assert(sizeof(struct pw_wire_pod) == 256, "pod");
_Static_assert(sizeof(struct pw_wire_pods) == 8, "pods");
_Static_assert(sizeof(struct pw_wire_pod_entry) == 272, "pod entry");
_Static_assert(offsetof(struct pw_wire_pod, addr) == 96, "pod.addr");
_Static_assert(sizeof(struct pw_wire_peer_hello) == 104, "peer hello");
_Static_assert(sizeof(struct pw_wire_peer_auth) == 32, "peer auth");
_Static_assert(sizeof(struct pw_wire_peer_routes) == 8, "peer routes");
_Static_assert(sizeof(struct pw_wire_peer_connect) == 96, "peer connect");
_Static_assert(sizeof(struct pw_wire_peer_connect_ok) == 16, "peer connect ok");
_Static_assert(sizeof(struct pw_wire_peer_connect_err) == 16, "peer connect err");
_Static_assert(sizeof(struct pw_wire_hdr) + sizeof(struct pw_wire_peer_routes) +
			       PW_WIRE_MAX_PREFIXES * sizeof(struct pw_wire_prefix) <=
		       PW_PEER_MSG_MAX,
	       "a route list fits a peer message");
_Static_assert(offsetof(struct pw_wire_conn, local) == 8, "conn.local");
_Static_assert(offsetof(struct pw_wire_status_entry, bytes) == 64, "entry.bytes");
_Static_assert(offsetof(struct pw_wire_status_entry, window_log2) == 84, "entry.window_log2");
_Static_assert(sizeof(struct pw_wire_hdr) + sizeof(struct pw_wire_status) +
			       PW_WIRE_STATUS_PAGE * sizeof(struct pw_wire_status_entry) <=
		       PW_WIRE_MAX,
	       "a status page fits a packet");

/*
 * ---- memif messages (src/memif, issue 13) ----
 *
 * The control protocol of memif 2.0 (DPDK's net_memif, VPP): over a Unix
 * SOCK_SEQPACKET socket, every message 128 bytes, a 16-bit type then its
 * body, packed, in host order; fds in SCM_RIGHTS. The server sends HELLO;
 * the client answers INIT, ADD_REGION (with the region's fd) for each
 * region, ADD_RING (with its interrupt eventfd) for each ring, CONNECT;
 * the server acknowledges each with ACK and the last with CONNECTED.
 * Either side may send DISCONNECT. Names are byte arrays, not always
 * NUL-terminated.
 */
#define PW_MEMIF_VERSION       0x0200u /* 2.0 */
#define PW_MEMIF_MSG_SIZE      128u
#define PW_MEMIF_NAME	       32u
#define PW_MEMIF_SECRET	       24u
#define PW_MEMIF_REASON	       96u
#define PW_MEMIF_RING_S2M      1u  /* ADD_RING flags: client to server */
#define PW_MEMIF_LOG2_RING_MAX 14u /* the largest ring: 2^14 descriptors */

enum pw_memif_type {
	PW_MEMIF_NONE,
	PW_MEMIF_ACK,
	PW_MEMIF_HELLO,	     /* server -> client */
	PW_MEMIF_INIT,	     /* client -> server */
	PW_MEMIF_ADD_REGION, /* client -> server, fd: the region (a memfd) */
	PW_MEMIF_ADD_RING,   /* client -> server, fd: the ring's interrupt eventfd */
	PW_MEMIF_CONNECT,    /* client -> server */
	PW_MEMIF_CONNECTED,  /* server -> client */
	PW_MEMIF_DISCONNECT, /* either */
};

enum pw_memif_mode { PW_MEMIF_MODE_ETHERNET, PW_MEMIF_MODE_IP, PW_MEMIF_MODE_PUNT_INJECT };

struct __attribute__((packed)) pw_memif_hello {
	uint8_t name[PW_MEMIF_NAME];
	uint16_t min_version, max_version;
	uint16_t max_region, max_m2s_ring, max_s2m_ring; /* the highest index of each */
	uint8_t max_log2_ring_size;
};

struct __attribute__((packed)) pw_memif_init {
	uint16_t version;
	uint32_t id; /* the interface the client asks for */
	uint8_t mode;
	uint8_t secret[PW_MEMIF_SECRET];
	uint8_t name[PW_MEMIF_NAME];
};

struct __attribute__((packed)) pw_memif_add_region {
	uint16_t index;
	uint64_t size;
};

struct __attribute__((packed)) pw_memif_add_ring {
	uint16_t flags; /* PW_MEMIF_RING_S2M */
	uint16_t index;
	uint16_t region; /* the region the ring is in ... */
	uint32_t offset; /* ... at this offset */
	uint8_t log2_ring_size;
	uint16_t private_hdr_size;
};

struct __attribute__((packed)) pw_memif_name_msg { /* CONNECT, CONNECTED */
	uint8_t if_name[PW_MEMIF_NAME];
};

struct __attribute__((packed)) pw_memif_disconnect {
	uint32_t code;
	uint8_t reason[PW_MEMIF_REASON];
};

struct __attribute__((packed)) pw_memif_msg {
	uint16_t type; /* enum pw_memif_type */
	union __attribute__((packed)) {
		struct pw_memif_hello hello;
		struct pw_memif_init init;
		struct pw_memif_add_region add_region;
		struct pw_memif_add_ring add_ring;
		struct pw_memif_name_msg connect, connected;
		struct pw_memif_disconnect disconnect;
		uint8_t raw[PW_MEMIF_MSG_SIZE - 2];
	};
};

_Static_assert(sizeof(struct pw_memif_msg) == PW_MEMIF_MSG_SIZE, "memif message");
_Static_assert(offsetof(struct pw_memif_msg, hello) == 2, "memif body");
_Static_assert(sizeof(struct pw_memif_hello) == 43, "memif hello");
_Static_assert(offsetof(struct pw_memif_hello, min_version) == 32, "memif hello min_version");
_Static_assert(offsetof(struct pw_memif_hello, max_log2_ring_size) == 42, "memif hello log2");
_Static_assert(sizeof(struct pw_memif_init) == 63, "memif init");
_Static_assert(offsetof(struct pw_memif_init, id) == 2, "memif init id");
_Static_assert(offsetof(struct pw_memif_init, mode) == 6, "memif init mode");
_Static_assert(offsetof(struct pw_memif_init, secret) == 7, "memif init secret");
_Static_assert(offsetof(struct pw_memif_init, name) == 31, "memif init name");
_Static_assert(sizeof(struct pw_memif_add_region) == 10, "memif add_region");
_Static_assert(offsetof(struct pw_memif_add_region, size) == 2, "memif add_region size");
_Static_assert(sizeof(struct pw_memif_add_ring) == 13, "memif add_ring");
_Static_assert(offsetof(struct pw_memif_add_ring, offset) == 6, "memif add_ring offset");
_Static_assert(offsetof(struct pw_memif_add_ring, log2_ring_size) == 10, "memif add_ring log2");
_Static_assert(offsetof(struct pw_memif_add_ring, private_hdr_size) == 11,
	       "memif add_ring private_hdr_size");
_Static_assert(sizeof(struct pw_memif_disconnect) == 100, "memif disconnect");

#endif /* PODWIRE_WIRE_H */
