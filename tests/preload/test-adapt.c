// SPDX-License-Identifier: MIT
/*
 * The path of a new connection (adapt.c): shared memory until a destination
 * has had PW_ADAPT_RUN short connections in a row, the kernel after, and
 * shared memory again after one long one; destinations apart; switched off
 * by pw_adapt_enable(false); a destination without a podwire listener left
 * to the kernel for a while. And the fd hint that carries the slot to close().
 */
#include <unistd.h>

#include "preload.h"
#include "pw_test.h"

struct pw_real_fns pw_real;
struct pw_cfg pw_cfg;

static struct sockaddr_in dst(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	PW_CHECK(inet_pton(AF_INET, ip, &a.sin_addr) == 1, "%s", ip);
	return a;
}

static void test_long_or_short(void)
{
	PW_CHECK(!pw_adapt_is_long(2, 400), "an HTTP request and its answer is short");
	PW_CHECK(!pw_adapt_is_long(PW_ADAPT_LONG_XFERS - 1, PW_ADAPT_LONG_BYTES - 1), "below both");
	PW_CHECK(pw_adapt_is_long(PW_ADAPT_LONG_XFERS, 0), "many exchanges");
	PW_CHECK(pw_adapt_is_long(1, PW_ADAPT_LONG_BYTES), "many bytes in one");
}

static void test_run_then_back(void)
{
	struct sockaddr_in a = dst("198.18.0.2", 80), b = dst("198.18.0.3", 80),
			   c = dst("198.18.0.2", 81);

	PW_CHECK_EQ(pw_adapt_kernel(&a), 0); /* nothing known: shared memory */
	for (unsigned i = 0; i < PW_ADAPT_RUN - 1; i++) {
		pw_adapt_note(&a, false);
		PW_CHECK(!pw_adapt_kernel(&a), "after %u short ones", i + 1);
	}
	pw_adapt_note(&a, false);
	unsigned slot = pw_adapt_kernel(&a);
	PW_CHECK(slot >= 1 && slot <= PW_ADAPT_SLOTS, "slot %u after %u short ones", slot,
		 PW_ADAPT_RUN);
	PW_CHECK(!pw_adapt_kernel(&b) && !pw_adapt_kernel(&c), "other address or port");

	/* A kernel connection there that turns out long: shared memory again. */
	pw_adapt_note_slot(slot, true);
	PW_CHECK_EQ(pw_adapt_kernel(&a), 0);
	for (unsigned i = 0; i < PW_ADAPT_RUN; i++)
		pw_adapt_note(&a, false);
	PW_CHECK(pw_adapt_kernel(&a), "short again");
	pw_adapt_note(&a, true); /* an accelerated one that was long */
	PW_CHECK_EQ(pw_adapt_kernel(&a), 0);
	pw_adapt_note_slot(0, false); /* no slot: ignored */
	pw_adapt_note_slot(PW_ADAPT_SLOTS + 1, false);
	pw_adapt_note_slot(PW_ADAPT_FALLBACK, false);
	PW_CHECK_EQ(pw_adapt_kernel(&a), 0); /* none of those counted */
}

static void test_switched_off(void)
{
	struct sockaddr_in a = dst("198.18.0.9", 443);

	for (unsigned i = 0; i < PW_ADAPT_RUN; i++)
		pw_adapt_note(&a, false);
	PW_CHECK(pw_adapt_kernel(&a), "on by default");
	pw_adapt_enable(false);
	PW_CHECK_EQ(pw_adapt_kernel(&a), 0);
	pw_adapt_enable(true);
	PW_CHECK(pw_adapt_kernel(&a), "on again");
}

static void test_fd_hint(void)
{
	uint32_t set;

	PW_CHECK_EQ(pw_fresh_take_adapt(7), 0);
	pw_fresh_set(7, true);
	pw_fresh_note_opt(7, 3);
	pw_fresh_mark_adapt(7, 64);
	PW_CHECK(pw_fresh_get(7, &set), "still fresh");
	PW_CHECK_EQ(set, 1u << 3); /* the slot is no option */
	PW_CHECK_EQ(pw_fresh_take_adapt(7), 64);
	PW_CHECK_EQ(pw_fresh_take_adapt(7), 0); /* taken once */
	PW_CHECK(pw_fresh_get(7, &set) && set == 1u << 3, "fresh and its option stay");

	pw_fresh_mark_adapt(8, 5);
	pw_fresh_set(8, false); /* close, dup: the number is forgotten */
	PW_CHECK_EQ(pw_fresh_take_adapt(8), 0);
	pw_fresh_mark_adapt(9, 5);
	pw_fresh_set(9, true); /* a new socket on the number */
	PW_CHECK_EQ(pw_fresh_take_adapt(9), 0);
	pw_fresh_mark_adapt(10, 5);
	pw_fresh_clear_range(10, 10);
	PW_CHECK_EQ(pw_fresh_take_adapt(10), 0);
	/* Fallen back to the kernel: marked, with no slot to count for. */
	pw_fresh_mark_adapt(11, PW_ADAPT_FALLBACK);
	PW_CHECK_EQ(pw_fresh_adapt_get(11), PW_ADAPT_FALLBACK);
	PW_CHECK_EQ(pw_fresh_adapt_get(11), PW_ADAPT_FALLBACK); /* get keeps it */
	PW_CHECK_EQ(pw_fresh_take_adapt(11), PW_ADAPT_FALLBACK);
	PW_CHECK_EQ(pw_fresh_adapt_get(11), 0);
	pw_fresh_mark_adapt(-1, 5);
	pw_fresh_mark_adapt(1 << 20, 5);
	PW_CHECK_EQ(pw_fresh_take_adapt(1 << 20), 0);
}

/* The router found no listener: the kernel's, without counting, for the
 * time given; then the router is asked again. */
static void test_no_listener(void)
{
	struct sockaddr_in a = dst("198.18.1.2", 5432), b = dst("198.18.1.3", 5432);

	PW_CHECK_EQ(pw_adapt_kernel(&a), 0);
	pw_adapt_note_none(&a, 200);
	PW_CHECK_EQ(pw_adapt_kernel(&a), PW_ADAPT_FALLBACK);
	PW_CHECK_EQ(pw_adapt_kernel(&b), 0); /* another destination: ask */
	usleep(300 * 1000);
	PW_CHECK_EQ(pw_adapt_kernel(&a), 0);
	/* A run of short ones is counted as before, with or without the mark. */
	pw_adapt_note_none(&a, 200);
	for (unsigned i = 0; i < PW_ADAPT_RUN; i++)
		pw_adapt_note(&a, false);
	unsigned slot = pw_adapt_kernel(&a);
	PW_CHECK(slot >= 1 && slot <= PW_ADAPT_SLOTS, "slot %u", slot);
	pw_adapt_note(&a, true);
	PW_CHECK_EQ(pw_adapt_kernel(&a), PW_ADAPT_FALLBACK); /* the mark still holds */
	/* Switched off: nothing is remembered. */
	pw_adapt_enable(false);
	pw_adapt_note_none(&b, 10000);
	PW_CHECK_EQ(pw_adapt_kernel(&b), 0);
	pw_adapt_enable(true);
	PW_CHECK_EQ(pw_adapt_kernel(&b), 0);
}

int main(void)
{
	test_long_or_short();
	test_run_then_back();
	test_switched_off();
	test_fd_hint();
	test_no_listener();
	return 0;
}
