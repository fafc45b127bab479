// SPDX-License-Identifier: MIT
/*
 * libpodwire.so: interposes the libc socket calls of an unmodified program.
 * Connections to accelerated destinations on this node are set up through
 * podwired and then carried by a pw_chan; everything else goes to the kernel.
 * See docs/PRELOAD.md.
 *
 * An accelerated fd is a real kernel fd: the channel's socketpair end, put on
 * the application's fd number with dup3(). The table below maps fd numbers
 * to the state behind them (struct pw_sock, shared by dup'd fds).
 */
/* Define fcntl and sendfile under their own names; the 64-bit-offset names
 * that callers built with _FILE_OFFSET_BITS=64 use are aliases below. */
#undef _FILE_OFFSET_BITS
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#include "../common/addr.h"
#include "../common/sys.h"
#include "../common/util.h"
#include "preload.h"

/*
 * The glibc build loads into programs of older glibc too (a pod's image may
 * be Ubuntu 20.04 or UBI 8): bind the symbols that glibc 2.34 moved into
 * libc.so.6 to their first versions, which libpthread.so.0 and libdl.so.2
 * (linked, see meson.build) provide there and libc.so.6 still does here.
 * tests/test-preload-footprint.sh holds every version at 2.17 or older.
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

#define PW_EXPORT __attribute__((visibility("default")))

struct pw_real_fns pw_real;
static const char *pw_single_flag;
struct pw_cfg pw_cfg = { .log_level = -1, .log_fd = 2 };

/* ---- logging ---- */

void pw_plog(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char buf[512];
	int saved = errno;
	va_list ap;

	/* Not under seccomp: the filter may not allow the write, and programs
	 * that sandbox themselves also cap file sizes (SIGXFSZ). */
	if (level > pw_cfg.log_level || pw_cfg.restricted)
		return;
	int n = snprintf(buf, sizeof(buf), "libpodwire[%d] %s: ", (int)getpid(), names[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (pw_real.write)
		pw_real.write(pw_cfg.log_fd, buf, (size_t)n);
	errno = saved;
}

/* ---- O_NONBLOCK of sockets shared after fork ---- */

/*
 * One word in memory shared by the whole process tree (MAP_SHARED, made
 * before any fork): a process that changes O_NONBLOCK of a shared socket
 * moves it on, and the others ask the kernel again (pw_sock_nonblock). A
 * socket's open file is shared across fork, its flag with it.
 */
#define PW_GEN_NONE UINT32_MAX	/* no generation page: always ask */
#define PW_GEN_ASK  0x80000000u /* a socket's mark that no generation equals */
static _Atomic uint32_t *pw_flags_gen;

static void pw_flags_gen_init(void)
{
	void *p = mmap(NULL, sizeof(*pw_flags_gen), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		pw_flags_gen = p;
}

static inline uint32_t pw_flags_gen_now(void)
{
	return pw_flags_gen ? atomic_load_explicit(pw_flags_gen, memory_order_acquire) & 0x7fffffffu
			    : PW_GEN_NONE;
}

/* ---- the fd table: two levels, pages allocated on first use, never freed ---- */

/* CONN: a channel; LISTEN: a registered listener; VIRT: a kernel TCP socket
 * to another node's pod, whose addresses are the pods' (virtual) ones. */
enum pw_kind { PW_K_CONN = 1, PW_K_LISTEN = 2, PW_K_VIRT = 3 };

struct pw_sock {
	enum pw_kind kind;
	uint64_t id;	  /* the router's connection id */
	_Atomic int refs; /* fd numbers of this process that refer to it */
	struct pw_chan *chan;
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
	struct pw_opt *opts;	 /* options set on the socket, read back as set */
	unsigned nopts;
	pthread_mutex_t rlock, wlock;
};

/* One socket option's value, as the kernel normalised it. */
struct pw_opt {
	int level, name;
	socklen_t len;
	unsigned char val[32];
};

/* Options carried over from the kernel socket an accelerated fd replaces
 * (set before connect, or inherited from the listener by accept). */
static const struct {
	int level, name;
} pw_carried_opts[] = {
	{ SOL_SOCKET, SO_KEEPALIVE },  { SOL_SOCKET, SO_RCVBUF },
	{ SOL_SOCKET, SO_SNDBUF },     { SOL_SOCKET, SO_LINGER },
	{ SOL_SOCKET, SO_PRIORITY },   { SOL_SOCKET, SO_REUSEADDR },
	{ SOL_SOCKET, SO_RCVLOWAT },   { IPPROTO_TCP, TCP_NODELAY },
	{ IPPROTO_TCP, TCP_KEEPIDLE }, { IPPROTO_TCP, TCP_KEEPINTVL },
	{ IPPROTO_TCP, TCP_KEEPCNT },  { IPPROTO_TCP, TCP_CORK },
	{ IPPROTO_TCP, TCP_QUICKACK }, { IPPROTO_TCP, TCP_USER_TIMEOUT },
	{ IPPROTO_IP, IP_TOS },	       { IPPROTO_IP, IP_TTL },
	{ SOL_SOCKET, SO_RCVTIMEO },   { SOL_SOCKET, SO_SNDTIMEO },
	{ IPPROTO_IPV6, IPV6_TCLASS }, { IPPROTO_IPV6, IPV6_V6ONLY },
};

#define PW_PAGE_BITS 10
#define PW_PAGES     1024 /* 1M fds */
static _Atomic(_Atomic(struct pw_sock *) *) pw_fdtab[PW_PAGES];
static pthread_mutex_t pw_tab_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic(struct pw_sock *) *pw_slot(int fd, bool create)
{
	if (fd < 0 || (unsigned)fd >= PW_PAGES << PW_PAGE_BITS)
		return NULL;
	unsigned p = (unsigned)fd >> PW_PAGE_BITS;
	_Atomic(struct pw_sock *) *page = atomic_load_explicit(&pw_fdtab[p], memory_order_acquire);

	if (!page && create) {
		pthread_mutex_lock(&pw_tab_lock);
		page = atomic_load_explicit(&pw_fdtab[p], memory_order_relaxed);
		if (!page) {
			page = calloc(1u << PW_PAGE_BITS, sizeof(*page));
			/* Pairs with the acquire above: the zeroed page is seen whole. */
			atomic_store_explicit(&pw_fdtab[p], page, memory_order_release);
		}
		pthread_mutex_unlock(&pw_tab_lock);
	}
	return page ? &page[fd & ((1 << PW_PAGE_BITS) - 1)] : NULL;
}

static inline struct pw_sock *pw_get(int fd)
{
	_Atomic(struct pw_sock *) *s = pw_slot(fd, false);

	return s ? atomic_load_explicit(s, memory_order_acquire) : NULL;
}

static void pw_put(int fd, struct pw_sock *v)
{
	_Atomic(struct pw_sock *) *s = pw_slot(fd, true);

	if (s)
		atomic_store_explicit(s, v, memory_order_release);
}

static struct pw_sock *pw_take(int fd)
{
	_Atomic(struct pw_sock *) *s = pw_slot(fd, false);

	return s ? atomic_exchange_explicit(s, NULL, memory_order_acq_rel) : NULL;
}

/* Call @fn for each fd the table knows, with its state, until it returns
 * false. Lock-free: entries may come and go meanwhile. */
static void pw_fdtab_each(bool (*fn)(int fd, struct pw_sock *s, void *arg), void *arg)
{
	for (unsigned p = 0; p < PW_PAGES; p++) {
		_Atomic(struct pw_sock *) *page =
			atomic_load_explicit(&pw_fdtab[p], memory_order_acquire);
		if (!page)
			continue;
		for (unsigned i = 0; i < (1u << PW_PAGE_BITS); i++) {
			struct pw_sock *s = atomic_load_explicit(&page[i], memory_order_relaxed);
			if (s && !fn((int)(p << PW_PAGE_BITS | i), s, arg))
				return;
		}
	}
}

struct pw_other_fd {
	const struct pw_sock *s;
	int skip, found;
};

static bool pw_other_fd_match(int fd, struct pw_sock *s, void *arg)
{
	struct pw_other_fd *o = arg;

	if (s != o->s || fd == o->skip)
		return true;
	o->found = fd;
	return false;
}

/* Any fd number of this process, other than @skip, that refers to @s. */
static int pw_find_other_fd(const struct pw_sock *s, int skip)
{
	struct pw_other_fd o = { .s = s, .skip = skip, .found = -1 };

	pw_fdtab_each(pw_other_fd_match, &o);
	return o.found;
}

/* ---- configuration ---- */

void pw_prefix_add(uint32_t net, unsigned len)
{
	if (pw_cfg.nprefixes >= PW_WIRE_MAX_PREFIXES || len > 32)
		return;
	uint32_t mask = len ? ~0u << (32 - len) : 0;
	pw_cfg.prefixes[pw_cfg.nprefixes].mask = mask;
	pw_cfg.prefixes[pw_cfg.nprefixes].net = net & mask;
	pw_cfg.nprefixes++;
}

static void pw_parse_prefix_env(const char *s)
{
	char *buf = strdup(s);
	char *save = NULL;

	if (!buf)
		return;
	for (char *tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		char *slash = strchr(tok, '/');
		unsigned len = 32;
		struct in_addr a;

		if (slash) {
			char *end;
			long l;

			*slash = '\0';
			errno = 0;
			l = strtol(slash + 1, &end, 10);
			/* A bad length must not widen what we accelerate
			 * ("/x" is not "/0"): the entry is dropped. */
			if (errno || end == slash + 1 || *end || l < 0 || l > 32) {
				pw_warn("PODWIRE_PREFIX: bad prefix length in %s/%s", tok,
					slash + 1);
				continue;
			}
			len = (unsigned)l;
		}
		if (inet_pton(AF_INET, tok, &a) == 1)
			pw_prefix_add(ntohl(a.s_addr), len);
		else
			pw_warn("PODWIRE_PREFIX: bad address %s", tok);
	}
	free(buf);
}

static void pw_resolve(void)
{
	pw_single_flag = dlsym(RTLD_DEFAULT, "__libc_single_threaded");
#define PW_SYM(name) pw_real.name = (__typeof__(pw_real.name))dlsym(RTLD_NEXT, #name)
	PW_SYM(socket);
	PW_SYM(connect);
	PW_SYM(listen);
	PW_SYM(accept);
	PW_SYM(accept4);
	PW_SYM(close);
	PW_SYM(shutdown);
	PW_SYM(read);
	PW_SYM(write);
	PW_SYM(readv);
	PW_SYM(writev);
	PW_SYM(recv);
	PW_SYM(send);
	PW_SYM(recvfrom);
	PW_SYM(sendto);
	PW_SYM(recvmsg);
	PW_SYM(sendmsg);
	PW_SYM(sendfile);
	PW_SYM(dup);
	PW_SYM(dup2);
	PW_SYM(dup3);
	pw_real.fcntl = (__typeof__(pw_real.fcntl))dlsym(RTLD_NEXT, "fcntl64");
	if (!pw_real.fcntl)
		PW_SYM(fcntl);
	PW_SYM(ioctl);
	PW_SYM(getsockname);
	PW_SYM(getpeername);
	PW_SYM(getsockopt);
	PW_SYM(setsockopt);
	PW_SYM(poll);
	PW_SYM(ppoll);
	PW_SYM(select);
	PW_SYM(pselect);
	PW_SYM(epoll_ctl);
	PW_SYM(epoll_wait);
	PW_SYM(epoll_pwait);
	PW_SYM(epoll_pwait2);
#undef PW_SYM
}

static void pw_atfork_child(void);
static void pw_atfork_parent(void);

static void pw_init_once(void)
{
	const char *v;

	pw_resolve();
	v = getenv("PODWIRE_LOG");
	if (v) {
		static const char *const names[] = { "error", "warn", "info", "debug" };
		for (int i = 0; i < 4; i++)
			if (!strcmp(v, names[i]))
				pw_cfg.log_level = i;
	}
	v = getenv("PODWIRE_LOG_FILE");
	if (v && pw_cfg.log_level >= 0) {
		int fd = open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			int high = pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 200);
			if (high >= 0) {
				pw_real.close(fd);
				fd = high;
			}
			pw_cfg.log_fd = fd;
		}
	}
	v = getenv("PODWIRE_DISABLE");
	pw_cfg.disabled = v && *v && strcmp(v, "0") != 0;
	/* Copied: programs like nginx overwrite their environment strings
	 * (setproctitle) after we have read them. */
	static char sock_path[108];
	v = getenv("PODWIRE_SOCKET");
	snprintf(sock_path, sizeof(sock_path), "%s", v && *v ? v : "/run/podwire/podwired.sock");
	pw_cfg.socket_path = sock_path;
	v = getenv("PODWIRE_PREFIX");
	if (v && *v) {
		pw_cfg.prefix_from_env = true;
		pw_parse_prefix_env(v);
	}
	v = getenv("PODWIRE_SPIN_NS");
	pw_cfg.spin_ns = v && *v ? (uint32_t)strtoul(v, NULL, 10) : PW_CHAN_SPIN_NS_DEFAULT;
	pthread_atfork(NULL, pw_atfork_parent, pw_atfork_child);
	pw_dbg("loaded; %s", pw_cfg.disabled ? "disabled" : "enabled");
}

static pthread_once_t pw_once = PTHREAD_ONCE_INIT;

static inline void pw_ensure(void)
{
	if (__builtin_expect(!pw_real.close, 0))
		pthread_once(&pw_once, pw_init_once);
}

static void pw_take_over(void);
static void pw_flags_gen_init(void);

__attribute__((constructor)) static void pw_ctor(void)
{
	pw_ensure();
	/* A process may start under a seccomp filter: every container runtime
	 * installs one. Those (and systemd's @system-service) allow the calls
	 * the library makes; see "Seccomp" in docs/PRELOAD.md. */
	pw_flags_gen_init();
	pw_take_over();
}

/* ---- helpers ---- */

static int pw_fail(int err)
{
	errno = err;
	return -1;
}

static bool pw_in_prefixes(const struct sockaddr_in *a)
{
	uint32_t ip = ntohl(a->sin_addr.s_addr);

	for (unsigned i = 0; i < pw_cfg.nprefixes; i++)
		if ((ip & pw_cfg.prefixes[i].mask) == pw_cfg.prefixes[i].net)
			return true;
	return false;
}

/*
 * The family of a TCP socket that speaks IPv4: AF_INET, or AF_INET6 when it
 * is dual-stack (not IPV6_V6ONLY: Java's sockets, Node's listeners); 0 for
 * anything else, which the kernel keeps.
 */
static int pw_tcp_family(int fd)
{
	int v, family;
	socklen_t len = sizeof(v);

	if (pw_real.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0 ||
	    (family != AF_INET && family != AF_INET6))
		return 0;
	len = sizeof(v);
	if (pw_real.getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0 || v != SOCK_STREAM)
		return 0;
	len = sizeof(v);
	if (pw_real.getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 || v != IPPROTO_TCP)
		return 0;
	len = sizeof(v);
	if (family == AF_INET6 &&
	    (pw_real.getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) < 0 || v))
		return 0;
	return family;
}

