/* SPDX-License-Identifier: MIT */
/*
 * podwired's internal interfaces between its files: the event loop
 * (podwired.c) and the federation with other nodes' routers (peers.c).
 */
#ifndef PW_ROUTER_H
#define PW_ROUTER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* What an epoll event points at: the first member of each watched object. */
enum pw_ev_kind {
	K_LISTEN,
	K_SIGNAL,
	K_TIMER,
	K_METRICS,
	K_CLIENT,
	K_PENDING,
	K_PEER_LISTEN, /* the underlay listener: peer links and data connections */
	K_PEER_LINK,   /* a link with another router */
	K_PEER_OUT,    /* our data connection to another node, connecting */
	K_PEER_IN,     /* another node's data connection, before its token */
	K_RELAY_CHAN,  /* relay.c: a relayed channel's socket */
	K_RELAY_APP,   /* relay.c: a relayed stream, our end */
	K_RELAY_TIMER, /* relay.c: relays whose grace period ends */
};

struct pw_ev {
	enum pw_ev_kind kind;
};

int pw_router_ep_add(int fd, uint32_t events, struct pw_ev *ev);
int pw_router_ep_mod(int fd, uint32_t events, struct pw_ev *ev);
void pw_router_ep_del(int fd);

/*
 * Called by peers.c for another node's CONNECT: connect to the listener of
 * @dst on this node, as for a local client, and keep the connection pending
 * for its data connection. Returns 0 and the connection id, or -errno
 * (-ECONNREFUSED: no accelerated listener).
 */
int pw_router_remote_conn(const struct sockaddr_in *src, const struct sockaddr_in *dst,
			  uint64_t *ret_id);
/* The data connection of remote connection @id arrived and proved itself:
 * takes @sock. */
void pw_router_remote_data(uint64_t id, int sock);
/* The data connection of @id will not come: forget the connection. */
void pw_router_remote_drop(uint64_t id);

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
void pw_relay_event(struct pw_ev *ev, uint32_t events);
void pw_relays_teardown(void);
void pw_relays_metrics(FILE *f);

/* ---- peers.c ---- */

struct pw_peers_cfg {
	const char *node_name; /* NULL: the host name */
	const char *listen;    /* "IP:PORT" on the underlay; NULL: federation off */
	const char *peers;     /* "IP:PORT,..." other routers to dial */
	const char *secret_file;
	const char *pod_cidrs; /* "CIDR,..." pods of this node, advertised */
};

/* Validate @cfg and open the underlay listener. -EINVAL with a logged reason. */
int pw_peers_setup(const struct pw_peers_cfg *cfg);
void pw_peers_teardown(void);
bool pw_peers_enabled(void);
void pw_peers_event(struct pw_ev *ev, uint32_t events);
/* Every PW_TICK_MS: dial missing peers, expire what waited too long. */
void pw_peers_tick(void);
void pw_peers_metrics(FILE *f);

#define PW_TICK_MS 200

/*
 * A local client connects @src to @dst, which no listener on this node has.
 * If a peer advertises @dst, ask it; @done is called exactly once, later,
 * with a connected kernel socket (which it takes) or -errno, and the remote
 * connection id. Returns 0 then, or -ENETUNREACH: no peer has @dst.
 */
typedef void (*pw_peers_done_fn)(void *ctx, int sock, uint64_t conn);
int pw_peers_connect(const struct sockaddr_in *src, const struct sockaddr_in *dst,
		     pw_peers_done_fn done, void *ctx);
/* @ctx is going away: its pending connects end without calling @done. */
void pw_peers_cancel(const void *ctx);

#endif /* PW_ROUTER_H */
