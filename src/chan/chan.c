// SPDX-License-Identifier: MIT
/*
 * Duplex channel: two pw_rings in a sealed memfd plus a socketpair that
 * carries wake-ups and hang-ups.
 *
 * Wake-up protocol, per ring (Dekker over sequentially consistent atomics):
 *   sleeper: drain stale wake bytes; store sleep flag = 1 (seq_cst);
 *            load the peer's index (seq_cst); sleep in poll() only if unchanged.
 *   waker:   store own index (seq_cst, in pw_ring_publish);
 *            load sleep flag (seq_cst); if set, take it with an exchange and
 *            send one byte on the socket.
 * In the single total order of seq_cst operations one of the two loads sees
 * the other side's store, so a wake-up is never lost, and a writer whose
 * reader is spinning makes no syscall at all.
 *
 * Peer death: every copy of the peer's socket is closed by the kernel, poll()
 * reports POLLHUP and recv() returns 0. An orderly close sets PW_SIDE_CLOSED
 * first, so the survivor can tell EOF from a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <podwire/chan.h>

#include "ring.h"

#include "../common/sys.h"
#include "../common/util.h"

#ifndef SIOCINQ
#define SIOCINQ FIONREAD /* linux/sockios.h, which musl's headers lack */
#endif

#define PW_SEALS_REQUIRED (F_SEAL_SHRINK | F_SEAL_GROW)
/* Socket send buffer; the kernel doubles it to 8 KiB. A one-byte skb costs
 * about 768 bytes of it, so about eleven make the socket unwritable, one or
 * two leave it writable (the threshold is a quarter). */
#define PW_SOCK_SNDBUF 4096
#define PW_FILL_MSGS   16
#define PW_IOV_WINDOW  16
/*
 * Bytes copied between two publications of an index. A large message
 * published only at its end keeps the reader looking at an unchanged ring
 * for the whole copy: past the spin budget it sleeps and pays a wake-up, and
 * it cannot start copying out before the writer is done. Published in
 * chunks, the reader copies out while the writer copies in (and a writer
 * waiting for room sees the reader's progress). 16 KiB chunks cost a
 * streaming iperf3 too many hand-offs on two vCPUs (docs/CHANNEL.md).
 */
#define PW_CHAN_CHUNK (64u << 10)

struct pw_chan {
	struct pw_shm_chan *shm;
	size_t map_len;
	int sock;
	unsigned side;
	bool spin;
	bool hup_is_eof;
	bool kernel_restart;
	bool restricted; /* read, write and poll on the socket only: pw_chan_restrict() */
	uint32_t spin_ns;
	/* The spin budget learned from short sleeps: pw_chan_spin_budget(). */
	_Atomic uint32_t spin_more;
	struct pw_ring tx;     /* ring[side]: we produce */
	struct pw_ring rx;     /* ring[!side]: we consume */
	_Atomic uint32_t own;  /* our PW_SIDE_* flags; the shared copy is write-only for us */
	_Atomic int dead;      /* sticky -errno: -EPROTO (corrupt) */
	_Atomic bool peer_hup; /* the socket reported the peer gone */
	_Atomic bool rd_shut;
	_Atomic uint64_t bytes_out, bytes_in, wakes_sent, sleeps;
	_Atomic uint32_t tx_fills; /* times a write made the socket unwritable */
	/* Our own tail when a reader last waited, and what the last read
	 * returned: see pw_chan_holdoff(). */
	_Atomic uint32_t rx_wait_tail;
	_Atomic uint32_t rx_last_len;
};

