// SPDX-License-Identifier: MIT
/*
 * pw-sem: end-to-end socket-semantics tests, pod to pod (driven by
 * tests/e2e/test-semantics.sh). Each test is a pair of functions, one for
 * the server pod and one for the client pod. The same program must pass with
 * and without libpodwire.so preloaded: what it checks is the kernel's TCP
 * behaviour, which an accelerated socket must reproduce.
 *
 *   pw-sem list                       one test a line: name, the number of
 *                                     connections podwired must see claimed
 *                                     under the preload, description
 *   pw-sem server TEST IP PORT        listen on IP:PORT, print READY, serve
 *   pw-sem client TEST IP PORT        connect to IP:PORT and run the test
 *
 * Environment:
 *   PW_SEM_EXPECT=accel|kernel  fail when a connection is not carried as
 *                               expected. An accelerated fd is podwire's
 *                               AF_UNIX channel socket under the application's
 *                               fd number: the raw getsockopt(SO_DOMAIN)
 *                               system call, which the preload does not see,
 *                               tells which it is. Any other value (either):
 *                               no check, but a connection may be podwire's.
 *   PW_SEM_A, PW_SEM_B          the client's and the server's pod addresses
 *   PW_SEM_DURATION_MS          how long stream_long runs (1500)
 *   PW_SEM_SYNC_DIR             where the client-to-server side channel (a
 *                               FIFO) lives (/tmp); the driver's own dir
 *
 * Exit status: 0 pass, 1 fail (function:line and the step are printed), 77 skip.
 * A watchdog (alarm) turns a hang into a failure that names the step.
 */
#include "pw-sem.h"

