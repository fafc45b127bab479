// SPDX-License-Identifier: MIT
/*
 * `lab up --kube`: a real Kubernetes control plane for the lab. etcd and
 * kube-apiserver (tools/kube-build.sh's cache, etcd from etcd-server) run in
 * the underlay namespace, the API server on PW_LAB_API_IP on br0, which every
 * node reaches on its eth0. Each lab node gets a Node object (Ready, its
 * InternalIP, its pod CIDR), and the routers find each other from them
 * (podwired --kube-peers). `lab down` ends these processes with the
 * namespace's others.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/json.h"
#include "kube.h"
#include "lab.h"

#define PW_LAB_KUBE_CACHE "/var/cache/podwire/kube"
#define PW_LAB_ETCD_PORT  2379 /* on the underlay namespace's loopback */

void pw_lab_kube_path(const struct pw_lab *lab, const char *file, char *ret_path, size_t len)
{
	snprintf(ret_path, len, "%s/kube%s%s", lab->dir, file ? "/" : "", file ? file : "");
}

/* Write formatted text to the kube directory's @file, mode @mode. 0, or -1 (reported). */
__attribute__((format(printf, 4, 5))) static int pw_lab_kube_file_write(const struct pw_lab *lab,
									const char *file,
									mode_t mode,
									const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	int fd, ok;
	FILE *f;

	pw_lab_kube_path(lab, file, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	f = fd < 0 ? NULL : fdopen(fd, "w");
	if (!f) {
		pw_lab_err("cannot write %s: %s", path, strerror(errno));
		pw_lab_fd_close(fd);
		return -1;
	}
	va_start(ap, fmt);
	ok = vfprintf(f, fmt, ap) >= 0;
	va_end(ap);
	if (fclose(f) != 0 || !ok) {
		pw_lab_err("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The control plane's binaries: $PODWIRE_KUBE_DIR, else the newest complete
 * build under $PODWIRE_KUBE_CACHE or PW_LAB_KUBE_CACHE. 0, or -1 (reported).
 */
static int pw_lab_kube_bindir(char *ret, size_t len)
{
	const char *env = getenv("PODWIRE_KUBE_DIR"), *cache = getenv("PODWIRE_KUBE_CACHE");
	char best[PATH_MAX] = "", path[PATH_MAX + 32];
	struct dirent *e;
	DIR *d;

	if (env && *env) {
		snprintf(path, sizeof(path), "%s/kube-apiserver", env);
		if (access(path, X_OK) < 0) {
			pw_lab_err("$PODWIRE_KUBE_DIR: %s: %s", path, strerror(errno));
			return -1;
		}
		snprintf(ret, len, "%s", env);
		return 0;
	}
	if (!cache || !*cache)
		cache = PW_LAB_KUBE_CACHE;
	d = opendir(cache);
	while (d && (e = readdir(d))) {
		char dir[PATH_MAX];

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "%s/%.200s", cache, e->d_name);
		snprintf(path, sizeof(path), "%s/.complete", dir);
		if (access(path, F_OK) < 0)
			continue;
		snprintf(path, sizeof(path), "%s/kube-apiserver", dir);
		if (access(path, X_OK) == 0 && strverscmp(dir, best) > 0)
			snprintf(best, sizeof(best), "%s", dir);
	}
	if (d)
		closedir(d);
	if (!*best) {
		pw_lab_err("--kube: no Kubernetes control plane in %s; build it once with "
			   "tools/kube-build.sh (as root), or set $PODWIRE_KUBE_DIR",
			   cache);
		return -1;
	}
	snprintf(ret, len, "%s", best);
	return 0;
}

/* The files of the kube directory that the certificates and the API server share. */
struct pw_lab_kube_files {
	char ca_key[PATH_MAX], ca[PATH_MAX], key[PATH_MAX], csr[PATH_MAX], crt[PATH_MAX],
		ext[PATH_MAX], serial[PATH_MAX], sa_key[PATH_MAX], sa_pub[PATH_MAX],
		tokens[PATH_MAX];
};

static void pw_lab_kube_files_format(const struct pw_lab *lab, struct pw_lab_kube_files *f)
{
	static const struct {
		const char *name;
		size_t off;
	} files[] = {
		{ "ca.key", offsetof(struct pw_lab_kube_files, ca_key) },
		{ "ca.crt", offsetof(struct pw_lab_kube_files, ca) },
		{ "apiserver.key", offsetof(struct pw_lab_kube_files, key) },
		{ "apiserver.csr", offsetof(struct pw_lab_kube_files, csr) },
		{ "apiserver.crt", offsetof(struct pw_lab_kube_files, crt) },
		{ "san.cnf", offsetof(struct pw_lab_kube_files, ext) },
		{ "ca.srl", offsetof(struct pw_lab_kube_files, serial) },
		{ "sa.key", offsetof(struct pw_lab_kube_files, sa_key) },
		{ "sa.pub", offsetof(struct pw_lab_kube_files, sa_pub) },
		{ "tokens.csv", offsetof(struct pw_lab_kube_files, tokens) },
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		pw_lab_kube_path(lab, files[i].name, (char *)f + files[i].off, PATH_MAX);
}

/* Certificates with the openssl command: a CA, the API server's, the service-account key. */
static int pw_lab_kube_certs(const struct pw_lab *lab)
{
	static struct pw_lab_kube_files f; /* large */

	pw_lab_kube_files_format(lab, &f);
	if (pw_lab_kube_file_write(lab, "san.cnf", 0644,
				   "subjectAltName=IP:%s,IP:127.0.0.1,IP:%s,DNS:kubernetes,"
				   "DNS:kubernetes.default.svc\n",
				   PW_LAB_API_IP, PW_LAB_SERVICE_FIRST) < 0)
		return -1;
	char *const cmds[][20] = {
		{ "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f.ca_key,
		  "-out", f.ca, "-days", "30", "-subj", "/CN=podwire-lab-ca", NULL },
		{ "openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f.key, "-out",
		  f.csr, "-subj", "/CN=kube-apiserver", NULL },
		{ "openssl", "x509", "-req", "-in", f.csr, "-CA", f.ca, "-CAkey", f.ca_key,
		  "-CAcreateserial", "-CAserial", f.serial, "-out", f.crt, "-days", "30",
		  "-extfile", f.ext, NULL },
		{ "openssl", "genrsa", "-out", f.sa_key, "2048", NULL },
		{ "openssl", "rsa", "-in", f.sa_key, "-pubout", "-out", f.sa_pub, NULL },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (pw_lab_argv_run(cmds[i], false) < 0)
			return -1;
	return 0;
}

/* A random token, hex. */
static int pw_lab_kube_token(char ret[65])
{
	unsigned char b[32];
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, b, sizeof(b));

	pw_lab_fd_close(fd);
	if (n != (ssize_t)sizeof(b))
		return -1;
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(ret + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* A kubeconfig for @user with @token (JSON, which kubectl and pwkube read). */
static int pw_lab_kube_config_write(const struct pw_lab *lab, const char *file, const char *user,
				    const char *token)
{
	char ca[PATH_MAX];

	pw_lab_kube_path(lab, "ca.crt", ca, sizeof(ca));
	return pw_lab_kube_file_write(
		lab, file, 0600,
		"{\"apiVersion\": \"v1\", \"kind\": \"Config\", \"current-context\": \"lab\",\n"
		" \"clusters\": [{\"name\": \"lab\", \"cluster\": {\"server\": \"https://%s:%d\", "
		"\"certificate-authority\": \"%s\"}}],\n"
		" \"users\": [{\"name\": \"%s\", \"user\": {\"token\": \"%s\"}}],\n"
		" \"contexts\": [{\"name\": \"lab\", \"context\": {\"cluster\": \"lab\", "
		"\"user\": \"%s\"}}]}\n",
		PW_LAB_API_IP, PW_LAB_API_PORT, ca, user, token, user);
}

/* Tokens and kubeconfigs: the lab's admin, and the routers (podwire:router). */
static int pw_lab_kube_users(const struct pw_lab *lab)
{
	char admin[65], router[65], proxy[65];

	if (pw_lab_kube_token(admin) < 0 || pw_lab_kube_token(router) < 0 ||
	    pw_lab_kube_token(proxy) < 0) {
		pw_lab_err("cannot read /dev/urandom");
		return -1;
	}
	/* kube-proxy's own user, which the server's bootstrap RBAC binds to
	 * system:node-proxier. */
	if (pw_lab_kube_file_write(lab, "tokens.csv", 0600,
				   "%s,admin,admin,\"system:masters\"\n%s,podwire:router,"
				   "podwire-router,\"podwire:routers\"\n%s,system:kube-proxy,"
				   "kube-proxy\n",
				   admin, router, proxy) < 0)
		return -1;
	if (pw_lab_kube_config_write(lab, PW_LAB_KUBECONFIG, "admin", admin) < 0 ||
	    pw_lab_kube_config_write(lab, PW_LAB_KUBECONFIG_ROUTER, "podwire:router", router) < 0 ||
	    pw_lab_kube_config_write(lab, PW_LAB_KUBECONFIG_PROXY, "system:kube-proxy", proxy) < 0)
		return -1;
	return 0;
}

/* etcd and kube-apiserver in the underlay namespace. */
static int pw_lab_kube_start(const struct pw_lab *lab, const char *bindir)
{
	char ns[PW_LAB_NS_LEN], data[PATH_MAX], log[PATH_MAX], apiserver[PATH_MAX + 16],
		etcd_url[64], peer_url[64], cluster[80], port[16];
	static struct pw_lab_kube_files f; /* large */

	pw_lab_ns_format(lab->name, 0, 0, ns);
	if (pw_lab_cmdline_run("ip -n %s addr add %s/%d dev %s", ns, PW_LAB_API_IP,
			       PW_LAB_SUBNET_LEN, PW_LAB_UNDERLAY_BRIDGE) < 0)
		return -1;
	pw_lab_kube_path(lab, "etcd", data, sizeof(data));
	pw_lab_kube_path(lab, "etcd.log", log, sizeof(log));
	snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%d", PW_LAB_ETCD_PORT);
	snprintf(peer_url, sizeof(peer_url), "http://127.0.0.1:%d", PW_LAB_ETCD_PORT + 1);
	snprintf(cluster, sizeof(cluster), "lab=%s", peer_url);
	char *const etcd[] = { "etcd",	 "--name",
			       "lab",	 "--data-dir",
			       data,	 "--listen-client-urls",
			       etcd_url, "--advertise-client-urls",
			       etcd_url, "--listen-peer-urls",
			       peer_url, "--initial-advertise-peer-urls",
			       peer_url, "--initial-cluster",
			       cluster,	 NULL };
	if (pw_lab_ns_spawn(ns, etcd, log) < 0)
		return -1;
	snprintf(apiserver, sizeof(apiserver), "%s/kube-apiserver", bindir);
	snprintf(port, sizeof(port), "%d", PW_LAB_API_PORT);
	pw_lab_kube_path(lab, "apiserver.log", log, sizeof(log));
	pw_lab_kube_files_format(lab, &f);
	char api_ip[] = PW_LAB_API_IP;
	char *const api[] = { apiserver,
			      "--etcd-servers",
			      etcd_url,
			      "--bind-address",
			      "0.0.0.0",
			      "--advertise-address",
			      api_ip,
			      "--secure-port",
			      port,
			      "--tls-cert-file",
			      f.crt,
			      "--tls-private-key-file",
			      f.key,
			      "--token-auth-file",
			      f.tokens,
			      "--authorization-mode",
			      "RBAC",
			      "--service-account-issuer",
			      "https://kubernetes.default.svc",
			      "--service-account-key-file",
			      f.sa_pub,
			      "--service-account-signing-key-file",
			      f.sa_key,
			      "--service-cluster-ip-range",
			      PW_LAB_SERVICE_CIDR,
			      "--disable-admission-plugins",
			      "ServiceAccount",
			      "--allow-privileged=true",
			      "--profiling=false",
			      NULL };
	return pw_lab_ns_spawn(ns, api, log) < 0 ? -1 : 0;
}

/* One request as the lab's admin; 0 for a 2xx answer, else -1 (reported unless @quiet). */
static int pw_lab_kube_call(struct pw_kube *k, const char *method, const char *path,
			    const char *ctype, const char *body, bool quiet)
{
	long st = 0;
	int r = pw_kube_request(k, method, path, ctype, body, &st, NULL);

	if (r == 0 && st / 100 == 2)
		return 0;
	if (!quiet)
		pw_lab_err("API server: %s %s: %s", method, path,
			   r ? pw_kube_last_error(k) : "refused");
	return -1;
}

/*
 * In a child inside the underlay namespace (the API server's address exists
 * only there and in the nodes): wait until the server is ready, then make
 * the Node objects and the routers' binding. The child's exit status: 0 or 1.
 */
static int pw_lab_kube_populate_child(const struct pw_lab *lab)
{
	char kc[PATH_MAX], body[1024], path[128];
	struct pw_kube *k = NULL;
	time_t end = time(NULL) + 90;

	pw_lab_kube_path(lab, PW_LAB_KUBECONFIG, kc, sizeof(kc));
	if (pw_kube_open_kubeconfig(kc, NULL, &k) < 0) {
		pw_lab_err("%s: %s", kc, pw_kube_last_error(NULL));
		return 1;
	}
	pw_kube_set_timeouts(k, 2000, 10000);
	while (pw_lab_kube_call(k, "GET", "/readyz", NULL, NULL, true) < 0) {
		if (time(NULL) > end || pw_lab_stop_pending()) {
			pw_lab_err("kube-apiserver not ready in 90 s; see %s/kube/apiserver.log",
				   lab->dir);
			pw_kube_close(k);
			return 1;
		}
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
	}
	/* The routers watch nodes (and, for Services, services and endpoints):
	 * kube-proxy's role, system:node-proxier, is exactly that. */
	snprintf(
		body, sizeof(body),
		"{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"ClusterRoleBinding\","
		"\"metadata\":{\"name\":\"podwire-routers\"},\"roleRef\":{\"apiGroup\":"
		"\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\",\"name\":"
		"\"system:node-proxier\"},\"subjects\":[{\"apiGroup\":"
		"\"rbac.authorization.k8s.io\",\"kind\":\"Group\",\"name\":\"podwire:routers\"}]}");
	if (pw_lab_kube_call(k, "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
			     "application/json", body, false) < 0)
		goto fail;
	for (unsigned n = 1; n <= lab->nodes; n++) {
		struct pw_lab_node_addr a;

		pw_lab_node_addr_format(n, &a);
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"%s\","
			 "\"labels\":{\"kubernetes.io/hostname\":\"%s\"}},\"spec\":{\"podCIDR\":"
			 "\"%s\",\"podCIDRs\":[\"%s\"]},\"status\":{\"addresses\":[{\"type\":"
			 "\"InternalIP\",\"address\":\"%s\"},{\"type\":\"Hostname\",\"address\":"
			 "\"%s\"}],\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\","
			 "\"reason\":\"PodwireLab\"}]}}",
			 a.name, a.name, a.subnet, a.subnet, a.underlay, a.name);
		if (pw_lab_kube_call(k, "POST", "/api/v1/nodes", "application/json", body, false) <
		    0)
			goto fail;
		/* No node lifecycle controller takes off the taint every new node
		 * gets (TaintNodesByCondition): the lab does, as the node is Ready. */
		snprintf(path, sizeof(path), "/api/v1/nodes/%s", a.name);
		if (pw_lab_kube_call(k, "PATCH", path, "application/merge-patch+json",
				     "{\"spec\":{\"taints\":null}}", false) < 0)
			goto fail;
	}
	pw_kube_close(k);
	return 0;
fail:
	pw_kube_close(k);
	return 1;
}

static int pw_lab_kube_populate(const struct pw_lab *lab)
{
	char ns[PW_LAB_NS_LEN];
	int nsfd, st;
	pid_t pid;

	pw_lab_ns_format(lab->name, 0, 0, ns);
	nsfd = pw_lab_ns_open(ns);
	if (nsfd < 0) {
		pw_lab_err("cannot open namespace %s: %s", ns, strerror(-nsfd));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		pw_lab_err("fork: %s", strerror(errno));
		close(nsfd);
		return -1;
	}
	if (pid == 0) {
		if (setns(nsfd, CLONE_NEWNET) < 0) {
			pw_lab_err("setns %s: %s", ns, strerror(errno));
			_exit(1);
		}
		_exit(pw_lab_kube_populate_child(lab));
	}
	close(nsfd);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/*
 * kube-proxy in iptables mode in each node, the kernel's way to Services. Its
 * NAT needs bridged traffic to pass iptables (pods of a node share cni0).
 */
static int pw_lab_kube_proxies_start(const struct pw_lab *lab, const char *bindir)
{
	char proxy[PATH_MAX + 16], kc[PATH_MAX], log[PATH_MAX], ns[PW_LAB_NS_LEN],
		cidr[] = PW_LAB_POD_PREFIX;

	snprintf(proxy, sizeof(proxy), "%s/kube-proxy", bindir);
	pw_lab_kube_path(lab, PW_LAB_KUBECONFIG_PROXY, kc, sizeof(kc));
	for (unsigned n = 1; n <= lab->nodes; n++) {
		struct pw_lab_node_addr a;
		char file[32];

		pw_lab_node_addr_format(n, &a);
		pw_lab_ns_format(lab->name, n, 0, ns);
		if (pw_lab_ns_write(ns, "/proc/sys/net/bridge/bridge-nf-call-iptables", "1") < 0) {
			pw_lab_err("%s: cannot set bridge-nf-call-iptables", ns);
			return -1;
		}
		/* A node of a real cluster routes every address (a default route): a
		 * ClusterIP without endpoints then reaches kube-proxy's REJECT in
		 * FORWARD rather than failing the route lookup before it. */
		if (pw_lab_cmdline_run("ip -n %s route add %s via %s", ns, PW_LAB_SERVICE_CIDR,
				       PW_LAB_API_IP) < 0)
			return -1;
		snprintf(file, sizeof(file), "kube-proxy-%s.log", a.name);
		pw_lab_kube_path(lab, file, log, sizeof(log));
		char *const argv[] = { proxy,
				       "--kubeconfig",
				       kc,
				       "--hostname-override",
				       a.name,
				       "--proxy-mode",
				       "iptables",
				       "--cluster-cidr",
				       cidr,
				       "--conntrack-max-per-core=0",
				       "--metrics-bind-address",
				       "127.0.0.1:10249",
				       "--healthz-bind-address",
				       "127.0.0.1:10256",
				       "--profiling=false",
				       NULL };
		if (pw_lab_ns_spawn(ns, argv, log) < 0)
			return -1;
	}
	return 0;
}

int pw_lab_kube_up(struct pw_lab *lab)
{
	char bindir[PATH_MAX], dir[PATH_MAX];

	if (pw_lab_kube_bindir(bindir, sizeof(bindir)) < 0)
		return -1;
	pw_lab_kube_path(lab, NULL, dir, sizeof(dir));
	if (mkdir(dir, 0700) < 0) {
		pw_lab_err("mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (pw_lab_kube_certs(lab) < 0 || pw_lab_kube_users(lab) < 0 ||
	    pw_lab_kube_start(lab, bindir) < 0 || pw_lab_kube_populate(lab) < 0 ||
	    pw_lab_kube_proxies_start(lab, bindir) < 0)
		return -1;
	return 0;
}
