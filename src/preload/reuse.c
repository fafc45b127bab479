// SPDX-License-Identifier: MIT
/*
 * Reuse of channels (docs/CHANNEL.md, "Reuse"; docs/PRELOAD.md): a
 * connection that ends in order leaves its channel parked in both
 * processes, and the next connection from this process to the same
 * destination claims it: no router, memfd, mapping or page fault.
 *
 * A connecting end is parked in one table per process, by destination. An
 * accepting end is parked by listener, its socket in the listener's pq, an
 * epoll fd of this process that stands beside the accept queue wherever the
 * application waits for the listener (epoll sets, poll, a blocking accept):
 * a claim makes the listener readable, and accept() takes it.
 *
 * Only a connection that nothing else can see parks: made here by connect()
 * or accept(), never duplicated, passed or shared by fork, and closed in
 * order with nothing unread. Its fd leaves the application's epoll sets by
 * hand, since its file lives on in the parked copy.
 *
 * The client's table also holds pooled connections to other nodes' pods
 * (pool.c): kernel TCP sockets the router dialled before the application
 * asked, which wait here by destination until connect() starts them. On the
 * server's side they wait in the kernel, in the listener's socket on the
 * underlay, which stands in pq too.
 */
#include "preload.h"

/*
 * Ends parked per process, of each kind: each holds an fd, so at most a
 * sixteenth of the fd limit (RLIMIT_NOFILE's soft value, read at each
 * park), and at most the table. A call that runs out of fds while ends are
 * parked drops them all and tries again (pw_reuse_release_fds).
 */
#define PW_REUSE_CLI 256u
#define PW_REUSE_SRV 256u
#define PW_REUSE_MIN 4u

/* A pooled connection kept longer than this is given up, not started: the
 * listener it was dialled to may have gone, and its port another's. */
#define PW_POOL_AGE_NS (10ull * 1000000000u)

/* pq's tag of the listener's socket on the underlay (not a slot). */
#define PW_UL_TAG UINT32_MAX

enum { PW_RENT_FREE, PW_RENT_CHAN, PW_RENT_TCP };

struct pw_rent {
	void *p;       /* CHAN: the parked end (the transport's) */
	uint64_t key;  /* connecting: the destination; accepting: the listener's lserial */
	uint64_t used; /* when last parked, for eviction */
	struct pw_wire_conn body;	 /* its ids and addresses, as the router gave them */
	int tcp;			 /* TCP: the pooled socket */
	uint32_t gen;			 /* accepting: the tag of its registration in pq */
	uint8_t kind;			 /* PW_RENT_* */
	uint64_t since;			 /* TCP: when it came (pw_now_ns) */
	struct pw_wire_pool_token token; /* TCP: what starts it */
};

static pthread_mutex_t pw_reuse_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pw_rent pw_rcli[PW_REUSE_CLI], pw_rsrv[PW_REUSE_SRV];
static uint64_t pw_reuse_tick;
static uint32_t pw_reuse_gen;
/* Parked ends of each kind: connect() and accept() look only if any. */
static _Atomic unsigned pw_reuse_ncli, pw_reuse_nsrv;
static _Atomic uint64_t pw_lserial_next;
/* The process the tables are of: a vfork child shares them, and must not
 * give them up at its exit. */
static pid_t pw_reuse_pid;

/* A destination, as a socket of @family (AF_INET6: dual-stack, v4-mapped)
 * reaches it: a reused channel shows the addresses in that family. */
static uint64_t pw_reuse_dst_key(const struct sockaddr_in *dst, int family)
{
	return (uint64_t)(family == AF_INET6) << 48 | (uint64_t)ntohl(dst->sin_addr.s_addr) << 16 |
	       ntohs(dst->sin_port);
}

/*
 * Give up the parked end in @e (under the lock). An accepting end that its
 * client claimed and we have not taken is a connection in our hands: it
 * goes back to its listener's queue (the router's PW_MSG_REQUEUE), where
 * another process that holds the listener takes it; the client reads a
 * reset only if none is left, as from a listener closed with the
 * connection in its queue.
 */
