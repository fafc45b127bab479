/* SPDX-License-Identifier: MIT */
/* Small helpers shared by podwire's modules. Private: not installed. */
#ifndef PW_COMMON_UTIL_H
#define PW_COMMON_UTIL_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define PW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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
	__asm__("yield" ::: "memory"); /* no outputs: implicitly volatile */
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
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

#endif /* PW_COMMON_UTIL_H */
