#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Pods on two nodes of a lab, with federated routers (issue 4):
#   1. socket semantics across nodes: pw-sem's tests with client and server
#      on different nodes, both under the preload; every connection must be
#      brokered by the two routers (podwire_remote_connects_total) and carried
#      by a kernel TCP socket on the underlay (PW_SEM_EXPECT=kernel);
#   2. sockperf and iperf3 (-R too) across nodes and on one node, podwire on
#      and off; across nodes with podwire the VXLAN device carries nothing,
#      without podwire it carries the traffic;
#   3. a kernel server on the other node: the accelerated client falls back to
#      the overlay and works;
#   4. a router with the wrong secret is refused and counted;
#   5. kill -9 of a router mid-stream: the established connection finishes;
#      new connections use the overlay; `lab down` removes everything.
# Connection after connection to one server (the seq_* tests of 1, and
# podwire-bench connect in 2) takes pooled connections (FEDERATION.md,
# "Pools"): counted, and each checked by its own bytes.
set -u
. "$(dirname "$0")/lib.sh"
pw_need sockperf iperf3 curl python3 timeout
SEM=$PW_BUILD/tests/pw-sem
[ -x "$SEM" ] || pw_fail "build first: $SEM missing"
lab_init fed

pwlab up --nodes 2 --pods-per-node 2 >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "lab up: $(cat "$LAB_TMP/up.log")"
grep -q -- --peers <(ps -eo args= | grep "/run/podwire/lab/$LAB/n1/") ||
	pw_fail "the routers were started without federation"
A=198.19.1.11 B=198.19.2.11 B2=198.19.2.12 A2=198.19.1.12

# Both routers see each other (links come up within a few ticks).
for _ in $(seq 50); do
	[ "$(lab_metric n1 podwire_peer_links)" = 2 ] && break
	sleep 0.1
done
[ "$(lab_metric n1 podwire_peer_links)" = 2 ] ||
	pw_fail "peer links on n1: $(lab_metric n1 podwire_peer_links)"

remote_ok() { lab_metric n1 'podwire_remote_connects_total{result="ok"}'; }
vxlan_tx() { pwlab exec n1 -- cat /sys/class/net/flannel.1/statistics/tx_packets; }

# ---- 1. semantics across nodes ----
# The tests whose subject is the connection itself; those about the router's
# own life (killed, restarted) run on one node in e2e-semantics.
TESTS="connect_block connect_nonblock eisconn connect_nb_recheck accept4_flags addrs rw_calls
	peek dontwait waitall sigpipe_nosignal shutdown_wr close_pending close_unread_rst
	sendfile iov_edges dup fcntl_nonblock fionread sockopts sockopt_inherit poll select
	epoll_lt epoll_et epoll_oneshot epoll_rdhup epoll_before_connect epoll_before_connect_et
	epoll_mixed fork_rw threads_duplex eintr kill_client kill_server echo stream_long
	seq_close seq_client_first seq_epoll seq_listener_gone seq_short_gone seq_relisten_short
	seq_prefork
	seq_fork_client seq_handoff_short seq_socket_after_short seq_inherit_short"
port=21000
nfail=0
for t in $TESTS; do
	port=$((port + 1))
	before=$(remote_ok) pin0=$(lab_metric n2 'podwire_remote_pooled_total{dir="in"}')
	envs=(env PW_SEM_EXPECT=kernel PW_SEM_A=$A PW_SEM_B=$B PW_SEM_SYNC_DIR=$LAB_TMP)
	pwlab exec n2p1 -- "${envs[@]}" timeout 60 "$SEM" server "$t" "$B" "$port" \
		>"$LAB_TMP/$t.srv" 2>&1 &
	srv=$!
	lab_wait_listen n2p1 "$port"
	pwlab exec n1p1 -- "${envs[@]}" timeout 60 "$SEM" client "$t" "$B" "$port" \
		>"$LAB_TMP/$t.cli" 2>&1
	crc=$?
	wait "$srv"
	src=$?
	after=$(remote_ok) pin1=$(lab_metric n2 'podwire_remote_pooled_total{dir="in"}')
	if [ "$crc" = 77 ] || [ "$src" = 77 ]; then
		echo "skip $t"
	elif [ "$crc" != 0 ] || [ "$src" != 0 ]; then
		echo "FAIL $t (client $crc, server $src)"
		tail -n 5 "$LAB_TMP/$t.cli" "$LAB_TMP/$t.srv" | sed 's/^/    /'
		nfail=$((nfail + 1))
	elif [ "$after" -le "$before" ]; then
		echo "FAIL $t: no connection went over the underlay ($before -> $after)"
		nfail=$((nfail + 1))
	elif [ "${t%_short*}" != "$t" ] && [ "$pin1" -le "$pin0" ]; then
		echo "FAIL $t: no pooled connection ($pin0 -> $pin1)"
		nfail=$((nfail + 1))
	else
		echo "ok   $t ($((after - before)) direct, $((pin1 - pin0)) of them pooled)"
	fi
	rm -f "$LAB_TMP"/sync* 2>/dev/null
