#!/usr/bin/env bash
# Reuse (PRELOAD.md, "Reuse"), pod to pod with real programs: wrk with a
# connection per request ("Connection: close") against nginx. Every request
# is answered; the router makes a channel only for the first connections
# (its claims stay near wrk's concurrency, not the thousands of requests),
# and nginx's access log shows the reused channels as a few client ports
# used over and over (and the few connects that found no parked channel). With PODWIRE_REUSE=0 (and PODWIRE_ADAPT=0), every
# connection is the router's again. Then nginx reloads (SIGHUP: new workers, the old ones end)
# under the same load, and no request fails.
set -u
. "$(dirname "$0")/lib.sh"
pw_need nginx wrk
trap 'cat $PW_DIR/nginx-error.log 2>/dev/null | tail -20; pw_cleanup' EXIT
pw_e2e_init reuse
pw_pod a 11
pw_pod b 12
pw_router_metrics

pw_www
pw_nginx_conf nginx 1 <<CONF
log_format ports '\$remote_port';
server { listen $PW_IP_b:8080; root $www; keepalive_timeout 0;
	access_log $PW_DIR/access.log ports; }
CONF
pw_bg b nginx -c "$PW_DIR/nginx.conf" -e "$PW_DIR/nginx-error.log"
pw_wait_listen b 8080

claims() { pw_metric podwire_claims_total; }

# wrk's requests in @1 seconds with reuse (@2: 1), or a new channel for each
# connection (@2: 0, and PODWIRE_ADAPT=0 so that none goes to the kernel);
# sets REQS, CLAIMS, PORTS.
run_wrk() {
	: >"$PW_DIR/access.log"
	local c0 out
	c0=$(claims)
	out=$(pw_in a PODWIRE_REUSE="$2" PODWIRE_ADAPT="$2" wrk -t 1 -c 4 -d "$1" -H 'Connection: close' \
		"http://$PW_IP_b:8080/index.html" 2>&1) || pw_fail "wrk: $out"
	echo "$out" | grep -qE "Non-2xx|Socket errors" && pw_fail "wrk saw errors: $out"
	REQS=$(echo "$out" | awk '/requests in/ { print $1 }')
	CLAIMS=$(($(claims) - c0))
	sleep 0.2 # nginx writes its log line after the response
	PORTS=$(sort -u "$PW_DIR/access.log" | wc -l)
}

run_wrk 2 1
pw_log "reuse: $REQS requests, $CLAIMS channels made by the router, $PORTS client ports"
[ "${REQS:-0}" -ge 1000 ] || pw_fail "only ${REQS:-0} requests"
# 4 in flight, a few more while the first ones close: far below the requests.
[ "$CLAIMS" -ge 1 ] && [ "$CLAIMS" -le 32 ] ||
	pw_fail "$CLAIMS of $REQS connections made a channel (want 1 to 32)"
# A connect that finds no parked channel (its server has not closed its
# end yet) may go to the kernel, with a port of its own: a few.
[ "$PORTS" -le $((REQS / 20)) ] || pw_fail "$PORTS client ports for $REQS requests: channels not reused"

run_wrk 1 0
pw_log "PODWIRE_REUSE=0: $REQS requests, $CLAIMS channels made by the router, $PORTS client ports"
[ "$CLAIMS" -ge $((REQS * 9 / 10)) ] ||
	pw_fail "PODWIRE_REUSE=0: $CLAIMS channels for $REQS requests"

# A reload under load: the old worker ends with channels parked (and
# perhaps claimed); the new one serves the requests that follow.
pid=$(cat "$PW_DIR/nginx.pid")
q0=$(pw_metric podwire_requeued_total)
( sleep 1; kill -HUP "$pid" ) &
run_wrk 3 1
q1=$(pw_metric podwire_requeued_total)
pw_log "reload under load: $REQS requests, no error; $((q1 - q0)) claims given back to the queue"
exit 0
