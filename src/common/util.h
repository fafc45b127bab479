/* SPDX-License-Identifier: MIT */
/* Small helpers shared by podwire's modules. Private: not installed. */
#ifndef PW_COMMON_UTIL_H
#define PW_COMMON_UTIL_H

#include <errno.h>
#include <stddef.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* The struct of type @type whose @member @ptr points at. */
#define pw_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline uint64_t pw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Tell the core we are spinning: saves power and yields to a hyperthread. */
static inline void pw_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__("yield" ::: "memory"); /* no outputs: never optimised away */
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

/*
 * Bounded spinning that yields the CPU every PW_SPIN_YIELD_NS, so that a peer
 * the scheduler put on our CPU gets to run and answer: two spinners sharing a
 * core would otherwise each burn their whole budget per message.
 */
#define PW_SPIN_YIELD_NS 2000u

struct pw_spin {
	uint64_t until, next_yield;
	unsigned n;
};

static inline void pw_spin_start(struct pw_spin *s, uint64_t budget_ns)
{
	uint64_t now = pw_now_ns();

	s->until = now + budget_ns;
	s->next_yield = now + PW_SPIN_YIELD_NS;
	s->n = 0;
}

/* Pause once; false when the budget is spent. */
static inline bool pw_spin_more(struct pw_spin *s)
{
	pw_cpu_relax();
	if (++s->n % 16)
		return true;
	uint64_t now = pw_now_ns();
	if (now >= s->until)
		return false;
	if (now >= s->next_yield) {
		sched_yield();
		s->next_yield = now + PW_SPIN_YIELD_NS;
	}
	return true;
}

/* read(2) until @n bytes or end of file, retrying EINTR: the count, or -errno. */
static inline ssize_t pw_read_full(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)buf + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* close(2) that keeps errno and tolerates -1; returns -1 for `fd = pw_close(fd)`. */
static inline int pw_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

/* Is @fd an eventfd? What a peer hands over to be woken through: a write to
 * anything else (a full pipe) could block the writer. */
static inline bool pw_fd_is_eventfd(int fd)
{
	char path[32], target[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

#endif /* PW_COMMON_UTIL_H */
