/* SPDX-License-Identifier: MIT */
/* Unit tests for MX ordering and destination resolution (fake resolver). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "relay_mx.h"

/* ---- Ordering ------------------------------------------------------------ */

static uint32_t
rand_first(uint32_t bound, void *arg)
{
	return 0;
}

/* A real generator, so that every order of equals shows up. */
static uint32_t
rand_lcg(uint32_t bound, void *arg)
{
	uint64_t *s = arg;

	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*s >> 33) % bound;
}

static void
test_order_preference(void **state)
{
	const struct ptl_dns_mx mx[] = {
	    {20, "b.example"},
	    {10, "a.example"},
	    {30, "c.example"},
	};
	struct relay_mx_host out[8];
	size_t n;

	assert_int_equal(
	    relay_mx_order(mx, 3, NULL, rand_first, NULL, out, 8, &n), PTL_OK);
	assert_int_equal(n, 3);
	assert_string_equal(out[0].name, "a.example");
	assert_string_equal(out[1].name, "b.example");
	assert_string_equal(out[2].name, "c.example");
	assert_int_equal(out[0].preference, 10);

	/* The cap. */
	assert_int_equal(
	    relay_mx_order(mx, 3, NULL, rand_first, NULL, out, 2, &n), PTL_OK);
	assert_int_equal(n, 2);
	assert_string_equal(out[1].name, "b.example");
}

/* RFC 5321 5.1: equal preferences in random order, never mixed with
 * other preferences. */
static void
test_order_shuffle(void **state)
{
	const struct ptl_dns_mx mx[] = {
	    {10, "a1"}, {10, "a2"}, {10, "a3"}, {5, "first"}, {20, "last"},
	};
	struct relay_mx_host out[8];
	unsigned seen[3][3] = {{0}};
	uint64_t seed = 1;
	size_t n, round, i;

	for (round = 0; round < 3000; round++) {
		assert_int_equal(
		    relay_mx_order(mx, 5, NULL, rand_lcg, &seed, out, 8, &n),
		    PTL_OK);
		assert_int_equal(n, 5);
		assert_string_equal(out[0].name, "first");
		assert_string_equal(out[4].name, "last");
		for (i = 1; i <= 3; i++) {
			assert_int_equal(out[i].preference, 10);
			seen[i - 1][out[i].name[1] - '1']++;
		}
	}
	/* Each of a1..a3 lands in each place about a third of the time. */
	for (i = 0; i < 9; i++)
		assert_true(seen[i / 3][i % 3] > 800 &&
		            seen[i / 3][i % 3] < 1200);
}

static void
test_order_null_mx(void **state)
{
	const struct ptl_dns_mx null_mx[] = {{0, ""}};
	const struct ptl_dns_mx mixed[] = {{0, ""}, {10, "mx.example"}};
	struct relay_mx_host out[8];
	size_t n;

	assert_int_equal(
	    relay_mx_order(null_mx, 1, NULL, rand_first, NULL, out, 8, &n),
	    PTL_DECLINED);
	/* A "." among real hosts is skipped, not obeyed. */
	assert_int_equal(
	    relay_mx_order(mixed, 2, NULL, rand_first, NULL, out, 8, &n),
	    PTL_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].name, "mx.example");
}

static void
test_order_self(void **state)
{
	const struct ptl_dns_mx mx[] = {
	    {10, "primary.example"},
	    {20, "me.example"},
	    {20, "peer.example"},
	    {30, "backup.example"},
	};
	struct relay_mx_host out[8];
	size_t n;

	/* We are a backup MX: only the more preferred hosts remain. */
	assert_int_equal(
	    relay_mx_order(mx, 4, "ME.example", rand_first, NULL, out, 8, &n),
	    PTL_OK);
	assert_int_equal(n, 1);
	assert_string_equal(out[0].name, "primary.example");
	/* We are the best MX: the mail would loop. */
	assert_int_equal(relay_mx_order(mx, 1, "primary.example", rand_first,
	                                NULL, out, 8, &n),
	                 PTL_DONE);
}

/* ---- Resolution against a fake resolver -----------------------------------
 */

