// SPDX-License-Identifier: MIT
/*
 * Memory regions. A peer on this node reads and writes a region while its
 * owner does nothing (ib_write_lat's target spins on its own buffer), so the
 * region's pages are re-backed in place by the owner's arena: the page at
 * address A becomes the arena's page at offset A (MAP_SHARED|MAP_FIXED, the
 * contents copied first), and a peer that maps the arena from offset A sees
 * the owner's own bytes. Pages stay re-backed after deregistration (they
 * are the application's memory); registering them again finds them so.
 *
 * Only private anonymous memory (the heap, malloc, memalign, anonymous
 * mmap) can be re-backed. A region with other memory in it (file-backed,
 * SysV shared memory, hugetlb, read-only) is left as it is and marked
 * PW_VKEY_SERVED: a peer on this node asks us for it (svc.c), one on
 * another node is served by our progress thread anyway (remote.c).
 *
 * The key table: our private copy decides local checks; the arena's copy
 * (shm.h, struct pw_vkey) is what peers read, under its seqlock.
 *
 * fork(): re-backed pages are shared with the arena, so a child would share
 * them with its parent and the parent's peers. As a kernel that copies
 * pinned pages at fork does (IBV_FORK_UNNEEDED), the child gets its own
 * copy: in the child, each re-backed mapping is replaced by a private one
 * with the same bytes. The child cannot use its parent's verbs objects, as
 * with any device. After ibv_fork_init() (or with RDMAV_FORK_SAFE or
 * IBV_FORK_SAFE set), regions are MADV_DONTFORK, as libibverbs makes them:
 * the child has no such pages at all.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "pwverbs.h"

#define PW_MR_ACCESS                                                                               \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |               \
	 IBV_ACCESS_REMOTE_ATOMIC)
/* Asked-for bits a device may ignore (verbs.h: IBV_ACCESS_OPTIONAL_RANGE). */
#define PW_MR_OPTIONAL IBV_ACCESS_OPTIONAL_RANGE

struct pw_mr {
	struct ibv_mr mr;
	unsigned index;
};

static pthread_mutex_t pw_mr_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint32_t key; /* 0: free */
	unsigned access;
	uint64_t va, len;
} pw_mrs[PW_VKEYS];
static uint32_t pw_mr_gen = 1;

/* Under pw_mr_lock. */
static int pw_mr_check_locked(uint32_t lkey, uint64_t addr, uint64_t len, unsigned access)
{
	unsigned i = lkey & (PW_VKEYS - 1);

	if (!lkey || pw_mrs[i].key != lkey || (pw_mrs[i].access & access) != access)
		return -EPERM;
	if (addr < pw_mrs[i].va || len > pw_mrs[i].len || addr - pw_mrs[i].va > pw_mrs[i].len - len)
		return -EFAULT;
	return 0;
}

int pw_mr_check(uint32_t lkey, uint64_t addr, uint64_t len, unsigned access)
{
	pthread_mutex_lock(&pw_mr_lock);
	int r = pw_mr_check_locked(lkey, addr, len, access);
	pthread_mutex_unlock(&pw_mr_lock);
	return r;
}

int pw_mr_hold(uint32_t lkey, uint64_t addr, uint64_t len, unsigned access, void (*fn)(void *),
	       void *arg)
{
	pthread_mutex_lock(&pw_mr_lock);
	int r = pw_mr_check_locked(lkey, addr, len, access);
	if (!r)
		fn(arg);
	pthread_mutex_unlock(&pw_mr_lock);
	return r;
}

/* One line of /proc/self/maps. */
struct pw_map {
	uint64_t start, end, off, ino;
	unsigned dmaj, dmin;
	char perms[5];
	char path[64];
};

/* Parse @line: 0, or -1 when it is not a maps line. */
static int pw_map_parse(const char *line, struct pw_map *m)
{
	char *p;

	memset(m, 0, sizeof(*m));
	errno = 0;
	m->start = strtoull(line, &p, 16);
	if (*p++ != '-')
		return -1;
	m->end = strtoull(p, &p, 16);
	if (*p++ != ' ' || strlen(p) < 5)
		return -1;
	memcpy(m->perms, p, 4);
	p += 4;
	m->off = strtoull(p, &p, 16);
	m->dmaj = (unsigned)strtoul(p, &p, 16);
	if (*p++ != ':')
		return -1;
	m->dmin = (unsigned)strtoul(p, &p, 16);
	m->ino = strtoull(p, &p, 10);
	if (errno)
		return -1;
	p += strspn(p, " ");
	size_t n = strcspn(p, "\n");
	if (n >= sizeof(m->path))
		n = sizeof(m->path) - 1;
	memcpy(m->path, p, n);
	return 0;
}

