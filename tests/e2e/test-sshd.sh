#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# OpenSSH under the preload on both sides, pod to pod. sshd re-executes
# itself for each connection (the socket crosses exec on fds 0 and 1), forks
# a pre-authentication child that chroots, drops privileges and locks itself
# in a seccomp filter allowing little more than read and write, then hands
# the connection back to its monitor, which forks the session. Before podwire
# stepped aside in seccomp mode, that child died of SIGSYS on the library's
# own system calls and every login failed.
#   - remote commands, their output and exit status;
#   - a 100 MB file copied there and back with scp (SFTP), checksummed;
#   - every connection carried by podwire (podwired's claims move, nothing
#     falls back to the kernel).
set -u
. "$(dirname "$0")/lib.sh"
pw_need ssh scp ssh-keygen sha256sum
[ -x /usr/sbin/sshd ] || pw_skip "sshd is not installed (apt-get install openssh-server)"
pw_e2e_init sshd
pw_pod a 11
pw_pod b 12
pw_router_metrics
D=$PW_DIR/ssh
mkdir -p "$D" /run/sshd
chmod 755 "$D"
ssh-keygen -q -t ed25519 -N '' -f "$D/host" || pw_fail "host key"
ssh-keygen -q -t ed25519 -N '' -f "$D/id" || pw_fail "client key"
cp "$D/id.pub" "$D/authorized_keys"
chmod 600 "$D/authorized_keys"
cat >"$D/sshd_config" <<EOC
Port 2222
ListenAddress $PW_IP_b
HostKey $D/host
AuthorizedKeysFile $D/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
Subsystem sftp /usr/lib/openssh/sftp-server
EOC
pw_bg b /usr/sbin/sshd -D -e -f "$D/sshd_config"
pw_wait_listen b 2222
OPTS=(-F none -i "$D/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
	-o BatchMode=yes -o LogLevel=ERROR)
c0=$(pw_metric podwire_claims_total)
f0=$(pw_metric podwire_connections_fallback_total)

pw_log "remote commands"
out=$(pw_in a timeout 30 ssh "${OPTS[@]}" -p 2222 root@"$PW_IP_b" \
	'echo remote ok; echo "$SSH_CONNECTION"; exit 7')
rc=$?
echo "$out"
[ "$rc" = 7 ] || pw_fail "ssh: exit $rc, want the remote command's 7"
echo "$out" | grep -qx "remote ok" || pw_fail "no remote output"
echo "$out" | grep -q "^$PW_IP_a [0-9]* $PW_IP_b 2222$" ||
	pw_fail "SSH_CONNECTION is not the pods' addresses: $out"

pw_log "100 MB there and back with scp"
head -c 100000000 /dev/urandom >"$D/big" || pw_fail "test file"
want=$(sha256sum <"$D/big" | cut -d' ' -f1)
t0=$SECONDS
pw_in a timeout 120 scp "${OPTS[@]}" -P 2222 "$D/big" root@"$PW_IP_b:$D/big.there" ||
	pw_fail "scp to the server"
pw_in a timeout 120 scp "${OPTS[@]}" -P 2222 root@"$PW_IP_b:$D/big.there" "$D/big.back" ||
	pw_fail "scp from the server"
pw_log "scp: 2 x 100 MB in $((SECONDS - t0)) s"
for f in big.there big.back; do
	got=$(sha256sum <"$D/$f" | cut -d' ' -f1)
	[ "$got" = "$want" ] || pw_fail "$f: sha256 $got, want $want"
done

c1=$(pw_metric podwire_claims_total)
f1=$(pw_metric podwire_connections_fallback_total)
pw_log "claims ${c0:-0} -> ${c1:-0}, fallbacks ${f0:-0} -> ${f1:-0}"
[ $(( ${c1:-0} - ${c0:-0} )) -ge 3 ] || pw_fail "the ssh connections were not carried by podwire"
[ "${f1:-0}" = "${f0:-0}" ] || pw_fail "a connection fell back to the kernel"
echo "ok"
