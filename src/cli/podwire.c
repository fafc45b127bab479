// SPDX-License-Identifier: MIT
/*
 * podwire: the command-line front end. Subcommands are a table of
 * { name, function, help }.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "cli.h"
#include "lab.h"
#include "proto.h"

static const char *pw_socket_path(const char *opt)
{
	const char *env = getenv("PODWIRE_SOCKET");

	return opt ? opt : (env && *env ? env : PW_WIRE_DEFAULT_SOCKET);
}

static const char *pw_state_name(uint32_t st)
{
	switch (st) {
	case PW_CONN_PENDING:
		return "pending";
	case PW_CONN_OPEN:
		return "open";
	case PW_CONN_HALF:
		return "half-closed";
	case PW_CONN_CLOSED:
		return "closed";
	case PW_CONN_PARKED:
		return "parked";
	default:
		return "?";
	}
}

/* The end of a listing: the JSON array (@arr, freed), or for a table how
 * many entries the router's page left out. */
static void pw_list_end(cJSON *arr, uint32_t total, uint32_t shown)
{
	if (arr) {
		char *out = cJSON_PrintUnformatted(arr);

		puts(out ? out : "[]");
		cJSON_free(out);
		cJSON_Delete(arr);
	} else if (total > shown) {
		printf("(%u more not shown)\n", total - shown);
	}
}

/* status --pods: the pod table the CNI plugin filled. */
static int pw_status_pods(const char *path, bool json)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	struct pw_msg m = { 0 };
	int r = pw_proto_call(path, PW_MSG_PODS, NULL, 0, -1, 5000, &m, buf);

	if (r == 0 && m.type != PW_MSG_PODS_OK)
		r = m.type == PW_MSG_ERR ? -m.u.err.err : -EPROTO;
	if (r < 0) {
		fprintf(stderr, "podwire: cannot get pods from %s: %s\n", path, strerror(-r));
		return 1;
	}
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	if (!json)
		printf("%-64s %-15s %12s %10s  %s\n", "CONTAINER", "IFNAME", "NETNS", "SINCE",
		       "ADDRESSES");
	for (uint32_t i = 0; i < m.nentries; i++) {
		struct pw_wire_pod_entry e;
		/* Each entry and a comma, or the NUL after the last. */
		char addrs[PW_WIRE_POD_MAX_ADDRS * PW_ADDR_CIDR_STRLEN] = "";
		size_t off = 0;

		if (pw_msg_entry(&m, i, &e, sizeof(e)) < 0)
			break;
		/* The router's strings, but bound them anyway. */
		e.pod.key.id[sizeof(e.pod.key.id) - 1] = '\0';
		e.pod.key.ifname[sizeof(e.pod.key.ifname) - 1] = '\0';
		cJSON *o = json ? cJSON_CreateObject() : NULL;
		cJSON *ja = json ? cJSON_AddArrayToObject(o, "addresses") : NULL;
		for (uint32_t k = 0; k < e.pod.count && k < PW_WIRE_POD_MAX_ADDRS; k++) {
			const struct pw_wire_prefix *p = &e.pod.addr[k];
			char one[PW_ADDR_CIDR_STRLEN];

			pw_addr_cidr_format(p, one);
			if (json) {
				cJSON_AddItemToArray(ja, cJSON_CreateString(one));
			} else {
				int w = snprintf(addrs + off, sizeof(addrs) - off, "%s%s",
						 k ? "," : "", one);
				if (w > 0 && (size_t)w < sizeof(addrs) - off)
					off += (size_t)w;
			}
		}
		if (json) {
			cJSON_AddStringToObject(o, "containerId", e.pod.key.id);
			cJSON_AddStringToObject(o, "ifname", e.pod.key.ifname);
			cJSON_AddNumberToObject(o, "netns", (double)e.netns_ino);
			cJSON_AddNumberToObject(o, "since", (double)e.since);
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%-64s %-15s %12" PRIu64 " %10" PRId64 "  %s\n", e.pod.key.id,
			       e.pod.key.ifname, e.netns_ino, e.since, addrs);
		}
	}
	pw_list_end(arr, m.u.pods.total, m.nentries);
	return 0;
}

/* A ring window from its log2 in a status entry: bytes, 0 if unknown. */
static uint64_t pw_window_bytes(uint8_t log2)
{
	return log2 && log2 < 32 ? 1ull << log2 : 0;
}

/* The same as text: 64K, 1M, or - when unknown. */
static const char *pw_window_text(uint8_t log2, char *buf, size_t len)
{
	uint64_t b = pw_window_bytes(log2);

	if (!b)
		snprintf(buf, len, "-");
	else if (b >= 1u << 20 && !(b & ((1u << 20) - 1)))
		snprintf(buf, len, "%" PRIu64 "M", b >> 20);
	else if (b >= 1u << 10 && !(b & ((1u << 10) - 1)))
		snprintf(buf, len, "%" PRIu64 "K", b >> 10);
	else
		snprintf(buf, len, "%" PRIu64, b);
	return buf;
}

