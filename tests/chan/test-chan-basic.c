// SPDX-License-Identifier: MIT
/* Smoke test of one channel inside one process: create, open both sides, echo. */
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <podwire/chan.h>

#include "pw_test.h"

int main(void)
{
	int memfd, sv[2];
	struct pw_chan *a, *b;
	char buf[64];

	PW_CHECK_EQ(pw_chan_create(PW_RING_MIN, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b), 0);
	close(memfd);

	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EAGAIN);
	PW_CHECK_EQ(pw_chan_write(a, "hello", 5, 0), 5);
	PW_CHECK(pw_chan_poll(b) & POLLIN, "mask %#x", pw_chan_poll(b));
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), 0), 5);
	PW_CHECK(memcmp(buf, "hello", 5) == 0, "got %.5s", buf);
	PW_CHECK_EQ(pw_chan_shutdown(a, SHUT_WR), 0);
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_write(a, "x", 1, 0), -EPIPE);
	PW_CHECK_EQ(pw_chan_write(b, "back", 4, 0), 4);
	PW_CHECK_EQ(pw_chan_read(a, buf, sizeof(buf), 0), 4);
	pw_chan_close(b);
	PW_CHECK_EQ(pw_chan_read(a, buf, sizeof(buf), 0), 0);
	PW_CHECK_EQ(pw_chan_write(a, "x", 1, 0), -EPIPE);
	pw_chan_close(a);
	pw_chan_close(NULL);
	return 0;
}
