/* SPDX-License-Identifier: MIT */
/* podwire-cni's private header: the plugin's state and what its files share
 * (cni.c: commands and main; conf.c: input and configuration; result.c:
 * results and the router; standalone.c: links and IPAM; check.c: CHECK). */
#ifndef PW_CNI_H
#define PW_CNI_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <podwire/wire.h>

#include "../common/addr.h"
#include "../common/json.h"
#include "../common/log.h"
#include "../common/util.h"
#include "ipam.h"
#include "nl.h"
#include "reg.h"

#define PW_CNI_SPEC	       "1.0.0"
#define PW_CNI_DEFAULT_BRIDGE  "podwire0"
#define PW_CNI_DEFAULT_DATADIR "/var/lib/podwire/cni/networks"
#define PW_CNI_MAX_INPUT       (1u << 20)
#define PW_CNI_MAX_ROUTES      16u
#define PW_CNI_LOCK_MS	       10000

/* The spec's well-known error codes, and ours (100 and up). */
enum pw_cni_code {
	PW_CNI_E_VERSION = 1, /* incompatible CNI version */
	PW_CNI_E_FIELD = 2,   /* unsupported field in the configuration */
	PW_CNI_E_UNKNOWN = 3, /* container unknown or does not exist */
	PW_CNI_E_ENV = 4,     /* invalid necessary environment variables */
	PW_CNI_E_IO = 5,      /* I/O failure */
	PW_CNI_E_DECODE = 6,  /* failed to decode content */
	PW_CNI_E_CONFIG = 7,  /* invalid network configuration */
	PW_CNI_E_AGAIN = 11,  /* try again later */
	PW_CNI_E_IPAM = 100,  /* no address could be allocated */
	PW_CNI_E_LINK = 101,  /* setting up the interfaces failed */
	PW_CNI_E_CHECK = 102, /* CHECK found the networking not as ADD left it */
	PW_CNI_E_ROUTER = 103 /* CHECK: podwired does not know the pod */
};

enum pw_cni_cmd { PW_CNI_ADD, PW_CNI_DEL, PW_CNI_CHECK, PW_CNI_VERSION };

struct pw_cni_route {
	uint32_t dst, gw; /* network order; gw 0: the IPAM gateway */
	uint8_t len;
};

struct pw_cni {
	/* environment */
	enum pw_cni_cmd cmd;
	const char *id, *netns_path, *ifname;
	/* configuration */
	cJSON *conf;
	const char *version, *name, *sock;
	bool standalone;
	char bridge[IF_NAMESIZE];
	unsigned mtu;
	struct pw_ipam ipam;
	struct pw_cni_route routes[PW_CNI_MAX_ROUTES];
	unsigned nroutes;
	const cJSON *prev, *dns;
	int netns;
	/* memif mode (a "memif" section): a packet interface from podwire-switch */
	bool memif;
	const char *sw_dir, *memif_socket, *memif_dir;
	uint32_t memif_id;
	char pod_ns[64], pod_name[256]; /* K8S_POD_NAMESPACE, K8S_POD_NAME of CNI_ARGS */
	/* the error to report, if any */
	int code;
	char msg[128], details[1024];
};

/* The CNI versions the plugin speaks. */
extern const char *const pw_cni_versions[4];

__attribute__((format(printf, 4, 5))) int pw_cni_fail(struct pw_cni *c, int code, const char *msg,
						      const char *fmt, ...);
bool pw_cni_pre_1_0(const char *v);
int pw_cni_read_stdin(struct pw_cni *c, char **ret);
int pw_cni_env(struct pw_cni *c);
int pw_cni_conf(struct pw_cni *c, const char *input);
int pw_cni_open_netns(struct pw_cni *c);
void pw_cni_host_ifname(const struct pw_cni *c, char name[IF_NAMESIZE]);
void pw_cni_fmt_mac(const struct pw_nl_link *l, char buf[18]);
const char *pw_cni_ntop(uint32_t be, char buf[INET_ADDRSTRLEN]);
void pw_cni_result_format(const struct pw_cni *c, cJSON *res);
cJSON *pw_cni_result(const struct pw_cni *c, const struct pw_nl_link *br,
		     const struct pw_nl_link *host, const struct pw_nl_link *cont, uint32_t ip);
int pw_cni_result_pod(struct pw_cni *c, const cJSON *res, struct pw_wire_pod *pod, int *ret_iface);
void pw_cni_register(const struct pw_cni *c, const struct pw_wire_pod *pod);
void pw_cni_unregister(const struct pw_cni *c);
int pw_cni_add_standalone(struct pw_cni *c, cJSON **ret);
int pw_cni_del_standalone(struct pw_cni *c);
int pw_cni_check(struct pw_cni *c);
uint64_t pw_cni_hash(const struct pw_cni *c);
bool pw_cni_id_ok(const char *s);
int pw_cni_conf_memif(struct pw_cni *c, const cJSON *m);
int pw_cni_add_memif(struct pw_cni *c, cJSON **ret);
int pw_cni_del_memif(struct pw_cni *c);
int pw_cni_check_memif(struct pw_cni *c);

#endif /* PW_CNI_H */
