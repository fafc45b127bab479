// SPDX-License-Identifier: MIT
/*
 * The process's side of podwire0: its arena (shm.h), a sparse memfd whose
 * low offsets re-back registered memory in place and whose meta part holds
 * the key table and the QP slots, and its connection to the router, which
 * numbers QPs and pairs them (VERBS_OPEN, VERBS_QP, VERBS_CONNECT,
 * VERBS_PAIRED).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../common/addr.h"
#include "proto.h"
#include "pwverbs.h"

#define PW_VPROC_CALL_MS 5000
#define PW_VMETA_LEN	 (PW_VSVC_OFF + (uint64_t)PW_VQPS * sizeof(struct pw_vsvc))

static struct {
	pthread_mutex_t lock;
	bool open;
	unsigned users; /* open contexts */
	int ctl, arena, null_evfd;
	int svc; /* peers on this node ask for service (pw_vsvc): svc.c */
	uint8_t *meta;
	uint32_t seq;
} pw_vproc = {
	.lock = PTHREAD_MUTEX_INITIALIZER, .ctl = -1, .arena = -1, .null_evfd = -1, .svc = -1
};

void *pw_varena_map(int arena, uint64_t off, size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_SHARED, arena, (off_t)off);

	return p == MAP_FAILED ? NULL : p;
}

struct pw_vkey *pw_vproc_keys(void)
{
	return (struct pw_vkey *)pw_vproc.meta;
}

struct pw_vsrq *pw_vproc_srq(unsigned slot)
{
	return (struct pw_vsrq *)(pw_vproc.meta + PW_VSRQ_OFF +
				  (size_t)slot * sizeof(struct pw_vsrq));
}

struct pw_vsvc *pw_vproc_svc(unsigned slot)
{
	return (struct pw_vsvc *)(pw_vproc.meta + PW_VSVC_OFF +
				  (size_t)slot * sizeof(struct pw_vsvc));
}

int pw_vproc_svc_fd(void)
{
	return pw_vproc.svc;
}

struct pw_vqp *pw_vproc_slot(unsigned slot)
{
	return (struct pw_vqp *)(pw_vproc.meta + PW_VQP_OFF + (size_t)slot * sizeof(struct pw_vqp));
}

int pw_vproc_arena(void)
{
	return pw_vproc.arena;
}

int pw_vproc_ctl(void)
{
	return pw_vproc.ctl;
}

int pw_vproc_null_evfd(void)
{
	return pw_vproc.null_evfd;
}

/* A PAIRED message (seq 0) is news, not a reply: apply it. */
static void pw_vproc_news(const struct pw_msg *m, int fds[PW_WIRE_MAX_FDS], unsigned n)
{
	if (m->type == PW_MSG_VERBS_PAIRED && n == 3) {
		const struct pw_wire_verbs_paired *p = &m->u.verbs_paired;
		pw_qp_paired(p->qpn, p->peer_qpn, p->peer_slot, fds[0], fds[1], fds[2]);
		return;
	}
	if (m->type == PW_MSG_VERBS_PAIRED_TCP && n == 1) {
		pw_qp_paired_tcp(m->u.verbs_paired.qpn, m->u.verbs_paired.peer_qpn, fds[0]);
		return;
	}
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* Read one message from the router: 1, 0 when none waits (@dontwait), or
 * -errno. Under the lock. */
static int pw_vproc_read(bool dontwait, uint8_t *buf, struct pw_msg *m, int fds[PW_WIRE_MAX_FDS],
			 unsigned *n)
{
	ssize_t len;

	*n = 0;
	len = pw_msg_recv(pw_vproc.ctl, buf, PW_WIRE_MAX, fds, n, dontwait ? MSG_DONTWAIT : 0);
	if (len == -EAGAIN || len == -EWOULDBLOCK)
		return 0;
	if (len <= 0)
		return len == 0 ? -ECONNRESET : (int)len;
	int r = pw_msg_parse(buf, (size_t)len, *n, m);
	if (r < 0) {
		for (unsigned i = 0; i < *n; i++)
			close(fds[i]);
		return r;
	}
	return 1;
}

void pw_vproc_drain(void)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	int fds[PW_WIRE_MAX_FDS];
	struct pw_msg m;
	unsigned n;

	if (pthread_mutex_trylock(&pw_vproc.lock) != 0)
		return; /* another thread reads: it applies them */
	while (pw_vproc.ctl >= 0 && pw_vproc_read(true, buf, &m, fds, &n) == 1)
		pw_vproc_news(&m, fds, n);
	pthread_mutex_unlock(&pw_vproc.lock);
}

