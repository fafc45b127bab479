// SPDX-License-Identifier: MIT
/*
 * podwire switch: talk to podwire-switch over its control socket
 * (DIR/control, one JSON request and one JSON reply; see src/switch/ctl.c).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../common/json.h"
#include "cli.h"
#include "swctl.h"

static const char *pw_sw_dir;

/* Send @req (taken) and return the switch's reply, or NULL (said why). */
static cJSON *pw_sw_call(cJSON *req)
{
	char err[512];
	cJSON *reply = pw_swctl_call(pw_sw_dir, req, 5000, err, sizeof(err), NULL);

	cJSON_Delete(req);
	if (!reply)
		fprintf(stderr, "podwire: %s\n", err);
	return reply;
}

/* The reply's verdict: 0, or 1 with its error said. */
static int pw_sw_done(cJSON *reply)
{
	int rc = 1;

	if (reply && pw_json_get_bool(reply, "ok", false))
		rc = 0;
	else if (reply)
		fprintf(stderr, "podwire: %s\n", pw_json_get_str(reply, "error"));
	cJSON_Delete(reply);
	return rc;
}

static int pw_sw_status(bool json)
{
	cJSON *req = cJSON_CreateObject();

	cJSON_AddStringToObject(req, "cmd", "status");
	cJSON *reply = pw_sw_call(req);
	if (!reply)
		return 1;
	if (json) {
		char *out = cJSON_PrintUnformatted(reply);
		puts(out ? out : "{}");
		cJSON_free(out);
		cJSON_Delete(reply);
		return 0;
	}
	printf("%-14s %-10s %-5s %-28s %12s %12s %10s %10s %8s %8s\n", "PORT", "STATE", "TO",
	       "SOCKET", "RX-PKTS", "TX-PKTS", "TX-FULL", "NO-DEST", "BAD", "SPOOFED");
	const cJSON *e;
	cJSON_ArrayForEach(e, pw_json_get(reply, "ports"))
	{
		const char *to = pw_json_get_str(e, "to"), *sock = pw_json_get_str(e, "socket");
		char s[64];
		snprintf(s, sizeof(s), "%s%s", pw_json_get_bool(e, "abstract", false) ? "@" : "",
			 sock ? sock : "?");
		printf("%-14s %-10s %-5s %-28s %12.0f %12.0f %10.0f %10.0f %8.0f %8.0f\n",
		       pw_json_get_str(e, "name"), pw_json_get_str(e, "state"), to ? to : "-", s,
		       pw_json_get_num(e, "rx_packets", 0), pw_json_get_num(e, "tx_packets", 0),
		       pw_json_get_num(e, "tx_full", 0), pw_json_get_num(e, "no_dest", 0),
		       pw_json_get_num(e, "rx_bad", 0) + pw_json_get_num(e, "tx_bad", 0),
		       pw_json_get_num(e, "spoofed", 0));
	}
	printf("slept %.0f times, woken by %.0f interrupts (%.0f late), polled %.3f s\n",
	       pw_json_get_num(reply, "sleeps", 0), pw_json_get_num(reply, "wakeups", 0),
	       pw_json_get_num(reply, "late_wakeups", 0),
	       pw_json_get_num(reply, "busy_seconds", 0));
	cJSON_Delete(reply);
	return 0;
}

static const char pw_sw_usage[] =
	"Usage: podwire switch [--dir DIR] COMMAND\n\n"
	"Control podwire-switch, the packet switch for DPDK pods, through its control\n"
	"socket DIR/control (default $PODWIRE_SWITCH_DIR, else " PW_SW_DEFAULT_DIR ").\n\n"
	"Commands:\n"
	"  status [--json]       the ports: state, peer, packet counters; how often\n"
	"                        the switch slept and was woken\n"
	"  port add NAME --socket PATH | --abstract NAME --netns NS\n"
	"           [--id N] [--secret S] [--mac MAC]\n"
	"                        add a port: a memif socket at PATH, or an abstract\n"
	"                        socket bound inside network namespace NS (a path such\n"
	"                        as /run/netns/pod1), which only that pod reaches; N is\n"
	"                        the memif interface id (0); the client must give S;\n"
	"                        frames from any address but MAC are dropped\n"
	"  port del NAME         remove a port (its client is disconnected)\n"
	"  connect A B           every frame from port A goes to port B and back\n";

