// SPDX-License-Identifier: MIT
/* The latency histogram: bucket width under 1% everywhere, exact percentiles. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "hist.h"
#include "pw_test.h"

static void check_buckets(void)
{
	unsigned prev = 0;

	/* Every value lands in a bucket whose range holds it and is < 1% wide. */
	for (uint64_t v = 0; v < (1u << 20); v++) {
		unsigned i = pw_hist_index(v);
		uint64_t lo, hi;

		PW_CHECK(i < PW_HIST_BUCKETS, "v %llu idx %u", (unsigned long long)v, i);
		PW_CHECK(i >= prev, "index not monotonic at %llu", (unsigned long long)v);
		prev = i;
		pw_hist_range(i, &lo, &hi);
		PW_CHECK(lo <= v && v <= hi, "v %llu not in [%llu,%llu]", (unsigned long long)v,
			 (unsigned long long)lo, (unsigned long long)hi);
		PW_CHECK((double)(hi - lo) <= 0.01 * (double)lo, "bucket [%llu,%llu] too wide",
			 (unsigned long long)lo, (unsigned long long)hi);
	}
	for (unsigned s = 20; s < 64; s++) {
		uint64_t v = (1ull << s) + (1ull << (s - 3)) + 12345;
		uint64_t lo, hi;

		pw_hist_range(pw_hist_index(v), &lo, &hi);
		PW_CHECK(lo <= v && v <= hi, "v %llu", (unsigned long long)v);
		PW_CHECK((double)(hi - lo) <= 0.01 * (double)lo, "wide at 2^%u", s);
	}
	PW_CHECK_EQ(pw_hist_index(UINT64_MAX), PW_HIST_BUCKETS - 1);
}

static void check_percentiles(void)
{
	static struct pw_hist h;
	uint64_t *v = malloc(100000 * sizeof(*v));
	uint64_t x = 88172645463325252ull;

	PW_CHECK(v != NULL, "malloc");
	pw_hist_init(&h);
	PW_CHECK_EQ(pw_hist_percentile(&h, 50), 0);
	/* Log-uniform samples over 100 ns .. 10 ms. */
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		v[i] = (uint64_t)(100.0 * pow(10.0, 5.0 * (double)(x % 1000000) / 1e6));
		pw_hist_add(&h, v[i]);
	}
	/* Sort to get the true nearest-rank percentiles. */
	for (int gap = 100000 / 2; gap > 0; gap /= 2)
		for (int i = gap; i < 100000; i++)
			for (int j = i; j >= gap && v[j - gap] > v[j]; j -= gap) {
				uint64_t t = v[j];
				v[j] = v[j - gap];
				v[j - gap] = t;
			}
	static const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99, 99.999, 100 };
	for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
		size_t rank = (size_t)ceil(ps[k] / 100.0 * 100000);
		uint64_t truth = v[rank - 1], got = pw_hist_percentile(&h, ps[k]);
		double err = fabs((double)got - (double)truth) / (double)truth;

		PW_CHECK(err <= 0.01, "p%g: got %llu, true %llu (err %.4f)", ps[k],
			 (unsigned long long)got, (unsigned long long)truth, err);
	}
	PW_CHECK_EQ(h.min, v[0]);
	PW_CHECK_EQ(h.max, v[99999]);
	PW_CHECK_EQ(pw_hist_percentile(&h, 100), v[99999]);

	double mean = 0, var = 0;
	for (int i = 0; i < 100000; i++)
		mean += (double)v[i];
	mean /= 100000;
	for (int i = 0; i < 100000; i++)
		var += ((double)v[i] - mean) * ((double)v[i] - mean);
	var /= 99999;
	PW_CHECK(fabs(pw_hist_mean(&h) - mean) < 1e-6 * mean, "mean %f vs %f", pw_hist_mean(&h),
		 mean);
	PW_CHECK(fabs(pw_hist_stddev(&h) - sqrt(var)) < 1e-3 * sqrt(var), "stddev %f vs %f",
		 pw_hist_stddev(&h), sqrt(var));

	static struct pw_hist a, b;
	pw_hist_init(&a);
	pw_hist_init(&b);
	pw_hist_add(&a, 5);
	pw_hist_add(&b, 500);
	pw_hist_merge(&a, &b);
	PW_CHECK_EQ(a.count, 2);
	PW_CHECK_EQ(a.min, 5);
	PW_CHECK_EQ(a.max, 500);
	PW_CHECK_EQ(pw_hist_percentile(&a, 50), 5);
	free(v);
}

int main(void)
{
	check_buckets();
	check_percentiles();
	return 0;
}
