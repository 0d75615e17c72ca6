/* SPDX-License-Identifier: MIT */
/* Names, and bounds-checked parsing of DNS responses into answers. */

/*
 * c-ares carries the queries; this file reads the responses itself: the
 * typed parsers of c-ares 1.18 drop the TTLs of MX, TXT and PTR records,
 * know no TLSA, and do not expose the AD bit. Everything here treats the
 * response as hostile: every length is checked against the end of the
 * message and of its record, compression pointers may only point
 * backwards past everything already read (so no loop), names stay within
 * 255 octets, and at most RESOLVER_MAX_RECORDS records are kept.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver_internal.h"

#define DNS_HEADER_LEN     12
#define DNS_CLASS_IN       1
#define DNS_TYPE_CNAME     5
#define DNS_TYPE_SOA       6
#define DNS_RCODE_FORMERR  1
#define DNS_RCODE_SERVFAIL 2
#define DNS_RCODE_NXDOMAIN 3
#define DNS_RCODE_NOTIMP   4
#define DNS_RCODE_REFUSED  5
/* Compression pointers a name may follow; each goes further back. */
#define DNS_MAX_POINTERS 64

/* ---- Names given by callers ---------------------------------------- */

static bool
name_char_ok(unsigned char c, enum resolver_name_class cls)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-')
		return true;
	return c == '_' && cls == RESOLVER_NAME_OWNER;
}

int
resolver_name_normalize(const char *name, enum resolver_name_class cls,
                        char *out, const char **why_out)
{
	size_t len, i, label = 0;

	*why_out = NULL;
	if (name == NULL) {
		*why_out = "invalid name: empty";
		return PTL_ERROR;
	}
	len = strlen(name);
	/* One trailing dot marks the name as absolute; it is not stored. */
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0) {
		*why_out = "invalid name: empty";
		return PTL_ERROR;
	}
	if (len > RESOLVER_NAME_MAX) {
		*why_out = "invalid name: longer than 253 characters";
		return PTL_ERROR;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			if (label == 0) {
				*why_out = "invalid name: empty label";
				return PTL_ERROR;
			}
			label = 0;
			out[i] = '.';
			continue;
		}
		if (!name_char_ok(c, cls)) {
			*why_out = "invalid name: bad character";
			return PTL_ERROR;
		}
		if (++label > 63) {
			*why_out = "invalid name: label longer than 63";
			return PTL_ERROR;
		}
		out[i] =
		    (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	if (label == 0) {
		*why_out = "invalid name: empty label";
		return PTL_ERROR;
	}
	out[len] = '\0';
	return PTL_OK;
}

enum resolver_name_class
resolver_name_class_for(enum ptl_dns_type type)
{
	return (type == PTL_DNS_MX || type == PTL_DNS_PTR)
	           ? RESOLVER_NAME_HOST
	           : RESOLVER_NAME_OWNER;
}

int
resolver_ptr_name(const struct sockaddr *addr, char *out)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b;
	char *p = out;
	int i;

	if (addr == NULL)
		return PTL_ERROR;
	if (addr->sa_family == AF_INET) {
		b = (const unsigned char *)&((const struct sockaddr_in *)addr)
		        ->sin_addr;
	} else if (addr->sa_family == AF_INET6) {
		const struct in6_addr *in6 =
		    &((const struct sockaddr_in6 *)addr)->sin6_addr;

		if (!IN6_IS_ADDR_V4MAPPED(in6)) {
			for (i = 15; i >= 0; i--) {
				*p++ = hex[in6->s6_addr[i] & 0xf];
				*p++ = '.';
				*p++ = hex[in6->s6_addr[i] >> 4];
				*p++ = '.';
			}
			memcpy(p, "ip6.arpa", sizeof("ip6.arpa"));
			return PTL_OK;
		}
		b = in6->s6_addr + 12;
	} else {
		return PTL_ERROR;
	}
	(void)snprintf(out, RESOLVER_NAME_BUF, "%u.%u.%u.%u.in-addr.arpa", b[3],
	               b[2], b[1], b[0]);
	return PTL_OK;
}

