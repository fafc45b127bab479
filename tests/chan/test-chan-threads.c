// SPDX-License-Identifier: MIT
/*
 * Two threads in one process, each owning one end of a channel with the
 * smallest rings, so that writers and readers block all the time:
 *
 *   1. A -> B, then B -> A: blocking writes (larger than the ring) against
 *      blocking reads (read, readv, WAITALL).
 *   2. Both directions at once, each thread multiplexing DONTWAIT calls and
 *      pw_chan_wait(POLLIN | POLLOUT); then SHUT_WR on each side: the other
 *      reads EOF after the last byte, writing after it gives -EPIPE.
 *   3. On a second channel, a reader that only makes DONTWAIT calls and, on
 *      -EAGAIN, sleeps in poll(2) on pw_chan_fd() (5 s without progress is a
 *      failure): the readiness fd contract of chan.h. The writer blocks.
 *      Then the same with a DONTWAIT writer polling for space.
 *
 * Every byte is checked against a position-addressed pseudo-random stream.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE	PW_RING_MIN
#define MAX_IO		(3u * RING_SIZE)
#define POLL_TIMEOUT_MS 5000

static uint64_t n_oneway, n_duplex, n_pollfd;

struct end {
	const char *name;
	struct pw_chan *c;
	unsigned side;
	struct pw_rng rng;
	uint8_t wbuf[MAX_IO], rbuf[MAX_IO];
	bool ok;
};

/*
 * Failure in a thread: print and exit the whole process (the peer thread may
 * be blocked for good, so there is nothing to join).
 */
