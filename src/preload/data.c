// SPDX-License-Identifier: MIT
/*
 * Data calls: read, write and their relatives, sendfile, shutdown.
 */
#include "preload.h"

/* ---- data ---- */

static int pw_errno_of(ssize_t r)
{
	return r == -EPROTO ? ECONNRESET : (int)-r;
}

static inline bool pw_sock_nonblock(struct pw_sock *s)
{
	return pw_sock_nonblock_of(s, s->ops->fd(s->xp));
}

/* glibc (2.32 and later) tracks whether the process ever made a thread in
 * __libc_single_threaded, looked up at start (older glibc and musl do not
 * say: then we always lock). */
static inline bool pw_single_threaded(void)
{
	const char *flag = pw_single_flag;

	return flag && *flag;
}

/* Serialise callers of one socket, unless the process has only one thread:
 * then there is nobody to serialise against. */
static inline bool pw_lock(pthread_mutex_t *m)
{
	if (pw_single_threaded())
		return false;
	pthread_mutex_lock(m);
	return true;
}

/* Non-blocking callers must not wait behind a blocked one: -1 means busy. */
static inline int pw_trylock(pthread_mutex_t *m)
{
	if (pw_single_threaded())
		return 0;
	return pthread_mutex_trylock(m) == 0 ? 1 : -1;
}

static inline void pw_unlock(pthread_mutex_t *m, bool locked)
{
	if (locked)
		pthread_mutex_unlock(m);
}

/* Wait for @ev with the socket's timeout; -EAGAIN when it runs out. */
static int pw_wait_timeo(struct pw_sock *s, short ev, int ms)
{
	int r = s->ops->wait(s->xp, ev, ms);

	return r == 0 ? -EAGAIN : (r < 0 ? r : 0);
}

/*
 * One read or write on the channel under the socket's lock for that
 * direction, honouring SO_RCVTIMEO/SO_SNDTIMEO on a blocking socket.
 * -EBUSY: non-blocking, and another thread holds the direction.
 */
static ssize_t pw_sock_transfer(struct pw_sock *s, const struct iovec *iov, int cnt, int cf,
				bool nb, bool is_write)
{
	pthread_mutex_t *lock = is_write ? &s->wlock : &s->rlock;
	int timeo = is_write ? s->sndtimeo_ms : s->rcvtimeo_ms;
	ssize_t r;
	bool locked;

	if (nb) {
		int t = pw_trylock(lock);
		if (t < 0)
			return -EBUSY;
		locked = t > 0;
	} else {
		locked = pw_lock(lock);
	}
	for (;;) {
		int f = cf | (!nb && timeo > 0 ? PW_XP_DONTWAIT : 0);
		r = is_write ? s->ops->writev(s->xp, iov, cnt, f)
			     : s->ops->readv(s->xp, iov, cnt, f);
		if (r > 0 && s->adapt) {
			s->io_calls[is_write]++;
			s->io_bytes[is_write] += (uint64_t)r;
		}
		if (nb || timeo <= 0 || r != -EAGAIN)
			break;
		int w = pw_wait_timeo(s, is_write ? POLLOUT : POLLIN, timeo);
		if (w < 0) {
			r = w;
			break;
		}
	}
	pw_unlock(lock, locked);
	return r;
}

ssize_t pw_sock_readv(struct pw_sock *s, const struct iovec *iov, int cnt, int flags)
{
	int cf = 0;
	ssize_t r;

	if (flags &
	    ~(MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC | MSG_TRUNC))
		return pw_fail(EOPNOTSUPP);
	if (s->rd_shut)
		return 0;
	/* TCP: MSG_TRUNC discards the bytes instead of copying them (the
	 * buffer may be NULL). */
	if ((flags & MSG_TRUNC) && !(flags & MSG_PEEK))
		cf |= PW_XP_DISCARD;
	bool nb = (flags & MSG_DONTWAIT) || pw_sock_nonblock(s);
	if (nb)
		cf |= PW_XP_DONTWAIT;
	if (flags & MSG_PEEK)
		cf |= PW_XP_PEEK;
	if (flags & MSG_WAITALL)
		cf |= PW_XP_WAITALL;
	r = pw_sock_transfer(s, iov, cnt, cf, nb, false);
	if (r == -EBUSY)
		return pw_fail(EAGAIN); /* another thread is waiting to read */
	if (r == -ECONNRESET || r == -EPROTO) {
		if (s->reset_reported)
			return 0;
		s->reset_reported = true;
	}
	if (r < 0)
		return pw_fail(pw_errno_of(r));
	return r;
}

