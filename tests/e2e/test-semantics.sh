#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Kernel TCP socket semantics of accelerated connections, pod to pod.
#
# Every test of pw-sem (tests/e2e/pw-sem.c) runs with its server in pod b and
# its client in pod a:
#   1. under the preload: every connection must be carried by podwire (pw-sem
#      checks each fd with PW_SEM_EXPECT=accel; podwired's
#      podwire_claims_total must move for each test), PODWIRE_ADAPT=0 so
#      that repeated short connections are too;
#   1a. the same with reuse (PRELOAD.md, "Reuse"): a connection that ended
#      in order leaves its channel to the next one to the same server, so
#      the router sees only the first of them (claims move by one at least)
#      and the mode fails unless some channels were reused;
#   1b. under the preload as shipped (PODWIRE_ADAPT unset): a test's
#      repeated short connections go to the kernel after the first few, so
#      a test may cross both paths; the same checks must hold;
#   2. without the preload: the kernel's own TCP must pass the same program,
#      which proves that the tests check kernel semantics, not podwire's;
#   3. mixed peers: an accelerated client and a kernel server, and the
#      reverse (both work over kernel TCP);
#   4. the router: killed between a client's connect and the server's
#      accept (the connection must still work, as it would on the kernel),
#      killed mid-stream (the connection goes on), dead or never started (the
#      kernel carries new connections), restarted (acceleration is back;
#      podwire status showed the live connection before the kill).
#
# PW_SEM_ONLY="test ..." runs a subset; PW_SEM_MODES="preload reuse adapt kernel extra"
# chooses the parts (default: all). PW_SEM_SERVER_BIN and PW_SEM_CLIENT_BIN
# run another build of pw-sem on either side (tests/e2e/test-musl.sh);
# PW_PRELOAD, another LD_PRELOAD value (lib.sh). Prints one line per test
# (a failure with the tail of both sides' output: function:line, the check,
# and the step) and a summary that names the failed tests of each part.
set -u
. "$(dirname "$0")/lib.sh"
SEM=$PW_BUILD/tests/pw-sem
[ -x "$SEM" ] || pw_fail "build first: $SEM missing"
SEM_SRV=${PW_SEM_SERVER_BIN:-$SEM}
SEM_CLI=${PW_SEM_CLIENT_BIN:-$SEM}
pw_need curl ss timeout
pw_e2e_init semantics
trap 'exit 1' HUP PIPE # clean up also when the reader of our output goes away
pw_pod a 11
pw_pod b 12
pw_router_metrics

MODES=${PW_SEM_MODES:-preload reuse adapt kernel extra}
"$SEM" list >"$PW_DIR/list" || pw_fail "pw-sem list"
TESTS=${PW_SEM_ONLY:-$(cut -f1 "$PW_DIR/list")}
PORT=20000
SUMMARY=$PW_DIR/summary
: >"$SUMMARY"
NFAIL=0
T0=$SECONDS

sem_metric() { pw_metric "$1" 2>/dev/null | head -n1; }

