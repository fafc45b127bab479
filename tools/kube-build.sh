#!/bin/sh
# Build a real Kubernetes control plane from Debian's own source package, or
# reuse the one already built, and print the directory holding the binaries.
#
# Usage: tools/kube-build.sh [--check]
#   --check   print the directory if the cache is complete, else fail; never
#             build or install anything
#
# The binaries (kube-apiserver, kube-proxy, kube-scheduler, kubectl) are built
# offline (GOPROXY=off) from `apt-get source kubernetes` with its vendor tree
# and its own make, and kept
# under $PODWIRE_KUBE_CACHE (default /var/cache/podwire/kube), one directory
# per source version, so a clean clone reuses them. etcd comes from the
# etcd-server package. As root, missing packages and the deb-src entry are
# added; otherwise the exact commands are printed.
#
# The vendored github.com/modern-go/reflect2 1.0.1 does not work with Go 1.18
# and later (it panics at init); Debian's golang-github-modern-go-reflect2-dev
# 1.0.2 replaces it, as Debian's own package build does.
set -eu

cache=${PODWIRE_KUBE_CACHE:-/var/cache/podwire/kube}
bins="kube-apiserver kube-proxy kube-scheduler kubectl"
pkgs="golang-go etcd-server golang-github-modern-go-reflect2-dev dpkg-dev rsync jq make"
check=0
case "${1:-}" in
--check) check=1 ;;
-h | --help)
	sed -n '2,19s/^# \{0,1\}//p' "$0"
	exit 0
	;;
"") ;;
*)
	echo "usage: $0 [--check]" >&2
	exit 2
	;;
esac

log() { echo "kube-build: $*" >&2; }

srcver() {
	apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1
}

complete() {
	for b in $bins; do
		[ -x "$1/$b" ] || return 1
	done
	[ -e "$1/.complete" ]
}

# Reuse: the newest complete build in the cache, whatever apt says now (the
# archive may be unreachable, or the deb-src entry absent).
reuse() {
	[ -d "$cache" ] || return 1
	for d in $(ls -1d "$cache"/*/ 2>/dev/null | sort -V -r); do
		d=${d%/}
		if complete "$d"; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

if dir=$(reuse) && command -v etcd >/dev/null 2>&1; then
	echo "$dir"
	exit 0
fi
[ "$check" -eq 1 ] && exit 1

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
have_src=0
grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && have_src=1
grep -qs '^deb-src ' /etc/apt/sources.list && have_src=1
if [ "$(id -u)" -ne 0 ]; then
	if [ -n "$missing" ] || [ "$have_src" -eq 0 ]; then
		log "needs root to install:$missing${missing:+ }and a deb-src entry for bookworm"
		log "run as root: tools/kube-build.sh"
		exit 1
	fi
fi
if [ "$have_src" -eq 0 ]; then
	log "adding a deb-src entry for bookworm main (/etc/apt/sources.list.d/podwire-src.sources)"
	cat >/etc/apt/sources.list.d/podwire-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	apt-get update -q >/dev/null
fi
if [ -n "$missing" ]; then
	log "installing$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing; }
fi
# etcd-server's unit would start an etcd on 2379 as a host service: the tests
# run their own on other ports, so the packaged one is stopped and disabled.
if command -v systemctl >/dev/null 2>&1 && systemctl is-enabled etcd >/dev/null 2>&1; then
	systemctl disable --now etcd >/dev/null 2>&1 || true
fi

ver=$(srcver)
[ -n "$ver" ] || {
	log "apt-cache knows no source package 'kubernetes'"
	exit 1
}
out="$cache/$ver"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if complete "$out"; then
	echo "$out"
	exit 0
fi

work=$(mktemp -d "$cache/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building kubernetes $ver in $work (about 6 minutes on 2 vCPUs)"
# As root, so that apt does not try to drop to _apt in a directory it may not
# enter. apt checks the files against the archive's signed indices, so
# dpkg-source need not look for the uploader's key (which is not installed).
(cd "$work" && apt-get source -q -o APT::Sandbox::User=root --download-only "kubernetes=$ver" \
	>/dev/null && dpkg-source -q --no-check -x ./*.dsc src >/dev/null)
src="$work/src"
rm -rf "$src/vendor/github.com/modern-go/reflect2"
cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/vendor/github.com/modern-go/reflect2"
# Kubernetes' own make, as Debian's rules run it: it generates the code the
# tree does not carry (the OpenAPI definitions...), then builds in GOPATH mode
# with the vendor tree. The version it stamps comes from version.env.
upver=$(echo "$ver" | sed 's/^.*really//; s/-.*$//')
{
	echo "KUBE_GIT_COMMIT=debian-$ver"
	echo "KUBE_GIT_TREE_STATE=clean"
	echo "KUBE_GIT_VERSION=v$upver"
	echo "KUBE_GIT_MAJOR=1"
	echo "KUBE_GIT_MINOR=$(echo "$upver" | cut -d. -f2)"
} >"$work/version.env"
what=""
for b in $bins; do
	what="$what cmd/$b"
done
log "make WHAT=\"${what# }\""
if ! (cd "$src" && env HOME="$work" KUBE_GIT_VERSION_FILE="$work/version.env" GOPROXY=off \
	GOFLAGS= GOCACHE="$work/gocache" KUBE_BUILD_PLATFORMS=linux/amd64 \
	make WHAT="${what# }" >"$work/make.log" 2>&1); then
	tail -n 30 "$work/make.log" >&2
	log "the build failed"
	exit 1
fi
mkdir -p "$work/bin"
for b in $bins; do
	cp "$src/_output/bin/$b" "$work/bin/$b"
done
touch "$work/bin/.complete"
rm -rf "$out"
mv "$work/bin" "$out"
log "done: $out"
echo "$out"
