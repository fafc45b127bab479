// SPDX-License-Identifier: MIT
/*
 * A hostile peer. A process maps the channel's memfd itself (no pw_chan) and
 * scribbles random values over the control block and the data areas while we
 * keep using our end: we must end with -EPROTO, -ECONNRESET, -EPIPE or EOF
 * within a bounded time, never crash (ASan checks every access in the
 * sanitized build), and once -EPROTO was reported the channel stays dead.
 *
 * Also pw_chan_open() on things that are not a good podwire segment: the
 * documented errors, and no leaked fd or mapping.
 */
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <podwire/chan.h>

#include "pw_test_chan.h"

#define RING_SIZE      4096u
#define SEG_SIZE(ring) (PW_SHM_DATA_OFF + 2ull * (ring))
#define SEEDS	       12
#define DEADLINE_NS    (10ull * 1000000000ull)

enum target {
	T_ANY,	   /* anywhere in the segment */
	T_CTL,	   /* the first 4096 bytes only */
	T_INDICES, /* ring descriptors only */
	T_FLAGS,   /* ctl.side[] only */
	T_COUNT,
};

/* Scribble from when @go is readable: the other end has opened its side. */
static void scribbler(int memfd, int go, uint64_t seed, enum target target)
{
	size_t len = SEG_SIZE(RING_SIZE);
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	struct pw_rng rng;
	char c;

	PW_CHECK(m != MAP_FAILED, "mmap: %s", strerror(errno));
	close(memfd);
	PW_CHECK_EQ(read(go, &c, 1), 1);
	pw_rng_seed(&rng, seed);
	for (uint64_t i = 0;; i++) {
		size_t off;
		uint32_t v;

		switch (target) {
		case T_CTL:
			off = pw_rng_range(&rng, 0, PW_SHM_DATA_OFF - 4);
			break;
		case T_INDICES:
			off = offsetof(struct pw_shm_chan, ring) +
			      pw_rng_range(&rng, 0, sizeof(struct pw_shm_ring) * 2 - 4);
			break;
		case T_FLAGS:
			off = offsetof(struct pw_shm_chan, ctl) + 4 * pw_rng_range(&rng, 0, 1);
			break;
		default:
			off = pw_rng_range(&rng, 0, len - 4);
			break;
		}
		off &= ~(size_t)3;
		switch (pw_rng_range(&rng, 0, 3)) {
		case 0:
			v = (uint32_t)pw_rng_next(&rng);
			break;
		case 1: /* small values look like plausible indices and flags */
			v = (uint32_t)pw_rng_range(&rng, 0, 2 * RING_SIZE);
			break;
		case 2:
			v = (uint32_t)pw_rng_range(&rng, 0, 15);
			break;
		default: /* a small step away from what is there */
			memcpy(&v, m + off, 4);
			v += (uint32_t)pw_rng_range(&rng, 0, 200) - 100;
			break;
		}
		atomic_store_explicit((_Atomic uint32_t *)(void *)(m + off), v,
				      memory_order_relaxed);
		if (i % 64 == 0)
			sched_yield();
	}
}

