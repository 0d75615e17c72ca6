/* SPDX-License-Identifier: MIT */
/* Resolver names and DNS answer parsing, on hand-made and broken packets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "resolver_internal.h"

/* ---- A DNS message builder ------------------------------------------ */

struct pkt {
	unsigned char b[65536];
	size_t len;
};

static void
put8(struct pkt *p, unsigned v)
{
	p->b[p->len++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, (v >> 8) & 0xff);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p, v & 0xffff);
}

static void
put_bytes(struct pkt *p, const void *data, size_t len)
{
	memcpy(p->b + p->len, data, len);
	p->len += len;
}

/* Labels of a dotted name, then the root ("" is the root alone). */
static void
put_name(struct pkt *p, const char *name)
{
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		put8(p, (unsigned)n);
		put_bytes(p, name, n);
		name += n + (dot ? 1 : 0);
	}
	put8(p, 0);
}

static void
put_ptr(struct pkt *p, size_t off)
{
	put16(p, 0xc000u | (unsigned)off);
}

#define FLAGS_OK  0x8180u /* QR RD RA, NOERROR */
#define FLAG_AD   0x0020u
#define QNAME_OFF 12

static void
header(struct pkt *p, unsigned flags, unsigned an, unsigned ns)
{
	p->len = 0;
	put16(p, 0x1234);
	put16(p, flags);
	put16(p, 1);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
}

static void
question(struct pkt *p, const char *name, unsigned type)
{
	put_name(p, name);
	put16(p, type);
	put16(p, 1);
}

/* Owner is a pointer to @owner_off, or the name @owner when it is set. */
static size_t
rr_begin(struct pkt *p, const char *owner, size_t owner_off, unsigned type,
         uint32_t ttl)
{
	size_t rdlen_at;

	if (owner != NULL)
		put_name(p, owner);
	else
		put_ptr(p, owner_off);
	put16(p, type);
	put16(p, 1);
	put32(p, ttl);
	rdlen_at = p->len;
	put16(p, 0);
	return rdlen_at;
}

static void
rr_end(struct pkt *p, size_t rdlen_at)
{
	size_t n = p->len - rdlen_at - 2;

	p->b[rdlen_at] = (unsigned char)(n >> 8);
	p->b[rdlen_at + 1] = (unsigned char)n;
}

static void
rr_a(struct pkt *p, size_t owner_off, uint32_t ttl, const char *ip)
{
	size_t at = rr_begin(p, NULL, owner_off, PTL_DNS_A, ttl);
	struct in_addr in;

	assert_int_equal(inet_pton(AF_INET, ip, &in), 1);
	put_bytes(p, &in, 4);
	rr_end(p, at);
}

static struct resolver_answer *
parse(const struct pkt *p, const char *name, enum ptl_dns_type type)
{
	struct resolver_answer *a = resolver_parse(p->b, p->len, name, type);

	assert_non_null(a);
	assert_non_null(a->result.name);
	return a;
}

static void
assert_status(struct resolver_answer *a, enum ptl_dns_status status)
{
	if (a->result.status != status)
		fail_msg("status %s, expected %s (%s)",
		         resolver_status_name(a->result.status),
		         resolver_status_name(status),
		         a->result.reason ? a->result.reason : "");
}

/* ---- Names ------------------------------------------------------------ */

