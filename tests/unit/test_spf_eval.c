/* SPDX-License-Identifier: MIT */
/* The SPF evaluator against a fake resolver: RFC 7208 test-suite cases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "spf.h"

/*
 * The zones and cases below follow the sections of the SPF council's
 * RFC 7208 test suite (as shipped with pyspf), written down again here
 * as C data. The fake resolver answers from a zone table, one question
 * at a time, always from the test's loop (never inside lookup()), like
 * the real one. Names in answers come back lower case without the
 * trailing dot, as the resolver service documents.
 */

/* ---- zones -------------------------------------------------------------*/

enum {
	Z_TIMEOUT = 1000, /* every question about the name times out */
	Z_OTHER = 1001,   /* the name exists with some other type */
	Z_INVALID = 1002, /* the resolver refuses the name */
	Z_MALFORMED = 1003,
};

struct zrec {
	const char *name;
	int type;
	const char *value; /* MX: "PREF host" */
	size_t len;        /* TXT with NUL bytes: the length */
};

#define TXT(n, v)                                                              \
	{                                                                      \
		n, PTL_DNS_TXT, v, 0                                           \
	}
#define TXTN(n, v)                                                             \
	{                                                                      \
		n, PTL_DNS_TXT, v, sizeof(v) - 1                               \
	}
#define A(n, v)                                                                \
	{                                                                      \
		n, PTL_DNS_A, v, 0                                             \
	}
#define AAAA(n, v)                                                             \
	{                                                                      \
		n, PTL_DNS_AAAA, v, 0                                          \
	}
#define MX(n, v)                                                               \
	{                                                                      \
		n, PTL_DNS_MX, v, 0                                            \
	}
#define PTR(n, v)                                                              \
	{                                                                      \
		n, PTL_DNS_PTR, v, 0                                           \
	}
#define TIMEOUT(n)                                                             \
	{                                                                      \
		n, Z_TIMEOUT, NULL, 0                                          \
	}
#define OTHER(n)                                                               \
	{                                                                      \
		n, Z_OTHER, NULL, 0                                            \
	}
#define ZEND                                                                   \
	{                                                                      \
		NULL, 0, NULL, 0                                               \
	}

/* ---- the fake resolver ------------------------------------------------ */

struct ptl_dns_query {
	struct ptl_dns_query *next;
	char name[600];
	int type;
	ptl_dns_fn done;
	void *arg;
};

static const struct zrec *zone;
static struct ptl_dns_query *queue;
static unsigned nqueries, ncancelled, max_pending;
static bool refuse_lookups;

static void
name_norm(const char *in, char *out, size_t size)
{
	size_t n = strlen(in), i;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n >= size)
		n = size - 1;
	for (i = 0; i < n; i++)
		out[i] =
		    (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
	out[n] = '\0';
}

static bool
name_eq(const char *a, const char *b)
{
	char x[600], y[600];

	name_norm(a, x, sizeof(x));
	name_norm(b, y, sizeof(y));
	return strcmp(x, y) == 0;
}

static int
fake_lookup(void *inst, const char *name, enum ptl_dns_type type,
            ptl_dns_fn done, void *arg, struct ptl_dns_query **query_out)
{
	struct ptl_dns_query *q, **tail;
	unsigned pending = 0;

	(void)inst;
	if (refuse_lookups)
		return PTL_ERROR;
	q = calloc(1, sizeof(*q));
	assert_non_null(q);
	(void)snprintf(q->name, sizeof(q->name), "%s", name);
	q->type = (int)type;
	q->done = done;
	q->arg = arg;
	for (tail = &queue; *tail != NULL; tail = &(*tail)->next)
		pending++;
	*tail = q;
	if (++pending > max_pending)
		max_pending = pending;
	nqueries++;
	if (query_out != NULL)
		*query_out = q;
	return PTL_AGAIN;
}

static int
fake_lookup_ptr(void *inst, const struct sockaddr *sa, ptl_dns_fn done,
                void *arg, struct ptl_dns_query **query_out)
{
	static const char hex[] = "0123456789abcdef";
	char name[128];
	size_t n = 0;
	int i;

	if (sa->sa_family == AF_INET) {
		const uint8_t *b =
		    (const uint8_t *)&((const struct sockaddr_in *)sa)
		        ->sin_addr;

		(void)snprintf(name, sizeof(name), "%u.%u.%u.%u.in-addr.arpa",
		               b[3], b[2], b[1], b[0]);
	} else {
		const uint8_t *b =
		    ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		for (i = 15; i >= 0; i--) {
			name[n++] = hex[b[i] & 15];
			name[n++] = '.';
			name[n++] = hex[b[i] >> 4];
			name[n++] = '.';
		}
		(void)strcpy(name + n, "ip6.arpa");
	}
	return fake_lookup(inst, name, PTL_DNS_PTR, done, arg, query_out);
}

static void
fake_cancel(void *inst, struct ptl_dns_query *query)
{
	struct ptl_dns_query **p;

	(void)inst;
	for (p = &queue; *p != NULL; p = &(*p)->next) {
		if (*p == query) {
			*p = query->next;
			free(query);
			ncancelled++;
			return;
		}
	}
	fail_msg("cancel of a query that is not pending");
}

static const struct ptl_resolver_methods fake_methods = {
    .version = 1,
    .lookup = fake_lookup,
    .lookup_ptr = fake_lookup_ptr,
    .cancel = fake_cancel,
};

/* Answer the first pending question from the zone. */
static void
fake_answer_one(void)
{
	static struct ptl_dns_addr addrs[64];
	static struct ptl_dns_mx mx[64];
	static struct ptl_dns_txt txt[64];
	static const char *ptr[64];
	static char names[64][300];
	struct ptl_dns_query *q = queue;
	struct ptl_dns_result res;
	bool exists = false;
	size_t n = 0;
	const struct zrec *z;
	char qname[600];

	queue = q->next;
	memset(&res, 0, sizeof(res));
	name_norm(q->name, qname, sizeof(qname));
	res.type = (enum ptl_dns_type)q->type;
	res.name = qname;
	res.canonical = qname;
	for (z = zone; z->name != NULL; z++) {
		if (!name_eq(z->name, q->name))
			continue;
		exists = true;
		if (z->type == Z_TIMEOUT) {
			res.status = PTL_DNS_TEMPFAIL;
			res.reason = "timeout";
			goto deliver;
		}
		if (z->type == Z_INVALID) {
			res.status = PTL_DNS_PERMFAIL;
			res.reason = "invalid name: bad character";
			goto deliver;
		}
		if (z->type == Z_MALFORMED) {
			res.status = PTL_DNS_PERMFAIL;
			res.reason = "malformed answer: short record";
			goto deliver;
		}
		if (z->type != q->type || n == 64)
			continue;
		switch (z->type) {
		case PTL_DNS_A:
			addrs[n].family = AF_INET;
			assert_int_equal(
			    inet_pton(AF_INET, z->value, &addrs[n].in4), 1);
			break;
		case PTL_DNS_AAAA:
			addrs[n].family = AF_INET6;
			assert_int_equal(
			    inet_pton(AF_INET6, z->value, &addrs[n].in6), 1);
			break;
		case PTL_DNS_MX:
			mx[n].preference =
			    (uint16_t)strtoul(z->value, NULL, 10);
			name_norm(strchr(z->value, ' ') + 1, names[n],
			          sizeof(names[n]));
			mx[n].exchange = names[n];
			break;
		case PTL_DNS_TXT:
			txt[n].data = z->value;
			txt[n].len = z->len > 0 ? z->len : strlen(z->value);
			break;
		case PTL_DNS_PTR:
			name_norm(z->value, names[n], sizeof(names[n]));
			ptr[n] = names[n];
			break;
		}
		n++;
	}
	if (n > 0) {
		res.status = PTL_DNS_OK;
		res.count = n;
		res.ttl = 300;
		switch (q->type) {
		case PTL_DNS_A:
		case PTL_DNS_AAAA:
			res.addrs = addrs;
			break;
		case PTL_DNS_MX:
			res.mx = mx;
			break;
		case PTL_DNS_TXT:
			res.txt = txt;
			break;
		default:
			res.ptr = ptr;
			break;
		}
	} else {
		res.status = exists ? PTL_DNS_NODATA : PTL_DNS_NXDOMAIN;
	}
deliver:
	q->done(&res, q->arg);
	free(q);
}

/* ---- running an evaluation -------------------------------------------- */

static unsigned ndone;

static void
on_done(struct spf_eval *ev, void *arg)
{
	assert_ptr_equal(arg, &ndone);
	(void)ev;
	ndone++;
}

static struct spf_limits limits = {10, 2, true};

static void
run(const struct zrec *z, const char *helo, const char *ip,
    const char *mailfrom, bool helo_identity, struct spf_outcome *out)
{
	struct spf_request req = {
	    .ip = ip,
	    .sender = mailfrom,
	    .helo = helo,
	    .receiver = "receiver.example",
	    .now = 1700000000,
	    .helo_identity = helo_identity,
	};
	struct spf_eval *ev;
	int rc;

	zone = z;
	ndone = 0;
	nqueries = 0;
	max_pending = 0;
	ev = spf_eval_new(&fake_methods, NULL, &limits, &req);
	assert_non_null(ev);
	rc = spf_eval_start(ev, on_done, &ndone);
	assert_true(rc == PTL_DONE || rc == PTL_AGAIN);
	assert_int_equal(ndone, 0); /* never from inside start */
	if (rc == PTL_AGAIN) {
		while (queue != NULL) {
			assert_int_equal(ndone, 0);
			fake_answer_one();
		}
		assert_int_equal(ndone, 1);
	}
	assert_null(queue);
	assert_true(max_pending <= 1);
	*out = *spf_eval_outcome(ev);
	spf_eval_free(ev);
}

