// SPDX-License-Identifier: MIT
/*
 * The switch's control socket (DIR/control, root only, SOCK_SEQPACKET): one
 * JSON request per message, one JSON reply, then the switch closes.
 *
 *   {"cmd":"status"}
 *   {"cmd":"port-add","name":N,"socket":S[,"abstract":true,"netns":PATH]
 *        [,"id":I][,"secret":X][,"mac":"02:..."]}
 *   {"cmd":"port-del","name":N}
 *   {"cmd":"connect","a":N,"b":M}     every frame from N goes to M and back
 *
 * A reply is {"ok":true,...} or {"ok":false,"error":"...","errno":N}. Nothing here
 * blocks the data path: sockets are non-blocking and a request that is not
 * whole when its socket is readable is dropped. Prometheus metrics are
 * served the same way over HTTP (--metrics).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "../common/addr.h"
#include "../common/json.h"
#include "../common/log.h"
#include "../common/parse.h"
#include "../common/util.h"
#include "switch.h"

#define PW_SW_CTL_REQ_MAX 4096
#define PW_SW_CTL_CLIENTS 16

/* A control or metrics client between accept and its one request. */
struct pw_sw_client {
	int fd;
	bool http;
	struct pw_sw_ev ev;
};

static struct {
	int fd, mfd;
	char path[108];
	struct pw_sw_ev ev, mev;
	struct pw_sw_client clients[PW_SW_CTL_CLIENTS];
} pw_ctl = { .fd = -1, .mfd = -1 };

static void pw_sw_client_close(struct pw_sw_client *c)
{
	pw_sw_loop_del(c->fd);
	c->fd = pw_close(c->fd);
}

/* A port's counters, this connection's and the ones before it. */
static struct pw_memif_stats pw_sw_port_stats(const struct pw_sw_port *p)
{
	struct pw_memif_stats s = p->done;

	pw_memif_stats_add(&s, &p->conn.stats);
	return s;
}

static const char *pw_sw_port_state(const struct pw_sw_port *p)
{
	if (pw_sw_port_up(p))
		return "connected";
	return p->cfd >= 0 ? "handshake" : "listening";
}

static cJSON *pw_sw_status(void)
{
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "ports");

	for (unsigned i = 0; i < pw_sw.top; i++) {
		const struct pw_sw_port *p = &pw_sw.ports[i];
		if (!p->used)
			continue;
		struct pw_memif_stats s = pw_sw_port_stats(p);
		cJSON *e = cJSON_CreateObject();
		char mac[PW_ADDR_MAC_STRLEN];
		cJSON_AddStringToObject(e, "name", p->name);
		cJSON_AddStringToObject(e, "socket", p->addr.sun_path + p->abstract);
		cJSON_AddBoolToObject(e, "abstract", p->abstract);
		cJSON_AddNumberToObject(e, "id", p->id);
		if (p->has_mac) {
			cJSON_AddStringToObject(e, "mac", pw_addr_mac_format(p->mac, mac));
		}
		if (p->rule >= 0)
			cJSON_AddStringToObject(e, "to", pw_sw.ports[p->rule].name);
		cJSON_AddStringToObject(e, "state", pw_sw_port_state(p));
		if (pw_sw_port_up(p)) {
			cJSON_AddStringToObject(e, "peer", p->conn.peer);
			cJSON_AddNumberToObject(e, "rings", p->conn.nrings[0]);
			cJSON_AddNumberToObject(e, "ring_size", 1u << p->conn.rings[0][0].log2);
		}
		cJSON_AddNumberToObject(e, "rx_packets", (double)s.rx_pkts);
		cJSON_AddNumberToObject(e, "rx_bytes", (double)s.rx_bytes);
		cJSON_AddNumberToObject(e, "rx_bad", (double)s.rx_bad);
		cJSON_AddNumberToObject(e, "tx_packets", (double)s.tx_pkts);
		cJSON_AddNumberToObject(e, "tx_bytes", (double)s.tx_bytes);
		cJSON_AddNumberToObject(e, "tx_full", (double)s.tx_full);
		cJSON_AddNumberToObject(e, "tx_bad", (double)s.tx_bad);
		cJSON_AddNumberToObject(e, "interrupts_sent", (double)s.irqs);
		cJSON_AddNumberToObject(e, "spoofed", (double)p->spoofed);
		cJSON_AddNumberToObject(e, "no_dest", (double)p->no_dest);
		cJSON_AddNumberToObject(e, "connects", (double)p->connects);
		cJSON_AddNumberToObject(e, "refused", (double)p->refused);
		cJSON_AddItemToArray(arr, e);
	}
	cJSON_AddNumberToObject(o, "max_ports", pw_sw.cfg.max_ports);
	cJSON_AddNumberToObject(o, "ports_used", pw_sw.nports);
	cJSON_AddNumberToObject(o, "sleeps", (double)pw_sw.sleeps);
	cJSON_AddNumberToObject(o, "wakeups", (double)pw_sw.wakeups);
	cJSON_AddNumberToObject(o, "late_wakeups", (double)pw_sw.late_wakeups);
	cJSON_AddNumberToObject(o, "busy_seconds", (double)pw_sw.busy_ns / 1e9);
	return o;
}