bool
resolver_type_supported(int type)
{
	switch (type) {
	case PTL_DNS_A:
	case PTL_DNS_AAAA:
	case PTL_DNS_MX:
	case PTL_DNS_TXT:
	case PTL_DNS_PTR:
	case PTL_DNS_TLSA:
		return true;
	default:
		return false;
	}
}

const char *
resolver_type_name(enum ptl_dns_type type)
{
	switch (type) {
	case PTL_DNS_A:
		return "A";
	case PTL_DNS_AAAA:
		return "AAAA";
	case PTL_DNS_MX:
		return "MX";
	case PTL_DNS_TXT:
		return "TXT";
	case PTL_DNS_PTR:
		return "PTR";
	case PTL_DNS_TLSA:
		return "TLSA";
	}
	return "?";
}

const char *
resolver_status_name(enum ptl_dns_status status)
{
	switch (status) {
	case PTL_DNS_OK:
		return "OK";
	case PTL_DNS_NXDOMAIN:
		return "NXDOMAIN";
	case PTL_DNS_NODATA:
		return "NODATA";
	case PTL_DNS_TEMPFAIL:
		return "TEMPFAIL";
	case PTL_DNS_PERMFAIL:
		return "PERMFAIL";
	}
	return "?";
}

/* ---- Reading the wire ----------------------------------------------- */

struct wire {
	const unsigned char *msg;
	size_t len;
};

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/*
 * Decode the name at @off into @out (RESOLVER_NAME_BUF bytes) as lower
 * case text without the trailing dot ("" for the root). *@end_out gets
 * the offset just past the name where it sits (not where pointers led).
 * *@clean_out says whether every label byte is a letter, digit, '-' or
 * '_', so that the text is unambiguous and safe to log or put in a
 * header. Returns PTL_OK, or PTL_ERROR for a malformed name.
 */
static int
wire_name(const struct wire *w, size_t off, char *out, size_t *end_out,
          bool *clean_out)
{
	/* Every pointer must go below the start of all that was read. */
	size_t floor = off, pos = off, wire_len = 0, text = 0;
	unsigned pointers = 0;
	bool jumped = false, clean = true;

	for (;;) {
		unsigned char c;

		if (pos >= w->len)
			return PTL_ERROR;
		c = w->msg[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 1 >= w->len)
				return PTL_ERROR;
			target = ((size_t)(c & 0x3f) << 8) | w->msg[pos + 1];
			if (target >= floor || ++pointers > DNS_MAX_POINTERS)
				return PTL_ERROR;
			if (!jumped)
				*end_out = pos + 2;
			jumped = true;
			floor = target;
			pos = target;
			continue;
		}
		/* 0x40 and 0x80: obsolete extended label types (RFC 6891). */
		if ((c & 0xc0) != 0)
			return PTL_ERROR;
		wire_len += (size_t)c + 1;
		if (wire_len > 255)
			return PTL_ERROR;
		if (c == 0) {
			if (!jumped)
				*end_out = pos + 1;
			break;
		}
		if (pos + 1 + c > w->len)
			return PTL_ERROR;
		if (text > 0)
			out[text++] = '.';
		for (size_t i = 0; i < c; i++) {
			unsigned char b = w->msg[pos + 1 + i];

			if (b >= 'A' && b <= 'Z')
				b = (unsigned char)(b - 'A' + 'a');
			else if (!name_char_ok(b, RESOLVER_NAME_OWNER))
				clean = false;
			/* A NUL or dot inside a label would end or split it
			 * in text: such a name never matches anything. */
			out[text++] = b == '\0' ? '?' : (char)b;
		}
		pos += 1 + c;
	}
	out[text] = '\0';
	*clean_out = clean;
	return PTL_OK;
}