/* Single-writer counter: a plain load and store, no locked instruction. */
static inline void pw_stat_add(_Atomic uint64_t *s, uint64_t n)
{
	atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline bool pw_ring_size_ok(uint32_t size)
{
	return size >= PW_RING_MIN && size <= PW_RING_MAX && !(size & (size - 1));
}

static inline uint64_t pw_seg_size(uint32_t ring_size)
{
	return PW_SHM_DATA_OFF + 2ull * ring_size;
}

uint64_t pw_chan_mem_size(uint32_t ring_size)
{
	return pw_seg_size(ring_size);
}

bool pw_chan_ring_size_ok(uint32_t ring_size)
{
	return pw_ring_size_ok(ring_size);
}

int pw_chan_create(uint32_t ring_size, unsigned flags, int *ret_memfd, int ret_sock[2])
{
	/* The control block is written with pwrite(2), not through a mapping:
	 * the creator (podwired) never maps the segment, and pays no mmap,
	 * munmap and page fault per channel. */
	struct pw_shm_chan img; /* 640 bytes: on the stack, not in every thread's TLS */
	int memfd = -1, sv[2] = { -1, -1 };
	uint64_t len = pw_seg_size(ring_size);
	int ret;

	if (!ret_memfd || !ret_sock || !pw_ring_size_ok(ring_size) || (flags & ~PW_CHAN_ARMED))
		return -EINVAL;

	memfd = pw_sys_memfd_create("podwire-chan", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0)
		goto fail_errno;
	if (ftruncate(memfd, (off_t)len) < 0)
		goto fail_errno;
	/* Sealed before anyone else sees it: the peer can never shrink the
	 * file under our mapping (SIGBUS) nor grow it past what we checked. */
	if (pw_sys_fcntl(memfd, F_ADD_SEALS, PW_SEALS_REQUIRED | F_SEAL_SEAL) < 0)
		goto fail_errno;

	memset(&img, 0, sizeof(img));
	img.hdr = (struct pw_shm_hdr){
		.magic = PW_SHM_MAGIC,
		.version = PW_SHM_VERSION,
		.hdr_size = sizeof(struct pw_shm_hdr),
		.ring_size = ring_size,
		.total_size = len,
	};
	/* A private image: relaxed stores, published by pwrite below. */
	atomic_store_explicit(&img.ctl.side[0], 0, memory_order_relaxed);
	atomic_store_explicit(&img.ctl.side[1], 0, memory_order_relaxed);
	atomic_store_explicit(&img.ctl.cpu[0], -1, memory_order_relaxed);
	atomic_store_explicit(&img.ctl.cpu[1], -1, memory_order_relaxed);
	uint32_t window = ring_size < PW_RING_WINDOW_START ? ring_size : PW_RING_WINDOW_START;
	pw_ring_format(&img.ring[0], window);
	pw_ring_format(&img.ring[1], window);
	if (flags & PW_CHAN_ARMED) {
		/* Nobody has the segment yet: the fd passing that hands it out
		 * orders these bytes before each end's first access. */
		atomic_store_explicit(&img.ring[0].rx_sleep, 1, memory_order_relaxed);
		atomic_store_explicit(&img.ring[1].rx_sleep, 1, memory_order_relaxed);
	}
	ssize_t n;
	do
		n = pwrite(memfd, &img, sizeof(img), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(img)) {
		if (n >= 0)
			errno = EIO;
		goto fail_errno;
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		goto fail_errno;

	*ret_memfd = memfd;
	ret_sock[0] = sv[0];
	ret_sock[1] = sv[1];
	return 0;

fail_errno:
	ret = -errno;
	if (memfd >= 0)
		pw_sys_close(memfd);
	return ret;
}

/* The failed call's error as -errno, never 0 (a caller tests ret < 0). */
static inline int pw_chan_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* Check that @memfd is a sealed segment we can map without fear of SIGBUS. */
static int pw_chan_check_fd(int memfd, uint64_t *ret_len)
{
	struct stat st;
	int seals;

	if (pw_sys_fstat(memfd, &st) < 0)
		return pw_chan_errno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	seals = pw_sys_fcntl(memfd, F_GET_SEALS, 0);
	if (seals < 0 || (seals & PW_SEALS_REQUIRED) != PW_SEALS_REQUIRED)
		return -EINVAL;
	if ((uint64_t)st.st_size < pw_seg_size(PW_RING_MIN) ||
	    (uint64_t)st.st_size > pw_seg_size(PW_RING_MAX))
		return -EINVAL;
	*ret_len = (uint64_t)st.st_size;
	return 0;
}

/*
 * Map the segment in @memfd, all of it or only its control page (@whole), and
 * take one snapshot of its header, which is never read again.
 */
static int pw_chan_map(int memfd, bool whole, int prot, void **ret_map, size_t *ret_len,
		       struct pw_shm_hdr *ret_hdr)
{
	uint64_t len = 0;
	void *map;
	int ret = pw_chan_check_fd(memfd, &len);

	if (ret < 0)
		return ret;
	size_t map_len = whole ? (size_t)len : PW_SHM_DATA_OFF;
	map = mmap(NULL, map_len, prot, MAP_SHARED, memfd, 0);
	if (map == MAP_FAILED)
		return pw_chan_errno();
	memcpy(ret_hdr, map, sizeof(*ret_hdr));
	if (ret_hdr->magic != PW_SHM_MAGIC || ret_hdr->version != PW_SHM_VERSION ||
	    ret_hdr->hdr_size != sizeof(struct pw_shm_hdr) ||
	    !pw_ring_size_ok(ret_hdr->ring_size) || ret_hdr->total_size != len ||
	    pw_seg_size(ret_hdr->ring_size) != len) {
		munmap(map, map_len);
		return -EPROTO;
	}
	*ret_map = map;
	*ret_len = map_len;
	return 0;
}

/* A small send buffer makes a full ring cheap to signal; see pw_chan_fill(). */
static void pw_chan_size_socket(struct pw_chan *c)
{
	int v = PW_SOCK_SNDBUF;

	pw_sys_setsockopt(c->sock, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

/*
 * A new end over the mapping @map (@len bytes, rings of @ring_size) as
 * @side, signalling through @sockfd; the side's flags are the caller's to
 * set. Nothing is taken on failure.
 */
static int pw_chan_setup(void *map, size_t len, uint32_t ring_size, unsigned side, int sockfd,
			 const struct pw_chan_opts *opts, struct pw_chan **ret_chan)
{
	struct pw_chan *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->shm = map;
	c->map_len = len;
	c->side = side;
	c->spin = !(opts && opts->no_spin);
	/* The first wait never holds off: a server's first read waits for a
	 * request, not for a stream. */
	atomic_init(&c->rx_wait_tail, UINT32_MAX);
	c->hup_is_eof = opts && opts->hup_is_eof;
	c->kernel_restart = opts && opts->kernel_restart;
	c->spin_ns = opts && opts->spin_ns ? opts->spin_ns : PW_CHAN_SPIN_NS_DEFAULT;

	uint8_t *data = (uint8_t *)map + PW_SHM_DATA_OFF;
	ret = pw_ring_init(&c->tx, &c->shm->ring[side], data + (size_t)side * ring_size, ring_size,
			   PW_RING_PRODUCER);
	if (ret == 0)
		ret = pw_ring_init(&c->rx, &c->shm->ring[!side], data + (size_t)!side * ring_size,
				   ring_size, PW_RING_CONSUMER);
	if (ret < 0) {
		free(c);
		return ret;
	}
	c->sock = sockfd;
	*ret_chan = c;
	return 0;
}

int pw_chan_open(int memfd, int sockfd, unsigned side, const struct pw_chan_opts *opts,
		 struct pw_chan **ret_chan)
{
	struct pw_chan *c = NULL;
	void *map = NULL;
	size_t len = 0;
	struct pw_shm_hdr hdr = { 0 };
	int ret;

	if (side > 1 || sockfd < 0 || !ret_chan)
		return -EINVAL;
	ret = pw_chan_map(memfd, true, PROT_READ | PROT_WRITE, &map, &len, &hdr);
	if (ret < 0)
		return ret;
	ret = pw_chan_setup(map, len, hdr.ring_size, side, sockfd, opts, &c);
	if (ret < 0)
		goto fail;

	uint32_t prev = atomic_fetch_or_explicit(&c->shm->ctl.side[side], PW_SIDE_OPEN,
						 memory_order_relaxed);
	if ((prev & PW_SIDE_OPEN) && !(opts && opts->reattach)) {
		free(c);
		ret = -EBUSY;
		goto fail;
	}
	atomic_store_explicit(&c->own, prev | PW_SIDE_OPEN, memory_order_relaxed);
	pw_chan_size_socket(c);
	*ret_chan = c;
	return 0;

fail:
	munmap(map, len);
	return ret;
}

/*
 * Restricted channels (a process in seccomp mode, pw_chan_restrict()) touch
 * their socket with read(2), write(2) and poll(2) only: what the filter of a
 * process that does socket I/O and waits is sure to allow. Whether a read or
 * write would block is asked of poll(2), since the socket's O_NONBLOCK is the
 * application's.
 */
static bool pw_chan_sock_ready(struct pw_chan *c, short ev)
{
	struct pollfd p = { .fd = c->sock, .events = ev };
	int n;

	do
		n = pw_sys_poll_plain(&p, 1, 0);
	while (n < 0 && errno == EINTR);
	return n == 1 && (p.revents & ev) && !(ev == POLLOUT && (p.revents & (POLLHUP | POLLERR)));
}

/* recv(MSG_DONTWAIT), or what a restricted channel does instead. */
static ssize_t pw_chan_sock_recv(struct pw_chan *c, void *buf, size_t n)
{
	if (!c->restricted)
		return pw_sys_recv(c->sock, buf, n, MSG_DONTWAIT);
	if (!pw_chan_sock_ready(c, POLLIN)) {
		errno = EAGAIN;
		return -1;
	}
	return pw_sys_read(c->sock, buf, n);
}

/* send(MSG_DONTWAIT | MSG_NOSIGNAL) of one byte, or what a restricted
 * channel does instead (a peer dying between poll and write may raise
 * SIGPIPE: a dead peer shows as POLLHUP first). */
static ssize_t pw_chan_sock_send1(struct pw_chan *c)
{
	const char b = 0;

	if (!c->restricted)
		return pw_sys_send(c->sock, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (!pw_chan_sock_ready(c, POLLOUT)) {
		errno = EAGAIN;
		return -1;
	}
	return pw_sys_write(c->sock, &b, 1);
}

/* Ring the peer's doorbell: its socket turns readable. */
static void pw_chan_kick(struct pw_chan *c)
{
	ssize_t n;

	do
		n = pw_chan_sock_send1(c);
	while (n < 0 && errno == EINTR);
	pw_stat_add(&c->wakes_sent, 1);
}

static void pw_chan_mark_hup(struct pw_chan *c)
{
	atomic_store_explicit(&c->peer_hup, true, memory_order_relaxed);
}

/*
 * Consume the bytes queued on our socket: wake bytes for our reads, and filler
 * that the peer sent to make its own socket unwritable. With @keep_one, the
 * last byte stays: it may be the only sign that our reads have data, and a
 * level-triggered poller must keep seeing it until a read returns -EAGAIN.
 * One byte left in our queue is below the peer's writability threshold.
 */
static void pw_chan_drain_n(struct pw_chan *c, size_t want)
{
	char buf[512]; /* small: this runs on application threads */

	while (want > 0) {
		ssize_t n = pw_chan_sock_recv(c, buf, want < sizeof(buf) ? want : sizeof(buf));

		if (n > 0) {
			want -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		/* EOF, ECONNRESET, or a socket gone bad: either way no peer. */
		pw_chan_mark_hup(c);
		return;
	}
}

/* Bytes queued on our socket now; 0 if it cannot say. */
static size_t pw_chan_sock_queued(struct pw_chan *c)
{
	int q = 0;

	return pw_sys_ioctl(c->sock, SIOCINQ, &q) < 0 || q < 0 ? 0 : (size_t)q;
}

static void pw_chan_drain(struct pw_chan *c, bool keep_one)
{
	/* (A restricted channel cannot count its queue: it drains it all, and
	 * pollers see data through the rings, not the socket.) */
	if (!keep_one || c->restricted) {
		pw_chan_drain_n(c, SIZE_MAX);
		return;
	}
	size_t q = pw_chan_sock_queued(c);
	if (q > 1)
		pw_chan_drain_n(c, q - 1);
}

/*
 * Make our socket unwritable, so that POLLOUT on it means what it means on a
 * TCP socket: the ring has space again. A Unix stream socket is writable while
 * the skbs it has queued at the peer take at most a quarter of its send
 * buffer. One sendmmsg() of one-byte messages queues one small skb each until
 * the kernel refuses; the peer later drains all but one byte (pw_chan_drain),
 * and one small skb is below the threshold again.
 */
static void pw_chan_fill(struct pw_chan *c)
{
	static const char zero;
	struct iovec iov = { .iov_base = (void *)&zero, .iov_len = 1 };
	struct mmsghdr msgs[PW_FILL_MSGS];
	int n;

	if (c->restricted) {
		/* One-byte writes while the socket says it is writable. */
		for (int i = 0; i < PW_FILL_MSGS; i++) {
			if (pw_chan_sock_send1(c) >= 0 || errno == EINTR)
				continue;
			if (errno != EAGAIN)
				pw_chan_mark_hup(c);
			break;
		}
		return;
	}
	for (int i = 0; i < PW_FILL_MSGS; i++)
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov, .msg_iovlen = 1 } };
	do
		n = pw_sys_sendmmsg(c->sock, msgs, PW_FILL_MSGS, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
		pw_chan_mark_hup(c);
}

/* After publishing tail: a reader that announced it sleeps gets a wake byte. */
static inline void pw_chan_wake_reader(struct pw_chan *c)
{
	/* Pairs with the seq_cst store of rx_sleep in pw_chan_arm_rx(). */
	if (atomic_load_explicit(&c->tx.shm->rx_sleep, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&c->tx.shm->rx_sleep, 0, memory_order_relaxed))
		pw_chan_kick(c);
}

/* After publishing head: a writer that announced it sleeps filled our queue;
 * draining it makes the writer's socket writable (its POLLOUT). */
static inline void pw_chan_wake_writer(struct pw_chan *c)
{
	/* Pairs with the seq_cst store of tx_sleep in pw_chan_arm_tx(). */
	if (atomic_load_explicit(&c->rx.shm->tx_sleep, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&c->rx.shm->tx_sleep, 0, memory_order_relaxed)) {
		pw_chan_drain(c, true);
		pw_stat_add(&c->wakes_sent, 1);
	}
}

static inline uint32_t pw_chan_peer_flags(const struct pw_chan *c)
{
	/* Pairs with the release store of the peer's flags in pw_chan_set_flags():
	 * the peer's last tail is visible once we see its SHUT_WR. */
	return atomic_load_explicit(&c->shm->ctl.side[!c->side], memory_order_acquire);
}

static void pw_chan_set_flags(struct pw_chan *c, uint32_t add)
{
	uint32_t v = atomic_fetch_or_explicit(&c->own, add, memory_order_relaxed) | add;

	/* Release: pairs with the acquire in pw_chan_peer_flags(). */
	atomic_store_explicit(&c->shm->ctl.side[c->side], v, memory_order_release);
}

static int pw_chan_fail(struct pw_chan *c, int err)
{
	int expected = 0;

	atomic_compare_exchange_strong_explicit(&c->dead, &expected, err, memory_order_relaxed,
						memory_order_relaxed);
	return atomic_load_explicit(&c->dead, memory_order_relaxed);
}

/* Does the peer's socket hanging up (@pf: its flags) read as EOF? Only if
 * asked, and only for a peer that attached: one whose end was dropped
 * unopened (a listener closed with the connection in its queue) reset it. */
static bool pw_chan_hup_is_eof(const struct pw_chan *c, uint32_t pf)
{
	return c->hup_is_eof && (pf & PW_SIDE_OPEN);
}

short pw_chan_poll(struct pw_chan *c)
{
	int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
	uint32_t own = atomic_load_explicit(&c->own, memory_order_relaxed);
	uint32_t pf = pw_chan_peer_flags(c);
	bool hup = atomic_load_explicit(&c->peer_hup, memory_order_relaxed);
	short m = 0;

	if (dead)
		return POLLIN | POLLOUT | POLLERR | POLLHUP;
	ssize_t avail = pw_ring_avail(&c->rx);
	ssize_t space = pw_ring_space(&c->tx);
	if (avail < 0 || space < 0) {
		pw_chan_fail(c, -EPROTO);
		return POLLIN | POLLOUT | POLLERR | POLLHUP;
	}
	if (avail > 0 || atomic_load_explicit(&c->rd_shut, memory_order_relaxed))
		m |= POLLIN;
	if (pf & (PW_SIDE_SHUT_WR | PW_SIDE_CLOSED))
		m |= POLLIN | POLLRDHUP;
	if (space > 0 || (own & PW_SIDE_SHUT_WR) || (pf & PW_SIDE_SHUT_RD))
		m |= POLLOUT;
	if ((pf & PW_SIDE_RESET) || (hup && !(pf & PW_SIDE_CLOSED) && !pw_chan_hup_is_eof(c, pf)))
		m |= POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDHUP;
	if (hup)
		m |= POLLIN | POLLRDHUP;
	if (hup || (pf & PW_SIDE_CLOSED) || ((pf & PW_SIDE_SHUT_WR) && (own & PW_SIDE_SHUT_WR)))
		m |= POLLHUP | POLLOUT;
	return m;
}

/* Cheap test for spinning: has anything that matters to @events changed? */
static inline bool pw_chan_moved(struct pw_chan *c, short events)
{
	uint32_t relevant = 0;

	if (c->rx.follow) {
		c->rx.pos = atomic_load_explicit(&c->rx.shm->head, memory_order_relaxed);
		c->tx.pos = atomic_load_explicit(&c->tx.shm->tail, memory_order_relaxed);
	}

	if (events & POLLIN) {
		if (atomic_load_explicit(&c->rx.shm->tail, memory_order_relaxed) != c->rx.pos)
			return true;
		relevant |= PW_SIDE_SHUT_WR | PW_SIDE_CLOSED | PW_SIDE_RESET;
	}
	if (events & POLLOUT) {
		if (c->tx.pos - atomic_load_explicit(&c->tx.shm->head, memory_order_relaxed) !=
		    c->tx.win)
			return true;
		relevant |= PW_SIDE_SHUT_RD | PW_SIDE_CLOSED | PW_SIDE_RESET;
	}
	return (atomic_load_explicit(&c->shm->ctl.side[!c->side], memory_order_relaxed) &
		relevant) ||
	       atomic_load_explicit(&c->peer_hup, memory_order_relaxed) ||
	       atomic_load_explicit(&c->dead, memory_order_relaxed);
}

/*
 * Announce that we wait for data, then look once more. Returns true if the
 * ring moved meanwhile: the caller must retry rather than sleep.
 */
static bool pw_chan_arm_rx(struct pw_chan *c)
{
	pw_chan_drain(c, false);
	atomic_store_explicit(&c->rx.shm->rx_sleep, 1, memory_order_seq_cst);
	/* Pairs with the producer's seq_cst tail store (P1) and its load of
	 * rx_sleep in pw_chan_wake_reader(). */
	if (atomic_load_explicit(&c->rx.shm->tail, memory_order_seq_cst) != c->rx.pos ||
	    pw_chan_moved(c, POLLIN)) {
		/* A wake byte already on its way is drained at the next arm. */
		atomic_store_explicit(&c->rx.shm->rx_sleep, 0, memory_order_relaxed);
		return true;
	}
	return false;
}

/*
 * Announce that we wait for space: make our socket unwritable first, then set
 * the flag that makes the reader drain it. On true (space appeared) the flag
 * stays set: the reader's next drain restores our writability.
 */
static bool pw_chan_arm_tx(struct pw_chan *c)
{
	pw_chan_fill(c);
	atomic_fetch_add_explicit(&c->tx_fills, 1, memory_order_relaxed);
	atomic_store_explicit(&c->tx.shm->tx_sleep, 1, memory_order_seq_cst);
	/* Pairs with the consumer's seq_cst head store (C1) and its load of
	 * tx_sleep in pw_chan_wake_writer(). */
	return c->tx.pos - atomic_load_explicit(&c->tx.shm->head, memory_order_seq_cst) !=
		       c->tx.win ||
	       pw_chan_moved(c, POLLOUT);
}

/*
 * A reader that only reads (sockperf throughput, iperf3's receiver) and polls
 * the ring while the writer streams small writes falls into lockstep: it
 * takes each write as it lands, so every write waits for the cache lines the
 * reader just pulled away (the writer's tail store then costs ~150 ns, not
 * ~50). So a reader that has written nothing since its last wait, and whose
 * last read was small, first lets writes pile up for PW_HOLDOFF_NS. Only
 * data that comes within that time of the wait's start is delayed, and only
 * by what remains of it: data of a fast stream. A reader that wrote since
 * (any request/response protocol) waits for an answer that cannot come
 * sooner than a round trip, and looks at once.
 */
#define PW_HOLDOFF_NS	   400u
#define PW_HOLDOFF_MAX_LEN 4096u /* larger reads are no lockstep */

static void pw_chan_holdoff(struct pw_chan *c, uint64_t start)
{
	uint32_t tail = atomic_load_explicit(&c->tx.shm->tail, memory_order_relaxed);

	if (atomic_load_explicit(&c->rx_wait_tail, memory_order_relaxed) != tail) {
		atomic_store_explicit(&c->rx_wait_tail, tail, memory_order_relaxed);
		return;
	}
	if (atomic_load_explicit(&c->rx_last_len, memory_order_relaxed) > PW_HOLDOFF_MAX_LEN)
		return;
	while (pw_now_ns() - start < PW_HOLDOFF_NS)
		pw_cpu_relax();
}

/*
 * The spin budget adapts to the peer. When both ends have slept once, each
 * message finds its reader asleep and pays a wake-up (~50 us here), the
 * reply comes after the other side's wake-up, and a fixed 5 us budget never
 * outlasts that: both ends stay in this mode for good, slower than the kernel.
 * So a sleep that ended with data after less than PW_SPIN_LEARN_MAX_NS
 * teaches the next wait to spin that long (and a quarter more): the next
 * answer is caught spinning, and both ends are back to spinning. A longer
 * sleep (an idle peer) forgets it: idle connections still cost no CPU, and
 * a busy one spins at most PW_SPIN_LEARN_MAX_NS per wait.
 */
#define PW_SPIN_LEARN_MAX_NS 200000u

static uint32_t pw_chan_spin_budget(const struct pw_chan *c)
{
	uint32_t more = atomic_load_explicit(&c->spin_more, memory_order_relaxed);

	return more > c->spin_ns ? more : c->spin_ns;
}

/* A sleep of @slept ns ended with what the wait waited for. */
static void pw_chan_spin_learn(struct pw_chan *c, uint64_t slept)
{
	uint64_t more = slept + slept / 4;

	atomic_store_explicit(&c->spin_more, slept < PW_SPIN_LEARN_MAX_NS ? (uint32_t)more : 0,
			      memory_order_relaxed);
}

int pw_chan_wait(struct pw_chan *c, short events, int timeout_ms)
{
	const short stop = events | POLLHUP | POLLERR;
	uint64_t deadline = 0;
	short m;

	events &= POLLIN | POLLOUT;
	m = pw_chan_poll(c);
	if (m & stop)
		return m;
	if (timeout_ms == 0)
		return 0;
	if (timeout_ms > 0)
		deadline = pw_now_ns() + (uint64_t)timeout_ms * 1000000u;

	/* A reader that wrote since its last wait waits for an answer: the
	 * request/response pattern whose trap the learned budget is for. A
	 * stream's reader or writer keeps the fixed budget: spinning longer
	 * there only takes the CPU from the other side on a small machine. */
	bool answer = events == POLLIN &&
		      atomic_load_explicit(&c->rx_wait_tail, memory_order_relaxed) !=
			      atomic_load_explicit(&c->tx.shm->tail, memory_order_relaxed);

	if (c->spin) {
		struct pw_spin sp;
		uint32_t budget = answer ? pw_chan_spin_budget(c) : c->spin_ns;

		pw_chan_note_cpu(c);
		pw_spin_start(&sp, budget);
		if (events == POLLIN)
			pw_chan_holdoff(c, sp.until - budget);
		do {
			if (pw_chan_moved(c, events)) {
				m = pw_chan_poll(c);
				if (m & stop)
					return m;
			}
		} while (pw_spin_more(&sp));
	}

	uint64_t slept_at = 0; /* when this wait first slept */

	for (;;) {
		int tmo = -1;
		bool moved = ((events & POLLIN) && pw_chan_arm_rx(c)) ||
			     ((events & POLLOUT) && pw_chan_arm_tx(c));

		if (!moved && deadline) {
			uint64_t now = pw_now_ns();

			if (now >= deadline) {
				if (events & POLLIN)
					atomic_store_explicit(&c->rx.shm->rx_sleep, 0,
							      memory_order_relaxed);
				return 0;
			}
			tmo = (int)((deadline - now + 999999u) / 1000000u);
		}
		if (!moved && c->kernel_restart && !c->restricted && tmo < 0 &&
		    events != (POLLIN | POLLOUT)) {
			/* Sleep where SA_RESTART applies: a peek for the wake byte,
			 * or one byte of filler that waits for room. */
			char b = 0;

			if (!slept_at)
				slept_at = pw_now_ns();
			ssize_t r = events == POLLIN ? pw_sys_recv(c->sock, &b, 1, MSG_PEEK)
						     : pw_sys_send(c->sock, &b, 1, MSG_NOSIGNAL);
			int err = errno;

			if (events == POLLIN)
				atomic_store_explicit(&c->rx.shm->rx_sleep, 0,
						      memory_order_relaxed);
			if (r < 0 && err == EINTR)
				return -EINTR;
			if (r == 0 || (r < 0 && err != EAGAIN))
				pw_chan_mark_hup(c);
			pw_stat_add(&c->sleeps, 1);
			if (c->spin)
				pw_chan_spread(c);
			moved = true; /* look again below */
		}
		if (!moved) {
			struct pollfd pfd = { .fd = c->sock, .events = events };

			if (!slept_at)
				slept_at = pw_now_ns();
			int n = c->restricted ? pw_sys_poll_plain(&pfd, 1, tmo)
					      : pw_sys_poll(&pfd, 1, tmo);
			int err = errno;

			if (events & POLLIN)
				atomic_store_explicit(&c->rx.shm->rx_sleep, 0,
						      memory_order_relaxed);
			if (n < 0)
				return -err;
			if (n > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)))
				pw_chan_mark_hup(c);
			pw_stat_add(&c->sleeps, 1);
			if (n > 0 && c->spin)
				pw_chan_spread(c);
		}
		m = pw_chan_poll(c);
		if (m & stop) {
			if (slept_at && c->spin && answer)
				pw_chan_spin_learn(c, pw_now_ns() - slept_at);
			return m;
		}
	}
}

/*
 * How much to copy between two publications. Chunks pay off only when the
 * peer copies at the same time, on another CPU. A peer that last waited on
 * our CPU runs only when we stop: a chunk then wakes it to take the chunk
 * and hand the CPU back, a switch per chunk (iperf3 pod to pod fell to
 * 10-13 Gbit/s from 30-40 in such runs). Then the whole call is one.
 */
static size_t pw_chan_chunk(const struct pw_chan *c)
{
	int peer = atomic_load_explicit(&c->shm->ctl.cpu[!c->side], memory_order_relaxed);

	return c->restricted || peer != sched_getcpu() ? PW_CHAN_CHUNK : SIZE_MAX;
}

/* A cursor over an iovec array, handing out windows of at most PW_IOV_WINDOW
 * iovecs and @max bytes. */
struct pw_iov_cursor {
	const struct iovec *iov;
	int cnt;
	size_t off; /* into iov[0] */
};

static int pw_iov_window(struct pw_iov_cursor *cur, struct iovec win[static PW_IOV_WINDOW],
			 size_t max)
{
	size_t room = max;
	int n = 0;

	for (int i = 0; i < cur->cnt && n < PW_IOV_WINDOW && room; i++) {
		size_t skip = i == 0 ? cur->off : 0;
		size_t len = cur->iov[i].iov_len - skip;

		win[n].iov_base = (uint8_t *)cur->iov[i].iov_base + skip;
		win[n].iov_len = len < room ? len : room;
		room -= win[n].iov_len;
		n++;
	}
	return n;
}

static void pw_iov_advance(struct pw_iov_cursor *cur, size_t n)
{
	while (cur->cnt > 0) {
		size_t left = cur->iov[0].iov_len - cur->off;

		if (n < left) {
			cur->off += n;
			return;
		}
		n -= left;
		cur->iov++;
		cur->cnt--;
		cur->off = 0;
	}
}

static ssize_t pw_iov_total(const struct iovec *iov, int iovcnt)
{
	size_t total = 0;

	if (iovcnt < 0 || iovcnt > IOV_MAX || (iovcnt > 0 && !iov))
		return -EINVAL;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > (size_t)SSIZE_MAX - total)
			return -EINVAL;
		total += iov[i].iov_len;
	}
	return (ssize_t)total;
}

/* Why can't we write? 0 if we can, else the errno to report. */
static int pw_chan_write_error(struct pw_chan *c)
{
	int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
	uint32_t pf;

	if (dead)
		return dead;
	if (atomic_load_explicit(&c->own, memory_order_relaxed) & PW_SIDE_SHUT_WR)
		return -EPIPE;
	pf = pw_chan_peer_flags(c);
	if (pf & PW_SIDE_RESET)
		return -ECONNRESET;
	if ((pf & (PW_SIDE_CLOSED | PW_SIDE_SHUT_RD)) ||
	    atomic_load_explicit(&c->peer_hup, memory_order_relaxed))
		return -EPIPE;
	return 0;
}

ssize_t pw_chan_writev(struct pw_chan *c, const struct iovec *iov, int iovcnt, int flags)
{
	struct pw_iov_cursor cur = { .iov = iov, .cnt = iovcnt };
	struct iovec win[PW_IOV_WINDOW];
	ssize_t total = pw_iov_total(iov, iovcnt);
	size_t done = 0, chunk = pw_chan_chunk(c);
	int err;

	if (total < 0)
		return total;
	if (total == 0)
		return pw_chan_write_error(c);
	/* The whole call, not a chunk: a 256 KiB message widens the window to
	 * hold it, so the writer need not wait for the reader mid-message. */
	pw_ring_widen_for(&c->tx, (size_t)total);

	for (;;) {
		err = pw_chan_write_error(c);
		if (err)
			break;
		ssize_t n = pw_ring_writev(&c->tx, win, pw_iov_window(&cur, win, chunk));

		if (n < 0) {
			err = pw_chan_fail(c, (int)n);
			break;
		}
		if (n > 0) {
			pw_chan_wake_reader(c);
			pw_stat_add(&c->bytes_out, (uint64_t)n);
			done += (size_t)n;
			if (done == (size_t)total)
				break;
			pw_iov_advance(&cur, (size_t)n);
			continue;
		}
		if (flags & PW_CHAN_DONTWAIT) {
			/* Leave the socket unwritable until the reader makes
			 * space, as poll(2) and epoll(7) users expect. */
			if (pw_chan_arm_tx(c))
				continue;
			err = -EAGAIN;
			break;
		}
		int r = pw_chan_wait(c, POLLOUT, -1);
		if (r < 0) {
			err = r;
			break;
		}
	}
	return done ? (ssize_t)done : err;
}

ssize_t pw_chan_write(struct pw_chan *c, const void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	return pw_chan_writev(c, &iov, 1, flags);
}

/*
 * The ring is empty: is that the end of the stream (0), an error (<0), or
 * should we wait (1)?
 */
static int pw_chan_read_eof(struct pw_chan *c)
{
	int dead = atomic_load_explicit(&c->dead, memory_order_relaxed);
	uint32_t pf;
	ssize_t avail;

	if (dead)
		return dead;
	pf = pw_chan_peer_flags(c);
	if (pf & PW_SIDE_RESET)
		return -ECONNRESET;
	bool hup = atomic_load_explicit(&c->peer_hup, memory_order_relaxed);
	if (!(pf & (PW_SIDE_SHUT_WR | PW_SIDE_CLOSED)) && !hup)
		return 1;
	/* The peer's final tail is visible now (acquire above); look again. */
	avail = pw_ring_avail(&c->rx);
	if (avail < 0)
		return pw_chan_fail(c, (int)avail);
	if (avail > 0)
		return 1;
	if ((pf & (PW_SIDE_SHUT_WR | PW_SIDE_CLOSED)) || pw_chan_hup_is_eof(c, pf))
		return 0;
	return -ECONNRESET; /* died without closing, or never came */
}

ssize_t pw_chan_readv(struct pw_chan *c, const struct iovec *iov, int iovcnt, int flags)
{
	struct pw_iov_cursor cur = { .iov = iov, .cnt = iovcnt };
	struct iovec win[PW_IOV_WINDOW];
	ssize_t total = pw_iov_total(iov, iovcnt);
	bool peek = flags & PW_CHAN_PEEK;
	bool discard = (flags & PW_CHAN_DISCARD) && !peek;
	bool waitall = (flags & PW_CHAN_WAITALL) && !(flags & PW_CHAN_DONTWAIT) && !peek;
	/* A peek shows all it can at once, as recv(MSG_PEEK) does. */
	size_t done = 0, chunk = peek ? SIZE_MAX : pw_chan_chunk(c);
	int err = 0;

	if (total < 0)
		return total;
	if (atomic_load_explicit(&c->rd_shut, memory_order_relaxed))
		return 0;
	err = atomic_load_explicit(&c->dead, memory_order_relaxed);
	if (err)
		return err; /* corrupt once, dead for good */
	if (total == 0)
		return 0;

	for (;;) {
		int wcnt = pw_iov_window(&cur, win, chunk);
		ssize_t n = discard ? pw_ring_skip(&c->rx, (size_t)total - done)
			    : peek  ? pw_ring_peekv(&c->rx, win, wcnt)
				    : pw_ring_readv(&c->rx, win, wcnt);

		if (n < 0) {
			err = pw_chan_fail(c, (int)n);
			break;
		}
		if (n > 0) {
			if (peek)
				return n;
			pw_chan_wake_writer(c);
			pw_stat_add(&c->bytes_in, (uint64_t)n);
			atomic_store_explicit(&c->rx_last_len, (uint32_t)n, memory_order_relaxed);
			done += (size_t)n;
			if (done == (size_t)total)
				break;
			pw_iov_advance(&cur, (size_t)n);
			/* More iovecs than one window: go on while bytes remain. */
			if (!waitall && pw_ring_avail(&c->rx) <= 0)
				break;
			continue;
		}
		err = pw_chan_read_eof(c);
		if (err <= 0)
			break;
		err = 0;
		if (done && !waitall)
			break;
		if (flags & PW_CHAN_DONTWAIT) {
			/* Arm so the socket turns readable when data comes. */
			if (pw_chan_arm_rx(c))
				continue;
			err = -EAGAIN;
			break;
		}
		int r = pw_chan_wait(c, POLLIN, -1);
		if (r < 0) {
			err = r;
			break;
		}
	}
	return done ? (ssize_t)done : err;
}

ssize_t pw_chan_read(struct pw_chan *c, void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	return pw_chan_readv(c, &iov, 1, flags);
}

int pw_chan_shutdown(struct pw_chan *c, int how)
{
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	if (how != SHUT_WR) {
		atomic_store_explicit(&c->rd_shut, true, memory_order_relaxed);
		pw_chan_set_flags(c, PW_SIDE_SHUT_RD);
		/* A writer blocked on us wakes (its filler goes) and sees EPIPE. */
		pw_chan_drain(c, false);
	}
	if (how != SHUT_RD) {
		pw_chan_set_flags(c, PW_SIDE_SHUT_WR);
		pw_chan_kick(c);
	}
	return 0;
}

static void pw_chan_free(struct pw_chan *c, uint32_t flags)
{
	pw_chan_set_flags(c, flags);
	pw_chan_kick(c);
	if (c->sock >= 0)
		pw_sys_close(c->sock);
	munmap(c->shm, c->map_len);
	free(c);
}

void pw_chan_close(struct pw_chan *c)
{
	if (c)
		pw_chan_free(c, PW_SIDE_SHUT_WR | PW_SIDE_CLOSED);
}

void pw_chan_abort(struct pw_chan *c)
{
	if (c)
		pw_chan_free(c, PW_SIDE_RESET | PW_SIDE_CLOSED);
}

/* ---- reuse (CHANNEL.md, "Reuse") ---- */

struct pw_chan_parked {
	struct pw_shm_chan *shm;
	size_t map_len;
	uint32_t ring_size;
	unsigned side;
	int sock;
};

/* A parked side's word: it attached, closed in order, and parked. */
#define PW_SIDE_PARKED_WORD (PW_SIDE_OPEN | PW_SIDE_SHUT_WR | PW_SIDE_CLOSED | PW_SIDE_PARKED)

int pw_chan_park(struct pw_chan *c, int keep_fd, struct pw_chan_parked **ret_parked)
{
	if (!c || keep_fd < 0 || !ret_parked)
		return -EINVAL;
	/* What is queued on our socket is of this connection (a claim can
	 * only come once we have parked), and a peer whose process died
	 * without closing shows here, as end of file, if nowhere else. */
	if (!c->restricted)
		pw_chan_drain(c, false);
	uint32_t own = atomic_load_explicit(&c->own, memory_order_relaxed);
	uint32_t pf = pw_chan_peer_flags(c);

	/* An end another process may hold (follow), a peer gone or closing
	 * abortively, or our own end not cleanly open: close as usual. */
	if (c->restricted || c->tx.follow || atomic_load_explicit(&c->dead, memory_order_relaxed) ||
	    atomic_load_explicit(&c->peer_hup, memory_order_relaxed) ||
	    atomic_load_explicit(&c->rd_shut, memory_order_relaxed) ||
	    (own & ~(PW_SIDE_OPEN | PW_SIDE_SHUT_WR)) || !(own & PW_SIDE_OPEN) ||
	    !(pf & PW_SIDE_OPEN) || (pf & (PW_SIDE_RESET | PW_SIDE_SHUT_RD)) ||
	    ((pf & PW_SIDE_CLOSED) && !(pf & PW_SIDE_PARKED)))
		return -EBUSY; /* (a peer closed for good never claims it) */
	if (pw_ring_avail(&c->rx) != 0)
		return -EBUSY; /* unread bytes (or a corrupt ring) */
	struct pw_chan_parked *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct pw_chan_parked){ .shm = c->shm,
				      .map_len = c->map_len,
				      .ring_size = c->tx.size,
				      .side = c->side,
				      .sock = keep_fd };
	/*
	 * Seq_cst, a release for the claimer's acquire of our word in
	 * pw_chan_parked_claim() (it sees our last head and tail), and one
	 * half of a Dekker pair with the peer's park: a peer that parked reads
	 * nothing more, and no kick is owed to it. Of two ends parking at
	 * once, at least one sees the other and kicks (a parked end's socket
	 * hears only claims, and spurious bytes cost it a look).
	 */
	uint32_t v = own | PW_SIDE_SHUT_WR | PW_SIDE_CLOSED | PW_SIDE_PARKED;
	atomic_store_explicit(&c->own, v, memory_order_relaxed);
	atomic_store_explicit(&c->shm->ctl.side[c->side], v, memory_order_seq_cst);
	if (atomic_load_explicit(&c->shm->ctl.side[!c->side], memory_order_seq_cst) !=
	    PW_SIDE_PARKED_WORD)
		pw_chan_kick(c);
	if (c->sock >= 0 && c->sock != keep_fd)
		pw_sys_close(c->sock);
	free(c);
	*ret_parked = p;
	return 0;
}

