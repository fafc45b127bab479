// SPDX-License-Identifier: MIT
/*
 * Reuse of a channel (CHANNEL.md, "Reuse"): both ends park at an orderly
 * close, the connecting end claims the channel for the next connection and
 * the accepting end takes it when its parked socket turns readable. Checked:
 * bytes across many reuses with sizes that wrap the rings, when parking is
 * refused, claims before the peer parked, late wake bytes, drops on either
 * side (a claim that meets a dropped end, a claimed end dropped), what the
 * router reads, and no fd or mapping left behind. Then two threads connect,
 * echo and close over one channel a few thousand times (suite tsan).
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING  16384u
#define ROUND 300

struct pair {
	int memfd;
	struct pw_chan *a, *b; /* a: connecting end (side 0), b: accepting end */
};

static void pair_open(struct pair *p)
{
	int sv[2];

	PW_CHECK_EQ(pw_chan_create(RING, PW_CHAN_ARMED, &p->memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(p->memfd, sv[0], 0, NULL, &p->a), 0);
	PW_CHECK_EQ(pw_chan_open(p->memfd, sv[1], 1, NULL, &p->b), 0);
}

/* Park @c on a copy of its socket. */
static int park(struct pw_chan *c, struct pw_chan_parked **ret)
{
	int keep = fcntl(pw_chan_fd(c), F_DUPFD_CLOEXEC, 0);

	PW_CHECK(keep >= 0, "dup: %s", strerror(errno));
	int r = pw_chan_park(c, keep, ret);
	if (r < 0)
		close(keep);
	return r;
}

static bool readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLIN);
}

/* Send @len stream bytes from @from at @pos, read them at @to, checked. */
static void move(struct pw_chan *from, struct pw_chan *to, uint64_t seed, uint64_t pos, size_t len)
{
	static uint8_t buf[RING], got[RING];

	pw_stream_fill(seed, pos, buf, len);
	PW_CHECK_EQ(pw_chan_write(from, buf, len, 0), (ssize_t)len);
	PW_CHECK_EQ(pw_chan_read(to, got, len, PW_CHAN_WAITALL), (ssize_t)len);
	long long bad = pw_stream_check(seed, pos, got, len);
	PW_CHECK(bad < 0, "byte %lld of %zu differs", bad, len);
}

/* One request and response, the server's close then the client's: both park.
 * Returns the parked ends. */
static void exchange_and_park(struct pw_chan *a, struct pw_chan *b, uint64_t seed, size_t req,
			      size_t resp, struct pw_chan_parked **pa, struct pw_chan_parked **pb)
{
	char c;

	move(a, b, seed, 0, req);
	move(b, a, seed + 1, 0, resp);
	PW_CHECK_EQ(park(b, pb), 0);
	PW_CHECK_EQ(pw_chan_read(a, &c, 1, 0), 0); /* the server's close: EOF */
	PW_CHECK_EQ(park(a, pa), 0);
}

