// SPDX-License-Identifier: MIT
/* The address module (src/common/addr.c): every function, and the inputs it
 * must refuse. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "addr.h"
#include "pw_test.h"
#include "util.h"

static struct sockaddr_in sin4(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	PW_CHECK(inet_pton(AF_INET, ip, &a.sin_addr) == 1, "%s", ip);
	return a;
}

static void check_sin(const struct sockaddr_in *a, const char *ip, uint16_t port)
{
	char buf[PW_ADDR_STRLEN], want[PW_ADDR_STRLEN];

	snprintf(want, sizeof(want), "%s:%u", ip, port);
	PW_CHECK_EQ(a->sin_family, AF_INET);
	PW_CHECK(!strcmp(pw_addr_format(a, buf), want), "got %s, want %s", buf, want);
}

static void test_to4(void)
{
	struct sockaddr_in a = sin4("198.18.2.3", 80), r, keep = sin4("198.19.9.9", 9);
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };

	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&a, sizeof(a), &r), 0);
	check_sin(&r, "198.18.2.3", 80);
	/* Too short for a sockaddr_in: not AF_INET as it is. */
	r = keep;
	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&a, sizeof(a) - 1, &r), -EAFNOSUPPORT);
	PW_CHECK(pw_addr_eq(&r, &keep), "changed on failure");

	inet_pton(AF_INET6, "::ffff:198.18.0.7", &s6.sin6_addr);
	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&s6, sizeof(s6), &r), 0);
	check_sin(&r, "198.18.0.7", 443);
	inet_pton(AF_INET6, "::", &s6.sin6_addr); /* a dual-stack socket on any */
	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&s6, sizeof(s6), &r), 0);
	check_sin(&r, "0.0.0.0", 443);
	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&s6, sizeof(s6) - 1, &r), -EINVAL);
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	r = keep;
	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&s6, sizeof(s6), &r), -EAFNOSUPPORT);
	PW_CHECK(pw_addr_eq(&r, &keep), "changed on failure");
	struct sockaddr un = { .sa_family = AF_UNIX };
	PW_CHECK_EQ(pw_addr_to4(&un, sizeof(un), &r), -EAFNOSUPPORT);
}

static void test_from4(void)
{
	struct sockaddr_in a = sin4("198.18.1.2", 8080), r;
	struct sockaddr_storage ss;

	PW_CHECK_EQ(pw_addr_from4(&a, AF_INET, &ss), sizeof(struct sockaddr_in));
	PW_CHECK(!memcmp(&ss, &a, sizeof(a)), "AF_INET copied");
	PW_CHECK_EQ(pw_addr_from4(&a, AF_INET6, &ss), sizeof(struct sockaddr_in6));
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
	char ip[INET6_ADDRSTRLEN];
	PW_CHECK_EQ(s6->sin6_family, AF_INET6);
	PW_CHECK_EQ(ntohs(s6->sin6_port), 8080);
	inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
	PW_CHECK(!strcmp(ip, "::ffff:198.18.1.2"), "%s", ip);
	/* And back. */
	PW_CHECK_EQ(pw_addr_to4((struct sockaddr *)&ss, sizeof(*s6), &r), 0);
	PW_CHECK(pw_addr_eq(&r, &a), "round trip");
}

