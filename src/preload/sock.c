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

PW_EXPORT int socket(int domain, int type, int protocol)
{
	pw_ensure();
	int fd = pw_real.socket(domain, type, protocol);
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