done
[ "$nfail" = 0 ] || pw_fail "$nfail semantics test(s) failed across nodes"

# ---- 2. sockperf and iperf3, podwire on and off ----
pwlab exec n2p1 -- sockperf server --tcp -i $B -p 5001 >"$LAB_TMP/sp1.log" 2>&1 &
pwlab exec --no-podwire n2p2 -- sockperf server --tcp -i $B2 -p 5002 >"$LAB_TMP/sp2.log" 2>&1 &
pwlab exec n1p2 -- sockperf server --tcp -i $A2 -p 5003 >"$LAB_TMP/sp3.log" 2>&1 &
lab_wait_listen n2p1 5001
lab_wait_listen n2p2 5002
lab_wait_listen n1p2 5003

sp() { # pod [--no-podwire] ip port -> p50 one-way latency
	local pod=$1 np=""
	shift
	if [ "$1" = --no-podwire ]; then np=--no-podwire; shift; fi
	pwlab exec $np "$pod" -- sockperf ping-pong --tcp -i "$1" -p "$2" -t 1 -m 64 \
		--mps 100000 2>&1 | awk '/percentile 50.000/ { print $NF }'
}
tx0=$(vxlan_tx) r0=$(remote_ok)
lat=$(sp n1p1 $B 5001)
tx1=$(vxlan_tx) r1=$(remote_ok)
[ -n "$lat" ] || pw_fail "sockperf across nodes with podwire gave no result"
[ "$r1" -gt "$r0" ] || pw_fail "sockperf across nodes did not go direct ($r0 -> $r1)"
# A few packets may be ARP or stray; a ping-pong second is ~50000 packets.
[ $((tx1 - tx0)) -lt 100 ] || pw_fail "VXLAN carried $((tx1 - tx0)) packets with podwire"
pw_log "across nodes, podwire: p50 $lat us, VXLAN packets $((tx1 - tx0))"
lat=$(sp n1p2 --no-podwire $B2 5002)
tx2=$(vxlan_tx)
[ -n "$lat" ] || pw_fail "sockperf across nodes over VXLAN gave no result"
[ $((tx2 - tx1)) -gt 1000 ] || pw_fail "the kernel run did not use VXLAN ($((tx2 - tx1)))"
pw_log "across nodes, VXLAN: p50 $lat us"
c0=$(lab_metric n1 podwire_claims_total)
lat=$(sp n1p1 $A2 5003)
c1=$(lab_metric n1 podwire_claims_total)
[ -n "$lat" ] && [ "$c1" -gt "$c0" ] || pw_fail "same node with podwire: p50 '$lat', claims $c0 -> $c1"
pw_log "same node, podwire: p50 $lat us"

# iperf3 across nodes, both directions, with podwire; checked by its own
# byte counts on both ends. One server per run (-1), so that each run has a
# fresh port; e2e-iperf3 covers one server serving several tests.
iperf_port=5200
iperf_srv() {
	iperf_port=$((iperf_port + 1))
	pwlab exec n2p1 -- iperf3 -s -1 -B $B -p $iperf_port >>"$LAB_TMP/iperf-s.log" 2>&1 &
	lab_wait_listen n2p1 $iperf_port
}
for dir in "" -R; do
	iperf_srv
	r0=$(remote_ok)
	pwlab exec n1p1 -- iperf3 -c $B -p $iperf_port -t 1 $dir --json >"$LAB_TMP/iperf.json" 2>&1 ||
		pw_fail "iperf3 $dir across nodes: $(tail -5 "$LAB_TMP/iperf.json")"
	r1=$(remote_ok)
	python3 - "$LAB_TMP/iperf.json" <<'PY' || pw_fail "iperf3 $dir: bad result"