/* A socket's own address as IPv4 (see addr.h); -1 if it has none. */
static int pw_sockname4(int fd, struct sockaddr_in *ret)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (pw_real.getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return pw_addr_to4((struct sockaddr *)&ss, len, ret) < 0 ? -1 : 0;
}

/* Copy an address out the way the kernel does: truncate, report the full size. */
static void pw_copy_raw(const void *a, socklen_t alen, struct sockaddr *addr, socklen_t *len)
{
	if (!addr || !len)
		return;
	memcpy(addr, a, *len < alen ? *len : alen);
	*len = alen;
}

/* @sin as a socket of @family shows it (v4-mapped for AF_INET6). */
static void pw_copy_addr(const struct sockaddr_in *sin, int family, struct sockaddr *addr,
			 socklen_t *len)
{
	struct sockaddr_storage ss;
	socklen_t n = pw_addr_from4(sin, family, &ss);

	pw_copy_raw(&ss, n, addr, len);
}

static int pw_timeo_ms(int fd, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (pw_real.getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0)
		return 0;
	return (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

static struct pw_sock *pw_sock_new(enum pw_kind kind)
{
	struct pw_sock *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->kind = kind;
	s->family = AF_INET;
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->rlock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	return s;
}

/* This process changed @s's O_NONBLOCK (F_SETFL, FIONBIO). */
static void pw_sock_set_nonblock(struct pw_sock *s, bool on)
{
	atomic_store(&s->nonblock, on);
	if (atomic_load(&s->shared) && pw_flags_gen) {
		/* Pairs with the acquire in pw_flags_gen_now(): the others see
		 * the new generation, and ask the kernel for the flag. */
		uint32_t gen = atomic_fetch_add_explicit(pw_flags_gen, 1, memory_order_release) + 1;
		atomic_store(&s->nb_gen, gen & 0x7fffffffu);
	}
}

/* ---- the epoll shadow: what the application registered, per epoll fd ---- */

struct pw_ep_reg {
	int fd;
	uint32_t events;
	epoll_data_t data;
	uint32_t mark;	   /* EPOLLET: pw_chan_rx_mark() when last reported */
	uint32_t out_mark; /* EPOLLET: pw_chan_tx_mark() when EPOLLOUT was last reported */
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
};

static _Atomic(struct pw_ep *) pw_eptab[65536];

/* While accelerated fds keep a poll or epoll set busy, its kernel fds are
 * looked at this often, not at a syscall per call (a new connection waits at
 * most this long to be seen). */
#define PW_KERNEL_EVERY_NS 20000u

/* One past the highest epoll fd that ever had a shadow: scans stop there. */
static _Atomic int pw_ep_end;

static struct pw_ep *pw_ep_get(int epfd, bool create)
{
	if (epfd < 0 || epfd >= 65536)
		return NULL;
	struct pw_ep *e = atomic_load_explicit(&pw_eptab[epfd], memory_order_acquire);
	if (!e && create) {
		struct pw_ep *n = calloc(1, sizeof(*n));
		if (!n)
			return NULL;
		pthread_mutex_init(&n->lock, NULL);
		if (!atomic_compare_exchange_strong(&pw_eptab[epfd], &e, n)) {
			free(n);
			return e;
		}
		e = n;
		int end = atomic_load(&pw_ep_end);
		while (end < epfd + 1 && !atomic_compare_exchange_weak(&pw_ep_end, &end, epfd + 1))
			;
	}
	return e;
}

static void pw_ep_forget_fd(struct pw_ep *e, int fd)
{
	for (unsigned i = 0; i < e->n; i++)
		if (e->regs[i].fd == fd) {
			e->regs[i] = e->regs[--e->n];
			return;
		}
}

static void pw_ep_record(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct pw_ep *e = pw_ep_get(epfd, op == EPOLL_CTL_ADD);

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	if (op == EPOLL_CTL_DEL) {
		pw_ep_forget_fd(e, fd);
	} else {
		struct pw_ep_reg *r = NULL;
		for (unsigned i = 0; i < e->n; i++)
			if (e->regs[i].fd == fd)
				r = &e->regs[i];
		if (!r && op == EPOLL_CTL_ADD) {
			if (e->n == e->cap) {
				unsigned cap = e->cap ? e->cap * 2 : 16;
				struct pw_ep_reg *nr = realloc(e->regs, cap * sizeof(*nr));
				if (!nr)
					goto out;
				e->regs = nr;
				e->cap = cap;
			}
			r = &e->regs[e->n++];
			memset(r, 0, sizeof(*r));
			r->fd = fd;
		}
		if (r && ev) {
			r->events = ev->events;
			r->data = ev->data;
			r->disabled = false;
			r->mark = 0;
			r->out_seen = false;
		}
	}
out:
	pthread_mutex_unlock(&e->lock);
}

/*
 * @fd's file is about to change under it (dup3 of the channel socket). The
 * kernel keys registrations by file, so take ours off the old file (@before)
 * and put them on the new one afterwards. A registration the kernel no longer
 * has (its fd was closed and the number reused) is stale: forget it.
 */
static void pw_ep_swap_file(int fd, bool before)
{
	for (int epfd = 0, end = atomic_load(&pw_ep_end); epfd < end; epfd++) {
		struct pw_ep *e = atomic_load_explicit(&pw_eptab[epfd], memory_order_acquire);
		if (!e)
			continue;
		pthread_mutex_lock(&e->lock);
		for (unsigned i = 0; i < e->n; i++) {
			struct pw_ep_reg *r = &e->regs[i];

			if (r->fd != fd)
				continue;
			if (before) {
				r->readd = pw_real.epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == 0;
				if (!r->readd)
					e->regs[i--] = e->regs[--e->n];
			} else if (r->readd) {
				struct epoll_event ev = { .events = r->events, .data = r->data };
				pw_real.epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
				r->readd = false;
			}
		}
		pthread_mutex_unlock(&e->lock);
	}
}

/* A closed accelerated fd leaves every epoll set (as the kernel's does). */
static void pw_ep_forget_everywhere(int fd)
{
	for (int epfd = 0, end = atomic_load(&pw_ep_end); epfd < end; epfd++) {
		struct pw_ep *e = atomic_load_explicit(&pw_eptab[epfd], memory_order_acquire);
		if (!e)
			continue;
		pthread_mutex_lock(&e->lock);
		pw_ep_forget_fd(e, fd);
		pthread_mutex_unlock(&e->lock);
	}
}

static _Atomic unsigned pw_nconns;  /* accelerated connections alive: skip scans when 0 */
static _Atomic unsigned pw_nlisten; /* registered listeners: fork must mark them shared */

/* ---- socket options ---- */

static struct pw_opt *pw_opt_find(struct pw_sock *s, int level, int name)
{
	for (unsigned i = 0; i < s->nopts; i++)
		if (s->opts[i].level == level && s->opts[i].name == name)
			return &s->opts[i];
	return NULL;
}

static int pw_opt_store(struct pw_sock *s, int level, int name, const void *val, socklen_t len)
{
	struct pw_opt *o = pw_opt_find(s, level, name);

	if (len > sizeof(o->val))
		return -EINVAL;
	if (!o) {
		struct pw_opt *n = realloc(s->opts, (s->nopts + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		s->opts = n;
		o = &s->opts[s->nopts++];
		o->level = level;
		o->name = name;
	}
	o->len = len;
	memcpy(o->val, val, len);
	return 0;
}

/* A TCP socket of each family nobody touches: the kernel's defaults and its
 * verdict on unknown options, for the options of accelerated sockets. */
static _Atomic int pw_pristine_fd[2] = { -1, -1 };

static int pw_pristine(int family)
{
	_Atomic int *slot = &pw_pristine_fd[family == AF_INET6];
	/* Pairs with the compare-exchange below: the fd is ready once seen. */
	int fd = atomic_load_explicit(slot, memory_order_acquire);

	if (fd >= 0)
		return fd;
	fd = pw_real.socket(family == AF_INET6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int high = pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 100);
	if (high >= 0) {
		pw_real.close(fd);
		fd = high;
	}
	int expected = -1;
	if (!atomic_compare_exchange_strong_explicit(slot, &expected, fd, memory_order_acq_rel,
						     memory_order_acquire)) {
		pw_real.close(fd);
		fd = expected;
	}
	return fd;
}

/* Carry the options of the kernel socket @fd into @s. */
static void pw_opts_carry(struct pw_sock *s, int fd)
{
	int pristine = pw_pristine(s->family);

	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_carried_opts); i++) {
		unsigned char v[32], d[32];
		socklen_t lv = sizeof(v), ld = sizeof(d);
		int level = pw_carried_opts[i].level, name = pw_carried_opts[i].name;

		if (pw_real.getsockopt(fd, level, name, v, &lv) < 0)
			continue;
		/* Only what differs from the default needs remembering. */
		if (pristine >= 0 && pw_real.getsockopt(pristine, level, name, d, &ld) == 0 &&
		    ld == lv && !memcmp(v, d, lv))
			continue;
		pw_opt_store(s, level, name, v, lv);
	}
}

/* ---- becoming accelerated ---- */

/*
 * Put the channel (memfd + socket end from the router) under the application's
 * @fd, keeping its O_NONBLOCK and FD_CLOEXEC. @handed: the channel's socket
 * is one another process passed on (SCM_RIGHTS), whose open file, with its
 * O_NONBLOCK, the application now shares, as it would a passed TCP socket.
 * On failure @fd is untouched and the caller falls back to the kernel.
 */
static int pw_adopt(int fd, int memfd, int sock, const struct pw_wire_conn *body, bool handed)
{
	struct pw_chan_opts co = {
		.spin_ns = pw_cfg.spin_ns,
		.no_spin = pw_cfg.spin_ns == 0,
		.hup_is_eof = true, /* a dead peer process reads as EOF, as on TCP */
		.kernel_restart = true,
		.reattach = handed,
	};
	struct pw_chan *chan = NULL;
	struct pw_sock *s = NULL;
	int fl = pw_real.fcntl(handed ? sock : fd, F_GETFL);
	int fdfl = pw_real.fcntl(fd, F_GETFD);
	int r;

	if (fl < 0 || fdfl < 0 || body->side > 1)
		goto fail;
	s = pw_sock_new(PW_K_CONN);
	if (!s)
		goto fail;
	if (pw_addr_from_wire(&body->local, &s->local, &s->family) < 0 ||
	    pw_addr_from_wire(&body->peer, &s->peer, NULL) < 0)
		goto fail;
	if (!handed) {
		s->rcvtimeo_ms = pw_timeo_ms(fd, SO_RCVTIMEO);
		s->sndtimeo_ms = pw_timeo_ms(fd, SO_SNDTIMEO);
		pw_opts_carry(s, fd);
		if ((fl & O_NONBLOCK) && pw_real.fcntl(sock, F_SETFL, O_NONBLOCK) < 0)
			goto fail;
	}
	atomic_store(&s->nonblock, (fl & O_NONBLOCK) != 0);
	r = pw_chan_open(memfd, sock, body->side, &co, &chan);
	if (r < 0) {
		pw_warn("channel from the router refused: %s", strerror(-r));
		goto fail;
	}
	pw_ep_swap_file(fd, true);
	if (pw_real.dup3(sock, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		pw_ep_swap_file(fd, false);
		pw_chan_set_fd(chan, -1);
		pw_chan_detach(chan);
		goto fail;
	}
	pw_real.close(sock);
	pw_real.close(memfd);
	pw_chan_set_fd(chan, fd);
	s->chan = chan;
	s->id = body->id;
	if (handed) {
		/* The sender may hold it still: other processes may use it. */
		atomic_store(&s->nb_gen, PW_GEN_ASK);
		atomic_store(&s->shared, true);
		pw_chan_mark_shared(chan);
	}
	pw_put(fd, s);
	atomic_fetch_add(&pw_nconns, 1);
	pw_ep_swap_file(fd, false);
	return 0;
fail:
	if (s)
		free(s->opts);
	free(s);
	pw_real.close(sock);
	pw_real.close(memfd);
	return -1;
}

/*
 * Put the router's kernel socket, connected to another node, under the
 * application's @fd: its options, O_NONBLOCK and FD_CLOEXEC, and epoll
 * registrations, move over; the addresses it shows stay the pods'.
 */
static int pw_adopt_tcp(int fd, int sock, const struct pw_wire_conn *body)
{
	int fl = pw_real.fcntl(fd, F_GETFL);
	int fdfl = pw_real.fcntl(fd, F_GETFD);
	struct pw_sock *s = NULL;

	if (fl < 0 || fdfl < 0 || pw_real.fcntl(sock, F_SETFL, fl & O_NONBLOCK) < 0)
		goto fail;
	int pristine = pw_pristine(pw_tcp_family(fd));
	for (size_t i = 0; i < sizeof(pw_carried_opts) / sizeof(pw_carried_opts[0]); i++) {
		unsigned char v[32], d[32];
		socklen_t len = sizeof(v), dlen = sizeof(d);
		int lv = pw_carried_opts[i].level, nm = pw_carried_opts[i].name;

		if (pw_real.getsockopt(fd, lv, nm, v, &len) < 0)
			continue;
		/* Only what the application changed: setting a buffer size, even
		 * to its default, would turn off the kernel's autotuning. */
		if (pristine >= 0 && pw_real.getsockopt(pristine, lv, nm, d, &dlen) == 0 &&
		    dlen == len && memcmp(v, d, len) == 0)
			continue;
		if (lv == SOL_SOCKET && (nm == SO_RCVBUF || nm == SO_SNDBUF) &&
		    len == sizeof(int)) {
			/* The kernel reports twice what was set: set what was set. */
			int b;
			memcpy(&b, v, sizeof(b));
			b /= 2;
			memcpy(v, &b, sizeof(b));
		}
		pw_real.setsockopt(sock, lv, nm, v, len);
	}
	s = pw_sock_new(PW_K_VIRT);
	if (!s || pw_addr_from_wire(&body->local, &s->local, &s->family) < 0 ||
	    pw_addr_from_wire(&body->peer, &s->peer, NULL) < 0)
		goto fail;
	s->id = body->id;
	atomic_store(&s->nonblock, (fl & O_NONBLOCK) != 0);
	pw_ep_swap_file(fd, true);
	if (pw_real.dup3(sock, fd, (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		pw_ep_swap_file(fd, false);
		goto fail;
	}
	pw_put(fd, s);
	pw_ep_swap_file(fd, false);
	pw_real.close(sock);
	return 0;
fail:
	free(s);
	pw_real.close(sock);
	return -1;
}

/* The router's answer to CONNECT or CLAIM, put under @fd. */
static int pw_adopt_reply(int fd, const struct pw_msg *m, int n, int fds[2])
{
	if (n == 2 && m->type == PW_MSG_CONN)
		return pw_adopt(fd, fds[0], fds[1], &m->u.conn, false);
	if (n == 1 && m->type == PW_MSG_CONN_TCP)
		return pw_adopt_tcp(fd, fds[0], &m->u.conn);
	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]);
	return -1;
}

/* ---- connection setup ---- */

PW_EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	pw_ensure();
	struct pw_sock *s = pw_get(fd);
	if (s && s->kind != PW_K_LISTEN && s->connect_unreported) {
		s->connect_unreported = false; /* Linux: the first look after completion */
		return 0;
	}
	if (s)
		return pw_fail(s->kind != PW_K_LISTEN ? EISCONN : EINVAL);

	/* IPv4, or IPv4-mapped IPv6 from a dual-stack socket of that family. */
	struct sockaddr_in dst;
	if (pw_cfg.disabled || !addr || len < sizeof(sa_family_t) ||
	    pw_addr_to4(addr, len, &dst) < 0 || dst.sin_addr.s_addr == htonl(INADDR_ANY) ||
	    !pw_ctl_prefixes_known() || !pw_in_prefixes(&dst) ||
	    pw_tcp_family(fd) != addr->sa_family)
		return pw_real.connect(fd, addr, len);

	/* Give the socket its port now: the peer will see it as ours. */
	struct sockaddr_in local;
	if (pw_sockname4(fd, &local) < 0)
		return pw_real.connect(fd, addr, len);
	if (local.sin_port == 0) {
		struct sockaddr_storage any;
		socklen_t alen = pw_addr_from4(&local, addr->sa_family, &any);

		if (bind(fd, (struct sockaddr *)&any, alen) < 0 || pw_sockname4(fd, &local) < 0)
			return pw_real.connect(fd, addr, len);
	}

	struct pw_wire_connect req;
	struct pw_msg m;
	int fds[2];
	pw_addr_to_wire(&local, AF_INET, &req.local);
	pw_addr_to_wire(&dst, AF_INET, &req.peer);
	int n = pw_ctl_call(PW_MSG_CONNECT, &req, sizeof(req), &fd, 1, &m, fds);
	int fl = pw_real.fcntl(fd, F_GETFL);
	if (pw_adopt_reply(fd, &m, n, fds) == 0) {
		pw_dbg("fd %d: connected over podwire (conn %llu, %s)", fd,
		       (unsigned long long)m.u.conn.id,
		       m.type == PW_MSG_CONN ? "shared memory" : "direct to another node");
		/* Exactly as a kernel socket would answer. */
		if (fl >= 0 && (fl & O_NONBLOCK)) {
			pw_get(fd)->connect_unreported = true;
			return pw_fail(EINPROGRESS);
		}
		return 0;
	}
	return pw_real.connect(fd, addr, len);
}

PW_EXPORT int listen(int fd, int backlog)
{
	pw_ensure();
	int r = pw_real.listen(fd, backlog);
	if (r < 0 || pw_cfg.disabled || pw_get(fd) || !pw_tcp_family(fd))
		return r;

	int saved = errno;
	struct pw_wire_listen req = { .backlog = backlog };
	struct sockaddr_in a; /* a dual-stack listener on :: is 0.0.0.0 */
	struct pw_msg m;
	int fds[2];

	if (pw_sockname4(fd, &a) == 0 && (a.sin_addr.s_addr == htonl(INADDR_ANY) ||
					  (pw_ctl_prefixes_known() && pw_in_prefixes(&a)))) {
		pw_addr_to_wire(&a, AF_INET, &req.addr);
		int n = pw_ctl_call(PW_MSG_LISTEN, &req, sizeof(req), &fd, 1, &m, fds);
		if (n == 0 && m.type == PW_MSG_OK) {
			struct pw_sock *s = pw_sock_new(PW_K_LISTEN);
			if (s) {
				s->local = a;
				atomic_fetch_add(&pw_nlisten, 1);
				pw_put(fd, s);
			}
			pw_dbg("fd %d: listener registered", fd);
		}
		for (int i = 0; i < n; i++)
			pw_real.close(fds[i]);
	}
	errno = saved;
	return r;
}

PW_EXPORT int accept4(int lfd, struct sockaddr *addr, socklen_t *alen, int flags)
{
	pw_ensure();
	struct pw_sock *ls = pw_get(lfd);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	struct sockaddr_in peer4, local4;

	if (!ls || ls->kind != PW_K_LISTEN)
		return pw_real.accept4(lfd, addr, alen, flags);
	int fd = pw_real.accept4(lfd, (struct sockaddr *)&peer, &plen, flags);
	if (fd < 0)
		return fd;
	/* The router connects from the destination address itself; anyone else
	 * is a kernel client and needs no round trip. */
	if (pw_addr_to4((struct sockaddr *)&peer, plen, &peer4) == 0 &&
	    pw_sockname4(fd, &local4) == 0 && peer4.sin_addr.s_addr == local4.sin_addr.s_addr) {
		struct pw_msg m;
		int fds[2];
		int n = pw_ctl_call(PW_MSG_CLAIM, NULL, 0, &fd, 1, &m, fds);

		if (pw_adopt_reply(fd, &m, n, fds) == 0) {
			struct pw_sock *s = pw_get(fd);
			pw_dbg("fd %d: accepted over podwire (conn %llu)", fd,
			       (unsigned long long)m.u.conn.id);
			pw_copy_addr(&s->peer, s->family, addr, alen);
			return fd;
		}
	}
	pw_copy_raw(&peer, plen, addr, alen);
	return fd;
}

PW_EXPORT int accept(int lfd, struct sockaddr *addr, socklen_t *alen)
{
	return accept4(lfd, addr, alen, 0);
}

/* ---- closing and duplicating ---- */

/* Tell the router that listener @fd (@s) takes no more accelerated clients. */
static void pw_listener_drop(int fd, const struct pw_sock *s)
{
	struct pw_wire_listen req = { 0 };
	struct pw_msg m;
	int fds[2];

	pw_addr_to_wire(&s->local, AF_INET, &req.addr);
	int n = pw_ctl_call(PW_MSG_UNLISTEN, &req, sizeof(req), &fd, 1, &m, fds);
	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]);
}