/* A case: result (or either of two), and the explanation when given. */
struct tcase {
	const char *name;
	const char *helo;
	const char *ip;
	const char *mailfrom;
	enum spf_result result;
	int also;                /* another acceptable result, or -1 */
	const char *explanation; /* NULL: not checked; "": none */
};

#define ANY -1

static void
run_cases(const struct zrec *z, const struct tcase *cases, size_t n)
{
	struct spf_outcome out;
	size_t i;

	for (i = 0; i < n; i++) {
		const struct tcase *c = &cases[i];

		run(z, c->helo, c->ip, c->mailfrom, false, &out);
		if (out.result != c->result && (int)out.result != c->also)
			fail_msg("%s: expected %s, got %s (%s; mechanism "
			         "\"%s\")",
			         c->name, spf_result_name(c->result),
			         spf_result_name(out.result), out.problem,
			         out.mechanism);
		if ((out.result == SPF_PERMERROR ||
		     out.result == SPF_TEMPERROR) &&
		    out.problem[0] == '\0' && (int)out.result != c->also)
			fail_msg("%s: %s without a problem", c->name,
			         spf_result_name(out.result));
		if (c->explanation != NULL &&
		    strcmp(out.explanation, c->explanation) != 0)
			fail_msg("%s: explanation \"%s\", expected \"%s\"",
			         c->name, out.explanation, c->explanation);
	}
}

#define RUN(z, cases) run_cases(z, cases, sizeof(cases) / sizeof(cases[0]))

/* ---- initial processing (sections 3.1, 4.3) ---------------------------- */

static const struct zrec zone_initial[] = {
    TIMEOUT("example.com"),
    TXT("example.net", "v=spf1 -all exp=exp.example.net"),
    TXT("a.example.net", "v=spf1 -all exp=exp.example.net"),
    TXT("exp.example.net", "%{l}"),
    TXT("a12345678901234567890123456789012345678901234567890123456789012."
        "example.com",
        "v=spf1 -all"),
    TXT("hosed.example.com", "v=spf1 a:\xEF\xBB\xBFgarbage.example.net -all"),
    TXT("hosed2.example.com", "v=spf1 \x80"
                              "a:example.net -all"),
    TXT("hosed3.example.com", "v=spf1 a:example.net \x96"
                              "all"),
    TXT("nothosed.example.com", "v=spf1 a:example.net -all"),
    TXT("nothosed.example.com", "\x96"),
    TXT("ctrl.example.com", "v=spf1 a:ctrl.example.com\rptr -all"),
    A("ctrl.example.com", "192.0.2.3"),
    TXT("fine.example.com", "v=spf1 a  -all"),
    ZEND,
};

static void
test_initial(void **state)
{
	static const struct tcase cases[] = {
	    {"toolonglabel", "mail.example.net", "1.2.3.5",
	     "lyme.eater@A123456789012345678901234567890123456789012345678901"
	     "234567890123.example.com",
	     SPF_NONE, ANY, NULL},
	    {"longlabel", "mail.example.net", "1.2.3.5",
	     "lyme.eater@A12345678901234567890123456789012345678901234567890"
	     "123456789012.example.com",
	     SPF_FAIL, ANY, NULL},
	    {"emptylabel", "mail.example.net", "1.2.3.5",
	     "lyme.eater@A...example.com", SPF_NONE, ANY, NULL},
	    {"helo-not-fqdn", "A2345678", "1.2.3.5", "", SPF_NONE, ANY, NULL},
	    {"helo-domain-literal", "[1.2.3.5]", "1.2.3.5", "", SPF_NONE, ANY,
	     NULL},
	    {"nolocalpart", "mail.example.net", "1.2.3.4", "@example.net",
	     SPF_FAIL, ANY, "postmaster"},
	    {"domain-literal", "OEMCOMPUTER", "1.2.3.5", "foo@[1.2.3.5]",
	     SPF_NONE, ANY, NULL},
	    {"non-ascii-policy", "hosed", "1.2.3.4", "foobar@hosed.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"non-ascii-mech", "hosed", "1.2.3.4", "foobar@hosed2.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"non-ascii-result", "hosed", "1.2.3.4",
	     "foobar@hosed3.example.com", SPF_PERMERROR, ANY, NULL},
	    {"non-ascii-non-spf", "hosed", "1.2.3.4",
	     "foobar@nothosed.example.com", SPF_FAIL, ANY, ""},
	    {"control-char-policy", "hosed", "192.0.2.3",
	     "foobar@ctrl.example.com", SPF_PERMERROR, ANY, NULL},
	    {"two-spaces", "hosed", "1.2.3.4", "actually@fine.example.com",
	     SPF_FAIL, ANY, NULL},
	    {"timeout", "hosed", "1.2.3.4", "x@example.com", SPF_TEMPERROR, ANY,
	     NULL},
	};

	(void)state;
	RUN(zone_initial, cases);
}

/* ---- record lookup and selection (sections 4.4, 4.5) ------------------- */

static const struct zrec zone_select[] = {
    TXT("both.example.net", "v=spf1 -all"),
    TXT("txtonly.example.net", "v=spf1 -all"),
    OTHER("spfonly.example.net"),
    TIMEOUT("txttimeout.example.net"),
    TXT("example3.com", "v=spf10"),
    TXT("example3.com", "v=spf1 mx"),
    MX("example3.com", "0 mail.example1.com"),
    TXT("example1.com", "v=spf1"),
    TXT("example2.com", "v=spf1"
                        "mx"), /* two strings, joined */
    A("mail.example1.com", "1.2.3.4"),
    TXT("example4.com", "v=spf1 -all"),
    TXT("example5.com", "v=spf1 -all"),
    TXT("example5.com", "v=spf1 +all"),
    TXT("example6.com", "v=spf1 -all"),
    TXT("example6.com", "V=sPf1 +all"),
    TXT("example7.com", "v=spf1 -all"),
    TXT("example7.com", "v=spf1 -all"),
    TXT("example8.com", "v=spf1 +all"),
    TXT("example8.com", "spf2.0/pra +all"),
    TXT("example9.com", "v=SpF1 ~all"),
    ZEND,
};

static void
test_selection(void **state)
{
	static const struct tcase cases[] = {
	    {"both", "mail.example.net", "1.2.3.4", "foo@both.example.net",
	     SPF_FAIL, ANY, NULL},
	    {"txtonly", "mail.example.net", "1.2.3.4",
	     "foo@txtonly.example.net", SPF_FAIL, ANY, NULL},
	    {"spfonly", "mail.example.net", "1.2.3.4",
	     "foo@spfonly.example.net", SPF_NONE, ANY, NULL},
	    {"txttimeout", "mail.example.net", "1.2.3.4",
	     "foo@txttimeout.example.net", SPF_TEMPERROR, ANY, NULL},
	    {"nospace1", "mail.example1.com", "1.2.3.4", "foo@example2.com",
	     SPF_NONE, ANY, NULL},
	    {"empty", "mail1.example1.com", "1.2.3.4", "foo@example1.com",
	     SPF_NEUTRAL, ANY, NULL},
	    {"nospace2", "mail.example1.com", "1.2.3.4", "foo@example3.com",
	     SPF_PASS, ANY, NULL},
	    {"spfoverride", "mail.example1.com", "1.2.3.4", "foo@example4.com",
	     SPF_FAIL, ANY, NULL},
	    {"multitxt1", "mail.example1.com", "1.2.3.4", "foo@example5.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"multitxt2", "mail.example1.com", "1.2.3.4", "foo@example6.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"multispf1", "mail.example1.com", "1.2.3.4", "foo@example7.com",
	     SPF_PERMERROR, SPF_FAIL, NULL},
	    {"multispf2", "mail.example1.com", "1.2.3.4", "foo@example8.com",
	     SPF_PASS, ANY, NULL},
	    {"nospf", "mail.example1.com", "1.2.3.4", "foo@mail.example1.com",
	     SPF_NONE, ANY, NULL},
	    {"case-insensitive", "mail.example1.com", "1.2.3.4",
	     "foo@example9.com", SPF_SOFTFAIL, ANY, NULL},
	    {"nxdomain", "mail.example1.com", "1.2.3.4", "foo@nowhere.example",
	     SPF_NONE, ANY, NULL},
	};

	(void)state;
	RUN(zone_select, cases);
}

/* ---- record evaluation (section 4.6) ------------------------------------*/

static const struct zrec zone_eval[] = {
    A("mail.example.com", "1.2.3.4"),
    TXT("t1.example.com", "v=spf1 ip4:1.2.3.4 -all moo"),
    TXT("t2.example.com", "v=spf1 moo.cow-far_out=man:dog/cat ip4:1.2.3.4 "
                          "-all"),
    TXT("t3.example.com", "v=spf1 moo.cow/far_out=man:dog/cat ip4:1.2.3.4 "
                          "-all"),
    TXT("t4.example.com", "v=spf1 moo.cow:far_out=man:dog/cat ip4:1.2.3.4 "
                          "-all"),
    TXT("t5.example.com", "v=spf1 redirect=t5.example.com ~all"),
    TXT("t6.example.com", "v=spf1 ip4:1.2.3.4 redirect=t2.example.com"),
    TXT("t7.example.com", "v=spf1 ip4:1.2.3.4"),
    TXT("t8.example.com", "v=spf1 ip4:1.2.3.4 redirect:t2.example.com"),
    TXT("t9.example.com", "v=spf1 a:foo-bar -all"),
    TXT("t10.example.com", "v=spf1 a:mail.example...com -all"),
    TXT("t11.example.com", "v=spf1 a:a1234567890123456789012345678901234567"
                           "8901234567890123456789012345.example.com -all"),
    TXT("t12.example.com", "v=spf1 a:%{H}.bar -all"),
    ZEND,
};

