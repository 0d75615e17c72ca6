/* SPDX-License-Identifier: MIT */
/* The resolver service on a real loop, against a fake DNS server. */

/*
 * The fake server is a UDP socket on 127.0.0.1 watched by the same loop.
 * It answers by name:
 *   ok.test        A 192.0.2.1 TTL 60; AD set when the query had AD
 *   nx.test        NXDOMAIN with an SOA (TTL 300, MINIMUM 120)
 *   servfail.test  SERVFAIL
 *   silent.test    nothing (the lookup times out)
 *   slow*.test     A 192.0.2.2 TTL 60, 150 ms later
 *   *.in-addr.arpa PTR host.test
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "core/loop.h"
#include "resolver_internal.h"

#define MAX_DELAYED 8

struct delayed {
	struct ptl_timer *timer;
	unsigned char msg[512];
	size_t len;
	struct sockaddr_in to;
	bool used;
};

static struct {
	int fd;
	uint16_t port;
	struct ptl_io *io;
	unsigned queries;
	char last_name[RESOLVER_NAME_BUF];
	bool last_ad;
	bool last_opt;
	struct delayed delayed[MAX_DELAYED];
} server;

static struct resolver_conf conf;
static char servers_csv[64];
static struct resolver *r;
static const struct ptl_resolver_methods *m = &resolver_methods;

/* ---- The fake server ------------------------------------------------ */

static void
put16(unsigned char *p, size_t *len, unsigned v)
{
	p[(*len)++] = (unsigned char)(v >> 8);
	p[(*len)++] = (unsigned char)v;
}

static void
put32(unsigned char *p, size_t *len, uint32_t v)
{
	put16(p, len, v >> 16);
	put16(p, len, v & 0xffff);
}

