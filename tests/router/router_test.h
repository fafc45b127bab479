/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the router's unit tests: a client of the dispatcher on one end
 * of a SOCK_SEQPACKET socketpair, the test playing the library on the other.
 */
#ifndef PW_ROUTER_TEST_H
#define PW_ROUTER_TEST_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "pw_test.h"
#include "router.h"
#include "util.h"

/* The router's end is @c->fd; the test's is returned. */
static inline int rt_client_open(struct pw_client *c, uid_t uid)
{
	int sv[2];

	PW_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0,
		 "socketpair: %s", strerror(errno));
	*c = (struct pw_client){ .fd = sv[0], .pid = getpid(), .uid = uid };
	return sv[1];
}

/* The next reply on @peer, or -EAGAIN if there is none. */
static inline int rt_reply(int peer, struct pw_msg *m, uint8_t buf[PW_WIRE_MAX])
{
	int fds[PW_WIRE_MAX_FDS];
	unsigned nfds = 0;
	ssize_t n = pw_msg_recv(peer, buf, PW_WIRE_MAX, fds, &nfds, MSG_DONTWAIT);

	if (n < 0)
		return (int)n;
	for (unsigned i = 0; i < nfds; i++)
		close(fds[i]);
	PW_CHECK(n > 0, "the router closed the connection");
	return pw_msg_parse(buf, (size_t)n, nfds, m);
}

/* Expect the reply ERR @err for request @seq. */
#define RT_CHECK_ERR(rt_peer, rt_seq, rt_err)                                                      \
	do {                                                                                       \
		static uint8_t rt_buf_[PW_WIRE_MAX] __attribute__((aligned(8)));                   \
		struct pw_msg rt_m_;                                                               \
		PW_CHECK_EQ(rt_reply(rt_peer, &rt_m_, rt_buf_), 0);                                \
		PW_CHECK_EQ(rt_m_.type, PW_MSG_ERR);                                               \
		PW_CHECK_EQ(rt_m_.seq, rt_seq);                                                    \
		PW_CHECK_EQ(rt_m_.u.err.err, rt_err);                                              \
	} while (0)

/* Expect no reply at all. */
#define RT_CHECK_NO_REPLY(peer)                                                                    \
	do {                                                                                       \
		static uint8_t rt_buf_[PW_WIRE_MAX] __attribute__((aligned(8)));                   \
		struct pw_msg rt_m_;                                                               \
		PW_CHECK_EQ(rt_reply(peer, &rt_m_, rt_buf_), -EAGAIN);                             \
	} while (0)

static inline bool rt_fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static inline struct sockaddr_in rt_sin(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	PW_CHECK(inet_pton(AF_INET, ip, &a.sin_addr) == 1, "%s", ip);
	return a;
}

#endif /* PW_ROUTER_TEST_H */