static void
test_evaluation(void **state)
{
	static const struct tcase cases[] = {
	    {"detect-errors-anywhere", "mail.example.com", "1.2.3.4",
	     "foo@t1.example.com", SPF_PERMERROR, ANY, NULL},
	    {"modifier-charset-good", "mail.example.com", "1.2.3.4",
	     "foo@t2.example.com", SPF_PASS, ANY, NULL},
	    {"modifier-charset-bad1", "mail.example.com", "1.2.3.4",
	     "foo@t3.example.com", SPF_PERMERROR, ANY, NULL},
	    {"modifier-charset-bad2", "mail.example.com", "1.2.3.4",
	     "foo@t4.example.com", SPF_PERMERROR, ANY, NULL},
	    {"redirect-after-mechanisms1", "mail.example.com", "1.2.3.4",
	     "foo@t5.example.com", SPF_SOFTFAIL, ANY, NULL},
	    {"redirect-after-mechanisms2", "mail.example.com", "1.2.3.5",
	     "foo@t6.example.com", SPF_FAIL, ANY, NULL},
	    {"default-result", "mail.example.com", "1.2.3.5",
	     "foo@t7.example.com", SPF_NEUTRAL, ANY, NULL},
	    {"redirect-is-modifier", "mail.example.com", "1.2.3.4",
	     "foo@t8.example.com", SPF_PERMERROR, ANY, NULL},
	    {"invalid-domain", "mail.example.com", "1.2.3.4",
	     "foo@t9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"invalid-domain-empty-label", "mail.example.com", "1.2.3.4",
	     "foo@t10.example.com", SPF_FAIL, SPF_PERMERROR, NULL},
	    {"invalid-domain-long", "mail.example.com", "1.2.3.4",
	     "foo@t11.example.com", SPF_FAIL, SPF_PERMERROR, NULL},
	    {"invalid-domain-long-via-macro", "%%%%%%%%%%%%%%%%%%%%%%",
	     "1.2.3.4", "foo@t12.example.com", SPF_FAIL, SPF_PERMERROR, NULL},
	};

	(void)state;
	RUN(zone_eval, cases);
}

/* ---- all, ptr ------------------------------------------------------------*/

static const struct zrec zone_all_ptr[] = {
    A("mail.example.com", "1.2.3.4"),
    AAAA("mail.example.com", "2001:db8::1"),
    TXT("a1.example.com", "v=spf1 -all."),
    TXT("a2.example.com", "v=spf1 -all:foobar"),
    TXT("a3.example.com", "v=spf1 -all/8"),
    TXT("a4.example.com", "v=spf1 ?all"),
    TXT("a5.example.com", "v=spf1 all -all"),
    TXT("e1.example.com", "v=spf1 ptr/0 -all"),
    TXT("e2.example.com", "v=spf1 ptr:example.com -all"),
    PTR("4.3.2.1.in-addr.arpa", "e3.example.com"),
    PTR("4.3.2.1.in-addr.arpa", "e4.example.com"),
    PTR("4.3.2.1.in-addr.arpa", "mail.example.com"),
    PTR("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C."
        "ip6.arpa",
        "e3.example.com"),
    PTR("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.D.0.1.0.0.2."
        "ip6.arpa",
        "mail.Example.com"),
    TXT("e3.example.com", "v=spf1 ptr -all"),
    A("e3.example.com", "1.2.3.4"),
    AAAA("e3.example.com", "CAFE:BABE::1"),
    TXT("e4.example.com", "v=spf1 ptr -all"),
    TXT("e5.example.com", "v=spf1 ptr:"),
    TXT("e6.example.com", "v=spf1 ptr:example.Com -all"),
    TXT("e7.example.com", "v=spf1 ptr -all"), /* no PTR for 5.6.7.8 */
    ZEND,
};

static void
test_all_ptr(void **state)
{
	static const struct tcase cases[] = {
	    {"all-dot", "mail.example.com", "1.2.3.4", "foo@a1.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"all-arg", "mail.example.com", "1.2.3.4", "foo@a2.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"all-cidr", "mail.example.com", "1.2.3.4", "foo@a3.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"all-neutral", "mail.example.com", "1.2.3.4", "foo@a4.example.com",
	     SPF_NEUTRAL, ANY, NULL},
	    {"all-double", "mail.example.com", "1.2.3.4", "foo@a5.example.com",
	     SPF_PASS, ANY, NULL},
	    {"ptr-cidr", "mail.example.com", "1.2.3.4", "foo@e1.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"ptr-match-target", "mail.example.com", "1.2.3.4",
	     "foo@e2.example.com", SPF_PASS, ANY, NULL},
	    {"ptr-match-implicit", "mail.example.com", "1.2.3.4",
	     "foo@e3.example.com", SPF_PASS, ANY, NULL},
	    {"ptr-nomatch-invalid", "mail.example.com", "1.2.3.4",
	     "foo@e4.example.com", SPF_FAIL, ANY, NULL},
	    {"ptr-match-ip6", "mail.example.com", "CAFE:BABE::1",
	     "foo@e3.example.com", SPF_PASS, ANY, NULL},
	    {"ptr-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@e5.example.com", SPF_PERMERROR, ANY, NULL},
	    {"ptr-case-change", "mail.example.com", "2001:db8::1",
	     "bar@e6.example.com", SPF_PASS, ANY, NULL},
	    {"ptr-no-ptr", "mail.example.com", "5.6.7.8", "bar@e7.example.com",
	     SPF_FAIL, ANY, NULL},
	};

	(void)state;
	RUN(zone_all_ptr, cases);
}

/* ---- a (section 5.3) ------------------------------------------------------*/

static const struct zrec zone_a[] = {
    A("mail.example.com", "1.2.3.4"),
    TXT("e1.example.com", "v=spf1 a/0 -all"),
    A("e2.example.com", "1.1.1.1"),
    AAAA("e2.example.com", "1234::2"),
    TXT("e2.example.com", "v=spf1 a/0 -all"),
    AAAA("e2a.example.com", "1234::1"),
    TXT("e2a.example.com", "v=spf1 a//0 -all"),
    A("e2b.example.com", "1.1.1.1"),
    TXT("e2b.example.com", "v=spf1 a//0 -all"),
    AAAA("ipv6.example.com", "1234::1"),
    A("ipv6.example.com", "1.1.1.1"),
    TXT("ipv6.example.com", "v=spf1 a -all"),
    TXTN("e3.example.com", "v=spf1 a:foo.example.com\0"),
    TXT("e4.example.com", "v=spf1 a:111.222.33.44"),
    TXT("e5.example.com", "v=spf1 a:abc.123"),
    TXT("e5a.example.com", "v=spf1 a:museum"),
    TXT("e5b.example.com", "v=spf1 a:museum."),
    TXT("e6.example.com", "v=spf1 a//33 -all"),
    TXT("e6a.example.com", "v=spf1 a/33 -all"),
    TXT("e7.example.com", "v=spf1 a//129 -all"),
    A("e8.example.com", "1.2.3.5"),
    AAAA("e8.example.com", "2001:db8:1234::dead:beef"),
    TXT("e8.example.com", "v=spf1 a/24//64 -all"),
    A("e8e.example.com", "1.2.3.5"),
    AAAA("e8e.example.com", "2001:db8:1234::dead:beef"),
    TXT("e8e.example.com", "v=spf1 a/24/64 -all"),
    A("e8a.example.com", "1.2.3.5"),
    AAAA("e8a.example.com", "2001:db8:1234::dead:beef"),
    TXT("e8a.example.com", "v=spf1 a/24 -all"),
    A("e8b.example.com", "1.2.3.5"),
    AAAA("e8b.example.com", "2001:db8:1234::dead:beef"),
    TXT("e8b.example.com", "v=spf1 a//64 -all"),
    TXT("e9.example.com", "v=spf1 a:example.com:8080"),
    TXT("e10.example.com", "v=spf1 a:foo.example.com/24"),
    A("foo.example.com", "1.1.1.1"),
    A("foo.example.com", "1.2.3.5"),
    TXT("e11.example.com", "v=spf1 a:foo:bar/baz.example.com"),
    A("foo:bar/baz.example.com", "1.2.3.4"),
    TXT("e12.example.com", "v=spf1 a:example.-com"),
    TXT("e13.example.com", "v=spf1 a:"),
    TXT("e14.example.com", "v=spf1 a:foo.example.xn--zckzah -all"),
    A("foo.example.xn--zckzah", "1.2.3.4"),
    ZEND,
};