# sem_run LABEL TEST SRV_PRELOAD CLI_PRELOAD EXPECT [MID]
# One server/client pair. MID, if given, is evaluated while the client runs.
# SEM_CLI_ENV, if set, is one more VAR=value for the client alone.
# Sets SEM_RC (0 pass, 1 fail, 77 skip) and SEM_WHY.
sem_run() {
	local label=$1 t=$2 sp=$3 cp=$4 exp=$5 mid=${6:-}
	local port=$PORT slog=$PW_DIR/$label.$t.srv.log clog=$PW_DIR/$label.$t.cli.log
	local snp="" cnp="" srv cli src crc i grace
	local envs=(env "PW_SEM_EXPECT=$exp" "PW_SEM_A=$PW_IP_a" "PW_SEM_B=$PW_IP_b"
		"PW_SEM_SYNC_DIR=$PW_DIR")
	# Every connection of the test accelerated, however short (the library
	# would leave repeated short ones to the kernel: PRELOAD.md), and each
	# through the router unless SEM_REUSE=1.
	[ "$exp" != accel ] || envs+=("PODWIRE_ADAPT=0" "PODWIRE_REUSE=${SEM_REUSE:-0}")
	PORT=$((PORT + 1))
	[ "$sp" = 1 ] || snp=1
	[ "$cp" = 1 ] || cnp=1
	SEM_WHY=""
	SEM_MID_ERR=""
	SEM_SLOG=$slog
	SEM_CLOG=$clog

	PW_NOPRELOAD=$snp pw_in b "${envs[@]}" timeout -s KILL 60 "$SEM_SRV" server "$t" "$PW_IP_b" "$port" \
		>"$slog" 2>&1 &
	srv=$!
	PW_PIDS="$PW_PIDS $srv"
	i=0
	until grep -q '^READY' "$slog" 2>/dev/null; do
		if ! kill -0 "$srv" 2>/dev/null || [ $i -ge 500 ]; then
			pw_reap_pods
			wait "$srv" 2>/dev/null
			SEM_RC=1
			SEM_WHY="server did not listen"
			return
		fi
		sleep 0.01
		i=$((i + 1))
	done
	PW_NOPRELOAD=$cnp pw_in a "${envs[@]}" ${SEM_CLI_ENV:+"$SEM_CLI_ENV"} timeout -s KILL 60 "$SEM_CLI" client "$t" "$PW_IP_b" "$port" \
		>"$clog" 2>&1 &
	cli=$!
	PW_PIDS="$PW_PIDS $cli"
	[ -z "$mid" ] || eval "$mid"
	wait "$cli"
	crc=$?
	# A passing client leaves the server a few seconds (the kill tests check
	# the survivor's writes for up to 2 s); a failing one, a moment.
	grace=100
	[ "$crc" = 0 ] && grace=800
	i=0
	while kill -0 "$srv" 2>/dev/null && [ $i -lt $grace ]; do
		sleep 0.01
		i=$((i + 1))
	done
	kill -0 "$srv" 2>/dev/null && pw_reap_pods
	wait "$srv"
	src=$?
	pw_reap_pods # stray children (workers, helpers)

	if [ "$crc" = 0 ] && [ "$src" = 0 ]; then
		SEM_RC=0
	elif { [ "$crc" = 77 ] || [ "$crc" = 0 ]; } && { [ "$src" = 77 ] || [ "$src" = 0 ]; }; then
		SEM_RC=77
		SEM_WHY="skipped"
	else
		SEM_RC=1
		SEM_WHY="server rc=$src client rc=$crc"
		[ "$src" = 137 ] && SEM_WHY="$SEM_WHY (server killed: hung)"
	fi
	if [ -n "$SEM_MID_ERR" ] && [ "$SEM_RC" != 77 ]; then
		SEM_RC=1
		SEM_WHY="${SEM_WHY:+$SEM_WHY; }$SEM_MID_ERR"
	fi
	SEM_SLOG=$slog
	SEM_CLOG=$clog
}

# Known gaps of podwire, listed in docs/PRELOAD.md: they run and print their
# result, but do not fail the suite. One that starts passing says so loudly, so
# the list gets shorter, never stale.
SEM_KNOWN=" preload:msg_oob preload:shutdown_wakes_reader preload:fork_concurrent_writers "
SEM_KNOWN+="adapt:msg_oob adapt:shutdown_wakes_reader adapt:fork_concurrent_writers "
SEM_KNOWN+="reuse:msg_oob reuse:shutdown_wakes_reader reuse:fork_concurrent_writers "

