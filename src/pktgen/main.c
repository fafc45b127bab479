// SPDX-License-Identifier: MIT
/* podwire-pktgen: options, one rate or a search. See pktgen.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "../common/parse.h"
#include "pktgen.h"

static const char pw_usage[] =
	"Usage: podwire-pktgen --tx PORT [--rx PORT] [--rate PPS | --search] [OPTION]...\n"
	"Send Ethernet frames at a fixed offered rate through a packet path whose far\n"
	"end sends them back (testpmd --forward-mode=macswap), and report the round\n"
	"trip: p50, p90, p99, p99.9 and max, loss, the frames the generator could not\n"
	"send on time (skipped) and the CPU other processes used meanwhile.\n"
	"\n"
	"Ports:\n"
	"  memif:PATH[,abstract][,id=N][,secret=S]  a memif client (copy mode) of the\n"
	"                         socket at PATH (or the abstract name PATH): a port of\n"
	"                         podwire-switch, or DPDK's net_memif role=server;\n"
	"                         one not there or not ready yet is retried for 10 s\n"
	"  af_packet:IFNAME       raw frames on a kernel interface\n"
	"  dpdk:N                 ethdev N of those --eal makes (e.g. virtio_user for\n"
	"                         a vhost-user socket; builds with DPDK only)\n"
	"\n"
	"  -t, --tx PORT          where frames go out\n"
	"  -r, --rx PORT          where they come back (default: the --tx port)\n"
	"  -R, --rate PPS         offered frames per second (0: as fast as the port\n"
	"                         takes them; default 10000)\n"
	"  -S, --search           find the highest rate with no loss (binary search,\n"
	"                         1 s trials), then measure at 10, 50 and 90% of it and\n"
	"                         at one overload point (--overload, or the highest\n"
	"                         rate the generator can offer if lower)\n"
	"      --overload PPS     the overload point (default 10000000, the seed's)\n"
	"  -s, --seconds S        each measurement (default 3)\n"
	"  -w, --warmup S         sent before each, not measured (default 0.5)\n"
	"      --size BYTES       frame size without the FCS, 60 to 2048 (default 92:\n"
	"                         96 with it, the seed's)\n"
	"      --dst MAC          destination address (default 02:00:00:00:00:02)\n"
	"      --src MAC          source address (default 02:00:00:00:00:01)\n"
	"      --eal 'ARGS'       the DPDK EAL's arguments, for dpdk: ports\n"
	"  -j, --json             one JSON array of results instead of a table\n"
	"  -h, --help             show this help\n";

static void pw_pg_print_head(void)
{
	printf("%12s %12s %10s %9s %9s %9s %9s %9s %9s %10s %8s\n", "OFFERED", "SENT/S", "LOSS%",
	       "P50us", "P90us", "P99us", "P99.9us", "MAXus", "SKIPPED", "REFUSED", "OTHERS");
}

static double pw_pg_us(const struct pw_hist *h, double p)
{
	return (double)pw_hist_percentile(h, p) / 1000.0;
}

static void pw_pg_print(const char *label, const struct pw_pg_result *r, cJSON *arr)
{
	double loss = r->sent ? 100.0 * (double)r->lost / (double)r->sent : 0;

	if (arr) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "point", label);
		cJSON_AddNumberToObject(o, "offered_pps", r->offered);
		cJSON_AddNumberToObject(o, "sent_pps", r->achieved);
		cJSON_AddNumberToObject(o, "sent", (double)r->sent);
		cJSON_AddNumberToObject(o, "received", (double)r->received);
		cJSON_AddNumberToObject(o, "lost", (double)r->lost);
		cJSON_AddNumberToObject(o, "loss_pct", loss);
		cJSON_AddNumberToObject(o, "skipped", (double)r->skipped);
		cJSON_AddNumberToObject(o, "refused", (double)r->refused);
		cJSON_AddNumberToObject(o, "stray", (double)r->stray);
		cJSON_AddNumberToObject(o, "p50_us", pw_pg_us(&r->rtt, 50));
		cJSON_AddNumberToObject(o, "p90_us", pw_pg_us(&r->rtt, 90));
		cJSON_AddNumberToObject(o, "p99_us", pw_pg_us(&r->rtt, 99));
		cJSON_AddNumberToObject(o, "p999_us", pw_pg_us(&r->rtt, 99.9));
		cJSON_AddNumberToObject(o, "max_us", (double)r->rtt.max / 1000.0);
		cJSON_AddNumberToObject(o, "others_cpu", r->others_cpu);
		cJSON_AddNumberToObject(o, "self_cpu", r->self_cpu);
		cJSON_AddItemToArray(arr, o);
		return;
	}
	printf("%12.0f %12.0f %10.4f %9.2f %9.2f %9.2f %9.2f %9.2f %9" PRIu64 " %10" PRIu64
	       " %7.0f%% %s\n",
	       r->offered, r->achieved, loss, pw_pg_us(&r->rtt, 50), pw_pg_us(&r->rtt, 90),
	       pw_pg_us(&r->rtt, 99), pw_pg_us(&r->rtt, 99.9), (double)r->rtt.max / 1000.0,
	       r->skipped, r->refused, 100 * r->others_cpu, label);
	fflush(stdout);
}

static bool pw_pg_lossless(const struct pw_pg_result *r)
{
	return r->sent > 0 && r->lost == 0;
}

/* The search: the loss-free rate, then the points. */
static int pw_pg_search(struct pw_pg_port *tx, struct pw_pg_port *rx, struct pw_pg_cfg cfg,
			double overload, cJSON *arr)
{
	struct pw_pg_result r;
	struct pw_pg_cfg trial = cfg;
	double lo = 0, hi, ndr;
	int e;

	trial.seconds = 1;
	trial.rate = 0;
	if ((e = pw_pg_run(tx, rx, &trial, &r)) < 0)
		return e;
	pw_pg_print("max", &r, arr);
	hi = r.achieved;
	if (pw_pg_lossless(&r)) {
		ndr = hi;
	} else {
		for (int i = 0; i < 10 && hi - lo > hi * 0.02; i++) {
			trial.rate = (lo + hi) / 2;
			if ((e = pw_pg_run(tx, rx, &trial, &r)) < 0)
				return e;
			pw_pg_print("trial", &r, arr);
			if (pw_pg_lossless(&r))
				lo = trial.rate;
			else
				hi = trial.rate;
		}
		ndr = lo;
	}
	if (ndr <= 0) {
		fprintf(stderr, "podwire-pktgen: no loss-free rate found\n");
		return -EIO;
	}
	static const double pct[] = { 0.1, 0.5, 0.9 };
	static const char *const names[] = { "10%", "50%", "90%" };
	for (size_t i = 0; i < 3; i++) {
		cfg.rate = ndr * pct[i];
		if ((e = pw_pg_run(tx, rx, &cfg, &r)) < 0)
			return e;
		pw_pg_print(names[i], &r, arr);
	}
	cfg.rate = overload;
	if ((e = pw_pg_run(tx, rx, &cfg, &r)) < 0)
		return e;
	pw_pg_print("overload", &r, arr);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tx", required_argument, NULL, 't' },
		{ "rx", required_argument, NULL, 'r' },
		{ "rate", required_argument, NULL, 'R' },
		{ "search", no_argument, NULL, 'S' },
		{ "overload", required_argument, NULL, 'O' },
		{ "seconds", required_argument, NULL, 's' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 'z' },
		{ "dst", required_argument, NULL, 'D' },
		{ "src", required_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "eal", required_argument, NULL, 'E' },
		{ NULL, 0, NULL, 0 },
	};
	struct pw_pg_cfg cfg = { .rate = 10000,
				 .seconds = 3,
				 .warmup = 0.5,
				 .size = 92,
				 .dst = { 2, 0, 0, 0, 0, 2 },
				 .src = { 2, 0, 0, 0, 0, 1 } };
	const char *txs = NULL, *rxs = NULL, *eal = NULL;
	bool search = false, json = false;
	double overload = 10e6;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "t:r:R:Ss:w:jh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			txs = optarg;
			break;
		case 'r':
			rxs = optarg;
			break;
		case 'R':
		case 'O':
			if (pw_parse_u64(optarg, 100000000, &v) < 0 || (c == 'O' && !v)) {
				fprintf(stderr,
					"podwire-pktgen: --%s: frames per second, up to "
					"100000000\n",
					c == 'R' ? "rate" : "overload");
				return 2;
			}
			*(c == 'R' ? &cfg.rate : &overload) = (double)v;
			break;
		case 'S':
			search = true;
			break;
		case 's':
		case 'w': {
			double d;
			if (pw_parse_seconds(optarg, c == 's' ? 0.1 : 0, 3600, &d) < 0) {
				fprintf(stderr, "podwire-pktgen: --%s: seconds\n",
					c == 's' ? "seconds" : "warmup");
				return 2;
			}
			*(c == 's' ? &cfg.seconds : &cfg.warmup) = d;
			break;
		}
		case 'z':
			if (pw_parse_u64(optarg, PW_PG_MAX_FRAME, &v) < 0 || v < PW_PG_MIN_FRAME) {
				fprintf(stderr, "podwire-pktgen: --size: %u to %u\n",
					PW_PG_MIN_FRAME, PW_PG_MAX_FRAME);
				return 2;
			}
			cfg.size = (unsigned)v;
			break;
		case 'D':
		case 'C':
			if (pw_parse_mac(optarg, c == 'D' ? cfg.dst : cfg.src) < 0) {
				fprintf(stderr, "podwire-pktgen: %s: not a unicast MAC address\n",
					optarg);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'E':
			eal = optarg;
			break;
		case 'h':
			fputs(pw_usage, stdout);
			return 0;
		default:
			fputs("Try 'podwire-pktgen --help'.\n", stderr);
			return 2;
		}
	}
	if (!txs || optind < argc) {
		fprintf(stderr, "podwire-pktgen: %s (see --help)\n",
			txs ? "unexpected argument" : "--tx PORT is required");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	static struct pw_pg_port ptx, prx;
	struct pw_pg_port *rx = &ptx;
	char err[512];
	if (pw_pg_port_open(&ptx, txs, eal, err, sizeof(err)) < 0) {
		fprintf(stderr, "podwire-pktgen: %s\n", err);
		return 1;
	}
	if (rxs && strcmp(rxs, txs) != 0) {
		if (pw_pg_port_open(&prx, rxs, eal, err, sizeof(err)) < 0) {
			fprintf(stderr, "podwire-pktgen: %s\n", err);
			ptx.close(&ptx);
			return 1;
		}
		rx = &prx;
	}
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	struct pw_pg_result res;
	int r;
	if (!json)
		pw_pg_print_head();
	if (search) {
		r = pw_pg_search(&ptx, rx, cfg, overload, arr);
	} else {
		r = pw_pg_run(&ptx, rx, &cfg, &res);
		if (r == 0)
			pw_pg_print("rate", &res, arr);
	}
	if (r < 0)
		fprintf(stderr, "podwire-pktgen: %s\n", strerror(-r));
	if (arr) {
		char *out = cJSON_PrintUnformatted(arr);
		puts(out ? out : "[]");
		cJSON_free(out);
		cJSON_Delete(arr);
	}
	if (rx != &ptx)
		rx->close(rx);
	ptx.close(&ptx);
#ifdef PW_PG_DPDK
	pw_pg_dpdk_cleanup();
#endif
	return r < 0;
}
