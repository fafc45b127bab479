// SPDX-License-Identifier: MIT
/*
 * Seeds for fuzz-memif: one well-formed message of each type, as podwire-
 * switch builds them and as a DPDK client lays them out, into the directory
 * given.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "memif.h"

static int seed(const char *dir, const char *name, const struct pw_memif_msg *m)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(m, sizeof(*m), 1, f) != 1 || fclose(f) != 0) {
		fprintf(stderr, "gen-seeds: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pw_memif_msg m;
	int r = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 1;
	}
	pw_memif_msg_hello(&m, "podwire-switch", 3, 7, 7, 14);
	r |= seed(argv[1], "hello", &m);
	pw_memif_msg_ack(&m);
	r |= seed(argv[1], "ack", &m);
	pw_memif_msg_connected(&m, "memif0");
	r |= seed(argv[1], "connected", &m);
	pw_memif_msg_disconnect(&m, 1, "bye");
	r |= seed(argv[1], "disconnect", &m);
	memset(&m, 0, sizeof(m));
	m.type = PW_MEMIF_INIT;
	m.init.version = PW_MEMIF_VERSION;
	memcpy(m.init.name, "DPDK 22.11", 10);
	r |= seed(argv[1], "init", &m);
	memset(&m, 0, sizeof(m));
	m.type = PW_MEMIF_ADD_REGION;
	m.add_region.size = 1 << 20;
	r |= seed(argv[1], "add-region", &m);
	memset(&m, 0, sizeof(m));
	m.type = PW_MEMIF_ADD_RING;
	m.add_ring.flags = PW_MEMIF_RING_S2M;
	m.add_ring.log2_ring_size = 10;
	r |= seed(argv[1], "add-ring", &m);
	memset(&m, 0, sizeof(m));
	m.type = PW_MEMIF_CONNECT;
	memcpy(m.connect.if_name, "memif0", 6);
	r |= seed(argv[1], "connect", &m);
	return r;
}
