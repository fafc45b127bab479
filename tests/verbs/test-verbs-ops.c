// SPDX-License-Identifier: MIT
/*
 * Verbs semantics on podwire0, byte for byte, between two pods of one node
 * or of two (test-verbs-ops.sh runs `test-verbs-ops server IP PORT` in one
 * pod and `test-verbs-ops client IP PORT` in the other). The two sides swap their
 * QP numbers, GID and keys over TCP, and step through:
 *
 *   SEND gathering 3 entries into a receive scattering over 2; SEND with
 *   immediate; WRITE (64 KiB); WRITE with immediate; READ; compare-and-swap
 *   and fetch-and-add, and fetch-and-add from both sides at once; a SEND
 *   with no receive posted (RNR) that completes once one is; a QP waiting
 *   for a completion event that uses no CPU for 3 s; and, each on a QP of
 *   its own, a WRITE out of bounds, one with a bad rkey and one to a region
 *   without REMOTE_WRITE: IBV_WC_REM_ACCESS_ERR, the QP in error, the next
 *   request flushed, the target's bytes untouched.
 *
 * With PW_OPS_MEM=file (a file mapping) or PW_OPS_MEM=sysv (SysV shared
 * memory) on both sides, the registered buffers are memory podwire cannot
 * re-back: its owner serves it (docs/RDMA.md), and every step above must
 * hold the same (fork after registration is left out: shared memory is
 * shared with the child on any device).
 *
 * `hostile-target` and `hostile` are a target and a peer that forges what it
 * can (after a read with a key the target then deregisters, which then
 * fails): rkeys, an address outside every region of the target (whose address
 * the target tells it), a QP number that does not point back at it, and,
 * across nodes, bytes of its own written straight into the connections
 * podwire made (a request in the protocol's own form for that address, then
 * garbage), and, on one node, requests of its own straight into the
 * target's service entries (svc.c). It gets errors; the target's memory
 * stays as it was, and the target stays up, its QPs in error where their
 * connection broke.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <malloc.h>
#include <poll.h>
#include <stdatomic.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <podwire/shm.h>
#include <podwire/wire.h>

#include "pw_test.h"

#define NQP	8 /* 0: the operations; 1, 2, 3: one error each; 4-7: hostile */
#define NERR	3
#define HQP	4
#define BUF_LEN (1 << 20)
#define RO_LEN	4096
#define ATOM	256 /* offset of the atomic word in the buffer */
#define FADDS	2000

struct side {
	uint32_t qpn[NQP];
	uint8_t gid[16];
	uint32_t rkey, ro_rkey;
	uint64_t addr, ro_addr;
};

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static struct ibv_comp_channel *ch;
static struct ibv_cq *scq, *rcq;
static struct ibv_qp *qp[NQP];
static struct ibv_mr *mr, *ro_mr;
static uint8_t *buf, *ro;
static struct side me, peer;
static int sock;

static void xfer(void *p, size_t n, bool out)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = out ? write(sock, (char *)p + done, n - done)
				: read(sock, (char *)p + done, n - done);
		PW_CHECK(r > 0, "%s: %s", out ? "write" : "read", r ? strerror(errno) : "EOF");
		done += (size_t)r;
	}
}

/* A step's handshake: each side says it is at step @n, and waits for the
 * other to be there too. */
static void sync_at(uint32_t n)
{
	uint32_t got;

	xfer(&n, sizeof(n), true);
	xfer(&got, sizeof(got), false);
	PW_CHECK(got == n, "out of step: %u, peer %u", n, got);
}

/* A new RC QP on our CQs (taking its receives from @srq if given), in INIT. */
static struct ibv_qp *qp_make(struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia = { .send_cq = scq,
				       .recv_cq = rcq,
				       .srq = srq,
				       .qp_type = IBV_QPT_RC,
				       .cap = { .max_send_wr = 64,
						.max_recv_wr = 64,
						.max_send_sge = 4,
						.max_recv_sge = 4 } };
	struct ibv_qp *q = ibv_create_qp(pd, &ia);

	PW_CHECK(q, "create_qp: %s", strerror(errno));
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .port_num = 1,
				 .qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
						    IBV_ACCESS_REMOTE_READ |
						    IBV_ACCESS_REMOTE_ATOMIC };
	PW_CHECK_EQ(
		ibv_modify_qp(q, &a,
			      IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
		0);
	return q;
}

/* @q to RTR and RTS towards the peer's QP @dest, with the transport
 * timer's @timeout and @retry_cnt. */
static void qp_connect_t(struct ibv_qp *q, uint32_t dest, uint8_t timeout, uint8_t retry_cnt)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_RTR,
				 .path_mtu = IBV_MTU_4096,
				 .dest_qp_num = dest,
				 .max_dest_rd_atomic = 1,
				 .min_rnr_timer = 12,
				 .ah_attr = { .is_global = 1, .port_num = 1 } };
	memcpy(a.ah_attr.grh.dgid.raw, peer.gid, 16);
	PW_CHECK_EQ(ibv_modify_qp(q, &a,
				  IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					  IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
					  IBV_QP_MIN_RNR_TIMER),
		    0);
	a = (struct ibv_qp_attr){ .qp_state = IBV_QPS_RTS,
				  .timeout = timeout,
				  .retry_cnt = retry_cnt,
				  .rnr_retry = 7,
				  .max_rd_atomic = 1 };
	PW_CHECK_EQ(ibv_modify_qp(q, &a,
				  IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
					  IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC),
		    0);
}

static void qp_connect(struct ibv_qp *q, uint32_t dest)
{
	qp_connect_t(q, dest, 14, 7);
}

static void srq_server(void);
static void srq_client(void);

/* Where the registered buffers come from (PW_OPS_MEM): NULL, the heap. */
static const char *ops_mem(void)
{
	const char *m = getenv("PW_OPS_MEM");

	return m && *m ? m : NULL;
}

/* @len bytes, page-aligned, of the memory PW_OPS_MEM names. */
static void *ops_alloc(size_t len)
{
	const char *m = ops_mem();
	void *p;

	if (!m)
		return memalign(4096, len);
	if (!strcmp(m, "file")) {
		FILE *f = tmpfile();
		PW_CHECK(f && ftruncate(fileno(f), (off_t)len) == 0, "tmpfile: %s",
			 strerror(errno));
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fileno(f), 0);
		fclose(f); /* (the mapping holds the file) */
		PW_CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
		return p;
	}
	PW_CHECK(!strcmp(m, "sysv"), "PW_OPS_MEM=%s: file or sysv", m);
	int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600);
	PW_CHECK(id >= 0, "shmget: %s", strerror(errno));
	p = shmat(id, NULL, 0);
	shmctl(id, IPC_RMID, NULL); /* (gone at the last detach) */
	PW_CHECK(p != (void *)-1, "shmat: %s", strerror(errno));
	return p;
}

