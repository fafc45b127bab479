// SPDX-License-Identifier: MIT
/*
 * Federation: routers of different nodes find each other over the underlay,
 * prove they share the cluster secret, tell each other which pod addresses
 * live where, and broker cross-node connections (peer_conn.c).
 *
 * Here: the configuration, the underlay listener, and the authenticated
 * links with other routers: the handshake (docs/FEDERATION.md), the framing
 * of messages on a TCP byte stream, and the routes each peer advertises.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "proto.h"
#include "router.h"

#define PW_PEER_MAX_LINKS    256
#define PW_PEER_HANDSHAKE_NS (5ull * 1000000000u)
#define PW_PEER_WBUF_MAX     (1u << 20)
/* A rotated secret's predecessor still proves peers for this long: the
 * nodes' copies of a Secret change within a minute or two of each other. */
#define PW_PEER_SECRET_GRACE_NS (10ull * 60 * 1000000000u)
#define PW_PEER_SECRET_CHECK_NS 1000000000ull

enum pw_peer_link_state {
	PW_LINK_DIALING,
	PW_LINK_HELLO_SENT,
	PW_LINK_WAIT_HELLO,
	PW_LINK_WAIT_AUTH,
	PW_LINK_WAIT_ROUTES, /* we dialled and gave our proof: until they take it */
	PW_LINK_UP
};

struct pw_peer_link {
	struct pw_ev ev; /* pw_peer_link_event */
	int fd;
	enum pw_peer_link_state state;
	bool dialled; /* we called them, at @to; else they called us */
	bool proved;  /* their proof was good (a drop after it is not a failure) */
	struct sockaddr_in to;
	uint64_t since_ns;
	uint8_t nonce[PW_PEER_NONCE_LEN];  /* ours */
	uint8_t pnonce[PW_PEER_NONCE_LEN]; /* theirs */
	char name[PW_PEER_NAME_LEN];
	struct sockaddr_in data; /* their data address */
	struct pw_wire_prefix routes[PW_WIRE_MAX_PREFIXES];
	unsigned nroutes;
	uint8_t rbuf[PW_PEER_MSG_MAX];
	size_t rlen;
	uint8_t *wbuf;
	size_t wlen;
	struct pw_peer_link *next;
};

static struct {
	bool on;
	char name[PW_PEER_NAME_LEN];
	struct sockaddr_in listen;
	struct sockaddr_in dial[PW_PEER_MAX_DIAL];
	unsigned ndial;
	bool discovered; /* the dial list comes from the API server: keep no one else */
	uint8_t secret[256], prev[256];
	size_t secret_len, prev_len;
	uint64_t prev_until, secret_checked;
	char *secret_path;
	struct stat secret_st;
	struct pw_wire_prefix routes[PW_WIRE_MAX_PREFIXES];
	unsigned nroutes;

	int lfd;
	struct pw_ev ev_listen;
	struct pw_peer_link *links;
	unsigned nlinks;

	uint64_t n_auth_fail, n_rotations; /* for the metrics */
} pw_peers = { .lfd = -1 };

static void pw_peers_accept(struct pw_ev *ev, uint32_t events);
static void pw_peer_link_event(struct pw_ev *ev, uint32_t events);

/* ---- configuration ---- */

/* Read the secret file into @buf; its length, or -errno (-EINVAL: shorter than 16 bytes). */
static ssize_t pw_peer_secret_read(const char *path, uint8_t *buf, size_t cap, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (st && fstat(fd, st) < 0)
		memset(st, 0, sizeof(*st));
	do
		n = read(fd, buf, cap);
	while (n < 0 && errno == EINTR);
	int err = errno;
	close(fd);
	if (n < 0)
		return -err;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < 16)
		return -EINVAL; /* too short to be a secret */
	return n;
}

/*
 * A mounted Secret changes by a symlink swap: when the file's identity or
 * time changes, read it; a new secret proves our side from now on, and the
 * old one is still accepted from peers for PW_PEER_SECRET_GRACE_NS. Links
 * that are up stay up: the secret is only used in handshakes.
 */
