// SPDX-License-Identifier: MIT
/*
 * podwired: the node router. It brokers connection setup between pods on this
 * node and is never on the data path. See docs/PRELOAD.md. This file: the
 * options, setup and teardown, and the two event sources of the router
 * itself, signals and the tick.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <podwire/chan.h>
#include <podwire/wire.h>

#include "../common/log.h"
#include "../common/parse.h"
#include "../common/util.h"
#include "router.h"

#define PW_DEFAULT_PREFIX "198.18.0.0/15"

static struct {
	int sigfd, tfd;
	struct pw_ev ev_signal, ev_timer;
	unsigned ticks;
} pw_main = { .sigfd = -1, .tfd = -1 };

static void pw_main_signal(struct pw_ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	if (read(pw_main.sigfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGHUP) {
		pw_info("signal %u: shutting down", si.ssi_signo);
		pw_loop_stop();
	}
}

static void pw_main_tick(struct pw_ev *ev, uint32_t events)
{
	uint64_t ticks;

	if (read(pw_main.tfd, &ticks, sizeof(ticks)) <= 0)
		return;
	pw_peers_tick();
	if (++pw_main.ticks % (1000 / PW_TICK_MS) == 0)
		pw_conns_reap();
}

/* SIGTERM, SIGINT and SIGHUP through a signalfd; SIGPIPE ignored. */
static int pw_main_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pw_main.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	pw_main.ev_signal.fn = pw_main_signal;
	if (pw_main.sigfd < 0 || pw_loop_add(pw_main.sigfd, EPOLLIN, &pw_main.ev_signal) < 0)
		return -errno;
	return 0;
}

static int pw_main_timer(void)
{
	struct itimerspec its = { .it_interval = { 0, PW_TICK_MS * 1000000L },
				  .it_value = { 0, PW_TICK_MS * 1000000L } };

	pw_main.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	pw_main.ev_timer.fn = pw_main_tick;
	if (pw_main.tfd < 0 || timerfd_settime(pw_main.tfd, 0, &its, NULL) < 0 ||
	    pw_loop_add(pw_main.tfd, EPOLLIN, &pw_main.ev_timer) < 0)
		return -errno;
	return 0;
}

