// SPDX-License-Identifier: MIT
/*
 * The fd table: set, get, take, the walkers (whole table and a range, with an
 * early stop), other fds of one state, fd numbers across page boundaries and
 * out of range, and lock-free readers racing a writer; a fresh socket's
 * flags as socket(2), fcntl(2) and ioctl(2) leave them, and forgotten at
 * fork.
 */
#include "preload.h"
#include "pw_test.h"

struct pw_real_fns pw_real;
struct pw_cfg pw_cfg;

struct walk {
	int fds[16];
	unsigned n, stop_after;
};

static bool walk_fn(int fd, struct pw_sock *s, void *arg)
{
	struct walk *w = arg;

	PW_CHECK(s && pw_fdtab_get(fd) == s, "fd %d", fd);
	if (w->n < PW_ARRAY_SIZE(w->fds))
		w->fds[w->n] = fd;
	w->n++;
	return !w->stop_after || w->n < w->stop_after;
}

static void test_basic(void)
{
	static struct pw_sock a, b;
	const int page = 1 << PW_PAGE_BITS;

	PW_CHECK(pw_fdtab_get(3) == NULL && pw_fdtab_get(-1) == NULL, "empty");
	PW_CHECK(pw_fdtab_get(PW_PAGES << PW_PAGE_BITS) == NULL, "out of range");
	PW_CHECK(pw_fdtab_take(7) == NULL, "take of nothing");
	pw_fdtab_put(-5, &a);			    /* ignored */
	pw_fdtab_put(PW_PAGES << PW_PAGE_BITS, &a); /* ignored */
	pw_fdtab_put(3, &a);
	pw_fdtab_put(page - 1, &a);
	pw_fdtab_put(page, &b); /* the next page */
	pw_fdtab_put(5 * page + 17, &b);
	PW_CHECK(pw_fdtab_get(3) == &a && pw_fdtab_get(page - 1) == &a && pw_fdtab_get(page) == &b,
		 "set");
	PW_CHECK(pw_fdtab_get(4) == NULL && pw_fdtab_get(2 * page) == NULL,
		 "neighbours stay empty");

	struct walk w = { 0 };
	pw_fdtab_each(walk_fn, &w);
	PW_CHECK_EQ(w.n, 4);
	PW_CHECK(w.fds[0] == 3 && w.fds[1] == page - 1 && w.fds[2] == page &&
			 w.fds[3] == 5 * page + 17,
		 "in fd order: %d %d %d %d", w.fds[0], w.fds[1], w.fds[2], w.fds[3]);

	w = (struct walk){ .stop_after = 2 };
	pw_fdtab_each(walk_fn, &w);
	PW_CHECK_EQ(w.n, 2);

	w = (struct walk){ 0 };
	pw_fdtab_each_in(4, (unsigned)page, walk_fn, &w);
	PW_CHECK(w.n == 2 && w.fds[0] == page - 1 && w.fds[1] == page, "range: %u", w.n);
	w = (struct walk){ 0 };
	pw_fdtab_each_in((unsigned)page + 1, UINT_MAX, walk_fn, &w);
	PW_CHECK(w.n == 1 && w.fds[0] == 5 * page + 17, "open range: %u", w.n);

	PW_CHECK_EQ(pw_find_other_fd(&a, 3), page - 1);
	PW_CHECK_EQ(pw_find_other_fd(&a, page - 1), 3);
	PW_CHECK_EQ(pw_find_other_fd(&b, page), 5 * page + 17);
	PW_CHECK(pw_fdtab_take(3) == &a && pw_fdtab_get(3) == NULL, "take");
	PW_CHECK_EQ(pw_find_other_fd(&a, page - 1), -1);
	PW_CHECK(pw_fdtab_take(page - 1) == &a && pw_fdtab_take(page) == &b &&
			 pw_fdtab_take(5 * page + 17) == &b,
		 "take all");
	w = (struct walk){ 0 };
	pw_fdtab_each(walk_fn, &w);
	PW_CHECK_EQ(w.n, 0);
}

/* A reader sees either nothing or a whole, published state. */
static struct pw_sock racing[64];
static atomic_bool racing_done;

static void *racing_reader(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&racing_done, memory_order_acquire))
		for (int fd = 100; fd < 164; fd++) {
			struct pw_sock *s = pw_fdtab_get(fd);
			if (s && s->id != (uint64_t)fd)
				PW_FAIL("fd %d: state of id %llu", fd, (unsigned long long)s->id);
		}
	return NULL;
}

