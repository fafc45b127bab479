// SPDX-License-Identifier: MIT
/*
 * Local clients: processes that run the library (and the CLI, the CNI
 * plugin), on the control socket. One SOCK_SEQPACKET connection each; every
 * packet is one request, served from a table of handlers (pw_requests). The
 * rule for the descriptors that come with a request is in router.h, at
 * pw_request_fn.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/util.h"
#include "router.h"

#define PW_MAX_CLIENTS 4096

const struct pw_request pw_requests[] = {
	{ PW_MSG_HELLO, false, pw_request_hello },
	{ PW_MSG_LISTEN, false, pw_request_listen },
	{ PW_MSG_CONNECT, true, pw_request_connect },
	{ PW_MSG_STATUS, false, pw_request_status },
	{ PW_MSG_REATTACH, true, pw_request_reattach },
	{ PW_MSG_RELAY, true, pw_request_relay },
	{ PW_MSG_TAKE, true, pw_request_take },
	{ PW_MSG_POD_ADD, false, pw_request_pods },
	{ PW_MSG_POD_DEL, false, pw_request_pods },
	{ PW_MSG_PODS, false, pw_request_pods },
	{ PW_MSG_REQUEUE, true, pw_request_requeue },
	{ PW_MSG_POOL, true, pw_request_pool },
	{ PW_MSG_VERBS_DEV, true, pw_request_verbs_dev },
	{ PW_MSG_VERBS_OPEN, true, pw_request_verbs_open },
	{ PW_MSG_VERBS_QP, true, pw_request_verbs_qp },
	{ PW_MSG_VERBS_QP_DEL, true, pw_request_verbs_qp },
	{ PW_MSG_VERBS_CONNECT, true, pw_request_verbs_connect },
};
const size_t pw_nrequests = PW_ARRAY_SIZE(pw_requests);

static struct {
	int lfd;
	struct pw_ev ev_listen;
	struct pw_client *list;
	unsigned count;
} pw_clients = { .lfd = -1 };

unsigned pw_clients_count(void)
{
	return pw_clients.count;
}

int pw_client_reply_err(struct pw_client *c, uint32_t seq, int err)
{
	struct pw_wire_err e = { .err = err };

	return pw_msg_send(c->fd, PW_MSG_ERR, seq, &e, sizeof(e), NULL, 0, NULL, 0);
}

int pw_client_reply(struct pw_client *c, uint32_t seq, int r)
{
	if (r < 0)
		return pw_client_reply_err(c, seq, -r);
	return pw_msg_send(c->fd, PW_MSG_OK, seq, NULL, 0, NULL, 0, NULL, 0);
}

void pw_client_drop(struct pw_client *c)
{
	for (struct pw_client **pp = &pw_clients.list; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pw_rconnects_drop_client(c);
	pw_verbs_client_gone(c);
	pw_loop_del(c->fd, &c->ev);
	close(c->fd);
	pw_clients.count--;
	pw_dbg("client pid %d gone", c->pid);
	free(c);
}

static void pw_fds_close(int fds[PW_WIRE_MAX_FDS])
{
	for (unsigned i = 0; i < PW_WIRE_MAX_FDS; i++)
		fds[i] = pw_close(fds[i]);
}

static const struct pw_request *pw_request_find(const struct pw_request *table, size_t n,
						uint16_t type)
{
	for (size_t i = 0; i < n; i++)
		if (table[i].type == type)
			return &table[i];
	return NULL;
}

int pw_client_serve(struct pw_client *c, const struct pw_request *table, size_t n)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	int fds[PW_WIRE_MAX_FDS];
	unsigned nfds = 0;
	struct pw_msg m;
	int r;

	for (unsigned i = 0; i < PW_WIRE_MAX_FDS; i++)
		fds[i] = -1; /* (what pw_fds_close() passes over) */
	ssize_t len = pw_msg_recv(c->fd, buf, sizeof(buf), fds, &nfds, MSG_DONTWAIT);

	if (len == -EAGAIN)
		return 0;
	if (len <= 0)
		return len == 0 ? -EPIPE : (int)len;
	r = pw_msg_parse(buf, (size_t)len, nfds, &m);
	if (r < 0) {
		pw_router_stats.bad_msgs++;
		pw_warn("pid %d: malformed request (%s); dropping the client", c->pid,
			strerror(-r));
		pw_fds_close(fds);
		return r;
	}
	const struct pw_request *req = pw_request_find(table, n, m.type);
	if (!req) {
		pw_router_stats.bad_msgs++;
		pw_warn("pid %d: reply type %u sent as a request; dropping the client", c->pid,
			m.type);
		pw_fds_close(fds);
		return -EPROTO;
	}
	r = req->fn(c, &m, fds);
	if (r < 0 && req->reply_err)
		r = pw_client_reply_err(c, m.seq, -r);
	pw_fds_close(fds);
	return r == PW_REQUEST_LATER ? 0 : r;
}

static void pw_client_event(struct pw_ev *ev, uint32_t events)
{
	struct pw_client *c = (struct pw_client *)ev;

	if (events & (EPOLLHUP | EPOLLERR) && !(events & EPOLLIN)) {
		pw_client_drop(c);
		return;
	}
	if (pw_client_serve(c, pw_requests, pw_nrequests) < 0)
		pw_client_drop(c);
}

static void pw_clients_accept(struct pw_ev *ev, uint32_t events)
{
	for (;;) {
		int fd = accept4(pw_clients.lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct ucred cred;
		socklen_t len = sizeof(cred);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				pw_warn("accept: %s", strerror(errno));
			return;
		}
		if (pw_clients.count >= PW_MAX_CLIENTS) {
			pw_warn("too many clients (%u); refusing one", pw_clients.count);
			close(fd);
			continue;
		}
		struct pw_client *c = calloc(1, sizeof(*c));
		if (!c || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->ev.fn = pw_client_event;
		c->fd = fd;
		c->pid = cred.pid;
		c->uid = cred.uid;
		if (pw_loop_add(fd, EPOLLIN, &c->ev) < 0) {
			free(c);
			close(fd);
			continue;
		}
		c->next = pw_clients.list;
		pw_clients.list = c;
		pw_clients.count++;
		pw_dbg("client pid %d uid %u", c->pid, c->uid);
	}
}

static int pw_mkdir_parents(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

int pw_clients_listen(const char *path)
{
	struct sockaddr_un a;
	int r = pw_addr_unix(path, &a);

	if (r < 0)
		return r;
	r = pw_mkdir_parents(path);
	if (r < 0)
		return r;
	pw_clients.lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (pw_clients.lfd < 0)
		return -errno;
	/* A socket file left by a dead router is stale; a live one is not ours. */
	int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0) {
		close(probe);
		return -EADDRINUSE;
	}
	pw_close(probe);
	unlink(path);
	if (bind(pw_clients.lfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	/* Pods run as any user; what they may do is decided per request. */
	chmod(path, 0666);
	if (listen(pw_clients.lfd, 128) < 0)
		return -errno;
	pw_clients.ev_listen.fn = pw_clients_accept;
	return pw_loop_add(pw_clients.lfd, EPOLLIN, &pw_clients.ev_listen);
}

void pw_clients_teardown(const char *path)
{
	while (pw_clients.list)
		pw_client_drop(pw_clients.list);
	if (pw_clients.lfd >= 0)
		unlink(path);
	pw_clients.lfd = pw_close(pw_clients.lfd);
}
