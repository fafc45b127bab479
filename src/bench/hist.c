// SPDX-License-Identifier: MIT
#include <math.h>
#include <string.h>

#include "hist.h"

void pw_hist_init(struct pw_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

unsigned pw_hist_index(uint64_t v)
{
	if (v < PW_HIST_SUB)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
	unsigned shift = e - PW_HIST_SUB_BITS;
	return PW_HIST_SUB * (shift + 1u) + (unsigned)((v >> shift) - PW_HIST_SUB);
}

void pw_hist_range(unsigned idx, uint64_t *ret_lo, uint64_t *ret_hi)
{
	if (idx < PW_HIST_SUB) {
		*ret_lo = *ret_hi = idx;
		return;
	}
	unsigned shift = idx / PW_HIST_SUB - 1u;
	uint64_t mant = PW_HIST_SUB + idx % PW_HIST_SUB;
	*ret_lo = mant << shift;
	*ret_hi = *ret_lo + ((1ull << shift) - 1u);
}

void pw_hist_add(struct pw_hist *h, uint64_t v)
{
	h->bucket[pw_hist_index(v)]++;
	h->count++;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->sum += (double)v;
	h->sumsq += (double)v * (double)v;
}

void pw_hist_merge(struct pw_hist *dst, const struct pw_hist *src)
{
	for (unsigned i = 0; i < PW_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	dst->sumsq += src->sumsq;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t pw_hist_percentile(const struct pw_hist *h, double p)
{
	if (h->count == 0)
		return 0;
	/* Rank of the sample at percentile p, 1-based (nearest-rank method). */
	double r = ceil(p / 100.0 * (double)h->count);
	uint64_t rank = r < 1.0 ? 1 : (uint64_t)r;
	if (rank >= h->count)
		return h->max; /* the extremes are known exactly */
	if (rank == 1)
		return h->min;

	uint64_t seen = 0;
	for (unsigned i = 0; i < PW_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen < rank)
			continue;
		uint64_t lo, hi;
		pw_hist_range(i, &lo, &hi);
		uint64_t mid = lo + (hi - lo) / 2;
		if (mid < h->min)
			mid = h->min;
		if (mid > h->max)
			mid = h->max;
		return mid;
	}
	return h->max;
}

double pw_hist_mean(const struct pw_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}

double pw_hist_stddev(const struct pw_hist *h)
{
	if (h->count < 2)
		return 0.0;
	double n = (double)h->count;
	double var = (h->sumsq - h->sum * h->sum / n) / (n - 1.0);
	return var > 0.0 ? sqrt(var) : 0.0;
}
