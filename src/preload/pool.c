// SPDX-License-Identifier: MIT
/*
 * Pools of connections to other nodes' pods (docs/FEDERATION.md, "Pools").
 *
 * A connection across nodes is a kernel TCP connection between the nodes,
 * which the routers set up (src/router/peer_conn.c) while connect() waits:
 * about twice the kernel's own setup. A process that keeps connecting to
 * the same destination has sockets made before it asks: its router makes
 * them (POOL), each connected, with TCP Fast Open deferred, to the
 * listener's own socket on the other node's underlay, and connect() takes
 * one (reuse.c keeps them by destination) and writes its token: the SYN
 * carries it, and connect() returns as the kernel's would, with no router
 * on the way. The server's kernel makes the connection acceptable with the
 * token in it; the listener's socket, which stands in its pq (reuse.c),
 * turns readable, and accept() takes the connection and checks the token's
 * seal.
 *
 * The pool is asked for on a connection to the router of its own, so that
 * the answers, which come later, all in one message, never meet a call
 * of ctl.c's; connect() takes them in without waiting.
 */
#include "preload.h"

#define PW_POOL_SIZE	   32u			/* connections kept per destination */
#define PW_POOL_LOW	   16u			/* asked for again at this many */
#define PW_POOL_DSTS	   16u			/* destinations asked for at a time */
#define PW_POOL_WAIT_NS	   (2ull * 1000000000u) /* answers not come by then are lost */
#define PW_POOL_BACKOFF_NS (1ull * 1000000000u) /* after a refusal, no asking */

_Static_assert(PW_POOL_SIZE <= PW_POOL_MAX, "one POOL asks for them all");

struct pw_pool_ask {
	struct sockaddr_in dst; /* sin_family 0: a free slot */
	int family;
	uint32_t seq;	      /* of the POOL in flight */
	unsigned expect;      /* its answers still to come */
	uint64_t wait_until;  /* when they are given up */
	uint64_t quiet_until; /* refused: no asking before */
};

static pthread_mutex_t pw_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pw_pool_ask pw_pool_asks[PW_POOL_DSTS];
static int pw_pool_fd = -1;
static uint32_t pw_pool_seq;
/* Answers still to come, over all asks: connect() looks only if any. */
static _Atomic unsigned pw_pool_expecting;
/* Destinations with a pool (asks in use): refills look only if any. */
static _Atomic unsigned pw_pool_nasks;

/* Under the lock: the connection to the router goes, and what it owed. */
static void pw_pool_drop_locked(void)
{
	if (pw_pool_fd >= 0)
		pw_real.close(pw_pool_fd);
	pw_pool_fd = -1;
	for (unsigned i = 0; i < PW_POOL_DSTS; i++)
		pw_pool_asks[i].expect = 0;
	atomic_store_explicit(&pw_pool_expecting, 0, memory_order_relaxed);
}

/* @a's answers stop being expected. */
static void pw_pool_ask_settle(struct pw_pool_ask *a, unsigned n)
{
	n = n < a->expect ? n : a->expect;
	a->expect -= n;
	atomic_fetch_sub_explicit(&pw_pool_expecting, n, memory_order_relaxed);
}

/* The ask for @dst, or (if @start) an idle slot made its; NULL if none. */
static struct pw_pool_ask *pw_pool_ask_of(const struct sockaddr_in *dst, int family, bool start,
					  uint64_t now)
{
	struct pw_pool_ask *idle = NULL;

	for (unsigned i = 0; i < PW_POOL_DSTS; i++) {
		struct pw_pool_ask *a = &pw_pool_asks[i];
		if (a->dst.sin_family && a->family == family && pw_addr_eq(&a->dst, dst))
			return a;
		bool busy = a->expect && now < a->wait_until;
		if (!idle && !busy && now >= a->quiet_until)
			idle = a;
	}
	if (idle && start) {
		pw_pool_ask_settle(idle, idle->expect);
		if (!idle->dst.sin_family)
			atomic_fetch_add_explicit(&pw_pool_nasks, 1, memory_order_relaxed);
		*idle = (struct pw_pool_ask){ .dst = *dst, .family = family };
	}
	return start ? idle : NULL;
}

