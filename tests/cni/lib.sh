# SPDX-License-Identifier: MIT
# Shared setup for the podwire-cni tests: a private directory, namespaces and
# links named after the test's pid, a /24 in 198.19.100-249.0/24, and cleanup
# of all of it on any exit. Source it, then call pw_cni_init.
# The generic helpers (pw_skip, pw_fail, pw_log, pw_need, pw_router,
# pw_metric) come from ../e2e/lib.sh.

. "$(dirname "$0")/../e2e/lib.sh"

PW_CNI=$PW_BUILD/src/cni/podwire-cni
PW_JSON="python3 $(dirname "$0")/cni-json.py"
PW_CNI_PLUGINS=${PW_CNI_PLUGINS:-/usr/lib/cni}

pw_cni_init() {
	[ "$(id -u)" = 0 ] || pw_skip "needs root (network namespaces, links)"
	pw_need ip python3
	[ -x "$PW_CNI" ] || pw_fail "build first: $PW_CNI missing"
	PW_TAG=pwc$(($$ % 100000))
	PW_NET=198.19.$((($$ % 150) + 100))
	PW_DIR=$(mktemp -d /tmp/podwire-cni.XXXXXX)
	PW_SOCK=$PW_DIR/podwired.sock
	PW_PIDS=""
	PW_PODS=""
	PW_LINKS=""
	trap pw_cni_cleanup EXIT
	trap 'exit 1' INT TERM
}

# A network namespace $PW_TAG-NAME; its path goes to CNI_NETNS.
pw_cni_ns() { # name
	ip netns add "$PW_TAG-$1" || pw_fail "netns $PW_TAG-$1"
	PW_PODS="$PW_PODS $PW_TAG-$1"
}
pw_cni_nspath() { echo "/run/netns/$PW_TAG-$1"; }

# Links on the host to delete at the end (bridges the plugins create).
pw_cni_link() { PW_LINKS="$PW_LINKS $*"; }

# pw_cni_run PLUGIN COMMAND ID IFNAME NS CONFIG: run a plugin as a runtime
# would, with nothing else in its environment; NS "" leaves CNI_NETNS unset.
# Stdout to $PW_DIR/out, stderr to $PW_DIR/err; returns the plugin's status.
pw_cni_run() {
	local plugin=$1 cmd=$2 id=$3 ifname=$4 ns=$5 conf=$6
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND="$cmd" CNI_CONTAINERID="$id" \
		CNI_IFNAME="$ifname" ${ns:+CNI_NETNS=$(pw_cni_nspath "$ns")} \
		CNI_PATH="$PW_CNI_PLUGINS" "$plugin" <<<"$conf" >"$PW_DIR/out" 2>"$PW_DIR/err"
}
pw_cni() { pw_cni_run "$PW_CNI" "$@"; }

# The last call succeeded / failed with CNI error CODE (and a JSON error).
pw_cni_ok() { # what
	local rc=$?
	[ "$rc" = 0 ] || pw_fail "${FUNCNAME[1]}:${BASH_LINENO[0]}: $1: exit $rc: $(cat "$PW_DIR/out" "$PW_DIR/err")"
}
pw_cni_err() { # code what
	local rc=$?
	[ "$rc" != 0 ] || pw_fail "${FUNCNAME[1]}:${BASH_LINENO[0]}: $2: succeeded: $(cat "$PW_DIR/out")"
	$PW_JSON error "$PW_DIR/out" "$1" ||
		pw_fail "${FUNCNAME[1]}:${BASH_LINENO[0]}: $2: want CNI error $1"
}

# The router's pod list as JSON, in FILE.
pw_cni_pods() { # file
	"$PW_CLI" status --pods --json --socket "$PW_SOCK" >"$1" ||
		pw_fail "${FUNCNAME[1]}:${BASH_LINENO[0]}: podwire status --pods failed"
}

# Stop the router started by pw_router_metrics (pw_router_restart starts it again).
pw_cni_router_stop() {
	kill "$PW_ROUTER_PID" 2>/dev/null
	wait "$PW_ROUTER_PID" 2>/dev/null
}

# e2e's cleanup (processes, namespaces, the directory), and our links.
pw_cni_cleanup() {
	local rc=$?
	for l in $PW_LINKS; do ip link del "$l" 2>/dev/null; done
	(exit "$rc")
	pw_cleanup
}
