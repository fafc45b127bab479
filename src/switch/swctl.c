// SPDX-License-Identifier: MIT
/* A client of podwire-switch's control socket (swctl.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/addr.h"
#include "../common/json.h"
#include "swctl.h"

#define PW_SWCTL_REPLY_MAX (4u << 20) /* as the switch's send buffer */

cJSON *pw_swctl_call(const char *dir, const cJSON *req, int timeout_ms, char *err, size_t errlen,
		     int *ret_errno)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un a;
	char *out = cJSON_PrintUnformatted(req), *buf = malloc(PW_SWCTL_REPLY_MAX);
	cJSON *reply = NULL;
	int fd = -1, e = 0;

	if (!out || !buf) {
		e = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/control", dir) >= sizeof(path) ||
	    pw_addr_unix(path, &a) < 0) {
		e = ENAMETOOLONG;
		snprintf(err, errlen, "%s/control: path too long", dir);
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    send(fd, out, strlen(out), MSG_NOSIGNAL) < 0) {
		e = errno;
		snprintf(err, errlen, "cannot reach podwire-switch at %s: %s", path, strerror(e));
		goto out;
	}
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n;
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	ssize_t len = n > 0 ? recv(fd, buf, PW_SWCTL_REPLY_MAX, 0) : -1;
	if (len <= 0) {
		e = n == 0 ? ETIMEDOUT : ECONNRESET;
		snprintf(err, errlen, "no reply from podwire-switch at %s", path);
		goto out;
	}
	reply = pw_json_parse(buf, (size_t)len, "the switch's reply", err, errlen);
	if (!reply)
		e = EPROTO;
out:
	if (fd >= 0)
		close(fd);
	cJSON_free(out);
	free(buf);
	if (ret_errno)
		*ret_errno = e;
	return reply;
}
