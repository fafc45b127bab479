// SPDX-License-Identifier: MIT
/*
 * Two processes over one channel, both directions at once.
 *
 * The child (side 1) writes 1 GiB of a position-addressed pseudo-random
 * stream in random sizes (1 byte to 200 KiB; write, writev with several
 * iovecs, sometimes DONTWAIT), then an 8-byte checksum trailer, then shuts
 * down writing. The parent (side 0) reads it in random sizes (read, readv,
 * WAITALL, DONTWAIT, PEEK followed by a read of the same bytes), checks every
 * byte and the trailer, and sees EOF. Meanwhile the parent writes 64 MiB (plus
 * trailer) the other way, which the child checks the same way.
 *
 * Only waits that cannot deadlock are blocking: the child blocks writing and
 * the parent blocks reading the big stream; the reverse stream is DONTWAIT on
 * both ends until the big one is done.
 */
#include <poll.h>
#include <sys/socket.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE (128u * 1024u)
#define MAX_IO	  (200u * 1024u)
#define SEED_FWD  0xf00dull /* child -> parent */
#define SEED_REV  0xbeefull /* parent -> child */
#define MAX_IOV	  12

/* One direction of traffic: @len stream bytes then an 8-byte checksum. */
struct flow {
	uint64_t seed;
	uint64_t len; /* stream bytes, without the trailer */
	uint64_t pos; /* bytes sent or received, trailer included */
	uint64_t csum;
	uint8_t trailer[8];
};

static uint64_t flow_total(const struct flow *f)
{
	return f->len + 8;
}

/*
 * Bytes [f->pos, f->pos + len) of what the sender sends. The trailer is the
 * checksum of the whole stream: of what was sent plus what is generated here.
 */
static void flow_fill(const struct flow *f, uint8_t *buf, size_t len)
{
	uint64_t pos = f->pos, csum = f->csum;

	while (len) {
		if (pos < f->len) {
			size_t n = f->len - pos < len ? (size_t)(f->len - pos) : len;

			pw_stream_fill(f->seed, pos, buf, n);
			csum = pw_csum_update(csum, pos, buf, n);
			buf += n;
			pos += n;
			len -= n;
		} else {
			uint64_t c = pw_le64(csum);

			*buf++ = ((const uint8_t *)&c)[pos - f->len];
			pos++;
			len--;
		}
	}
}

/* Account @n bytes of @buf as sent: checksum covers the stream part only. */
static void flow_sent(struct flow *f, const uint8_t *buf, size_t n)
{
	if (f->pos < f->len) {
		size_t k = f->len - f->pos < n ? (size_t)(f->len - f->pos) : n;

		f->csum = pw_csum_update(f->csum, f->pos, buf, k);
	}
	f->pos += n;
}

/* Check and account @n received bytes. */
static void flow_received(struct flow *f, const uint8_t *buf, size_t n, const char *who)
{
	size_t k = 0;

	if (f->pos + n > flow_total(f))
		PW_FAIL("%s: %zu bytes at %llu: past the end %llu", who, n,
			(unsigned long long)f->pos, (unsigned long long)flow_total(f));
	if (f->pos < f->len) {
		k = f->len - f->pos < n ? (size_t)(f->len - f->pos) : n;
		long long bad = pw_stream_check(f->seed, f->pos, buf, k);
		if (bad >= 0)
			PW_FAIL("%s: stream byte %llu: got %#x, want %#x", who,
				(unsigned long long)(f->pos + (uint64_t)bad), buf[bad],
				pw_stream_byte(f->seed, f->pos + (uint64_t)bad));
		f->csum = pw_csum_update(f->csum, f->pos, buf, k);
	}
	for (size_t i = k; i < n; i++)
		f->trailer[f->pos + i - f->len] = buf[i];
	f->pos += n;
	if (f->pos == flow_total(f)) {
		uint64_t t;

		memcpy(&t, f->trailer, 8);
		t = pw_le64(t);
		if (t != f->csum)
			PW_FAIL("%s: checksum trailer %#llx, computed %#llx", who,
				(unsigned long long)t, (unsigned long long)f->csum);
	}
}

/* Random iovecs (some empty) covering @buf[0..len). */
static int make_iov(struct pw_rng *rng, uint8_t *buf, size_t len, struct iovec *iov)
{
	int max = (int)pw_rng_range(rng, 2, MAX_IOV);
	size_t off = 0;
	int n = 0;

	while (n < max - 1 && off < len) {
		size_t k = pw_rng_range(rng, 0, 4) == 0 ? 0 : pw_rng_range(rng, 1, len - off);

		iov[n++] = (struct iovec){ .iov_base = buf + off, .iov_len = k };
		off += k;
	}
	iov[n++] = (struct iovec){ .iov_base = buf + off, .iov_len = len - off };
	return n;
}

/*
 * Send up to @len next bytes of @f. Blocking unless @dontwait. Returns bytes
 * sent (0 when DONTWAIT found no space).
 */