static void test_wire(void)
{
	struct sockaddr_in a = sin4("198.19.0.9", 5000), r, keep = sin4("198.19.9.9", 9);
	struct pw_wire_addr w;
	int fam = 0;

	pw_addr_to_wire(&a, AF_INET, &w);
	PW_CHECK_EQ(w.family, AF_INET);
	PW_CHECK_EQ(w.port, a.sin_port);
	PW_CHECK(!memcmp(w.addr, &a.sin_addr, 4), "v4 in the first bytes");
	for (int i = 4; i < 16; i++)
		PW_CHECK_EQ(w.addr[i], 0);
	PW_CHECK_EQ(pw_addr_from_wire(&w, &r, &fam), 0);
	PW_CHECK_EQ(fam, AF_INET);
	PW_CHECK(pw_addr_eq(&r, &a), "round trip v4");

	pw_addr_to_wire(&a, AF_INET6, &w);
	PW_CHECK_EQ(w.family, AF_INET6);
	PW_CHECK_EQ(w.addr[10], 0xff);
	PW_CHECK_EQ(w.addr[11], 0xff);
	PW_CHECK(!memcmp(&w.addr[12], &a.sin_addr, 4), "mapped");
	PW_CHECK_EQ(pw_addr_from_wire(&w, &r, &fam), 0);
	PW_CHECK_EQ(fam, AF_INET6);
	PW_CHECK(pw_addr_eq(&r, &a), "round trip mapped");
	PW_CHECK_EQ(pw_addr_from_wire(&w, &r, NULL), 0);

	/* A real IPv6 address and an unknown family are refused. */
	w.addr[0] = 0x20;
	r = keep;
	PW_CHECK_EQ(pw_addr_from_wire(&w, &r, &fam), -EAFNOSUPPORT);
	PW_CHECK(pw_addr_eq(&r, &keep), "changed on failure");
	memset(&w, 0, sizeof(w));
	PW_CHECK_EQ(pw_addr_from_wire(&w, &r, NULL), -EAFNOSUPPORT);
}

static void test_eq_format(void)
{
	struct sockaddr_in a = sin4("198.18.3.4", 5), b = sin4("198.18.3.4", 5);
	char buf[PW_ADDR_STRLEN];
	struct pw_wire_addr w;

	PW_CHECK(pw_addr_eq(&a, &b), "equal");
	b.sin_port = htons(6);
	PW_CHECK(!pw_addr_eq(&a, &b), "port differs");
	b = sin4("1.2.3.5", 5);
	PW_CHECK(!pw_addr_eq(&a, &b), "address differs");
	PW_CHECK(!pw_addr_is_loopback(&a), "198.18.3.4");
	b = sin4("127.0.0.1", 5);
	PW_CHECK(pw_addr_is_loopback(&b), "127.0.0.1");
	b = sin4("127.255.0.9", 5);
	PW_CHECK(pw_addr_is_loopback(&b), "127.255.0.9");
	b = sin4("128.0.0.1", 5);
	PW_CHECK(!pw_addr_is_loopback(&b), "128.0.0.1");

	a = sin4("255.255.255.255", 65535); /* the longest */
	PW_CHECK(!strcmp(pw_addr_format(&a, buf), "255.255.255.255:65535"), "%s", buf);
	pw_addr_to_wire(&a, AF_INET6, &w);
	PW_CHECK(!strcmp(pw_addr_wire_format(&w, buf), "255.255.255.255:65535"), "%s", buf);
	w.family = AF_UNIX;
	PW_CHECK(!strcmp(pw_addr_wire_format(&w, buf), "?:65535"), "%s", buf);
}

static void test_parse(void)
{
	static const char *const bad[] = {
		"",
		"198.18.3.4",
		"198.18.3.4:",
		":80",
		"198.18.3.4:0",
		"198.18.3.4:65536",
		"198.18.3.4:-1",
		"198.18.3.4:+80",
		"198.18.3.4: 80",
		"198.18.3.4:80 ",
		"198.18.3.4:080",
		"198.18.3.4:8o",
		"1.2.3:80",
		"1.2.3.256:80",
		"host:80",
		"::1:80",
		"[::1]:80",
		"198.18.3.4:99999999999999999999",
	};
	struct sockaddr_in r, keep = sin4("198.19.9.9", 9);

	PW_CHECK_EQ(pw_addr_parse("198.18.0.1:7470", &r), 0);
	check_sin(&r, "198.18.0.1", 7470);
	PW_CHECK_EQ(pw_addr_parse("0.0.0.0:65535", &r), 0);
	check_sin(&r, "0.0.0.0", 65535);
	PW_CHECK_EQ(pw_addr_parse("127.0.0.1:1", &r), 0);
	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		r = keep;
		if (pw_addr_parse(bad[i], &r) != -EINVAL)
			PW_FAIL("\"%s\" accepted", bad[i]);
		PW_CHECK(pw_addr_eq(&r, &keep), "\"%s\" changed the result", bad[i]);
	}
}

