#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `podwire lab up --kube` (issue 14): a 3-node lab with a real kube-apiserver
# and etcd in its underlay, and routers that find each other from the Node
# objects, with no static peer flags:
#   1. status --json names the kubeconfig; kubectl sees three Ready nodes;
#      the routers run with --kube-peers and no --peers, and link up;
#   2. sockperf from n1p1 to a server in n2p1 is brokered by the routers;
#   3. n3's Node is deleted: its links go, and with them its routes (a
#      connection to n3p1 takes the overlay); created again, n3 is reached
#      without restarting anything;
#   4. the secret file is rotated: every router takes it, no link drops, and
#      new handshakes (n3 leaves and comes back) work with it;
#   5. `lab down` leaves no namespace, state or process (etcd and
#      kube-apiserver included).
set -u
. "$(dirname "$0")/lib.sh"
pw_need sockperf curl python3 timeout
lab_kube_need
lab_init kube
lab_kube_up 3 1
# Node status as a kubelet would set it (kubectl 1.20 cannot patch status).
node_ready() { # node True|False
	local tok
	tok=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["users"][0]["user"]["token"])' "$KC")
	pwlab exec u -- curl -sf --cacert "$(dirname "$KC")/ca.crt" -X PATCH \
		-H "Authorization: Bearer $tok" -H 'Content-Type: application/merge-patch+json' \
		-d "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$2\"}]}}" \
		"$(lab_json 'j["apiserver"]')/api/v1/nodes/$1/status" >/dev/null ||
		pw_fail "cannot set $1 Ready=$2"
}

# ---- 1. nodes, routers ----
ready=$(kctl get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[0].status} {end}')
[ "$ready" = "n1=True n2=True n3=True " ] || pw_fail "nodes: '$ready'"
args=$(ps -eo args= | grep "/run/podwire/lab/$LAB/n1/" | grep podwired)
case "$args" in *--kube-peers*) ;; *) pw_fail "router without --kube-peers: $args" ;; esac
case "$args" in *" --peers "*) pw_fail "router with static peers: $args" ;; esac
links_are() { # n want: wait until every node has N links
	for _ in $(seq 100); do
		[ "$(lab_metric n1 podwire_peer_links)" = "$1" ] &&
			[ "$(lab_metric "${2:-n2}" podwire_peer_links)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
links_are 4 n3 || pw_fail "links: n1 $(lab_metric n1 podwire_peer_links), n3 $(lab_metric n3 podwire_peer_links)"

# ---- 2. a brokered connection ----
remote_ok() { lab_metric n1 'podwire_remote_connects_total{result="ok"}'; }
pwlab exec n2p1 -- sockperf server --tcp -i 198.19.2.11 -p 5001 >"$LAB_TMP/sp2.log" 2>&1 &
pwlab exec n3p1 -- sockperf server --tcp -i 198.19.3.11 -p 5001 >"$LAB_TMP/sp3.log" 2>&1 &
lab_wait_listen n2p1 5001
lab_wait_listen n3p1 5001
sp() { # ip: a second of ping-pong from n1p1, p50 one-way in us
	pwlab exec n1p1 -- timeout 20 sockperf ping-pong --tcp -i "$1" -p 5001 -t 1 -m 64 2>&1 |
		awk '/percentile 50.000/ { print $NF }'
}
r0=$(remote_ok)
lat=$(sp 198.19.2.11)
r1=$(remote_ok)
[ -n "$lat" ] && [ "$r1" -gt "$r0" ] || pw_fail "n1p1 -> n2p1: p50 '$lat', brokered $r0 -> $r1"
pw_log "n1p1 -> n2p1 brokered by routers that met through the API server: p50 $lat us"

# ---- 3. a node leaves and comes back ----
kctl get node n3 -o json >"$LAB_TMP/n3.json" || pw_fail "get node n3"
kctl delete node n3 >/dev/null || pw_fail "delete node n3"
links_are 2 || pw_fail "after n3 left: n1 $(lab_metric n1 podwire_peer_links)"
r0=$(remote_ok)
lat=$(sp 198.19.3.11)
r1=$(remote_ok)
[ -n "$lat" ] || pw_fail "n1p1 -> n3p1 over the overlay gave no result"
[ "$r1" = "$r0" ] || pw_fail "a route to n3's pods outlived its Node ($r0 -> $r1)"
python3 - "$LAB_TMP/n3.json" <<'PY' || pw_fail "n3.json"
import json, sys
n = json.load(open(sys.argv[1]))
n["metadata"] = {"name": n["metadata"]["name"], "labels": n["metadata"].get("labels", {})}
n["spec"].pop("taints", None)
json.dump(n, open(sys.argv[1], "w"))
PY
kctl create -f "$LAB_TMP/n3.json" >/dev/null || pw_fail "create node n3"
kctl patch node n3 --type merge -p '{"spec":{"taints":null}}' >/dev/null
links_are 4 n3 || pw_fail "n3 not reached again: n1 $(lab_metric n1 podwire_peer_links)"
r0=$(remote_ok)
lat=$(sp 198.19.3.11)
r1=$(remote_ok)
[ -n "$lat" ] && [ "$r1" -gt "$r0" ] || pw_fail "n1p1 -> n3p1 after n3 came back: '$lat', $r0 -> $r1"

# ---- 4. the secret is rotated ----
SECRET=$(lab_json 'j["secret_file"]')
lost0=$(grep -c 'link lost' /run/podwire/lab/$LAB/n1/podwired.log)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRET.new" && mv "$SECRET.new" "$SECRET"
for n in n1 n2 n3; do
	for _ in $(seq 50); do
		[ "$(lab_metric $n podwire_peer_secret_rotations_total)" = 1 ] && break
		sleep 0.1
	done
	[ "$(lab_metric $n podwire_peer_secret_rotations_total)" = 1 ] || pw_fail "$n kept the old secret"
done
sleep 1
lost1=$(grep -c 'link lost' /run/podwire/lab/$LAB/n1/podwired.log)
[ "$(lab_metric n1 podwire_peer_links)" = 4 ] && [ "$lost1" = "$lost0" ] ||
	pw_fail "links dropped by the rotation: $(lab_metric n1 podwire_peer_links), lost $lost0 -> $lost1"
node_ready n3 False
links_are 2 || pw_fail "NotReady n3 still linked: $(lab_metric n1 podwire_peer_links)"
node_ready n3 True
links_are 4 n3 || pw_fail "no new links with the new secret: n1 $(lab_metric n1 podwire_peer_links)"
pw_log "secret rotated: links kept, new handshakes made with it"

# ---- 5. down ----
kill $(jobs -p) 2>/dev/null
wait 2>/dev/null
pwlab down >/dev/null || pw_fail "lab down"
lab_assert_gone
left=$(ps -eo stat=,args= | awk -v d="/run/podwire/lab/$LAB/" '$1 !~ /^Z/ && index($0, d) && !/awk/')
[ -z "$left" ] || pw_fail "left running: $left"
echo "lab-kube: ok"