/* The end of the new connection over @p; -EPIPE: its rings are not to be
 * trusted. */
static int pw_chan_parked_end(struct pw_chan_parked *p, const struct pw_chan_opts *opts,
			      struct pw_chan **ret_chan)
{
	int ret = pw_chan_setup(p->shm, p->map_len, p->ring_size, p->side, p->sock, opts, ret_chan);

	return ret < 0 && ret != -ENOMEM ? -EPIPE : ret;
}

int pw_chan_parked_claim(struct pw_chan_parked *p, const struct pw_chan_opts *opts,
			 struct pw_chan **ret_chan)
{
	struct pw_chan *c = NULL;
	int ret;

	if (!p || p->side != 0 || !ret_chan)
		return -EINVAL;
	struct pw_shm_ctl *ctl = &p->shm->ctl;
	struct pw_shm_ring *out = &p->shm->ring[0], *in = &p->shm->ring[1];
	/* Acquire: pairs with the release of the peer's park (pw_chan_park()):
	 * its last head and tail are visible below. */
	uint32_t pf = atomic_load_explicit(&ctl->side[1], memory_order_acquire);
	uint32_t own = atomic_load_explicit(&ctl->side[0], memory_order_relaxed);

	/* (Looked at before anything is made: a connect may try many.) */
	if (own != PW_SIDE_PARKED_WORD)
		return -EPIPE;
	if (pf != PW_SIDE_PARKED_WORD)
		return (pf & (PW_SIDE_CLOSED | PW_SIDE_RESET)) ? -EPIPE : -EAGAIN;
	/* Parking leaves nothing unread: anything else is not a channel to
	 * trust again. */
	if (atomic_load_explicit(&out->tail, memory_order_relaxed) !=
		    atomic_load_explicit(&out->head, memory_order_relaxed) ||
	    atomic_load_explicit(&in->tail, memory_order_relaxed) !=
		    atomic_load_explicit(&in->head, memory_order_relaxed))
		return -EPIPE;
	ret = pw_chan_parked_end(p, opts, &c);
	if (ret < 0)
		return ret;
	ret = -EPIPE;
	/* Wake bytes and filler of the last connection; before the claim, as
	 * once the peer can take the channel its first bytes ring us. */
	pw_chan_drain(c, false);
	/* As a new channel (PW_CHAN_ARMED): both readers count as asleep, so
	 * the first bytes each way ring the reader's socket. */
	atomic_store_explicit(&out->rx_sleep, 1, memory_order_relaxed);
	atomic_store_explicit(&in->rx_sleep, 1, memory_order_relaxed);
	atomic_store_explicit(&out->tx_sleep, 0, memory_order_relaxed);
	atomic_store_explicit(&in->tx_sleep, 0, memory_order_relaxed);
	/* The claim: the peer's word becomes a side not yet attached. Release:
	 * pairs with the acquire in pw_chan_parked_take(), which then sees the
	 * rings as set above. A drop of the peer's end changes its word first,
	 * and then the exchange fails. */
	if (!atomic_compare_exchange_strong_explicit(&ctl->side[1], &pf, 0, memory_order_release,
						     memory_order_relaxed))
		goto fail;
	/* Release: pairs with the acquire of the peer's flags
	 * (pw_chan_peer_flags()) once it has taken the channel. */
	atomic_store_explicit(&ctl->side[0], PW_SIDE_OPEN, memory_order_release);
	atomic_store_explicit(&c->own, PW_SIDE_OPEN, memory_order_relaxed);
	/* The peer's end gone, this connection would only reset. */
	if (pw_chan_sock_send1(c) < 0 && errno != EAGAIN && errno != EINTR)
		goto fail;
	pw_stat_add(&c->wakes_sent, 1);
	free(p);
	*ret_chan = c;
	return 0;
fail:
	free(c);
	return ret;
}

