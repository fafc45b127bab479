/* SPDX-License-Identifier: MIT */
#ifndef PW_PRELOAD_TCPINFO_H
#define PW_PRELOAD_TCPINFO_H

#include <stdint.h>

/* Data segments (in + out) and payload bytes (acknowledged out + received)
 * of the kernel TCP socket @fd so far. -1 if it is no TCP socket or the
 * kernel does not count them. errno is left as it was, either way. */
int pw_tcp_info_activity(int fd, uint64_t *ret_segs, uint64_t *ret_bytes);

#endif
