/* SPDX-License-Identifier: MIT */
/*
 * podwire-pktgen: a round-trip latency generator for packet paths (issue
 * 13). It sends Ethernet frames at a fixed offered rate, each stamped with
 * its send time and a sequence number, and histograms the time until it
 * comes back (a reflector on the far side swaps the addresses: testpmd in
 * macswap mode). Ports: a memif client (to podwire-switch or to a DPDK pod
 * serving memif), or AF_PACKET on a kernel interface.
 *
 *   port.c  the ports
 *   gen.c   one measurement: pacing, stamping, the histogram, the CPU the
 *           other processes took meanwhile
 *   main.c  options; one rate, or a search for the loss-free rate and the
 *           points 10/50/90% of it and beyond
 */
#ifndef PW_PKTGEN_H
#define PW_PKTGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "hist.h"
#include "memif.h"

#define PW_PG_BURST	32u
#define PW_PG_MAGIC	0x47505750u /* "PWPG" */
#define PW_PG_ETHERTYPE 0x88b5u	    /* local experimental */
#define PW_PG_MIN_FRAME 60u	    /* 64 with the FCS */
#define PW_PG_MAX_FRAME 2048u

/* What a frame carries after its Ethernet header. */
struct __attribute__((packed)) pw_pg_stamp {
	uint32_t magic;
	uint32_t run; /* which measurement sent it */
	uint64_t seq;
	uint64_t ts; /* CLOCK_MONOTONIC ns at send */
};

struct pw_pg_port {
	const char *spec; /* as given */
	int (*tx)(struct pw_pg_port *p, const struct pw_memif_pkt *f, unsigned n);
	/* Frames received: views valid until done(). */
	int (*rx)(struct pw_pg_port *p, struct pw_memif_pkt *f, unsigned max);
	void (*done)(struct pw_pg_port *p);
	void (*close)(struct pw_pg_port *p);
	/* memif */
	int sock;
	struct pw_memif_client mc;
	/* AF_PACKET */
	int fd;
	uint8_t rxbuf[PW_PG_BURST][PW_PG_MAX_FRAME];
	/* DPDK */
	uint16_t dpdk_port;
	void *mbufs[PW_PG_BURST]; /* received, until done() */
	unsigned nmbufs;
};

/*
 * Open a port from @spec: memif:PATH[,abstract][,id=N][,secret=S] (a memif
 * client of the socket at PATH, or of the abstract name PATH),
 * af_packet:IFNAME, or dpdk:N (ethdev N of the EAL set up from @eal, in a
 * build with DPDK). Errors are said in @err.
 */
int pw_pg_port_open(struct pw_pg_port *p, const char *spec, const char *eal, char *err,
		    size_t errlen);

/* dpdk.c (with DPDK only) */
int pw_pg_dpdk_open(struct pw_pg_port *p, const char *id, const char *eal, char *err,
		    size_t errlen);
void pw_pg_dpdk_cleanup(void);

struct pw_pg_cfg {
	double rate;	/* offered frames per second; 0: as fast as the port takes them */
	double seconds; /* measured */
	double warmup;	/* sent, not measured */
	unsigned size;	/* frame bytes, without the FCS */
	uint8_t dst[6], src[6];
};

struct pw_pg_result {
	double offered;	 /* frames per second asked for */
	double achieved; /* frames per second the port took in the window */
	uint64_t sent, received, lost;
	uint64_t skipped;  /* frames not sent on time: the generator was late */
	uint64_t refused;  /* frames the port had no room for */
	uint64_t stray;	   /* frames received that were not ours */
	double others_cpu; /* CPUs' worth other processes used meanwhile */
	double self_cpu;
	struct pw_hist rtt; /* ns */
};

/* One measurement from @tx to @rx (may be the same port). 0, or -errno of
 * a port. */
int pw_pg_run(struct pw_pg_port *tx, struct pw_pg_port *rx, const struct pw_pg_cfg *cfg,
	      struct pw_pg_result *res);

#endif /* PW_PKTGEN_H */
