/* SPDX-License-Identifier: MIT */
/*
 * Direct system calls for code that also runs inside libpodwire.so. The
 * preload library interposes recv, send, poll, close, ... on the application's
 * behalf; the channel and protocol code must reach the kernel itself, not the
 * interposed versions, or it would recurse into them.
 */
#ifndef PW_COMMON_SYS_H
#define PW_COMMON_SYS_H

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static inline ssize_t pw_sys_send(int fd, const void *buf, size_t n, int flags)
{
	return syscall(SYS_sendto, fd, buf, n, flags, (struct sockaddr *)0, (socklen_t)0);
}

static inline ssize_t pw_sys_recv(int fd, void *buf, size_t n, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, n, flags, (struct sockaddr *)0, (socklen_t *)0);
}

static inline ssize_t pw_sys_sendmsg(int fd, const struct msghdr *mh, int flags)
{
	return syscall(SYS_sendmsg, fd, mh, flags);
}

static inline ssize_t pw_sys_recvmsg(int fd, struct msghdr *mh, int flags)
{
	return syscall(SYS_recvmsg, fd, mh, flags);
}

static inline int pw_sys_sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	return (int)syscall(SYS_sendmmsg, fd, v, n, flags);
}

static inline int pw_sys_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	struct timespec ts = { timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000 };

	/* Typed null pointers: syscall(2) is variadic. */
	return (int)syscall(SYS_ppoll, fds, n, timeout_ms < 0 ? (struct timespec *)0 : &ts,
			    (sigset_t *)0, (size_t)8);
}

/* poll(2) itself, not ppoll: what a seccomp filter that allows waiting
 * most often lets through (OpenSSH's). */
static inline int pw_sys_poll_plain(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	return (int)syscall(SYS_poll, fds, n, timeout_ms);
}

static inline ssize_t pw_sys_read(int fd, void *buf, size_t n)
{
	return syscall(SYS_read, fd, buf, n);
}

static inline ssize_t pw_sys_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

/* memfd_create(2) and fstat(2) as system calls: the libc functions carry
 * symbol versions (2.27, 2.33) that older C libraries in a pod lack. */
static inline int pw_sys_memfd_create(const char *name, unsigned flags)
{
	return (int)syscall(SYS_memfd_create, name, flags);
}

static inline int pw_sys_fstat(int fd, struct stat *st)
{
	return (int)syscall(SYS_fstat, fd, st);
}

static inline int pw_sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

static inline int pw_sys_ioctl(int fd, unsigned long req, void *arg)
{
	return (int)syscall(SYS_ioctl, fd, req, arg);
}

static inline int pw_sys_setsockopt(int fd, int level, int name, const void *v, socklen_t n)
{
	return (int)syscall(SYS_setsockopt, fd, level, name, v, n);
}

static inline int pw_sys_getsockopt(int fd, int level, int name, void *v, socklen_t *n)
{
	return (int)syscall(SYS_getsockopt, fd, level, name, v, n);
}

static inline int pw_sys_fcntl(int fd, int cmd, long arg)
{
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

#endif /* PW_COMMON_SYS_H */