/* The /proc/self/maps line of @p's mapping, into @line. */
static void ops_map_of(const void *p, char *line, size_t cap)
{
	FILE *f = fopen("/proc/self/maps", "re");
	uintptr_t a = (uintptr_t)p;

	PW_CHECK(f, "maps: %s", strerror(errno));
	while (fgets(line, (int)cap, f)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && a >= s && a < e) {
			fclose(f);
			return;
		}
	}
	fclose(f);
	PW_CHECK(false, "%p is not mapped", p);
}

static void setup(void)
{
	int n;
	struct ibv_device **list = ibv_get_device_list(&n);

	PW_CHECK(list, "device list: %s", strerror(errno));
	for (int i = 0; i < n && !ctx; i++)
		if (!strcmp(ibv_get_device_name(list[i]), "podwire0"))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	PW_CHECK(ctx, "podwire0: %s", strerror(errno));
	pd = ibv_alloc_pd(ctx);
	ch = ibv_create_comp_channel(ctx);
	scq = ibv_create_cq(ctx, 256, NULL, NULL, 0);
	rcq = ibv_create_cq(ctx, 256, NULL, ch, 0);
	PW_CHECK(pd && ch && scq && rcq, "objects: %s", strerror(errno));
	buf = ops_alloc(BUF_LEN);
	ro = ops_alloc(RO_LEN);
	PW_CHECK(buf && ro, "memalign");
	memset(buf, 0, BUF_LEN);
	memset(ro, 0xee, RO_LEN);
	mr = ibv_reg_mr(pd, buf, BUF_LEN,
			IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
				IBV_ACCESS_REMOTE_ATOMIC);
	ro_mr = ibv_reg_mr(pd, ro, RO_LEN, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
	PW_CHECK(mr && ro_mr, "reg_mr: %s", strerror(errno));
	if (ops_mem()) {
		/* Still the file's (the segment's) pages: not re-backed. */
		char line[512];
		ops_map_of(buf, line, sizeof(line));
		PW_CHECK(!strstr(line, "podwire-verbs") && strstr(line, " rw-s "),
			 "PW_OPS_MEM=%s: %s", ops_mem(), line);
		printf("# registered memory: %s, served by its owner: %s", ops_mem(), line);
	}
	for (int i = 0; i < NQP; i++) {
		qp[i] = qp_make(NULL);
		me.qpn[i] = qp[i]->qp_num;
	}
	union ibv_gid gid;
	PW_CHECK_EQ(ibv_query_gid(ctx, 1, 0, &gid), 0);
	memcpy(me.gid, gid.raw, 16);
	me.rkey = mr->rkey;
	me.addr = (uintptr_t)buf;
	me.ro_rkey = ro_mr->rkey;
	me.ro_addr = (uintptr_t)ro;
	xfer(&me, sizeof(me), true);
	xfer(&peer, sizeof(peer), false);
	for (int i = 0; i < NQP; i++)
		qp_connect(qp[i], peer.qpn[i]);
	sync_at(1);
}

static uint8_t pat(size_t i, unsigned seed)
{
	return (uint8_t)(i * 131 + seed * 17 + (i >> 8));
}

/* The next completion of @cq, waiting up to 5 s. */
static struct ibv_wc next_wc(struct ibv_cq *cq)
{
	struct ibv_wc wc;
	time_t end = time(NULL) + 5;

	for (;;) {
		int n = ibv_poll_cq(cq, 1, &wc);
		PW_CHECK(n >= 0, "poll_cq: %d", n);
		if (n == 1)
			return wc;
		PW_CHECK(time(NULL) < end, "no completion in 5 s");
	}
}

static void post_send_on(struct ibv_qp *q, enum ibv_wr_opcode op, struct ibv_sge *sg, int nsg,
			 uint64_t raddr, uint32_t rkey, uint64_t wr_id)
{
	struct ibv_send_wr wr = { .wr_id = wr_id,
				  .sg_list = sg,
				  .num_sge = nsg,
				  .opcode = op,
				  .send_flags = IBV_SEND_SIGNALED,
				  .imm_data = htonl(0xc0ffee) },
			   *bad;
	if (op == IBV_WR_ATOMIC_CMP_AND_SWP || op == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		wr.wr.atomic.remote_addr = raddr;
		wr.wr.atomic.rkey = rkey;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	PW_CHECK_EQ(ibv_post_send(q, &wr, &bad), 0);
}

static void post_send(int q, enum ibv_wr_opcode op, struct ibv_sge *sg, int nsg, uint64_t raddr,
		      uint32_t rkey, uint64_t wr_id)
{
	post_send_on(qp[q], op, sg, nsg, raddr, rkey, wr_id);
}

static void post_recv(int q, struct ibv_sge *sg, int nsg, uint64_t wr_id)
{
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = sg, .num_sge = nsg }, *bad;

	PW_CHECK_EQ(ibv_post_recv(qp[q], &wr, &bad), 0);
}

static void expect_wc(struct ibv_wc wc, uint64_t wr_id, enum ibv_wc_status st,
		      enum ibv_wc_opcode op, uint32_t len)
{
	PW_CHECK(wc.wr_id == wr_id && wc.status == st && wc.opcode == op &&
			 (st != IBV_WC_SUCCESS || wc.byte_len == len),
		 "wc: wr_id %llu status %s opcode %d len %u; want %llu %s %d %u",
		 (unsigned long long)wc.wr_id, ibv_wc_status_str(wc.status), wc.opcode, wc.byte_len,
		 (unsigned long long)wr_id, ibv_wc_status_str(st), op, len);
}

static long cpu_ms(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

static void server(void)
{
	struct ibv_sge sg[2];
	struct ibv_wc wc;

	/* SEND: 600 bytes scattered over 100 at 0 and 1000 at 200. */
	sg[0] = (struct ibv_sge){ (uintptr_t)buf, 100, mr->lkey };
	sg[1] = (struct ibv_sge){ (uintptr_t)buf + 200, 1000, mr->lkey };
	post_recv(0, sg, 2, 11);
	sync_at(2);
	expect_wc(next_wc(rcq), 11, IBV_WC_SUCCESS, IBV_WC_RECV, 600);
	for (size_t i = 0; i < 600; i++)
		PW_CHECK_EQ(i < 100 ? buf[i] : buf[200 + i - 100], pat(i, 1));
	PW_CHECK_EQ(buf[100], 0); /* the gap is untouched */

	/* SEND with immediate. */
	sg[0] = (struct ibv_sge){ (uintptr_t)buf + 4096, 64, mr->lkey };
	post_recv(0, sg, 1, 12);
	sync_at(3);
	wc = next_wc(rcq);
	expect_wc(wc, 12, IBV_WC_SUCCESS, IBV_WC_RECV, 10);
	PW_CHECK(wc.wc_flags & IBV_WC_WITH_IMM, "flags %#x", wc.wc_flags);
	PW_CHECK_EQ(ntohl(wc.imm_data), 0xc0ffee);
	PW_CHECK_EQ(wc.src_qp, peer.qpn[0]);

	/* WRITE: 64 KiB at 64 KiB, checked when the client says it is done. */
	sync_at(4);
	sync_at(5);
	for (size_t i = 0; i < 65536; i++)
		PW_CHECK_EQ(buf[65536 + i], pat(i, 3));

	/* WRITE with immediate: consumes a receive, places at 128 KiB. */
	sg[0] = (struct ibv_sge){ (uintptr_t)buf + 8192, 16, mr->lkey };
	post_recv(0, sg, 1, 13);
	sync_at(6);
	wc = next_wc(rcq);
	expect_wc(wc, 13, IBV_WC_SUCCESS, IBV_WC_RECV_RDMA_WITH_IMM, 100);
	PW_CHECK_EQ(ntohl(wc.imm_data), 0xc0ffee);
	for (size_t i = 0; i < 100; i++)
		PW_CHECK_EQ(buf[131072 + i], pat(i, 4));

	/* READ: the client reads 5000 bytes at 256 KiB. */
	for (size_t i = 0; i < 5000; i++)
		buf[262144 + i] = pat(i, 5);
	sync_at(7);
	sync_at(8);

	/* Atomics: the word starts at 100. */
	_Atomic uint64_t *word = (_Atomic uint64_t *)(buf + ATOM);
	atomic_store_explicit(word, 100, memory_order_seq_cst);
	sync_at(9);
	sync_at(10);
	PW_CHECK_EQ(atomic_load_explicit(word, memory_order_seq_cst), 205);
	/* Both sides add at once: the client remotely, we locally. */
	sync_at(11);
	for (int i = 0; i < FADDS; i++)
		atomic_fetch_add_explicit(word, 1000, memory_order_seq_cst);
	sync_at(12);
	PW_CHECK_EQ(atomic_load_explicit(word, memory_order_seq_cst), 205 + FADDS * 1001ull);

	/* RNR: the client sent before we posted; now we post. */
	sync_at(13);
	usleep(100000);
	sg[0] = (struct ibv_sge){ (uintptr_t)buf + 12288, 64, mr->lkey };
	post_recv(0, sg, 1, 14);
	expect_wc(next_wc(rcq), 14, IBV_WC_SUCCESS, IBV_WC_RECV, 8);
	PW_CHECK(!memcmp(buf + 12288, "after-rn", 8), "RNR data");

	/* Idle: wait for an event for 3 s; it must cost no CPU. */
	sg[0] = (struct ibv_sge){ (uintptr_t)buf + 16384, 64, mr->lkey };
	post_recv(0, sg, 1, 15);
	PW_CHECK_EQ(ibv_req_notify_cq(rcq, 0), 0);
	PW_CHECK_EQ(ibv_poll_cq(rcq, 1, &wc), 0);
	sync_at(14);
	long c0 = cpu_ms();
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	PW_CHECK_EQ(ibv_get_cq_event(ch, &ev_cq, &ev_ctx), 0);
	long used = cpu_ms() - c0;
	PW_CHECK(ev_cq == rcq, "event for another CQ");
	ibv_ack_cq_events(rcq, 1);
	expect_wc(next_wc(rcq), 15, IBV_WC_SUCCESS, IBV_WC_RECV, 4);
	PW_CHECK(used < 20, "waiting 3 s for an event used %ld ms of CPU", used);
	printf("# idle wait for a completion event: %ld ms of CPU in 3 s\n", used);

	/* The errors: our bytes stay as they are. */
	memset(buf + 524288, 0x33, 4096);
	sync_at(15);
	sync_at(16);
	for (size_t i = 0; i < RO_LEN; i++)
		PW_CHECK_EQ(ro[i], 0xee);
	for (size_t i = 0; i < 4096; i++)
		PW_CHECK_EQ(buf[524288 + i], 0x33);
	srq_server();
}

/* fork() after registration: the child gets its own copy of the registered
 * pages (what it writes stays its own, and the parent's QPs go on: the steps
 * after this one), or, with RDMAV_FORK_SAFE (ibv_fork_init's semantics), no
 * such pages at all. */
static void fork_after_reg(void)
{
	uint8_t *p = buf + 900000;
	int st;

	if (ops_mem())
		return; /* (shared memory: the child shares it) */
	memset(p, 0x21, 4096);
	pid_t pid = fork();
	PW_CHECK(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (p[0] != 0x21 || p[4095] != 0x21)
			_exit(3);
		memset(p, 0x42, 4096);
		_exit(0);
	}
	PW_CHECK_EQ(waitpid(pid, &st, 0), pid);
	if (getenv("RDMAV_FORK_SAFE"))
		PW_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV,
			 "RDMAV_FORK_SAFE: the child touched a registered page: status %#x", st);
	else
		PW_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status %#x", st);
	for (size_t i = 0; i < 4096; i++)
		PW_CHECK_EQ(p[i], 0x21);
	printf("# fork after registration%s: the parent's pages unchanged\n",
	       getenv("RDMAV_FORK_SAFE") ? " (RDMAV_FORK_SAFE: the child had none)" : "");
}

static void client(void)
{
	static uint8_t src[65536] __attribute__((aligned(64)));
	uint8_t *local = buf + 600000; /* our own registered memory */
	struct ibv_sge sg[3];
	struct ibv_wc wc;

	fork_after_reg();

	/* SEND: 600 bytes from three pieces. */
	for (size_t i = 0; i < 600; i++)
		local[i < 50 ? i : i < 350 ? i + 50 : i + 100] = pat(i, 1);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 50, mr->lkey };
	sg[1] = (struct ibv_sge){ (uintptr_t)local + 100, 300, mr->lkey };
	sg[2] = (struct ibv_sge){ (uintptr_t)local + 450, 250, mr->lkey };
	sync_at(2);
	post_send(0, IBV_WR_SEND, sg, 3, 0, 0, 1);
	expect_wc(next_wc(scq), 1, IBV_WC_SUCCESS, IBV_WC_SEND, 600);

	sync_at(3);
	memcpy(local, "immediate!", 10);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 10, mr->lkey };
	post_send(0, IBV_WR_SEND_WITH_IMM, sg, 1, 0, 0, 2);
	expect_wc(next_wc(scq), 2, IBV_WC_SUCCESS, IBV_WC_SEND, 10);

	sync_at(4);
	for (size_t i = 0; i < 65536; i++)
		local[i] = pat(i, 3);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 65536, mr->lkey };
	post_send(0, IBV_WR_RDMA_WRITE, sg, 1, peer.addr + 65536, peer.rkey, 3);
	expect_wc(next_wc(scq), 3, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE, 65536);
	sync_at(5);

	sync_at(6);
	for (size_t i = 0; i < 100; i++)
		local[i] = pat(i, 4);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 100, mr->lkey };
	post_send(0, IBV_WR_RDMA_WRITE_WITH_IMM, sg, 1, peer.addr + 131072, peer.rkey, 4);
	expect_wc(next_wc(scq), 4, IBV_WC_SUCCESS, IBV_WC_RDMA_WRITE, 100);

	sync_at(7);
	memset(local, 0, 5000);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 2000, mr->lkey };
	sg[1] = (struct ibv_sge){ (uintptr_t)local + 2000, 3000, mr->lkey };
	post_send(0, IBV_WR_RDMA_READ, sg, 2, peer.addr + 262144, peer.rkey, 5);
	expect_wc(next_wc(scq), 5, IBV_WC_SUCCESS, IBV_WC_RDMA_READ, 5000);
	for (size_t i = 0; i < 5000; i++)
		PW_CHECK_EQ(local[i], pat(i, 5));
	sync_at(8);

	/* CAS 100 -> 200 (taken), CAS 100 -> 300 (not: the word is 200),
	 * FADD 5. Each returns the word as it was. */
	sync_at(9);
	uint64_t *res = (uint64_t *)local;
	struct ibv_send_wr wr = { .sg_list = sg, .num_sge = 1, .send_flags = IBV_SEND_SIGNALED },
			   *bad;
	sg[0] = (struct ibv_sge){ (uintptr_t)res, 8, mr->lkey };
	const struct {
		enum ibv_wr_opcode op;
		uint64_t cmp, swp, want;
	} at[] = { { IBV_WR_ATOMIC_CMP_AND_SWP, 100, 200, 100 },
		   { IBV_WR_ATOMIC_CMP_AND_SWP, 100, 300, 200 },
		   { IBV_WR_ATOMIC_FETCH_AND_ADD, 5, 0, 200 } };
	for (unsigned i = 0; i < 3; i++) {
		wr.wr_id = 60 + i;
		wr.opcode = at[i].op;
		wr.wr.atomic =
			(typeof(wr.wr.atomic)){ peer.addr + ATOM, at[i].cmp, at[i].swp, peer.rkey };
		PW_CHECK_EQ(ibv_post_send(qp[0], &wr, &bad), 0);
		wc = next_wc(scq);
		PW_CHECK(wc.status == IBV_WC_SUCCESS && wc.wr_id == 60 + i, "atomic %u: %s", i,
			 ibv_wc_status_str(wc.status));
		PW_CHECK_EQ(*res, at[i].want);
	}
	sync_at(10);
	sync_at(11);
	wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
	wr.wr.atomic = (typeof(wr.wr.atomic)){ peer.addr + ATOM, 1, 0, peer.rkey };
	for (int i = 0; i < FADDS; i++) {
		wr.wr_id = 100 + (uint64_t)i;
		PW_CHECK_EQ(ibv_post_send(qp[0], &wr, &bad), 0);
		wc = next_wc(scq);
		PW_CHECK_EQ(wc.status, IBV_WC_SUCCESS);
	}
	sync_at(12);

	/* RNR: no receive yet. The send waits, then completes. */
	memcpy(local, "after-rn", 8);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 8, mr->lkey };
	post_send(0, IBV_WR_SEND, sg, 1, 0, 0, 7);
	PW_CHECK_EQ(ibv_poll_cq(scq, 1, &wc), 0);
	sync_at(13);
	expect_wc(next_wc(scq), 7, IBV_WC_SUCCESS, IBV_WC_SEND, 8);

	sync_at(14);
	sleep(3);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 4, mr->lkey };
	post_send(0, IBV_WR_SEND, sg, 1, 0, 0, 8);
	expect_wc(next_wc(scq), 8, IBV_WC_SUCCESS, IBV_WC_SEND, 4);

	/* Errors, a QP each: out of bounds, a bad rkey, no REMOTE_WRITE. Each
	 * fails the QP; the request after it is flushed. */
	sync_at(15);
	memset(src, 0x77, sizeof(src));
	memcpy(local, src, 4096);
	sg[0] = (struct ibv_sge){ (uintptr_t)local, 4096, mr->lkey };
	const struct {
		uint64_t raddr;
		uint32_t rkey;
	} bad_at[] = { { peer.addr + BUF_LEN - 100, peer.rkey },
		       { peer.addr + 524288, peer.rkey ^ 0x1000 },
		       { peer.ro_addr, peer.ro_rkey } };
	for (int q = 1; q <= NERR; q++) {
		post_send(q, IBV_WR_RDMA_WRITE, sg, 1, bad_at[q - 1].raddr, bad_at[q - 1].rkey,
			  20 + (uint64_t)q);
		expect_wc(next_wc(scq), 20 + (uint64_t)q, IBV_WC_REM_ACCESS_ERR, IBV_WC_RDMA_WRITE,
			  0);
		struct ibv_qp_attr a;
		struct ibv_qp_init_attr ia;
		PW_CHECK_EQ(ibv_query_qp(qp[q], &a, IBV_QP_STATE, &ia), 0);
		PW_CHECK_EQ(a.qp_state, IBV_QPS_ERR);
		post_send(q, IBV_WR_RDMA_WRITE, sg, 1, peer.addr + 524288, peer.rkey,
			  30 + (uint64_t)q);
		wc = next_wc(scq);
		PW_CHECK(wc.wr_id == 30 + (uint64_t)q && wc.status == IBV_WC_WR_FLUSH_ERR,
			 "after the error: %s", ibv_wc_status_str(wc.status));
	}
	sync_at(16);
	srq_client();
}

