/* SPDX-License-Identifier: MIT */
/*
 * podwire-switch: a userspace packet switch per node for DPDK pods (issue
 * 13). Each port is a memif socket the switch serves; a pod's DPDK
 * (net_memif, role=client) connects to its own port's socket and no other.
 * One thread, run to completion: bursts from each port's rings are
 * switched (a static rule, or L2 learning) and copied into the
 * destinations' rings. It spins while there is traffic and for a short
 * budget after, then asks every port for interrupts and sleeps in epoll:
 * an idle switch uses no CPU.
 *
 *   port.c  ports: their sockets (a path, or an abstract name inside a
 *           pod's network namespace), the memif handshake, disconnects
 *   fwd.c   the MAC table and switching a burst
 *   loop.c  the event loop and its adaptive wait
 *   ctl.c   the control socket (JSON) and Prometheus metrics
 *   main.c  options
 */
#ifndef PW_SWITCH_H
#define PW_SWITCH_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "memif.h"

#define PW_SW_PORTS	  256	/* ports a switch serves */
#define PW_SW_NAME	  32	/* a port's name, with its NUL */
#define PW_SW_SPIN_US	  5	/* default: how long to poll an idle switch before sleeping */
#define PW_SW_NICE	  (-20) /* default: the switch's nice value (see main.c) */
#define PW_SW_MAC_ENTRIES 4096

/* Something epoll watches: its handler, and what for. */
struct pw_sw_ev {
	void (*fn)(struct pw_sw_ev *ev, uint32_t events);
};

struct pw_sw_port {
	bool used;
	unsigned idx;
	uint32_t gen; /* bumped at each disconnect and removal: the MACs
		       * learned on it die with it */
	char name[PW_SW_NAME];
	struct sockaddr_un addr; /* where it listens */
	socklen_t addrlen;	 /* sizeof sa_family_t + path (+1 if not abstract) */
	bool abstract;
	int lfd; /* listening (SOCK_SEQPACKET) */
	int cfd; /* the connected client's control socket, or -1 */
	uint32_t id;
	char secret[PW_MEMIF_SECRET + 1];
	bool has_mac; /* a MAC given: frames from another source are dropped */
	uint8_t mac[6];
	int rule; /* static: every frame goes to this port; -1: learn */
	struct pw_memif_conn conn;
	struct pw_sw_ev lev, cev, iev;
	/* counters the switch keeps (the ring's are in conn.stats, summed
	 * over connections into these at each disconnect) */
	struct pw_memif_stats done;
	uint64_t spoofed;  /* frames with another source MAC than the port's */
	uint64_t no_dest;  /* frames to this port's own MAC, or a port down */
	uint64_t connects; /* clients that got as far as CONNECTED */
	uint64_t refused;  /* handshakes refused */
};

struct pw_sw_cfg {
	const char *dir;     /* the switch's run directory: control socket */
	const char *metrics; /* ADDR:PORT for Prometheus text, or NULL */
	unsigned spin_us;
	int nice;
	unsigned max_ports; /* ports it gives (--max-ports), at most PW_SW_PORTS */
};

struct pw_sw {
	struct pw_sw_cfg cfg;
	int epfd;
	struct pw_sw_port ports[PW_SW_PORTS];
	unsigned nports;       /* used */
	unsigned top;	       /* slots below it may be used */
	uint64_t sleeps;       /* times the switch slept */
	uint64_t wakeups;      /* interrupts that woke it */
	uint64_t late_wakeups; /* naps ended by their timer with frames waiting */
	uint64_t busy_ns;      /* time spent polling */
	bool stop;
};

extern struct pw_sw pw_sw;

/* ---- loop.c ---- */
int pw_sw_loop_add(int fd, uint32_t events, struct pw_sw_ev *ev);
void pw_sw_loop_del(int fd);
/* Run until pw_sw.stop: 0, or -errno of epoll. */
int pw_sw_run(void);

/* ---- port.c ---- */

/* What a port is made with (ctl.c and main.c parse it). */
struct pw_sw_port_spec {
	const char *name;
	const char *socket; /* a path, or an abstract name */
	bool abstract;
	int netns; /* for an abstract name: the netns to bind it in (borrowed), or -1 */
	uint32_t id;
	const char *secret; /* or NULL */
	bool has_mac;
	uint8_t mac[6];
};

/*
 * Add a port and listen on its socket. Errors: -EEXIST a port of that
 * name, or the socket's path or name in use; -EINVAL a bad name or an
 * abstract socket without a netns... -ENAMETOOLONG; -ENOSPC the switch
 * has --max-ports ports already; errors of socket(2), bind(2) and entering the netns.
 */
int pw_sw_port_add(const struct pw_sw_port_spec *spec);
/* Remove a port: its client is disconnected, its socket closed (and its
 * path unlinked). -ENOENT if there is none. */
int pw_sw_port_del(const char *name);
struct pw_sw_port *pw_sw_port_find(const char *name);
/* Drop the connection (a broken ring, a DISCONNECT, EOF): say why to the
 * client if @why is not NULL. */
void pw_sw_port_disconnect(struct pw_sw_port *p, const char *why);
void pw_sw_ports_teardown(void);
static inline bool pw_sw_port_up(const struct pw_sw_port *p)
{
	return p->used && p->conn.state == PW_MEMIF_S_CONNECTED && !p->conn.err;
}

/* ---- fwd.c ---- */

/* Poll every connected port once: the packets switched (0 when idle). */
unsigned pw_sw_poll(void);

/* ---- ctl.c ---- */
int pw_sw_ctl_open(const char *dir);
void pw_sw_ctl_close(void);
int pw_sw_metrics_open(const char *addr);

#endif /* PW_SWITCH_H */
