// SPDX-License-Identifier: MIT
/* podwire-switch: options, setup and teardown. See switch.h and docs/NFV.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/netns.h"
#include "../common/parse.h"
#include "../common/util.h"
#include "switch.h"
#include "swctl.h"

static const char pw_usage[] =
	"Usage: podwire-switch [OPTION]...\n"
	"A packet switch for DPDK pods: each port is a memif socket (the protocol of\n"
	"DPDK's net_memif and VPP) that one pod's DPDK connects to as the client.\n"
	"Frames go by static rule or by learned MAC address, copied once from ring to\n"
	"ring. The switch polls while frames flow and sleeps on the pods' interrupts\n"
	"when they stop: idle, it uses no CPU.\n"
	"\n"
	"  -d, --dir DIR          run directory, for the control socket DIR/control\n"
	"                         (default " PW_SW_DEFAULT_DIR ")\n"
	"  -p, --port SPEC        add a port (repeatable). SPEC is NAME,socket=PATH\n"
	"                         for a socket at PATH (DPDK: socket=PATH,\n"
	"                         socket-abstract=no), or NAME,abstract=NAME,netns=NS\n"
	"                         for an abstract socket inside network namespace NS\n"
	"                         (a path such as /run/netns/pod1): only that pod can\n"
	"                         reach it (DPDK's default, socket-abstract=yes).\n"
	"                         Then optionally: id=N (the memif interface id, 0),\n"
	"                         secret=S (the client must give it), mac=MAC (the\n"
	"                         pod's address: frames from any other are dropped)\n"
	"  -c, --connect A,B      every frame from port A goes to port B and back,\n"
	"                         whatever its address (default: MAC learning)\n"
	"      --spin-us N        poll for N microseconds after the last frame before\n"
	"                         sleeping (default 5; 0 sleeps at once)\n"
	"      --nice N           run at nice N, -20 to 19 (default -20)\n"
	"      --max-ports N      give at most N ports, 1 to 256 (default 256):\n"
	"                         podwire-nfd labels the node with it\n"
	"  -m, --metrics ADDR:PORT  serve Prometheus metrics over HTTP\n"
	"  -l, --log-level LEVEL  error, warn, info (default) or debug\n"
	"  -h, --help             show this help\n"
	"\n"
	"Ports can also be added and removed while it runs: see podwire switch --help.\n"
	"\n"
	"On a node whose cores the pods' DPDK pollers already take, a switch that\n"
	"polls long is one more poller, and every hop waits for a scheduler slice\n"
	"(milliseconds). So by default it polls only 5 us after the last frame and\n"
	"runs at nice -20: woken by a pod's interrupt, it takes the CPU at once,\n"
	"moves the frames and sleeps again (docs/NFV.md). With cores to spare, a\n"
	"longer --spin-us saves the wake-ups.\n"
	"SIGTERM or SIGINT stops it; its sockets are removed.\n";

static int pw_sw_sigfd = -1;
static struct pw_sw_ev pw_sw_sigev;

static void pw_sw_on_signal(struct pw_sw_ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)ev;
	(void)events;
	if (read(pw_sw_sigfd, &si, sizeof(si)) == sizeof(si)) {
		pw_info("signal %u: stopping", si.ssi_signo);
		pw_sw.stop = true;
	}
}

/* NAME,key=value,...: into @spec (strings point into @s, which is cut). */
static int pw_sw_parse_port(char *s, struct pw_sw_port_spec *spec, const char **ret_netns)
{
	char *save = NULL, *tok = strtok_r(s, ",", &save);
	uint64_t v;

	memset(spec, 0, sizeof(*spec));
	spec->netns = -1;
	*ret_netns = NULL;
	if (!tok)
		return -EINVAL;
	spec->name = tok;
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(tok, '=');
		if (!eq)
			return -EINVAL;
		*eq++ = '\0';
		if (!strcmp(tok, "socket"))
			spec->socket = eq;
		else if (!strcmp(tok, "abstract")) {
			spec->socket = eq;
			spec->abstract = true;
		} else if (!strcmp(tok, "netns"))
			*ret_netns = eq;
		else if (!strcmp(tok, "id") && pw_parse_u64(eq, UINT32_MAX, &v) == 0)
			spec->id = (uint32_t)v;
		else if (!strcmp(tok, "secret"))
			spec->secret = eq;
		else if (!strcmp(tok, "mac") && pw_parse_mac(eq, spec->mac) == 0)
			spec->has_mac = true;
		else
			return -EINVAL;
	}
	if (!spec->socket || spec->abstract != !!*ret_netns)
		return -EINVAL;
	return 0;
}