static void
put_name(unsigned char *p, size_t *len, const char *name)
{
	while (*name != '\0') {
		const char *dot = strchr(name, '.');
		size_t n = dot ? (size_t)(dot - name) : strlen(name);

		p[(*len)++] = (unsigned char)n;
		memcpy(p + *len, name, n);
		*len += n;
		name += n + (dot ? 1 : 0);
	}
	p[(*len)++] = 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void
delayed_fire(struct ptl_timer *t, void *arg)
{
	struct delayed *d = arg;

	(void)sendto(server.fd, d->msg, d->len, 0, (struct sockaddr *)&d->to,
	             sizeof(d->to));
	d->used = false;
}

/* Build and send (or delay) the reply to one query. */
static void
server_answer(const unsigned char *q, size_t qlen, struct sockaddr_in *from)
{
	unsigned char out[512];
	size_t len, qend = 12, at;
	unsigned flags = 0x8180, an = 0, ns = 0;
	uint16_t qtype;

	/* Question name, no compression in queries. */
	server.last_name[0] = '\0';
	while (qend < qlen && q[qend] != 0) {
		size_t n = q[qend];

		if (server.last_name[0] != '\0')
			strcat(server.last_name, ".");
		strncat(server.last_name, (const char *)q + qend + 1, n);
		qend += n + 1;
	}
	qend += 1;
	qtype = (uint16_t)((q[qend] << 8) | q[qend + 1]);
	qend += 4;
	server.queries++;
	server.last_ad = (q[3] & 0x20) != 0;
	server.last_opt = ((q[10] << 8) | q[11]) > 0;

	memcpy(out, q, qend);
	len = qend;
	if (strcmp(server.last_name, "silent.test") == 0)
		return;
	if (strcmp(server.last_name, "servfail.test") == 0) {
		flags |= 2;
	} else if (strcmp(server.last_name, "nx.test") == 0) {
		flags |= 3;
		ns = 1;
		put_name(out, &len, "test");
		put16(out, &len, 6);
		put16(out, &len, 1);
		put32(out, &len, 300);
		at = len;
		put16(out, &len, 0);
		put_name(out, &len, "ns.test");
		put_name(out, &len, "hostmaster.test");
		for (int i = 0; i < 4; i++)
			put32(out, &len, 1000);
		put32(out, &len, 120);
		out[at + 1] = (unsigned char)(len - at - 2);
	} else if (ends_with(server.last_name, ".in-addr.arpa") &&
	           qtype == PTL_DNS_PTR) {
		an = 1;
		put16(out, &len, 0xc00c);
		put16(out, &len, PTL_DNS_PTR);
		put16(out, &len, 1);
		put32(out, &len, 60);
		put16(out, &len, 11);
		put_name(out, &len, "host.test");
	} else if (qtype == PTL_DNS_A) {
		bool slow = strncmp(server.last_name, "slow", 4) == 0;

		an = 1;
		put16(out, &len, 0xc00c);
		put16(out, &len, PTL_DNS_A);
		put16(out, &len, 1);
		put32(out, &len, 60);
		put16(out, &len, 4);
		put32(out, &len, slow ? 0xc0000202 : 0xc0000201);
		if (server.last_ad)
			flags |= 0x20;
		if (slow) {
			for (int i = 0; i < MAX_DELAYED; i++) {
				struct delayed *d = &server.delayed[i];

				if (d->used)
					continue;
				out[2] = (unsigned char)(flags >> 8);
				out[3] = (unsigned char)flags;
				out[6] = 0;
				out[7] = (unsigned char)an;
				out[10] = out[11] = 0;
				memcpy(d->msg, out, len);
				d->len = len;
				d->to = *from;
				d->used = true;
				ptl_timer_start(d->timer, 150);
				return;
			}
			fail_msg("too many delayed replies");
		}
	}
	out[2] = (unsigned char)(flags >> 8);
	out[3] = (unsigned char)flags;
	out[6] = 0;
	out[7] = (unsigned char)an;
	out[8] = 0;
	out[9] = (unsigned char)ns;
	out[10] = out[11] = 0; /* no OPT in the reply */
	(void)sendto(server.fd, out, len, 0, (struct sockaddr *)from,
	             sizeof(*from));
}

static void
server_on_read(struct ptl_io *io, unsigned events, void *arg)
{
	unsigned char q[1500];
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	while ((n = recvfrom(server.fd, q, sizeof(q), 0,
	                     (struct sockaddr *)&from, &fromlen)) > 0) {
		if (n >= 17)
			server_answer(q, (size_t)n, &from);
		fromlen = sizeof(from);
	}
}

static void
server_start(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	memset(&server, 0, sizeof(server));
	server.fd =
	    socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(server.fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(server.fd, (struct sockaddr *)&sin, sizeof(sin)),
	                 0);
	assert_int_equal(getsockname(server.fd, (struct sockaddr *)&sin, &len),
	                 0);
	server.port = ntohs(sin.sin_port);
	server.io = ptl_io_add(server.fd, PTL_IO_READ, server_on_read, NULL);
	assert_non_null(server.io);
	for (int i = 0; i < MAX_DELAYED; i++) {
		server.delayed[i].timer =
		    ptl_timer_new(delayed_fire, &server.delayed[i]);
		assert_non_null(server.delayed[i].timer);
	}
}

static void
server_stop(void)
{
	for (int i = 0; i < MAX_DELAYED; i++)
		ptl_timer_free(server.delayed[i].timer);
	ptl_io_remove(server.io);
	close(server.fd);
}

/* ---- Running the loop ------------------------------------------------- */

struct outcome {
	int calls;
	enum ptl_dns_status status;
	uint32_t ttl;
	bool secure;
	bool cached;
	size_t count;
	char name[RESOLVER_NAME_BUF];
	char reason[128];
	char first[64]; /* first record as text */
};

static int pending_calls;
/* Set by the test to check that no callback runs inside lookup(). */
static bool inside_lookup;

static void
exit_loop(struct ptl_timer *t, void *arg)
{
	ptl_loop_exit();
}

/* Run until every expected callback ran, or @ms passed. */
static void
run_for(int64_t ms)
{
	struct ptl_timer *t = ptl_timer_new(exit_loop, NULL);

	assert_non_null(t);
	ptl_timer_start(t, ms);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	ptl_timer_free(t);
}

static void
on_result(const struct ptl_dns_result *res, void *arg)
{
	struct outcome *o = arg;

	if (inside_lookup)
		fail_msg("completion ran inside lookup()");
	o->calls++;
	o->status = res->status;
	o->ttl = res->ttl;
	o->secure = res->secure;
	o->cached = res->cached;
	o->count = res->count;
	snprintf(o->name, sizeof(o->name), "%s", res->name);
	snprintf(o->reason, sizeof(o->reason), "%s",
	         res->reason ? res->reason : "");
	o->first[0] = '\0';
	if (res->count > 0 && res->type == PTL_DNS_A)
		inet_ntop(AF_INET, &res->addrs[0].in4, o->first,
		          sizeof(o->first));
	else if (res->count > 0 && res->type == PTL_DNS_PTR)
		snprintf(o->first, sizeof(o->first), "%s", res->ptr[0]);
	if (--pending_calls == 0)
		ptl_loop_exit();
}

static struct ptl_dns_query *
start(const char *name, enum ptl_dns_type type, struct outcome *o)
{
	struct ptl_dns_query *q = NULL;

	inside_lookup = true;
	assert_int_equal(m->lookup(r, name, type, on_result, o, &q), PTL_AGAIN);
	inside_lookup = false;
	assert_non_null(q);
	/* Never answered from inside the call, even from the cache. */
	assert_int_equal(o->calls, 0);
	pending_calls++;
	return q;
}

static void
wait_all(void)
{
	run_for(3000);
	assert_int_equal(pending_calls, 0);
}

static int
setup_with(bool edns, bool ad, int64_t timeout_ms)
{
	struct ptl_error err;

	assert_int_equal(ptl_loop_init(&err), PTL_OK);
	server_start();
	snprintf(servers_csv, sizeof(servers_csv), "127.0.0.1:%u", server.port);
	memset(&conf, 0, sizeof(conf));
	conf.servers_csv = servers_csv;
	conf.timeout_ms = timeout_ms;
	conf.tries = 1;
	conf.cache_size = 100;
	conf.cache_memory = 1 << 20;
	conf.max_ttl_ms = 86400000;
	conf.negative_ttl_ms = 3600000;
	conf.edns = edns;
	conf.dnssec_ad = ad;
	if (resolver_new(&conf, &r, &err) != PTL_OK)
		fail_msg("resolver_new: %s", err.text);
	pending_calls = 0;
	return 0;
}

static int
setup(void **state)
{
	return setup_with(true, true, 300);
}

static int
setup_plain(void **state)
{
	return setup_with(false, false, 300);
}

static int
teardown(void **state)
{
	resolver_free(r);
	r = NULL;
	server_stop();
	ptl_loop_fini();
	return 0;
}

/* ---- Tests -------------------------------------------------------------- */

static void
test_answer_then_cache(void **state)
{
	struct outcome a = {0}, b = {0};
	struct ptl_resolver_stats st;

	start("OK.test.", PTL_DNS_A, &a);
	wait_all();
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, PTL_DNS_OK);
	assert_string_equal(a.name, "ok.test");
	assert_string_equal(a.first, "192.0.2.1");
	assert_int_equal(a.ttl, 60);
	assert_false(a.cached);
	/* The query asked for AD and carried EDNS; the answer had AD. */
	assert_true(server.last_ad);
	assert_true(server.last_opt);
	assert_true(a.secure);

	start("ok.test", PTL_DNS_A, &b);
	wait_all();
	assert_int_equal(b.calls, 1);
	assert_true(b.cached);
	assert_true(b.secure);
	assert_string_equal(b.first, "192.0.2.1");
	assert_true(b.ttl <= 60 && b.ttl >= 59);
	assert_int_equal(server.queries, 1);

	m->stats(r, &st);
	assert_int_equal(st.lookups, 2);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.entries, 1);
}

