#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Debian's unmodified perftest over podwire0 between two pods of one node
# (issue 12): every RC test, over all sizes (-a) where it takes them, and
# with completion events (-e) where perftest offers them. Each run must end
# with status 0 on both sides and a full result table, and the router must
# have paired its two queue pairs (podwire_verbs_pairs_total) - the data went
# through podwire's shared memory, there being no other RDMA device here.
set -u
. "$(dirname "$0")/../lab/lib.sh"
pw_need ib_send_lat ib_write_bw curl
[ -e "$PW_BUILD/src/verbs/libpodwire-verbs.so" ] || pw_skip "built without libibverbs-dev"
lab_init rdma

pwlab up --nodes 1 --pods-per-node 2 >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "lab up: $(cat "$LAB_TMP/up.log")"
S=198.19.1.11

pairs() { lab_metric n1 podwire_verbs_pairs_total; }

# run TEST ROWS ARGS...: server in n1p1, client in n1p2; ROWS result rows.
run() {
	local t=$1 rows=$2 before got
	shift 2
	before=$(pairs)
	pwlab exec n1p1 -- timeout 60 "$t" -d podwire0 -F "$@" >"$LAB_TMP/s.out" 2>&1 &
	local spid=$!
	# perftest's server listens on TCP 18515 for the key exchange.
	lab_wait_listen n1p1 18515
	pwlab exec n1p2 -- timeout 60 "$t" -d podwire0 -F "$@" $S >"$LAB_TMP/c.out" 2>&1 ||
		pw_fail "$t $*: client failed: $(cat "$LAB_TMP/c.out")"
	wait $spid || pw_fail "$t $*: server failed: $(cat "$LAB_TMP/s.out")"
	got=$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9.]+' "$LAB_TMP/c.out")
	[ "$got" = "$rows" ] || pw_fail "$t $*: $got result rows, want $rows: $(cat "$LAB_TMP/c.out")"
	[ "$(pairs)" = $((before + 1)) ] || pw_fail "$t $*: pairs $before -> $(pairs)"
	pw_log "$t $*: ok ($(grep -E '^ +[0-9]+ +[0-9]+ +[0-9.]+' "$LAB_TMP/c.out" | head -1 | tr -s ' '))"
}

# -a: sizes 2 B to 8 MiB, 23 rows.
for t in ib_send_lat ib_write_lat ib_read_lat; do run $t 23 -a -n 100; done
for t in ib_send_bw ib_write_bw ib_read_bw; do run $t 23 -a -n 100; done
for t in ib_atomic_lat ib_atomic_bw; do run $t 1 -n 1000; done
# Completion events (perftest has none for WRITE).
for t in ib_send_lat ib_read_lat ib_atomic_lat ib_send_bw ib_read_bw ib_atomic_bw; do
	run $t 1 -e -n 1000
done

pwlab down >/dev/null 2>&1 || pw_fail "lab down"
lab_assert_gone
echo "PASS: test-verbs-perftest"