/* ---- a shared receive queue ---- */

#define NSQ	 2
#define SRQ_MSGS 8	/* 7 SENDs (every third with immediate), 1 WRITE with immediate */
#define SRQ_AT	 65536	/* the server's receive buffers, 256 bytes each */
#define SRQ_WIMM 131072 /* the WRITE's target */

/* NSQ more QPs each side, the server's on @srq, connected pairwise. */
static void srq_pair(struct ibv_srq *srq, struct ibv_qp **q)
{
	uint32_t mine[NSQ], theirs[NSQ];

	for (int i = 0; i < NSQ; i++) {
		q[i] = qp_make(srq);
		mine[i] = q[i]->qp_num;
	}
	xfer(mine, sizeof(mine), true);
	xfer(theirs, sizeof(theirs), false);
	for (int i = 0; i < NSQ; i++)
		qp_connect(q[i], theirs[i]);
}

/* SEND number @m of the client: 100 + m bytes, m first. */
static void srq_check_send(const uint8_t *p, uint32_t len, bool *seen)
{
	unsigned m = p[0];

	PW_CHECK(m < SRQ_MSGS - 1 && !seen[m] && len == 100 + m,
		 "SEND %u (%u bytes) again or unknown", m, len);
	seen[m] = true;
	for (uint32_t i = 1; i < len; i++)
		PW_CHECK_EQ(p[i], pat(i, 30 + m));
}

