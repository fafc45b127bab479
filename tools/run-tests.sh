#!/bin/sh
# Run the test suites: the whole suite in build/, the ring, channel and unit
# tests again under ASan+UBSan (build-asan/) and the threaded ones under TSan
# (build-tsan/). Prints one summary line last: "N passed, N failed, N skipped".
# Usage: tools/run-tests.sh [all|plain|sanitize]
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
summary=build/test-summary.txt
mkdir -p build
rc=0

setup() { # dir, meson options...
	dir=$1; shift
	[ -f "$dir/build.ninja" ] || meson setup "$dir" "$@" >/dev/null || return 1
	ninja -C "$dir" >/dev/null || ninja -C "$dir"
}

runsuite() { # [prefix command...] --, dir, meson test args...
	pre=""
	while [ "$1" != -- ]; do pre="$pre $1"; shift; done
	shift
	dir=$1; shift
	rm -f "$dir/meson-logs/testlog.json"
	$pre meson test -C "$dir" --print-errorlogs --num-processes 1 "$@" || rc=1
}

logs=""
broken=0 # builds that failed: their suites count as failed
if [ "$what" = all ] || [ "$what" = plain ]; then
	setup build || { rc=1; broken=$((broken + 1)); }
	runsuite -- build
	logs="$logs build"
fi
if [ "$what" = all ] || [ "$what" = sanitize ]; then
	if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			runsuite -- build-asan --suite chan --suite unit
		logs="$logs build-asan"
	else
		rc=1
		broken=$((broken + 1))
	fi
	if setup build-tsan -Db_sanitize=thread -Db_lundef=false; then
		# TSan needs a fixed address layout on kernels with high mmap
		# entropy; the personality is inherited by the tests.
		TSAN_OPTIONS=halt_on_error=1 runsuite setarch -R -- build-tsan --suite tsan
		logs="$logs build-tsan"
	else
		rc=1
		broken=$((broken + 1))
	fi
fi

python3 - "$summary" "$broken" $logs <<'PY'
import json, sys, os
out, broken, dirs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
p = s = 0
f = broken
for d in dirs:
    path = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(path):
        f += 1
        continue
    for line in open(path):
        r = json.loads(line).get("result", "")
        if r in ("OK", "EXPECTEDFAIL"):
            p += 1
        elif r == "SKIP":
            s += 1
        else:
            f += 1
line = f"{p} passed, {f} failed, {s} skipped"
open(out, "w").write(line + "\n")
PY
[ -s "$summary" ] || echo "0 passed, 1 failed, 0 skipped" >"$summary"
grep -q ' 0 failed' "$summary" || rc=1
cat "$summary"
exit $rc
