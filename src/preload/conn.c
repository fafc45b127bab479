// SPDX-License-Identifier: MIT
/*
 * Becoming accelerated: connect, and putting what the router hands out
 * under the application's fd (listen and accept: accept.c).
 */
#include "preload.h"
#include "tcpinfo.h"

/* ---- becoming accelerated ---- */

/* The state of a new connection over @ops, as the router described it. */
struct pw_sock *pw_conn_new(const struct pw_xport_ops *ops, const struct pw_wire_conn *body)
{
	struct pw_sock *s = pw_sock_new(ops->kernel_io ? PW_K_VIRT : PW_K_CONN);

	if (!s)
		return NULL;
	s->ops = ops;
	s->id = body->id;
	if (pw_addr_from_wire(&body->local, &s->local, &s->family) < 0 ||
	    pw_addr_from_wire(&body->peer, &s->peer, NULL) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

/* Make @s, whose transport holds @fd, what the application's @fd is. */
void pw_conn_publish(int fd, struct pw_sock *s)
{
	if (!s->ops->kernel_io)
		s->ops->set_fd(s->xp, fd);
	pw_fdtab_put(fd, s);
	if (!s->ops->kernel_io)
		atomic_fetch_add_explicit(&pw_nconns, 1, memory_order_relaxed);
}

/*
 * Put @sock, the new connection's kernel fd, on the application's @fd with
 * @fd's FD_CLOEXEC (@fdfl), move @fd's epoll registrations over, and publish
 * @s. On failure @fd is untouched and @sock still the caller's.
 */
static int pw_conn_install(int fd, int sock, int fdfl, struct pw_sock *s)
{
	pw_ep_swap_file(fd, true);
	if (pw_real.dup3(sock, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		pw_ep_swap_file(fd, false);
		return -1;
	}
	pw_real.close(sock);
	pw_conn_publish(fd, s);
	pw_ep_swap_file(fd, false);
	return 0;
}

/*
 * A connection over the channel in @memfd whose socket end @sock is side
 * @body->side; its options and timeouts are those of the kernel socket
 * @opts_fd (-1: none). Nothing is taken; NULL when the channel is refused.
 */
struct pw_sock *pw_conn_new_shm(int memfd, int sock, const struct pw_wire_conn *body, int opts_fd,
				bool nonblock, bool handed)
{
	struct pw_sock *s;
	int r;

	if (body->side > 1)
		return NULL;
	s = pw_conn_new(&pw_xport_shm, body);
	if (!s)
		return NULL;
	if (opts_fd >= 0) {
		s->rcvtimeo_ms = pw_timeo_ms(opts_fd, SO_RCVTIMEO);
		s->sndtimeo_ms = pw_timeo_ms(opts_fd, SO_SNDTIMEO);
		pw_opts_carry(s, opts_fd);
	}
	atomic_store_explicit(&s->nonblock, nonblock, memory_order_relaxed);
	r = pw_xport_shm_attach(memfd, sock, body->side, handed, &s->xp);
	if (r < 0) {
		pw_warn("channel from the router refused: %s", strerror(-r));
		free(s->opts);
		free(s);
		return NULL;
	}
	return s;
}

/*
 * Put the channel (memfd + socket end from the router) under the application's
 * @fd, keeping its O_NONBLOCK and FD_CLOEXEC. @handed: the channel's socket
 * is one another process passed on (SCM_RIGHTS), whose open file, with its
 * O_NONBLOCK, the application now shares, as it would a passed TCP socket.
 * On failure @fd is untouched and the caller falls back to the kernel.
 */
int pw_adopt(int fd, int memfd, int sock, const struct pw_wire_conn *body, bool handed)
{
	struct pw_sock *s = NULL;
	int fl, fdfl;

	if (handed || !pw_fresh_flags(fd, &fl, &fdfl)) {
		fl = pw_real.fcntl(handed ? sock : fd, F_GETFL);
		fdfl = pw_real.fcntl(fd, F_GETFD);
	}
	if (fl < 0 || fdfl < 0)
		goto fail;
	if (!handed && (fl & O_NONBLOCK) && pw_real.fcntl(sock, F_SETFL, O_NONBLOCK) < 0)
		goto fail;
	/* A fresh socket has the defaults but for the options set since. */
	uint32_t set = 0;
	bool fresh = !handed && pw_fresh_get(fd, &set);
	s = pw_conn_new_shm(memfd, sock, body, handed || fresh ? -1 : fd, (fl & O_NONBLOCK) != 0,
			    handed);
	if (!s)
		goto fail;
	if (fresh)
		pw_opts_carry_set(s, fd, set);
	if (handed) {
		/* The sender may hold it still: other processes may use it. */
		atomic_store_explicit(&s->nb_gen, PW_GEN_ASK, memory_order_relaxed);
		atomic_store_explicit(&s->shared, true, memory_order_relaxed);
		s->ops->mark_shared(s->xp);
	}
	/* Made here by connect() and never handed on: its channel may be
	 * reused once it ends (reuse.c). */
	atomic_store_explicit(&s->reusable, !handed, memory_order_relaxed);
	if (pw_conn_install(fd, sock, fdfl, s) < 0) {
		s->ops->set_fd(s->xp, -1); /* @sock stays ours, to close below */
		s->ops->detach(s->xp);
		free(s->opts);
		free(s);
		goto fail;
	}
	pw_real.close(memfd);
	return 0;
fail:
	pw_real.close(sock);
	pw_real.close(memfd);
	return -1;
}

/*
 * Put a claimed parked channel (@xp, readiness fd @sock) under the
 * application's fresh socket @fd, whose options set since socket() are
 * @set, keeping its O_NONBLOCK and FD_CLOEXEC. On failure @fd is untouched
 * and @xp is still the caller's.
 */
int pw_adopt_parked(int fd, int sock, void *xp, const struct pw_wire_conn *body, uint32_t set)
{
	int fl, fdfl;
	struct pw_sock *s;

	if (!pw_fresh_flags(fd, &fl, &fdfl)) {
		fl = pw_real.fcntl(fd, F_GETFL);
		fdfl = pw_real.fcntl(fd, F_GETFD);
	}
	/* The parked socket's open file keeps the last connection's flag. */
	if (fl < 0 || fdfl < 0 || pw_real.fcntl(sock, F_SETFL, fl & O_NONBLOCK) < 0)
		return -1;
	s = pw_conn_new(&pw_xport_shm, body);
	if (!s)
		return -1;
	s->xp = xp;
	atomic_store_explicit(&s->nonblock, (fl & O_NONBLOCK) != 0, memory_order_relaxed);
	atomic_store_explicit(&s->reusable, true, memory_order_relaxed);
	pw_opts_carry_set(s, fd, set);
	if (pw_conn_install(fd, sock, fdfl, s) < 0) {
		free(s->opts);
		free(s);
		return -1;
	}
	return 0;
}

int pw_adopt_tcp_prep(int fd, int sock, bool sock_nb, int *ret_fl, int *ret_fdfl)
{
	if (!pw_fresh_flags(fd, ret_fl, ret_fdfl)) {
		*ret_fl = pw_real.fcntl(fd, F_GETFL);
		*ret_fdfl = pw_real.fcntl(fd, F_GETFD);
	}
	if (*ret_fl < 0 || *ret_fdfl < 0 ||
	    (sock_nb != ((*ret_fl & O_NONBLOCK) != 0) &&
	     pw_real.fcntl(sock, F_SETFL, *ret_fl & O_NONBLOCK) < 0))
		return -1;
	uint32_t set;
	if (!pw_fresh_get(fd, &set))
		pw_xport_kernel_carry_opts(fd, sock);
	else
		pw_xport_kernel_carry_set(fd, sock, set);
	return 0;
}

int pw_adopt_tcp_install(int fd, int sock, const struct pw_wire_conn *body, int fl, int fdfl)
{
	struct pw_sock *s = pw_conn_new(&pw_xport_kernel, body);

	if (!s)
		goto fail;
	atomic_store_explicit(&s->nonblock, (fl & O_NONBLOCK) != 0, memory_order_relaxed);
	if (pw_conn_install(fd, sock, fdfl, s) < 0)
		goto fail;
	return 0;
fail:
	free(s);
	pw_real.close(sock);
	return -1;
}

/* A kernel socket connected to another node (CONN_TCP), under @fd. */
static int pw_adopt_tcp(int fd, int sock, const struct pw_wire_conn *body)
{
	int fl, fdfl;

	if (pw_adopt_tcp_prep(fd, sock, true, &fl, &fdfl) < 0) {
		pw_real.close(sock);
		return -1;
	}
	return pw_adopt_tcp_install(fd, sock, body, fl, fdfl);
}

/* The router's answer to CONNECT or CLAIM, put under @fd. */
static int pw_adopt_reply(int fd, const struct pw_msg *m, int n, int fds[PW_WIRE_MAX_FDS])
{
	if (n == 2 && m->type == PW_MSG_CONN)
		return pw_adopt(fd, fds[0], fds[1], &m->u.conn, false);
	if (n == 1 && m->type == PW_MSG_CONN_TCP)
		return pw_adopt_tcp(fd, fds[0], &m->u.conn);
	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]);
	return -1;
}

/* ---- connection setup ---- */

PW_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	pw_ensure();
	struct pw_sock *s = pw_fdtab_get(fd);
	if (s && s->kind != PW_K_LISTEN && s->connect_unreported) {
		s->connect_unreported = false; /* Linux: the first look after completion */
		return 0;
	}
	if (s)
		return pw_fail(s->kind != PW_K_LISTEN ? EISCONN : EINVAL);
	/* The kernel has this socket's connect already (left to it, or fallen
	 * back): the next connect() is its to answer (EALREADY, EISCONN, 0). */
	if (pw_fresh_adapt_get(fd))
		return pw_real.connect(fd, addr, len);