static int pw_sw_port_add_json(const cJSON *req, char *err, size_t errlen)
{
	struct pw_sw_port_spec spec = { .netns = -1 };
	const char *mac = NULL, *netns = NULL;
	long long id = 0;
	int r;

	if (pw_json_want_str(pw_json_get(req, "name"), false, &spec.name, "name", err, errlen) <
		    0 ||
	    pw_json_want_str(pw_json_get(req, "socket"), false, &spec.socket, "socket", err,
			     errlen) < 0)
		return -EINVAL;
	if ((pw_json_get(req, "abstract") &&
	     pw_json_want_bool(pw_json_get(req, "abstract"), &spec.abstract, "abstract", err,
			       errlen) < 0) ||
	    (pw_json_get(req, "netns") && pw_json_want_str(pw_json_get(req, "netns"), false, &netns,
							   "netns", err, errlen) < 0) ||
	    (pw_json_get(req, "id") &&
	     pw_json_want_int(pw_json_get(req, "id"), 0, UINT32_MAX, &id, "id", err, errlen) < 0) ||
	    (pw_json_get(req, "secret") &&
	     pw_json_want_str(pw_json_get(req, "secret"), false, &spec.secret, "secret", err,
			      errlen) < 0) ||
	    (pw_json_get(req, "mac") &&
	     pw_json_want_str(pw_json_get(req, "mac"), false, &mac, "mac", err, errlen) < 0))
		return -EINVAL;
	spec.id = (uint32_t)id;
	if (mac) {
		if (pw_parse_mac(mac, spec.mac) < 0) {
			snprintf(err, errlen, "mac: not a unicast Ethernet address: %s", mac);
			return -EINVAL;
		}
		spec.has_mac = true;
	}
	if (spec.abstract != !!netns) {
		snprintf(err, errlen, "an abstract socket needs a netns, and only it");
		return -EINVAL;
	}
	if (netns && (spec.netns = open(netns, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "netns %s: %s", netns, strerror(errno));
		return -errno;
	}
	r = pw_sw_port_add(&spec);
	pw_close(spec.netns);
	if (r < 0)
		snprintf(err, errlen, "port %s: %s", spec.name, strerror(-r));
	return r;
}

static int pw_sw_connect_json(const cJSON *req, char *err, size_t errlen)
{
	const char *a, *b;

	if (pw_json_want_str(pw_json_get(req, "a"), false, &a, "a", err, errlen) < 0 ||
	    pw_json_want_str(pw_json_get(req, "b"), false, &b, "b", err, errlen) < 0)
		return -EINVAL;
	struct pw_sw_port *pa = pw_sw_port_find(a), *pb = pw_sw_port_find(b);
	if (!pa || !pb) {
		snprintf(err, errlen, "no port %s", pa ? b : a);
		return -ENOENT;
	}
	pa->rule = (int)pb->idx;
	pb->rule = (int)pa->idx;
	return 0;
}

/* Answer one request: the reply (the caller frees it). */
static cJSON *pw_sw_ctl_do(const char *buf, size_t len)
{
	char err[256] = "";
	cJSON *req = pw_json_parse(buf, len, "request", err, sizeof(err)), *reply = NULL;
	const char *cmd = req ? pw_json_get_str(req, "cmd") : NULL;
	int r = -EINVAL;

	if (req && !cmd)
		snprintf(err, sizeof(err), "no \"cmd\"");
	else if (cmd && !strcmp(cmd, "status")) {
		reply = pw_sw_status();
		r = 0;
	} else if (cmd && !strcmp(cmd, "port-add"))
		r = pw_sw_port_add_json(req, err, sizeof(err));
	else if (cmd && !strcmp(cmd, "port-del")) {
		const char *name = pw_json_get_str(req, "name");
		r = name ? pw_sw_port_del(name) : -EINVAL;
		if (r < 0)
			snprintf(err, sizeof(err), "port %s: %s", name ? name : "(no name)",
				 strerror(-r));
	} else if (cmd && !strcmp(cmd, "connect"))
		r = pw_sw_connect_json(req, err, sizeof(err));
	else if (cmd)
		snprintf(err, sizeof(err), "unknown command: %s", cmd);
	cJSON_Delete(req);
	if (!reply)
		reply = cJSON_CreateObject();
	cJSON_AddBoolToObject(reply, "ok", r == 0);
	if (r < 0) {
		cJSON_AddStringToObject(reply, "error", err[0] ? err : strerror(-r));
		cJSON_AddNumberToObject(reply, "errno", -r);
	}
	return reply;
}

/* Prometheus text: the switch's and each port's counters. */
static int pw_sw_metrics_format(FILE *f)
{
	fprintf(f,
		"# HELP podwire_switch_sleeps_total times the switch stopped polling and slept\n"
		"# TYPE podwire_switch_sleeps_total counter\n"
		"podwire_switch_sleeps_total %" PRIu64 "\n"
		"# TYPE podwire_switch_wakeups_total counter\n"
		"podwire_switch_wakeups_total %" PRIu64 "\n"
		"# HELP podwire_switch_late_wakeups_total naps that ended on their timer with "
		"frames waiting (an interrupt the client did not send)\n"
		"# TYPE podwire_switch_late_wakeups_total counter\n"
		"podwire_switch_late_wakeups_total %" PRIu64 "\n"
		"# TYPE podwire_switch_busy_seconds_total counter\n"
		"podwire_switch_busy_seconds_total %.6f\n"
		"# TYPE podwire_switch_ports gauge\n"
		"podwire_switch_ports %u\n",
		pw_sw.sleeps, pw_sw.wakeups, pw_sw.late_wakeups, (double)pw_sw.busy_ns / 1e9,
		pw_sw.nports);
	static const char *const names[] = { "rx_packets", "rx_bytes", "rx_bad",    "tx_packets",
					     "tx_bytes",   "tx_full",  "tx_bad",    "spoofed",
					     "no_dest",	   "connects", "interrupts" };
	for (size_t k = 0; k < PW_ARRAY_SIZE(names); k++) {
		fprintf(f, "# TYPE podwire_switch_port_%s_total counter\n", names[k]);
		for (unsigned i = 0; i < pw_sw.top; i++) {
			const struct pw_sw_port *p = &pw_sw.ports[i];
			if (!p->used)
				continue;
			struct pw_memif_stats s = pw_sw_port_stats(p);
			const uint64_t v[] = { s.rx_pkts,  s.rx_bytes,	s.rx_bad, s.tx_pkts,
					       s.tx_bytes, s.tx_full,	s.tx_bad, p->spoofed,
					       p->no_dest, p->connects, s.irqs };
			fprintf(f, "podwire_switch_port_%s_total{port=\"%s\"} %" PRIu64 "\n",
				names[k], p->name, v[k]);
		}
	}
	return ferror(f) ? -EIO : 0;
}

static void pw_sw_client_read(struct pw_sw_ev *ev, uint32_t events)
{
	struct pw_sw_client *c = pw_container_of(ev, struct pw_sw_client, ev);
	char buf[PW_SW_CTL_REQ_MAX];
	ssize_t n;

	(void)events;
	do
		n = recv(c->fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		pw_sw_client_close(c);
		return;
	}
	if (c->http) {
		char *body = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&body, &len);
		if (f && pw_sw_metrics_format(f) == 0 && fflush(f) == 0) {
			char head[160];
			int h = snprintf(head, sizeof(head),
					 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
					 "version=0.0.4\r\nContent-Length: %zu\r\n"
					 "Connection: close\r\n\r\n",
					 len);
			struct iovec iov[2] = { { head, (size_t)h }, { body, len } };
			struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
			ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)w;
		}
		if (f)
			fclose(f);
		free(body);
	} else {
		cJSON *reply = pw_sw_ctl_do(buf, (size_t)n);
		char *out = cJSON_PrintUnformatted(reply);
		if (out) {
			ssize_t w = send(c->fd, out, strlen(out), MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0)
				pw_warn("control: reply lost: %s", strerror(errno));
		}
		cJSON_free(out);
		cJSON_Delete(reply);
	}
	pw_sw_client_close(c);
}

