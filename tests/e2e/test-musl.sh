#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Programs of both C libraries under one injected environment, pod to pod:
#
#   LD_PRELOAD=.../preload/$LIB/libpodwire.so
#
# glibc's loader expands $LIB to its own directory, musl's takes it literally;
# the preload tree (src/preload/preload-tree.sh) has the glibc build under the
# one and the musl build under the other. pw-sem built with musl-gcc runs
# against pw-sem built with glibc, both ways and musl to musl, and every
# connection must be carried by podwire. Then the same musl program with a
# tree that has no musl build: it must run on the kernel, never fail to start.
set -u
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || pw_skip "needs root (network namespaces)"
MUSL_SEM=$PW_BUILD/tests/pw-sem-musl
TREE=$PW_BUILD/src/preload/preload
[ -x "$MUSL_SEM" ] || pw_skip "no musl build of pw-sem (apt-get install musl-tools, then rebuild)"
[ -f "$TREE/\$LIB/libpodwire.so" ] || pw_fail "the preload tree has no musl build: $TREE"
GLIBC_SEM=$PW_BUILD/tests/pw-sem
SEM=$(dirname "$0")/test-semantics.sh
TESTS="echo rw_calls poll select epoll_lt epoll_et fork_rw exec_inherit stdio threads_duplex death_epoll_lt sendfile"
rc=0

# A musl program with the plain path of the glibc build dies before main;
# with the tree it starts. (The loader's message is what users saw.)
out=$(LD_PRELOAD="$PW_LIB" "$MUSL_SEM" list 2>&1 >/dev/null)
echo "# musl program, LD_PRELOAD=libpodwire.so (glibc build): exit $?, ${out:0:100}"
LD_PRELOAD="$TREE/\$LIB/libpodwire.so" "$MUSL_SEM" list >/dev/null ||
	pw_fail "a musl program does not start with LD_PRELOAD=$TREE/\$LIB/libpodwire.so"

run() { # label server-bin client-bin preload mode
	local out
	echo "# ---- $1"
	out=$(PW_PRELOAD=$4 PW_SEM_SERVER_BIN=$2 PW_SEM_CLIENT_BIN=$3 PW_SEM_MODES=$5 \
		PW_SEM_ONLY="$TESTS" "$SEM" 2>&1)
	local r=$?
	echo "$out" | grep -v 'carried by' | grep -E '^(ok|FAIL|SKIP|GAP)|^     \||^# preload'
	[ "$r" = 0 ] || echo "$out" | tail -n 30
	[ "$r" = 0 ] || rc=1
}
run "musl server, glibc client" "$MUSL_SEM" "$GLIBC_SEM" "$TREE/\$LIB/libpodwire.so" preload
run "glibc server, musl client" "$GLIBC_SEM" "$MUSL_SEM" "$TREE/\$LIB/libpodwire.so" preload
run "musl to musl" "$MUSL_SEM" "$MUSL_SEM" "$TREE/\$LIB/libpodwire.so" preload

# No musl build in the tree: musl's loader finds nothing under "$LIB" and
# runs the program without the library.
NOMUSL=$(mktemp -d /tmp/podwire-nomusl.XXXXXX)
trap 'rm -rf "$NOMUSL"' EXIT
cp -r "$TREE/lib" "$TREE/lib64" "$NOMUSL/"
chmod -R a+rX "$NOMUSL"
run "musl server without a musl build (kernel), glibc client" "$MUSL_SEM" "$GLIBC_SEM" \
	"$NOMUSL/\$LIB/libpodwire.so" preload-kernel
exit $rc
