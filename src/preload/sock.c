// SPDX-License-Identifier: MIT
/*
 * Socket state: a new pw_sock, addresses, O_NONBLOCK of sockets shared
 * after fork.
 */
#include "preload.h"

/* ---- O_NONBLOCK of sockets shared after fork ---- */

/*
 * One word in memory shared by the whole process tree (MAP_SHARED, made
 * before any fork): a process that changes O_NONBLOCK of a shared socket
 * moves it on, and the others ask the kernel again (pw_sock_nonblock). A
 * socket's open file is shared across fork, its flag with it.
 */
_Atomic uint32_t *pw_flags_gen;
_Atomic unsigned pw_nconns;
_Atomic unsigned pw_nlisten;

void pw_flags_gen_init(void)
{
	void *p = mmap(NULL, sizeof(*pw_flags_gen), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p != MAP_FAILED)
		pw_flags_gen = p;
}

/* ---- helpers ---- */

/*
 * The family of a TCP socket that speaks IPv4: AF_INET, or AF_INET6 when it
 * is dual-stack (not IPV6_V6ONLY: Java's sockets, Node's listeners); 0 for
 * anything else, which the kernel keeps.
 */
int pw_tcp_family(int fd)
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
int pw_sockname4(int fd, struct sockaddr_in *ret_addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (pw_real.getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return pw_addr_to4((struct sockaddr *)&ss, len, ret_addr) < 0 ? -1 : 0;
}

/* Copy an address out the way the kernel does: truncate, report the full size. */
void pw_copy_raw(const void *a, socklen_t alen, struct sockaddr *addr, socklen_t *len)
{
	if (!addr || !len)
		return;
	memcpy(addr, a, *len < alen ? *len : alen);
	*len = alen;
}

/* @sin as a socket of @family shows it (v4-mapped for AF_INET6). */
void pw_copy_addr(const struct sockaddr_in *sin, int family, struct sockaddr *addr, socklen_t *len)
{
	struct sockaddr_storage ss;
	socklen_t n = pw_addr_from4(sin, family, &ss);

	pw_copy_raw(&ss, n, addr, len);
}

int pw_timeo_ms(int fd, int opt)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (pw_real.getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0)
		return 0;
	return (int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

/*
 * The spare. A pooled connect() (reuse.c) puts its connection under the
 * application's fd with dup3(), which destroys the socket that was there:
 * that, and making the next one with socket(), are about a tenth of a
 * short connection's time. Kept instead (one per process), with its flag
 * options off again, it is the next socket() of its kind: a new number for
 * it (F_DUPFD: the lowest free, as socket() gives) and its old one closed.
 * Only a socket whose every change is known is kept: plain (fdtab.c), no
 * option set but flags; one kind (family, O_NONBLOCK)
 * in one word, the number (plus one) above it, so that a thread takes all
 * of it or none. Like every fd of ours, it is assumed to stay in this
 * process's network namespace.
 */
static _Atomic uint64_t pw_spare;
#define PW_SPARE_NB (1u << 16)

int pw_spare_hold(int fd, uint32_t set)
{
	if (atomic_load_explicit(&pw_spare, memory_order_relaxed) || !pw_fresh_plain(fd) ||
	    !pw_opts_flags_only(set))
		return -1;
	/* Out of the application's low numbers, like ctl.c's. */
	return pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 100);
}

void pw_spare_put(int sp, int family, uint32_t set, bool nonblock)
{
	uint64_t none = 0,
		 v = (uint64_t)(sp + 1) << 32 | (uint32_t)family | (nonblock ? PW_SPARE_NB : 0);

	if (sp < 0)
		return;
	/* (Relaxed: the fd is the kernel's to order; the word is all there is.) */
	if (!pw_opts_reset_flags(sp, set) ||
	    !atomic_compare_exchange_strong_explicit(&pw_spare, &none, v, memory_order_relaxed,
						     memory_order_relaxed))
		pw_real.close(sp);
}

int pw_spare_take(int domain, int type, int protocol)
{
	uint64_t v = atomic_load_explicit(&pw_spare, memory_order_relaxed);
	uint32_t kind = (uint32_t)domain | (type & SOCK_NONBLOCK ? PW_SPARE_NB : 0);

	if (!v || (uint32_t)v != kind || (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM ||
	    (protocol != 0 && protocol != IPPROTO_TCP) ||
	    !atomic_compare_exchange_strong_explicit(&pw_spare, &v, 0, memory_order_relaxed,
						     memory_order_relaxed))
		return -1;
	int sp = (int)(v >> 32) - 1;
	int fd = pw_real.fcntl(sp, type & SOCK_CLOEXEC ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	int e = errno;
	pw_real.close(sp); /* (at EMFILE, the number socket() then takes) */
	if (fd >= 0)
		pw_dbg("fd %d: the spare socket (FEDERATION.md, \"Pools\")", fd);
	errno = e;
	return fd;
}

void pw_spare_forget_range(unsigned first, unsigned last)
{
	uint64_t v = atomic_load_explicit(&pw_spare, memory_order_relaxed);
	unsigned sp = (unsigned)(v >> 32) - 1;

	if (v && sp >= first && sp <= last)
		atomic_compare_exchange_strong_explicit(&pw_spare, &v, 0, memory_order_relaxed,
							memory_order_relaxed);
}

void pw_spare_forget(int fd)
{
	if (fd >= 0)
		pw_spare_forget_range((unsigned)fd, (unsigned)fd);
}

void pw_spare_atfork_child(void)
{
	/* The parent's: a socket() in each would be one socket in two. */
	uint64_t v = atomic_exchange_explicit(&pw_spare, 0, memory_order_relaxed);

	if (v)
		pw_real.close((int)(v >> 32) - 1);
}

PW_EXPORT int socket(int domain, int type, int protocol)
{
	pw_ensure();
	int fd = pw_spare_take(domain, type, protocol);
	if (fd < 0)
		fd = pw_real.socket(domain, type, protocol);
	/* Out of fds, while parked channels hold some (reuse.c): theirs go. */
	if (fd < 0 && errno == EMFILE && pw_reuse_release_fds())
		fd = pw_real.socket(domain, type, protocol);

	/* Fresh: connect() need not read its options back (fdtab.c). */
	if (fd >= 0 && (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP))
		pw_fresh_set_tcp(fd, domain, type);
	else if (fd >= 0)
		pw_fresh_set(fd, false);
	return fd;
}

struct pw_sock *pw_sock_new(enum pw_kind kind)
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
void pw_sock_set_nonblock(struct pw_sock *s, bool on)
{
	atomic_store_explicit(&s->nonblock, on, memory_order_relaxed);
	if (atomic_load_explicit(&s->shared, memory_order_relaxed) && pw_flags_gen) {
		/* Pairs with the acquire in pw_flags_gen_now(): the others see
		 * the new generation, and ask the kernel for the flag. */
		uint32_t gen = atomic_fetch_add_explicit(pw_flags_gen, 1, memory_order_release) + 1;
		atomic_store_explicit(&s->nb_gen, gen & 0x7fffffffu, memory_order_relaxed);
	}
}
