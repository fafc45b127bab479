/* SPDX-License-Identifier: MIT */
/*
 * memif, the shared-memory packet interface of DPDK's net_memif and VPP
 * (protocol 2.0): its messages (msg.c). The layout is in <podwire/wire.h>
 * (messages) and <podwire/shm.h> (rings). podwire-switch speaks it as the
 * server to DPDK pods (issue 13).
 */
#ifndef PW_MEMIF_H
#define PW_MEMIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <podwire/shm.h>
#include <podwire/wire.h>

/* The fds a message of @type carries: 1 for ADD_REGION and ADD_RING, else 0. */
unsigned pw_memif_msg_nfds(uint16_t type);

/*
 * Decode a message a peer sent: @len bytes that came with @nfds fds. Only
 * its form is checked here (what a peer may ask is the caller's): 0 with
 * @ret filled; -EBADMSG when it is not PW_MEMIF_MSG_SIZE bytes, its type is
 * unknown, or a field is out of range (HELLO's versions the wrong way
 * round or its largest ring 0 or over 2^14, INIT's mode, a region of size
 * 0, a ring's flags, size or private header); -EPROTO when the number of
 * fds is not its type's.
 */
int pw_memif_msg_parse(const void *buf, size_t len, unsigned nfds, struct pw_memif_msg *ret);

/* The messages the server sends, into @m (zeroed first). Names longer than
 * PW_MEMIF_NAME bytes are cut; a reason longer than PW_MEMIF_REASON - 1 too. */
void pw_memif_msg_hello(struct pw_memif_msg *m, const char *name, uint16_t max_region,
			uint16_t max_m2s_ring, uint16_t max_s2m_ring, uint8_t max_log2_ring_size);
void pw_memif_msg_ack(struct pw_memif_msg *m);
void pw_memif_msg_connected(struct pw_memif_msg *m, const char *if_name);
void pw_memif_msg_disconnect(struct pw_memif_msg *m, uint32_t code, const char *reason);

/* The messages a client sends (a secret or name too long is cut). */
void pw_memif_msg_init(struct pw_memif_msg *m, uint32_t id, const char *secret, const char *name);
void pw_memif_msg_add_region(struct pw_memif_msg *m, uint16_t index, uint64_t size);
void pw_memif_msg_add_ring(struct pw_memif_msg *m, bool s2m, uint16_t index, uint16_t region,
			   uint32_t offset, uint8_t log2);
void pw_memif_msg_connect(struct pw_memif_msg *m, const char *if_name);

/* A name field of @n bytes (not always NUL-terminated) as a C string in
 * @out, which holds @n + 1 bytes. */
void pw_memif_name(const uint8_t *field, size_t n, char *out);

/* ---- conn.c: the server's side of one connection ---- */

#define PW_MEMIF_REGIONS    16		 /* regions a client may add */
#define PW_MEMIF_RINGS	    8		 /* rings a client may add, each way */
#define PW_MEMIF_REGION_MAX (1ull << 30) /* the largest region mapped */

struct pw_memif_region {
	uint8_t *map; /* MAP_SHARED, read-write, size bytes */
	uint64_t size;
};

struct pw_memif_ringref {
	struct pw_memif_ring *ring; /* in a region, checked to fit in it */
	uint8_t log2;
	uint16_t pos; /* ours, never read back from the ring: the next slot
		       * we take (S2M) or fill (M2S); tail is a copy of it */
	int evfd;     /* the client's interrupt eventfd for it */
};

/* A connection's packet counters (ring.c). */
struct pw_memif_stats {
	uint64_t rx_pkts, rx_bytes;
	uint64_t rx_bad; /* packets dropped: a descriptor out of its region,
			  * empty, or a chain too long */
	uint64_t tx_pkts, tx_bytes;
	uint64_t tx_full; /* packets dropped: no room in the client's ring */
	uint64_t tx_bad;  /* packets dropped: a buffer the client offered was
			   * out of its region */
	uint64_t irqs;	  /* interrupts sent to the client */
};

