# SPDX-License-Identifier: MIT
# podman for the CNI tests: private storage, state and network configuration
# under $PW_DIR/podman (the CNI backend, our plugin directory first), removed
# at the end with whatever it mounted; and images made from host binaries.
# Source after tests/cni/lib.sh and pw_cni_init; then pm_init.

pm_init() {
	pw_need podman runc conmon ldd
	PM_DIR=$PW_DIR/podman
	mkdir -p "$PM_DIR/net" "$PM_DIR/bin"
	# libcni keeps its result cache in /var/lib/cni: remove it if we made it.
	[ -e /var/lib/cni ] && cni_cache_was_there=1 || cni_cache_was_there=0
	export CONTAINERS_CONF=$PM_DIR/containers.conf
	PM=(podman --root "$PM_DIR/root" --runroot "$PM_DIR/runroot" --tmpdir "$PM_DIR/tmp"
		--storage-driver vfs --runtime runc --cgroup-manager cgroupfs
		--network-config-dir "$PM_DIR/net" --events-backend none)
	ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
	trap pm_cleanup EXIT
	cat >"$CONTAINERS_CONF" <<EOC
[network]
network_backend = "cni"
cni_plugin_dirs = ["$PM_DIR/bin", "$PW_CNI_PLUGINS"]
network_config_dir = "$PM_DIR/net"
[engine]
events_logger = "none"
EOC
	ln -s "$(readlink -f "$PW_CNI")" "$PM_DIR/bin/podwire-cni"
}

pm_cleanup() {
	local rc=$?
	"${PM[@]}" rm -af -t 0 >/dev/null 2>&1
	"${PM[@]}" rmi -af >/dev/null 2>&1
	# Whatever podman left mounted under its roots.
	findmnt -rn -o TARGET | grep "^$PM_DIR" | sort -r | xargs -r umount -l 2>/dev/null
	if [ "$cni_cache_was_there" = 0 ]; then
		rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null
	fi
	(exit "$rc") # pw_cni_cleanup reports the test's status
	pw_cni_cleanup
}

# pm_image NAME FILE...: an image localhost/NAME:1 of the given host files
# (programs, libraries, anything), each at its own path, with the shared
# libraries the ELF ones need; its name goes to $IMAGE.
pm_image() {
	local name=$1 root=$PW_DIR/rootfs-$1 f lib
	shift
	mkdir -p "$root/tmp" "$root/etc" "$root/run"
	for f in "$@"; do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f" || pw_fail "image $name: cannot copy $f"
	done
	for lib in $(for f in "$@"; do ldd "$f" 2>/dev/null; done | grep -o '/[^ ]*' | sort -u); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	echo 'root:x:0:0:root:/:/bin/false' >"$root/etc/passwd"
	tar -C "$root" -cf "$PW_DIR/rootfs-$name.tar" . || pw_fail "tar of the rootfs"
	IMAGE=localhost/$name:1
	"${PM[@]}" import -q "$PW_DIR/rootfs-$name.tar" "$IMAGE" >/dev/null || pw_fail "podman import"
}

# The standalone podwire-cni network $PW_TAG-sa on $PW_NET.0/24 (bridge
# $PW_TAG-sa), its IPAM under $PW_DIR/ipam, registering with podwired at SOCK.
pm_net_standalone() { # sock
	cat >"$PM_DIR/net/$PW_TAG-sa.conflist" <<EOC
{
  "cniVersion": "1.0.0",
  "name": "$PW_TAG-sa",
  "plugins": [
    { "type": "podwire-cni", "bridge": "$PW_TAG-sa", "podwireSocket": "$1",
      "ipam": { "type": "podwire", "subnet": "$PW_NET.0/24",
                "routes": [ { "dst": "0.0.0.0/0" } ], "dataDir": "$PW_DIR/ipam" } }
  ]
}
EOC
	pw_cni_link "$PW_TAG-sa"
}

# Podman sees networks NAMES...
pm_nets_seen() {
	"${PM[@]}" network ls --format '{{.Name}}' >"$PW_DIR/nets" 2>&1 || pw_fail "podman network ls: $(cat "$PW_DIR/nets")"
	for n in "$@"; do
		grep -qx "$n" "$PW_DIR/nets" || pw_fail "podman does not see $n: $(cat "$PW_DIR/nets")"
	done
}