/* One resource record, located in the message. */
struct rr {
	char owner[RESOLVER_NAME_BUF];
	bool owner_clean;
	uint16_t type;
	uint16_t rclass;
	uint32_t ttl;
	size_t rdata; /* offset of the RDATA */
	uint16_t rdlen;
};

/* Read the record at *@off and advance past it. */
static int
wire_rr(const struct wire *w, size_t *off, struct rr *rr)
{
	size_t pos;

	if (wire_name(w, *off, rr->owner, &pos, &rr->owner_clean) != PTL_OK)
		return PTL_ERROR;
	if (pos + 10 > w->len)
		return PTL_ERROR;
	rr->type = get16(w->msg + pos);
	rr->rclass = get16(w->msg + pos + 2);
	rr->ttl = get32(w->msg + pos + 4);
	/* RFC 2181 section 8: a TTL with the top bit set means zero. */
	if (rr->ttl > 0x7fffffffu)
		rr->ttl = 0;
	rr->rdlen = get16(w->msg + pos + 8);
	rr->rdata = pos + 10;
	if (rr->rdata + rr->rdlen > w->len)
		return PTL_ERROR;
	*off = rr->rdata + rr->rdlen;
	return PTL_OK;
}

/* A name that must fill the rest of a record's RDATA exactly. */
static int
rdata_name(const struct wire *w, const struct rr *rr, size_t off, char *out,
           bool *clean_out)
{
	size_t end;

	if (wire_name(w, off, out, &end, clean_out) != PTL_OK)
		return PTL_ERROR;
	return end == rr->rdata + rr->rdlen ? PTL_OK : PTL_ERROR;
}

/* Offsets of the sections, once the whole message was walked. */
struct sections {
	size_t answer, authority;
	uint16_t ancount, nscount;
};

/* ---- Building an answer --------------------------------------------- */

/*
 * The records are collected twice: once to count them and size the
 * allocation, once to copy them into it, with the same code.
 */
struct collect {
	const struct wire *w;
	const struct sections *s;
	enum ptl_dns_type type;
	char canonical[RESOLVER_NAME_BUF];
	uint32_t ttl;
	size_t kept;
	size_t dropped;
	size_t unsafe;
	size_t string_bytes;
	const char *malformed; /* reason, when a record is broken */
	/* Filling: records and strings go here. */
	void *records;
	char *strings;
	size_t strings_used;
};

static char *
collect_string(struct collect *c, const void *data, size_t len)
{
	char *p;

	c->string_bytes += len + 1;
	if (c->strings == NULL)
		return NULL;
	p = c->strings + c->strings_used;
	memcpy(p, data, len);
	p[len] = '\0';
	c->strings_used += len + 1;
	return p;
}

/* TXT: the character-strings must fill the RDATA exactly. */
static int
collect_txt(struct collect *c, const struct rr *rr)
{
	const unsigned char *p = c->w->msg + rr->rdata;
	size_t pos = 0, total = 0;
	struct ptl_dns_txt *t;
	char *out;

	if (rr->rdlen == 0)
		return PTL_ERROR;
	while (pos < rr->rdlen) {
		size_t n = p[pos];

		if (pos + 1 + n > rr->rdlen)
			return PTL_ERROR;
		total += n;
		pos += 1 + n;
	}
	c->string_bytes += total + 1;
	if (c->strings == NULL)
		return PTL_OK;
	out = c->strings + c->strings_used;
	c->strings_used += total + 1;
	t = (struct ptl_dns_txt *)c->records + c->kept;
	t->data = out;
	t->len = total;
	for (pos = 0; pos < rr->rdlen; pos += 1 + (size_t)p[pos]) {
		memcpy(out, p + pos + 1, p[pos]);
		out += p[pos];
	}
	*out = '\0';
	return PTL_OK;
}

/*
 * Take one record of the type asked for. PTL_ERROR: malformed (the whole
 * answer is refused); PTL_DECLINED: unsafe name (the record is dropped).
 */
