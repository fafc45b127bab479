#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Services in a lab with a real control plane (`lab up --kube`: kube-apiserver,
# and kube-proxy in iptables mode in each node), issue 14. Each check runs
# twice: under podwire (the router turns the ClusterIP into a backend) and
# without it (kube-proxy's NAT, the kernel baseline), and both must agree.
# Backends are `python3 -m http.server` in n1p1 and n2p1 answering with their
# pod's name; clients are curl and Python in n1p2.
#   1. a Service whose only backend is on the client's node: shared memory
#      (the router's claims and service counters rise);
#   2. one whose backend is on the other node: brokered by the routers;
#   3. getpeername() is the ClusterIP and port;
#   4. sessionAffinity ClientIP keeps a client on one backend; without it
#      both backends answer;
#   5. a Service without ready endpoints refuses (ECONNREFUSED), as
#      kube-proxy's REJECT does, and its not-ready addresses are not used;
#   6. numeric and named targetPorts;
#   7. the endpoint is removed while a sockperf connection runs: the
#      connection runs to its end, new connects are refused.
set -u
. "$(dirname "$0")/lib.sh"
pw_need curl python3 timeout
lab_kube_need
lab_init svc
lab_kube_up 2 2

# ---- backends ----
for pod in n1p1 n2p1; do
	mkdir -p "$LAB_TMP/$pod"
	echo "$pod" >"$LAB_TMP/$pod/who"
done
pwlab exec n1p1 -- python3 -m http.server 8080 --bind 198.19.1.11 --directory "$LAB_TMP/n1p1" \
	>"$LAB_TMP/h1.log" 2>&1 &
pwlab exec n2p1 -- python3 -m http.server 8080 --bind 198.19.2.11 --directory "$LAB_TMP/n2p1" \
	>"$LAB_TMP/h2.log" 2>&1 &
lab_wait_listen n1p1 8080
lab_wait_listen n2p1 8080

# ---- Services, Endpoints and their EndpointSlices (no controller-manager here) ----
python3 - "$LAB_TMP/objs.json" <<'PY'
import json, sys
N1, N2 = "198.19.1.11", "198.19.2.11"
def svc(name, port_name="http", target="http", affinity=False):
    s = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"ports": [{"name": port_name, "port": 80, "targetPort": target,
                             "protocol": "TCP"}]}}
    if affinity:
        s["spec"]["sessionAffinity"] = "ClientIP"
    return s
def eps(name, ready, not_ready=(), port_name="http"):
    sub = {"ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}]}
    if ready:
        sub["addresses"] = [{"ip": ip} for ip in ready]
    if not_ready:
        sub["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    e = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": name},
         "subsets": [sub] if ready or not_ready else []}
    sl = {"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
          "metadata": {"name": name + "-1", "labels": {"kubernetes.io/service-name": name}},
          "addressType": "IPv4",
          "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ready] +
                       [{"addresses": [ip], "conditions": {"ready": False}} for ip in not_ready],
          "ports": [{"name": port_name, "port": 8080, "protocol": "TCP"}]}
    return [e, sl]
items = [svc("local"), *eps("local", [N1]),
         svc("remote"), *eps("remote", [N2]),
         svc("both"), *eps("both", [N1, N2]),
         svc("sticky", affinity=True), *eps("sticky", [N1, N2]),
         svc("empty"), *eps("empty", [], not_ready=[N1]),
         svc("numeric", port_name="", target=8080), *eps("numeric", [N2], port_name="")]
json.dump({"apiVersion": "v1", "kind": "List", "items": items}, open(sys.argv[1], "w"))
PY
kctl create -f "$LAB_TMP/objs.json" >/dev/null || pw_fail "cannot create the Services"
vip() { kctl get svc "$1" -o jsonpath='{.spec.clusterIP}'; }
for s in local remote both sticky empty numeric; do
	eval "VIP_$s=$(vip $s)"
done

