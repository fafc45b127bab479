/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the ring and channel tests: a seeded PRNG, a
 * position-addressed pseudo-random byte stream, a chunking-invariant checksum,
 * a clock, and child-process bookkeeping that kills and reaps every child on
 * any exit of the parent (PW_FAIL calls exit(), which runs the atexit hook)
 * and on a watchdog alarm.
 */
#ifndef PW_TEST_CHAN_H
#define PW_TEST_CHAN_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pw_test.h"

/* Sanitized builds run much slower: tests scale their byte volumes down. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PW_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PW_TEST_SANITIZED 1
#endif
#endif
#ifndef PW_TEST_SANITIZED
#define PW_TEST_SANITIZED 0
#endif

#if defined(__SANITIZE_THREAD__)
#define PW_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PW_TEST_TSAN 1
#endif
#endif
#ifndef PW_TEST_TSAN
#define PW_TEST_TSAN 0
#endif

#define PW_TEST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define PW_KIB (1024ull)
#define PW_MIB (1024ull * 1024ull)

static inline uint64_t pw_test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void pw_test_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Mappings of channel segments (memfd "podwire-chan") and of the segments and
 * files the tests make ("podwire-test"). Matched with their /memfd: or /tmp/
 * prefix so that a checkout path containing "podwire" does not count.
 */
static inline int pw_test_count_our_maps(void)
{
	return pw_test_count_maps("/memfd:podwire-") + pw_test_count_maps("/tmp/podwire-test-");
}

/* splitmix64 finalizer: a good 64-bit mix of a counter. */
static inline uint64_t pw_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* xorshift64* generator for sizes and choices. */
struct pw_rng {
	uint64_t s;
};

static inline void pw_rng_seed(struct pw_rng *r, uint64_t seed)
{
	r->s = pw_mix64(seed) | 1;
}

static inline uint64_t pw_rng_next(struct pw_rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi] (hi - lo well below 2^32). */
static inline uint64_t pw_rng_range(struct pw_rng *r, uint64_t lo, uint64_t hi)
{
	return lo + (pw_rng_next(r) >> 32) % (hi - lo + 1);
}

/* Log-uniform in [1, max]: as many tiny sizes as big ones. */
static inline size_t pw_rng_size(struct pw_rng *r, size_t max)
{
	unsigned bits = 0;

	while ((2ull << bits) <= max)
		bits++;
	uint64_t hi = (2ull << pw_rng_range(r, 0, bits)) - 1;
	if (hi > max)
		hi = max;
	return (size_t)pw_rng_range(r, 1, hi);
}

static inline uint64_t pw_le64(uint64_t x)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap64(x);
#else
	return x;
#endif
}

/*
 * The test stream: byte p of stream @seed is byte (p % 8) (little-endian) of
 * pw_mix64(seed * K + p / 8). Any range can be generated at any time, so the
 * receiver checks every byte without keeping state beyond its position.
 */
static inline uint64_t pw_stream_word(uint64_t seed, uint64_t w)
{
	return pw_mix64(seed * 0xd6e8feb86659fd93ull + w);
}

static inline uint8_t pw_stream_byte(uint64_t seed, uint64_t pos)
{
	return (uint8_t)(pw_stream_word(seed, pos >> 3) >> (8 * (pos & 7)));
}

static inline void pw_stream_fill(uint64_t seed, uint64_t pos, void *dst, size_t len)
{
	uint8_t *p = dst;

	while (len && (pos & 7)) {
		*p++ = pw_stream_byte(seed, pos++);
		len--;
	}
	while (len >= 8) {
		uint64_t w = pw_le64(pw_stream_word(seed, pos >> 3));

		memcpy(p, &w, 8);
		p += 8;
		pos += 8;
		len -= 8;
	}
	while (len) {
		*p++ = pw_stream_byte(seed, pos++);
		len--;
	}
}

/* Index of the first byte of @buf that differs from the stream, or -1. */
static inline long long pw_stream_check(uint64_t seed, uint64_t pos, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint8_t tmp[4096];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done < sizeof(tmp) ? len - done : sizeof(tmp);

		pw_stream_fill(seed, pos + done, tmp, n);
		if (memcmp(tmp, p + done, n) != 0) {
			for (size_t i = 0; i < n; i++)
				if (tmp[i] != p[done + i])
					return (long long)(done + i);
		}
		done += n;
	}
	return -1;
}

