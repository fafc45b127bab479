#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A packet interface from podwire-cni for real containers (issue 13): two
# podman containers (runc) running Debian's unmodified dpdk-testpmd, each on
# two networks: the standalone podwire-cni network (eth0, an address) and a
# memif network (net1: a port of podwire-switch, its socket an abstract name
# inside the container's network namespace, a MAC address). Each testpmd
# takes its --vdev from the file the plugin wrote, mounted into the
# container. testpmd A sends a first burst to B's address; both swap the
# addresses of what they receive and send it back (macswap), so frames go
# back and forth through the switch by MAC learning; both sides' counters
# must show it. eth0 keeps working (the host reaches A's address); the
# switch drops nothing as spoofed or unroutable; when the containers exit,
# podman runs DEL, which removes the switch's ports and the files.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman-lib.sh"
pw_cni_init
pw_need podman runc conmon ldd ping busybox timeout
command -v dpdk-testpmd >/dev/null 2>&1 ||
	pw_skip "dpdk-testpmd is not installed (apt-get install dpdk-dev librte-net-memif23)"
PMDS=$(dirname "$(ls /usr/lib/*/dpdk/pmds-*/librte_net_memif.so 2>/dev/null | head -1)")
[ -e "$PMDS/librte_net_memif.so" ] ||
	pw_skip "DPDK's memif driver is not installed (apt-get install librte-net-memif23)"
SWITCH=$PW_BUILD/src/switch/podwire-switch
[ -x "$SWITCH" ] || pw_fail "build first: $SWITCH missing"
pm_init

# ---- The plugin alone: configurations it refuses; no switch to ask.
pw_cni_ns x
memif_conf() { echo "{\"cniVersion\": \"1.0.0\", \"name\": \"$PW_TAG-m\", \"type\": \"podwire-cni\", $1}"; }
pw_cni ADD c1 net1 x "$(memif_conf '"memif": {}, "ipam": {"type": "podwire", "subnet": "198.19.1.0/24"}')"
pw_cni_err 7 "memif with ipam"
pw_cni ADD c1 net1 x "$(memif_conf '"memif": {"socket": "relative.sock"}')"
pw_cni_err 7 "a relative socket name"
pw_cni ADD c1 net1 x "$(memif_conf '"memif": {"id": -1}')"
pw_cni_err 7 "id -1"
pw_cni ADD c1 net1 x "$(memif_conf "\"memif\": {\"switchDir\": \"$PW_DIR/none\"}")"
pw_cni_err 101 "no switch"
pw_cni DEL c1 net1 x "$(memif_conf "\"memif\": {\"switchDir\": \"$PW_DIR/none\"}")"
pw_cni_ok "DEL with no switch (its ports went with it)"

# ---- podwire-switch, and the two networks.
"$SWITCH" -d "$PW_DIR/switch" >"$PW_DIR/switch.log" 2>&1 &
PW_PIDS="$PW_PIDS $!"
for _ in $(seq 100); do [ -S "$PW_DIR/switch/control" ] && break; sleep 0.05; done
[ -S "$PW_DIR/switch/control" ] || pw_fail "podwire-switch did not start"
swctl() { "$PW_CLI" switch --dir "$PW_DIR/switch" "$@"; }
INFO=$PW_DIR/memif
pm_net_standalone "$PW_DIR/no-router.sock"
cat >"$PM_DIR/net/$PW_TAG-dpdk.conflist" <<EOC
{
  "cniVersion": "1.0.0",
  "name": "$PW_TAG-dpdk",
  "plugins": [
    { "type": "podwire-cni", "memif": { "switchDir": "$PW_DIR/switch", "infoDir": "$INFO" } }
  ]
}
EOC
pm_nets_seen "$PW_TAG-sa" "$PW_TAG-dpdk"

# ---- The image: testpmd, the memif driver and the ring mempool it loads,
# and busybox for a shell.
pm_image "podwire-dpdk-$PW_TAG" "$(command -v dpdk-testpmd)" /usr/bin/busybox \
	"$PMDS/librte_net_memif.so" "$PMDS/librte_mempool_ring.so"

