// SPDX-License-Identifier: MIT
/*
 * Waiting costs nothing and waking costs a syscall only when needed.
 *
 * 1. A process blocked for 2 s in pw_chan_read() on an idle channel, or in
 *    pw_chan_write() on a full ring, uses under 1% CPU (its own
 *    CLOCK_PROCESS_CPUTIME_ID around the call), then wakes up and completes
 *    the call when the parent acts, having slept in the kernel. The same for
 *    a writer whose peer has shut down its writing side (a half-closed
 *    channel is still a channel).
 * 2. A writer whose reader never arms (it spins on pw_chan_poll() or in the
 *    library's own spin-wait) makes no wake-up syscall; a writer whose reader
 *    is asleep makes exactly one per message.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE PW_RING_MIN
#define SLEEP_MS  2000u
#define SEG_SIZE  (PW_SHM_DATA_OFF + 2ull * RING_SIZE)

static const char msg[] = "wake up, it is time";

enum mode {
	M_READ_IDLE,	   /* child blocks reading an idle channel */
	M_WRITE_FULL,	   /* child blocks writing to a full ring */
	M_WRITE_FULL_HALF, /* same after the parent shut down writing */
	M_COUNT,
};

static const char *const mode_name[] = { "blocked reader", "blocked writer",
					 "blocked writer, peer SHUT_WR" };

struct report {
	uint64_t cpu_ns, wall_ns, sleeps;
	int64_t ret;
};

static uint64_t cpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void child(enum mode mode, int memfd, int sock, int pfd)
{
	static uint8_t buf[RING_SIZE + 1000];
	struct pw_chan_opts opts = { 0 }; /* default: spin, then sleep */
	struct report rep = { 0 };
	struct pw_chan *c;
	struct pw_chan_stats st;

	PW_CHECK_EQ(pw_chan_open(memfd, sock, 1, &opts, &c), 0);
	close(memfd);
	/* The clocks start before the parent hears we are ready: wall >= its sleep. */
	uint64_t cpu0 = cpu_now_ns(), wall0 = pw_test_now_ns();
	PW_CHECK_EQ(write(pfd, "R", 1), 1);
	if (mode == M_READ_IDLE) {
		rep.ret = pw_chan_read(c, buf, sizeof(buf), 0);
		PW_CHECK_EQ(rep.ret, sizeof(msg));
		PW_CHECK(memcmp(buf, msg, sizeof(msg)) == 0, "message");
	} else {
		pw_stream_fill(3, 0, buf, sizeof(buf));
		rep.ret = pw_chan_write(c, buf, sizeof(buf), 0);
		PW_CHECK_EQ(rep.ret, sizeof(buf));
	}
	rep.cpu_ns = cpu_now_ns() - cpu0;
	rep.wall_ns = pw_test_now_ns() - wall0;
	pw_chan_get_stats(c, &st);
	rep.sleeps = st.sleeps;
	PW_CHECK_EQ(write(pfd, &rep, sizeof(rep)), sizeof(rep));
	pw_chan_close(c);
	exit(0);
}