static void test_cycles(void)
{
	int fds = pw_test_count_fds(), maps = pw_test_count_our_maps();
	struct pw_chan_parked *pa, *pb;
	struct pw_chan_state st;
	struct pw_rng rng;
	struct pair p;

	pw_rng_seed(&rng, 7);
	pair_open(&p);
	struct pw_chan *a = p.a, *b = p.b;
	for (int i = 0; i < ROUND; i++) {
		/* Sizes up to the ring: indices move on and wrap across reuses. */
		size_t req = (size_t)pw_rng_range(&rng, 1, RING), resp = pw_rng_size(&rng, RING);
		if (resp == 0)
			resp = 1;
		exchange_and_park(a, b, (uint64_t)i * 2, req, resp, &pa, &pb);
		PW_CHECK_EQ(pw_chan_state_read(p.memfd, &st), 0);
		PW_CHECK(st.parked[0] && st.parked[1] && !st.closed[0] && !st.closed[1],
			 "round %d: parked %d %d closed %d %d", i, st.parked[0], st.parked[1],
			 st.closed[0], st.closed[1]);
		PW_CHECK_EQ(pw_chan_parked_claim(pa, NULL, &a), 0);
		/* The claim rings the accepting end's socket. */
		PW_CHECK(readable(pw_chan_parked_fd(pb), 1000), "round %d: no claim seen", i);
		PW_CHECK_EQ(pw_chan_state_read(p.memfd, &st), 0);
		PW_CHECK(st.attached[0] && !st.attached[1] && !st.parked[1],
			 "round %d: claimed, not yet taken", i);
		PW_CHECK_EQ(pw_chan_parked_take(pb, NULL, &b), 0);
		PW_CHECK((pw_chan_poll(a) & (POLLOUT | POLLIN | POLLHUP)) == POLLOUT,
			 "round %d: a fresh connection polls %#x", i, pw_chan_poll(a));
		PW_CHECK((pw_chan_poll(b) & (POLLIN | POLLHUP)) == 0, "round %d: b polls %#x", i,
			 pw_chan_poll(b));
	}
	/* The last connection: closed without parking, as any. */
	move(a, b, 99, 0, 100);
	pw_chan_close(a);
	pw_chan_close(b);
	close(p.memfd);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	PW_CHECK_EQ(pw_test_count_our_maps(), maps);
}

/* A connection's first bytes, written before the accepting end took it,
 * make its socket readable (level-triggered pollers see them). */
static void test_early_bytes(void)
{
	struct pw_chan_parked *pa, *pb;
	struct pair p;
	char buf[8];

	pair_open(&p);
	exchange_and_park(p.a, p.b, 1, 10, 10, &pa, &pb);
	struct pw_chan *a, *b;
	PW_CHECK_EQ(pw_chan_parked_claim(pa, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_write(a, "hello", 5, 0), 5);
	PW_CHECK_EQ(pw_chan_parked_take(pb, NULL, &b), 0);
	PW_CHECK(readable(pw_chan_fd(b), 0), "taken end with bytes waiting is not readable");
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), PW_CHAN_DONTWAIT), 5);
	/* And after a read found nothing, the next bytes ring it again. */
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK(pw_chan_prepare_read_wait(b) == false, "nothing to read");
	PW_CHECK(!readable(pw_chan_fd(b), 0), "drained end still readable");
	PW_CHECK_EQ(pw_chan_write(a, "x", 1, 0), 1);
	PW_CHECK(readable(pw_chan_fd(b), 1000), "no wake-up for new bytes");
	pw_chan_close(a);
	pw_chan_close(b);
	close(p.memfd);
}

