/* SPDX-License-Identifier: MIT */
/*
 * The connect cycle of podwire-bench: connect, one-byte echoes, the server's
 * close, the client's close (cycle.c).
 */
#ifndef PW_BENCH_CYCLE_H
#define PW_BENCH_CYCLE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PW_CYCLE_BATCH	       16u /* sockets the maker hands over at a time */
#define PW_CYCLE_ID_LEN	       24u /* the identity a handed-over socket's SYN carries */
#define PW_CYCLE_MAX_EXCHANGES 255u

/* A listening TCP socket on @at (port 0: any); for hand-over cycles
 * (@handover), with Fast Open and TCP_DEFER_ACCEPT. Errors: socket(2),
 * setsockopt(2), bind(2), listen(2). */
int pw_cycle_listen(const struct sockaddr_in *at, bool handover, int *ret_fd);
/* Serve cycles on @lfd until pw_now_ns() reaches @until, reading each
 * connection's identity first if @handover. Returns 0, or -errno of
 * poll(2) or accept4(2) (not ECONNABORTED, which it skips). */
int pw_cycle_serve(int lfd, uint64_t until, bool handover);

/* The hand-over's maker (cycle.c, top): a child process that makes
 * sockets connected to one destination, and those it handed over. */
struct pw_cycle_maker {
	pid_t pid;
	int fd; /* to the maker */
	int socks[PW_CYCLE_BATCH * 2];
	unsigned n;
	bool asked; /* a batch is on its way */
};
/* Fork a maker for @to. Errors: socketpair(2), fork(2). */
int pw_cycle_maker_start(struct pw_cycle_maker *m, const struct sockaddr_in *to);
/* Close what is left and wait for the maker's end. */
void pw_cycle_maker_stop(struct pw_cycle_maker *m);

/* One cycle to @to, with @exchanges one-byte echoes (1 to
 * PW_CYCLE_MAX_EXCHANGES), connected by connect(2), or (@maker) with one
 * of its sockets. Returns 0; -errno of connect(2), send(2) or recv(2);
 * -EINVAL: @exchanges out of range; -EPIPE: closed before an echo;
 * -EPROTO: more than the echoes came; with a maker also -ECONNREFUSED (the
 * handshake failed), the errno of the maker's sockets when it made none
 * (-EOPNOTSUPP: Fast Open off for clients), -EIO or -EPIPE (it ended). */
int pw_cycle_once(const struct sockaddr_in *to, unsigned exchanges, struct pw_cycle_maker *maker);

#endif /* PW_BENCH_CYCLE_H */