static void
test_a(void **state)
{
	static const struct tcase cases[] = {
	    {"a-cidr6", "mail.example.com", "1.2.3.4", "foo@e6.example.com",
	     SPF_FAIL, ANY, NULL},
	    {"a-bad-cidr4", "mail.example.com", "1.2.3.4",
	     "foo@e6a.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-bad-cidr6", "mail.example.com", "1.2.3.4", "foo@e7.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"a-dual-cidr-ip4-match", "mail.example.com", "1.2.3.4",
	     "foo@e8.example.com", SPF_PASS, ANY, NULL},
	    {"a-dual-cidr-ip4-err", "mail.example.com", "1.2.3.4",
	     "foo@e8e.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-dual-cidr-ip6-match", "mail.example.com",
	     "2001:db8:1234::cafe:babe", "foo@e8.example.com", SPF_PASS, ANY,
	     NULL},
	    {"a-dual-cidr-ip4-default", "mail.example.com", "1.2.3.4",
	     "foo@e8b.example.com", SPF_FAIL, ANY, NULL},
	    {"a-dual-cidr-ip6-default", "mail.example.com",
	     "2001:db8:1234::cafe:babe", "foo@e8a.example.com", SPF_FAIL, ANY,
	     NULL},
	    {"a-multi-ip1", "mail.example.com", "1.2.3.4",
	     "foo@e10.example.com", SPF_PASS, ANY, NULL},
	    {"a-bad-domain", "mail.example.com", "1.2.3.4",
	     "foo@e9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-nxdomain", "mail.example.com", "1.2.3.4", "foo@e1.example.com",
	     SPF_FAIL, ANY, NULL},
	    {"a-cidr4-0", "mail.example.com", "1.2.3.4", "foo@e2.example.com",
	     SPF_PASS, ANY, NULL},
	    {"a-cidr4-0-ip6", "mail.example.com", "1234::1",
	     "foo@e2.example.com", SPF_FAIL, ANY, NULL},
	    {"a-cidr6-0-ip4", "mail.example.com", "1.2.3.4",
	     "foo@e2a.example.com", SPF_FAIL, ANY, NULL},
	    {"a-cidr6-0-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4",
	     "foo@e2a.example.com", SPF_FAIL, ANY, NULL},
	    {"a-cidr6-0-ip6", "mail.example.com", "1234::1",
	     "foo@e2a.example.com", SPF_PASS, ANY, NULL},
	    {"a-ip6-dualstack", "mail.example.com", "1234::1",
	     "foo@ipv6.example.com", SPF_PASS, ANY, NULL},
	    {"a-cidr6-0-nxdomain", "mail.example.com", "1234::1",
	     "foo@e2b.example.com", SPF_FAIL, ANY, NULL},
	    {"a-null", "mail.example.com", "1.2.3.5", "foo@e3.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"a-numeric", "mail.example.com", "1.2.3.4", "foo@e4.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"a-numeric-toplabel", "mail.example.com", "1.2.3.4",
	     "foo@e5.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-dash-in-toplabel", "mail.example.com", "1.2.3.4",
	     "foo@e14.example.com", SPF_PASS, ANY, NULL},
	    {"a-bad-toplabel", "mail.example.com", "1.2.3.4",
	     "foo@e12.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-only-toplabel", "mail.example.com", "1.2.3.4",
	     "foo@e5a.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-only-toplabel-trailing-dot", "mail.example.com", "1.2.3.4",
	     "foo@e5b.example.com", SPF_PERMERROR, ANY, NULL},
	    {"a-colon-domain", "mail.example.com", "1.2.3.4",
	     "foo@e11.example.com", SPF_PASS, ANY, NULL},
	    {"a-colon-domain-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4",
	     "foo@e11.example.com", SPF_PASS, ANY, NULL},
	    {"a-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@e13.example.com", SPF_PERMERROR, ANY, NULL},
	};

	(void)state;
	RUN(zone_a, cases);
}

/* ---- include (section 5.2) ------------------------------------------------*/

static const struct zrec zone_include[] = {
    A("mail.example.com", "1.2.3.4"),
    TXT("ip5.example.com", "v=spf1 ip4:1.2.3.5 -all"),
    TXT("ip6.example.com", "v=spf1 ip4:1.2.3.6 ~all"),
    TXT("ip7.example.com", "v=spf1 ip4:1.2.3.7 ?all"),
    TIMEOUT("ip8.example.com"),
    TXT("erehwon.example.com", "v=spfl am not an SPF record"),
    TXT("e1.example.com", "v=spf1 include:ip5.example.com ~all"),
    TXT("e2.example.com", "v=spf1 include:ip6.example.com all"),
    TXT("e3.example.com", "v=spf1 include:ip7.example.com -all"),
    TXT("e4.example.com", "v=spf1 include:ip8.example.com -all"),
    TXT("e5.example.com", "v=spf1 include:e6.example.com -all"),
    TXT("e6.example.com", "v=spf1 include +all"),
    TXT("e7.example.com", "v=spf1 include:erehwon.example.com -all"),
    TXT("e8.example.com", "v=spf1 include: -all"),
    TXT("e9.example.com", "v=spf1 include:ip5.example.com/24 -all"),
    /* A pass through two levels, qualified by the outer include. */
    TXT("e10.example.com", "v=spf1 ~include:e11.example.com -all"),
    TXT("e11.example.com", "v=spf1 include:e12.example.com -all"),
    TXT("e12.example.com", "v=spf1 ip4:1.2.3.0/24 -all"),
    ZEND,
};

static void
test_include(void **state)
{
	static const struct tcase cases[] = {
	    {"include-fail", "mail.example.com", "1.2.3.4",
	     "foo@e1.example.com", SPF_SOFTFAIL, ANY, NULL},
	    {"include-softfail", "mail.example.com", "1.2.3.4",
	     "foo@e2.example.com", SPF_PASS, ANY, NULL},
	    {"include-neutral", "mail.example.com", "1.2.3.4",
	     "foo@e3.example.com", SPF_FAIL, ANY, NULL},
	    {"include-temperror", "mail.example.com", "1.2.3.4",
	     "foo@e4.example.com", SPF_TEMPERROR, ANY, NULL},
	    {"include-permerror", "mail.example.com", "1.2.3.4",
	     "foo@e5.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-syntax-error", "mail.example.com", "1.2.3.4",
	     "foo@e6.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-cidr", "mail.example.com", "1.2.3.4",
	     "foo@e9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-none", "mail.example.com", "1.2.3.4",
	     "foo@e7.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@e8.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-nested", "mail.example.com", "1.2.3.4",
	     "foo@e10.example.com", SPF_SOFTFAIL, ANY, NULL},
	};
	struct spf_outcome out;

	(void)state;
	RUN(zone_include, cases);
	run(zone_include, "mail.example.com", "1.2.3.4", "foo@e10.example.com",
	    false, &out);
	assert_string_equal(out.mechanism, "~include:e11.example.com");
	assert_int_equal(out.lookups, 2);
}

/* ---- mx (section 5.4) -----------------------------------------------------*/

static const struct zrec zone_mx[] = {
    A("mail.example.com", "1.2.3.4"),
    MX("mail.example.com", "0 "),
    TXT("mail.example.com", "v=spf1 mx"),
    TXT("e1.example.com", "v=spf1 mx/0 -all"),
    MX("e1.example.com", "0 e1.example.com"),
    A("e2.example.com", "1.1.1.1"),
    AAAA("e2.example.com", "1234::2"),
    MX("e2.example.com", "0 e2.example.com"),
    TXT("e2.example.com", "v=spf1 mx/0 -all"),
    AAAA("e2a.example.com", "1234::1"),
    MX("e2a.example.com", "0 e2a.example.com"),
    TXT("e2a.example.com", "v=spf1 mx//0 -all"),
    A("e2b.example.com", "1.1.1.1"),
    MX("e2b.example.com", "0 e2b.example.com"),
    TXT("e2b.example.com", "v=spf1 mx//0 -all"),
    TXTN("e3.example.com", "v=spf1 mx:foo.example.com\0"),
    TXT("e4.example.com", "v=spf1 mx"),
    A("e4.example.com", "1.2.3.4"),
    TXT("e5.example.com", "v=spf1 mx:abc.123"),
    TXT("e6.example.com", "v=spf1 mx//33 -all"),
    TXT("e6a.example.com", "v=spf1 mx/33 -all"),
    TXT("e7.example.com", "v=spf1 mx//129 -all"),
    TXT("e9.example.com", "v=spf1 mx:example.com:8080"),
    TXT("e10.example.com", "v=spf1 mx:foo.example.com/24"),
    MX("foo.example.com", "0 foo1.example.com"),
    A("foo1.example.com", "1.1.1.1"),
    A("foo1.example.com", "1.2.3.5"),
    TXT("e11.example.com", "v=spf1 mx:foo:bar/baz.example.com"),
    MX("foo:bar/baz.example.com", "0 foo:bar/baz.example.com"),
    A("foo:bar/baz.example.com", "1.2.3.4"),
    TXT("e12.example.com", "v=spf1 mx:example.-com"),
    TXT("e13.example.com", "v=spf1 mx: -all"),
    ZEND,
};