/* One run: our end against a scribbler. Returns the error that ended it. */
static ssize_t one_run(uint64_t seed, enum target target)
{
	static uint8_t buf[2 * RING_SIZE];
	int fds_before = pw_test_count_fds();
	int memfd, sv[2];
	struct pw_chan *c;
	struct pw_rng rng;
	ssize_t ret = 1;
	uint64_t ops = 0;

	int go[2];

	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pipe2(go, O_CLOEXEC), 0);
	pid_t pid = pw_test_fork(20);
	if (pid == 0) {
		close(sv[0]);
		close(go[1]);
		scribbler(memfd, go[0], seed, target);
		exit(0);
	}
	close(sv[1]); /* the scribbler keeps the peer's socket: no hang-up */
	close(go[0]);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &c), 0);
	close(memfd);
	PW_CHECK_EQ(write(go[1], "g", 1), 1);
	close(go[1]);

	pw_rng_seed(&rng, seed * 31 + 7);
	uint64_t t0 = pw_test_now_ns();
	while (ret > 0) {
		PW_CHECK(pw_test_now_ns() - t0 < DEADLINE_NS,
			 "seed %llu target %d: still no error after %llu ops",
			 (unsigned long long)seed, target, (unsigned long long)ops);
		ops++;
		switch (pw_rng_range(&rng, 0, 5)) {
		case 0:
		case 1:
			ret = pw_chan_read(c, buf, pw_rng_size(&rng, sizeof(buf)),
					   PW_CHAN_DONTWAIT |
						   (pw_rng_range(&rng, 0, 3) ? 0 : PW_CHAN_PEEK));
			if (ret == -EAGAIN)
				ret = 1;
			break;
		case 2:
			ret = pw_chan_write(c, buf, pw_rng_size(&rng, sizeof(buf)),
					    PW_CHAN_DONTWAIT);
			if (ret == -EAGAIN || ret > 0)
				ret = 1;
			break;
		case 3: {
			short m = pw_chan_poll(c);
			/* POLLERR: the next call is likely to fail (unless the
			 * scribbler took a RESET flag back meanwhile). */
			if (m & POLLERR) {
				ret = pw_chan_read(c, buf, 1, PW_CHAN_DONTWAIT);
				if (ret == -EAGAIN || ret > 0)
					ret = 1;
			}
			break;
		}
		default: {
			int m = pw_chan_wait(c, pw_rng_range(&rng, 0, 1) ? POLLIN : POLLOUT, 10);
			PW_CHECK(m >= 0, "wait: %d", m);
			break;
		}
		}
	}
	PW_CHECK(ret == -EPROTO || ret == -ECONNRESET || ret == -EPIPE || ret == 0,
		 "seed %llu target %d: ended with %zd", (unsigned long long)seed, target, ret);
	if (ret == -EPROTO) {
		/* Dead from then on, whatever the scribbler writes now (reads
		 * are checked deterministically in test_sticky_eproto()). */
		for (int i = 0; i < 1000; i++) {
			PW_CHECK_EQ(pw_chan_write(c, buf, 10, PW_CHAN_DONTWAIT), -EPROTO);
			short m = pw_chan_poll(c);
			PW_CHECK(m & POLLERR, "poll %#x after EPROTO", m);
			PW_CHECK_EQ(pw_chan_wait(c, POLLIN | POLLOUT, 10), m);
		}
	}
	kill(pid, SIGKILL);
	int st = pw_test_reap(pid);
	PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "scribbler status %#x", st);
	pw_chan_close(c);
	PW_CHECK_EQ(pw_test_count_fds(), fds_before);
	PW_CHECK_EQ(pw_test_count_our_maps(), 0);
	return ret;
}

/*
 * Deterministic corruption, one process, both ends open: a bad index makes
 * the call fail with -EPROTO, and restoring a plausible index afterwards must
 * not bring the channel back.
 */
