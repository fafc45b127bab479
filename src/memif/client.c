// SPDX-License-Identifier: MIT
/*
 * The client's side of memif (copy mode), as DPDK's net_memif role=client
 * lays it out: one sealed memfd region holding the S2M ring, the M2S ring,
 * then a buffer per descriptor; one ring each way. For podwire-pktgen,
 * which connects to podwire-switch or to a DPDK pod like any DPDK client.
 * The buffers' offsets are ours and never read back from the ring; the
 * lengths the server writes are checked against the buffer size.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/util.h"
#include "proto.h"
#include "memif.h"

static size_t pw_memif_ring_bytes(unsigned log2)
{
	return sizeof(struct pw_memif_ring) + (sizeof(struct pw_memif_desc) << log2);
}

static uint32_t pw_memif_client_buf(const struct pw_memif_client *c, bool s2m, unsigned slot)
{
	return (uint32_t)(2 * pw_memif_ring_bytes(c->log2) +
			  (size_t)(((s2m ? 0u : 1u) << c->log2) + slot) * c->bufsize);
}

/* Send @m (with @fd, if not -1) and wait for the server's answer, which
 * must be @want. */
static int pw_memif_client_say(struct pw_memif_client *c, const struct pw_memif_msg *m, int fd,
			       uint16_t want, int timeout_ms)
{
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof(*m) };
	struct pw_memif_msg r;
	uint8_t buf[2 * PW_MEMIF_MSG_SIZE];
	int fds[PW_WIRE_MAX_FDS];
	unsigned nfds = 0;
	ssize_t n;

	if (m && (n = pw_fds_send(c->sock, &iov, 1, &fd, fd >= 0)) < 0)
		return (int)n;
	struct pollfd p = { .fd = c->sock, .events = POLLIN };
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n < 0 ? -errno : -ETIMEDOUT;
	n = pw_msg_recv(c->sock, buf, sizeof(buf), fds, &nfds, 0);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -ECONNRESET;
	for (unsigned k = 0; k < nfds; k++)
		pw_close(fds[k]); /* (none is due: the parse below refuses it) */
	if (pw_memif_msg_parse(buf, (size_t)n, nfds, &r) < 0)
		return -EBADMSG;
	if (r.type == PW_MEMIF_DISCONNECT) {
		pw_memif_name(r.disconnect.reason, PW_MEMIF_REASON, c->reason);
		return -ECONNREFUSED;
	}
	if (r.type != want)
		return -EPROTO;
	if (r.type == PW_MEMIF_HELLO) {
		if (r.hello.min_version > PW_MEMIF_VERSION ||
		    r.hello.max_version < PW_MEMIF_VERSION)
			return -EPROTONOSUPPORT;
		if (c->log2 > r.hello.max_log2_ring_size)
			c->log2 = r.hello.max_log2_ring_size;
		pw_memif_name(r.hello.name, PW_MEMIF_NAME, c->peer);
	}
	return 0;
}

int pw_memif_client_open(struct pw_memif_client *c, int sock, uint32_t id, const char *secret,
			 const char *name, unsigned log2, uint32_t bufsize, int timeout_ms)
{
	struct pw_memif_msg m;
	int fd = -1, r;

	memset(c, 0, sizeof(*c));
	c->sock = sock;
	c->region_fd = c->s2m_evfd = c->m2s_evfd = -1;
	c->log2 = log2;
	c->bufsize = bufsize;
	if (log2 < 1 || log2 > PW_MEMIF_LOG2_RING_MAX || bufsize < 64 || bufsize > 65536) {
		r = -EINVAL;
		goto fail;
	}
	r = pw_memif_client_say(c, NULL, -1, PW_MEMIF_HELLO, timeout_ms);
	if (r < 0)
		goto fail;
	c->size = 2 * pw_memif_ring_bytes(c->log2) + (2ull << c->log2) * c->bufsize;
	fd = memfd_create("podwire-memif", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0 || ftruncate(fd, (off_t)c->size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0) {
		r = -errno;
		goto fail;
	}
	c->map = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (c->map == MAP_FAILED) {
		c->map = NULL;
		r = -errno;
		goto fail;
	}
	c->region_fd = fd;
	c->s2m = (struct pw_memif_ring *)c->map;
	c->m2s = (struct pw_memif_ring *)(c->map + pw_memif_ring_bytes(c->log2));
	for (unsigned d = 0; d < 2; d++) {
		struct pw_memif_ring *ring = d ? c->m2s : c->s2m;
		ring->cookie = PW_MEMIF_COOKIE;
		for (unsigned i = 0; i < 1u << c->log2; i++) {
			atomic_store_explicit(&ring->desc[i].region, 0, memory_order_relaxed);
			atomic_store_explicit(&ring->desc[i].offset, pw_memif_client_buf(c, !d, i),
					      memory_order_relaxed);
			atomic_store_explicit(&ring->desc[i].length, c->bufsize,
					      memory_order_relaxed);
		}
	}
	/* We poll our M2S ring: no interrupts for it. */
	atomic_store_explicit(&c->m2s->flags, PW_MEMIF_RING_MASK_INT, memory_order_relaxed);
	c->s2m_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	c->m2s_evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->s2m_evfd < 0 || c->m2s_evfd < 0) {
		r = -errno;
		goto fail;
	}
	pw_memif_msg_init(&m, id, secret, name);
	if ((r = pw_memif_client_say(c, &m, -1, PW_MEMIF_ACK, timeout_ms)) < 0)
		goto fail;
	pw_memif_msg_add_region(&m, 0, c->size);
	if ((r = pw_memif_client_say(c, &m, c->region_fd, PW_MEMIF_ACK, timeout_ms)) < 0)
		goto fail;
	pw_memif_msg_add_ring(&m, true, 0, 0, 0, (uint8_t)c->log2);
	if ((r = pw_memif_client_say(c, &m, c->s2m_evfd, PW_MEMIF_ACK, timeout_ms)) < 0)
		goto fail;
	pw_memif_msg_add_ring(&m, false, 0, 0, (uint32_t)pw_memif_ring_bytes(c->log2),
			      (uint8_t)c->log2);
	if ((r = pw_memif_client_say(c, &m, c->m2s_evfd, PW_MEMIF_ACK, timeout_ms)) < 0)
		goto fail;
	pw_memif_msg_connect(&m, name);
	if ((r = pw_memif_client_say(c, &m, -1, PW_MEMIF_CONNECTED, timeout_ms)) < 0)
		goto fail;
	pw_memif_client_refill(c);
	return 0;
fail:
	if (fd >= 0 && c->region_fd < 0)
		pw_close(fd);
	c->sock = -1; /* (the caller's) */
	pw_memif_client_close(c);
	return r;
}

