/* SPDX-License-Identifier: MIT */
/*
 * podwire-webhook: the mutating admission webhook that gives an opted-in pod
 * podwire (the router socket's hostPath volume, the preload library,
 * LD_PRELOAD and PODWIRE_SOCKET). mutate.c is the pure part: an
 * AdmissionReview in, an AdmissionReview answer out.
 */
#ifndef PW_WEBHOOK_H
#define PW_WEBHOOK_H
#include <cjson/cJSON.h>

/* The annotation that marks an injected pod; its presence makes a second pass a no-op. */
#define PW_WEBHOOK_ANNOTATION "podwire.io/injected"
/* The name of the volume the webhook adds. */
#define PW_WEBHOOK_VOLUME "podwire"

struct pw_webhook_cfg {
	const char *host_dir;	/* the node's podwire directory (hostPath), /run/podwire */
	const char *mount_path; /* where containers see it, /run/podwire */
	const char *preload;	/* appended to LD_PRELOAD */
	const char *socket;	/* PODWIRE_SOCKET */
};

/*
 * Answer one AdmissionReview (admission.k8s.io/v1 or v1beta1): for a Pod
 * CREATE, allowed with a JSONPatch adding what is missing; anything else
 * (another kind or operation, a pod already injected) is allowed unchanged.
 * A container whose LD_PRELOAD is set gets podwire's library appended; one
 * whose LD_PRELOAD comes from valueFrom is left as it is (named in the
 * answer's warnings). Never refuses a pod: podwire must not stand in the
 * way of pod creation.
 * Returns the answer, or NULL when @review is not an AdmissionReview with a
 * request uid (*err says why) or when out of memory (*err "out of memory").
 */
cJSON *pw_webhook_review(const struct pw_webhook_cfg *cfg, const cJSON *review, const char **err);

#endif /* PW_WEBHOOK_H */
