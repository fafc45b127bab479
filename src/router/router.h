/* SPDX-License-Identifier: MIT */
/*
 * podwired's internal interfaces between its files. Private to src/router.
 *
 *   main.c       options, setup and teardown, signals and the tick
 *   loop.c       the epoll loop: each watched fd carries its own handler
 *   client.c     local clients and their requests: the dispatch table
 *   requests.c   the requests about existing connections, listeners, status
 *   connect.c    CONNECT and CLAIM: connection setup, local and cross-node
 *   conns.c      the connection table
 *   listeners.c  the listener registry and which listener a connect reaches
 *   netns.c      sockets and their network namespaces
 *   metrics.c    counters, and Prometheus text over HTTP
 *   pods.c       the pod table (the CNI plugin's registrations)
 *   relay.c      connections handed to another process, relayed
 *   diag.c       which Unix sockets still exist (sock_diag)
 *   peer_link.c  federation: configuration, authenticated links with other
 *                nodes' routers, their routes
 *   peer_conn.c  cross-node connections over those links
 *   verbs.c      the virtual RDMA device's identity
 *
 * Single-threaded: every function runs on the loop's thread.
 */
#ifndef PW_ROUTER_H
#define PW_ROUTER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <podwire/wire.h>

#include "../common/netns.h"
#include "proto.h"

/* ---- loop.c ---- */

struct pw_ev;
/* What to do when a watched fd is ready; @events as epoll_wait(2) has them. */
typedef void (*pw_ev_fn)(struct pw_ev *ev, uint32_t events);

/* What an epoll event points at: the first member of each watched object,
 * so that its handler can cast back to the object. */
struct pw_ev {
	pw_ev_fn fn;
};

int pw_loop_open(void);
void pw_loop_close(void);
int pw_loop_add(int fd, uint32_t events, struct pw_ev *ev);
int pw_loop_mod(int fd, uint32_t events, struct pw_ev *ev);
/*
 * Stop watching @fd, whose events point at @ev. Events of @ev that the
 * current round of epoll_wait(2) returned and the loop has not handled yet
 * are dropped: the caller may free the object once this returns.
 */
void pw_loop_del(int fd, struct pw_ev *ev);
/* Call the handler of each ready fd until pw_loop_stop(). Errors: of
 * epoll_wait(2) (logged). */
int pw_loop_run(void);
void pw_loop_stop(void);

/* ---- main.c and requests.c: configuration ---- */

#define PW_TICK_MS 200

struct pw_router_cfg {
	const char *socket_path;
	const char *metrics;				      /* "IP:PORT", or NULL */
	struct pw_wire_prefix prefixes[PW_WIRE_MAX_PREFIXES]; /* IPv4, host bits clear */
	unsigned nprefixes;
	uint32_t ring_size;
	bool foreground;
	/* Per pod (the connecting netns): connections not yet accepted, and the
	 * shared memory of its channels. Past either, connects use the kernel. */
	unsigned pod_max_pending;
	uint64_t pod_max_memory;
};
#define PW_POD_MAX_PENDING_DEFAULT 1024u
#define PW_POD_MAX_MEMORY_DEFAULT  (4ull << 30)
extern struct pw_router_cfg pw_router_cfg;

/*
 * --prefix: the prefix table HELLO hands to the library, which accelerates
 * connects to those destinations only. IPv4 prefixes separated by commas or
 * spaces, host bits cleared, a bare address being a /32. Errors: -EINVAL an
 * item is malformed, there are none or too many (the table is unchanged).
 */
int pw_router_prefixes_parse(const char *s);

/* ---- client.c: local clients and the dispatch of their requests ---- */

struct pw_vclient;

struct pw_client {
	struct pw_ev ev;
	int fd;
	pid_t pid;
	uid_t uid;
	struct pw_vclient *verbs; /* VERBS_OPEN: its process's RDMA device (verbs.c) */
	struct pw_client *next;
};

