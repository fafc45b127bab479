#!/usr/bin/env bash
# podwire-cni conformance, standalone mode, by direct invocation as a runtime
# would (CNI spec 1.0.0): VERSION; ADD results; CHECK; ADD and DEL twice;
# DEL of unknown containers and without a netns; bad configurations and
# environments with their error codes; IPAM exhaustion, concurrent ADDs and
# allocations that outlive the kernel state; registration with podwired,
# and ADD without podwired.
set -u
. "$(dirname "$0")/lib.sh"
pw_cni_init
pw_need curl
BR=$PW_TAG-br
pw_cni_link "$BR"
DATA=$PW_DIR/data
conf() { # cniVersion [extra ipam keys]
	printf '{"cniVersion":"%s","name":"pwnet","type":"podwire-cni","bridge":"%s",' "$1" "$BR"
	printf '"podwireSocket":"%s","dns":{"nameservers":["%s.1"]},' "$PW_SOCK" "$PW_NET"
	printf '"ipam":{"type":"podwire","subnet":"%s.0/24","routes":[{"dst":"0.0.0.0/0"}],' "$PW_NET"
	printf '"dataDir":"%s"%s}}' "$DATA" "${2:-}"
}
C=$(conf 1.0.0)
ipfile() { echo "$DATA/pwnet/$1"; }

# ---- VERSION: stdout is the version object alone, whatever the input.
pw_cni VERSION "" "" "" '{"cniVersion":"1.0.0"}'
pw_cni_ok "VERSION"
$PW_JSON version "$PW_DIR/out" || pw_fail "VERSION output"
[ "$($PW_JSON get "$PW_DIR/out" cniVersion)" = 1.0.0 ] || pw_fail "VERSION echoes cniVersion"
pw_cni VERSION "" "" "" ""
pw_cni_ok "VERSION without input"
$PW_JSON version "$PW_DIR/out" || pw_fail "VERSION output without input"

pw_router_metrics
pw_cni_ns a
pw_cni_ns b

# ---- ADD: the result, the kernel state, the allocation, the registration.
pw_cni ADD ctr-a eth0 a "$C"
pw_cni_ok "ADD a"
cp "$PW_DIR/out" "$PW_DIR/res-a"
ip_a=$($PW_JSON result "$PW_DIR/res-a" 1.0.0 eth0 "$(pw_cni_nspath a)") || pw_fail "ADD a result"
case $ip_a in "$PW_NET".*) ;; *) pw_fail "address $ip_a outside $PW_NET.0/24" ;; esac
[ "$ip_a" != "$PW_NET.1" ] || pw_fail "the gateway was handed out"
[ "$($PW_JSON get "$PW_DIR/res-a" ips 0 gateway)" = "$PW_NET.1" ] || pw_fail "gateway"
[ "$($PW_JSON get "$PW_DIR/res-a" routes 0 dst)" = 0.0.0.0/0 ] || pw_fail "routes"
[ "$($PW_JSON get "$PW_DIR/res-a" dns nameservers 0)" = "$PW_NET.1" ] || pw_fail "dns"
[ "$($PW_JSON get "$PW_DIR/res-a" interfaces 0 name)" = "$BR" ] || pw_fail "bridge in result"
ip -n "$PW_TAG-a" -4 -o addr show dev eth0 | grep -q " $ip_a/24 " || pw_fail "no $ip_a on eth0"
ip -n "$PW_TAG-a" route show default | grep -q "via $PW_NET.1 dev eth0" || pw_fail "no default route"
ip -4 -o addr show dev "$BR" | grep -q " $PW_NET.1/24 " || pw_fail "no gateway address on $BR"
[ "$(cat "$(ipfile "$ip_a")")" = "$(printf 'ctr-a\neth0')" ] || pw_fail "allocation file of $ip_a"
grep -q "podwire-cni\[warn\]" "$PW_DIR/err" && pw_fail "warnings with podwired running: $(cat "$PW_DIR/err")"
pw_cni_pods "$PW_DIR/pods"
$PW_JSON pods "$PW_DIR/pods" ctr-a eth0 "$ip_a" || pw_fail "ctr-a not registered with podwired"

# ---- CHECK right after ADD: success and no output.
$PW_JSON prev <(echo "$C") "$PW_DIR/res-a" >"$PW_DIR/chk-a"
pw_cni CHECK ctr-a eth0 a "$(cat "$PW_DIR/chk-a")"
pw_cni_ok "CHECK a"
[ ! -s "$PW_DIR/out" ] || pw_fail "CHECK printed: $(cat "$PW_DIR/out")"

