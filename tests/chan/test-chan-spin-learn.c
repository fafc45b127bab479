// SPDX-License-Identifier: MIT
/*
 * A ping-pong whose two ends both fell asleep gets back to spinning.
 *
 * Two processes echo 64-byte messages. First, 20 exchanges with a 2 ms pause
 * before each, so that both ends have slept, each message finds its reader
 * asleep, and each answer comes only after a wake-up. With a fixed spin
 * budget shorter than a wake-up, every round trip then sleeps twice for
 * good (the trap sockperf fell into at 14 bytes: 45 us one-way instead of
 * 0.2). The waits must learn from their short sleeps: over the next 20,000
 * back-to-back round trips, the ends sleep in under 2% of them.
 *
 * Then the spinning stays bounded: right after that, a wait for an answer
 * that takes 200 ms costs under 2 ms of CPU.
 */
#include <inttypes.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define MSG    64
#define TRAP   20
#define ROUNDS 20000
#define RING   (64u << 10)

static uint64_t cpu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void echo(int memfd, int sock)
{
	struct pw_chan *c;
	uint8_t buf[MSG];

	if (pw_chan_open(memfd, sock, 1, NULL, &c) < 0)
		_exit(2);
	for (;;) {
		ssize_t n = pw_chan_read(c, buf, MSG, PW_CHAN_WAITALL);
		if (n != MSG)
			break;
		if (buf[0] == 1)
			pw_test_sleep_ms(200);
		if (pw_chan_write(c, buf, MSG, 0) != MSG)
			_exit(3);
	}
	pw_chan_close(c);
	_exit(0);
}

static void round_trip(struct pw_chan *c, uint8_t *buf)
{
	PW_CHECK_EQ(pw_chan_write(c, buf, MSG, 0), MSG);
	PW_CHECK_EQ(pw_chan_read(c, buf, MSG, PW_CHAN_WAITALL), MSG);
}

int main(void)
{
	struct pw_chan_stats st0, st1;
	uint8_t buf[MSG] = { 0 };
	struct pw_chan *c;
	int memfd, sv[2];

	if (PW_TEST_SANITIZED) {
		printf("SKIP: timing under a sanitizer means nothing\n");
		return 77;
	}
	PW_CHECK_EQ(pw_chan_create(RING, 0, &memfd, sv), 0);
	pid_t pid = pw_test_fork(60);
	if (pid == 0) {
		close(sv[0]);
		echo(memfd, sv[1]);
	}
	close(sv[1]);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &c), 0);
	close(memfd);

	for (int i = 0; i < TRAP; i++) {
		pw_test_sleep_ms(2);
		round_trip(c, buf);
	}
	pw_chan_get_stats(c, &st0);
	uint64_t t0 = pw_test_now_ns();
	for (int i = 0; i < ROUNDS; i++)
		round_trip(c, buf);
	uint64_t t1 = pw_test_now_ns();
	pw_chan_get_stats(c, &st1);
	uint64_t sleeps = st1.sleeps - st0.sleeps;
	printf("%d round trips after the trap: %" PRIu64 " sleeps here, %.2f us each\n", ROUNDS,
	       sleeps, (double)(t1 - t0) / ROUNDS / 1e3);
	PW_CHECK(sleeps * 50 < ROUNDS, "%" PRIu64 " sleeps in %d round trips", sleeps, ROUNDS);

	/* An answer 200 ms away: a bounded spin, then sleep. */
	uint64_t cpu0 = cpu_now_ns();
	buf[0] = 1;
	round_trip(c, buf);
	uint64_t cpu = cpu_now_ns() - cpu0;
	printf("a 200 ms wait after that: %.3f ms of CPU\n", (double)cpu / 1e6);
	PW_CHECK(cpu < 2000000, "%.3f ms of CPU", (double)cpu / 1e6);
	pw_chan_close(c);
	PW_CHECK_CHILD_OK(pid);
	return 0;
}
