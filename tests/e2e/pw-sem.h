/* SPDX-License-Identifier: MIT */
/*
 * pw-sem's shared parts: the harness (pw-sem-lib.c) and what the test files
 * (pw-sem-*.c, one area each) use across files. The test table and main()
 * are in pw-sem.c.
 */
#ifndef PW_SEM_H
#define PW_SEM_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#include "../pw_test.h"

/* Built with musl-gcc too (tests/e2e/test-musl.sh): what musl lacks. */
#ifdef __GLIBC__
#include <linux/sockios.h>
#define PW_SEM_HAVE_CLOSE_RANGE 1
#else
#define SIOCINQ			FIONREAD
#define strerrorname_np(e)	strerror(e)
#define PW_SEM_HAVE_CLOSE_RANGE 0
static inline int epoll_pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *ts,
			       const sigset_t *mask)
{
	errno = ENOSYS; /* not in this libc: the test says so and goes on */
	return -1;
}
#endif

#define STEP(s) (g_step = (s))

#define SA(p) ((struct sockaddr *)(p))

/* A system call that must succeed; its value. */
#define SYS(expr)                                                                                  \
	({                                                                                         \
		long pw_sys_r_ = (long)(expr);                                                     \
		if (pw_sys_r_ < 0)                                                                 \
			PW_FAIL("%s: %s", #expr, strerror(errno));                                 \
		pw_sys_r_;                                                                         \
	})

/* A call that must fail with @err. */
#define CHECK_ERRNO(expr, err)                                                                     \
	do {                                                                                       \
		errno = 0;                                                                         \
		long pw_ce_r_ = (long)(expr);                                                      \
		int pw_ce_e_ = errno;                                                              \
		if (pw_ce_r_ != -1 || pw_ce_e_ != (err))                                           \
			PW_FAIL("%s: want -1 %s, got %ld %s", #expr, strerrorname_np(err),         \
				pw_ce_r_,                                                          \
				pw_ce_r_ < 0 ? strerrorname_np(pw_ce_e_) : "(no error)");          \
	} while (0)

#define CHECK_ADDR_EQ(a, b)                                                                        \
	do {                                                                                       \
		char pw_b1_[64], pw_b2_[64];                                                       \
		PW_CHECK(addr_eq(a, b), "%s != %s", fmt_addr(a, pw_b1_, sizeof(pw_b1_)),           \
			 fmt_addr(b, pw_b2_, sizeof(pw_b2_)));                                     \
	} while (0)

/* ---- a reproducible byte stream, to verify content ---- */

struct gen {
	uint64_t s, w;
	unsigned left;
	uint64_t pos;
};

/* ---- the command server: the client drives, the server obeys ---- */

enum { OP_NOP = 1, OP_ACK, OP_SEND, OP_PIECES, OP_SHUTWR, OP_CLOSE, OP_DRAIN };

struct cmd {
	uint32_t op, arg, delay_ms, extra;
};

/* getsockname/getpeername on both ends agree; the server's are the pod's. */
struct addr_view {
	struct sockaddr_in local, peer;
};

/* ================= data ================= */

enum { M_RW, M_V, M_SR, M_TO, M_TOA, M_MSG, M_MSGA, M_NMETH };

struct kicker {
	pthread_t target;
	int after_ms;
	int sig;
	atomic_bool cancel;
};

/* ================= readiness ================= */

enum { W_POLL, W_PPOLL, W_SELECT, W_PSELECT };
struct excl {
	int l, ep;
	atomic_int *served, *wakeups;
};

/* Fill until EAGAIN; the peer starts draining later; we must see POLLOUT. */
enum { O_POLL, O_EPOLL_LT, O_EPOLL_ET };

/* A pipe written by a thread after @ms. */
struct pipe_writer {
	int fd, ms;
};

/* ================= processes, threads, signals ================= */

/* A worker sleeps in epoll_wait on a set with nothing ready; another thread
 * adds a connection that already holds the client's request: the worker
 * wakes (thread-pool servers hand new connections over this way). */
struct ep_worker {
	int ep;
	int n;
	double woke;
	struct epoll_event ev;
};

/* shutdown(SHUT_RDWR) from one thread wakes another blocked in recv. */
struct blocked_reader {
	int fd;
	ssize_t r;
	int err;
	atomic_bool done;
	double at;
};
struct duplex {
	int fd;
	uint64_t seed;
};

/* ================= issue 9: what real programs do ================= */

/*
 * A peer process that exits or is killed without close(): every way of
 * waiting sees the end of stream within 100 ms, and burns no CPU meanwhile
 * (TCP: the kernel closes the dead process's socket and sends FIN).
 */
enum { WD_POLL, WD_SELECT, WD_EPOLL_LT, WD_EPOLL_ET };
enum { DIE_EXIT, DIE_KILL };

/*
 * A server that forks a child per connection; the parent closes its copy at
 * once and the child exits after its reply, without close(). Every client,
 * waiting in poll, sees its reply and then EOF.
 */
#define FORK_CONNS 40

/*
 * A connection handed to another process over a Unix socket (SCM_RIGHTS):
 * prefork pools whose parent accepts and passes each connection to a
 * worker, then closes its copy; supervisors and Python's send_handle do
 * the same. The worker may run the library or not (exec'd without it).
 */
#define SCM_CONNS 10

/* ================= the list ================= */

struct test {
	const char *name;
	void (*srv)(void);
	void (*cli)(void);
	int timeout_s;
	const char *doc;
	int claims; /* connections podwired must see claimed under the preload (-1: none) */
};

/* ---- shared state ---- */

extern const char *g_role;
extern const char *g_test;
extern _Atomic(const char *) g_step;
extern struct sockaddr_in g_addr;
extern const char *g_self;
extern bool g_done;
extern struct gen g_srvpat;
extern _Atomic int g_usr1;

/* ---- shared functions ---- */

void report_at_exit(void);
void on_alarm(int sig);
void on_sigpipe(int sig);
void set_handler(int sig, void (*fn)(int), int flags);
pid_t fork_as(const char *role);
double now_ms(void);
void sleep_ms(int ms);
const char *fmt_addr(const struct sockaddr_in *a, char *buf, size_t len);
bool addr_eq(const struct sockaddr_in *a, const struct sockaddr_in *b);
bool env_ip(const char *name, struct in_addr *ret);
void wait_fd(int fd, short ev, int ms);
bool is_nonblock(int fd);
void set_nonblock(int fd, bool on);
void write_all(int fd, const void *buf, size_t n);
bool read_exact2(int fd, void *buf, size_t n, bool eof_ok);
void read_exact(int fd, void *buf, size_t n);
void expect_eof(int fd);
void send_str(int fd, const char *s);
void expect_str(int fd, const char *s);
void gen_init(struct gen *g, uint64_t seed);
void gen_fill(struct gen *g, void *buf, size_t n);
void gen_check(struct gen *g, const void *buf, size_t n, const char *what);
void send_gen(int fd, struct gen *g, size_t n);
void recv_gen(int fd, struct gen *g, size_t n, const char *what);
void note_conn(int fd);
void srv_ready(void);
void sync_init(void);
void sync_create(void);
void sync_wait(void);
void sync_signal(void);
int srv_socket(void);
void srv_bind_listen(int fd, int backlog);
int srv_listen(void);
int srv_accept(int l);
int cli_socket(int flags);
int cli_connect(void);
void pingpong_cli(int fd);
void pingpong_srv(int fd);
int get_int_opt(int fd, int level, int name);
void set_int_opt(int fd, int level, int name, int v);
void cmd(int fd, uint32_t op, uint32_t arg, uint32_t delay_ms, uint32_t extra);
void recv_pat(int fd, size_t n);
void srv_cmd(void);
void srv_cmd2(void);
void srv_pingpong(void);
void srv_echo_conn(int fd);
void srv_echo(void);
void cli_connect_block(void);
void cli_connect_nonblock(void);
void cli_connect_nb_recheck(void);
void cli_eisconn(void);
void srv_accept4_flags(void);
void srv_accept_blocking(void);
void cli_accept_blocking(void);
void cli_accept4_flags(void);
void srv_backlog(void);
void cli_backlog(void);
void srv_reuseaddr(void);
void cli_reuseaddr(void);
void srv_relisten(void);
void cli_relisten(void);
void get_view(int fd, struct addr_view *v);
void srv_addrs(void);
void cli_addrs(void);
void srv_rw_calls(void);
void cli_rw_calls(void);
void cli_peek(void);
void srv_iov_edges(void);
void cli_iov_edges(void);
void cli_msg_trunc(void);
void srv_msg_oob(void);
void cli_msg_oob(void);
uint64_t fill_until_eagain(int fd, int flags);
void cli_dontwait(void);
void cli_waitall(void);
int write_until_fail(int fd, bool use_send_nosignal);
void cli_sigpipe_nosignal(void);
void cli_write_after_close(void);
void cli_sigpipe_ignored(void);
void cli_sigpipe_handler(void);
void cli_sigpipe_default(void);
void srv_shutdown_wr(void);
void cli_shutdown_wr(void);
void srv_close_pending(void);
void cli_close_pending(void);
void srv_close_unread_rst(void);
void cli_close_unread_rst(void);
void srv_linger_rst(void);
void cli_linger_rst(void);
void srv_shutdown_rd(void);
void cli_shutdown_rd(void);
void srv_listener_closed_pending(void);
void cli_listener_closed_pending(void);
void srv_accept_late(void);
void cli_accept_late(void);
void srv_sendfile(void);
void cli_sendfile(void);
void srv_dup(void);
void cli_dup(void);
void cli_fcntl_nonblock(void);
void *kicker_main(void *arg);
void cli_fork_shared_flags(void);
void cli_fionread(void);
void srv_sockopts(void);
void cli_sockopts(void);
void srv_sockopt_inherit(void);
void cli_sockopt_inherit(void);
void cli_sockopt_roundtrip(void);
void cli_sockopt_unknown(void);
void srv_rcvtimeo(void);
void cli_rcvtimeo(void);
void cli_sndtimeo(void);
short wait_with(int w, int fd, short ev, int ms);
void count_usr1(int sig);
void cli_poll(void);
void cli_ppoll(void);
void cli_select(void);
void cli_pselect(void);
void cli_peer_close_revents(void);
void ep_add(int ep, int fd, uint32_t events, uint64_t data);
void cli_epoll_lt(void);
void cli_epoll_et(void);
void cli_epoll_oneshot(void);
void cli_epoll_rdhup(void);
void srv_epoll_exclusive(void);
void cli_epoll_exclusive(void);
void cli_epoll_before_connect(void);
void cli_epoll_before_connect_et(void);
void srv_epoll_fairness(void);
void cli_epoll_fairness(void);
void cli_epoll_close_reuse(void);
void cli_pollout_drain(void);
void cli_epollout_lt(void);
void cli_epollout_et(void);
void cli_epoll_mixed(void);
void cli_poll_mixed(void);
void srv_epoll_add_while_waiting(void);
void cli_epoll_add_while_waiting(void);
void srv_epoll_add_then_data(void);
void cli_epoll_add_then_data(void);
void srv_shutdown_wakes_reader(void);
void cli_shutdown_wakes_reader(void);
void cli_dontwait_while_blocked(void);
void srv_fork_concurrent_writers(void);
void cli_fork_concurrent_writers(void);
void cli_fork_rw(void);
void cli_fork_parent_close(void);
void srv_fork_listener(void);
void srv_fork_listener_parent_closes(void);
void cli_fork_listener(void);
void duplex(int fd, uint64_t tx_seed, uint64_t rx_seed);
void srv_threads_duplex(void);
void cli_threads_duplex(void);
void cli_eintr(void);
void cli_eintr_restart(void);
void srv_kill_client(void);
void cli_kill_client(void);
void srv_kill_server(void);
void cli_kill_server(void);
void srv_kill_reader(void);
void cli_kill_reader(void);
void cli_echo(void);
void cli_stream_long(void);
void srv_stdio(void);
void cli_stdio(void);
int exec_echo_main(void);
void srv_exec_inherit(void);
void cli_exec_inherit(void);
void srv_exec_nofork(void);
void cli_exec_stream(void);
void srv_close_range(void);
void cli_close_range(void);
void srv_death_poll(void);
void cli_death_poll(void);
void srv_death_select(void);
void cli_death_select(void);
void srv_death_epoll_lt(void);
void cli_death_epoll_lt(void);
void srv_death_epoll_et(void);
void cli_death_epoll_et(void);
void srv_fork_per_conn(void);
void cli_fork_per_conn(void);
void srv_epoll_et_partial(void);
void cli_epoll_et_partial(void);
void cli_epoll_et_sendfile(void);
/* ================= connection after connection (pw-sem-reuse.c) ================= */

void srv_seq_close(void);
void cli_seq_close(void);
void srv_seq_client_first(void);
void cli_seq_client_first(void);
void srv_seq_epoll(void);
void cli_seq_epoll(void);
void srv_seq_listener_gone(void);
void cli_seq_listener_gone(void);
void srv_seq_short_gone(void);
void cli_seq_short_gone(void);
void srv_seq_relisten_short(void);
void cli_seq_relisten_short(void);
void srv_seq_handoff_short(void);
void cli_seq_handoff_short(void);
void srv_seq_prefork(void);
void cli_seq_prefork(void);
void srv_seq_handoff(void);
void cli_seq_handoff(void);
void srv_seq_fork_client(void);
void cli_seq_fork_client(void);
void srv_seq_socket_after_short(void);
void cli_seq_socket_after_short(void);
void srv_seq_inherit_short(void);
void cli_seq_inherit_short(void);

void srv_threads_small_stack(void);
void cli_threads_small_stack(void);
void srv_v6_client(void);
void cli_v6_client(void);
void srv_v6_listener(void);
void cli_v6_listener(void);
int scm_worker_main(int argc, char **argv);
void srv_scm_rights(void);
void srv_scm_rights_unpreloaded(void);
void cli_scm_rights(void);
void srv_seccomp(void);
void cli_seccomp_relayed(void);
void cli_seccomp_chrooted(void);
void srv_seccomp(void);
void cli_seccomp_relayed(void);
void cli_seccomp_chrooted(void);
void srv_fork_syscalls(void);
void cli_fork_syscalls(void);

#endif /* PW_SEM_H */