static size_t flow_send(struct pw_chan *c, struct flow *f, struct pw_rng *rng, uint8_t *buf,
			size_t len, bool dontwait, const char *who)
{
	struct iovec iov[MAX_IOV];
	int flags = dontwait ? PW_CHAN_DONTWAIT : 0;
	ssize_t n;

	if (len > flow_total(f) - f->pos)
		len = (size_t)(flow_total(f) - f->pos);
	if (len == 0)
		return 0;
	flow_fill(f, buf, len);
	if (pw_rng_range(rng, 0, 2) == 0)
		n = pw_chan_writev(c, iov, make_iov(rng, buf, len, iov), flags);
	else
		n = pw_chan_write(c, buf, len, flags);
	if (n == -EAGAIN && dontwait)
		return 0;
	if (n <= 0 || (size_t)n > len || (!dontwait && (size_t)n != len))
		PW_FAIL("%s: write of %zu at %llu returned %zd", who, len,
			(unsigned long long)f->pos, n);
	flow_sent(f, buf, (size_t)n);
	return (size_t)n;
}

/*
 * Receive up to @len bytes of @f in a random way. Returns the count, 0 at EOF,
 * -EAGAIN when DONTWAIT found nothing.
 */
static ssize_t flow_recv(struct pw_chan *c, struct flow *f, struct pw_rng *rng, uint8_t *buf,
			 size_t len, bool may_block, const char *who)
{
	struct iovec iov[MAX_IOV];
	unsigned how = (unsigned)pw_rng_range(rng, 0, 9);
	int flags = may_block ? 0 : PW_CHAN_DONTWAIT;
	uint64_t left = flow_total(f) - f->pos;
	ssize_t n;

	if (how == 0) {
		flags |= PW_CHAN_DONTWAIT;
	} else if (how == 1 && may_block) {
		/* WAITALL: all of it unless EOF comes first (asking past the
		 * end sometimes, to see the short count at EOF). */
		flags |= PW_CHAN_WAITALL;
		if (len > left && pw_rng_range(rng, 0, 3))
			len = left ? (size_t)left : 1;
	} else if (how == 2) {
		/* PEEK, then a read of the same bytes must return them again. */
		uint8_t *again = buf + len;

		n = pw_chan_read(c, buf, len, flags | PW_CHAN_PEEK);
		if (n == -EAGAIN && !may_block)
			return n;
		if (n < 0 || (size_t)n > len)
			PW_FAIL("%s: peek of %zu at %llu: %zd", who, len,
				(unsigned long long)f->pos, n);
		if (n > 0) {
			ssize_t m = pw_chan_read(c, again, (size_t)n, PW_CHAN_DONTWAIT);

			if (m != n || memcmp(buf, again, (size_t)n) != 0)
				PW_FAIL("%s: read after peek of %zd at %llu: %zd, %s", who, n,
					(unsigned long long)f->pos, m,
					m == n ? "bytes differ" : "count differs");
		}
		goto got;
	}
	if (pw_rng_range(rng, 0, 2) == 0)
		n = pw_chan_readv(c, iov, make_iov(rng, buf, len, iov), flags);
	else
		n = pw_chan_read(c, buf, len, flags);
	if (n == -EAGAIN && (flags & PW_CHAN_DONTWAIT))
		return n;
	if (n < 0 || (size_t)n > len)
		PW_FAIL("%s: read of %zu (flags %#x) at %llu: %zd", who, len, flags,
			(unsigned long long)f->pos, n);
	if ((flags & PW_CHAN_WAITALL) && (size_t)n != len && (uint64_t)n != left)
		PW_FAIL("%s: WAITALL read of %zu at %llu returned %zd (left %llu)", who, len,
			(unsigned long long)f->pos, n, (unsigned long long)left);
got:
	if (n == 0 && f->pos != flow_total(f))
		PW_FAIL("%s: EOF at %llu of %llu", who, (unsigned long long)f->pos,
			(unsigned long long)flow_total(f));
	if (n > 0)
		flow_received(f, buf, (size_t)n, who);
	return n;
}

static uint8_t *xmalloc(size_t n)
{
	uint8_t *p = malloc(n);

	PW_CHECK(p, "malloc %zu", n);
	return p;
}

