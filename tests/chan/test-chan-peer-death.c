// SPDX-License-Identifier: MIT
/*
 * The peer dies by SIGKILL mid-stream: the survivor must notice within 100 ms
 * whether it was reading, writing or waiting, after taking the data already
 * in the ring, and closing must leave no fd and no mapping behind. Also the
 * orderly ends: the peer's pw_chan_close() gives EOF, its pw_chan_abort()
 * gives -ECONNRESET.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE   (64u * 1024u)
#define SEED	    0xdeadull
#define DEADLINE_NS (100ull * 1000000ull)
#define SEG_SIZE    (PW_SHM_DATA_OFF + 2ull * RING_SIZE)

struct peer {
	pid_t pid;
	struct pw_chan *c;
	struct pw_shm_chan *shm; /* our own view, to see when our end sleeps */
	int fds_before;
};

/* Create a channel, fork the peer running @fn on side 1, open side 0 here. */
static void peer_start(struct peer *p, void (*fn)(struct pw_chan *))
{
	int memfd, sv[2];

	p->fds_before = pw_test_count_fds();
	PW_CHECK_EQ(pw_test_count_maps("memfd:podwire-chan"), 0);
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	p->pid = pw_test_fork(30);
	if (p->pid == 0) {
		struct pw_chan *c;

		close(sv[0]);
		PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &c), 0);
		close(memfd);
		fn(c);
		exit(0);
	}
	close(sv[1]);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &p->c), 0);
	p->shm = mmap(NULL, SEG_SIZE, PROT_READ, MAP_SHARED, memfd, 0);
	PW_CHECK(p->shm != MAP_FAILED, "mmap: %s", strerror(errno));
	close(memfd);
}

/* Close our end and check that nothing of the channel is left. */
static void peer_finish(struct peer *p)
{
	munmap(p->shm, SEG_SIZE);
	pw_chan_close(p->c);
	p->c = NULL;
	PW_CHECK_EQ(pw_test_count_fds(), p->fds_before);
	PW_CHECK_EQ(pw_test_count_maps("memfd:podwire-chan"), 0);
}

/*
 * A killer thread: wait until our end announced that it sleeps (its wake
 * flag @armed is set in the shared segment) and, if @tail_at is nonzero, the
 * peer published that many bytes; then a little more, so that it is in
 * poll(2); then SIGKILL the peer and note the time.
 */
struct killer {
	pid_t pid;
	_Atomic uint32_t *armed;
	_Atomic uint32_t *tail;
	uint32_t tail_at;
	_Atomic uint64_t killed_at;
	pthread_t th;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;
	uint64_t t0 = pw_test_now_ns();

	/* Bounded: past 5 s kill anyway, the sleeps check will tell. */
	while (pw_test_now_ns() - t0 < 5000000000ull &&
	       (!atomic_load(k->armed) || (k->tail && atomic_load(k->tail) != k->tail_at)))
		pw_test_sleep_ms(1);
	pw_test_sleep_ms(20);
	atomic_store(&k->killed_at, pw_test_now_ns());
	kill(k->pid, SIGKILL);
	return NULL;
}

static void killer_start(struct killer *k, pid_t pid, _Atomic uint32_t *armed,
			 _Atomic uint32_t *tail, uint32_t tail_at)
{
	k->pid = pid;
	k->armed = armed;
	k->tail = tail;
	k->tail_at = tail_at;
	atomic_store(&k->killed_at, 0);
	PW_CHECK_EQ(pthread_create(&k->th, NULL, killer_main, k), 0);
}

/* Our end slept in the kernel at least once. */
static void check_slept(struct peer *p, const char *what)
{
	struct pw_chan_stats st;

	pw_chan_get_stats(p->c, &st);
	PW_CHECK(st.sleeps >= 1, "%s: our end never slept", what);
}

static uint64_t killer_join(struct killer *k)
{
	PW_CHECK_EQ(pthread_join(k->th, NULL), 0);
	return atomic_load(&k->killed_at);
}

