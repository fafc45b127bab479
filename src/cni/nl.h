/* SPDX-License-Identifier: MIT */
/*
 * The few rtnetlink operations podwire-cni needs (libmnl), each on a socket
 * that lives in one network namespace. All functions return 0 (or what is
 * documented) or -errno as the kernel reported it.
 */
#ifndef PW_CNI_NL_H
#define PW_CNI_NL_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

struct mnl_socket;

struct pw_nl {
	struct mnl_socket *sk;
	unsigned portid;
	unsigned seq;
};

struct pw_nl_link {
	int index;
	int master;	/* enslaved to this ifindex, 0: none */
	int peer;	/* IFLA_LINK: a veth's peer ifindex (in the peer's netns) */
	unsigned flags; /* IFF_* */
	char name[IF_NAMESIZE];
	char kind[16]; /* "bridge", "veth", ...; empty for plain devices */
	uint8_t mac[6];
	bool has_mac;
};

/* Open a socket inside the netns @netns (an nsfs fd), or in the current one
 * if @netns < 0. Errors: setns(2), socket(2), bind(2). */
int pw_nl_open(struct pw_nl *nl, int netns);
/* Close; accepts a never-opened (zeroed) handle. */
void pw_nl_close(struct pw_nl *nl);

/* The link named @name. Errors: -ENODEV none such. */
int pw_nl_link_get(struct pw_nl *nl, const char *name, struct pw_nl_link *ret);
/* A new bridge. Errors: -EEXIST. @mtu 0: the kernel's default. */
int pw_nl_bridge_add(struct pw_nl *nl, const char *name, unsigned mtu);
/* A veth pair: @name here, @peer created directly in the netns @peer_netns. */
int pw_nl_veth_add(struct pw_nl *nl, const char *name, const char *peer, int peer_netns,
		   unsigned mtu);
/* Set the link up, and enslave it to @master if @master > 0. */
int pw_nl_link_up(struct pw_nl *nl, int index, int master);
int pw_nl_link_del(struct pw_nl *nl, int index);

/* Add the IPv4 address @addr/@plen (network order). Errors: -EEXIST. */
int pw_nl_addr_add(struct pw_nl *nl, int index, uint32_t addr, uint8_t plen);
/* Is @addr/@plen (@family AF_INET or AF_INET6) on link @index? 1 yes, 0 no. */
int pw_nl_addr_has(struct pw_nl *nl, int index, int family, const void *addr, uint8_t plen);
/* Add a route to @dst/@len via @gw (0: on-link) out of @index, all IPv4 in
 * network order. Errors: -EEXIST. */
int pw_nl_route_add(struct pw_nl *nl, int index, uint32_t dst, uint8_t len, uint32_t gw);

#endif /* PW_CNI_NL_H */