# sem_record LABEL TEST [extra detail]: print and remember SEM_RC.
sem_record() {
	local label=$1 t=$2 detail=${3:-} res
	local key
	key="$(echo "$label" | tr ' ' _):$t"
	case $SEM_RC in
	0) res=ok ;;
	77) res=SKIP ;;
	*) res=FAIL ;;
	esac
	case "$SEM_KNOWN" in
	*" $key "*)
		if [ "$res" = FAIL ]; then
			res=GAP
		elif [ "$res" = ok ]; then
			echo "# NOTE: known gap $key passes now: remove it from SEM_KNOWN"
		fi
		;;
	esac
	printf '%-4s %-24s %-26s %s\n' "$res" "$label" "$t" "${SEM_WHY:+$SEM_WHY }$detail"
	printf '%s\t%s\t%s\t%s\n' "$res" "$label" "$t" "$SEM_WHY" >>"$SUMMARY"
	if [ "$res" = FAIL ]; then
		NFAIL=$((NFAIL + 1))
		for f in "$SEM_SLOG" "$SEM_CLOG"; do
			[ -s "$f" ] || continue
			echo "     --- ${f##*/}"
			grep -v '^READY$' "$f" | tail -n 12 | sed 's/^/     | /'
		done
	fi
}

# Tests whose way through podwire shows in another counter of the router:
# TEST:METRIC:MINIMUM. A connection handed to a worker with the library is
# taken over (no relay); to one without it, relayed by the router; so is the
# connection of a child that enters seccomp mode and can still reach it.
SEM_METRICS="scm_rights:podwire_relays_taken_total:10
scm_rights_unpreloaded:podwire_relays_started_total:10
seccomp_relayed:podwire_relays_started_total:1"

# One test under the preload, with the router's proof of acceleration: its
# claims counter moves by at least what pw-sem list says for the test.
sem_accel() { # label test
	local c0 c1 d want metric mwant m0="" m1
	want=$(awk -F'\t' -v t="$2" '$1 == t { print $2 }' "$PW_DIR/list")
	metric=$(echo "$SEM_METRICS" | awk -F: -v t="$2" '$1 == t { print $2 }')
	mwant=$(echo "$SEM_METRICS" | awk -F: -v t="$2" '$1 == t { print $3 }')
	[ -z "$metric" ] || m0=$(sem_metric "$metric")
	c0=$(sem_metric podwire_claims_total)
	sem_run "$1" "$2" 1 1 accel
	c1=$(sem_metric podwire_claims_total)
	d=$(( ${c1:-0} - ${c0:-0} ))
	# With reuse, the client's connections the router did not see went
	# over a parked channel.
	if [ "${SEM_REUSE:-0}" = 1 ]; then
		local p
		p=$(grep -c 'carried by podwire' "$SEM_CLOG" 2>/dev/null)
		SEM_REUSED=$(( ${p:-0} > d ? ${p:-0} - d : 0 ))
		want=1
	fi
	if [ "$SEM_RC" = 0 ] && [ "$d" -lt "${want:-1}" ]; then
		SEM_RC=1
		SEM_WHY="not accelerated: podwire_claims_total +$d, want +${want:-1}"
	fi
	if [ -n "$metric" ]; then
		m1=$(sem_metric "$metric")
		if [ "$SEM_RC" = 0 ] && [ $(( ${m1:-0} - ${m0:-0} )) -lt "$mwant" ]; then
			SEM_RC=1
			SEM_WHY="$metric +$(( ${m1:-0} - ${m0:-0} )), want +$mwant"
		fi
	fi
	sem_record "$1" "$2" "(claims +$d${metric:+, $metric +$(( ${m1:-0} - ${m0:-0} ))})"
}

if [[ " $MODES " == *" preload "* ]]; then
	echo "# ---- under libpodwire.so: every connection must go over podwire"
	for t in $TESTS; do
		sem_accel preload "$t"
	done
fi