static void
test_mx(void **state)
{
	static const struct tcase cases[] = {
	    {"mx-cidr6", "mail.example.com", "1.2.3.4", "foo@e6.example.com",
	     SPF_FAIL, ANY, NULL},
	    {"mx-bad-cidr4", "mail.example.com", "1.2.3.4",
	     "foo@e6a.example.com", SPF_PERMERROR, ANY, NULL},
	    {"mx-bad-cidr6", "mail.example.com", "1.2.3.4",
	     "foo@e7.example.com", SPF_PERMERROR, ANY, NULL},
	    {"mx-multi-ip1", "mail.example.com", "1.2.3.4",
	     "foo@e10.example.com", SPF_PASS, ANY, NULL},
	    {"mx-bad-domain", "mail.example.com", "1.2.3.4",
	     "foo@e9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"mx-nxdomain", "mail.example.com", "1.2.3.4", "foo@e1.example.com",
	     SPF_FAIL, ANY, NULL},
	    {"mx-cidr4-0", "mail.example.com", "1.2.3.4", "foo@e2.example.com",
	     SPF_PASS, ANY, NULL},
	    {"mx-cidr4-0-ip6", "mail.example.com", "1234::1",
	     "foo@e2.example.com", SPF_FAIL, ANY, NULL},
	    {"mx-cidr6-0-ip4", "mail.example.com", "1.2.3.4",
	     "foo@e2a.example.com", SPF_FAIL, ANY, NULL},
	    {"mx-cidr6-0-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4",
	     "foo@e2a.example.com", SPF_FAIL, ANY, NULL},
	    {"mx-cidr6-0-ip6", "mail.example.com", "1234::1",
	     "foo@e2a.example.com", SPF_PASS, ANY, NULL},
	    {"mx-cidr6-0-nxdomain", "mail.example.com", "1234::1",
	     "foo@e2b.example.com", SPF_FAIL, ANY, NULL},
	    {"mx-null", "mail.example.com", "1.2.3.5", "foo@e3.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"mx-numeric-top-label", "mail.example.com", "1.2.3.4",
	     "foo@e5.example.com", SPF_PERMERROR, ANY, NULL},
	    {"mx-colon-domain", "mail.example.com", "1.2.3.4",
	     "foo@e11.example.com", SPF_PASS, ANY, NULL},
	    {"mx-colon-domain-ip4mapped", "mail.example.com", "::FFFF:1.2.3.4",
	     "foo@e11.example.com", SPF_PASS, ANY, NULL},
	    {"mx-bad-toplab", "mail.example.com", "1.2.3.4",
	     "foo@e12.example.com", SPF_PERMERROR, ANY, NULL},
	    {"mx-empty", "mail.example.com", "1.2.3.4", "", SPF_NEUTRAL, ANY,
	     NULL},
	    {"mx-implicit", "mail.example.com", "1.2.3.4", "foo@e4.example.com",
	     SPF_NEUTRAL, ANY, NULL},
	    {"mx-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@e13.example.com", SPF_PERMERROR, ANY, NULL},
	};

	(void)state;
	RUN(zone_mx, cases);
}

/* ---- exists, ip4, ip6 (sections 5.6, 5.7) -------------------------------*/

static const struct zrec zone_ip[] = {
    A("mail.example.com", "1.2.3.4"),
    AAAA("mail6.example.com", "CAFE:BABE::4"),
    TIMEOUT("err.example.com"),
    TXT("x1.example.com", "v=spf1 exists:"),
    TXT("x2.example.com", "v=spf1 exists"),
    TXT("x3.example.com", "v=spf1 exists:mail.example.com/24"),
    TXT("x4.example.com", "v=spf1 exists:mail.example.com"),
    TXT("x5.example.com", "v=spf1 exists:mail6.example.com -all"),
    TXT("x6.example.com", "v=spf1 exists:err.example.com -all"),
    TXT("e1.example.com", "v=spf1 ip4:1.1.1.1/0 -all"),
    TXT("e2.example.com", "v=spf1 ip4:1.2.3.4/32 -all"),
    TXT("e3.example.com", "v=spf1 ip4:1.2.3.4/33 -all"),
    TXT("e4.example.com", "v=spf1 ip4:1.2.3.4/032 -all"),
    TXT("e5.example.com", "v=spf1 ip4"),
    TXT("e6.example.com", "v=spf1 ip4:1.2.3.4//32"),
    TXT("e7.example.com", "v=spf1 -ip4:1.2.3.4 ip6:::FFFF:1.2.3.4"),
    TXT("e8.example.com", "v=spf1 ip4:1.2.3.4:8080"),
    TXT("e9.example.com", "v=spf1 ip4:1.2.3"),
    TXT("s1.example.com", "v=spf1 -all ip6"),
    TXT("s2.example.com", "v=spf1 ip6:::1.1.1.1/0"),
    TXT("s3.example.com", "v=spf1 ip6:::1.1.1.1/129"),
    TXT("s4.example.com", "v=spf1 ip6:::1.1.1.1//33"),
    TXT("s5.example.com", "v=spf1 ip6:Cafe:Babe:8000::/33"),
    TXT("s6.example.com", "v=spf1 ip6::CAFE::BABE"),
    ZEND,
};

static void
test_exists_ip(void **state)
{
	static const struct tcase cases[] = {
	    {"exists-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@x1.example.com", SPF_PERMERROR, ANY, NULL},
	    {"exists-implicit", "mail.example.com", "1.2.3.4",
	     "foo@x2.example.com", SPF_PERMERROR, ANY, NULL},
	    {"exists-cidr", "mail.example.com", "1.2.3.4", "foo@x3.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"exists-ip4", "mail.example.com", "1.2.3.4", "foo@x4.example.com",
	     SPF_PASS, ANY, NULL},
	    {"exists-ip6", "mail.example.com", "CAFE:BABE::3",
	     "foo@x4.example.com", SPF_PASS, ANY, NULL},
	    {"exists-ip6only", "mail.example.com", "CAFE:BABE::3",
	     "foo@x5.example.com", SPF_FAIL, ANY, NULL},
	    {"exists-dnserr", "mail.example.com", "CAFE:BABE::3",
	     "foo@x6.example.com", SPF_TEMPERROR, ANY, NULL},
	    {"cidr4-0", "mail.example.com", "1.2.3.4", "foo@e1.example.com",
	     SPF_PASS, ANY, NULL},
	    {"cidr4-32", "mail.example.com", "1.2.3.4", "foo@e2.example.com",
	     SPF_PASS, ANY, NULL},
	    {"cidr4-33", "mail.example.com", "1.2.3.4", "foo@e3.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"cidr4-032", "mail.example.com", "1.2.3.4", "foo@e4.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"bare-ip4", "mail.example.com", "1.2.3.4", "foo@e5.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"bad-ip4-port", "mail.example.com", "1.2.3.4",
	     "foo@e8.example.com", SPF_PERMERROR, ANY, NULL},
	    {"bad-ip4-short", "mail.example.com", "1.2.3.4",
	     "foo@e9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"ip4-dual-cidr", "mail.example.com", "1.2.3.4",
	     "foo@e6.example.com", SPF_PERMERROR, ANY, NULL},
	    {"ip4-mapped-ip6", "mail.example.com", "::FFFF:1.2.3.4",
	     "foo@e7.example.com", SPF_FAIL, ANY, NULL},
	    {"bare-ip6", "mail.example.com", "1.2.3.4", "foo@s1.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"cidr6-0-ip4", "mail.example.com", "1.2.3.4", "foo@s2.example.com",
	     SPF_NEUTRAL, ANY, NULL},
	    {"cidr6-ip4", "mail.example.com", "::FFFF:1.2.3.4",
	     "foo@s2.example.com", SPF_NEUTRAL, ANY, NULL},
	    {"cidr6-0", "mail.example.com", "DEAF:BABE::CAB:FEE",
	     "foo@s2.example.com", SPF_PASS, ANY, NULL},
	    {"cidr6-129", "mail.example.com", "1.2.3.4", "foo@s3.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"cidr6-bad", "mail.example.com", "1.2.3.4", "foo@s4.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"cidr6-33", "mail.example.com",
	     "CAFE:BABE:8000::", "foo@s5.example.com", SPF_PASS, ANY, NULL},
	    {"cidr6-33-ip4", "mail.example.com", "1.2.3.4",
	     "foo@s5.example.com", SPF_NEUTRAL, ANY, NULL},
	    {"ip6-bad1", "mail.example.com", "1.2.3.4", "foo@s6.example.com",
	     SPF_PERMERROR, ANY, NULL},
	};

	(void)state;
	RUN(zone_ip, cases);
}

/* ---- exp and other modifiers (section 6) --------------------------------*/