static void test_blocked(enum mode mode)
{
	static uint8_t buf[RING_SIZE + 1000];
	int memfd, sv[2], pp[2];
	struct pw_chan *c;
	struct report rep;
	struct pw_chan_stats st;
	char r;

	PW_CHECK_EQ(pipe(pp), 0);
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	pid_t pid = pw_test_fork(20);
	if (pid == 0) {
		close(sv[0]);
		close(pp[0]);
		child(mode, memfd, sv[1], pp[1]);
	}
	close(sv[1]);
	close(pp[1]);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &c), 0);
	close(memfd);
	if (mode == M_WRITE_FULL_HALF)
		PW_CHECK_EQ(pw_chan_shutdown(c, SHUT_WR), 0);
	PW_CHECK_EQ(read(pp[0], &r, 1), 1);

	pw_test_sleep_ms(SLEEP_MS);
	if (mode == M_READ_IDLE) {
		PW_CHECK_EQ(pw_chan_write(c, msg, sizeof(msg), 0), sizeof(msg));
	} else {
		PW_CHECK(pw_chan_poll(c) & POLLIN, "poll %#x", pw_chan_poll(c));
		PW_CHECK_EQ(pw_chan_read(c, buf, sizeof(buf), PW_CHAN_WAITALL), sizeof(buf));
		PW_CHECK(pw_stream_check(3, 0, buf, sizeof(buf)) < 0, "data");
	}
	PW_CHECK_EQ(read(pp[0], &rep, sizeof(rep)), sizeof(rep));
	PW_CHECK_CHILD_OK(pid);
	pw_chan_get_stats(c, &st);
	fprintf(stderr, "%s: %.3f ms CPU in %.3f s blocked (%.4f%%), %llu sleeps\n",
		mode_name[mode], (double)rep.cpu_ns / 1e6, (double)rep.wall_ns / 1e9,
		100.0 * (double)rep.cpu_ns / (double)rep.wall_ns, (unsigned long long)rep.sleeps);
	PW_CHECK(rep.cpu_ns * 100 < rep.wall_ns, "%s: %.3f ms of CPU in %.3f s (>= 1%%)",
		 mode_name[mode], (double)rep.cpu_ns / 1e6, (double)rep.wall_ns / 1e9);
	/* It was really waiting for us: the call ended only after our action. */
	PW_CHECK(rep.wall_ns >= SLEEP_MS * 1000000ull, "%s: the call returned after %.3f s",
		 mode_name[mode], (double)rep.wall_ns / 1e9);
	PW_CHECK(rep.sleeps >= 1, "%s: never slept", mode_name[mode]);
	/* And it slept, announced it, so waking it took exactly one syscall. */
	if (mode == M_READ_IDLE)
		PW_CHECK_EQ(st.wakes_sent, 1);
	else
		PW_CHECK(st.wakes_sent >= 1, "%s: reader woke the writer %llu times",
			 mode_name[mode], (unsigned long long)st.wakes_sent);
	pw_chan_close(c);
	close(pp[0]);
}

/* Two ends in this process: writer a (side 0), reader b (side 1) in a thread. */
struct pair {
	struct pw_chan *a, *b;
	struct pw_shm_chan *shm; /* our own view, to watch the wake flag */
	_Atomic uint64_t received;
	atomic_bool failed;
	enum { R_POLL_SPIN, R_LIB_SPIN, R_SLEEP } how;
};

static void pair_open(struct pair *p, const struct pw_chan_opts *ropts)
{
	int memfd, sv[2];

	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &p->a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, ropts, &p->b), 0);
	p->shm = mmap(NULL, SEG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	PW_CHECK(p->shm != MAP_FAILED, "mmap");
	close(memfd);
	atomic_store(&p->received, 0);
	atomic_store(&p->failed, false);
}

static void pair_close(struct pair *p)
{
	munmap(p->shm, SEG_SIZE);
	pw_chan_close(p->a);
	pw_chan_close(p->b);
}

static void *reader_main(void *arg)
{
	struct pair *p = arg;
	uint8_t buf[2048];
	uint64_t pos = 0;

	for (;;) {
		ssize_t n;

		if (p->how == R_POLL_SPIN) {
			/* Never call into a path that could arm: read only what is there. */
			short m = pw_chan_poll(p->b);
			if (!(m & POLLIN)) {
				sched_yield();
				continue;
			}
			n = pw_chan_read(p->b, buf, sizeof(buf), PW_CHAN_DONTWAIT);
		} else {
			n = pw_chan_read(p->b, buf, sizeof(buf), 0);
		}
		if (n == 0)
			break;
		if (n < 0 || pw_stream_check(9, pos, buf, (size_t)n) >= 0) {
			fprintf(stderr, "reader: read %zd at %llu\n", n, (unsigned long long)pos);
			atomic_store(&p->failed, true);
			break;
		}
		pos += (uint64_t)n;
		atomic_store(&p->received, pos);
	}
	return NULL;
}