static void test_sticky_eproto(void)
{
	int memfd, sv[2];
	struct pw_chan *a, *b;
	uint8_t buf[64];

	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b), 0);
	struct pw_shm_chan *shm =
		mmap(NULL, SEG_SIZE(RING_SIZE), PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	PW_CHECK(shm != MAP_FAILED, "mmap");
	close(memfd);

	PW_CHECK_EQ(pw_chan_write(a, "0123456789", 10, 0), 10);
	uint32_t tail = atomic_load(&shm->ring[0].tail);
	PW_CHECK_EQ(tail, 10);
	atomic_store(&shm->ring[0].tail, tail + RING_SIZE + 1);
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EPROTO);
	PW_CHECK(pw_chan_poll(b) & POLLERR, "poll %#x", pw_chan_poll(b));
	atomic_store(&shm->ring[0].tail, tail);
	PW_CHECK(pw_chan_poll(b) & POLLERR, "poll %#x after restore", pw_chan_poll(b));
	PW_CHECK_EQ(pw_chan_write(b, buf, 1, 0), -EPROTO);
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), PW_CHAN_DONTWAIT), -EPROTO);
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), 0), -EPROTO);

	/* The producer side: an impossible head. */
	PW_CHECK_EQ(pw_chan_write(b, "x", 1, 0), -EPROTO);
	uint8_t big[RING_SIZE];
	PW_CHECK_EQ(pw_chan_write(a, big, RING_SIZE - 10, 0), RING_SIZE - 10);
	atomic_store(&shm->ring[0].head, 0xdead);
	PW_CHECK_EQ(pw_chan_write(a, "y", 1, PW_CHAN_DONTWAIT), -EPROTO);
	PW_CHECK_EQ(pw_chan_write(a, "y", 1, 0), -EPROTO);
	PW_CHECK(pw_chan_poll(a) & POLLERR, "poll %#x", pw_chan_poll(a));
	PW_CHECK_EQ(pw_chan_wait(a, POLLOUT, -1), pw_chan_poll(a));

	munmap(shm, SEG_SIZE(RING_SIZE));
	pw_chan_close(a);
	pw_chan_close(b);
}

