// SPDX-License-Identifier: MIT
/*
 * The fd table: fd number -> pw_sock, two levels, pages allocated on
 * first use, never freed.
 */
#include "preload.h"

/* ---- the fd table: two levels, pages allocated on first use, never freed ---- */

_Atomic(_Atomic(struct pw_sock *) *) pw_fdtab[PW_PAGES];
static pthread_mutex_t pw_tab_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic(struct pw_sock *) *pw_slot(int fd, bool create)
{
	if (fd < 0 || (unsigned)fd >= PW_PAGES << PW_PAGE_BITS)
		return NULL;
	unsigned p = (unsigned)fd >> PW_PAGE_BITS;
	_Atomic(struct pw_sock *) *page = atomic_load_explicit(&pw_fdtab[p], memory_order_acquire);

	if (!page && create) {
		pthread_mutex_lock(&pw_tab_lock);
		page = atomic_load_explicit(&pw_fdtab[p], memory_order_relaxed);
		if (!page) {
			page = calloc(1u << PW_PAGE_BITS, sizeof(*page));
			/* Pairs with the acquire above: the zeroed page is seen whole. */
			atomic_store_explicit(&pw_fdtab[p], page, memory_order_release);
		}
		pthread_mutex_unlock(&pw_tab_lock);
	}
	return page ? &page[fd & ((1 << PW_PAGE_BITS) - 1)] : NULL;
}

void pw_fdtab_put(int fd, struct pw_sock *v)
{
	_Atomic(struct pw_sock *) *s = pw_slot(fd, true);

	if (s)
		atomic_store_explicit(s, v, memory_order_release);
}

struct pw_sock *pw_fdtab_take(int fd)
{
	_Atomic(struct pw_sock *) *s = pw_slot(fd, false);

	return s ? atomic_exchange_explicit(s, NULL, memory_order_acq_rel) : NULL;
}

/* Call @fn for each fd in [@first, @last] the table knows, with its state,
 * until it returns false. Lock-free: entries may come and go meanwhile. */
void pw_fdtab_each_in(unsigned first, unsigned last,
		      bool (*fn)(int fd, struct pw_sock *s, void *arg), void *arg)
{
	for (unsigned p = first >> PW_PAGE_BITS; p < PW_PAGES && p <= (last >> PW_PAGE_BITS); p++) {
		/* Pairs with the release that published the page in pw_slot(). */
		_Atomic(struct pw_sock *) *page =
			atomic_load_explicit(&pw_fdtab[p], memory_order_acquire);
		if (!page)
			continue;
		for (unsigned i = 0; i < (1u << PW_PAGE_BITS); i++) {
			unsigned fd = p << PW_PAGE_BITS | i;
			if (fd < first || fd > last)
				continue;
			/* Pairs with the release in pw_fdtab_put(). */
			struct pw_sock *s = atomic_load_explicit(&page[i], memory_order_acquire);
			if (s && !fn((int)fd, s, arg))
				return;
		}
	}
}

void pw_fdtab_each(bool (*fn)(int fd, struct pw_sock *s, void *arg), void *arg)
{
	pw_fdtab_each_in(0, UINT_MAX, fn, arg);
}

struct pw_other_fd {
	const struct pw_sock *s;
	int skip, found;
};

static bool pw_other_fd_match(int fd, struct pw_sock *s, void *arg)
{
	struct pw_other_fd *o = arg;

	if (s != o->s || fd == o->skip)
		return true;
	o->found = fd;
	return false;
}

/* Any fd number of this process, other than @skip, that refers to @s. */
int pw_find_other_fd(const struct pw_sock *s, int skip)
{
	struct pw_other_fd o = { .s = s, .skip = skip, .found = -1 };

	pw_fdtab_each(pw_other_fd_match, &o);
	return o.found;
}

/*
 * Fresh sockets: TCP sockets this process made with socket(2), and which of
 * the carried options (pw_carried_opts) were set on them since: connect()
 * reads back only those, not all 20 with getsockopt(2). Any doubt makes a
 * number not fresh (close, dup of either end, accept): all are read then.
 * Its O_NONBLOCK and FD_CLOEXEC too, from socket(2)'s type and as fcntl(2)
 * and ioctl(2) change them: connect() need not ask the kernel for them.
 * The same word marks a connection connect() left to the kernel (adapt.c).
 */