static void
test_name_normalize(void **state)
{
	char out[RESOLVER_NAME_BUF], long_name[400];
	const char *why;

	assert_int_equal(resolver_name_normalize("Mail.Example.TEST.",
	                                         RESOLVER_NAME_HOST, out, &why),
	                 PTL_OK);
	assert_string_equal(out, "mail.example.test");
	assert_int_equal(resolver_name_normalize("_dmarc.example.test",
	                                         RESOLVER_NAME_OWNER, out,
	                                         &why),
	                 PTL_OK);
	assert_int_equal(resolver_name_normalize("_dmarc.example.test",
	                                         RESOLVER_NAME_HOST, out, &why),
	                 PTL_ERROR);
	assert_non_null(why);
	assert_int_equal(resolver_name_normalize("s1._domainkey.x-y.test",
	                                         RESOLVER_NAME_OWNER, out,
	                                         &why),
	                 PTL_OK);
	/* Empty, root, empty labels, bad bytes. */
	const char *bad[] = {
	    "",         ".",        "..",         "a..b",
	    ".a",       "a b.test", "a\r\n.test", "ex\xc3\xa4.test",
	    "a/b.test", "a\\.test", "*.test",     "a..",
	    "a.test..", NULL};
	for (int i = 0; bad[i] != NULL; i++) {
		if (resolver_name_normalize(bad[i], RESOLVER_NAME_OWNER, out,
		                            &why) != PTL_ERROR)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(
	    resolver_name_normalize(NULL, RESOLVER_NAME_HOST, out, &why),
	    PTL_ERROR);

	/* A label of 63 passes, 64 does not. */
	memset(long_name, 'a', 63);
	strcpy(long_name + 63, ".test");
	assert_int_equal(
	    resolver_name_normalize(long_name, RESOLVER_NAME_HOST, out, &why),
	    PTL_OK);
	memset(long_name, 'a', 64);
	strcpy(long_name + 64, ".test");
	assert_int_equal(
	    resolver_name_normalize(long_name, RESOLVER_NAME_HOST, out, &why),
	    PTL_ERROR);

	/* 253 characters pass (with a trailing dot too), 254 do not. */
	for (int i = 0; i < 253; i++)
		long_name[i] = (i % 2) ? '.' : 'a';
	long_name[252] = 'a';
	long_name[253] = '\0';
	assert_int_equal(
	    resolver_name_normalize(long_name, RESOLVER_NAME_HOST, out, &why),
	    PTL_OK);
	strcpy(long_name + 253, ".");
	assert_int_equal(
	    resolver_name_normalize(long_name, RESOLVER_NAME_HOST, out, &why),
	    PTL_OK);
	strcpy(long_name + 253, ".a");
	assert_int_equal(
	    resolver_name_normalize(long_name, RESOLVER_NAME_HOST, out, &why),
	    PTL_ERROR);

	assert_int_equal(resolver_name_class_for(PTL_DNS_MX),
	                 RESOLVER_NAME_HOST);
	assert_int_equal(resolver_name_class_for(PTL_DNS_TXT),
	                 RESOLVER_NAME_OWNER);
	assert_int_equal(resolver_name_class_for(PTL_DNS_A),
	                 RESOLVER_NAME_OWNER);
	assert_true(resolver_type_supported(PTL_DNS_TLSA));
	assert_false(resolver_type_supported(5));
	assert_false(resolver_type_supported(255));
}

static void
test_ptr_name(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	struct sockaddr sa = {.sa_family = AF_UNIX};
	char out[RESOLVER_NAME_BUF];

	assert_int_equal(inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr), 1);
	assert_int_equal(resolver_ptr_name((struct sockaddr *)&sin, out),
	                 PTL_OK);
	assert_string_equal(out, "10.2.0.192.in-addr.arpa");

	assert_int_equal(
	    inet_pton(AF_INET6, "2001:db8::567:89ab", &sin6.sin6_addr), 1);
	assert_int_equal(resolver_ptr_name((struct sockaddr *)&sin6, out),
	                 PTL_OK);
	/* RFC 3596 section 2.5's example. */
	assert_string_equal(out, "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	                         "0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");

	assert_int_equal(
	    inet_pton(AF_INET6, "::ffff:198.51.100.7", &sin6.sin6_addr), 1);
	assert_int_equal(resolver_ptr_name((struct sockaddr *)&sin6, out),
	                 PTL_OK);
	assert_string_equal(out, "7.100.51.198.in-addr.arpa");

	assert_int_equal(resolver_ptr_name(&sa, out), PTL_ERROR);
	assert_int_equal(resolver_ptr_name(NULL, out), PTL_ERROR);
}

/* ---- Good answers ------------------------------------------------------ */

static void
test_a_records(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	char ip[INET_ADDRSTRLEN];

	header(&p, FLAGS_OK | FLAG_AD, 2, 0);
	question(&p, "Host.Example.Test", PTL_DNS_A);
	rr_a(&p, QNAME_OFF, 300, "192.0.2.1");
	rr_a(&p, QNAME_OFF, 60, "192.0.2.2");
	a = parse(&p, "host.example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.count, 2);
	assert_int_equal(a->result.ttl, 60);
	assert_true(a->result.secure);
	assert_string_equal(a->result.name, "host.example.test");
	assert_string_equal(a->result.canonical, "host.example.test");
	assert_null(a->result.reason);
	assert_int_equal(a->result.addrs[0].family, AF_INET);
	inet_ntop(AF_INET, &a->result.addrs[1].in4, ip, sizeof(ip));
	assert_string_equal(ip, "192.0.2.2");
	resolver_answer_unref(a);

	/* Without AD, and a TTL with its top bit set counts as 0. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "host.example.test", PTL_DNS_A);
	rr_a(&p, QNAME_OFF, 0x80000001u, "192.0.2.1");
	a = parse(&p, "host.example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_OK);
	assert_false(a->result.secure);
	assert_int_equal(a->result.ttl, 0);
	resolver_answer_unref(a);
}

static void
test_aaaa_records(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	struct in6_addr in6;
	char ip[INET6_ADDRSTRLEN];
	size_t at;

	header(&p, FLAGS_OK, 1, 0);
	question(&p, "host.example.test", PTL_DNS_AAAA);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_AAAA, 100);
	inet_pton(AF_INET6, "2001:db8::10", &in6);
	put_bytes(&p, &in6, 16);
	rr_end(&p, at);
	a = parse(&p, "host.example.test", PTL_DNS_AAAA);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.addrs[0].family, AF_INET6);
	inet_ntop(AF_INET6, &a->result.addrs[0].in6, ip, sizeof(ip));
	assert_string_equal(ip, "2001:db8::10");
	resolver_answer_unref(a);
}

static void
put_mx(struct pkt *p, uint32_t ttl, unsigned pref, const char *exchange)
{
	size_t at = rr_begin(p, NULL, QNAME_OFF, PTL_DNS_MX, ttl);

	put16(p, pref);
	put_name(p, exchange);
	rr_end(p, at);
}

static void
test_mx_sorted(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t at, mx_b_name;

	header(&p, FLAGS_OK, 4, 0);
	question(&p, "example.test", PTL_DNS_MX);
	put_mx(&p, 3600, 20, "c.example.test");
	put_mx(&p, 3600, 10, "A.Example.Test");
	/* Compressed: "b" then a pointer to the question's name. */
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_MX, 1800);
	put16(&p, 10);
	mx_b_name = p.len;
	put8(&p, 1);
	put8(&p, 'b');
	put_ptr(&p, QNAME_OFF);
	rr_end(&p, at);
	/* A pointer to the middle of an earlier name. */
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_MX, 3600);
	put16(&p, 30);
	put_ptr(&p, mx_b_name);
	rr_end(&p, at);

	a = parse(&p, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.count, 4);
	assert_int_equal(a->result.ttl, 1800);
	/* By preference; equals keep the answer's order. */
	assert_int_equal(a->result.mx[0].preference, 10);
	assert_string_equal(a->result.mx[0].exchange, "a.example.test");
	assert_int_equal(a->result.mx[1].preference, 10);
	assert_string_equal(a->result.mx[1].exchange, "b.example.test");
	assert_int_equal(a->result.mx[2].preference, 20);
	assert_string_equal(a->result.mx[2].exchange, "c.example.test");
	assert_int_equal(a->result.mx[3].preference, 30);
	assert_string_equal(a->result.mx[3].exchange, "b.example.test");
	resolver_answer_unref(a);

	/* RFC 7505 null MX: preference 0, the root. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_MX);
	put_mx(&p, 3600, 0, "");
	a = parse(&p, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.count, 1);
	assert_int_equal(a->result.mx[0].preference, 0);
	assert_string_equal(a->result.mx[0].exchange, "");
	resolver_answer_unref(a);
}

static void
test_txt_records(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t at;

	header(&p, FLAGS_OK, 2, 0);
	question(&p, "_dmarc.example.test", PTL_DNS_TXT);
	/* Two character-strings, joined; one holds a NUL. */
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TXT, 120);
	put8(&p, 7);
	put_bytes(&p, "v=spf1 ", 7);
	put8(&p, 5);
	put_bytes(&p, "a\0b-a", 5);
	rr_end(&p, at);
	/* An empty string is a valid TXT record. */
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TXT, 120);
	put8(&p, 0);
	rr_end(&p, at);
	a = parse(&p, "_dmarc.example.test", PTL_DNS_TXT);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.count, 2);
	assert_int_equal(a->result.txt[0].len, 12);
	assert_memory_equal(a->result.txt[0].data, "v=spf1 a\0b-a", 12);
	assert_int_equal(a->result.txt[0].data[12], '\0');
	assert_int_equal(a->result.txt[1].len, 0);
	assert_string_equal(a->result.txt[1].data, "");
	resolver_answer_unref(a);
}