static void test_race(void)
{
	pthread_t t;

	for (int i = 0; i < 64; i++)
		racing[i].id = (uint64_t)(100 + i);
	PW_CHECK_EQ(pthread_create(&t, NULL, racing_reader, NULL), 0);
	for (int round = 0; round < 2000; round++)
		for (int i = 0; i < 64; i++) {
			pw_fdtab_put(100 + i, &racing[i]);
			if ((round + i) % 3 == 0)
				pw_fdtab_take(100 + i);
		}
	atomic_store_explicit(&racing_done, true, memory_order_release);
	pthread_join(t, NULL);
}

static void check_flags(int fd, int want_fl, int want_fdfl)
{
	int fl = -1, fdfl = -1;

	PW_CHECK(pw_fresh_flags(fd, &fl, &fdfl), "fd %d: flags not known", fd);
	PW_CHECK(fl == want_fl && fdfl == want_fdfl, "fd %d: fl %#x fdfl %#x, want %#x %#x", fd, fl,
		 fdfl, want_fl, want_fdfl);
}

static void test_fresh_flags(void)
{
	int fl, fdfl;

	PW_CHECK(!pw_fresh_flags(5, &fl, &fdfl), "never made: not known");
	pw_fresh_set_tcp(5, AF_INET, SOCK_STREAM);
	check_flags(5, O_RDWR, 0);
	pw_fresh_set_tcp(6, AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC);
	check_flags(6, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	PW_CHECK_EQ(pw_fresh_family(6), AF_INET6);
	pw_fresh_note_flag(5, false, true); /* fcntl(F_SETFL, O_NONBLOCK) */
	check_flags(5, O_RDWR | O_NONBLOCK, 0);
	pw_fresh_note_flag(5, true, true); /* FIOCLEX */
	check_flags(5, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	pw_fresh_note_flag(6, false, false); /* FIONBIO 0 */
	pw_fresh_note_flag(6, true, false);  /* F_SETFD 0 */
	check_flags(6, O_RDWR, 0);
	pw_fresh_note_opt(6, 3); /* options stay apart from the flags */
	uint32_t set = 0;
	PW_CHECK(pw_fresh_get(6, &set) && set == 1u << 3, "options: %#x", set);
	pw_fresh_note_flag(7, false, true); /* not fresh: nothing */
	PW_CHECK(!pw_fresh_flags(7, &fl, &fdfl), "not fresh, yet known");
	pw_fresh_forget_flags();
	PW_CHECK(!pw_fresh_flags(5, &fl, &fdfl) && !pw_fresh_flags(6, &fl, &fdfl),
		 "known after fork");
	PW_CHECK(pw_fresh_get(6, &set) && set == 1u << 3, "fork forgot options too: %#x", set);
	pw_fresh_set(5, false);
	PW_CHECK(!pw_fresh_flags(5, &fl, &fdfl), "closed, yet known");
	pw_fresh_set(6, false);
}

/* Plain: fresh, and no change the word does not say since socket(2). */
static void test_fresh_plain(void)
{
	PW_CHECK(!pw_fresh_plain(40), "never made, yet plain");
	pw_fresh_set_tcp(40, AF_INET, SOCK_STREAM);
	pw_fresh_set_tcp(63, AF_INET, SOCK_STREAM);
	pw_fresh_set_tcp(64, AF_INET6, SOCK_STREAM);
	PW_CHECK(pw_fresh_plain(40) && pw_fresh_plain(63) && pw_fresh_plain(64), "made, not plain");
	pw_fresh_note_opt(40, 7); /* a carried option: still plain */
	pw_fresh_note_flag(40, false, true);
	PW_CHECK(pw_fresh_plain(40), "a carried option or a flag made it odd");
	pw_fresh_note_odd(63);
	PW_CHECK(!pw_fresh_plain(63), "odd, yet plain");
	PW_CHECK(pw_fresh_plain(40) && pw_fresh_plain(64), "a neighbour's bit spilled over");
	pw_fresh_note_odd(41); /* not fresh: nothing to note */
	pw_fresh_set_tcp(41, AF_INET, SOCK_STREAM);
	PW_CHECK(pw_fresh_plain(41), "an odd mark before socket(2) stuck");
	pw_fresh_set_tcp(63, AF_INET, SOCK_STREAM); /* the number made again */
	PW_CHECK(pw_fresh_plain(63), "a new socket on an odd number is not plain");
	pw_fresh_forget_flags(); /* fork: shared now */
	PW_CHECK(!pw_fresh_plain(40) && !pw_fresh_plain(63) && !pw_fresh_plain(64),
		 "plain after fork");
	pw_fresh_set(40, false);
	PW_CHECK(!pw_fresh_plain(40), "closed, yet plain");
	for (int fd = 41; fd <= 64; fd++)
		pw_fresh_set(fd, false);
}

int main(void)
{
	test_basic();
	test_race();
	test_fresh_flags();
	test_fresh_plain();
	return 0;
}
