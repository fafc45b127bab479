// SPDX-License-Identifier: MIT
/*
 * stdio streams over accelerated sockets.
 */
#include "preload.h"

/* ---- stdio streams over accelerated sockets ---- */

/*
 * glibc's FILE functions read and write fds with internal calls that never
 * reach us, so a stream on an accelerated socket would see the channel's wake
 * bytes. fdopen() gives such an fd a cookie stream whose I/O goes through the
 * interposed calls. (Its fileno() is -1: a known difference.)
 */
static ssize_t pw_cookie_read(void *cookie, char *buf, size_t n)
{
	ssize_t r;

	do
		r = read((int)(intptr_t)cookie, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t pw_cookie_write(void *cookie, const char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write((int)(intptr_t)cookie, buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int pw_cookie_close(void *cookie)
{
	return close((int)(intptr_t)cookie);
}

PW_EXPORT FILE *fdopen(int fd, const char *mode)
{
	pw_ensure();
	if (!pw_conn_of(fd))
		return pw_real.fdopen(fd, mode);
	cookie_io_functions_t io = {
		.read = pw_cookie_read,
		.write = pw_cookie_write,
		.seek = NULL,
		.close = pw_cookie_close,
	};
	FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
	if (f)
		setvbuf(f, NULL, _IOFBF, BUFSIZ);
	return f;
}
