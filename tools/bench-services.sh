#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Through a Kubernetes Service, podwire against kube-proxy, beside the same
# pods by address: a 2-node lab with a real control plane (`podwire lab up
# --kube`: kube-apiserver, and kube-proxy in iptables mode in each node).
# A client pod (n1p2) reaches a backend on its node (n1p1) and one on the
# other node (n2p1), each by pod IP and by ClusterIP, with podwire and
# without (kernel: the bridge, VXLAN and kube-proxy's NAT). sockperf
# ping-pong at 64 B (one-way p50 and p99) and iperf3, one stream; the paths
# alternate within each round (every other round in reverse order) and each
# figure is the median of its rounds.
#
# Usage: tools/bench-services.sh [-t SECONDS] [-r ROUNDS] [-o DIR]
#   -t  seconds per sockperf/iperf3 run (default 2)
#   -r  rounds (default 3)
#   -o  where to write results.txt (default build/bench-services)
# Needs root, sockperf, iperf3, python3, and the control plane
# tools/kube-build.sh caches.
set -u
T=2 ROUNDS=3 OUT=""
while [ $# -gt 0 ]; do
	case $1 in
	-t) T=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	-o) OUT=$2; shift 2 ;;
	-h|--help) sed -n '3,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-services: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/tools/bench-lib.sh"
PW_BUILD=${PW_BUILD:-$ROOT/build}
CLI=$PW_BUILD/src/cli/podwire
OUT=${OUT:-$PW_BUILD/bench-services}
pw_bench_lab_init bench-services bsvc sockperf iperf3 python3 etcd iptables
KDIR=$("$ROOT/tools/kube-build.sh" --check) ||
	{ echo "bench-services: no control plane; run tools/kube-build.sh as root" >&2; exit 77; }
wait_listen() { pw_lab_wait_listen bench-services "$@"; }

lab up --kube --nodes 2 --pods-per-node 2 >"$TMP/up.log" 2>&1 ||
	{ cat "$TMP/up.log" >&2; exit 1; }
KC=$(lab status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["kubeconfig"])')
kctl() { lab exec u -- "$KDIR/kubectl" --kubeconfig "$KC" "$@"; }

# Servers under podwire (they take podwire's connections and the kernel's).
N1=198.19.1.11 N2=198.19.2.11
for b in "n1p1 $N1" "n2p1 $N2"; do
	set -- $b
	lab exec "$1" -- sockperf server --tcp -i "$2" -p 5001 >>"$TMP/servers.log" 2>&1 &
	lab exec "$1" -- iperf3 -s -B "$2" -p 5201 >>"$TMP/servers.log" 2>&1 &
	wait_listen "$1" 5001
	wait_listen "$1" 5201
done
python3 - "$TMP/objs.json" "$N1" "$N2" <<'PY'
import json, sys
out, n1, n2 = sys.argv[1:4]
items = []
for name, ip in (("same", n1), ("other", n2)):
    ports = [{"name": "sockperf", "port": 5001}, {"name": "iperf", "port": 5201}]
    items.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                  "spec": {"ports": [dict(p, targetPort=p["name"], protocol="TCP")
                                     for p in ports]}})
    items.append({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
                  "subsets": [{"addresses": [{"ip": ip}],
                               "ports": [dict(p, protocol="TCP") for p in ports]}]})
    items.append({"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
                  "metadata": {"name": name + "-1",
                               "labels": {"kubernetes.io/service-name": name}},
                  "addressType": "IPv4",
                  "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
                  "ports": [dict(p, protocol="TCP") for p in ports]})
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(out, "w"))
PY
kctl create -f "$TMP/objs.json" >/dev/null || exit 1
V1=$(kctl get svc same -o jsonpath='{.spec.clusterIP}')
V2=$(kctl get svc other -o jsonpath='{.spec.clusterIP}')
# kube-proxy's rules and the routers' tables are in place when both answer.
for _ in $(seq 100); do
	lab exec --no-podwire n1p2 -- sockperf ping-pong --tcp -i "$V2" -p 5001 -t 1 -m 64 \
		>/dev/null 2>&1 && break
	sleep 0.2
