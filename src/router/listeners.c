// SPDX-License-Identifier: MIT
/*
 * The listener registry: the accelerated listening sockets clients told us
 * about (LISTEN), each with its address, its network namespace (an fd, to
 * connect inside it, and its cookie) and the client that registered it; and
 * which of them a connect reaches.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>

#include "../common/addr.h"
#include "../common/util.h"
#include "router.h"

static struct pw_listener *pw_listeners;

static void pw_listener_free(struct pw_listener *l)
{
	/* A pooled socket keeps its namespace alive: none may outlive us. */
	while (l->npool)
		pw_close(l->pool[--l->npool]);
	pw_close(l->netns);
	free(l);
}

int pw_listener_socket(struct pw_listener *l)
{
	if (!l->npool) {
		int n = pw_netns_tcp_sockets(l->netns, l->pool, PW_LISTENER_POOL);
		if (n < 0)
			return n;
		l->npool = (unsigned)n;
	}
	return l->pool[--l->npool];
}

void pw_listeners_drop_owner(const struct pw_client *owner)
{
	for (struct pw_listener **pp = &pw_listeners; *pp;) {
		struct pw_listener *l = *pp;

		if (l->owner == owner) {
			*pp = l->next;
			pw_listener_free(l);
		} else {
			pp = &l->next;
		}
	}
}

static struct pw_listener **pw_listener_find(const struct pw_client *owner, uint64_t cookie,
					     const struct sockaddr_in *a)
{
	for (struct pw_listener **pp = &pw_listeners; *pp; pp = &(*pp)->next)
		if ((*pp)->owner == owner && (*pp)->cookie == cookie && pw_addr_eq(&(*pp)->addr, a))
			return pp;
	return NULL;
}

bool pw_listener_ref(const struct pw_client *owner, uint64_t cookie, const struct sockaddr_in *a)
{
	struct pw_listener **pp = pw_listener_find(owner, cookie, a);

	if (pp)
		(*pp)->refs++;
	return pp != NULL;
}

int pw_listener_insert(const struct pw_client *owner, uint64_t cookie, const struct sockaddr_in *a,
		       int netns)
{
	struct pw_listener *l = calloc(1, sizeof(*l));

	if (!l) {
		pw_close(netns);
		return -ENOMEM;
	}
	l->cookie = cookie;
	l->netns = netns;
	l->addr = *a;
	l->owner = owner;
	l->refs = 1;
	l->next = pw_listeners;
	pw_listeners = l;
	return 0;
}

int pw_listener_remove(const struct pw_client *owner, uint64_t cookie, const struct sockaddr_in *a)
{
	struct pw_listener **pp = pw_listener_find(owner, cookie, a);

	if (!pp)
		return -ENOENT;
	if (--(*pp)->refs == 0) {
		struct pw_listener *l = *pp;
		*pp = l->next;
		pw_listener_free(l);
	}
	return 0;
}

static bool pw_listener_reaches(const struct pw_listener *l, uint64_t cookie,
				const struct sockaddr_in *dst)
{
	if (l->addr.sin_port != dst->sin_port)
		return false;
	if (l->addr.sin_addr.s_addr != htonl(INADDR_ANY) &&
	    l->addr.sin_addr.s_addr != dst->sin_addr.s_addr)
		return false;
	/* Loopback never leaves a namespace. */
	return !pw_addr_is_loopback(dst) || l->cookie == cookie;
}

struct pw_listener *pw_listener_next(const struct pw_listener *prev, uint64_t cookie,
				     const struct sockaddr_in *dst)
{
	struct pw_listener *l = prev ? prev->next : pw_listeners;

	while (l && !pw_listener_reaches(l, cookie, dst))
		l = l->next;
	return l;
}

unsigned pw_listeners_count(void)
{
	unsigned n = 0;

	for (const struct pw_listener *l = pw_listeners; l; l = l->next)
		n++;
	return n;
}