static void pw_rent_drop(struct pw_rent *e, _Atomic unsigned *count)
{
	struct pw_wire_reattach rq = { .id = e->body.id };
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];

	if (e->kind == PW_RENT_TCP) {
		/* Not started: nothing was sent on it. */
		pw_real.close(e->tcp);
	} else {
		int sock = pw_xport_shm_parked_fd(e->p);
		if (pw_xport_shm_release(e->p) == -EBUSY &&
		    (pw_ctl_call(PW_MSG_REQUEUE, &rq, sizeof(rq), &sock, 1, &m, fds) != 0 ||
		     m.type != PW_MSG_OK))
			pw_xport_shm_drop(e->p); /* resets it */
		else
			pw_xport_shm_forget(e->p);
	}
	e->kind = PW_RENT_FREE;
	e->p = NULL;
	atomic_fetch_sub_explicit(count, 1, memory_order_relaxed);
}

/* Give up the parked ends of @tab (@n slots) under the lock: those of @key,
 * or all (PW_REUSE_ANY). */
#define PW_REUSE_ANY UINT64_MAX
static void pw_rents_drop(struct pw_rent *tab, unsigned n, uint64_t key, _Atomic unsigned *count)
{
	for (unsigned i = 0; i < n; i++)
		if (tab[i].kind && (key == PW_REUSE_ANY || tab[i].key == key))
			pw_rent_drop(&tab[i], count);
}

/* How many ends of one kind may be parked now (the fd limit read at most
 * once a second: a pool takes in many at once). Under the lock. */
static unsigned pw_reuse_cap(unsigned table)
{
	static uint64_t read_at;
	static rlim_t limit = RLIM_INFINITY;
	uint64_t now = pw_now_ns();
	struct rlimit rl;

	if (!read_at || now - read_at >= 1000000000u) {
		limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : RLIM_INFINITY;
		read_at = now;
	}
	rlim_t cap = limit != RLIM_INFINITY ? limit / 16 : table;
	return cap < PW_REUSE_MIN ? PW_REUSE_MIN : cap > table ? table : (unsigned)cap;
}

/*
 * A slot of @tab (@n slots) for one more end, of which at most @cap may be
 * parked: a free one while there are fewer, else the least recently parked
 * goes.
 */
static struct pw_rent *pw_rent_slot(struct pw_rent *tab, unsigned n, unsigned cap,
				    _Atomic unsigned *count)
{
	struct pw_rent *free_slot = NULL, *lru = NULL;
	unsigned used = 0;

	for (unsigned i = 0; i < n; i++) {
		struct pw_rent *e = &tab[i];
		if (!e->kind) {
			if (!free_slot)
				free_slot = e;
			continue;
		}
		used++;
		if (!lru || e->used < lru->used)
			lru = e;
	}
	struct pw_rent *e = used >= cap || !free_slot ? lru : free_slot;
	if (e->kind)
		pw_rent_drop(e, count);
	return e;
}

/*
 * Keep @v in a slot, under the lock: an accepting end (@acc), watched in pq
 * by its socket @fd, or a connecting one. NULL if pq would not take it: then
 * it is dropped already.
 */
static struct pw_rent *pw_rent_add(bool acc, const struct pw_rent *v, int pq, int fd)
{
	struct pw_rent *e = acc ? pw_rent_slot(pw_rsrv, PW_REUSE_SRV, pw_reuse_cap(PW_REUSE_SRV),
					       &pw_reuse_nsrv)
				: pw_rent_slot(pw_rcli, PW_REUSE_CLI, pw_reuse_cap(PW_REUSE_CLI),
					       &pw_reuse_ncli);

	if (!pw_reuse_pid)
		pw_reuse_pid = getpid();
	*e = *v;
	e->used = ++pw_reuse_tick;
	atomic_fetch_add_explicit(acc ? &pw_reuse_nsrv : &pw_reuse_ncli, 1, memory_order_relaxed);
	if (!acc)
		return e;
	e->gen = ++pw_reuse_gen;
	struct epoll_event ev = { .events = EPOLLIN,
				  .data.u64 = (uint64_t)e->gen << 32 | (uint64_t)(e - pw_rsrv) };
	if (pw_real.epoll_ctl(pq, EPOLL_CTL_ADD, fd, &ev) == 0)
		return e;
	pw_rent_drop(e, &pw_reuse_nsrv); /* unseen, a claim or start would hang */
	return NULL;
}