static int
collect_record(struct collect *c, const struct rr *rr)
{
	const unsigned char *p = c->w->msg + rr->rdata;
	char name[RESOLVER_NAME_BUF];
	bool clean;

	switch (c->type) {
	case PTL_DNS_A:
		if (rr->rdlen != 4)
			return PTL_ERROR;
		if (c->records != NULL) {
			struct ptl_dns_addr *a =
			    (struct ptl_dns_addr *)c->records + c->kept;

			a->family = AF_INET;
			memcpy(&a->in4, p, 4);
		}
		return PTL_OK;
	case PTL_DNS_AAAA:
		if (rr->rdlen != 16)
			return PTL_ERROR;
		if (c->records != NULL) {
			struct ptl_dns_addr *a =
			    (struct ptl_dns_addr *)c->records + c->kept;

			a->family = AF_INET6;
			memcpy(&a->in6, p, 16);
		}
		return PTL_OK;
	case PTL_DNS_MX:
		if (rr->rdlen < 3 ||
		    rdata_name(c->w, rr, rr->rdata + 2, name, &clean) != PTL_OK)
			return PTL_ERROR;
		if (!clean)
			return PTL_DECLINED;
		if (c->records != NULL) {
			struct ptl_dns_mx *mx =
			    (struct ptl_dns_mx *)c->records + c->kept;

			mx->preference = get16(p);
			mx->exchange = collect_string(c, name, strlen(name));
		} else {
			(void)collect_string(c, name, strlen(name));
		}
		return PTL_OK;
	case PTL_DNS_PTR:
		if (rdata_name(c->w, rr, rr->rdata, name, &clean) != PTL_OK)
			return PTL_ERROR;
		if (!clean || name[0] == '\0')
			return PTL_DECLINED;
		if (c->records != NULL)
			((const char **)c->records)[c->kept] =
			    collect_string(c, name, strlen(name));
		else
			(void)collect_string(c, name, strlen(name));
		return PTL_OK;
	case PTL_DNS_TXT:
		return collect_txt(c, rr);
	case PTL_DNS_TLSA:
		if (rr->rdlen < 4)
			return PTL_ERROR;
		if (c->records != NULL) {
			struct ptl_dns_tlsa *t =
			    (struct ptl_dns_tlsa *)c->records + c->kept;

			t->usage = p[0];
			t->selector = p[1];
			t->mtype = p[2];
			t->len = (size_t)rr->rdlen - 3;
			t->data = (const unsigned char *)collect_string(
			    c, p + 3, t->len);
		} else {
			(void)collect_string(c, p + 3, (size_t)rr->rdlen - 3);
		}
		return PTL_OK;
	}
	return PTL_ERROR;
}

static const char *
malformed_reason(enum ptl_dns_type type)
{
	switch (type) {
	case PTL_DNS_A:
		return "malformed answer: bad A record";
	case PTL_DNS_AAAA:
		return "malformed answer: bad AAAA record";
	case PTL_DNS_MX:
		return "malformed answer: bad MX record";
	case PTL_DNS_TXT:
		return "malformed answer: bad TXT record";
	case PTL_DNS_PTR:
		return "malformed answer: bad PTR record";
	case PTL_DNS_TLSA:
		return "malformed answer: bad TLSA record";
	}
	return "malformed answer";
}

/* Walk the answer section for records of the type at the canonical name. */
static int
collect_answers(struct collect *c)
{
	size_t off = c->s->answer;
	struct rr rr;

	c->kept = c->dropped = c->unsafe = 0;
	c->string_bytes = 0;
	for (uint16_t i = 0; i < c->s->ancount; i++) {
		int rc;

		if (wire_rr(c->w, &off, &rr) != PTL_OK)
			return PTL_ERROR; /* walked before: cannot happen */
		if (rr.type != (uint16_t)c->type || rr.rclass != DNS_CLASS_IN ||
		    !rr.owner_clean || strcmp(rr.owner, c->canonical) != 0)
			continue;
		if (c->kept == RESOLVER_MAX_RECORDS) {
			c->dropped++;
			continue;
		}
		rc = collect_record(c, &rr);
		if (rc == PTL_ERROR) {
			c->malformed = malformed_reason(c->type);
			return PTL_ERROR;
		}
		if (rc == PTL_DECLINED) {
			c->unsafe++;
			continue;
		}
		if (rr.ttl < c->ttl)
			c->ttl = rr.ttl;
		c->kept++;
	}
	return PTL_OK;
}

