/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: DNS responses as the resolver module parses them. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resolver_internal.h"

/*
 * Input: one byte choosing the type asked for, then the response. The
 * name asked for is taken from the response's own question when it is a
 * valid name (so that the fuzzer gets past the question check), else
 * "example.com". Every answer is checked against the promises of
 * resolver.h, then goes through a small cache and back.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum ptl_dns_type fuzz_types[] = {
    PTL_DNS_A, PTL_DNS_AAAA, PTL_DNS_MX, PTL_DNS_TXT, PTL_DNS_PTR, PTL_DNS_TLSA,
};

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* The question's name in text form, labels only (no pointers). */
static void
fuzz_qname(const uint8_t *msg, size_t len, char *out, size_t size)
{
	size_t pos = 12, o = 0;

	out[0] = '\0';
	while (pos < len && msg[pos] != 0 && msg[pos] < 64) {
		size_t n = msg[pos];

		if (pos + 1 + n > len || o + n + 2 > size) {
			out[0] = '\0';
			return;
		}
		if (o > 0)
			out[o++] = '.';
		memcpy(out + o, msg + pos + 1, n);
		o += n;
		pos += 1 + n;
	}
	out[o] = '\0';
}

/* A name the resolver hands out: lower case, letters, digits, '-', '_'. */
static void
fuzz_check_name(const char *name, bool may_be_root)
{
	size_t len = strlen(name), label = 0;

	CHECK(len <= RESOLVER_NAME_MAX);
	CHECK(len > 0 || may_be_root);
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			CHECK(label > 0 && i + 1 < len);
			label = 0;
			continue;
		}
		CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_');
		CHECK(++label <= 63);
	}
}

/* Whether [p, p + n) lies inside the answer's one allocation. */
static bool
fuzz_inside(const struct resolver_answer *a, const void *p, size_t n)
{
	const char *base = (const char *)a, *q = p;

	return q >= base && q <= base + a->size && n <= a->size &&
	       (size_t)(q - base) + n <= a->size;
}

static void
fuzz_check_answer(const struct resolver_answer *a, const char *name,
                  enum ptl_dns_type type)
{
	const struct ptl_dns_result *r = &a->result;

	CHECK(a->refs == 1);
	CHECK(r->type == type);
	CHECK(r->name != NULL && strcmp(r->name, name) == 0);
	CHECK(fuzz_inside(a, r->name, strlen(r->name) + 1));
	switch (r->status) {
	case PTL_DNS_OK:
		CHECK(r->count >= 1 && r->count <= RESOLVER_MAX_RECORDS);
		CHECK(r->reason == NULL);
		break;
	case PTL_DNS_NXDOMAIN:
	case PTL_DNS_NODATA:
		CHECK(r->count == 0 && r->reason == NULL);
		break;
	case PTL_DNS_TEMPFAIL:
	case PTL_DNS_PERMFAIL:
		CHECK(r->count == 0 && r->reason != NULL);
		CHECK(r->canonical == NULL && r->ttl == 0);
		return;
	default:
		abort();
	}
	CHECK(r->ttl <= 0x7fffffffu);
	CHECK(r->canonical != NULL);
	CHECK(fuzz_inside(a, r->canonical, strlen(r->canonical) + 1));
	fuzz_check_name(r->canonical, false);
	if (r->count == 0)
		return;
	CHECK(fuzz_inside(a, r->addrs, 1));
	for (size_t i = 0; i < r->count; i++) {
		switch (type) {
		case PTL_DNS_A:
			CHECK(r->addrs[i].family == AF_INET);
			break;
		case PTL_DNS_AAAA:
			CHECK(r->addrs[i].family == AF_INET6);
			break;
		case PTL_DNS_MX:
			CHECK(fuzz_inside(a, r->mx[i].exchange,
			                  strlen(r->mx[i].exchange) + 1));
			fuzz_check_name(r->mx[i].exchange, true);
			CHECK(i == 0 ||
			      r->mx[i - 1].preference <= r->mx[i].preference);
			break;
		case PTL_DNS_TXT:
			CHECK(
			    fuzz_inside(a, r->txt[i].data, r->txt[i].len + 1));
			CHECK(r->txt[i].data[r->txt[i].len] == '\0');
			break;
		case PTL_DNS_PTR:
			CHECK(fuzz_inside(a, r->ptr[i], strlen(r->ptr[i]) + 1));
			fuzz_check_name(r->ptr[i], false);
			break;
		case PTL_DNS_TLSA:
			CHECK(fuzz_inside(a, r->tlsa[i].data, r->tlsa[i].len));
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct resolver_ttl_policy policy = {60, 3600, 300};
	char qname[RESOLVER_NAME_BUF * 2], name[RESOLVER_NAME_BUF];
	struct resolver_answer *a;
	struct resolver_cache *cache;
	enum ptl_dns_type type;
	const char *why;
	uint32_t ttl, remaining;

	if (size < 1)
		return 0;
	type =
	    fuzz_types[data[0] % (sizeof(fuzz_types) / sizeof(fuzz_types[0]))];
	data++, size--;

	fuzz_qname(data, size, qname, sizeof(qname));
	if (resolver_name_normalize(qname, resolver_name_class_for(type), name,
	                            &why) != PTL_OK) {
		CHECK(why != NULL);
		memcpy(name, "example.com", sizeof("example.com"));
	} else {
		fuzz_check_name(name, false);
	}

	a = resolver_parse(data, size, name, type);
	if (a == NULL)
		return 0; /* out of memory */
	fuzz_check_answer(a, name, type);

	/* The cache keeps what it is given and hands the same back. */
	ttl = resolver_ttl_effective(&policy, a);
	CHECK(ttl <= 3600);
	cache = resolver_cache_new(4, 1u << 20);
	if (cache != NULL) {
		if (resolver_cache_put(cache, a, 1001 + (int64_t)ttl * 1000) ==
		    PTL_OK) {
			CHECK(resolver_cache_get(cache, type, name, 1000,
			                         &remaining) == a);
			CHECK(resolver_cache_count(cache) == 1);
		}
		resolver_cache_free(cache);
	}
	CHECK(a->refs == 1);
	resolver_answer_unref(a);
	return 0;
}