static void
test_tlsa_records(void **state)
{
	static struct pkt p;
	static const unsigned char hash[32] = {0xde, 0xad, 0xbe, 0xef, 31};
	struct resolver_answer *a;
	size_t at;

	header(&p, FLAGS_OK | FLAG_AD, 1, 0);
	question(&p, "_25._tcp.mx.example.test", PTL_DNS_TLSA);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TLSA, 600);
	put8(&p, 3);
	put8(&p, 1);
	put8(&p, 1);
	put_bytes(&p, hash, sizeof(hash));
	rr_end(&p, at);
	a = parse(&p, "_25._tcp.mx.example.test", PTL_DNS_TLSA);
	assert_status(a, PTL_DNS_OK);
	assert_true(a->result.secure);
	assert_int_equal(a->result.tlsa[0].usage, 3);
	assert_int_equal(a->result.tlsa[0].selector, 1);
	assert_int_equal(a->result.tlsa[0].mtype, 1);
	assert_int_equal(a->result.tlsa[0].len, 32);
	assert_memory_equal(a->result.tlsa[0].data, hash, 32);
	resolver_answer_unref(a);
}

static void
test_ptr_unsafe_names(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t at;

	/* A PTR crafted to inject a header line is dropped... */
	header(&p, FLAGS_OK, 2, 0);
	question(&p, "1.2.0.192.in-addr.arpa", PTL_DNS_PTR);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	put8(&p, 18);
	put_bytes(&p, "x\r\nX-Spam: no\r\nab", 18);
	put_name(&p, "test");
	rr_end(&p, at);
	/* ...and so is one with a dot inside a label. */
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	put8(&p, 3);
	put_bytes(&p, "a.b", 3);
	put_name(&p, "test");
	rr_end(&p, at);
	a = parse(&p, "1.2.0.192.in-addr.arpa", PTL_DNS_PTR);
	assert_status(a, PTL_DNS_PERMFAIL);
	assert_int_equal(a->result.count, 0);
	resolver_answer_unref(a);

	/* With a good one beside it, only the good one is kept. */
	p.b[7] = 3;
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	put_name(&p, "Mail.Example.Test");
	rr_end(&p, at);
	a = parse(&p, "1.2.0.192.in-addr.arpa", PTL_DNS_PTR);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.count, 1);
	assert_string_equal(a->result.ptr[0], "mail.example.test");
	resolver_answer_unref(a);
}