ssize_t pw_sock_writev(struct pw_sock *s, const struct iovec *iov, int cnt, int flags)
{
	int cf = 0;
	ssize_t r;

	bool nb = (flags & MSG_DONTWAIT) || pw_sock_nonblock(s);
	if (nb)
		cf |= PW_XP_DONTWAIT;
	r = pw_sock_transfer(s, iov, cnt, cf, nb, true);
	if (r == -EBUSY)
		return pw_fail(EAGAIN); /* another thread is waiting to write */
	if (r == -ECONNRESET || r == -EPROTO) {
		if (s->reset_reported)
			r = -EPIPE;
		s->reset_reported = true;
	} else if (r == -EPIPE && !s->wr_shut && !s->reset_reported) {
		/* The peer closed, or its process went: the kernel's TCP takes
		 * this write (the peer's kernel answers it with a reset) and
		 * fails the next. perftest's last handshake writes so. */
		s->reset_reported = true;
		r = 0;
		for (int i = 0; i < cnt; i++)
			r += (ssize_t)iov[i].iov_len;
	}
	/* (Not under seccomp: tgkill is no call of the application's.) */
	if (r == -EPIPE && !(flags & MSG_NOSIGNAL) && !pw_cfg.restricted)
		pthread_kill(pthread_self(), SIGPIPE);
	if (r < 0)
		return pw_fail(pw_errno_of(r));
	return r;
}

PW_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.read(fd, buf, n);
	struct iovec iov = { buf, n };
	return pw_sock_readv(s, &iov, 1, 0);
}

PW_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.write(fd, buf, n);
	struct iovec iov = { (void *)buf, n };
	return pw_sock_writev(s, &iov, 1, 0);
}

PW_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	return s ? pw_sock_readv(s, iov, cnt, 0) : pw_real.readv(fd, iov, cnt);
}

PW_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	return s ? pw_sock_writev(s, iov, cnt, 0) : pw_real.writev(fd, iov, cnt);
}

PW_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.recv(fd, buf, n, flags);
	struct iovec iov = { buf, n };
	return pw_sock_readv(s, &iov, 1, flags);
}

PW_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.send(fd, buf, n, flags);
	struct iovec iov = { (void *)buf, n };
	return pw_sock_writev(s, &iov, 1, flags);
}

PW_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			   socklen_t *alen)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.recvfrom(fd, buf, n, flags, addr, alen);
	struct iovec iov = { buf, n };
	ssize_t r = pw_sock_readv(s, &iov, 1, flags);
	if (r >= 0 && alen)
		*alen = 0; /* TCP reports no source address */
	return r;
}

PW_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
			 socklen_t alen)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.sendto(fd, buf, n, flags, addr, alen);
	struct iovec iov = { (void *)buf, n };
	return pw_sock_writev(s, &iov, 1, flags); /* a connected TCP socket ignores @addr */
}

static ssize_t pw_sendfile_copy(struct pw_sock *s, int in, off_t *off, size_t count, char *buf,
				size_t cap);

/*
 * sendfile() onto an accelerated socket: read the file and write the ring.
 * Never takes more from the file than the ring accepts, so a short count
 * leaves the file offset exactly where a kernel socket would.
 */
PW_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(out);
	if (!s)
		return pw_real.sendfile(out, in, off, count);

	/* On the heap: an application thread's stack may be small. */
	const size_t cap = count < 65536 ? (count ? count : 1) : 65536;
	char *buf = malloc(cap);
	if (!buf)
		return pw_fail(ENOMEM);
	ssize_t ret = pw_sendfile_copy(s, in, off, count, buf, cap);
	int saved = errno;
	free(buf);
	errno = saved;
	return ret;
}

static ssize_t pw_sendfile_copy(struct pw_sock *s, int in, off_t *off, size_t count, char *buf,
				size_t cap)
{
	bool nb = pw_sock_nonblock(s);
	off_t pos = off ? *off : 0;
	size_t done = 0;

	while (done < count) {
		size_t want = count - done < cap ? count - done : cap;
		if (nb) {
			ssize_t space = s->ops->space(s->xp);
			if (space <= 0) {
				/* Nothing fits: leave the socket unwritable until it
				 * does, as a short count means to an edge-triggered
				 * writer (nginx waits for the next EPOLLOUT edge). */
				if (s->ops->prepare_wait(s->xp, POLLOUT))
					continue;
				if (done)
					break;
				return pw_fail(EAGAIN);
			}
			if ((size_t)space < want)
				want = (size_t)space;
		}
		ssize_t n = off ? pread(in, buf, want, pos) : pw_real.read(in, buf, want);
		if (n < 0)
			return done ? (ssize_t)done : -1;
		if (n == 0)
			break;
		struct iovec iov = { buf, (size_t)n };
		ssize_t w = pw_sock_writev(s, &iov, 1, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EPIPE && !pw_cfg.restricted)
				pthread_kill(pthread_self(), SIGPIPE);
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)w;
		pos += w;
		if (w < n)
			break;
	}
	if (off)
		*off = pos;
	return (ssize_t)done;
}

#ifdef __GLIBC__
PW_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t count)
	__attribute__((alias("sendfile")));
#endif

PW_EXPORT int shutdown(int fd, int how)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s) {
		pw_fresh_note_odd(fd); /* (Linux keeps it, even unconnected) */
		return pw_real.shutdown(fd, how);
	}
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return pw_fail(EINVAL);
	/* Linux TCP tells the peer nothing of SHUT_RD: only our reads end. */
	if (how != SHUT_WR)
		s->rd_shut = true;
	if (how != SHUT_RD) {
		s->wr_shut = true;
		int r = s->ops->shutdown(s->xp, SHUT_WR);
		if (r < 0)
			return pw_fail(-r);
	}
	return 0;
}