	/* IPv4, or IPv4-mapped IPv6 from a dual-stack socket of that family. */
	struct sockaddr_in dst;
	if (pw_cfg.disabled || !addr || len < sizeof(sa_family_t) ||
	    pw_addr_to4(addr, len, &dst) < 0 || dst.sin_addr.s_addr == htonl(INADDR_ANY) ||
	    !pw_ctl_prefixes_known() || !pw_in_prefixes(&dst))
		return pw_real.connect(fd, addr, len);
	/* A channel of an earlier connection there, parked, or a connection
	 * to another node dialled for the pool: no setup at all (reuse.c,
	 * pool.c). For a socket still unbound (to a port or an address), as
	 * either comes with its addresses. */
	struct sockaddr_in local;
	bool have_local = false, pooled = false;
	pw_pool_collect(&dst, addr->sa_family);
	if (pw_reuse_connect_ok(fd, addr->sa_family)) {
		have_local = pw_sockname4(fd, &local) == 0;
		if (have_local && local.sin_port == 0 &&
		    local.sin_addr.s_addr == htonl(INADDR_ANY) &&
		    pw_reuse_connect(fd, &dst, addr->sa_family) == 0) {
			/* One less in the pool: its next are asked for now, so
			 * its close need not tell adapt.c (no TCP_INFO). */
			pooled = pw_fdtab_get(fd)->ops->kernel_io;
			if (pooled)
				pw_pool_fill(&dst, addr->sa_family, false);
			goto connected;
		}
	}
	/* Connections there have been short of late: the kernel sets one up
	 * faster (adapt.c). */
	unsigned slot = pw_adapt_kernel(&dst);
	/* Unless the channels parked there are too few for this process's
	 * connections at a time: one more pays back (reuse.c). */
	if (slot && slot != PW_ADAPT_FALLBACK && pw_reuse_growing(&dst, addr->sa_family))
		slot = 0;
	if (slot) {
		/* (Its pool ran dry: more are asked for, for the next.) */
		if (slot != PW_ADAPT_FALLBACK)
			pw_pool_fill(&dst, addr->sa_family, false);
		pw_fresh_mark_adapt(fd, slot);
		return pw_real.connect(fd, addr, len);
	}
	if (pw_tcp_family(fd) != addr->sa_family)
		return pw_real.connect(fd, addr, len);

