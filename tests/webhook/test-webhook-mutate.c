// SPDX-License-Identifier: MIT
/* podwire-webhook's answers (src/webhook/mutate.c): the JSONPatch for each kind of pod. */
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "pw_test.h"
#include "webhook.h"

static const struct pw_webhook_cfg cfg = {
	.host_dir = "/run/podwire",
	.mount_path = "/run/podwire",
	.preload = "/run/podwire/preload/$LIB/libpodwire.so",
	.socket = "/run/podwire/podwired.sock",
};

/* A review of @pod (JSON text) with operation @op; the answer's response, whole answer in *all. */
static cJSON *review(const char *api, const char *op, const char *kind, const char *pod,
		     cJSON **all)
{
	char buf[8192];
	const char *err = NULL;
	cJSON *in, *out;

	snprintf(
		buf, sizeof(buf),
		"{\"apiVersion\":\"%s\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u-1\","
		"\"kind\":{\"group\":\"\",\"version\":\"v1\",\"kind\":\"%s\"},\"operation\":\"%s\","
		"\"namespace\":\"apps\",\"object\":%s}}",
		api, kind, op, pod);
	in = cJSON_Parse(buf);
	PW_CHECK(in, "test input: %s", buf);
	out = pw_webhook_review(&cfg, in, &err);
	cJSON_Delete(in);
	PW_CHECK(out, "no answer: %s", err ? err : "?");
	PW_CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(out, "apiVersion")), api) &&
			 !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(out, "kind")),
				 "AdmissionReview"),
		 "envelope");
	*all = out;
	cJSON *resp = cJSON_GetObjectItem(out, "response");
	PW_CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(resp, "uid")), "u-1"), "uid");
	PW_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(resp, "allowed")), "allowed");
	return resp;
}

/* The decoded patch of @resp as compact JSON text (malloc'ed), or NULL without one. */
static char *patch_text(const cJSON *resp)
{
	const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(resp, "patch"));
	unsigned char *raw;
	cJSON *ops;
	char *s;
	int n;

	if (!b64)
		return NULL;
	PW_CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(resp, "patchType")), "JSONPatch"),
		 "patchType");
	raw = calloc(1, strlen(b64) + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)strlen(b64));
	PW_CHECK(n > 0, "base64 %s", b64);
	ops = cJSON_Parse((char *)raw);
	PW_CHECK(cJSON_IsArray(ops), "patch is not a JSON array: %s", raw);
	s = cJSON_PrintUnformatted(ops);
	cJSON_Delete(ops);
	free(raw);
	return s;
}

static void expect(const char *pod, const char *want)
{
	cJSON *all, *resp = review("admission.k8s.io/v1", "CREATE", "Pod", pod, &all);
	char *got = patch_text(resp);

	if (!want)
		PW_CHECK(!got, "want no patch for %s, got %s", pod, got);
	else
		PW_CHECK(got && !strcmp(got, want), "pod %s\n  got  %s\n  want %s", pod,
			 got ? got : "(none)", want);
	free(got);
	cJSON_Delete(all);
}

#define VOL  "{\"name\":\"podwire\",\"hostPath\":{\"path\":\"/run/podwire\",\"type\":\"Directory\"}}"
#define VM   "{\"name\":\"podwire\",\"mountPath\":\"/run/podwire\",\"readOnly\":true}"
#define LDP  "{\"name\":\"LD_PRELOAD\",\"value\":\"/run/podwire/preload/$LIB/libpodwire.so\"}"
#define SOCK "{\"name\":\"PODWIRE_SOCKET\",\"value\":\"/run/podwire/podwired.sock\"}"
#define ANN                                                                                        \
	"{\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"podwire.io/"              \
	"injected\":\"true\"}}"

