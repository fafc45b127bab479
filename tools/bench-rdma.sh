#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# podwire0, the virtual RDMA device, against TCP, in the shape of seed 003's
# Figures 5.3-5.6 (RDMA against sockperf), in a 2-node podwire lab. Debian's
# unmodified perftest over podwire0 between two pods of one node and of two
# nodes, and sockperf over TCP between the same pods, on the kernel (bridge,
# VXLAN) and under libpodwire.so, and host to host (the nodes' underlay), at
# the same message sizes: one table of latency and one of bandwidth, a plot
# of both against message size, and the targets of issue 12 checked at 64 B
# in alternating rounds.
#
# Usage: tools/bench-rdma.sh [-r ROUNDS] [-t SECONDS] [-o DIR] [--quick|--sizes LIST]
#   -r  rounds of the 64 B target runs, alternating (default 3); each figure
#       is the median of its rounds
#   -t  seconds per sockperf run (default 1)
#   -o  where to write results.txt, lat.dat, bw.dat and rdma.png (default
#       build/bench-rdma)
#   --quick  two sizes (64 B, 64 KiB) instead of five
#   --sizes "64 4096 ..."  these sizes (make demo: --sizes 64)
# Latency: perftest's t_typical (half the round trip for SEND and WRITE, the
# whole of READ's), sockperf ping-pong's one-way p50, in microseconds.
# Bandwidth: perftest's BW average and sockperf throughput, in MiB/s (both
# programs' "MB" is 2^20 bytes).
# Needs root, perftest, sockperf; gnuplot (gnuplot-nox) for the plot.
set -u
ROUNDS=3 T=1 OUT="" SIZES="64 1024 8192 65536 524288"
while [ $# -gt 0 ]; do
	case $1 in
	-r) ROUNDS=$2; shift 2 ;;
	-t) T=$2; shift 2 ;;
	-o) OUT=$2; shift 2 ;;
	--quick) SIZES="64 65536"; shift ;;
	--sizes) SIZES=$2; shift 2 ;;
	-h|--help) sed -n '3,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-rdma: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PW_BUILD=${PW_BUILD:-$ROOT/build}
CLI=$PW_BUILD/src/cli/podwire
OUT=${OUT:-$PW_BUILD/bench-rdma}
. "$(dirname "$0")/bench-lib.sh"
pw_bench_lab_init bench-rdma rdma sockperf ib_write_lat python3
[ -e "$PW_BUILD/src/verbs/libpodwire-verbs.so" ] ||
	{ echo "bench-rdma: built without libibverbs-dev: no podwire0" >&2; exit 77; }

wait_listen() { pw_lab_wait_listen bench-rdma "$@"; } # target port

addr() { case $1 in n1p1) echo 198.19.1.11 ;; n1p2) echo 198.19.1.12 ;;
	n2p1) echo 198.19.2.11 ;; n2p2) echo 198.19.2.12 ;; esac; }

# perftest TEST SERVER CLIENT SIZE -> t_typical (latency tests) or BW
# average (bandwidth tests), or "-"
perftest() {
	local t=$1 sp=$2 cp=$3 s=$4 n=2000 col=5
	case $t in *_bw) col=4 n=$((s >= 65536 ? 2000 : 20000)) ;; esac
	lab exec "$sp" -- timeout 60 "$t" -d podwire0 -F -s "$s" -n $n >"$TMP/s.out" 2>&1 &
	local spid=$!
	wait_listen "$sp" 18515
	lab exec "$cp" -- timeout 60 "$t" -d podwire0 -F -s "$s" -n $n "$(addr "$sp")" \
		>"$TMP/c.out" 2>&1
	wait $spid
	awk -v c=$col '$1 ~ /^[0-9]+$/ && NF >= c && $2 ~ /^[0-9]+$/ { v = $c } END { print v ? v : "-" }' \
		"$TMP/c.out"
}

# sockperf servers: on the kernel (no preload) or podwire's, per pod.
sserver() { # target mode ip port
	local np=""
	[ "$2" = pw ] || np=--no-podwire
	lab exec $np "$1" -- sockperf server --tcp -i "$3" -p "$4" -m 1048575 \
		>>"$TMP/servers.log" 2>&1 &
	wait_listen "$1" "$4"
}
declare -A SCLI SMODE SDST
spath() { SCLI[$1]=$2; SMODE[$1]=$3; SDST[$1]=$4; }

