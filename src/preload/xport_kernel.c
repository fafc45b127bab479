// SPDX-License-Identifier: MIT
/*
 * The kernel transport: a connection to another node's pod is a kernel TCP
 * socket that the router connected on the underlay (docs/FEDERATION.md). The
 * kernel serves its data and readiness; the socket layer shows the pods'
 * addresses and the application's socket family.
 */
#include "preload.h"

const struct pw_xport_ops pw_xport_kernel = {
	.name = "kernel",
	.kernel_io = true,
	.exec_carry = false, /* a kernel socket crosses exec by itself */
};

static void pw_kernel_opt_set(int level, int name, void *val, socklen_t len, void *arg)
{
	int sock = *(int *)arg;

	if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF) && len == sizeof(int)) {
		/* The kernel reports twice what was set: set what was set. */
		int b;
		memcpy(&b, val, sizeof(b));
		b /= 2;
		memcpy(val, &b, sizeof(b));
	}
	pw_real.setsockopt(sock, level, name, val, len);
}

void pw_xport_kernel_carry_opts(int fd, int sock)
{
	/* Only what the application changed: setting a buffer size, even to
	 * its default, would turn off the kernel's autotuning. */
	pw_opts_changed_each(fd, pw_tcp_family(fd), pw_kernel_opt_set, &sock);
}

void pw_xport_kernel_carry_set(int fd, int sock, uint32_t set)
{
	pw_opts_set_each(fd, set, pw_kernel_opt_set, &sock);
}

void pw_xport_kernel_apply(int sock, const struct pw_opt *opts, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct pw_opt o = opts[i]; /* (pw_kernel_opt_set may rewrite it) */
		pw_kernel_opt_set(o.level, o.name, o.val, o.len, &sock);
	}
}
