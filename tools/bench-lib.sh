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