static void pw_sw_accept(int lfd, bool http)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct pw_sw_client *c = NULL;

	if (fd < 0)
		return;
	for (unsigned i = 0; i < PW_SW_CTL_CLIENTS && !c; i++)
		if (pw_ctl.clients[i].fd < 0)
			c = &pw_ctl.clients[i];
	/* A big status must fit in one message. */
	int sz = 4 << 20;
	if (!http)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	if (!c) {
		pw_close(fd); /* too many at once: they may retry */
		return;
	}
	c->fd = fd;
	c->http = http;
	c->ev.fn = pw_sw_client_read;
	if (pw_sw_loop_add(fd, EPOLLIN, &c->ev) < 0)
		c->fd = pw_close(c->fd);
}

static void pw_sw_ctl_accept(struct pw_sw_ev *ev, uint32_t events)
{
	(void)ev;
	(void)events;
	pw_sw_accept(pw_ctl.fd, false);
}

static void pw_sw_metrics_accept(struct pw_sw_ev *ev, uint32_t events)
{
	(void)ev;
	(void)events;
	pw_sw_accept(pw_ctl.mfd, true);
}

int pw_sw_ctl_open(const char *dir)
{
	struct sockaddr_un a;
	int r;

	for (unsigned i = 0; i < PW_SW_CTL_CLIENTS; i++)
		pw_ctl.clients[i].fd = -1;
	if ((size_t)snprintf(pw_ctl.path, sizeof(pw_ctl.path), "%s/control", dir) >=
	    sizeof(pw_ctl.path))
		return -ENAMETOOLONG;
	r = pw_addr_unix(pw_ctl.path, &a);
	if (r < 0)
		return r;
	pw_ctl.fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (pw_ctl.fd < 0)
		return -errno;
	unlink(pw_ctl.path); /* one switch per directory: main.c holds its lock */
	mode_t old = umask(077);
	r = bind(pw_ctl.fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (r < 0 || listen(pw_ctl.fd, 16) < 0)
		return -errno;
	pw_ctl.ev.fn = pw_sw_ctl_accept;
	return pw_sw_loop_add(pw_ctl.fd, EPOLLIN, &pw_ctl.ev);
}

int pw_sw_metrics_open(const char *spec)
{
	struct sockaddr_in a;
	int one = 1;

	if (pw_addr_parse(spec, &a) < 0)
		return -EINVAL;
	pw_ctl.mfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (pw_ctl.mfd < 0)
		return -errno;
	setsockopt(pw_ctl.mfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(pw_ctl.mfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(pw_ctl.mfd, 16) < 0)
		return -errno;
	pw_ctl.mev.fn = pw_sw_metrics_accept;
	return pw_sw_loop_add(pw_ctl.mfd, EPOLLIN, &pw_ctl.mev);
}

void pw_sw_ctl_close(void)
{
	for (unsigned i = 0; i < PW_SW_CTL_CLIENTS; i++)
		if (pw_ctl.clients[i].fd >= 0)
			pw_sw_client_close(&pw_ctl.clients[i]);
	if (pw_ctl.fd >= 0) {
		pw_ctl.fd = pw_close(pw_ctl.fd);
		unlink(pw_ctl.path);
	}
	pw_ctl.mfd = pw_close(pw_ctl.mfd);
}