/* @fd no longer refers to @s. @closed: the kernel already closed @fd. */
static int pw_unref(struct pw_sock *s, int fd, bool closed)
{
	if (atomic_fetch_sub(&s->refs, 1) > 1) {
		if (s->kind == PW_K_CONN && pw_chan_fd(s->chan) == fd)
			pw_chan_set_fd(s->chan, pw_find_other_fd(s, fd));
		return closed ? 0 : pw_real.close(fd);
	}
	if (s->kind == PW_K_LISTEN) {
		atomic_fetch_sub(&pw_nlisten, 1);
		/* Unregistered at once, so that the port can be bound again (iperf3
		 * -s does so after each test); but not while a forked process may
		 * still accept on it (prefork servers close the parent's copy): the
		 * router drops it when the registering process exits. */
		if (!closed && !atomic_load(&s->shared))
			pw_listener_drop(fd, s);
		free(s);
		return closed ? 0 : pw_real.close(fd);
	}
	if (s->kind == PW_K_VIRT) {
		free(s);
		return closed ? 0 : pw_real.close(fd);
	}
	atomic_fetch_sub(&pw_nconns, 1);
	pw_dbg("fd %d: last close (%s)", fd, atomic_load(&s->shared) ? "shared" : "own");
	if (closed)
		pw_chan_set_fd(s->chan, -1);
	if (atomic_load(&s->shared)) {
		/* Other processes may still use it; the kernel tells the peer
		 * when the last one closes. */
		pw_chan_detach(s->chan);
		free(s->opts);
		free(s);
		return closed ? 0 : pw_real.close(fd);
	}
	/* As TCP: closing with unread data, or with a zero linger, resets. */
	struct pw_opt *lo = pw_opt_find(s, SOL_SOCKET, SO_LINGER);
	struct linger lg = { 0 };
	if (lo && lo->len >= sizeof(lg))
		memcpy(&lg, lo->val, sizeof(lg));
	if (pw_chan_avail(s->chan) > 0 || (lg.l_onoff && lg.l_linger == 0))
		pw_chan_abort(s->chan);
	else
		pw_chan_close(s->chan); /* orderly: the peer reads the rest, then EOF */
	free(s->opts);
	free(s);
	return 0;
}

PW_EXPORT int close(int fd)
{
	pw_ensure();
	if (fd >= 0 && fd < 65536) {
		struct pw_ep *e = atomic_exchange(&pw_eptab[fd], NULL);
		if (e) {
			free(e->regs);
			free(e);
		}
	}
	struct pw_sock *s = pw_take(fd);
	if (!s)
		return pw_real.close(fd);
	if (s->kind == PW_K_CONN)
		pw_ep_forget_everywhere(fd);
	return pw_unref(s, fd, false);
}

static int pw_dup_track(int oldfd, int newfd)
{
	struct pw_sock *s = pw_get(oldfd);

	if (newfd >= 0 && s) {
		atomic_fetch_add(&s->refs, 1);
		pw_put(newfd, s);
	}
	return newfd;
}

PW_EXPORT int dup(int fd)
{
	pw_ensure();
	return pw_dup_track(fd, pw_real.dup(fd));
}

static int pw_dup_onto(int oldfd, int newfd, int flags, bool is_dup3)
{
	if (oldfd == newfd)
		return is_dup3 ? pw_fail(EINVAL) : (pw_real.fcntl(oldfd, F_GETFD) < 0 ? -1 : newfd);
	struct pw_sock *old_target = pw_get(newfd);
	int r = is_dup3 ? pw_real.dup3(oldfd, newfd, flags) : pw_real.dup2(oldfd, newfd);
	if (r < 0)
		return r;
	if (old_target && pw_take(newfd) == old_target)
		pw_unref(old_target, newfd, true);
	return pw_dup_track(oldfd, r);
}

PW_EXPORT int dup2(int oldfd, int newfd)
{
	pw_ensure();
	return pw_dup_onto(oldfd, newfd, 0, false);
}

PW_EXPORT int dup3(int oldfd, int newfd, int flags)
{
	pw_ensure();
	return pw_dup_onto(oldfd, newfd, flags, true);
}

