# SPDX-License-Identifier: MIT
# Shared helpers for the 'podwire lab' tests: a lab name unique to this run,
# the CLI, and removal of the lab (and anything else the test made) on exit.
# Source it, then call lab_init SUFFIX. Exit codes: 0 pass, 1 fail, 77 skip.

PW_BUILD=${PW_BUILD:-$(cd "$(dirname "$0")/../../build" 2>/dev/null && pwd)}
PW_CLI=$PW_BUILD/src/cli/podwire

lab_skip() { echo "SKIP: $*" >&2; exit 77; }
lab_fail() { echo "FAIL: ${FUNCNAME[1]:-main}:${BASH_LINENO[0]}: $*" >&2; exit 1; }
lab_log() { echo "# $*" >&2; }

lab_need() { # commands...
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || lab_skip "$c is not installed"
	done
}

# The lab under test is $LAB (exported as PODWIRE_LAB, so 'pwlab' needs no --name).
lab_init() { # suffix
	[ "$(id -u)" = 0 ] || lab_skip "needs root (network namespaces)"
	lab_need ip bridge ps
	[ -x "$PW_CLI" ] || lab_fail "build first: $PW_CLI missing"
	LAB=t$$$1
	export PODWIRE_LAB=$LAB
	LAB_TMP=$(mktemp -d /tmp/podwire-lab.XXXXXX)
	LAB_EXTRA_NS=""
	trap lab_cleanup EXIT
	trap 'exit 1' INT TERM
}

pwlab() { "$PW_CLI" lab "$@"; }

lab_cleanup() {
	local rc=$?
	local bg
	bg=$(jobs -p)
	[ -z "$bg" ] || kill $bg 2>/dev/null
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for f in /run/podwire/lab/"$LAB"/n*/podwired.log; do
			[ -f "$f" ] || continue
			echo "--- $f" >&2
			tail -n 20 "$f" >&2
		done
	fi
	"$PW_CLI" lab down --name "$LAB" >/dev/null 2>&1
	for ns in $LAB_EXTRA_NS; do ip netns del "$ns" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$LAB_TMP"
	exit "$rc"
}

# Live (non-zombie) processes whose command line names the lab's state directory:
# the routers (their socket, log and secret paths are there).
lab_procs() { # [lab]
	ps -eo stat=,pid=,args= | awk -v d="/run/podwire/lab/${1:-$LAB}/" \
		'$1 !~ /^Z/ && index($0, d) && !/awk/ { print $2 }'
}

# Nothing of lab NAME is left: namespaces, state directory, processes.
lab_assert_gone() { # [lab]
	local name=${1:-$LAB} left
	left=$(ip netns list | awk -v p="pwlab-$name-" 'index($1, p) == 1 { print $1 }')
	[ -z "$left" ] || lab_fail "namespaces left: $left"
	[ ! -e "/run/podwire/lab/$name" ] || lab_fail "state left: $(ls -R "/run/podwire/lab/$name")"
	left=$(lab_procs "$name")
	[ -z "$left" ] || lab_fail "processes left: $(ps -o pid,args -p "$left")"
}

# A router metric of NODE, read inside the node's namespace.
lab_metric() { # node name
	pwlab exec "$1" -- curl -s --max-time 5 http://127.0.0.1:9470/metrics |
		awk -v n="$2" '$1 == n { print $2 }'
}

# Wait until something listens on PORT in POD (without connecting to it).
lab_wait_listen() { # pod port
	for _ in $(seq 100); do
		pwlab exec --no-podwire "$1" -- ss -Hltn "sport = :$2" 2>/dev/null | grep -q . &&
			return 0
		sleep 0.05
	done
	lab_fail "nothing listens on port $2 in $1"
}

# One value from 'lab status --json' (a Python expression on the object j).
lab_json() { # expr
	pwlab status --json | python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}
