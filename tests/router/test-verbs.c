// SPDX-License-Identifier: MIT
/*
 * The virtual RDMA device's identity (src/router/verbs.c): the GID, LID and
 * GUID a pod address gets, and VERBS_DEV refused where there is no pod (the
 * router's own namespace) or no proof.
 */
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <podwire/shm.h>

#include "router_test.h"

static struct pw_wire_prefix prefix(const char *ip, uint8_t len)
{
	struct pw_wire_prefix p = { .family = AF_INET, .len = len };
	struct sockaddr_in a = rt_sin(ip, 0);

	memcpy(p.addr, &a.sin_addr, 4);
	return p;
}

static void check_identity(void)
{
	struct pw_wire_prefix p = prefix("198.19.0.0", 16);
	struct pw_wire_verbs_dev d;
	struct sockaddr_in a = rt_sin("198.19.1.11", 0);

	pw_verbs_identity(a.sin_addr.s_addr, &p, &d);
	static const uint8_t gid[16] = { [10] = 0xff, [11] = 0xff, 198, 19, 1, 11 };
	PW_CHECK(!memcmp(d.gid, gid, 16), "GID ::ffff:198.19.1.11");
	PW_CHECK_EQ(ntohs(d.lid), 0x010b);
	PW_CHECK_EQ(be64toh(d.guid), 0x02707700c613010bull);

	/* Offsets past the unicast LIDs, and the network address itself: no LID. */
	a = rt_sin("198.19.192.1", 0);
	pw_verbs_identity(a.sin_addr.s_addr, &p, &d);
	PW_CHECK_EQ(d.lid, 0);
	a = rt_sin("198.19.191.255", 0);
	pw_verbs_identity(a.sin_addr.s_addr, &p, &d);
	PW_CHECK_EQ(ntohs(d.lid), 0xbfff);
	a = rt_sin("198.19.0.0", 0);
	pw_verbs_identity(a.sin_addr.s_addr, &p, &d);
	PW_CHECK_EQ(d.lid, 0);
	/* A small prefix: offsets count from its base. */
	p = prefix("198.18.2.0", 24);
	a = rt_sin("198.18.2.7", 0);
	pw_verbs_identity(a.sin_addr.s_addr, &p, &d);
	PW_CHECK_EQ(ntohs(d.lid), 7);
}

static void ask(int proof, int want_err)
{
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);

	PW_CHECK_EQ(pw_msg_send(peer, PW_MSG_VERBS_DEV, 9, NULL, 0, NULL, 0, &proof, 1), 0);
	PW_CHECK_EQ(pw_client_serve(&c, pw_requests, pw_nrequests), 0);
	RT_CHECK_ERR(peer, 9, want_err);
	close(peer);
	close(c.fd);
}

/* VERBS_OPEN: the layout first, then the arena (a memfd) and the service
 * fd (an eventfd), then who asks. */
static void open_as(uint32_t layout, int arena, int svc, int want_err)
{
	struct pw_wire_verbs_open body = { .layout = layout };
	struct pw_client c;
	int peer = rt_client_open(&c, 1000);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int fds[3] = { s, arena, svc };

	PW_CHECK_EQ(pw_msg_send(peer, PW_MSG_VERBS_OPEN, 4, &body, sizeof(body), NULL, 0, fds, 3),
		    0);
	PW_CHECK_EQ(pw_client_serve(&c, pw_requests, pw_nrequests), 0);
	RT_CHECK_ERR(peer, 4, want_err);
	PW_CHECK(!c.verbs, "the client was bound to a device");
	close(s);
	close(peer);
	close(c.fd);
}

int main(void)
{
	check_identity();
	PW_CHECK_EQ(pw_router_prefixes_parse("127.0.0.0/8"), 0);
	/* A socket of the router's own namespace: the node's, not a pod's,
	 * even with an address in the prefix (loopback here). */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	PW_CHECK(s >= 0, "socket: %s", strerror(errno));
	ask(s, ENOENT);
	close(s);
	/* No socket as proof. */
	int p[2];
	PW_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	ask(p[0], ENOTTY);
	close(p[0]);
	close(p[1]);
	int mfd = memfd_create("test-arena", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	PW_CHECK(mfd >= 0, "memfd: %s", strerror(errno));
	int ev = eventfd(0, EFD_CLOEXEC);
	PW_CHECK(ev >= 0, "eventfd: %s", strerror(errno));
	open_as(PW_VARENA_VERSION + 1, mfd, ev, EPROTONOSUPPORT);
	open_as(PW_VARENA_VERSION, mfd, ev, ENOENT); /* our own netns */
	PW_CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	open_as(PW_VARENA_VERSION, p[0], ev, EBADF);  /* not a memfd */
	open_as(PW_VARENA_VERSION, mfd, p[1], EBADF); /* not an eventfd: a write could block */
	close(p[0]);
	close(p[1]);
	close(ev);
	close(mfd);
	printf("test-router-verbs: ok\n");
	return 0;
}
