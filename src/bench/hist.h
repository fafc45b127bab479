/* SPDX-License-Identifier: MIT */
/*
 * Log-linear latency histogram: exact below 2^PW_HIST_SUB_BITS, then
 * 2^PW_HIST_SUB_BITS buckets per power of two, so a bucket is at most 1/128
 * of its value wide and a reported percentile (the bucket's midpoint) is
 * within 0.4% of the true sample.
 */
#ifndef PW_BENCH_HIST_H
#define PW_BENCH_HIST_H

#include <stdint.h>

#define PW_HIST_SUB_BITS 7u
#define PW_HIST_SUB	 (1u << PW_HIST_SUB_BITS)
#define PW_HIST_BUCKETS	 (PW_HIST_SUB * (64u - PW_HIST_SUB_BITS + 1u))

struct pw_hist {
	uint64_t count;
	uint64_t min, max;
	double sum, sumsq;
	uint64_t bucket[PW_HIST_BUCKETS];
};

void pw_hist_init(struct pw_hist *h);
void pw_hist_add(struct pw_hist *h, uint64_t v);
/* Add the samples of @src into @dst. */
void pw_hist_merge(struct pw_hist *dst, const struct pw_hist *src);
/* Value at percentile @p (0 < p <= 100); 0 when empty. */
uint64_t pw_hist_percentile(const struct pw_hist *h, double p);
double pw_hist_mean(const struct pw_hist *h);
double pw_hist_stddev(const struct pw_hist *h);

/* Exposed for tests: bucket of @v and the [lo, hi] range a bucket covers. */
unsigned pw_hist_index(uint64_t v);
void pw_hist_range(unsigned idx, uint64_t *ret_lo, uint64_t *ret_hi);

#endif /* PW_BENCH_HIST_H */
