#!/usr/bin/env bash
# redis-server and redis-benchmark -P 16 pod to pod under the preload.
set -u
. "$(dirname "$0")/lib.sh"
pw_need redis-server redis-benchmark redis-cli curl
pw_e2e_init redis
pw_pod a 11
pw_pod b 12
pw_router_metrics

pw_bg b redis-server --bind "$PW_IP_b" --port 6379 --save "" --appendonly no \
	--protected-mode no --dir "$PW_DIR"
pw_wait_listen b 6379
out=$(pw_in a redis-cli -h "$PW_IP_b" -p 6379 set podwire works 2>&1)
[ "$out" = OK ] || pw_fail "redis-cli set: $out"
out=$(pw_in a redis-cli -h "$PW_IP_b" -p 6379 get podwire 2>&1)
[ "$out" = works ] || pw_fail "redis-cli get: $out"
out=$(pw_in a redis-benchmark -h "$PW_IP_b" -p 6379 -P 16 -t set,get -n 200000 -q 2>&1) ||
	pw_fail "redis-benchmark: $out"
pw_log "$(echo "$out" | tr '\r' '\n' | grep -E '^(SET|GET):' | tail -2 | tr '\n' ' ')"
echo "$out" | tr '\r' '\n' | grep -qE '^SET: .*requests per second' || pw_fail "no SET result: $out"
echo "$out" | tr '\r' '\n' | grep -qE '^GET: .*requests per second' || pw_fail "no GET result: $out"
out=$(pw_in a redis-cli -h "$PW_IP_b" -p 6379 dbsize 2>&1)
[ "${out:-0}" -ge 2 ] || pw_fail "dbsize after the benchmark: $out"

claims=$(pw_metric podwire_claims_total)
pw_log "claims=$claims"
[ "${claims:-0}" -ge 50 ] || pw_fail "only ${claims:-0} connections went over podwire"
exit 0