int pw_chan_parked_take(struct pw_chan_parked *p, const struct pw_chan_opts *opts,
			struct pw_chan **ret_chan)
{
	struct pw_chan *c = NULL;
	int ret;

	if (!p || p->side != 1 || !ret_chan)
		return -EINVAL;
	ret = pw_chan_parked_end(p, opts, &c);
	if (ret < 0)
		return ret;
	/*
	 * The peer sends its bytes of the last connection (wake bytes, filler)
	 * before it claims, and the claim's byte after. Drain all but one of
	 * what is queued, then look: one byte stays, since if the channel is
	 * claimed, bytes may already wait in the ring with their wake byte
	 * among those drained, and a level-triggered poller must see them.
	 */
	size_t q = pw_chan_sock_queued(c);
	if (q > 1)
		pw_chan_drain_n(c, q - 1);
	/* Acquire: pairs with the release of the claim in
	 * pw_chan_parked_claim(). */
	uint32_t own = atomic_load_explicit(&p->shm->ctl.side[1], memory_order_acquire);

	if (own != 0) {
		/* Not claimed: what was queued is all of the last connection,
		 * and the byte kept goes too (a stream is in order: a claim's
		 * byte would come after it). Nothing queued: a hang-up? */
		char b;
		if (q > 0)
			pw_chan_drain_n(c, 1);
		if (pw_sys_recv(c->sock, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 0)
			pw_chan_mark_hup(c);
		bool hup = atomic_load_explicit(&c->peer_hup, memory_order_relaxed);
		free(c);
		return own == PW_SIDE_PARKED_WORD && !hup ? -EAGAIN : -EPIPE;
	}
	/* Release: pairs with the acquire of our flags in the peer's
	 * pw_chan_peer_flags(). */
	atomic_store_explicit(&p->shm->ctl.side[1], PW_SIDE_OPEN, memory_order_release);
	atomic_store_explicit(&c->own, PW_SIDE_OPEN, memory_order_relaxed);
	free(p);
	*ret_chan = c;
	return 0;
}

int pw_chan_parked_release(struct pw_chan_parked *p)
{
	_Atomic uint32_t *w = &p->shm->ctl.side[p->side];
	uint32_t f = PW_SIDE_PARKED_WORD;

	/* Unpark: a plain closed side from now on, so a claim's exchange
	 * fails. Release, as every change of a side's word. */
	if (atomic_compare_exchange_strong_explicit(w, &f, f & ~PW_SIDE_PARKED,
						    memory_order_release, memory_order_relaxed))
		return 0;
	return f == 0 && p->side == 1 ? -EBUSY : 0;
}

void pw_chan_parked_drop(struct pw_chan_parked *p)
{
	if (!p)
		return;
	if (pw_chan_parked_release(p) == -EBUSY)
		/* Claimed meanwhile: reset, as from a listener that closed with
		 * the connection in its queue. Release, as every change of a
		 * side's word. */
		atomic_store_explicit(&p->shm->ctl.side[p->side], PW_SIDE_RESET | PW_SIDE_CLOSED,
				      memory_order_release);
	/* The peer's parked socket hangs up: it drops its end too. */
	pw_chan_parked_forget(p);
}

void pw_chan_parked_forget(struct pw_chan_parked *p)
{
	if (!p)
		return;
	pw_sys_close(p->sock);
	munmap(p->shm, p->map_len);
	free(p);
}

int pw_chan_parked_fd(const struct pw_chan_parked *p)
{
	return p->sock;
}

unsigned pw_chan_parked_side(const struct pw_chan_parked *p)
{
	return p->side;
}

int pw_chan_fd(const struct pw_chan *c)
{
	return c->sock;
}

void pw_chan_note_cpu(struct pw_chan *c)
{
	if (c->restricted)
		return;
	atomic_store_explicit(&c->shm->ctl.cpu[c->side], sched_getcpu(), memory_order_relaxed);
}

void pw_chan_spread(struct pw_chan *c)
{
	if (c->restricted)
		return;
	int me = sched_getcpu();
	int peer = atomic_load_explicit(&c->shm->ctl.cpu[!c->side], memory_order_relaxed);
	cpu_set_t orig, other;

	if (me < 0 || peer != me || me >= CPU_SETSIZE)
		return;
	if (sched_getaffinity(0, sizeof(orig), &orig) < 0 || CPU_COUNT(&orig) < 2 ||
	    !CPU_ISSET(me, &orig))
		return;
	other = orig;
	CPU_CLR(me, &other);
	/* Leaving the CPU takes effect at once; restoring the mask keeps the
	 * application's affinity exactly as it set it. */
	if (sched_setaffinity(0, sizeof(other), &other) == 0)
		sched_setaffinity(0, sizeof(orig), &orig);
}

void pw_chan_restrict(struct pw_chan *c)
{
	c->restricted = true;
	c->spin = false; /* spinning yields the CPU with sched_yield(2) */
}

void pw_chan_mark_shared(struct pw_chan *c)
{
	c->tx.follow = true;
	c->rx.follow = true;
}

void pw_chan_set_fd(struct pw_chan *c, int fd)
{
	c->sock = fd;
}

void pw_chan_detach(struct pw_chan *c)
{
	if (!c)
		return;
	munmap(c->shm, c->map_len);
	free(c);
}

bool pw_chan_prepare_read_wait(struct pw_chan *c)
{
	if (pw_chan_poll(c) & (POLLIN | POLLHUP | POLLERR))
		return true;
	/* Still armed: nobody took the flag, so no wake byte is owed. */
	if (atomic_load_explicit(&c->rx.shm->rx_sleep, memory_order_relaxed))
		return false;
	if (pw_chan_arm_rx(c))
		return true;
	return false;
}

uint32_t pw_chan_rx_mark(const struct pw_chan *c)
{
	uint32_t hup = atomic_load_explicit(&c->peer_hup, memory_order_relaxed) ? 0x100u : 0;

	return atomic_load_explicit(&c->rx.shm->tail, memory_order_acquire) ^
	       (atomic_load_explicit(&c->shm->ctl.side[!c->side], memory_order_relaxed) | hup);
}

uint32_t pw_chan_tx_mark(const struct pw_chan *c)
{
	return atomic_load_explicit(&c->tx_fills, memory_order_relaxed);
}

void pw_chan_note_events(struct pw_chan *c, short revents)
{
	/* The chan never shuts its socket down: a hang-up there is the kernel
	 * closing the peer's last copy. */
	if (revents & (POLLHUP | POLLERR))
		pw_chan_mark_hup(c);
}

ssize_t pw_chan_space(struct pw_chan *c)
{
	return pw_ring_space(&c->tx);
}

ssize_t pw_chan_avail(struct pw_chan *c)
{
	return pw_ring_avail(&c->rx);
}

bool pw_chan_prepare_write_wait(struct pw_chan *c)
{
	if (pw_chan_poll(c) & (POLLOUT | POLLHUP | POLLERR))
		return true;
	return pw_chan_arm_tx(c);
}

void pw_chan_get_stats(const struct pw_chan *c, struct pw_chan_stats *ret_stats)
{
	*ret_stats = (struct pw_chan_stats){
		.bytes_out = atomic_load_explicit(&c->bytes_out, memory_order_relaxed),
		.bytes_in = atomic_load_explicit(&c->bytes_in, memory_order_relaxed),
		.wakes_sent = atomic_load_explicit(&c->wakes_sent, memory_order_relaxed),
		.sleeps = atomic_load_explicit(&c->sleeps, memory_order_relaxed),
	};
}

/* ---- the creator's look (podwired) ---- */

/* Both sides' words and byte totals in the control block @shm. */
static void pw_chan_state_of(const struct pw_shm_chan *shm, struct pw_chan_state *ret_state)
{
	for (unsigned s = 0; s < 2; s++) {
		/* Relaxed: a snapshot for status; nothing is read through it. */
		uint32_t f = atomic_load_explicit(&shm->ctl.side[s], memory_order_relaxed);

		ret_state->bytes[s] =
			atomic_load_explicit(&shm->ring[s].total, memory_order_relaxed);
		ret_state->attached[s] = f & PW_SIDE_OPEN;
		ret_state->parked[s] = (f & PW_SIDE_PARKED) && (f & PW_SIDE_CLOSED);
		ret_state->closed[s] =
			(f & (PW_SIDE_CLOSED | PW_SIDE_RESET)) && !ret_state->parked[s];
		ret_state->wr_done[s] = f & (PW_SIDE_SHUT_WR | PW_SIDE_CLOSED | PW_SIDE_RESET);
		ret_state->window[s] =
			atomic_load_explicit(&shm->ring[s].window, memory_order_relaxed);
	}
}

int pw_chan_state_read(int memfd, struct pw_chan_state *ret_state)
{
	struct pw_shm_chan img; /* 640 bytes: on the stack, not in every thread's TLS */
	ssize_t n;

	do
		n = pread(memfd, &img, sizeof(img), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return pw_chan_errno();
	if (n != (ssize_t)sizeof(img) || img.hdr.magic != PW_SHM_MAGIC)
		return -EPROTO;
	pw_chan_state_of(&img, ret_state);
	return 0;
}

int pw_chan_reset_unattached(int memfd, unsigned side)
{
	struct pw_shm_chan *shm;
	struct pw_shm_hdr hdr = { 0 };
	size_t len = 0;
	void *map = NULL;
	int ret;

	if (side > 1)
		return -EINVAL;
	ret = pw_chan_map(memfd, false, PROT_READ | PROT_WRITE, &map, &len, &hdr);
	if (ret < 0)
		return ret;
	shm = map;
	uint32_t f = atomic_load_explicit(&shm->ctl.side[side], memory_order_relaxed);
	do {
		if (f & PW_SIDE_OPEN) {
			ret = -EBUSY;
			break;
		}
		/* Release pairs with the acquire load of the peer's flags in
		 * pw_chan_peer_flags(), as a side's own close does. */
	} while (!atomic_compare_exchange_weak_explicit(
		&shm->ctl.side[side], &f, f | PW_SIDE_RESET | PW_SIDE_CLOSED, memory_order_release,
		memory_order_relaxed));
	munmap(shm, PW_SHM_DATA_OFF);
	return ret;
}
