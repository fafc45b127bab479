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
pw_cni_init
pw_need podman runc conmon sockperf ldd nsenter ss curl
for p in bridge host-local; do
	[ -x "$PW_CNI_PLUGINS/$p" ] ||
		pw_skip "no $PW_CNI_PLUGINS/$p (apt-get install containernetworking-plugins)"
done
[ -r "$PW_LIB" ] || pw_fail "build first: $PW_LIB missing"

PM_DIR=$PW_DIR/podman
RUN=$PW_DIR/run # the router's socket directory, /run/podwire in the containers
PW_SOCK=$RUN/podwired.sock
mkdir -p "$PM_DIR/net" "$PM_DIR/bin" "$RUN" "$PW_DIR/rootfs"
# libcni keeps its result cache in /var/lib/cni: remove it if we made it.
[ -e /var/lib/cni ] && cni_cache_was_there=1 || cni_cache_was_there=0
export CONTAINERS_CONF=$PM_DIR/containers.conf
PM=(podman --root "$PM_DIR/root" --runroot "$PM_DIR/runroot" --tmpdir "$PM_DIR/tmp"
	--storage-driver vfs --runtime runc --cgroup-manager cgroupfs
	--network-config-dir "$PM_DIR/net" --events-backend none)
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

pm_cleanup() {
	local rc=$?
	"${PM[@]}" rm -af -t 0 >/dev/null 2>&1
	"${PM[@]}" rmi -af >/dev/null 2>&1
	# Whatever podman left mounted under its roots.
	findmnt -rn -o TARGET | grep "^$PM_DIR" | sort -r | xargs -r umount -l 2>/dev/null
	if [ "$cni_cache_was_there" = 0 ]; then
		rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
	fi
	(exit "$rc") # pw_cni_cleanup reports the test's status
	pw_cni_cleanup
}
trap pm_cleanup EXIT
cat >"$CONTAINERS_CONF" <<EOF
[network]
network_backend = "cni"
cni_plugin_dirs = ["$PM_DIR/bin", "$PW_CNI_PLUGINS"]
network_config_dir = "$PM_DIR/net"
[engine]
events_logger = "none"
EOF

# ---- The image: sockperf, the dynamic loader and the libraries it needs.
root=$PW_DIR/rootfs
mkdir -p "$root/usr/bin" "$root/tmp" "$root/etc" "$root/podwire" "$root/run/podwire"
cp /usr/bin/sockperf "$root/usr/bin/"
for lib in $( (ldd /usr/bin/sockperf; ldd "$PW_LIB") | grep -o '/[^ ]*' | sort -u); do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done
echo 'root:x:0:0:root:/:/bin/false' >"$root/etc/passwd"
tar -C "$root" -cf "$PW_DIR/rootfs.tar" . || pw_fail "tar of the rootfs"
IMAGE=localhost/podwire-test-$PW_TAG:1
"${PM[@]}" import -q "$PW_DIR/rootfs.tar" "$IMAGE" >/dev/null || pw_fail "podman import"

# ---- Two networks and their plugins.
ln -s "$(readlink -f "$PW_CNI")" "$PM_DIR/bin/podwire-cni"
NET_SA=$PW_NET # standalone
NET_CH=198.19.$(((($$ + 75) % 150) + 100))
[ "$NET_CH" != "$NET_SA" ] || NET_CH=198.19.99
cat >"$PM_DIR/net/$PW_TAG-sa.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$PW_TAG-sa",
  "plugins": [
    { "type": "podwire-cni", "bridge": "$PW_TAG-sa", "podwireSocket": "$PW_SOCK",
      "ipam": { "type": "podwire", "subnet": "$NET_SA.0/24",
                "routes": [ { "dst": "0.0.0.0/0" } ], "dataDir": "$PW_DIR/ipam" } }
  ]
}
EOF
sed -e "s|\"podwire0\"|\"$PW_TAG-ch\"|; s|\"podwire\"|\"$PW_TAG-ch\"|" \
	-e "s|198\.19\.0\.0/24|$NET_CH.0/24|" \
	-e "s|/run/podwire/podwired.sock|$PW_SOCK|" \
	-e "s|\"ipMasq\": true|\"ipMasq\": false|" \
	-e "s|\"type\": \"host-local\",|\"type\": \"host-local\", \"dataDir\": \"$PW_DIR/host-local\",|" \
	"$(dirname "$0")/../../deploy/10-podwire.conflist" >"$PM_DIR/net/$PW_TAG-ch.conflist"
pw_cni_link "$PW_TAG-sa" "$PW_TAG-ch"
"${PM[@]}" network ls --format '{{.Name}}' >"$PW_DIR/nets" 2>&1 || pw_fail "podman network ls: $(cat "$PW_DIR/nets")"
for n in sa ch; do
	grep -qx "$PW_TAG-$n" "$PW_DIR/nets" || pw_fail "podman does not see $PW_TAG-$n: $(cat "$PW_DIR/nets")"
done

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
