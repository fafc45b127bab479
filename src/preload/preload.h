/* SPDX-License-Identifier: MIT */
/* libpodwire.so internals. */
#ifndef PW_PRELOAD_H
#define PW_PRELOAD_H

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <podwire/chan.h>
#include <podwire/wire.h>

#include "proto.h"

/* ioctl's request is an unsigned long in glibc, an int in musl. */
#ifdef __GLIBC__
typedef unsigned long pw_ioctl_req_t;
#else
typedef int pw_ioctl_req_t;
#endif

/* The libc functions we interpose, resolved with dlsym(RTLD_NEXT). */
struct pw_real_fns {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*close)(int);
	int (*shutdown)(int, int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, pw_ioctl_req_t, ...);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
		       const sigset_t *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
			    const sigset_t *);
};

extern struct pw_real_fns pw_real;

struct pw_cfg {
	bool disabled;
	bool restricted; /* the process entered seccomp mode: we stepped aside */
	bool prefix_from_env;
	const char *socket_path;
	struct {
		uint32_t net, mask;
	} prefixes[PW_WIRE_MAX_PREFIXES];
	unsigned nprefixes;
	uint32_t spin_ns;
	int log_level; /* -1: silent */
	int log_fd;
};

extern struct pw_cfg pw_cfg;

void pw_prefix_add(uint32_t net, unsigned len);

/* Logging, only when PODWIRE_LOG asks for it. */
void pw_plog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pw_err(...)  pw_plog(0, __VA_ARGS__)
#define pw_warn(...) pw_plog(1, __VA_ARGS__)
#define pw_info(...) pw_plog(2, __VA_ARGS__)
#define pw_dbg(...)                                                                                \
	do {                                                                                       \
		if (pw_cfg.log_level >= 3)                                                         \
			pw_plog(3, __VA_ARGS__);                                                   \
	} while (0)

/* Control connection to podwired (ctl.c): send a request with @fds, wait for
 * the reply's fixed body (no list entries) and up to two fds. Returns the
 * number of fds received, or -errno. */
int pw_ctl_call(uint16_t type, const void *body, size_t len, const int *fds, unsigned nfds,
		struct pw_msg *ret, int ret_fds[2]);
bool pw_ctl_prefixes_known(void);
/* Is @creator (a socket's SO_PEERCRED pid) the router, as this process sees
 * its pid? Connects to the router if need be. */
bool pw_ctl_made_by_router(pid_t creator);
void pw_ctl_atfork_child(void);
/* Is the router there (connecting if need be)? */
bool pw_ctl_reachable(void);
/* Close the control connection for good (seccomp: no more requests). */
void pw_ctl_close(void);

#endif /* PW_PRELOAD_H */
