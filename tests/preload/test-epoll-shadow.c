// SPDX-License-Identifier: MIT
/*
 * The epoll shadow: what epoll_ctl registered, per epoll fd (add, modify,
 * delete, growth), moving registrations when an fd's file changes under it
 * (and forgetting stale ones the kernel no longer has), forgetting a closed
 * fd everywhere, and dropping a closed epoll fd's shadow. The kernel's epoll
 * is the real one.
 */
#include "preload.h"
#include "pw_test.h"

struct pw_real_fns pw_real;
struct pw_cfg pw_cfg;

static struct pw_ep_reg *reg_of(int epfd, int fd)
{
	struct pw_ep *e = pw_ep_get(epfd, false);

	if (!e)
		return NULL;
	for (unsigned i = 0; i < e->n; i++)
		if (e->regs[i].fd == fd)
			return &e->regs[i];
	return NULL;
}

/* epoll_ctl as the interposed call does it: the kernel, then the shadow. */
static int ctl(int epfd, int op, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	int r = epoll_ctl(epfd, op, fd, &ev);

	if (r == 0)
		pw_ep_record(epfd, op, fd, op == EPOLL_CTL_DEL ? NULL : &ev);
	return r;
}

static void test_record(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), sv[2];

	PW_CHECK(ep >= 0, "epoll_create1");
	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	PW_CHECK(pw_ep_get(ep, false) == NULL, "no shadow before an ADD");
	pw_ep_record(ep, EPOLL_CTL_MOD, sv[0], &(struct epoll_event){ .events = EPOLLIN });
	PW_CHECK(pw_ep_get(ep, false) == NULL, "MOD does not make a shadow");

	PW_CHECK_EQ(ctl(ep, EPOLL_CTL_ADD, sv[0], EPOLLIN | EPOLLET, 42), 0);
	struct pw_ep_reg *r = reg_of(ep, sv[0]);
	PW_CHECK(r && r->events == (EPOLLIN | EPOLLET) && r->data.u64 == 42, "added");
	r->disabled = true; /* as if EPOLLONESHOT had fired */
	r->mark = 7;
	PW_CHECK_EQ(ctl(ep, EPOLL_CTL_MOD, sv[0], EPOLLOUT, 43), 0);
	r = reg_of(ep, sv[0]);
	PW_CHECK(r && r->events == EPOLLOUT && r->data.u64 == 43 && !r->disabled && !r->mark,
		 "modified and re-armed");
	PW_CHECK_EQ(ctl(ep, EPOLL_CTL_DEL, sv[0], 0, 0), 0);
	PW_CHECK(reg_of(ep, sv[0]) == NULL, "deleted");

	/* Growth past the first allocation. */
	int fds[40];
	for (int i = 0; i < 40; i++) {
		fds[i] = dup(sv[1]);
		PW_CHECK_EQ(ctl(ep, EPOLL_CTL_ADD, fds[i], EPOLLIN, (uint64_t)i), 0);
	}
	PW_CHECK_EQ(pw_ep_get(ep, false)->n, 40);
	for (int i = 0; i < 40; i++) {
		r = reg_of(ep, fds[i]);
		PW_CHECK(r && r->data.u64 == (uint64_t)i, "fd %d", fds[i]);
	}
	/* A closed fd leaves every set: here and in a second epoll. */
	int ep2 = epoll_create1(EPOLL_CLOEXEC);
	PW_CHECK_EQ(ctl(ep2, EPOLL_CTL_ADD, fds[5], EPOLLIN, 5), 0);
	pw_ep_forget_everywhere(fds[5]);
	PW_CHECK(reg_of(ep, fds[5]) == NULL && reg_of(ep2, fds[5]) == NULL, "forgotten");
	PW_CHECK_EQ(pw_ep_get(ep, false)->n, 39);

	/* A closed epoll fd's shadow goes. */
	pw_ep_discard(ep2);
	PW_CHECK(pw_ep_get(ep2, false) == NULL, "discarded");
	pw_ep_discard(ep);
	pw_ep_discard(-1);
	pw_ep_discard(1 << 20);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
	close(ep2);
	close(ep);
	close(sv[0]);
	close(sv[1]);
}

/* dup3 of another socket onto a registered fd: the registration moves to
 * the new file, and events of the new file arrive. */
static void test_swap_file(void)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), a[2], b[2], c[2];
	struct epoll_event ev;

	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
	PW_CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c), 0);
	PW_CHECK_EQ(ctl(ep, EPOLL_CTL_ADD, a[0], EPOLLIN, 1), 0);

	pw_ep_swap_file(a[0], true);
	PW_CHECK(reg_of(ep, a[0]) && reg_of(ep, a[0])->readd, "taken off the old file");
	PW_CHECK(dup3(b[0], a[0], O_CLOEXEC) == a[0], "dup3");
	pw_ep_swap_file(a[0], false);
	PW_CHECK(reg_of(ep, a[0]) && !reg_of(ep, a[0])->readd, "put on the new file");
	PW_CHECK_EQ(write(b[1], "x", 1), 1);
	PW_CHECK_EQ(epoll_wait(ep, &ev, 1, 1000), 1);
	PW_CHECK(ev.data.u64 == 1 && (ev.events & EPOLLIN), "event of the new file");

	/* Stale: the kernel lost the registration (the fd was closed and its
	 * number reused without our knowing); the shadow forgets it. */
	PW_CHECK_EQ(ctl(ep, EPOLL_CTL_ADD, c[0], EPOLLIN, 2), 0);
	int num = c[0];
	close(c[0]);
	PW_CHECK(dup3(a[1], num, O_CLOEXEC) == num, "reuse the number");
	pw_ep_swap_file(num, true);
	PW_CHECK(reg_of(ep, num) == NULL, "stale registration forgotten");
	pw_ep_swap_file(num, false);

	pw_ep_discard(ep);
	close(ep);
	close(num);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(c[1]);
}

int main(void)
{
	pw_real.epoll_ctl = epoll_ctl;
	test_record();
	test_swap_file();
	return 0;
}