void pw_pool_fill(const struct sockaddr_in *dst, int family, bool start)
{
	if (pw_cfg.no_reuse || pw_cfg.restricted ||
	    (!start && !atomic_load_explicit(&pw_pool_nasks, memory_order_relaxed)))
		return;
	uint64_t now = pw_now_ns();
	pthread_mutex_lock(&pw_pool_lock);
	struct pw_pool_ask *a = pw_pool_ask_of(dst, family, start, now);
	if (!a || now < a->quiet_until || (a->expect && now < a->wait_until))
		goto out; /* asked already, or told no */
	unsigned have = pw_reuse_pooled(dst, family);
	if (have > PW_POOL_LOW)
		goto out;
	pw_pool_ask_settle(a, a->expect); /* lost on the way, if any */
	if (pw_pool_fd < 0 && (pw_pool_fd = pw_ctl_dial(SOCK_NONBLOCK)) < 0) {
		pw_pool_fd = -1;
		a->quiet_until = now + PW_POOL_BACKOFF_NS;
		goto out;
	}
	/* The router sees where we are from a socket of ours. */
	int proof = pw_real.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (proof < 0) {
		a->quiet_until = now + PW_POOL_BACKOFF_NS;
		goto out;
	}
	struct pw_wire_pool req = { .count = PW_POOL_SIZE - have };
	pw_addr_to_wire(dst, family, &req.peer);
	int r = pw_msg_send(pw_pool_fd, PW_MSG_POOL, ++pw_pool_seq, &req, sizeof(req), NULL, 0,
			    &proof, 1);
	pw_real.close(proof);
	if (r < 0) {
		if (r != -EAGAIN)
			pw_pool_drop_locked();
		goto out;
	}
	a->seq = pw_pool_seq;
	a->expect = req.count;
	a->wait_until = now + PW_POOL_WAIT_NS;
	atomic_fetch_add_explicit(&pw_pool_expecting, req.count, memory_order_relaxed);
out:
	pthread_mutex_unlock(&pw_pool_lock);
}

void pw_pool_given_up(const struct sockaddr_in *dst, int family)
{
	uint64_t now = pw_now_ns();

	pthread_mutex_lock(&pw_pool_lock);
	struct pw_pool_ask *a = pw_pool_ask_of(dst, family, false, now);
	if (a)
		a->quiet_until = now + PW_POOL_BACKOFF_NS;
	pthread_mutex_unlock(&pw_pool_lock);
}

/* One answer (@m with @n fds) to an ask; the fds are taken. */
static void pw_pool_answer(const struct pw_msg *m, unsigned n, int fds[PW_WIRE_MAX_FDS])
{
	struct pw_pool_ask *a = NULL;
	unsigned answers = m->type == PW_MSG_CONN_POOL ? n : 1;

	for (unsigned i = 0; i < PW_POOL_DSTS && !a; i++)
		if (pw_pool_asks[i].expect && pw_pool_asks[i].seq == m->seq)
			a = &pw_pool_asks[i];
	/* (pw_msg_parse() saw a token for each fd.) */
	for (unsigned i = 0; a && m->type == PW_MSG_CONN_POOL && i < n; i++) {
		struct pw_wire_conn conn = m->u.conn_pool.conn;
		struct pw_wire_pool_token t;

		if (pw_msg_entry(m, i, &t, sizeof(t)) < 0)
			break;
		conn.local.port = t.sport;
		pw_reuse_pool_put(fds[i], &conn, &t); /* (takes it) */
		fds[i] = -1;
	}
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			pw_real.close(fds[i]);
	if (!a)
		return; /* given up on already */
	pw_pool_ask_settle(a, answers);
	if (m->type == PW_MSG_ERR)
		a->quiet_until = pw_now_ns() + PW_POOL_BACKOFF_NS;
}

void pw_pool_collect(const struct sockaddr_in *dst, int family)
{
	/* A refill is asked for at PW_POOL_LOW left, and answered a few
	 * connects later: looking for it only once half of those are gone
	 * mostly finds it there, rather than a recvmsg that finds nothing at
	 * every connect on the way. */
	if (!atomic_load_explicit(&pw_pool_expecting, memory_order_relaxed) ||
	    pw_reuse_pooled(dst, family) > PW_POOL_LOW / 2)
		return;
	pthread_mutex_lock(&pw_pool_lock);
	while (pw_pool_fd >= 0) {
		uint8_t buf[sizeof(struct pw_wire_hdr) + sizeof(struct pw_wire_conn_pool) +
			    PW_POOL_MAX * sizeof(struct pw_wire_pool_token)]
			__attribute__((aligned(8)));
		int fds[PW_WIRE_MAX_FDS];
		unsigned n = 0;
		struct pw_msg m;

		ssize_t len = pw_msg_recv(pw_pool_fd, buf, sizeof(buf), fds, &n, MSG_DONTWAIT);
		if (len == -EAGAIN || len == -EWOULDBLOCK || len == -EINTR)
			break;
		if (len <= 0) {
			pw_pool_drop_locked(); /* the router went */
			break;
		}
		if (pw_msg_parse(buf, (size_t)len, n, &m) < 0) {
			for (unsigned i = 0; i < n; i++)
				pw_real.close(fds[i]);
			pw_pool_drop_locked();
			break;
		}
		pw_pool_answer(&m, n, fds);
	}
	pthread_mutex_unlock(&pw_pool_lock);
}