/* Reap a peer we killed: it must have died by our SIGKILL, not earlier. */
static void reap_killed(pid_t pid)
{
	int st = pw_test_reap(pid);

	PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "peer status %#x", st);
}

static void peer_write_forever(struct pw_chan *c)
{
	static uint8_t buf[32768];
	uint64_t pos = 0;

	for (;;) {
		pw_stream_fill(SEED, pos, buf, sizeof(buf));
		ssize_t n = pw_chan_write(c, buf, sizeof(buf), 0);
		PW_CHECK_EQ(n, sizeof(buf));
		pos += sizeof(buf);
	}
}

static void peer_write_then_idle(struct pw_chan *c)
{
	uint8_t buf[1000];

	pw_stream_fill(SEED, 0, buf, sizeof(buf));
	PW_CHECK_EQ(pw_chan_write(c, buf, sizeof(buf), 0), sizeof(buf));
	for (;;)
		pause();
}

static void peer_idle(struct pw_chan *c)
{
	(void)c;
	for (;;)
		pause();
}

/* Read 1000 bytes, then never again. */
static void peer_read_then_idle(struct pw_chan *c)
{
	uint8_t buf[1000];

	PW_CHECK_EQ(pw_chan_read(c, buf, sizeof(buf), PW_CHAN_WAITALL), sizeof(buf));
	for (;;)
		pause();
}

static void check_prompt(const char *what, uint64_t killed_at, uint64_t noticed_at)
{
	PW_CHECK(killed_at != 0, "%s: the peer was not killed", what);
	uint64_t dt = noticed_at > killed_at ? noticed_at - killed_at : 0;
	PW_CHECK(dt <= DEADLINE_NS, "%s: noticed %.1f ms after the kill", what, (double)dt / 1e6);
	fprintf(stderr, "%s: noticed %.3f ms after the kill\n", what, (double)dt / 1e6);
}

/*
 * A1: the peer writes flat out; we read a while, SIGKILL it and reap it, then
 * drain what it left in the ring (all of it valid stream) and get the error.
 */
static void case_reader_busy(void)
{
	static uint8_t buf[65536];
	struct peer p;
	uint64_t pos = 0;
	ssize_t n;

	peer_start(&p, peer_write_forever);
	while (pos < 16 * PW_MIB) {
		n = pw_chan_read(p.c, buf, sizeof(buf), 0);
		PW_CHECK(n > 0, "read: %zd", n);
		PW_CHECK(pw_stream_check(SEED, pos, buf, (size_t)n) < 0, "bad data at %llu",
			 (unsigned long long)pos);
		pos += (uint64_t)n;
	}
	uint64_t killed_at = pw_test_now_ns();
	PW_CHECK_EQ(kill(p.pid, SIGKILL), 0);
	reap_killed(p.pid);
	uint64_t drained = 0;
	for (;;) {
		n = pw_chan_read(p.c, buf, sizeof(buf), 0);
		if (n <= 0)
			break;
		PW_CHECK(pw_stream_check(SEED, pos, buf, (size_t)n) < 0, "bad data at %llu",
			 (unsigned long long)pos);
		pos += (uint64_t)n;
		drained += (uint64_t)n;
	}
	uint64_t now = pw_test_now_ns();
	PW_CHECK(n == -ECONNRESET || n == 0, "read after the kill: %zd", n);
	PW_CHECK(drained <= RING_SIZE, "drained %llu > ring", (unsigned long long)drained);
	check_prompt("A1 busy reader", killed_at, now);
	/* The error sticks, and poll says so. */
	PW_CHECK_EQ(pw_chan_read(p.c, buf, 1, 0), n);
	PW_CHECK_EQ(pw_chan_read(p.c, buf, 1, PW_CHAN_DONTWAIT), n);
	short m = pw_chan_poll(p.c);
	PW_CHECK((m & POLLHUP) && (m & POLLIN), "poll %#x", m);
	PW_CHECK_EQ(pw_chan_write(p.c, buf, 1, 0), -EPIPE);
	peer_finish(&p);
}

