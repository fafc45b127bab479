#!/usr/bin/env bash
# podwire-cni chained after the reference bridge + host-local plugins
# (Debian containernetworking-plugins), run as a runtime runs a conflist:
# ADD in order with each result as the next prevResult, CHECK with the final
# result, DEL in reverse. podwire-cni must pass prevResult through, register
# the address host-local gave, convert 0.4.0 results, and unregister on DEL.
set -u
. "$(dirname "$0")/lib.sh"
pw_cni_init
for p in bridge host-local; do
	[ -x "$PW_CNI_PLUGINS/$p" ] ||
		pw_skip "no $PW_CNI_PLUGINS/$p (apt-get install containernetworking-plugins)"
done
BR=$PW_TAG-cb
pw_cni_link "$BR"
bridge_conf() { # cniVersion
	printf '{"cniVersion":"%s","name":"pwchain","type":"bridge","bridge":"%s",' "$1" "$BR"
	printf '"isGateway":true,"ipam":{"type":"host-local","subnet":"%s.0/24",' "$PW_NET"
	printf '"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"%s/host-local"}}' "$PW_DIR"
}
podwire_conf() { # cniVersion
	printf '{"cniVersion":"%s","name":"pwchain","type":"podwire-cni","podwireSocket":"%s"}' \
		"$1" "$PW_SOCK"
}
with_prev() { # conf result-file
	$PW_JSON prev <(echo "$1") "$2"
}

# chain_add VERSION ID NS: bridge then podwire-cni; the final result in
# $PW_DIR/res-ID, the bridge's in $PW_DIR/br-ID.
chain_add() {
	local v=$1 id=$2 ns=$3
	pw_cni_run "$PW_CNI_PLUGINS/bridge" ADD "$id" eth0 "$ns" "$(bridge_conf "$v")"
	pw_cni_ok "bridge ADD $id"
	cp "$PW_DIR/out" "$PW_DIR/br-$id"
	pw_cni ADD "$id" eth0 "$ns" "$(with_prev "$(podwire_conf "$v")" "$PW_DIR/br-$id")"
	pw_cni_ok "podwire-cni ADD $id"
	cp "$PW_DIR/out" "$PW_DIR/res-$id"
}
chain_check() { # version id ns
	pw_cni_run "$PW_CNI_PLUGINS/bridge" CHECK "$2" eth0 "$3" \
		"$(with_prev "$(bridge_conf "$1")" "$PW_DIR/res-$2")"
	pw_cni_ok "bridge CHECK $2"
	pw_cni CHECK "$2" eth0 "$3" "$(with_prev "$(podwire_conf "$1")" "$PW_DIR/res-$2")"
}
chain_del() { # version id ns
	pw_cni DEL "$2" eth0 "$3" "$(with_prev "$(podwire_conf "$1")" "$PW_DIR/res-$2")"
	pw_cni_ok "podwire-cni DEL $2"
	pw_cni_run "$PW_CNI_PLUGINS/bridge" DEL "$2" eth0 "$3" \
		"$(with_prev "$(bridge_conf "$1")" "$PW_DIR/res-$2")"
	pw_cni_ok "bridge DEL $2"
}

pw_router_metrics
pw_cni_ns a
pw_cni_ns b

# ---- 1.0.0: the result is the bridge's, and the pod is registered.
chain_add 1.0.0 ctr-a a
$PW_JSON same "$PW_DIR/br-ctr-a" "$PW_DIR/res-ctr-a" || pw_fail "prevResult not passed through"
ip_a=$($PW_JSON result "$PW_DIR/res-ctr-a" 1.0.0 eth0 "$(pw_cni_nspath a)") ||
	pw_fail "chained result"
ls "$PW_DIR/host-local/pwchain/$ip_a" >/dev/null || pw_fail "host-local did not allocate $ip_a"
pw_cni_pods "$PW_DIR/pods"
$PW_JSON pods "$PW_DIR/pods" ctr-a eth0 "$ip_a" || pw_fail "ctr-a not registered with $ip_a"
chain_check 1.0.0 ctr-a a
pw_cni_ok "podwire-cni CHECK a"
[ ! -s "$PW_DIR/out" ] || pw_fail "CHECK printed: $(cat "$PW_DIR/out")"

# ---- 0.4.0 all along: the result keeps 0.4.0's "version" fields.
chain_add 0.4.0 ctr-b b
$PW_JSON same "$PW_DIR/br-ctr-b" "$PW_DIR/res-ctr-b" || pw_fail "0.4.0 prevResult not passed through"
ip_b=$($PW_JSON result "$PW_DIR/res-ctr-b" 0.4.0 eth0 "$(pw_cni_nspath b)") || pw_fail "0.4.0 result"
chain_check 0.4.0 ctr-b b
pw_cni_ok "podwire-cni CHECK b (0.4.0)"
ip netns exec "$PW_TAG-a" ping -c 1 -W 2 "$ip_b" >/dev/null || pw_fail "a cannot reach b"

