#!/bin/sh
# SPDX-License-Identifier: MIT
# libpodwire.so runs on every thread of every process of a pod, and glibc
# carves static TLS out of each thread's stack: a thread made with a 16 KiB
# stack (the minimum) must still have room. So the library's TLS stays
# within 1 KiB and no function of it has a stack frame over 2 KiB
# (-fstack-usage, see src/preload/meson.build). And it must load into
# programs of an older glibc than it was built with.
# Usage: test-preload-footprint.sh LIBPODWIRE.SO [OBJDIR...]
# The OBJDIRs hold the .su files of the static libraries linked into it.
set -u
lib=$1
shift
dirs="$(dirname "$lib")/libpodwire.so.p $*"
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v readelf >/dev/null 2>&1 || { echo "SKIP: readelf (binutils) missing" >&2; exit 77; }
[ -f "$lib" ] || fail "$lib missing"

hex=$(readelf -lW "$lib" | awk '$1 == "TLS" { print $6 }')
tls=$((${hex:-0}))
echo "# TLS segment: $tls bytes (memsz ${hex:-none})"
[ "$tls" -le 1024 ] || fail "TLS segment of $tls bytes (want <= 1024): readelf -lW $lib"

# Programs of older glibc (Debian 11, Ubuntu 20.04, UBI 8) load the glibc
# build too: no symbol may need a version newer than GLIBC_2.17
# (tests/e2e/test-oldglibc.sh runs it under glibc 2.31).
if command -v objdump >/dev/null 2>&1; then
	newest=$(objdump -T "$lib" | grep -o 'GLIBC_2\.[0-9.]*' | sort -t. -k2,2n -k3,3n -u | tail -n 1)
	echo "# newest glibc symbol version needed: ${newest:-none}"
	minor=$(echo "${newest:-GLIBC_2.0}" | cut -d. -f2)
	[ "$minor" -le 17 ] || fail "$lib needs $newest: programs of an older glibc would not start"
fi

sus=""
for dir in $dirs; do
	ls "$dir"/*.su >/dev/null 2>&1 || fail "no stack-usage files in $dir (built without -fstack-usage?)"
	sus="$sus $(echo "$dir"/*.su)"
done
# shellcheck disable=SC2086 # a list of paths without spaces
big=$(cat $sus | awk -F'\t' '$2 > 2048 { print $1 " " $2 " bytes" }')
# shellcheck disable=SC2086
top=$(cat $sus | sort -t"$(printf '\t')" -k2 -n | tail -n 1)
echo "# largest stack frame: $top"
[ -z "$big" ] || fail "stack frames over 2 KiB: $big"
echo "ok"
