#!/usr/bin/env bash
# nginx with 2 workers and sendfile on, pod to pod under the preload; curl
# checks content byte for byte, wrk checks it holds up under load.
set -u
. "$(dirname "$0")/lib.sh"
pw_need nginx wrk curl
trap 'cat $PW_DIR/pw.log $PW_DIR/nginx-error.log 2>/dev/null | tail -30; pw_cleanup' EXIT
pw_e2e_init nginx
pw_pod a 11
pw_pod b 12
pw_router_metrics

pw_www
head -c 1000000 /dev/urandom >"$www/big.bin"
pw_nginx_conf nginx 2 <<CONF
sendfile on;
tcp_nopush on;
keepalive_requests 100000;
server {
	listen $PW_IP_b:8080;
	root $www;
}
CONF
pw_bg b nginx -c "$PW_DIR/nginx.conf" -e "$PW_DIR/nginx-error.log"
pw_wait_listen b 8080

for f in index.html big.bin; do
	pw_in a curl -sS --max-time 10 -o "$PW_DIR/got-$f" "http://$PW_IP_b:8080/$f" ||
		{ tail -5 "$PW_DIR/nginx-error.log" >&2; pw_fail "curl $f"; }
	cmp -s "$www/$f" "$PW_DIR/got-$f" || pw_fail "curl $f: content differs"
done
out=$(pw_in a wrk -t 2 -c 16 -d 2 "http://$PW_IP_b:8080/index.html" 2>&1) || pw_fail "wrk: $out"
pw_log "$(echo "$out" | grep -E 'Requests/sec')"
echo "$out" | grep -q "Non-2xx" && pw_fail "wrk saw errors: $out"
echo "$out" | grep -qE "Socket errors" && pw_fail "wrk saw socket errors: $out"
reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
[ "${reqs:-0}" -gt 1000 ] || pw_fail "wrk completed only ${reqs:-0} requests: $out"

claims=$(pw_metric podwire_claims_total)
pw_log "claims=$claims"
[ "${claims:-0}" -ge 18 ] || pw_fail "only ${claims:-0} connections went over podwire (curl 2 + wrk 16)"
exit 0