static void test_list_parse(void)
{
	struct sockaddr_in v[3];
	const char *bad = NULL, *s;

	PW_CHECK_EQ(pw_addr_list_parse("", v, 3, NULL), 0);
	PW_CHECK_EQ(pw_addr_list_parse(" , ,", v, 3, NULL), 0);
	PW_CHECK_EQ(pw_addr_list_parse("1.1.1.1:1,2.2.2.2:2, 3.3.3.3:3", v, 3, NULL), 3);
	check_sin(&v[0], "1.1.1.1", 1);
	check_sin(&v[1], "2.2.2.2", 2);
	check_sin(&v[2], "3.3.3.3", 3);
	s = "1.1.1.1:1,2.2.2.2:2,3.3.3.3:3,4.4.4.4:4";
	PW_CHECK_EQ(pw_addr_list_parse(s, v, 3, &bad), -E2BIG);
	PW_CHECK(bad == s + 30, "bad at %td", bad - s);
	s = "1.1.1.1:1,2.2.2.2";
	PW_CHECK_EQ(pw_addr_list_parse(s, v, 3, &bad), -EINVAL);
	PW_CHECK(bad == s + 10, "bad at %td", bad - s);
	/* An item longer than any address. */
	s = "1.1.1.1:1,1111111111111111111111111111111111111111111111111111111111111111:1";
	PW_CHECK_EQ(pw_addr_list_parse(s, v, 3, &bad), -EINVAL);
	PW_CHECK(bad == s + 10, "bad at %td", bad - s);
}

static void test_mask(void)
{
	PW_CHECK_EQ(pw_addr_mask(0), 0);
	PW_CHECK_EQ(pw_addr_mask(1), 0x80000000u);
	PW_CHECK_EQ(pw_addr_mask(8), 0xff000000u);
	PW_CHECK_EQ(pw_addr_mask(15), 0xfffe0000u);
	PW_CHECK_EQ(pw_addr_mask(31), 0xfffffffeu);
	PW_CHECK_EQ(pw_addr_mask(32), 0xffffffffu);
	PW_CHECK_EQ(pw_addr_mask(33), 0xffffffffu);
}

static void check_cidr(const char *s, unsigned flags, const char *want)
{
	struct pw_wire_prefix p;
	char buf[PW_ADDR_CIDR_STRLEN];
	int r = pw_addr_cidr_parse(s, flags, &p);

	if (r < 0)
		PW_FAIL("\"%s\" (flags %#x): %s", s, flags, strerror(-r));
	PW_CHECK(!strcmp(pw_addr_cidr_format(&p, buf), want), "\"%s\" -> %s, want %s", s, buf,
		 want);
}

