#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Seed 000's table (chapter 4: round trips of 96-byte frames through the
# data paths of DPDK pods) on real components, with podwire's rows beside
# it (issue 13). Each row is a path from podwire-pktgen to a reflector that
# swaps the addresses (Debian's dpdk-testpmd --forward-mode=macswap) and
# back, or from one port to another:
#   a   Linux bridge: veth, a kernel bridge, veth; testpmd reads its veth with
#       net_af_packet
#   b   testpmd in a pod over memif (pktgen the client; not SR-IOV: no NIC here)
#   e   testpmd in a pod over vhost-user (pktgen's virtio_user to net_vhost)
#   c   OvS-DPDK between two vhost-user ports (pktgen on both)
#   d   OvS-DPDK + vhost-user + a testpmd pod
#   s   podwire-switch + memif + a testpmd pod (the chain of d)
#   f   podwire-switch forwarding from one memif port to another
# For each: the loss-free rate (a binary search), then round trips at 10, 50
# and 90% of it and at an overload point (the seed's 10 Mpps, or as fast as
# the generator goes), with the CPU other processes took meanwhile; then d
# and s at 100 kpps in alternating rounds (the chain target), and an idle
# switch with 10 testpmd pods connected (CPU ticks over 3 s).
#
# Usage: tools/bench-nfv.sh [-o DIR] [-s SECONDS] [-r ROUNDS] [--rows LIST]
#   -o  results.md, nfv.dat, nfv.png and each run's JSON (default build/bench-nfv)
#   -s  seconds per measured point (default 2)
#   -r  rounds of the 100 kpps chain comparison (default 3)
#   --rows "a b e c d s f"  which rows (default all)
# Needs root, dpdk-testpmd with the memif, vhost, virtio and af_packet
# drivers, OvS-DPDK (openvswitch-switch-dpdk) for c and d, gnuplot for the
# plot. Uses no hugepages (--no-huge) but for OvS, whose EAL runs
# --in-memory: 800 more 2 MiB pages while it runs, given back at the end.
set -u
OUT="" SECS=2 ROUNDS=3 ROWS="a b e c d s f"
while [ $# -gt 0 ]; do
	case $1 in
	-o) OUT=$2; shift 2 ;;
	-s) SECS=$2; shift 2 ;;
	-r) ROUNDS=$2; shift 2 ;;
	--rows) ROWS=$2; shift 2 ;;
	-h|--help) sed -n '3,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench-nfv: unknown option $1 (see --help)" >&2; exit 2 ;;
	esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PW_BUILD=${PW_BUILD:-$ROOT/build}
PG=$PW_BUILD/src/pktgen/podwire-pktgen
SW=$PW_BUILD/src/switch/podwire-switch
CLI=$PW_BUILD/src/cli/podwire
OUT=${OUT:-$PW_BUILD/bench-nfv}
[ "$(id -u)" = 0 ] || { echo "bench-nfv: needs root (namespaces, DPDK)" >&2; exit 77; }
for c in dpdk-testpmd python3 ip; do
	command -v $c >/dev/null || { echo "bench-nfv: $c is not installed (tools/deps.sh test)" >&2; exit 77; }