static const struct zrec zone_mod[] = {
    A("mail.example.com", "1.2.3.4"),
    TXT("e1.example.com", "v=spf1 exp=exp1.example.com "
                          "redirect=e2.example.com"),
    TXT("e2.example.com", "v=spf1 -all"),
    TXT("e3.example.com", "v=spf1 exp=exp1.example.com "
                          "redirect=e4.example.com"),
    TXT("e4.example.com", "v=spf1 -all exp=exp2.example.com"),
    TXT("exp1.example.com", "No-see-um"),
    TXT("exp2.example.com", "See me."),
    TXT("exp3.example.com", "Correct!"),
    TXT("exp4.example.com", "%{l} in implementation"),
    TXT("e5.example.com", "v=spf1 1up=foo"),
    TXT("e6.example.com", "v=spf1 =all"),
    TXT("e7.example.com", "v=spf1 include:e3.example.com -all "
                          "exp=exp3.example.com"),
    TXT("e8.example.com", "v=spf1 -all exp=exp4.example.com"),
    TXT("e9.example.com", "v=spf1 -all foo=%abc"),
    TXT("e10.example.com", "v=spf1 redirect=erehwon.example.com"),
    TXT("e11.example.com", "v=spf1 -all exp=e11msg.example.com"),
    TXT("e11msg.example.com", "Answer a fool according to his folly."),
    TXT("e11msg.example.com", "Do not answer a fool according to his folly."),
    TXT("e12.example.com", "v=spf1 exp= -all"),
    TXT("e13.example.com", "v=spf1 exp=e13msg.example.com -all"),
    TXT("e13msg.example.com", "The %{x}-files."),
    TXT("e14.example.com", "v=spf1 exp=e13msg.example.com -all "
                           "exp=e11msg.example.com"),
    TXT("e15.example.com", "v=spf1 redirect=e12.example.com -all "
                           "redirect=e12.example.com"),
    TXT("e16.example.com", "v=spf1 exp=-all"),
    TXT("e17.example.com", "v=spf1 redirect=-all ?all"),
    TXT("e18.example.com", "v=spf1 ?all redirect="),
    TXT("e19.example.com", "v=spf1 default=pass"),
    TXT("e20.example.com", "v=spf1 default=+"),
    TXT("e21.example.com", "v=spf1 exp=e21msg.example.com -all"),
    TIMEOUT("e21msg.example.com"),
    TXT("e22.example.com", "v=spf1 exp=mail.example.com -all"),
    TXT("nonascii.example.com", "v=spf1 exp=badexp.example.com -all"),
    TXT("badexp.example.com", "\xEF\xBB\xBF"
                              "Explanation"),
    TXT("tworecs.example.com", "v=spf1 exp=twoexp.example.com -all"),
    TXT("twoexp.example.com", "one"),
    TXT("twoexp.example.com", "two"),
    TXT("e23.example.com", "v=spf1 a:erehwon.example.com a:foobar.com "
                           "exp=nxdomain.com -all"),
    TXT("e24.example.com", "v=spf1 redirect=testimplicit.example.com"),
    A("e24.example.com", "192.0.2.1"),
    TXT("testimplicit.example.com", "v=spf1 a -all"),
    A("testimplicit.example.com", "192.0.2.2"),
    ZEND,
};

static void
test_modifiers(void **state)
{
	static const struct tcase cases[] = {
	    {"redirect-none", "mail.example.com", "1.2.3.4",
	     "foo@e10.example.com", SPF_PERMERROR, ANY, NULL},
	    {"redirect-cancels-exp", "mail.example.com", "1.2.3.4",
	     "foo@e1.example.com", SPF_FAIL, ANY, ""},
	    {"redirect-syntax-error", "mail.example.com", "1.2.3.4",
	     "foo@e17.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-ignores-exp", "mail.example.com", "1.2.3.4",
	     "foo@e7.example.com", SPF_FAIL, ANY, "Correct!"},
	    {"redirect-cancels-prior-exp", "mail.example.com", "1.2.3.4",
	     "foo@e3.example.com", SPF_FAIL, ANY, "See me."},
	    {"invalid-modifier", "mail.example.com", "1.2.3.4",
	     "foo@e5.example.com", SPF_PERMERROR, ANY, NULL},
	    {"empty-modifier-name", "mail.example.com", "1.2.3.4",
	     "foo@e6.example.com", SPF_PERMERROR, ANY, NULL},
	    {"dorky-sentinel", "mail.example.com", "1.2.3.4",
	     "Macro Error@e8.example.com", SPF_FAIL, ANY,
	     "Macro Error in implementation"},
	    {"exp-multiple-txt", "mail.example.com", "1.2.3.4",
	     "foo@e11.example.com", SPF_FAIL, ANY, ""},
	    {"exp-no-txt", "mail.example.com", "1.2.3.4", "foo@e22.example.com",
	     SPF_FAIL, ANY, ""},
	    {"exp-dns-error", "mail.example.com", "1.2.3.4",
	     "foo@e21.example.com", SPF_FAIL, ANY, ""},
	    {"exp-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@e12.example.com", SPF_PERMERROR, ANY, NULL},
	    {"explanation-syntax-error", "mail.example.com", "1.2.3.4",
	     "foo@e13.example.com", SPF_FAIL, ANY, ""},
	    {"exp-syntax-error", "mail.example.com", "1.2.3.4",
	     "foo@e16.example.com", SPF_PERMERROR, ANY, NULL},
	    {"exp-twice", "mail.example.com", "1.2.3.4", "foo@e14.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"redirect-empty-domain", "mail.example.com", "1.2.3.4",
	     "foo@e18.example.com", SPF_PERMERROR, ANY, NULL},
	    {"redirect-twice", "mail.example.com", "1.2.3.4",
	     "foo@e15.example.com", SPF_PERMERROR, ANY, NULL},
	    {"unknown-modifier-syntax", "mail.example.com", "1.2.3.4",
	     "foo@e9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"default-modifier-obsolete", "mail.example.com", "1.2.3.4",
	     "foo@e19.example.com", SPF_NEUTRAL, ANY, NULL},
	    {"default-modifier-obsolete2", "mail.example.com", "1.2.3.4",
	     "foo@e20.example.com", SPF_NEUTRAL, ANY, NULL},
	    {"non-ascii-exp", "hosed", "1.2.3.4", "foobar@nonascii.example.com",
	     SPF_FAIL, ANY, ""},
	    {"two-exp-records", "hosed", "1.2.3.4",
	     "foobar@tworecs.example.com", SPF_FAIL, ANY, ""},
	    {"exp-void", "mail.example.com", "1.2.3.4", "foo@e23.example.com",
	     SPF_FAIL, ANY, ""},
	    {"redirect-implicit", "e24.example.com", "192.0.2.2",
	     "bar@e24.example.com", SPF_PASS, ANY, NULL},
	};

	(void)state;
	RUN(zone_mod, cases);
}

/* ---- macros (section 7) ---------------------------------------------------*/

static const struct zrec zone_macro[] = {
    TXT("example.com.d.spf.example.com", "v=spf1 redirect=a.spf.example.com"),
    TXT("a.spf.example.com", "v=spf1 include:o.spf.example.com. ~all"),
    TXT("o.spf.example.com", "v=spf1 ip4:192.168.218.40"),
    A("msgbas2x.cos.example.com", "192.168.218.40"),
    A("example.com", "192.168.90.76"),
    TXT("example.com", "v=spf1 redirect=%{d}.d.spf.example.com."),
    TXT("exp.example.com", "v=spf1 exp=msg.example.com. -all"),
    TXT("msg.example.com", "This is a test."),
    TXT("e1.example.com", "v=spf1 -exists:%(ir).sbl.example.com ?all"),
    TXT("e1e.example.com", "v=spf1 exists:foo%(ir).sbl.example.com ?all"),
    TXT("e1t.example.com", "v=spf1 exists:foo%.sbl.example.com ?all"),
    TXT("e1a.example.com",
        "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all"),
    A("macro%percent  space%20url-space.example.com", "1.2.3.4"),
    TXT("e2.example.com", "v=spf1 -all exp=%{r}.example.com"),
    TXT("e3.example.com", "v=spf1 -all exp=%{ir}.example.com"),
    TXT("40.218.168.192.example.com", "Connections from %{c} not authorized."),
    TXT("somewhat.long.exp.example.com",
        "v=spf1 -all exp=foobar.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}.%{o}."
        "example.com"),
    TXT("somewhat.long.exp.example.com.somewhat.long.exp.example.com."
        "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
        "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
        "somewhat.long.exp.example.com.somewhat.long.exp.example.com."
        "example.com",
        "Congratulations!  That was tricky."),
    TXT("e4.example.com", "v=spf1 -all exp=e4msg.example.com"),
    TXT("e4msg.example.com", "%{c} is queried as %{ir}.%{v}.arpa"),
    TXT("e5.example.com", "v=spf1 a:%{a}.example.com -all"),
    TXT("e6.example.com", "v=spf1 -all exp=e6msg.example.com"),
    TXT("e6msg.example.com", "connect from %{p}"),
    A("mx.example.com", "192.168.218.41"),
    A("mx.example.com", "192.168.218.42"),
    AAAA("mx.example.com", "CAFE:BABE::2"),
    AAAA("mx.example.com", "CAFE:BABE::3"),
    PTR("40.218.168.192.in-addr.arpa", "mx.example.com"),
    PTR("41.218.168.192.in-addr.arpa", "mx.example.com"),
    PTR("42.218.168.192.in-addr.arpa", "mx.example.com"),
    PTR("42.218.168.192.in-addr.arpa", "mx.e7.example.com"),
    PTR("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C."
        "ip6.arpa",
        "mx.example.com"),
    PTR("3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.E.B.A.B.E.F.A.C."
        "ip6.arpa",
        "mx.example.com"),
    A("mx.e7.example.com", "192.168.218.42"),
    A("mx.e7.example.com.should.example.com", "127.0.0.2"),
    A("mx.example.com.ok.example.com", "127.0.0.2"),
    TXT("e7.example.com", "v=spf1 exists:%{p}.should.example.com "
                          "~exists:%{p}.ok.example.com"),
    TXT("e8.example.com", "v=spf1 -all exp=msg8.%{D2}"),
    TXT("msg8.example.com", "http://example.com/why.html?l=%{L}"),
    TXT("e9.example.com", "v=spf1 a:%{H} -all"),
    TXT("e10.example.com", "v=spf1 -include:_spfh.%{d2} ip4:1.2.3.0/24 "
                           "-all"),
    TXT("_spfh.example.com", "v=spf1 -a:%{h} +all"),
    TXT("e11.example.com", "v=spf1 exists:%{i}.%{l2r-}.user.%{d2}"),
    A("1.2.3.4.gladstone.philip.user.example.com", "127.0.0.2"),
    TXT("e12.example.com", "v=spf1 exists:%{l2r+-}.user.%{d2}"),
    A("bar.foo.user.example.com", "127.0.0.2"),
    ZEND,
};