bool pw_reuse_may_park(const struct pw_sock *s)
{
	return s->kind == PW_K_CONN && s->ops->park && !pw_cfg.no_reuse && !pw_cfg.restricted &&
	       atomic_load_explicit(&s->reusable, memory_order_relaxed) &&
	       !atomic_load_explicit(&s->shared, memory_order_relaxed);
}

int pw_reuse_park(int fd, struct pw_sock *s)
{
	if (!pw_reuse_may_park(s))
		return -1;
	bool acc = s->lserial != 0;
	int keep = pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
	struct pw_wire_conn body = { .id = s->id, .side = acc };
	int pq = -1;
	void *p = NULL;

	if (keep < 0)
		return -1;
	pw_addr_to_wire(&s->local, s->family, &body.local);
	pw_addr_to_wire(&s->peer, s->family, &body.peer);
	pthread_mutex_lock(&pw_reuse_lock);
	if (acc) {
		/* Its listener, if it is still the one it came from. */
		struct pw_sock *ls = pw_fdtab_get(s->lfd);
		if (!ls || ls->kind != PW_K_LISTEN || ls->lserial != s->lserial ||
		    !atomic_load_explicit(&ls->park_ok, memory_order_relaxed) ||
		    (pq = atomic_load_explicit(&ls->pq, memory_order_relaxed)) < 0)
			goto refused;
	}
	uint64_t key = acc ? s->lserial : pw_reuse_dst_key(&s->peer, s->family);
	if (s->ops->park(s->xp, keep, &p) < 0)
		goto refused;
	/* Parked: @s's transport state and @fd are gone. */
	pw_rent_add(acc,
		    &(struct pw_rent){ .kind = PW_RENT_CHAN, .p = p, .key = key, .body = body }, pq,
		    keep);
	pthread_mutex_unlock(&pw_reuse_lock);
	return 0;
refused:
	pthread_mutex_unlock(&pw_reuse_lock);
	pw_real.close(keep);
	return -1;
}

bool pw_reuse_connect_ok(int fd, int family)
{
	return atomic_load_explicit(&pw_reuse_ncli, memory_order_relaxed) && !pw_cfg.no_reuse &&
	       pw_fresh_family(fd) == family;
}

/* Connecting ends of @kind parked for @key, under the lock. */
static unsigned pw_rcli_count(uint8_t kind, uint64_t key)
{
	unsigned n = 0;

	for (unsigned i = 0; i < PW_REUSE_CLI; i++)
		n += pw_rcli[i].kind == kind && pw_rcli[i].key == key;
	return n;
}

bool pw_reuse_growing(const struct sockaddr_in *dst, int family)
{
	if (!atomic_load_explicit(&pw_reuse_ncli, memory_order_relaxed))
		return false;
	pthread_mutex_lock(&pw_reuse_lock);
	unsigned n = pw_rcli_count(PW_RENT_CHAN, pw_reuse_dst_key(dst, family));
	unsigned all = atomic_load_explicit(&pw_reuse_ncli, memory_order_relaxed);
	unsigned cap = pw_reuse_cap(PW_REUSE_CLI);
	pthread_mutex_unlock(&pw_reuse_lock);
	return n > 0 && all < cap;
}

unsigned pw_reuse_pooled(const struct sockaddr_in *dst, int family)
{
	if (!atomic_load_explicit(&pw_reuse_ncli, memory_order_relaxed))
		return 0;
	pthread_mutex_lock(&pw_reuse_lock);
	unsigned n = pw_rcli_count(PW_RENT_TCP, pw_reuse_dst_key(dst, family));
	pthread_mutex_unlock(&pw_reuse_lock);
	return n;
}

