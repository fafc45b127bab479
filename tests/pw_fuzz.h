/* SPDX-License-Identifier: MIT */
/*
 * What the libFuzzer harnesses share (tests/run-fuzz.sh builds them): a
 * check that traps, so the fuzzer keeps the input that broke it.
 */
#ifndef PW_FUZZ_H
#define PW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif /* PW_FUZZ_H */
