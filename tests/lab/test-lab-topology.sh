#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# podwire lab with one overlay (argument: vxlan or host-gw): 2 nodes x 2 pods.
# Addresses and overlay devices; ping and TCP (sockperf) pod to pod on one node
# and across nodes, with and without podwire, and pod to another node's
# underlay address; 'lab exec' environment, exit status and stdin; 'lab status
# --json'; the routers running and carrying the same-node connection; 'lab down'
# leaving nothing behind, twice.
set -u
. "$(dirname "$0")/lib.sh"
OVERLAY=${1:?usage: $0 vxlan|host-gw}
lab_init "${OVERLAY%%-*}"
pw_need ping sockperf curl python3 ss

pwlab up --nodes 2 --pods-per-node 2 --overlay "$OVERLAY" >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "up: $(cat "$LAB_TMP/up.log")"
pw_log "up: $(head -1 "$LAB_TMP/up.log")"

# Namespaces and addresses
n=$(ip netns list | awk -v p="pwlab-$LAB-" 'index($1, p) == 1' | wc -l)
[ "$n" = 7 ] || pw_fail "expected 7 namespaces (underlay, 2 nodes, 4 pods), got $n"
pwlab exec n2p2 -- ip -4 -o addr show dev eth0 | grep -q 'inet 198.19.2.12/24' ||
	pw_fail "n2p2 address: $(pwlab exec n2p2 -- ip -4 -o addr)"
pwlab exec n1 -- ip -4 -o addr show dev eth0 | grep -q 'inet 198.18.0.1/24' ||
	pw_fail "n1 underlay address: $(pwlab exec n1 -- ip -4 -o addr)"
pwlab exec n1p1 -- ip route | grep -q '^default via 198.19.1.1 dev eth0' ||
	pw_fail "n1p1 routes: $(pwlab exec n1p1 -- ip route)"
[ "$(pwlab exec n2 -- cat /proc/sys/net/ipv4/ip_forward)" = 1 ] || pw_fail "ip_forward off in n2"

# The overlay, as flannel would set it up
routes=$(pwlab exec n1 -- ip route)
if [ "$OVERLAY" = vxlan ]; then
	link=$(pwlab exec n1 -- ip -d link show flannel.1)
	for want in "mtu 1450" "vxlan id 1 " "local 198.18.0.1 " "dstport 8472" "nolearning"; do
		echo "$link" | grep -q "$want" || pw_fail "flannel.1 lacks '$want': $link"
	done
	echo "$routes" | grep -q '^198.19.2.0/24 via 198.19.2.0 dev flannel.1 onlink' ||
		pw_fail "n1 routes: $routes"
	pwlab exec n1 -- bridge fdb show dev flannel.1 | grep -q 'dst 198.18.0.2 self permanent' ||
		pw_fail "n1 fdb: $(pwlab exec n1 -- bridge fdb show dev flannel.1)"
	pwlab exec n1 -- ip neigh show dev flannel.1 | grep -q '198.19.2.0 lladdr .* PERMANENT' ||
		pw_fail "n1 neighbours: $(pwlab exec n1 -- ip neigh show dev flannel.1)"
	[ "$(pwlab exec n1p1 -- cat /sys/class/net/eth0/mtu)" = 1450 ] || pw_fail "pod MTU"
	vx_tx() { pwlab exec n1 -- cat /sys/class/net/flannel.1/statistics/tx_packets; }
else
	echo "$routes" | grep -q '^198.19.2.0/24 via 198.18.0.2 dev eth0' ||
		pw_fail "n1 routes: $routes"
	! pwlab exec n1 -- ip link show flannel.1 >/dev/null 2>&1 || pw_fail "host-gw has flannel.1"
	vx_tx() { echo 0; }
fi
[ -z "$(ip netns list | grep -E "^pwlab-$LAB-" | grep -v -E "^pwlab-$LAB-(u|n[12]|n[12]p[12])( |$)")" ] ||
	pw_fail "unexpected namespaces: $(ip netns list)"

# ICMP: same node, across nodes both ways, pod to the other node's underlay
tx0=$(vx_tx)
for pair in "n1p1 198.19.1.12" "n1p1 198.19.2.11" "n2p2 198.19.1.11" "n1p2 198.18.0.2" \
	"n2p1 198.18.0.1" "n1 198.18.0.2"; do
	set -- $pair
	pwlab exec "$1" -- ping -c 1 -W 2 "$2" >/dev/null || pw_fail "ping $1 -> $2"
done
if [ "$OVERLAY" = vxlan ]; then
	[ "$(vx_tx)" -gt "$tx0" ] || pw_fail "cross-node ping did not go through flannel.1"
fi

# lab exec: exit status, stdin/stdout, environment
pwlab exec n1p1 -- sh -c 'exit 7'
rc=$?
[ "$rc" = 7 ] || pw_fail "exec exit status $rc, want 7"
pwlab exec n1p1 -- /nonexistent/cmd 2>/dev/null
rc=$?
[ "$rc" = 127 ] || pw_fail "exec of a missing command: $rc, want 127"
[ "$(echo through | pwlab exec n2p1 -- cat)" = through ] || pw_fail "stdin/stdout do not pass"
lib=$(lab_json 'j["lib"]')
env=$(pwlab exec n2p1 -- env)
# The preload tree beside the library: one value for glibc and musl programs.
# And the virtual RDMA device beside it, when the build has it (docs/RDMA.md).
want="$(dirname "$lib")/preload/\$LIB/libpodwire.so"
[ ! -e "$(dirname "$lib")/preload/lib/libpodwire-verbs.so" ] ||
	want="$want:$(dirname "$lib")/preload/\$LIB/libpodwire-verbs.so"