if [[ " $MODES " == *" reuse "* ]]; then
	echo "# ---- under libpodwire.so with reuse: every connection over podwire, channels reused"
	reused=0
	rq0=$(sem_metric podwire_requeued_total)
	for t in $TESTS; do
		SEM_REUSE=1 SEM_REUSED=0
		q0=$(sem_metric podwire_requeued_total)
		sem_accel reuse "$t"
		reused=$((reused + SEM_REUSED))
		# The worker's end came with the client's claim in its hands:
		# the claim went back to the queue (the router says so).
		q1=$(sem_metric podwire_requeued_total)
		if [ "${t%_short}" = seq_handoff ] && [ $(( ${q1:-0} - ${q0:-0} )) -lt 1 ]; then
			echo "FAIL reuse: $t's claim was not given back to the queue"
			NFAIL=$((NFAIL + 1))
		fi
	done
	SEM_REUSE=0
	rq1=$(sem_metric podwire_requeued_total)
	echo "# reuse: $reused connections over a parked channel (not seen by the router);" \
		"$(( ${rq1:-0} - ${rq0:-0} )) claimed ones given back to a listener's queue"
	if [ "$reused" = 0 ] && [ "$(echo $TESTS | wc -w)" -gt 10 ]; then
		echo "FAIL reuse: no channel was reused"
		NFAIL=$((NFAIL + 1))
	fi
fi

# The library as shipped: a test's repeated short connections move to the
# kernel after the first few (PRELOAD.md), so one test may cross both paths.
if [[ " $MODES " == *" adapt "* ]]; then
	echo "# ---- under libpodwire.so as shipped: short connections may go to the kernel"
	adapt_k=0
	for t in $TESTS; do
		sem_run adapt "$t" 1 1 either
		k=$(cat "$SEM_SLOG" "$SEM_CLOG" 2>/dev/null | grep -c 'carried by kernel TCP')
		p=$(cat "$SEM_SLOG" "$SEM_CLOG" 2>/dev/null | grep -c 'carried by podwire')
		adapt_k=$((adapt_k + k))
		sem_record adapt "$t" "(fds: podwire $p, kernel $k)"
	done
	# The mode is for nothing unless some connections took the kernel.
	echo "# adapt: $adapt_k fds carried by the kernel by choice"
	if [ "$adapt_k" = 0 ] && [ "$(echo $TESTS | wc -w)" -gt 10 ]; then
		echo "FAIL adapt: no connection went to the kernel"
		NFAIL=$((NFAIL + 1))
	fi
fi

# Not a default mode: the preload is set, yet every connection must stay on
# the kernel (test-musl.sh: a musl program when there is no musl build).
if [[ " $MODES " == *" preload-kernel "* ]]; then
	echo "# ---- LD_PRELOAD set, the program not accelerated: the kernel carries it"
	for t in $TESTS; do
		sem_run preload-kernel "$t" 1 1 kernel
		sem_record preload-kernel "$t"
	done
fi

if [[ " $MODES " == *" kernel "* ]]; then
	echo "# ---- without the preload: the kernel's TCP must pass the same tests"
	for t in $TESTS; do
		sem_run kernel "$t" 0 0 kernel
		sem_record kernel "$t"
	done
fi

sem_kill_router() {
	kill -9 "$PW_ROUTER_PID" 2>/dev/null
	wait "$PW_ROUTER_PID" 2>/dev/null
}

# While stream_long runs: podwire status lists it, then podwired is killed.
sem_mid_kill_router() {
	sleep 0.5
	local st
	st=$("$PW_CLI" status --socket "$PW_SOCK" --json 2>&1)
	if ! echo "$st" | grep -q "\"state\":\"open\",\"connecting\":\"$PW_IP_a:[0-9]*\",\"connecting_pid\":[0-9]*,\"accepting\":\"$PW_IP_b:$port\""; then
		SEM_MID_ERR="podwire status does not show the connection: $st"
	fi
	sem_kill_router
}