static void pw_peer_secret_check(uint64_t now)
{
	uint8_t buf[sizeof(pw_peers.secret)];
	struct stat st;
	ssize_t n;

	if (!pw_peers.secret_path || now < pw_peers.secret_checked + PW_PEER_SECRET_CHECK_NS)
		return;
	pw_peers.secret_checked = now;
	if (stat(pw_peers.secret_path, &st) < 0 ||
	    (st.st_ino == pw_peers.secret_st.st_ino && st.st_dev == pw_peers.secret_st.st_dev &&
	     st.st_size == pw_peers.secret_st.st_size &&
	     st.st_mtim.tv_sec == pw_peers.secret_st.st_mtim.tv_sec &&
	     st.st_mtim.tv_nsec == pw_peers.secret_st.st_mtim.tv_nsec))
		return;
	n = pw_peer_secret_read(pw_peers.secret_path, buf, sizeof(buf), &st);
	if (n < 0) {
		pw_warn("secret %s changed but cannot be used (%s); keeping the old one",
			pw_peers.secret_path,
			n == -EINVAL ? "shorter than 16 bytes" : strerror((int)-n));
		pw_peers.secret_st = st; /* said once per change */
		return;
	}
	pw_peers.secret_st = st;
	if ((size_t)n == pw_peers.secret_len && !CRYPTO_memcmp(buf, pw_peers.secret, (size_t)n))
		return;
	memcpy(pw_peers.prev, pw_peers.secret, pw_peers.secret_len);
	pw_peers.prev_len = pw_peers.secret_len;
	pw_peers.prev_until = now + PW_PEER_SECRET_GRACE_NS;
	memcpy(pw_peers.secret, buf, (size_t)n);
	pw_peers.secret_len = (size_t)n;
	OPENSSL_cleanse(buf, sizeof(buf));
	pw_peers.n_rotations++;
	pw_info("secret %s rotated: new handshakes use it; the old one is accepted for %llu s",
		pw_peers.secret_path, (unsigned long long)(PW_PEER_SECRET_GRACE_NS / 1000000000u));
}