PW_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	pw_ensure();
	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	int r = pw_real.fcntl(fd, cmd, arg);
	if (r < 0)
		return r;
	struct pw_sock *s = pw_get(fd);
	if (!s)
		return r;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)
		return pw_dup_track(fd, r);
	if (cmd == F_SETFL)
		pw_sock_set_nonblock(s, (arg & O_NONBLOCK) != 0);
	return r;
}

#ifdef __GLIBC__ /* musl's fcntl64 is a macro for fcntl */
PW_EXPORT int fcntl64(int fd, int cmd, ...) __attribute__((alias("fcntl")));
#endif

PW_EXPORT int ioctl(int fd, pw_ioctl_req_t req, ...)
{
	va_list ap;
	void *arg;

	pw_ensure();
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	struct pw_sock *s = pw_get(fd);
	if (!s || s->kind != PW_K_CONN)
		return pw_real.ioctl(fd, req, arg);
	if (req == FIONREAD) {
		ssize_t avail = pw_chan_avail(s->chan);
		*(int *)arg = avail > 0 ? (int)(avail > INT32_MAX ? INT32_MAX : avail) : 0;
		return 0;
	}
	if (req == FIONBIO) {
		int r = pw_real.ioctl(fd, req, arg);
		if (r == 0)
			pw_sock_set_nonblock(s, *(int *)arg != 0);
		return r;
	}
	if (req == SIOCOUTQ) {
		*(int *)arg = 0;
		return 0;
	}
	return pw_real.ioctl(fd, req, arg);
}

/* ---- data ---- */

static int pw_errno_of(ssize_t r)
{
	return r == -EPROTO ? ECONNRESET : (int)-r;
}

/* O_NONBLOCK lives in the open file description: after a fork another
 * process may change it. Every process of the tree moves pw_flags_gen on
 * when it does, so the kernel is asked only then (or always, for a socket
 * inherited across exec, whose holders share no generation). */
static inline bool pw_sock_nonblock(struct pw_sock *s)
{
	if (__builtin_expect(atomic_load_explicit(&s->shared, memory_order_relaxed), 0) &&
	    !pw_cfg.restricted /* no fcntl under seccomp: the last known flag */) {
		uint32_t gen = pw_flags_gen_now();
		if (gen == PW_GEN_NONE ||
		    gen != atomic_load_explicit(&s->nb_gen, memory_order_relaxed)) {
			int fl = pw_real.fcntl(pw_chan_fd(s->chan), F_GETFL);
			atomic_store_explicit(&s->nonblock, fl >= 0 && (fl & O_NONBLOCK),
					      memory_order_relaxed);
			atomic_store_explicit(&s->nb_gen, gen, memory_order_relaxed);
		}
	}
	return atomic_load_explicit(&s->nonblock, memory_order_relaxed);
}

/* glibc (2.32 and later) tracks whether the process ever made a thread in
 * __libc_single_threaded, looked up at start (older glibc and musl do not
 * say: then we always lock). */
static inline bool pw_single_threaded(void)
{
	const char *flag = pw_single_flag;

	return flag && *flag;
}

/* Serialise callers of one socket, unless the process has only one thread:
 * then there is nobody to serialise against. */
static inline bool pw_lock(pthread_mutex_t *m)
{
	if (pw_single_threaded())
		return false;
	pthread_mutex_lock(m);
	return true;
}

/* Non-blocking callers must not wait behind a blocked one: -1 means busy. */
static inline int pw_trylock(pthread_mutex_t *m)
{
	if (pw_single_threaded())
		return 0;
	return pthread_mutex_trylock(m) == 0 ? 1 : -1;
}

static inline void pw_unlock(pthread_mutex_t *m, bool locked)
{
	if (locked)
		pthread_mutex_unlock(m);
}

/* Wait for @ev with the socket's timeout; -EAGAIN when it runs out. */
static int pw_wait_timeo(struct pw_sock *s, short ev, int ms)
{
	int r = pw_chan_wait(s->chan, ev, ms);

	return r == 0 ? -EAGAIN : (r < 0 ? r : 0);
}

/*
 * One read or write on the channel under the socket's lock for that
 * direction, honouring SO_RCVTIMEO/SO_SNDTIMEO on a blocking socket.
 * -EBUSY: non-blocking, and another thread holds the direction.
 */
static ssize_t pw_sock_transfer(struct pw_sock *s, const struct iovec *iov, int cnt, int cf,
				bool nb, bool is_write)
{
	pthread_mutex_t *lock = is_write ? &s->wlock : &s->rlock;
	int timeo = is_write ? s->sndtimeo_ms : s->rcvtimeo_ms;
	ssize_t r;
	bool locked;

	if (nb) {
		int t = pw_trylock(lock);
		if (t < 0)
			return -EBUSY;
		locked = t > 0;
	} else {
		locked = pw_lock(lock);
	}
	for (;;) {
		int f = cf | (!nb && timeo > 0 ? PW_CHAN_DONTWAIT : 0);
		r = is_write ? pw_chan_writev(s->chan, iov, cnt, f)
			     : pw_chan_readv(s->chan, iov, cnt, f);
		if (nb || timeo <= 0 || r != -EAGAIN)
			break;
		int w = pw_wait_timeo(s, is_write ? POLLOUT : POLLIN, timeo);
		if (w < 0) {
			r = w;
			break;
		}
	}
	pw_unlock(lock, locked);
	return r;
}

static ssize_t pw_sock_readv(struct pw_sock *s, const struct iovec *iov, int cnt, int flags)
{
	int cf = 0;
	ssize_t r;

	if (flags &
	    ~(MSG_DONTWAIT | MSG_PEEK | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC | MSG_TRUNC))
		return pw_fail(EOPNOTSUPP);
	if (s->rd_shut)
		return 0;
	/* TCP: MSG_TRUNC discards the bytes instead of copying them (the
	 * buffer may be NULL). */
	if ((flags & MSG_TRUNC) && !(flags & MSG_PEEK))
		cf |= PW_CHAN_DISCARD;
	bool nb = (flags & MSG_DONTWAIT) || pw_sock_nonblock(s);
	if (nb)
		cf |= PW_CHAN_DONTWAIT;
	if (flags & MSG_PEEK)
		cf |= PW_CHAN_PEEK;
	if (flags & MSG_WAITALL)
		cf |= PW_CHAN_WAITALL;
	r = pw_sock_transfer(s, iov, cnt, cf, nb, false);
	if (r == -EBUSY)
		return pw_fail(EAGAIN); /* another thread is waiting to read */
	if (r == -ECONNRESET || r == -EPROTO) {
		if (s->reset_reported)
			return 0;
		s->reset_reported = true;
	}
	if (r < 0)
		return pw_fail(pw_errno_of(r));
	return r;
}

static ssize_t pw_sock_writev(struct pw_sock *s, const struct iovec *iov, int cnt, int flags)
{
	int cf = 0;
	ssize_t r;

	bool nb = (flags & MSG_DONTWAIT) || pw_sock_nonblock(s);
	if (nb)
		cf |= PW_CHAN_DONTWAIT;
	r = pw_sock_transfer(s, iov, cnt, cf, nb, true);
	if (r == -EBUSY)
		return pw_fail(EAGAIN); /* another thread is waiting to write */
	if (r == -ECONNRESET || r == -EPROTO) {
		if (s->reset_reported)
			r = -EPIPE;
		s->reset_reported = true;
	}
	/* (Not under seccomp: tgkill is no call of the application's.) */
	if (r == -EPIPE && !(flags & MSG_NOSIGNAL) && !pw_cfg.restricted)
		pthread_kill(pthread_self(), SIGPIPE);
	if (r < 0)
		return pw_fail(pw_errno_of(r));
	return r;
}

static inline struct pw_sock *pw_conn_of(int fd)
{
	if (!atomic_load_explicit(&pw_nconns, memory_order_relaxed))
		return NULL;
	struct pw_sock *s = pw_get(fd);
	return s && s->kind == PW_K_CONN ? s : NULL;
}

PW_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.read(fd, buf, n);
	struct iovec iov = { buf, n };
	return pw_sock_readv(s, &iov, 1, 0);
}

PW_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.write(fd, buf, n);
	struct iovec iov = { (void *)buf, n };
	return pw_sock_writev(s, &iov, 1, 0);
}

PW_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	return s ? pw_sock_readv(s, iov, cnt, 0) : pw_real.readv(fd, iov, cnt);
}

PW_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	return s ? pw_sock_writev(s, iov, cnt, 0) : pw_real.writev(fd, iov, cnt);
}

PW_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.recv(fd, buf, n, flags);
	struct iovec iov = { buf, n };
	return pw_sock_readv(s, &iov, 1, flags);
}

PW_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.send(fd, buf, n, flags);
	struct iovec iov = { (void *)buf, n };
	return pw_sock_writev(s, &iov, 1, flags);
}

PW_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			   socklen_t *alen)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.recvfrom(fd, buf, n, flags, addr, alen);
	struct iovec iov = { buf, n };
	ssize_t r = pw_sock_readv(s, &iov, 1, flags);
	if (r >= 0 && alen)
		*alen = 0; /* TCP reports no source address */
	return r;
}

PW_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
			 socklen_t alen)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.sendto(fd, buf, n, flags, addr, alen);
	struct iovec iov = { (void *)buf, n };
	return pw_sock_writev(s, &iov, 1, flags); /* a connected TCP socket ignores @addr */
}

/* ---- handing connections to other processes (SCM_RIGHTS) ---- */

/*
 * A connection passed over a Unix socket goes as a kernel stream that the
 * router relays to the channel, so that a receiver without the library gets
 * a working stream; a receiver with it takes the channel itself (TAKE).
 * See docs/PRELOAD.md.
 */

/*
 * A kernel stream that the router relays to @s's channel (@fd, its socket,
 * is the proof), with @fd's O_NONBLOCK; -1 if the router cannot. The router
 * holds the channel too from now on: our close is no longer the last.
 */
static int pw_relay_stream(int fd, struct pw_sock *s, uint32_t flags)
{
	struct pw_wire_relay req = { .id = s->id, .flags = flags };
	struct pw_msg m;
	int fds[2];
	int n = pw_ctl_call(PW_MSG_RELAY, &req, sizeof(req), &fd, 1, &m, fds);

	if (n != 1 || m.type != PW_MSG_RELAY_OK) {
		for (int i = 0; i < n; i++)
			pw_real.close(fds[i]);
		return -1;
	}
	int fl = pw_real.fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		pw_real.fcntl(fds[0], F_SETFL, O_NONBLOCK);
	/* Whoever receives it shares the open file, not our generation page. */
	atomic_store(&s->nb_gen, PW_GEN_ASK);
	if (!atomic_exchange(&s->shared, true))
		pw_chan_mark_shared(s->chan);
	return fds[0];
}

/* Call @fn on each fd that @mh carries with SCM_RIGHTS, by reference. */
static void pw_rights_each(struct msghdr *mh, void (*fn)(int *fd, void *arg), void *arg)
{
	if (!mh->msg_control || mh->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		unsigned char *p = CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, p + i * sizeof(int), sizeof(fd));
			fn(&fd, arg);
			memcpy(p + i * sizeof(int), &fd, sizeof(fd));
		}
	}
}

static void pw_rights_count(int *fd, void *arg)
{
	if (pw_conn_of(*fd))
		(*(unsigned *)arg)++;
}

struct pw_rights_out {
	int *streams;
	unsigned n;
	int err;
};

/* Swap an accelerated connection for a relayed stream to pass instead. */
static void pw_rights_swap(int *fd, void *arg)
{
	struct pw_rights_out *o = arg;
	struct pw_sock *s = pw_conn_of(*fd);

	if (!s || o->err)
		return;
	int stream = pw_relay_stream(*fd, s, 0);
	if (stream < 0) {
		o->err = ENOBUFS; /* the router cannot take the connection on */
		return;
	}
	o->streams[o->n++] = stream;
	*fd = stream;
}

/* The message was not sent: end the relays before anyone reads them. */
static void pw_rights_take_back(int stream)
{
	struct pw_msg m;
	int fds[2];
	int n = pw_ctl_call(PW_MSG_TAKE, NULL, 0, &stream, 1, &m, fds);

	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]); /* our own connection's channel: we have it */
}

static ssize_t pw_sendmsg_rights(int fd, const struct msghdr *mh, int flags)
{
	unsigned count = 0;
	struct msghdr copy = *mh;

	pw_rights_each(&copy, pw_rights_count, &count);
	if (!count)
		return pw_real.sendmsg(fd, mh, flags);
	struct pw_rights_out o = { .streams = calloc(count, sizeof(int)) };
	copy.msg_control = malloc(mh->msg_controllen);
	ssize_t r = -1;
	if (!o.streams || !copy.msg_control) {
		errno = ENOBUFS;
		goto out;
	}
	memcpy(copy.msg_control, mh->msg_control, mh->msg_controllen);
	pw_rights_each(&copy, pw_rights_swap, &o);
	if (o.err)
		errno = o.err;
	else
		r = pw_real.sendmsg(fd, &copy, flags);
out:;
	int saved = errno;
	for (unsigned i = 0; i < o.n; i++) {
		if (r < 0)
			pw_rights_take_back(o.streams[i]);
		pw_real.close(o.streams[i]);
	}
	free(o.streams);
	free(copy.msg_control);
	errno = saved;
	return r;
}