	/* Give the socket its port now: the peer will see it as ours. */
	if (!have_local && pw_sockname4(fd, &local) < 0)
		goto kernel;
	if (local.sin_port == 0) {
		struct sockaddr_storage any;
		socklen_t alen = pw_addr_from4(&local, addr->sa_family, &any);

		if (bind(fd, (struct sockaddr *)&any, alen) < 0 || pw_sockname4(fd, &local) < 0)
			goto kernel;
	}

	struct pw_wire_connect req;
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];
	pw_addr_to_wire(&local, AF_INET, &req.local);
	pw_addr_to_wire(&dst, AF_INET, &req.peer);
	int n = pw_ctl_call(PW_MSG_CONNECT, &req, sizeof(req), &fd, 1, &m, fds);
	if (n == 0 && m.type == PW_MSG_ERR && m.u.err.err == ECONNREFUSED)
		pw_adapt_note_none(&dst, PW_ADAPT_NONE_MS);
	if (pw_adopt_reply(fd, &m, n, fds) == 0) {
		pw_dbg("fd %d: connected over podwire (conn %llu, %s)", fd,
		       (unsigned long long)m.u.conn.id,
		       m.type == PW_MSG_CONN ? "shared memory" : "direct to another node");
		goto connected;
	}
kernel:
	pw_fresh_mark_adapt(fd, PW_ADAPT_FALLBACK);
	return pw_real.connect(fd, addr, len);