void pw_memif_client_close(struct pw_memif_client *c)
{
	if (c->sock >= 0) {
		struct pw_memif_msg m;
		pw_memif_msg_disconnect(&m, 0, "bye");
		ssize_t n = send(c->sock, &m, sizeof(m), MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)n;
	}
	if (c->map)
		munmap(c->map, c->size);
	c->map = NULL;
	c->region_fd = pw_close(c->region_fd);
	c->s2m_evfd = pw_close(c->s2m_evfd);
	c->m2s_evfd = pw_close(c->m2s_evfd);
}

unsigned pw_memif_client_tx(struct pw_memif_client *c, const struct pw_memif_pkt *pkts, unsigned n)
{
	const uint16_t size = (uint16_t)(1u << c->log2), mask = size - 1;
	/* acquire: pairs with the server's release of tail once it has read
	 * the buffers it hands back. */
	uint16_t tail = atomic_load_explicit(&c->s2m->tail, memory_order_acquire);
	uint16_t room = (uint16_t)(size - (uint16_t)(c->s2m_head - tail));
	unsigned i;

	if (room > size) /* a server that moved tail past head */
		return 0;
	for (i = 0; i < n && room; i++, room--) {
		uint16_t slot = c->s2m_head & mask;
		uint32_t len = pkts[i].len < c->bufsize ? pkts[i].len : c->bufsize;
		struct pw_memif_desc *d = &c->s2m->desc[slot];
		memcpy(c->map + pw_memif_client_buf(c, true, slot), pkts[i].data, len);
		atomic_store_explicit(&d->offset, pw_memif_client_buf(c, true, slot),
				      memory_order_relaxed);
		atomic_store_explicit(&d->length, len, memory_order_relaxed);
		atomic_store_explicit(&d->flags, 0, memory_order_relaxed);
		c->s2m_head++;
	}
	if (!i)
		return 0;
	/* release: pairs with the server's acquire of head before it reads
	 * the descriptors and buffers. seq_cst, so that the flags read after
	 * it are not read before it (the server's interrupt request). */
	atomic_store_explicit(&c->s2m->head, c->s2m_head, memory_order_seq_cst);
	if (!(atomic_load_explicit(&c->s2m->flags, memory_order_seq_cst) &
	      PW_MEMIF_RING_MASK_INT)) {
		uint64_t one = 1;
		ssize_t w = write(c->s2m_evfd, &one, sizeof(one));
		(void)w;
		c->irqs++;
	}
	return i;
}

int pw_memif_client_rx(struct pw_memif_client *c, struct pw_memif_pkt *pkts, unsigned max)
{
	const uint16_t size = (uint16_t)(1u << c->log2), mask = size - 1;
	/* acquire: pairs with the server's release of tail after it filled
	 * the buffers. */
	uint16_t tail = atomic_load_explicit(&c->m2s->tail, memory_order_acquire);
	uint16_t avail = (uint16_t)(tail - c->m2s_seen);
	unsigned n = 0;

	if (avail > size)
		return -EPROTO;
	while (avail-- && n < max) {
		uint16_t slot = c->m2s_seen & mask;
		const struct pw_memif_desc *d = &c->m2s->desc[slot];
		uint32_t len = atomic_load_explicit(&d->length, memory_order_relaxed);
		c->m2s_seen++;
		/* Chains are not ours to make: a jumbo frame's pieces come as
		 * frames (a generator only counts and times them). */
		if (len > c->bufsize)
			return -EPROTO;
		pkts[n].data = c->map + pw_memif_client_buf(c, false, slot);
		pkts[n].len = len;
		n++;
	}
	return (int)n;
}

void pw_memif_client_refill(struct pw_memif_client *c)
{
	const uint16_t size = (uint16_t)(1u << c->log2), mask = size - 1;
	uint16_t head = c->m2s_head;

	while ((uint16_t)(head - c->m2s_seen) < size) {
		atomic_store_explicit(&c->m2s->desc[head & mask].length, c->bufsize,
				      memory_order_relaxed);
		head++;
	}
	if (head == c->m2s_head)
		return;
	c->m2s_head = head;
	/* release: pairs with the server's acquire of head before it fills
	 * the buffers offered. */
	atomic_store_explicit(&c->m2s->head, head, memory_order_release);
}