static void
test_cname_chain(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t at, target_off;

	header(&p, FLAGS_OK, 4, 0);
	question(&p, "www.example.test", PTL_DNS_A);
	/* A record for another name first: must be ignored (poisoning). */
	at = rr_begin(&p, "victim.test", 0, PTL_DNS_A, 9999);
	put32(&p, 0x01020304);
	rr_end(&p, at);
	at = rr_begin(&p, NULL, QNAME_OFF, 5, 500);
	target_off = p.len;
	put_name(&p, "real.example.test");
	rr_end(&p, at);
	rr_a(&p, target_off, 200, "192.0.2.7");
	/* A record at the first name is not the answer after a CNAME. */
	rr_a(&p, QNAME_OFF, 200, "192.0.2.66");
	a = parse(&p, "www.example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_OK);
	assert_string_equal(a->result.canonical, "real.example.test");
	assert_int_equal(a->result.count, 1);
	assert_int_equal(ntohl(a->result.addrs[0].in4.s_addr), 0xc0000207);
	assert_int_equal(a->result.ttl, 200);
	resolver_answer_unref(a);

	/* a -> b -> a: a loop is cut after 8 and refused. */
	header(&p, FLAGS_OK, 2, 0);
	question(&p, "a.test", PTL_DNS_A);
	at = rr_begin(&p, "a.test", 0, 5, 60);
	put_name(&p, "b.test");
	rr_end(&p, at);
	at = rr_begin(&p, "b.test", 0, 5, 60);
	put_name(&p, "a.test");
	rr_end(&p, at);
	a = parse(&p, "a.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	assert_non_null(strstr(a->result.reason, "CNAME"));
	resolver_answer_unref(a);

	/* A CNAME only, no record at the target: NODATA. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "a.test", PTL_DNS_A);
	at = rr_begin(&p, "a.test", 0, 5, 60);
	put_name(&p, "b.test");
	rr_end(&p, at);
	a = parse(&p, "a.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_NODATA);
	assert_string_equal(a->result.canonical, "b.test");
	resolver_answer_unref(a);
}

static void
put_soa(struct pkt *p, const char *zone, uint32_t ttl, uint32_t minimum)
{
	size_t at = rr_begin(p, zone, 0, 6, ttl);

	put_name(p, "ns.example.test");
	put_name(p, "hostmaster.example.test");
	put32(p, 2024010101);
	put32(p, 3600);
	put32(p, 600);
	put32(p, 86400);
	put32(p, minimum);
	rr_end(p, at);
}

static void
test_negative_answers(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;

	/* NXDOMAIN: TTL is the smaller of the SOA's TTL and MINIMUM. */
	header(&p, 0x8183, 0, 1);
	question(&p, "nx.example.test", PTL_DNS_MX);
	put_soa(&p, "example.test", 900, 300);
	a = parse(&p, "nx.example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_NXDOMAIN);
	assert_true(a->has_negative_ttl);
	assert_int_equal(a->result.ttl, 300);
	assert_int_equal(a->result.count, 0);
	resolver_answer_unref(a);

	header(&p, 0x8183, 0, 1);
	question(&p, "nx.example.test", PTL_DNS_MX);
	put_soa(&p, "example.test", 100, 300);
	a = parse(&p, "nx.example.test", PTL_DNS_MX);
	assert_int_equal(a->result.ttl, 100);
	resolver_answer_unref(a);

	/* NODATA; an SOA of an unrelated zone is not believed. */
	header(&p, FLAGS_OK, 0, 1);
	question(&p, "host.example.test", PTL_DNS_MX);
	put_soa(&p, "other.test", 900, 300);
	a = parse(&p, "host.example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_NODATA);
	assert_false(a->has_negative_ttl);
	resolver_answer_unref(a);

	/* The root zone's SOA covers everything. */
	header(&p, 0x8183, 0, 1);
	question(&p, "nx.invalid", PTL_DNS_A);
	put_soa(&p, "", 86400, 1800);
	a = parse(&p, "nx.invalid", PTL_DNS_A);
	assert_true(a->has_negative_ttl);
	assert_int_equal(a->result.ttl, 1800);
	resolver_answer_unref(a);

	/* Records of another type at the name: NODATA, not OK. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "host.example.test", PTL_DNS_MX);
	rr_a(&p, QNAME_OFF, 60, "192.0.2.1");
	a = parse(&p, "host.example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_NODATA);
	resolver_answer_unref(a);
}

static void
test_rcodes(void **state)
{
	static struct pkt p;
	static const struct {
		unsigned rcode;
		const char *reason;
	} cases[] = {{1, "FORMERR"},
	             {2, "SERVFAIL"},
	             {4, "NOTIMP"},
	             {5, "REFUSED"},
	             {9, "unexpected rcode"}};
	struct resolver_answer *a;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		header(&p, 0x8180u | cases[i].rcode, 0, 0);
		question(&p, "example.test", PTL_DNS_A);
		a = parse(&p, "example.test", PTL_DNS_A);
		assert_status(a, PTL_DNS_TEMPFAIL);
		assert_string_equal(a->result.reason, cases[i].reason);
		assert_int_equal(a->result.ttl, 0);
		resolver_answer_unref(a);
	}
	/* Still truncated (TC) after c-ares's TCP retry. */
	header(&p, FLAGS_OK | 0x0200u, 0, 0);
	question(&p, "example.test", PTL_DNS_A);
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_TEMPFAIL);
	resolver_answer_unref(a);
}

/* ---- Hostile answers --------------------------------------------------- */

static void
test_over_100_records(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;

	header(&p, FLAGS_OK, 150, 0);
	question(&p, "many.example.test", PTL_DNS_A);
	for (unsigned i = 0; i < 150; i++) {
		size_t at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_A, 1000 - i);

		put32(&p, 0xc0000200u + i);
		rr_end(&p, at);
	}
	a = parse(&p, "many.example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_OK);
	assert_int_equal(a->result.count, RESOLVER_MAX_RECORDS);
	assert_int_equal(a->dropped, 50);
	/* The TTL is that of the records kept. */
	assert_int_equal(a->result.ttl, 1000 - 99);
	assert_int_equal(ntohl(a->result.addrs[99].in4.s_addr),
	                 0xc0000200u + 99);
	resolver_answer_unref(a);

	/* 1000 MX records: still 100, memory bounded. */
	header(&p, FLAGS_OK, 1000, 0);
	question(&p, "many.example.test", PTL_DNS_MX);
	for (unsigned i = 0; i < 1000; i++)
		put_mx(&p, 60, i, "mx.example.test");
	a = parse(&p, "many.example.test", PTL_DNS_MX);
	assert_int_equal(a->result.count, 100);
	assert_true(a->size < 16384);
	resolver_answer_unref(a);
}

static void
test_truncated_everywhere(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t full;

	header(&p, FLAGS_OK, 2, 1);
	question(&p, "example.test", PTL_DNS_MX);
	put_mx(&p, 60, 10, "mx1.example.test");
	put_mx(&p, 60, 20, "mx2.example.test");
	put_soa(&p, "example.test", 60, 60);
	full = p.len;
	for (size_t len = 0; len < full; len++) {
		a = resolver_parse(p.b, len, "example.test", PTL_DNS_MX);
		assert_non_null(a);
		if (a->result.status != PTL_DNS_PERMFAIL)
			fail_msg("prefix of %zu bytes: %s", len,
			         resolver_status_name(a->result.status));
		assert_int_equal(a->result.count, 0);
		resolver_answer_unref(a);
	}
	a = resolver_parse(p.b, full, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_OK);
	resolver_answer_unref(a);
}

static void
test_pointer_loops(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t at, here;

	/* An owner name that points at itself. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_A);
	here = p.len;
	put_ptr(&p, here);
	put16(&p, PTL_DNS_A);
	put16(&p, 1);
	put32(&p, 60);
	put16(&p, 4);
	put32(&p, 1);
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* A label then a pointer back to that label: a loop that only
	 * "points backwards". */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_MX);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_MX, 60);
	put16(&p, 10);
	here = p.len;
	put8(&p, 1);
	put8(&p, 'x');
	put_ptr(&p, here);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* A pointer forwards. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_MX);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_MX, 60);
	put16(&p, 10);
	put_ptr(&p, p.len + 2);
	put_name(&p, "mx.test");
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* Two names pointing at each other. */
	header(&p, FLAGS_OK, 2, 0);
	question(&p, "example.test", PTL_DNS_PTR);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	here = p.len;
	put8(&p, 1);
	put8(&p, 'a');
	put_ptr(&p, here + 6);
	rr_end(&p, at);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	put8(&p, 1);
	put8(&p, 'b');
	put_ptr(&p, here);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_PTR);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);
}

