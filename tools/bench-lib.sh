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
