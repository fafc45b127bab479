# SPDX-License-Identifier: MIT
# Shared setup for end-to-end tests: two or more "pods" (network namespaces)
# on one bridge, addresses in 198.18.0.0/15, one podwired, and cleanup of all
# of it on any exit. Source it, then call pw_e2e_init NAME. The harness
# (pw_skip, pw_fail, pw_need, pw_claim, ...) is ../lib.sh.
#
# Exit codes follow the test convention: 0 pass, 1 fail, 77 skip.

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
PW_LIB=$PW_BUILD/src/preload/libpodwire.so
# What pods get as LD_PRELOAD (test-musl.sh sets the $LIB form).
PW_PRELOAD=${PW_PRELOAD:-$PW_LIB}
PW_ROUTER=$PW_BUILD/src/router/podwired

# Is 198.18.N.0/24 unused here: no bridge, namespace or address of tag pwN?
pw_e2e_net_free() { # n
	! ip link show dev "pw$1-br" >/dev/null 2>&1 &&
		[ -z "$(ip -4 -o addr show to "198.18.$1.0/24")" ] &&
		! ip netns list | grep -q "^pw$1-"
}

# A short tag and a /24 this run has claimed (pw_claim): namespaces, links
# and addresses come from them, so runs at the same time cannot collide.
pw_e2e_init() { # name
	[ "$(id -u)" = 0 ] || pw_skip "needs root (network namespaces)"
	pw_need ip flock
	[ -x "$PW_LIB" ] || pw_fail "build first: $PW_LIB missing"
	pw_claim e2e-net 20 219 pw_e2e_net_free
	PW_TAG=pw$PW_CLAIM
	PW_NET=198.18.$PW_CLAIM
	PW_DIR=$(mktemp -d /tmp/podwire-e2e.XXXXXX)
	chmod 755 "$PW_DIR" # pods run as other users too (nginx workers)
	PW_SOCK=$PW_DIR/podwired.sock
	PW_PIDS=""
	PW_PODS=""
	trap pw_cleanup EXIT
	trap 'exit 1' INT TERM
	ip link add "$PW_TAG-br" type bridge || pw_fail "bridge"
	ip addr add "$PW_NET.1/24" dev "$PW_TAG-br"
	ip link set "$PW_TAG-br" up
}

# pw_pod NAME N: a namespace $PW_TAG-NAME with address $PW_NET.N on the bridge.
pw_pod() {
	local ns=$PW_TAG-$1 ip=$PW_NET.$2
	ip netns add "$ns" || pw_fail "netns $ns"
	PW_PODS="$PW_PODS $ns"
	ip link add "$PW_TAG-$1-h" type veth peer name eth0 netns "$ns" || pw_fail "veth"
	ip link set "$PW_TAG-$1-h" master "$PW_TAG-br" up
	ip -n "$ns" addr add "$ip/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set lo up
	eval "PW_IP_$1=$ip"
}

pw_router() { # extra podwired args...
	"$PW_ROUTER" --foreground --socket "$PW_SOCK" --log-level "${PW_ROUTER_LOG:-info}" \
		"$@" >>"$PW_DIR/podwired.log" 2>&1 &
	PW_ROUTER_PID=$!
	PW_PIDS="$PW_PIDS $PW_ROUTER_PID"
	for _ in $(seq 100); do
		[ -S "$PW_SOCK" ] && return 0
		sleep 0.05
	done
	cat "$PW_DIR/podwired.log" >&2
	pw_fail "podwired did not start"
}

# Run a command in pod NAME with the preload (PW_NOPRELOAD=1: without).
pw_in() { # name cmd...
	local ns=$PW_TAG-$1
	shift
	if [ -n "${PW_NOPRELOAD:-}" ]; then
		ip netns exec "$ns" env PODWIRE_SOCKET="$PW_SOCK" "$@"
	else
		ip netns exec "$ns" env LD_PRELOAD="$PW_PRELOAD" PODWIRE_SOCKET="$PW_SOCK" "$@"
	fi
}

# Same, in the background; remembers the pid for cleanup.
pw_bg() { # name cmd...   (output goes to $PW_DIR/NAME.log)
	pw_in "$@" >>"$PW_DIR/$1.log" 2>&1 &
	PW_PIDS="$PW_PIDS $!"
	PW_LAST=$!
}

pw_wait_port() { # name ip port
	for _ in $(seq 100); do
		ip netns exec "$PW_TAG-$1" bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.05
	done
	pw_fail "nothing listens on $2:$3 in $1"
}

# pw_www: $PW_DIR/www, a document root whose index.html says "hello from
# podwire"; sets www.
pw_www() {
	www=$PW_DIR/www
	mkdir -p "$www"
	echo "hello from podwire" >"$www/index.html"
}