# ---- ADD again for the same container: the same address, no error.
pw_cni ADD ctr-a eth0 a "$C"
pw_cni_ok "second ADD a"
ip2=$($PW_JSON result "$PW_DIR/out" 1.0.0 eth0 "$(pw_cni_nspath a)") || pw_fail "second ADD result"
[ "$ip2" = "$ip_a" ] || pw_fail "second ADD gave $ip2, first $ip_a"
[ "$(ip -n "$PW_TAG-a" -4 -o addr show dev eth0 | wc -l)" = 1 ] || pw_fail "eth0 has extra addresses"

# ---- A second pod: another address, and the two talk over the bridge.
pw_cni ADD ctr-b eth0 b "$C"
pw_cni_ok "ADD b"
cp "$PW_DIR/out" "$PW_DIR/res-b"
ip_b=$($PW_JSON result "$PW_DIR/res-b" 1.0.0 eth0 "$(pw_cni_nspath b)") || pw_fail "ADD b result"
[ "$ip_b" != "$ip_a" ] || pw_fail "both pods got $ip_a"
ip netns exec "$PW_TAG-a" ping -c 1 -W 2 "$ip_b" >/dev/null || pw_fail "a cannot reach b"

# ---- CHECK notices what went wrong, and the router losing the pod.
ip -n "$PW_TAG-b" addr del "$ip_b/24" dev eth0
$PW_JSON prev <(echo "$C") "$PW_DIR/res-b" >"$PW_DIR/chk-b"
check_b() { pw_cni CHECK ctr-b eth0 b "$(cat "$PW_DIR/chk-b")"; }
check_b
pw_cni_err 102 "CHECK with the address removed"
pw_cni ADD ctr-b eth0 b "$C"
pw_cni_ok "ADD b repairs"
check_b
pw_cni_ok "CHECK b after the repair"
pw_cni_router_stop
check_b
pw_cni_ok "CHECK b without podwired (acceleration is optional)"
pw_router_restart
check_b
pw_cni_err 103 "CHECK b with a podwired that does not know it"
pw_cni ADD ctr-b eth0 b "$C"
pw_cni_ok "ADD b registers again"
check_b
pw_cni_ok "CHECK b registered again"

# ---- DEL twice, DEL of an unknown container, DEL without a netns.
pw_cni DEL ctr-a eth0 a "$(cat "$PW_DIR/chk-a")"
pw_cni_ok "DEL a"
[ ! -s "$PW_DIR/out" ] || pw_fail "DEL printed: $(cat "$PW_DIR/out")"
[ ! -e "$(ipfile "$ip_a")" ] || pw_fail "DEL kept the allocation of $ip_a"
ip -n "$PW_TAG-a" link show eth0 >/dev/null 2>&1 && pw_fail "DEL left eth0 in a"
pw_cni_pods "$PW_DIR/pods"
$PW_JSON nopod "$PW_DIR/pods" ctr-a eth0 || pw_fail "ctr-a still registered after DEL"
pw_cni DEL ctr-a eth0 a "$C"
pw_cni_ok "second DEL a"
pw_cni DEL no-such-ctr eth0 a "$C"
pw_cni_ok "DEL of an unknown container"
pw_cni DEL ctr-a eth0 "" "$C"
pw_cni_ok "DEL without CNI_NETNS"

# ---- Allocations outlive the kernel state: the namespace and links of b
# vanish (a reboot), and new plugin processes read the data directory.
ip netns del "$PW_TAG-b"
ip link del "$BR"
pw_cni_ns b
pw_cni ADD ctr-c eth0 a "$C"
pw_cni_ok "ADD c"
ip_c=$($PW_JSON result "$PW_DIR/out" 1.0.0 eth0 "$(pw_cni_nspath a)") || pw_fail "ADD c result"
[ "$ip_c" != "$ip_b" ] || pw_fail "c got b's address $ip_b, which b still holds"
pw_cni ADD ctr-b eth0 b "$C"
pw_cni_ok "ADD b after the reboot"
ip=$($PW_JSON result "$PW_DIR/out" 1.0.0 eth0 "$(pw_cni_nspath b)") || pw_fail "ADD b result"
[ "$ip" = "$ip_b" ] || pw_fail "b got $ip after the reboot, had $ip_b"
pw_cni DEL ctr-b eth0 b "$C"
pw_cni_ok "DEL b"
pw_cni DEL ctr-c eth0 a "$C"
pw_cni_ok "DEL c"