static void srq_server(void)
{
	struct ibv_srq_init_attr sa = { .attr = { .max_wr = 16, .max_sge = 1 } };
	struct ibv_srq *srq = ibv_create_srq(pd, &sa);
	struct ibv_qp *q[NSQ];
	bool seen[SRQ_MSGS] = { false }, taken[SRQ_MSGS] = { false };

	PW_CHECK(srq, "create_srq: %s", strerror(errno));
	srq_pair(srq, q);
	struct ibv_sge sg = { (uintptr_t)buf + SRQ_AT, 256, mr->lkey };
	struct ibv_recv_wr wr = { .wr_id = 1, .sg_list = &sg, .num_sge = 1 }, *bad;
	PW_CHECK_EQ(ibv_post_recv(q[0], &wr, &bad), EINVAL); /* (the SRQ's alone) */
	for (int i = 0; i < SRQ_MSGS; i++) {
		sg.addr = (uintptr_t)buf + SRQ_AT + (uint64_t)i * 256;
		wr.wr_id = 100 + (uint64_t)i;
		PW_CHECK_EQ(ibv_post_srq_recv(srq, &wr, &bad), 0);
	}
	struct ibv_srq_attr at = { .srq_limit = 2 };
	PW_CHECK_EQ(ibv_modify_srq(srq, &at, IBV_SRQ_LIMIT), 0);
	PW_CHECK_EQ(ibv_modify_srq(srq, &at, IBV_SRQ_MAX_WR), EINVAL); /* (no resizing) */
	sync_at(40);
	/* Both QPs' messages, each in one receive of the SRQ's. */
	for (int n = 0; n < SRQ_MSGS; n++) {
		struct ibv_wc wc = next_wc(rcq);
		unsigned i = (unsigned)(wc.wr_id - 100);
		PW_CHECK(wc.status == IBV_WC_SUCCESS && i < SRQ_MSGS && !taken[i],
			 "SRQ completion: wr_id %llu %s", (unsigned long long)wc.wr_id,
			 ibv_wc_status_str(wc.status));
		taken[i] = true;
		PW_CHECK(wc.qp_num == q[0]->qp_num || wc.qp_num == q[1]->qp_num, "qp_num %u",
			 wc.qp_num);
		if (wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM) {
			PW_CHECK(wc.byte_len == 64 && (wc.wc_flags & IBV_WC_WITH_IMM) &&
					 wc.imm_data == htonl(0xc0ffee) && !seen[SRQ_MSGS - 1],
				 "WRITE with immediate: %u bytes", wc.byte_len);
			seen[SRQ_MSGS - 1] = true;
			for (size_t k = 0; k < 64; k++)
				PW_CHECK_EQ(buf[SRQ_WIMM + k], pat(k, 50));
			continue;
		}
		PW_CHECK_EQ(wc.opcode, IBV_WC_RECV);
		const uint8_t *p = buf + SRQ_AT + (size_t)i * 256;
		PW_CHECK_EQ(!!(wc.wc_flags & IBV_WC_WITH_IMM), p[0] % 3 == 1);
		srq_check_send(p, wc.byte_len, seen);
	}
	for (int m = 0; m < SRQ_MSGS; m++)
		PW_CHECK(seen[m], "message %d never came", m);
	/* Fewer receives posted than the limit: the event, once. */
	struct pollfd pf = { .fd = ctx->async_fd, .events = POLLIN };
	PW_CHECK(poll(&pf, 1, 5000) == 1, "no SRQ limit event in 5 s");
	struct ibv_async_event ev;
	PW_CHECK_EQ(ibv_get_async_event(ctx, &ev), 0);
	PW_CHECK(ev.event_type == IBV_EVENT_SRQ_LIMIT_REACHED && ev.element.srq == srq,
		 "async event %s", ibv_event_type_str(ev.event_type));
	ibv_ack_async_event(&ev);
	PW_CHECK_EQ(ibv_query_srq(srq, &at), 0);
	PW_CHECK(at.srq_limit == 0 && at.max_wr == 16, "query_srq: limit %u max_wr %u",
		 at.srq_limit, at.max_wr);
	/* A SEND that finds the SRQ empty waits for the next receive (RNR). */
	sync_at(41);
	usleep(100000);
	memset(seen, 0, sizeof(seen));
	sg.addr = (uintptr_t)buf + SRQ_AT;
	wr.wr_id = 200;
	PW_CHECK_EQ(ibv_post_srq_recv(srq, &wr, &bad), 0);
	struct ibv_wc wc = next_wc(rcq);
	expect_wc(wc, 200, IBV_WC_SUCCESS, IBV_WC_RECV, 100);
	srq_check_send(buf + SRQ_AT, wc.byte_len, seen);
	sync_at(42);
	PW_CHECK_EQ(ibv_destroy_srq(srq), EBUSY); /* its QPs first */
	for (int i = 0; i < NSQ; i++)
		PW_CHECK_EQ(ibv_destroy_qp(q[i]), 0);
	PW_CHECK_EQ(ibv_destroy_srq(srq), 0);
	printf("# SRQ: %d messages over %d QPs, its limit event, RNR on it\n", SRQ_MSGS, NSQ);
}