int main(void)
{
	cJSON *all, *resp;
	const char *err;

	/* A bare pod: everything added, arrays created. */
	expect("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
	       "[" ANN ",{\"op\":\"add\",\"path\":\"/spec/volumes\",\"value\":[" VOL "]},"
	       "{\"op\":\"add\",\"path\":\"/spec/containers/0/volumeMounts\",\"value\":[" VM "]},"
	       "{\"op\":\"add\",\"path\":\"/spec/containers/0/env\",\"value\":[" LDP "]},"
	       "{\"op\":\"add\",\"path\":\"/spec/containers/0/env/-\",\"value\":" SOCK "}]");

	/* Arrays that exist get appended to; an LD_PRELOAD of its own gets ours after it;
	 * annotations that exist get one more. */
	expect("{\"metadata\":{\"name\":\"b\",\"annotations\":{\"x\":\"y\"}},\"spec\":{"
	       "\"volumes\":[{\"name\":\"data\",\"emptyDir\":{}}],\"containers\":["
	       "{\"name\":\"c\",\"volumeMounts\":[{\"name\":\"data\",\"mountPath\":\"/data\"}],"
	       "\"env\":[{\"name\":\"A\",\"value\":\"1\"},{\"name\":\"LD_PRELOAD\",\"value\":"
	       "\"/opt/jemalloc.so\"}]}]}}",
	       "[{\"op\":\"add\",\"path\":\"/metadata/annotations/podwire.io~1injected\",\"value\":"
	       "\"true\"},{\"op\":\"add\",\"path\":\"/spec/volumes/-\",\"value\":" VOL "},"
	       "{\"op\":\"add\",\"path\":\"/spec/containers/0/volumeMounts/-\",\"value\":" VM "},"
	       "{\"op\":\"replace\",\"path\":\"/spec/containers/0/env/1/value\",\"value\":"
	       "\"/opt/jemalloc.so:/run/podwire/preload/$LIB/libpodwire.so\"},"
	       "{\"op\":\"add\",\"path\":\"/spec/containers/0/env/-\",\"value\":" SOCK "}]");

	/* Every container; what a container already has stays (our library already in
	 * LD_PRELOAD, PODWIRE_SOCKET set, the directory mounted). */
	expect("{\"metadata\":{\"name\":\"c\"},\"spec\":{\"volumes\":[" VOL "],\"containers\":["
	       "{\"name\":\"a\",\"volumeMounts\":[" VM "],\"env\":[" LDP "," SOCK "]},"
	       "{\"name\":\"b\"}]}}",
	       "[" ANN
	       ",{\"op\":\"add\",\"path\":\"/spec/containers/1/volumeMounts\",\"value\":[" VM
	       "]},{\"op\":\"add\",\"path\":\"/spec/containers/1/env\",\"value\":[" LDP "]},"
	       "{\"op\":\"add\",\"path\":\"/spec/containers/1/env/-\",\"value\":" SOCK "}]");

	/* Already injected (a reinvocation, or the pod came with the annotation): nothing. */
	expect("{\"metadata\":{\"name\":\"d\",\"annotations\":{\"podwire.io/injected\":\"true\"}},"
	       "\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
	       NULL);

	/* LD_PRELOAD from a ConfigMap: left alone, with a warning; the rest is added. */
	resp = review("admission.k8s.io/v1", "CREATE", "Pod",
		      "{\"metadata\":{\"name\":\"e\"},\"spec\":{\"containers\":[{\"name\":\"app\","
		      "\"env\":[{\"name\":\"LD_PRELOAD\",\"valueFrom\":{\"configMapKeyRef\":{"
		      "\"name\":\"m\",\"key\":\"k\"}}}]}]}}",
		      &all);
	char *got = patch_text(resp);
	PW_CHECK(got && !strstr(got, "LD_PRELOAD") && strstr(got, "PODWIRE_SOCKET"), "%s", got);
	free(got);
	char *warn = cJSON_PrintUnformatted(cJSON_GetObjectItem(resp, "warnings"));
	PW_CHECK(warn && strstr(warn, "container app sets LD_PRELOAD from valueFrom"), "warning %s",
		 warn ? warn : "(none)");
	free(warn);
	cJSON_Delete(all);

	/* Not a pod creation: allowed as it is. v1beta1 is answered in v1beta1. */
	resp = review(
		"admission.k8s.io/v1beta1", "UPDATE", "Pod",
		"{\"metadata\":{\"name\":\"f\"},\"spec\":{\"containers\":[{\"name\":\"c\"}]}}",
		&all);
	PW_CHECK(!patch_text(resp), "UPDATE patched");
	cJSON_Delete(all);
	resp = review("admission.k8s.io/v1", "CREATE", "Service", "{\"spec\":{}}", &all);
	PW_CHECK(!patch_text(resp), "Service patched");
	cJSON_Delete(all);

	/* Hostile shapes: allowed, nothing patched where there is nothing to patch, no crash. */
	expect("{\"metadata\":{\"name\":\"g\"},\"spec\":{\"containers\":7}}", NULL);
	expect("{\"metadata\":\"x\",\"spec\":{\"containers\":[{\"name\":\"c\"}]}}", NULL);
	expect("{\"metadata\":{},\"spec\":{\"containers\":[5,{\"name\":\"c\"}]}}", NULL);
	expect("{\"metadata\":{},\"spec\":{\"containers\":[{\"env\":3}]}}", NULL);
	expect("{\"metadata\":{},\"spec\":{\"containers\":[{\"env\":[7]}]}}", NULL);
	expect("{\"metadata\":{},\"spec\":{\"containers\":[{\"volumeMounts\":{}}]}}", NULL);
	expect("{\"metadata\":{},\"spec\":{\"volumes\":{},\"containers\":[{}]}}", NULL);
	expect("{\"metadata\":{\"annotations\":[]},\"spec\":{\"containers\":[{}]}}", NULL);

	/* Not an AdmissionReview: no answer, a reason. */
	const char *bad[] = {
		"{}",
		"{\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{}}",
		"{\"apiVersion\":\"v1\",\"request\":{\"uid\":\"x\"}}",
		"[1]",
	};
	for (unsigned i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		cJSON *in = cJSON_Parse(bad[i]);

		err = NULL;
		PW_CHECK(!pw_webhook_review(&cfg, in, &err) && err, "%s accepted", bad[i]);
		cJSON_Delete(in);
	}
	printf("webhook mutate: ok\n");
	return 0;
}