static int pw_sw_port_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "abstract", required_argument, NULL, 'a' },
		{ "netns", required_argument, NULL, 'n' },
		{ "id", required_argument, NULL, 'i' },
		{ "secret", required_argument, NULL, 'S' },
		{ "mac", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	cJSON *req = cJSON_CreateObject();
	int c;

	cJSON_AddStringToObject(req, "cmd", "port-add");
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cJSON_AddStringToObject(req, "socket", optarg);
			break;
		case 'a':
			cJSON_AddStringToObject(req, "socket", optarg);
			cJSON_AddBoolToObject(req, "abstract", true);
			break;
		case 'n':
			cJSON_AddStringToObject(req, "netns", optarg);
			break;
		case 'i': {
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || v > UINT32_MAX) {
				fprintf(stderr, "podwire: --id: a number up to %u\n", UINT32_MAX);
				cJSON_Delete(req);
				return 2;
			}
			cJSON_AddNumberToObject(req, "id", (double)v);
			break;
		}
		case 'S':
			cJSON_AddStringToObject(req, "secret", optarg);
			break;
		case 'm':
			cJSON_AddStringToObject(req, "mac", optarg);
			break;
		case 'h':
			fputs(pw_sw_usage, stdout);
			cJSON_Delete(req);
			return 0;
		default:
			cJSON_Delete(req);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fputs("podwire: switch port add NAME: one name (see --help)\n", stderr);
		cJSON_Delete(req);
		return 2;
	}
	cJSON_AddStringToObject(req, "name", argv[optind]);
	return pw_sw_done(pw_sw_call(req));
}

int pw_switch_main(int argc, char **argv)
{
	int i = 1;

	pw_sw_dir = getenv("PODWIRE_SWITCH_DIR");
	if (!pw_sw_dir || !*pw_sw_dir)
		pw_sw_dir = PW_SW_DEFAULT_DIR;
	if (i + 1 < argc && !strcmp(argv[i], "--dir")) {
		pw_sw_dir = argv[i + 1];
		i += 2;
	}
	if (i >= argc || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ||
	    !strcmp(argv[i], "help")) {
		fputs(pw_sw_usage, i >= argc ? stderr : stdout);
		return i >= argc ? 2 : 0;
	}
	const char *cmd = argv[i];
	if (!strcmp(cmd, "status")) {
		bool json = false;
		for (int k = i + 1; k < argc; k++) {
			if (!strcmp(argv[k], "--json"))
				json = true;
			else {
				fprintf(stderr, "podwire: switch status: unknown option %s\n",
					argv[k]);
				return 2;
			}
		}
		return pw_sw_status(json);
	}
	if (!strcmp(cmd, "port") && i + 1 < argc && !strcmp(argv[i + 1], "add"))
		return pw_sw_port_add(argc - i - 1, argv + i + 1);
	if (!strcmp(cmd, "port") && i + 2 < argc && !strcmp(argv[i + 1], "del") && i + 3 == argc) {
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "cmd", "port-del");
		cJSON_AddStringToObject(req, "name", argv[i + 2]);
		return pw_sw_done(pw_sw_call(req));
	}
	if (!strcmp(cmd, "connect") && i + 3 == argc) {
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "cmd", "connect");
		cJSON_AddStringToObject(req, "a", argv[i + 1]);
		cJSON_AddStringToObject(req, "b", argv[i + 2]);
		return pw_sw_done(pw_sw_call(req));
	}
	fprintf(stderr, "podwire: switch: bad command (see podwire switch --help)\n");
	return 2;
}