connected:;
	struct pw_sock *c = pw_fdtab_get(fd);
	c->adapt = !pooled;
	/* Exactly as a kernel socket would answer (adopting read O_NONBLOCK). */
	if (atomic_load_explicit(&c->nonblock, memory_order_relaxed)) {
		c->connect_unreported = true;
		return pw_fail(EINPROGRESS);
	}
	return 0;
}

/* ---- how much a connection carried (adapt.c) ---- */

/* 1: the kernel TCP socket @fd carried a long connection; 0: a short one;
 * -1: the kernel cannot say. */
static int pw_adapt_tcp_long(int fd)
{
	uint64_t segs, bytes;

	return pw_tcp_info_activity(fd, &segs, &bytes) < 0 ? -1 : pw_adapt_is_long(segs, bytes);
}

void pw_adapt_kernel_closing(int fd, unsigned slot)
{
	int l = pw_adapt_tcp_long(fd);

	if (l >= 0)
		pw_adapt_note_slot(slot, l);
}

void pw_adapt_conn_closing(int fd, struct pw_sock *s)
{
	if (!s->adapt)
		return;
	/* A kernel socket to another node: the kernel counted. */
	int l = s->ops->kernel_io ? pw_adapt_tcp_long(fd)
				  : pw_adapt_is_long(s->io_calls[0] + s->io_calls[1],
						     s->io_bytes[0] + s->io_bytes[1]);
	if (l >= 0)
		pw_adapt_note(&s->peer, l);
	/* Short connections to another node, one after another: the next are
	 * dialled ahead (where adapt.c would leave them to the kernel). */
	if (l == 0 && s->ops->kernel_io && pw_adapt_kernel(&s->peer))
		pw_pool_fill(&s->peer, s->family, true);
}
