#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# podwire-pktgen against real dpdk-testpmd reflecting its frames
# (--forward-mode=macswap), over each kind of port it has (issue 13):
#  1. memif, through podwire-switch to a testpmd pod;
#  2. memif, out of one switch port and back in at another (no reflector);
#  3. AF_PACKET on a veth whose far end a testpmd pod reads with net_af_packet;
#  4. DPDK: virtio_user to a testpmd pod serving vhost-user (net_vhost).
# Each at a low rate, for a second: frames must come back, all of them ours,
# their round trips in order (p50 <= p99 <= max), the generator's report
# whole. Its figures are not judged here: docs/BENCHMARKS.md has them.
set -u
. "$(dirname "$0")/../switch/lib.sh"
sw_init
PG=$PW_BUILD/src/pktgen/podwire-pktgen
[ -x "$PG" ] || pw_fail "build first: $PG missing"

# pg NAME ARGS...: run the generator; its JSON in $SW_DIR/NAME.json, checked.
pg() {
	local name=$1
	shift
	timeout 60 "$PG" --json --seconds 1 --warmup 0.3 --rate 5000 "$@" >"$SW_DIR/$name.json" \
		2>"$SW_DIR/$name.log" || pw_fail "$name: podwire-pktgen $*: $(cat "$SW_DIR/$name.log")"
	python3 - "$SW_DIR/$name.json" "$name" "${PG_MIN:-0.5}" <<'PY' || pw_fail "$name: $(cat "$SW_DIR/$name.json")"
import json, sys
r = json.load(open(sys.argv[1]))[0]
print("# %s: sent %d, received %d, p50 %.1f us, p99 %.1f us, max %.1f us" % (
    sys.argv[2], r["sent"], r["received"], r["p50_us"], r["p99_us"], r["max_us"]), file=sys.stderr)
assert r["sent"] > 1000, "too few sent"
assert r["received"] >= float(sys.argv[3]) * r["sent"], "too few came back"
assert r["stray"] == 0, "frames not ours"
assert 0 < r["p50_us"] <= r["p99_us"] <= r["max_us"] + 1, "percentiles out of order"
PY
}
# A testpmd pod reflecting frames until stopped.
reflector() { # log ns args...
	local log=$1 ns=$2
	shift 2
	tp_bg "$log" "$ns" --main-lcore 1 "$@" -- --forward-mode=macswap --stats-period 1 \
		--total-num-mbufs=16384
}
stop_reflectors() { tp_stop $SW_PIDS; SW_PIDS=""; }
# Wait until switch port NAME is connected.
connected() {
	for _ in $(seq 100); do [ "$(sw_field "$1" state)" = connected ] && return 0; sleep 0.1; done
	pw_fail "port $1 did not connect"
}

sw_ns pod
# 1, 2: memif through the switch.
sw_start -p "g,socket=$SW_DIR/g.sock" -p "r,socket=$SW_DIR/r.sock" -c g,r
reflector memif.log pod "--vdev=net_memif0,role=client,id=0,socket=$SW_DIR/r.sock,socket-abstract=no"
connected r
pg memif --tx "memif:$SW_DIR/g.sock"
stop_reflectors
sw_stop
sw_start -p "a,socket=$SW_DIR/a.sock" -p "b,socket=$SW_DIR/b.sock" -c a,b
PG_MIN=0.9 pg forward --tx "memif:$SW_DIR/a.sock" --rx "memif:$SW_DIR/b.sock"
sw_stop

# 3: AF_PACKET on a veth into the pod.
sw_ns gen
ip link add "$SW_TAG-g" type veth peer name "$SW_TAG-p" || pw_fail "veth"
ip link set "$SW_TAG-g" netns "$SW_TAG-gen" && ip link set "$SW_TAG-p" netns "$SW_TAG-pod" ||
	pw_fail "veth into the namespaces"
for x in gen:g pod:p; do
	ip -n "$SW_TAG-${x%%:*}" link set "$SW_TAG-${x#*:}" up || pw_fail "link up"
done
reflector afp.log pod "--vdev=net_af_packet0,iface=$SW_TAG-p"
sleep 2
ip netns exec "$SW_TAG-gen" timeout 60 "$PG" --json --seconds 1 --warmup 0.3 --rate 5000 \
	--tx "af_packet:$SW_TAG-g" >"$SW_DIR/afp.json" 2>"$SW_DIR/afp-pg.log" ||
	pw_fail "af_packet: $(cat "$SW_DIR/afp-pg.log")"
# (A kernel interface also carries the kernel's own frames: strays allowed.)
python3 - "$SW_DIR/afp.json" <<'PY' || pw_fail "af_packet: $(cat "$SW_DIR/afp.json")"
import json, sys
r = json.load(open(sys.argv[1]))[0]
print("# afp: sent %d, received %d, stray %d, p50 %.1f us, p99 %.1f us" % (
    r["sent"], r["received"], r["stray"], r["p50_us"], r["p99_us"]), file=sys.stderr)
assert r["sent"] > 1000 and r["received"] >= 0.5 * r["sent"]
assert 0 < r["p50_us"] <= r["p99_us"]
PY
stop_reflectors

# 4: DPDK (virtio_user) to a vhost-user pod.
reflector vhost.log pod "--vdev=net_vhost0,iface=$SW_DIR/vhost.sock,queues=1"
for _ in $(seq 100); do [ -S "$SW_DIR/vhost.sock" ] && break; sleep 0.1; done
pg vhost --tx dpdk:0 --eal "-l 0 --no-pci --no-huge -m 512 --no-shconf --single-file-segments \
--file-prefix $SW_TAG-pg --vdev=virtio_user0,path=$SW_DIR/vhost.sock,queues=1"
stop_reflectors
echo "test-pktgen: ok"
