// SPDX-License-Identifier: MIT
/*
 * podwire-bench: latency and throughput of a byte stream between two
 * processes, over podwire shared memory, a Unix socketpair, or TCP loopback.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <podwire/chan.h>

#include "../common/addr.h"
#include "../common/parse.h"
#include "../common/util.h"
#include "cycle.h"
#include "hist.h"

#define PW_BENCH_RXBUF	  ((size_t)256 << 10)
#define PW_BENCH_MAX_SIZE (64ull << 20)

enum pw_transport { PW_T_SHM, PW_T_UNIX, PW_T_TCP, PW_T_COUNT };
enum pw_mode { PW_MODE_PINGPONG, PW_MODE_THROUGHPUT, PW_MODE_CONNECT };

static const char *const pw_mode_names[] = { "pingpong", "throughput", "connect" };

static const char *const pw_transport_names[PW_T_COUNT] = { "shm", "unix", "tcp" };

struct pw_bench_opts {
	enum pw_transport transport;
	uint32_t size;
	double duration, warmup;
	int cpu[2];
	uint32_t spin_ns;
	uint32_t ring;
	bool json;
	/* connect: the server to cycle with, or the address to serve on */
	bool has_to, has_serve;
	struct sockaddr_in to, serve;
	uint64_t count;	    /* stop after this many (0: by time only) */
	unsigned exchanges; /* connect: one-byte echoes per connection */
	bool handover;	    /* connect: sockets made by another process (cycle.c) */
};

struct pw_result {
	enum pw_mode mode;
	enum pw_transport transport;
	uint32_t size;
	double seconds;
	uint64_t msgs;
	uint64_t bytes;
	struct pw_hist *hist; /* ping-pong only */
};

/* One end of the connection under test. */
struct pw_end {
	enum pw_transport t;
	int fd;
	struct pw_chan *chan;
};

/* Everything made before fork(), so each process then takes its end. */
struct pw_link {
	enum pw_transport t;
	int memfd;
	int sv[2];
	int listen_fd;
	struct sockaddr_in addr;
};

static void pw_die(const char *what, int err)
{
	fprintf(stderr, "podwire-bench: %s: %s\n", what, strerror(err));
	exit(1);
}