static void
test_no_ad_no_edns(void **state)
{
	struct outcome a = {0};

	start("ok.test", PTL_DNS_A, &a);
	wait_all();
	assert_int_equal(a.status, PTL_DNS_OK);
	assert_false(server.last_ad);
	assert_false(server.last_opt);
	assert_false(a.secure);
}

static void
test_invalid_name_async(void **state)
{
	struct outcome a = {0}, b = {0};
	char huge[600];

	start("bad name.test", PTL_DNS_MX, &a);
	memset(huge, 'a', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	start(huge, PTL_DNS_TXT, &b);
	wait_all();
	assert_int_equal(a.status, PTL_DNS_PERMFAIL);
	assert_non_null(strstr(a.reason, "invalid name"));
	assert_int_equal(b.status, PTL_DNS_PERMFAIL);
	assert_int_equal(server.queries, 0);

	/* Bad arguments are refused at once, nothing is called. */
	assert_int_equal(
	    m->lookup(r, "x.test", (enum ptl_dns_type)5, on_result, &a, NULL),
	    PTL_ERROR);
	assert_int_equal(m->lookup(r, "x.test", PTL_DNS_A, NULL, &a, NULL),
	                 PTL_ERROR);
	assert_int_equal(
	    m->lookup(NULL, "x.test", PTL_DNS_A, on_result, &a, NULL),
	    PTL_ERROR);
}

static void
test_negative_cached(void **state)
{
	struct outcome a = {0}, b = {0};

	start("nx.test", PTL_DNS_A, &a);
	wait_all();
	assert_int_equal(a.status, PTL_DNS_NXDOMAIN);
	assert_int_equal(a.ttl, 120);
	start("nx.test", PTL_DNS_A, &b);
	wait_all();
	assert_int_equal(b.status, PTL_DNS_NXDOMAIN);
	assert_true(b.cached);
	assert_int_equal(server.queries, 1);
}

static void
test_failures_not_cached(void **state)
{
	struct outcome a = {0}, b = {0}, c = {0};
	struct ptl_resolver_stats st;

	start("servfail.test", PTL_DNS_A, &a);
	start("silent.test", PTL_DNS_A, &c);
	wait_all();
	assert_int_equal(a.status, PTL_DNS_TEMPFAIL);
	assert_non_null(strstr(a.reason, "SERVFAIL"));
	assert_int_equal(c.status, PTL_DNS_TEMPFAIL);
	assert_string_equal(c.reason, "timeout");
	start("servfail.test", PTL_DNS_A, &b);
	wait_all();
	assert_int_equal(b.status, PTL_DNS_TEMPFAIL);
	assert_false(b.cached);
	m->stats(r, &st);
	assert_int_equal(st.tempfails, 3);
	assert_int_equal(st.entries, 0);
}

static void
test_joined_queries(void **state)
{
	struct outcome o[3] = {{0}};
	struct ptl_resolver_stats st;

	for (int i = 0; i < 3; i++)
		start("slow1.test", PTL_DNS_A, &o[i]);
	wait_all();
	for (int i = 0; i < 3; i++) {
		assert_int_equal(o[i].calls, 1);
		assert_int_equal(o[i].status, PTL_DNS_OK);
		assert_string_equal(o[i].first, "192.0.2.2");
	}
	assert_int_equal(server.queries, 1);
	m->stats(r, &st);
	assert_int_equal(st.joined, 2);
}

static void
test_cancel_in_flight(void **state)
{
	struct outcome a = {0}, b = {0}, c = {0};
	struct ptl_dns_query *qa, *qb;
	struct ptl_resolver_stats st;

	qa = start("slow2.test", PTL_DNS_A, &a);
	qb = start("slow2.test", PTL_DNS_A, &b);
	m->cancel(r, qa);
	pending_calls--;
	start("slow2.test", PTL_DNS_A, &c);
	m->cancel(r, qb);
	pending_calls--;
	wait_all();
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 0);
	assert_int_equal(c.calls, 1);

	/* All waiters gone: the answer still lands in the cache. */
	qa = start("slow3.test", PTL_DNS_A, &a);
	m->cancel(r, qa);
	pending_calls--;
	run_for(400);
	assert_int_equal(a.calls, 0);
	m->stats(r, &st);
	assert_int_equal(st.cancelled, 3);
	assert_int_equal(st.entries, 2);
}