static void
test_bad_lengths(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	size_t at;

	/* RDLENGTH past the end of the message. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_A);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_A, 60);
	put32(&p, 1);
	rr_end(&p, at);
	p.b[at + 1] = 200;
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* An A record of 5 bytes, an AAAA of 4. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_A);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_A, 60);
	put32(&p, 1);
	put8(&p, 1);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	assert_string_equal(a->result.reason, "malformed answer: bad A record");
	resolver_answer_unref(a);
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_AAAA);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_AAAA, 60);
	put32(&p, 1);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_AAAA);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* An MX whose name ends before its RDATA does. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_MX);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_MX, 60);
	put16(&p, 10);
	put_name(&p, "mx.test");
	put8(&p, 0);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* An MX whose name runs past its RDATA into the next record. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_MX);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_MX, 60);
	put16(&p, 10);
	put_name(&p, "mx.test");
	rr_end(&p, at);
	p.b[at + 1] -= 3;
	a = parse(&p, "example.test", PTL_DNS_MX);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* A TXT string longer than its record; an empty TXT RDATA. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_TXT);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TXT, 60);
	put8(&p, 10);
	put_bytes(&p, "short", 5);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_TXT);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_TXT);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TXT, 60);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_TXT);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* A TLSA without association data. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "_25._tcp.example.test", PTL_DNS_TLSA);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TLSA, 60);
	put8(&p, 3);
	put8(&p, 1);
	put8(&p, 1);
	rr_end(&p, at);
	a = parse(&p, "_25._tcp.example.test", PTL_DNS_TLSA);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* More answers claimed than present. */
	header(&p, FLAGS_OK, 3, 0);
	question(&p, "example.test", PTL_DNS_A);
	rr_a(&p, QNAME_OFF, 60, "192.0.2.1");
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);
}