/*
 * Follow CNAMEs from the name asked for (RFC 1034 section 3.6.2): the
 * records that count are the ones at the end of the chain.
 */
static int
follow_cnames(struct collect *c)
{
	char target[RESOLVER_NAME_BUF];
	struct rr rr;
	bool clean;

	for (unsigned hops = 0;; hops++) {
		size_t off = c->s->answer;
		bool found = false;

		for (uint16_t i = 0; i < c->s->ancount && !found; i++) {
			if (wire_rr(c->w, &off, &rr) != PTL_OK)
				return PTL_ERROR;
			if (rr.type != DNS_TYPE_CNAME ||
			    rr.rclass != DNS_CLASS_IN || !rr.owner_clean ||
			    strcmp(rr.owner, c->canonical) != 0)
				continue;
			if (rdata_name(c->w, &rr, rr.rdata, target, &clean) !=
			        PTL_OK ||
			    !clean || target[0] == '\0') {
				c->malformed = "malformed answer: bad CNAME "
				               "record";
				return PTL_ERROR;
			}
			found = true;
		}
		if (!found)
			return PTL_OK;
		if (hops == RESOLVER_MAX_CNAMES) {
			c->malformed = "malformed answer: CNAME chain too long";
			return PTL_ERROR;
		}
		if (rr.ttl < c->ttl)
			c->ttl = rr.ttl;
		memcpy(c->canonical, target, sizeof(target));
	}
}

/* Whether @zone is @name or one of its ancestors. */
static bool
name_within(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);

	if (z == 0)
		return true;
	if (z > n)
		return false;
	if (strcmp(name + n - z, zone) != 0)
		return false;
	return z == n || name[n - z - 1] == '.';
}

/*
 * The negative TTL (RFC 2308 section 5): the smaller of the SOA record's
 * TTL and its MINIMUM field, from an SOA in the authority section for a
 * zone that contains the name. Returns false when there is none.
 */
static bool
negative_ttl(const struct wire *w, const struct sections *s, const char *name,
             uint32_t *ttl_out)
{
	char skip[RESOLVER_NAME_BUF];
	size_t off = s->authority, pos;
	struct rr rr;
	bool clean;

	for (uint16_t i = 0; i < s->nscount; i++) {
		uint32_t minimum;

		if (wire_rr(w, &off, &rr) != PTL_OK)
			return false;
		if (rr.type != DNS_TYPE_SOA || rr.rclass != DNS_CLASS_IN ||
		    !rr.owner_clean || !name_within(name, rr.owner))
			continue;
		/* MNAME and RNAME, then five 32-bit fields to the end. */
		if (wire_name(w, rr.rdata, skip, &pos, &clean) != PTL_OK ||
		    pos > rr.rdata + rr.rdlen ||
		    wire_name(w, pos, skip, &pos, &clean) != PTL_OK ||
		    pos + 20 != rr.rdata + rr.rdlen)
			continue;
		minimum = get32(w->msg + pos + 16);
		if (minimum > 0x7fffffffu)
			minimum = 0;
		*ttl_out = minimum < rr.ttl ? minimum : rr.ttl;
		return true;
	}
	return false;
}