# Both ways must be ready: kube-proxy's rules and the routers' table.
get() { # [--no-podwire] service: the body, or "!<curl's exit code>"
	local np=""
	[ "$1" = --no-podwire ] && { np=--no-podwire; shift; }
	local v out
	eval "v=\$VIP_$1"
	out=$(pwlab exec $np n1p2 -- curl -s -m 5 "http://$v/who")
	local rc=$?
	[ $rc = 0 ] && echo "$out" || echo "!$rc"
}
for _ in $(seq 100); do
	[ "$(get --no-podwire remote)" = n2p1 ] && [ "$(lab_metric n1 podwire_service_ports)" = 7 ] && break
	sleep 0.2
done
[ "$(get --no-podwire remote)" = n2p1 ] || pw_fail "kube-proxy does not serve the Service: $(get --no-podwire remote)"
[ "$(lab_metric n1 podwire_service_ports)" = 7 ] || pw_fail "router's Services: $(lab_metric n1 podwire_service_ports)"

svc_ok() { lab_metric n1 'podwire_service_connects_total{result="backend"}'; }
claims() { lab_metric n1 podwire_claims_total; }
remote_ok() { lab_metric n1 'podwire_remote_connects_total{result="ok"}'; }

# ---- 1. same node ----
s0=$(svc_ok) c0=$(claims)
[ "$(get local)" = n1p1 ] || pw_fail "local with podwire: $(get local)"
s1=$(svc_ok) c1=$(claims)
[ "$s1" -gt "$s0" ] && [ "$c1" -gt "$c0" ] || pw_fail "local not through shared memory: service $s0 -> $s1, claims $c0 -> $c1"
[ "$(get --no-podwire local)" = n1p1 ] || pw_fail "local through kube-proxy: $(get --no-podwire local)"

# ---- 2. the other node ----
s0=$(svc_ok) r0=$(remote_ok)
[ "$(get remote)" = n2p1 ] || pw_fail "remote with podwire: $(get remote)"
s1=$(svc_ok) r1=$(remote_ok)
[ "$s1" -gt "$s0" ] && [ "$r1" -gt "$r0" ] || pw_fail "remote not brokered: service $s0 -> $s1, remote $r0 -> $r1"

# ---- 3. getpeername ----
peer=$(pwlab exec n1p2 -- python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], 80)); print("%s:%d" % s.getpeername())' "$VIP_local")
[ "$peer" = "$VIP_local:80" ] || pw_fail "getpeername with podwire: $peer (want $VIP_local:80)"
peer=$(pwlab exec --no-podwire n1p2 -- python3 -c 'import socket, sys
s = socket.create_connection((sys.argv[1], 80)); print("%s:%d" % s.getpeername())' "$VIP_local")
[ "$peer" = "$VIP_local:80" ] || pw_fail "getpeername through kube-proxy: $peer"

# ---- 4. affinity ----
for np in "" --no-podwire; do
	seen=$(for _ in $(seq 8); do get $np sticky; done | sort -u | tr '\n' ' ')
	case "$seen" in "n1p1 " | "n2p1 ") ;; *) pw_fail "sticky ${np:-podwire}: backends '$seen'" ;; esac
	seen=$(for _ in $(seq 16); do get $np both; done | sort -u | tr '\n' ' ')
	[ "$seen" = "n1p1 n2p1 " ] || pw_fail "both ${np:-podwire}: backends '$seen'"
done

# ---- 5. no ready endpoint ----
# kube-proxy REJECTs (curl: 7); the router sends such a connect the kernel's
# way, so the application gets the very error kube-proxy gives.
refusal() { # [--no-podwire]: the error of a connect in Python
	pwlab exec "$@" n1p2 -- python3 -c 'import socket, sys
try:
    socket.create_connection((sys.argv[1], 80), timeout=5); print("connected")
except OSError as e:
    print(type(e).__name__, e.errno)' "$VIP_empty"
}
for np in "" --no-podwire; do
	r=$(get $np empty)
	[ "$r" = "!7" ] || pw_fail "empty ${np:-podwire}: '$r' (want curl's 7, refused)"