/* A2: we sleep in pw_chan_read on an empty ring when the peer is killed. */
static void case_reader_blocked(void)
{
	uint8_t buf[2000];
	struct killer k;
	struct peer p;

	peer_start(&p, peer_write_then_idle);
	PW_CHECK_EQ(pw_chan_read(p.c, buf, 1000, PW_CHAN_WAITALL), 1000);
	PW_CHECK(pw_stream_check(SEED, 0, buf, 1000) < 0, "bad data");
	killer_start(&k, p.pid, &p.shm->ring[1].rx_sleep, NULL, 0);
	ssize_t n = pw_chan_read(p.c, buf, sizeof(buf), 0);
	uint64_t now = pw_test_now_ns();
	uint64_t killed_at = killer_join(&k);
	reap_killed(p.pid);
	PW_CHECK(n == -ECONNRESET || n == 0, "read: %zd", n);
	check_prompt("A2 blocked reader", killed_at, now);
	check_slept(&p, "A2");

	struct pw_chan_stats st;
	pw_chan_get_stats(p.c, &st);
	PW_CHECK_EQ(st.bytes_in, 1000);
	peer_finish(&p);
}

/* A3: same with WAITALL holding part of a message when the peer dies. */
static void case_reader_waitall(void)
{
	uint8_t buf[2000];
	struct killer k;
	struct peer p;

	peer_start(&p, peer_write_then_idle);
	killer_start(&k, p.pid, &p.shm->ring[1].rx_sleep, &p.shm->ring[1].tail, 1000);
	ssize_t n = pw_chan_read(p.c, buf, sizeof(buf), PW_CHAN_WAITALL);
	uint64_t now = pw_test_now_ns();
	uint64_t killed_at = killer_join(&k);
	reap_killed(p.pid);
	/* The bytes it got before the death, then the error. */
	PW_CHECK_EQ(n, 1000);
	PW_CHECK(pw_stream_check(SEED, 0, buf, 1000) < 0, "bad data");
	n = pw_chan_read(p.c, buf, sizeof(buf), PW_CHAN_WAITALL);
	PW_CHECK(n == -ECONNRESET || n == 0, "read: %zd", n);
	check_prompt("A3 WAITALL reader", killed_at, now);
	check_slept(&p, "A3");
	peer_finish(&p);
}

/*
 * B: the peer stopped reading, our write sleeps on a full ring, the peer is
 * killed: the write fails (or returns what it wrote and the next one fails).
 */
static void case_writer_blocked(bool big)
{
	static uint8_t buf[4 * RING_SIZE];
	struct killer k;
	struct peer p;
	ssize_t n;
	uint64_t sent = 0;

	peer_start(&p, peer_read_then_idle);
	/* Fill the ring to the brim without sleeping. */
	do {
		n = pw_chan_write(p.c, buf, 4096, PW_CHAN_DONTWAIT);
		if (n > 0)
			sent += (uint64_t)n;
		if (n == -EAGAIN && sent < RING_SIZE + 1000)
			pw_test_sleep_ms(1); /* the peer has not taken its 1000 yet */
	} while (n > 0 || (n == -EAGAIN && sent < RING_SIZE + 1000));
	PW_CHECK_EQ(n, -EAGAIN);
	PW_CHECK_EQ(sent, RING_SIZE + 1000);
	PW_CHECK(!(pw_chan_poll(p.c) & POLLOUT), "poll %#x", pw_chan_poll(p.c));

	killer_start(&k, p.pid, &p.shm->ring[0].tx_sleep, NULL, 0);
	n = pw_chan_write(p.c, buf, big ? sizeof(buf) : 100, 0);
	if (n > 0) {
		/* Some space appeared: impossible, the peer stopped reading. */
		PW_FAIL("write returned %zd though the peer never read again", n);
	}
	uint64_t now = pw_test_now_ns();
	uint64_t killed_at = killer_join(&k);
	reap_killed(p.pid);
	PW_CHECK(n == -EPIPE || n == -ECONNRESET, "write: %zd", n);
	check_prompt(big ? "B blocked big writer" : "B blocked writer", killed_at, now);
	check_slept(&p, "B");
	/* It sticks; poll reports the hang-up; DONTWAIT does not say EAGAIN. */
	n = pw_chan_write(p.c, buf, 1, PW_CHAN_DONTWAIT);
	PW_CHECK(n == -EPIPE || n == -ECONNRESET, "write: %zd", n);
	PW_CHECK(pw_chan_poll(p.c) & POLLHUP, "poll %#x", pw_chan_poll(p.c));
	peer_finish(&p);
}