static void
test_bad_headers(void **state)
{
	static struct pkt p;
	struct resolver_answer *a;
	char name[300];
	size_t at;

	/* Not a response (QR clear). */
	header(&p, 0x0100, 0, 0);
	question(&p, "example.test", PTL_DNS_A);
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* Another question than ours: name, then type. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "other.test", PTL_DNS_A);
	rr_a(&p, QNAME_OFF, 60, "192.0.2.1");
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	assert_string_equal(a->result.reason,
	                    "malformed answer: question mismatch");
	resolver_answer_unref(a);
	header(&p, FLAGS_OK, 0, 0);
	question(&p, "example.test", PTL_DNS_AAAA);
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* No question at all. */
	header(&p, FLAGS_OK, 0, 0);
	p.b[5] = 0;
	a = parse(&p, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* A name of more than 255 octets in a record. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_PTR);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	for (int i = 0; i < 5; i++) {
		memset(name, 'a', 60);
		put8(&p, 60);
		put_bytes(&p, name, 60);
	}
	put8(&p, 0);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_PTR);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* Extended label types (0x40, 0x80) are refused. */
	header(&p, FLAGS_OK, 1, 0);
	question(&p, "example.test", PTL_DNS_PTR);
	at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_PTR, 60);
	put8(&p, 0x41);
	put8(&p, 0);
	rr_end(&p, at);
	a = parse(&p, "example.test", PTL_DNS_PTR);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);

	/* Twelve bytes of nothing, and no bytes. */
	memset(p.b, 0, 12);
	a = resolver_parse(p.b, 12, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);
	a = resolver_parse(p.b, 0, "example.test", PTL_DNS_A);
	assert_status(a, PTL_DNS_PERMFAIL);
	resolver_answer_unref(a);
}