static bool pw_map_anon_private(const struct pw_map *m)
{
	return m->ino == 0 && !strcmp(m->perms, "rw-p") &&
	       (!m->path[0] || !strcmp(m->path, "[heap]") || !strncmp(m->path, "[anon:", 6));
}

#define PW_MR_RUNS 64 /* mappings one region may span */

/*
 * Re-back [@base, @end) (page-aligned) with the arena, unless it is already:
 * 0; 1 when some of it cannot be (not private anonymous read-write memory,
 * or too many mappings): then nothing is, and the region is served; -EFAULT
 * when some of it is not mapped, or not readable (or writable, @write);
 * else the error of the copy or the mapping. The maps are read whole first:
 * remapping changes them.
 */
static int pw_mr_reback(uint64_t base, uint64_t end, bool write)
{
	struct {
		uint64_t start, end;
	} runs[PW_MR_RUNS];
	int arena = pw_vproc_arena();
	unsigned nruns = 0;
	bool served = false;
	struct stat st;
	char line[512];
	uint64_t at = base;
	int r = 0;

	if (fstat(arena, &st) < 0)
		return -errno;
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f)
		return -errno;
	while (at < end && !r && fgets(line, sizeof(line), f)) {
		struct pw_map m;
		if (pw_map_parse(line, &m) < 0)
			continue;
		if (m.end <= at)
			continue;
		if (m.start > at || m.perms[0] != 'r' || (write && m.perms[1] != 'w')) {
			r = -EFAULT; /* a hole, or not ours to read (write) */
			break;
		}
		uint64_t e = m.end < end ? m.end : end;
		bool ours = m.ino == st.st_ino && makedev(m.dmaj, m.dmin) == st.st_dev &&
			    m.off == m.start;
		if (!ours && (!pw_map_anon_private(&m) || nruns == PW_MR_RUNS))
			served = true;
		else if (!ours)
			runs[nruns++] = (typeof(runs[0])){ at, e };
		at = e;
	}
	fclose(f);
	if (!r && at < end)
		r = -EFAULT;
	if (!r && served)
		return 1;
	/* Copy, then map the copy in its place. (Writes by other threads in
	 * between are lost: register before sharing the buffer.) */
	for (unsigned k = 0; k < nruns && !r; k++) {
		uint64_t s = runs[k].start, n = runs[k].end - runs[k].start;
		if (pwrite(arena, (const void *)(uintptr_t)s, n, (off_t)s) != (ssize_t)n ||
		    mmap((void *)(uintptr_t)s, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 arena, (off_t)s) == MAP_FAILED)
			r = errno ? -errno : -EIO;
	}
	return r;
}

/* Did the application ask for libibverbs' fork protection? */
static bool pw_mr_fork_safe(void)
{
	static _Atomic(void *) slot;
	enum ibv_fork_status (*is_init)(void) = (enum ibv_fork_status(*)(void))pw_verbs_real(
		&slot, "ibv_is_fork_initialized", "IBVERBS_1.13");

	return getenv("RDMAV_FORK_SAFE") || getenv("IBV_FORK_SAFE") ||
	       (is_init && is_init() == IBV_FORK_ENABLED);
}

/* In a child after fork(): our re-backed mappings (offset == address in the
 * arena), up to @max of them, into @ret; how many. Raw reads: a child of a
 * threaded process had better not need much. */
static unsigned pw_mr_shared_runs(const struct stat *st, uint64_t (*ret)[2], unsigned max)
{
	static char buf[65536];
	unsigned n = 0;
	size_t have = 0;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		have += (size_t)k;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			struct pw_map m;
			*nl = '\0';
			if (pw_map_parse(line, &m) == 0 && m.ino == st->st_ino &&
			    makedev(m.dmaj, m.dmin) == st->st_dev && m.off == m.start && n < max) {
				ret[n][0] = m.start;
				ret[n][1] = m.end;
				n++;
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
	}
	close(fd);
	return n;
}

