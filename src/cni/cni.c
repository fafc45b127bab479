// SPDX-License-Identifier: MIT
/*
 * podwire-cni: a CNI plugin (spec 1.0.0; 0.3.x and 0.4.0 configurations are
 * answered in their own result format). See docs/CNI.md.
 *
 * Three modes, chosen by the configuration:
 * - standalone (an "ipam" section of type "podwire"): a Linux bridge on the
 *   host with the gateway address, a veth pair into the pod, addresses and
 *   routes, and allocations from its own file-backed IPAM;
 * - chained (no "ipam"): after bridge + host-local; the interface exists, its
 *   addresses come from prevResult, which is passed through;
 * - memif (a "memif" section): a packet interface for a DPDK pod, as SR-IOV
 *   CNI gives a VF: a port of the node's podwire-switch, its socket bound
 *   inside the pod's netns, a MAC address (memif.c).
 * The first two register the pod (its netns as an fd, its addresses) with
 * the node's podwired (ADD) and unregister it (DEL). The router is
 * optional: without it the pod works over the kernel, and the plugin only
 * warns.
 *
 * The runtime talks to us through the environment, stdin and stdout: stdout
 * carries the result or the error object and nothing else; logs go to stderr.
 */
#include "cni.h"

const char *const pw_cni_versions[4] = { "0.3.0", "0.3.1", "0.4.0", "1.0.0" };