# ---- A 0.4.0 prevResult under a 1.0.0 configuration is converted.
pw_cni ADD ctr-b eth0 b "$(with_prev "$(podwire_conf 1.0.0)" "$PW_DIR/br-ctr-b")"
pw_cni_ok "podwire-cni ADD, 0.4.0 prevResult"
$PW_JSON result "$PW_DIR/out" 1.0.0 eth0 "$(pw_cni_nspath b)" >/dev/null ||
	pw_fail "0.4.0 prevResult not converted to 1.0.0"

# ---- CHECK fails when the router no longer knows the pod, and when the
# address is gone; registering again (ADD) repairs the first.
pw_cni_router_stop
pw_router_restart
chain_check 1.0.0 ctr-a a
pw_cni_err 103 "CHECK after podwired forgot the pod"
pw_cni ADD ctr-a eth0 a "$(with_prev "$(podwire_conf 1.0.0)" "$PW_DIR/br-ctr-a")"
pw_cni_ok "podwire-cni ADD a again"
chain_check 1.0.0 ctr-a a
pw_cni_ok "CHECK a after registering again"
pw_cni ADD ctr-b eth0 b "$(with_prev "$(podwire_conf 0.4.0)" "$PW_DIR/br-ctr-b")"
pw_cni_ok "podwire-cni ADD b again"
ip -n "$PW_TAG-a" addr del "$ip_a/24" dev eth0
pw_cni CHECK ctr-a eth0 a "$(with_prev "$(podwire_conf 1.0.0)" "$PW_DIR/res-ctr-a")"
pw_cni_err 102 "CHECK with the address removed"
ip -n "$PW_TAG-a" addr add "$ip_a/24" dev eth0

# ---- Registration is checked by the router: an address not on the pod's
# interface is refused (ADD still succeeds: acceleration is optional).
sed "s/$ip_b/$PW_NET.250/" "$PW_DIR/br-ctr-b" >"$PW_DIR/br-forged"
pw_cni ADD ctr-forged eth0 b "$(with_prev "$(podwire_conf 1.0.0)" "$PW_DIR/br-forged")"
pw_cni_ok "ADD with a forged address"
grep -q "Cannot assign requested address" "$PW_DIR/err" ||
	pw_fail "no warning for the refused registration: $(cat "$PW_DIR/err")"
pw_cni_pods "$PW_DIR/pods"
$PW_JSON nopod "$PW_DIR/pods" ctr-forged eth0 || pw_fail "a forged address was registered"

# ---- More addresses than a registration holds: the first 8, and a warning
# (here refused by the router too: the others are not on eth0).
python3 - "$PW_DIR/br-ctr-a" "$PW_NET" >"$PW_DIR/br-many" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
r["ips"] += [{"address": f"{sys.argv[2]}.{200 + i}/24", "interface": 2} for i in range(10)]
print(json.dumps(r))
EOF
pw_cni ADD ctr-many eth0 a "$(with_prev "$(podwire_conf 1.0.0)" "$PW_DIR/br-many")"
pw_cni_ok "ADD with 11 addresses"
grep -q "registering the first 8" "$PW_DIR/err" || pw_fail "no warning: $(cat "$PW_DIR/err")"
$PW_JSON same "$PW_DIR/br-many" "$PW_DIR/out" || pw_fail "11 addresses not passed through"

# ---- Only the host may register: the same request from inside a pod's
# namespace (as root) is refused, so a pod cannot claim addresses.
ip netns exec "$PW_TAG-b" env -i CNI_COMMAND=ADD CNI_CONTAINERID=ctr-inside CNI_IFNAME=eth0 \
	CNI_NETNS="$(pw_cni_nspath b)" "$PW_CNI" <<<"$(with_prev "$(podwire_conf 1.0.0)" \
	"$PW_DIR/br-ctr-b")" >"$PW_DIR/out" 2>"$PW_DIR/err"
pw_cni_ok "ADD from inside the pod"
grep -q "Operation not permitted" "$PW_DIR/err" ||
	pw_fail "no refusal from inside the pod: $(cat "$PW_DIR/err")"
pw_cni_pods "$PW_DIR/pods"
$PW_JSON nopod "$PW_DIR/pods" ctr-inside eth0 || pw_fail "a pod registered itself"

# ---- DEL in reverse order, twice; the registration goes.
chain_del 1.0.0 ctr-a a
pw_cni_pods "$PW_DIR/pods"
$PW_JSON nopod "$PW_DIR/pods" ctr-a eth0 || pw_fail "ctr-a registered after DEL"
$PW_JSON pods "$PW_DIR/pods" ctr-b eth0 "$ip_b" || pw_fail "DEL of a took b along"
chain_del 1.0.0 ctr-a a
pw_cni_router_stop
chain_del 0.4.0 ctr-b b # without the router
ip -n "$PW_TAG-b" link show eth0 >/dev/null 2>&1 && pw_fail "eth0 left in b"
pw_log "ok: chained after bridge + host-local: $ip_a, $ip_b"
exit 0
