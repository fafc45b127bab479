// SPDX-License-Identifier: MIT
/*
 * The lab's command lines, without root: 'up' options into a lab, and every
 * usage error of every command exiting 2 before it needs root or touches a
 * namespace (each prints its message to stderr, as the CLI does).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab.h"
#include "pw_test.h"

#define ARGV(...) ((char *[]){ __VA_ARGS__, NULL })

static int up_parse(int argc, char **argv, struct pw_lab *lab, struct pw_lab_up_opts *opts)
{
	*lab = (struct pw_lab){ .nodes = 2, .pods = 2, .podwire = true };
	*opts = (struct pw_lab_up_opts){ 0 };
	return pw_lab_up_opts_parse(argc, argv, lab, opts);
}

static void check_up_opts(void)
{
	struct pw_lab lab;
	struct pw_lab_up_opts o;
	char **all = ARGV("up", "--nodes", "254", "--pods-per-node", "0", "--overlay", "host-gw",
			  "--no-podwire", "--name", "x", "--podwired", "/p", "--lib", "/l");
	static const char *const bad[][3] = {
		{ "--nodes", "0" },	   { "--nodes", "255" },     { "--nodes", "-1" },
		{ "--nodes", "1x" },	   { "--nodes", "" },	     { "--pods-per-node", "245" },
		{ "--overlay", "geneve" }, { "--overlay", "VXLAN" }, { "--bogus", "1" },
	};

	PW_CHECK_EQ(up_parse(1, ARGV("up"), &lab, &o), -1);
	PW_CHECK(lab.nodes == 2 && lab.pods == 2 && lab.podwire, "defaults changed");
	PW_CHECK(!o.name && !o.podwired && !o.lib, "options without options");

	PW_CHECK_EQ(up_parse(14, all, &lab, &o), -1);
	PW_CHECK(lab.nodes == 254 && lab.pods == 0, "%u %u", lab.nodes, lab.pods);
	PW_CHECK(lab.overlay == PW_LAB_OVERLAY_HOSTGW && !lab.podwire, "%d %d", lab.overlay,
		 lab.podwire);
	PW_CHECK(!strcmp(o.name, "x") && !strcmp(o.podwired, "/p") && !strcmp(o.lib, "/l"),
		 "%s %s %s", o.name, o.podwired, o.lib);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "up", (char *)bad[i][0], (char *)bad[i][1], NULL };

		PW_CHECK(up_parse(3, argv, &lab, &o) == 2, "%s '%s' accepted", bad[i][0],
			 bad[i][1]);
	}
	/* A stray argument is left for pw_lab_opts_finish, which refuses it. */
	char **stray = ARGV("up", "--nodes", "3", "extra");
	PW_CHECK_EQ(up_parse(4, stray, &lab, &o), -1);
	PW_CHECK_EQ(pw_lab_opts_finish(&lab, NULL, 4, stray, false), 2);
	PW_CHECK_EQ(up_parse(2, ARGV("up", "--help"), &lab, &o), 0);
}

static void check_name(void)
{
	struct pw_lab lab = { 0 };

	unsetenv("PODWIRE_LAB");
	PW_CHECK(pw_lab_name_set(&lab, NULL), "default name");
	PW_CHECK(!strcmp(lab.name, "lab") && !strcmp(lab.dir, "/run/podwire/lab/lab"), "%s %s",
		 lab.name, lab.dir);
	setenv("PODWIRE_LAB", "fromenv", 1);
	PW_CHECK(pw_lab_name_set(&lab, NULL) && !strcmp(lab.name, "fromenv"), "%s", lab.name);
	PW_CHECK(pw_lab_name_set(&lab, "opt") && !strcmp(lab.name, "opt"), "%s", lab.name);
	PW_CHECK(!strcmp(lab.dir, "/run/podwire/lab/opt"), "%s", lab.dir);
	PW_CHECK(!pw_lab_name_set(&lab, "../x"), "../x accepted");
	setenv("PODWIRE_LAB", "", 1);
	PW_CHECK(pw_lab_name_set(&lab, NULL) && !strcmp(lab.name, "lab"), "empty env: %s",
		 lab.name);
	setenv("PODWIRE_LAB", "a b", 1);
	PW_CHECK(!pw_lab_name_set(&lab, NULL), "'a b' accepted");
	unsetenv("PODWIRE_LAB");
}