struct fake_query {
	bool used;
	char name[256];
	enum ptl_dns_type type;
	ptl_dns_fn done;
	void *arg;
};

struct fake_dns {
	struct fake_query q[8];
	unsigned started, cancelled;
};

static int
fake_lookup(void *instance, const char *name, enum ptl_dns_type type,
            ptl_dns_fn done, void *arg, struct ptl_dns_query **query_out)
{
	struct fake_dns *f = instance;
	size_t i;

	for (i = 0; i < 8; i++) {
		if (!f->q[i].used)
			break;
	}
	assert_true(i < 8);
	f->q[i].used = true;
	(void)snprintf(f->q[i].name, sizeof(f->q[i].name), "%s", name);
	f->q[i].type = type;
	f->q[i].done = done;
	f->q[i].arg = arg;
	f->started++;
	if (query_out != NULL)
		*query_out = (struct ptl_dns_query *)&f->q[i];
	return PTL_AGAIN;
}

static void
fake_cancel(void *instance, struct ptl_dns_query *query)
{
	struct fake_dns *f = instance;
	struct fake_query *q = (struct fake_query *)query;

	q->used = false;
	f->cancelled++;
}

static const struct ptl_resolver_methods fake_methods = {
    .version = PTL_RESOLVER_VERSION,
    .lookup = fake_lookup,
    .cancel = fake_cancel,
};

/* The pending query for @p name and @p type, completed with @p res. */
static void
fake_answer(struct fake_dns *f, const char *name, enum ptl_dns_type type,
            struct ptl_dns_result *res)
{
	size_t i;

	for (i = 0; i < 8; i++) {
		struct fake_query *q = &f->q[i];

		if (!q->used || q->type != type || strcmp(q->name, name) != 0)
			continue;
		q->used = false;
		res->type = type;
		res->name = name;
		q->done(res, q->arg);
		return;
	}
	fail_msg("no pending query for %s type %d", name, (int)type);
}

static void
fake_status(struct fake_dns *f, const char *name, enum ptl_dns_type type,
            enum ptl_dns_status status)
{
	struct ptl_dns_result res = {.status = status};

	if (status == PTL_DNS_TEMPFAIL)
		res.reason = "timeout";
	fake_answer(f, name, type, &res);
}

static void
fake_a(struct fake_dns *f, const char *name, const char *const *ips, size_t n)
{
	struct ptl_dns_addr addrs[8];
	struct ptl_dns_result res = {.status = PTL_DNS_OK, .count = n};
	size_t i;

	for (i = 0; i < n; i++) {
		memset(&addrs[i], 0, sizeof(addrs[i]));
		if (strchr(ips[i], ':') != NULL) {
			addrs[i].family = AF_INET6;
			assert_int_equal(
			    inet_pton(AF_INET6, ips[i], &addrs[i].in6), 1);
		} else {
			addrs[i].family = AF_INET;
			assert_int_equal(
			    inet_pton(AF_INET, ips[i], &addrs[i].in4), 1);
		}
	}
	res.addrs = addrs;
	fake_answer(f, name,
	            n > 0 && addrs[0].family == AF_INET6 ? PTL_DNS_AAAA
	                                                 : PTL_DNS_A,
	            &res);
}

static void
fake_mx(struct fake_dns *f, const char *name, const struct ptl_dns_mx *mx,
        size_t n)
{
	struct ptl_dns_result res = {
	    .status = PTL_DNS_OK, .count = n, .mx = mx};

	fake_answer(f, name, PTL_DNS_MX, &res);
}

struct mx_test {
	struct fake_dns dns;
	struct relay_mx mx;
	unsigned wakes;
};

static void
on_wake(void *arg)
{
	struct mx_test *t = arg;

	t->wakes++;
}

static void
mx_setup(struct mx_test *t, const char *domain, const char *route, bool v6)
{
	struct relay_mx_params p = {
	    .dns = &fake_methods,
	    .dns_inst = &t->dns,
	    .domain = domain,
	    .route_host = route,
	    .self = "me.example",
	    .want_ipv4 = true,
	    .want_ipv6 = v6,
	    .rnd = rand_first,
	    .wake = on_wake,
	    .arg = t,
	};

	memset(t, 0, sizeof(*t));
	relay_mx_init(&t->mx, &p);
}

