/* SPDX-License-Identifier: MIT */
/*
 * Tiny test harness: each test is a program that exits 0 (pass), 1 (fail) or
 * 77 (skip). A failed check prints function, line, the expression and state.
 */
#ifndef PW_TEST_H
#define PW_TEST_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW_TEST_SKIP 77

#ifndef PW_ARRAY_SIZE
#define PW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#endif

#define PW_FAIL(fmt, ...)                                                                          \
	do {                                                                                       \
		fprintf(stderr, "%s:%d: FAIL: " fmt "\n", __func__, __LINE__, ##__VA_ARGS__);      \
		exit(1);                                                                           \
	} while (0)

#define PW_CHECK(cond, fmt, ...)                                                                   \
	do {                                                                                       \
		if (!(cond))                                                                       \
			PW_FAIL("%s: " fmt, #cond, ##__VA_ARGS__);                                 \
	} while (0)

/* Compare two integers, printing both on failure. */
#define PW_CHECK_EQ(a, b)                                                                          \
	do {                                                                                       \
		long long pw_a_ = (long long)(a), pw_b_ = (long long)(b);                          \
		if (pw_a_ != pw_b_)                                                                \
			PW_FAIL("%s == %s: %lld != %lld (errno %d)", #a, #b, pw_a_, pw_b_, errno); \
	} while (0)

#define PW_SKIP(fmt, ...)                                                                          \
	do {                                                                                       \
		fprintf(stderr, "SKIP: " fmt "\n", ##__VA_ARGS__);                                 \
		exit(PW_TEST_SKIP);                                                                \
	} while (0)

/* Number of open fds of this process. */
static inline int pw_test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		PW_FAIL("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* Number of lines of /proc/self/maps that contain @needle. */
static inline int pw_test_count_maps(const char *needle)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	if (!f)
		PW_FAIL("fopen /proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

#endif /* PW_TEST_H */