static void child(int memfd, int sock, uint64_t fwd_len, uint64_t rev_len)
{
	struct flow out = { .seed = SEED_FWD, .len = fwd_len };
	struct flow in = { .seed = SEED_REV, .len = rev_len };
	uint8_t *wbuf = xmalloc(MAX_IO), *rbuf = xmalloc(2 * MAX_IO);
	struct pw_chan *c;
	struct pw_rng rng;
	ssize_t n;

	pw_rng_seed(&rng, 0xc1);
	PW_CHECK_EQ(pw_chan_open(memfd, sock, 1, NULL, &c), 0);
	close(memfd);

	while (out.pos < flow_total(&out)) {
		/* Mostly blocking writes; some DONTWAIT ones that may come back short. */
		bool dontwait = pw_rng_range(&rng, 0, 7) == 0;
		flow_send(c, &out, &rng, wbuf, pw_rng_size(&rng, MAX_IO), dontwait, "child");
		/* Take what the parent sent, never waiting. */
		if (in.pos < flow_total(&in) || pw_rng_range(&rng, 0, 15) == 0) {
			n = flow_recv(c, &in, &rng, rbuf, pw_rng_size(&rng, MAX_IO), false,
				      "child");
			PW_CHECK(n != 0 || in.pos == flow_total(&in), "child: early EOF");
		}
	}
	PW_CHECK_EQ(pw_chan_shutdown(c, SHUT_WR), 0);
	PW_CHECK_EQ(pw_chan_write(c, wbuf, 1, 0), -EPIPE);
	/* Now block for the rest of the reverse stream, then its EOF. */
	do
		n = flow_recv(c, &in, &rng, rbuf, pw_rng_size(&rng, MAX_IO), true, "child");
	while (n != 0);
	PW_CHECK_EQ(in.pos, flow_total(&in));

	struct pw_chan_stats st;
	pw_chan_get_stats(c, &st);
	PW_CHECK_EQ(st.bytes_out, flow_total(&out));
	PW_CHECK_EQ(st.bytes_in, flow_total(&in));
	pw_chan_close(c);
	free(wbuf);
	free(rbuf);
	exit(0);
}

int main(void)
{
	/* 1 GiB one way and 64 MiB back; less under the sanitizers. */
	uint64_t fwd_len = PW_TEST_TSAN	       ? 48 * PW_MIB
			   : PW_TEST_SANITIZED ? 512 * PW_MIB
					       : 1024 * PW_MIB;
	uint64_t rev_len = PW_TEST_TSAN	       ? 8 * PW_MIB
			   : PW_TEST_SANITIZED ? 32 * PW_MIB
					       : 64 * PW_MIB;
	int fds_before = pw_test_count_fds();
	uint64_t t0 = pw_test_now_ns();
	int memfd, sv[2];
	struct pw_chan *c;
	struct pw_rng rng;
	ssize_t n;

	pw_test_watchdog(55);
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	pid_t pid = pw_test_fork(50);
	if (pid == 0) {
		close(sv[0]);
		child(memfd, sv[1], fwd_len, rev_len);
	}
	close(sv[1]);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &c), 0);
	close(memfd);

	struct flow in = { .seed = SEED_FWD, .len = fwd_len };
	struct flow out = { .seed = SEED_REV, .len = rev_len };
	uint8_t *wbuf = xmalloc(MAX_IO), *rbuf = xmalloc(2 * MAX_IO);
	uint64_t reads = 0;

	pw_rng_seed(&rng, 0x9a);
	for (;;) {
		n = flow_recv(c, &in, &rng, rbuf, pw_rng_size(&rng, MAX_IO), true, "parent");
		if (n == 0)
			break;
		if (n > 0)
			reads++;
		/* Keep the reverse stream going along with the forward one, a
		 * little behind, so some of it is left for blocking writes. */
		if (out.pos < (uint64_t)((double)in.pos / (double)fwd_len * 0.95 * (double)rev_len))
			flow_send(c, &out, &rng, wbuf, pw_rng_size(&rng, MAX_IO), true, "parent");
	}
	PW_CHECK_EQ(in.pos, flow_total(&in));
	/* EOF is sticky. */
	PW_CHECK_EQ(pw_chan_read(c, rbuf, 10, 0), 0);
	PW_CHECK(pw_chan_poll(c) & POLLRDHUP, "poll %#x", pw_chan_poll(c));
	uint64_t rev_at_eof = out.pos;
	/* The child now only reads: finish the reverse stream blocking. */
	while (out.pos < flow_total(&out))
		flow_send(c, &out, &rng, wbuf, pw_rng_size(&rng, MAX_IO), false, "parent");
	PW_CHECK_EQ(pw_chan_shutdown(c, SHUT_WR), 0);
	PW_CHECK_CHILD_OK(pid);

	struct pw_chan_stats st;
	pw_chan_get_stats(c, &st);
	PW_CHECK_EQ(st.bytes_in, flow_total(&in));
	PW_CHECK_EQ(st.bytes_out, flow_total(&out));
	pw_chan_close(c);
	free(wbuf);
	free(rbuf);
	PW_CHECK_EQ(pw_test_count_fds(), fds_before);
	PW_CHECK_EQ(pw_test_count_maps("memfd:podwire-chan"), 0);
	fprintf(stderr,
		"%llu MiB forward, %llu MiB back (%llu MiB before the forward EOF), "
		"%llu reads, %.2f s\n",
		(unsigned long long)(fwd_len / PW_MIB), (unsigned long long)(rev_len / PW_MIB),
		(unsigned long long)(rev_at_eof / PW_MIB), (unsigned long long)reads,
		(double)(pw_test_now_ns() - t0) / 1e9);
	return 0;
}