int pw_peers_setup(const struct pw_peers_cfg *cfg)
{
	int one = 1, r, n;

	if (!cfg->listen) {
		if (cfg->peers || cfg->pod_cidrs || cfg->secret_file) {
			pw_err("--peers, --pod-cidr and --secret-file need --peer-listen");
			return -EINVAL;
		}
		return 0;
	}
	if (pw_addr_parse(cfg->listen, &pw_peers.listen) < 0 ||
	    pw_peers.listen.sin_addr.s_addr == htonl(INADDR_ANY)) {
		pw_err("bad --peer-listen '%s' (an address of this node and a port, e.g. "
		       "198.18.0.1:7470)",
		       cfg->listen);
		return -EINVAL;
	}
	n = cfg->peers ? pw_addr_list_parse(cfg->peers, pw_peers.dial, PW_ARRAY_SIZE(pw_peers.dial),
					    NULL)
		       : 0;
	if (n < 0) {
		pw_err("bad --peers '%s' (e.g. 198.18.0.2:7470,198.18.0.3:7470)", cfg->peers);
		return -EINVAL;
	}
	pw_peers.ndial = (unsigned)n;
	n = cfg->pod_cidrs ? pw_addr_cidr_list_parse(cfg->pod_cidrs, PW_ADDR_CIDR_NET,
						     pw_peers.routes, PW_WIRE_MAX_PREFIXES, NULL)
			   : 0;
	if (n < 0) {
		pw_err("bad --pod-cidr '%s' (e.g. 198.19.1.0/24)", cfg->pod_cidrs);
		return -EINVAL;
	}
	pw_peers.nroutes = (unsigned)n;
	if (!cfg->secret_file) {
		pw_err("federation needs --secret-file: routers prove they share it");
		return -EINVAL;
	}
	ssize_t sn = pw_peer_secret_read(cfg->secret_file, pw_peers.secret, sizeof(pw_peers.secret),
					 &pw_peers.secret_st);
	if (sn < 0) {
		pw_err("cannot use secret %s: %s", cfg->secret_file,
		       sn == -EINVAL ? "shorter than 16 bytes" : strerror((int)-sn));
		return -EINVAL;
	}
	pw_peers.secret_len = (size_t)sn;
	pw_peers.secret_path = strdup(cfg->secret_file);
	if (!pw_peers.secret_path)
		return -ENOMEM;
	pw_peers.discovered = cfg->discover;
	if (cfg->node_name) {
		size_t len = strlen(cfg->node_name);

		if (len >= sizeof(pw_peers.name)) {
			pw_err("--node-name is longer than %zu bytes", sizeof(pw_peers.name) - 1);
			return -EINVAL;
		}
		memcpy(pw_peers.name, cfg->node_name, len + 1);
	} else if (gethostname(pw_peers.name, sizeof(pw_peers.name) - 1) < 0) {
		memcpy(pw_peers.name, "node", sizeof("node"));
	}

	pw_peers_fastopen();
	pw_peers.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (pw_peers.lfd < 0)
		return -errno;
	setsockopt(pw_peers.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(pw_peers.lfd, (struct sockaddr *)&pw_peers.listen, sizeof(pw_peers.listen)) < 0 ||
	    listen(pw_peers.lfd, 1024) < 0) {
		r = -errno;
		pw_err("cannot listen on %s for peers: %s", cfg->listen, strerror(-r));
		return r;
	}
	pw_peers.ev_listen.fn = pw_peers_accept;
	r = pw_loop_add(pw_peers.lfd, EPOLLIN, &pw_peers.ev_listen);
	if (r < 0)
		return r;
	pw_peers.on = true;
	pw_info("federation: node %s on %s, %u peer(s) to dial, %u pod prefix(es)", pw_peers.name,
		cfg->listen, pw_peers.ndial, pw_peers.nroutes);
	pw_peers_tick();
	return 0;
}

bool pw_peers_enabled(void)
{
	return pw_peers.on;
}

const struct sockaddr_in *pw_peers_underlay(void)
{
	return &pw_peers.listen;
}

bool pw_peers_pod_has(const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < pw_peers.nroutes; i++)
		if (pw_addr_cidr_has(&pw_peers.routes[i], a))
			return true;
	return false;
}

/* ---- links ---- */

/* HMAC(secret, label | n1 | n2 | name NUL-padded to PW_PEER_NAME_LEN). */
static void pw_peer_mac_key(const uint8_t *key, size_t klen, const char *label, const uint8_t *n1,
			    const uint8_t *n2, const char *name, uint8_t ret_mac[PW_PEER_MAC_LEN])
{
	uint8_t msg[64 + 2 * PW_PEER_NONCE_LEN + PW_PEER_NAME_LEN] = { 0 };
	size_t off = strlen(label); /* a literal, shorter than 64 */
	unsigned olen = PW_PEER_MAC_LEN;

	strncpy((char *)msg, label, 64);
	memcpy(msg + off, n1, PW_PEER_NONCE_LEN);
	off += PW_PEER_NONCE_LEN;
	memcpy(msg + off, n2, PW_PEER_NONCE_LEN);
	off += PW_PEER_NONCE_LEN;
	strncpy((char *)msg + off, name, PW_PEER_NAME_LEN);
	off += PW_PEER_NAME_LEN;
	HMAC(EVP_sha256(), key, (int)klen, msg, off, ret_mac, &olen);
}

/* Our proof: with the current secret. */
static void pw_peer_mac(const char *label, const uint8_t *n1, const uint8_t *n2, const char *name,
			uint8_t ret_mac[PW_PEER_MAC_LEN])
{
	pw_peer_mac_key(pw_peers.secret, pw_peers.secret_len, label, n1, n2, name, ret_mac);
}

