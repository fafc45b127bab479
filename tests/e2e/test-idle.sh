#!/usr/bin/env bash
# 1000 idle accelerated connections cost no CPU: a client and a server, each
# holding 1000 connections in epoll, use (almost) no CPU over 3 s.
set -u
. "$(dirname "$0")/lib.sh"
pw_need python3 curl
pw_e2e_init idle
pw_pod a 11
pw_pod b 12
pw_router_metrics
ulimit -n 4096 || pw_skip "cannot raise the fd limit"
N=1000

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pw_bg b python3 "$(dirname "$0")/idle.py" server "$PW_IP_b" 7000 $N
srv=$PW_LAST
pw_wait_listen b 7000
pw_bg a python3 "$(dirname "$0")/idle.py" client "$PW_IP_b" 7000 $N
cli=$PW_LAST
for _ in $(seq 300); do
	[ "$(grep -c ready "$PW_DIR/a.log" "$PW_DIR/b.log" 2>/dev/null | awk -F: '{ s += $2 } END { print s }')" = 2 ] && break
	sleep 0.1
done
grep -q ready "$PW_DIR/a.log" && grep -q ready "$PW_DIR/b.log" ||
	pw_fail "connections not established: $(tail -3 "$PW_DIR/a.log" "$PW_DIR/b.log")"
claims=$(pw_metric podwire_claims_total)
[ "${claims:-0}" -ge $N ] || pw_fail "only ${claims:-0} of $N connections accelerated"

# $! is the shell that runs 'ip netns exec': find the python processes.
srv=$(pgrep -f "idle.py server $PW_IP_b 7000") || pw_fail "server process not found"
cli=$(pgrep -f "idle.py client $PW_IP_b 7000") || pw_fail "client process not found"
[ "$(wc -w <<<"$srv $cli")" = 2 ] || pw_fail "ambiguous pids: $srv / $cli"
sleep 0.5
hz=$(getconf CLK_TCK)
s0=$(cpu_ticks $srv); c0=$(cpu_ticks $cli)
sleep 3
s1=$(cpu_ticks $srv); c1=$(cpu_ticks $cli)
used=$(( (s1 - s0) + (c1 - c0) ))
pw_log "$N idle connections: $used ticks of CPU in 3 s (hz $hz), both processes"
# 3 s at $hz ticks/s: 1% of one CPU is 0.03 * hz ticks.
[ "$used" -le $(( hz * 3 / 100 )) ] || pw_fail "idle connections used $used ticks in 3 s"
exit 0