/*
 * B3: same, but the peer closes its end in an orderly way (while we sleep in
 * a write): EPIPE, not a hang.
 */
static void peer_read_then_close(struct pw_chan *c)
{
	uint8_t buf[1000];

	PW_CHECK_EQ(pw_chan_read(c, buf, sizeof(buf), PW_CHAN_WAITALL), sizeof(buf));
	pw_test_sleep_ms(200);
	pw_chan_close(c);
}

static void case_writer_peer_closes(void)
{
	static uint8_t buf[2 * RING_SIZE];
	struct peer p;

	peer_start(&p, peer_read_then_close);
	/* 1000 bytes go to the peer, a ring's worth stays, then we sleep. */
	ssize_t n = pw_chan_write(p.c, buf, sizeof(buf), 0);
	PW_CHECK_EQ(n, RING_SIZE + 1000);
	n = pw_chan_write(p.c, buf, 1, 0);
	PW_CHECK_EQ(n, -EPIPE);
	PW_CHECK_CHILD_OK(p.pid);
	PW_CHECK_EQ(pw_chan_write(p.c, buf, 1, PW_CHAN_DONTWAIT), -EPIPE);
	peer_finish(&p);
}

/* B2: a writer streaming flat out against a reader that is killed mid-way. */
static void peer_read_forever(struct pw_chan *c)
{
	static uint8_t buf[32768];

	for (;;)
		PW_CHECK(pw_chan_read(c, buf, sizeof(buf), 0) > 0, "peer read");
}

static void case_writer_busy(void)
{
	static uint8_t buf[50000];
	struct peer p;
	ssize_t n;
	uint64_t sent = 0;

	peer_start(&p, peer_read_forever);
	while (sent < 16 * PW_MIB) {
		n = pw_chan_write(p.c, buf, sizeof(buf), 0);
		PW_CHECK_EQ(n, sizeof(buf));
		sent += (uint64_t)n;
	}
	uint64_t killed_at = pw_test_now_ns();
	PW_CHECK_EQ(kill(p.pid, SIGKILL), 0);
	reap_killed(p.pid);
	/* At most a ring's worth more is accepted, then the error. */
	uint64_t more = 0;
	do {
		n = pw_chan_write(p.c, buf, sizeof(buf), 0);
		if (n > 0)
			more += (uint64_t)n;
	} while (n > 0 && more <= RING_SIZE);
	uint64_t now = pw_test_now_ns();
	PW_CHECK(n == -EPIPE || n == -ECONNRESET, "write: %zd after %llu more bytes", n,
		 (unsigned long long)more);
	PW_CHECK(more <= RING_SIZE, "%llu bytes accepted after the death",
		 (unsigned long long)more);
	check_prompt("B2 busy writer", killed_at, now);
	peer_finish(&p);
}

/* C: we sleep in pw_chan_wait(POLLIN, -1) on an idle peer that is killed. */
static void case_waiter(short events)
{
	struct killer k;
	struct peer p;

	peer_start(&p, peer_idle);
	if (events & POLLOUT) {
		/* Make POLLOUT not ready: fill the ring. */
		static uint8_t buf[RING_SIZE];
		PW_CHECK_EQ(pw_chan_write(p.c, buf, sizeof(buf), 0), RING_SIZE);
	}
	PW_CHECK_EQ(pw_chan_wait(p.c, events, 0), 0);
	killer_start(&k, p.pid,
		     events & POLLOUT ? &p.shm->ring[0].tx_sleep : &p.shm->ring[1].rx_sleep, NULL,
		     0);
	int m = pw_chan_wait(p.c, events, -1);
	uint64_t now = pw_test_now_ns();
	uint64_t killed_at = killer_join(&k);
	reap_killed(p.pid);
	PW_CHECK(m > 0 && (m & (POLLHUP | POLLERR)), "wait: %d (%#x)", m, m > 0 ? m : 0);
	check_prompt(events == POLLIN	 ? "C waiter POLLIN"
		     : events == POLLOUT ? "C waiter POLLOUT"
					 : "C waiter POLLIN|POLLOUT",
		     killed_at, now);
	check_slept(&p, "C");
	/* And a read then says why. */
	uint8_t b;
	PW_CHECK_EQ(pw_chan_read(p.c, &b, 1, 0), -ECONNRESET);
	peer_finish(&p);
}

