#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# nginx as a reverse proxy to another nginx, both legs accelerated, pod to
# pod to pod: nginx writes with EPOLLET and takes a short write to mean
# "wait for the next EPOLLOUT edge". A 50 MB body, checksummed, several
# times, both ways of proxying (buffered and not); before the EPOLLOUT fix
# the download stalled after 1 to 23 MB.
set -u
. "$(dirname "$0")/lib.sh"
pw_need nginx curl sha256sum
pw_e2e_init nginxproxy
pw_pod a 11
pw_pod b 12
pw_pod c 13
pw_router_metrics
trap 'tail -n 20 $PW_DIR/*-error.log 2>/dev/null; pw_cleanup' EXIT

www=$PW_DIR/www
mkdir -p "$www" "$PW_DIR/tmp"
chmod 755 "$www" "$PW_DIR/tmp"
head -c 50000000 /dev/urandom >"$www/big.bin"
want=$(sha256sum <"$www/big.bin" | cut -d' ' -f1)

conf() { # name listen body
	pw_nginx_conf "$1" 2 <<CONF
sendfile on;
server {
	listen $2;
	$3
}
CONF
}
conf backend "$PW_IP_c:8080" "root $www;"
conf proxy "$PW_IP_b:8080" "location /buffered/ { proxy_pass http://$PW_IP_c:8080/; }
		location /streamed/ { proxy_pass http://$PW_IP_c:8080/; proxy_buffering off; }"
pw_bg c nginx -c "$PW_DIR/backend.conf"
pw_bg b nginx -c "$PW_DIR/proxy.conf"
pw_wait_listen c 8080
pw_wait_listen b 8080

c0=$(pw_metric podwire_claims_total)
for mode in buffered streamed; do
	for i in 1 2; do
		t0=$(date +%s.%N)
		got=$(pw_in a curl -sS --max-time 60 "http://$PW_IP_b:8080/$mode/big.bin" | sha256sum |
			cut -d' ' -f1)
		pw_log "$mode $i: $(echo "$(date +%s.%N) - $t0" | bc 2>/dev/null || echo ?) s"
		[ "$got" = "$want" ] || pw_fail "$mode download $i: sha256 $got, want $want"
	done
done
c1=$(pw_metric podwire_claims_total)
pw_log "claims ${c0:-0} -> ${c1:-0}"
# Each download: client -> proxy and proxy -> backend.
[ $(( ${c1:-0} - ${c0:-0} )) -ge 8 ] || pw_fail "not both legs accelerated: claims +$(( ${c1:-0} - ${c0:-0} ))"
echo ok