static void
test_macros(void **state)
{
	static const struct tcase cases[] = {
	    {"trailing-dot-domain", "msgbas2x.cos.example.com",
	     "192.168.218.40", "test@example.com", SPF_PASS, ANY, NULL},
	    {"trailing-dot-exp", "msgbas2x.cos.example.com", "192.168.218.40",
	     "test@exp.example.com", SPF_FAIL, ANY, "This is a test."},
	    {"exp-only-macro-char", "msgbas2x.cos.example.com",
	     "192.168.218.40", "test@e2.example.com", SPF_PERMERROR, ANY, NULL},
	    {"invalid-macro-char", "msgbas2x.cos.example.com", "192.168.218.40",
	     "test@e1.example.com", SPF_PERMERROR, ANY, NULL},
	    {"invalid-embedded-macro-char", "msgbas2x.cos.example.com",
	     "192.168.218.40", "test@e1e.example.com", SPF_PERMERROR, ANY,
	     NULL},
	    {"invalid-trailing-macro-char", "msgbas2x.cos.example.com",
	     "192.168.218.40", "test@e1t.example.com", SPF_PERMERROR, ANY,
	     NULL},
	    {"macro-mania-in-domain", "mail.example.com", "1.2.3.4",
	     "test@e1a.example.com", SPF_PASS, ANY, NULL},
	    {"exp-txt-macro-char", "msgbas2x.cos.example.com", "192.168.218.40",
	     "test@e3.example.com", SPF_FAIL, ANY,
	     "Connections from 192.168.218.40 not authorized."},
	    {"domain-name-truncation", "msgbas2x.cos.example.com",
	     "192.168.218.40", "test@somewhat.long.exp.example.com", SPF_FAIL,
	     ANY, "Congratulations!  That was tricky."},
	    {"v-macro-ip4", "msgbas2x.cos.example.com", "192.168.218.40",
	     "test@e4.example.com", SPF_FAIL, ANY,
	     "192.168.218.40 is queried as 40.218.168.192.in-addr.arpa"},
	    {"v-macro-ip6", "msgbas2x.cos.example.com", "CAFE:BABE::1",
	     "test@e4.example.com", SPF_FAIL, ANY,
	     "cafe:babe::1 is queried as 1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	     "0.0.0.0.0.0.E.B.A.B.E.F.A.C.ip6.arpa"},
	    {"undef-macro", "msgbas2x.cos.example.com",
	     "CAFE:BABE::192.168.218.40", "test@e5.example.com", SPF_PERMERROR,
	     ANY, NULL},
	    {"p-macro-ip4-novalid", "msgbas2x.cos.example.com",
	     "192.168.218.40", "test@e6.example.com", SPF_FAIL, ANY,
	     "connect from unknown"},
	    {"p-macro-ip4-valid", "msgbas2x.cos.example.com", "192.168.218.41",
	     "test@e6.example.com", SPF_FAIL, ANY,
	     "connect from mx.example.com"},
	    {"p-macro-ip6-novalid", "msgbas2x.cos.example.com", "CAFE:BABE::1",
	     "test@e6.example.com", SPF_FAIL, ANY, "connect from unknown"},
	    {"p-macro-ip6-valid", "msgbas2x.cos.example.com", "CAFE:BABE::3",
	     "test@e6.example.com", SPF_FAIL, ANY,
	     "connect from mx.example.com"},
	    {"p-macro-multiple", "msgbas2x.cos.example.com", "192.168.218.42",
	     "test@e7.example.com", SPF_PASS, SPF_SOFTFAIL, NULL},
	    {"upper-macro", "msgbas2x.cos.example.com", "192.168.218.42",
	     "~jack&jill=up-a_b3.c@e8.example.com", SPF_FAIL, ANY,
	     "http://example.com/why.html?l=~jack%26jill%3Dup-a_b3.c"},
	    {"hello-macro", "msgbas2x.cos.example.com", "192.168.218.40",
	     "test@e9.example.com", SPF_PASS, ANY, NULL},
	    {"invalid-hello-macro", "JUMPIN' JUPITER", "192.168.218.40",
	     "test@e9.example.com", SPF_FAIL, ANY, NULL},
	    {"hello-domain-literal", "[192.168.218.40]", "192.168.218.40",
	     "test@e9.example.com", SPF_FAIL, ANY, NULL},
	    {"require-valid-helo", "OEMCOMPUTER", "1.2.3.4",
	     "test@e10.example.com", SPF_FAIL, ANY, NULL},
	    {"macro-reverse-split-on-dash", "mail.example.com", "1.2.3.4",
	     "philip-gladstone-test@e11.example.com", SPF_PASS, ANY, NULL},
	    {"macro-multiple-delimiters", "mail.example.com", "1.2.3.4",
	     "foo-bar+zip+quux@e12.example.com", SPF_PASS, ANY, NULL},
	};

	(void)state;
	RUN(zone_macro, cases);
}

/* ---- processing limits (section 4.6.4) --------------------------------- */

static const struct zrec zone_limits[] = {
    A("mail.example.com", "1.2.3.4"),
    TXT("e1.example.com", "v=spf1 ip4:1.1.1.1 redirect=e1.example.com"),
    A("e1.example.com", "1.2.3.6"),
    TXT("e2.example.com", "v=spf1 include:e3.example.com"),
    A("e2.example.com", "1.2.3.7"),
    TXT("e3.example.com", "v=spf1 include:e2.example.com"),
    A("e3.example.com", "1.2.3.8"),
    TXT("e4.example.com", "v=spf1 mx"),
    MX("e4.example.com", "0 mail.example.com"),
    MX("e4.example.com", "1 mail.example.com"),
    MX("e4.example.com", "2 mail.example.com"),
    MX("e4.example.com", "3 mail.example.com"),
    MX("e4.example.com", "4 mail.example.com"),
    MX("e4.example.com", "5 mail.example.com"),
    MX("e4.example.com", "6 mail.example.com"),
    MX("e4.example.com", "7 mail.example.com"),
    MX("e4.example.com", "8 mail.example.com"),
    MX("e4.example.com", "9 mail.example.com"),
    MX("e4.example.com", "10 e4.example.com"),
    A("e4.example.com", "1.2.3.5"),
    TXT("e5.example.com", "v=spf1 ptr"),
    A("e5.example.com", "1.2.3.5"),
    PTR("5.3.2.1.in-addr.arpa", "e1.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e2.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e3.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e4.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e6.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e7.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e8.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e9.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e10.example.com."),
    PTR("5.3.2.1.in-addr.arpa", "e5.example.com."),
    TXT("e6.example.com", "v=spf1 a mx a mx a mx a mx a ptr ip4:1.2.3.4 "
                          "-all"),
    A("e6.example.com", "1.2.3.8"),
    MX("e6.example.com", "10 e6.example.com"),
    TXT("e7.example.com", "v=spf1 a mx a mx a mx a mx a ptr a ip4:1.2.3.4 "
                          "-all"),
    A("e7.example.com", "1.2.3.20"),
    TXT("e8.example.com", "v=spf1 a include:inc.example.com ip4:1.2.3.4 mx "
                          "-all"),
    A("e8.example.com", "1.2.3.4"),
    TXT("inc.example.com", "v=spf1 a a a a a a a a"),
    A("inc.example.com", "1.2.3.10"),
    TXT("e9.example.com", "v=spf1 a include:inc.example.com a ip4:1.2.3.4 "
                          "-all"),
    A("e9.example.com", "1.2.3.21"),
    TXT("e10.example.com", "v=spf1 a -all"),
    A("e10.example.com", "1.2.3.1"),
    A("e10.example.com", "1.2.3.2"),
    A("e10.example.com", "1.2.3.3"),
    A("e10.example.com", "1.2.3.4"),
    A("e10.example.com", "1.2.3.5"),
    A("e10.example.com", "1.2.3.6"),
    A("e10.example.com", "1.2.3.7"),
    A("e10.example.com", "1.2.3.8"),
    A("e10.example.com", "1.2.3.9"),
    A("e10.example.com", "1.2.3.10"),
    A("e10.example.com", "1.2.3.11"),
    A("e10.example.com", "1.2.3.12"),
    TXT("e11.example.com", "v=spf1 a:err.example.com a:err1.example.com "
                           "a:err2.example.com ?all"),
    TXT("e12.example.com", "v=spf1 a:err.example.com a:err1.example.com "
                           "?all"),
    /* exists: voids count as well. */
    TXT("e13.example.com", "v=spf1 exists:a.nx.example exists:b.nx.example "
                           "exists:c.nx.example +all"),
    ZEND,
};

static void
test_limits(void **state)
{
	static const struct tcase cases[] = {
	    {"redirect-loop", "mail.example.com", "1.2.3.4",
	     "foo@e1.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-loop", "mail.example.com", "1.2.3.4",
	     "foo@e2.example.com", SPF_PERMERROR, ANY, NULL},
	    {"mx-limit", "mail.example.com", "1.2.3.5", "foo@e4.example.com",
	     SPF_PERMERROR, ANY, NULL},
	    {"ptr-limit", "mail.example.com", "1.2.3.5", "foo@e5.example.com",
	     SPF_NEUTRAL, SPF_PASS, NULL},
	    {"false-a-limit", "mail.example.com", "1.2.3.12",
	     "foo@e10.example.com", SPF_PASS, ANY, NULL},
	    {"mech-at-limit", "mail.example.com", "1.2.3.4",
	     "foo@e6.example.com", SPF_PASS, ANY, NULL},
	    {"mech-over-limit", "mail.example.com", "1.2.3.4",
	     "foo@e7.example.com", SPF_PERMERROR, ANY, NULL},
	    {"include-at-limit", "mail.example.com", "1.2.3.4",
	     "foo@e8.example.com", SPF_PASS, ANY, NULL},
	    {"include-over-limit", "mail.example.com", "1.2.3.4",
	     "foo@e9.example.com", SPF_PERMERROR, ANY, NULL},
	    {"void-at-limit", "mail.example.com", "1.2.3.4",
	     "foo@e12.example.com", SPF_NEUTRAL, ANY, NULL},
	    {"void-over-limit", "mail.example.com", "1.2.3.4",
	     "foo@e11.example.com", SPF_PERMERROR, ANY, NULL},
	    {"void-exists", "mail.example.com", "1.2.3.4",
	     "foo@e13.example.com", SPF_PERMERROR, ANY, NULL},
	};
	struct spf_outcome out;

	(void)state;
	RUN(zone_limits, cases);

	run(zone_limits, "mail.example.com", "1.2.3.4", "foo@e6.example.com",
	    false, &out);
	assert_int_equal(out.lookups, 10);
	assert_string_equal(out.mechanism, "ip4:1.2.3.4");

	run(zone_limits, "mail.example.com", "1.2.3.4", "foo@e9.example.com",
	    false, &out);
	assert_int_equal(out.lookups, 11);
	assert_string_equal(out.problem, "more than 10 DNS lookups");

	run(zone_limits, "mail.example.com", "1.2.3.4", "foo@e2.example.com",
	    false, &out);
	assert_string_equal(out.problem, "more than 10 DNS lookups");
	/* The loop stops at the limit: 10 includes, 11 records. */
	assert_true(nqueries <= 12);

	run(zone_limits, "mail.example.com", "1.2.3.4", "foo@e11.example.com",
	    false, &out);
	assert_int_equal(out.voids, 3);
	assert_string_equal(out.problem, "more than 2 void DNS lookups");

	/* Only the first 10 PTR names are validated. */
	run(zone_limits, "mail.example.com", "1.2.3.5", "foo@e5.example.com",
	    false, &out);
	assert_int_equal(out.result, SPF_NEUTRAL);
	assert_int_equal(nqueries, 1 + 1 + 10);

	/* A lower configured limit. */
	limits.max_lookups = 3;
	run(zone_limits, "mail.example.com", "1.2.3.4", "foo@e6.example.com",
	    false, &out);
	assert_int_equal(out.result, SPF_PERMERROR);
	assert_string_equal(out.problem, "more than 3 DNS lookups");
	limits.max_lookups = 10;
	limits.max_void = 3;
	run(zone_limits, "mail.example.com", "1.2.3.4", "foo@e11.example.com",
	    false, &out);
	assert_int_equal(out.result, SPF_NEUTRAL);
	limits.max_void = 2;
}

/* The worst a hostile record can ask: bounded. */
static void
test_worst_case(void **state)
{
	static struct zrec z[1 + 10 + 10 * 10 + 2];
	static char names[10][10][32];
	static char mx_values[10][10][40];
	static char domains[10][32];
	char rec[512];
	struct spf_outcome out;
	size_t i, j, n = 0, len;

	(void)state;
	len = (size_t)snprintf(rec, sizeof(rec), "v=spf1");
	for (i = 0; i < 10; i++) {
		(void)snprintf(domains[i], sizeof(domains[i]),
		               "m%zu.evil.example", i);
		len += (size_t)snprintf(rec + len, sizeof(rec) - len, " mx:%s",
		                        domains[i]);
		for (j = 0; j < 10; j++) {
			(void)snprintf(names[i][j], sizeof(names[i][j]),
			               "h%zu-%zu.victim.example", i, j);
			(void)snprintf(mx_values[i][j], sizeof(mx_values[i][j]),
			               "%zu %s", j, names[i][j]);
			z[n++] = (struct zrec)MX(domains[i], mx_values[i][j]);
		}
	}
	(void)snprintf(rec + len, sizeof(rec) - len, " mx:more.example -all");
	z[n++] = (struct zrec)TXT("evil.example", rec);
	z[n] = (struct zrec)ZEND;
	run(z, "x.example", "192.0.2.1", "a@evil.example", false, &out);
	assert_int_equal(out.result, SPF_PERMERROR);
	assert_int_equal(out.lookups, 11);
	/* One TXT, then per mx: one MX and ten A (NXDOMAIN, not voids). */
	assert_int_equal(nqueries, 1 + 10 * (1 + 10));
	assert_int_equal(out.voids, 0);
}

/* ---- resolver behaviour ------------------------------------------------ */

static const struct zrec zone_resolver[] = {
    TXT("inv.example.com", "v=spf1 a:bad.example.com -all"),
    {"bad.example.com", Z_INVALID, NULL, 0},
    TXT("mal.example.com", "v=spf1 a:broken.example.com -all"),
    {"broken.example.com", Z_MALFORMED, NULL, 0},
    TXT("helo.example.com", "v=spf1 a -all"),
    A("helo.example.com", "192.0.2.9"),
    TXT("ok.example.com", "v=spf1 ip4:192.0.2.0/24 -all"),
    ZEND,
};

static void
test_resolver_behaviour(void **state)
{
	struct spf_outcome out;

	(void)state;
	/* A name the resolver refuses does not exist (and is no void). */
	run(zone_resolver, "x.example", "192.0.2.1", "a@inv.example.com", false,
	    &out);
	assert_int_equal(out.result, SPF_FAIL);
	assert_int_equal(out.voids, 0);
	/* A malformed answer is a temporary error. */
	run(zone_resolver, "x.example", "192.0.2.1", "a@mal.example.com", false,
	    &out);
	assert_int_equal(out.result, SPF_TEMPERROR);
	assert_non_null(strstr(out.problem, "malformed answer"));
	/* The HELO identity. */
	run(zone_resolver, "helo.example.com", "192.0.2.9", "a@ok.example.com",
	    true, &out);
	assert_int_equal(out.result, SPF_PASS);
	assert_string_equal(out.identity, "helo");
	assert_string_equal(out.sender, "postmaster@helo.example.com");
	assert_string_equal(out.domain, "helo.example.com");
	assert_string_equal(out.mechanism, "a");
	/* The null path is checked as postmaster@HELO. */
	run(zone_resolver, "helo.example.com", "192.0.2.8", "", false, &out);
	assert_int_equal(out.result, SPF_FAIL);
	assert_string_equal(out.identity, "mailfrom");
	assert_string_equal(out.sender, "postmaster@helo.example.com");
	assert_string_equal(out.mechanism, "-all");
	/* Not an address at all. */
	run(zone_resolver, "x.example", "not-an-ip", "a@ok.example.com", false,
	    &out);
	assert_int_equal(out.result, SPF_NONE);
	assert_int_equal(nqueries, 0);
	/* A resolver that cannot start a lookup. */
	refuse_lookups = true;
	run(zone_resolver, "x.example", "192.0.2.1", "a@ok.example.com", false,
	    &out);
	refuse_lookups = false;
	assert_int_equal(out.result, SPF_TEMPERROR);
	assert_string_equal(out.problem, "resolver unavailable");
	/* Without exp fetching, no explanation query. */
	limits.explain = false;
	run(zone_mod, "mail.example.com", "1.2.3.4", "foo@e7.example.com",
	    false, &out);
	limits.explain = true;
	assert_int_equal(out.result, SPF_FAIL);
	assert_string_equal(out.explanation, "");
	assert_int_equal(nqueries, 3);
}

/* Freeing an evaluation with a question pending cancels it. */
static void
test_cancel(void **state)
{
	struct spf_request req = {
	    .ip = "1.2.3.4",
	    .sender = "foo@e9.example.com",
	    .helo = "mail.example.com",
	    .receiver = "r.example",
	};
	struct spf_eval *ev;
	unsigned cancelled = ncancelled;

	(void)state;
	zone = zone_limits;
	ndone = 0;
	ev = spf_eval_new(&fake_methods, NULL, &limits, &req);
	assert_non_null(ev);
	assert_int_equal(spf_eval_start(ev, on_done, &ndone), PTL_AGAIN);
	fake_answer_one(); /* the TXT record; now "a" is asked */
	fake_answer_one(); /* "a" answered; the include's TXT is asked */
	assert_non_null(queue);
	spf_eval_free(ev);
	assert_null(queue);
	assert_int_equal(ncancelled, cancelled + 1);
	assert_int_equal(ndone, 0);
	spf_eval_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_initial),
	    cmocka_unit_test(test_selection),
	    cmocka_unit_test(test_evaluation),
	    cmocka_unit_test(test_all_ptr),
	    cmocka_unit_test(test_a),
	    cmocka_unit_test(test_include),
	    cmocka_unit_test(test_mx),
	    cmocka_unit_test(test_exists_ip),
	    cmocka_unit_test(test_modifiers),
	    cmocka_unit_test(test_macros),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_worst_case),
	    cmocka_unit_test(test_resolver_behaviour),
	    cmocka_unit_test(test_cancel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
