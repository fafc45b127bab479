// SPDX-License-Identifier: MIT
/*
 * How much a kernel TCP connection carried, from TCP_INFO. A file of its own:
 * the fields are newer than glibc's struct tcp_info (netinet/tcp.h, which
 * preload.h includes), and the kernel's <linux/tcp.h> clashes with it.
 * musl's netinet/tcp.h has the kernel's whole struct (and musl-gcc no
 * kernel headers).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __GLIBC__
#include <linux/tcp.h>
#else
#include <netinet/tcp.h>
#endif

#include "../common/sys.h"
#include "tcpinfo.h"

int pw_tcp_info_activity(int fd, uint64_t *ret_segs, uint64_t *ret_bytes)
{
	struct tcp_info ti = { 0 };
	socklen_t len = sizeof(ti);
	int saved = errno; /* called from close(): the application's errno stays */
	int r = pw_sys_getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);

	errno = saved;
	/* Short: a kernel older than 4.6 counts no data segments. */
	if (r < 0 ||
	    len < offsetof(struct tcp_info, tcpi_data_segs_out) + sizeof(ti.tcpi_data_segs_out))
		return -1;
	*ret_segs = (uint64_t)ti.tcpi_data_segs_in + ti.tcpi_data_segs_out;
	*ret_bytes = ti.tcpi_bytes_acked + ti.tcpi_bytes_received;
	return 0;
}
