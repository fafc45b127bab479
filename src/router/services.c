// SPDX-License-Identifier: MIT
/*
 * Kubernetes Services, the loop's side: a connect to a ClusterIP:port is
 * turned into a connect to one ready backend (kube-proxy's choice: random,
 * or the client's last one with sessionAffinity ClientIP), which then takes
 * the ordinary way (shared memory on this node, a peer router across nodes,
 * the kernel otherwise). The application keeps seeing the ClusterIP
 * (getpeername), as through kube-proxy. The table comes from the API server
 * (discover.c) whole, and replaces the previous one.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "../common/util.h"
#include "router.h"

#define PW_SVC_AFFINITY_SLOTS 4096

static struct pw_svc_table *pw_svc;
static struct pw_svc_affinity {
	in_addr_t client, vip;
	in_port_t port;
	struct sockaddr_in be;
	uint64_t expires;
} pw_svc_aff[PW_SVC_AFFINITY_SLOTS];
static uint64_t pw_svc_rng;
static uint64_t pw_svc_resolved, pw_svc_refused;

void pw_svc_table_free(struct pw_svc_table *t)
{
	if (!t)
		return;
	free(t->e);
	free(t->be);
	free(t);
}

void pw_svc_table_set(struct pw_svc_table *t)
{
	pw_svc_table_free(pw_svc);
	pw_svc = t;
}

static uint64_t pw_svc_random(void)
{
	if (!pw_svc_rng &&
	    getrandom(&pw_svc_rng, sizeof(pw_svc_rng), GRND_NONBLOCK) != sizeof(pw_svc_rng))
		pw_svc_rng = pw_now_ns() | 1;
	/* xorshift64: a fair enough spread over a Service's backends */
	pw_svc_rng ^= pw_svc_rng << 13;
	pw_svc_rng ^= pw_svc_rng >> 7;
	pw_svc_rng ^= pw_svc_rng << 17;
	return pw_svc_rng;
}

/* The order of a table's entries (pw_svc_table_sort): by address, then port. */
static int pw_svc_cmp(const void *a, const void *b)
{
	const struct sockaddr_in *x = &((const struct pw_svc_entry *)a)->vip,
				 *y = &((const struct pw_svc_entry *)b)->vip;
	uint32_t ax = ntohl(x->sin_addr.s_addr), ay = ntohl(y->sin_addr.s_addr);
	uint16_t px = ntohs(x->sin_port), py = ntohs(y->sin_port);

	if (ax != ay)
		return ax < ay ? -1 : 1;
	return px < py ? -1 : px > py;
}

void pw_svc_table_sort(struct pw_svc_table *t)
{
	if (t->n > 1)
		qsort(t->e, t->n, sizeof(t->e[0]), pw_svc_cmp);
}

/* Every connect to the prefixes asks: a binary search, whatever the cluster's size. */
static const struct pw_svc_entry *pw_svc_find(const struct sockaddr_in *dst)
{
	const struct pw_svc_entry key = { .vip = *dst };

	if (!pw_svc || !pw_svc->n)
		return NULL;
	return bsearch(&key, pw_svc->e, pw_svc->n, sizeof(pw_svc->e[0]), pw_svc_cmp);
}

static bool pw_svc_has(const struct pw_svc_entry *e, const struct sockaddr_in *be)
{
	for (unsigned i = 0; i < e->nbe; i++) {
		const struct sockaddr_in *b = &pw_svc->be[e->be + i];

		if (b->sin_addr.s_addr == be->sin_addr.s_addr && b->sin_port == be->sin_port)
			return true;
	}
	return false;
}

int pw_svc_resolve(const struct sockaddr_in *client, struct sockaddr_in *dst,
		   struct sockaddr_in *ret_vip)
{
	const struct pw_svc_entry *e = pw_svc_find(dst);
	struct pw_svc_affinity *a = NULL;
	uint64_t now;

	if (!e)
		return 0;
	if (!e->nbe) {
		pw_svc_refused++;
		return -ECONNREFUSED; /* as kube-proxy's REJECT */
	}
	*ret_vip = *dst;
	now = pw_now_ns();
	if (e->affinity_s) {
		uint64_t h = (uint64_t)client->sin_addr.s_addr * 0x9e3779b97f4a7c15ull ^
			     ((uint64_t)dst->sin_addr.s_addr << 16 | dst->sin_port);

		a = &pw_svc_aff[(h >> 20) % PW_SVC_AFFINITY_SLOTS];
		/* The client's backend while it stays one of the Service's. */
		if (a->client == client->sin_addr.s_addr && a->vip == dst->sin_addr.s_addr &&
		    a->port == dst->sin_port && now < a->expires && pw_svc_has(e, &a->be)) {
			*dst = a->be;
			a->expires = now + (uint64_t)e->affinity_s * 1000000000ull;
			pw_svc_resolved++;
			return 1;
		}
	}
	*dst = pw_svc->be[e->be + pw_svc_random() % e->nbe];
	if (a)
		*a = (struct pw_svc_affinity){ .client = client->sin_addr.s_addr,
					       .vip = ret_vip->sin_addr.s_addr,
					       .port = ret_vip->sin_port,
					       .be = *dst,
					       .expires = now +
							  (uint64_t)e->affinity_s * 1000000000ull };
	pw_svc_resolved++;
	return 1;
}

bool pw_svc_is(const struct sockaddr_in *dst)
{
	return pw_svc_find(dst) != NULL;
}

void pw_svc_metrics(FILE *f)
{
	if (!pw_svc)
		return;
	fprintf(f,
		"# HELP podwire_service_ports Service ClusterIP:port pairs known "
		"(--kube-services).\n"
		"# TYPE podwire_service_ports gauge\npodwire_service_ports %u\n"
		"# HELP podwire_service_connects_total Connects to a Service's ClusterIP, by "
		"outcome.\n"
		"# TYPE podwire_service_connects_total counter\n"
		"podwire_service_connects_total{result=\"backend\"} %" PRIu64 "\n"
		"podwire_service_connects_total{result=\"no_endpoints\"} %" PRIu64 "\n",
		pw_svc->n, pw_svc_resolved, pw_svc_refused);
}
