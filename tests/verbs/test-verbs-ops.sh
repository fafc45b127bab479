#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Verbs semantics on podwire0, byte for byte, between two pods of one node
# and between pods of two nodes, on the heap and on memory that cannot be
# re-backed (a file mapping, SysV shared memory):
# test-verbs-ops.c says what is checked (every opcode, scatter/gather,
# immediate data, atomics from both sides at once, RNR and its recovery, a
# completion event that costs no CPU while waited for, and remote access
# errors that fail the QP, flush what follows and leave the target's bytes
# alone); and kill -9 of one side; and a hostile peer.
set -u
. "$(dirname "$0")/../lab/lib.sh"
OPS=$PW_BUILD/tests/verbs/test-verbs-ops
[ -x "$OPS" ] || pw_skip "built without libibverbs-dev"
lab_init vops

pwlab up --nodes 2 --pods-per-node 2 >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "lab up: $(cat "$LAB_TMP/up.log")"
routers=$(lab_procs)
[ "$(echo $routers | wc -w)" = 2 ] || pw_fail "routers: $routers"
rfds() { for r in $routers; do ls /proc/$r/fd | wc -l; done | tr '\n' ' '; }
# Both routers dial each other: count once both links are up.
for _ in $(seq 100); do
	[ "$(lab_metric n1 podwire_peer_links) $(lab_metric n2 podwire_peer_links)" = "2 2" ] && break
	sleep 0.1
done
rfds0=$(rfds)

# The operations, SERVER CLIENT PORT [ENV=...]: a server in pod SERVER
# (198.19.N.11); both sides' environment.
ops() {
	local sp=$1 cp=$2 port=$3 ip=198.19.${1:1:1}.11
	pwlab exec "$sp" -- env ${4:-} timeout 60 "$OPS" server "$ip" "$port" >"$LAB_TMP/s.out" 2>&1 &
	local spid=$!
	pwlab exec "$cp" -- env ${4:-} timeout 60 "$OPS" client "$ip" "$port" >"$LAB_TMP/c.out" 2>&1 ||
		pw_fail "$cp to $sp: client: $(cat "$LAB_TMP/c.out") / server: $(cat "$LAB_TMP/s.out")"
	wait $spid || pw_fail "$cp to $sp: server: $(cat "$LAB_TMP/s.out")"
	pw_log "$cp to $sp: $(cat "$LAB_TMP/s.out" "$LAB_TMP/c.out")"
}

# kill -9 of one side, SURVIVOR VICTIM PORT: the survivor, waiting for a
# completion event, is woken within 100 ms with its QP in the error state
# (its receive flushed, a later send flushed), and leaves no fd and no
# mapping of the arenas behind; the routers' fds come back to where they
# were before the first test.
killed() {
	local sp=$1 vp=$2 port=$3 ip=198.19.${1:1:1}.11 vpid= t0 woken ms
	pwlab exec "$sp" -- timeout 60 "$OPS" survivor "$ip" "$port" >"$LAB_TMP/s.out" 2>&1 &
	local spid=$!
	# Emptied first: the loop below must not read the last victim's pid
	# before this one's redirection truncates the file.
	: >"$LAB_TMP/v.out"
	pwlab exec "$vp" -- timeout 60 "$OPS" victim "$ip" "$port" >"$LAB_TMP/v.out" 2>&1 &
	for _ in $(seq 100); do
		vpid=$(awk '$1 == "ready" { print $2 }' "$LAB_TMP/v.out")
		[ -n "$vpid" ] && break
		sleep 0.1
	done
	[ -n "$vpid" ] || pw_fail "victim: $(cat "$LAB_TMP/v.out")"
	sleep 0.5 # the survivor sleeps in ibv_get_cq_event
	t0=$(date +%s%N)
	kill -9 "$vpid"
	wait $spid || pw_fail "survivor: $(cat "$LAB_TMP/s.out")"
	woken=$(awk '$1 == "woken" { print $2 }' "$LAB_TMP/s.out")
	ms=$(((woken - t0) / 1000000))
	[ "$ms" -lt 100 ] || pw_fail "$sp: the survivor's QP failed $ms ms after the kill"
	pw_log "$vp killed: $sp's QP in error $ms ms after; $(tail -1 "$LAB_TMP/s.out")"
	for _ in $(seq 50); do
		[ "$(rfds)" = "$rfds0" ] && break
		sleep 0.1
	done
	[ "$(rfds)" = "$rfds0" ] || pw_fail "router fds: $rfds0 before, $(rfds) after"
}

# A hostile peer, TARGET ATTACKER PORT (test-verbs-ops.c says what it forges).
hostile() {
	local sp=$1 cp=$2 port=$3 ip=198.19.${1:1:1}.11
	pwlab exec "$sp" -- timeout 60 "$OPS" hostile-target "$ip" "$port" >"$LAB_TMP/s.out" 2>&1 &
	local spid=$!
	pwlab exec "$cp" -- timeout 60 "$OPS" hostile "$ip" "$port" >"$LAB_TMP/c.out" 2>&1 ||
		pw_fail "hostile $cp to $sp: $(cat "$LAB_TMP/c.out") / target: $(cat "$LAB_TMP/s.out")"
	wait $spid || pw_fail "hostile $cp to $sp: target: $(cat "$LAB_TMP/s.out")"
	# On one node it maps the target's QP slots: it must have written them.
	if [ "${sp%p*}" = "${cp%p*}" ] && grep -q 'into 0 QP slot' "$LAB_TMP/c.out"; then
		pw_fail "hostile $cp to $sp: no QP slot of the target's to write: $(cat "$LAB_TMP/c.out")"
	fi
	# ... and their service entries: it must have forged requests there.
	if [ "${sp%p*}" = "${cp%p*}" ] && grep -q 'into 0 service entr' "$LAB_TMP/c.out"; then
		pw_fail "hostile $cp to $sp: no service entry of the target's to write: $(cat "$LAB_TMP/c.out")"
	fi
	pw_log "hostile $cp to $sp: $(grep '^#' "$LAB_TMP/s.out" "$LAB_TMP/c.out" | sed 's/^[^:]*://')"
}

# One node (shared memory), then two (a TCP connection).
ops n1p1 n1p2 7001 RDMAV_FORK_SAFE=1
# Memory that cannot be re-backed (a file mapping, SysV shared memory): its
# owner serves it.
ops n1p1 n1p2 7008 PW_OPS_MEM=file
ops n1p1 n1p2 7009 PW_OPS_MEM=sysv
killed n1p1 n1p2 7002
hostile n1p1 n1p2 7006
ops n1p1 n2p1 7003
ops n1p1 n2p1 7010 PW_OPS_MEM=file
killed n1p1 n2p1 7004
killed n2p1 n1p1 7005
hostile n1p1 n2p1 7007

pwlab down >/dev/null 2>&1 || pw_fail "lab down"
lab_assert_gone
echo "PASS: test-verbs-ops"