if [[ " $MODES " == *" extra "* ]]; then
	echo "# ---- mixed peers"
	f0=$(sem_metric podwire_connections_fallback_total)
	c0=$(sem_metric podwire_claims_total)
	sem_run mixed-client-accel echo 0 1 kernel
	f1=$(sem_metric podwire_connections_fallback_total)
	c1=$(sem_metric podwire_claims_total)
	if [ "$SEM_RC" = 0 ] && [ $(( ${f1:-0} - ${f0:-0} )) -lt 1 ]; then
		SEM_RC=1
		SEM_WHY="podwire_connections_fallback_total did not move"
	fi
	if [ "$SEM_RC" = 0 ] && [ "${c1:-0}" != "${c0:-0}" ]; then
		SEM_RC=1
		SEM_WHY="a claim was made ($c0 -> $c1)"
	fi
	sem_record "preload client, kernel server" echo "(fallback +$(( ${f1:-0} - ${f0:-0} )))"

	c0=$(sem_metric podwire_claims_total)
	sem_run mixed-server-accel echo 1 0 kernel
	c1=$(sem_metric podwire_claims_total)
	if [ "$SEM_RC" = 0 ] && [ "${c1:-0}" != "${c0:-0}" ]; then
		SEM_RC=1
		SEM_WHY="a claim matched ($c0 -> $c1)"
	fi
	sem_record "kernel client, preload server" echo "(claims +$(( ${c1:-0} - ${c0:-0} )))"

	echo "# ---- a malformed PODWIRE_PREFIX"
	# An error, and nothing accelerated: not the router's prefixes, and
	# above all not everything ("/x" read as "/0").
	c0=$(sem_metric podwire_claims_total)
	q0=$(sem_metric podwire_connect_requests_total)
	SEM_CLI_ENV="PODWIRE_PREFIX=$PW_IP_b/x" sem_run bad-prefix echo 1 1 kernel
	c1=$(sem_metric podwire_claims_total)
	q1=$(sem_metric podwire_connect_requests_total)
	if [ "$SEM_RC" = 0 ] && [ "${q1:-0}" != "${q0:-0}" ]; then
		SEM_RC=1
		SEM_WHY="the client asked the router ($q0 -> $q1 connect requests)"
	elif [ "$SEM_RC" = 0 ] && [ "${c1:-0}" != "${c0:-0}" ]; then
		SEM_RC=1
		SEM_WHY="a claim was made ($c0 -> $c1)"
	elif [ "$SEM_RC" = 0 ] && ! grep -q "libpodwire\[[0-9]*\] error: PODWIRE_PREFIX=$PW_IP_b/x: bad prefix" "$SEM_CLOG"; then
		SEM_RC=1
		SEM_WHY="no error logged for the bad prefix: $(head -c 300 "$SEM_CLOG")"
	fi
	sem_record "bad PODWIRE_PREFIX ($PW_IP_b/x)" echo "(connect requests +$(( ${q1:-0} - ${q0:-0} )))"

	echo "# ---- podwire status after a peer's death"
	# A client killed while its server, still alive, holds the connection:
	# the connection must not show "open" for ever; once the server closes
	# its end, it must go, though both pids were not gone.
	st_port=$PORT
	PORT=$((PORT + 1))
	PW_NOPRELOAD= pw_in b python3 -c "
import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('$PW_IP_b', $st_port)); l.listen(1); print('READY', flush=True)
c, _ = l.accept(); c.recv(1)
time.sleep(3); c.close(); time.sleep(4)" >"$PW_DIR/status-srv.log" 2>&1 &
	st_srv=$!
	PW_PIDS="$PW_PIDS $st_srv"
	for _ in $(seq 100); do grep -q READY "$PW_DIR/status-srv.log" && break; sleep 0.05; done
	pw_in a python3 -c "