static void test_cidr_parse(void)
{
	static const char *const bad[] = {
		"198.0.0.0/x",
		"198.0.0.0/33",
		"198.0.0.0/",
		"/8",
		"/",
		"",
		"198.0.0.0/8x",
		"198.0.0.0/8 ",
		" 198.0.0.0/8",
		"198.0.0.0/+8",
		"198.0.0.0/-0",
		"198.0.0.0/ 8",
		"198.0.0.0/08",
		"198.0.0/8",
		"198.0.0.256/8",
		"198.0.0.0//8",
		"198.0.0.0/8/8",
		"198.0.0.0/1000000000000000000000",
		"2001:db8::/129",
		"2001:db8::/x",
		"2001:zz8::/32",
	};
	const unsigned all = PW_ADDR_CIDR_INET6 | PW_ADDR_CIDR_HOST;
	struct pw_wire_prefix p, keep = { .family = 99, .len = 99 };

	check_cidr("198.1.2.3/8", 0, "198.1.2.3/8"); /* host bits kept */
	check_cidr("198.1.2.3/8", PW_ADDR_CIDR_NET, "198.0.0.0/8");
	check_cidr("198.19.255.1/15", PW_ADDR_CIDR_NET, "198.18.0.0/15");
	check_cidr("198.1.2.3/0", PW_ADDR_CIDR_NET, "0.0.0.0/0");
	check_cidr("198.1.2.3/32", PW_ADDR_CIDR_NET, "198.1.2.3/32");
	check_cidr("198.1.2.3", PW_ADDR_CIDR_HOST, "198.1.2.3/32");
	check_cidr("2001:db8::1/64", PW_ADDR_CIDR_INET6, "2001:db8::1/64");
	check_cidr("2001:db8:ffff::1/33", PW_ADDR_CIDR_INET6 | PW_ADDR_CIDR_NET,
		   "2001:db8:8000::/33");
	check_cidr("2001:db8::1", all, "2001:db8::1/128");
	PW_CHECK_EQ(pw_addr_cidr_parse("198.0.0.0/8", 0, &p), 0);
	PW_CHECK_EQ(p.family, AF_INET);
	PW_CHECK_EQ(p.len, 8);
	PW_CHECK_EQ(p.pad, 0);

	for (size_t i = 0; i < PW_ARRAY_SIZE(bad); i++) {
		p = keep;
		int r = pw_addr_cidr_parse(bad[i], all | PW_ADDR_CIDR_NET, &p);
		if (r != -EINVAL)
			PW_FAIL("\"%s\": %d, want -EINVAL", bad[i], r);
		PW_CHECK(p.family == 99 && p.len == 99, "\"%s\" changed the result", bad[i]);
	}
	/* A bare address only with PW_ADDR_CIDR_HOST; IPv6 only with INET6. */
	PW_CHECK_EQ(pw_addr_cidr_parse("198.0.0.1", 0, &p), -EINVAL);
	PW_CHECK_EQ(pw_addr_cidr_parse("2001:db8::/32", 0, &p), -EAFNOSUPPORT);
	PW_CHECK_EQ(pw_addr_cidr_parse("::ffff:198.0.0.1/128", PW_ADDR_CIDR_HOST, &p),
		    -EAFNOSUPPORT);
}

static void test_cidr_list_parse(void)
{
	struct pw_wire_prefix v[2];
	char buf[PW_ADDR_CIDR_STRLEN];
	const char *bad = NULL, *s;
	const unsigned fl = PW_ADDR_CIDR_HOST | PW_ADDR_CIDR_NET;

	PW_CHECK_EQ(pw_addr_cidr_list_parse("", fl, v, 2, NULL), 0);
	PW_CHECK_EQ(pw_addr_cidr_list_parse("198.9.9.9/8, 127.0.0.1", fl, v, 2, NULL), 2);
	PW_CHECK(!strcmp(pw_addr_cidr_format(&v[0], buf), "198.0.0.0/8"), "%s", buf);
	PW_CHECK(!strcmp(pw_addr_cidr_format(&v[1], buf), "127.0.0.1/32"), "%s", buf);
	/* One bad item spoils the list: nothing is widened or skipped silently. */
	s = "198.0.0.0/8,198.0.0.0/x";
	PW_CHECK_EQ(pw_addr_cidr_list_parse(s, fl, v, 2, &bad), -EINVAL);
	PW_CHECK(bad == s + 12, "bad at %td", bad - s);
	s = "198.0.0.0/8,2001:db8::/32";
	PW_CHECK_EQ(pw_addr_cidr_list_parse(s, fl, v, 2, &bad), -EAFNOSUPPORT);
	PW_CHECK(bad == s + 12, "bad at %td", bad - s);
	s = "1.0.0.0/8 2.0.0.0/8 3.0.0.0/8";
	PW_CHECK_EQ(pw_addr_cidr_list_parse(s, fl, v, 2, &bad), -E2BIG);
	PW_CHECK(bad == s + 20, "bad at %td", bad - s);
}