# sockperf PATH pp|tp SIZE -> one-way p50 (us) or MiB/s
sockperf_run() {
	local p=$1 np="" ip=${SDST[$1]%:*} port=${SDST[$1]#*:}
	[ "${SMODE[$p]}" = pw ] || np=--no-podwire
	if [ "$2" = pp ]; then
		# Capped as in bench-lab.sh: sockperf's sequence table
		# overflows at shared-memory speed without a rate cap.
		lab exec $np "${SCLI[$p]}" -- sockperf ping-pong --tcp -i "$ip" -p "$port" -t "$T" \
			-m "$3" --mps 1000000 2>&1 | awk '/percentile 50.000/ { v = $NF } END { print v ? v : "-" }'
	else
		lab exec $np "${SCLI[$p]}" -- sockperf throughput --tcp -i "$ip" -p "$port" -t "$T" \
			-m "$3" 2>&1 | awk '/BandWidth is/ { v = $(NF - 3) } END { print v ? v : "-" }'
	fi
}

lab up --nodes 2 --pods-per-node 2 >"$TMP/up.log" 2>&1 || { cat "$TMP/up.log" >&2; exit 1; }
sserver n2 kernel 198.18.0.2 6001
sserver n1p2 kernel 198.19.1.12 6002
sserver n1p2 pw 198.19.1.12 6003
sserver n2p1 kernel 198.19.2.11 6004
sserver n2p2 pw 198.19.2.12 6005
spath host n1 kernel 198.18.0.2:6001
spath bridge n1p1 kernel 198.19.1.12:6002
spath shm n1p1 pw 198.19.1.12:6003
spath vxlan n1p1 kernel 198.19.2.11:6004
spath remote n1p1 pw 198.19.2.12:6005
sleep 0.5 # the routers' peer links

# The rows: perftest's (TEST:WAY, the way same or across) and sockperf's.
LAT_ROWS="ib_send_lat:same ib_write_lat:same ib_read_lat:same ib_send_lat:across ib_write_lat:across ib_read_lat:across"
BW_ROWS="ib_send_bw:same ib_write_bw:same ib_send_bw:across ib_write_bw:across"
SOCK_ROWS="host bridge shm vxlan remote"
declare -A LAT BW
for s in $SIZES; do
	for r in $LAT_ROWS $BW_ROWS; do
		t=${r%:*}
		if [ "${r#*:}" = same ]; then v=$(perftest "$t" n1p1 n1p2 "$s"); else v=$(perftest "$t" n1p1 n2p1 "$s"); fi
		case $t in *_bw) BW[$r,$s]=$v ;; *) LAT[$r,$s]=$v ;; esac
	done
	for p in $SOCK_ROWS; do
		LAT[$p,$s]=$(sockperf_run $p pp "$s")
		BW[$p,$s]=$(sockperf_run $p tp "$s")
	done
done

# The targets at 64 B: rounds alternating between the RDMA runs and their
# TCP yardstick, host to host.
declare -A RR
for r in $(seq "$ROUNDS"); do
	for k in ib_send_lat:same ib_write_lat:same ib_read_lat:same ib_send_lat:across ib_write_lat:across; do
		t=${k%:*}
		if [ "${k#*:}" = same ]; then v=$(perftest "$t" n1p1 n1p2 64); else v=$(perftest "$t" n1p1 n2p1 64); fi
		RR[$k]="${RR[$k]:-} $v"
	done
	RR[host]="${RR[host]:-} $(sockperf_run host pp 64)"
	RR[wbw]="${RR[wbw]:-} $(perftest ib_write_bw n1p1 n1p2 65536)"
done
declare -A MED
for k in "${!RR[@]}"; do MED[$k]=$(pw_median ${RR[$k]//-/}); done

metric() { lab exec "$1" -- curl -s --max-time 5 http://127.0.0.1:9470/metrics |
	awk -v n="$2" '$1 == n { print $2 }'; }
PAIRS=$(metric n1 podwire_verbs_pairs_total)
RPAIRS=$(metric n1 podwire_verbs_remote_pairs_total)
lab down >/dev/null

name() {
	case $1 in
	*:same) echo "${1%:*} podwire0, same node" ;;
	*:across) echo "${1%:*} podwire0, across nodes" ;;
	host) echo "sockperf TCP host to host" ;;
	bridge) echo "sockperf TCP pods, same node, kernel" ;;
	shm) echo "sockperf TCP pods, same node, podwire" ;;
	vxlan) echo "sockperf TCP pods, across, kernel" ;;
	remote) echo "sockperf TCP pods, across, podwire" ;;
	esac
}
: >"$OUT/lat.dat"
: >"$OUT/bw.dat"
for s in $SIZES; do
	line=$s
	for r in $LAT_ROWS $SOCK_ROWS; do line="$line ${LAT[$r,$s]}"; done
	echo "$line" >>"$OUT/lat.dat"
	line=$s
	for r in $BW_ROWS $SOCK_ROWS; do line="$line ${BW[$r,$s]}"; done
	echo "$line" >>"$OUT/bw.dat"