static int pw_vproc_call_locked(uint16_t type, const void *body, size_t len, const int *fds,
				unsigned nfds, struct pw_msg *reply)
{
	static uint8_t buf[PW_WIRE_MAX] __attribute__((aligned(8)));
	int rfds[PW_WIRE_MAX_FDS];
	uint32_t seq = ++pw_vproc.seq ? pw_vproc.seq : ++pw_vproc.seq;
	unsigned n;
	int r;

	r = pw_msg_send(pw_vproc.ctl, type, seq, body, len, NULL, 0, fds, nfds);
	if (r < 0)
		return r;
	for (;;) {
		struct pollfd p = { .fd = pw_vproc.ctl, .events = POLLIN };
		do
			r = poll(&p, 1, PW_VPROC_CALL_MS);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return r < 0 ? -errno : -ETIMEDOUT;
		r = pw_vproc_read(false, buf, reply, rfds, &n);
		if (r < 0)
			return r;
		if (r == 0)
			continue; /* (a wake-up without a message) */
		if (reply->seq == seq) {
			for (unsigned i = 0; i < n; i++)
				close(rfds[i]);
			if (reply->type == PW_MSG_ERR)
				return reply->u.err.err > 0 ? -(int)reply->u.err.err : -EPROTO;
			return 0;
		}
		pw_vproc_news(reply, rfds, n);
	}
}

int pw_vproc_call(uint16_t type, const void *body, size_t len, int fd, struct pw_msg *reply)
{
	int r;

	pthread_mutex_lock(&pw_vproc.lock);
	r = pw_vproc.ctl < 0 ? -ENOTCONN
			     : pw_vproc_call_locked(type, body, len, &fd, fd >= 0 ? 1 : 0, reply);
	pthread_mutex_unlock(&pw_vproc.lock);
	/* News behind the reply: the progress thread's wake-up for them may
	 * have come while we held the lock (remote.c). */
	pw_vproc_drain();
	return r;
}

/* Under the lock. */
static void pw_vproc_release(void)
{
	if (pw_vproc.meta)
		munmap(pw_vproc.meta, PW_VMETA_LEN);
	pw_vproc.meta = NULL;
	if (pw_vproc.arena >= 0)
		close(pw_vproc.arena);
	if (pw_vproc.null_evfd >= 0)
		close(pw_vproc.null_evfd);
	if (pw_vproc.svc >= 0)
		close(pw_vproc.svc);
	if (pw_vproc.ctl >= 0)
		close(pw_vproc.ctl);
	pw_vproc.arena = pw_vproc.null_evfd = pw_vproc.svc = pw_vproc.ctl = -1;
	pw_vproc.open = false;
}

void pw_vproc_close(void)
{
	pthread_mutex_lock(&pw_vproc.lock);
	/* The last context: the router forgets us, and our fds go. Pages
	 * re-backed stay mapped (the mappings hold the arena); a later open
	 * makes a new arena, and registering them again copies them there. */
	bool last = pw_vproc.open && pw_vproc.users == 1;
	pthread_mutex_unlock(&pw_vproc.lock);
	/* The progress thread drains the router's connection: stop it first. */
	if (last)
		pw_vremote_stop();
	pthread_mutex_lock(&pw_vproc.lock);
	if (pw_vproc.open && !--pw_vproc.users)
		pw_vproc_release();
	pthread_mutex_unlock(&pw_vproc.lock);
}

int pw_vproc_open(void)
{
	const char *path = getenv("PODWIRE_SOCKET");
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int proof = -1, r = 0;
	struct pw_msg m = { 0 };

	pthread_mutex_lock(&pw_vproc.lock);
	if (pw_vproc.open) {
		pw_vproc.users++;
		goto out;
	}
	if (pw_addr_unix(path && *path ? path : PW_WIRE_DEFAULT_SOCKET, &a) < 0) {
		r = -ENAMETOOLONG;
		goto out;
	}
	pw_vproc.arena = memfd_create("podwire-verbs", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	pw_vproc.null_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pw_vproc.svc = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pw_vproc.ctl = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	proof = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (pw_vproc.arena < 0 || pw_vproc.null_evfd < 0 || pw_vproc.svc < 0 || pw_vproc.ctl < 0 ||
	    proof < 0 || ftruncate(pw_vproc.arena, (off_t)(PW_VARENA_META + PW_VMETA_LEN)) < 0 ||
	    connect(pw_vproc.ctl, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		goto fail;
	}
	pw_vproc.meta =
		pw_varena_map(pw_vproc.arena, PW_VARENA_META, PW_VMETA_LEN, PROT_READ | PROT_WRITE);
	if (!pw_vproc.meta) {
		r = -errno;
		goto fail;
	}
	int fds[3] = { proof, pw_vproc.arena, pw_vproc.svc };
	struct pw_wire_verbs_open body = { .layout = PW_VARENA_VERSION };
	r = pw_vproc_call_locked(PW_MSG_VERBS_OPEN, &body, sizeof(body), fds, 3, &m);
	if (r < 0)
		goto fail;
	if (m.type != PW_MSG_VERBS_DEV_OK) {
		r = -EPROTO;
		goto fail;
	}
	pw_vproc.open = true;
	pw_vproc.users = 1;
	goto out;
fail:
	pw_vproc_release();
out:
	if (proof >= 0)
		close(proof);
	pthread_mutex_unlock(&pw_vproc.lock);
	return r;
}