static void test_cidr_format_has(void)
{
	struct pw_wire_prefix p = { .family = AF_UNIX, .len = 7 };
	char buf[PW_ADDR_CIDR_STRLEN];
	struct sockaddr_in a = sin4("255.255.255.255", 1);

	PW_CHECK(!strcmp(pw_addr_cidr_format(&p, buf), "?/7"), "%s", buf);
	/* The longest: an IPv6 address in its longest form and /128. */
	PW_CHECK_EQ(pw_addr_cidr_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
				       PW_ADDR_CIDR_INET6, &p),
		    0);
	pw_addr_cidr_format(&p, buf);
	PW_CHECK(strlen(buf) < sizeof(buf), "%s", buf);
	PW_CHECK(!pw_addr_cidr_has(&p, &a), "an IPv6 prefix holds no IPv4 address");

	PW_CHECK_EQ(pw_addr_cidr_parse("198.18.0.0/15", 0, &p), 0);
	a = sin4("198.18.0.1", 1);
	PW_CHECK(pw_addr_cidr_has(&p, &a), "first half");
	a = sin4("198.19.255.255", 1);
	PW_CHECK(pw_addr_cidr_has(&p, &a), "second half");
	a = sin4("198.20.0.0", 1);
	PW_CHECK(!pw_addr_cidr_has(&p, &a), "past the end");
	a = sin4("198.17.255.255", 1);
	PW_CHECK(!pw_addr_cidr_has(&p, &a), "before the start");
	/* Host bits in the prefix do not matter; /0 holds everything. */
	PW_CHECK_EQ(pw_addr_cidr_parse("198.1.2.3/8", 0, &p), 0);
	a = sin4("198.200.0.1", 1);
	PW_CHECK(pw_addr_cidr_has(&p, &a), "host bits ignored");
	PW_CHECK_EQ(pw_addr_cidr_parse("0.0.0.0/0", 0, &p), 0);
	PW_CHECK(pw_addr_cidr_has(&p, &a), "/0");
	PW_CHECK_EQ(pw_addr_cidr_parse("198.200.0.1", PW_ADDR_CIDR_HOST, &p), 0);
	PW_CHECK(pw_addr_cidr_has(&p, &a), "/32 itself");
	a = sin4("198.200.0.2", 1);
	PW_CHECK(!pw_addr_cidr_has(&p, &a), "/32 another");
}

static void test_cidr_match(void)
{
	struct pw_wire_prefix v[4];
	struct sockaddr_in a;

	PW_CHECK_EQ(pw_addr_cidr_list_parse("198.0.0.0/8 198.1.0.0/16 198.1.2.0/24 2001:db8::/32",
					    PW_ADDR_CIDR_INET6, v, 4, NULL),
		    4);
	a = sin4("198.1.2.3", 1);
	PW_CHECK_EQ(pw_addr_cidr_match(v, 4, &a), 24);
	PW_CHECK_EQ(pw_addr_cidr_match(v, 2, &a), 16);
	a = sin4("198.9.0.1", 1);
	PW_CHECK_EQ(pw_addr_cidr_match(v, 4, &a), 8);
	a = sin4("11.0.0.1", 1);
	PW_CHECK_EQ(pw_addr_cidr_match(v, 4, &a), -1);
	PW_CHECK_EQ(pw_addr_cidr_match(v, 0, &a), -1);
}

int main(void)
{
	test_to4();
	test_from4();
	test_wire();
	test_eq_format();
	test_parse();
	test_list_parse();
	test_mask();
	test_cidr_parse();
	test_cidr_list_parse();
	test_cidr_format_has();
	test_cidr_match();
	return 0;
}
