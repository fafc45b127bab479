#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Verbs semantics on podwire0, byte for byte, between two pods of one node:
# test-verbs-ops.c says what is checked (every opcode, scatter/gather,
# immediate data, atomics from both sides at once, RNR and its recovery, a
# completion event that costs no CPU while waited for, and remote access
# errors that fail the QP, flush what follows and leave the target's bytes
# alone).
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
pwlab down >/dev/null 2>&1 || pw_fail "lab down"
lab_assert_gone
echo "PASS: test-verbs-ops"
