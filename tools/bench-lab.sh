#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The data paths of a 2-node podwire lab side by side, in the shape of seed
# 003's results: loopback, host to host (node namespaces on the underlay), pod
# to pod on one node (kernel bridge, podwire) and across nodes (VXLAN, host-gw,
# podwire). sockperf ping-pong latency percentiles at 64 B, iperf3 single
# stream and the connection rate (podwire-bench connect: connect, 1-byte
# echo, close, one after another) with the machine's CPU time per
# connection (medians of alternating rounds), beside the floor of podwire's
# pooled connections across nodes (podwire-bench connect --handover, the
# kernel alone), and a latency sweep from 14 B to 1 MiB - 1 (sockperf's
# limits) plotted with gnuplot.
#
# Usage: tools/bench-lab.sh [-t SECONDS] [-r ROUNDS] [-o DIR] [--no-sweep]
#   -t  seconds per sockperf/iperf3 run (default 2)
#   -r  rounds: the 64 B runs of the paths alternate this many times and each
#       figure is the median of its rounds (default 3), which keeps a noisy
#       neighbour from favouring one path
#   -o  where to write results.txt, sweep.dat and latency.png (default
#       build/bench-lab)
# Needs root, sockperf, iperf3, python3; gnuplot (gnuplot-nox) for the plot.
set -u
T=2 ROUNDS=3 OUT="" SWEEP=1
while [ $# -gt 0 ]; do
	case $1 in
	-t) T=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	-o) OUT=$2; shift 2 ;;
	--no-sweep) SWEEP=""; shift ;;
	-h|--help) sed -n '3,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-lab: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PW_BUILD=${PW_BUILD:-$ROOT/build}
CLI=$PW_BUILD/src/cli/podwire
OUT=${OUT:-$PW_BUILD/bench-lab}
. "$(dirname "$0")/bench-lib.sh"
pw_bench_lab_init bench-lab bench sockperf iperf3 python3

wait_listen() { pw_lab_wait_listen bench-lab "$@"; } # target port

# Paths: name, client target, client mode (pw|kernel), server address:port.
declare -A CLIENT MODE DST
path() { CLIENT[$1]=$2; MODE[$1]=$3; DST[$1]=$4; }

# server TARGET MODE IP PORT: a sockperf server accepting messages up to its maximum, 1 MiB - 1
server() {
	local np=""
	[ "$2" = pw ] || np=--no-podwire
	lab exec $np "$1" -- sockperf server --tcp -i "$3" -p "$4" -m 1048575 \
		>>"$TMP/servers.log" 2>&1 &
	wait_listen "$1" "$4"
}

# pingpong PATH SIZE -> "p50 p99 p99.9" one-way microseconds
pingpong() {
	local np="" ip=${DST[$1]%:*} port=${DST[$1]#*:}
	[ "${MODE[$1]}" = pw ] || np=--no-podwire
	# Capped like tools/bench-pods.sh: sockperf's sequence table overflows
	# at shared-memory speed without a rate cap.
	lab exec $np "${CLIENT[$1]}" -- sockperf ping-pong --tcp -i "$ip" -p "$port" -t "$T" \
		-m "$2" --mps 1000000 2>&1 |
		awk '/percentile 50.000/ { a = $NF } /percentile 99.000/ { b = $NF }
		     /percentile 99.900/ { c = $NF } END { print a, b, c }'
}

# iperf3 PATH -> Gbit/s, one stream, against a one-off server
iperf_port=7200
iperf() {
	local np="" ip=${DST[$1]%:*} srv=$2 smode=$3
	[ "${MODE[$1]}" = pw ] || np=--no-podwire
	local snp=""
	[ "$smode" = pw ] || snp=--no-podwire
	iperf_port=$((iperf_port + 1))
	lab exec $snp "$srv" -- iperf3 -s -1 -B "$ip" -p $iperf_port >>"$TMP/iperf-s.log" 2>&1 &
	wait_listen "$srv" $iperf_port
	lab exec $np "${CLIENT[$1]}" -- iperf3 -c "$ip" -p $iperf_port -t "$T" --json 2>/dev/null |
		python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception: print("-")'
}

# cserver TARGET MODE IP PORT: a podwire-bench connect server (mode
# handover: the kernel's, for hand-over cycles)
BENCH=$PW_BUILD/src/bench/podwire-bench
cserver() {
	local np="" ho=""
	[ "$2" = pw ] || np=--no-podwire
	[ "$2" = handover ] && ho=--handover
	lab exec $np "$1" -- "$BENCH" connect $ho --serve "$3:$4" -d 3600 -w 0 \
		>>"$TMP/cservers.log" 2>&1 &
	wait_listen "$1" "$4"
}

# The machine's busy time so far, in jiffies: user, nice, system, irq and
# softirq of every CPU (not idle, iowait or steal: time the VM did not run).
busy_jiffies() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }

