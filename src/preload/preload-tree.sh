#!/bin/sh
# SPDX-License-Identifier: MIT
# Lay out the preload directory that one LD_PRELOAD value serves from, for
# programs of either C library (docs/PRELOAD.md, "Every C library"):
#
#   LD_PRELOAD=DIR/$LIB/libpodwire.so
#
# glibc's loader expands $LIB (lib/x86_64-linux-gnu on Debian and Ubuntu,
# lib64 on Fedora and RHEL, lib elsewhere) and finds the glibc build; musl's
# loader takes "$LIB" literally and finds the musl build in a directory of
# that name. Without a musl build a musl program finds nothing there, and
# musl then runs it without the library (on the kernel's sockets).
#
# With -v, the glibc directories also hold libpodwire-verbs.so, the virtual
# RDMA device (docs/RDMA.md), for DIR/$LIB/libpodwire-verbs.so beside it in
# LD_PRELOAD. musl's loader skips a preload it cannot find without a word,
# so musl programs simply go without it.
#
# Usage: preload-tree.sh [-v VERBS_SO] DIR GLIBC_SO [MUSL_SO]
# As a meson install script the paths are relative to the install prefix
# (under $DESTDIR).
set -eu
verbs=
if [ "${1:-}" = -v ]; then
	verbs=$2
	shift 2
fi
dir=$1 glibc=$2 musl=${3:-}
if [ -n "${MESON_INSTALL_DESTDIR_PREFIX:-}" ]; then
	p=$MESON_INSTALL_DESTDIR_PREFIX
	dir=$p/$dir glibc=$p/$glibc musl=${musl:+$p/$musl} verbs=${verbs:+$p/$verbs}
fi
rm -rf "$dir"
for sub in lib/x86_64-linux-gnu lib64 lib; do
	mkdir -p "$dir/$sub"
	cp "$glibc" "$dir/$sub/libpodwire.so"
	if [ -n "$verbs" ]; then
		cp "$verbs" "$dir/$sub/libpodwire-verbs.so"
	fi
done
if [ -n "$musl" ]; then
	mkdir -p "$dir/\$LIB"
	cp "$musl" "$dir/\$LIB/libpodwire.so"
fi