static void pw_mr_atfork_child(void)
{
	uint64_t runs[64][2];
	struct stat st;
	unsigned n;
	int arena = pw_vproc_arena();

	if (arena < 0 || fstat(arena, &st) < 0)
		return;
	/* (Each pass changes the maps: read them again until none is left.) */
	while ((n = pw_mr_shared_runs(&st, runs, 64))) {
		for (unsigned i = 0; i < n; i++) {
			size_t len = runs[i][1] - runs[i][0];
			void *at = (void *)(uintptr_t)runs[i][0];
			void *copy = mmap(NULL, len, PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (copy == MAP_FAILED)
				return;
			memcpy(copy, at, len);
			if (mremap(copy, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, at) ==
			    MAP_FAILED) {
				munmap(copy, len);
				return;
			}
		}
	}
}

static void pw_mr_atfork_once(void)
{
	pthread_atfork(NULL, NULL, pw_mr_atfork_child);
}

/* Publish entry @i for peers (seqlock: odd while written). */
static void pw_mr_publish(unsigned i)
{
	struct pw_vkey *k = &pw_vproc_keys()[i];
	uint32_t seq = atomic_load_explicit(&k->seq, memory_order_relaxed);

	atomic_store_explicit(&k->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release); /* the odd seq before the fields */
	k->key = pw_mrs[i].key;
	k->access = pw_mrs[i].access;
	k->va = pw_mrs[i].va;
	k->len = pw_mrs[i].len;
	/* Release: pairs with the peer's acquire load of seq after the fields. */
	atomic_store_explicit(&k->seq, seq + 2, memory_order_release);
}

static struct ibv_mr *pw_mr_reg(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
				unsigned access)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t a = (uint64_t)(uintptr_t)addr, base, end;
	struct pw_mr *mr = NULL;
	unsigned i;
	int r;

	access &= ~(unsigned)PW_MR_OPTIONAL;
	/* Remote write or atomics need local write (as the IBA's access rules say). */
	if ((access & ~PW_MR_ACCESS) || !length || iova != a || a + length < a ||
	    a + length > PW_VARENA_META ||
	    ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	     !(access & IBV_ACCESS_LOCAL_WRITE))) {
		errno = EINVAL;
		return NULL;
	}
	base = a & ~(uint64_t)(pg - 1);
	end = (a + length + (uint64_t)pg - 1) & ~(uint64_t)(pg - 1);
	mr = calloc(1, sizeof(*mr));
	if (!mr) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&pw_mr_lock);
	for (i = 0; i < PW_VKEYS && pw_mrs[i].key; i++)
		;
	if (i == PW_VKEYS) {
		r = -ENOMEM;
		goto fail;
	}
	r = pw_mr_reback(base, end, access & IBV_ACCESS_LOCAL_WRITE);
	if (r < 0)
		goto fail;
	if (r == 1)
		access |= PW_VKEY_SERVED;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, pw_mr_atfork_once);
	if (pw_mr_fork_safe() && madvise((void *)(uintptr_t)base, end - base, MADV_DONTFORK) < 0) {
		r = -errno;
		goto fail;
	}
	/* The key: a generation above the index, never 0. */
	pw_mrs[i].key = (pw_mr_gen++ << 12) | i;
	pw_mrs[i].access = access;
	pw_mrs[i].va = a;
	pw_mrs[i].len = length;
	pw_mr_publish(i);
	pthread_mutex_unlock(&pw_mr_lock);
	mr->index = i;
	mr->mr.context = pd->context;
	mr->mr.pd = pd;
	mr->mr.addr = addr;
	mr->mr.length = length;
	mr->mr.handle = i;
	mr->mr.lkey = mr->mr.rkey = pw_mrs[i].key;
	return &mr->mr;
fail:
	pthread_mutex_unlock(&pw_mr_lock);
	free(mr);
	errno = -r;
	return NULL;
}

PW_EXPORT struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD("IBVERBS_1.1", ibv_reg_mr, NULL, pd, addr, length, access);
	return pw_mr_reg(pd, addr, length, (uint64_t)(uintptr_t)addr, (unsigned)access);
}

PW_EXPORT struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length,
					 uint64_t iova, int access)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD("IBVERBS_1.7", ibv_reg_mr_iova, NULL, pd, addr, length, iova, access);
	return pw_mr_reg(pd, addr, length, iova, (unsigned)access);
}

PW_EXPORT struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length,
					  uint64_t iova, unsigned int access)
{
	if (!pw_verbs_ctx_ours(pd->context))
		PW_FORWARD("IBVERBS_1.8", ibv_reg_mr_iova2, NULL, pd, addr, length, iova, access);
	return pw_mr_reg(pd, addr, length, iova, access);
}

PW_EXPORT int ibv_dereg_mr(struct ibv_mr *ibmr)
{
	if (!pw_verbs_ctx_ours(ibmr->context))
		PW_FORWARD("IBVERBS_1.1", ibv_dereg_mr, ENOSYS, ibmr);

	struct pw_mr *mr = (struct pw_mr *)ibmr;
	pthread_mutex_lock(&pw_mr_lock);
	memset(&pw_mrs[mr->index], 0, sizeof(pw_mrs[0]));
	pw_mr_publish(mr->index);
	pthread_mutex_unlock(&pw_mr_lock);
	free(mr);
	return 0;
}