# cycles PATH -> "cycles/s p50-us cpu-us": connect cycles one after another,
# and the machine's CPU time per cycle (every process: client, server,
# routers, softirqs; the lab is this machine), over the whole run with its
# warm-up. Mode pwshm: podwire with PODWIRE_ADAPT=0, every connection over
# podwire's path (as shipped, the library leaves repeated short ones to the
# kernel). Mode handover: the kernel's hand-over cycles (podwire-bench
# --help), the floor of podwire's pooled connections across nodes.
cycles() {
	local np="" ip=${DST[$1]%:*} port=${DST[$1]#*:} env="" ho="" b0 out
	case ${MODE[$1]} in
	pw) ;;
	pwshm) env=PODWIRE_ADAPT=0 ;;
	handover) np=--no-podwire ho=--handover ;;
	*) np=--no-podwire ;;
	esac
	b0=$(busy_jiffies)
	out=$(lab exec $np "${CLIENT[$1]}" -- env $env "$BENCH" connect $ho --to "$ip:$port" -d "$T" \
		-w 0.3 -j 2>/dev/null)
	echo "$out" | python3 -c 'import json, os, sys
try:
    d = json.load(sys.stdin)
    busy = (int(sys.argv[2]) - int(sys.argv[1])) * 1e6 / os.sysconf("SC_CLK_TCK")
    # The warm-up ran at about the same rate: its cycles count too.
    n = d["msgs_per_sec"] * (float(sys.argv[3]) + 0.3)
    print("%.0f %.1f %.0f" % (d["msgs_per_sec"], d["rtt_ns"]["p50"] / 1000, busy / n))
except Exception: print("- - -")' "$b0" "$(busy_jiffies)" "$T"
}


declare -A P50 P99 P999 GBPS CPS CP50 CCPU
SIZES="14 64 1024 16384 65536 262144 1048575" # sockperf's smallest and largest
: >"$OUT/sweep.dat"