static const struct test tests[] = {
	/* connection setup */
	{ "connect_block", srv_pingpong, cli_connect_block, 0, "blocking connect", 0 },
	{ "connect_nonblock", srv_pingpong, cli_connect_nonblock, 0,
	  "EINPROGRESS, POLLOUT, SO_ERROR 0", 0 },
	{ "eisconn", srv_pingpong, cli_eisconn, 0, "connect on a connected socket: EISCONN", 0 },
	{ "connect_nb_recheck", srv_pingpong, cli_connect_nb_recheck, 0,
	  "extra: connect() again after a non-blocking connect completed returns 0", 0 },
	{ "accept4_flags", srv_accept4_flags, cli_accept4_flags, 0,
	  "accept4 NONBLOCK|CLOEXEC, accept, no flag inheritance from the listener", 0 },
	{ "accept_blocking", srv_accept_blocking, cli_accept_blocking, 0,
	  "accept: non-blocking EAGAIN, FIONBIO back, SO_RCVTIMEO, then blocking", 0 },
	{ "backlog", srv_backlog, cli_backlog, 0, "five clients pending in the backlog", 0 },
	{ "reuseaddr", srv_reuseaddr, cli_reuseaddr, 0, "SO_REUSEADDR re-listen after close", 0 },
	{ "relisten", srv_relisten, cli_relisten, 0,
	  "close the listener, bind again at once; 100 rounds (iperf3 -s)", 0 },
	{ "addrs", srv_addrs, cli_addrs, 0, "ephemeral ports, getsockname/getpeername agree", 0 },
	/* data */
	{ "rw_calls", srv_rw_calls, cli_rw_calls, 0,
	  "read/write readv/writev recv/send recvfrom/sendto recvmsg/sendmsg", 0 },
	{ "peek", srv_cmd, cli_peek, 0, "MSG_PEEK then read", 0 },
	{ "dontwait", srv_cmd, cli_dontwait, 0, "MSG_DONTWAIT on a blocking socket", 0 },
	{ "waitall", srv_cmd, cli_waitall, 0, "MSG_WAITALL over pieces, and cut by EOF", 0 },
	{ "sigpipe_nosignal", srv_cmd, cli_sigpipe_nosignal, 0, "MSG_NOSIGNAL: EPIPE", 0 },
	{ "write_after_close", srv_cmd, cli_write_after_close, 0,
	  "the first write after the peer closed is taken, the next fails", 0 },
	{ "sigpipe_ignored", srv_cmd, cli_sigpipe_ignored, 0, "SIGPIPE ignored: EPIPE", 0 },
	{ "sigpipe_handler", srv_cmd, cli_sigpipe_handler, 0, "SIGPIPE handler runs once", 0 },
	{ "sigpipe_default", srv_cmd, cli_sigpipe_default, 0, "default SIGPIPE kills the writer",
	  0 },
	{ "shutdown_wr", srv_shutdown_wr, cli_shutdown_wr, 0,
	  "SHUT_WR: peer reads EOF and can still write", 0 },
	{ "close_pending", srv_close_pending, cli_close_pending, 0,
	  "close with data the peer has not read yet", 0 },
	{ "close_unread_rst", srv_close_unread_rst, cli_close_unread_rst, 4,
	  "extra: close with unread received data resets (ECONNRESET)", 0 },
	{ "linger_rst", srv_linger_rst, cli_linger_rst, 4,
	  "extra: SO_LINGER {1,0} close resets (ECONNRESET)", 0 },
	{ "shutdown_rd", srv_shutdown_rd, cli_shutdown_rd, 4,
	  "extra: SHUT_RD reads EOF, the peer can still write", 0 },
	{ "accept_late", srv_accept_late, cli_accept_late, 0,
	  "data written before a late accept() arrives", 0 },
	{ "listener_closed_pending", srv_listener_closed_pending, cli_listener_closed_pending, 4,
	  "extra: the listener closes with us in its queue: ECONNRESET", -1 },
	{ "sendfile", srv_sendfile, cli_sendfile, 0, "sendfile from a file, offset updated", 0 },
	{ "iov_edges", srv_iov_edges, cli_iov_edges, 0,
	  "40 iovecs (zero-length ones too), iovcnt 0, IOV_MAX + 1", 0 },
	{ "msg_trunc", srv_cmd, cli_msg_trunc, 0, "extra: recv(MSG_TRUNC) discards, NULL buffer",
	  0 },
	{ "msg_oob", srv_msg_oob, cli_msg_oob, 0, "extra: MSG_OOB urgent byte out of band", 0 },
	/* fds, flags, options */
	{ "dup", srv_dup, cli_dup, 0, "dup/dup2/dup3/F_DUPFD(_CLOEXEC), EOF on last close", 0 },
	{ "fcntl_nonblock", srv_cmd, cli_fcntl_nonblock, 0, "O_NONBLOCK and FIONBIO toggling", 0 },
	{ "fork_shared_flags", srv_cmd, cli_fork_shared_flags, 4,
	  "extra: O_NONBLOCK set by a forked child applies to the parent", 0 },
	{ "fionread", srv_cmd, cli_fionread, 0, "FIONREAD/SIOCINQ", 0 },
	{ "sockopts", srv_sockopts, cli_sockopts, 0,
	  "SO_ERROR/TYPE/DOMAIN/PROTOCOL, TCP_NODELAY, SO_KEEPALIVE, SO_RCVBUF/SNDBUF", 0 },
	{ "sockopt_inherit", srv_sockopt_inherit, cli_sockopt_inherit, 0,
	  "extra: options set before connect/on the listener persist", 0 },
	{ "sockopt_roundtrip", srv_pingpong, cli_sockopt_roundtrip, 0,
	  "extra: TCP_KEEPIDLE/INTVL/CNT, TCP_USER_TIMEOUT, IP_TOS, SO_PRIORITY, SO_LINGER read "
	  "back",
	  0 },
	{ "sockopt_unknown", srv_pingpong, cli_sockopt_unknown, 0,
	  "extra: unknown options ENOPROTOOPT, short optlen EINVAL", 0 },
	{ "rcvtimeo", srv_rcvtimeo, cli_rcvtimeo, 0, "SO_RCVTIMEO: EAGAIN after the timeout", 0 },
	{ "sndtimeo", srv_cmd, cli_sndtimeo, 0, "extra: SO_SNDTIMEO: short count, then EAGAIN", 0 },
	/* readiness */
	{ "poll", srv_cmd, cli_poll, 0, "poll", 0 },
	{ "ppoll", srv_cmd, cli_ppoll, 0, "ppoll, with a signal mask", 0 },
	{ "select", srv_cmd, cli_select, 0, "select, remaining time", 0 },
	{ "pselect", srv_cmd, cli_pselect, 0, "pselect, with a signal mask", 0 },
	{ "peer_close_revents", srv_cmd, cli_peer_close_revents, 0,
	  "extra: after the peer's close: IN|OUT|RDHUP, no HUP", 0 },
	{ "epoll_lt", srv_cmd, cli_epoll_lt, 0, "level-triggered epoll, MOD, DEL, pwait, pwait2",
	  0 },
	{ "epoll_et", srv_cmd, cli_epoll_et, 0, "EPOLLET: one event per arrival", 0 },
	{ "epoll_oneshot", srv_cmd, cli_epoll_oneshot, 0, "EPOLLONESHOT and re-arming", 0 },
	{ "epoll_rdhup", srv_cmd, cli_epoll_rdhup, 0, "EPOLLRDHUP on the peer's SHUT_WR", 0 },
	{ "epoll_fairness", srv_epoll_fairness, cli_epoll_fairness, 0,
	  "extra: level-triggered epoll, maxevents 1: ready fds take turns", 0 },
	{ "epoll_close_reuse", srv_cmd2, cli_epoll_close_reuse, 0,
	  "extra: close() ends registrations; a reused fd number is not reported", 0 },
	{ "epoll_exclusive", srv_epoll_exclusive, cli_epoll_exclusive, 0,
	  "EPOLLEXCLUSIVE listener in two epoll sets", 0 },
	{ "epoll_before_connect", srv_cmd, cli_epoll_before_connect, 0,
	  "registered before connect (LT)", 0 },
	{ "epoll_before_connect_et", srv_cmd, cli_epoll_before_connect_et, 0,
	  "registered before connect (ET)", 0 },
	{ "pollout_drain", srv_cmd, cli_pollout_drain, 0, "POLLOUT after the peer drains", 0 },
	{ "epollout_lt", srv_cmd, cli_epollout_lt, 0, "EPOLLOUT (LT) after the peer drains", 0 },
	{ "epollout_et", srv_cmd, cli_epollout_et, 0, "EPOLLOUT (ET) after the peer drains", 0 },
	{ "epoll_mixed", srv_cmd, cli_epoll_mixed, 0, "epoll over a socket and a pipe", 0 },
	{ "poll_mixed", srv_cmd, cli_poll_mixed, 0, "poll/select over a socket and a pipe", 0 },
	/* processes, threads, signals */
	{ "fork_rw", srv_echo, cli_fork_rw, 0, "fork: the child writes, the parent reads", 0 },
	{ "fork_parent_close", srv_echo, cli_fork_parent_close, 0,
	  "fork: the parent closes, the child goes on", 0 },
	{ "fork_listener", srv_fork_listener, cli_fork_listener, 0,
	  "listener before fork, workers accept", 0 },
	{ "fork_listener_parent_closes", srv_fork_listener_parent_closes, cli_fork_listener, 0,
	  "listener before fork, the parent closes it, workers accept", 0 },
	{ "epoll_add_while_waiting", srv_epoll_add_while_waiting, cli_epoll_add_while_waiting, 0,
	  "a readable fd added to a set another thread waits on wakes it", 0 },
	{ "epoll_add_then_data", srv_epoll_add_then_data, cli_epoll_add_then_data, 0,
	  "data on an fd added while another thread waits on the set wakes it", 0 },
	{ "shutdown_wakes_reader", srv_shutdown_wakes_reader, cli_shutdown_wakes_reader, 0,
	  "extra: shutdown(SHUT_RDWR) wakes a recv blocked in another thread", 0 },
	{ "dontwait_while_blocked", srv_cmd, cli_dontwait_while_blocked, 0,
	  "extra: MSG_DONTWAIT does not wait for another thread's blocked recv", 0 },
	{ "fork_concurrent_writers", srv_fork_concurrent_writers, cli_fork_concurrent_writers, 0,
	  "extra: parent and child write 8 MiB each at the same time, no byte lost", 0 },
	{ "threads_duplex", srv_threads_duplex, cli_threads_duplex, 20,
	  "a reader and a writer thread, 64 MiB each way", 0 },
	{ "eintr", srv_cmd, cli_eintr, 0, "blocking recv: EINTR without SA_RESTART", 0 },
	{ "eintr_restart", srv_cmd, cli_eintr_restart, 4,
	  "extra: blocking recv restarted with SA_RESTART", 0 },
	{ "kill_client", srv_kill_client, cli_kill_client, 0, "kill -9 of the writing client", 0 },
	{ "kill_server", srv_kill_server, cli_kill_server, 0, "kill -9 of the writing server", 0 },
	{ "kill_reader", srv_kill_reader, cli_kill_reader, 0,
	  "kill -9 of a peer that does not read: the blocked writer fails", 0 },
	/* traffic */
	{ "echo", srv_echo, cli_echo, 0, "echo, 1 B .. 1 MB", 0 },
	{ "stream_long", srv_echo, cli_stream_long, 20, "ping-pong for PW_SEM_DURATION_MS", 0 },
	/* extras: the socket reached without the socket API */
	{ "stdio", srv_stdio, cli_stdio, 4, "extra: fdopen/fgets/fprintf/fclose on a socket", 0 },
	{ "exec_inherit", srv_exec_inherit, cli_exec_inherit, 4,
	  "extra: inetd-style, the socket is stdin/stdout of an exec'd program", 0 },
	{ "exec_stream", srv_exec_inherit, cli_exec_stream, 10,
	  "inetd-style, 4 MiB each way through an exec'd program on fds 0 and 1", 0 },
	{ "exec_nofork_stream", srv_exec_nofork, cli_exec_stream, 10,
	  "socat nofork-style: the accepting process exec()s with the connection on fds 0 and 1",
	  0 },
	{ "close_range", srv_close_range, cli_close_range, 4,
	  "extra: close_range(), then the fd number is reused", 0 },
	/* issue 9: what real programs do */
	{ "death_poll", srv_death_poll, cli_death_poll, 0,
	  "a peer exits or is killed without close(): poll sees EOF in time, idle", 5 },
	{ "death_select", srv_death_select, cli_death_select, 0,
	  "a peer exits or is killed without close(): select sees EOF in time, idle", 5 },
	{ "death_epoll_lt", srv_death_epoll_lt, cli_death_epoll_lt, 0,
	  "a peer exits or is killed without close(): epoll (LT) sees EOF in time, idle", 5 },
	{ "death_epoll_et", srv_death_epoll_et, cli_death_epoll_et, 0,
	  "a peer exits or is killed without close(): epoll (ET) sees EOF in time, idle", 5 },
	{ "fork_per_conn", srv_fork_per_conn, cli_fork_per_conn, 0,
	  "a child per connection, the parent closes: 40 clients see reply and EOF", FORK_CONNS },
	{ "epoll_et_partial", srv_epoll_et_partial, cli_epoll_et_partial, 20,
	  "EPOLLET writer: a short write is followed by an EPOLLOUT edge (16 MiB)", 0 },
	{ "scm_rights", srv_scm_rights, cli_scm_rights, 20,
	  "the parent accepts, hands each connection to a worker (SCM_RIGHTS), closes", SCM_CONNS },
	{ "scm_rights_unpreloaded", srv_scm_rights_unpreloaded, cli_scm_rights, 20,
	  "the same, to a worker without the library (exec'd without LD_PRELOAD)", SCM_CONNS },
	{ "seccomp_relayed", srv_seccomp, cli_seccomp_relayed, 0,
	  "a child in a seccomp sandbox (kill for calls its kernel twin does not make) uses "
	  "the inherited connection",
	  0 },
	{ "seccomp_chrooted", srv_seccomp, cli_seccomp_chrooted, 0,
	  "the same from a chroot, where the router is out of reach (OpenSSH's preauth)", 0 },
	{ "v6_client", srv_v6_client, cli_v6_client, 0,
	  "a dual-stack AF_INET6 client to ::ffff:server (Java): v4-mapped addresses", 0 },
	{ "v6_listener", srv_v6_listener, cli_v6_listener, 0,
	  "a dual-stack listener on [::] (Node): IPv4 and AF_INET6 clients, mapped", 2 },
	{ "epoll_et_sendfile", srv_epoll_et_partial, cli_epoll_et_sendfile, 20,
	  "the same with sendfile from a file (nginx): a short count, then an EPOLLOUT edge", 0 },
	{ "fork_syscalls", srv_fork_syscalls, cli_fork_syscalls, 20,
	  "2000 ping-pongs before and after fork, between markers (test-syscalls.sh)", 0 },
	{ "threads_small_stack", srv_threads_small_stack, cli_threads_small_stack, 0,
	  "threads with 16 and 32 KiB stacks connect, poll and epoll", 2 },
	/* issue 11: connection after connection (a channel reused, PRELOAD.md) */
	{ "seq_close", srv_seq_close, cli_seq_close, 20,
	  "60 connections one after another, the server closes first", 60 },
	{ "seq_client_first", srv_seq_client_first, cli_seq_client_first, 20,
	  "60 connections one after another, the client ends first", 60 },
	{ "seq_epoll", srv_seq_epoll, cli_seq_epoll, 20,
	  "waves of 8 non-blocking connects registered in epoll first; an EPOLLET server", 56 },
	{ "seq_listener_gone", srv_seq_listener_gone, cli_seq_listener_gone, 0,
	  "the listener closes after a connection ended: the next connect is refused", 1 },
	{ "seq_short_gone", srv_seq_short_gone, cli_seq_short_gone, 0,
	  "16 short connections, then the listener closes: the next connect is refused", 1 },
	{ "seq_relisten_short", srv_seq_relisten_short, cli_seq_relisten_short, 0,
	  "16 short connections, then the listener restarts on its port: the next reach it", 1 },
	{ "seq_prefork", srv_seq_prefork, cli_seq_prefork, 30,
	  "prefork workers that end after 5 connections each; the parent never accepts", 60 },
	{ "seq_handoff", srv_seq_handoff, cli_seq_handoff, 0,
	  "a worker ends with the client's next connection made, the next worker accepts it", 3 },
	{ "seq_handoff_short", srv_seq_handoff_short, cli_seq_handoff_short, 0,
	  "the same after 16 short connections (a parked channel or a pooled connection)", 1 },
	{ "seq_fork_client", srv_seq_fork_client, cli_seq_fork_client, 0,
	  "a client that forks and dups between its connections to one server", 12 },
	{ "seq_socket_after_short", srv_seq_socket_after_short, cli_seq_socket_after_short, 0,
	  "a socket() after short connections is new: number, flags, options", 24 },
	{ "seq_inherit_short", srv_seq_inherit_short, cli_seq_inherit_short, 0,
	  "short connections inherit the listener's options, and its changes between two", 24 },
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static void usage(void)
{
	fprintf(stderr, "usage: pw-sem list | server TEST IP PORT | client TEST IP PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct test *t = NULL;

	g_self = argv[0];
	setvbuf(stderr, NULL, _IONBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "list")) {
		for (size_t i = 0; i < NTESTS; i++)
			printf("%s\t%d\t%s\n", tests[i].name,
			       tests[i].claims < 0 ? 0
			       : tests[i].claims   ? tests[i].claims
						   : 1,
			       tests[i].doc);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "exec-echo"))
		return exec_echo_main();
	if (argc >= 2 && !strcmp(argv[1], "scm-worker"))
		return scm_worker_main(argc, argv);
	if (argc != 5 || (strcmp(argv[1], "server") && strcmp(argv[1], "client")))
		usage();
	for (size_t i = 0; i < NTESTS; i++)
		if (!strcmp(tests[i].name, argv[2]))
			t = &tests[i];
	if (!t) {
		fprintf(stderr, "pw-sem: no test %s\n", argv[2]);
		return 2;
	}
	g_role = argv[1];
	g_test = t->name;
	g_addr.sin_family = AF_INET;
	g_addr.sin_port = htons((uint16_t)atoi(argv[4]));
	if (inet_pton(AF_INET, argv[3], &g_addr.sin_addr) != 1)
		usage();
	gen_init(&g_srvpat, 77);
	sync_init();
	atexit(report_at_exit);
	set_handler(SIGALRM, on_alarm, 0);
	set_handler(SIGPIPE, on_sigpipe, 0);
	alarm((unsigned)(t->timeout_s ? t->timeout_s : 10));

	if (!strcmp(g_role, "server"))
		t->srv();
	else
		t->cli();
	g_done = true;
	return 0;
}
