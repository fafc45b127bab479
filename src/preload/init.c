// SPDX-License-Identifier: MIT
/*
 * Library start: configuration from the environment, the real libc
 * functions, logging (docs/PRELOAD.md).
 */
#include "preload.h"

extern char **environ;

struct pw_real_fns pw_real;
const char *pw_single_flag;
struct pw_cfg pw_cfg = { .log_fd = 2 };

/* ---- logging ---- */

/* The library's log sink (common/log.h): one line per message on
 * PODWIRE_LOG_FILE or stderr, written with the real write(2). */
static void pw_preload_log(enum pw_log_level lvl, const char *msg)
{
	char buf[PW_LOG_SINK_MAX + 64];

	/* Not under seccomp: the filter may not allow the write, and programs
	 * that sandbox themselves also cap file sizes (SIGXFSZ). */
	if (pw_cfg.restricted || !pw_real.write)
		return;
	int n = snprintf(buf, sizeof(buf), "libpodwire[%d] %s: %s\n", (int)getpid(),
			 pw_log_name(lvl), msg);
	if (n > (int)sizeof(buf) - 1) {
		n = (int)sizeof(buf) - 1;
		buf[n - 1] = '\n';
	}
	pw_real.write(pw_cfg.log_fd, buf, (size_t)n);
}

/* ---- configuration ---- */

/* PODWIRE_PREFIX: a malformed value is an error that accelerates nothing,
 * never a wider prefix ("/x" is not "/0"), nor the router's list. */
static void pw_prefix_env(const char *v)
{
	struct pw_prefixes t;
	const char *bad = NULL;
	int r = pw_prefixes_parse(v, &t, &bad);

	if (r < 0)
		t.n = 0;

	if (r == -E2BIG) {
		pw_err("PODWIRE_PREFIX=%s: more than %u prefixes; nothing is accelerated", v,
		       PW_WIRE_MAX_PREFIXES);
	} else if (r < 0) {
		int len = bad ? (int)strcspn(bad, PW_ADDR_LIST_SEPS) : 0;
		pw_err("PODWIRE_PREFIX=%s: bad prefix \"%.*s\" (want a.b.c.d[/len], "
		       "comma-separated); "
		       "nothing is accelerated",
		       v, len, bad ? bad : "");
	}
	pw_prefixes_publish(&t);
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
	PW_SYM(close_range);
	PW_SYM(closefrom);
	PW_SYM(prctl);
	PW_SYM(syscall);
	PW_SYM(fdopen);
#undef PW_SYM
}

void pw_init_once(void)
{
	const char *v;

	pw_resolve();
	/* Errors (a bad PODWIRE_* value) are always told; the rest when asked. */
	pw_log_sink = pw_preload_log;
	pw_log_max = PW_LOG_ERROR;
	const char *lv = getenv("PODWIRE_LOG");
	int lvl = lv && *lv ? pw_log_parse(lv) : PW_LOG_ERROR;
	if (lvl >= 0)
		pw_log_max = (enum pw_log_level)lvl;
	v = getenv("PODWIRE_LOG_FILE");
	if (v && *v) {
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
	if (lvl < 0)
		pw_err("PODWIRE_LOG=%s: want error, warn, info or debug", lv);
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
		pw_prefix_env(v);
	}
	pw_cfg.spin_ns = PW_CHAN_SPIN_NS_DEFAULT;
	v = getenv("PODWIRE_SPIN_NS");
	if (v && *v) {
		char *end;
		errno = 0;
		unsigned long ns = strtoul(v, &end, 10);
		if (errno || *end || *v < '0' || *v > '9' || ns > UINT32_MAX)
			pw_err("PODWIRE_SPIN_NS=%s: want nanoseconds (0 to %u); %u used", v,
			       UINT32_MAX, pw_cfg.spin_ns);
		else
			pw_cfg.spin_ns = (uint32_t)ns;
	}
	v = getenv("PODWIRE_ADAPT");
	if (v && *v) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			pw_err("PODWIRE_ADAPT=%s: want 1 (choose the path per destination) or 0 "
			       "(shared memory always); 1 used",
			       v);
		pw_adapt_enable(strcmp(v, "0") != 0);
	}
	v = getenv("PODWIRE_REUSE");
	if (v && *v) {
		if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
			pw_err("PODWIRE_REUSE=%s: want 1 (reuse the channels of closed "
			       "connections) "
			       "or 0 (a new channel for each); 1 used",
			       v);
		pw_cfg.no_reuse = strcmp(v, "0") == 0;
	}
	pthread_atfork(NULL, pw_atfork_parent, pw_atfork_child);
	pw_dbg("loaded; %s", pw_cfg.disabled ? "disabled" : "enabled");
}

pthread_once_t pw_once = PTHREAD_ONCE_INIT;

__attribute__((constructor)) static void pw_ctor(void)
{
	pw_ensure();
	/* A process may start under a seccomp filter: every container runtime
	 * installs one. Those (and systemd's @system-service) allow the calls
	 * the library makes; see "Seccomp" in docs/PRELOAD.md. */
	pw_flags_gen_init();
	pw_take_over();
}
