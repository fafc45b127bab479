// SPDX-License-Identifier: MIT
/*
 * A real RDMA device's objects (a node with an RDMA NIC): the real
 * libibverbs serves them, untouched. Its functions are found by name and
 * version behind us in the lookup order.
 */
#include <dlfcn.h>

#include "pwverbs.h"

void *pw_verbs_real(_Atomic(void *) *slot, const char *name, const char *ver)
{
	void *f = atomic_load_explicit(slot, memory_order_relaxed);

	if (!f) {
		/* (Racing threads find the same address.) */
		f = dlvsym(RTLD_NEXT, name, ver);
		atomic_store_explicit(slot, f, memory_order_relaxed);
	}
	return f;
}