static void srq_client(void)
{
	uint8_t *local = buf + 700000;
	struct ibv_qp *q[NSQ];
	struct ibv_sge sg;

	srq_pair(NULL, q);
	sync_at(40);
	for (unsigned m = 0; m < SRQ_MSGS; m++) {
		uint8_t *l = local + m * 512;
		bool wimm = m == SRQ_MSGS - 1;
		uint32_t len = wimm ? 64 : 100 + m;
		for (uint32_t i = 0; i < len; i++)
			l[i] = wimm ? pat(i, 50) : i ? pat(i, 30 + m) : (uint8_t)m;
		sg = (struct ibv_sge){ (uintptr_t)l, len, mr->lkey };
		post_send_on(q[m % NSQ],
			     wimm	  ? IBV_WR_RDMA_WRITE_WITH_IMM
			     : m % 3 == 1 ? IBV_WR_SEND_WITH_IMM
					  : IBV_WR_SEND,
			     &sg, 1, peer.addr + SRQ_WIMM, peer.rkey, 300 + m);
	}
	for (int n = 0; n < SRQ_MSGS; n++) {
		struct ibv_wc wc = next_wc(scq);
		PW_CHECK(wc.status == IBV_WC_SUCCESS && wc.wr_id >= 300 &&
				 wc.wr_id < 300 + SRQ_MSGS,
			 "send to the SRQ: wr_id %llu %s", (unsigned long long)wc.wr_id,
			 ibv_wc_status_str(wc.status));
	}
	sync_at(41);
	sg = (struct ibv_sge){ (uintptr_t)local, 100, mr->lkey }; /* SEND 0 again */
	post_send_on(q[1], IBV_WR_SEND, &sg, 1, 0, 0, 400);
	expect_wc(next_wc(scq), 400, IBV_WC_SUCCESS, IBV_WC_SEND, 100);
	sync_at(42);
	for (int i = 0; i < NSQ; i++)
		PW_CHECK_EQ(ibv_destroy_qp(q[i]), 0);
}