/* A received fd that may be a relayed stream: take the channel over. */
static void pw_rights_take(int *fd, void *arg)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int v;
	socklen_t vlen = sizeof(v);
	struct pw_msg m;
	int fds[2];

	(void)arg;
	if (pw_real.getsockopt(*fd, SOL_SOCKET, SO_DOMAIN, &v, &vlen) < 0 || v != AF_UNIX)
		return;
	vlen = sizeof(v);
	if (pw_real.getsockopt(*fd, SOL_SOCKET, SO_TYPE, &v, &vlen) < 0 || v != SOCK_STREAM)
		return;
	/* Only the router makes them (a cheap test before asking it). */
	if (pw_real.getsockopt(*fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    !pw_ctl_made_by_router(cred.pid))
		return;
	int n = pw_ctl_call(PW_MSG_TAKE, NULL, 0, fd, 1, &m, fds);
	if (n == 2 && m.type == PW_MSG_CONN) {
		if (pw_adopt(*fd, fds[0], fds[1], &m.u.conn, true) == 0)
			pw_dbg("fd %d: a handed connection taken over (conn %llu)", *fd,
			       (unsigned long long)m.u.conn.id);
		return;
	}
	for (int i = 0; i < n; i++)
		pw_real.close(fds[i]);
}

PW_EXPORT ssize_t recvmsg(int fd, struct msghdr *mh, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s) {
		ssize_t r = pw_real.recvmsg(fd, mh, flags);
		if (r >= 0 && !pw_cfg.disabled && mh->msg_controllen) {
			int saved = errno;
			pw_rights_each(mh, pw_rights_take, NULL);
			errno = saved;
		}
		return r;
	}
	ssize_t r = pw_sock_readv(s, mh->msg_iov, (int)mh->msg_iovlen, flags);
	if (r >= 0) {
		mh->msg_namelen = 0;
		mh->msg_controllen = 0;
		mh->msg_flags = 0;
	}
	return r;
}

PW_EXPORT ssize_t sendmsg(int fd, const struct msghdr *mh, int flags)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return mh && mh->msg_controllen ? pw_sendmsg_rights(fd, mh, flags)
						: pw_real.sendmsg(fd, mh, flags);
	if (mh->msg_controllen)
		return pw_fail(EOPNOTSUPP); /* no ancillary data on TCP */
	return pw_sock_writev(s, mh->msg_iov, (int)mh->msg_iovlen, flags);
}

static ssize_t pw_sendfile_copy(struct pw_sock *s, int in, off_t *off, size_t count, char *buf,
				size_t cap);

/*
 * sendfile() onto an accelerated socket: read the file and write the ring.
 * Never takes more from the file than the ring accepts, so a short count
 * leaves the file offset exactly where a kernel socket would.
 */
PW_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t count)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(out);
	if (!s)
		return pw_real.sendfile(out, in, off, count);

	/* On the heap: an application thread's stack may be small. */
	const size_t cap = count < 65536 ? (count ? count : 1) : 65536;
	char *buf = malloc(cap);
	if (!buf)
		return pw_fail(ENOMEM);
	ssize_t ret = pw_sendfile_copy(s, in, off, count, buf, cap);
	int saved = errno;
	free(buf);
	errno = saved;
	return ret;
}

static ssize_t pw_sendfile_copy(struct pw_sock *s, int in, off_t *off, size_t count, char *buf,
				size_t cap)
{
	bool nb = pw_sock_nonblock(s);
	off_t pos = off ? *off : 0;
	size_t done = 0;

	while (done < count) {
		size_t want = count - done < cap ? count - done : cap;
		if (nb) {
			ssize_t space = pw_chan_space(s->chan);
			if (space <= 0) {
				/* Nothing fits: leave the socket unwritable until it
				 * does, as a short count means to an edge-triggered
				 * writer (nginx waits for the next EPOLLOUT edge). */
				if (pw_chan_prepare_write_wait(s->chan))
					continue;
				if (done)
					break;
				return pw_fail(EAGAIN);
			}
			if ((size_t)space < want)
				want = (size_t)space;
		}
		ssize_t n = off ? pread(in, buf, want, pos) : pw_real.read(in, buf, want);
		if (n < 0)
			return done ? (ssize_t)done : -1;
		if (n == 0)
			break;
		struct iovec iov = { buf, (size_t)n };
		ssize_t w = pw_sock_writev(s, &iov, 1, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EPIPE && !pw_cfg.restricted)
				pthread_kill(pthread_self(), SIGPIPE);
			return done ? (ssize_t)done : -1;
		}
		done += (size_t)w;
		pos += w;
		if (w < n)
			break;
	}
	if (off)
		*off = pos;
	return (ssize_t)done;
}

#ifdef __GLIBC__
PW_EXPORT ssize_t sendfile64(int out, int in, off_t *off, size_t count)
	__attribute__((alias("sendfile")));
#endif

PW_EXPORT int shutdown(int fd, int how)
{
	pw_ensure();
	struct pw_sock *s = pw_conn_of(fd);
	if (!s)
		return pw_real.shutdown(fd, how);
	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return pw_fail(EINVAL);
	/* Linux TCP tells the peer nothing of SHUT_RD: only our reads end. */
	if (how != SHUT_WR)
		s->rd_shut = true;
	if (how != SHUT_RD) {
		s->wr_shut = true;
		int r = pw_chan_shutdown(s->chan, SHUT_WR);
		if (r < 0)
			return pw_fail(-r);
	}
	return 0;
}

/* ---- addresses and options ---- */

/* A connection's virtual addresses: a channel's, or a socket to another node. */
static inline struct pw_sock *pw_named_of(int fd)
{
	struct pw_sock *s = pw_get(fd);
	return s && s->kind != PW_K_LISTEN ? s : NULL;
}

PW_EXPORT int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	pw_ensure();
	struct pw_sock *s = pw_named_of(fd);
	if (!s)
		return pw_real.getsockname(fd, addr, len);
	if (!len)
		return pw_fail(EFAULT);
	pw_copy_addr(&s->local, s->family, addr, len);
	return 0;
}

PW_EXPORT int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	pw_ensure();
	struct pw_sock *s = pw_named_of(fd);
	if (!s)
		return pw_real.getpeername(fd, addr, len);
	if (!len)
		return pw_fail(EFAULT);
	pw_copy_addr(&s->peer, s->family, addr, len);
	return 0;
}

static int pw_put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len || *len < sizeof(int))
		return pw_fail(EINVAL);
	memcpy(val, &v, sizeof(v));
	*len = sizeof(int);
	return 0;
}

/*
 * The options podwire answers for: every option of a channel; of a kernel
 * socket to another node's pod, only what its family changes (the
 * application's AF_INET6 fd now holds an AF_INET socket).
 */
static struct pw_sock *pw_opts_of(int fd, int level, int name)
{
	struct pw_sock *s = pw_get(fd);

	if (!s || s->kind == PW_K_LISTEN || pw_cfg.restricted)
		return NULL;
	if (s->kind == PW_K_CONN)
		return s;
	return s->family == AF_INET6 &&
			       (level == IPPROTO_IPV6 || (level == SOL_SOCKET && name == SO_DOMAIN))
		       ? s
		       : NULL;
}

PW_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	pw_ensure();
	struct pw_sock *s = pw_opts_of(fd, level, name);
	if (!s)
		return pw_real.getsockopt(fd, level, name, val, len);
	if (!val || !len)
		return pw_fail(EFAULT);
	if (level == SOL_SOCKET && name == SO_DOMAIN)
		return pw_put_int(val, len, s->family);
	if (s->kind != PW_K_CONN) {
		/* an IPPROTO_IPV6 option of a socket to another node: below */
	} else if (level == SOL_SOCKET) {
		switch (name) {
		case SO_ERROR:
			return pw_put_int(val, len, 0);
		case SO_TYPE:
			return pw_put_int(val, len, SOCK_STREAM);
		case SO_PROTOCOL:
			return pw_put_int(val, len, IPPROTO_TCP);
		case SO_ACCEPTCONN:
			return pw_put_int(val, len, 0);
		default:
			break;
		}
	} else if (level == IPPROTO_TCP && name == TCP_INFO) {
		struct tcp_info ti;

		memset(&ti, 0, sizeof(ti));
		ti.tcpi_state = TCP_ESTABLISHED;
		ti.tcpi_snd_mss = ti.tcpi_rcv_mss = 65483;
		ti.tcpi_snd_cwnd = 10;
		socklen_t n = *len < sizeof(ti) ? *len : (socklen_t)sizeof(ti);
		memcpy(val, &ti, n);
		*len = n;
		return 0;
	}
	/* What was set reads back as the kernel stored it; the rest are the
	 * kernel's defaults for a TCP socket, unknown ones its error. */
	struct pw_opt *o = pw_opt_find(s, level, name);
	if (o) {
		socklen_t n = *len < o->len ? *len : o->len;
		memcpy(val, o->val, n);
		*len = n;
		return 0;
	}
	/* (Under seccomp, only a pristine socket made before.) */
	int pristine = pw_cfg.restricted ? atomic_load(&pw_pristine_fd[s->family == AF_INET6])
					 : pw_pristine(s->family);
	return pristine < 0 ? pw_fail(ENOPROTOOPT)
			    : pw_real.getsockopt(pristine, level, name, val, len);
}

PW_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	pw_ensure();
	struct pw_sock *s = pw_opts_of(fd, level, name);
	if (!s)
		return pw_real.setsockopt(fd, level, name, val, len);

	if (pw_cfg.restricted) {
		/* No throwaway socket under seccomp: keep the value as given. */
		if (!val || len > sizeof(((struct pw_opt *)0)->val))
			return pw_fail(EINVAL);
		return pw_opt_store(s, level, name, val, len) < 0 ? pw_fail(ENOMEM) : 0;
	}
	/* The kernel validates and normalises (SO_RCVBUF doubles, ...) on a
	 * throwaway TCP socket of the family; we keep what it read back. */
	int t = pw_real.socket(s->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (t < 0)
		return -1;
	unsigned char back[32];
	socklen_t blen = sizeof(back);
	int r = pw_real.setsockopt(t, level, name, val, len);
	if (r == 0 && pw_real.getsockopt(t, level, name, back, &blen) == 0)
		r = pw_opt_store(s, level, name, back, blen) < 0 ? pw_fail(ENOMEM) : 0;
	int saved = errno;
	pw_real.close(t);
	errno = saved;
	if (r < 0)
		return r;
	if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
		struct timeval tv;
		memcpy(&tv, val, sizeof(tv));
		int ms = (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
		if (name == SO_RCVTIMEO)
			s->rcvtimeo_ms = ms;
		else
			s->sndtimeo_ms = ms;
	}
	return 0;
}

/* ---- readiness: poll, select, epoll ---- */

/* What @s reports for @events, as poll(2) would. */
static short pw_sock_revents(struct pw_sock *s, short events)
{
	short m = pw_chan_poll(s->chan);

	/* TCP: POLLHUP once both directions are shut, or on reset. The peer
	 * closing is POLLIN|POLLRDHUP while we may still write. */
	if ((m & POLLHUP) && !(m & POLLERR) && !s->wr_shut)
		m &= (short)~POLLHUP;
	if (s->rd_shut)
		m |= POLLIN;

	return (short)(m & (events | POLLHUP | POLLERR));
}

/*
 * Before the kernel may put us to sleep: make each accelerated fd's socket
 * signal what the caller waits for. Returns true if one is ready already.
 */
static bool pw_prepare(struct pw_sock *s, short events)
{
	if (pw_sock_revents(s, events))
		return true;
	if ((events & POLLIN) && pw_chan_prepare_read_wait(s->chan))
		return true;
	if ((events & POLLOUT) && pw_chan_prepare_write_wait(s->chan))
		return true;
	return false;
}

static uint64_t pw_ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ull + (uint64_t)ts->tv_nsec;
}

/*
 * The kernel's waits are made with the call the application made (poll for
 * poll, epoll_wait for epoll_wait...): a seccomp filter lets through the
 * application's calls, not others.
 */
enum pw_wait_call { PW_W_POLL, PW_W_PPOLL, PW_W_SELECT, PW_W_PSELECT };

static int pw_ms_of(int64_t ns)
{
	return ns < 0 ? -1 : ns / 1000000 >= INT32_MAX ? INT32_MAX : (int)((ns + 999999) / 1000000);
}

/*
 * select(2) for a set of pollfds, in a restricted process (which may be
 * allowed select and not ppoll): readable, writable and exceptional become
 * POLLIN, POLLOUT and POLLPRI.
 */
