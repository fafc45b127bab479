#!/usr/bin/env bash
# The path per destination (PRELOAD.md, "Short connections, by choice"), pod
# to pod with real programs. wrk with a connection per request against nginx
# gets every answer while only its first connections take shared memory (the
# router's claims stay near the concurrency, not the thousands of requests).
# One python3 client process then makes short HTTP connections to another
# port: the first 4 over shared memory, the next 2 over the kernel; one long
# keepalive connection (over the kernel) brings shared memory back for the
# next short one. With PODWIRE_ADAPT=0 every connection is accelerated.
set -u
. "$(dirname "$0")/lib.sh"
pw_need nginx wrk python3
# The choice itself, with a new channel for each connection over shared
# memory (reuse, tried first, is test-reuse.sh's).
export PODWIRE_REUSE=0
trap 'cat $PW_DIR/pw.log $PW_DIR/nginx-error.log 2>/dev/null | tail -30; pw_cleanup' EXIT
pw_e2e_init adapt
pw_pod a 11
pw_pod b 12
pw_router_metrics

pw_www
pw_nginx_conf nginx 1 <<CONF
server { listen $PW_IP_b:8080; root $www; keepalive_timeout 0; }
server { listen $PW_IP_b:8081; root $www; keepalive_timeout 60; keepalive_requests 1000; }
CONF
pw_bg b nginx -c "$PW_DIR/nginx.conf" -e "$PW_DIR/nginx-error.log"
pw_wait_listen b 8080
pw_wait_listen b 8081

claims() { pw_metric podwire_claims_total; }

# ---- wrk, a connection per request ----
c0=$(claims)
out=$(pw_in a wrk -t 1 -c 4 -d 2 -H 'Connection: close' "http://$PW_IP_b:8080/index.html" 2>&1) ||
	pw_fail "wrk: $out"
echo "$out" | grep -qE "Non-2xx|Socket errors" && pw_fail "wrk saw errors: $out"
reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
c1=$(claims)
pw_log "wrk, a connection per request: $reqs requests, $((c1 - c0)) over shared memory"
[ "${reqs:-0}" -ge 500 ] || pw_fail "wrk completed only ${reqs:-0} requests: $out"
# 4 in flight at first, then up to 4 more before 4 short ones have closed.
[ $((c1 - c0)) -ge 4 ] && [ $((c1 - c0)) -le 16 ] ||
	pw_fail "$((c1 - c0)) of $reqs connections over shared memory (want 4 to 16)"

# ---- one process: short, short, ..., long, short ----
# Prints the router's claims after each step (read by the test through a pipe).
cat >"$PW_DIR/client.py" <<'PY'
import socket, sys
host, metrics = sys.argv[1], sys.argv[2]
def get(port, n, keep):
    s = socket.create_connection((host, port))
    hdr = "keep-alive" if keep else "close"
    for i in range(n):
        s.sendall(("GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: %s\r\n\r\n" % hdr).encode())
        got = b""
        while b"hello from podwire" not in got:
            b = s.recv(4096)
            if not b:
                sys.exit("connection closed early at request %d" % i)
            got += b
    s.close()
def step(label):
    sys.stdout.write(label + "\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the test has read the claims
for i in range(6):
    get(8081, 1, False)
step("six-short")
get(8081, 10, True)
step("long")
get(8081, 1, False)
step("short-after-long")
PY
coproc CL { pw_in a python3 "$PW_DIR/client.py" "$PW_IP_b" x 2>&1; }
base=$c1
declare -A got
for want in six-short long short-after-long; do
	read -r -t 20 line <&"${CL[0]}" || pw_fail "client: no answer before step $want"
	[ "$line" = "$want" ] || pw_fail "client: $line (expected $want)"
	now=$(claims)
	got[$want]=$((now - base))
	base=$now
	echo >&"${CL[1]}"
done
wait "$CL_PID" || pw_fail "client failed"
pw_log "one client: six short ${got[six-short]}, long ${got[long]}, short after it ${got[short-after-long]} over shared memory"
[ "${got[six-short]}" = 4 ] || pw_fail "6 short connections: ${got[six-short]} over shared memory (want 4)"
[ "${got[long]}" = 0 ] || pw_fail "the long connection after them: ${got[long]} over shared memory (want 0)"
[ "${got[short-after-long]}" = 1 ] ||
	pw_fail "the short one after a long one: ${got[short-after-long]} over shared memory (want 1)"

# ---- PODWIRE_ADAPT=0: all of them ----
c0=$(claims)
out=$(pw_in a PODWIRE_ADAPT=0 wrk -t 1 -c 4 -d 1 -H 'Connection: close' \
	"http://$PW_IP_b:8080/index.html" 2>&1) || pw_fail "wrk: $out"
echo "$out" | grep -qE "Non-2xx|Socket errors" && pw_fail "wrk saw errors: $out"
reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
c1=$(claims)
pw_log "PODWIRE_ADAPT=0: $reqs requests, $((c1 - c0)) over shared memory"
[ $((c1 - c0)) -ge "${reqs:-1}" ] || pw_fail "PODWIRE_ADAPT=0: $((c1 - c0)) of $reqs over shared memory"
exit 0
