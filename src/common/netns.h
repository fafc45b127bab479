/* SPDX-License-Identifier: MIT */
/*
 * Entering a pod's network namespace for a moment (to make a socket there)
 * and coming back: the thread switches with setns(2), and between two calls
 * it is always in its own. Daemons only (the router, the switch).
 */
#ifndef PW_NETNS_H
#define PW_NETNS_H

#include <stdbool.h>

/* Remember this thread's own netns, to come back to. Errors: of open(2). */
int pw_netns_init(void);
void pw_netns_teardown(void);
/* Enter @netns (an nsfs fd) for a moment; pw_netns_leave() returns.
 * Errors: of open(2) and setns(2). */
int pw_netns_enter(int netns);
/* Back to our own; aborts if it cannot (nothing after could be trusted). */
void pw_netns_leave(void);
/* Is @netns (an nsfs fd) our own? */
bool pw_netns_is_self(int netns);

#endif /* PW_NETNS_H */
