// SPDX-License-Identifier: MIT
/*
 * Handing connections to other processes (SCM_RIGHTS): sendmsg, recvmsg.
 */
#include "preload.h"

/* ---- handing connections to other processes (SCM_RIGHTS) ---- */

/*
 * A connection passed over a Unix socket goes as a kernel stream that the
 * router relays to the channel, so that a receiver without the library gets
 * a working stream; a receiver with it takes the channel itself (TAKE).
 * See docs/PRELOAD.md.
 */

/*
 * A kernel stream that the router relays to @s's channel (@fd, its socket,
 * is the proof), with @fd's O_NONBLOCK; -1 if the router cannot. The router
 * holds the channel too from now on: our close is no longer the last.
 */
int pw_relay_stream(int fd, struct pw_sock *s, uint32_t flags)
{
	struct pw_wire_relay req = { .id = s->id, .flags = flags };
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];
	int n = pw_ctl_call(PW_MSG_RELAY, &req, sizeof(req), &fd, 1, &m, fds);

	if (n != 1 || m.type != PW_MSG_RELAY_OK) {
		for (int i = 0; i < n; i++)
			pw_real.close(fds[i]);
		return -1;
	}
	int fl = pw_real.fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		pw_real.fcntl(fds[0], F_SETFL, O_NONBLOCK);
	/* Whoever receives it shares the open file, not our generation page. */
	atomic_store_explicit(&s->nb_gen, PW_GEN_ASK, memory_order_relaxed);
	if (!atomic_exchange_explicit(&s->shared, true, memory_order_relaxed))
		s->ops->mark_shared(s->xp);
	return fds[0];
}

/* Call @fn on each fd that @mh carries with SCM_RIGHTS, by reference. */
static void pw_rights_each(struct msghdr *mh, void (*fn)(int *fd, void *arg), void *arg)
{
	if (!mh->msg_control || mh->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		unsigned char *p = CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, p + i * sizeof(int), sizeof(fd));
			fn(&fd, arg);
			memcpy(p + i * sizeof(int), &fd, sizeof(fd));
		}
	}
}

/* Count the accelerated connections; a fresh socket sent is shared from
 * now on (the spare, sock.c). */
static void pw_rights_count(int *fd, void *arg)
{
	pw_fresh_note_odd(*fd);
	if (pw_conn_of(*fd))
		(*(unsigned *)arg)++;
}

struct pw_rights_out {
	int *streams;
	unsigned n;
	int err;
};

/* Swap an accelerated connection for a relayed stream to pass instead. */
static void pw_rights_swap(int *fd, void *arg)
{
	struct pw_rights_out *o = arg;
	struct pw_sock *s = pw_conn_of(*fd);

	if (!s || o->err)
		return;
	int stream = pw_relay_stream(*fd, s, 0);
	if (stream < 0) {
		o->err = ENOBUFS; /* the router cannot take the connection on */
		return;
	}
	o->streams[o->n++] = stream;
	*fd = stream;
}

/* The message was not sent: end the relays before anyone reads them. */
static void pw_rights_take_back(int stream)
{
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];
	int n = pw_ctl_call(PW_MSG_TAKE, NULL, 0, &stream, 1, &m, fds);

	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]); /* our own connection's channel: we have it */
}

static ssize_t pw_sendmsg_rights(int fd, const struct msghdr *mh, int flags)
{
	unsigned count = 0;
	struct msghdr copy = *mh;

	pw_rights_each(&copy, pw_rights_count, &count);
	if (!count)
		return pw_real.sendmsg(fd, mh, flags);
	struct pw_rights_out o = { .streams = calloc(count, sizeof(int)) };
	copy.msg_control = malloc(mh->msg_controllen);
	ssize_t r = -1;
	if (!o.streams || !copy.msg_control) {
		errno = ENOBUFS;
		goto out;
	}
	memcpy(copy.msg_control, mh->msg_control, mh->msg_controllen);
	pw_rights_each(&copy, pw_rights_swap, &o);
	if (o.err)
		errno = o.err;
	else
		r = pw_real.sendmsg(fd, &copy, flags);
out:;
	int saved = errno;
	for (unsigned i = 0; i < o.n; i++) {
		if (r < 0)
			pw_rights_take_back(o.streams[i]);
		pw_real.close(o.streams[i]);
	}
	free(o.streams);
	free(copy.msg_control);
	errno = saved;
	return r;
}

/* A received fd that may be a relayed stream: take the channel over. */
static void pw_rights_take(int *fd, void *arg)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int v;
	socklen_t vlen = sizeof(v);
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];

	(void)arg;
	if (pw_real.getsockopt(*fd, SOL_SOCKET, SO_DOMAIN, &v, &vlen) < 0 || v != AF_UNIX)
		return;
	vlen = sizeof(v);
	if (pw_real.getsockopt(*fd, SOL_SOCKET, SO_TYPE, &v, &vlen) < 0 || v != SOCK_STREAM)
		return;
	/* Only the router makes them (a cheap test before asking it). */
	if (pw_real.getsockopt(*fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    !pw_ctl_made_by_router(cred.pid))
		return;
	int n = pw_ctl_call(PW_MSG_TAKE, NULL, 0, fd, 1, &m, fds);
	if (n == 2 && m.type == PW_MSG_CONN) {
		if (pw_adopt(*fd, fds[0], fds[1], &m.u.conn, true) == 0)
			pw_dbg("fd %d: a handed connection taken over (conn %llu)", *fd,
			       (unsigned long long)m.u.conn.id);
		return;
	}
	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]);
}

PW_EXPORT ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s) {
		ssize_t r = pw_real.recvmsg(fd, mh, flags);
		if (r >= 0 && !pw_cfg.disabled && mh->msg_controllen) {
			int saved = errno;
			pw_rights_each(mh, pw_rights_take, NULL);
			errno = saved;
		}
		return r;
	}
	ssize_t r = pw_sock_readv(s, mh->msg_iov, (int)mh->msg_iovlen, flags);
	if (r >= 0) {
		mh->msg_namelen = 0;
		mh->msg_controllen = 0;
		mh->msg_flags = 0;
	}
	return r;
}

PW_EXPORT ssize_t sendmsg(int fd, const struct msghdr *mh, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return mh && mh->msg_controllen ? pw_sendmsg_rights(fd, mh, flags)
						: pw_real.sendmsg(fd, mh, flags);
	if (mh->msg_controllen)
		return pw_fail(EOPNOTSUPP); /* no ancillary data on TCP */
	return pw_sock_writev(s, mh->msg_iov, (int)mh->msg_iovlen, flags);
}