/* Record the error to report (the first one wins); returns -1. */
__attribute__((format(printf, 4, 5))) int pw_cni_fail(struct pw_cni *c, int code, const char *msg,
						      const char *fmt, ...)
{
	va_list ap;

	if (c->code)
		return -1;
	c->code = code;
	snprintf(c->msg, sizeof(c->msg), "%s", msg);
	va_start(ap, fmt);
	vsnprintf(c->details, sizeof(c->details), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- commands ---- */

static int pw_cni_add_chained(struct pw_cni *c, cJSON **ret)
{
	struct pw_wire_pod pod;
	int idx;

	if (!c->prev)
		return pw_cni_fail(c, PW_CNI_E_CONFIG, "invalid network configuration",
				   "no \"ipam\" section, so podwire-cni runs chained and needs "
				   "prevResult: put it after the bridge plugin in a conflist");
	if (pw_cni_open_netns(c) < 0 || pw_cni_result_pod(c, c->prev, &pod, &idx) < 0)
		return -1;
	if (idx < 0)
		pw_warn("prevResult has no interface %s with a sandbox: registering the "
			"addresses without an interface index",
			c->ifname);
	pw_cni_register(c, &pod);
	*ret = cJSON_Duplicate(c->prev, true);
	pw_cni_result_format(c, *ret);
	return 0;
}

static int pw_cni_version_cmd(struct pw_cni *c, const char *input, cJSON **ret)
{
	cJSON *arr;

	/* Older runtimes send nothing: answer in our own version. */
	if (input[strspn(input, " \t\r\n")] != '\0' && pw_cni_conf(c, input) < 0 &&
	    c->code != PW_CNI_E_VERSION)
		return -1;
	c->code = 0; /* an unknown version is a question VERSION answers */
	*ret = cJSON_CreateObject();
	cJSON_AddStringToObject(*ret, "cniVersion", c->version ? c->version : PW_CNI_SPEC);
	arr = cJSON_AddArrayToObject(*ret, "supportedVersions");
	for (size_t i = 0; i < PW_ARRAY_SIZE(pw_cni_versions); i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(pw_cni_versions[i]));
	return 0;
}

static int pw_cni_run(struct pw_cni *c, cJSON **ret)
{
	char *input = NULL;
	int r;

	if (pw_cni_env(c) < 0 || pw_cni_read_stdin(c, &input) < 0)
		return -1;
	if (c->cmd == PW_CNI_VERSION) {
		r = pw_cni_version_cmd(c, input, ret);
		free(input);
		return r;
	}
	r = pw_cni_conf(c, input);
	free(input);
	if (r < 0)
		return -1;
	switch (c->cmd) {
	case PW_CNI_ADD:
		if (c->memif)
			return pw_cni_add_memif(c, ret);
		return c->standalone ? pw_cni_add_standalone(c, ret) : pw_cni_add_chained(c, ret);
	case PW_CNI_DEL:
		if (c->memif)
			return pw_cni_del_memif(c);
		if (c->standalone)
			return pw_cni_del_standalone(c);
		pw_cni_unregister(c);
		return 0;
	case PW_CNI_CHECK:
		return c->memif ? pw_cni_check_memif(c) : pw_cni_check(c);
	default:
		return -1;
	}
}

static int pw_cni_print(cJSON *o)
{
	char *s = cJSON_Print(o);
	int r = 0;

	if (!s || printf("%s\n", s) < 0 || fflush(stdout) != 0)
		r = -1;
	cJSON_free(s);
	return r;
}

static const char pw_cni_usage[] =
	"Usage: podwire-cni [--help | --version]\n"
	"\n"
	"A CNI plugin (container network interface, spec " PW_CNI_SPEC "; also 0.3.0,\n"
	"0.3.1 and 0.4.0). Container runtimes run it with CNI_COMMAND=ADD, DEL, CHECK\n"
	"or VERSION, CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME in the environment and\n"
	"the network configuration on stdin; it prints the result, or an error\n"
	"object with its code, on stdout, and logs on stderr.\n"
	"\n"
	"With an \"ipam\" section of type \"podwire\" it connects the container to a\n"
	"bridge itself (veth pair, addresses, routes, file-backed IPAM). Without one\n"
	"it runs chained after the bridge plugin and passes prevResult through.\n"
	"Either way it registers the pod with podwired (key \"podwireSocket\",\n"
	"default " PW_WIRE_DEFAULT_SOCKET ").\n"
	"With a \"memif\" section it gives a DPDK pod a packet interface instead: a\n"
	"port of podwire-switch whose memif socket only that pod can reach, and a\n"
	"MAC address; the DPDK arguments for it are written to a file the pod can\n"
	"mount (see docs/NFV.md).\n"
	"\n"
	"Exit status: 0 success, 1 failure (the error object says why).\n"
	"See docs/CNI.md for the configuration keys.\n";

int main(int argc, char **argv)
{
	struct pw_cni c = { .netns = -1 };
	cJSON *out = NULL;
	int rc = 0;

	if (argc > 1) {
		if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
			fputs(pw_cni_usage, stdout);
			return 0;
		}
		if (!strcmp(argv[1], "--version")) {
			printf("podwire-cni (podwire) CNI spec %s\n", PW_CNI_SPEC);
			return 0;
		}
		fprintf(stderr,
			"podwire-cni: unexpected argument '%s'\nTry 'podwire-cni --help'.\n",
			argv[1]);
		return 2;
	}
	pw_log_ident = "podwire-cni";
	if (pw_cni_run(&c, &out) < 0 && !c.code)
		pw_cni_fail(&c, PW_CNI_E_IO, "internal error", "unexpected failure");
	if (c.code) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "cniVersion", c.version ? c.version : PW_CNI_SPEC);
		cJSON_AddNumberToObject(e, "code", c.code);
		cJSON_AddStringToObject(e, "msg", c.msg);
		cJSON_AddStringToObject(e, "details", c.details);
		pw_cni_print(e);
		cJSON_Delete(e);
		pw_err("%s: %s", c.msg, c.details);
		rc = 1;
	} else if (out && pw_cni_print(out) < 0) {
		pw_err("cannot write the result: %s", strerror(errno));
		rc = 1;
	}
	cJSON_Delete(out);
	cJSON_Delete(c.conf);
	pw_close(c.netns);
	return rc;
}
