#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# pw_claim (tests/lib.sh), without root, in a private lock directory: runs
# started at once get different numbers; a claim ends when its holder exits,
# even by SIGKILL, but not while a process it started lives; FREE can veto
# a number; a full range fails the claim.
set -u
LIB=$(cd "$(dirname "$0")" && pwd)/lib.sh
PW_LOCK_DIR=$(mktemp -d /tmp/podwire-test-claim.XXXXXX)
T=$PW_LOCK_DIR/t
export PW_LOCK_DIR LIB T
. "$LIB"
pw_need flock
mkdir "$T"
PIDS=""
cleanup() {
	local rc=$?
	touch "$T/stop" # the holders exit
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	wait
	rm -rf "$PW_LOCK_DIR"
	exit "$rc"
}
trap cleanup EXIT

# A run in the background: claims from KIND FIRST..LAST, writes the number
# to $T/OUT (or "fail"), then holds it until $T/stop exists. It waits with
# read -t on a FIFO nobody writes: a sleep(1) child would hold the claim too.
mkfifo "$T/never"
holder() { # out kind first last
	bash -c '. "$LIB"; trap "echo fail >$T/$1" EXIT
		pw_claim "$2" "$3" "$4" 2>/dev/null
		trap - EXIT; echo "$PW_CLAIM" >"$T/$1"
		while [ ! -e "$T/stop" ]; do read -r -t 0.05 _ <>"$T/never"; done' _ "$@" &
	LAST=$!
}
# Kill the last holder (the shell's "Killed" notice is noise here).
holder_kill() {
	kill -9 "$LAST"
	wait "$LAST"
} 2>/dev/null
result() { # out: wait for it and print it
	for _ in $(seq 200); do
		[ -s "$T/$1" ] && { cat "$T/$1"; return; }
		sleep 0.05
	done
	pw_fail "no result in $T/$1"
}

# Eight runs at once over eight numbers: each its own.
for i in $(seq 8); do holder "r$i" race 0 7; done
got=$(for i in $(seq 8); do result "r$i"; done | sort -n | tr '\n' ' ')
[ "$got" = "0 1 2 3 4 5 6 7 " ] || pw_fail "eight claims got: $got"
# A ninth finds none free.
holder r9 race 0 7
[ "$(result r9)" = fail ] || pw_fail "a ninth claim got $(cat "$T/r9")"
touch "$T/stop"
wait
rm -f "$T/stop"
# ... and once they have exited, every number is free again.
holder again race 3 3
[ "$(result again)" = 3 ] || pw_fail "3 not free after its holder exited"
holder_kill

# SIGKILL of the holder releases its claim.
holder k1 kill 0 0
[ "$(result k1)" = 0 ] || pw_fail "first claim of 'kill'"
holder_kill
holder k2 kill 0 0
[ "$(result k2)" = 0 ] || pw_fail "claim not released by SIGKILL"
holder_kill

# A process the holder started keeps the claim after the holder is gone.
bash -c '. "$LIB"; pw_claim child 0 0; sleep 60 >/dev/null 2>&1 & echo $! >"$T/child"'
child=$(cat "$T/child")
PIDS="$PIDS $child"
holder c1 child 0 0
[ "$(result c1)" = fail ] || pw_fail "claimed while the first holder's child lives"
kill -9 "$child"
holder c2 child 0 0
[ "$(result c2)" = 0 ] || pw_fail "not released when the child died"

# FREE vetoes: only odd numbers are free.
odd() { [ $(($1 % 2)) = 1 ]; }
for _ in 1 2 3; do
	(pw_claim veto 0 3 odd && echo "$PW_CLAIM" >"$T/veto")
	[ "$(cat "$T/veto")" = 1 ] || [ "$(cat "$T/veto")" = 3 ] || pw_fail "vetoed $(cat "$T/veto")"
done
echo "claims: all checks passed"