static void
assert_addr(struct relay_mx *mx, const char *host, const char *ip)
{
	char text[INET6_ADDRSTRLEN];

	assert_int_equal(relay_mx_next(mx), PTL_OK);
	assert_string_equal(mx->cur_host, host);
	assert_non_null(inet_ntop(mx->cur_addr.family,
	                          mx->cur_addr.family == AF_INET6
	                              ? (const void *)&mx->cur_addr.in6
	                              : (const void *)&mx->cur_addr.in4,
	                          text, sizeof(text)));
	assert_string_equal(text, ip);
}

static void
test_resolve_mx_fallback(void **state)
{
	static const struct ptl_dns_mx mx[] = {
	    {20, "mx2.example"},
	    {10, "mx1.example"},
	    {30, "gone.example"},
	    {40, "mx3.example"},
	};
	static const char *const mx1[] = {"192.0.2.1", "192.0.2.2"};
	static const char *const mx1_v6[] = {"2001:db8::1"};
	static const char *const mx2[] = {"192.0.2.20"};
	static const char *const mx3[] = {"192.0.2.30"};
	struct mx_test t;

	mx_setup(&t, "example", NULL, true);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_mx(&t.dns, "example", mx, 4);
	assert_int_equal(t.wakes, 1);
	/* A and AAAA of the best host, in parallel; IPv4 first. */
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_a(&t.dns, "mx1.example", mx1_v6, 1);
	assert_int_equal(t.wakes, 1);
	fake_a(&t.dns, "mx1.example", mx1, 2);
	assert_int_equal(t.wakes, 2);
	assert_addr(&t.mx, "mx1.example", "192.0.2.1");
	assert_addr(&t.mx, "mx1.example", "192.0.2.2");
	assert_addr(&t.mx, "mx1.example", "2001:db8::1");
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_a(&t.dns, "mx2.example", mx2, 1);
	fake_status(&t.dns, "mx2.example", PTL_DNS_AAAA, PTL_DNS_NODATA);
	assert_addr(&t.mx, "mx2.example", "192.0.2.20");
	/* A host without addresses is skipped. */
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "gone.example", PTL_DNS_A, PTL_DNS_NXDOMAIN);
	fake_status(&t.dns, "gone.example", PTL_DNS_AAAA, PTL_DNS_NXDOMAIN);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "mx3.example", PTL_DNS_AAAA, PTL_DNS_NODATA);
	fake_a(&t.dns, "mx3.example", mx3, 1);
	assert_addr(&t.mx, "mx3.example", "192.0.2.30");
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_DEFERRED);
	assert_string_equal(t.mx.reason,
	                    "451 4.4.1 no more hosts to try for example");
	assert_int_equal(t.dns.cancelled, 0);
}