static int pw_link_make(struct pw_link *l, const struct pw_bench_opts *o)
{
	*l = (struct pw_link){ .t = o->transport, .memfd = -1, .sv = { -1, -1 }, .listen_fd = -1 };
	switch (o->transport) {
	case PW_T_SHM:
		return pw_chan_create(o->ring, 0, &l->memfd, l->sv);
	case PW_T_UNIX:
		return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, l->sv) < 0 ? -errno : 0;
	case PW_T_TCP: {
		socklen_t len = sizeof(l->addr);
		int one = 1;

		l->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l->listen_fd < 0)
			return -errno;
		setsockopt(l->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		l->addr.sin_family = AF_INET;
		l->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (bind(l->listen_fd, (struct sockaddr *)&l->addr, sizeof(l->addr)) < 0 ||
		    listen(l->listen_fd, 1) < 0 ||
		    getsockname(l->listen_fd, (struct sockaddr *)&l->addr, &len) < 0)
			return -errno;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

/* Take end @side (0: the measuring parent, 1: the child) and drop the rest. */
static int pw_link_take(struct pw_link *l, int side, const struct pw_bench_opts *o,
			struct pw_end *ret)
{
	int one = 1, ret_err = 0;

	*ret = (struct pw_end){ .t = l->t, .fd = -1 };
	switch (l->t) {
	case PW_T_SHM: {
		struct pw_chan_opts co = { .spin_ns = o->spin_ns };

		ret_err = pw_chan_open(l->memfd, l->sv[side], (unsigned)side, &co, &ret->chan);
		if (ret_err == 0)
			l->sv[side] = -1;
		break;
	}
	case PW_T_UNIX:
		ret->fd = l->sv[side];
		l->sv[side] = -1;
		break;
	case PW_T_TCP:
		if (side == 0) {
			do
				ret->fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			while (ret->fd < 0 && errno == EINTR);
		} else {
			ret->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (ret->fd >= 0 &&
			    connect(ret->fd, (struct sockaddr *)&l->addr, sizeof(l->addr)) < 0)
				ret->fd = pw_close(ret->fd);
		}
		if (ret->fd < 0)
			ret_err = -errno;
		else
			setsockopt(ret->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		break;
	default:
		ret_err = -EINVAL;
	}
	l->memfd = pw_close(l->memfd);
	l->sv[0] = pw_close(l->sv[0]);
	l->sv[1] = pw_close(l->sv[1]);
	l->listen_fd = pw_close(l->listen_fd);
	return ret_err;
}

static void pw_end_close(struct pw_end *e)
{
	pw_chan_close(e->chan);
	e->chan = NULL;
	e->fd = pw_close(e->fd);
}

/* Write all of @len bytes; -errno on failure. */
static int pw_end_send(struct pw_end *e, const void *buf, size_t len)
{
	if (e->chan) {
		ssize_t n = pw_chan_write(e->chan, buf, len, 0);
		return n < 0 ? (int)n : 0;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = send(e->fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Read @len bytes if @all, else whatever is there; 0 at EOF. */
static ssize_t pw_end_recv(struct pw_end *e, void *buf, size_t len, bool all)
{
	ssize_t n;

	if (e->chan)
		return pw_chan_read(e->chan, buf, len, all ? PW_CHAN_WAITALL : 0);
	do
		n = recv(e->fd, buf, len, all ? MSG_WAITALL : 0);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

static void pw_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		pw_die("sched_setaffinity", errno);
}

/* Child of a ping-pong: echo messages until EOF. */
static int pw_echo(struct pw_end *e, uint32_t size)
{
	char *buf = malloc(size);

	if (!buf)
		return 1;
	for (;;) {
		ssize_t n = pw_end_recv(e, buf, size, true);
		if (n <= 0 || (size_t)n < size)
			break;
		if (pw_end_send(e, buf, size) < 0)
			break;
	}
	free(buf);
	return 0;
}

/* Child of a throughput run: send until the deadline or until the reader leaves. */
static int pw_blast(struct pw_end *e, uint32_t size, uint64_t until)
{
	char *buf = malloc(size);

	if (!buf)
		return 1;
	memset(buf, 0xa5, size);
	for (uint64_t i = 0;; i++) {
		if ((i & 255) == 0 && pw_now_ns() >= until)
			break;
		if (pw_end_send(e, buf, size) < 0)
			break;
	}
	free(buf);
	return 0;
}

/* Run @once until the warm-up plus the duration, timing each call after the
 * warm-up into r->hist; sets r->seconds and r->msgs. */
static int pw_timed(const struct pw_bench_opts *o, struct pw_result *r, int (*once)(void *),
		    void *arg)
{
	uint64_t t0 = pw_now_ns(), measure_at = t0 + (uint64_t)(o->warmup * 1e9);
	uint64_t stop_at = measure_at + (uint64_t)(o->duration * 1e9), now = t0, start = 0;
	int ret = 0;

	for (uint64_t i = 0; now < stop_at && (!o->count || i < o->count); i++) {
		uint64_t before = now;

		ret = once(arg);
		if (ret < 0)
			break;
		now = pw_now_ns();
		if (now >= measure_at) {
			if (!start)
				start = before;
			pw_hist_add(r->hist, now - before);
		}
	}
	r->seconds = start ? (double)(now - start) / 1e9 : 0.0;
	r->msgs = r->hist->count;
	return ret;
}

struct pw_pp_arg {
	struct pw_end *e;
	char *buf;
	uint32_t size;
};

static int pw_pingpong_once(void *arg)
{
	struct pw_pp_arg *a = arg;
	int ret = pw_end_send(a->e, a->buf, a->size);

	if (ret < 0)
		return ret;
	ssize_t n = pw_end_recv(a->e, a->buf, a->size, true);
	if (n != (ssize_t)a->size)
		return n < 0 ? (int)n : -EPIPE;
	return 0;
}

static int pw_pingpong(struct pw_end *e, const struct pw_bench_opts *o, struct pw_result *r)
{
	struct pw_pp_arg a = { .e = e, .buf = calloc(1, o->size), .size = o->size };
	int ret;

	if (!a.buf)
		return -ENOMEM;
	ret = pw_timed(o, r, pw_pingpong_once, &a);
	free(a.buf);
	r->bytes = r->msgs * (uint64_t)o->size;
	return ret;
}

static int pw_sink(struct pw_end *e, const struct pw_bench_opts *o, struct pw_result *r)
{
	char *buf = malloc(PW_BENCH_RXBUF);
	uint64_t measure_at = pw_now_ns() + (uint64_t)(o->warmup * 1e9);
	uint64_t stop_at = measure_at + (uint64_t)(o->duration * 1e9);
	uint64_t total = 0, start_bytes = 0, start = 0, now = 0;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = pw_end_recv(e, buf, PW_BENCH_RXBUF, false);
		if (n <= 0) {
			ret = n < 0 ? (int)n : -EPIPE;
			break;
		}
		total += (uint64_t)n;
		now = pw_now_ns();
		if (!start && now >= measure_at) {
			start = now;
			start_bytes = total;
		}
		if (now >= stop_at)
			break;
	}
	free(buf);
	r->seconds = start ? (double)(now - start) / 1e9 : 0.0;
	r->bytes = total - start_bytes;
	r->msgs = r->bytes / o->size;
	return ret;
}

struct pw_cycle_arg {
	struct sockaddr_in to;
	unsigned exchanges;
	struct pw_cycle_maker *maker;
};

static int pw_cycle_once_to(void *arg)
{
	struct pw_cycle_arg *a = arg;

	return pw_cycle_once(&a->to, a->exchanges, a->maker);
}

/* Connect cycles to @to until the deadline, each timed into r->hist. */
static int pw_cycles(const struct sockaddr_in *to, const struct pw_bench_opts *o,
		     struct pw_result *r)
{
	struct pw_cycle_maker maker;
	struct pw_cycle_arg a = { .to = *to, .exchanges = o->exchanges };
	int ret;

	if (o->handover) {
		ret = pw_cycle_maker_start(&maker, to);
		if (ret < 0)
			return ret;
		a.maker = &maker;
	}
	ret = pw_timed(o, r, pw_cycle_once_to, &a);
	if (o->handover)
		pw_cycle_maker_stop(&maker);
	r->bytes = r->msgs;
	return ret;
}

/* The connect command's client: to --to, or to a forked server on loopback. */
static int pw_run_connect(const struct pw_bench_opts *o, struct pw_result *r)
{
	struct sockaddr_in at = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(at);
	pid_t pid = -1;
	int lfd = -1, ret;

	*r = (struct pw_result){ .mode = PW_MODE_CONNECT, .transport = PW_T_TCP, .size = 1 };
	r->hist = malloc(sizeof(*r->hist));
	if (!r->hist)
		return -ENOMEM;
	pw_hist_init(r->hist);
	if (o->has_to)
		return pw_cycles(&o->to, o, r);

	ret = pw_cycle_listen(&at, o->handover, &lfd);
	if (ret < 0)
		return ret;
	if (getsockname(lfd, (struct sockaddr *)&at, &len) < 0) {
		ret = -errno;
		close(lfd);
		return ret;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		close(lfd);
		return ret;
	}
	if (pid == 0) {
		pw_pin(o->cpu[1]);
		_exit(pw_cycle_serve(
			      lfd, pw_now_ns() + (uint64_t)((o->warmup + o->duration + 5.0) * 1e9),
			      o->handover) < 0);
	}
	close(lfd);
	pw_pin(o->cpu[0]);
	ret = pw_cycles(&at, o, r);
	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (ret == 0 && r->seconds <= 0.0)
		ret = -ETIME;
	return ret;
}

/* connect --serve: serve cycles for the warm-up plus the duration. */
static int pw_cmd_serve(const struct pw_bench_opts *o)
{
	int lfd = -1, ret = pw_cycle_listen(&o->serve, o->handover, &lfd);

	if (ret == 0) {
		ret = pw_cycle_serve(lfd, pw_now_ns() + (uint64_t)((o->warmup + o->duration) * 1e9),
				     o->handover);
		close(lfd);
	}
	if (ret < 0) {
		fprintf(stderr, "podwire-bench: connect --serve: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}

/* Run one measurement: fork the peer, measure in this process. */
static int pw_run(enum pw_mode mode, const struct pw_bench_opts *o, struct pw_result *r)
{
	struct pw_link l;
	struct pw_end e;
	int ret, status;
	pid_t pid;

	*r = (struct pw_result){ .mode = mode, .transport = o->transport, .size = o->size };
	if (mode == PW_MODE_PINGPONG) {
		r->hist = malloc(sizeof(*r->hist));
		if (!r->hist)
			return -ENOMEM;
		pw_hist_init(r->hist);
	}
	ret = pw_link_make(&l, o);
	if (ret < 0)
		pw_die("setting up the transport", -ret);

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		pw_die("fork", errno);
	if (pid == 0) {
		pw_pin(o->cpu[1]);
		if (pw_link_take(&l, 1, o, &e) < 0)
			_exit(1);
		uint64_t until = pw_now_ns() + (uint64_t)((o->warmup + o->duration + 5.0) * 1e9);
		int rc = mode == PW_MODE_PINGPONG ? pw_echo(&e, o->size)
						  : pw_blast(&e, o->size, until);
		pw_end_close(&e);
		_exit(rc);
	}

	pw_pin(o->cpu[0]);
	ret = pw_link_take(&l, 0, o, &e);
	if (ret < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		pw_die("attaching to the transport", -ret);
	}
	ret = mode == PW_MODE_PINGPONG ? pw_pingpong(&e, o, r) : pw_sink(&e, o, r);
	pw_end_close(&e);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (mode == PW_MODE_THROUGHPUT && ret == -EPIPE)
		ret = 0; /* the sender's deadline came first: still a valid window */
	if (ret == 0 && r->seconds <= 0.0)
		ret = -ETIME;
	return ret;
}

static double pw_rate(uint64_t n, double s)
{
	return s > 0.0 ? (double)n / s : 0.0;
}

static const struct {
	const char *key;
	double p;
} pw_pcts[] = {
	{ "p50", 50.0 },   { "p90", 90.0 },	{ "p99", 99.0 },
	{ "p99.9", 99.9 }, { "p99.99", 99.99 }, { "p99.999", 99.999 },
};

static cJSON *pw_result_json(const struct pw_result *r)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "mode", pw_mode_names[r->mode]);
	cJSON_AddStringToObject(o, "transport", pw_transport_names[r->transport]);
	cJSON_AddNumberToObject(o, "size", r->size);
	cJSON_AddNumberToObject(o, "seconds", r->seconds);
	cJSON_AddNumberToObject(o, "msgs", (double)r->msgs);
	if (r->hist && r->hist->count) {
		cJSON *rtt = cJSON_AddObjectToObject(o, "rtt_ns");
		cJSON_AddNumberToObject(rtt, "min", (double)r->hist->min);
		cJSON_AddNumberToObject(rtt, "mean", pw_hist_mean(r->hist));
		cJSON_AddNumberToObject(rtt, "stddev", pw_hist_stddev(r->hist));
		for (size_t i = 0; i < PW_ARRAY_SIZE(pw_pcts); i++)
			cJSON_AddNumberToObject(rtt, pw_pcts[i].key,
						(double)pw_hist_percentile(r->hist, pw_pcts[i].p));
		cJSON_AddNumberToObject(rtt, "max", (double)r->hist->max);
	} else {
		cJSON_AddNullToObject(o, "rtt_ns");
	}
	/* Ping-pong counts round trips; each carries one message each way. */
	cJSON_AddNumberToObject(o, "msgs_per_sec", pw_rate(r->msgs, r->seconds));
	cJSON_AddNumberToObject(o, "bytes_per_sec", pw_rate(r->bytes, r->seconds));
	return o;
}

static void pw_print_json(cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);

	if (!s)
		pw_die("JSON", ENOMEM);
	puts(s);
	cJSON_free(s);
}

static void pw_fmt_ns(char *buf, size_t len, double ns)
{
	if (ns < 1e3)
		snprintf(buf, len, "%.0f ns", ns);
	else if (ns < 1e6)
		snprintf(buf, len, "%.2f us", ns / 1e3);
	else
		snprintf(buf, len, "%.2f ms", ns / 1e6);
}

static void pw_fmt_rate(char *buf, size_t len, double v, const char *unit)
{
	if (v >= 1e9)
		snprintf(buf, len, "%.2f G%s", v / 1e9, unit);
	else if (v >= 1e6)
		snprintf(buf, len, "%.2f M%s", v / 1e6, unit);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1f k%s", v / 1e3, unit);
	else
		snprintf(buf, len, "%.0f %s", v, unit);
}

static void pw_print_text(const struct pw_result *r)
{
	char a[32], b[32];

	if (r->mode == PW_MODE_CONNECT)
		printf("connect cycles (connect, 1-byte echo, close), %.2f s measured\n",
		       r->seconds);
	else
		printf("%s over %s, %u-byte messages, %.2f s measured\n",
		       r->mode == PW_MODE_PINGPONG ? "ping-pong" : "throughput",
		       pw_transport_names[r->transport], r->size, r->seconds);
	if (r->hist && r->hist->count) {
		printf("  %s: %" PRIu64 "\n", r->mode == PW_MODE_CONNECT ? "cycles" : "round trips",
		       r->hist->count);
		pw_fmt_ns(a, sizeof(a), (double)r->hist->min);
		printf("  rtt min      %s\n", a);
		pw_fmt_ns(a, sizeof(a), pw_hist_mean(r->hist));
		pw_fmt_ns(b, sizeof(b), pw_hist_stddev(r->hist));
		printf("  rtt mean     %s (stddev %s)\n", a, b);
		for (size_t i = 0; i < PW_ARRAY_SIZE(pw_pcts); i++) {
			pw_fmt_ns(a, sizeof(a), (double)pw_hist_percentile(r->hist, pw_pcts[i].p));
			printf("  rtt %-8s %s\n", pw_pcts[i].key, a);
		}
		pw_fmt_ns(a, sizeof(a), (double)r->hist->max);
		printf("  rtt max      %s\n", a);
	}
	pw_fmt_rate(a, sizeof(a), pw_rate(r->msgs, r->seconds), "msg/s");
	pw_fmt_rate(b, sizeof(b), pw_rate(r->bytes, r->seconds), "B/s");
	if (r->mode == PW_MODE_CONNECT)
		pw_fmt_rate(a, sizeof(a), pw_rate(r->msgs, r->seconds), "cycles/s");
	printf("  %s%s, %s\n", a, r->mode == PW_MODE_PINGPONG ? " (round trips)" : "", b);
}

static void pw_result_free(struct pw_result *r)
{
	free(r->hist);
	r->hist = NULL;
}

static int pw_parse_cpus(const char *s, int cpu[2])
{
	for (int i = 0; i < 2; i++) {
		char *end;

		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || end == s || v < 0 || v >= CPU_SETSIZE || *end != (i == 0 ? ',' : '\0'))
			return -EINVAL;
		cpu[i] = (int)v;
		s = end + 1;
	}
	return 0;
}

static const char pw_usage[] =
	"Usage: podwire-bench COMMAND [OPTIONS]\n"
	"\n"
	"Measure a byte stream between two processes: podwire shared memory (shm),\n"
	"a Unix socketpair (unix), or TCP over 127.0.0.1 (tcp). Each side runs in\n"
	"its own process; the parent measures, a forked child is the peer.\n"
	"\n"
	"Commands:\n"
	"  pingpong     send SIZE bytes, wait for SIZE bytes back, repeat; report\n"
	"               round-trip latency (min, mean, stddev, p50 ... p99.999, max)\n"
	"  throughput   the child streams SIZE-byte writes, the parent reads in\n"
	"               256 KiB reads; report messages and bytes per second\n"
	"  suite        pingpong and throughput over shm, unix and tcp at 64 B and\n"
	"               64 KiB, one after the other, as one table (make demo)\n"
	"  connect      connect cycles over plain TCP: connect, send 1 byte, read\n"
	"               its echo (--exchanges times), see the server close, close;\n"
	"               report each cycle's time. Run it under libpodwire.so to\n"
	"               measure podwire's connection setup, without it the\n"
	"               kernel's. The server is a forked child on 127.0.0.1 unless\n"
	"               --to or --serve say. With --handover (client and server\n"
	"               alike) each connection is set up as a pooled podwire\n"
	"               connection to another node is, in the kernel alone: a\n"
	"               forked process makes the sockets, 16 at a time, connected\n"
	"               with TCP Fast Open deferred, and hands them over; the\n"
	"               cycle writes a 24-byte identity the SYN carries and puts\n"
	"               the socket under its own fd. Run without the library, it\n"
	"               is the floor of that design on these hosts\n"
	"\n"
	"Options:\n"
	"  -t, --transport T  shm, unix or tcp (default shm; ignored by suite)\n"
	"  -s, --size N       message size in bytes; K, M, G suffixes (default 64)\n"
	"  -d, --duration S   seconds measured, after the warm-up (default 5; suite 1)\n"
	"  -w, --warmup S     seconds run before measuring (default 1; suite 0.3)\n"
	"  -c, --cpu A,B      pin the measuring process to CPU A and the peer to B\n"
	"      --spin-ns N    shm: busy-wait this long before sleeping (default 5000)\n"
	"      --ring N       shm: bytes per ring direction, a power of two (default 1M)\n"
	"      --to A:P       connect: cycle with the server at IPv4 A, port P\n"
	"      --serve A:P    connect: only serve on A:P, for the warm-up plus the\n"
	"                     duration, then exit\n"
	"      --handover     connect: hand-over cycles (see connect above); the\n"
	"                     server needs it too. The client's host needs bit 1\n"
	"                     of net.ipv4.tcp_fastopen (the default), else it fails\n"
	"                     (EOPNOTSUPP); without bit 2 on the server's host\n"
	"                     (podwired sets both on its node) the identity\n"
	"                     follows the handshake\n"
	"  -x, --exchanges N  connect: one-byte echoes per connection, 1 to 255\n"
	"                     (default 1)\n"
	"  -n, --count N      pingpong, connect: stop after N round trips or cycles\n"
	"                     (warm-up included), or at the duration if sooner\n"
	"  -j, --json         print one JSON object (suite: an array) on stdout\n"
	"  -h, --help         show this help\n"
	"\n"
	"JSON keys: mode, transport, size, seconds, msgs, rtt_ns (object with min,\n"
	"mean, stddev, p50, p90, p99, p99.9, p99.99, p99.999, max; null for\n"
	"throughput), msgs_per_sec (round trips for pingpong, cycles for connect),\n"
	"bytes_per_sec.\n"
	"Percentiles come from a log-linear histogram with buckets under 1% wide.\n"
	"\n"
	"Examples:\n"
	"  podwire-bench pingpong --transport shm --size 64\n"
	"  podwire-bench throughput --transport tcp --size 64K --duration 3 --json\n"
	"  podwire-bench suite --cpu 0,1\n"
	"  podwire-bench connect --serve 198.18.0.12:7000 -d 10 &   (in one pod)\n"
	"  podwire-bench connect --to 198.18.0.12:7000 -d 5 -w 1    (in another)\n"
	"\n"
	"Exit status: 0 on success, 1 on a failed run, 2 on a usage error.\n";

static void pw_usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "podwire-bench: %s%s%s\nTry 'podwire-bench --help'.\n", what,
		arg ? ": " : "", arg ? arg : "");
	exit(2);
}

static int pw_cmd_one(enum pw_mode mode, const struct pw_bench_opts *o)
{
	struct pw_result r;
	int ret = mode == PW_MODE_CONNECT ? pw_run_connect(o, &r) : pw_run(mode, o, &r);

	if (ret < 0) {
		fprintf(stderr, "podwire-bench: %s run failed: %s\n",
			mode == PW_MODE_CONNECT ? "connect" : pw_transport_names[o->transport],
			strerror(-ret));
		pw_result_free(&r);
		return 1;
	}
	if (o->json) {
		cJSON *j = pw_result_json(&r);
		pw_print_json(j);
		cJSON_Delete(j);
	} else {
		pw_print_text(&r);
	}
	pw_result_free(&r);
	return 0;
}

static int pw_cmd_suite(const struct pw_bench_opts *base)
{
	static const uint32_t sizes[] = { 64, 64 * 1024 };
	struct pw_result pp[PW_T_COUNT][2], tp[PW_T_COUNT][2];
	cJSON *arr = cJSON_CreateArray();
	int failed = 0;

	for (size_t si = 0; si < PW_ARRAY_SIZE(sizes); si++) {
		for (int t = 0; t < PW_T_COUNT; t++) {
			struct pw_bench_opts o = *base;

			o.transport = (enum pw_transport)t;
			o.size = sizes[si];
			if (!base->json)
				fprintf(stderr, "running %s %u B ...\n", pw_transport_names[t],
					o.size);
			int rp = pw_run(PW_MODE_PINGPONG, &o, &pp[t][si]);
			int rt = pw_run(PW_MODE_THROUGHPUT, &o, &tp[t][si]);
			if (rp < 0 || rt < 0) {
				fprintf(stderr, "podwire-bench: %s %u B run failed\n",
					pw_transport_names[t], o.size);
				failed = 1;
			}
			cJSON_AddItemToArray(arr, pw_result_json(&pp[t][si]));
			cJSON_AddItemToArray(arr, pw_result_json(&tp[t][si]));
		}
	}

	if (base->json) {
		pw_print_json(arr);
	} else {
		printf("\n%-9s %8s | %10s %10s %10s %10s | %12s %12s\n", "transport", "size",
		       "rtt p50", "rtt p99", "rtt p99.9", "rtt mean", "msg/s", "bytes/s");
		printf("%.*s\n", 95,
		       "-----------------------------------------------------------------------"
		       "--------------------------------");
		for (size_t si = 0; si < PW_ARRAY_SIZE(sizes); si++) {
			for (int t = 0; t < PW_T_COUNT; t++) {
				const struct pw_hist *h = pp[t][si].hist;
				char c[4][32], m[32], b[32];

				pw_fmt_ns(c[0], sizeof(c[0]), (double)pw_hist_percentile(h, 50));
				pw_fmt_ns(c[1], sizeof(c[1]), (double)pw_hist_percentile(h, 99));
				pw_fmt_ns(c[2], sizeof(c[2]), (double)pw_hist_percentile(h, 99.9));
				pw_fmt_ns(c[3], sizeof(c[3]), pw_hist_mean(h));
				pw_fmt_rate(m, sizeof(m),
					    pw_rate(tp[t][si].msgs, tp[t][si].seconds), "");
				pw_fmt_rate(b, sizeof(b),
					    pw_rate(tp[t][si].bytes, tp[t][si].seconds), "B/s");
				printf("%-9s %6u B | %10s %10s %10s %10s | %12s %12s\n",
				       pw_transport_names[t], sizes[si], c[0], c[1], c[2], c[3], m,
				       b);
			}
		}
		for (size_t si = 0; si < PW_ARRAY_SIZE(sizes); si++) {
			double shm = (double)pw_hist_percentile(pp[PW_T_SHM][si].hist, 50);
			double tcp = (double)pw_hist_percentile(pp[PW_T_TCP][si].hist, 50);
			double uni = (double)pw_hist_percentile(pp[PW_T_UNIX][si].hist, 50);
			if (shm > 0)
				printf("%6u B: shm p50 rtt is %.1fx lower than tcp, %.1fx lower "
				       "than unix\n",
				       sizes[si], tcp / shm, uni / shm);
		}
		printf("(ping-pong: rtt; throughput: one-way stream, %.1f s each after %.1f s "
		       "warm-up)\n",
		       base->duration, base->warmup);
	}
	cJSON_Delete(arr);
	for (size_t si = 0; si < PW_ARRAY_SIZE(sizes); si++)
		for (int t = 0; t < PW_T_COUNT; t++) {
			pw_result_free(&pp[t][si]);
			pw_result_free(&tp[t][si]);
		}
	return failed;
}

enum {
	PW_BENCH_OPT_SPIN = 256,
	PW_BENCH_OPT_RING,
	PW_BENCH_OPT_TO,
	PW_BENCH_OPT_SERVE,
	PW_BENCH_OPT_HANDOVER,
};

/* One option @c (argument @arg) into @o; exits on a bad one. */
static void pw_bench_opt(struct pw_bench_opts *o, int c, const char *arg)
{
	uint64_t v;
	int t;

	switch (c) {
	case 't':
		for (t = 0; t < PW_T_COUNT; t++)
			if (!strcmp(arg, pw_transport_names[t]))
				break;
		if (t == PW_T_COUNT)
			pw_usage_error("unknown transport (shm, unix or tcp)", arg);
		o->transport = (enum pw_transport)t;
		break;
	case 's':
		if (pw_parse_size(arg, PW_BENCH_MAX_SIZE, &v) < 0 || v == 0)
			pw_usage_error("bad --size (1 byte to 64M)", arg);
		o->size = (uint32_t)v;
		break;
	case 'd':
		if (pw_parse_seconds(arg, 0, 86400, &o->duration) < 0 || o->duration <= 0)
			pw_usage_error("bad --duration (seconds, > 0)", arg);
		break;
	case 'w':
		if (pw_parse_seconds(arg, 0, 86400, &o->warmup) < 0)
			pw_usage_error("bad --warmup (seconds, >= 0)", arg);
		break;
	case 'c':
		if (pw_parse_cpus(arg, o->cpu) < 0)
			pw_usage_error("bad --cpu (two CPU numbers: A,B)", arg);
		break;
	case PW_BENCH_OPT_SPIN: /* 0 would mean the default */
		if (pw_parse_u64(arg, UINT32_MAX, &v) < 0 || v == 0)
			pw_usage_error("bad --spin-ns (nanoseconds, > 0)", arg);
		o->spin_ns = (uint32_t)v;
		break;
	case PW_BENCH_OPT_RING:
		if (pw_parse_size(arg, UINT32_MAX, &v) < 0 || !pw_chan_ring_size_ok((uint32_t)v))
			pw_usage_error("bad --ring (a power of two, 4K to 1G)", arg);
		o->ring = (uint32_t)v;
		break;
	case PW_BENCH_OPT_TO:
		if (pw_addr_parse(arg, &o->to) < 0)
			pw_usage_error("bad --to (IPv4:port)", arg);
		o->has_to = true;
		break;
	case PW_BENCH_OPT_SERVE:
		if (pw_addr_parse(arg, &o->serve) < 0)
			pw_usage_error("bad --serve (IPv4:port)", arg);
		o->has_serve = true;
		break;
	case PW_BENCH_OPT_HANDOVER:
		o->handover = true;
		break;
	case 'x':
		if (pw_parse_u64(arg, PW_CYCLE_MAX_EXCHANGES, &v) < 0 || v == 0)
			pw_usage_error("bad --exchanges (1 to 255)", arg);
		o->exchanges = (unsigned)v;
		break;
	case 'n':
		if (pw_parse_u64(arg, UINT64_MAX, &o->count) < 0 || o->count == 0)
			pw_usage_error("bad --count (a positive number)", arg);
		break;
	case 'j':
		o->json = true;
		break;
	default:
		fprintf(stderr, "Try 'podwire-bench --help'.\n");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "transport", required_argument, NULL, 't' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "spin-ns", required_argument, NULL, PW_BENCH_OPT_SPIN },
		{ "ring", required_argument, NULL, PW_BENCH_OPT_RING },
		{ "to", required_argument, NULL, PW_BENCH_OPT_TO },
		{ "serve", required_argument, NULL, PW_BENCH_OPT_SERVE },
		{ "exchanges", required_argument, NULL, 'x' },
		{ "handover", no_argument, NULL, PW_BENCH_OPT_HANDOVER },
		{ "count", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pw_bench_opts o = {
		.transport = PW_T_SHM,
		.size = 64,
		.duration = -1,
		.warmup = -1,
		.cpu = { -1, -1 },
		.ring = 1u << 20,
		.exchanges = 1,
	};
	const char *cmd;
	int c;

	if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(pw_usage, stdout);
		return 0;
	}
	if (argc < 2 || argv[1][0] == '-')
		pw_usage_error("missing command (pingpong, throughput, suite or connect)", NULL);
	cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "t:s:d:w:c:n:x:jh", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(pw_usage, stdout);
			return 0;
		}
		pw_bench_opt(&o, c, optarg);
	}
	if (optind < argc)
		pw_usage_error("unexpected argument", argv[optind]);

	bool suite = !strcmp(cmd, "suite");
	if (o.duration < 0)
		o.duration = suite ? 1.0 : 5.0;
	if (o.warmup < 0)
		o.warmup = suite ? 0.3 : 1.0;
	signal(SIGPIPE, SIG_IGN);

	if ((o.has_to || o.has_serve || o.handover) && strcmp(cmd, "connect") != 0)
		pw_usage_error("--to, --serve and --handover are for connect", NULL);
	if (!strcmp(cmd, "pingpong"))
		return pw_cmd_one(PW_MODE_PINGPONG, &o);
	if (!strcmp(cmd, "throughput"))
		return pw_cmd_one(PW_MODE_THROUGHPUT, &o);
	if (suite)
		return pw_cmd_suite(&o);
	if (!strcmp(cmd, "connect")) {
		if (o.has_to && o.has_serve)
			pw_usage_error("--to and --serve exclude each other", NULL);
		return o.has_serve ? pw_cmd_serve(&o) : pw_cmd_one(PW_MODE_CONNECT, &o);
	}
	pw_usage_error("unknown command (pingpong, throughput, suite or connect)", cmd);
	return 2;
}
