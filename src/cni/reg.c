// SPDX-License-Identifier: MIT
/*
 * One request per connection to podwired. The plugin is short-lived and
 * must not hold up the runtime: every exchange is bounded by
 * PW_REG_TIMEOUT_MS.
 */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "reg.h"

#define PW_REG_TIMEOUT_MS 2000

static uint8_t pw_reg_buf[PW_WIRE_MAX] __attribute__((aligned(8)));

/* Send @type with @body (and @fd if >= 0), decode the reply into @ret. No
 * router reads as -ECONNREFUSED, a router that predates the pod registry
 * (it drops us unanswered) as -EPROTONOSUPPORT, an ERR reply as its errno. */
static int pw_reg_call(const char *path, uint16_t type, const void *body, size_t len, int fd,
		       struct pw_msg *ret)
{
	int r = pw_proto_call(path, type, body, len, fd, PW_REG_TIMEOUT_MS, ret, pw_reg_buf);

	if (r == -ENOENT)
		return -ECONNREFUSED;
	if (r == -ECONNRESET)
		return -EPROTONOSUPPORT;
	if (r == 0 && ret->type == PW_MSG_ERR)
		r = ret->u.err.err > 0 ? -ret->u.err.err : -EIO;
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