#define T_CHECK(e, cond, fmt, ...)                                                                 \
	do {                                                                                       \
		if (!(cond))                                                                       \
			PW_FAIL("[%s] %s: " fmt, (e)->name, #cond, ##__VA_ARGS__);                 \
	} while (0)

/* Stream seeds: one per (phase, direction). */
static uint64_t seed_of(int phase, unsigned from_side)
{
	return 0x100u * (unsigned)phase + from_side;
}

static bool send_blocking(struct end *e, uint64_t seed, uint64_t total)
{
	uint64_t pos = 0;

	while (pos < total) {
		size_t len = pw_rng_size(&e->rng, MAX_IO);
		ssize_t n;

		if (len > total - pos)
			len = (size_t)(total - pos);
		pw_stream_fill(seed, pos, e->wbuf, len);
		if (pw_rng_range(&e->rng, 0, 1)) {
			n = pw_chan_write(e->c, e->wbuf, len, 0);
		} else {
			struct iovec iov[3] = {
				{ .iov_base = e->wbuf, .iov_len = len / 2 },
				{ .iov_base = e->wbuf, .iov_len = 0 },
				{ .iov_base = e->wbuf + len / 2, .iov_len = len - len / 2 },
			};
			n = pw_chan_writev(e->c, iov, 3, 0);
		}
		T_CHECK(e, n == (ssize_t)len, "write of %zu at %llu: %zd", len,
			(unsigned long long)pos, n);
		pos += len;
	}
	return true;
}

static bool check_bytes(struct end *e, uint64_t seed, uint64_t pos, const uint8_t *buf, size_t n)
{
	long long bad = pw_stream_check(seed, pos, buf, n);

	T_CHECK(e, bad < 0, "stream %#llx byte %llu: got %#x want %#x", (unsigned long long)seed,
		(unsigned long long)(pos + (uint64_t)bad), buf[bad < 0 ? 0 : bad],
		pw_stream_byte(seed, pos + (uint64_t)(bad < 0 ? 0 : bad)));
	return true;
}

static bool recv_blocking(struct end *e, uint64_t seed, uint64_t total)
{
	uint64_t pos = 0;

	while (pos < total) {
		size_t len = pw_rng_size(&e->rng, MAX_IO);
		unsigned how = (unsigned)pw_rng_range(&e->rng, 0, 2);
		ssize_t n;

		if (len > total - pos)
			len = (size_t)(total - pos);
		if (how == 0) {
			n = pw_chan_read(e->c, e->rbuf, len, PW_CHAN_WAITALL);
			T_CHECK(e, n == (ssize_t)len, "WAITALL %zu at %llu: %zd", len,
				(unsigned long long)pos, n);
		} else if (how == 1) {
			struct iovec iov[3] = {
				{ .iov_base = e->rbuf, .iov_len = 1 },
				{ .iov_base = e->rbuf + 1, .iov_len = 0 },
				{ .iov_base = e->rbuf + 1, .iov_len = len - 1 },
			};
			n = pw_chan_readv(e->c, iov, 3, 0);
		} else {
			n = pw_chan_read(e->c, e->rbuf, len, 0);
		}
		T_CHECK(e, n > 0 && (size_t)n <= len, "read of %zu at %llu: %zd", len,
			(unsigned long long)pos, n);
		if (!check_bytes(e, seed, pos, e->rbuf, (size_t)n))
			return false;
		pos += (uint64_t)n;
	}
	return true;
}

/* Both directions on one thread: DONTWAIT calls, pw_chan_wait() when stuck. */
static bool duplex(struct end *e, uint64_t out_seed, uint64_t in_seed, uint64_t total)
{
	uint64_t out = 0, in = 0, waits = 0;
	bool shut = false, eof = false;

	while (!eof || !shut) {
		bool progress = false;
		short events = 0;

		if (out < total) {
			size_t len = pw_rng_size(&e->rng, MAX_IO);

			if (len > total - out)
				len = (size_t)(total - out);
			pw_stream_fill(out_seed, out, e->wbuf, len);
			ssize_t n = pw_chan_write(e->c, e->wbuf, len, PW_CHAN_DONTWAIT);
			T_CHECK(e, n == -EAGAIN || (n > 0 && (size_t)n <= len),
				"write of %zu at %llu: %zd", len, (unsigned long long)out, n);
			if (n > 0) {
				out += (uint64_t)n;
				progress = true;
			} else {
				events |= POLLOUT;
			}
		} else if (!shut) {
			T_CHECK(e, pw_chan_shutdown(e->c, SHUT_WR) == 0, "shutdown");
			ssize_t n = pw_chan_write(e->c, e->wbuf, 1, PW_CHAN_DONTWAIT);
			T_CHECK(e, n == -EPIPE, "write after SHUT_WR: %zd", n);
			shut = true;
			progress = true;
		}
		if (!eof) {
			size_t len = pw_rng_size(&e->rng, MAX_IO);
			ssize_t n = pw_chan_read(e->c, e->rbuf, len, PW_CHAN_DONTWAIT);

			T_CHECK(e, n == -EAGAIN || (n >= 0 && (size_t)n <= len),
				"read of %zu at %llu: %zd", len, (unsigned long long)in, n);
			if (n > 0) {
				if (!check_bytes(e, in_seed, in, e->rbuf, (size_t)n))
					return false;
				in += (uint64_t)n;
				progress = true;
			} else if (n == 0) {
				T_CHECK(e, in == total, "EOF after %llu of %llu",
					(unsigned long long)in, (unsigned long long)total);
				eof = true;
				progress = true;
			} else {
				events |= POLLIN;
			}
		}
		if (!progress) {
			int m = pw_chan_wait(e->c, events, -1);

			T_CHECK(e, m > 0 && (m & (events | POLLHUP)), "wait(%#x): %d", events, m);
			T_CHECK(e, !(m & POLLERR), "wait(%#x): %#x", events, m);
			waits++;
		}
	}
	/* Both directions shut: the hang-up shows, EOF and EPIPE stick. */
	short m = pw_chan_poll(e->c);
	T_CHECK(e, (m & POLLHUP) && (m & POLLIN) && (m & POLLRDHUP) && !(m & POLLERR), "poll %#x",
		m);
	T_CHECK(e, pw_chan_read(e->c, e->rbuf, 10, 0) == 0, "read after EOF");
	T_CHECK(e, pw_chan_write(e->c, e->wbuf, 10, 0) == -EPIPE, "write after SHUT_WR");
	return true;
}

static void *end_main(void *arg)
{
	struct end *e = arg;
	unsigned me = e->side, peer = !e->side;
	bool ok;

	/* Phase 1: side 0 -> side 1, then side 1 -> side 0, all blocking. */
	if (me == 0)
		ok = send_blocking(e, seed_of(1, me), n_oneway) &&
		     recv_blocking(e, seed_of(1, peer), n_oneway);
	else
		ok = recv_blocking(e, seed_of(1, peer), n_oneway) &&
		     send_blocking(e, seed_of(1, me), n_oneway);
	/* Phase 2: both at once, then the half-closes. */
	ok = ok && duplex(e, seed_of(2, me), seed_of(2, peer), n_duplex);
	if (ok) {
		struct pw_chan_stats st;

		pw_chan_get_stats(e->c, &st);
		T_CHECK(e, st.bytes_out == n_oneway + n_duplex, "bytes_out %llu",
			(unsigned long long)st.bytes_out);
		T_CHECK(e, st.bytes_in == n_oneway + n_duplex, "bytes_in %llu",
			(unsigned long long)st.bytes_in);
	}
	e->ok = ok;
	return NULL;
}

/* Phase 3: the readiness fd. */
static void *pollfd_writer(void *arg)
{
	struct end *e = arg;

	e->ok = send_blocking(e, seed_of(3, 0), n_pollfd) && pw_chan_shutdown(e->c, SHUT_WR) == 0;
	return NULL;
}

/* Sleep in poll(2) on the readiness fd until it reports @events. */
static bool wait_fd(struct end *e, int fd, short events, uint64_t pos)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r;

	do
		r = poll(&pfd, 1, POLL_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	T_CHECK(e, r == 1 && (pfd.revents & (events | POLLHUP)),
		"poll(2) for %#x on the readiness fd: %d (revents %#x) after %llu bytes", events, r,
		pfd.revents, (unsigned long long)pos);
	return true;
}

static bool pollfd_reader_run(struct end *e, uint64_t *polls)
{
	uint64_t pos = 0;
	int fd = pw_chan_fd(e->c);

	T_CHECK(e, fd >= 0, "fd %d", fd);
	for (;;) {
		size_t len = pw_rng_size(&e->rng, MAX_IO);
		ssize_t n = pw_chan_read(e->c, e->rbuf, len, PW_CHAN_DONTWAIT);

		if (n == -EAGAIN) {
			if (!wait_fd(e, fd, POLLIN, pos))
				return false;
			(*polls)++;
			continue;
		}
		T_CHECK(e, n >= 0 && (size_t)n <= len, "read of %zu at %llu: %zd", len,
			(unsigned long long)pos, n);
		if (n == 0)
			break;
		if (!check_bytes(e, seed_of(3, 0), pos, e->rbuf, (size_t)n))
			return false;
		pos += (uint64_t)n;
	}
	T_CHECK(e, pos == n_pollfd, "EOF after %llu of %llu", (unsigned long long)pos,
		(unsigned long long)n_pollfd);
	return true;
}

static uint64_t pollfd_polls;

static void *pollfd_reader(void *arg)
{
	struct end *e = arg;

	e->ok = pollfd_reader_run(e, &pollfd_polls);
	return NULL;
}

/* The mirror image: a DONTWAIT writer sleeping in poll(2) for space. */
static bool pollfd_writer_run(struct end *e, uint64_t *polls)
{
	uint64_t pos = 0;
	int fd = pw_chan_fd(e->c);

	while (pos < n_pollfd) {
		size_t len = pw_rng_size(&e->rng, MAX_IO);

		if (len > n_pollfd - pos)
			len = (size_t)(n_pollfd - pos);
		pw_stream_fill(seed_of(4, 0), pos, e->wbuf, len);
		ssize_t n = pw_chan_write(e->c, e->wbuf, len, PW_CHAN_DONTWAIT);
		if (n == -EAGAIN) {
			if (!wait_fd(e, fd, POLLOUT, pos))
				return false;
			(*polls)++;
			continue;
		}
		T_CHECK(e, n > 0 && (size_t)n <= len, "write of %zu at %llu: %zd", len,
			(unsigned long long)pos, n);
		pos += (uint64_t)n;
	}
	T_CHECK(e, pw_chan_shutdown(e->c, SHUT_WR) == 0, "shutdown");
	return true;
}

static uint64_t pollfd_wpolls;

static void *pollfd_writer_polling(void *arg)
{
	struct end *e = arg;

	e->ok = pollfd_writer_run(e, &pollfd_wpolls);
	return NULL;
}

static void *blocking_reader(void *arg)
{
	struct end *e = arg;
	uint8_t b;

	e->ok = recv_blocking(e, seed_of(4, 0), n_pollfd);
	T_CHECK(e, pw_chan_read(e->c, &b, 1, 0) == 0, "no EOF");
	return NULL;
}

static void open_pair(struct end *a, struct end *b, const char *na, const char *nb)
{
	int memfd, sv[2];

	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a->c), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b->c), 0);
	close(memfd);
	a->name = na;
	b->name = nb;
	a->side = 0;
	b->side = 1;
	a->ok = b->ok = false;
	pw_rng_seed(&a->rng, 0xa0 + (uint64_t)(uintptr_t)na[0]);
	pw_rng_seed(&b->rng, 0xb0 + (uint64_t)(uintptr_t)nb[0]);
}