# measure PATHS... : alternating 64 B rounds, iperf3, and the size sweep
measure() {
	local p r out
	declare -A a b c
	for r in $(seq "$ROUNDS"); do
		for p in "$@"; do
			out=$(pingpong "$p" 64)
			a[$p]="${a[$p]:-} ${out%% *}"
			out=${out#* }
			b[$p]="${b[$p]:-} ${out%% *}"
			c[$p]="${c[$p]:-} ${out#* }"
		done
	done
	for p in "$@"; do
		P50[$p]=$(pw_median ${a[$p]})
		P99[$p]=$(pw_median ${b[$p]})
		P999[$p]=$(pw_median ${c[$p]})
	done
}

lab up --nodes 2 --pods-per-node 2 --overlay vxlan >"$TMP/up.log" 2>&1 ||
	{ cat "$TMP/up.log" >&2; exit 1; }
# n1p1 is the client everywhere. Servers: kernel ones (no preload) and
# podwire ones (preload), so each path has the server it needs.
server n1p1 kernel 127.0.0.1 6000
server n2 kernel 198.18.0.2 6001
server n1p2 kernel 198.19.1.12 6002
server n1p2 pw 198.19.1.12 6003
server n2p1 kernel 198.19.2.11 6004
server n2p2 pw 198.19.2.12 6005
path loopback n1p1 kernel 127.0.0.1:6000
path host n1 kernel 198.18.0.2:6001
path bridge n1p1 kernel 198.19.1.12:6002
path shm n1p1 pw 198.19.1.12:6003
path vxlan n1p1 kernel 198.19.2.11:6004
path remote n1p1 pw 198.19.2.12:6005
sleep 0.5 # the routers' peer links
measure loopback host bridge shm vxlan remote
# iperf3 PATH... as "path:server:mode": alternating rounds, medians
iperfs() {
	local r spec
	declare -A g
	for r in $(seq "$ROUNDS"); do
		for spec in "$@"; do
			IFS=: read -r p srv mode <<<"$spec"
			g[$p]="${g[$p]:-} $(iperf "$p" "$srv" "$mode")"
		done
	done
	for spec in "$@"; do
		p=${spec%%:*}
		GBPS[$p]=$(pw_median ${g[$p]})
	done
}
iperfs loopback:n1p1:kernel host:n2:kernel bridge:n1p2:kernel shm:n1p2:pw \
	vxlan:n2p1:kernel remote:n2p2:pw
# The connection rate: the same paths, podwire-bench connect servers.
cserver n2 kernel 198.18.0.2 6011
cserver n1p2 kernel 198.19.1.12 6012
cserver n1p2 pw 198.19.1.12 6013
cserver n2p1 kernel 198.19.2.11 6014
cserver n2p2 pw 198.19.2.12 6015
cserver n2 handover 198.18.0.2 6016
path chost n1 kernel 198.18.0.2:6011
path cfloor n1 handover 198.18.0.2:6016
path cbridge n1p1 kernel 198.19.1.12:6012
path cshm n1p1 pw 198.19.1.12:6013
path cvxlan n1p1 kernel 198.19.2.11:6014
path cremote n1p1 pw 198.19.2.12:6015
path cshmall n1p1 pwshm 198.19.1.12:6013
path cremoteall n1p1 pwshm 198.19.2.12:6015
declare -A cps cp50 ccpu
for r in $(seq "$ROUNDS"); do
	# (Host to host, podwire across nodes and its floor side by side.)
	for p in chost cremote cfloor cbridge cshm cvxlan cshmall cremoteall; do
		read -r o1 o2 o3 <<<"$(cycles $p)"
		cps[$p]="${cps[$p]:-} $o1"
		cp50[$p]="${cp50[$p]:-} $o2"
		ccpu[$p]="${ccpu[$p]:-} $o3"
	done
done
for p in chost cbridge cshm cvxlan cremote cshmall cremoteall cfloor; do
	CPS[$p]=$(pw_median ${cps[$p]})
	CP50[$p]=$(pw_median ${cp50[$p]})
	CCPU[$p]=$(pw_median ${ccpu[$p]})
done
if [ -n "$SWEEP" ]; then
	for s in $SIZES; do
		line="$s"
		for p in host bridge shm vxlan remote; do
			out=$(pingpong $p "$s")
			line="$line ${out%% *}"
		done
		echo "$line" >>"$TMP/sweep-vx.dat"
	done
fi
# Proof that the podwire paths were podwire's: the routers' counters.
metric() { lab exec "$1" -- curl -s --max-time 5 http://127.0.0.1:9470/metrics |
	awk -v n="$2" '$1 == n { print $2 }'; }
CLAIMS=$(metric n1 podwire_claims_total)
REMOTE=$(metric n1 'podwire_remote_connects_total{result="ok"}')
lab down >/dev/null

lab up --nodes 2 --pods-per-node 2 --overlay host-gw >"$TMP/up.log" 2>&1 ||
	{ cat "$TMP/up.log" >&2; exit 1; }
server n2 kernel 198.18.0.2 6001
server n2p1 kernel 198.19.2.11 6004
path hostgw n1p1 kernel 198.19.2.11:6004
measure host hostgw
HOST2=${P50[host]}
iperfs hostgw:n2p1:kernel
if [ -n "$SWEEP" ]; then
	for s in $SIZES; do
		out=$(pingpong hostgw "$s")
		echo "${out%% *}" >>"$TMP/sweep-hg.dat"
	done
	paste -d' ' "$TMP/sweep-vx.dat" "$TMP/sweep-hg.dat" >"$OUT/sweep.dat"
fi
lab down >/dev/null

{
	echo "podwire lab, 2 nodes: sockperf ping-pong 64 B (one-way latency, us) and iperf3 one"
	echo "stream; each a median of $ROUNDS alternating runs of ${T} s. $(date -u +%F), $(nproc) vCPU,"
	echo "$(uname -r)."
	echo
	printf '%-34s %9s %9s %9s %10s\n' "path" "p50" "p99" "p99.9" "Gbit/s"
	row() { printf '%-34s %9s %9s %9s %10s\n' "$1" "${P50[$2]}" "${P99[$2]}" "${P999[$2]}" \
		"${GBPS[$2]}"; }
	row "loopback (in one pod)" loopback
	row "host to host (underlay)" host
	row "pod to pod, same node: bridge" bridge
	row "pod to pod, same node: podwire" shm
	row "pod to pod, across nodes: VXLAN" vxlan
	row "pod to pod, across nodes: host-gw" hostgw
	row "pod to pod, across nodes: podwire" remote
	echo
	python3 - "${P50[remote]}" "${P50[host]}" "$HOST2" "${GBPS[remote]}" "${GBPS[host]}" <<'PY'
import sys
r, h, h2, gr, gh = sys.argv[1:]
try:
    print("podwire across nodes / host to host: p50 %.3fx (target <= 1.05), iperf3 %.3fx "
          "(target >= 0.95)" % (float(r) / float(h), float(gr) / float(gh)))
    print("host to host p50 in the host-gw lab: %s us (the same path, another lab)" % h2)
except ValueError:
    print("(a figure is missing: no ratio)")
PY
	echo
	echo "connection rate: podwire-bench connect (connect, 1-byte echo, close), one at a time"
	printf '%-34s %12s %10s %12s\n' "path" "conns/s" "p50 (us)" "CPU us/conn"
	crow() { printf '%-34s %12s %10s %12s\n' "$1" "${CPS[$2]}" "${CP50[$2]}" "${CCPU[$2]}"; }
	crow "host to host (underlay)" chost
	crow "pod to pod, same node: bridge" cbridge
	crow "pod to pod, same node: podwire" cshm
	crow "pod to pod, across nodes: VXLAN" cvxlan
	crow "pod to pod, across nodes: podwire" cremote
	crow "  same node, shm always" cshmall
	crow "  across nodes, direct always" cremoteall
	crow "host to host, handed over (floor)" cfloor
	python3 - "${CPS[cremote]}" "${CPS[chost]}" "${CPS[cshm]}" "${CPS[cbridge]}" \
		"${CCPU[cremote]}" "${CCPU[chost]}" "${CPS[cfloor]}" <<'PY'
import sys
r, h, s, b, rc, hc, f = sys.argv[1:]
try:
    print("connection rate, podwire across nodes / host to host: %.3fx (target >= 0.9)"
          % (float(r) / float(h)))
    print("connection rate, the pooled design's floor (kernel only) / host to host: %.3fx;"
          " podwire / floor: %.3fx" % (float(f) / float(h), float(r) / float(f)))
    print("connection rate, podwire same node / bridge: %.3fx" % (float(s) / float(b)))
    print("CPU per connection, podwire across nodes / host to host: %.3fx" % (float(rc) / float(hc)))
except ValueError:
    print("(a connection rate is missing: no ratio)")
PY
	echo "podwired counters: $CLAIMS same-node claims, $REMOTE direct cross-node connects"
} | tee "$OUT/results.txt"

if [ -n "$SWEEP" ] && command -v gnuplot >/dev/null; then
	gnuplot <<GP
set terminal pngcairo size 900,560 noenhanced
set output "$OUT/latency.png"
set title "sockperf ping-pong p50 one-way latency, 2-node podwire lab"
set xlabel "message size (bytes)"
set ylabel "latency (us)"
set logscale xy
set key top left
set grid
plot "$OUT/sweep.dat" using 1:2 with linespoints title "host to host", \
     "" using 1:3 with linespoints title "same node: bridge", \
     "" using 1:4 with linespoints title "same node: podwire", \
     "" using 1:5 with linespoints title "across: VXLAN", \
     "" using 1:7 with linespoints title "across: host-gw", \
     "" using 1:6 with linespoints title "across: podwire"
GP
	echo "plot: $OUT/latency.png (data: $OUT/sweep.dat)"
fi
