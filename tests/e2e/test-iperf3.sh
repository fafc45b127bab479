#!/usr/bin/env bash
# iperf3 pod to pod under the preload: 4 parallel streams, then reverse.
# Checks that every byte sent was received and that podwire carried them.
set -u
. "$(dirname "$0")/lib.sh"
pw_need iperf3 curl python3
pw_e2e_init iperf3
pw_pod a 11
pw_pod b 12
pw_router_metrics

check() { # json-file label
	python3 - "$1" "$2" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit(f"FAIL: {sys.argv[2]}: iperf3 error: {r['error']}")
s, rcv = r["end"]["sum_sent"], r["end"]["sum_received"]
if s["bytes"] <= 0 or rcv["bytes"] <= 0:
    sys.exit(f"FAIL: {sys.argv[2]}: nothing moved: {s} {rcv}")
# A TCP stream loses nothing: what the receiver counted was sent.
if rcv["bytes"] > s["bytes"]:
    sys.exit(f"FAIL: {sys.argv[2]}: received {rcv['bytes']} > sent {s['bytes']}")
print(f"# {sys.argv[2]}: {rcv['bits_per_second']/1e9:.2f} Gbit/s, {rcv['bytes']} bytes")
PY
}

pw_bg b iperf3 -s -B "$PW_IP_b" -p 5201
pw_wait_listen b 5201
ino=$(pw_listener_ino b 5201)
pw_in a iperf3 -c "$PW_IP_b" -p 5201 -t 2 -P 4 --json >"$PW_DIR/p4.json" 2>&1 ||
	pw_fail "iperf3 -P 4: $(tail -5 "$PW_DIR/p4.json")"
check "$PW_DIR/p4.json" "-P 4"
pw_wait_relisten b 5201 "$ino"
pw_in a iperf3 -c "$PW_IP_b" -p 5201 -t 2 -R --json >"$PW_DIR/r.json" 2>&1 ||
	pw_fail "iperf3 -R: $(tail -5 "$PW_DIR/r.json")"
check "$PW_DIR/r.json" "-R"

claims=$(pw_metric podwire_claims_total)
bytes=$(pw_metric podwire_bytes_total)
pw_log "claims=$claims bytes=$bytes"
# -P 4: a control connection and 4 streams; -R: control and 1 stream.
[ "${claims:-0}" -ge 7 ] || pw_fail "only ${claims:-0} of 7 connections went over podwire"
[ "${bytes:-0}" -gt 100000000 ] || pw_fail "only ${bytes:-0} bytes went over podwire"
exit 0