# ---- Older spec versions get their own result format.
pw_cni ADD ctr-d eth0 a "$(conf 0.4.0)"
pw_cni_ok "ADD with 0.4.0"
$PW_JSON result "$PW_DIR/out" 0.4.0 eth0 "$(pw_cni_nspath a)" >/dev/null || pw_fail "0.4.0 result"
pw_cni DEL ctr-d eth0 a "$(conf 0.4.0)"
pw_cni_ok "DEL with 0.4.0"

# ---- An interface of that name that is not ours: an error (spec: ADD).
ip -n "$PW_TAG-a" link add eth1 type veth peer name eth1p || pw_fail "veth in a"
pw_cni ADD ctr-e eth1 a "$C"
pw_cni_err 101 "ADD over a foreign eth1"
ls "$DATA/pwnet" | grep -q '^[0-9][0-9.]*$' && pw_fail "failed ADD kept an allocation: $(ls "$DATA/pwnet")"

# ---- Bad configurations and environments: code, msg and details.
bad() { # code what config [id ifname ns]
	pw_cni ADD "${4-ctr-x}" "${5-eth0}" "${6-a}" "$3"
	pw_cni_err "$1" "$2"
}
bad 6 "malformed JSON" '{"cniVersion": "1.0.0", "name": '
bad 6 "not an object" '[1, 2]'
bad 7 "no cniVersion" "$(echo "$C" | sed 's/"cniVersion":"1.0.0",//')"
bad 1 "unsupported cniVersion" "$(conf 0.2.0)"
bad 1 "unknown cniVersion" "$(conf 2.5.0)"
bad 7 "no name" "$(echo "$C" | sed 's/"name":"pwnet",//')"
bad 7 "name with a slash" "$(echo "$C" | sed 's/"name":"pwnet"/"name":"..\/x"/')"
bad 7 "no ipam.subnet" "$(echo "$C" | sed "s|\"subnet\":\"$PW_NET.0/24\",||")"
bad 7 "subnet /33" "$(echo "$C" | sed "s|$PW_NET.0/24|$PW_NET.0/33|")"
bad 7 "subnet not an address" "$(echo "$C" | sed "s|$PW_NET.0/24|198.19.300.0/24|")"
bad 7 "subnet /31" "$(echo "$C" | sed "s|$PW_NET.0/24|$PW_NET.0/31|")"
bad 2 "IPv6 subnet" "$(echo "$C" | sed "s|$PW_NET.0/24|fd00:198::/64|")"
bad 2 "ipam host-local" "$(echo "$C" | sed 's/"type":"podwire"/"type":"host-local"/')"
bad 7 "gateway outside" "$(conf 1.0.0 ',"gateway":"198.18.0.1"')"
bad 7 "range reversed" "$(conf 1.0.0 ",\"rangeStart\":\"$PW_NET.9\",\"rangeEnd\":\"$PW_NET.5\"")"
bad 7 "mtu 10" "$(echo "$C" | sed 's/"type":"podwire-cni",/"type":"podwire-cni","mtu":10,/')"
bad 7 "bridge name too long" "$(echo "$C" | sed "s/\"bridge\":\"$BR\"/\"bridge\":\"a-very-long-bridge-name\"/")"
bad 7 "chained without prevResult" "$(echo "$C" | sed 's/,"ipam":.*$/}/')"
bad 4 "no CNI_CONTAINERID" "$C" ""
bad 4 "bad CNI_CONTAINERID" "$C" "-bad/id"
bad 4 "no CNI_IFNAME" "$C" ctr-x ""
bad 4 "CNI_IFNAME too long" "$C" ctr-x "eth0123456789abcdef"
bad 4 "CNI_IFNAME with a slash" "$C" ctr-x "a/b"
bad 4 "no CNI_NETNS" "$C" ctr-x eth0 ""
env -i CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_IFNAME=eth0 CNI_NETNS=/etc/hostname \
	"$PW_CNI" <<<"$C" >"$PW_DIR/out" 2>/dev/null
pw_cni_err 4 "CNI_NETNS not a namespace"
env -i CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$PW_TAG-none \
	"$PW_CNI" <<<"$C" >"$PW_DIR/out" 2>/dev/null
