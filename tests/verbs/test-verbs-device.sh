#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# podwire's virtual RDMA device (issue 12), in the pods of a 2-node lab:
#   1. Debian's unmodified ibv_devices and ibv_devinfo -v list podwire0 with
#      the identity the router gives: GID 0 ::ffff:<pod address> (RoCE v2),
#      the LID (the address's offset in the lab's 198.19.0.0/16), the GUID;
#      a pod on the other node has its own;
#   2. test-verbs-api: the libibverbs API against it (queries, PDs,
#      completion channels, async events; what is not offered yet fails
#      with EOPNOTSUPP), with no fd left open;
#   3. where there is no pod (the node's own namespace) or podwire is off
#      (PODWIRE_DISABLE=1), there is no podwire0.
set -u
. "$(dirname "$0")/../lab/lib.sh"
pw_need ibv_devices ibv_devinfo
API=$PW_BUILD/tests/verbs/test-verbs-api
VERBS=$PW_BUILD/src/verbs/libpodwire-verbs.so
[ -x "$API" ] && [ -e "$VERBS" ] || pw_skip "built without libibverbs-dev"
lab_init verbs

pwlab up --nodes 2 --pods-per-node 1 >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "lab up: $(cat "$LAB_TMP/up.log")"
A=198.19.1.11 B=198.19.2.11

# ---- 1. the device, as Debian's tools see it ----
devinfo_check() { # pod address lid guid
	local out
	out=$(pwlab exec "$1" -- ibv_devices 2>&1) || pw_fail "ibv_devices in $1: $out"
	grep -Eq "^[[:space:]]+podwire0[[:space:]]+$4\$" <<<"$out" ||
		pw_fail "ibv_devices in $1: no podwire0 with GUID $4: $out"
	out=$(pwlab exec "$1" -- ibv_devinfo -v 2>&1) || pw_fail "ibv_devinfo -v in $1 (rc $?): $out"
	for want in "hca_id:	podwire0" "state:			PORT_ACTIVE (4)" \
		"link_layer:		Ethernet" "port_lid:		$3" \
		"GID[  0]:		::ffff:$2, RoCE v2" "active_mtu:		4096 (5)"; do
		grep -qF "$want" <<<"$out" || pw_fail "ibv_devinfo -v in $1: no '$want': $out"
	done
}
devinfo_check n1p1 $A 267 02707700c613010b
devinfo_check n2p1 $B 523 02707700c613020b
pw_log "podwire0 in both pods, each with its own GID and LID"

# ---- 2. the API ----
out=$(pwlab exec n1p1 -- "$API" $A 2>&1) || pw_fail "test-verbs-api: $out"
pw_log "$out"

# ---- 3. no pod, or podwire off: no device ----
out=$(pwlab exec n1 -- env LD_PRELOAD="$VERBS" ibv_devices 2>&1)
! grep -q podwire0 <<<"$out" || pw_fail "podwire0 in the node's namespace: $out"
out=$(pwlab exec n1p1 -- env PODWIRE_DISABLE=1 ibv_devices 2>&1)
! grep -q podwire0 <<<"$out" || pw_fail "podwire0 with PODWIRE_DISABLE=1: $out"
pw_log "no podwire0 outside a pod, nor with PODWIRE_DISABLE=1"

pwlab down >/dev/null 2>&1 || pw_fail "lab down"
lab_assert_gone
echo "PASS: test-verbs-device"
