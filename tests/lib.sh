# SPDX-License-Identifier: MIT
# The shell side of the test harness (pw_test.h is the C side): where the build
# is, skipping and failing, waiting for a listener, and claims on names,
# subnets and ports so that runs at the same time cannot collide. Sourced by
# tests/e2e/lib.sh (and through it tests/cni/lib.sh and tools/bench-pods.sh)
# and tests/lab/lib.sh.
#
# Exit codes follow the test convention: 0 pass, 1 fail, 77 skip.

PW_BUILD=${PW_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../build" 2>/dev/null && pwd)}
PW_CLI=$PW_BUILD/src/cli/podwire

pw_skip() { echo "SKIP: $*" >&2; exit 77; }
pw_fail() { echo "FAIL: ${FUNCNAME[1]:-main}:${BASH_LINENO[0]}: $*" >&2; exit 1; }
pw_log() { echo "# $*" >&2; }

pw_need() { # commands...
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || pw_skip "$c is not installed (apt-get install $(pw_pkg_of "$c"))"
	done
}
pw_pkg_of() {
	case $1 in
	redis-server|redis-benchmark) echo redis-server redis-tools ;;
	nginx) echo nginx-light ;;
	flock) echo util-linux ;;
	*) echo "$1" ;;
	esac
}

# Claims. pw_claim KIND FIRST LAST [FREE]: take a number N in FIRST..LAST
# that no other run holds and, if FREE is given, for which 'FREE N' succeeds
# (nothing a killed run left behind is in the way); it is in $PW_CLAIM. The
# claim is an flock(1) on $PW_LOCK_DIR/KIND-N.lock through an fd of this
# shell, so the kernel releases it when the shell exits, however it ends;
# processes the test starts inherit the fd, so one that outlives the test
# keeps N taken. Candidates start at an offset from the pid, so that runs
# rarely try the same one.
PW_LOCK_DIR=${PW_LOCK_DIR:-/run/lock/podwire-tests}

pw_claim() { # kind first last [free-command]
	local kind=$1 first=$2 last=$3 free=${4:-} span i n fd
	span=$((last - first + 1))
	mkdir -p "$PW_LOCK_DIR" || pw_fail "cannot create $PW_LOCK_DIR"
	for ((i = 0; i < span; i++)); do
		n=$((first + ($$ + i) % span))
		exec {fd}>>"$PW_LOCK_DIR/$kind-$n.lock" || pw_fail "cannot open a lock in $PW_LOCK_DIR"
		if flock -n "$fd" && { [ -z "$free" ] || "$free" "$n"; }; then
			PW_CLAIM=$n
			return 0
		fi
		exec {fd}>&-
	done
	pw_fail "no free $kind in $first..$last (claims in $PW_LOCK_DIR)"
}

# Is nothing listening on TCP port N of this network namespace?
pw_port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

# Wait until something listens on PORT, asking ss(8) through CMD (e.g. 'ip
# netns exec NS'), TRIES times 50 ms apart, without connecting to it (some
# servers count connections). Fails the test with WHERE in the message.
pw_listen_wait() { # port tries where cmd...
	local port=$1 tries=$2 where=$3
	shift 3
	for _ in $(seq "$tries"); do
		"$@" ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	pw_fail "nothing listens on port $port in $where"
}

# On failure, the last LINES lines of each log FILE, headed by its path below DIR.
pw_logs_tail() { # rc dir lines files...
	local rc=$1 dir=$2 lines=$3 f
	shift 3
	[ "$rc" != 0 ] && [ "$rc" != 77 ] || return 0
	for f in "$@"; do
		[ -f "$f" ] || continue
		echo "--- ${f#"$dir"/}" >&2
		tail -n "$lines" "$f" >&2
	done
}