pw_cni_err 3 "CNI_NETNS that does not exist"
env -i CNI_COMMAND=BOGUS "$PW_CNI" <<<"$C" >"$PW_DIR/out" 2>/dev/null
pw_cni_err 4 "CNI_COMMAND BOGUS"
env -i "$PW_CNI" <<<"$C" >"$PW_DIR/out" 2>/dev/null
pw_cni_err 4 "no CNI_COMMAND"
$PW_JSON prev <(conf 0.3.1) "$PW_DIR/res-a" >"$PW_DIR/chk-old"
pw_cni CHECK ctr-a eth0 a "$(cat "$PW_DIR/chk-old")"
pw_cni_err 1 "CHECK with 0.3.1"
pw_cni CHECK ctr-a eth0 a "$C"
pw_cni_err 7 "CHECK without prevResult"

# ---- IPAM exhaustion: a range of three, then room again after a DEL.
small=$(conf 1.0.0 ",\"rangeStart\":\"$PW_NET.200\",\"rangeEnd\":\"$PW_NET.202\"" |
	sed 's/"name":"pwnet"/"name":"pwsmall"/')
for i in 1 2 3 4; do pw_cni_ns "x$i"; done
for i in 1 2 3; do
	pw_cni ADD "ctr-x$i" eth0 "x$i" "$small"
	pw_cni_ok "ADD x$i of 3"
done
[ "$(ls "$DATA/pwsmall" | grep -c "^$PW_NET\.20[012]$")" = 3 ] || pw_fail "3 allocations: $(ls "$DATA/pwsmall")"
pw_cni ADD ctr-x4 eth0 x4 "$small"
pw_cni_err 100 "ADD into a full range"
ip -n "$PW_TAG-x4" link show eth0 >/dev/null 2>&1 && pw_fail "failed ADD left eth0"
pw_cni DEL ctr-x2 eth0 x2 "$small"
pw_cni_ok "DEL x2"
pw_cni ADD ctr-x4 eth0 x4 "$small"
pw_cni_ok "ADD x4 after a DEL"
for i in 1 3 4; do pw_cni DEL "ctr-x$i" eth0 "x$i" "$small"; done

# ---- Concurrent ADDs (different containers): distinct addresses, no error.
N=6
for i in $(seq $N); do pw_cni_ns "p$i"; done
for i in $(seq $N); do
	env -i PATH=/usr/bin:/bin CNI_COMMAND=ADD CNI_CONTAINERID="ctr-p$i" CNI_IFNAME=eth0 \
		CNI_NETNS="$(pw_cni_nspath "p$i")" "$PW_CNI" <<<"$C" >"$PW_DIR/par-$i" 2>&1 &
done
wait_ok=0
for job in $(jobs -p); do
	[ "$job" = "$PW_ROUTER_PID" ] && continue
	wait "$job" || wait_ok=1
done
[ "$wait_ok" = 0 ] || pw_fail "a concurrent ADD failed: $(cat "$PW_DIR"/par-*)"
for i in $(seq $N); do
	$PW_JSON result "$PW_DIR/par-$i" 1.0.0 eth0 "$(pw_cni_nspath "p$i")"
done >"$PW_DIR/par-ips" || pw_fail "concurrent ADD results"
[ "$(sort -u "$PW_DIR/par-ips" | wc -l)" = $N ] || pw_fail "duplicate addresses: $(cat "$PW_DIR/par-ips")"
pw_cni_pods "$PW_DIR/pods"
for i in $(seq $N); do
	$PW_JSON pods "$PW_DIR/pods" "ctr-p$i" eth0 || pw_fail "ctr-p$i not registered"
	pw_cni DEL "ctr-p$i" eth0 "p$i" "$C"
	pw_cni_ok "DEL p$i"
done

# ---- Without podwired, ADD still works (kernel networking) and warns.
pw_cni_router_stop
pw_cni ADD ctr-f eth0 a "$C"
pw_cni_ok "ADD without podwired"
$PW_JSON result "$PW_DIR/out" 1.0.0 eth0 "$(pw_cni_nspath a)" >/dev/null || pw_fail "result"
grep -q "cannot register the pod" "$PW_DIR/err" || pw_fail "no warning on stderr: $(cat "$PW_DIR/err")"
pw_cni DEL ctr-f eth0 a "$C"
pw_cni_ok "DEL without podwired"

left=$(ls "$DATA/pwnet" "$DATA/pwsmall" | grep -c '^[0-9][0-9.]*$')
[ "$left" = 0 ] || pw_fail "allocations left after every DEL: $(ls "$DATA"/*)"
pw_log "ok: addresses $ip_a $ip_b $ip_c, $N concurrent ADDs"
exit 0
