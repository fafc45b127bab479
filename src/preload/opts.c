// SPDX-License-Identifier: MIT
/*
 * Socket options and addresses of accelerated sockets.
 */
#include "preload.h"

/* Options carried over from the kernel socket an accelerated fd replaces
 * (set before connect, or inherited from the listener by accept). */
const struct pw_carried_opt pw_carried_opts[] = {
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

/* ---- socket options ---- */

int pw_opt_carried(int level, int name)
{
	for (unsigned i = 0; i < PW_ARRAY_SIZE(pw_carried_opts); i++)
		if (pw_carried_opts[i].level == level && pw_carried_opts[i].name == name)
			return (int)i;
	return -1;
}

/* Options whose value the kernel reduces to on or off (an int, at least
 * sizeof(int) long; getsockopt gives 0 or 1 back). */
static bool pw_opt_is_flag(int level, int name)
{
	return (level == IPPROTO_TCP && (name == TCP_NODELAY || name == TCP_CORK)) ||
	       (level == SOL_SOCKET && name == SO_KEEPALIVE);
}

struct pw_opt *pw_opt_find(struct pw_sock *s, int level, int name)
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

int pw_pristine(int family)
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

/* A pristine socket's value of each carried option, per family: the
 * kernel's defaults, read once (they are asked for at every connection). */
static struct pw_pristine_val {
	bool ok;
	socklen_t len;
	unsigned char v[32];
} pw_pristine_vals[2][PW_ARRAY_SIZE(pw_carried_opts)];
static pthread_once_t pw_pristine_once[2] = { PTHREAD_ONCE_INIT, PTHREAD_ONCE_INIT };

static void pw_pristine_read(int family)
{
	int fd = pw_pristine(family);

	for (size_t i = 0; fd >= 0 && i < PW_ARRAY_SIZE(pw_carried_opts); i++) {
		struct pw_pristine_val *d = &pw_pristine_vals[family == AF_INET6][i];

		d->len = sizeof(d->v);
		d->ok = pw_real.getsockopt(fd, pw_carried_opts[i].level, pw_carried_opts[i].name,
					   d->v, &d->len) == 0;
	}
}

static void pw_pristine_read4(void)
{
	pw_pristine_read(AF_INET);
}

static void pw_pristine_read6(void)
{
	pw_pristine_read(AF_INET6);
}

/*
 * Call @fn for each carried option of the kernel socket @fd (of @family) that
 * differs from a pristine socket's: only what the application changed.
 */
void pw_opts_changed_each(int fd, int family,
			  void (*fn)(int level, int name, void *val, socklen_t len, void *arg),
			  void *arg)
{
	bool v6 = family == AF_INET6;

	pthread_once(&pw_pristine_once[v6], v6 ? pw_pristine_read6 : pw_pristine_read4);
	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_carried_opts); i++) {
		const struct pw_pristine_val *d = &pw_pristine_vals[v6][i];
		unsigned char v[32];
		socklen_t lv = sizeof(v);
		int level = pw_carried_opts[i].level, name = pw_carried_opts[i].name;

		if (pw_real.getsockopt(fd, level, name, v, &lv) < 0)
			continue;
		if (d->ok && d->len == lv && !memcmp(v, d->v, lv))
			continue;
		fn(level, name, v, lv, arg);
	}
}

static void pw_opt_keep(int level, int name, void *val, socklen_t len, void *arg)
{
	pw_opt_store(arg, level, name, val, len);
}

/* Carry the options of the kernel socket @fd into @s, which reads them back
 * as set (only what differs from the default needs remembering). */
void pw_opts_carry(struct pw_sock *s, int fd)
{
	pw_opts_changed_each(fd, s->family, pw_opt_keep, s);
}

void pw_opts_set_each(int fd, uint32_t set,
		      void (*fn)(int level, int name, void *val, socklen_t len, void *arg),
		      void *arg)
{
	for (unsigned i = 0; set && i < PW_ARRAY_SIZE(pw_carried_opts); i++) {
		unsigned char v[32];
		socklen_t lv = sizeof(v);
		int level = pw_carried_opts[i].level, name = pw_carried_opts[i].name;

		if ((set & (1u << i)) && pw_real.getsockopt(fd, level, name, v, &lv) == 0)
			fn(level, name, v, lv, arg);
	}
}

bool pw_opts_flags_only(uint32_t set)
{
	for (unsigned i = 0; set && i < PW_ARRAY_SIZE(pw_carried_opts); i++)
		if ((set & (1u << i)) &&
		    !pw_opt_is_flag(pw_carried_opts[i].level, pw_carried_opts[i].name))
			return false;
	return true;
}