static int pw_kernel_select(struct pollfd *fds, nfds_t n, int64_t ns, const sigset_t *mask,
			    bool use_pselect)
{
	fd_set r, w, x;
	int maxfd = -1;

	FD_ZERO(&r);
	FD_ZERO(&w);
	FD_ZERO(&x);
	for (nfds_t i = 0; i < n; i++) {
		if (fds[i].fd < 0 || fds[i].fd >= FD_SETSIZE)
			continue;
		if (fds[i].events & POLLIN)
			FD_SET(fds[i].fd, &r);
		if (fds[i].events & POLLOUT)
			FD_SET(fds[i].fd, &w);
		if (fds[i].events & POLLPRI)
			FD_SET(fds[i].fd, &x);
		maxfd = fds[i].fd > maxfd ? fds[i].fd : maxfd;
	}
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };
	struct timeval tv = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) / 1000 };
	int k = use_pselect ? pw_real.pselect(maxfd + 1, &r, &w, &x, ns < 0 ? NULL : &ts, mask)
			    : pw_real.select(maxfd + 1, &r, &w, &x, ns < 0 ? NULL : &tv);
	if (k < 0)
		return k;
	k = 0;
	for (nfds_t i = 0; i < n; i++) {
		fds[i].revents = 0;
		if (fds[i].fd < 0 || fds[i].fd >= FD_SETSIZE)
			continue;
		fds[i].revents = (short)((FD_ISSET(fds[i].fd, &r) ? POLLIN : 0) |
					 (FD_ISSET(fds[i].fd, &w) ? POLLOUT : 0) |
					 (FD_ISSET(fds[i].fd, &x) ? POLLPRI : 0));
		k += fds[i].revents != 0;
	}
	return k;
}

static int pw_kernel_poll(struct pollfd *fds, nfds_t n, int64_t ns, const sigset_t *mask,
			  enum pw_wait_call call)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	if (call == PW_W_POLL)
		return pw_real.poll(fds, n, pw_ms_of(ns));
	if (call == PW_W_PPOLL || !pw_cfg.restricted)
		return pw_real.ppoll(fds, n, ns < 0 ? NULL : &ts, mask);
	return pw_kernel_select(fds, n, ns, mask, call == PW_W_PSELECT);
}

/*
 * The core of poll/ppoll/select/pselect. @timeout_ns < 0 waits forever.
 * Accelerated fds get their readiness from the rings; others from the kernel.
 */
static int pw_poll_core(struct pollfd *fds, nfds_t n, int64_t timeout_ns, const sigset_t *mask,
			enum pw_wait_call call)
{
	bool any = false;

	for (nfds_t i = 0; i < n && !any; i++)
		any = fds[i].fd >= 0 && pw_conn_of(fds[i].fd);
	if (!any)
		return pw_kernel_poll(fds, n, timeout_ns, mask, call);

	uint64_t start = pw_now_ns();
	struct pw_spin sp;
	pw_spin_start(&sp, timeout_ns == 0 || pw_cfg.restricted
				   ? 0
				   : pw_cfg.spin_ns); /* (spinning yields: not under seccomp) */
	for (;;) {
		int ready = 0;
		bool mine_ready = false;

		/* Look at the rings; spin a little while the caller can wait. */
		bool noted = false;
		do {
			for (nfds_t i = 0; i < n; i++) {
				struct pw_sock *s = fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
				if (!s)
					continue;
				if (!noted)
					pw_chan_note_cpu(s->chan);
				if (pw_sock_revents(s, fds[i].events))
					mine_ready = true;
			}
			noted = true;
		} while (!mine_ready && pw_spin_more(&sp));
		if (!mine_ready)
			for (nfds_t i = 0; i < n; i++) {
				struct pw_sock *s = fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
				if (s && pw_prepare(s, fds[i].events))
					mine_ready = true;
			}

		int64_t left = -1;
		if (timeout_ns >= 0) {
			uint64_t el = pw_now_ns() - start;
			left = el >= (uint64_t)timeout_ns ? 0 : timeout_ns - (int64_t)el;
		}
		if (mine_ready) {
			static __thread uint64_t kernel_ns;
			uint64_t now = pw_now_ns();

			if (now - kernel_ns < PW_KERNEL_EVERY_NS) {
				for (nfds_t i = 0; i < n; i++) {
					struct pw_sock *s =
						fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
					fds[i].revents = s ? pw_sock_revents(s, fds[i].events) : 0;
					ready += fds[i].revents != 0;
				}
				return ready;
			}
			kernel_ns = now;
			left = 0;
		}
		int r = pw_kernel_poll(fds, n, left, mask, call);
		if (r < 0)
			return r;
		for (nfds_t i = 0; i < n; i++) {
			struct pw_sock *s = fds[i].fd >= 0 ? pw_conn_of(fds[i].fd) : NULL;
			if (s && r > 0 && fds[i].revents) {
				/* A hang-up on the socket: the peer's process is gone. */
				pw_chan_note_events(s->chan, fds[i].revents);
				if (left != 0)
					pw_chan_spread(
						s->chan); /* woken by the peer: leave its CPU */
			}
			if (s)
				fds[i].revents = (short)(pw_sock_revents(s, fds[i].events) |
							 (fds[i].revents & POLLNVAL));
			if (fds[i].revents)
				ready++;
		}
		if (ready || left == 0)
			return ready;
		/* Only stale wake bytes woke us: arm again and wait the rest. */
	}
}

PW_EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	pw_ensure();
	return pw_poll_core(fds, n, timeout < 0 ? -1 : (int64_t)timeout * 1000000, NULL, PW_W_POLL);
}

PW_EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *mask)
{
	pw_ensure();
	return pw_poll_core(fds, n, ts ? (int64_t)pw_ts_ns(ts) : -1, mask, PW_W_PPOLL);
}

/* Does the select set hold an accelerated fd? (If not, it is the kernel's.) */
static bool pw_select_any(int nfds, const fd_set *r, const fd_set *w)
{
	if (!atomic_load_explicit(&pw_nconns, memory_order_relaxed))
		return false;
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w))) && pw_conn_of(fd))
			return true;
	return false;
}

static int pw_select_core(int nfds, fd_set *r, fd_set *w, fd_set *x, int64_t timeout_ns,
			  const sigset_t *mask, enum pw_wait_call call)
{
	struct pollfd stackfds[64];
	struct pollfd *pfd = stackfds;
	nfds_t n = 0;

	if (nfds < 0 || nfds > FD_SETSIZE)
		return pw_fail(EINVAL);
	if (nfds > 64) {
		pfd = calloc((size_t)nfds, sizeof(*pfd));
		if (!pfd)
			return pw_fail(ENOMEM);
	}
	for (int fd = 0; fd < nfds; fd++) {
		short ev = (short)(((r && FD_ISSET(fd, r)) ? POLLIN : 0) |
				   ((w && FD_ISSET(fd, w)) ? POLLOUT : 0) |
				   ((x && FD_ISSET(fd, x)) ? POLLPRI : 0));
		if (ev)
			pfd[n++] = (struct pollfd){ .fd = fd, .events = ev };
	}
	int ret = pw_poll_core(pfd, n, timeout_ns, mask, call);
	if (ret >= 0) {
		ret = 0;
		if (r)
			FD_ZERO(r);
		if (w)
			FD_ZERO(w);
		if (x)
			FD_ZERO(x);
		for (nfds_t i = 0; i < n; i++) {
			short re = pfd[i].revents;
			if (re & POLLNVAL) {
				ret = pw_fail(EBADF);
				break;
			}
			if (r && (pfd[i].events & POLLIN) && (re & (POLLIN | POLLHUP | POLLERR)))
				FD_SET(pfd[i].fd, r), ret++;
			if (w && (pfd[i].events & POLLOUT) && (re & (POLLOUT | POLLERR)))
				FD_SET(pfd[i].fd, w), ret++;
			if (x && (pfd[i].events & POLLPRI) && (re & POLLPRI))
				FD_SET(pfd[i].fd, x), ret++;
		}
	}
	if (pfd != stackfds)
		free(pfd);
	return ret;
}

PW_EXPORT int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *tv)
{
	pw_ensure();
	if (!pw_select_any(nfds, r, w))
		return pw_real.select(nfds, r, w, x, tv);
	int64_t t = tv ? (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000 : -1;
	uint64_t start = pw_now_ns();
	int ret = pw_select_core(nfds, r, w, x, t, NULL, PW_W_SELECT);
	if (tv && t >= 0) {
		/* Linux select() reports the time left. */
		int64_t left = t - (int64_t)(pw_now_ns() - start);
		if (left < 0)
			left = 0;
		tv->tv_sec = left / 1000000000;
		tv->tv_usec = (left % 1000000000) / 1000;
	}
	return ret;
}

PW_EXPORT int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *ts,
		      const sigset_t *mask)
{
	pw_ensure();
	if (!pw_select_any(nfds, r, w))
		return pw_real.pselect(nfds, r, w, x, ts, mask);
	return pw_select_core(nfds, r, w, x, ts ? (int64_t)pw_ts_ns(ts) : -1, mask, PW_W_PSELECT);
}

PW_EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	pw_ensure();
	int r = pw_real.epoll_ctl(epfd, op, fd, ev);
	if (r == 0)
		pw_ep_record(epfd, op, fd, ev);
	return r;
}

static uint32_t pw_poll_to_epoll(short m)
{
	uint32_t e = 0;

	if (m & POLLIN)
		e |= EPOLLIN;
	if (m & POLLOUT)
		e |= EPOLLOUT;
	if (m & POLLRDHUP)
		e |= EPOLLRDHUP;
	if (m & POLLHUP)
		e |= EPOLLHUP;
	if (m & POLLERR)
		e |= EPOLLERR;
	return e;
}

/* Readiness of an accelerated registration, honouring EPOLLET and ONESHOT. */
static uint32_t pw_ep_check(struct pw_ep_reg *reg, struct pw_sock *s, bool report)
{
	if (reg->disabled)
		return 0;
	uint32_t want = reg->events & (EPOLLIN | EPOLLOUT | EPOLLRDHUP);
	uint32_t ev = pw_poll_to_epoll(pw_sock_revents(s, POLLIN | POLLOUT | POLLRDHUP)) &
		      (want | EPOLLHUP | EPOLLERR);

	if (ev && (reg->events & EPOLLET)) {
		uint32_t mark = pw_chan_rx_mark(s->chan);
		/* An edge: report readable data once per arrival. Writability
		 * edges come from the kernel (the socket is exact for POLLOUT). */
		if (mark == reg->mark)
			ev &= ~(uint32_t)(EPOLLIN | EPOLLRDHUP);
		ev &= ~(uint32_t)EPOLLOUT;
		if (report && ev)
			reg->mark = mark;
	}
	if (report && ev && (reg->events & EPOLLONESHOT))
		reg->disabled = true;
	return ev;
}

enum pw_epoll_call { PW_W_EPOLL_WAIT, PW_W_EPOLL_PWAIT, PW_W_EPOLL_PWAIT2 };

/* The kernel's epoll wait, with the call the application made. */
static int pw_kernel_epoll(int epfd, struct epoll_event *out, int max, int64_t ns,
			   const sigset_t *mask, enum pw_epoll_call call)
{
	struct timespec ts = { (time_t)(ns / 1000000000), (long)(ns % 1000000000) };

	switch (call) {
	case PW_W_EPOLL_WAIT:
		return pw_real.epoll_wait(epfd, out, max, pw_ms_of(ns));
	case PW_W_EPOLL_PWAIT:
		return pw_real.epoll_pwait(epfd, out, max, pw_ms_of(ns), mask);
	default:
		return pw_real.epoll_pwait2
			       ? pw_real.epoll_pwait2(epfd, out, max, ns < 0 ? NULL : &ts, mask)
			       : pw_fail(ENOSYS);
	}
}