/* Wait until @sock is connected: true, or false if it failed (an error, a
 * reset or an end: what poll(2) shows with POLLOUT). */
static bool pw_pool_wait(int sock)
{
	struct pollfd p = { .fd = sock, .events = POLLOUT };
	int n;

	do
		n = pw_real.poll(&p, 1, -1);
	while (n < 0 && errno == EINTR);
	return n == 1 && p.revents == POLLOUT;
}

int pw_pool_start(int sock, const struct pw_wire_pool_token *token, bool nonblock)
{
	ssize_t n;

	/* The connect starts here: the SYN carries the token (TCP Fast Open,
	 * as the router set the socket up). Never a blocking send: one that a
	 * signal interrupts after the SYN left fails, and its restart would
	 * write the token twice. */
	do
		n = pw_real.send(sock, token, sizeof(*token), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EINPROGRESS || errno == EAGAIN) && pw_pool_wait(sock)) {
		/* No Fast Open on this node: the token follows the handshake. */
		do
			n = pw_real.send(sock, token, sizeof(*token), MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
	}
	if (n != (ssize_t)sizeof(*token))
		return -1;
	/* A blocking connect() returns connected, or falls back if it cannot
	 * be (the listener gone); a non-blocking one says EINPROGRESS, and
	 * the kernel answers for the rest, as for its own connects. */
	return nonblock || pw_pool_wait(sock) ? 0 : -1;
}

/* Is @t, read from @sock (from @from), good for listener @ls? Its seal, the
 * address it came from, and the listener's own address if it has one. */
static bool pw_pool_token_good(const struct pw_sock *ls, const struct pw_wire_pool_token *t,
			       const struct sockaddr_in *from)
{
	return pw_pool_token_check(t, ls->ulkey) && from->sin_family == AF_INET &&
	       from->sin_addr.s_addr == t->via && from->sin_port == t->sport &&
	       t->dport == ls->local.sin_port &&
	       (ls->local.sin_addr.s_addr == htonl(INADDR_ANY) ||
		ls->local.sin_addr.s_addr == t->dst);
}

int pw_pool_accept(int lfd, struct pw_sock *ls, int flags)
{
	int ul = atomic_load_explicit(&ls->ul, memory_order_relaxed);

	while (ul >= 0) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct pw_wire_pool_token t;
		int sock;
		ssize_t n;

		/* O_NONBLOCK as the application asked; close-on-exec until
		 * the token is good. */
		do
			sock = pw_real.accept4(ul, (struct sockaddr *)&from, &flen,
					       SOCK_CLOEXEC | (flags & SOCK_NONBLOCK));
		while (sock < 0 && errno == EINTR);
		if (sock < 0)
			return -EAGAIN; /* (another process took it, or out of fds) */
		/* The kernel lets it through with its first bytes (the SYN's,
		 * or the first after the handshake: TCP_DEFER_ACCEPT); or,
		 * past that's time, without them (its client gave up). */
		do
			n = pw_real.recv(sock, &t, sizeof(t), MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(t) || flen != sizeof(from) ||
		    !pw_pool_token_good(ls, &t, &from)) {
			/* Sent whole in one segment: a part is not a start. */
			struct linger lg = { .l_onoff = 1, .l_linger = 0 };
			pw_real.setsockopt(sock, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			pw_real.close(sock);
			continue;
		}
		struct pw_wire_conn body = { .side = 1 };
		struct sockaddr_in a = { .sin_family = AF_INET };
		a.sin_addr.s_addr = t.dst;
		a.sin_port = t.dport;
		pw_addr_to_wire(&a, ls->family, &body.local);
		a.sin_addr.s_addr = t.src;
		a.sin_port = t.sport;
		pw_addr_to_wire(&a, ls->family, &body.peer);
		sock = pw_accept_tcp(lfd, ls, sock, &body, flags, true);
		if (sock >= 0) {
			pw_dbg("fd %d: accepted over podwire (pooled, from another node)", sock);
			return sock;
		}
	}
	return -EAGAIN;
}

/* In the child after fork: the parent's connection and asks are not ours. */
void pw_pool_atfork_child(void)
{
	pthread_mutex_init(&pw_pool_lock, NULL);
	if (pw_pool_fd >= 0)
		pw_real.close(pw_pool_fd);
	pw_pool_fd = -1;
	memset(pw_pool_asks, 0, sizeof(pw_pool_asks));
	atomic_store_explicit(&pw_pool_expecting, 0, memory_order_relaxed);
	atomic_store_explicit(&pw_pool_nasks, 0, memory_order_relaxed);
}