import json, sys
j = json.load(open(sys.argv[1]))
assert "error" not in j, j.get("error")
e = j["end"]
s, r = e["sum_sent"]["bytes"], e["sum_received"]["bytes"]
assert s > 0 and r > 0 and abs(s - r) <= s * 0.01, (s, r)
print("# iperf3 %.2f Gbit/s" % (e["sum_received"]["bits_per_second"] / 1e9), file=sys.stderr)
PY
	# iperf3 opens a control and a data connection.
	[ $((r1 - r0)) -ge 2 ] || pw_fail "iperf3 $dir did not go direct ($r0 -> $r1)"
done

# Many short connections in a row, each direct (PODWIRE_ADAPT=0: the library
# would leave repeated short ones to the kernel): more than any listen backlog
# (a listener's queue must not fill with connections its server took).
pwlab exec n2p2 -- "$PW_BUILD/src/bench/podwire-bench" connect --serve $B2:5301 -d 30 -w 0 \
	>>"$LAB_TMP/cycle-s.log" 2>&1 &
lab_wait_listen n2p2 5301
r0=$(remote_ok)
out=$(pwlab exec n1p1 -- env PODWIRE_ADAPT=0 "$PW_BUILD/src/bench/podwire-bench" connect --to $B2:5301 -d 1 -w 0 -j) ||
	pw_fail "connect cycles across nodes failed: $out"
r1=$(remote_ok)
n=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgs"])')
pw_log "connect cycles across nodes: $n in 1 s, $((r1 - r0)) direct"
[ "$n" -ge 300 ] && [ $((r1 - r0)) -ge "$n" ] ||
	pw_fail "connect cycles across nodes: $n cycles, $((r1 - r0)) direct (want >= 300, all)"

# As shipped, the same: after the first short connection, connect() takes
# connections the routers dialled before (pools). podwire-bench checks each
# echo; its debug log and both routers count the pooled ones.
pwlab exec n2p2 -- "$PW_BUILD/src/bench/podwire-bench" connect --serve $B2:5302 -d 30 -w 0 \
	>>"$LAB_TMP/cycle-s.log" 2>&1 &
lab_wait_listen n2p2 5302
pin0=$(lab_metric n2 'podwire_remote_pooled_total{dir="in"}')
pout0=$(lab_metric n1 'podwire_remote_pooled_total{dir="out"}')
out=$(pwlab exec n1p1 -- env PODWIRE_LOG=debug PODWIRE_LOG_FILE="$LAB_TMP/pool.log" \
	"$PW_BUILD/src/bench/podwire-bench" connect --to $B2:5302 -d 1 -w 0 -j) ||
	pw_fail "connect cycles across nodes (pools) failed: $out"
n=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["msgs"])')
pooled=$(grep -c "pooled, to another node" "$LAB_TMP/pool.log")
pin1=$(lab_metric n2 'podwire_remote_pooled_total{dir="in"}')
pout1=$(lab_metric n1 'podwire_remote_pooled_total{dir="out"}')
pw_log "connect cycles across nodes, pools: $n in 1 s, $pooled pooled; dialled $((pout1 - pout0)), taken in $((pin1 - pin0))"
[ "$n" -ge 300 ] && [ $((pooled * 10)) -ge $((n * 8)) ] ||
	pw_fail "pools: $pooled of $n connections pooled (want >= 80%)"
[ $((pout1 - pout0)) -ge "$pooled" ] && [ $((pin1 - pin0)) -ge "$pooled" ] ||
	pw_fail "pools: $pooled pooled, but dialled $((pout1 - pout0)), taken in $((pin1 - pin0))"

# A stranger on the underlay reaches the listener's socket there, but what
# it writes is no sealed token: reset, and the listener serves on.
uport=$(grep -o "listens on $B2:5302 (netns [0-9]*; from other nodes at port [0-9]*" \
	"/run/podwire/lab/$LAB/n2/podwired.log" | tail -n 1 | grep -o '[0-9]*$')