static size_t
align_up(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static size_t
record_size(enum ptl_dns_type type)
{
	switch (type) {
	case PTL_DNS_A:
	case PTL_DNS_AAAA:
		return sizeof(struct ptl_dns_addr);
	case PTL_DNS_MX:
		return sizeof(struct ptl_dns_mx);
	case PTL_DNS_TXT:
		return sizeof(struct ptl_dns_txt);
	case PTL_DNS_PTR:
		return sizeof(const char *);
	case PTL_DNS_TLSA:
		return sizeof(struct ptl_dns_tlsa);
	}
	return 0;
}

/*
 * One allocation: the answer, the records, then the strings (name,
 * canonical name, reason, record data).
 */
static struct resolver_answer *
answer_alloc(size_t nrecords, enum ptl_dns_type type, size_t string_bytes,
             void **records_out, char **strings_out)
{
	size_t head = align_up(sizeof(struct resolver_answer));
	size_t recs = align_up(nrecords * record_size(type));
	size_t size = head + recs + string_bytes;
	struct resolver_answer *a;

	a = calloc(1, size);
	if (a == NULL)
		return NULL;
	a->refs = 1;
	a->size = size;
	a->result.type = type;
	*records_out = nrecords > 0 ? (char *)a + head : NULL;
	*strings_out = (char *)a + head + recs;
	return a;
}

struct resolver_answer *
resolver_answer_status(const char *name, enum ptl_dns_type type,
                       enum ptl_dns_status status, const char *reason)
{
	size_t name_len = strlen(name);
	size_t reason_len = reason != NULL ? strlen(reason) : 0;
	struct resolver_answer *a;
	void *records;
	char *strings;

	a = answer_alloc(0, type, name_len + 1 + reason_len + 1, &records,
	                 &strings);
	if (a == NULL)
		return NULL;
	a->result.status = status;
	memcpy(strings, name, name_len + 1);
	a->result.name = strings;
	if (reason != NULL) {
		memcpy(strings + name_len + 1, reason, reason_len + 1);
		a->result.reason = strings + name_len + 1;
	}
	return a;
}

void
resolver_answer_ref(struct resolver_answer *a)
{
	a->refs++;
}

void
resolver_answer_unref(struct resolver_answer *a)
{
	if (a != NULL && --a->refs == 0)
		free(a);
}

/* RFC 5321 section 5.1: lowest preference first; equals keep order. */
static void
sort_mx(struct ptl_dns_mx *mx, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct ptl_dns_mx item = mx[i];
		size_t j = i;

		while (j > 0 && mx[j - 1].preference > item.preference) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = item;
	}
}

static const char *
rcode_reason(unsigned rcode)
{
	switch (rcode) {
	case DNS_RCODE_FORMERR:
		return "FORMERR";
	case DNS_RCODE_SERVFAIL:
		return "SERVFAIL";
	case DNS_RCODE_NOTIMP:
		return "NOTIMP";
	case DNS_RCODE_REFUSED:
		return "REFUSED";
	default:
		return "unexpected rcode";
	}
}

/*
 * Check the header and question, and walk every record of the answer and
 * authority sections once so that later passes may trust the offsets.
 * The additional section is never used, so it is not read.
 */
static const char *
check_message(const struct wire *w, const char *name, enum ptl_dns_type type,
              struct sections *s)
{
	char qname[RESOLVER_NAME_BUF];
	size_t off;
	struct rr rr;
	bool clean;

	if (w->len < DNS_HEADER_LEN)
		return "malformed answer: short header";
	/* QR must say response, OPCODE must be QUERY. */
	if (!(w->msg[2] & 0x80) || (w->msg[2] & 0x78) != 0)
		return "malformed answer: not a query response";
	if (get16(w->msg + 4) != 1)
		return "malformed answer: not one question";
	if (wire_name(w, DNS_HEADER_LEN, qname, &off, &clean) != PTL_OK ||
	    off + 4 > w->len)
		return "malformed answer: bad question";
	if (!clean || strcmp(qname, name) != 0 ||
	    get16(w->msg + off) != (uint16_t)type ||
	    get16(w->msg + off + 2) != DNS_CLASS_IN)
		return "malformed answer: question mismatch";
	off += 4;
	s->ancount = get16(w->msg + 6);
	s->nscount = get16(w->msg + 8);
	s->answer = off;
	for (uint16_t i = 0; i < s->ancount; i++) {
		if (wire_rr(w, &off, &rr) != PTL_OK)
			return "malformed answer: bad answer section";
	}
	s->authority = off;
	for (uint16_t i = 0; i < s->nscount; i++) {
		if (wire_rr(w, &off, &rr) != PTL_OK)
			return "malformed answer: bad authority section";
	}
	return NULL;
}