# pw_nginx_conf NAME WORKERS < DIRECTIVES: $PW_DIR/NAME.conf, an nginx in the
# foreground with its pid, NAME-error.log and temporary files under $PW_DIR,
# no access log, and DIRECTIVES (servers and all) inside http { }. Start it
# with: nginx -c $PW_DIR/NAME.conf -e $PW_DIR/NAME-error.log
pw_nginx_conf() {
	mkdir -p "$PW_DIR/tmp"
	{
		cat <<CONF
worker_processes $2;
daemon off;
pid $PW_DIR/$1.pid;
error_log $PW_DIR/$1-error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $PW_DIR/tmp; proxy_temp_path $PW_DIR/tmp;
	fastcgi_temp_path $PW_DIR/tmp; uwsgi_temp_path $PW_DIR/tmp; scgi_temp_path $PW_DIR/tmp;
CONF
		sed 's/^/\t/'
		echo "}"
	} >"$PW_DIR/$1.conf"
}

# Wait for a listener without connecting to it (some servers count connections).
pw_wait_listen() { # name port
	pw_listen_wait "$2" 200 "$1" ip netns exec "$PW_TAG-$1"
}

# The socket inode of the listener on PORT in NAME (empty if none).
pw_listener_ino() { # name port
	ip netns exec "$PW_TAG-$1" ss -Hltne "sport = :$2" 2>/dev/null |
		sed -n 's/.* ino:\([0-9]*\).*/\1/p' | head -n 1
}

# Wait until a server that closes its listener after each session (iperf3
# does) listens again with a new socket; a client started earlier would be
# refused, with or without podwire.
pw_wait_relisten() { # name port old-inode
	local ino
	for _ in $(seq 200); do
		ino=$(pw_listener_ino "$1" "$2")
		[ -n "$ino" ] && [ "$ino" != "$3" ] && return 0
		sleep 0.05
	done
	pw_fail "port $2 in $1 was not listened on again (inode ${ino:-none}, was $3)"
}

pw_cleanup() {
	local rc=$?
	for p in $PW_PIDS; do kill "$p" 2>/dev/null; done
	sleep 0.1
	for p in $PW_PIDS; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for ns in $PW_PODS; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	ip link del "$PW_TAG-br" 2>/dev/null
	pw_logs_tail "$rc" "$PW_DIR" 40 "$PW_DIR"/*.log
	rm -rf "$PW_DIR"
	exit "$rc"
}

# podwire-bench of this build in $BENCH, or skip.
pw_need_bench() {
	BENCH=$PW_BUILD/src/bench/podwire-bench
	[ -x "$BENCH" ] || pw_skip "no $BENCH"
}

# podwired with metrics on a loopback port this run has claimed (the same
# one again after a restart); pw_metric NAME reads one.
pw_router_metrics() { # extra args...
	if [ -z "${PW_MPORT:-}" ]; then
		pw_claim port 20000 39999 pw_port_free
		PW_MPORT=$PW_CLAIM
	fi
	pw_router --metrics "127.0.0.1:$PW_MPORT" "$@"
}
pw_metric() { # name [labels]
	curl -s --max-time 5 "http://127.0.0.1:$PW_MPORT/metrics" |
		awk -v n="$1${2:+$2}" '$1 == n { print $2 }'
}

# A listener (under the preload, so registered with the router) that never
# accepts: its queue fills up to the backlog and stays so.
pw_bg_never_accepting() { # pod ip port backlog
	pw_bg "$1" python3 -c "
import socket, signal
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$2', $3))
s.listen($4)
signal.pause()"
	pw_wait_listen "$1" "$3"
}

# Open @n connections from @pod to ip:port (each given @timeout seconds) and
# hold them for a minute; "connected N failed M" in $PW_DIR/POD.log says when.
pw_bg_hold_connections() { # pod ip port n timeout
	pw_bg "$1" python3 -c "
import socket, time
held, failed = [], 0
for i in range($4):
    c = socket.socket()
    c.settimeout($5)
    try:
        c.connect(('$2', $3))
        held.append(c)
    except OSError:
        failed += 1
print('connected', len(held), 'failed', failed, flush=True)
time.sleep(60)"
	for _ in $(seq 200); do
		grep -q connected "$PW_DIR/$1.log" 2>/dev/null && return
		sleep 0.1
	done
}

# Start podwired again after it died (a stale socket file would satisfy
# pw_router's wait before the new router listens).
pw_router_restart() { # extra args...
	rm -f "$PW_SOCK"
	pw_router_metrics "$@"
}

# Kill every process left in the pods (between the steps of a test).
pw_reap_pods() {
	for ns in $PW_PODS; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
	done
}
