/* SPDX-License-Identifier: MIT */
/* libpodwire.so internals, shared by its files (see docs/PRELOAD.md). */
#ifndef PW_PRELOAD_H
#define PW_PRELOAD_H

/* Define fcntl and sendfile under their own names; the 64-bit-offset names
 * that callers built with _FILE_OFFSET_BITS=64 use are aliases (fdops.c,
 * data.c). Every file of the library includes this header first. */
#undef _FILE_OFFSET_BITS

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <podwire/chan.h>
#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/log.h"
#include "../common/sys.h"
#include "../common/util.h"
#include "proto.h"
#include "xport.h"

/*
 * The glibc build loads into programs of older glibc too (a pod's image may
 * be Ubuntu 20.04 or UBI 8): bind the symbols that glibc 2.34 moved into
 * libc.so.6 to their first versions, which libpthread.so.0 and libdl.so.2
 * (linked, see meson.build) provide there and libc.so.6 still does here.
 * tests/preload/test-preload-footprint.sh holds every version at 2.17 or older.
 */
#if defined(__GLIBC__) && defined(__x86_64__)
__asm__(".symver pthread_once,pthread_once@GLIBC_2.2.5");
__asm__(".symver pthread_kill,pthread_kill@GLIBC_2.2.5");
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@GLIBC_2.2.5");
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#endif

/* The library is built for glibc and for musl (see docs/PRELOAD.md); what one
 * of them lacks is declared here. */
#ifndef SIOCOUTQ
#define SIOCOUTQ TIOCOUTQ
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1u << 2)
#endif
#ifndef __GLIBC__
int close_range(unsigned first, unsigned last, int flags);
void closefrom(int lowfd);
int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
		 const sigset_t *mask);
#endif

/* The libc functions the library defines: the only symbols it exports
 * (libpodwire.map). */
#define PW_EXPORT __attribute__((visibility("default")))

/* ioctl's request is an unsigned long in glibc, an int in musl. */
#ifdef __GLIBC__
typedef unsigned long pw_ioctl_req_t;
#else
typedef int pw_ioctl_req_t;
#endif