static int pw_epoll_core(int epfd, struct epoll_event *out, int max, int64_t timeout_ns,
			 const sigset_t *mask, enum pw_epoll_call call)
{
	struct pw_ep *e = atomic_load_explicit(&pw_nconns, memory_order_relaxed)
				  ? pw_ep_get(epfd, false)
				  : NULL;
	if (!e || max <= 0)
		return pw_kernel_epoll(epfd, out, max, timeout_ns, mask, call);

	uint64_t start = pw_now_ns();
	struct pw_spin sp;
	pw_spin_start(&sp, timeout_ns == 0 || pw_cfg.restricted
				   ? 0
				   : pw_cfg.spin_ns); /* (spinning yields: not under seccomp) */
	for (;;) {
		int n = 0;

		pthread_mutex_lock(&e->lock);
		/* 1. accelerated fds ready now, spinning briefly if we may wait */
		for (bool noted = false;; noted = true) {
			unsigned first = e->n ? e->next % e->n : 0;
			for (unsigned k = 0; k < e->n && n < max; k++) {
				unsigned i = (first + k) % e->n;
				struct pw_sock *s = pw_conn_of(e->regs[i].fd);
				if (!s)
					continue;
				if (!noted)
					pw_chan_note_cpu(s->chan);
				uint32_t ev = pw_ep_check(&e->regs[i], s, true);
				if (ev) {
					out[n].events = ev;
					out[n].data = e->regs[i].data;
					n++;
					e->next = i + 1; /* the kernel's ready list rotates too */
				}
			}
			if (n)
				break;
			pthread_mutex_unlock(&e->lock);
			bool more = pw_spin_more(&sp);
			pthread_mutex_lock(&e->lock);
			if (!more)
				break;
		}
		/* 2. nothing: arm each so its socket wakes the kernel's epoll */
		if (!n)
			for (unsigned i = 0; i < e->n; i++) {
				struct pw_sock *s = pw_conn_of(e->regs[i].fd);
				if (!s || e->regs[i].disabled)
					continue;
				short want =
					(short)(((e->regs[i].events & EPOLLIN) ? POLLIN : 0) |
						((e->regs[i].events & EPOLLOUT) ? POLLOUT : 0));
				if (pw_prepare(s, want) && pw_ep_check(&e->regs[i], s, false))
					n = -1; /* ready after all: do not sleep */
			}
		pthread_mutex_unlock(&e->lock);
		if (n < 0) {
			pw_spin_start(&sp, 0);
			continue; /* collect it in step 1 */
		}

		int64_t left = -1;
		if (timeout_ns >= 0) {
			uint64_t el = pw_now_ns() - start;
			left = el >= (uint64_t)timeout_ns ? 0 : timeout_ns - (int64_t)el;
		}
		if (n) {
			/* Rings are ready: look at the kernel's fds now and then
			 * only, not at the cost of a syscall per event. */
			uint64_t now = pw_now_ns();
			if (now - e->kernel_ns < PW_KERNEL_EVERY_NS)
				return n;
			e->kernel_ns = now;
			left = 0;
		}
		/* 3. the kernel: other fds, and sleeping */
		int k = pw_kernel_epoll(epfd, out + n, max - n, left, mask, call);
		if (k < 0)
			return n ? n : k;
		/* Events of accelerated fds from the kernel are wake bytes: the
		 * rings say what is true. Drop duplicates and spurious ones. */
		pthread_mutex_lock(&e->lock);
		int total = n;
		for (int j = n; j < n + k; j++) {
			struct pw_ep_reg *reg = NULL;
			for (unsigned i = 0; i < e->n; i++)
				if (e->regs[i].data.u64 == out[j].data.u64 &&
				    pw_conn_of(e->regs[i].fd)) {
					reg = &e->regs[i];
					break;
				}
			if (!reg) {
				out[total++] = out[j];
				continue;
			}
			struct pw_sock *s = pw_conn_of(reg->fd);
			/* A hang-up on the socket: the peer's process is gone. */
			pw_chan_note_events(s->chan,
					    (short)(((out[j].events & EPOLLHUP) ? POLLHUP : 0) |
						    ((out[j].events & EPOLLERR) ? POLLERR : 0)));
			if (left != 0)
				pw_chan_spread(s->chan); /* woken by the peer: leave its CPU */
			bool dup = false;
			for (int d = 0; d < n; d++)
				dup |= out[d].data.u64 == out[j].data.u64;
			uint32_t kout = out[j].events & EPOLLOUT;
			uint32_t ev = dup ? 0 : pw_ep_check(reg, s, true);
			/* The kernel's writability edge counts once after
			 * registration and then only after a write found the ring
			 * full (EAGAIN or a short count): wake bytes also re-queue
			 * the socket in its epoll. */
			uint32_t seq = pw_chan_tx_mark(s->chan);
			if ((reg->events & EPOLLET) && !dup && kout &&
			    (!reg->out_seen || reg->out_mark != seq)) {
				ev |= kout;
				reg->out_seen = true;
				reg->out_mark = seq;
			}
			if (ev) {
				out[total].events = ev;
				out[total].data = reg->data;
				total++;
			}
		}
		pthread_mutex_unlock(&e->lock);
		if (total || left == 0)
			return total;
	}
}

PW_EXPORT int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	pw_ensure();
	return pw_epoll_core(epfd, ev, max, timeout < 0 ? -1 : (int64_t)timeout * 1000000, NULL,
			     PW_W_EPOLL_WAIT);
}

PW_EXPORT int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout,
			  const sigset_t *mask)
{
	pw_ensure();
	return pw_epoll_core(epfd, ev, max, timeout < 0 ? -1 : (int64_t)timeout * 1000000, mask,
			     PW_W_EPOLL_PWAIT);
}

PW_EXPORT int epoll_pwait2(int epfd, struct epoll_event *ev, int max, const struct timespec *ts,
			   const sigset_t *mask)
{
	pw_ensure();
	return pw_epoll_core(epfd, ev, max, ts ? (int64_t)pw_ts_ns(ts) : -1, mask,
			     PW_W_EPOLL_PWAIT2);
}

/* ---- fork ---- */

static bool pw_mark_shared_one(int fd, struct pw_sock *s, void *arg)
{
	(void)fd;
	(void)arg;
	if (atomic_exchange(&s->shared, true))
		return true;
	/* Both processes share the generation page: the cached flag stays good
	 * until one of them changes it. */
	atomic_store(&s->nb_gen, pw_flags_gen_now());
	if (s->kind == PW_K_CONN)
		pw_chan_mark_shared(s->chan);
	return true;
}

/* After fork every accelerated socket is held by two processes: closing one
 * copy must not end the connection for the other. */
static void pw_mark_shared(void)
{
	pw_fdtab_each(pw_mark_shared_one, NULL);
}

static void pw_atfork_parent(void)
{
	if (atomic_load(&pw_nconns) || atomic_load(&pw_nlisten))
		pw_mark_shared();
}

static void pw_atfork_child(void)
{
	pw_ctl_atfork_child();
	if (atomic_load(&pw_nconns) || atomic_load(&pw_nlisten))
		pw_mark_shared();
}

/* ---- exec ---- */

/*
 * A program started by exec() has none of our state, so an accelerated fd it
 * inherits would show it the channel's wake bytes. Each such fd (without
 * FD_CLOEXEC) is replaced by a socket whose reads give end of file and whose
 * writes fail with EPIPE: the new program sees the connection closed, and so
 * does the peer once the old socket's last copy goes. If exec fails, the
 * originals come back.
 */
struct pw_exec_saved {
	int fd, keep;
};

/* The longest PODWIRE_FDS list: fd:id:shared, comma-separated. */
#define PW_FDS_LIST_MAX 4096

/* Does the program about to run load us too (LD_PRELOAD in its environment)? */
static bool pw_env_preloads_us(char *const envp[])
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (!strncmp(envp[i], "LD_PRELOAD=", 11) && strstr(envp[i], "libpodwire"))
			return true;
	return false;
}

/*
 * Before exec: accelerated fds the new program inherits. If it loads us too,
 * they are listed in PODWIRE_FDS (a new environment in *@envp) and it takes
 * them over; otherwise each becomes a closed socket (see above).
 */
static int pw_exec_prepare(struct pw_exec_saved **ret, char *const **envp, char ***ret_newenv)
{
	struct pw_exec_saved *sv = NULL;
	bool carry = pw_env_preloads_us(*envp);
	char *list = NULL;
	size_t used = 0;
	int n = 0, cap = 0;

	*ret = NULL;
	*ret_newenv = NULL;
	if (!atomic_load(&pw_nconns) || pw_cfg.restricted)
		return 0;
	/* On the heap: the exec()ing thread's stack may be small. */
	if (carry && !(list = malloc(PW_FDS_LIST_MAX)))
		carry = false;
	if (list)
		list[0] = '\0';
	for (unsigned p = 0; p < PW_PAGES; p++) {
		_Atomic(struct pw_sock *) *page =
			atomic_load_explicit(&pw_fdtab[p], memory_order_acquire);
		if (!page)
			continue;
		for (unsigned i = 0; i < (1u << PW_PAGE_BITS); i++) {
			struct pw_sock *s = atomic_load_explicit(&page[i], memory_order_relaxed);
			int fd = (int)(p << PW_PAGE_BITS | i);
			int dead[2];

			if (!s || s->kind != PW_K_CONN)
				continue;
			int fl = pw_real.fcntl(fd, F_GETFD);
			if (fl < 0 || (fl & FD_CLOEXEC))
				continue;
			if (carry) {
				int w = snprintf(list + used, PW_FDS_LIST_MAX - used,
						 "%s%d:%llu:%d", used ? "," : "", fd,
						 (unsigned long long)s->id,
						 (int)atomic_load(&s->shared));
				if (w > 0 && (size_t)w < PW_FDS_LIST_MAX - used) {
					used += (size_t)w;
					continue;
				}
			}
			if (n == cap) {
				int ncap = cap ? cap * 2 : 8;
				struct pw_exec_saved *nsv = realloc(sv, (size_t)ncap * sizeof(*sv));
				if (!nsv)
					continue; /* this fd keeps its socket: best effort */
				sv = nsv;
				cap = ncap;
			}
			int keep = pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
			if (keep < 0)
				continue;
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dead) < 0) {
				pw_real.close(keep);
				continue;
			}
			pw_real.close(dead[1]);
			pw_real.dup2(dead[0], fd); /* inherited: no FD_CLOEXEC */
			pw_real.close(dead[0]);
			sv[n++] = (struct pw_exec_saved){ .fd = fd, .keep = keep };
		}
	}
	if (used) {
		size_t cnt = 0;
		while ((*envp)[cnt])
			cnt++;
		char **ne = malloc((cnt + 2) * sizeof(*ne));
		char *var = malloc(used + sizeof("PODWIRE_FDS="));
		if (ne && var) {
			size_t k = 0;
			for (size_t i = 0; i < cnt; i++)
				if (strncmp((*envp)[i], "PODWIRE_FDS=", 12) != 0)
					ne[k++] = (*envp)[i];
			strcpy(var, "PODWIRE_FDS=");
			strcat(var, list);
			ne[k++] = var;
			ne[k] = NULL;
			*envp = ne;
			*ret_newenv = ne;
		} else {
			free(ne);
			free(var);
		}
	}
	free(list);
	*ret = sv;
	return n;
}

static void pw_exec_undo(struct pw_exec_saved *sv, int n)
{
	int saved = errno;

	for (int i = 0; i < n; i++) {
		pw_real.dup3(sv[i].keep, sv[i].fd, 0);
		pw_real.close(sv[i].keep);
	}
	free(sv);
	errno = saved;
}

/* @envp names the environment variable the call passes on, which
 * pw_exec_prepare may replace with one that lists the carried fds. */
#define PW_EXEC_WRAP(envp, call)                                                                   \
	do {                                                                                       \
		struct pw_exec_saved *sv;                                                          \
		char **newenv;                                                                     \
		pw_ensure();                                                                       \
		int n = pw_exec_prepare(&sv, &(envp), &newenv);                                    \
		int r = (call);                                                                    \
		pw_exec_undo(sv, n);                                                               \
		if (newenv) {                                                                      \
			int saved = errno;                                                         \
			for (size_t i = 0; newenv[i]; i++)                                         \
				if (!strncmp(newenv[i], "PODWIRE_FDS=", 12))                       \
					free(newenv[i]);                                           \
			free(newenv);                                                              \
			errno = saved;                                                             \
		}                                                                                  \
		return r;                                                                          \
	} while (0)

typedef int (*pw_execve_fn)(const char *, char *const[], char *const[]);
typedef int (*pw_execvpe_fn)(const char *, char *const[], char *const[]);
typedef int (*pw_fexecve_fn)(int, char *const[], char *const[]);

static void *pw_next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

PW_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	PW_EXEC_WRAP(envp, ((pw_execve_fn)pw_next("execve"))(path, argv, envp));
}

PW_EXPORT int execv(const char *path, char *const argv[])
{
	char *const *envp = environ;
	PW_EXEC_WRAP(envp, ((pw_execve_fn)pw_next("execve"))(path, argv, envp));
}

PW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	PW_EXEC_WRAP(envp, ((pw_execvpe_fn)pw_next("execvpe"))(file, argv, envp));
}

PW_EXPORT int execvp(const char *file, char *const argv[])
{
	char *const *envp = environ;
	PW_EXEC_WRAP(envp, ((pw_execvpe_fn)pw_next("execvpe"))(file, argv, envp));
}

PW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	PW_EXEC_WRAP(envp, ((pw_fexecve_fn)pw_next("fexecve"))(fd, argv, envp));
}

/* The execl family: collect the variadic arguments into an argv. */
static char **pw_collect_args(const char *arg0, va_list ap, char ***ret_envp)
{
	size_t n = 1, cap = 16;
	char **argv = malloc(cap * sizeof(*argv));

	if (!argv)
		return NULL;
	argv[0] = (char *)arg0;
	for (char *a = arg0 ? va_arg(ap, char *) : NULL;; a = va_arg(ap, char *)) {
		if (n + 1 >= cap) {
			char **na = realloc(argv, (cap *= 2) * sizeof(*argv));
			if (!na) {
				free(argv);
				return NULL;
			}
			argv = na;
		}
		argv[n++] = a;
		if (!a)
			break;
	}
	if (ret_envp)
		*ret_envp = va_arg(ap, char **);
	return argv;
}

enum pw_execl_kind { PW_EXECL, PW_EXECLP, PW_EXECLE };

/* The execl family collects its variadic arguments into an argv and runs
 * through the interposed execv, execvp or execve. */
static int pw_execl_common(enum pw_execl_kind kind, const char *path, const char *arg0, va_list ap)
{
	char **envp = NULL;
	char **argv = pw_collect_args(arg0, ap, kind == PW_EXECLE ? &envp : NULL);

	if (!argv)
		return pw_fail(ENOMEM);
	int r = kind == PW_EXECLP   ? execvp(path, argv)
		: kind == PW_EXECLE ? execve(path, argv, envp)
				    : execv(path, argv);
	int saved = errno;
	free(argv);
	errno = saved;
	return r;
}

PW_EXPORT int execl(const char *path, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int r = pw_execl_common(PW_EXECL, path, arg0, ap);
	va_end(ap);
	return r;
}

PW_EXPORT int execlp(const char *file, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int r = pw_execl_common(PW_EXECLP, file, arg0, ap);
	va_end(ap);
	return r;
}

PW_EXPORT int execle(const char *path, const char *arg0, ...)
{
	va_list ap;
	va_start(ap, arg0);
	int r = pw_execl_common(PW_EXECLE, path, arg0, ap);
	va_end(ap);
	return r;
}