import os, signal, socket
s = socket.create_connection(('$PW_IP_b', $st_port)); s.send(b'x')
os.kill(os.getpid(), signal.SIGKILL)" 2>/dev/null
	sleep 2
	st1=$("$PW_CLI" status --socket "$PW_SOCK" --json 2>&1)
	sleep 3.5
	st2=$("$PW_CLI" status --socket "$PW_SOCK" --json 2>&1)
	SEM_RC=0
	SEM_WHY=""
	if ! echo "$st1" | grep -q "\"accepting\":\"$PW_IP_b:$st_port\""; then
		SEM_RC=1 SEM_WHY="the connection is not listed while the server holds it: $st1"
	elif echo "$st1" | grep -q "\"state\":\"open\"[^}]*\"accepting\":\"$PW_IP_b:$st_port\""; then
		SEM_RC=1 SEM_WHY="the killed client's connection shows open: $st1"
	elif echo "$st2" | grep -q "\"accepting\":\"$PW_IP_b:$st_port\""; then
		SEM_RC=1 SEM_WHY="still listed after both ends are gone: $st2"
	elif ! kill -0 "$st_srv" 2>/dev/null; then
		SEM_RC=1 SEM_WHY="the server was meant to be alive still"
	fi
	SEM_SLOG=$PW_DIR/status-srv.log
	SEM_CLOG=/dev/null
	sem_record "status after a client's kill -9" python-server
	wait "$st_srv" 2>/dev/null

	echo "# ---- the router"
	# A connection set up, then the router dies before the server accepts it.
	sem_run router-killed-pending accept_late 1 1 any "sleep 0.3; sem_kill_router"
	sem_record "router killed before accept" accept_late
	sem_kill_router
	pw_router_restart

	# An established connection outlives the router.
	sem_run router-killed stream_long 1 1 accel sem_mid_kill_router
	sem_record "router killed mid-stream" stream_long
	sem_kill_router

	# No router: the kernel carries new connections, whether the router died
	# (its socket file is left behind) or never started (no socket file).
	sem_run router-dead echo 1 1 kernel
	sem_record "router dead" echo
	rm -f "$PW_SOCK"
	sem_run router-not-started echo 1 1 kernel
	sem_record "router not started" echo

	# Back: new connections are accelerated again.
	pw_router_restart
	sem_run router-restarted echo 1 1 accel
	c1=$(sem_metric podwire_claims_total)
	if [ "$SEM_RC" = 0 ] && [ "${c1:-0}" -lt 1 ]; then
		SEM_RC=1
		SEM_WHY="not accelerated after the restart"
	fi
	sem_record "router restarted" echo "(claims ${c1:-0})"
fi

echo "# ---- summary ($((SECONDS - T0)) s)"
for label in preload reuse adapt preload-kernel kernel; do
	n=$(awk -F'\t' -v l=$label '$2 == l' "$SUMMARY" | wc -l)
	[ "$n" -gt 0 ] || continue
	ok=$(awk -F'\t' -v l=$label '$2 == l && $1 == "ok"' "$SUMMARY" | wc -l)
	gap=$(awk -F'\t' -v l=$label '$2 == l && $1 == "GAP" { printf "%s ", $3 }' "$SUMMARY")
	[ -z "$gap" ] || echo "# $label: known gaps (see docs/PRELOAD.md): $gap"
	bad=$(awk -F'\t' -v l=$label '$2 == l && $1 == "FAIL" { printf "%s ", $3 }' "$SUMMARY")
	echo "# $label: $ok of $n passed${bad:+; failed: $bad}"
done
other=$(awk -F'\t' '$2 != "preload" && $2 != "reuse" && $2 != "adapt" && $2 != "preload-kernel" && $2 != "kernel" && $1 != "ok" { printf "[%s: %s %s] ", $2, $3, $1 }' "$SUMMARY")
echo "# mixed peers and router: ${other:-all passed}"
both=$(awk -F'\t' '($2 == "preload" || $2 == "reuse" || $2 == "adapt") && $1 == "FAIL" { p[$3] = 1 } $2 == "kernel" && $1 == "ok" { k[$3] = 1 }
	END { for (t in p) if (t in k) printf "%s ", t }' "$SUMMARY")
[ -z "$both" ] || echo "# podwire bugs (fail under the preload, pass on the kernel): $both"
kfail=$(awk -F'\t' '$2 == "kernel" && $1 == "FAIL" { printf "%s ", $3 }' "$SUMMARY")
[ -z "$kfail" ] || echo "# tests failing on the kernel itself (the test is wrong): $kfail"
[ "$NFAIL" = 0 ] || exit 1
exit 0
