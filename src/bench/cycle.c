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
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/util.h"
#include "cycle.h"

#define PW_CYCLE_MORE 0x80u

int pw_cycle_listen(const struct sockaddr_in *at, int *ret_fd)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
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

/* Serve one accepted connection: echo bytes until the last, then close. */
static void pw_cycle_echo(int fd)
{
	unsigned char b;

	while (pw_cycle_recv1(fd, &b) == 1 && pw_cycle_send1(fd, b) == 1 && (b & PW_CYCLE_MORE))
		;
	close(fd);
}

int pw_cycle_serve(int lfd, uint64_t until)
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
		pw_cycle_echo(fd);
	}
}

int pw_cycle_once(const struct sockaddr_in *to, unsigned exchanges)
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
	if (connect(fd, (const struct sockaddr *)to, sizeof(*to)) < 0) {
		r = -errno;
		goto out;
	}
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