/* ---- a hostile peer ---- */

#define SECRET_LEN 4096

static uint8_t *secret; /* the target's, registered nowhere */

static void hostile_target(void)
{
	uint64_t at;
	uint32_t wrote;
	struct ibv_wc wc;

	secret = memalign(4096, SECRET_LEN);
	PW_CHECK(secret, "memalign");
	memset(secret, 0x5a, SECRET_LEN);
	at = (uintptr_t)secret;
	xfer(&at, sizeof(at), true);
	/* Deregistration while the peer holds the key: it read with it
	 * before; after, the same read is a remote access error. */
	sync_at(18);
	PW_CHECK_EQ(ibv_dereg_mr(ro_mr), 0);
	ro_mr = NULL;
	sync_at(19);
	sync_at(20);
	sync_at(21);
	xfer(&wrote, sizeof(wrote), false);
	sync_at(22);
	for (size_t i = 0; i < SECRET_LEN; i++)
		PW_CHECK_EQ(secret[i], 0x5a);
	for (size_t i = 0; i < RO_LEN; i++)
		PW_CHECK_EQ(ro[i], 0xee);
	if (wrote) {
		/* Its bytes broke the connections: our QPs fail, as when a
		 * peer dies, and polling says so. */
		time_t end = time(NULL) + 5;
		struct ibv_qp_attr a = { 0 };
		struct ibv_qp_init_attr ia;
		for (;;) {
			PW_CHECK(ibv_poll_cq(rcq, 1, &wc) >= 0, "poll_cq");
			PW_CHECK_EQ(ibv_query_qp(qp[0], &a, IBV_QP_STATE, &ia), 0);
			if (a.qp_state == IBV_QPS_ERR)
				break;
			PW_CHECK(time(NULL) < end, "QP 0 not in error 5 s after the garbage");
			usleep(1000);
		}
	}
	/* Garbage in our QP slots, on one node (where the peer maps them):
	 * no more completions than we posted receives, each one of ours,
	 * none saying more bytes than its receive holds. */
	for (int i = 0; i < 4; i++) {
		struct ibv_sge rs = { (uintptr_t)buf + 800000 + (uint64_t)i * 64, 64, mr->lkey };
		post_recv(1, &rs, 1, 500 + (uint64_t)i);
	}
	sync_at(23);
	sync_at(24);
	int got = 0;
	bool seen[4] = { false };
	for (time_t end = time(NULL) + 1; time(NULL) < end;) {
		int n = ibv_poll_cq(rcq, 1, &wc);
		PW_CHECK(n >= 0, "poll_cq after the garbage: %d", n);
		if (!n || wc.qp_num != qp[1]->qp_num)
			continue;
		unsigned k = (unsigned)(wc.wr_id - 500);
		PW_CHECK(k < 4 && !seen[k], "a completion not of ours: wr_id %llu",
			 (unsigned long long)wc.wr_id);
		PW_CHECK(wc.status != IBV_WC_SUCCESS || wc.byte_len <= 64,
			 "a completion of %u bytes into a 64-byte receive", wc.byte_len);
		seen[k] = true;
		got++;
	}
	for (size_t i = 0; i < SECRET_LEN; i++)
		PW_CHECK_EQ(secret[i], 0x5a);
	printf("# hostile peer: garbage in our QP slots: %d completion(s), each a receive of "
	       "ours\n",
	       got);
	/* Still a device that works. */
	struct ibv_qp_init_attr ia = { .send_cq = scq,
				       .recv_cq = rcq,
				       .qp_type = IBV_QPT_RC,
				       .cap = { .max_send_wr = 1, .max_recv_wr = 1 } };
	struct ibv_qp *q = ibv_create_qp(pd, &ia);
	PW_CHECK(q, "create_qp after the attack: %s", strerror(errno));
	PW_CHECK_EQ(ibv_destroy_qp(q), 0);
	printf("# hostile peer: its forged keys, address and QP number got errors; "
	       "%u connection(s) it wrote into broke; our memory unchanged\n",
	       wrote);
}

/* Our sockets on the underlay that podwire made for the QPs: every TCP
 * socket but the one the test itself made. */
static uint32_t hostile_wire(uint64_t at)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint32_t n = 0;

	PW_CHECK(d, "/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), dom = 0, type = 0;
		socklen_t l = sizeof(dom);
		if (e->d_name[0] == '.' || fd == sock || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 || dom != AF_INET)
			continue;
		l = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) < 0 || type != SOCK_STREAM)
			continue;
		/* A WRITE and a READ for the secret with a real key, in the
		 * connection's own form, then an operation that does not exist. */
		struct {
			struct pw_wire_vmsg w;
			uint8_t data[64];
			struct pw_wire_vmsg r, junk;
		} m = { .w = { .op = PW_VOP_WRITE, .len = 64, .rkey = peer.rkey, .raddr = at },
			.r = { .op = PW_VOP_READ, .len = 64, .rkey = peer.rkey, .raddr = at } };
		memset(m.data, 0x66, sizeof(m.data));
		memset(&m.junk, 0xff, sizeof(m.junk));
		PW_CHECK(send(fd, &m, sizeof(m), MSG_NOSIGNAL) == (ssize_t)sizeof(m), "send: %s",
			 strerror(errno));
		n++;
	}
	closedir(d);
	return n;
}

/* On one node: write garbage into every QP slot of the target's that we
 * map (the peers of our QPs): completions claiming every status, opcode and
 * length, indices far ahead. The count of slots written. */
static unsigned hostile_arena(void)
{
	char line[512];
	unsigned n = 0;
	FILE *f = fopen("/proc/self/maps", "re");
	const uint64_t qps = PW_VARENA_META + PW_VQP_OFF;

	PW_CHECK(f, "maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, off;
		if (!strstr(line, "/memfd:podwire-verbs") ||
		    sscanf(line, "%lx-%lx %*s %lx", &s, &e, &off) != 3 || off < qps ||
		    off >= PW_VARENA_META + PW_VSRQ_OFF || !strstr(line, "rw"))
			continue;
		/* The slot in it: the first whose start falls in the mapping. */
		uint64_t k = (off - qps + sizeof(struct pw_vqp) - 1) / sizeof(struct pw_vqp);
		uint64_t at = qps + k * sizeof(struct pw_vqp);
		if (at + sizeof(struct pw_vqp) > off + (e - s))
			continue;
		struct pw_vqp *p = (struct pw_vqp *)(s + (at - off));
		for (unsigned i = 0; i < PW_VRQ_DEPTH; i++)
			p->cq[i] = (struct pw_vcqe){ .wr_id = i * 7919u,
						     .status = i % 3 ? 0 : 0xa5a5a5a5u,
						     .opcode = i,
						     .byte_len = 0xa5a5a5a5u,
						     .imm = i };
		atomic_store_explicit(&p->cq_head, atomic_load(&p->cq_head) + 100000u,
				      memory_order_release);
		atomic_store_explicit(&p->rq_tail, 0x7fffffffu, memory_order_release);
		atomic_store_explicit(&p->armed, 1, memory_order_release);
		n++;
	}
	fclose(f);
	return n;
}

