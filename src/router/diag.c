// SPDX-License-Identifier: MIT
/*
 * Which Unix sockets still exist, from the kernel's socket diagnostics
 * (NETLINK_SOCK_DIAG, as ss -x asks). A channel's socket lives as long as
 * any process holds a copy: once it is gone, that side of the connection is
 * over, however it ended (close, exit, kill -9, the last of several forked
 * holders), which neither the shared flags nor a pid can tell.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "router.h"

struct pw_inodes {
	uint32_t *v;
	size_t n, cap;
	int err;
};

static int pw_diag_one(const struct nlmsghdr *nlh, void *arg)
{
	struct pw_inodes *s = arg;
	const struct unix_diag_msg *m = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*m))
		return MNL_CB_ERROR;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint32_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v) {
			s->err = -ENOMEM;
			return MNL_CB_ERROR;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = m->udiag_ino;
	return MNL_CB_OK;
}

static int pw_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int pw_diag_unix_inodes(uint32_t **ret, size_t *ret_n)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct pw_inodes s = { 0 };
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	int r = -errno;

	if (!nl)
		return r;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = (uint32_t)time(NULL);
	struct unix_diag_req *req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = AF_UNIX;
	req->udiag_states = ~0u;
	uint32_t seq = nlh->nlmsg_seq;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		r = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			r = -errno;
			goto out;
		}
		r = mnl_cb_run(buf, (size_t)n, seq, mnl_socket_get_portid(nl), pw_diag_one, &s);
		if (r <= MNL_CB_STOP)
			break;
	}
	if (r < 0) {
		r = s.err ? s.err : -errno;
		goto out;
	}
	qsort(s.v, s.n, sizeof(*s.v), pw_cmp_u32);
	*ret = s.v;
	*ret_n = s.n;
	s.v = NULL;
	r = 0;
out:
	free(s.v);
	mnl_socket_close(nl);
	return r;
}

bool pw_diag_has(const uint32_t *v, size_t n, uint32_t ino)
{
	return bsearch(&ino, v, n, sizeof(*v), pw_cmp_u32) != NULL;
}