/*
 * Checksum of a stream that does not depend on how it was cut into chunks:
 * the sum over aligned little-endian words w_k of w_k * (2k + 1) mod 2^64,
 * where each byte contributes its share of its word. Order-sensitive.
 */
static inline uint64_t pw_csum_update(uint64_t c, uint64_t pos, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len && (pos & 7)) {
		c += ((uint64_t)*p++ << (8 * (pos & 7))) * (2 * (pos >> 3) + 1);
		pos++;
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c += pw_le64(w) * (2 * (pos >> 3) + 1);
		p += 8;
		pos += 8;
		len -= 8;
	}
	while (len) {
		c += ((uint64_t)*p++ << (8 * (pos & 7))) * (2 * (pos >> 3) + 1);
		pos++;
		len--;
	}
	return c;
}

/*
 * Child processes. pw_test_fork() registers each child; pw_test_reap() waits
 * for one and unregisters it. Whatever is still registered when the parent
 * exits (PW_FAIL included) or its watchdog fires is killed and reaped.
 */
#define PW_TEST_MAX_CHILDREN 16

static pid_t pw_test_children[PW_TEST_MAX_CHILDREN];
static bool pw_test_hooks_set;

static inline void pw_test_kill_children(void)
{
	for (int i = 0; i < PW_TEST_MAX_CHILDREN; i++) {
		pid_t pid = pw_test_children[i];

		if (pid > 0) {
			pw_test_children[i] = 0;
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
	}
}

static inline void pw_test_on_alarm(int sig)
{
	static const char msg[] = "FAIL: watchdog: test took too long\n";
	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)n;
	(void)sig;
	pw_test_kill_children();
	_exit(1);
}

/* Fail the whole test (and kill its children) if it runs @seconds. */
static inline void pw_test_watchdog(unsigned seconds)
{
	struct sigaction sa = { .sa_handler = pw_test_on_alarm };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
}

/*
 * fork(); in the child: forget the parent's children, die with the parent, and
 * die by SIGALRM after @watchdog_s seconds. Returns the pid in the parent and 0
 * in the child.
 */
static inline pid_t pw_test_fork(unsigned watchdog_s)
{
	pid_t pid;
	int slot = -1;

	if (!pw_test_hooks_set) {
		atexit(pw_test_kill_children);
		pw_test_hooks_set = true;
	}
	for (int i = 0; i < PW_TEST_MAX_CHILDREN && slot < 0; i++)
		if (pw_test_children[i] <= 0)
			slot = i;
	if (slot < 0)
		PW_FAIL("too many children");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		PW_FAIL("fork: %s", strerror(errno));
	if (pid == 0) {
		memset(pw_test_children, 0, sizeof(pw_test_children));
		signal(SIGALRM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(1);
		alarm(watchdog_s);
		return 0;
	}
	pw_test_children[slot] = pid;
	return pid;
}

static inline void pw_test_forget(pid_t pid)
{
	for (int i = 0; i < PW_TEST_MAX_CHILDREN; i++)
		if (pw_test_children[i] == pid)
			pw_test_children[i] = 0;
}

/* Wait for @pid and return its wait status. */
static inline int pw_test_reap(pid_t pid)
{
	int status = 0;
	pid_t r;

	do
		r = waitpid(pid, &status, 0);
	while (r < 0 && errno == EINTR);
	if (r != pid)
		PW_FAIL("waitpid %d: %s", (int)pid, strerror(errno));
	pw_test_forget(pid);
	return status;
}

/* Reap @pid and fail unless it exited with status 0. */
#define PW_CHECK_CHILD_OK(pid)                                                                     \
	do {                                                                                       \
		int pw_st_ = pw_test_reap(pid);                                                    \
		if (!WIFEXITED(pw_st_) || WEXITSTATUS(pw_st_) != 0)                                \
			PW_FAIL("child %d: %s %d", (int)(pid),                                     \
				WIFEXITED(pw_st_) ? "exit status" : "killed by signal",            \
				WIFEXITED(pw_st_) ? WEXITSTATUS(pw_st_) : WTERMSIG(pw_st_));       \
	} while (0)

#endif /* PW_TEST_CHAN_H */
