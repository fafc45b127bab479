// SPDX-License-Identifier: MIT
/* Entering a network namespace for a moment and coming back (netns.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "netns.h"
#include "util.h"

static int pw_netns_self = -1; /* our own netns, to come back to */

int pw_netns_init(void)
{
	if (pw_netns_self >= 0)
		return 0;
	pw_netns_self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	return pw_netns_self < 0 ? -errno : 0;
}

void pw_netns_teardown(void)
{
	pw_netns_self = pw_close(pw_netns_self);
}

int pw_netns_enter(int netns)
{
	int r = pw_netns_init();

	if (r < 0)
		return r;
	return setns(netns, CLONE_NEWNET) < 0 ? -errno : 0;
}

bool pw_netns_is_self(int netns)
{
	struct stat a, b;

	return pw_netns_init() == 0 && fstat(netns, &a) == 0 && fstat(pw_netns_self, &b) == 0 &&
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

void pw_netns_leave(void)
{
	int saved = errno;

	if (setns(pw_netns_self, CLONE_NEWNET) < 0) {
		/* Stuck in a pod's namespace: nothing we do next can be trusted. */
		pw_err("cannot return to our own network namespace: %s", strerror(errno));
		abort();
	}
	errno = saved;
}