int pw_reuse_pool_put(int sock, const struct pw_wire_conn *conn,
		      const struct pw_wire_pool_token *token)
{
	struct pw_rent v = { .kind = PW_RENT_TCP,
			     .tcp = sock,
			     .body = *conn,
			     .token = *token,
			     .since = pw_now_ns() };
	struct sockaddr_in peer;
	int family;

	if (pw_cfg.restricted || pw_addr_from_wire(&conn->peer, &peer, &family) < 0) {
		pw_real.close(sock);
		return -1;
	}
	v.key = pw_reuse_dst_key(&peer, family);
	pthread_mutex_lock(&pw_reuse_lock);
	struct pw_rent *e = pw_rent_add(false, &v, -1, sock);
	pthread_mutex_unlock(&pw_reuse_lock);
	return e ? 0 : -1;
}

int pw_reuse_connect(int fd, const struct sockaddr_in *dst, int family)
{
	uint32_t set = 0;

	/* (The caller asked pw_reuse_connect_ok() first.) */
	if (!pw_fresh_get(fd, &set))
		return -1;
	uint64_t key = pw_reuse_dst_key(dst, family);
	pthread_mutex_lock(&pw_reuse_lock);
	for (unsigned i = 0; i < PW_REUSE_CLI; i++) {
		struct pw_rent *e = &pw_rcli[i];
		struct pw_wire_conn body = e->body;
		void *xp = NULL;

		if (!e->kind || e->key != key)
			continue;
		if (e->kind == PW_RENT_TCP) {
			struct pw_wire_pool_token token = e->token;
			int sock = e->tcp;
			bool stale = pw_now_ns() - e->since > PW_POOL_AGE_NS;
			e->kind = PW_RENT_FREE;
			atomic_fetch_sub_explicit(&pw_reuse_ncli, 1, memory_order_relaxed);
			pthread_mutex_unlock(&pw_reuse_lock);
			if (stale) {
				pw_real.close(sock);
				pthread_mutex_lock(&pw_reuse_lock);
				continue;
			}
			/* Made like the application's socket first: after the
			 * SYN, only what must follow it. */
			int fl, fdfl;
			if (pw_adopt_tcp_prep(fd, sock, false, &fl, &fdfl) == 0 &&
			    pw_pool_start(sock, &token, fl & O_NONBLOCK) == 0) {
				/* The socket it replaces is the next socket()'s (sock.c). */
				int sp = pw_spare_hold(fd, set);
				/* (On failure @sock is closed: the server reads its end.) */
				if (pw_adopt_tcp_install(fd, sock, &body, fl, fdfl) < 0) {
					if (sp >= 0)
						pw_real.close(sp);
					return -1;
				}
				pw_spare_put(sp, family, set, fl & O_NONBLOCK);
				pw_dbg("fd %d: connected over podwire (pooled, to another node)",
				       fd);
				return 0;
			}
			/* Refused: its listener is gone, and so are the rest
			 * dialled there. */
			pw_real.close(sock);
			pw_pool_given_up(dst, family);
			pthread_mutex_lock(&pw_reuse_lock);
			pw_rents_drop(pw_rcli, PW_REUSE_CLI, key, &pw_reuse_ncli);
			break;
		}
		int r = pw_xport_shm_claim(e->p, &xp);
		if (r == -EAGAIN)
			continue; /* the server has not closed its end yet */
		if (r < 0) {
			pw_rent_drop(e, &pw_reuse_ncli);
			continue;
		}
		e->kind = PW_RENT_FREE;
		e->p = NULL;
		atomic_fetch_sub_explicit(&pw_reuse_ncli, 1, memory_order_relaxed);
		pthread_mutex_unlock(&pw_reuse_lock);
		if (pw_adopt_parked(fd, pw_xport_shm.fd(xp), xp, &body, set) < 0) {
			/* The server takes a connection that resets. */
			pw_xport_shm.abort(xp);
			return -1;
		}
		pw_dbg("fd %d: connected over podwire (conn %llu, a parked channel)", fd,
		       (unsigned long long)body.id);
		return 0;
	}
	pthread_mutex_unlock(&pw_reuse_lock);
	return -1;
}