# podman passes the container's name as K8S_POD_NAME: the plugin's files for
# container NAME are in $INFO/_/NAME, mounted at /run/podwire/iface.
EAL="--no-pci --no-huge -m 512 --no-shconf"
tp() { # name lcores seconds testpmd-args...
	local name=$1 lcores=$2 secs=$3
	shift 3
	mkdir -p "$INFO/_/$name"
	"${PM[@]}" run -d --name "$name" --network "$PW_TAG-sa:interface_name=eth0" \
		--network "$PW_TAG-dpdk:interface_name=net1" \
		"${ULIMITS[@]}" -v "$INFO/_/$name:/run/podwire/iface:ro" "$IMAGE" \
		/usr/bin/busybox sh -c "exec /usr/bin/busybox timeout -s INT $secs \
		$(command -v dpdk-testpmd) $lcores $EAL --vdev \$(cat /run/podwire/iface/net1.args) \
		-- --stats-period 1 --total-num-mbufs=16384 $*" \
		>"$PW_DIR/$name.id" 2>&1 || pw_fail "container $name: $(cat "$PW_DIR/$name.id")"
}
# Wait for container NAME's testpmd to exit; its log to $PW_DIR/NAME.log.
tp_wait() {
	"${PM[@]}" wait "$1" >/dev/null 2>&1
	"${PM[@]}" logs "$1" >"$PW_DIR/$1.log" 2>&1
}
tp_stat() { # name RX|TX
	awk -v dir="$2-packets:" '/Forward statistics for port 0/ { p = 1; next }
		/Accumulated/ { p = 0 } p && $1 == dir { n = $2 } END { print n }' "$PW_DIR/$1.log"
}
mac_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mac"])' "$INFO/_/$1/net1.json"; }

A=$PW_TAG-a B=$PW_TAG-b
tp "$A" "-l 0,1" 8 --forward-mode=macswap
for _ in $(seq 100); do [ -e "$INFO/_/$A/net1.json" ] && break; sleep 0.1; done
[ -e "$INFO/_/$A/net1.json" ] || pw_fail "no interface file for $A: $(ls -R "$INFO")"
mac_a=$(mac_of "$A")
tp "$B" "-l 0,1 --main-lcore 1" 5 --forward-mode=macswap --tx-first "--eth-peer=0,$mac_a"
mac_b=$(mac_of "$B")

# eth0 works: the host reaches A over the standalone bridge.
ip_a=$("${PM[@]}" inspect -f "{{(index .NetworkSettings.Networks \"$PW_TAG-sa\").IPAddress}}" "$A")
ping -c 1 -W 2 "$ip_a" >/dev/null || pw_fail "eth0 of $A ($ip_a) does not answer"
for _ in $(seq 100); do
	swctl status >"$PW_DIR/status.txt"
	[ "$(grep -c connected "$PW_DIR/status.txt")" = 2 ] && break
	sleep 0.1
done
[ "$(grep -c connected "$PW_DIR/status.txt")" = 2 ] || pw_fail "switch: $(cat "$PW_DIR/status.txt")"

# The switch's counters while it runs (a port goes with its container).
sleep 2
swctl status --json >"$PW_DIR/status.json"
cat "$PW_DIR/status.txt" >&2
python3 - "$PW_DIR/status.json" "$mac_a" "$mac_b" <<'PY' || pw_fail "switch counters: $(cat "$PW_DIR/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
ports = {p["mac"]: p for p in s["ports"]}
assert set(ports) == set(sys.argv[2:]), ports.keys()
for p in ports.values():
    assert p["rx_packets"] >= 1000 and p["tx_packets"] >= 1000, p
    for k in ("spoofed", "no_dest", "rx_bad", "tx_bad"):
        assert p[k] == 0, (k, p)
PY
tp_wait "$B"
tp_wait "$A"
for c in "$A" "$B"; do
	rx=$(tp_stat "$c" RX) tx=$(tp_stat "$c" TX)
	pw_log "$c: testpmd received ${rx:-?}, sent ${tx:-?}"
	[ "${rx:-0}" -ge 1000 ] && [ "${tx:-0}" -ge 1000 ] ||
		pw_fail "$c: too little traffic: $(tail -30 "$PW_DIR/$c.log")"
done

# DEL (podman runs it when a container exits) removed the ports and files.
for _ in $(seq 50); do
	swctl status --json >"$PW_DIR/status.json"
	grep -q '"ports":\[\]' "$PW_DIR/status.json" && break
	sleep 0.1
done
python3 -c 'import json,sys; assert not json.load(open(sys.argv[1]))["ports"]' "$PW_DIR/status.json" ||
	pw_fail "ports left after podman rm: $(cat "$PW_DIR/status.json")"
[ -z "$(find "$INFO" -type f)" ] || pw_fail "files left: $(find "$INFO" -type f)"
pw_log "ok: $A ($mac_a) and $B ($mac_b) through podwire-switch; eth0 $ip_a"
exit 0
