#!/usr/bin/env bash
# podman end to end: real containers (runc) on two podwire-cni networks, one
# standalone and one chained after bridge + host-local (the conflist of
# deploy/). In each, a sockperf server container and a client container talk
# under the preload, which is bind-mounted in with the router's socket
# directory; podwired's counters prove the traffic went over podwire, and its
# pod table shows what the plugin registered and unregistered.
#
# The image comes from `podman import` of a rootfs made here (sockperf and
# its shared libraries). Everything podman keeps (storage, state, networks,
# CNI configuration) lives in a private directory removed at the end.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/podman-lib.sh"
pw_cni_init
pw_need podman runc conmon sockperf ldd nsenter ss curl
for p in bridge host-local; do
	[ -x "$PW_CNI_PLUGINS/$p" ] ||
		pw_skip "no $PW_CNI_PLUGINS/$p (apt-get install containernetworking-plugins)"
done
[ -r "$PW_LIB" ] || pw_fail "build first: $PW_LIB missing"

RUN=$PW_DIR/run # the router's socket directory, /run/podwire in the containers
PW_SOCK=$RUN/podwired.sock
mkdir -p "$RUN"
pm_init

# ---- The image: sockperf and the preload, with the libraries they need.
pm_image "podwire-test-$PW_TAG" /usr/bin/sockperf "$(readlink -f "$PW_LIB")"

# ---- Two networks and their plugins.
NET_CH=198.19.$(((($$ + 75) % 150) + 100))
[ "$NET_CH" != "$PW_NET" ] || NET_CH=198.19.99
pm_net_standalone "$PW_SOCK"
sed -e "s|\"podwire0\"|\"$PW_TAG-ch\"|; s|\"podwire\"|\"$PW_TAG-ch\"|" \
	-e "s|198\.19\.0\.0/24|$NET_CH.0/24|" \
	-e "s|/run/podwire/podwired.sock|$PW_SOCK|" \
	-e "s|\"ipMasq\": true|\"ipMasq\": false|" \
	-e "s|\"type\": \"host-local\",|\"type\": \"host-local\", \"dataDir\": \"$PW_DIR/host-local\",|" \
	"$(dirname "$0")/../../deploy/10-podwire.conflist" >"$PM_DIR/net/$PW_TAG-ch.conflist"
pw_cni_link "$PW_TAG-ch"
pm_nets_seen "$PW_TAG-sa" "$PW_TAG-ch"

pw_router_metrics

# pm_run NET NAME ARGS...: a container with the preload and the router socket.
pm_run() {
	local net=$1 name=$2
	shift 2
	"${PM[@]}" run --name "$name" --network "$net" "${ULIMITS[@]}" \
		-v "$(readlink -f "$PW_LIB"):/podwire/libpodwire.so:ro" -v "$RUN:/run/podwire" \
		-e LD_PRELOAD=/podwire/libpodwire.so -e PODWIRE_SOCKET=/run/podwire/podwired.sock \
		"$@"
}

port=11111
total_claims=0
for n in sa ch; do
	net=$PW_TAG-$n
	srv=$PW_TAG-srv-$n
	pm_run "$net" "$srv" -d "$IMAGE" sockperf server --tcp -i 0.0.0.0 -p $port \
		>"$PW_DIR/srv-$n.id" 2>&1 || pw_fail "server container on $net: $(cat "$PW_DIR/srv-$n.id")"
	id=$("${PM[@]}" inspect -f '{{.Id}}' "$srv")
	ip=$("${PM[@]}" inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$srv")
	key=$("${PM[@]}" inspect -f '{{.NetworkSettings.SandboxKey}}' "$srv")
	[ -n "$ip" ] && [ -e "$key" ] || pw_fail "no address or netns for $srv ($ip, $key)"
	for _ in $(seq 100); do
		nsenter --net="$key" ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.1
	done
	nsenter --net="$key" ss -Hltn "sport = :$port" | grep -q . || pw_fail "sockperf server on $net did not listen"

	# What the plugin registered: the container id, eth0 and its address.
	pw_cni_pods "$PW_DIR/pods"
	$PW_JSON pods "$PW_DIR/pods" "$id" eth0 "$ip" || pw_fail "$srv ($id) not registered on $net"

	before=$(pw_metric podwire_claims_total)
	out=$(pm_run "$net" "$PW_TAG-cli-$n" --rm "$IMAGE" sockperf ping-pong --tcp -i "$ip" \
		-p $port -t 2 -m 64 --mps 100000 2>&1) || pw_fail "client on $net: $out"
	echo "$out" | grep -q "Summary: Latency is" || pw_fail "client on $net printed no summary: $out"
	echo "$out" | grep -q "# dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0" ||
		pw_fail "client on $net lost or reordered messages: $out"
	after=$(pw_metric podwire_claims_total)
	[ "${after:-0}" -gt "${before:-0}" ] || pw_fail "no podwire claim on $net (claims $before -> $after)"
	total_claims=$((total_claims + after - before))
	pw_log "$n: $ip, $(echo "$out" | grep -o 'percentile 50.000 = *[0-9.]*'), claims $before -> $after"

	# The client container is gone: its DEL unregistered it.
	pw_cni_pods "$PW_DIR/pods"
	[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$PW_DIR/pods")" = 1 ] ||
		pw_fail "after the client left, pods: $(cat "$PW_DIR/pods")"
	"${PM[@]}" rm -f -t 0 "$srv" >/dev/null 2>&1 || pw_fail "podman rm $srv"
	pw_cni_pods "$PW_DIR/pods"
	$PW_JSON nopod "$PW_DIR/pods" "$id" eth0 || pw_fail "$srv still registered after podman rm"
	port=$((port + 1))
done

# Standalone allocations are released by DEL.
left=$(ls "$PW_DIR/ipam/$PW_TAG-sa" 2>/dev/null | grep -c '^[0-9]')
[ "$left" = 0 ] || pw_fail "standalone allocations left: $(ls "$PW_DIR/ipam/$PW_TAG-sa")"
accel=$(pw_metric podwire_connections_accelerated_total)
pw_log "ok: 2 networks, $total_claims podwire claims, $accel accelerated connections"
exit 0
