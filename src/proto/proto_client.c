// SPDX-License-Identifier: MIT
/*
 * One request/reply exchange with podwired, for tools that are not the
 * preload library (podwire CLI, podwire-nfd): plain libc calls, a fresh
 * connection per call.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/addr.h"
#include "proto.h"

int pw_proto_call(const char *path, uint16_t type, const void *body, size_t body_len, int fd,
		  int timeout_ms, struct pw_msg *ret, uint8_t *buf)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	int fds[PW_WIRE_MAX_FDS];
	unsigned nfds = 0;
	ssize_t n;
	int s, r;

	if (pw_addr_unix(path, &a) < 0)
		return -ENAMETOOLONG;
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		goto out;
	}
	r = pw_msg_send(s, type, 1, body, body_len, NULL, 0, &fd, fd >= 0 ? 1 : 0);
	if (r < 0)
		goto out;
	pfd.fd = s;
	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r != 1) {
		r = r < 0 ? -errno : -ETIMEDOUT;
		goto out;
	}
	n = pw_msg_recv(s, buf, PW_WIRE_MAX, fds, &nfds, 0);
	if (n <= 0) {
		r = n == 0 ? -ECONNRESET : (int)n;
		goto out;
	}
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	r = pw_msg_parse(buf, (size_t)n, nfds, ret);
out:
	close(s);
	return r;
}