static int pw_cmd_status(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "pods", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	const char *sock = NULL;
	bool json = false, pods = false;
	struct pw_msg m = { 0 };
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:jph", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'p':
			pods = true;
			break;
		case 'h':
			printf("Usage: podwire status [--socket PATH] [--json] [--pods]\n\n"
			       "List the accelerated connections of this node, like ss(8): the\n"
			       "connecting and accepting ends (their pod addresses and pids), the\n"
			       "bytes each has sent, the part of each ring in use (64K until the\n"
			       "connection moves bulk data; - for a connection to another node),\n"
			       "and the state. Asks podwired over PATH\n"
			       "(default $PODWIRE_SOCKET, else " PW_WIRE_DEFAULT_SOCKET ").\n\n"
			       "  --pods   list the pods registered by podwire-cni instead:\n"
			       "           container id, interface, network namespace (inode),\n"
			       "           registration time (seconds since the epoch), addresses\n"
			       "  --json   print a JSON array instead of a table\n");
			return 0;
		default:
			return 2;
		}
	}
	const char *path = pw_socket_path(sock);
	if (pods)
		return pw_status_pods(path, json);
	r = pw_proto_call(path, PW_MSG_STATUS, NULL, 0, -1, 5000, &m, buf);
	if (r < 0 || m.type != PW_MSG_STATUS_OK) {
		fprintf(stderr, "podwire: cannot get status from %s: %s\n", path,
			strerror(r < 0 ? -r : EPROTO));
		return 1;
	}
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	if (!json)
		printf("%-6s %-11s %-22s %8s %-22s %8s %14s %14s %6s %6s\n", "ID", "STATE",
		       "CONNECTING", "PID", "ACCEPTING", "PID", "BYTES C->A", "BYTES A->C", "RING>",
		       "RING<");
	for (uint32_t i = 0; i < m.nentries; i++) {
		struct pw_wire_status_entry e;
		char a0[PW_ADDR_STRLEN], a1[PW_ADDR_STRLEN];

		if (pw_msg_entry(&m, i, &e, sizeof(e)) < 0)
			break;
		pw_addr_wire_format(&e.addr[0], a0);
		pw_addr_wire_format(&e.addr[1], a1);
		if (json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddNumberToObject(o, "id", (double)e.id);
			cJSON_AddStringToObject(o, "state", pw_state_name(e.state));
			cJSON_AddStringToObject(o, "connecting", a0);
			cJSON_AddNumberToObject(o, "connecting_pid", e.pid[0]);
			cJSON_AddStringToObject(o, "accepting", a1);
			cJSON_AddNumberToObject(o, "accepting_pid", e.pid[1]);
			cJSON_AddNumberToObject(o, "bytes_sent_connecting", (double)e.bytes[0]);
			cJSON_AddNumberToObject(o, "bytes_sent_accepting", (double)e.bytes[1]);
			cJSON_AddNumberToObject(o, "ring_window_connecting",
						(double)pw_window_bytes(e.window_log2[0]));
			cJSON_AddNumberToObject(o, "ring_window_accepting",
						(double)pw_window_bytes(e.window_log2[1]));
			cJSON_AddItemToArray(arr, o);
		} else {
			char w0[16], w1[16];

			printf("%-6" PRIu64 " %-11s %-22s %8d %-22s %8d %14" PRIu64 " %14" PRIu64
			       " %6s %6s\n",
			       e.id, pw_state_name(e.state), a0, e.pid[0], a1, e.pid[1], e.bytes[0],
			       e.bytes[1], pw_window_text(e.window_log2[0], w0, sizeof(w0)),
			       pw_window_text(e.window_log2[1], w1, sizeof(w1)));
		}
	}
	pw_list_end(arr, m.u.status.total, m.nentries);
	return 0;
}

static int pw_cmd_help(int argc, char **argv);

static const struct pw_cli_cmd pw_cmds[] = {
	{ "status", pw_cmd_status, "list the accelerated connections on this node" },
	{ "lab", pw_lab_main, "a local multi-node cluster of namespaces (up, exec, status, down)" },
	{ "switch", pw_switch_main, "control podwire-switch, the packet switch for DPDK pods" },
	{ "help", pw_cmd_help, "show this help" },
};

static int pw_cmd_help(int argc, char **argv)
{
	printf("Usage: podwire COMMAND [OPTIONS]\n\n"
	       "podwire gives pods a shared-memory TCP data path; see podwired(8) and\n"
	       "libpodwire.so.\n\nCommands:\n");
	pw_cli_cmd_list(pw_cmds, sizeof(pw_cmds) / sizeof(pw_cmds[0]), 10);
	printf("\nRun 'podwire COMMAND --help' for a command's options.\n");
	return 0;
}

int main(int argc, char **argv)
{
	return pw_cli_cmd_dispatch(pw_cmds, sizeof(pw_cmds) / sizeof(pw_cmds[0]), argc, argv,
				   "podwire");
}
