# SPDX-License-Identifier: MIT
# Shared helpers for the 'podwire lab' tests: a lab name this run has claimed,
# the CLI, and removal of the lab (and anything else the test made) on exit.
# Source it, then call lab_init SUFFIX. The harness (pw_skip, pw_fail,
# pw_log, pw_need, pw_claim, ...) is ../lib.sh. Exit codes: 0 pass, 1 fail,
# 77 skip.

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# Is lab tN$LAB_SUFFIX unused: no state directory, no namespace of its name?
lab_name_free() { # n
	local name=t$1$LAB_SUFFIX
	[ ! -e "/run/podwire/lab/$name" ] &&
		! ip netns list | grep -q "^pwlab-$name-"
}

# The lab under test is $LAB (exported as PODWIRE_LAB, so 'pwlab' needs no
# --name): tN + SUFFIX with N claimed (pw_claim), so that runs at the same
# time, and what a killed run left, cannot collide.
lab_init() { # suffix
	[ "$(id -u)" = 0 ] || pw_skip "needs root (network namespaces)"
	pw_need ip bridge ps flock
	[ -x "$PW_CLI" ] || pw_fail "build first: $PW_CLI missing"
	LAB_SUFFIX=$1
	pw_claim "lab-$1" 0 999 lab_name_free
	LAB=t$PW_CLAIM$1
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
	pw_logs_tail "$rc" "/run/podwire/lab/$LAB" 20 /run/podwire/lab/"$LAB"/n*/podwired.log
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
	[ -z "$left" ] || pw_fail "namespaces left: $left"
	[ ! -e "/run/podwire/lab/$name" ] || pw_fail "state left: $(ls -R "/run/podwire/lab/$name")"
	left=$(lab_procs "$name")
	[ -z "$left" ] || pw_fail "processes left: $(ps -o pid,args -p "$left")"
}

# A router metric of NODE, read inside the node's namespace.
lab_metric() { # node name
	pwlab exec "$1" -- curl -s --max-time 5 http://127.0.0.1:9470/metrics |
		awk -v n="$2" '$1 == n { print $2 }'
}

# Wait until something listens on PORT in POD (without connecting to it).
lab_wait_listen() { # pod port
	pw_listen_wait "$2" 100 "$1" pwlab exec --no-podwire "$1" --
}

# One value from 'lab status --json' (a Python expression on the object j).
lab_json() { # expr
	pwlab status --json | python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# `lab up --kube` tests: skip without what the control plane needs. Sets KDIR.
lab_kube_need() {
	pw_need openssl iptables
	command -v etcd >/dev/null || pw_skip "needs etcd (etcd-server; tools/kube-build.sh installs it)"
	KDIR=$("$(dirname "${BASH_SOURCE[0]}")/../../tools/kube-build.sh" --check 2>/dev/null) ||
		pw_skip "no cached Kubernetes control plane (run tools/kube-build.sh as root)"
}

# Bring the lab up with a control plane (lab_kube_need first); sets KC, the
# admin kubeconfig, for kctl.
lab_kube_up() { # nodes pods-per-node
	pwlab up --kube --nodes "$1" --pods-per-node "$2" >"$LAB_TMP/up.log" 2>&1 ||
		pw_fail "lab up --kube: $(cat "$LAB_TMP/up.log")"
	KC=$(lab_json 'j["kubeconfig"]')
	[ -f "$KC" ] || pw_fail "status --json kubeconfig: '$KC'"
}

# kubectl against the lab's API server, from the underlay namespace.
kctl() { pwlab exec u -- "$KDIR/kubectl" --kubeconfig "$KC" "$@"; }
