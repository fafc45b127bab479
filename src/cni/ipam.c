// SPDX-License-Identifier: MIT
/*
 * File-backed IPv4 allocation. Every change happens under an flock on
 * DIR/lock, and each address file is created with O_EXCL as well, so two
 * plugins that somehow missed the lock still cannot hand out one address
 * twice. Files are fsync()ed with their directory: an allocation that ADD
 * reported survives a crash.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "ipam.h"

#define PW_IPAM_LAST "last_reserved"

static int pw_ipam_mkdirs(const char *dir)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = c;
		if (!c)
			return 0;
	}
}

int pw_ipam_lock(const char *dir, int timeout_ms)
{
	char path[PATH_MAX];
	int fd, r;

	r = pw_ipam_mkdirs(dir);
	if (r < 0)
		return r;
	if (snprintf(path, sizeof(path), "%s/lock", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	for (int waited = 0;; waited += 10) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return fd;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			r = -errno;
			break;
		}
		if (waited >= timeout_ms) {
			r = -EAGAIN;
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	}
	pw_close(fd);
	return r;
}

void pw_ipam_unlock(int lock)
{
	pw_close(lock); /* closing drops the flock */
}

static int pw_ipam_owner(char *buf, size_t cap, const char *id, const char *ifname)
{
	int n = snprintf(buf, cap, "%s\n%s\n", id, ifname);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : n;
}

/*
 * Walk the allocations of @dir owned by (@id, @ifname): the first address goes
 * to *@ret_first if not NULL, each is unlinked if @release. Returns how many.
 */
static int pw_ipam_each(const char *dir, const char *id, const char *ifname, bool release,
			uint32_t *ret_first)
{
	char want[512], got[512];
	struct dirent *de;
	int n = 0, wlen;
	DIR *d;

	wlen = pw_ipam_owner(want, sizeof(want), id, ifname);
	if (wlen < 0)
		return wlen;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		struct in_addr a;

		if (inet_pton(AF_INET, de->d_name, &a) != 1)
			continue; /* the lock, the last_reserved mark */
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		ssize_t len = read(fd, got, sizeof(got));
		pw_close(fd);
		if (len != wlen || memcmp(got, want, (size_t)wlen) != 0)
			continue;
		if (ret_first && n == 0)
			*ret_first = ntohl(a.s_addr);
		if (release && unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT) {
			n = -errno;
			break;
		}
		n++;
	}
	if (release && n > 0)
		fsync(dirfd(d));
	closedir(d);
	return n;
}

int pw_ipam_find(const char *dir, const char *id, const char *ifname, uint32_t *ret)
{
	int n = pw_ipam_each(dir, id, ifname, false, ret);

	return n < 0 ? n : n == 0 ? -ENOENT : 0;
}

int pw_ipam_release(const char *dir, const char *id, const char *ifname)
{
	return pw_ipam_each(dir, id, ifname, true, NULL);
}

static int pw_ipam_write(int dfd, const char *name, const char *data, size_t len, int flags)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | flags, 0644);
	int r = 0;

	if (fd < 0)
		return -errno;
	errno = 0;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0)
		r = errno ? -errno : -EIO;
	pw_close(fd);
	if (r < 0)
		unlinkat(dfd, name, 0);
	return r;
}

/* The last address handed out, or 0. */
static uint32_t pw_ipam_last(int dfd)
{
	char buf[INET_ADDRSTRLEN] = "";
	struct in_addr a;
	int fd = openat(dfd, PW_IPAM_LAST, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	pw_close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return inet_pton(AF_INET, buf, &a) == 1 ? ntohl(a.s_addr) : 0;
}

int pw_ipam_alloc(const struct pw_ipam *p, const char *id, const char *ifname, uint32_t *ret,
		  bool *ret_new)
{
	char owner[512], name[INET_ADDRSTRLEN];
	uint32_t size = p->end - p->start + 1, first, last;
	int dfd, len, r = -ENOSPC;

	if (p->end < p->start)
		return -EINVAL;
	*ret_new = false;
	if (pw_ipam_find(p->dir, id, ifname, ret) == 0)
		return 0;
	len = pw_ipam_owner(owner, sizeof(owner), id, ifname);
	if (len < 0)
		return len;
	dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	last = pw_ipam_last(dfd);
	first = last >= p->start && last < p->end ? last + 1 : p->start;
	for (uint32_t i = 0; i < size; i++) {
		uint32_t cand = p->start + (first - p->start + i) % size;
		struct in_addr a = { .s_addr = htonl(cand) };

		if (cand == p->gw)
			continue;
		inet_ntop(AF_INET, &a, name, sizeof(name));
		r = pw_ipam_write(dfd, name, owner, (size_t)len, O_EXCL);
		if (r == -EEXIST) {
			r = -ENOSPC;
			continue;
		}
		if (r < 0)
			break;
		/* Only a hint for the next search: its loss costs nothing. */
		char mark[INET_ADDRSTRLEN + 1];
		int mlen = snprintf(mark, sizeof(mark), "%s\n", name);
		if (pw_ipam_write(dfd, PW_IPAM_LAST ".tmp", mark, (size_t)mlen, O_TRUNC) == 0)
			renameat(dfd, PW_IPAM_LAST ".tmp", dfd, PW_IPAM_LAST);
		fsync(dfd);
		*ret = cand;
		*ret_new = true;
		break;
	}
	pw_close(dfd);
	return r;
}