/* Random corruption of valid answers: any result, never a crash (ASan). */
static void
test_mutations(void **state)
{
	static struct pkt p, m;
	enum ptl_dns_type types[] = {PTL_DNS_MX, PTL_DNS_TXT, PTL_DNS_A};
	unsigned seed = 12345;
	size_t at;

	for (int t = 0; t < 3; t++) {
		header(&p, FLAGS_OK, 3, 1);
		question(&p, "example.test", types[t]);
		put_mx(&p, 60, 10, "mx1.example.test");
		at = rr_begin(&p, NULL, QNAME_OFF, PTL_DNS_TXT, 60);
		put8(&p, 4);
		put_bytes(&p, "spf1", 4);
		rr_end(&p, at);
		rr_a(&p, QNAME_OFF, 60, "192.0.2.1");
		put_soa(&p, "example.test", 60, 60);
		for (int round = 0; round < 20000; round++) {
			int flips = 1 + (int)(rand_r(&seed) % 4);
			struct resolver_answer *a;

			m = p;
			for (int f = 0; f < flips; f++)
				m.b[rand_r(&seed) % m.len] =
				    (unsigned char)rand_r(&seed);
			if (rand_r(&seed) % 8 == 0)
				m.len = rand_r(&seed) % m.len;
			a = resolver_parse(m.b, m.len, "example.test",
			                   types[t]);
			assert_non_null(a);
			assert_true(a->result.count <= RESOLVER_MAX_RECORDS);
			if (a->result.status != PTL_DNS_OK)
				assert_int_equal(a->result.count, 0);
			resolver_answer_unref(a);
		}
	}
}