/* Orderly ends. */
static void peer_write_close(struct pw_chan *c)
{
	uint8_t buf[3000];

	pw_stream_fill(SEED, 0, buf, sizeof(buf));
	PW_CHECK_EQ(pw_chan_write(c, buf, sizeof(buf), 0), sizeof(buf));
	pw_chan_close(c);
}

static void peer_abort(struct pw_chan *c)
{
	uint8_t b;

	/* Wait for the go, then abort with nothing left unread on either side. */
	PW_CHECK_EQ(pw_chan_read(c, &b, 1, 0), 1);
	pw_chan_abort(c);
}

static void case_orderly_close(void)
{
	uint8_t buf[4000];
	struct peer p;

	peer_start(&p, peer_write_close);
	PW_CHECK_EQ(pw_chan_read(p.c, buf, sizeof(buf), PW_CHAN_WAITALL), 3000);
	PW_CHECK(pw_stream_check(SEED, 0, buf, 3000) < 0, "bad data");
	PW_CHECK_CHILD_OK(p.pid);
	PW_CHECK_EQ(pw_chan_read(p.c, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_read(p.c, buf, sizeof(buf), PW_CHAN_DONTWAIT), 0);
	short m = pw_chan_poll(p.c);
	PW_CHECK((m & POLLIN) && (m & POLLHUP) && !(m & POLLERR), "poll %#x", m);
	PW_CHECK_EQ(pw_chan_write(p.c, buf, 1, 0), -EPIPE);
	peer_finish(&p);
}

static void case_abort(bool peer_gone_first)
{
	uint8_t buf[16];
	struct peer p;

	peer_start(&p, peer_abort);
	PW_CHECK_EQ(pw_chan_write(p.c, "g", 1, 0), 1);
	if (peer_gone_first) {
		PW_CHECK_CHILD_OK(p.pid);
	} else {
		/* Blocked in read when the abort comes. */
		PW_CHECK_EQ(pw_chan_read(p.c, buf, sizeof(buf), 0), -ECONNRESET);
		PW_CHECK_CHILD_OK(p.pid);
	}
	PW_CHECK_EQ(pw_chan_read(p.c, buf, sizeof(buf), 0), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_read(p.c, buf, sizeof(buf), PW_CHAN_DONTWAIT), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_write(p.c, buf, sizeof(buf), 0), -ECONNRESET);
	PW_CHECK_EQ(pw_chan_write(p.c, buf, sizeof(buf), PW_CHAN_DONTWAIT), -ECONNRESET);
	short m = pw_chan_poll(p.c);
	PW_CHECK((m & POLLERR) && (m & POLLHUP), "poll %#x", m);
	int w = pw_chan_wait(p.c, POLLIN, 1000);
	PW_CHECK(w > 0 && (w & POLLERR), "wait %d", w);
	peer_finish(&p);
}

int main(void)
{
	pw_test_watchdog(50);
	int fds = pw_test_count_fds();

	case_reader_busy();
	case_reader_blocked();
	case_reader_waitall();
	case_writer_blocked(false);
	case_writer_blocked(true);
	case_writer_busy();
	case_writer_peer_closes();
	case_waiter(POLLIN);
	case_waiter(POLLIN | POLLOUT);
	case_waiter(POLLOUT);
	case_orderly_close();
	case_abort(true);
	case_abort(false);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	return 0;
}
