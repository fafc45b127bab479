/* SPDX-License-Identifier: MIT */
/*
 * The connect cycle of podwire-bench: connect, one-byte echoes, the server's
 * close, the client's close (cycle.c).
 */
#ifndef PW_BENCH_CYCLE_H
#define PW_BENCH_CYCLE_H

#include <netinet/in.h>
#include <stdint.h>

/* A listening TCP socket on @at (port 0: any). Errors: socket(2), bind(2),
 * listen(2). */
int pw_cycle_listen(const struct sockaddr_in *at, int *ret_fd);
/* Serve cycles on @lfd until pw_now_ns() reaches @until. Returns 0, or
 * -errno of poll(2) or accept4(2) (not ECONNABORTED, which it skips). */
int pw_cycle_serve(int lfd, uint64_t until);
#define PW_CYCLE_MAX_EXCHANGES 255u
/* One cycle to @to, with @exchanges one-byte echoes (1 to
 * PW_CYCLE_MAX_EXCHANGES). Returns 0; -errno of connect(2), send(2) or
 * recv(2); -EINVAL: @exchanges out of range; -EPIPE: closed before an echo;
 * -EPROTO: more than the echoes came. */
int pw_cycle_once(const struct sockaddr_in *to, unsigned exchanges);

#endif /* PW_BENCH_CYCLE_H */
