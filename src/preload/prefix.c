// SPDX-License-Identifier: MIT
/*
 * The prefix table: which destinations the library accelerates. It comes
 * from PODWIRE_PREFIX if set, else from the router's hello reply; a connect()
 * elsewhere goes to the kernel without asking the router.
 *
 * Readers (every connect and listen) take no lock: the table in use is
 * published whole with a release store and never changed afterwards. A new
 * router list that differs from the one in use replaces it; the old one is
 * kept, chained to the new, since a reader may still hold it (a router
 * restart with new prefixes costs a few hundred bytes).
 */
#include "preload.h"

struct pw_prefix_node {
	struct pw_prefixes t; /* first: the table in use points here */
	const struct pw_prefix_node *older;
};

static _Atomic(const struct pw_prefix_node *) pw_prefix_table;

int pw_prefixes_parse(const char *s, struct pw_prefixes *ret_table, const char **ret_bad)
{
	struct pw_prefixes t;
	int n = pw_addr_cidr_list_parse(s, PW_ADDR_CIDR_HOST | PW_ADDR_CIDR_NET, t.p,
					PW_WIRE_MAX_PREFIXES, ret_bad);

	if (n < 0)
		return n;
	t.n = (unsigned)n;
	*ret_table = t;
	return 0;
}

void pw_prefixes_from_wire(const struct pw_msg *m, struct pw_prefixes *ret_table)
{
	struct pw_wire_prefix p;

	ret_table->n = 0;
	for (uint32_t i = 0; i < m->nentries && ret_table->n < PW_WIRE_MAX_PREFIXES; i++) {
		/* The router's word, checked: IPv4 prefixes of at most 32 bits. */
		if (pw_msg_entry(m, i, &p, sizeof(p)) < 0 || p.family != AF_INET || p.len > 32)
			continue;
		ret_table->p[ret_table->n++] = p;
	}
}

bool pw_prefixes_has(const struct pw_prefixes *t, const struct sockaddr_in *a)
{
	for (unsigned i = 0; i < t->n; i++)
		if (pw_addr_cidr_has(&t->p[i], a))
			return true;
	return false;
}

static bool pw_prefixes_same(const struct pw_prefixes *a, const struct pw_prefixes *b)
{
	return a->n == b->n && !memcmp(a->p, b->p, a->n * sizeof(a->p[0]));
}

int pw_prefixes_publish(const struct pw_prefixes *t)
{
	/* Pairs with the release below: a table is seen whole. Publishers
	 * are serialised (start-up, then the control connection's lock). */
	const struct pw_prefix_node *cur =
		atomic_load_explicit(&pw_prefix_table, memory_order_acquire);

	if (cur && pw_prefixes_same(&cur->t, t))
		return 0;
	struct pw_prefix_node *n = malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->t = *t;
	n->older = cur;
	/* Pairs with the acquire loads here and in pw_in_prefixes(). */
	atomic_store_explicit(&pw_prefix_table, n, memory_order_release);
	return 0;
}

bool pw_in_prefixes(const struct sockaddr_in *a)
{
	/* Pairs with the release in pw_prefixes_publish(). */
	const struct pw_prefix_node *n =
		atomic_load_explicit(&pw_prefix_table, memory_order_acquire);

	return n && pw_prefixes_has(&n->t, a);
}