/* Their proof: the current secret, or the one it replaced while its grace lasts. */
static bool pw_peer_mac_ok(const char *label, const uint8_t *n1, const uint8_t *n2,
			   const char *name, const uint8_t *mac)
{
	uint8_t want[PW_PEER_MAC_LEN];

	pw_peer_mac(label, n1, n2, name, want);
	if (!CRYPTO_memcmp(want, mac, sizeof(want)))
		return true;
	if (!pw_peers.prev_len || pw_now_ns() > pw_peers.prev_until)
		return false;
	pw_peer_mac_key(pw_peers.prev, pw_peers.prev_len, label, n1, n2, name, want);
	return !CRYPTO_memcmp(want, mac, sizeof(want));
}

static void pw_peer_link_free(struct pw_peer_link *l)
{
	for (struct pw_peer_link **pp = &pw_peers.links; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	pw_peers.nlinks--;
	/* They saw our proof and never gave theirs: most likely a wrong secret. */
	if (l->state == PW_LINK_WAIT_AUTH && !l->proved)
		pw_peers.n_auth_fail++;
	pw_peer_conns_link_lost(l);
	pw_verbs_link_lost(l);
	if (l->state == PW_LINK_UP)
		pw_warn("peer %s: link lost", l->name);
	pw_loop_del(l->fd, &l->ev);
	close(l->fd);
	free(l->wbuf);
	free(l);
}

void pw_peer_link_flush(struct pw_peer_link *l)
{
	while (l->wlen) {
		ssize_t n = send(l->fd, l->wbuf, l->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		memmove(l->wbuf, l->wbuf + n, l->wlen - (size_t)n);
		l->wlen -= (size_t)n;
	}
	pw_loop_mod(l->fd, EPOLLIN | (l->wlen ? EPOLLOUT : 0), &l->ev);
}

/* Queue one message; the link is written without blocking. */
int pw_peer_link_send(struct pw_peer_link *l, uint16_t type, const void *body, size_t blen,
		      const void *extra, size_t elen)
{
	int r = pw_peer_link_queue(l, type, body, blen, extra, elen);

	if (r == 0)
		pw_peer_link_flush(l);
	return r;
}

int pw_peer_link_queue(struct pw_peer_link *l, uint16_t type, const void *body, size_t blen,
		       const void *extra, size_t elen)
{
	struct pw_wire_hdr h = { .magic = PW_WIRE_MAGIC,
				 .version = PW_WIRE_VERSION,
				 .type = type,
				 .len = (uint32_t)(sizeof(h) + blen + elen) };
	size_t need = l->wlen + h.len;

	if (need > PW_PEER_WBUF_MAX)
		return -ENOBUFS; /* the peer does not read: the caller drops it */
	uint8_t *nb = realloc(l->wbuf, need);
	if (!nb)
		return -ENOMEM;
	l->wbuf = nb;
	memcpy(nb + l->wlen, &h, sizeof(h));
	memcpy(nb + l->wlen + sizeof(h), body, blen);
	if (elen)
		memcpy(nb + l->wlen + sizeof(h) + blen, extra, elen);
	l->wlen = need;
	return 0;
}

bool pw_peer_link_flushed(const struct pw_peer_link *l)
{
	return l->wlen == 0;
}

static struct pw_peer_link *pw_peer_link_new(int fd, const struct sockaddr_in *to,
					     enum pw_peer_link_state st)
{
	struct pw_peer_link *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ev.fn = pw_peer_link_event;
	l->fd = fd;
	if (to) {
		l->dialled = true;
		l->to = *to;
	}
	l->state = st;
	l->since_ns = pw_now_ns();
	/* A CONNECT must not wait behind an unanswered one: its data
	 * connection is dialled as soon as it has left (peer_conn.c). */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getrandom(l->nonce, sizeof(l->nonce), 0) != sizeof(l->nonce) ||
	    pw_loop_add(fd, st == PW_LINK_DIALING ? EPOLLOUT : EPOLLIN, &l->ev) < 0) {
		free(l);
		return NULL;
	}
	l->next = pw_peers.links;
	pw_peers.links = l;
	pw_peers.nlinks++;
	return l;
}

const struct sockaddr_in *pw_peer_link_data(const struct pw_peer_link *l)
{
	return &l->data;
}

/* Our HELLO, but for the nonce and the mac. */
static void pw_peer_hello_fill(struct pw_wire_peer_hello *ret)
{
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->name, pw_peers.name, sizeof(ret->name));
	pw_addr_to_wire(&pw_peers.listen, AF_INET, &ret->data);
}

