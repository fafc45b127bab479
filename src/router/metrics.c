// SPDX-License-Identifier: MIT
/* The router's counters, served as Prometheus text over HTTP/1.0 (--metrics). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/util.h"
#include "router.h"

struct pw_router_stats pw_router_stats;

static struct {
	int fd;
	struct pw_ev ev;
} pw_metrics = { .fd = -1 };

/* The router's own metrics, into @body; returns the length, or <0. */
static int pw_metrics_format(char *body, size_t size)
{
	const struct pw_router_stats *s = &pw_router_stats;
	unsigned open, pending;
	uint64_t bytes;

	pw_conns_totals(&open, &pending, &bytes);
	return snprintf(body, size,
			"# HELP podwire_connect_requests_total connect() calls brokered or "
			"refused\n"
			"# TYPE podwire_connect_requests_total counter\n"
			"podwire_connect_requests_total %" PRIu64 "\n"
			"# TYPE podwire_connections_accelerated_total counter\n"
			"podwire_connections_accelerated_total %" PRIu64 "\n"
			"# TYPE podwire_connections_fallback_total counter\n"
			"podwire_connections_fallback_total %" PRIu64 "\n"
			"# HELP podwire_claims_total connections handed to a server's "
			"accept queue\n"
			"# TYPE podwire_claims_total counter\n"
			"podwire_claims_total %" PRIu64 "\n"
			"# TYPE podwire_bad_messages_total counter\n"
			"podwire_bad_messages_total %" PRIu64 "\n"
			"# TYPE podwire_connections gauge\n"
			"podwire_connections{state=\"open\"} %u\n"
			"podwire_connections{state=\"pending\"} %u\n"
			"# TYPE podwire_listeners gauge\n"
			"podwire_listeners %u\n"
			"# TYPE podwire_clients gauge\n"
			"podwire_clients %u\n"
			"# HELP podwire_bytes_total bytes carried over shared memory\n"
			"# TYPE podwire_bytes_total counter\n"
			"podwire_bytes_total %" PRIu64 "\n"
			"# HELP podwire_limit_refusals_total connects a per-pod limit left to "
			"the kernel\n"
			"# TYPE podwire_limit_refusals_total counter\n"
			"podwire_limit_refusals_total{limit=\"pending\"} %" PRIu64 "\n"
			"podwire_limit_refusals_total{limit=\"memory\"} %" PRIu64 "\n"
			"podwire_limit_refusals_total{limit=\"pool\"} %" PRIu64 "\n"
			"# HELP podwire_requeued_total parked channels a client claimed that "
			"their server process gave back to the listener's queue\n"
			"# TYPE podwire_requeued_total counter\n"
			"podwire_requeued_total %" PRIu64 "\n",
			s->connects, s->accelerated, s->fallbacks, s->claims, s->bad_msgs, open,
			pending, pw_listeners_count(), pw_clients_count(), bytes, s->limit_pending,
			s->limit_memory, s->limit_pool, s->requeued);
}

static void pw_metrics_serve(struct pw_ev *ev, uint32_t events)
{
	int fd = accept4(pw_metrics.fd, NULL, NULL, SOCK_CLOEXEC);
	char body[8192], req[1024];

	if (fd < 0)
		return;
	/* Read the request line, but never wait long for it. */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv(fd, req, sizeof(req), 0) < 0) {
		close(fd);
		return;
	}
	int n = pw_metrics_format(body, sizeof(body));
	if (n > 0 && (size_t)n < sizeof(body)) {
		FILE *f = fmemopen(body + n, sizeof(body) - (size_t)n, "w");
		if (f) {
			pw_peers_metrics(f);
			pw_svc_metrics(f);
			pw_relays_metrics(f);
			pw_verbs_metrics(f);
			fflush(f);
			n += (int)ftell(f);
			fclose(f);
		}
	}
	char head[160];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
			 "Content-Length: %d\r\nConnection: close\r\n\r\n",
			 n);
	struct iovec iov[2] = { { head, (size_t)h }, { body, (size_t)n } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	sendmsg(fd, &mh, MSG_NOSIGNAL);
	close(fd);
}

int pw_metrics_open(const char *spec)
{
	struct sockaddr_in a;
	int one = 1;

	if (pw_addr_parse(spec, &a) < 0)
		return -EINVAL;
	pw_metrics.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (pw_metrics.fd < 0)
		return -errno;
	setsockopt(pw_metrics.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(pw_metrics.fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(pw_metrics.fd, 16) < 0)
		return -errno;
	pw_metrics.ev.fn = pw_metrics_serve;
	return pw_loop_add(pw_metrics.fd, EPOLLIN, &pw_metrics.ev);
}

void pw_metrics_close(void)
{
	pw_metrics.fd = pw_close(pw_metrics.fd);
}