/* ---- close_range, closefrom ---- */

/* The kernel closed [first, last]: forget what we knew of those fds. */
static void pw_forget_range(unsigned first, unsigned last)
{
	for (unsigned p = first >> PW_PAGE_BITS; p < PW_PAGES && p <= (last >> PW_PAGE_BITS); p++) {
		if (!atomic_load_explicit(&pw_fdtab[p], memory_order_acquire))
			continue;
		for (unsigned i = 0; i < (1u << PW_PAGE_BITS); i++) {
			unsigned fd = p << PW_PAGE_BITS | i;
			if (fd < first || fd > last)
				continue;
			struct pw_sock *s = pw_take((int)fd);
			if (!s)
				continue;
			if (s->kind == PW_K_CONN)
				pw_ep_forget_everywhere((int)fd);
			pw_unref(s, (int)fd, true);
		}
	}
	for (unsigned fd = first; fd <= last && fd < 65536; fd++) {
		struct pw_ep *e = atomic_exchange(&pw_eptab[fd], NULL);
		if (e) {
			free(e->regs);
			free(e);
		}
	}
}

typedef int (*pw_close_range_fn)(unsigned, unsigned, int);

PW_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	pw_ensure();
	static pw_close_range_fn real;
	if (!real)
		real = (pw_close_range_fn)dlsym(RTLD_NEXT, "close_range");
	int r = real ? real(first, last, flags) : pw_fail(ENOSYS);
	if (r == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
		pw_forget_range(first, last);
	return r;
}

PW_EXPORT void closefrom(int lowfd)
{
	pw_ensure();
	static void (*real)(int);
	if (!real)
		real = (void (*)(int))dlsym(RTLD_NEXT, "closefrom");
	if (real)
		real(lowfd);
	pw_forget_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u);
}

/* ---- after exec: take over the accelerated fds the old program passed on ---- */

/* The fd cannot be taken over: make it a closed socket, never raw wake bytes. */
static void pw_take_over_fail(int fd)
{
	int dead[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dead) < 0)
		return;
	pw_real.close(dead[1]);
	int fl = pw_real.fcntl(fd, F_GETFD);
	pw_real.dup3(dead[0], fd, fl >= 0 && (fl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	pw_real.close(dead[0]);
}

static void pw_take_over_one(int fd, uint64_t id, bool shared)
{
	struct pw_wire_reattach req = { .id = id };
	struct pw_chan_opts co = {
		.spin_ns = pw_cfg.spin_ns,
		.no_spin = pw_cfg.spin_ns == 0,
		.hup_is_eof = true,
		.kernel_restart = true,
		.reattach = true,
	};
	struct pw_chan *chan = NULL;
	struct pw_msg m;
	int fds[2];

	int n = pw_ctl_call(PW_MSG_REATTACH, &req, sizeof(req), &fd, 1, &m, fds);
	if (n != 2 || m.type != PW_MSG_CONN || m.u.conn.side > 1) {
		for (int i = 0; i < n; i++)
			pw_real.close(fds[i]);
		pw_warn("fd %d: cannot take over connection %llu after exec", fd,
			(unsigned long long)id);
		pw_take_over_fail(fd);
		return;
	}
	pw_real.close(fds[1]); /* our own fd, passed back */
	struct pw_sock *s = pw_sock_new(PW_K_CONN);
	int fl = pw_real.fcntl(fd, F_GETFL);
	if (!s || fl < 0 || pw_chan_open(fds[0], fd, m.u.conn.side, &co, &chan) < 0) {
		free(s);
		pw_real.close(fds[0]);
		pw_take_over_fail(fd);
		return;
	}
	pw_real.close(fds[0]);
	pw_addr_from_wire(&m.u.conn.local, &s->local, &s->family);
	pw_addr_from_wire(&m.u.conn.peer, &s->peer, NULL);
	s->chan = chan;
	s->id = id;
	atomic_store(&s->nonblock, (fl & O_NONBLOCK) != 0);
	if (shared) {
		atomic_store(&s->nb_gen, PW_GEN_ASK); /* the other holders are not of this image */
		atomic_store(&s->shared, true);
		pw_chan_mark_shared(chan);
	}
	pw_put(fd, s);
	atomic_fetch_add(&pw_nconns, 1);
	pw_dbg("fd %d: connection %llu taken over after exec", fd, (unsigned long long)id);
}

/* Do @a and @b refer to one socket? */
static bool pw_same_file(int a, int b)
{
	struct stat sa, sb;

	return pw_sys_fstat(a, &sa) == 0 && pw_sys_fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

static void pw_take_over(void)
{
	const char *v = getenv("PODWIRE_FDS");
	char *save = NULL;

	if (!v)
		return;
	char *list = strndup(v, PW_FDS_LIST_MAX);
	unsetenv("PODWIRE_FDS"); /* ours alone: not for the programs we start */
	if (!list)
		return;
	/* fd numbers already taken over, to find dups of one socket among them */
	int done[64];
	unsigned ndone = 0;

	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int fd = -1, sh = 0;
		unsigned long long id = 0;

		if (sscanf(tok, "%d:%llu:%d", &fd, &id, &sh) != 3 || fd < 0 || pw_get(fd))
			continue;
		if (pw_cfg.disabled) {
			pw_take_over_fail(fd);
			continue;
		}
		/* inetd, socat nofork, systemd Accept=yes: one connection on fds 0
		 * and 1. Dups of one socket share one state, as they did before
		 * exec; two states of one end would each move its indices. */
		int same = -1;
		for (unsigned i = 0; i < ndone && same < 0; i++)
			if (pw_get(done[i])->id == id && pw_same_file(done[i], fd))
				same = done[i];
		if (same >= 0) {
			pw_dup_track(same, fd);
			continue;
		}
		pw_take_over_one(fd, id, sh != 0);
		if (pw_get(fd) && ndone < PW_ARRAY_SIZE(done))
			done[ndone++] = fd;
	}
	free(list);
}

/* ---- seccomp: stepping aside ---- */

/*
 * A process in seccomp mode dies (or gets an error) for any system call its
 * filter does not expect, and the library's calls are not the application's:
 * OpenSSH's pre-authentication child allows read and write but not recvfrom,
 * sendto, fcntl or sched_setaffinity. So, before a filter is installed
 * (prctl(PR_SET_SECCOMP), or seccomp() through libc's syscall()), the
 * library steps aside for the process:
 *   - each accelerated connection becomes a kernel stream that podwired
 *     relays to the channel, if the process can still reach the router and
 *     receive a descriptor; the kernel then answers every call on it;
 *   - if it cannot (OpenSSH has chrooted, changed user and set
 *     RLIMIT_NOFILE to its open fds by then), the connection stays a channel
 *     that touches its socket with read, write and poll only
 *     (pw_chan_restrict), and the library's waits use the application's
 *     own poll, select or epoll call;
 *   - registered listeners are dropped (new clients use the kernel), and no
 *     new connection is accelerated.
 * A process that starts under a filter (container runtimes put every
 * process under one) is accelerated as usual: see docs/PRELOAD.md. A filter
 * installed with a bare system call instruction is not seen.
 */
#define PW_SECCOMP_MODE_STRICT	   1
#define PW_SECCOMP_MODE_FILTER	   2
#define PW_SECCOMP_SET_MODE_STRICT 0
#define PW_SECCOMP_SET_MODE_FILTER 1

static pthread_mutex_t pw_restrict_lock = PTHREAD_MUTEX_INITIALIZER;

struct pw_swap {
	const struct pw_sock *s;
	int stream;
};

/* Put the stream under @fd if it refers to the swapped connection. */
static bool pw_restrict_swap_one(int fd, struct pw_sock *s, void *arg)
{
	const struct pw_swap *w = arg;

	if (s != w->s)
		return true;
	int fdfl = pw_real.fcntl(fd, F_GETFD);
	pw_ep_swap_file(fd, true);
	pw_real.dup3(w->stream, fd, fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	pw_ep_swap_file(fd, false);
	/* Not freed: another thread may be inside a call on it. */
	pw_take(fd);
	return true;
}

static bool pw_highest_fd(int fd, struct pw_sock *s, void *arg)
{
	(void)s;
	*(int *)arg = fd;
	return true;
}

/* Can this process still get a relayed stream for each connection: reach
 * the router, receive a descriptor and put it on every fd number? */
static bool pw_restrict_can_relay(void)
{
	struct rlimit rl;
	int high = -1;

	if (!pw_ctl_reachable() || getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return false;
	pw_fdtab_each(pw_highest_fd, &high);
	/* dup3 onto fd N needs N below the limit; a received fd needs a free
	 * number below it, as does this probe. */
	if (high >= 0 && (rlim_t)high >= rl.rlim_cur)
		return false;
	int probe = pw_real.fcntl(0, F_DUPFD_CLOEXEC, 0);
	if (probe < 0)
		probe = pw_real.fcntl(high >= 0 ? high : 2, F_DUPFD_CLOEXEC, 0);
	if (probe < 0)
		return false;
	pw_real.close(probe);
	return true;
}

struct pw_restriction {
	bool relay;
	unsigned restricted;
};

static bool pw_restrict_one(int fd, struct pw_sock *s, void *arg)
{
	struct pw_restriction *r = arg;

	if (s->kind == PW_K_VIRT) /* a kernel socket already */
		return true;
	if (s->kind == PW_K_LISTEN) {
		/* Its router connections could not be claimed here. */
		pw_listener_drop(fd, s);
		pw_take(fd);
		return true;
	}
	int stream = r->relay ? pw_relay_stream(fd, s, PW_RELAY_NOW) : -1;
	if (stream >= 0) {
		struct pw_swap w = { .s = s, .stream = stream };
		pw_fdtab_each(pw_restrict_swap_one, &w);
		pw_real.close(stream);
	} else {
		pw_chan_restrict(s->chan); /* once per fd of it: harmless */
		r->restricted++;
	}
	return true;
}

static void pw_restrict(void)
{
	pthread_mutex_lock(&pw_restrict_lock);
	if (pw_cfg.restricted) {
		pthread_mutex_unlock(&pw_restrict_lock);
		return;
	}
	/* (Nothing accelerated, nothing to ask the router.) */
	bool any = atomic_load(&pw_nconns) || atomic_load(&pw_nlisten);
	struct pw_restriction r = { .relay = any && pw_restrict_can_relay() };
	pw_fdtab_each(pw_restrict_one, &r);
	if (!r.restricted)
		atomic_store(&pw_nconns, 0);
	atomic_store(&pw_nlisten, 0);
	pw_cfg.disabled = true;
	pw_cfg.restricted = true; /* and silent from now on: see pw_plog() */
	pw_ctl_close();
	pthread_mutex_unlock(&pw_restrict_lock);
}

PW_EXPORT int prctl(int option, ...)
{
	static int (*real)(int, ...);
	unsigned long a[4];
	va_list ap;

	pw_ensure();
	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP &&
	    (a[0] == PW_SECCOMP_MODE_STRICT || (a[0] == PW_SECCOMP_MODE_FILTER && a[1])))
		pw_restrict();
	if (!real)
		real = (int (*)(int, ...))dlsym(RTLD_NEXT, "prctl");
	return real ? real(option, a[0], a[1], a[2], a[3]) : pw_fail(ENOSYS);
}

PW_EXPORT long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	/* libseccomp probes with a NULL program: that installs nothing. */
	if ((nr == SYS_seccomp && (a[0] == PW_SECCOMP_SET_MODE_STRICT ||
				   (a[0] == PW_SECCOMP_SET_MODE_FILTER && a[2]))) ||
	    (nr == SYS_prctl && a[0] == PR_SET_SECCOMP &&
	     (a[1] == PW_SECCOMP_MODE_STRICT || (a[1] == PW_SECCOMP_MODE_FILTER && a[2])))) {
		pw_ensure();
		pw_restrict();
	}
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ---- stdio streams over accelerated sockets ---- */

/*
 * glibc's FILE functions read and write fds with internal calls that never
 * reach us, so a stream on an accelerated socket would see the channel's wake
 * bytes. fdopen() gives such an fd a cookie stream whose I/O goes through the
 * interposed calls. (Its fileno() is -1: a known difference.)
 */
static ssize_t pw_cookie_read(void *cookie, char *buf, size_t n)
{
	ssize_t r;

	do
		r = read((int)(intptr_t)cookie, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

static ssize_t pw_cookie_write(void *cookie, const char *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = write((int)(intptr_t)cookie, buf + done, n - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return done ? (ssize_t)done : -1;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

static int pw_cookie_close(void *cookie)
{
	return close((int)(intptr_t)cookie);
}

PW_EXPORT FILE *fdopen(int fd, const char *mode)
{
	static FILE *(*real)(int, const char *);

	pw_ensure();
	if (!real)
		real = (FILE * (*)(int, const char *)) dlsym(RTLD_NEXT, "fdopen");
	if (!pw_conn_of(fd))
		return real ? real(fd, mode) : NULL;
	cookie_io_functions_t io = {
		.read = pw_cookie_read,
		.write = pw_cookie_write,
		.seek = NULL,
		.close = pw_cookie_close,
	};
	FILE *f = fopencookie((void *)(intptr_t)fd, mode, io);
	if (f)
		setvbuf(f, NULL, _IOFBF, BUFSIZ);
	return f;
}
