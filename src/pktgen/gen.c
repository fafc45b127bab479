// SPDX-License-Identifier: MIT
/*
 * One measurement. Open loop: bursts leave on a fixed schedule whatever
 * comes back, each frame stamped with its own send time. When the
 * generator itself falls behind its schedule (descheduled), the missed
 * slots are skipped and counted, not sent late in a rush, so that its own
 * delays do not masquerade as the path's queueing. Frames sent during the
 * warm-up are not measured; after the window, replies are awaited for a
 * while (PW_PG_DRAIN_NS) before the rest count as lost.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "pktgen.h"

#define PW_PG_DRAIN_NS	 200000000ull /* replies awaited after the window */
#define PW_PG_BURST_NS	 20000u	      /* a burst holds at most this much of the schedule */
#define PW_PG_CPU_FIELDS 8

/* The first line of @path, or false. */
static bool pw_pg_line(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	bool ok = f && fgets(buf, (int)n, f);

	if (f)
		fclose(f);
	return ok;
}

/* Busy and total ticks of all CPUs (/proc/stat), and ours (fields 14 and
 * 15 of /proc/self/stat, after the name in parentheses). */
static int pw_pg_cpu(uint64_t *busy, uint64_t *total, uint64_t *self)
{
	char line[1024], *p, *end;
	uint64_t v[PW_PG_CPU_FIELDS] = { 0 };

	*busy = *total = *self = 0;
	if (!pw_pg_line("/proc/stat", line, sizeof(line)) || strncmp(line, "cpu ", 4) != 0)
		return -EIO;
	p = line + 4;
	for (int i = 0; i < PW_PG_CPU_FIELDS; i++, p = end) {
		v[i] = strtoull(p, &end, 10);
		if (end == p)
			return -EIO;
		*total += v[i];
	}
	*busy = *total - v[3] - v[4]; /* less idle and iowait */
	if (!pw_pg_line("/proc/self/stat", line, sizeof(line)) || !(p = strrchr(line, ')')))
		return -EIO;
	/* After ")": state is field 3; utime and stime are 14 and 15. */
	p++;
	for (int field = 3; field <= 15; field++) {
		while (*p == ' ')
			p++;
		if (field >= 14)
			*self += strtoull(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			return field == 15 ? 0 : -EIO;
	}
	return 0;
}

static void pw_pg_frame(uint8_t *buf, const struct pw_pg_cfg *cfg)
{
	memset(buf, 0, cfg->size);
	memcpy(buf, cfg->dst, 6);
	memcpy(buf + 6, cfg->src, 6);
	buf[12] = PW_PG_ETHERTYPE >> 8;
	buf[13] = PW_PG_ETHERTYPE & 0xff;
}

int pw_pg_run(struct pw_pg_port *tx, struct pw_pg_port *rx, const struct pw_pg_cfg *cfg,
	      struct pw_pg_result *res)
{
	static uint32_t runs;
	static uint8_t frames[PW_PG_BURST][PW_PG_MAX_FRAME];
	struct pw_memif_pkt out[PW_PG_BURST], in[PW_PG_BURST];
	const uint32_t run = ++runs + ((uint32_t)getpid() << 16);
	unsigned burst = PW_PG_BURST;
	uint64_t interval = 0, seq = 0;
	uint64_t b0, t0, s0, b1, t1, s1;
	int r = 0;

	memset(res, 0, sizeof(*res));
	pw_hist_init(&res->rtt);
	res->offered = cfg->rate;
	if (cfg->rate > 0) {
		double b = cfg->rate * PW_PG_BURST_NS / 1e9;
		burst = b < 1 ? 1 : b > PW_PG_BURST ? PW_PG_BURST : (unsigned)b;
		interval = (uint64_t)(burst * 1e9 / cfg->rate);
	}
	for (unsigned i = 0; i < PW_PG_BURST; i++) {
		pw_pg_frame(frames[i], cfg);
		out[i].data = frames[i];
		out[i].len = cfg->size;
	}

	const uint64_t start = pw_now_ns(), from = start + (uint64_t)(cfg->warmup * 1e9),
		       until = from + (uint64_t)(cfg->seconds * 1e9);
	uint64_t next = start, now;
	bool measuring = false;
	pw_pg_cpu(&b0, &t0, &s0);
	for (;;) {
		now = pw_now_ns();
		if (now >= until + PW_PG_DRAIN_NS || (now >= until && res->received >= res->sent))
			break;
		if (!measuring && now >= from) {
			measuring = true;
			pw_pg_cpu(&b0, &t0, &s0);
		}
		if (now < until && now >= next) {
			if (interval && now - next >= 2 * interval) {
				/* Late by whole slots: skip them. */
				uint64_t late = (now - next) / interval - 1;
				if (measuring)
					res->skipped += late * burst;
				next += late * interval;
			}
			for (unsigned i = 0; i < burst; i++) {
				struct pw_pg_stamp st = {
					.magic = PW_PG_MAGIC, .run = run, .seq = seq, .ts = now
				};
				seq++;
				memcpy(frames[i] + 14, &st, sizeof(st));
			}
			int k = tx->tx(tx, out, burst);
			if (k < 0) {
				r = k;
				break;
			}
			if (measuring) {
				res->sent += (unsigned)k;
				res->refused += burst - (unsigned)k;
			}
			next = interval ? next + interval : now;
		}
		int n = rx->rx(rx, in, PW_PG_BURST);
		if (n < 0) {
			r = n;
			break;
		}
		if (n > 0) {
			uint64_t t = pw_now_ns();
			for (int i = 0; i < n; i++) {
				struct pw_pg_stamp st;
				if (in[i].len < 14 + sizeof(st)) {
					res->stray++;
					continue;
				}
				memcpy(&st, in[i].data + 14, sizeof(st));
				if (st.magic != PW_PG_MAGIC || st.run != run) {
					res->stray++;
					continue;
				}
				if (st.ts < from || st.ts >= until || st.ts > t)
					continue; /* warm-up's, or not a time of ours */
				res->received++;
				pw_hist_add(&res->rtt, t - st.ts);
			}
			rx->done(rx);
		}
	}
	pw_pg_cpu(&b1, &t1, &s1);
	res->lost = res->sent > res->received ? res->sent - res->received : 0;
	res->achieved = cfg->seconds > 0 ? (double)res->sent / cfg->seconds : 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	if (t1 > t0 && ncpu > 0) {
		double per_cpu = (double)(t1 - t0) / (double)ncpu; /* ticks of one CPU */
		res->self_cpu = (double)(s1 - s0) / per_cpu;
		res->others_cpu = ((double)(b1 - b0) - (double)(s1 - s0)) / per_cpu;
		if (res->others_cpu < 0)
			res->others_cpu = 0;
	}
	return r;
}
