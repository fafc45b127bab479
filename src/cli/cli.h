/* SPDX-License-Identifier: MIT */
/*
 * The podwire CLI's private header: a subcommand table of { name, function,
 * help } and its dispatch, shared by `podwire COMMAND` (podwire.c) and
 * `podwire lab COMMAND` (src/lab).
 */
#ifndef PW_CLI_H
#define PW_CLI_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct pw_cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0] is name; returns the exit status */
	const char *help;		  /* one line for the command list */
};

/* Print the commands as lines "  NAME  HELP", names padded to width. */
static inline void pw_cli_cmd_list(const struct pw_cli_cmd *cmds, size_t n, int width)
{
	for (size_t i = 0; i < n; i++)
		printf("  %-*s %s\n", width, cmds[i].name, cmds[i].help);
}

/*
 * `PROG COMMAND ...`: run the command of cmds[0..n) that argv[1] names with
 * argv + 1. Without a command the one named "help" runs and the exit status
 * is 2 (a usage error); -h and --help run it too. An unknown command is
 * reported on stderr as "PROG: unknown command". Returns the exit status.
 */
static inline int pw_cli_cmd_dispatch(const struct pw_cli_cmd *cmds, size_t n, int argc,
				      char **argv, const char *prog)
{
	const struct pw_cli_cmd *help = NULL;

	for (size_t i = 0; i < n; i++) {
		if (!strcmp(cmds[i].name, "help"))
			help = &cmds[i];
		if (argc >= 2 && !strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	}
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		int rc = help ? help->fn(0, NULL) : 0;

		return argc < 2 ? 2 : rc;
	}
	fprintf(stderr, "%s: unknown command '%s'\nTry '%s help'.\n", prog, argv[1], prog);
	return 2;
}

/* podwire switch (switch.c). */
int pw_switch_main(int argc, char **argv);

#endif /* PW_CLI_H */
