// SPDX-License-Identifier: MIT
/*
 * One request per connection to podwired. The plugin is short-lived and
 * must not hold up the runtime: every exchange is bounded by
 * PW_REG_TIMEOUT_MS.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/util.h"
#include "proto.h"
#include "reg.h"

#define PW_REG_TIMEOUT_MS 2000

static uint8_t pw_reg_buf[PW_WIRE_MAX] __attribute__((aligned(8)));

/* Send @type with @body (and @fd if >= 0), decode the reply into @ret. */
static int pw_reg_call(const char *path, uint16_t type, const void *body, size_t len, int fd,
		       struct pw_msg *ret)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	int fds[PW_WIRE_MAX_FDS], s, r;
	unsigned nfds = 0;
	ssize_t n;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = errno == ENOENT ? -ECONNREFUSED : -errno;
		goto out;
	}
	r = pw_msg_send(s, type, 1, body, len, NULL, 0, &fd, fd >= 0 ? 1 : 0);
	if (r < 0)
		goto out;
	pfd.fd = s;
	do
		r = poll(&pfd, 1, PW_REG_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r != 1) {
		r = r < 0 ? -errno : -ETIMEDOUT;
		goto out;
	}
	n = pw_msg_recv(s, pw_reg_buf, sizeof(pw_reg_buf), fds, &nfds, 0);
	if (n <= 0) {
		/* A router that predates the pod registry drops us unanswered. */
		r = n == 0 ? -EPROTONOSUPPORT : (int)n;
		goto out;
	}
	for (unsigned i = 0; i < nfds; i++)
		pw_close(fds[i]);
	r = pw_msg_parse(pw_reg_buf, (size_t)n, nfds, ret);
	if (r == 0 && ret->type == PW_MSG_ERR)
		r = ret->u.err.err > 0 ? -ret->u.err.err : -EIO;
out:
	pw_close(s);
	return r;
}

static int pw_reg_expect_ok(int r, const struct pw_msg *m)
{
	return r < 0 ? r : m->type == PW_MSG_OK ? 0 : -EPROTO;
}

int pw_reg_add(const char *path, const struct pw_wire_pod *pod, int netns)
{
	struct pw_msg m;

	return pw_reg_expect_ok(pw_reg_call(path, PW_MSG_POD_ADD, pod, sizeof(*pod), netns, &m),
				&m);
}

int pw_reg_del(const char *path, const struct pw_wire_pod_key *key)
{
	struct pw_msg m;

	return pw_reg_expect_ok(pw_reg_call(path, PW_MSG_POD_DEL, key, sizeof(*key), -1, &m), &m);
}

int pw_reg_find(const char *path, const struct pw_wire_pod_key *key, struct pw_wire_pod *ret)
{
	struct pw_wire_pod_entry e;
	struct pw_msg m;
	int r = pw_reg_call(path, PW_MSG_PODS, NULL, 0, -1, &m);

	if (r < 0)
		return r;
	if (m.type != PW_MSG_PODS_OK)
		return -EPROTO;
	for (uint32_t i = 0; i < m.nentries; i++) {
		if (pw_msg_entry(&m, i, &e, sizeof(e)) < 0)
			return -EPROTO;
		if (!strncmp(e.pod.key.id, key->id, sizeof(key->id)) &&
		    !strncmp(e.pod.key.ifname, key->ifname, sizeof(key->ifname))) {
			*ret = e.pod;
			return 0;
		}
	}
	return m.u.pods.total > m.nentries ? -ERANGE : -ENOENT;
}
