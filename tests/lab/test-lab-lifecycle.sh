#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# podwire lab lifecycle: usage errors; --no-podwire (no routers, no preload);
# refusing a second 'up'; 'down' after a router was kill -9'd and after the
# state directory was lost; 'up' failing midway (an iproute2 command, then a
# router) or on a conflicting namespace, removing all it created and nothing
# else.
set -u
. "$(dirname "$0")/lib.sh"
lab_init life
pw_need ping python3

expect_rc() { # want label cmd...
	local want=$1 label=$2 rc
	shift 2
	"$@" >"$LAB_TMP/out" 2>&1
	rc=$?
	[ "$rc" = "$want" ] || pw_fail "$label: exit $rc, want $want: $(cat "$LAB_TMP/out")"
}
expect_msg() { # regex
	grep -q -E "$1" "$LAB_TMP/out" || pw_fail "output lacks '$1': $(cat "$LAB_TMP/out")"
}

# Usage errors (exit 2) and missing labs
expect_rc 2 "--nodes 0" pwlab up --nodes 0
expect_msg "bad --nodes '0'"
expect_rc 2 "--pods-per-node x" pwlab up --pods-per-node x
expect_rc 2 "--overlay" pwlab up --overlay geneve
expect_msg "vxlan or host-gw"
expect_rc 2 "bad name" pwlab up --name 'a/b'
expect_msg "bad lab name"
expect_rc 2 "unknown subcommand" pwlab frobnicate
expect_rc 2 "exec without a command" pwlab exec n1p1 --
expect_rc 1 "status of no lab" pwlab status
expect_msg "no lab named '$LAB'"
expect_rc 0 "down of no lab" pwlab down
expect_msg "nothing to remove"
for sub in up exec status down; do
	expect_rc 0 "$sub --help" pwlab "$sub" --help
	expect_msg "^Usage: podwire lab $sub"
done
if command -v setpriv >/dev/null && setpriv --reuid 65534 --regid 65534 --clear-groups \
	"$PW_CLI" lab --help >/dev/null 2>&1; then
	expect_rc 1 "up as non-root" setpriv --reuid 65534 --regid 65534 --clear-groups \
		"$PW_CLI" lab up --name "$LAB"
	expect_msg "must run as root"
fi
lab_assert_gone

# --no-podwire: no routers, no preload; the overlay still works
expect_rc 0 "up --no-podwire" pwlab up --nodes 2 --pods-per-node 1 --no-podwire
[ -z "$(lab_procs)" ] || pw_fail "routers run in a --no-podwire lab"
[ "$(lab_json '"%s %s" % (j["podwire"], j["nodes"][0]["router"])')" = "False None" ] ||
	pw_fail "status: $(pwlab status --json)"
env=$(pwlab exec n1p1 -- env)
! echo "$env" | grep -q -E "^(LD_PRELOAD=.*libpodwire|PODWIRE_SOCKET=)" || pw_fail "env: $env"
pwlab exec n1p1 -- ping -c 1 -W 2 198.19.2.11 >/dev/null || pw_fail "no-podwire cross-node ping"
expect_rc 0 "down" pwlab down
lab_assert_gone

# A second 'up' is refused and leaves the first lab alone
expect_rc 0 "up" pwlab up --nodes 2 --pods-per-node 1
expect_rc 1 "second up" pwlab up --nodes 3
expect_msg "a lab named '$LAB' exists"
[ "$(lab_json '"%s %s" % (j["node_count"], [n["router"]["alive"] for n in j["nodes"]])')" = "2 [True, True]" ] ||
	pw_fail "first lab damaged: $(pwlab status --json)"

# kill -9 one router: status says so, down still removes everything
pid=$(lab_json 'j["nodes"][0]["router"]["pid"]')
kill -9 "$pid"
for _ in $(seq 50); do [ -z "$(ps -o pid= -p "$pid" | grep -v Z)" ] && break; sleep 0.05; done
[ "$(lab_json 'j["nodes"][0]["router"]["alive"]')" = False ] || pw_fail "killed router alive"
pwlab status | grep -q "^n1 .*DEAD" || pw_fail "status: $(pwlab status)"
expect_rc 0 "down after kill -9" pwlab down
lab_assert_gone

# Lost state: the namespaces and routers are still found by name
expect_rc 0 "up" pwlab up --nodes 2 --pods-per-node 1 --overlay host-gw
[ -n "$(lab_procs)" ] || pw_fail "no routers"
routers=$(ip netns pids "pwlab-$LAB-n1"; ip netns pids "pwlab-$LAB-n2")
rm -rf "/run/podwire/lab/$LAB"
expect_rc 0 "down without state" pwlab down
lab_assert_gone
for p in $routers; do
	! ps -o stat= -p "$p" | grep -qv Z || pw_fail "router $p survived"