echo "$env" | grep -qxF "LD_PRELOAD=$want" || pw_fail "pod env: $env"
[ "$(pwlab exec n2p1 -- sh -c 'grep -c libpodwire /proc/self/maps')" -ge 1 ] ||
	pw_fail "the pod's shell did not load libpodwire.so"
echo "$env" | grep -qx "PODWIRE_SOCKET=/run/podwire/lab/$LAB/n2/podwired.sock" || pw_fail "pod env: $env"
env=$(pwlab exec --no-podwire n2p1 -- env)
! echo "$env" | grep -q "^LD_PRELOAD=.*libpodwire" || pw_fail "--no-podwire env: $env"
! echo "$env" | grep -q "^PODWIRE_SOCKET=" || pw_fail "--no-podwire env: $env"
env=$(pwlab exec n1 -- env)
! echo "$env" | grep -q "^LD_PRELOAD=.*libpodwire" || pw_fail "node env has the preload: $env"
pwlab exec n3 -- true 2>/dev/null && pw_fail "exec in a missing node succeeded"
pwlab exec n1p3 -- true 2>/dev/null && pw_fail "exec in a missing pod succeeded"

# lab status --json
st=$(pwlab status --json) || pw_fail "status --json failed"
echo "$st" | python3 -c '
import json, sys
j = json.load(sys.stdin)
ov = sys.argv[1]
assert j["overlay"] == ov and j["podwire"] is True, j
assert j["node_count"] == 2 and j["pods_per_node"] == 2 and len(j["nodes"]) == 2, j
for n, node in enumerate(j["nodes"], 1):
    assert node["name"] == "n%d" % n and node["underlay_ip"] == "198.18.0.%d" % n, node
    assert node["pod_subnet"] == "198.19.%d.0/24" % n and node["netns_present"], node
    r = node["router"]
    assert r["alive"] is True and r["pid"] > 0, r
    assert r["socket"].endswith("/n%d/podwired.sock" % n), r
    assert [p["name"] for p in node["pods"]] == ["n%dp1" % n, "n%dp2" % n], node
    assert [p["ip"] for p in node["pods"]] == ["198.19.%d.11" % n, "198.19.%d.12" % n], node
' "$OVERLAY" || pw_fail "status --json: $st"
pwlab status | grep -q "^n2 .*198.18.0.2 .*198.19.2.0/24 .*running" || pw_fail "status: $(pwlab status)"
# Each router runs inside its node's namespace.
for n in 1 2; do
	pid=$(lab_json "j['nodes'][$((n - 1))]['router']['pid']")
	ip netns pids "pwlab-$LAB-n$n" | grep -qx "$pid" || pw_fail "router $pid is not in n$n"
done

# TCP with sockperf. Servers under the preload (podwire runs) and without it
# (kernel baselines: neither end preloaded) on n1p2 and n2p1; one on n2's underlay.
srv() { # [--no-podwire] pod ip port
	local opt=()
	[ "$1" != --no-podwire ] || { opt=(--no-podwire); shift; }
	pwlab exec "${opt[@]}" "$1" -- sockperf server --tcp -i "$2" -p "$3" \
		>"$LAB_TMP/server-$3.log" 2>&1 &
}
srv n1p2 198.19.1.12 11001
srv --no-podwire n1p2 198.19.1.12 11011
srv n2p1 198.19.2.11 11002
srv --no-podwire n2p1 198.19.2.11 11012
srv n2 198.18.0.2 11003
for p in n1p2:11001 n1p2:11011 n2p1:11002 n2p1:11012 n2:11003; do
	lab_wait_listen "${p%:*}" "${p#*:}"
done
pingpong() { # label [--no-podwire] pod -- sockperf...
	local label=$1 out
	shift
	out=$(pwlab exec "$@" 2>&1)
	echo "$out" | grep -q "percentile 50.000" || pw_fail "$label: $out"
	pw_log "$label: p50 $(echo "$out" | awk '/percentile 50.000/ { print $NF }') us"
}
claims0=$(lab_metric n1 podwire_claims_total)
[ -n "$claims0" ] || pw_fail "no metrics from n1's router"
pp="sockperf ping-pong --tcp -t 1 --mps 100000 -m 64"
tx0=$(vx_tx)
pingpong "same node, podwire" n1p1 -- $pp -i 198.19.1.12 -p 11001
claims1=$(lab_metric n1 podwire_claims_total)
[ "$claims1" -gt "$claims0" ] || pw_fail "same-node connection not over podwire (claims $claims0 -> $claims1)"
pingpong "same node, kernel" --no-podwire n1p1 -- $pp -i 198.19.1.12 -p 11011
pingpong "across nodes, preload" n1p1 -- $pp -i 198.19.2.11 -p 11002
pingpong "across nodes, kernel" --no-podwire n1p1 -- $pp -i 198.19.2.11 -p 11012
pingpong "pod to other node's underlay" n1p2 -- $pp -i 198.18.0.2 -p 11003
if [ "$OVERLAY" = vxlan ]; then
	[ "$(vx_tx)" -gt "$((tx0 + 100))" ] || pw_fail "cross-node TCP did not go through flannel.1"
fi

# Down: nothing left, and a second down is fine
pwlab down >"$LAB_TMP/down.log" 2>&1 || pw_fail "down: $(cat "$LAB_TMP/down.log")"
wait 2>/dev/null
lab_assert_gone
out=$(pwlab down 2>&1) || pw_fail "second down failed: $out"
echo "$out" | grep -q "nothing to remove" || pw_fail "second down: $out"
pwlab status >/dev/null 2>&1 && pw_fail "status of a removed lab succeeded"
exit 0