done

# name -> "mode address"
declare -A P=(
	[same/pod/podwire]="pw $N1" [same/pod/kernel]="kernel $N1"
	[same/svc/podwire]="pw $V1" [same/svc/kernel]="kernel $V1"
	[other/pod/podwire]="pw $N2" [other/pod/kernel]="kernel $N2"
	[other/svc/podwire]="pw $V2" [other/svc/kernel]="kernel $V2"
)
ORDER="same/pod/podwire same/pod/kernel same/svc/podwire same/svc/kernel
	other/pod/podwire other/pod/kernel other/svc/podwire other/svc/kernel"
run() { # path tool -> figures
	local mode ip np=""
	read -r mode ip <<<"${P[$1]}"
	[ "$mode" = pw ] || np=--no-podwire
	if [ "$2" = sockperf ]; then
		lab exec $np n1p2 -- sockperf ping-pong --tcp -i "$ip" -p 5001 -t "$T" -m 64 \
			--mps 1000000 2>&1 |
			awk '/percentile 50.000/ { a = $NF } /percentile 99.000/ { b = $NF }
			     END { print a, b }'
	else
		lab exec $np n1p2 -- iperf3 -c "$ip" -p 5201 -t "$T" --json 2>/dev/null |
			python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception: print("-")'
	fi
}
metric() { lab exec n1 -- curl -s --max-time 5 http://127.0.0.1:9470/metrics |
	awk -v n="$1" '$1 == n { print $2 }'; }
s0=$(metric 'podwire_service_connects_total{result="backend"}')
declare -A P50 P99 BW
for r in $(seq "$ROUNDS"); do
	# Every other round in reverse, so that no path always runs after the same one.
	order=$ORDER
	[ $((r % 2)) = 0 ] && order=$(printf '%s\n' $ORDER | tac)
	for p in $order; do
		read -r a b <<<"$(run "$p" sockperf)"
		P50[$p]="${P50[$p]:-} $a" P99[$p]="${P99[$p]:-} $b"
		BW[$p]="${BW[$p]:-} $(run "$p" iperf)"
	done
	echo "round $r of $ROUNDS done" >&2
done
s1=$(metric 'podwire_service_connects_total{result="backend"}')
{
	echo "Through a Service (ClusterIP) and by pod IP, client n1p2; $ROUNDS rounds of ${T} s"
	echo "(medians); kernel = bridge / VXLAN, with kube-proxy (iptables) for Services."
	echo "Router n1: $((s1 - s0)) connects to ClusterIPs sent to a backend during the runs."
	echo
	printf '%-22s %12s %12s %14s\n' path "p50 (us)" "p99 (us)" "iperf3 Gbit/s"
	for p in $ORDER; do
		printf '%-22s %12s %12s %14s\n' "$p" "$(pw_median ${P50[$p]})" \
			"$(pw_median ${P99[$p]})" "$(pw_median ${BW[$p]})"
	done
	echo
	echo "kernel / podwire (latency: how many times lower with podwire; iperf3: how many"
	echo "times more):"
	for w in same/pod same/svc other/pod other/svc; do
		python3 - "$w" "$(pw_median ${P50[$w/kernel]})" "$(pw_median ${P50[$w/podwire]})" \
			"$(pw_median ${BW[$w/podwire]})" "$(pw_median ${BW[$w/kernel]})" <<'PY'
import sys
w, lk, lp, bp, bk = sys.argv[1:6]
f = lambda a, b: "%.1fx" % (float(a) / float(b)) if a not in ("", "-") and b not in ("", "-") and float(b) else "-"
print("  %-10s p50 %7s   iperf3 %7s" % (w, f(lk, lp), f(bp, bk)))
PY
	done
} | tee "$OUT/results.txt"