static void
test_cancel_cached_before_delivery(void **state)
{
	struct outcome a = {0}, b = {0};
	struct ptl_dns_query *q;

	start("ok.test", PTL_DNS_A, &a);
	wait_all();
	/* A cache hit is queued for delivery; cancel it before the loop
	 * runs: it must never arrive. Same for an invalid name. */
	q = start("ok.test", PTL_DNS_A, &b);
	m->cancel(r, q);
	pending_calls--;
	q = start("in valid", PTL_DNS_A, &b);
	m->cancel(r, q);
	pending_calls--;
	run_for(100);
	assert_int_equal(b.calls, 0);
}

/* A completion that cancels a sibling still waiting for delivery. */
static struct ptl_dns_query *sibling;

static void
on_result_cancel_sibling(const struct ptl_dns_result *res, void *arg)
{
	on_result(res, arg);
	if (sibling != NULL) {
		m->cancel(r, sibling);
		sibling = NULL;
		if (--pending_calls == 0)
			ptl_loop_exit();
	}
}

static void
test_cancel_from_completion(void **state)
{
	struct outcome a = {0}, b = {0};
	struct ptl_dns_query *q = NULL;

	assert_int_equal(m->lookup(r, "slow4.test", PTL_DNS_A,
	                           on_result_cancel_sibling, &a, &q),
	                 PTL_AGAIN);
	pending_calls++;
	sibling = start("slow4.test", PTL_DNS_A, &b);
	wait_all();
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 0);
}

