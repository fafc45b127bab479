#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A pod whose image has an older glibc than the one podwire is built with:
# Debian 11 (glibc 2.31, like Ubuntu 20.04 or UBI 8), made with debootstrap
# once (build/oldglibc-root, about 30 s and 40 MB from Debian's archive). A
# library that needed GLIBC_2.34 made every program of such an image fail
# to start ("version `GLIBC_2.34' not found"). Here Debian 11's bash, under
# the preload, opens a connection with /dev/tcp to a server in another pod,
# Debian 11's cat writes the request and another cat, exec()ed on it
# (take-over across exec), reads the 10 MB answer, which must be intact and
# carried by podwire. (bash's printf would write the socket through stdio,
# which the library cannot see: docs/PRELOAD.md, known gaps.)
set -u
. "$(dirname "$0")/lib.sh"
pw_need python3 sha256sum
command -v debootstrap >/dev/null || pw_skip "debootstrap is not installed (apt-get install debootstrap)"
pw_e2e_init oldglibc
ROOT=$PW_BUILD/oldglibc-root
if [ ! -x "$ROOT/bin/bash" ]; then
	rm -rf "$ROOT.tmp"
	debootstrap --variant=minbase bullseye "$ROOT.tmp" http://deb.debian.org/debian \
		>"$PW_DIR/debootstrap.log" 2>&1 ||
		pw_skip "debootstrap of Debian 11 failed (no archive?): $(tail -2 "$PW_DIR/debootstrap.log")"
	mv "$ROOT.tmp" "$ROOT"
fi
glibc=$(chroot "$ROOT" /lib/x86_64-linux-gnu/libc.so.6 | head -n 1)
pw_log "image: $glibc"
mkdir -p "$ROOT/podwire" "$ROOT/run"
cp "$PW_LIB" "$ROOT/podwire/libpodwire.so"
pw_pod a 11
pw_pod b 12
# The router's socket where the old image sees it too.
PW_SOCK=$ROOT/run/podwired-$PW_TAG.sock
pw_router_metrics
oldglibc_cleanup() {
	local rc=$?
	rm -f "$PW_SOCK"
	(exit $rc)
	pw_cleanup
}
trap oldglibc_cleanup EXIT

W=$PW_DIR/www
mkdir -p "$W"
head -c 10000000 /dev/urandom >"$W/big"
want=$(sha256sum <"$W/big" | cut -d' ' -f1)
pw_bg b sh -c "cd '$W' && exec python3 -m http.server --bind $PW_IP_b 8000"
pw_wait_listen b 8000

out=$(ip netns exec "$PW_TAG-a" chroot "$ROOT" env LD_PRELOAD=/podwire/libpodwire.so \
	PODWIRE_SOCKET="/run/podwired-$PW_TAG.sock" /bin/bash -c 'echo started; exit 0' 2>&1)
[ "$out" = started ] || pw_fail "Debian 11's bash does not start under the preload: $out"

c0=$(pw_metric podwire_claims_total)
ip netns exec "$PW_TAG-a" chroot "$ROOT" env LD_PRELOAD=/podwire/libpodwire.so \
	PODWIRE_SOCKET="/run/podwired-$PW_TAG.sock" /bin/bash -c \
	"exec 3<>/dev/tcp/$PW_IP_b/8000 && printf 'GET /big HTTP/1.0\r\n\r\n' | cat >&3 &&
	 exec cat <&3" \
	>"$PW_DIR/response" 2>"$PW_DIR/client.err" || pw_fail "client: $(cat "$PW_DIR/client.err")"
got=$(python3 -c "
import sys, hashlib
d = open(sys.argv[1], 'rb').read()
print(hashlib.sha256(d[d.index(b'\r\n\r\n') + 4:]).hexdigest())" "$PW_DIR/response") ||
	pw_fail "no HTTP response: $(head -c 300 "$PW_DIR/response")"
[ "$got" = "$want" ] || pw_fail "the download differs: sha256 $got, want $want"
c1=$(pw_metric podwire_claims_total)
[ $(( ${c1:-0} - ${c0:-0} )) -ge 1 ] || pw_fail "the connection was not carried by podwire"
pw_log "10 MB through Debian 11's bash and cat, carried by podwire (claims ${c0:-0} -> ${c1:-0})"
echo ok