static int pw_peer_routes_send(struct pw_peer_link *l)
{
	struct pw_wire_peer_routes r = { .count = pw_peers.nroutes };

	return pw_peer_link_send(l, PW_PEER_ROUTES, &r, sizeof(r), pw_peers.routes,
				 pw_peers.nroutes * sizeof(pw_peers.routes[0]));
}

/* The peer's name and data address from its HELLO. */
static int pw_peer_link_hello(struct pw_peer_link *l, const struct pw_wire_peer_hello *h)
{
	memcpy(l->name, h->name, sizeof(l->name));
	return pw_addr_from_wire(&h->data, &l->data, NULL) < 0 ? -EPROTO : 0;
}

/* Is @a in the dial list? */
static bool pw_peers_dials(const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < pw_peers.ndial; i++)
		if (pw_peers.dial[i].sin_addr.s_addr == a->sin_addr.s_addr &&
		    pw_peers.dial[i].sin_port == a->sin_port)
			return true;
	return false;
}

/*
 * With peers from the API server, a link is kept only with a node the server
 * lists (Ready, with that address): a node that left keeps no route here even
 * if it still holds the secret. Static peers accept any router with the secret.
 */
static bool pw_peer_link_wanted(const struct pw_peer_link *l)
{
	if (!pw_peers.discovered)
		return true;
	return pw_peers_dials(l->dialled ? &l->to : &l->data);
}

/* The peer proved itself: its name and data address are set. */
static void pw_peer_link_up(struct pw_peer_link *l)
{
	char b[PW_ADDR_STRLEN];

	l->state = PW_LINK_UP;
	pw_info("peer %s: authenticated (%s, data at %s)", l->name,
		l->dialled ? "we dialled" : "it dialled", pw_addr_format(&l->data, b));
}

