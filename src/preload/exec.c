// SPDX-License-Identifier: MIT
/*
 * fork and exec: sharing after fork, carrying connections across exec
 * and taking them over in the new program.
 */
#include "preload.h"

/* ---- fork ---- */

static bool pw_mark_shared_one(int fd, struct pw_sock *s, void *arg)
{
	(void)fd;
	(void)arg;
	if (atomic_exchange_explicit(&s->shared, true, memory_order_relaxed))
		return true;
	/* Both processes share the generation page: the cached flag stays good
	 * until one of them changes it. */
	atomic_store_explicit(&s->nb_gen, pw_flags_gen_now(), memory_order_relaxed);
	if (s->kind == PW_K_CONN)
		s->ops->mark_shared(s->xp);
	return true;
}

/* After fork every accelerated socket is held by two processes: closing one
 * copy must not end the connection for the other. */
static void pw_mark_shared(void)
{
	pw_fdtab_each(pw_mark_shared_one, NULL);
}

void pw_atfork_parent(void)
{
	pw_fresh_forget_flags();
	if (atomic_load_explicit(&pw_nconns, memory_order_relaxed) ||
	    atomic_load_explicit(&pw_nlisten, memory_order_relaxed))
		pw_mark_shared();
}

void pw_atfork_child(void)
{
	pw_fresh_forget_flags();
	pw_ctl_atfork_child();
	pw_reuse_atfork_child();
	pw_pool_atfork_child();
	pw_spare_atfork_child();
	if (atomic_load_explicit(&pw_nconns, memory_order_relaxed) ||
	    atomic_load_explicit(&pw_nlisten, memory_order_relaxed))
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

/* Put a socket whose peer is gone on @fd: reads give end of file and writes
 * EPIPE. @cloexec: the new fd's FD_CLOEXEC. Returns false if it could not. */
static bool pw_fd_make_closed(int fd, bool cloexec)
{
	int dead[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dead) < 0)
		return false;
	pw_real.close(dead[1]);
	int r = pw_real.dup3(dead[0], fd, cloexec ? O_CLOEXEC : 0);
	pw_real.close(dead[0]);
	return r >= 0;
}

/* What pw_exec_prepare() gathers over the fd table. */
struct pw_exec_walk {
	bool carry; /* the new program loads us: list the fds */
	char *list; /* PODWIRE_FDS's value */
	size_t used;
	struct pw_exec_saved *sv; /* fds turned into closed sockets */
	int n, cap;
};

/* List @fd for the new program to take over; false if the list is full. */
static bool pw_exec_list(struct pw_exec_walk *w, int fd, const struct pw_sock *s)
{
	int k = snprintf(w->list + w->used, PW_FDS_LIST_MAX - w->used, "%s%d:%llu:%d",
			 w->used ? "," : "", fd, (unsigned long long)s->id,
			 (int)atomic_load_explicit(&s->shared, memory_order_relaxed));

	if (k <= 0 || (size_t)k >= PW_FDS_LIST_MAX - w->used)
		return false;
	w->used += (size_t)k;
	return true;
}

/* Turn @fd into a closed socket, keeping the original to put back. */
static void pw_exec_hide(struct pw_exec_walk *w, int fd)
{
	if (w->n == w->cap) {
		int ncap = w->cap ? w->cap * 2 : 8;
		struct pw_exec_saved *nsv = realloc(w->sv, (size_t)ncap * sizeof(*nsv));
		if (!nsv)
			return; /* this fd keeps its socket: best effort */
		w->sv = nsv;
		w->cap = ncap;
	}
	int keep = pw_real.fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (keep < 0)
		return;
	if (!pw_fd_make_closed(fd, false)) { /* inherited: no FD_CLOEXEC */
		pw_real.close(keep);
		return;
	}
	w->sv[w->n++] = (struct pw_exec_saved){ .fd = fd, .keep = keep };
}

static bool pw_exec_one(int fd, struct pw_sock *s, void *arg)
{
	struct pw_exec_walk *w = arg;

	if (s->kind != PW_K_CONN)
		return true;
	int fl = pw_real.fcntl(fd, F_GETFD);
	if (fl < 0 || (fl & FD_CLOEXEC))
		return true;
	if (!(w->carry && s->ops->exec_carry && pw_exec_list(w, fd, s)))
		pw_exec_hide(w, fd);
	return true;
}

/* A copy of @envp with PODWIRE_FDS=@list instead of any it had; NULL if
 * memory runs out. */
static char **pw_exec_env(char *const *envp, const char *list)
{
	static const char name[] = "PODWIRE_FDS=";
	size_t cnt = 0, len = strlen(list);

	while (envp && envp[cnt])
		cnt++;
	char **ne = malloc((cnt + 2) * sizeof(*ne));
	char *var = malloc(sizeof(name) + len);
	if (!ne || !var) {
		free(ne);
		free(var);
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < cnt; i++)
		if (strncmp(envp[i], "PODWIRE_FDS=", 12) != 0)
			ne[k++] = envp[i];
	memcpy(var, name, sizeof(name) - 1);
	memcpy(var + sizeof(name) - 1, list, len + 1);
	ne[k++] = var;
	ne[k] = NULL;
	return ne;
}

/*
 * Before exec: accelerated fds the new program inherits. If it loads us too,
 * they are listed in PODWIRE_FDS (a new environment in *@envp) and it takes
 * them over; otherwise each becomes a closed socket (see above).
 */
