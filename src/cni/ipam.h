/* SPDX-License-Identifier: MIT */
/*
 * podwire-cni's own IPAM: one IPv4 range per network, allocations kept as
 * files in a directory (one per address, named after it, holding
 * "CONTAINERID\nIFNAME\n"), so they survive restarts of anything.
 */
#ifndef PW_CNI_IPAM_H
#define PW_CNI_IPAM_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

struct pw_ipam {
	uint32_t net, gw, start, end; /* host order; start..end inclusive */
	uint8_t plen;
	char dir[PATH_MAX]; /* this network's allocations */
};

/*
 * Create @dir (and its parents) if needed and take its lock (flock on
 * DIR/lock), waiting up to @timeout_ms. Returns the lock fd, released by
 * pw_ipam_unlock(). Errors: -EAGAIN still locked after the timeout; errors
 * of mkdir(2) and open(2).
 */
int pw_ipam_lock(const char *dir, int timeout_ms);
void pw_ipam_unlock(int lock);

/* The address (host order) held by (@id, @ifname) in @dir. Errors: -ENOENT. */
int pw_ipam_find(const char *dir, const char *id, const char *ifname, uint32_t *ret);

/*
 * With the lock held: the address (@id, @ifname) already holds, else the next
 * free one after the last one handed out (round robin, so a released address
 * is not reused at once). *@ret_new tells which. Errors: -ENOSPC range
 * exhausted; errors of open(2) and write(2).
 */
int pw_ipam_alloc(const struct pw_ipam *p, const char *id, const char *ifname, uint32_t *ret,
		  bool *ret_new);

/* With the lock held: release what (@id, @ifname) holds. Returns how many
 * addresses were released (0 is not an error). */
int pw_ipam_release(const char *dir, const char *id, const char *ifname);

#endif /* PW_CNI_IPAM_H */