[ -n "$uport" ] && [ "$uport" != 0 ] || pw_fail "no underlay port for $B2:5302 in n2's log"
strangers=$(pwlab exec --no-podwire n1 -- python3 - 198.18.0.2 "$uport" <<'PY'
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
def attempt(first):
    s = socket.create_connection((host, port), timeout=3)
    s.sendall(first)
    try:
        return "reset" if s.recv(16) == b"" else "answered"
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return "kept"
    finally:
        s.close()
# 24 bytes of nothing, and a token naming a pod with a tag it cannot make.
fake = socket.inet_aton("198.19.1.11") + socket.inet_aton("198.19.2.12") + \
    socket.inet_aton("198.18.0.1") + struct.pack("!HH", 1, 5302) + bytes(8)
print(attempt(bytes(24)), attempt(fake))
PY
)
[ "$strangers" = "reset reset" ] ||
	pw_fail "the listener's underlay socket took a stranger: $strangers"
out=$(pwlab exec n1p1 -- "$PW_BUILD/src/bench/podwire-bench" connect --to $B2:5302 -d 0.3 -w 0 -j) ||
	pw_fail "connect cycles across nodes after the strangers failed: $out"
pw_log "strangers on the listener's underlay socket (port $uport): $strangers"

# ---- 3. a kernel server on the other node: fallback over the overlay ----
f0=$(lab_metric n1 'podwire_remote_connects_total{result="failed"}')
lat=$(sp n1p1 $B2 5002)
f1=$(lab_metric n1 'podwire_remote_connects_total{result="failed"}')
[ -n "$lat" ] || pw_fail "accelerated client to a kernel server on another node failed"
[ "$f1" -gt "$f0" ] || pw_fail "the fallback was not counted ($f0 -> $f1)"

# ---- 4. a router that does not know the secret ----
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$LAB_TMP/bad-secret"
a0=$(lab_metric n2 podwire_peer_auth_failures_total)
pwlab exec n1 -- timeout 3 "$PW_BUILD/src/router/podwired" --foreground \
	--socket "$LAB_TMP/rogue.sock" --prefix 198.19.0.0/16 --node-name rogue \
	--peer-listen 198.18.0.1:7471 --peers 198.18.0.2:7470 --pod-cidr 198.19.9.0/24 \
	--secret-file "$LAB_TMP/bad-secret" >"$LAB_TMP/rogue.log" 2>&1
a1=$(lab_metric n2 podwire_peer_auth_failures_total)
[ "$a1" -gt "$a0" ] || pw_fail "n2 did not refuse a router with the wrong secret ($a0 -> $a1)"
grep -q "wrong secret" "$LAB_TMP/rogue.log" || pw_fail "the rogue did not see a bad proof"
grep -q "peer rogue: authenticated" /run/podwire/lab/"$LAB"/n2/podwired.log &&
	pw_fail "n2 accepted the rogue router"

# ---- 5. kill -9 of a router mid-stream ----
iperf_srv
pwlab exec n1p1 -- iperf3 -c $B -p $iperf_port -t 3 --json >"$LAB_TMP/iperf-kill.json" 2>&1 &
cli=$!
sleep 1
pid=$(ps -eo pid=,args= | awk -v d="/run/podwire/lab/$LAB/n2/" 'index($0, d) && /podwired/ && !/awk/ { print $1 }')
[ -n "$pid" ] || pw_fail "no router on n2"
kill -9 $pid
wait $cli || pw_fail "iperf3 across nodes died with the router: $(tail -5 "$LAB_TMP/iperf-kill.json")"
python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["end"]; assert e["sum_received"]["bytes"] > 0' \
	"$LAB_TMP/iperf-kill.json" || pw_fail "iperf3 after the router's death: bad result"
# A new connection: n1 has no peer for n2's pods now, so the overlay.
lat=$(sp n1p1 $B 5001)
[ -n "$lat" ] || pw_fail "a new connection after n2's router died failed"

pwlab down >/dev/null || pw_fail "lab down"
lab_assert_gone
echo "federation: all checks passed"