static int pw_exec_prepare(struct pw_exec_saved **ret_saved, char *const **envp, char ***ret_newenv)
{
	struct pw_exec_walk w = { .carry = pw_env_preloads_us(*envp) };

	*ret_saved = NULL;
	*ret_newenv = NULL;
	if (!atomic_load_explicit(&pw_nconns, memory_order_relaxed) || pw_cfg.restricted)
		return 0;
	/* On the heap: the exec()ing thread's stack may be small. */
	if (w.carry && !(w.list = malloc(PW_FDS_LIST_MAX)))
		w.carry = false;
	pw_fdtab_each(pw_exec_one, &w);
	if (w.used) {
		w.list[w.used] = '\0';
		char **ne = pw_exec_env(*envp, w.list);
		if (ne) {
			*envp = ne;
			*ret_newenv = ne;
		}
	}
	free(w.list);
	*ret_saved = w.sv;
	return w.n;
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

static void *pw_real_next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

PW_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	PW_EXEC_WRAP(envp, ((pw_execve_fn)pw_real_next("execve"))(path, argv, envp));
}

PW_EXPORT int execv(const char *path, char *const argv[])
{
	char *const *envp = environ;
	PW_EXEC_WRAP(envp, ((pw_execve_fn)pw_real_next("execve"))(path, argv, envp));
}

PW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	PW_EXEC_WRAP(envp, ((pw_execvpe_fn)pw_real_next("execvpe"))(file, argv, envp));
}

PW_EXPORT int execvp(const char *file, char *const argv[])
{
	char *const *envp = environ;
	PW_EXEC_WRAP(envp, ((pw_execvpe_fn)pw_real_next("execvpe"))(file, argv, envp));
}

PW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	PW_EXEC_WRAP(envp, ((pw_fexecve_fn)pw_real_next("fexecve"))(fd, argv, envp));
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

/* execl, execlp and execle: each collects its arguments and runs through
 * pw_execl_common(). */
#define PW_EXECL_DEFINE(name, kind)                                                                \
	PW_EXPORT int name(const char *path, const char *arg0, ...)                                \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, arg0);                                                                \
		int r = pw_execl_common(kind, path, arg0, ap);                                     \
		va_end(ap);                                                                        \
		return r;                                                                          \
	}

PW_EXECL_DEFINE(execl, PW_EXECL)
PW_EXECL_DEFINE(execlp, PW_EXECLP)
PW_EXECL_DEFINE(execle, PW_EXECLE)

/* ---- after exec: take over the accelerated fds the old program passed on ---- */

/* The fd cannot be taken over: make it a closed socket, never raw wake bytes. */
static void pw_take_over_fail(int fd)
{
	int fl = pw_real.fcntl(fd, F_GETFD);

	pw_fd_make_closed(fd, fl >= 0 && (fl & FD_CLOEXEC));
}

static void pw_take_over_one(int fd, uint64_t id, bool shared)
{
	struct pw_wire_reattach req = { .id = id };
	struct pw_msg m;
	int fds[PW_WIRE_MAX_FDS];

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
	/* The socket is ours already (@fd): only the channel is attached. */
	struct pw_sock *s = pw_conn_new(&pw_xport_shm, &m.u.conn);
	int fl = pw_real.fcntl(fd, F_GETFL);
	if (!s || fl < 0 || pw_xport_shm_attach(fds[0], fd, m.u.conn.side, true, &s->xp) < 0) {
		free(s);
		pw_real.close(fds[0]);
		pw_take_over_fail(fd);
		return;
	}
	pw_real.close(fds[0]);
	s->id = id;
	atomic_store_explicit(&s->nonblock, (fl & O_NONBLOCK) != 0, memory_order_relaxed);
	if (shared) {
		/* the other holders are not of this image */
		atomic_store_explicit(&s->nb_gen, PW_GEN_ASK, memory_order_relaxed);
		atomic_store_explicit(&s->shared, true, memory_order_relaxed);
		s->ops->mark_shared(s->xp);
	}
	pw_fdtab_put(fd, s);
	atomic_fetch_add_explicit(&pw_nconns, 1, memory_order_relaxed);
	pw_dbg("fd %d: connection %llu taken over after exec", fd, (unsigned long long)id);
}

/* Do @a and @b refer to one socket? */
static bool pw_same_file(int a, int b)
{
	struct stat sa, sb;

	return pw_sys_fstat(a, &sa) == 0 && pw_sys_fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	       sa.st_ino == sb.st_ino;
}

/* One decimal field of a PODWIRE_FDS item, strictly, then @sep. */
static int pw_take_over_field(const char **p, char sep, uint64_t max, uint64_t *ret_value)
{
	const char *s = *p;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || v > max || *end != sep)
		return -EINVAL;
	*ret_value = v;
	*p = end + (sep != '\0');
	return 0;
}

/* "fd:id:shared", as pw_exec_list() wrote it. */
static int pw_take_over_item(const char *s, int *ret_fd, uint64_t *ret_id, int *ret_shared)
{
	uint64_t fd, id, sh;

	if (pw_take_over_field(&s, ':', INT_MAX, &fd) < 0 ||
	    pw_take_over_field(&s, ':', UINT64_MAX, &id) < 0 ||
	    pw_take_over_field(&s, '\0', 1, &sh) < 0)
		return -EINVAL;
	*ret_fd = (int)fd;
	*ret_id = id;
	*ret_shared = (int)sh;
	return 0;
}

void pw_take_over(void)
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
		int fd, sh;
		uint64_t id;

		if (pw_take_over_item(tok, &fd, &id, &sh) < 0 || pw_fdtab_get(fd))
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
			if (pw_fdtab_get(done[i])->id == id && pw_same_file(done[i], fd))
				same = done[i];
		if (same >= 0) {
			pw_dup_track(same, fd);
			continue;
		}
		pw_take_over_one(fd, id, sh != 0);
		if (pw_fdtab_get(fd) && ndone < PW_ARRAY_SIZE(done))
			done[ndone++] = fd;
	}
	free(list);
}
