#!/bin/sh
# Build a libFuzzer harness with clang and run it for a bounded time from a
# fresh seed corpus. Exit 0: no crash; 1: a crash, leak, timeout or build
# failure; 77: clang or libFuzzer is not installed.
# Usage: run-fuzz.sh NAME BUILD_DIR GEN_SEEDS MAX_LEN -- CLANG_ARGS...
# NAME is the harness's name (the binary goes to BUILD_DIR/fuzz/NAME, crash
# inputs to BUILD_DIR/fuzz/artifacts); GEN_SEEDS a program that writes seed
# inputs into the directory it is given, or - for none; MAX_LEN the longest
# input; CLANG_ARGS the include directories and sources, the harness's
# among them. The time is PW_FUZZ_SECONDS (30).
set -u

if [ $# -lt 6 ] || [ "$5" != -- ]; then
	echo "usage: $0 NAME BUILD_DIR GEN_SEEDS MAX_LEN -- CLANG_ARGS..." >&2
	exit 1
fi
name=$1 out=$2/fuzz gen_seeds=$3 max_len=$4
shift 5
secs=${PW_FUZZ_SECONDS:-30}
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "SKIP: $CLANG not found (apt-get install clang libfuzzer-14-dev)"
	exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/pw-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# The runtime is a separate package: probe for it with a trivial target.
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return d && n > 1 ? 0 : 0; }' \
	>"$tmp/probe.c"
if ! "$CLANG" -fsanitize=fuzzer "$tmp/probe.c" -o "$tmp/probe" >"$tmp/probe.log" 2>&1; then
	echo "SKIP: $CLANG cannot link -fsanitize=fuzzer (install libfuzzer-14-dev):"
	sed 's/^/  /' "$tmp/probe.log" | head -n 5
	exit 77
fi

mkdir -p "$out/artifacts" || exit 1
bin=$out/$name
if ! "$CLANG" -std=gnu11 -D_GNU_SOURCE -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Werror -Wno-unused-parameter \
	"$@" -o "$tmp/$name"; then
	echo "FAIL: building the fuzz harness $name"
	exit 1
fi
mv -f "$tmp/$name" "$bin" || exit 1

mkdir "$tmp/corpus" || exit 1
if [ "$gen_seeds" != - ]; then
	"$gen_seeds" "$tmp/corpus" || { echo "FAIL: $gen_seeds"; exit 1; }
fi

# libFuzzer's own error exit code is 77, which would read as a skip. A smaller
# ASan quarantine keeps RSS far from the limit on long runs of 64 KiB inputs.
echo "fuzzing for ${secs}s: $bin"
ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:halt_on_error=1:quarantine_size_mb=64 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	"$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 \
	-max_len="$max_len" -error_exitcode=1 -timeout_exitcode=1 \
	-artifact_prefix="$out/artifacts/$name-" -print_final_stats=1 \
	"$tmp/corpus" >"$tmp/fuzz.log" 2>&1
rc=$?

if [ $rc -eq 0 ]; then
	# Progress lines are noise once it passed: the stats are enough.
	grep -v '^#[0-9]' "$tmp/fuzz.log" | tail -n 30
	echo "PASS: no crash in ${secs}s"
	exit 0
fi
grep -v '^#[0-9]' "$tmp/fuzz.log"
crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$tmp/fuzz.log" | tail -n 1)
echo "FAIL: fuzzer exited $rc"
if [ -n "$crash" ]; then
	echo "crash input: $crash"
	echo "reproduce:   $bin $crash"
fi
exit 1
