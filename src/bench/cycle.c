// SPDX-License-Identifier: MIT
/*
 * The connect cycle: connect, send one byte, read its echo (as many times as
 * asked), see the server close, close. Plain TCP sockets only: run under
 * libpodwire.so it measures podwire's connection setup, without it the
 * kernel's. A byte with the high bit set says that more exchanges follow;
 * the server closes after echoing any other (any client's single byte).
 *
 * The server closes first, as an HTTP server answering "Connection: close"
 * does, so TIME_WAIT stays on the server's side and a client can open
 * connections back to back without running out of ports.
 *
 * The hand-over (--handover) is the floor of podwire's pooled connections
 * to another node (docs/FEDERATION.md, "Pools"), in the kernel alone: what
 * any design must do in which a pod, which cannot make sockets in its
 * node's network namespace, talks over the node's own TCP and names itself
 * to the server. A second process (the maker, as a node's router) makes the
 * sockets, 16 at a time, each connected with TCP Fast Open deferred (no
 * packet), and hands them over in one message; the cycle makes its own
 * socket (as the application does), takes one of the maker's, writes a
 * 24-byte identity that the SYN carries, waits for the handshake and puts
 * the socket under its own number (dup3). The server reads the identity
 * before the echo. No podwire code is on the path: run it without the
 * library, beside the plain cycle, on the same hosts.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/util.h"
#include "proto.h"
#include "cycle.h"

#define PW_CYCLE_MORE 0x80u

int pw_cycle_listen(const struct sockaddr_in *at, bool handover, int *ret_fd)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r, qlen = 128, defer = 30;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* As a pooled listener's socket: the identity in the SYN makes the
	 * connection acceptable at once; without Fast Open on this host (its
	 * tcp_fastopen sysctl), the kernel holds it until the identity comes. */
	if (handover &&
	    (setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer)) < 0 ||
	     setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) < 0 ||
	     setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one)) < 0)) {
		r = -errno;
		close(fd);
		return r;
	}
	if (bind(fd, (const struct sockaddr *)at, sizeof(*at)) < 0 || listen(fd, 128) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/* One byte out or in, retrying EINTR: 1, 0 (recv: end of stream), or -errno. */
static ssize_t pw_cycle_send1(int fd, unsigned char b)
{
	ssize_t n;

	do
		n = send(fd, &b, 1, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static ssize_t pw_cycle_recv1(int fd, unsigned char *b)
{
	ssize_t n;

	do
		n = recv(fd, b, 1, 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

/* Serve one accepted connection: read the identity (@handover), echo
 * bytes until the last, then close. */
static void pw_cycle_echo(int fd, bool handover)
{
	unsigned char b, id[PW_CYCLE_ID_LEN];
	size_t got = 0;

	while (handover && got < sizeof(id)) {
		ssize_t n = recv(fd, id + got, sizeof(id) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return;
		}
		got += (size_t)n;
	}
	while (pw_cycle_recv1(fd, &b) == 1 && pw_cycle_send1(fd, b) == 1 && (b & PW_CYCLE_MORE))
		;
	close(fd);
}

int pw_cycle_serve(int lfd, uint64_t until, bool handover)
{
	for (;;) {
		uint64_t now = pw_now_ns();
		struct pollfd p = { .fd = lfd, .events = POLLIN };

		if (now >= until)
			return 0;
		int n = poll(&p, 1, (int)((until - now) / 1000000u) + 1);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* A client that gave up before we took it is no reason to stop. */
			if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
				continue;
			return -errno;
		}
		pw_cycle_echo(fd, handover);
	}
}

/* ---- the hand-over ---- */

/* A socket connected to @to with Fast Open deferred: no packet yet. */
static int pw_cycle_deferred(const struct sockaddr_in *to)
{
	int one = 1, s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return -1;
	if (setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)) < 0 ||
	    setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_NO_COOKIE, &one, sizeof(one)) < 0 ||
	    connect(s, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* The maker: a batch for each byte read from @fd, until its end. A batch
 * that could not be made whole goes as far as it got; none is a message
 * without fds whose byte is the errno. */
static void pw_cycle_maker_run(int fd, const struct sockaddr_in *to)
{
	for (;;) {
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(n < 0);
		int socks[PW_CYCLE_BATCH];
		unsigned k = 0;
		while (k < PW_CYCLE_BATCH && (socks[k] = pw_cycle_deferred(to)) >= 0)
			k++;
		/* None made: the byte says why (Fast Open off for clients:
		 * EOPNOTSUPP). */
		c = k ? 0 : (char)(errno > 0 && errno < 128 ? errno : EIO);
		struct iovec iov = { .iov_base = &c, .iov_len = 1 };
		int r = pw_fds_send(fd, &iov, 1, socks, k);
		for (unsigned i = 0; i < k; i++)
			close(socks[i]);
		if (r < 0)
			_exit(1);
	}
}

int pw_cycle_maker_start(struct pw_cycle_maker *m, const struct sockaddr_in *to)
{
	int sp[2];

	*m = (struct pw_cycle_maker){ .pid = -1, .fd = -1 };
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	fflush(NULL);
	m->pid = fork();
	if (m->pid < 0) {
		int r = -errno;
		close(sp[0]);
		close(sp[1]);
		return r;
	}
	if (m->pid == 0) {
		close(sp[0]);
		pw_cycle_maker_run(sp[1], to);
	}
	close(sp[1]);
	m->fd = sp[0];
	return 0;
}

void pw_cycle_maker_stop(struct pw_cycle_maker *m)
{
	while (m->n)
		close(m->socks[--m->n]);
	if (m->fd >= 0)
		close(m->fd); /* (its end of stream ends the maker) */
	m->fd = -1;
	while (m->pid > 0 && waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
		;
	m->pid = -1;
}

/* One of the maker's sockets: asked for again at half a batch left, taken
 * in without waiting while some are left. -errno: the maker failed. */
static int pw_cycle_take(struct pw_cycle_maker *m)
{
	if (!m->asked && m->n <= PW_CYCLE_BATCH / 2) {
		ssize_t n;
		do
			n = write(m->fd, "m", 1);
		while (n < 0 && errno == EINTR);
		if (n != 1)
			return n < 0 ? -errno : -EIO;
		m->asked = true;
	}
	if (m->asked) {
		union {
			char buf[CMSG_SPACE(PW_CYCLE_BATCH * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		char c;
		struct iovec iov = { .iov_base = &c, .iov_len = 1 };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		ssize_t n;
		do
			n = recvmsg(m->fd, &mh, MSG_CMSG_CLOEXEC | (m->n ? MSG_DONTWAIT : 0));
		while (n < 0 && errno == EINTR);
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if (n == 0)
			return -EPIPE;
		if (n > 0) {
			struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
			size_t k = h && h->cmsg_type == SCM_RIGHTS
					   ? (h->cmsg_len - CMSG_LEN(0)) / sizeof(int)
					   : 0;
			if (!k || k > PW_CYCLE_BATCH)
				return c > 0 ? -c : -EIO; /* the maker could not make one */
			memcpy(&m->socks[m->n], CMSG_DATA(h), k * sizeof(int));
			m->n += (unsigned)k;
			m->asked = false;
		}
	}
	return m->socks[--m->n];
}

/* Wait until @s is connected: 0, or -errno (poll's, or ECONNREFUSED: what
 * POLLOUT showed was no connection). */
static int pw_cycle_connected(int s)
{
	struct pollfd p = { .fd = s, .events = POLLOUT };
	int n;

	do
		n = poll(&p, 1, -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return p.revents == POLLOUT ? 0 : -ECONNREFUSED;
}

/* @fd connected to the maker's destination, the way a pooled connection
 * is (see the top). */
static int pw_cycle_handover(struct pw_cycle_maker *m, int fd)
{
	static const unsigned char id[PW_CYCLE_ID_LEN];
	int one = 1, s = pw_cycle_take(m), r;
	ssize_t n;

	if (s < 0)
		return s;
	/* Made like the application's socket first, as podwire does. */
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	do
		n = send(s, id, sizeof(id), MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
		/* No Fast Open on this host: the identity follows the handshake. */
		r = pw_cycle_connected(s);
		if (r < 0)
			goto out;
		do
			n = send(s, id, sizeof(id), MSG_NOSIGNAL | MSG_DONTWAIT);
		while (n < 0 && errno == EINTR);
	}
	if (n != (ssize_t)sizeof(id))
		r = n < 0 ? -errno : -EIO;
	else if ((r = pw_cycle_connected(s)) == 0 && dup3(s, fd, O_CLOEXEC) < 0)
		r = -errno;
out:
	close(s);
	return r;
}

int pw_cycle_once(const struct sockaddr_in *to, unsigned exchanges, struct pw_cycle_maker *maker)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r = 0;
	unsigned char b;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (exchanges < 1 || exchanges > PW_CYCLE_MAX_EXCHANGES) {
		r = -EINVAL;
		goto out;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (maker)
		r = pw_cycle_handover(maker, fd);
	else if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0)
		r = -errno;
	if (r < 0)
		goto out;
	for (unsigned left = exchanges; left > 0; left--) {
		n = pw_cycle_send1(fd, left > 1 ? PW_CYCLE_MORE : 'x');
		if (n != 1) {
			r = n < 0 ? (int)n : -EIO;
			goto out;
		}
		n = pw_cycle_recv1(fd, &b);
		if (n != 1) {
			r = n < 0 ? (int)n : -EPIPE;
			goto out;
		}
	}
	/* The server's close: the cycle ends when both sides are done. */
	n = pw_cycle_recv1(fd, &b);
	if (n != 0)
		r = n < 0 ? (int)n : -EPROTO;
out:
	close(fd);
	return r;
}
