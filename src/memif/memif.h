/* SPDX-License-Identifier: MIT */
/*
 * memif, the shared-memory packet interface of DPDK's net_memif and VPP
 * (protocol 2.0): its messages (msg.c). The layout is in <podwire/wire.h>
 * (messages) and <podwire/shm.h> (rings). podwire-switch speaks it as the
 * server to DPDK pods (issue 13).
 */
#ifndef PW_MEMIF_H
#define PW_MEMIF_H

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

/* A name field of @n bytes (not always NUL-terminated) as a C string in
 * @out, which holds @n + 1 bytes. */
void pw_memif_name(const uint8_t *field, size_t n, char *out);

#endif /* PW_MEMIF_H */
