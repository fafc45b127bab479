#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A second program that locks itself in a seccomp sandbox: Tor with
# "Sandbox 1" (a libseccomp allow-list installed at start-up, after its
# listeners are set up), serving its control port in pod b to controllers
# in pod a, everything under the preload. The library must step aside when
# Tor installs the filter: Tor keeps running and answers every controller
# (before, it died at start-up, killed by its own filter). Its connections
# then use the kernel (claims do not move); the controllers' library falls
# back by itself. DisableNetwork keeps Tor off the Internet.
set -u
. "$(dirname "$0")/lib.sh"
pw_need tor python3
pw_e2e_init tor
pw_pod a 11
pw_pod b 12
pw_router_metrics
D=$PW_DIR/tor
mkdir -p "$D/data"
chmod 700 "$D/data"
hash=$(tor --quiet --hash-password podwire 2>/dev/null | tail -n 1)
[ -n "$hash" ] || pw_fail "tor --hash-password"
cat >"$D/torrc" <<EOC
DataDirectory $D/data
SocksPort 0
ControlPort $PW_IP_b:9051
HashedControlPassword $hash
Sandbox 1
DisableNetwork 1
Log notice stderr
EOC
pw_bg b tor -f "$D/torrc"
tor=$PW_LAST
pw_wait_listen b 9051
pw_in b grep -q "^Seccomp:.2" "/proc/$tor/status" 2>/dev/null ||
	pw_in b sh -c "grep -q '^Seccomp:.2' /proc/\$(pgrep -n -x tor)/status" ||
	pw_fail "Tor is not in seccomp mode"

for i in $(seq 20); do
	out=$(pw_in a timeout 10 python3 -c "
import socket, sys
s = socket.create_connection(('$PW_IP_b', 9051))
s.sendall(b'AUTHENTICATE \"podwire\"\r\nGETINFO version config-text\r\nQUIT\r\n')
d = b''
while True:
    b = s.recv(4096)
    if not b:
        break
    d += b
print(d.decode())") || pw_fail "controller $i: $out"
	echo "$out" | grep -q "^250-version=" || pw_fail "controller $i: no version in: $out"
	echo "$out" | grep -q "^250 closing connection" || pw_fail "controller $i: $out"
done
kill -0 "$tor" 2>/dev/null || pw_fail "Tor died: $(tail -5 "$PW_DIR/b.log")"
pw_log "20 controllers answered; Tor alive in its sandbox"
echo ok