struct resolver_answer *
resolver_parse(const unsigned char *msg, size_t len, const char *name,
               enum ptl_dns_type type)
{
	struct wire w = {msg, len};
	struct sections s;
	struct collect c;
	struct resolver_answer *a;
	enum ptl_dns_status status;
	const char *why;
	size_t name_len, canon_len;
	unsigned rcode;
	uint32_t neg;
	bool secure, has_neg = false;

	why = check_message(&w, name, type, &s);
	if (why != NULL)
		return resolver_answer_status(name, type, PTL_DNS_PERMFAIL,
		                              why);
	rcode = msg[3] & 0x0f;
	if (rcode != 0 && rcode != DNS_RCODE_NXDOMAIN)
		return resolver_answer_status(name, type, PTL_DNS_TEMPFAIL,
		                              rcode_reason(rcode));
	/* c-ares retries over TCP on TC; one still truncated is unusable. */
	if (msg[2] & 0x02)
		return resolver_answer_status(name, type, PTL_DNS_TEMPFAIL,
		                              "truncated answer");
	secure = (msg[3] & 0x20) != 0;

	memset(&c, 0, sizeof(c));
	c.w = &w;
	c.s = &s;
	c.type = type;
	c.ttl = UINT32_MAX;
	memcpy(c.canonical, name, strlen(name) + 1);
	if (follow_cnames(&c) != PTL_OK ||
	    (rcode == 0 && collect_answers(&c) != PTL_OK))
		return resolver_answer_status(name, type, PTL_DNS_PERMFAIL,
		                              c.malformed);

	if (rcode == DNS_RCODE_NXDOMAIN) {
		status = PTL_DNS_NXDOMAIN;
		c.kept = 0;
	} else if (c.kept > 0) {
		status = PTL_DNS_OK;
	} else if (c.unsafe > 0) {
		return resolver_answer_status(
		    name, type, PTL_DNS_PERMFAIL,
		    "malformed answer: no record with a usable name");
	} else {
		status = PTL_DNS_NODATA;
	}
	if (status != PTL_DNS_OK) {
		has_neg = negative_ttl(&w, &s, c.canonical, &neg);
		if (has_neg && neg < c.ttl)
			c.ttl = neg;
	}
	if (c.ttl == UINT32_MAX)
		c.ttl = 0;

	name_len = strlen(name);
	canon_len = strlen(c.canonical);
	a = answer_alloc(c.kept, type,
	                 c.string_bytes + name_len + 1 + canon_len + 1,
	                 &c.records, &c.strings);
	if (a == NULL)
		return NULL;
	if (c.kept > 0) {
		/* Same walk, now copying: it finds the same records. */
		size_t counted = c.kept;

		c.strings_used = 0;
		if (collect_answers(&c) != PTL_OK || c.kept != counted) {
			resolver_answer_unref(a);
			return resolver_answer_status(
			    name, type, PTL_DNS_PERMFAIL, "malformed answer");
		}
	}
	a->result.status = status;
	a->result.name = collect_string(&c, name, name_len);
	a->result.canonical = collect_string(&c, c.canonical, canon_len);
	a->result.secure = secure;
	a->result.ttl = c.ttl;
	a->result.count = c.kept;
	a->result.addrs = c.records;
	a->has_negative_ttl = has_neg;
	a->dropped = c.dropped;
	if (type == PTL_DNS_MX && c.kept > 1)
		sort_mx(c.records, c.kept);
	return a;
}