/* When parking is refused, nothing happened: the end closes as usual. */
static void test_refused(void)
{
	struct pw_chan_parked *pa = NULL, *pb = NULL;
	struct pair p;
	char c;

	/* Unread bytes: a close that TCP would turn into a reset. */
	pair_open(&p);
	PW_CHECK_EQ(pw_chan_write(p.a, "abc", 3, 0), 3);
	PW_CHECK_EQ(park(p.b, &pb), -EBUSY);
	pw_chan_abort(p.b);
	PW_CHECK_EQ(pw_chan_read(p.a, &c, 1, 0), -ECONNRESET);
	PW_CHECK_EQ(park(p.a, &pa), -EBUSY); /* the peer reset */
	pw_chan_close(p.a);
	close(p.memfd);

	/* A peer that never attached (still in a listener's queue). */
	int sv[2];
	PW_CHECK_EQ(pw_chan_create(RING, PW_CHAN_ARMED, &p.memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(p.memfd, sv[0], 0, NULL, &p.a), 0);
	PW_CHECK_EQ(park(p.a, &pa), -EBUSY);
	pw_chan_close(p.a);
	close(sv[1]);
	close(p.memfd);

	/* Shut down for reading, or shared with another process. */
	pair_open(&p);
	PW_CHECK_EQ(pw_chan_shutdown(p.b, SHUT_RD), 0);
	PW_CHECK_EQ(park(p.b, &pb), -EBUSY);
	pw_chan_mark_shared(p.a);
	PW_CHECK_EQ(park(p.a, &pa), -EBUSY);
	PW_CHECK_EQ(pw_chan_park(p.a, -1, &pa), -EINVAL);
	pw_chan_close(p.a);
	pw_chan_close(p.b);
	close(p.memfd);

	/* The server parks, the client closes for good: the claim never
	 * comes, and the parked end sees the client's socket hang up. */
	pair_open(&p);
	exchange_and_park(p.a, p.b, 3, 1, 1, &pa, &pb);
	pw_chan_parked_drop(pa);
	PW_CHECK(readable(pw_chan_parked_fd(pb), 1000), "a dropped peer is not seen");
	struct pw_chan *b = NULL;
	PW_CHECK_EQ(pw_chan_parked_take(pb, NULL, &b), -EPIPE);
	pw_chan_parked_drop(pb);
	close(p.memfd);
}

/* A claim before the peer parked waits; one after the peer dropped fails. */
static void test_claims(void)
{
	int fds = pw_test_count_fds();
	struct pw_chan_parked *pa, *pb;
	struct pw_chan *a = NULL, *b = NULL;
	struct pair p;
	char c;

	/* The client closes first: its claim waits for the server's park. */
	pair_open(&p);
	move(p.a, p.b, 5, 0, 100);
	PW_CHECK_EQ(park(p.a, &pa), 0);
	PW_CHECK_EQ(pw_chan_parked_claim(pa, NULL, &a), -EAGAIN);
	PW_CHECK_EQ(pw_chan_read(p.b, &c, 1, 0), 0); /* the client's close: EOF */
	/* A late wake byte at the accepting end is not a claim. */
	PW_CHECK_EQ(park(p.b, &pb), 0);
	PW_CHECK_EQ(pw_chan_parked_take(pb, NULL, &b), -EAGAIN);
	PW_CHECK(!readable(pw_chan_parked_fd(pb), 0), "the late byte stays");
	PW_CHECK_EQ(pw_chan_parked_claim(pa, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_parked_take(pb, NULL, &b), 0);
	move(a, b, 6, 0, 1000);
	move(b, a, 7, 0, 1000);

	/* The accepting end drops its parked end: the claim fails. */
	exchange_and_park(a, b, 8, 10, 10, &pa, &pb);
	pw_chan_parked_drop(pb);
	PW_CHECK_EQ(pw_chan_parked_claim(pa, NULL, &a), -EPIPE);
	pw_chan_parked_drop(pa);
	close(p.memfd);

	/* A claimed end dropped before it was taken: the client reads a
	 * reset, as from a listener that closed with it in the queue. */
	pair_open(&p);
	exchange_and_park(p.a, p.b, 9, 10, 10, &pa, &pb);
	PW_CHECK_EQ(pw_chan_parked_claim(pa, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_write(a, "req", 3, 0), 3);
	pw_chan_parked_drop(pb);
	PW_CHECK_EQ(pw_chan_read(a, &c, 1, 0), -ECONNRESET);
	pw_chan_close(a);
	close(p.memfd);

	/* Only the connecting end claims, only the accepting end takes. */
	pair_open(&p);
	exchange_and_park(p.a, p.b, 10, 1, 1, &pa, &pb);
	PW_CHECK_EQ(pw_chan_parked_claim(pb, NULL, &a), -EINVAL);
	PW_CHECK_EQ(pw_chan_parked_take(pa, NULL, &b), -EINVAL);
	PW_CHECK_EQ(pw_chan_parked_side(pa), 0u);
	PW_CHECK_EQ(pw_chan_parked_side(pb), 1u);
	pw_chan_parked_drop(pa);
	pw_chan_parked_drop(pb);
	close(p.memfd);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
}

/* ---- two threads, one connection after another over one channel ---- */

struct side {
	struct pw_chan_parked *p;
	int rounds;
	uint64_t bytes;
};

static void *client_thread(void *arg)
{
	struct side *s = arg;
	struct pw_rng rng;
	static uint8_t buf[RING];

	pw_rng_seed(&rng, 11);
	for (int i = 0; i < s->rounds; i++) {
		struct pw_chan *a = NULL;
		int r;

		while ((r = pw_chan_parked_claim(s->p, NULL, &a)) == -EAGAIN)
			sched_yield();
		PW_CHECK(r == 0, "round %d: claim %d", i, r);
		uint32_t len = (uint32_t)pw_rng_range(&rng, 1, sizeof(buf) - 4);
		pw_stream_fill((uint64_t)i, 0, buf, len);
		PW_CHECK_EQ(pw_chan_write(a, &len, 4, 0), 4);
		PW_CHECK_EQ(pw_chan_write(a, buf, len, 0), (ssize_t)len);
		PW_CHECK_EQ(pw_chan_read(a, buf, len, PW_CHAN_WAITALL), (ssize_t)len);
		long long bad = pw_stream_check((uint64_t)i, 0, buf, len);
		PW_CHECK(bad < 0, "round %d: echo byte %lld differs", i, bad);
		/* The server closes after its echo: EOF, then our park. */
		PW_CHECK_EQ(pw_chan_read(a, buf, 1, 0), 0);
		PW_CHECK_EQ(park(a, &s->p), 0);
		s->bytes += len;
	}
	return NULL;
}

static void *server_thread(void *arg)
{
	struct side *s = arg;
	static uint8_t buf[RING];

	for (int i = 0; i < s->rounds; i++) {
		struct pw_chan *b = NULL;
		uint32_t len = 0;
		int r;

		do {
			PW_CHECK(readable(pw_chan_parked_fd(s->p), 10000), "round %d: no claim", i);
			r = pw_chan_parked_take(s->p, NULL, &b);
		} while (r == -EAGAIN);
		PW_CHECK(r == 0, "round %d: take %d", i, r);
		PW_CHECK_EQ(pw_chan_read(b, &len, 4, PW_CHAN_WAITALL), 4);
		PW_CHECK(len > 0 && len <= sizeof(buf), "round %d: length %u", i, len);
		PW_CHECK_EQ(pw_chan_read(b, buf, len, PW_CHAN_WAITALL), (ssize_t)len);
		PW_CHECK_EQ(pw_chan_write(b, buf, len, 0), (ssize_t)len);
		s->bytes += len;
		PW_CHECK_EQ(park(b, &s->p), 0);
	}
	return NULL;
}

static void test_threads(void)
{
	int rounds = PW_TEST_SANITIZED ? 400 : 3000;
	struct side cs = { .rounds = rounds }, ss = { .rounds = rounds };
	struct pair p;
	pthread_t t[2];

	pair_open(&p);
	exchange_and_park(p.a, p.b, 20, 1, 1, &cs.p, &ss.p);
	PW_CHECK_EQ(pthread_create(&t[0], NULL, client_thread, &cs), 0);
	PW_CHECK_EQ(pthread_create(&t[1], NULL, server_thread, &ss), 0);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	PW_CHECK(cs.bytes == ss.bytes, "client sent %llu, server echoed %llu",
		 (unsigned long long)cs.bytes, (unsigned long long)ss.bytes);
	pw_chan_parked_drop(cs.p);
	pw_chan_parked_drop(ss.p);
	close(p.memfd);
}

int main(void)
{
	pw_test_watchdog(120);
	test_cycles();
	test_early_bytes();
	test_refused();
	test_claims();
	test_threads();
	printf("test-chan-reuse: ok\n");
	return 0;
}