static void check_uint(void)
{
	unsigned v = 7;

	PW_CHECK(pw_lab_uint_parse("--n", "0", 0, 5, &v) && v == 0, "%u", v);
	PW_CHECK(pw_lab_uint_parse("--n", "5", 0, 5, &v) && v == 5, "%u", v);
	v = 7;
	PW_CHECK(!pw_lab_uint_parse("--n", "6", 0, 5, &v) && v == 7, "6 accepted or wrote");
	PW_CHECK(!pw_lab_uint_parse("--n", "99999999999999999999", 0, 5, &v), "overflow");
	PW_CHECK(!pw_lab_uint_parse("--n", "-0", 0, 5, &v), "-0");
	PW_CHECK(!pw_lab_uint_parse("--n", "0x1", 0, 5, &v), "0x1");
}

/* Command lines the CLI refuses (exit 2) or answers (0) without root. */
static void check_main(void)
{
	static const struct {
		int rc;
		const char *argv[8];
	} cases[] = {
		{ 2, { "lab" } },
		{ 0, { "lab", "help" } },
		{ 0, { "lab", "--help" } },
		{ 0, { "lab", "-h" } },
		{ 2, { "lab", "frobnicate" } },
		{ 0, { "lab", "up", "--help" } },
		{ 0, { "lab", "exec", "--help" } },
		{ 0, { "lab", "status", "--help" } },
		{ 0, { "lab", "down", "--help" } },
		{ 2, { "lab", "up", "--nodes", "0" } },
		{ 2, { "lab", "up", "--overlay", "geneve" } },
		{ 2, { "lab", "up", "--name", "a/b" } },
		{ 2, { "lab", "up", "stray" } },
		{ 2, { "lab", "up", "--bogus" } },
		{ 2, { "lab", "status", "--bogus" } },
		{ 2, { "lab", "status", "--no-podwire" } },
		{ 2, { "lab", "status", "stray" } },
		{ 2, { "lab", "status", "--name", "a/b" } },
		{ 2, { "lab", "down", "--json" } },
		{ 2, { "lab", "down", "--name", "-x" } },
		{ 2, { "lab", "exec" } },
		{ 2, { "lab", "exec", "n1p1" } },
		{ 2, { "lab", "exec", "n1p1", "--" } },
		{ 2, { "lab", "exec", "--json", "n1p1", "true" } },
		{ 2, { "lab", "exec", "--name", "a/b", "n1p1", "--", "true" } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[8] = { 0 };
		int argc = 0, rc;

		while (cases[i].argv[argc]) {
			argv[argc] = (char *)cases[i].argv[argc];
			argc++;
		}
		rc = pw_lab_main(argc, argv);
		PW_CHECK(rc == cases[i].rc, "podwire lab %s %s %s: exit %d, want %d",
			 argc > 1 ? argv[1] : "", argc > 2 ? argv[2] : "", argc > 3 ? argv[3] : "",
			 rc, cases[i].rc);
	}
}

/* A lab that does not exist: status says so (exit 1) without root. */
static void check_missing(void)
{
	char name[64];

	snprintf(name, sizeof(name), "no-such-lab-%d", (int)getpid());
	PW_CHECK_EQ(pw_lab_main(4, ARGV("lab", "status", "--name", name)), 1);
	PW_CHECK_EQ(pw_lab_main(6, ARGV("lab", "exec", "--name", name, "n1", "true")), 1);
}

int main(void)
{
	check_up_opts();
	check_name();
	check_uint();
	check_main();
	check_missing();
	return 0;
}