done
[ -x "$PG" ] && [ -x "$SW" ] || { echo "bench-nfv: build first" >&2; exit 1; }
"$PG" --tx dpdk:0 2>&1 | grep -q "no DPDK" && { echo "bench-nfv: podwire-pktgen built without DPDK" >&2; exit 1; }
OVS=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
mkdir -p "$OUT"
rm -f "$OUT"/*.json
TAG=pwnfv$$
TMP=$(mktemp -d /tmp/podwire-bench-nfv.XXXXXX)
PIDS=""
cleanup() {
	local p
	for p in $PIDS; do kill -INT "$p" 2>/dev/null; done
	sleep 0.5
	for p in $PIDS; do kill -KILL "$p" 2>/dev/null; done
	ovs_down
	[ -n "${HP_OLD:-}" ] && echo "$HP_OLD" >/proc/sys/vm/nr_hugepages
	for n in gen pod br; do ip netns del "$TAG-$n" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
log() { echo "bench-nfv: $*" >&2; }

EAL="--no-pci --no-huge -m 512 --no-shconf"
# A testpmd pod reflecting frames (forwarding lcore on CPU 1; the generator
# is on CPU 0), its pid in RPID: reflect NAME NETNS|"" EAL-ARGS...
reflect() {
	local name=$1 ns=$2
	shift 2
	${ns:+ip netns exec "$TAG-$ns"} dpdk-testpmd -l 0,1 $EAL --file-prefix "$TAG-$name" "$@" \
		-- --forward-mode=macswap --stats-period 5 --total-num-mbufs=16384 \
		>"$TMP/$name.log" 2>&1 &
	RPID=$!
	PIDS="$PIDS $RPID"
}
stop() { # pids...
	local p
	for p in "$@"; do kill -INT "$p" 2>/dev/null; done
	for p in "$@"; do wait "$p" 2>/dev/null; done
}
# pg ROW JSON ARGS...: the generator on CPU 0 (in netns gen for ROW a).
pg() {
	local row=$1 out=$2 ns=""
	shift 2
	[ "$row" = a ] && ns=gen
	${ns:+ip netns exec "$TAG-$ns"} taskset -c 0 "$PG" --json --seconds "$SECS" --warmup 0.5 "$@" \
		>"$OUT/$out.json" 2>"$TMP/$out.err" || {
		log "$row: $(cat "$TMP/$out.err")"
		rm -f "$OUT/$out.json"
		return 1
	}
}
waitfor() { # path: a socket to appear
	for _ in $(seq 200); do [ -S "$1" ] && return 0; sleep 0.05; done
	log "no $1"
	return 1
}
sw_start() { # args... ($SWCPU: pin it)
	${SWCPU:+taskset -c "$SWCPU"} "$SW" -d "$TMP/sw" "$@" >>"$TMP/switch.log" 2>&1 &
	SWPID=$!
	PIDS="$PIDS $SWPID"
	waitfor "$TMP/sw/control"
}
sw_connected() { # port [tries of 50 ms]
	for _ in $(seq "${2:-200}"); do
		"$CLI" switch --dir "$TMP/sw" status --json | grep -q "\"name\":\"$1\"[^}]*\"state\":\"connected\"" && return 0
		sleep 0.05
	done
	log "switch port $1 did not connect"
	return 1
}

# ---- OvS-DPDK with a private database, no hugepages, PMD on CPU 1 and a
# load-based sleep (pmd-maxsleep) so that its PMD yields CPU when idle.
OVSDIR=$TMP/ovs
V() { ovs-vsctl --db="unix:$OVSDIR/db.sock" "$@"; }
ovs_up() {
	[ -x "$OVS" ] || { log "OvS-DPDK is not installed (apt-get install openvswitch-switch-dpdk)"; return 1; }
	mkdir -p "$OVSDIR"
	export OVS_RUNDIR=$OVSDIR OVS_LOGDIR=$OVSDIR OVS_DBDIR=$OVSDIR
	ovsdb-tool create "$OVSDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema || return 1
	# From here on, ovs_down (and the exit's cleanup) stops what started.
	OVS_UP=1
	ovsdb-server "$OVSDIR/conf.db" --remote="punix:$OVSDIR/db.sock" --pidfile="$OVSDIR/ovsdb.pid" \
		--unixctl="$OVSDIR/ovsdb.ctl" --log-file="$OVSDIR/ovsdb.log" --detach || return 1
	V --no-wait init
	# OvS runs its EAL --in-memory, which cannot be --no-huge: 2 MiB pages
	# for it, reserved here and given back at the end.
	if [ -z "${HP_OLD:-}" ]; then
		HP_OLD=$(cat /proc/sys/vm/nr_hugepages)
		echo $((HP_OLD + 800)) >/proc/sys/vm/nr_hugepages
	fi
	mkdir -p "$OVSDIR/huge"
	mountpoint -q "$OVSDIR/huge" || mount -t hugetlbfs -o pagesize=2M nodev "$OVSDIR/huge" || return 1
	V --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-lcore-mask=0x1 \
		other_config:pmd-cpu-mask=0x2 other_config:pmd-maxsleep=50 \
		other_config:dpdk-socket-mem=512 "other_config:dpdk-hugepage-dir=$OVSDIR/huge" \
		"other_config:dpdk-extra=--no-pci --file-prefix=$TAG-ovs"
	"$OVS" "unix:$OVSDIR/db.sock" --pidfile="$OVSDIR/vswitchd.pid" --unixctl="$OVSDIR/vswitchd.ctl" \
		--log-file="$OVSDIR/vswitchd.log" --detach || { log "ovs-vswitchd: $(tail -5 "$OVSDIR/vswitchd.log")"; return 1; }
	V add-br "$TAG" -- set bridge "$TAG" datapath_type=netdev || return 1
}
ovs_port() { # name ofport: a dpdkvhostuserclient port at $OVSDIR/NAME.sock
	V add-port "$TAG" "$1" -- set Interface "$1" type=dpdkvhostuserclient \
		"options:vhost-server-path=$OVSDIR/$1.sock" "ofport_request=$2"
}
ovs_flows() { # a b: every frame from port a to b and back
	ovs-ofctl del-flows "$TAG" &&
		ovs-ofctl add-flow "$TAG" "in_port=$1,actions=output:$2" &&
		ovs-ofctl add-flow "$TAG" "in_port=$2,actions=output:$1"
}
ovs_down() {
	[ -n "${OVS_UP:-}" ] || return 0
	V del-br "$TAG" 2>/dev/null
	for p in vswitchd ovsdb; do
		[ -e "$OVSDIR/$p.pid" ] && kill "$(cat "$OVSDIR/$p.pid")" 2>/dev/null
	done
	sleep 0.5
	ip link del "$TAG" 2>/dev/null
	umount "$OVSDIR/huge" 2>/dev/null
	rm -rf "$OVSDIR"
	OVS_UP=""
}
# The generator's EAL for virtio_user ports: as a vhost-user server (OvS's
# ports are clients), or a client of a net_vhost pod.
vu() { # name socket [server]
	echo "--vdev=virtio_user$1,path=$2,queues=1,queue_size=1024${3:+,server=1}"
}
PGEAL="-l 0 $EAL --single-file-segments --file-prefix $TAG-pg"

# ---- the rows
row_a() {
	for n in gen pod br; do ip netns add "$TAG-$n" || return 1; done
	ip -n "$TAG-br" link add br0 type bridge && ip -n "$TAG-br" link set br0 up || return 1
	ip link add g0 netns "$TAG-gen" type veth peer name bg netns "$TAG-br" || return 1
	ip link add p0 netns "$TAG-pod" type veth peer name bp netns "$TAG-br" || return 1
	for x in gen:g0 pod:p0 br:bg br:bp; do ip -n "$TAG-${x%%:*}" link set "${x#*:}" up; done
	ip -n "$TAG-br" link set bg master br0 && ip -n "$TAG-br" link set bp master br0
	reflect a pod --vdev=net_af_packet0,iface=p0
	sleep 2
	pg a a --tx af_packet:g0 --search
	stop "$RPID"
	for n in gen pod br; do ip netns del "$TAG-$n"; done
}
row_b() {
	reflect b "" "--vdev=net_memif0,role=server,id=0,socket=$TMP/b.sock,socket-abstract=no"
	waitfor "$TMP/b.sock" && pg b b --tx "memif:$TMP/b.sock" --search
	stop "$RPID"
}
row_e() {
	reflect e "" "--vdev=net_vhost0,iface=$TMP/e.sock,queues=1"
	waitfor "$TMP/e.sock" && pg e e --tx dpdk:0 --eal "$PGEAL $(vu 0 "$TMP/e.sock")" --search
	stop "$RPID"
}
row_c() {
	ovs_up && ovs_port vhu0 1 && ovs_port vhu1 2 && ovs_flows 1 2 || { ovs_down; return 1; }
	pg c c --tx dpdk:0 --rx dpdk:1 --eal "$PGEAL $(vu 0 "$OVSDIR/vhu0.sock" 1) $(vu 1 "$OVSDIR/vhu1.sock" 1)" --search
	ovs_down
}
# d: the generator on vhu0, the pod on vhu1.
d_up() {
	ovs_up && ovs_port vhu0 1 && ovs_port vhu1 2 && ovs_flows 1 2 || { ovs_down; return 1; }
	reflect d "" --single-file-segments "$(vu 0 "$OVSDIR/vhu1.sock" 1)"
	DPOD=$RPID
	sleep 3
}
d_down() { stop "$DPOD"; ovs_down; }
row_d() {
	d_up || return 1
	pg d d --tx dpdk:0 --eal "$PGEAL $(vu 0 "$OVSDIR/vhu0.sock" 1)" --search
	d_down
}
s_up() {
	sw_start -p "g,socket=$TMP/g.sock" -p "p,socket=$TMP/p.sock" -c g,p || return 1
	reflect s "" "--vdev=net_memif0,role=client,id=0,socket=$TMP/p.sock,socket-abstract=no"
	SPOD=$RPID
	sw_connected p
}
s_down() { stop "$SPOD"; stop "$SWPID"; }
row_s() {
	s_up && pg s s --tx "memif:$TMP/g.sock" --search
	s_down
}
row_f() {
	# The switch on CPU 1, the generator on CPU 0: one core each.
	SWCPU=1 sw_start -p "a,socket=$TMP/fa.sock" -p "b,socket=$TMP/fb.sock" -c a,b || return 1
	pg f f --tx "memif:$TMP/fa.sock" --rx "memif:$TMP/fb.sock" --search
	stop "$SWPID"
}

# The chain target: d and s at 100 kpps, alternating.
chain() {
	for i in $(seq "$ROUNDS"); do
		if d_up; then
			pg d "chain-d-$i" --tx dpdk:0 --eal "$PGEAL $(vu 0 "$OVSDIR/vhu0.sock" 1)" --rate 100000
			d_down
		fi
		s_up && pg s "chain-s-$i" --tx "memif:$TMP/g.sock" --rate 100000
		s_down
	done
}

# Idle: 10 testpmd pods connected to the switch, not forwarding (interactive
# testpmd with no start: its ports are up, its lcores idle).
idle() {
	local args=() pods="" i
	for i in $(seq 10); do args+=(-p "i$i,socket=$TMP/i$i.sock"); done
	sw_start "${args[@]}" || return 1
	# Their stdin: a FIFO we hold open, so that the prompt waits forever.
	mkfifo "$TMP/stdin" && exec 9<>"$TMP/stdin" || return 1
	for i in $(seq 10); do
		dpdk-testpmd -l 0,1 --no-pci --no-huge -m 128 --no-shconf <"$TMP/stdin" \
			--file-prefix "$TAG-i$i" \
			"--vdev=net_memif0,role=client,id=0,socket=$TMP/i$i.sock,socket-abstract=no" \
			-- -i --total-num-mbufs=2048 >"$TMP/idle-$i.log" 2>&1 &
		pods="$pods $!"
		PIDS="$PIDS $!"
	done
	for i in $(seq 10); do sw_connected "i$i" 1200 || return 1; done
	sleep 1
	local t0 t1
	t0=$(awk '{ print $14 + $15 }' "/proc/$SWPID/stat")
	sleep 3
	t1=$(awk '{ print $14 + $15 }' "/proc/$SWPID/stat")
	IDLE_TICKS=$((t1 - t0))
	"$CLI" switch --dir "$TMP/sw" status >"$OUT/idle-status.txt"
	stop $pods
	stop "$SWPID"
	exec 9>&-
}

for row in $ROWS; do
	log "row $row"
	"row_$row" || log "row $row failed"
done
case " $ROWS " in *" d "*) case " $ROWS " in *" s "*) log "chain at 100 kpps, $ROUNDS rounds"; chain ;; esac ;; esac
IDLE_TICKS=""
log "idle switch, 10 pods"
idle || log "idle failed"

# ---- the table and the plot
python3 - "$OUT" "$IDLE_TICKS" "$ROUNDS" <<'PY'
import glob, json, os, statistics, sys
out, idle, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = {
 "a": ("Linux bridge (veth, kernel bridge, veth; testpmd pod on net_af_packet)", "8700"),
 "b": ("testpmd pod over memif (not SR-IOV: no NIC here)", "800 (SR-IOV VF)"),
 "e": ("testpmd pod over vhost-user (not SR-IOV)", "800 (Multus + SR-IOV)"),
 "c": ("OvS-DPDK between two vhost-user ports", "800"),
 "d": ("OvS-DPDK + vhost-user + testpmd pod (3 pollers on 2 vCPUs)", "5000"),
 "s": ("podwire-switch + memif + testpmd pod (the chain of d)", "-"),
 "f": ("podwire-switch, memif port to memif port (no reflector)", "-"),
}
rows, dat = [], []
def pt(js, name):
    return next((x for x in js if x["point"] == name), None)
for key in "abecdsf":
    f = os.path.join(out, key + ".json")
    if not os.path.exists(f):
        continue
    js = json.load(open(f))
    mx = pt(js, "max")
    trials = [x for x in js if x["point"] in ("max", "trial") and x["lost"] == 0 and x["sent"] > 0]
    ndr = max((x["sent_pps"] for x in trials), default=0)
    fwd = mx["received"] / max(1e-9, mx["sent"] / max(1.0, mx["sent_pps"])) if mx and mx["sent"] else 0
    cells = []
    for p in ("10%", "50%", "90%", "overload"):
        x = pt(js, p)
        cells.append(x)
    rows.append((key, ndr, fwd, cells))
    dat.append((key, [c["p50_us"] if c else None for c in cells]))
with open(os.path.join(out, "results.md"), "w") as o:
    o.write("| row | path | loss-free rate (Mpps) | at max offered: delivered Mpps | p50 / p99 us at 10% | at 50% | at 90% | overload: offered Mpps, delivered %, p50 / p99 us | others' CPU (max) | seed 000 (us, at 10-11 Mpps) |\n")
    o.write("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    for key, ndr, fwd, cells in rows:
        def c(x):
            return "%.1f / %.1f" % (x["p50_us"], x["p99_us"]) if x else "-"
        ov = cells[3]
        ovs = "%.2f, %.0f%%, %.0f / %.0f" % (ov["offered_pps"] / 1e6, 100.0 * ov["received"] / max(1, ov["sent"]), ov["p50_us"], ov["p99_us"]) if ov else "-"
        oth = max((x["others_cpu"] for x in cells if x), default=0)
        o.write("| %s | %s | %.3f | %.3f | %s | %s | %s | %s | %.0f%% | %s |\n" % (
            key, names[key][0], ndr / 1e6, fwd / 1e6, c(cells[0]), c(cells[1]), c(cells[2]), ovs, 100 * oth, names[key][1]))
    o.write("| f' | OVN | cannot be built here: no second host, no OvS kernel module | | | | | | | 10000 |\n")
    ch = {}
    for k in "ds":
        v = [json.load(open(f))[0] for f in sorted(glob.glob(os.path.join(out, "chain-%s-*.json" % k)))]
        if v:
            ch[k] = v
    if ch:
        o.write("\nChain at 100 kpps, %d alternating rounds (median p50 / p99 us, delivered %%):\n\n" % rounds)
        for k, v in ch.items():
            o.write("- %s: p50 %s us (median %.1f), p99 median %.1f us, delivered %.1f%%\n" % (
                names[k][0], ", ".join("%.1f" % x["p50_us"] for x in v),
                statistics.median(x["p50_us"] for x in v), statistics.median(x["p99_us"] for x in v),
                100.0 * sum(x["received"] for x in v) / max(1, sum(x["sent"] for x in v))))
    if idle:
        o.write("\nIdle podwire-switch with 10 testpmd pods connected: %s CPU ticks in 3 s.\n" % idle)
with open(os.path.join(out, "nfv.dat"), "w") as o:
    o.write("# point " + " ".join(k for k, _ in dat) + "\n")
    for i, p in enumerate(("10%", "50%", "90%", "overload")):
        o.write("%d %s\n" % (i, " ".join("%.3f" % v[i] if v[i] else "NaN" for _, v in dat)))
print(open(os.path.join(out, "results.md")).read())
PY
if command -v gnuplot >/dev/null && [ "$(wc -l <"$OUT/nfv.dat")" -gt 1 ]; then
	cols=$(head -1 "$OUT/nfv.dat" | cut -d' ' -f3-)
	plot="" i=2
	for k in $cols; do plot="$plot${plot:+, }'$OUT/nfv.dat' using 1:$i with linespoints title '$k'"; i=$((i + 1)); done
	gnuplot -e "set terminal png size 900,500; set output '$OUT/nfv.png'; set logscale y; \
		set ylabel 'round trip p50 (us)'; set xtics ('10 pct' 0, '50 pct' 1, '90 pct' 2, 'overload' 3); \
		set xlabel 'offered load, against each path''s loss-free rate'; set key outside; plot $plot" &&
		log "plot: $OUT/nfv.png"
fi
