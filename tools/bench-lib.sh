# SPDX-License-Identifier: MIT
# Helpers shared by the benchmark scripts (sourced).

# pw_median VALUE...: the middle value as given; for an even count, the mean
# of the two middle ones. Prints nothing for no values.
pw_median() {
	printf '%s\n' "$@" | grep . | sort -g | awk '{ v[NR] = $1 } END {
		if (!NR) exit
		if (NR % 2) { print v[(NR + 1) / 2]; exit }
		m = (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf (m >= 1000 ? "%.0f\n" : "%.3f\n"), m }'
}

# pw_lab_wait_listen WHO TARGET PORT: wait (10 s at most) until something
# listens on PORT in the lab's TARGET, without connecting to it; else say so
# as WHO and exit 1. The caller defines lab() (its "podwire lab").
pw_lab_wait_listen() {
	for _ in $(seq 200); do
		lab exec --no-podwire "$2" -- ss -Hltn "sport = :$3" 2>/dev/null | grep -q . && return 0
		sleep 0.05
	done
	echo "$1: nothing listens on $3 in $2" >&2
	exit 1
}

# pw_bench_lab_init WHO LABPREFIX TOOL...: what a benchmark over a lab needs
# first: root (else exit 77), each TOOL (else exit 77), $CLI built (else exit
# 1), $OUT made; then PODWIRE_LAB (LABPREFIX + our pid), TMP, and a trap that
# takes the lab down, stops background jobs and removes TMP at exit. Also
# defines lab(), the CLI's "podwire lab".
pw_bench_lab_init() {
	local who=$1 prefix=$2 c
	shift 2
	[ "$(id -u)" = 0 ] || { echo "$who: needs root (network namespaces)" >&2; exit 77; }
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "$who: $c is not installed" >&2; exit 77; }
	done
	[ -x "$CLI" ] || { echo "$who: build first ($CLI)" >&2; exit 1; }
	mkdir -p "$OUT"
	export PODWIRE_LAB=$prefix$$
	TMP=$(mktemp -d "/tmp/podwire-$who.XXXXXX")
	trap pw_bench_lab_cleanup EXIT
	trap 'exit 1' INT TERM
}

pw_bench_lab_cleanup() {
	local bg
	bg=$(jobs -p)
	[ -z "$bg" ] || kill $bg 2>/dev/null
	"$CLI" lab down >/dev/null 2>&1
	wait 2>/dev/null
	rm -rf "$TMP"
}

lab() { "$CLI" lab "$@"; }