/* Wake every eventfd we hold: among them, the target's service eventfd
 * (VERBS_PAIRED passed it; which one it is, we do not know). */
static void hostile_wake_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	PW_CHECK(d, "fds: %s", strerror(errno));
	while ((e = readdir(d))) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, "anon_inode:[eventfd]")) {
			uint64_t one = 1;
			PW_CHECK(write(atoi(e->d_name), &one, 8) == 8 || errno == EAGAIN,
				 "eventfd: %s", strerror(errno));
		}
	}
	closedir(d);
}

/*
 * On one node: requests of our own making, straight into the target's
 * service entries we map (svc.c), past every check the library makes:
 * the secret's address with the key it gave, a key it never gave, an op
 * that does not exist, more bytes than an entry holds, a misaligned atomic,
 * a deregistered key. Each is answered with an error; the target's bytes
 * stay as they were (it checks). The number of entries written.
 */
static unsigned hostile_service(uint64_t at)
{
	const struct {
		uint32_t op, key;
		uint64_t addr, len;
		uint32_t want;
	} ask[] = {
		{ PW_VSVC_WRITE, peer.rkey, at, 64, IBV_WC_REM_ACCESS_ERR },
		{ PW_VSVC_READ, peer.rkey, at, 64, IBV_WC_REM_ACCESS_ERR },
		{ PW_VSVC_PLACE, peer.rkey, at, 64, IBV_WC_REM_ACCESS_ERR },
		{ PW_VSVC_WRITE, 0xdeadbeef, peer.addr, 64, IBV_WC_REM_ACCESS_ERR },
		{ PW_VSVC_READ, peer.ro_rkey, peer.ro_addr, 64, IBV_WC_REM_ACCESS_ERR },
		{ 99, peer.rkey, peer.addr, 64, IBV_WC_REM_INV_REQ_ERR },
		{ PW_VSVC_WRITE, peer.rkey, peer.addr, PW_VSVC_DATA + 1ull,
		  IBV_WC_REM_INV_REQ_ERR },
		{ PW_VSVC_WRITE, peer.rkey, peer.addr, 0, IBV_WC_REM_INV_REQ_ERR },
		{ PW_VSVC_CAS, peer.rkey, peer.addr + 1, 8, IBV_WC_REM_INV_REQ_ERR },
		{ PW_VSVC_FAA, peer.rkey, at, 8, IBV_WC_REM_ACCESS_ERR },
	};
	const uint64_t svc = PW_VARENA_META + PW_VSVC_OFF;
	char line[512];
	unsigned n = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	PW_CHECK(f, "maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long st, e, off;
		if (!strstr(line, "/memfd:podwire-verbs") ||
		    sscanf(line, "%lx-%lx %*s %lx", &st, &e, &off) != 3 || off < svc ||
		    (off - svc) % sizeof(struct pw_vsvc) || !strstr(line, "rw"))
			continue;
		struct pw_vsvc *v = (struct pw_vsvc *)st;
		for (size_t i = 0; i < sizeof(ask) / sizeof(ask[0]); i++) {
			memset(v->data, 0, 4096);
			atomic_store_explicit(&v->op, ask[i].op, memory_order_relaxed);
			atomic_store_explicit(&v->key, ask[i].key, memory_order_relaxed);
			atomic_store_explicit(&v->addr, ask[i].addr, memory_order_relaxed);
			atomic_store_explicit(&v->len, ask[i].len, memory_order_relaxed);
			atomic_store_explicit(&v->cmp, 0x5a5a5a5a5a5a5a5aull, memory_order_relaxed);
			atomic_store_explicit(&v->swp, 0x5a5a5a5a5a5a5a5aull, memory_order_relaxed);
			uint32_t seq = atomic_load_explicit(&v->req, memory_order_relaxed) + 1;
			atomic_store_explicit(&v->req, seq, memory_order_release);
			time_t end = time(NULL) + 5;
			do {
				hostile_wake_all();
				usleep(1000);
				PW_CHECK(time(NULL) < end,
					 "entry %lx, request %zu: no answer in 5 s", off, i);
			} while (atomic_load_explicit(&v->done, memory_order_acquire) != seq);
			uint32_t got = atomic_load_explicit(&v->status, memory_order_relaxed);
			PW_CHECK(got == ask[i].want, "entry %lx, request %zu: status %u, want %u",
				 off, i, got, ask[i].want);
			for (size_t k = 0; k < 64; k++)
				PW_CHECK(v->data[k] != 0x5a, "request %zu read the secret", i);
		}
		n++;
	}
	fclose(f);
	return n;
}