static void
test_resolve_implicit(void **state)
{
	static const char *const ip[] = {"192.0.2.7"};
	struct mx_test t;

	mx_setup(&t, "plain.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "plain.example", PTL_DNS_MX, PTL_DNS_NODATA);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	assert_true(t.mx.implicit);
	fake_a(&t.dns, "plain.example", ip, 1);
	assert_addr(&t.mx, "plain.example", "192.0.2.7");
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);

	/* No MX and no address: the domain takes no mail. */
	mx_setup(&t, "nomail.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "nomail.example", PTL_DNS_MX, PTL_DNS_NODATA);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "nomail.example", PTL_DNS_A, PTL_DNS_NODATA);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_FAILED);
	assert_memory_equal(t.mx.reason, "550 5.1.2 ", 10);
}

static void
test_resolve_failures(void **state)
{
	static const struct ptl_dns_mx null_mx[] = {{0, ""}};
	static const struct ptl_dns_mx one[] = {{10, "mx.example"}};
	struct mx_test t;

	mx_setup(&t, "null.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_mx(&t.dns, "null.example", null_mx, 1);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_FAILED);
	assert_string_equal(t.mx.reason,
	                    "556 5.1.10 null MX: null.example accepts no mail");

	mx_setup(&t, "nx.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "nx.example", PTL_DNS_MX, PTL_DNS_NXDOMAIN);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_FAILED);
	assert_memory_equal(t.mx.reason, "550 5.1.2 ", 10);

	mx_setup(&t, "slow.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "slow.example", PTL_DNS_MX, PTL_DNS_TEMPFAIL);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_DEFERRED);
	assert_string_equal(t.mx.reason, "451 4.4.3 MX lookup of "
	                                 "slow.example failed: timeout");

	/* The MX host's address lookup fails for now: deferred. */
	mx_setup(&t, "tmp.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_mx(&t.dns, "tmp.example", one, 1);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "mx.example", PTL_DNS_A, PTL_DNS_TEMPFAIL);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_DEFERRED);
	assert_memory_equal(t.mx.reason, "451 4.4.3 ", 10);

	/* Every MX host without an address: a hard failure. */
	mx_setup(&t, "dead.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_mx(&t.dns, "dead.example", one, 1);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "mx.example", PTL_DNS_A, PTL_DNS_NXDOMAIN);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_FAILED);
	assert_memory_equal(t.mx.reason, "550 5.4.4 ", 10);

	/* Reasons are one printable line whatever the name held. */
	mx_setup(&t, "a\r\nb.example", NULL, false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_status(&t.dns, "a\r\nb.example", PTL_DNS_MX, PTL_DNS_NXDOMAIN);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_null(strchr(t.mx.reason, '\r'));
	assert_null(strchr(t.mx.reason, '\n'));
}

static void
test_resolve_route_and_literals(void **state)
{
	static const char *const ip[] = {"198.51.100.5"};
	struct mx_test t;

	/* A smarthost by name: A/AAAA only, no MX lookup. */
	mx_setup(&t, "example", "smart.example", false);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_a(&t.dns, "smart.example", ip, 1);
	assert_addr(&t.mx, "smart.example", "198.51.100.5");
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.dns.started, 1);

	/* Addresses need no DNS at all. */
	mx_setup(&t, "example", "[192.0.2.9]", true);
	assert_addr(&t.mx, "192.0.2.9", "192.0.2.9");
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	mx_setup(&t, "example", "2001:db8::9", true);
	assert_addr(&t.mx, "2001:db8::9", "2001:db8::9");
	mx_setup(&t, "[IPv6:2001:db8::a]", NULL, true);
	assert_addr(&t.mx, "2001:db8::a", "2001:db8::a");
	mx_setup(&t, "[192.0.2.1", NULL, true);
	assert_int_equal(relay_mx_next(&t.mx), PTL_DONE);
	assert_int_equal(t.mx.status, RELAY_RCPT_FAILED);
	assert_int_equal(t.dns.started, 0);
}

static void
test_cancel(void **state)
{
	static const struct ptl_dns_mx one[] = {{10, "mx.example"}};
	struct mx_test t;

	mx_setup(&t, "example", NULL, true);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	relay_mx_cancel(&t.mx);
	assert_int_equal(t.dns.cancelled, 1);

	mx_setup(&t, "example", NULL, true);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	fake_mx(&t.dns, "example", one, 1);
	assert_int_equal(relay_mx_next(&t.mx), PTL_AGAIN);
	relay_mx_cancel(&t.mx);
	assert_int_equal(t.dns.cancelled, 2);
	relay_mx_cancel(&t.mx);
	assert_int_equal(t.dns.cancelled, 2);
}

static void
test_no_resolver(void **state)
{
	struct relay_mx mx;
	struct relay_mx_params p = {
	    .domain = "example",
	    .want_ipv4 = true,
	    .rnd = rand_first,
	    .wake = on_wake,
	};

	relay_mx_init(&mx, &p);
	assert_int_equal(relay_mx_next(&mx), PTL_DONE);
	assert_int_equal(mx.status, RELAY_RCPT_DEFERRED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_preference),
	    cmocka_unit_test(test_order_shuffle),
	    cmocka_unit_test(test_order_null_mx),
	    cmocka_unit_test(test_order_self),
	    cmocka_unit_test(test_resolve_mx_fallback),
	    cmocka_unit_test(test_resolve_implicit),
	    cmocka_unit_test(test_resolve_failures),
	    cmocka_unit_test(test_resolve_route_and_literals),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_no_resolver),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
