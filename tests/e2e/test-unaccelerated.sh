#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Processes the library cannot accelerate must run exactly as without it
# (docs/PRELOAD.md, "Processes the library cannot accelerate"), pod to pod,
# with LD_PRELOAD set for every process as in a pod where podwire is on; and
# a process started under a seccomp filter like a container runtime's is
# accelerated as usual:
#   - a server started under a seccomp filter (bubblewrap --seccomp) that,
#     like Docker's or podman's default profile, kills for calls no network
#     server needs (mount, ptrace, bpf, keyctl, unshare, ...);
#   - a static binary (busybox), as server and as client: LD_PRELOAD does
#     not apply to it;
#   - a Go program (prometheus-node-exporter): it loads the library but
#     makes its socket calls itself.
# Each serves or fetches real content, checked, with an accelerated peer on
# the other side; for the unaccelerated ones the router must see no claim.
set -u
. "$(dirname "$0")/lib.sh"
pw_need curl python3 bwrap busybox sha256sum
NODE_EXP=/usr/bin/prometheus-node-exporter
[ -x "$NODE_EXP" ] || pw_skip "prometheus-node-exporter is not installed"
file /bin/busybox 2>/dev/null | grep -q "statically linked" || pw_skip "busybox is not the static one (apt-get install busybox-static)"
pw_e2e_init unaccel
pw_pod a 11
pw_pod b 12
pw_router_metrics
W=$PW_DIR/www
mkdir -p "$W"
chmod 755 "$W"
head -c 20000000 /dev/urandom >"$W/big"
want=$(sha256sum <"$W/big" | cut -d' ' -f1)

claims() { pw_metric podwire_claims_total; }

fetch() { # what url [client...]
	local what=$1 url=$2 got
	shift 2
	for i in 1 2 3; do
		got=$(pw_in a timeout 30 "$@" "$url" | sha256sum | cut -d' ' -f1)
		[ "$got" = "$want" ] || pw_fail "$what: download $i: sha256 $got, want $want"
	done
}

# A seccomp filter (classic BPF, x86-64) that kills for the listed calls, as
# container runtimes' default profiles refuse them.
python3 - "$PW_DIR/deny.bpf" <<'PY'
import struct, sys
# mount, umount2, ptrace, kexec_load, add_key, keyctl, unshare, perf_event_open,
# bpf, userfaultfd, setns, init_module, delete_module, reboot
deny = [165, 166, 101, 246, 248, 250, 272, 298, 321, 323, 308, 175, 176, 169]
ld, jeq, ret = 0x20, 0x15, 0x06
ins = [(ld, 0, 0, 4), (jeq, 1, 0, 0xC000003E), (ret, 0, 0, 0x80000000), (ld, 0, 0, 0)]
for nr in deny:
    ins += [(jeq, 0, 1, nr), (ret, 0, 0, 0x80000000)]
ins.append((ret, 0, 0, 0x7FFF0000))
open(sys.argv[1], "wb").write(b"".join(struct.pack("<HBBI", *i) for i in ins))
PY

pw_log "a server under a container-like seccomp filter (bubblewrap --seccomp): accelerated"
c0=$(claims)
pw_bg b sh -c "cd '$W' && exec bwrap --bind / / --dev-bind /dev /dev --seccomp 9 \
	python3 -m http.server --bind $PW_IP_b 8001 9<'$PW_DIR/deny.bpf'"
srv=$PW_LAST
pw_wait_listen b 8001
fetch "sandboxed server" "http://$PW_IP_b:8001/big" curl -sS
kill -0 "$srv" 2>/dev/null || pw_fail "the sandboxed server died: $(tail -3 "$PW_DIR/b.log")"
pw_in b grep -q "^Seccomp:.2" "/proc/$(pgrep -n -f "http.server --bind $PW_IP_b 8001")/status" ||
	pw_fail "the server is not in seccomp mode"
[ $(( $(claims) - c0 )) -ge 3 ] || pw_fail "the server under seccomp was not accelerated"
kill "$srv"

pw_log "a static server (busybox httpd), an accelerated client"
c0=$(claims)
pw_bg b busybox httpd -f -p "$PW_IP_b:8002" -h "$W"
pw_wait_listen b 8002
fetch "static server" "http://$PW_IP_b:8002/big" curl -sS
[ "$(claims)" = "$c0" ] || pw_fail "claims moved"

pw_log "a static client (busybox wget), an accelerated server"
pw_bg b sh -c "cd '$W' && exec python3 -m http.server --bind $PW_IP_b 8003"
pw_wait_listen b 8003
fetch "static client" "http://$PW_IP_b:8003/big" busybox wget -q -O -
[ "$(claims)" = "$c0" ] || pw_fail "claims moved"
pw_log "(the same server, accelerated client: carried by podwire)"
fetch "accelerated client" "http://$PW_IP_b:8003/big" curl -sS
[ $(( $(claims) - c0 )) -ge 3 ] || pw_fail "the accelerated pair was not accelerated"

pw_log "a Go program (prometheus-node-exporter), an accelerated client"
c0=$(claims)
pw_bg b "$NODE_EXP" --web.listen-address="$PW_IP_b:8004" --collector.disable-defaults \
	--collector.loadavg
pw_wait_listen b 8004
for i in 1 2 3; do
	out=$(pw_in a timeout 10 curl -sS "http://$PW_IP_b:8004/metrics")
	echo "$out" | grep -q "^node_load1 " || pw_fail "Go server: no node_load1 in /metrics"
done
pw_in b grep -q libpodwire "/proc/$(pgrep -n -f "$NODE_EXP --web.listen-address=$PW_IP_b")/maps" ||
	pw_log "(the Go program did not load the library)"
[ "$(claims)" = "$c0" ] || pw_fail "claims moved for the Go server"
echo ok
