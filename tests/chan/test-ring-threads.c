// SPDX-License-Identifier: MIT
/*
 * pw_ring between two threads: a producer and a consumer move a
 * position-addressed pseudo-random stream through a 4 KiB ring in random
 * chunks (write/writev, read/readv/peek), the consumer checks every byte and a
 * running checksum, and both yield when the ring is full or empty. The
 * indices start just below 2^32 so they wrap during the run. Each of
 * ROUNDS rounds starts with the smallest window, so the producer widens it
 * while the consumer reads.
 */
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <podwire/chan.h>

#include "ring.h"

#include "pw_test_chan.h"

#define RING_SIZE   4096u
#define STREAM_SEED 0x1234u
#define START_INDEX (UINT32_MAX - 100000u)
#define ROUNDS	    16u
#define WINDOW_MIN  64u

static struct pw_shm_ring *shm;
static uint8_t *data;
static uint64_t total;
static uint64_t producer_csum;
static atomic_bool producer_failed;
static unsigned cur_round;

static void *producer(void *arg)
{
	struct pw_ring p;
	struct pw_rng rng;
	uint8_t buf[2 * RING_SIZE];
	uint64_t pos = 0, csum = 0, spins = 0;

	(void)arg;
	pw_rng_seed(&rng, 1 + 100u * cur_round);
	if (pw_ring_init(&p, shm, data, RING_SIZE, PW_RING_PRODUCER) != 0) {
		atomic_store(&producer_failed, true);
		return NULL;
	}
	while (pos < total) {
		size_t len = pw_rng_size(&rng, sizeof(buf));
		ssize_t n;

		if (len > total - pos)
			len = (size_t)(total - pos);
		pw_stream_fill(STREAM_SEED, pos, buf, len);
		if (pw_rng_range(&rng, 0, 3) == 0 && len >= 3) {
			struct iovec iov[3] = {
				{ .iov_base = buf, .iov_len = len / 3 },
				{ .iov_base = buf + len / 3, .iov_len = 0 },
				{ .iov_base = buf + len / 3, .iov_len = len - len / 3 },
			};
			n = pw_ring_writev(&p, iov, 3);
		} else {
			n = pw_ring_write(&p, buf, len);
		}
		if (n < 0 || (size_t)n > len) {
			fprintf(stderr, "%s: write returned %zd for %zu\n", __func__, n, len);
			atomic_store(&producer_failed, true);
			return NULL;
		}
		if (n == 0) {
			spins++;
			sched_yield();
			continue;
		}
		csum = pw_csum_update(csum, pos, buf, (size_t)n);
		pos += (uint64_t)n;
	}
	producer_csum = csum;
	return NULL;
}

static uint64_t empties, peeks, widened;

static void run_round(unsigned round)
{
	uint8_t buf[2 * RING_SIZE], peeked[RING_SIZE];
	struct pw_ring c;
	struct pw_rng rng;
	pthread_t th;
	uint64_t pos = 0, csum = 0;

	cur_round = round; /* read by the producer after pthread_create */
	pw_ring_format(shm, WINDOW_MIN);
	atomic_store(&shm->tail, START_INDEX);
	atomic_store(&shm->head, START_INDEX);
	producer_csum = 0;
	/* The consumer attaches before the producer runs: its view starts empty. */
	PW_CHECK_EQ(pw_ring_init(&c, shm, data, RING_SIZE, PW_RING_CONSUMER), 0);
	PW_CHECK_EQ(pthread_create(&th, NULL, producer, NULL), 0);

	pw_rng_seed(&rng, 2 + round);
	while (pos < total) {
		size_t len = pw_rng_size(&rng, sizeof(buf));
		unsigned how = (unsigned)pw_rng_range(&rng, 0, 7);
		ssize_t n;

		if (how == 0) {
			/* Peek, then read: the same bytes come out. */
			n = pw_ring_peek(&c, peeked, len < sizeof(peeked) ? len : sizeof(peeked));
			PW_CHECK(n >= 0, "peek: %zd", n);
			if (n > 0) {
				PW_CHECK_EQ(pw_ring_read(&c, buf, (size_t)n), n);
				PW_CHECK(memcmp(buf, peeked, (size_t)n) == 0,
					 "read after peek differs at stream pos %llu",
					 (unsigned long long)pos);
				peeks++;
			}
		} else if (how == 1 && len >= 2) {
			struct iovec iov[4] = {
				{ .iov_base = buf, .iov_len = 1 },
				{ .iov_base = buf + 1, .iov_len = 0 },
				{ .iov_base = buf + 1, .iov_len = (len - 1) / 2 },
				{ .iov_base = buf + 1 + (len - 1) / 2,
				  .iov_len = len - 1 - (len - 1) / 2 },
			};
			n = pw_ring_readv(&c, iov, 4);
		} else {
			n = pw_ring_read(&c, buf, len);
		}
		PW_CHECK(n >= 0 && (size_t)n <= len, "read returned %zd for %zu", n, len);
		PW_CHECK(!atomic_load(&producer_failed), "producer failed");
		if (n == 0) {
			empties++;
			sched_yield();
			continue;
		}
		long long bad = pw_stream_check(STREAM_SEED, pos, buf, (size_t)n);
		PW_CHECK(bad < 0, "byte at stream pos %llu differs: got %#x want %#x",
			 (unsigned long long)(pos + (uint64_t)bad), buf[bad],
			 pw_stream_byte(STREAM_SEED, pos + (uint64_t)bad));
		csum = pw_csum_update(csum, pos, buf, (size_t)n);
		pos += (uint64_t)n;
	}
	PW_CHECK_EQ(pthread_join(th, NULL), 0);
	PW_CHECK(!atomic_load(&producer_failed), "producer failed");
	PW_CHECK_EQ(pos, total);
	PW_CHECK(csum == producer_csum, "checksum %#llx != producer's %#llx",
		 (unsigned long long)csum, (unsigned long long)producer_csum);
	/* Nothing more, and the shared indices agree with the byte count. */
	PW_CHECK_EQ(pw_ring_read(&c, buf, sizeof(buf)), 0);
	PW_CHECK_EQ(pw_ring_avail(&c), 0);
	PW_CHECK_EQ(atomic_load(&shm->tail), (uint32_t)(START_INDEX + total));
	PW_CHECK_EQ(atomic_load(&shm->head), (uint32_t)(START_INDEX + total));
	/* The consumer ended on the producer's window, a legal one. */
	uint32_t win = atomic_load(&shm->window);
	PW_CHECK(win >= WINDOW_MIN && win <= RING_SIZE && !(win & (win - 1)), "window %u", win);
	PW_CHECK_EQ(c.win, win);
	widened += win > WINDOW_MIN;
}

int main(void)
{
	pw_test_watchdog(50);
	total = (PW_TEST_TSAN ? 12 : 64) * PW_MIB / ROUNDS;
	shm = aligned_alloc(64, sizeof(*shm));
	data = malloc(RING_SIZE);
	PW_CHECK(shm && data, "out of memory");
	for (unsigned i = 0; i < ROUNDS; i++)
		run_round(i);
	PW_CHECK(widened > 0, "the window never widened in %u rounds", ROUNDS);
	fprintf(stderr,
		"moved %llu MiB, %llu peeks, %llu empty reads, widened in %llu of %u rounds\n",
		(unsigned long long)(ROUNDS * total / PW_MIB), (unsigned long long)peeks,
		(unsigned long long)empties, (unsigned long long)widened, ROUNDS);
	free(shm);
	free(data);
	return 0;
}