static void hostile(void)
{
	uint8_t *local = buf + 700000;
	struct ibv_sge sg = { (uintptr_t)local, 64, mr->lkey };
	uint64_t at;

	xfer(&at, sizeof(at), false);
	post_send(0, IBV_WR_RDMA_READ, &sg, 1, peer.ro_addr, peer.ro_rkey, 38);
	expect_wc(next_wc(scq), 38, IBV_WC_SUCCESS, IBV_WC_RDMA_READ, 64);
	PW_CHECK_EQ(local[0], 0xee);
	sync_at(18);
	sync_at(19);
	post_send(0, IBV_WR_RDMA_READ, &sg, 1, peer.ro_addr, peer.ro_rkey, 39);
	expect_wc(next_wc(scq), 39, IBV_WC_REM_ACCESS_ERR, IBV_WC_RDMA_READ, 0);
	sync_at(20);
	/* Keys it never gave, and its secret with the key it gave: each a
	 * remote access error that fails the QP. */
	const struct {
		enum ibv_wr_opcode op;
		uint64_t raddr;
		uint32_t rkey;
	} forged[] = { { IBV_WR_RDMA_WRITE, peer.addr, peer.rkey + 0x10000 },
		       { IBV_WR_RDMA_WRITE, peer.addr, 0xdeadbeef },
		       { IBV_WR_RDMA_READ, at, peer.rkey },
		       { IBV_WR_RDMA_WRITE, at, peer.rkey } };
	for (int i = 0; i < NQP - HQP; i++) {
		post_send(HQP + i, forged[i].op, &sg, 1, forged[i].raddr, forged[i].rkey,
			  40 + (uint64_t)i);
		struct ibv_wc wc = next_wc(scq);
		PW_CHECK(wc.wr_id == 40 + (uint64_t)i && wc.status == IBV_WC_REM_ACCESS_ERR,
			 "forged %d: %s", i, ibv_wc_status_str(wc.status));
	}
	/* A QP pointed at the target's QP 0, which points back at our QP 0,
	 * not at it: never paired; its send runs out of retries. */
	struct ibv_qp_init_attr ia = {
		.send_cq = scq,
		.recv_cq = rcq,
		.qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1 }
	};
	struct ibv_qp *lone = ibv_create_qp(pd, &ia);
	PW_CHECK(lone, "create_qp: %s", strerror(errno));
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .port_num = 1,
				 .qp_access_flags = IBV_ACCESS_REMOTE_WRITE };
	PW_CHECK_EQ(
		ibv_modify_qp(lone, &a,
			      IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
		0);
	qp_connect_t(lone, peer.qpn[0], 8, 3);
	struct ibv_send_wr wr = { .wr_id = 49,
				  .sg_list = &sg,
				  .num_sge = 1,
				  .opcode = IBV_WR_RDMA_WRITE,
				  .send_flags = IBV_SEND_SIGNALED,
				  .wr.rdma = { peer.addr, peer.rkey } },
			   *bad;
	PW_CHECK_EQ(ibv_post_send(lone, &wr, &bad), 0);
	struct ibv_wc wc = next_wc(scq);
	PW_CHECK(wc.wr_id == 49 && wc.status == IBV_WC_RETRY_EXC_ERR, "forged QP number: %s",
		 ibv_wc_status_str(wc.status));
	PW_CHECK_EQ(ibv_destroy_qp(lone), 0);
	unsigned entries = hostile_service(at);
	printf("# hostile: forged requests into %u service entr%s of the target's: errors\n",
	       entries, entries == 1 ? "y" : "ies");
	sync_at(21);
	/* Across nodes: bytes of our own into the connections. */
	uint32_t wrote = hostile_wire(at);
	xfer(&wrote, sizeof(wrote), true);
	usleep(200000);
	sync_at(22);
	sync_at(23);
	unsigned slots = hostile_arena();
	printf("# hostile: garbage into %u QP slot(s) of the target's arena\n", slots);
	sync_at(24);
}

static void teardown(void)
{
	for (int i = 0; i < NQP; i++)
		PW_CHECK_EQ(ibv_destroy_qp(qp[i]), 0);
	PW_CHECK_EQ(ibv_dereg_mr(mr), 0);
	if (ro_mr)
		PW_CHECK_EQ(ibv_dereg_mr(ro_mr), 0);
	PW_CHECK_EQ(ibv_destroy_cq(scq), 0);
	PW_CHECK_EQ(ibv_destroy_cq(rcq), 0);
	PW_CHECK_EQ(ibv_destroy_comp_channel(ch), 0);
	PW_CHECK_EQ(ibv_dealloc_pd(pd), 0);
	PW_CHECK_EQ(ibv_close_device(ctx), 0);
}

/* Every mapping of podwire's arenas left is a page re-backed in place (its
 * offset is its address): no window on a peer, no meta part. */
static void check_no_arena_maps(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	PW_CHECK(f, "maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e, off;
		if (!strstr(line, "/memfd:podwire-verbs") ||
		    sscanf(line, "%lx-%lx %*s %lx", &s, &e, &off) != 3)
			continue;
		PW_CHECK(off == s, "a mapping of an arena is left: %s", line);
	}
	fclose(f);
}

static void survivor(int fds0)
{
	struct ibv_sge sg = { (uintptr_t)buf, 64, mr->lkey };
	struct timespec t;

	post_recv(0, &sg, 1, 77);
	PW_CHECK_EQ(ibv_req_notify_cq(rcq, 0), 0);
	sync_at(2);
	struct ibv_cq *ev_cq;
	void *ev_ctx;
	PW_CHECK_EQ(ibv_get_cq_event(ch, &ev_cq, &ev_ctx), 0);
	clock_gettime(CLOCK_REALTIME, &t);
	ibv_ack_cq_events(ev_cq, 1);
	expect_wc(next_wc(rcq), 77, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV, 0);
	struct ibv_qp_attr a;
	struct ibv_qp_init_attr ia;
	PW_CHECK_EQ(ibv_query_qp(qp[0], &a, IBV_QP_STATE, &ia), 0);
	PW_CHECK_EQ(a.qp_state, IBV_QPS_ERR);
	post_send(0, IBV_WR_SEND, &sg, 1, 0, 0, 78);
	expect_wc(next_wc(scq), 78, IBV_WC_WR_FLUSH_ERR, IBV_WC_SEND, 0);
	printf("woken %lld\n", (long long)t.tv_sec * 1000000000ll + t.tv_nsec);
	close(sock);
	teardown();
	PW_CHECK_EQ(pw_test_count_fds(), fds0);
	check_no_arena_maps();
	printf("test-verbs-ops survivor: ok\n");
	exit(0);
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET };

	if (argc != 4 || inet_pton(AF_INET, argv[2], &a.sin_addr) != 1)
		PW_FAIL("usage: test-verbs-ops "
			"server|client|survivor|victim|hostile-target|hostile "
			"IP PORT");
	a.sin_port = htons((uint16_t)atoi(argv[3]));
	/* survivor and victim: a server and a client; the victim gets killed.
	 * hostile-target and hostile: the same. */
	bool srv = !strcmp(argv[1], "server") || !strcmp(argv[1], "survivor") ||
		   !strcmp(argv[1], "hostile-target");
	if (srv) {
		int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		PW_CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0,
			 "listen: %s", strerror(errno));
		sock = accept(l, NULL, NULL);
		close(l);
	} else {
		for (int i = 0; i < 50; i++) {
			sock = socket(AF_INET, SOCK_STREAM, 0);
			if (connect(sock, (struct sockaddr *)&a, sizeof(a)) == 0)
				break;
			close(sock);
			sock = -1;
			usleep(100000);
		}
	}
	PW_CHECK(sock >= 0, "socket: %s", strerror(errno));
	int fds0 = pw_test_count_fds(); /* (the survivor closes sock before it counts) */
	setup();
	if (!strcmp(argv[1], "survivor"))
		survivor(fds0 - 1);
	if (!strcmp(argv[1], "victim")) {
		sync_at(2);
		printf("ready %d\n", (int)getpid());
		fflush(stdout);
		pause();
	}
	if (!strcmp(argv[1], "hostile-target"))
		hostile_target();
	else if (!strcmp(argv[1], "hostile"))
		hostile();
	else if (srv)
		server();
	else
		client();
	sync_at(99);
	teardown();
	printf("test-verbs-ops %s: ok\n", argv[1]);
	return 0;
}
