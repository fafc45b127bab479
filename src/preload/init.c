// SPDX-License-Identifier: MIT
/*
 * Library start: configuration from the environment, the real libc
 * functions, logging (docs/PRELOAD.md).
 */
#include "preload.h"

extern char **environ;

struct pw_real_fns pw_real;
const char *pw_single_flag;
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