#define PW_FRESH_FDS  65536u
#define PW_FRESH      (1u << 31)
#define PW_FRESH_OPTS ((1u << 20) - 1)
#define PW_FRESH_V6   (1u << 20) /* made AF_INET6 */
#define PW_FRESH_NB   (1u << 21) /* O_NONBLOCK now */
#define PW_FRESH_CX   (1u << 22) /* FD_CLOEXEC now */
#define PW_FRESH_FL   (1u << 23) /* the two above are known */
/* pw_fresh_mark_adapt()'s slot: shares the word's lifetime. */
#define PW_FD_ADAPT_SHIFT 24
#define PW_FD_ADAPT_MAX	  127u
#define PW_FD_ADAPT	  (PW_FD_ADAPT_MAX << PW_FD_ADAPT_SHIFT)

_Static_assert(sizeof(pw_carried_opts) / sizeof(pw_carried_opts[0]) <= 20,
	       "a bit per carried option, below the adapt slot");
_Static_assert((PW_FD_ADAPT & PW_FRESH) == 0, "the adapt slot stays off the fresh bit");
_Static_assert((PW_FD_ADAPT & PW_FRESH_V6) == 0 && (PW_FRESH_OPTS & PW_FRESH_V6) == 0,
	       "the family bit has its own place");
_Static_assert(((PW_FRESH_NB | PW_FRESH_CX | PW_FRESH_FL) &
		(PW_FD_ADAPT | PW_FRESH | PW_FRESH_V6 | PW_FRESH_OPTS)) == 0,
	       "the flag bits have their own places");
_Static_assert(PW_ADAPT_SLOTS < PW_ADAPT_FALLBACK && PW_ADAPT_FALLBACK <= PW_FD_ADAPT_MAX,
	       "slots and the fallback mark fit");

static _Atomic uint32_t pw_fresh[PW_FRESH_FDS];
/* One past the highest number pw_fresh_set_tcp() marked: the flags' end. */
static _Atomic unsigned pw_fresh_top;
/* A bit per number: a fresh socket changed in a way its word does not say
 * (an option not carried, fcntl or ioctl beyond O_NONBLOCK and
 * FD_CLOEXEC, a fork or an SCM_RIGHTS that shares it): only a plain one,
 * whose every change is known, can be the spare (sock.c). */
static _Atomic uint32_t pw_fresh_odd[PW_FRESH_FDS / 32];

static void pw_fresh_odd_set(int fd, bool on)
{
	uint32_t bit = 1u << (fd & 31);

	if (on)
		atomic_fetch_or_explicit(&pw_fresh_odd[fd / 32], bit, memory_order_relaxed);
	else if (atomic_load_explicit(&pw_fresh_odd[fd / 32], memory_order_relaxed) & bit)
		atomic_fetch_and_explicit(&pw_fresh_odd[fd / 32], ~bit, memory_order_relaxed);
}

void pw_fresh_set(int fd, bool on)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS)
		return;
	/* Relaxed: a hint about this fd number, for the thread that uses it. */
	if (on || atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed))
		atomic_store_explicit(&pw_fresh[fd], on ? PW_FRESH : 0, memory_order_relaxed);
}