done
{
	echo "podwire0 (virtual RDMA) and TCP in a 2-node podwire lab. $(date -u +%F), $(nproc) vCPU,"
	echo "$(uname -r), podwire $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)."
	echo
	echo "latency (us): perftest t_typical; sockperf ping-pong one-way p50"
	printf '%-44s' "message size (bytes)"
	for s in $SIZES; do printf ' %9s' "$s"; done
	echo
	for r in $LAT_ROWS $SOCK_ROWS; do
		printf '%-44s' "$(name "$r")"
		for s in $SIZES; do printf ' %9s' "${LAT[$r,$s]}"; done
		echo
	done
	echo
	echo "bandwidth (MiB/s): perftest BW average; sockperf throughput"
	printf '%-44s' "message size (bytes)"
	for s in $SIZES; do printf ' %9s' "$s"; done
	echo
	for r in $BW_ROWS $SOCK_ROWS; do
		printf '%-44s' "$(name "$r")"
		for s in $SIZES; do printf ' %9s' "${BW[$r,$s]}"; done
		echo
	done
	echo
	echo "issue 12's targets, 64 B, medians of $ROUNDS alternating rounds:"
	python3 - "${MED[ib_send_lat:same]}" "${MED[ib_write_lat:same]}" "${MED[ib_read_lat:same]}" \
		"${MED[wbw]}" "${MED[ib_send_lat:across]}" "${MED[ib_write_lat:across]}" \
		"${MED[host]}" <<'PY'
import sys
def f(x):
    try: return float(x)
    except ValueError: return None
s, w, r, bw, xs, xw, h = map(f, sys.argv[1:])
def line(what, v, ok, target):
    print("  %-52s %10s  %-5s (target %s)" % (what, "-" if v is None else "%.3f" % v,
          "-" if v is None else ("met" if ok(v) else "NOT met"), target))
line("same node: ib_send_lat t_typical (us)", s, lambda v: v <= 0.5, "<= 0.5")
line("same node: ib_write_lat t_typical (us)", w, lambda v: v <= 0.5, "<= 0.5")
line("same node: ib_read_lat t_typical (us)", r, lambda v: v <= 0.5, "<= 0.5")
line("same node: ib_write_bw 64 KiB (GB/s)", bw and bw * 1048576 / 1e9, lambda v: v >= 10, ">= 10")
line("across: ib_send_lat / sockperf host to host", xs and h and xs / h, lambda v: v <= 1.3, "<= 1.3")
line("across: ib_write_lat / sockperf host to host", xw and h and xw / h, lambda v: v <= 1.3, "<= 1.3")
print("  (sockperf host to host, one-way p50: %s us; ib_send_lat across %s us, ib_write_lat across %s us)"
      % tuple("-" if v is None else "%.2f" % v for v in (h, xs, xw)))
PY
	echo "podwired counters (n1): $PAIRS queue pairs paired on the node, $RPAIRS across nodes"
} | tee "$OUT/results.txt"

if command -v gnuplot >/dev/null; then
	gnuplot <<GP
set terminal pngcairo size 1200,640 noenhanced
set output "$OUT/rdma.png"
set multiplot layout 1,2 title "podwire0 (perftest) and TCP (sockperf), 2-node podwire lab"
set logscale xy
set grid
set xlabel "message size (bytes)"
set key below font ",8"
set title "latency"
set ylabel "us (t_typical; one-way p50)"
plot "$OUT/lat.dat" using 1:2 w lp t "send_lat same node", "" u 1:3 w lp t "write_lat same node", \
     "" u 1:4 w lp t "read_lat same node", "" u 1:5 w lp t "send_lat across", \
     "" u 1:6 w lp t "write_lat across", "" u 1:7 w lp t "read_lat across", \
     "" u 1:8 w lp dt 2 t "TCP host to host", "" u 1:9 w lp dt 2 t "TCP same node, kernel", \
     "" u 1:10 w lp dt 2 t "TCP same node, podwire", "" u 1:11 w lp dt 2 t "TCP across, kernel", \
     "" u 1:12 w lp dt 2 t "TCP across, podwire"
set title "bandwidth"
set ylabel "MiB/s"
set key below font ",8"
plot "$OUT/bw.dat" using 1:2 w lp t "send_bw same node", "" u 1:3 w lp t "write_bw same node", \
     "" u 1:4 w lp t "send_bw across", "" u 1:5 w lp t "write_bw across", \
     "" u 1:6 w lp dt 2 t "TCP host to host", "" u 1:7 w lp dt 2 t "TCP same node, kernel", \
     "" u 1:8 w lp dt 2 t "TCP same node, podwire", "" u 1:9 w lp dt 2 t "TCP across, kernel", \
     "" u 1:10 w lp dt 2 t "TCP across, podwire"
unset multiplot
GP
	echo "plot: $OUT/rdma.png (data: $OUT/lat.dat, $OUT/bw.dat)"
fi