enum pw_memif_state {
	PW_MEMIF_S_HELLO,     /* HELLO sent: INIT next */
	PW_MEMIF_S_INIT,      /* regions and rings, then CONNECT */
	PW_MEMIF_S_CONNECTED, /* packets */
	PW_MEMIF_S_DEAD,      /* DISCONNECT sent or received: close */
};

struct pw_memif_conn {
	enum pw_memif_state state;
	uint32_t id; /* the interface this socket serves */
	bool has_secret;
	uint8_t secret[PW_MEMIF_SECRET];
	char peer[PW_MEMIF_NAME + 1]; /* the client's name (INIT) */
	unsigned nregions;
	struct pw_memif_region regions[PW_MEMIF_REGIONS];
	unsigned nrings[2]; /* [0] client to server (S2M), [1] server to client */
	struct pw_memif_ringref rings[2][PW_MEMIF_RINGS];
	struct pw_memif_stats stats;
	int err; /* sticky -EPROTO once the client broke a ring: disconnect it */
};

/* A connection that sent HELLO (pw_memif_msg_hello(), with these limits)
 * and serves interface @id; @secret, if not NULL, must come in INIT. */
void pw_memif_conn_init(struct pw_memif_conn *c, uint32_t id, const char *secret);
/* The HELLO for it: our limits. */
void pw_memif_conn_hello(struct pw_memif_msg *m, const char *name);
/*
 * Apply one message from the client, with the fd it carried (taken, or -1).
 * Returns 0 with @reply the answer (ACK, or CONNECTED after CONNECT), 1 when
 * the client said DISCONNECT (nothing to answer: close), or -errno with
 * @reply a DISCONNECT saying why: -EPROTO (a message out of turn), -EPERM
 * (another interface, secret or protocol version), -EINVAL (a region or
 * ring that is not where it says, or too large, out of order, too many, an
 * fd of the wrong kind, a region's file not sealed against shrinking
 * (F_SEAL_SHRINK), no ring of a direction at CONNECT, a ring without
 * its cookie), or the error of mapping a region. On an error the
 * connection is dead: send @reply, then close.
 */
int pw_memif_conn_apply(struct pw_memif_conn *c, const struct pw_memif_msg *m, int fd,
			struct pw_memif_msg *reply);
/* Unmap its regions and close its fds. */
void pw_memif_conn_close(struct pw_memif_conn *c);

/* ---- ring.c: packets (copy mode) ---- */

/* Add the counters of @src into @dst. */
void pw_memif_stats_add(struct pw_memif_stats *dst, const struct pw_memif_stats *src);

#define PW_MEMIF_BURST	 32u
#define PW_MEMIF_PKT_MAX 9216u /* the longest packet taken from a chain */
#define PW_MEMIF_CHAIN	 16u   /* the most descriptors one packet may use */

/* A packet: @len bytes at @data, in the client's memory or gathered. */
struct pw_memif_pkt {
	const uint8_t *data;
	uint32_t len;
};

/* One burst taken from a ring, valid until pw_memif_rx_done(). */
struct pw_memif_burst {
	unsigned n;
	uint16_t end; /* the slot after the last one taken */
	struct pw_memif_pkt pkt[PW_MEMIF_BURST];
	/* Chained packets are gathered here: PW_MEMIF_BURST * PW_MEMIF_PKT_MAX
	 * bytes, or NULL to drop them (counted in rx_bad). */
	uint8_t *gather;
};

/*
 * Take up to PW_MEMIF_BURST packets the client put in its S2M ring @q into
 * @b. Each is checked: a descriptor whose buffer is not wholly inside its
 * region, an empty one, or a chain longer than PW_MEMIF_CHAIN descriptors
 * or PW_MEMIF_PKT_MAX bytes is dropped and counted; a chain whose end is
 * not published yet is left for the next call; the packets' bytes are the client's and may change
 * under us (copy what is inspected). Returns the number of packets, or -EPROTO when the client
 * moved head more than a ring ahead (c->err is set: disconnect).
 */