/* The reader never sleeps: the writer must not make a single wake-up syscall. */
static void test_no_wakes(int how)
{
	struct pw_chan_opts ropts = { .spin_ns = UINT32_MAX }; /* ~4.3 s spin budget */
	uint8_t buf[1000];
	struct pw_chan_stats st;
	struct pw_rng rng;
	struct pair p;
	pthread_t th;
	uint64_t pos = 0;

	pair_open(&p, how == R_LIB_SPIN ? &ropts : NULL);
	p.how = how;
	pw_rng_seed(&rng, (uint64_t)how);
	PW_CHECK_EQ(pthread_create(&th, NULL, reader_main, &p), 0);
	for (int i = 0; i < 20000; i++) {
		size_t len = pw_rng_size(&rng, sizeof(buf));

		pw_stream_fill(9, pos, buf, len);
		PW_CHECK_EQ(pw_chan_write(p.a, buf, len, 0), len);
		pos += len;
		PW_CHECK(!atomic_load(&p.failed), "reader failed");
		PW_CHECK_EQ(atomic_load(&p.shm->ring[0].rx_sleep), 0);
	}
	pw_chan_get_stats(p.a, &st);
	PW_CHECK(st.wakes_sent == 0, "%s reader: %llu wake-ups sent for %llu bytes",
		 how == R_POLL_SPIN ? "poll-spinning" : "library-spinning",
		 (unsigned long long)st.wakes_sent, (unsigned long long)pos);
	PW_CHECK_EQ(st.bytes_out, pos);
	PW_CHECK_EQ(pw_chan_shutdown(p.a, SHUT_WR), 0);
	PW_CHECK_EQ(pthread_join(th, NULL), 0);
	PW_CHECK(!atomic_load(&p.failed), "reader failed");
	PW_CHECK_EQ(atomic_load(&p.received), pos);
	pw_chan_get_stats(p.b, &st);
	PW_CHECK_EQ(st.bytes_in, pos);
	if (how == R_LIB_SPIN)
		PW_CHECK_EQ(st.sleeps, 0);
	pair_close(&p);
}

/* The reader sleeps before each message: one wake-up syscall per message. */
static void test_wakes(void)
{
	struct pw_chan_opts ropts = { .no_spin = true };
	const int rounds = 20;
	struct pw_chan_stats st;
	uint8_t buf[100];
	struct pair p;
	pthread_t th;

	pair_open(&p, &ropts);
	p.how = R_SLEEP;
	PW_CHECK_EQ(pthread_create(&th, NULL, reader_main, &p), 0);
	for (int i = 0; i < rounds; i++) {
		uint64_t t0 = pw_test_now_ns();

		/* Wait until the reader announced that it sleeps. */
		while (!atomic_load(&p.shm->ring[0].rx_sleep)) {
			PW_CHECK(pw_test_now_ns() - t0 < 5000000000ull, "reader never armed");
			PW_CHECK(!atomic_load(&p.failed), "reader failed");
			sched_yield();
		}
		pw_stream_fill(9, (uint64_t)i * sizeof(buf), buf, sizeof(buf));
		PW_CHECK_EQ(pw_chan_write(p.a, buf, sizeof(buf), 0), sizeof(buf));
		pw_chan_get_stats(p.a, &st);
		PW_CHECK_EQ(st.wakes_sent, i + 1);
		while (atomic_load(&p.received) < (uint64_t)(i + 1) * sizeof(buf)) {
			PW_CHECK(pw_test_now_ns() - t0 < 5000000000ull, "reader did not wake");
			PW_CHECK(!atomic_load(&p.failed), "reader failed");
			sched_yield();
		}
	}
	PW_CHECK_EQ(pw_chan_shutdown(p.a, SHUT_WR), 0);
	PW_CHECK_EQ(pthread_join(th, NULL), 0);
	PW_CHECK(!atomic_load(&p.failed), "reader failed");
	pw_chan_get_stats(p.b, &st);
	PW_CHECK(st.sleeps >= (uint64_t)rounds, "reader slept %llu times for %d messages",
		 (unsigned long long)st.sleeps, rounds);
	pair_close(&p);
}

int main(void)
{
	pw_test_watchdog(50);
	test_no_wakes(R_POLL_SPIN);
	test_no_wakes(R_LIB_SPIN);
	test_wakes();
	for (int m = 0; m < M_COUNT; m++)
		test_blocked((enum mode)m);
	return 0;
}