static int pw_main_setup(void)
{
	const struct pw_router_cfg *cfg = &pw_router_cfg;
	int r;

	/* One memfd per connection is kept open: take all the fds allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	r = pw_netns_init();
	if (r < 0)
		return r;
	r = pw_loop_open();
	if (r < 0)
		return r;
	r = pw_clients_listen(cfg->socket_path);
	if (r < 0) {
		pw_err("cannot listen on %s: %s", cfg->socket_path, strerror(-r));
		return r;
	}
	r = pw_main_signals();
	if (r < 0)
		return r;
	r = pw_main_timer();
	if (r < 0)
		return r;
	if (cfg->metrics) {
		r = pw_metrics_open(cfg->metrics);
		if (r < 0) {
			pw_err("cannot serve metrics on %s: %s", cfg->metrics, strerror(-r));
			return r;
		}
	}
	return 0;
}

static void pw_main_teardown(void)
{
	pw_disc_stop();
	pw_peers_teardown();
	pw_relays_teardown();
	pw_clients_teardown(pw_router_cfg.socket_path);
	pw_listeners_teardown();
	pw_conns_teardown();
	pw_conn_chan_pool_drain();
	pw_metrics_close();
	pw_main.tfd = pw_close(pw_main.tfd);
	pw_main.sigfd = pw_close(pw_main.sigfd);
	pw_loop_close();
	pw_netns_teardown();
}

static const char pw_usage[] =
	"Usage: podwired [OPTIONS]\n"
	"\n"
	"The podwire node router: it brokers TCP connections between pods on this\n"
	"node onto shared-memory channels. Applications load libpodwire.so\n"
	"(LD_PRELOAD) and ask it over a Unix socket; it is never on the data path.\n"
	"\n"
	"Options:\n"
	"  -s, --socket PATH     control socket (default " PW_WIRE_DEFAULT_SOCKET ")\n"
	"  -p, --prefix CIDRS    destinations to accelerate, comma-separated IPv4\n"
	"                        prefixes (default " PW_DEFAULT_PREFIX ")\n"
	"  -m, --metrics H:P     serve Prometheus metrics over HTTP on IPv4 H, port P\n"
	"      --ring-size N     bytes per direction of a channel, at most (default 1M):\n"
	"                        a channel uses 64K until it carries bulk data\n"
	"      --pod-max-pending N  connections of one pod (its network namespace)\n"
	"                        not yet accepted, at most (default 1024); past it,\n"
	"                        its connects use the kernel\n"
	"      --pod-max-memory N  shared memory of one pod's channels, each counted\n"
	"                        at its full size, at most (default 4G; K, M, G\n"
	"                        suffixes); past half of it, new channels have 64K\n"
	"                        rings; past all of it, connects use the kernel\n"
	"  -f, --foreground      stay in the foreground (default: detach)\n"
	"  -l, --log-level L     error, warn, info (default: start-up, listeners, pods,\n"
	"                        peers) or debug (also every connection); to stderr\n"
	"\n"
	"Federation (pods on other nodes: direct TCP over the underlay, no overlay):\n"
	"      --peer-listen A:P  this node's underlay address and a port, for other\n"
	"                        routers and for the data connections they broker\n"
	"      --peers A:P,...   other nodes' routers to dial (their --peer-listen)\n"
	"      --pod-cidr CIDRS  pod addresses of this node, advertised to peers\n"
	"      --secret-file F   the cluster's shared secret (16 bytes or more); peers\n"
	"                        prove they know it before anything else\n"
	"      --node-name NAME  how peers log this node, and its Node with\n"
	"                        --kube-peers (default: the host name)\n"
	"      --kube-peers      the routers to dial come from the API server: every\n"
	"                        other Node that is Ready, at its InternalIP and this\n"
	"                        router's peer port, followed as nodes come, go or\n"
	"                        turn NotReady; this node's pod prefixes are its\n"
	"                        Node's spec.podCIDRs unless --pod-cidr is given.\n"
	"                        Only listed nodes are kept as peers. Excludes --peers\n"
	"      --kube-services   accelerate connects to Services: a connect to a\n"
	"                        ClusterIP:port goes to one of its ready endpoints, as\n"
	"                        kube-proxy would choose (random, or the client's last\n"
	"                        one with sessionAffinity ClientIP), on this node or\n"
	"                        another; the application still sees the ClusterIP.\n"
	"                        No ready endpoint: ECONNREFUSED. --prefix must cover\n"
	"                        the service range. Watches Services and Endpoints\n"
	"      --kubeconfig F    the API server for --kube-peers and --kube-services\n"
	"                        (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
	"  The secret file is read again when it changes (a mounted Secret that was\n"
	"  rotated): new handshakes use the new secret, the old one is accepted for\n"
	"  10 minutes, and links that are up stay up.\n"
	"  -h, --help            show this help\n"
	"\n"
	"Signals: SIGTERM or SIGINT shut down cleanly (established connections keep\n"
	"working: they do not depend on the router).\n";

/* --ring-size: bytes, or with K, M or G. */
static int pw_main_ring_size_parse(const char *s)
{
	uint64_t v;

	if (pw_parse_size(s, UINT32_MAX, &v) < 0 || !pw_chan_ring_size_ok((uint32_t)v))
		return -EINVAL;
	pw_router_cfg.ring_size = (uint32_t)v;
	return 0;
}

/* One option of the router itself (not federation); 2: bad. */
static int pw_main_option(int c, const char *arg, const char **prefix)
{
	uint64_t v;
	int r;

	switch (c) {
	case 's':
		pw_router_cfg.socket_path = arg;
		return 0;
	case 'p':
		*prefix = arg;
		return 0;
	case 'm':
		pw_router_cfg.metrics = arg;
		return 0;
	case 'r':
		if (pw_main_ring_size_parse(arg) == 0)
			return 0;
		fprintf(stderr, "podwired: bad --ring-size '%s' (a power of two, 4K to 1G)\n", arg);
		return 2;
	case 'f':
		pw_router_cfg.foreground = true;
		return 0;
	case 'Q':
		if (pw_parse_u64(arg, UINT32_MAX, &v) == 0) {
			pw_router_cfg.pod_max_pending = (unsigned)v;
			return 0;
		}
		fprintf(stderr, "podwired: bad --pod-max-pending '%s'\n", arg);
		return 2;
	case 'M':
		if (pw_parse_size(arg, UINT64_MAX, &pw_router_cfg.pod_max_memory) == 0)
			return 0;
		fprintf(stderr, "podwired: bad --pod-max-memory '%s'\n", arg);
		return 2;
	case 'l':
		r = pw_log_parse(arg);
		if (r < 0) {
			fprintf(stderr, "podwired: bad --log-level '%s'\n", arg);
			return 2;
		}
		pw_log_max = (enum pw_log_level)r;
		return 0;
	default:
		fprintf(stderr, "Try 'podwired --help'.\n");
		return 2;
	}
}

static const char *pw_main_kubeconfig;
static bool pw_main_services;

/* The options into pw_router_cfg and @peers: -1 to go on, or an exit code. */
static int pw_main_options(int argc, char **argv, struct pw_peers_cfg *peers)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "metrics", required_argument, NULL, 'm' },
		{ "ring-size", required_argument, NULL, 'r' },
		{ "pod-max-pending", required_argument, NULL, 'Q' },
		{ "pod-max-memory", required_argument, NULL, 'M' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "peer-listen", required_argument, NULL, 'L' },
		{ "peers", required_argument, NULL, 'P' },
		{ "pod-cidr", required_argument, NULL, 'C' },
		{ "secret-file", required_argument, NULL, 'S' },
		{ "node-name", required_argument, NULL, 'N' },
		{ "kube-peers", no_argument, NULL, 'K' },
		{ "kube-services", no_argument, NULL, 'V' },
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ 0 },
	};
	const char *prefix = PW_DEFAULT_PREFIX;
	int c, r;

	while ((c = getopt_long(argc, argv, "s:p:m:fl:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(pw_usage, stdout);
			return 0;
		case 'L':
			peers->listen = optarg;
			break;
		case 'P':
			peers->peers = optarg;
			break;
		case 'C':
			peers->pod_cidrs = optarg;
			break;
		case 'S':
			peers->secret_file = optarg;
			break;
		case 'N':
			peers->node_name = optarg;
			break;
		case 'K':
			peers->discover = true;
			break;
		case 'k':
			pw_main_kubeconfig = optarg;
			break;
		case 'V':
			pw_main_services = true;
			break;
		default:
			r = pw_main_option(c, optarg, &prefix);
			if (r)
				return r;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "podwired: unexpected argument '%s'\nTry 'podwired --help'.\n",
			argv[optind]);
		return 2;
	}
	if (peers->discover && (peers->peers || !peers->listen)) {
		fprintf(stderr,
			"podwired: --kube-peers needs --peer-listen and excludes --peers\n");
		return 2;
	}
	if (pw_main_kubeconfig && !peers->discover && !pw_main_services) {
		fprintf(stderr, "podwired: --kubeconfig is for --kube-peers and --kube-services\n");
		return 2;
	}
	if (pw_router_prefixes_parse(prefix) < 0) {
		fprintf(stderr, "podwired: bad --prefix '%s' (e.g. 198.18.0.0/15,127.0.0.0/8)\n",
			prefix);
		return 2;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct pw_peers_cfg peers = { 0 };
	int r;

	pw_log_ident = "podwired";
	r = pw_main_options(argc, argv, &peers);
	if (r >= 0)
		return r;
	if (!pw_router_cfg.foreground && daemon(0, 1) < 0) {
		fprintf(stderr, "podwired: daemon: %s\n", strerror(errno));
		return 1;
	}
	r = pw_main_setup();
	if (r < 0) {
		if (r != -EADDRINUSE)
			pw_err("setup failed: %s", strerror(-r));
		else
			pw_err("another podwired is serving %s", pw_router_cfg.socket_path);
		pw_main_teardown();
		return 1;
	}
	r = pw_peers_setup(&peers);
	if (r < 0) {
		pw_main_teardown();
		return r == -EINVAL ? 2 : 1;
	}
	if (peers.discover) {
		static char host[PW_PEER_NAME_LEN] = "node"; /* the thread keeps the name */

		if (!peers.node_name && gethostname(host, sizeof(host) - 1) == 0)
			peers.node_name = host;
		r = pw_disc_start(pw_main_kubeconfig, peers.node_name ? peers.node_name : host,
				  ntohs(pw_peers_underlay()->sin_port), !peers.pod_cidrs);
		if (r < 0) {
			pw_main_teardown();
			return r == -EINVAL ? 2 : 1;
		}
	}
	if (pw_main_services) {
		r = pw_disc_services_start(pw_main_kubeconfig);
		if (r < 0) {
			pw_main_teardown();
			return r == -EINVAL ? 2 : 1;
		}
	}
	pw_info("serving %s, %u prefix(es), ring %u bytes", pw_router_cfg.socket_path,
		pw_router_cfg.nprefixes, pw_router_cfg.ring_size);
	pw_conn_chan_pool_fill();
	pw_loop_run();
	pw_main_teardown();
	pw_info("stopped");
	return 0;
}