static int pw_sw_add_ports(char **specs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct pw_sw_port_spec spec;
		const char *netns;
		char *copy = strdup(specs[i]);
		int r = copy ? pw_sw_parse_port(copy, &spec, &netns) : -ENOMEM;

		if (r < 0) {
			fprintf(stderr, "podwire-switch: bad --port %s (see --help)\n", specs[i]);
			free(copy);
			return 2;
		}
		if (netns && (spec.netns = open(netns, O_RDONLY | O_CLOEXEC)) < 0) {
			fprintf(stderr, "podwire-switch: netns %s: %s\n", netns, strerror(errno));
			free(copy);
			return 1;
		}
		r = pw_sw_port_add(&spec);
		pw_close(spec.netns);
		if (r < 0)
			fprintf(stderr, "podwire-switch: port %s: %s\n", spec.name, strerror(-r));
		free(copy);
		if (r < 0)
			return 1;
	}
	return 0;
}

static int pw_sw_add_rules(char **rules, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		char a[PW_SW_NAME], b[PW_SW_NAME];
		const char *comma = strchr(rules[i], ',');
		size_t la = comma ? (size_t)(comma - rules[i]) : 0;
		if (!comma || la >= sizeof(a) || strlen(comma + 1) >= sizeof(b)) {
			fprintf(stderr, "podwire-switch: bad --connect %s (A,B)\n", rules[i]);
			return 2;
		}
		memcpy(a, rules[i], la);
		a[la] = '\0';
		snprintf(b, sizeof(b), "%s", comma + 1);
		struct pw_sw_port *pa = pw_sw_port_find(a), *pb = pw_sw_port_find(b);
		if (!pa || !pb) {
			fprintf(stderr, "podwire-switch: --connect %s: no port %s\n", rules[i],
				pa ? b : a);
			return 2;
		}
		pa->rule = (int)pb->idx;
		pb->rule = (int)pa->idx;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "connect", required_argument, NULL, 'c' },
		{ "spin-us", required_argument, NULL, 'S' },
		{ "nice", required_argument, NULL, 'N' },
		{ "max-ports", required_argument, NULL, 'M' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *ports[PW_SW_PORTS], *rules[PW_SW_PORTS];
	unsigned nports = 0, nrules = 0;
	int c, rc = 1, lock = -1;
	uint64_t v;

	pw_log_ident = "podwire-switch";
	pw_sw.cfg.dir = PW_SW_DEFAULT_DIR;
	pw_sw.cfg.spin_us = PW_SW_SPIN_US;
	pw_sw.cfg.nice = PW_SW_NICE;
	pw_sw.cfg.max_ports = PW_SW_PORTS;
	while ((c = getopt_long(argc, argv, "d:p:c:m:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			pw_sw.cfg.dir = optarg;
			break;
		case 'p':
		case 'c':
			if ((c == 'p' ? nports : nrules) == PW_SW_PORTS) {
				fprintf(stderr, "podwire-switch: at most %d\n", PW_SW_PORTS);
				return 2;
			}
			if (c == 'p')
				ports[nports++] = optarg;
			else
				rules[nrules++] = optarg;
			break;
		case 'S':
			if (pw_parse_u64(optarg, 1000000, &v) < 0) {
				fprintf(stderr, "podwire-switch: --spin-us: 0 to 1000000\n");
				return 2;
			}
			pw_sw.cfg.spin_us = (unsigned)v;
			break;
		case 'N': {
			char *end;
			long n = strtol(optarg, &end, 10);
			if (*end || end == optarg || n < -20 || n > 19) {
				fprintf(stderr, "podwire-switch: --nice: -20 to 19\n");
				return 2;
			}
			pw_sw.cfg.nice = (int)n;
			break;
		}
		case 'M':
			if (pw_parse_u64(optarg, PW_SW_PORTS, &v) < 0 || !v) {
				fprintf(stderr, "podwire-switch: --max-ports: 1 to %d\n",
					PW_SW_PORTS);
				return 2;
			}
			pw_sw.cfg.max_ports = (unsigned)v;
			break;
		case 'm':
			pw_sw.cfg.metrics = optarg;
			break;
		case 'l':
			if ((c = pw_log_parse(optarg)) < 0) {
				fprintf(stderr, "podwire-switch: --log-level: error, warn, info "
						"or debug\n");
				return 2;
			}
			pw_log_max = (enum pw_log_level)c;
			break;
		case 'h':
			fputs(pw_usage, stdout);
			return 0;
		default:
			fputs("Try 'podwire-switch --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "podwire-switch: unexpected argument %s\n", argv[optind]);
		return 2;
	}

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	char lockpath[4096];
	if (mkdir(pw_sw.cfg.dir, 0700) < 0 && errno != EEXIST) {
		pw_err("cannot make %s: %s", pw_sw.cfg.dir, strerror(errno));
		return 1;
	}
	snprintf(lockpath, sizeof(lockpath), "%s/lock", pw_sw.cfg.dir);
	lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
		pw_err("%s: %s", lockpath,
		       errno == EWOULDBLOCK ? "another switch runs here" : strerror(errno));
		pw_close(lock);
		return 1;
	}
	if (setpriority(PRIO_PROCESS, 0, pw_sw.cfg.nice) < 0)
		pw_warn("cannot run at nice %d: %s", pw_sw.cfg.nice, strerror(errno));
	pw_sw.epfd = epoll_create1(EPOLL_CLOEXEC);
	pw_sw_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	pw_sw_sigev.fn = pw_sw_on_signal;
	if (pw_sw.epfd < 0 || pw_sw_sigfd < 0 || pw_netns_init() < 0 ||
	    pw_sw_loop_add(pw_sw_sigfd, EPOLLIN, &pw_sw_sigev) < 0) {
		pw_err("setup: %s", strerror(errno));
		goto out;
	}
	int r = pw_sw_ctl_open(pw_sw.cfg.dir);
	if (r < 0) {
		pw_err("control socket in %s: %s", pw_sw.cfg.dir, strerror(-r));
		goto out;
	}
	if (pw_sw.cfg.metrics && (r = pw_sw_metrics_open(pw_sw.cfg.metrics)) < 0) {
		pw_err("cannot serve metrics on %s: %s", pw_sw.cfg.metrics, strerror(-r));
		goto out;
	}
	if ((rc = pw_sw_add_ports(ports, nports)) || (rc = pw_sw_add_rules(rules, nrules)))
		goto out;
	rc = 1;
	pw_info("running: %u ports, control %s/control, spin %u us, nice %d", pw_sw.nports,
		pw_sw.cfg.dir, pw_sw.cfg.spin_us, pw_sw.cfg.nice);
	r = pw_sw_run();
	if (r < 0)
		pw_err("event loop: %s", strerror(-r));
	else
		rc = 0;
out:
	pw_sw_ports_teardown();
	pw_sw_ctl_close();
	pw_close(pw_sw_sigfd);
	pw_close(pw_sw.epfd);
	pw_netns_teardown();
	if (lock >= 0) {
		unlink(lockpath);
		pw_close(lock);
	}
	return rc;
}