/* A completion that starts a lookup: it is delivered later, not nested. */
static struct outcome chained;

static void
on_result_chain(const struct ptl_dns_result *res, void *arg)
{
	/* Counted first, so that on_result() does not end the loop. */
	pending_calls++;
	on_result(res, arg);
	inside_lookup = true;
	assert_int_equal(
	    m->lookup(r, "ok.test", PTL_DNS_A, on_result, &chained, NULL),
	    PTL_AGAIN);
	inside_lookup = false;
	assert_int_equal(chained.calls, 0);
}

static void
test_lookup_from_completion(void **state)
{
	struct outcome a = {0};

	memset(&chained, 0, sizeof(chained));
	start("ok.test", PTL_DNS_A, &a);
	wait_all();
	assert_int_equal(
	    m->lookup(r, "ok.test", PTL_DNS_A, on_result_chain, &a, NULL),
	    PTL_AGAIN);
	pending_calls++;
	wait_all();
	assert_int_equal(chained.calls, 1);
	assert_true(chained.cached);
}

static void
test_ptr_lookup(void **state)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct sockaddr other = {.sa_family = AF_UNIX};
	struct outcome a = {0};

	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	assert_int_equal(
	    m->lookup_ptr(r, (struct sockaddr *)&sin, on_result, &a, NULL),
	    PTL_AGAIN);
	pending_calls++;
	wait_all();
	assert_string_equal(server.last_name, "1.2.0.192.in-addr.arpa");
	assert_int_equal(a.status, PTL_DNS_OK);
	assert_string_equal(a.first, "host.test");
	assert_int_equal(m->lookup_ptr(r, &other, on_result, &a, NULL),
	                 PTL_ERROR);
}

/* Freeing with lookups pending calls none of them (exit_worker). */
static void
test_free_with_pending(void **state)
{
	struct outcome a = {0}, b = {0}, c = {0};

	start("slow5.test", PTL_DNS_A, &a);
	start("ok.test", PTL_DNS_A, &b);
	run_for(50);
	start("ok.test", PTL_DNS_A, &c); /* cached, queued for delivery */
	resolver_free(r);
	r = NULL;
	assert_int_equal(a.calls, 0);
	assert_int_equal(c.calls, 0);
}

static void
test_servers_normalize(void **state)
{
	struct ptl_error err;
	char out[64];

	assert_int_equal(
	    resolver_server_normalize("192.0.2.1", out, sizeof(out), &err),
	    PTL_OK);
	assert_string_equal(out, "192.0.2.1:53");
	assert_int_equal(
	    resolver_server_normalize("127.0.0.1:5353", out, sizeof(out), &err),
	    PTL_OK);
	assert_string_equal(out, "127.0.0.1:5353");
	assert_int_equal(
	    resolver_server_normalize("::1", out, sizeof(out), &err), PTL_OK);
	assert_string_equal(out, "[::1]:53");
	assert_int_equal(resolver_server_normalize("[2001:db8::1]:54", out,
	                                           sizeof(out), &err),
	                 PTL_OK);
	assert_string_equal(out, "[2001:db8::1]:54");
	const char *bad[] = {"ns.example.test",
	                     "1.2.3.4:0",
	                     "1.2.3.4:70000",
	                     "1.2.3.4:",
	                     "[::1",
	                     "[::1]x",
	                     "1.2.3.4:53x",
	                     "",
	                     "1.2.3.4:-1",
	                     NULL};
	for (int i = 0; bad[i] != NULL; i++) {
		if (resolver_server_normalize(bad[i], out, sizeof(out), &err) !=
		    PTL_ERROR)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_answer_then_cache, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_no_ad_no_edns, setup_plain,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_name_async, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_negative_cached, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_failures_not_cached, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_joined_queries, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_cached_before_delivery,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cancel_from_completion, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_lookup_from_completion, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_ptr_lookup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_free_with_pending, setup,
	                                    teardown),
	    cmocka_unit_test(test_servers_normalize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