/*
 * A request handler. The descriptors that came with the request are in @fds
 * (-1 past the number its type carries: pw_msg_parse() checked it).
 *
 * Who closes them: the dispatcher. It closes every fd still in @fds after the
 * handler returns (and after the ERR reply, if any). A handler that keeps an
 * fd (RELAY gives it to the relay), or must close one before it answers
 * (LISTEN), sets the slot to -1; it never closes a slot it leaves in place.
 * What a handler sends with SCM_RIGHTS the kernel copies: sending takes
 * nothing.
 *
 * Returns 0 when answered, PW_REQUEST_LATER when the answer comes later (the
 * handler keeps @m->seq), or a negative errno: with .reply_err the dispatcher
 * answers ERR with it; without, it is the failure to send the handler's own
 * answer, and the client is dropped.
 */
typedef int (*pw_request_fn)(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
#define PW_REQUEST_LATER 1

struct pw_request {
	uint16_t type;
	bool reply_err; /* a negative return is answered with ERR */
	pw_request_fn fn;
};

/* The table podwired serves. */
extern const struct pw_request pw_requests[];
extern const size_t pw_nrequests;

/* Open the control socket @path (its parent directories too) and watch it.
 * Errors: -EADDRINUSE a live router serves it; of socket(2), bind(2). */
int pw_clients_listen(const char *path);
/* Drop every client and close the control socket (removing @path). */
void pw_clients_teardown(const char *path);
unsigned pw_clients_count(void);

/*
 * Read one request of @c, if one is waiting, and serve it from @table (@n
 * entries). A malformed request, or a type without an entry, is counted and
 * logged and drops the client (no reply: the sender does not speak the
 * protocol). Returns <0 when the caller must drop the client.
 */
int pw_client_serve(struct pw_client *c, const struct pw_request *table, size_t n);
/* Forget @c and its connects in flight. */
void pw_client_drop(struct pw_client *c);
int pw_client_reply_err(struct pw_client *c, uint32_t seq, int err);
/* OK when @r is 0, else ERR with -@r. */
int pw_client_reply(struct pw_client *c, uint32_t seq, int r);

/* ---- requests.c and connect.c: the handlers ---- */

int pw_request_hello(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_listen(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_status(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_reattach(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_relay(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_take(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_requeue(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_connect(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_pool(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);

/* ---- verbs.c: the virtual RDMA device's identity ---- */

/* VERBS_DEV: the caller's pod's device identity; -ENOENT when its netns
 * holds no address in our prefixes. */
int pw_request_verbs_dev(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
/* VERBS_OPEN, VERBS_QP and VERBS_QP_DEL, VERBS_CONNECT: a process's device,
 * its queue pairs' numbers, and pairing two that point at each other. */
int pw_request_verbs_open(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_verbs_qp(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
int pw_request_verbs_connect(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);
void pw_verbs_metrics(FILE *f);
/* @c is gone: its queue pairs and arena with it. */
void pw_verbs_client_gone(struct pw_client *c);
/* The identity of the pod at @addr (network order) in prefix @p. */
void pw_verbs_identity(uint32_t addr, const struct pw_wire_prefix *p,
		       struct pw_wire_verbs_dev *ret);

/* Connects and pool asks of @c to other nodes' pods, still waiting: forget
 * them. */
void pw_rconnects_drop_client(const struct pw_client *c);

/*
 * Called by peer_conn.c for another node's CONNECT: if a listener of this node
 * takes @dst, keep the connection pending for its data connection, which
 * then goes into that listener's queue as CONN_TCP. Returns 0 and the
 * connection id, or -errno (-ECONNREFUSED: no accelerated listener). Never
 * waits.
 */
int pw_router_remote_conn(const struct sockaddr_in *src, const struct sockaddr_in *dst,
			  uint64_t *ret_id);
/* The data connection of remote connection @id arrived and proved itself:
 * takes @sock. */
void pw_router_remote_data(uint64_t id, int sock);
/* The data connection of @id will not come: forget the connection. */
void pw_router_remote_drop(uint64_t id);

/* ---- conns.c: the connection table ---- */

struct pw_conn {
	uint64_t id;
	uint32_t state;	   /* PENDING until side 1 attached (pw_conns_refresh) */
	bool remote;	   /* from another node: waiting for its data connection */
	uint64_t listener; /* the serial of the listener it was handed to */
	int memfd;	   /* kept: a program may re-attach after exec */
	ino_t sock_ino[2]; /* the socketpair ends: proof for re-attach */
	bool gone[2];	   /* that end's socket no longer exists */
	dev_t sock_dev;
	struct pw_wire_addr addr[2]; /* IPv4 */
	int fam[2];		     /* each side's socket family: it sees addr[] in it */
	pid_t pid[2];
	struct pw_pod_acct *acct; /* what the connecting pod is charged; NULL: nothing */
	bool acct_pending;	  /* counted in acct->pending */
	uint32_t ring_size;	  /* of its channel: what acct->memory holds for it */
	bool has_vip;		  /* side 0 connected to a Service: */
	struct pw_wire_addr vip;  /* its ClusterIP:port, side 0's peer */
	struct pw_conn *next;
};

/* A new pending connection with the next id, all fds -1; NULL: no memory. */
struct pw_conn *pw_conn_new(void);
/* Put @cn in the table. */
void pw_conn_insert(struct pw_conn *cn);
/* Take @cn out of the table and free it. */
void pw_conn_remove(struct pw_conn *cn);
/* Free a connection that is not in the table (closes its fds). */
void pw_conn_free(struct pw_conn *cn);
/* Side 1 took the connection: it is open, and no longer pending. */
void pw_conn_unpend(struct pw_conn *cn);
/* Charge @cn, pending and holding a channel, to the pod in netns @cookie,
 * and choose its channel's ring (cn->ring_size): ring_size while the pod's
 * channels hold at most half of pod_max_memory, then the smallest ring that
 * still widens (PW_RING_WINDOW_START), so that a pod with many connections
 * keeps them on shared memory. Errors: -EAGAIN that pod has pod_max_pending
 * connections pending, -ENOBUFS its channels would pass pod_max_memory (each
 * counted in pw_router_stats), -ENOMEM. The charge goes when side 1 attaches
 * (pending) and with @cn (memory). */
int pw_conn_charge(struct pw_conn *cn, uint64_t cookie);
struct pw_conn *pw_conn_by_id(uint64_t id);
/* The connection @id (0: any) whose channel socket @fd is, and which side. */
struct pw_conn *pw_conn_by_sock(uint64_t id, int fd, unsigned *ret_side);
/* The CONN body for @side: its own address and its peer's, in its family. */
struct pw_wire_conn pw_conn_body(const struct pw_conn *cn, unsigned side);
/* The router's side of the shared-memory transport (shm.c). */
/* An armed channel (pw_chan_create) of @ring_size bytes per direction, from
 * the pool if it has one of that size, and its socket ends' identities.
 * Errors: those of pw_chan_create. */
struct pw_chan_ids {
	ino_t ino[2]; /* of socket end 0 and 1 (0: unknown) */
	dev_t dev;
};
int pw_conn_chan_make(uint32_t ring_size, int *ret_memfd, int ret_sock[2],
		      struct pw_chan_ids *ret_ids);
/* Top the pool of channels up (between events); drain it (teardown). */
void pw_conn_chan_pool_fill(void);
void pw_conn_chan_pool_drain(void);
/* The accepting side never came: its peer reads a reset. */
void pw_conn_chan_reset(struct pw_conn *cn);
/* @cn's state; if @ret_bytes, what each side wrote so far; if @ret_win, each
 * side's ring window as log2 of bytes, 0 where unknown (one read of the
 * channel for all). */
uint32_t pw_conn_state(const struct pw_conn *cn, uint64_t ret_bytes[2], uint8_t ret_win[2]);
/* Side 1 of @cn took its end (or it was reset for it). */
bool pw_conn_attached(const struct pw_conn *cn);
/* Side 1 of @cn has not attached, closed nor parked (a parked channel that
 * its client claimed: reuse). */
bool pw_conn_unattached(const struct pw_conn *cn);
/* Pending connections whose side 1 attached are open. */
void pw_conns_refresh(void);
/* The listener @serial is closed: the connections in its queue that no
 * server took are reset (their clients read ECONNRESET). */
void pw_conns_listener_gone(uint64_t serial);
/* Forget connections that both ends closed or whose sockets are gone. */
void pw_conns_reap(void);
/* The status page: up to @max entries, and how many there are. */
void pw_conns_status(struct pw_wire_status_entry *ents, uint32_t max, struct pw_wire_status *ret);
/* For the metrics: open and pending connections, bytes carried ever. */
void pw_conns_totals(unsigned *ret_open, unsigned *ret_pending, uint64_t *ret_bytes);
void pw_conns_teardown(void);

/* ---- listeners.c: the listener registry ---- */

/* A registered listening socket and its accept queue (see listeners.c). */
struct pw_listener {
	struct pw_ev ev;	  /* first: the loop's handle on queue (hang-ups) */
	uint64_t serial;	  /* connections handed to it remember it */
	uint64_t cookie;	  /* netns */
	int family;		  /* of the listening socket, so of what accept() returns */
	int queue;		  /* our end of the accept queue, nonblocking */
	int probe;		  /* wildcard: a UDP socket inside the netns, else -1 */
	struct in_addr local_dst; /* the last address probe looked up, */
	bool local_yes;		  /* whether it is local there, */
	uint64_t local_until;	  /* and until when that answer holds */
	struct sockaddr_in addr;
	in_port_t uport;	       /* its socket on the underlay (pools), or 0 */
	uint8_t ukey[PW_POOL_KEY_LEN]; /* what pooled connections to it are sealed with */
	pid_t pid;		       /* who registered it (logs) */
	unsigned backlog;	       /* connections it may have queued, as the kernel's */
	unsigned queued;	       /* handed to it and not yet taken */
	uint64_t recount_ns;	       /* when queued was last checked against the channels */
	struct pw_listener *next;
};

/*
 * Register the listening socket @fd of @c (borrowed; listen(2) @backlog) and
 * give the library's end of its accept queue in *ret_queue; with
 * federation, and for an address other nodes reach, also its socket on the
 * underlay in *ret_ul (pooled connections; else -1) and the key they are
 * sealed with in @ret_key. Errors: -ENOTSOCK,
 * -EPROTONOSUPPORT, -EINVAL not a listening TCP socket (pw_sock_check_tcp);
 * -ENOMEM; of socketpair(2), entering its netns and the underlay socket.
 */
int pw_listener_add(const struct pw_client *c, int fd, int backlog, int *ret_queue, int *ret_ul,
		    uint8_t ret_key[PW_POOL_KEY_LEN]);
/*
 * The listener a connect from netns @cookie to @dst reaches, or NULL: same
 * port, bound to @dst's address before the wildcard on an address of its
 * netns, and for a loopback @dst the same netns. Among equals (SO_REUSEPORT)
 * @hash chooses.
 */
struct pw_listener *pw_listener_pick(uint64_t cookie, const struct sockaddr_in *dst, uint32_t hash);
/* The listener of @serial, if it is still open. */
struct pw_listener *pw_listener_by_serial(uint64_t serial);
/*
 * Queue one connection for @l's accept(): a message of @type with @body,
 * then @extra (@elen bytes: the rest of a longer body), and @fds (copied;
 * the caller still closes them). Errors: -EAGAIN the queue is full (its
 * backlog of connections not yet accepted, as the kernel's); -EPIPE the
 * listener is closed (and now removed: @l is freed); of sendmsg(2).
 */
int pw_listener_deliver(struct pw_listener *l, uint16_t type, const struct pw_wire_conn *body,
			const void *extra, size_t elen, const int *fds, unsigned nfds);
/* A connection handed to listener @serial was taken (or reset). */
void pw_listener_unqueue(uint64_t serial);
unsigned pw_listeners_count(void);
void pw_listeners_teardown(void);

/* ---- netns.c: sockets and network namespaces ---- */

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int pw_sock_cookie(int fd, uint64_t *ret);
/* @fd is TCP speaking IPv4 (AF_INET, or AF_INET6 not V6ONLY); @listening: 1
 * listening, 0 not, -1 either. Returns its family. */
int pw_sock_check_tcp(int fd, int listening);
/* A socket's own (@peer false) or peer's address, as IPv4 (see addr.h). */
int pw_sock_addr4(int fd, bool peer, struct sockaddr_in *ret);
/* The netns of socket @fd, as an fd. */
int pw_sock_netns(int fd);
/* The source address the kernel would pick in @netns to reach @dst. */
int pw_netns_source(int netns, const struct sockaddr_in *dst, struct sockaddr_in *ret);
/* A socket of @type (SOCK_DGRAM...; may carry SOCK_NONBLOCK) made inside
 * @netns, close-on-exec. Errors: of setns(2) and socket(2). */
int pw_netns_socket(int netns, int type);

/* ---- metrics.c ---- */

struct pw_router_stats {
	uint64_t connects, accelerated, fallbacks, claims, bad_msgs, remote;
	uint64_t limit_pending, limit_memory; /* connects a per-pod limit sent to the kernel */
	uint64_t limit_pool;		      /* pool requests over a pod's budget (PW_POOL_RATE) */
	uint64_t requeued; /* claimed parked channels a server gave back (reuse) */
};
extern struct pw_router_stats pw_router_stats;

/* Serve the metrics on "IP:PORT". Errors: -EINVAL bad @spec; of socket(2). */
int pw_metrics_open(const char *spec);
void pw_metrics_close(void);

/* ---- services.c: Kubernetes Services (--kube-services) ---- */

struct pw_svc_entry {
	struct sockaddr_in vip; /* ClusterIP and port (TCP) */
	uint32_t affinity_s;	/* sessionAffinity ClientIP's timeout; 0: none */
	uint32_t be, nbe;	/* its ready backends: table->be[be .. be + nbe) */
};

struct pw_svc_table {
	struct pw_svc_entry *e;
	unsigned n;
	struct sockaddr_in *be;
	unsigned nbe;
};

void pw_svc_table_free(struct pw_svc_table *t);
/* Put @t's entries in the order pw_svc_resolve() searches (before set). */
void pw_svc_table_sort(struct pw_svc_table *t);
/* Use @t from now on (taken; the previous table is freed). */
void pw_svc_table_set(struct pw_svc_table *t);
/*
 * Is @dst a Service's ClusterIP:port? 1: yes, and @dst is now one of its
 * ready backends (the client's previous one under sessionAffinity ClientIP,
 * else at random), *ret_vip the Service's address; 0: not a Service;
 * -ECONNREFUSED: a Service without ready endpoints.
 */
int pw_svc_resolve(const struct sockaddr_in *client, struct sockaddr_in *dst,
		   struct sockaddr_in *ret_vip);
bool pw_svc_is(const struct sockaddr_in *dst);
void pw_svc_metrics(FILE *f);

/* ---- pods.c: the pod table ---- */

/*
 * Handle a pod-registry request (POD_ADD, POD_DEL or PODS) from @c and send
 * the reply. @fds[0] is the netns that came with POD_ADD (borrowed: the table
 * keeps its own copy). Changes are refused (EPERM) unless the peer is uid 0
 * in the router's own network namespace, where runtimes run CNI plugins: a
 * pod cannot register addresses, even its own.
 * Returns 0, or the error of sending the reply (the caller drops the client).
 */
int pw_request_pods(struct pw_client *c, const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS]);

/* ---- diag.c ---- */

/* The inodes of every Unix socket of this network namespace, sorted, from
 * the kernel's socket diagnostics (free *ret). Errors: of the netlink socket. */
int pw_diag_unix_inodes(uint32_t **ret, size_t *ret_n);
bool pw_diag_has(const uint32_t *v, size_t n, uint32_t ino);

/* ---- relay.c: connections handed to another process (SCM_RIGHTS) ---- */

/*
 * Relay side @side of connection @id: map the channel in @memfd (not taken)
 * and use @sock, the socket the sender proved it holds (taken, also on
 * failure). Returns 0 and, in *ret_app, the kernel stream end to pass on.
 * @now: move bytes at once (nobody will take the channel over), not after
 * the grace period. Errors: -EAGAIN PW_RELAY_MAX relays already; of
 * socketpair(2) and pw_chan_open().
 */
int pw_relay_start(uint64_t id, int memfd, int sock, unsigned side, bool now, int *ret_app);
/*
 * @app is the passed end of a relay's stream: if the relay has moved no byte,
 * end it and give the channel's socket to the caller (*ret_sock, to send and
 * close). Errors: -ENOENT not a relay's; -EBUSY bytes moved, it stays relayed.
 */
int pw_relay_take(int app, uint64_t *ret_id, unsigned *ret_side, int *ret_sock);
void pw_relays_teardown(void);
void pw_relays_metrics(FILE *f);

/* ---- peer_link.c and peer_conn.c: federation ---- */

struct pw_peers_cfg {
	const char *node_name; /* NULL: the host name */
	const char *listen;    /* "IP:PORT" on the underlay; NULL: federation off */
	const char *peers;     /* "IP:PORT,..." other routers to dial */
	const char *secret_file;
	const char *pod_cidrs; /* "CIDR,..." pods of this node, advertised */
	bool discover;	       /* peers come from pw_peers_set() (discover.c) */
};

/* Validate @cfg and open the underlay listener. -EINVAL with a logged reason. */
int pw_peers_setup(const struct pw_peers_cfg *cfg);
void pw_peers_teardown(void);
bool pw_peers_enabled(void);
/* Every PW_TICK_MS: dial missing peers, expire what waited too long. */
void pw_peers_tick(void);
void pw_peers_metrics(FILE *f);
/*
 * Replace the routers to dial with @dial (n entries) and, when @nroutes >= 0,
 * this node's advertised pod prefixes with @routes (sent again to every peer
 * if they changed). Links with routers no longer listed are closed when the
 * peers are discovered. Returns 0, -ENOTCONN (federation off), -E2BIG.
 */
int pw_peers_set(const struct sockaddr_in *dial, unsigned n, const struct pw_wire_prefix *routes,
		 int nroutes);

/* Routers one router dials at most. */
#define PW_PEER_MAX_DIAL 256

/*
 * Peers from the API server (discover.c): watch the Node objects with the
 * kubeconfig (NULL: $KUBECONFIG, in-cluster, ~/.kube/config) from a thread
 * and give the loop, with pw_peers_set(), every other Ready node's
 * InternalIP at @port, and, with @own_routes, the spec.podCIDRs of the node
 * named @self. Returns 0, -EINVAL (no usable configuration; logged), -errno.
 */
int pw_disc_start(const char *kubeconfig, const char *self, uint16_t port, bool own_routes);
/*
 * Services from the same API server (discover.c): watch Services and
 * Endpoints and hand the loop each new table (pw_svc_table_set). Call after
 * pw_disc_start() when both run, or alone. Returns as pw_disc_start().
 */
int pw_disc_services_start(const char *kubeconfig);
/* Stop the thread and free; harmless when never started. */
void pw_disc_stop(void);

/*
 * A local client connects @src to @dst, which no listener on this node has.
 * If a peer advertises @dst, ask it; @done is called exactly once, later,
 * with a connected kernel socket (which it takes) or -errno, and the remote
 * connection id. Returns 0 then, or -ENETUNREACH: no peer has @dst.
 */
typedef void (*pw_peers_done_fn)(void *ctx, int sock, uint64_t conn);
int pw_peers_connect(const struct sockaddr_in *src, const struct sockaddr_in *dst,
		     pw_peers_done_fn done, void *ctx);
/*
 * @n connections for a pool from @src to @dst: ask the peer that advertises
 * @dst where its listener takes them (PEER_POOL), then dial them there,
 * each with a token sealed with the listener's key. @done is called exactly
 * once, later, with how many were dialled (still connecting; it takes
 * @socks) and their tokens, or -errno. Returns 0 then, or -ENETUNREACH: no
 * peer has @dst; -ENOMEM; of pw_peer_link_send().
 */
typedef void (*pw_peers_pool_fn)(void *ctx, int n, const int socks[],
				 const struct pw_wire_pool_token toks[]);
int pw_peers_pool_ask(const struct sockaddr_in *src, const struct sockaddr_in *dst, unsigned n,
		      pw_peers_pool_fn done, void *ctx);
/*
 * A socket on our underlay address for a pod's listener (pooled connections
 * from other nodes), bound, for the pod's library to listen on once it has
 * the listener's options (they pass to what it accepts): it will take a SYN
 * with data (TCP Fast Open, no cookie, a queue of @backlog), and wake its
 * accept() only once the token is there (TCP_DEFER_ACCEPT). Its port in
 * *ret_port. Errors: of socket(2), bind(2), setsockopt(2).
 */
int pw_peers_pool_listener(unsigned backlog, in_port_t *ret_port);
/* Have the node's kernel take and send data in SYNs for the sockets that ask
 * (net.ipv4.tcp_fastopen |= 3); a warning if it cannot. */
void pw_peers_fastopen(void);
/* @ctx is going away: its pending connects end without calling @done. */
void pw_peers_cancel(const void *ctx);
struct pw_peer_link;
/*
 * The data connection of a pair of podwire0's queue pairs (verbs.c), from
 * this side: send DIAL (@body's pair; its op, token and data are filled
 * here) to the peer that advertises body->dst, and dial it. @done as for
 * pw_peers_connect() (conn 0). Returns 0, or -ENETUNREACH, -ENOMEM, errors
 * of socket(2), bind(2), connect(2), pw_peer_link_send().
 */
int pw_peers_vqp_dial(struct pw_wire_peer_vqp *body, pw_peers_done_fn done, void *ctx);
/*
 * The other side's: a connection from @from (which must be the host of @l's
 * peer) that starts with @token is handed to @fn with @key; one that never
 * comes is forgotten after 5 s. 0, -EACCES, -ENOMEM.
 */
typedef void (*pw_peers_expect_fn)(uint64_t key, int sock);
int pw_peers_expect(const struct pw_peer_link *l, const struct pw_wire_addr *from,
		    const uint8_t token[PW_PEER_TOKEN_LEN], pw_peers_expect_fn fn, uint64_t key);

/* Between peer_link.c (links) and peer_conn.c (cross-node connections). */
struct pw_peer_link;
/* The authenticated link whose routes hold @a most specifically, or NULL. */
struct pw_peer_link *pw_peer_route(const struct sockaddr_in *a);
/* Does @l's peer advertise @a? (Two routers may be linked twice.) */
bool pw_peer_link_has(const struct pw_peer_link *l, const struct sockaddr_in *a);
/* Where the peer of @l accepts data connections. */
const struct sockaddr_in *pw_peer_link_data(const struct pw_peer_link *l);
/* Queue one message (@body, then @extra); the link is written without
 * blocking. Errors: -ENOBUFS the peer does not read (drop it); -ENOMEM. */
int pw_peer_link_send(struct pw_peer_link *l, uint16_t type, const void *body, size_t blen,
		      const void *extra, size_t elen);
/* pw_peer_link_send() without writing: several go out in one write, at
 * pw_peer_link_flush(). */
int pw_peer_link_queue(struct pw_peer_link *l, uint16_t type, const void *body, size_t blen,
		       const void *extra, size_t elen);
void pw_peer_link_flush(struct pw_peer_link *l);
/* Everything queued on @l is in the kernel's hands (sent or in its buffer). */
bool pw_peer_link_flushed(const struct pw_peer_link *l);
/* Read what every link has received: a data connection may be accepted
 * while the CONNECT that announced it waits unread on its link. */
void pw_peer_links_read_all(void);
/* This node's underlay address (--peer-listen). */
const struct sockaddr_in *pw_peers_underlay(void);
/* Is @a in this node's --pod-cidr? */
bool pw_peers_pod_has(const struct sockaddr_in *a);
/* A peer's CONNECT and POOL, and their answers. <0: drop the link. */
int pw_peer_conn_request(struct pw_peer_link *l, const struct pw_wire_peer_connect *c);
int pw_peer_pool_request(struct pw_peer_link *l, const struct pw_wire_peer_pool *p);
int pw_peer_conn_reply(struct pw_peer_link *l, const struct pw_msg *m);
/* A peer's PEER_VQP (verbs.c). <0: drop the link. */
int pw_verbs_peer_msg(struct pw_peer_link *l, const struct pw_wire_peer_vqp *v);
/* @l is gone: what its peer said of its queue pairs with it. */
void pw_verbs_link_lost(const struct pw_peer_link *l);
/* @l is gone: connects waiting for its answer fail. */
void pw_peer_conns_link_lost(const struct pw_peer_link *l);
/* @s, accepted from @from, is a data connection we expect: taken, true. */
bool pw_peer_conns_accept(int s, const struct sockaddr_in *from);
/* Expire what waited too long (@now: pw_now_ns()). */
void pw_peer_conns_tick(uint64_t now);
void pw_peer_conns_teardown(void);
void pw_peer_conns_metrics(FILE *f);

#endif /* PW_ROUTER_H */