done

# Failure midway through the iproute2 commands (a 'bridge' that fails)
mkdir "$LAB_TMP/bin"
printf '#!/bin/sh\necho "injected bridge failure" >&2\nexit 3\n' >"$LAB_TMP/bin/bridge"
chmod 755 "$LAB_TMP/bin/bridge"
expect_rc 1 "up with a failing bridge(8)" env PATH="$LAB_TMP/bin:$PATH" \
	"$PW_CLI" lab up --nodes 2 --pods-per-node 2 --overlay vxlan
expect_msg "'bridge -n pwlab-$LAB-n1 fdb append .* dst 198.18.0.2 self permanent' failed with exit status 3: injected bridge failure"
expect_msg "removed what it had created"
lab_assert_gone

# Failure late: n2's router exits at start; n1's and n3's were running
real=$PW_BUILD/src/router/podwired
printf '#!/bin/sh\ncase "$*" in */n2/*) echo "injected router failure" >&2; exit 4 ;; esac\nexec %s "$@"\n' \
	"$real" >"$LAB_TMP/bin/podwired"
chmod 755 "$LAB_TMP/bin/podwired"
expect_rc 1 "up with a failing router" pwlab up --nodes 3 --pods-per-node 1 \
	--podwired "$LAB_TMP/bin/podwired"
expect_msg "podwired of n2 exited with status 4 while starting"
expect_msg "injected router failure"
lab_assert_gone

# A podwired with federation (--peers in its --help) gets the peer options; this
# wrapper records them and hands the rest to the real router.
cat >"$LAB_TMP/bin/podwired-fed" <<SH
#!/bin/sh
if [ "\$1" = --help ]; then $real --help; echo "      --peers LIST"; exit 0; fi
echo "\$*" >>"$LAB_TMP/fed-args"
skip=0
for a do
	shift
	if [ \$skip = 1 ]; then skip=0; continue; fi
	case \$a in --node-name|--pod-cidr|--peer-listen|--peers|--secret-file) skip=1; continue ;; esac
	set -- "\$@" "\$a"
done
exec $real "\$@"
SH
chmod 755 "$LAB_TMP/bin/podwired-fed"
expect_rc 0 "up with a federating podwired" pwlab up --nodes 3 --pods-per-node 1 \
	--podwired "$LAB_TMP/bin/podwired-fed"
secret=/run/podwire/lab/$LAB/secret
grep -q -- "--node-name n2 --pod-cidr 198.19.2.0/24 --peer-listen 198.18.0.2:7470 --peers 198.18.0.1:7470,198.18.0.3:7470 --secret-file $secret\$" \
	"$LAB_TMP/fed-args" || pw_fail "federation options: $(cat "$LAB_TMP/fed-args")"
[ "$(grep -c -- "--peers" "$LAB_TMP/fed-args")" = 3 ] || pw_fail "$(cat "$LAB_TMP/fed-args")"
[ "$(stat -c %a "$secret")" = 600 ] || pw_fail "secret mode $(stat -c %a "$secret")"
grep -q -x -E '[0-9a-f]{64}' "$secret" || pw_fail "secret: $(cat "$secret")"
[ "$(lab_json 'j["federation"]')" = True ] || pw_fail "status: $(pwlab status --json)"
expect_rc 0 "down" pwlab down
lab_assert_gone

# A conflicting namespace: refused up front, and the stranger is left alone
ip netns add "pwlab-$LAB-n2p1" || pw_fail "netns add"
LAB_EXTRA_NS="pwlab-$LAB-n2p1"
expect_rc 1 "up over a leftover namespace" pwlab up --nodes 2 --pods-per-node 2
expect_msg "network namespace pwlab-$LAB-n2p1 exists"
ip netns list | grep -q "^pwlab-$LAB-n2p1" || pw_fail "the conflicting namespace was removed"
[ "$(ip netns list | grep -c "^pwlab-$LAB-")" = 1 ] || pw_fail "up left: $(ip netns list)"
[ ! -e "/run/podwire/lab/$LAB" ] || pw_fail "up left its state directory"
# ... and 'down' takes it as part of the lab (it has the lab's name)
expect_rc 0 "down of a leftover" pwlab down
expect_msg "removed \(1 namespace\)"
lab_assert_gone
LAB_EXTRA_NS=""
exit 0
