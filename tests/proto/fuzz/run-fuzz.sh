#!/bin/sh
# Build the libFuzzer harness for the protocol decoder with clang and run it
# for a bounded time from a fresh seed corpus. Exit 0: no crash; 1: a crash,
# leak, timeout or build failure; 77: clang or libFuzzer is not installed.
# Usage: run-fuzz.sh INCLUDE_DIR PROTO_DIR FUZZ_SRC_DIR BUILD_DIR GEN_SEEDS
# PROTO_DIR holds proto.c and proto.h. The time is PW_FUZZ_SECONDS (30).
set -u

if [ $# -ne 5 ]; then
	echo "usage: $0 INCLUDE_DIR PROTO_DIR FUZZ_SRC_DIR BUILD_DIR GEN_SEEDS" >&2
	exit 1
fi
inc=$1 proto=$2 src=$3 out=$4/fuzz gen_seeds=$5
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
bin=$out/fuzz-proto
if ! "$CLANG" -std=gnu11 -D_GNU_SOURCE -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Werror -Wno-unused-parameter \
	-I"$inc" -I"$proto" "$proto/proto.c" "$src/fuzz-proto.c" -o "$tmp/fuzz-proto"; then
	echo "FAIL: building the fuzz harness"
	exit 1
fi
mv -f "$tmp/fuzz-proto" "$bin" || exit 1

mkdir "$tmp/corpus" || exit 1
"$gen_seeds" "$tmp/corpus" || { echo "FAIL: gen-seeds"; exit 1; }

# libFuzzer's own error exit code is 77, which would read as a skip. A smaller
# ASan quarantine keeps RSS far from the limit on long runs of 64 KiB inputs.
echo "fuzzing for ${secs}s: $bin"
ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:halt_on_error=1:quarantine_size_mb=64 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	"$bin" -max_total_time="$secs" -timeout=5 -rss_limit_mb=1024 \
	-max_len=$((65536 + 64)) -error_exitcode=1 -timeout_exitcode=1 \
	-artifact_prefix="$out/artifacts/" -print_final_stats=1 \
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
