/* SPDX-License-Identifier: MIT */
/*
 * Control protocol between libpodwire.so and podwired, over a Unix
 * SOCK_SEQPACKET socket: one message per packet, fds in SCM_RIGHTS.
 *
 * Every message is a pw_wire_hdr followed by a body whose size is fixed by
 * its type (or, for lists, a count and that many fixed-size entries). The
 * receiver checks magic, version, that len equals the packet size, that the
 * body has exactly the size its type demands, and how many fds came with it.
 * All integers are in host order (both ends are on one node); ports and
 * addresses in pw_wire_addr are in network order, as in sockaddr_in.
 */
#ifndef PODWIRE_WIRE_H
#define PODWIRE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define PW_WIRE_MAGIC 0x31525750u /* "PWR1" in memory order */
#define PW_WIRE_VERSION 1u
#define PW_WIRE_MAX 65536u    /* largest packet either side accepts */
#define PW_WIRE_MAX_FDS 2u
#define PW_WIRE_MAX_PREFIXES 64u

enum pw_wire_type {
	/* requests, library -> router */
	PW_MSG_HELLO = 1,    /* body hello; reply HELLO_OK */
	PW_MSG_LISTEN = 2,   /* body listen, fd: the listening socket; reply OK or ERR */
	PW_MSG_UNLISTEN = 3, /* body listen, fd: the listening socket; reply OK or ERR */
	PW_MSG_CONNECT = 4,  /* body connect, fd: the application's socket; reply CONN or ERR */
	PW_MSG_CLAIM = 5,    /* no body, fd: the accepted socket; reply CONN or ERR */
	PW_MSG_STATUS = 6,   /* no body; reply STATUS */
	PW_MSG_REATTACH = 7, /* body reattach, fd: the channel's socket; reply CONN or ERR */
	/* replies, router -> library; seq echoes the request's */
	PW_MSG_OK = 64,       /* no body */
	PW_MSG_ERR = 65,      /* body err */
	PW_MSG_HELLO_OK = 66, /* body hello_ok + prefixes */
	PW_MSG_CONN = 67,     /* body conn, fds: memfd, socket end */
	PW_MSG_STATUS_OK = 68 /* body status + entries */
};

struct pw_wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t len; /* header + body, bytes */
	uint32_t seq;
};

/* An IPv4 or IPv6 endpoint. */
struct pw_wire_addr {
	uint16_t family; /* AF_INET or AF_INET6 */
	uint16_t port;   /* network order */
	uint32_t scope_id;
	uint8_t addr[16]; /* IPv4 in the first 4 bytes, network order */
};

struct pw_wire_prefix {
	uint16_t family;
	uint8_t len; /* prefix length in bits */
	uint8_t pad;
	uint8_t addr[16];
};

struct pw_wire_hello {
	uint32_t flags;
	uint32_t reserved;
};

struct pw_wire_hello_ok {
	uint32_t node_version;
	uint32_t count; /* pw_wire_prefix entries that follow */
};

struct pw_wire_listen {
	struct pw_wire_addr addr; /* as bound */
	int32_t backlog;
	uint32_t reserved;
};

struct pw_wire_connect {
	struct pw_wire_addr local; /* the address the socket will have (bound) */
	struct pw_wire_addr peer;  /* the destination */
};

/* After exec: the program holds the channel's socket (proof) and asks for
 * the rest of the connection again. */
struct pw_wire_reattach {
	uint64_t id;
};

struct pw_wire_err {
	int32_t err; /* positive errno */
	uint32_t reserved;
};

struct pw_wire_conn {
	uint64_t id;
	struct pw_wire_addr local; /* what getsockname() returns */
	struct pw_wire_addr peer;  /* what getpeername() returns */
	uint32_t side;             /* channel side of the receiver */
	uint32_t reserved;
};

struct pw_wire_status {
	uint32_t count; /* pw_wire_status_entry entries that follow */
	uint32_t total; /* entries the router has (count may be fewer) */
};

struct pw_wire_status_entry {
	uint64_t id;
	struct pw_wire_addr addr[2]; /* side 0 (connecting) and side 1 (accepting) */
	int32_t pid[2];              /* 0 while unclaimed */
	uint64_t bytes[2];           /* written by side 0, by side 1 */
	uint32_t state;              /* PW_CONN_* */
	uint32_t reserved;
};

enum pw_conn_state {
	PW_CONN_PENDING = 1, /* the server has not accepted yet */
	PW_CONN_OPEN = 2,
	PW_CONN_HALF = 3,   /* one side shut down writing */
	PW_CONN_CLOSED = 4, /* both sides closed; kept until reaped */
};

_Static_assert(sizeof(struct pw_wire_hdr) == 16, "hdr");
_Static_assert(sizeof(struct pw_wire_addr) == 24, "addr");
_Static_assert(sizeof(struct pw_wire_prefix) == 20, "prefix");
_Static_assert(sizeof(struct pw_wire_hello) == 8, "hello");
_Static_assert(sizeof(struct pw_wire_hello_ok) == 8, "hello_ok");
_Static_assert(sizeof(struct pw_wire_listen) == 32, "listen");
_Static_assert(sizeof(struct pw_wire_connect) == 48, "connect");
_Static_assert(sizeof(struct pw_wire_err) == 8, "err");
_Static_assert(sizeof(struct pw_wire_reattach) == 8, "reattach");
_Static_assert(sizeof(struct pw_wire_conn) == 64, "conn");
_Static_assert(sizeof(struct pw_wire_status) == 8, "status");
_Static_assert(sizeof(struct pw_wire_status_entry) == 88, "status entry");
_Static_assert(offsetof(struct pw_wire_conn, local) == 8, "conn.local");
_Static_assert(offsetof(struct pw_wire_status_entry, bytes) == 64, "entry.bytes");
_Static_assert(sizeof(struct pw_wire_hdr) + sizeof(struct pw_wire_status) +
			       700 * sizeof(struct pw_wire_status_entry) <=
		       PW_WIRE_MAX,
	       "a status page fits a packet");

#endif /* PODWIRE_WIRE_H */