bool pw_opts_reset_flags(int fd, uint32_t set)
{
	/* Off is a flag's default: anything else's depends (sysctls). */
	if (!pw_opts_flags_only(set))
		return false;
	for (unsigned i = 0; set && i < PW_ARRAY_SIZE(pw_carried_opts); i++) {
		int off = 0;

		if ((set & (1u << i)) &&
		    pw_real.setsockopt(fd, pw_carried_opts[i].level, pw_carried_opts[i].name, &off,
				       sizeof(off)) < 0)
			return false;
	}
	return true;
}

/* pw_opt_keep, and a timeout's milliseconds for the transport. */
static void pw_opt_keep_timeo(int level, int name, void *val, socklen_t len, void *arg)
{
	struct pw_sock *s = arg;
	struct timeval tv;

	pw_opt_store(s, level, name, val, len);
	if (level != SOL_SOCKET || (name != SO_RCVTIMEO && name != SO_SNDTIMEO) ||
	    len != sizeof(tv))
		return;
	memcpy(&tv, val, sizeof(tv));
	/* (As pw_timeo_ms() reads it, from the value in hand.) */
	*(name == SO_RCVTIMEO ? &s->rcvtimeo_ms : &s->sndtimeo_ms) =
		(int)(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

void pw_opts_carry_set(struct pw_sock *s, int fd, uint32_t set)
{
	pw_opts_set_each(fd, set, pw_opt_keep_timeo, s);
}

/* ---- addresses and options ---- */

/* A connection's virtual addresses: a channel's, or a socket to another node. */
static inline struct pw_sock *pw_named_of(int fd)
{
	struct pw_sock *s = pw_fdtab_get(fd);
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

static int pw_opt_put_int(void *val, socklen_t *len, int v)
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
	struct pw_sock *s = pw_fdtab_get(fd);

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
		return pw_opt_put_int(val, len, s->family);
	if (s->kind != PW_K_CONN) {
		/* an IPPROTO_IPV6 option of a socket to another node: below */
	} else if (level == SOL_SOCKET) {
		switch (name) {
		case SO_ERROR:
			return pw_opt_put_int(val, len, 0);
		case SO_TYPE:
			return pw_opt_put_int(val, len, SOCK_STREAM);
		case SO_PROTOCOL:
			return pw_opt_put_int(val, len, IPPROTO_TCP);
		case SO_ACCEPTCONN:
			return pw_opt_put_int(val, len, 0);
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
	int pristine = pw_cfg.restricted
			       ? atomic_load_explicit(&pw_pristine_fd[s->family == AF_INET6],
						      memory_order_acquire)
			       : pw_pristine(s->family);
	return pristine < 0 ? pw_fail(ENOPROTOOPT)
			    : pw_real.getsockopt(pristine, level, name, val, len);
}

PW_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	pw_ensure();
	uint32_t set;
	if (pw_fresh_get(fd, &set)) { /* only a fresh socket's options are noted */
		int i = pw_opt_carried(level, name);
		if (i >= 0)
			pw_fresh_note_opt(fd, (unsigned)i);
		else
			pw_fresh_note_odd(fd);
	}
	struct pw_sock *s = pw_opts_of(fd, level, name);
	if (!s) {
		struct pw_sock *ls = pw_fdtab_get(fd);
		if (!ls || ls->kind != PW_K_LISTEN)
			return pw_real.setsockopt(fd, level, name, val, len);
		pw_listener_opts_stale(ls);
		int r = pw_real.setsockopt(fd, level, name, val, len);
		if (r == 0)
			pw_listener_opts_mirror(ls, level, name, val, len);
		return r;
	}

	if (pw_cfg.restricted) {
		/* No throwaway socket under seccomp: keep the value as given. */
		if (!val || len > sizeof(((struct pw_opt *)0)->val))
			return pw_fail(EINVAL);
		return pw_opt_store(s, level, name, val, len) < 0 ? pw_fail(ENOMEM) : 0;
	}
	if (pw_opt_is_flag(level, name) && val && len >= (socklen_t)sizeof(int)) {
		/* What the kernel keeps of a flag is whether the int is 0: no
		 * need to ask it (nginx toggles TCP_NODELAY and TCP_CORK around
		 * every HTTP/2 response it sends with sendfile). */
		int on;

		memcpy(&on, val, sizeof(on));
		on = on != 0;
		return pw_opt_store(s, level, name, &on, sizeof(on)) < 0 ? pw_fail(ENOMEM) : 0;
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