static void run_pair(struct end *a, struct end *b, void *(*fa)(void *), void *(*fb)(void *))
{
	pthread_t ta, tb;

	PW_CHECK_EQ(pthread_create(&ta, NULL, fa, a), 0);
	PW_CHECK_EQ(pthread_create(&tb, NULL, fb, b), 0);
	PW_CHECK_EQ(pthread_join(ta, NULL), 0);
	PW_CHECK_EQ(pthread_join(tb, NULL), 0);
	PW_CHECK(a->ok && b->ok, "%s %s, %s %s", a->name, a->ok ? "ok" : "failed", b->name,
		 b->ok ? "ok" : "failed");
}

int main(void)
{
	static struct end a, b;
	int fds = pw_test_count_fds();
	uint64_t t0 = pw_test_now_ns();

	pw_test_watchdog(55);
	n_oneway = PW_TEST_TSAN ? 4 * PW_MIB : PW_TEST_SANITIZED ? 16 * PW_MIB : 64 * PW_MIB;
	n_duplex = PW_TEST_TSAN ? 4 * PW_MIB : PW_TEST_SANITIZED ? 16 * PW_MIB : 64 * PW_MIB;
	n_pollfd = PW_TEST_TSAN ? 4 * PW_MIB : PW_TEST_SANITIZED ? 16 * PW_MIB : 32 * PW_MIB;

	open_pair(&a, &b, "side0", "side1");
	run_pair(&a, &b, end_main, end_main);
	pw_chan_close(a.c);
	pw_chan_close(b.c);
	double t1 = (double)(pw_test_now_ns() - t0) / 1e9;

	open_pair(&a, &b, "writer", "poll-reader");
	run_pair(&a, &b, pollfd_writer, pollfd_reader);
	pw_chan_close(a.c);
	pw_chan_close(b.c);

	open_pair(&a, &b, "poll-writer", "reader");
	run_pair(&a, &b, pollfd_writer_polling, blocking_reader);
	pw_chan_close(a.c);
	pw_chan_close(b.c);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	PW_CHECK_EQ(pw_test_count_maps("memfd:podwire-chan"), 0);
	fprintf(stderr,
		"blocking/duplex: %.2f s; readiness fd: %.2f s, %llu reader polls, "
		"%llu writer polls\n",
		t1, (double)(pw_test_now_ns() - t0) / 1e9 - t1, (unsigned long long)pollfd_polls,
		(unsigned long long)pollfd_wpolls);
	return 0;
}
