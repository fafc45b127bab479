#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Verbs semantics on podwire0, byte for byte, between two pods of one node:
# test-verbs-ops.c says what is checked (every opcode, scatter/gather,
# immediate data, atomics from both sides at once, RNR and its recovery, a
# completion event that costs no CPU while waited for, and remote access
# errors that fail the QP, flush what follows and leave the target's bytes
# alone); and kill -9 of one side.
set -u
. "$(dirname "$0")/../lab/lib.sh"
OPS=$PW_BUILD/tests/verbs/test-verbs-ops
[ -x "$OPS" ] || pw_skip "built without libibverbs-dev"
lab_init vops

pwlab up --nodes 1 --pods-per-node 2 >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "lab up: $(cat "$LAB_TMP/up.log")"
pwlab exec n1p1 -- timeout 60 "$OPS" server 198.19.1.11 7001 >"$LAB_TMP/s.out" 2>&1 &
spid=$!
pwlab exec n1p2 -- timeout 60 "$OPS" client 198.19.1.11 7001 >"$LAB_TMP/c.out" 2>&1 ||
	pw_fail "client: $(cat "$LAB_TMP/c.out") / server: $(cat "$LAB_TMP/s.out")"
wait $spid || pw_fail "server: $(cat "$LAB_TMP/s.out")"
pw_log "$(cat "$LAB_TMP/s.out" "$LAB_TMP/c.out")"

# kill -9 of one side: the survivor, waiting for a completion event, is
# woken within 100 ms with its QP in the error state (its receive flushed,
# a later send flushed), and leaves no fd and no mapping of the arenas
# behind; the router's fds come back to where they were.
router=$(lab_procs)
[ -n "$router" ] || pw_fail "no router"
rfds0=$(ls /proc/$router/fd | wc -l)
pwlab exec n1p1 -- timeout 60 "$OPS" survivor 198.19.1.11 7002 >"$LAB_TMP/s.out" 2>&1 &
spid=$!
pwlab exec n1p2 -- timeout 60 "$OPS" victim 198.19.1.11 7002 >"$LAB_TMP/v.out" 2>&1 &
vpid=
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
[ "$ms" -lt 100 ] || pw_fail "the survivor's QP failed $ms ms after the kill"
pw_log "survivor: QP in error $ms ms after kill -9 of its peer; $(tail -1 "$LAB_TMP/s.out")"
for _ in $(seq 50); do
	[ "$(ls /proc/$router/fd | wc -l)" = "$rfds0" ] && break
	sleep 0.1
done
[ "$(ls /proc/$router/fd | wc -l)" = "$rfds0" ] ||
	pw_fail "router fds: $rfds0 before, $(ls /proc/$router/fd | wc -l) after"
pwlab down >/dev/null 2>&1 || pw_fail "lab down"
lab_assert_gone
echo "PASS: test-verbs-ops"
