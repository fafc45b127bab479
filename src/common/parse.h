/* SPDX-License-Identifier: MIT */
/*
 * Strict parsing of the numbers that command lines, environment variables
 * and labels carry: decimal digits only (no sign, no spaces, no hex), then
 * an optional unit, then nothing. A malformed value is an error, never a
 * default or a wider one. Pure functions; *ret_* is untouched on failure.
 */
#ifndef PW_COMMON_PARSE_H
#define PW_COMMON_PARSE_H

#include <stdint.h>

/* A count up to @max. Errors: -EINVAL malformed; -ERANGE above @max. */
int pw_parse_u64(const char *s, uint64_t max, uint64_t *ret_value);

/*
 * A size in bytes up to @max: "4096", "64K", "256k", "1M", "1G" (binary
 * units), an optional "B" after them ("64KB", "1MiB" is not accepted).
 * Errors: -EINVAL malformed; -ERANGE above @max.
 */
int pw_parse_size(const char *s, uint64_t max, uint64_t *ret_bytes);

/*
 * A duration in seconds between @min and @max: "10", "0.5", "2.", ".25"
 * (decimal, no exponent, no sign), an optional "s" after it.
 * Errors: -EINVAL malformed; -ERANGE outside [@min, @max].
 */
int pw_parse_seconds(const char *s, double min, double max, double *ret_seconds);

/*
 * An Ethernet address: six pairs of hex digits (either case) joined by ':'.
 * Errors: -EINVAL malformed, or multicast (a port's own address cannot be).
 */
int pw_parse_mac(const char *s, uint8_t ret_mac[6]);

#endif /* PW_COMMON_PARSE_H */