void pw_fresh_set_tcp(int fd, int family, int type)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS)
		return;
	pw_fresh_odd_set(fd, false);
	atomic_store_explicit(&pw_fresh[fd],
			      PW_FRESH | PW_FRESH_FL | (family == AF_INET6 ? PW_FRESH_V6 : 0) |
				      (type & SOCK_NONBLOCK ? PW_FRESH_NB : 0) |
				      (type & SOCK_CLOEXEC ? PW_FRESH_CX : 0),
			      memory_order_relaxed);
	unsigned top = atomic_load_explicit(&pw_fresh_top, memory_order_relaxed);
	while (top <= (unsigned)fd &&
	       !atomic_compare_exchange_weak_explicit(&pw_fresh_top, &top, (unsigned)fd + 1,
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void pw_fresh_forget_flags(void)
{
	unsigned top = atomic_load_explicit(&pw_fresh_top, memory_order_relaxed);

	/* Shared with the other process now: none is plain. */
	for (unsigned w = 0; w < (top + 31) / 32 && w < PW_FRESH_FDS / 32; w++)
		atomic_store_explicit(&pw_fresh_odd[w], UINT32_MAX, memory_order_relaxed);

	for (unsigned fd = 0; fd < top && fd < PW_FRESH_FDS; fd++)
		if (atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FRESH_FL)
			atomic_fetch_and_explicit(&pw_fresh[fd], ~PW_FRESH_FL,
						  memory_order_relaxed);
}

void pw_fresh_note_flag(int fd, bool cloexec, bool on)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS ||
	    !(atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FRESH))
		return;
	uint32_t bit = cloexec ? PW_FRESH_CX : PW_FRESH_NB;
	if (on)
		atomic_fetch_or_explicit(&pw_fresh[fd], bit, memory_order_relaxed);
	else
		atomic_fetch_and_explicit(&pw_fresh[fd], ~bit, memory_order_relaxed);
}

bool pw_fresh_flags(int fd, int *ret_fl, int *ret_fdfl)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS)
		return false;
	uint32_t v = atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed);
	if ((v & (PW_FRESH | PW_FRESH_FL)) != (PW_FRESH | PW_FRESH_FL))
		return false;
	*ret_fl = O_RDWR | (v & PW_FRESH_NB ? O_NONBLOCK : 0);
	*ret_fdfl = v & PW_FRESH_CX ? FD_CLOEXEC : 0;
	return true;
}

int pw_fresh_family(int fd)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS)
		return 0;
	uint32_t v = atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed);
	return !(v & PW_FRESH) ? 0 : (v & PW_FRESH_V6) ? AF_INET6 : AF_INET;
}

void pw_fresh_note_opt(int fd, unsigned idx)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS || idx >= 20 ||
	    !(atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FRESH))
		return;
	atomic_fetch_or_explicit(&pw_fresh[fd], 1u << idx, memory_order_relaxed);
}

void pw_fresh_note_odd(int fd)
{
	if (fd >= 0 && (unsigned)fd < PW_FRESH_FDS &&
	    (atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FRESH))
		pw_fresh_odd_set(fd, true);
}

bool pw_fresh_plain(int fd)
{
	return fd >= 0 && (unsigned)fd < PW_FRESH_FDS &&
	       (atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FRESH) &&
	       !(atomic_load_explicit(&pw_fresh_odd[fd / 32], memory_order_relaxed) &
		 (1u << (fd & 31)));
}

bool pw_fresh_get(int fd, uint32_t *ret_set)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS)
		return false;
	uint32_t v = atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed);
	*ret_set = v & PW_FRESH_OPTS;
	return v & PW_FRESH;
}

void pw_fresh_mark_adapt(int fd, unsigned slot)
{
	if (fd >= 0 && (unsigned)fd < PW_FRESH_FDS && slot >= 1 && slot <= PW_FD_ADAPT_MAX)
		atomic_fetch_or_explicit(&pw_fresh[fd], slot << PW_FD_ADAPT_SHIFT,
					 memory_order_relaxed);
}

unsigned pw_fresh_adapt_get(int fd)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS)
		return 0;
	return (atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FD_ADAPT) >>
	       PW_FD_ADAPT_SHIFT;
}

unsigned pw_fresh_take_adapt(int fd)
{
	if (fd < 0 || (unsigned)fd >= PW_FRESH_FDS ||
	    !(atomic_load_explicit(&pw_fresh[fd], memory_order_relaxed) & PW_FD_ADAPT))
		return 0;
	uint32_t v = atomic_fetch_and_explicit(&pw_fresh[fd], ~PW_FD_ADAPT, memory_order_relaxed);
	return (v & PW_FD_ADAPT) >> PW_FD_ADAPT_SHIFT;
}

void pw_fresh_clear_range(unsigned first, unsigned last)
{
	for (unsigned fd = first; fd <= last && fd < PW_FRESH_FDS; fd++)
		pw_fresh_set((int)fd, false);
}