int pw_memif_rx(struct pw_memif_conn *c, unsigned q, struct pw_memif_burst *b);
/* The burst is consumed: hand its slots back to the client. */
void pw_memif_rx_done(struct pw_memif_conn *c, unsigned q, const struct pw_memif_burst *b);
/*
 * Copy @n packets into the buffers the client offers in its M2S ring @q,
 * chaining descriptors where one buffer is too short; wake the client if it
 * asked for interrupts. Packets that do not fit are dropped (tx_full), as a
 * NIC drops: the caller does not retry. A buffer outside its region drops
 * its packet (tx_bad). Returns the number sent, or -EPROTO when the client
 * offered more than a ring (c->err is set).
 */
int pw_memif_tx(struct pw_memif_conn *c, unsigned q, const struct pw_memif_pkt *pkts, unsigned n);
/*
 * Interrupts from the client's S2M rings: pw_memif_rx_arm() asks for one on
 * the next packet, before the caller sleeps on the rings' eventfds; it
 * returns true if packets are waiting already (then do not sleep).
 * pw_memif_rx_poll() tells the client we poll: no interrupts.
 */
bool pw_memif_rx_arm(struct pw_memif_conn *c);
void pw_memif_rx_poll(struct pw_memif_conn *c);
/* Packets waiting in any of the client's S2M rings? */
bool pw_memif_rx_pending(struct pw_memif_conn *c);

/* ---- client.c: the client's side (copy mode, one ring each way) ---- */

struct pw_memif_client {
	int sock; /* the caller's, connected to the server's socket */
	int region_fd, s2m_evfd, m2s_evfd;
	uint8_t *map;
	uint64_t size;
	unsigned log2;
	uint32_t bufsize;
	struct pw_memif_ring *s2m, *m2s;
	uint16_t s2m_head; /* ours: the next S2M slot we fill */
	uint16_t m2s_seen; /* ours: the next M2S slot we read */
	uint16_t m2s_head; /* ours: what we have offered */
	uint64_t irqs;	   /* interrupts sent to the server */
	char peer[PW_MEMIF_NAME + 1];
	char reason[PW_MEMIF_REASON + 1]; /* why the server refused, if it did */
};

/*
 * Connect as a client over @sock (connected to a memif server, kept by the
 * caller): the handshake for interface @id (with @secret, or NULL), rings
 * of 2^@log2 descriptors (fewer if the server says so), buffers of
 * @bufsize bytes; each answer within @timeout_ms. Errors: -EINVAL bad
 * sizes; -ECONNREFUSED the server said DISCONNECT (why in c->reason);
 * -EPROTO, -EBADMSG an answer out of turn or malformed; -EPROTONOSUPPORT
 * no common version; -ETIMEDOUT; errors of the socket, memfd_create(2),
 * mmap(2) and eventfd(2).
 */
int pw_memif_client_open(struct pw_memif_client *c, int sock, uint32_t id, const char *secret,
			 const char *name, unsigned log2, uint32_t bufsize, int timeout_ms);
/* Say DISCONNECT and free the region and fds (not the socket). */
void pw_memif_client_close(struct pw_memif_client *c);
/* Copy up to @n frames (each cut to the buffer size) into the S2M ring;
 * interrupt the server if it asked. Returns how many went. */
unsigned pw_memif_client_tx(struct pw_memif_client *c, const struct pw_memif_pkt *pkts, unsigned n);
/* Frames the server put in the M2S ring, up to @max: views into our
 * buffers, valid until pw_memif_client_refill(). -EPROTO if the server
 * broke the ring. */
int pw_memif_client_rx(struct pw_memif_client *c, struct pw_memif_pkt *pkts, unsigned max);
/* Offer the server every M2S buffer read so far. */
void pw_memif_client_refill(struct pw_memif_client *c);

#endif /* PW_MEMIF_H */