/* A memfd of @size bytes holding a copy of a good header for rings of @ring. */
static int make_segment(uint64_t size, uint32_t ring, unsigned seals, bool allow_sealing)
{
	int fd =
		memfd_create("podwire-test", MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
	struct pw_shm_chan hdr = { 0 };

	PW_CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	PW_CHECK_EQ(ftruncate(fd, (off_t)size), 0);
	hdr.hdr = (struct pw_shm_hdr){
		.magic = PW_SHM_MAGIC,
		.version = PW_SHM_VERSION,
		.hdr_size = sizeof(struct pw_shm_hdr),
		.ring_size = ring,
		.total_size = SEG_SIZE(ring),
	};
	for (int r = 0; r < 2; r++)
		atomic_store_explicit(&hdr.ring[r].window, ring, memory_order_relaxed);
	if (size >= sizeof(hdr))
		PW_CHECK_EQ(pwrite(fd, &hdr, sizeof(hdr), 0), sizeof(hdr));
	if (seals)
		PW_CHECK_EQ(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static void expect_open_fails(int memfd, unsigned side, int want, const char *what)
{
	struct pw_chan *c = (struct pw_chan *)0x1;
	int sv[2];
	int fds = pw_test_count_fds();
	int maps = pw_test_count_our_maps();

	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	int ret = pw_chan_open(memfd, sv[0], side, NULL, &c);
	PW_CHECK(ret == want, "%s: open returned %d (%s), want %d (%s)", what, ret, strerror(-ret),
		 want, strerror(-want));
	/* On failure the caller still owns the socket. */
	PW_CHECK_EQ(fcntl(sv[0], F_GETFD) >= 0, 1);
	close(sv[0]);
	close(sv[1]);
	PW_CHECK(pw_test_count_fds() == fds, "%s: fds %d -> %d", what, fds, pw_test_count_fds());
	PW_CHECK(pw_test_count_our_maps() == maps, "%s: maps %d -> %d", what, maps,
		 pw_test_count_our_maps());
}

static void test_bad_open(void)
{
	const unsigned good_seals = F_SEAL_SHRINK | F_SEAL_GROW;
	int fds = pw_test_count_fds();
	int fd, memfd, sv[2];
	struct pw_chan *a, *b;

	/* A well-formed segment made by hand opens: the cases below differ in one thing. */
	fd = make_segment(SEG_SIZE(RING_SIZE), RING_SIZE, good_seals, true);
	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	PW_CHECK_EQ(pw_chan_open(fd, sv[0], 0, NULL, &a), 0);
	pw_chan_close(a);
	close(sv[1]);
	close(fd);

	fd = make_segment(SEG_SIZE(RING_SIZE), RING_SIZE, 0, true);
	expect_open_fails(fd, 0, -EINVAL, "not sealed");
	close(fd);
	fd = make_segment(SEG_SIZE(RING_SIZE), RING_SIZE, 0, false);
	expect_open_fails(fd, 0, -EINVAL, "sealing not allowed");
	close(fd);
	fd = make_segment(SEG_SIZE(RING_SIZE), RING_SIZE, F_SEAL_SHRINK, true);
	expect_open_fails(fd, 0, -EINVAL, "shrink seal only");
	close(fd);
	fd = make_segment(SEG_SIZE(RING_SIZE), RING_SIZE, F_SEAL_GROW, true);
	expect_open_fails(fd, 0, -EINVAL, "grow seal only");
	close(fd);
	fd = make_segment(SEG_SIZE(RING_SIZE) - 4096, RING_SIZE, good_seals, true);
	expect_open_fails(fd, 0, -EINVAL, "smaller than any segment");
	close(fd);
	fd = make_segment(0, RING_SIZE, good_seals, true);
	expect_open_fails(fd, 0, -EINVAL, "empty");
	close(fd);

	/* Sealed, plausible size, but the header disagrees. */
	fd = make_segment(SEG_SIZE(2 * RING_SIZE), RING_SIZE, good_seals, true);
	expect_open_fails(fd, 0, -EPROTO, "header ring size != file size");
	close(fd);
	fd = make_segment(SEG_SIZE(RING_SIZE) + 4096, RING_SIZE, good_seals, true);
	expect_open_fails(fd, 0, -EPROTO, "file larger than the header says");
	close(fd);

	static const struct {
		size_t off, len;
		uint64_t val;
		const char *what;
	} fields[] = {
		{ offsetof(struct pw_shm_hdr, magic), 4, PW_SHM_MAGIC ^ 1, "magic" },
		{ offsetof(struct pw_shm_hdr, magic), 4, 0, "zero magic" },
		{ offsetof(struct pw_shm_hdr, version), 2, PW_SHM_VERSION + 1, "version" },
		{ offsetof(struct pw_shm_hdr, version), 2, 0, "version 0" },
		{ offsetof(struct pw_shm_hdr, hdr_size), 2, 32, "hdr_size" },
		{ offsetof(struct pw_shm_hdr, ring_size), 4, RING_SIZE * 2, "ring_size" },
		{ offsetof(struct pw_shm_hdr, ring_size), 4, RING_SIZE + 64, "ring_size not pow2" },
		{ offsetof(struct pw_shm_hdr, ring_size), 4, 0, "ring_size 0" },
		{ offsetof(struct pw_shm_hdr, total_size), 8, SEG_SIZE(RING_SIZE) + 1,
		  "total_size" },
		{ offsetof(struct pw_shm_hdr, total_size), 8, 0, "total_size 0" },
		/* Inconsistent ring indices */
		{ offsetof(struct pw_shm_chan, ring[0].tail), 4, RING_SIZE + 1, "ring 0 tail" },
		{ offsetof(struct pw_shm_chan, ring[1].head), 4, 1, "ring 1 head ahead" },
		/* Windows this ring cannot have */
		{ offsetof(struct pw_shm_chan, ring[0].window), 4, 0, "ring 0 window 0" },
		{ offsetof(struct pw_shm_chan, ring[1].window), 4, 32, "ring 1 window 32" },
		{ offsetof(struct pw_shm_chan, ring[0].window), 4, 96, "ring 0 window not pow2" },
		{ offsetof(struct pw_shm_chan, ring[1].window), 4, RING_SIZE * 2,
		  "ring 1 window past the data" },
	};
	for (size_t i = 0; i < PW_TEST_ARRAY_SIZE(fields); i++) {
		uint8_t orig[8], val[8];
		uint64_t v = pw_le64(fields[i].val);

		PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
		PW_CHECK_EQ(pread(memfd, orig, fields[i].len, (off_t)fields[i].off), fields[i].len);
		memcpy(val, &v, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#error "field patching assumes a little-endian host"
#endif
		PW_CHECK_EQ(pwrite(memfd, val, fields[i].len, (off_t)fields[i].off), fields[i].len);
		for (unsigned side = 0; side < 2; side++)
			expect_open_fails(memfd, side, -EPROTO, fields[i].what);
		/* Put it back: now it opens. */
		PW_CHECK_EQ(pwrite(memfd, orig, fields[i].len, (off_t)fields[i].off),
			    fields[i].len);
		PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
		pw_chan_close(a);
		close(sv[1]);
		close(memfd);
	}

	/* A regular file with a good header and size. */
	char path[] = "/tmp/podwire-test-XXXXXX";
	fd = mkstemp(path);
	PW_CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	unlink(path);
	PW_CHECK_EQ(pw_chan_create(RING_SIZE, 0, &memfd, sv), 0);
	static uint8_t seg[SEG_SIZE(RING_SIZE)];
	PW_CHECK_EQ(pread(memfd, seg, sizeof(seg), 0), sizeof(seg));
	PW_CHECK_EQ(pwrite(fd, seg, sizeof(seg), 0), sizeof(seg));
	expect_open_fails(fd, 0, -EINVAL, "regular file");
	close(fd);
	/* Not a file at all. */
	int pp[2];
	PW_CHECK_EQ(pipe(pp), 0);
	expect_open_fails(pp[0], 0, -EINVAL, "pipe");
	close(pp[0]);
	close(pp[1]);
	expect_open_fails(-1, 0, -EBADF, "fd -1");

	/* Bad side, and the same side twice. */
	expect_open_fails(memfd, 2, -EINVAL, "side 2");
	expect_open_fails(memfd, UINT32_MAX, -EINVAL, "side UINT_MAX");
	PW_CHECK_EQ(pw_chan_open(memfd, sv[0], 0, NULL, &a), 0);
	expect_open_fails(memfd, 0, -EBUSY, "side 0 twice");
	PW_CHECK_EQ(pw_chan_open(memfd, sv[1], 1, NULL, &b), 0);
	expect_open_fails(memfd, 1, -EBUSY, "side 1 twice");
	expect_open_fails(memfd, 0, -EBUSY, "side 0 again");
	/* The rejected opens did not disturb the open ends. */
	uint8_t buf[8];
	PW_CHECK_EQ(pw_chan_write(a, "ping", 4, 0), 4);
	PW_CHECK_EQ(pw_chan_read(b, buf, sizeof(buf), 0), 4);
	PW_CHECK(memcmp(buf, "ping", 4) == 0, "data");
	pw_chan_close(a);
	/* A closed side stays taken. */
	expect_open_fails(memfd, 0, -EBUSY, "side 0 after close");
	pw_chan_close(b);
	close(memfd);
	PW_CHECK_EQ(pw_test_count_fds(), fds);
	PW_CHECK_EQ(pw_test_count_our_maps(), 0);
}

int main(void)
{
	int counts[5] = { 0 };

	pw_test_watchdog(55);
	test_bad_open();
	for (uint64_t seed = 1; seed <= SEEDS; seed++) {
		ssize_t r = one_run(seed, (enum target)(seed % T_COUNT));

		counts[r == -EPROTO ? 0 : r == -ECONNRESET ? 1 : r == -EPIPE ? 2 : 3]++;
	}
	fprintf(stderr, "%d runs: %d EPROTO, %d ECONNRESET, %d EPIPE, %d EOF\n", SEEDS, counts[0],
		counts[1], counts[2], counts[3]);
	test_sticky_eproto();
	return 0;
}
