#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# librdmacm's API on podwire0 (src/verbs/cm.c): Debian's unmodified perftest
# with -R (its connections made through rdma_cm), and rping (rdmacm-utils),
# between two pods of one node and between pods of two nodes. Each run must
# end with status 0 on both sides and its full output (perftest's result
# table; every one of rping's pings, on both sides), and the routers must
# have paired the QPs the CM connected, the right way.
set -u
. "$(dirname "$0")/../lab/lib.sh"
pw_need ib_send_lat curl
[ -e "$PW_BUILD/src/verbs/libpodwire-verbs.so" ] || pw_skip "built without libibverbs-dev"
nm -D "$PW_BUILD/src/verbs/libpodwire-verbs.so" 2>/dev/null | grep -q ' rdma_connect' ||
	pw_skip "built without librdmacm-dev: no rdma_cm on podwire0"
lab_init rdmacm

pwlab up --nodes 2 --pods-per-node 2 >"$LAB_TMP/up.log" 2>&1 ||
	pw_fail "lab up: $(cat "$LAB_TMP/up.log")"
addr() { case $1 in n1p1) echo 198.19.1.11 ;; n2p1) echo 198.19.2.11 ;; esac; }
pairs() { echo "$(lab_metric n1 podwire_verbs_pairs_total)" \
	"$(lab_metric n1 podwire_verbs_remote_pairs_total)"; }
# check_pairs WAY BEFORE WHAT: more pairs on one node (WAY same) or across,
# none the other way. (perftest -R connects a second QP pair of its own
# for the exchange of results.)
check_pairs() {
	local a b c d
	read -r a b <<<"$2"
	read -r c d <<<"$(pairs)"
	if [ "$1" = same ]; then
		[ "$c" -gt "$a" ] && [ "$d" = "$b" ] || pw_fail "$3: pairs $2 -> $c $d"
	else
		[ "$c" = "$a" ] && [ "$d" -gt "$b" ] || pw_fail "$3: pairs $2 -> $c $d"
	fi
}
way() { [ "${1%p*}" = "${2%p*}" ] && echo same || echo across; }

# perftest SERVER CLIENT TEST ARGS...
perftest() {
	local sp=$1 cp=$2 t=$3 before got
	shift 3
	before=$(pairs)
	pwlab exec "$sp" -- timeout 60 "$t" -d podwire0 -F -R "$@" >"$LAB_TMP/s.out" 2>&1 &
	local spid=$!
	lab_wait_listen "$sp" 18515
	pwlab exec "$cp" -- timeout 60 "$t" -d podwire0 -F -R "$@" "$(addr "$sp")" \
		>"$LAB_TMP/c.out" 2>&1 ||
		pw_fail "$t -R $* ($cp to $sp): client failed: $(cat "$LAB_TMP/c.out")"
	wait $spid || pw_fail "$t -R $* ($cp to $sp): server failed: $(cat "$LAB_TMP/s.out")"
	grep -q 'Data ex. method : rdma_cm' "$LAB_TMP/c.out" || pw_fail "$t: not through rdma_cm"
	got=$(grep -cE '^ +[0-9]+ +[0-9]+ +[0-9.]+' "$LAB_TMP/c.out")
	[ "$got" = 1 ] || pw_fail "$t -R $* ($cp to $sp): $got result rows: $(cat "$LAB_TMP/c.out")"
	check_pairs "$(way "$sp" "$cp")" "$before" "$t -R"
	pw_log "$t -R $* ($cp to $sp): ok ($(grep -E '^ +[0-9]+ +[0-9]+ +[0-9.]+' "$LAB_TMP/c.out" |
		tr -s ' '))"
}

# rping SERVER CLIENT [-q]: 10 pings of 64 bytes, checked by rping itself
# (-V) and counted on both sides. -q: the QP is rping's own, moved with
# rdma_init_qp_attr() and connected with rdma_establish().
rping_run() {
	command -v rping >/dev/null || pw_skip "rping (rdmacm-utils) is not installed"
	local sp=$1 cp=$2 q=${3:-} before n
	before=$(pairs)
	pwlab exec "$sp" -- timeout 30 rping -s -a "$(addr "$sp")" -p 7174 -C 10 -S 64 -v -V $q \
		>"$LAB_TMP/s.out" 2>&1 &
	local spid=$!
	lab_wait_listen "$sp" 7174
	pwlab exec "$cp" -- timeout 30 rping -c -a "$(addr "$sp")" -p 7174 -C 10 -S 64 -v -V $q \
		>"$LAB_TMP/c.out" 2>&1 ||
		pw_fail "rping $q ($cp to $sp): client failed: $(cat "$LAB_TMP/c.out")"
	wait $spid || pw_fail "rping $q ($cp to $sp): server failed: $(cat "$LAB_TMP/s.out")"
	n=$(grep -c '^ping data: rdma-ping-' "$LAB_TMP/c.out")
	[ "$n" = 10 ] || pw_fail "rping $q ($cp to $sp): $n pings: $(cat "$LAB_TMP/c.out")"
	n=$(grep -c '^server ping data: rdma-ping-' "$LAB_TMP/s.out")
	[ "$n" = 10 ] || pw_fail "rping $q ($cp to $sp): the server saw $n: $(cat "$LAB_TMP/s.out")"
	check_pairs "$(way "$sp" "$cp")" "$before" "rping $q"
	pw_log "rping $q ($cp to $sp): 10 pings, both sides"
}

for w in "n1p1 n1p2" "n1p1 n2p1"; do
	for t in ib_send_lat ib_write_lat ib_read_lat ib_atomic_lat ib_send_bw ib_write_bw \
		ib_read_bw ib_atomic_bw; do
		perftest $w $t -n 1000
	done
	# rping with the CM's QP, and with its own (-q)
	rping_run $w
	rping_run $w -q
done

pwlab down >/dev/null 2>&1 || pw_fail "lab down"
lab_assert_gone
echo "PASS: test-verbs-rdmacm"