int pw_reuse_accept(int lfd, struct pw_sock *ls, int flags)
{
	int pq = atomic_load_explicit(&ls->pq, memory_order_relaxed);
	struct epoll_event ev[8];
	int n;

	if (pq < 0)
		return -EAGAIN;
	/* No parked ends: only the socket on the underlay can have one. */
	if (!atomic_load_explicit(&pw_reuse_nsrv, memory_order_relaxed))
		return pw_pool_accept(lfd, ls, flags);
	do
		n = pw_real.epoll_wait(pq, ev, (int)PW_ARRAY_SIZE(ev), 0);
	while (n < 0 && errno == EINTR);
	for (int i = 0; i < n; i++) {
		uint64_t slot = ev[i].data.u64 & 0xffffffffu;
		uint32_t gen = (uint32_t)(ev[i].data.u64 >> 32);
		void *xp = NULL;

		if (slot == PW_UL_TAG) {
			int fd = pw_pool_accept(lfd, ls, flags);
			if (fd >= 0)
				return fd;
			continue;
		}
		if (slot >= PW_REUSE_SRV)
			continue;
		pthread_mutex_lock(&pw_reuse_lock);
		struct pw_rent *e = &pw_rsrv[slot];
		struct pw_wire_conn body = e->body;
		if (!e->kind || e->gen != gen || e->key != ls->lserial) {
			pthread_mutex_unlock(&pw_reuse_lock);
			continue; /* another thread took it */
		}
		int sock = pw_xport_shm_parked_fd(e->p);
		int r = pw_xport_shm_take(e->p, &xp);
		if (r == -EAGAIN) {
			pthread_mutex_unlock(&pw_reuse_lock);
			continue; /* a late byte of the last connection */
		}
		pw_real.epoll_ctl(pq, EPOLL_CTL_DEL, sock, NULL);
		if (r < 0) {
			pw_rent_drop(e, &pw_reuse_nsrv);
			pthread_mutex_unlock(&pw_reuse_lock);
			continue;
		}
		e->kind = PW_RENT_FREE;
		e->p = NULL;
		atomic_fetch_sub_explicit(&pw_reuse_nsrv, 1, memory_order_relaxed);
		pthread_mutex_unlock(&pw_reuse_lock);
		int fd = pw_accept_parked(lfd, ls, sock, xp, &body, flags);
		if (fd >= 0)
			return fd;
	}
	return -EAGAIN;
}

/* This process's pq for @ls: made at listen(), and after fork by the first
 * that needs it (the parent's is not ours to wait on). With the listener's
 * socket on the underlay in it, which other nodes' pooled connections wait
 * in whether this process parks channels or not. */
int pw_reuse_ready_fd(struct pw_sock *ls)
{
	int pq = atomic_load_explicit(&ls->pq, memory_order_relaxed);
	int ul = atomic_load_explicit(&ls->ul, memory_order_relaxed);

	if (pq >= 0 || ((pw_cfg.no_reuse || pw_cfg.restricted) && ul < 0))
		return pq;
	int n = epoll_create1(EPOLL_CLOEXEC);
	if (n < 0)
		return -1;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = PW_UL_TAG };
	if (ul >= 0 && pw_real.epoll_ctl(n, EPOLL_CTL_ADD, ul, &ev) < 0) {
		pw_real.close(n);
		return -1;
	}
	if (!atomic_compare_exchange_strong_explicit(&ls->pq, &pq, n, memory_order_relaxed,
						     memory_order_relaxed)) {
		pw_real.close(n);
		return pq;
	}
	return n;
}

int pw_reuse_listen(int lfd, struct pw_sock *ls)
{
	ls->lserial = atomic_fetch_add_explicit(&pw_lserial_next, 1, memory_order_relaxed) + 1;
	atomic_init(&ls->pq, -1);
	atomic_init(&ls->park_ok, true);
	int pq = pw_reuse_ready_fd(ls);
	if (pq >= 0)
		pw_ep_queue(lfd, pq, true, false);
	return pq;
}