/* The libc functions we interpose, resolved with dlsym(RTLD_NEXT). */
struct pw_real_fns {
	int (*socket)(int, int, int);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*close)(int);
	int (*shutdown)(int, int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*readv)(int, const struct iovec *, int);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	ssize_t (*sendfile)(int, int, off_t *, size_t);
	int (*dup)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*fcntl)(int, int, ...);
	int (*ioctl)(int, pw_ioctl_req_t, ...);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*poll)(struct pollfd *, nfds_t, int);
	int (*ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
	int (*select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
	int (*pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
		       const sigset_t *);
	int (*epoll_ctl)(int, int, int, struct epoll_event *);
	int (*epoll_wait)(int, struct epoll_event *, int, int);
	int (*epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
	int (*epoll_pwait2)(int, struct epoll_event *, int, const struct timespec *,
			    const sigset_t *);
	/* Not in every libc (NULL then): */
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*prctl)(int, ...);
	long (*syscall)(long, ...);
	FILE *(*fdopen)(int, const char *);
};

extern struct pw_real_fns pw_real;

struct pw_cfg {
	bool disabled;
	bool restricted; /* the process entered seccomp mode: we stepped aside */
	bool prefix_from_env;
	const char *socket_path;
	uint32_t spin_ns;
	int log_fd;
	bool no_reuse; /* PODWIRE_REUSE=0: every connection makes its channel */
};

extern struct pw_cfg pw_cfg;

/* The prefix table (prefix.c): which destinations are accelerated. */
struct pw_prefixes {
	unsigned n;
	struct pw_wire_prefix p[PW_WIRE_MAX_PREFIXES];
};

/* Parse PODWIRE_PREFIX's form, "a.b.c.d[/len]" separated by commas or
 * spaces, strictly. Errors (*@ret_table untouched): -EINVAL or -EAFNOSUPPORT
 * (*@ret_bad points at the item), -E2BIG more than PW_WIRE_MAX_PREFIXES. */
int pw_prefixes_parse(const char *s, struct pw_prefixes *ret_table, const char **ret_bad);
/* The IPv4 prefixes of a HELLO_OK reply (others are skipped). */
void pw_prefixes_from_wire(const struct pw_msg *m, struct pw_prefixes *ret_table);
bool pw_prefixes_has(const struct pw_prefixes *t, const struct sockaddr_in *a);
/* Make @t the table in use (copied). Errors: -ENOMEM (the old one stays). */
int pw_prefixes_publish(const struct pw_prefixes *t);
/* Is @a in the table in use? (false while there is none) */
bool pw_in_prefixes(const struct sockaddr_in *a);

/* Control connection to podwired (ctl.c): send a request with @fds, wait for
 * the reply's fixed body (no list entries) and up to two fds. Returns the
 * number of fds received, or -errno. */
int pw_ctl_call(uint16_t type, const void *body, size_t len, const int *fds, unsigned nfds,
		struct pw_msg *ret, int ret_fds[PW_WIRE_MAX_FDS]);
bool pw_ctl_prefixes_known(void);
/* Is @creator (a socket's SO_PEERCRED pid) the router, as this process sees
 * its pid? Connects to the router if need be. */
bool pw_ctl_made_by_router(pid_t creator);
void pw_ctl_atfork_child(void);
/* A new connection to the router (SOCK_SEQPACKET, close-on-exec, out of the
 * low fd numbers; @flags: SOCK_NONBLOCK or 0). Errors: of socket(2) and
 * connect(2); -ENAMETOOLONG. */
int pw_ctl_dial(int flags);
/* Is the router there (connecting if need be)? */
bool pw_ctl_reachable(void);
/* Close the control connection for good (seccomp: no more requests). */
void pw_ctl_close(void);

/* ---- start-up (init.c) ---- */

extern const char *pw_single_flag; /* glibc's __libc_single_threaded, if any */
extern pthread_once_t pw_once;
void pw_init_once(void);

/* Every interposed call starts here: the real functions are resolved and the
 * environment read once, whoever calls first. */
static inline void pw_ensure(void)
{
	if (__builtin_expect(!pw_real.close, 0))
		pthread_once(&pw_once, pw_init_once);
}

static inline int pw_fail(int err)
{
	errno = err;
	return -1;
}

/* ---- socket state (sock.c) ---- */

/* CONN: a connection whose bytes a transport carries (xport.h); LISTEN: a
 * registered listener; VIRT: a connection over a kernel_io transport (a
 * kernel TCP socket to another node's pod), whose addresses are the pods'
 * (virtual) ones. The kind follows from the transport (pw_conn_new). */
enum pw_kind { PW_K_CONN = 1, PW_K_LISTEN = 2, PW_K_VIRT = 3 };

struct pw_sock {
	enum pw_kind kind;
	uint64_t id;			/* the router's connection id */
	_Atomic int refs;		/* fd numbers of this process that refer to it */
	const struct pw_xport_ops *ops; /* connections: the transport */
	void *xp;			/* and its state */
	struct sockaddr_in local, peer; /* IPv4, always */
	int family; /* the application's socket: AF_INET6 shows them v4-mapped */
	_Atomic bool nonblock;
	_Atomic bool shared; /* a fork copied it: other processes may hold it */
	/* Shared: pw_flags_gen when nonblock was last read from the kernel; a
	 * change by any process of the tree moves the generation on. */
	_Atomic uint32_t nb_gen;
	int rcvtimeo_ms, sndtimeo_ms;
	bool rd_shut, wr_shut;	 /* shutdown() by this process, as the kernel keeps it */
	bool reset_reported;	 /* ECONNRESET was returned once: now the socket is
				    closed (reads 0, writes EPIPE), as on TCP */
	bool connect_unreported; /* non-blocking connect said EINPROGRESS: the next
				    connect() reports success, later ones EISCONN */
	bool adapt; /* made by connect(): its last close tells adapt.c how much it carried */
	/* Data calls that moved bytes, and the bytes, by direction (0 read,
	 * 1 write): each only under that direction's serialisation (data.c). */
	uint64_t io_calls[2], io_bytes[2];
	struct pw_opt *opts; /* options set on the socket, read back as set */
	unsigned nopts;
	_Atomic int lq; /* LISTEN: the accept queue the router gave (accept.c), or -1 */
	/* LISTEN, with federation: its socket on the node's underlay, where
	 * other nodes' pooled connections wait until started (pool.c), and
	 * the key their tokens are sealed with; else -1. */
	_Atomic int ul;
	uint8_t ulkey[PW_POOL_KEY_LEN];
	/* Reuse (reuse.c). LISTEN: pq, this process's epoll fd of the
	 * accepting ends it parked for this listener (beside the queue
	 * wherever the application waits), or -1; lserial, this process's
	 * number for the listener; park_ok, parking for it is allowed. CONN:
	 * reusable, it may park at its last close (made here by connect or
	 * accept, never duplicated); an accepted one's listener, lfd and
	 * lserial. */
	_Atomic int pq;
	_Atomic unsigned acc_turn; /* LISTEN: whose connection accept() looks at first */
	_Atomic bool park_ok;
	_Atomic bool reusable;
	uint64_t lserial;
	int lfd;
	/* LISTEN: what an accepted connection inherits (options, timeouts),
	 * read once; under rlock; setsockopt on the listener makes it stale. */
	struct pw_opt *acc_opts;
	unsigned acc_nopts;
	int acc_rcvtimeo_ms, acc_sndtimeo_ms;
	_Atomic bool acc_ok;
	pthread_mutex_t rlock, wlock;
};

/* One socket option's value, as the kernel normalised it. */
struct pw_opt {
	int level, name;
	socklen_t len;
	unsigned char val[32];
};

struct pw_carried_opt {
	int level, name;
};
/* Options carried over from the kernel socket an accelerated fd replaces. */
extern const struct pw_carried_opt pw_carried_opts[20];

/* O_NONBLOCK of sockets shared after fork: see sock.c. */
#define PW_GEN_NONE UINT32_MAX	/* no generation page: always ask */
#define PW_GEN_ASK  0x80000000u /* a socket's mark that no generation equals */
extern _Atomic uint32_t *pw_flags_gen;

static inline uint32_t pw_flags_gen_now(void)
{
	return pw_flags_gen ? atomic_load_explicit(pw_flags_gen, memory_order_acquire) & 0x7fffffffu
			    : PW_GEN_NONE;
}

void pw_flags_gen_init(void);

/* O_NONBLOCK of @s, whose kernel fd is @fd. It lives in the open file
 * description: after a fork another process may change it. Every process of
 * the tree moves pw_flags_gen on when it does, so the kernel is asked only
 * then (or always, for a socket inherited across exec, whose holders share
 * no generation). */
static inline bool pw_sock_nonblock_of(struct pw_sock *s, int fd)
{
	if (__builtin_expect(atomic_load_explicit(&s->shared, memory_order_relaxed), 0) &&
	    !pw_cfg.restricted /* no fcntl under seccomp: the last known flag */) {
		uint32_t gen = pw_flags_gen_now();
		if (gen == PW_GEN_NONE ||
		    gen != atomic_load_explicit(&s->nb_gen, memory_order_relaxed)) {
			int fl = pw_real.fcntl(fd, F_GETFL);
			atomic_store_explicit(&s->nonblock, fl >= 0 && (fl & O_NONBLOCK),
					      memory_order_relaxed);
			atomic_store_explicit(&s->nb_gen, gen, memory_order_relaxed);
		}
	}
	return atomic_load_explicit(&s->nonblock, memory_order_relaxed);
}
struct pw_sock *pw_sock_new(enum pw_kind kind);
/*
 * The spare (sock.c): the socket a pooled connect() replaces, kept for the
 * next socket() rather than destroyed now and made anew then. hold: a copy
 * of fresh socket @fd (options @set) out of the low numbers, or -1 if it
 * cannot be one; put: @sp, once @fd is the pooled connection, becomes the
 * spare (its options back to their defaults), or is closed; take: the
 * spare as socket(@domain, @type, @protocol) would make it, or -1; forget:
 * the application closed number @fd, or those from @first to @last
 * (nothing to close).
 */
int pw_spare_hold(int fd, uint32_t set);
void pw_spare_put(int sp, int family, uint32_t set, bool nonblock);
int pw_spare_take(int domain, int type, int protocol);
void pw_spare_forget(int fd);
void pw_spare_forget_range(unsigned first, unsigned last);
void pw_spare_atfork_child(void);
void pw_sock_set_nonblock(struct pw_sock *s, bool on);
int pw_tcp_family(int fd);
int pw_sockname4(int fd, struct sockaddr_in *ret_addr);
int pw_timeo_ms(int fd, int opt);
void pw_copy_raw(const void *a, socklen_t alen, struct sockaddr *addr, socklen_t *len);
void pw_copy_addr(const struct sockaddr_in *sin, int family, struct sockaddr *addr, socklen_t *len);

/* accelerated connections alive: scans are skipped when 0 */
extern _Atomic unsigned pw_nconns;
/* registered listeners: fork must mark them shared */
extern _Atomic unsigned pw_nlisten;

/* ---- the fd table (fdtab.c) ---- */

#define PW_PAGE_BITS 10
#define PW_PAGES     1024 /* 1M fds */
extern _Atomic(_Atomic(struct pw_sock *) *) pw_fdtab[PW_PAGES];

/* The state behind @fd, or NULL. Lock-free: the fast path of every call. */
static inline struct pw_sock *pw_fdtab_get(int fd)
{
	if (fd < 0 || (unsigned)fd >= PW_PAGES << PW_PAGE_BITS)
		return NULL;
	/* Pairs with the release that published the page in pw_slot(). */
	_Atomic(struct pw_sock *) *page =
		atomic_load_explicit(&pw_fdtab[(unsigned)fd >> PW_PAGE_BITS], memory_order_acquire);
	/* Pairs with the release in pw_fdtab_put(): the state is seen whole. */
	return page ? atomic_load_explicit(&page[fd & ((1 << PW_PAGE_BITS) - 1)],
					   memory_order_acquire)
		    : NULL;
}

/* @fd is (@on) a TCP socket fresh from socket(2), or no longer (fdtab.c);
 * setsockopt notes the carried options set on a fresh one. pw_fresh_get:
 * fresh, and which carried options (bit i: pw_carried_opts[i]) were set. */
void pw_fresh_set(int fd, bool on);
/* A TCP socket of @family fresh from socket(2) (@type, with its
 * SOCK_NONBLOCK and SOCK_CLOEXEC); the family of a fresh one, 0 if @fd is
 * not. note_flag: its FD_CLOEXEC (@cloexec) or O_NONBLOCK is now @on.
 * flags: a fresh one's F_GETFL (O_RDWR and O_NONBLOCK) and F_GETFD, as the
 * kernel would answer; false if not known. */
void pw_fresh_set_tcp(int fd, int family, int type);
void pw_fresh_note_flag(int fd, bool cloexec, bool on);
bool pw_fresh_flags(int fd, int *ret_fl, int *ret_fdfl);
/* After fork: the other process may change O_NONBLOCK of a shared socket
 * unseen, so no fresh socket's flags are known any more. */
void pw_fresh_forget_flags(void);
int pw_fresh_family(int fd);
void pw_fresh_note_opt(int fd, unsigned carried_idx);
bool pw_fresh_get(int fd, uint32_t *ret_set);
/* A fresh @fd changed in a way its word does not say (note_odd); plain:
 * fresh, with no such change since socket(2) (fdtab.c). */
void pw_fresh_note_odd(int fd);
bool pw_fresh_plain(int fd);
void pw_fresh_clear_range(unsigned first, unsigned last);
/* @fd is a connection connect() left to the kernel, for adapt.c's @slot
 * (1..PW_ADAPT_SLOTS, or PW_ADAPT_FALLBACK: the router could not take it),
 * until any of the above forgets the number. get: the slot, or 0; take: the
 * same, forgetting it. */
void pw_fresh_mark_adapt(int fd, unsigned slot);
unsigned pw_fresh_adapt_get(int fd);
unsigned pw_fresh_take_adapt(int fd);

/* ---- the path of a new connection (adapt.c) ---- */

/* After this many short connections in a row to a destination, the next
 * goes over the kernel. A connection is long from PW_ADAPT_LONG_XFERS data
 * calls (or kernel data segments), or PW_ADAPT_LONG_BYTES bytes, both
 * directions together: three request/response exchanges, where shared
 * memory starts to win (podwire-bench connect --exchanges, BENCHMARKS.md). */
#define PW_ADAPT_SLOTS	    64u	 /* per process; a power of two */
#define PW_ADAPT_FALLBACK   127u /* a mark with no slot: see pw_fresh_mark_adapt() */
#define PW_ADAPT_RUN	    4u
#define PW_ADAPT_LONG_XFERS 6u
#define PW_ADAPT_LONG_BYTES (256ull * 1024)
#define PW_ADAPT_NONE_MS    1000u /* how long "no podwire listener there" holds */

void pw_adapt_enable(bool on);
/* Should a connection to @dst go over the kernel? Its slot (1..PW_ADAPT_SLOTS) if so,
 * for pw_adapt_note_slot() when it ends; PW_ADAPT_FALLBACK if the router found no
 * listener there lately (nothing to count); 0 for shared memory. */
unsigned pw_adapt_kernel(const struct sockaddr_in *dst);
bool pw_adapt_is_long(uint64_t xfers, uint64_t bytes);
/* The router has no podwire listener for @dst: the kernel's for @ttl_ms. */
void pw_adapt_note_none(const struct sockaddr_in *dst, uint32_t ttl_ms);
/* A connection to @dst ended, long or not. */
void pw_adapt_note(const struct sockaddr_in *dst, bool long_conn);
void pw_adapt_note_slot(unsigned slot, bool long_conn);
/* Closing @fd, marked by pw_fresh_mark_adapt() for @slot (conn.c). */
void pw_adapt_kernel_closing(int fd, unsigned slot);
/* The last close of @s, an accelerated connection (conn.c). */
void pw_adapt_conn_closing(int fd, struct pw_sock *s);

/* An accelerated connection's state behind @fd (a channel), or NULL. */
static inline struct pw_sock *pw_conn_of(int fd)
{
	if (!atomic_load_explicit(&pw_nconns, memory_order_relaxed))
		return NULL;
	struct pw_sock *s = pw_fdtab_get(fd);
	return s && s->kind == PW_K_CONN ? s : NULL;
}

void pw_fdtab_put(int fd, struct pw_sock *v);
struct pw_sock *pw_fdtab_take(int fd);
void pw_fdtab_each(bool (*fn)(int fd, struct pw_sock *s, void *arg), void *arg);
void pw_fdtab_each_in(unsigned first, unsigned last,
		      bool (*fn)(int fd, struct pw_sock *s, void *arg), void *arg);
int pw_find_other_fd(const struct pw_sock *s, int skip);

/* ---- socket options (opts.c) ---- */

struct pw_opt *pw_opt_find(struct pw_sock *s, int level, int name);
/* The index of (@level, @name) in pw_carried_opts, or -1: not carried. */
int pw_opt_carried(int level, int name);
int pw_pristine(int family);
void pw_opts_carry(struct pw_sock *s, int fd);
/* Only the carried options of @fd in @set (bit i: pw_carried_opts[i]). */
void pw_opts_carry_set(struct pw_sock *s, int fd, uint32_t set);
/* Set the carried options of @fd in @set back to their defaults: true, or
 * false if one is not a flag (whose default is off) or cannot be. */
bool pw_opts_reset_flags(int fd, uint32_t set);
/* Are the carried options in @set all flags? */
bool pw_opts_flags_only(uint32_t set);
/* Call @fn for each carried option of @fd in @set (bit i: pw_carried_opts[i]),
 * with its value. */
void pw_opts_set_each(int fd, uint32_t set,
		      void (*fn)(int level, int name, void *val, socklen_t len, void *arg),
		      void *arg);
void pw_opts_changed_each(int fd, int family,
			  void (*fn)(int level, int name, void *val, socklen_t len, void *arg),
			  void *arg);

/* ---- becoming accelerated (conn.c, accept.c), closing and dup (fdops.c) ---- */

struct pw_sock *pw_conn_new(const struct pw_xport_ops *ops, const struct pw_wire_conn *body);
struct pw_sock *pw_conn_new_shm(int memfd, int sock, const struct pw_wire_conn *body, int opts_fd,
				bool nonblock, bool handed);
void pw_conn_publish(int fd, struct pw_sock *s);
int pw_adopt(int fd, int memfd, int sock, const struct pw_wire_conn *body, bool handed);
int pw_adopt_parked(int fd, int sock, void *xp, const struct pw_wire_conn *body, uint32_t set);
/*
 * Put @sock, a kernel socket to another node, under the application's @fd,
 * in two steps. pw_adopt_tcp_prep(): @sock takes @fd's O_NONBLOCK and the
 * options set on it (@sock_nb: whether @sock is O_NONBLOCK now), and @fd's
 * F_GETFL and F_GETFD are in *@ret_fl and *@ret_fdfl; -1 on failure
 * (nothing closed). Then
 * pw_adopt_tcp_install(): @sock goes under @fd with epoll registrations;
 * the addresses it shows stay the pods' (@body). On failure @fd is
 * untouched and @sock closed.
 */
int pw_adopt_tcp_prep(int fd, int sock, bool sock_nb, int *ret_fl, int *ret_fdfl);
int pw_adopt_tcp_install(int fd, int sock, const struct pw_wire_conn *body, int fl, int fdfl);
/* A connection from another node (@sock, addresses in @body) accepted on
 * @lfd (@ls): the new fd, with the listener's options and what accept4()
 * @flags ask; -1 (closed). @from_ul: accepted from @ls's socket on the
 * underlay, with the O_NONBLOCK asked, and the options it inherited. */
int pw_accept_tcp(int lfd, struct pw_sock *ls, int sock, const struct pw_wire_conn *body, int flags,
		  bool from_ul);

/* ---- pools of connections to other nodes (pool.c) ---- */

/* Ask the router for pooled connections to @dst (another node's pod), as a
 * socket of @family sees it, unless enough are there or on the way; unless
 * @start, only for a destination that has a pool already. Never waits. */
void pw_pool_fill(const struct sockaddr_in *dst, int family, bool start);
/* A pooled connection to @dst was closed by its server before it was
 * started (it could not keep it, or its listener went): no asking for a
 * while, rather than dialling for nothing. */
void pw_pool_given_up(const struct sockaddr_in *dst, int family);
/* Take in what the router dialled since, before a connect() to @dst: if
 * answers are due and @dst's pool is low. */
void pw_pool_collect(const struct sockaddr_in *dst, int family);
/* Start pooled connection @sock for a connect(), writing its @token (in the
 * SYN): 0, connected unless @nonblock, else on the way; -1 if it cannot be
 * (the caller closes it and connects another way). */
int pw_pool_start(int sock, const struct pw_wire_pool_token *token, bool nonblock);
/* A pooled connection from another node, started, on listener @ls's socket
 * on the underlay: the new fd, with what accept4() @flags ask; -EAGAIN if
 * none is there. One whose token is not good is closed. */
int pw_pool_accept(int lfd, struct pw_sock *ls, int flags);
void pw_pool_atfork_child(void);

/* ---- reuse of parked channels (reuse.c) ---- */

/* connect(): parked channels there may be (pw_reuse_connect_ok), then
 * claim one for the application's @fd (0) or find none free (-1). */
bool pw_reuse_connect_ok(int fd, int family);
int pw_reuse_connect(int fd, const struct sockaddr_in *dst, int family);
/* Channels to @dst are parked, none free now, and there is room for more:
 * a new one (the router's) is worth its setup, as it will be reused. */
bool pw_reuse_growing(const struct sockaddr_in *dst, int family);
bool pw_reuse_may_park(const struct pw_sock *s);
/* Pooled connections to @dst waiting in this process (pool.c). */
unsigned pw_reuse_pooled(const struct sockaddr_in *dst, int family);
/* Keep pooled connection @sock (addresses @conn, started by @token) by
 * destination, until a connect() starts it. Takes @sock: 0, or -1 (not
 * kept, closed). */
int pw_reuse_pool_put(int sock, const struct pw_wire_conn *conn,
		      const struct pw_wire_pool_token *token);
int pw_reuse_park(int fd, struct pw_sock *s);
int pw_reuse_accept(int lfd, struct pw_sock *ls, int flags);
int pw_accept_parked(int lfd, struct pw_sock *ls, int sock, void *xp,
		     const struct pw_wire_conn *body, int flags);
int pw_reuse_listen(int lfd, struct pw_sock *ls);
int pw_reuse_ready_fd(struct pw_sock *ls);
void pw_reuse_listener_gone(struct pw_sock *ls);
void pw_reuse_atfork_child(void);
void pw_reuse_drop_all(void);
/* The process ran out of fds (EMFILE): drop every parked end; true if there
 * were any, and the call is worth a second try. */
bool pw_reuse_release_fds(void);
/* The accept queue of listener @lfd (@ls) is done: out of every epoll set,
 * closed; the listener is the kernel's alone. */
void pw_lq_close(int lfd, struct pw_sock *ls);
/* The accept queue of listener @lfd hung up (the router is gone): true if
 * a connection is still in it; if not, the queue is closed (and its hang-up
 * must not wake the application). */
bool pw_lq_hup_check(int lfd);
/* An option of listener @ls changed: accepted connections read them again. */
void pw_listener_opts_stale(struct pw_sock *ls);
/* The application set an option on listener @ls (successfully): its socket
 * on the underlay takes it too, if its connections inherit it. */
void pw_listener_opts_mirror(struct pw_sock *ls, int level, int name, const void *val,
			     socklen_t len);
int pw_dup_track(int oldfd, int newfd);

/* ---- data (data.c), handing connections on (rights.c) ---- */

ssize_t pw_sock_readv(struct pw_sock *s, const struct iovec *iov, int cnt, int flags);
ssize_t pw_sock_writev(struct pw_sock *s, const struct iovec *iov, int cnt, int flags);
int pw_relay_stream(int fd, struct pw_sock *s, uint32_t flags);

/* ---- readiness (poll.c, epoll.c, epoll_shadow.c) ---- */

/* While accelerated fds keep a poll or epoll set busy, its kernel fds are
 * looked at this often, not at a syscall per call (a new connection waits at
 * most this long to be seen). */
#define PW_KERNEL_EVERY_NS 20000u

/* A wait of @timeout_ns spins first, unless it may not wait at all or the
 * process is under seccomp (spinning yields the CPU, a call of ours). */
static inline void pw_wait_spin_start(struct pw_spin *sp, int64_t timeout_ns)
{
	pw_spin_start(sp, timeout_ns == 0 || pw_cfg.restricted ? 0 : pw_cfg.spin_ns);
}

short pw_sock_revents(struct pw_sock *s, short events);
bool pw_prepare(struct pw_sock *s, short events);
uint64_t pw_ts_ns(const struct timespec *ts);
int pw_ms_of(int64_t ns);

struct pw_ep_reg {
	int fd;
	uint32_t events;
	epoll_data_t data;
	uint32_t mark;	   /* EPOLLET: the transport's rx_mark() when last reported */
	uint32_t out_mark; /* EPOLLET: tx_mark() when EPOLLOUT was last reported */
	bool out_seen;	   /* EPOLLET: EPOLLOUT reported since registration */
	bool disabled;	   /* EPOLLONESHOT fired */
	bool readd;	   /* pw_ep_swap_file: registered on the old file */
};

struct pw_ep {
	pthread_mutex_t lock;
	uint64_t kernel_ns; /* when the kernel's part of the set was last polled */
	unsigned next;	    /* where the next scan starts: ready fds take turns */
	struct pw_ep_reg *regs;
	unsigned n, cap;
	/* Threads in a wait on this set. They armed only the fds registered
	 * before they began: a registration made meanwhile arms itself and,
	 * ready already, wakes them through @kick (an eventfd in the kernel's
	 * set, made at the first need; -1 before). Closed under them (rping
	 * closes its rdma_cm channel so), the shadow is freed by the last
	 * (@orphan). */
	unsigned users;
	int kick;
	bool orphan;
};

struct pw_ep *pw_ep_get(int epfd, bool create);
void pw_ep_record(int epfd, int op, int fd, const struct epoll_event *ev);
void pw_ep_swap_file(int fd, bool before);
void pw_ep_forget_everywhere(int fd);
void pw_ep_leave_everywhere(int fd);
bool pw_ep_has_fd_unlocked(int fd);
/* Listener @lfd's accept queue @q joins (@add) or leaves every epoll set
 * that holds @lfd, with its events and data. */
/* Register (or change, or remove: @op) @q, an fd that stands beside a
 * listener, in @epfd with the listener's event @ev; EPOLLEXCLUSIVE only if
 * @exclusive_ok (an epoll fd takes none). */
void pw_ep_ctl_beside(int epfd, int op, int q, const struct epoll_event *ev, bool exclusive_ok);
void pw_ep_queue(int lfd, int q, bool add, bool exclusive_ok);
void pw_ep_discard(int epfd);
/* A wait on @e ends: the last one frees it if its epoll fd was closed. Takes
 * e->lock held, releases it. */
void pw_ep_unuse(struct pw_ep *e);
/* The kernel closed [@first, @last]: kicks among them are gone. */
void pw_ep_kicks_closed(unsigned first, unsigned last);

/* ---- fork and exec (exec.c) ---- */

void pw_atfork_parent(void);
void pw_atfork_child(void);
void pw_take_over(void);

#endif /* PW_PRELOAD_H */