/* One message from a peer. <0: drop the link. */
static int pw_peer_link_msg(struct pw_peer_link *l, const struct pw_msg *m)
{
	switch (l->state) {
	case PW_LINK_HELLO_SENT: /* we dialled: their HELLO carries their proof */
		if (m->type != PW_PEER_HELLO)
			return -EPROTO;
		memcpy(l->pnonce, m->u.peer_hello.nonce, sizeof(l->pnonce));
		if (!pw_peer_mac_ok("podwire-peer-r", l->nonce, l->pnonce, m->u.peer_hello.name,
				    m->u.peer_hello.mac)) {
			pw_peers.n_auth_fail++;
			pw_warn("peer %s: wrong secret; dropping it", m->u.peer_hello.name);
			return -EACCES;
		}
		if (pw_peer_link_hello(l, &m->u.peer_hello) < 0)
			return -EPROTO;
		struct pw_wire_peer_auth a;
		pw_peer_mac("podwire-peer-i", l->pnonce, l->nonce, pw_peers.name, a.mac);
		if (pw_peer_link_send(l, PW_PEER_AUTH, &a, sizeof(a), NULL, 0) < 0)
			return -EIO;
		if (!pw_peer_link_wanted(l))
			return -EPERM;
		/* Up once they take our proof, which their ROUTES, the first
		 * thing they send then, says; a router that does not want us
		 * (a node it does not list) closes instead. */
		l->state = PW_LINK_WAIT_ROUTES;
		return pw_peer_routes_send(l);
	case PW_LINK_WAIT_HELLO: { /* they dialled: answer with our proof */
		if (m->type != PW_PEER_HELLO)
			return -EPROTO;
		struct pw_wire_peer_hello h;
		memcpy(l->pnonce, m->u.peer_hello.nonce, sizeof(l->pnonce));
		/* Their data address, used only once they prove themselves. */
		if (pw_peer_link_hello(l, &m->u.peer_hello) < 0)
			return -EPROTO;
		pw_peer_hello_fill(&h);
		memcpy(h.nonce, l->nonce, sizeof(h.nonce));
		pw_peer_mac("podwire-peer-r", l->pnonce, l->nonce, pw_peers.name, h.mac);
		l->state = PW_LINK_WAIT_AUTH;
		return pw_peer_link_send(l, PW_PEER_HELLO, &h, sizeof(h), NULL, 0) < 0 ? -EIO : 0;
	}
	case PW_LINK_WAIT_AUTH: {
		if (m->type != PW_PEER_AUTH)
			return -EPROTO;
		if (!pw_peer_mac_ok("podwire-peer-i", l->nonce, l->pnonce, l->name,
				    m->u.peer_auth.mac)) {
			pw_peers.n_auth_fail++;
			pw_warn("peer %s: wrong secret; dropping it", l->name);
			return -EACCES;
		}
		/* (A node we do not list: refused, not a failed proof.) */
		l->proved = true;
		if (!pw_peer_link_wanted(l))
			return -EPERM;
		pw_peer_link_up(l);
		return pw_peer_routes_send(l);
	}
	case PW_LINK_WAIT_ROUTES:
		if (m->type != PW_PEER_ROUTES)
			return -EPROTO;
		pw_peer_link_up(l);
		break;
	case PW_LINK_UP:
		break;
	default:
		return -EPROTO;
	}

	switch (m->type) {
	case PW_PEER_ROUTES:
		l->nroutes = 0;
		for (uint32_t i = 0; i < m->nentries; i++) {
			struct pw_wire_prefix pf;
			if (pw_msg_entry(m, i, &pf, sizeof(pf)) < 0 || pf.family != AF_INET ||
			    pf.len > 32)
				return -EPROTO;
			l->routes[l->nroutes++] = pf;
		}
		pw_info("peer %s: %u pod prefix(es)", l->name, l->nroutes);
		return 0;
	case PW_PEER_CONNECT:
		return pw_peer_conn_request(l, &m->u.peer_connect);
	case PW_PEER_POOL:
		return pw_peer_pool_request(l, &m->u.peer_pool);
	case PW_PEER_VQP:
		return pw_verbs_peer_msg(l, &m->u.peer_vqp);
	case PW_PEER_CONNECT_OK:
	case PW_PEER_CONNECT_ERR:
	case PW_PEER_POOL_OK:
		return pw_peer_conn_reply(l, m);
	default:
		return -EPROTO;
	}
}

static void pw_peer_link_read(struct pw_peer_link *l)
{
	for (;;) {
		ssize_t n = recv(l->fd, l->rbuf + l->rlen, sizeof(l->rbuf) - l->rlen, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			pw_peer_link_free(l);
			return;
		}
		l->rlen += (size_t)n;
		/* Whole messages: a header, then the length it declares. */
		while (l->rlen >= sizeof(struct pw_wire_hdr)) {
			struct pw_wire_hdr h;
			struct pw_msg m;

			memcpy(&h, l->rbuf, sizeof(h));
			if (h.len < sizeof(h) || h.len > PW_PEER_MSG_MAX) {
				pw_warn("peer %s: bad message length %u; dropping it",
					l->name[0] ? l->name : "?", h.len);
				pw_peer_link_free(l);
				return;
			}
			if (l->rlen < h.len)
				break;
			int r = pw_msg_parse(l->rbuf, h.len, 0, &m);
			if (r == 0 && m.type < PW_PEER_HELLO)
				r = -EPROTO;
			if (r == 0)
				r = pw_peer_link_msg(l, &m);
			if (r < 0) {
				if (r == -EPERM)
					pw_info("peer %s: not a node the API server lists (yet); "
						"dropping it",
						l->name[0] ? l->name : "?");
				else if (r != -EACCES)
					pw_warn("peer %s: %s; dropping it",
						l->name[0] ? l->name : "?", strerror(-r));
				pw_peer_link_free(l);
				return;
			}
			memmove(l->rbuf, l->rbuf + h.len, l->rlen - h.len);
			l->rlen -= h.len;
		}
	}
}

