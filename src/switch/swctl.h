/* SPDX-License-Identifier: MIT */
/*
 * A client of podwire-switch's control socket (ctl.c has the requests), for
 * the CLI and podwire-cni. Never prints.
 */
#ifndef PW_SWCTL_H
#define PW_SWCTL_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define PW_SW_DEFAULT_DIR "/run/podwire/switch"

/*
 * Send @req to the switch whose run directory is @dir and wait up to
 * @timeout_ms for its reply: the reply (the caller deletes it), or NULL
 * with why in @err: the switch is not there (errno ENOENT or ECONNREFUSED
 * in *@ret_errno), it did not answer, or its reply is not JSON.
 */
cJSON *pw_swctl_call(const char *dir, const cJSON *req, int timeout_ms, char *err, size_t errlen,
		     int *ret_errno);

#endif /* PW_SWCTL_H */