void pw_reuse_listener_gone(struct pw_sock *ls)
{
	int pq = atomic_exchange_explicit(&ls->pq, -1, memory_order_relaxed);

	if (atomic_load_explicit(&pw_reuse_nsrv, memory_order_relaxed)) {
		pthread_mutex_lock(&pw_reuse_lock);
		pw_rents_drop(pw_rsrv, PW_REUSE_SRV, ls->lserial, &pw_reuse_nsrv);
		pthread_mutex_unlock(&pw_reuse_lock);
	}
	if (pq >= 0)
		pw_real.close(pq);
	/* Pooled connections still in it reset, as in a kernel listener's
	 * backlog at its close, once no process holds it. */
	int ul = atomic_exchange_explicit(&ls->ul, -1, memory_order_relaxed);
	if (ul >= 0)
		pw_real.close(ul);
}

/* At exit: a claim that came in since the last accept goes back to the
 * listener's queue (pw_rent_drop), not down with this process. (A process
 * that ends in _exit(2), or killed, takes such a claim with it: its client
 * reads a reset.) */
__attribute__((destructor)) static void pw_reuse_fini(void)
{
	if (!atomic_load_explicit(&pw_reuse_nsrv, memory_order_relaxed) || pw_reuse_pid != getpid())
		return;
	pthread_mutex_lock(&pw_reuse_lock);
	pw_rents_drop(pw_rsrv, PW_REUSE_SRV, PW_REUSE_ANY, &pw_reuse_nsrv);
	pthread_mutex_unlock(&pw_reuse_lock);
}

/* Every parked end goes (the process enters seccomp mode, or ran out of
 * fds: pw_reuse_release_fds). */
void pw_reuse_drop_all(void)
{
	pthread_mutex_lock(&pw_reuse_lock);
	pw_rents_drop(pw_rcli, PW_REUSE_CLI, PW_REUSE_ANY, &pw_reuse_ncli);
	pw_rents_drop(pw_rsrv, PW_REUSE_SRV, PW_REUSE_ANY, &pw_reuse_nsrv);
	pthread_mutex_unlock(&pw_reuse_lock);
}

bool pw_reuse_release_fds(void)
{
	if (!atomic_load_explicit(&pw_reuse_ncli, memory_order_relaxed) &&
	    !atomic_load_explicit(&pw_reuse_nsrv, memory_order_relaxed))
		return false;
	pw_reuse_drop_all();
	return true;
}

/* This process's copies of the parked ends of @tab go, with no word to
 * their peers (they are the parent's). */
static void pw_rents_forget(struct pw_rent *tab, unsigned n, _Atomic unsigned *count)
{
	for (unsigned i = 0; i < n; i++) {
		if (tab[i].kind == PW_RENT_TCP)
			pw_real.close(tab[i].tcp);
		else if (tab[i].kind == PW_RENT_CHAN)
			pw_xport_shm_forget(tab[i].p);
		tab[i].kind = PW_RENT_FREE;
		tab[i].p = NULL;
	}
	atomic_store_explicit(count, 0, memory_order_relaxed);
}

/* In the child after fork: the parked ends are the parent's (this process
 * holds copies of their sockets and mappings, which go), and so is each
 * listener's pq. A listener in an epoll set the child inherited may be
 * waited for there, where this process's own pq would not be: no parking
 * for it. */
static bool pw_reuse_child_listener(int fd, struct pw_sock *s, void *arg)
{
	(void)arg;
	if (s->kind != PW_K_LISTEN)
		return true;
	int pq = atomic_exchange_explicit(&s->pq, -1, memory_order_relaxed);
	if (pq >= 0)
		pw_real.close(pq);
	if (pw_ep_has_fd_unlocked(fd))
		atomic_store_explicit(&s->park_ok, false, memory_order_relaxed);
	return true;
}

void pw_reuse_atfork_child(void)
{
	/* Another thread of the parent may have held the lock: ours is new. */
	pthread_mutex_init(&pw_reuse_lock, NULL);
	pw_rents_forget(pw_rcli, PW_REUSE_CLI, &pw_reuse_ncli);
	pw_rents_forget(pw_rsrv, PW_REUSE_SRV, &pw_reuse_nsrv);
	pw_reuse_pid = 0;
	if (atomic_load_explicit(&pw_nlisten, memory_order_relaxed))
		pw_fdtab_each(pw_reuse_child_listener, NULL);
}