static void pw_peer_link_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_peer_link *l = (struct pw_peer_link *)ev;

	if (l->state == PW_LINK_DIALING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			pw_peer_link_free(l); /* dialled again at the next tick */
			return;
		}
		struct pw_wire_peer_hello h;
		pw_peer_hello_fill(&h);
		memcpy(h.nonce, l->nonce, sizeof(h.nonce));
		l->state = PW_LINK_HELLO_SENT;
		if (pw_peer_link_send(l, PW_PEER_HELLO, &h, sizeof(h), NULL, 0) < 0)
			pw_peer_link_free(l);
		return;
	}
	if (events & EPOLLOUT)
		pw_peer_link_flush(l);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		pw_peer_link_read(l);
}

static void pw_peer_dial(const struct sockaddr_in *to)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_in src = pw_peers.listen;

	if (s < 0)
		return;
	src.sin_port = 0; /* (TCP_NODELAY: pw_peer_link_new, for every link) */
	if (bind(s, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    (connect(s, (const struct sockaddr *)to, sizeof(*to)) < 0 && errno != EINPROGRESS) ||
	    !pw_peer_link_new(s, to, PW_LINK_DIALING))
		close(s);
}

struct pw_peer_link *pw_peer_route(const struct sockaddr_in *a)
{
	struct pw_peer_link *best = NULL;
	int best_len = -1;

	for (struct pw_peer_link *l = pw_peers.links; l; l = l->next) {
		int len =
			l->state == PW_LINK_UP ? pw_addr_cidr_match(l->routes, l->nroutes, a) : -1;

		if (len > best_len) {
			best = l;
			best_len = len;
		}
	}
	return best;
}

bool pw_peer_link_has(const struct pw_peer_link *l, const struct sockaddr_in *a)
{
	return pw_addr_cidr_match(l->routes, l->nroutes, a) >= 0;
}

void pw_peer_links_read_all(void)
{
	for (struct pw_peer_link *l = pw_peers.links, *next; l; l = next) {
		next = l->next; /* reading may free it */
		if (l->state == PW_LINK_UP)
			pw_peer_link_read(l);
	}
}

static void pw_peers_accept(struct pw_ev *ev, uint32_t events)
{
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		int s = accept4(pw_peers.lfd, (struct sockaddr *)&from, &len,
				SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (s < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return;
		}
		if (pw_peer_conns_accept(s, &from))
			continue;
		/* A peer dials its data connection as it sends the CONNECT
		 * (peer_conn.c): that may wait unread on the link still. */
		pw_peer_links_read_all();
		if (pw_peer_conns_accept(s, &from))
			continue;
		if (pw_peers.nlinks >= PW_PEER_MAX_LINKS ||
		    !pw_peer_link_new(s, NULL, PW_LINK_WAIT_HELLO))
			close(s);
	}
}

void pw_peers_tick(void)
{
	uint64_t now = pw_now_ns();

	if (!pw_peers.on)
		return;
	pw_peer_secret_check(now);
	for (unsigned i = 0; i < pw_peers.ndial; i++) {
		const struct sockaddr_in *a = &pw_peers.dial[i];
		bool have = false;

		for (struct pw_peer_link *l = pw_peers.links; l && !have; l = l->next)
			have = l->dialled && l->to.sin_addr.s_addr == a->sin_addr.s_addr &&
			       l->to.sin_port == a->sin_port;
		if (!have && pw_peers.nlinks < PW_PEER_MAX_LINKS)
			pw_peer_dial(a);
	}
	for (struct pw_peer_link *l = pw_peers.links, *next; l; l = next) {
		next = l->next;
		if (l->state != PW_LINK_UP && now > l->since_ns + PW_PEER_HANDSHAKE_NS)
			pw_peer_link_free(l);
	}
	pw_peer_conns_tick(now);
}