done
e_pw=$(refusal) e_k=$(refusal --no-podwire)
[ "$e_pw" = "$e_k" ] || pw_fail "empty: podwire '$e_pw', kube-proxy '$e_k'"
[ "$e_k" = "ConnectionRefusedError 111" ] || pw_fail "empty: not refused: '$e_k'"
[ "$(lab_metric n1 'podwire_service_connects_total{result="no_endpoints"}')" -gt 0 ] ||
	pw_fail "the router did not count the refusal"
pw_log "no endpoints: '$e_pw' with podwire and through kube-proxy"

# ---- 6. numeric targetPort, unnamed port ----
for np in "" --no-podwire; do
	[ "$(get $np numeric)" = n2p1 ] || pw_fail "numeric ${np:-podwire}: $(get $np numeric)"
done
# ---- 7. the endpoint goes while a connection is open ----
# Through kube-proxy an established connection keeps its backend (conntrack)
# when the Endpoints change; under podwire the connection is the backend's
# already. Either way it runs to its end, and new connects are refused.
pwlab exec n1p1 -- sockperf server --tcp -i 198.19.1.11 -p 5001 >"$LAB_TMP/sp.log" 2>&1 &
lab_wait_listen n1p1 5001
long_eps() { # ready IP, or none
	python3 - "$1" >"$LAB_TMP/long.json" <<'PY'
import json, sys
ip = sys.argv[1]
ports = [{"name": "sp", "port": 5001, "protocol": "TCP"}]
ready = [ip] if ip != "none" else []
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "long"},
     "spec": {"ports": [{"name": "sp", "port": 5001, "targetPort": "sp", "protocol": "TCP"}]}},
    {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "long"},
     "subsets": [{"addresses": [{"ip": a} for a in ready], "ports": ports}] if ready else []},
    {"apiVersion": "discovery.k8s.io/v1beta1", "kind": "EndpointSlice",
     "metadata": {"name": "long-1", "labels": {"kubernetes.io/service-name": "long"}},
     "addressType": "IPv4",
     "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in ready],
     "ports": ports}]}))
PY
	kctl apply -f "$LAB_TMP/long.json" >/dev/null || pw_fail "apply long ($1)"
}
long_eps 198.19.1.11
VIP_long=$(vip long)
for np in "" --no-podwire; do
	for _ in $(seq 50); do
		pwlab exec $np n1p2 -- sockperf ping-pong --tcp -i "$VIP_long" -p 5001 -t 1 -m 64 \
			--mps 100000 >/dev/null 2>&1 && break
		sleep 0.2
	done
	# (Rate-capped: sockperf's sequence table overflows at shared-memory speed.)
	pwlab exec $np n1p2 -- sockperf ping-pong --tcp -i "$VIP_long" -p 5001 -t 4 -m 64 \
		--mps 100000 >"$LAB_TMP/long.out" 2>&1 &
	cli=$!
	sleep 1.5
	long_eps none
	wait $cli || pw_fail "long ${np:-podwire}: the open connection broke: $(tail -5 "$LAB_TMP/long.out")"
	grep -q 'percentile 50.000' "$LAB_TMP/long.out" ||
		pw_fail "long ${np:-podwire}: no result: $(tail -5 "$LAB_TMP/long.out")"
	for _ in $(seq 50); do
		r=$(pwlab exec $np n1p2 -- curl -s -m 2 "http://$VIP_long:5001/" >/dev/null; echo $?)
		[ "$r" = 7 ] && break
		sleep 0.2
	done
	[ "$r" = 7 ] || pw_fail "long ${np:-podwire}: a new connect after the endpoint went: curl $r"
	long_eps 198.19.1.11
done

pw_log "Services: same node over shared memory, other node brokered, affinity, refusal; kube-proxy agrees"
echo "lab-services: ok"