static void
test_answer_status(void **state)
{
	struct resolver_answer *a;

	a = resolver_answer_status("x.test", PTL_DNS_MX, PTL_DNS_TEMPFAIL,
	                           "timeout");
	assert_non_null(a);
	assert_int_equal(a->result.status, PTL_DNS_TEMPFAIL);
	assert_string_equal(a->result.name, "x.test");
	assert_string_equal(a->result.reason, "timeout");
	assert_int_equal(a->result.count, 0);
	resolver_answer_ref(a);
	resolver_answer_unref(a);
	resolver_answer_unref(a);
	resolver_answer_unref(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_name_normalize),
	    cmocka_unit_test(test_ptr_name),
	    cmocka_unit_test(test_a_records),
	    cmocka_unit_test(test_aaaa_records),
	    cmocka_unit_test(test_mx_sorted),
	    cmocka_unit_test(test_txt_records),
	    cmocka_unit_test(test_tlsa_records),
	    cmocka_unit_test(test_ptr_unsafe_names),
	    cmocka_unit_test(test_cname_chain),
	    cmocka_unit_test(test_negative_answers),
	    cmocka_unit_test(test_rcodes),
	    cmocka_unit_test(test_over_100_records),
	    cmocka_unit_test(test_truncated_everywhere),
	    cmocka_unit_test(test_pointer_loops),
	    cmocka_unit_test(test_bad_lengths),
	    cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_mutations),
	    cmocka_unit_test(test_answer_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