int pw_peers_set(const struct sockaddr_in *dial, unsigned n, const struct pw_wire_prefix *routes,
		 int nroutes)
{
	char b[PW_ADDR_STRLEN];
	bool rchanged;

	if (!pw_peers.on)
		return -ENOTCONN;
	if (n > PW_ARRAY_SIZE(pw_peers.dial) || nroutes > (int)PW_WIRE_MAX_PREFIXES)
		return -E2BIG;
	for (unsigned i = 0; i < n; i++)
		if (!pw_peers_dials(&dial[i]))
			pw_info("peer %s: added", pw_addr_format(&dial[i], b));
	for (unsigned i = 0; i < pw_peers.ndial; i++) {
		bool keep = false;

		for (unsigned j = 0; j < n && !keep; j++)
			keep = dial[j].sin_addr.s_addr == pw_peers.dial[i].sin_addr.s_addr &&
			       dial[j].sin_port == pw_peers.dial[i].sin_port;
		if (!keep)
			pw_info("peer %s: removed", pw_addr_format(&pw_peers.dial[i], b));
	}
	memcpy(pw_peers.dial, dial, n * sizeof(*dial));
	pw_peers.ndial = n;
	/* Links with nodes that left: closed, so their routes go with them. */
	for (struct pw_peer_link *l = pw_peers.links, *next; l; l = next) {
		next = l->next;
		if ((l->dialled || l->state == PW_LINK_UP) && !pw_peer_link_wanted(l))
			pw_peer_link_free(l);
	}
	rchanged = nroutes >= 0 &&
		   ((unsigned)nroutes != pw_peers.nroutes ||
		    memcmp(routes, pw_peers.routes, (size_t)nroutes * sizeof(*routes)) != 0);
	if (rchanged) {
		memcpy(pw_peers.routes, routes, (size_t)nroutes * sizeof(*routes));
		pw_peers.nroutes = (unsigned)nroutes;
		pw_info("federation: %u pod prefix(es) of this node", pw_peers.nroutes);
		for (struct pw_peer_link *l = pw_peers.links, *next; l; l = next) {
			next = l->next;
			if (l->state == PW_LINK_UP && pw_peer_routes_send(l) < 0)
				pw_peer_link_free(l);
		}
	}
	pw_peers_tick();
	return 0;
}

void pw_peers_teardown(void)
{
	pw_peer_conns_teardown();
	while (pw_peers.links)
		pw_peer_link_free(pw_peers.links);
	if (pw_peers.lfd >= 0)
		close(pw_peers.lfd);
	pw_peers.lfd = -1;
	pw_peers.on = false;
	free(pw_peers.secret_path);
	pw_peers.secret_path = NULL;
	OPENSSL_cleanse(pw_peers.secret, sizeof(pw_peers.secret));
	OPENSSL_cleanse(pw_peers.prev, sizeof(pw_peers.prev));
}

void pw_peers_metrics(FILE *f)
{
	unsigned up = 0;

	if (!pw_peers.on)
		return;
	for (struct pw_peer_link *l = pw_peers.links; l; l = l->next)
		up += l->state == PW_LINK_UP;
	fprintf(f,
		"# HELP podwire_peer_links Authenticated links with other nodes' routers.\n"
		"# TYPE podwire_peer_links gauge\npodwire_peer_links %u\n"
		"# HELP podwire_peer_auth_failures_total Peers that failed to prove the secret.\n"
		"# TYPE podwire_peer_auth_failures_total counter\n"
		"podwire_peer_auth_failures_total %" PRIu64 "\n"
		"# HELP podwire_peer_secret_rotations_total Times the secret file changed to a new "
		"secret.\n"
		"# TYPE podwire_peer_secret_rotations_total counter\n"
		"podwire_peer_secret_rotations_total %" PRIu64 "\n"
		"# HELP podwire_peer_dial_targets Routers this one dials (static or from the API "
		"server).\n"
		"# TYPE podwire_peer_dial_targets gauge\npodwire_peer_dial_targets %u\n",
		up, pw_peers.n_auth_fail, pw_peers.n_rotations, pw_peers.ndial);
	pw_peer_conns_metrics(f);
}
