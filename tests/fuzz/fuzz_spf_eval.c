/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the SPF evaluator fed hostile DNS answers. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spf.h"

/*
 * Input: one flag byte, then the answers to the evaluator's questions,
 * consumed in the order it asks them. Each answer starts with a control
 * byte: its low three bits the status (0-3 OK, 4 NODATA, 5 NXDOMAIN, 6
 * TEMPFAIL, 7 PERMFAIL), the next three the records (1 to 8) of an OK
 * answer; then per record: TXT a 16-bit length and the bytes, A 4
 * bytes, AAAA 16, MX a 16-bit preference and a name, PTR a name (a
 * length byte, then bytes made into a name that resolver.h allows).
 * When the input runs out, every name is NXDOMAIN.
 *
 * The fake resolver answers from the harness's loop, never inside
 * lookup(), and frees each answer as soon as its completion returns, as
 * the real one does. Flag bits: 0 IPv6 client, 1 HELO identity, 2 fetch
 * explanations, 3 null sender, 4-7 (when nonzero) free the evaluation
 * after that many answers, with its question pending.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* Far more answers than the lookup limits allow (SPF_LOOKUPS_HARD_MAX
 * lookups, each with up to SPF_NAMES_MAX names): more is a loop. */
#define FUZZ_MAX_ANSWERS 2000

struct ptl_dns_query {
	struct ptl_dns_query *next;
	char name[SPF_EXPAND_MAX];
	enum ptl_dns_type type;
	ptl_dns_fn done;
	void *arg;
};

static struct ptl_dns_query *fuzz_queue;
static unsigned fuzz_pending, fuzz_done_calls;
static const uint8_t *fuzz_in;
static size_t fuzz_left;

static int
fuzz_lookup(void *inst, const char *name, enum ptl_dns_type type,
            ptl_dns_fn done, void *arg, struct ptl_dns_query **query_out)
{
	struct ptl_dns_query *q, **tail;

	(void)inst;
	CHECK(name != NULL && done != NULL);
	CHECK(strlen(name) < sizeof(q->name));
	CHECK(type == PTL_DNS_A || type == PTL_DNS_AAAA || type == PTL_DNS_MX ||
	      type == PTL_DNS_TXT || type == PTL_DNS_PTR);
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return PTL_ERROR;
	memcpy(q->name, name, strlen(name) + 1);
	q->type = type;
	q->done = done;
	q->arg = arg;
	for (tail = &fuzz_queue; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = q;
	fuzz_pending++;
	if (query_out != NULL)
		*query_out = q;
	return PTL_AGAIN;
}

static int
fuzz_lookup_ptr(void *inst, const struct sockaddr *sa, ptl_dns_fn done,
                void *arg, struct ptl_dns_query **query_out)
{
	CHECK(sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
	return fuzz_lookup(inst, "reverse.arpa", PTL_DNS_PTR, done, arg,
	                   query_out);
}

static void
fuzz_cancel(void *inst, struct ptl_dns_query *query)
{
	struct ptl_dns_query **p;

	(void)inst;
	for (p = &fuzz_queue; *p != NULL; p = &(*p)->next) {
		if (*p == query) {
			*p = query->next;
			free(query);
			fuzz_pending--;
			return;
		}
	}
	abort(); /* not pending */
}

static const struct ptl_resolver_methods fuzz_methods = {
    .version = 1,
    .lookup = fuzz_lookup,
    .lookup_ptr = fuzz_lookup_ptr,
    .cancel = fuzz_cancel,
};

static unsigned
fuzz_byte(void)
{
	if (fuzz_left == 0)
		return 0;
	fuzz_left--;
	return *fuzz_in++;
}

static size_t
fuzz_take(size_t want, const uint8_t **out)
{
	size_t n = want < fuzz_left ? want : fuzz_left;

	*out = fuzz_in;
	fuzz_in += n;
	fuzz_left -= n;
	return n;
}

/* A name as the resolver hands them out: lower case, letters, digits,
 * '-' and '_' in labels of 1 to 63, no trailing dot. */
static char *
fuzz_name(void)
{
	static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789-_.";
	const uint8_t *p;
	size_t n = fuzz_take(fuzz_byte() % 254, &p), o = 0, label = 0;
	char *name = malloc(n + 1);

	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char c = chars[p[i] % (sizeof(chars) - 1)];

		if (c == '.' && (label == 0 || i + 1 == n))
			c = 'a';
		if (c != '.' && label == 63)
			c = '.';
		name[o++] = c;
		label = c == '.' ? 0 : label + 1;
	}
	name[o] = '\0';
	return name;
}

/* Answer the first pending question from the input. */
static void
fuzz_answer_one(void)
{
	struct ptl_dns_query *q = fuzz_queue;
	struct ptl_dns_result res;
	unsigned c = fuzz_left > 0 ? fuzz_byte() : 5;
	size_t count = 0, i;
	void *records = NULL;
	char **names = NULL;
	const uint8_t *p;

	fuzz_queue = q->next;
	fuzz_pending--;
	memset(&res, 0, sizeof(res));
	res.type = q->type;
	res.name = q->name;
	switch (c & 7) {
	case 4:
		res.status = PTL_DNS_NODATA;
		res.canonical = q->name;
		break;
	case 5:
		res.status = PTL_DNS_NXDOMAIN;
		res.canonical = q->name;
		break;
	case 6:
		res.status = PTL_DNS_TEMPFAIL;
		res.reason = "timeout";
		break;
	case 7:
		res.status = PTL_DNS_PERMFAIL;
		res.reason = "malformed answer";
		break;
	default:
		res.status = PTL_DNS_OK;
		res.canonical = q->name;
		res.ttl = 300;
		count = ((c >> 3) & 7) + 1;
		break;
	}
	if (count > 0) {
		records = calloc(count, sizeof(struct ptl_dns_tlsa) +
		                            sizeof(struct ptl_dns_addr));
		names = calloc(count, sizeof(*names));
		CHECK(records != NULL && names != NULL);
	}
	for (i = 0; i < count; i++) {
		switch (q->type) {
		case PTL_DNS_TXT: {
			struct ptl_dns_txt *t = (struct ptl_dns_txt *)records;
			size_t want = fuzz_byte() << 8;

			want |= fuzz_byte();
			want = fuzz_take(want, &p);
			names[i] = malloc(want + 1);
			CHECK(names[i] != NULL);
			memcpy(names[i], p, want);
			names[i][want] = '\0';
			t[i].data = names[i];
			t[i].len = want;
			break;
		}
		case PTL_DNS_A:
		case PTL_DNS_AAAA: {
			struct ptl_dns_addr *a = (struct ptl_dns_addr *)records;
			size_t n = q->type == PTL_DNS_A ? 4 : 16;

			a[i].family = q->type == PTL_DNS_A ? AF_INET : AF_INET6;
			n = fuzz_take(n, &p);
			memcpy(&a[i].in6, p, n);
			break;
		}
		case PTL_DNS_MX: {
			struct ptl_dns_mx *mx = (struct ptl_dns_mx *)records;

			mx[i].preference = (uint16_t)fuzz_byte();
			names[i] = fuzz_name();
			CHECK(names[i] != NULL);
			mx[i].exchange = names[i];
			break;
		}
		default: /* PTR: never the root */
			names[i] = fuzz_name();
			CHECK(names[i] != NULL);
			((const char **)records)[i] =
			    names[i][0] != '\0' ? names[i] : "a";
			break;
		}
	}
	res.count = count;
	res.addrs = records;
	q->done(&res, q->arg);
	/* The answer is gone once the completion returns. */
	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
	free(records);
	free(q);
}

static void
fuzz_on_done(struct spf_eval *ev, void *arg)
{
	(void)ev;
	CHECK(arg == &fuzz_done_calls);
	fuzz_done_calls++;
}

static void
fuzz_check_outcome(const struct spf_outcome *out, bool v6)
{
	char field[900];
	size_t i;

	CHECK((unsigned)out->result < SPF_RESULTS);
	CHECK(memchr(out->sender, '\0', sizeof(out->sender)) != NULL);
	CHECK(memchr(out->domain, '\0', sizeof(out->domain)) != NULL);
	CHECK(memchr(out->mechanism, '\0', sizeof(out->mechanism)) != NULL);
	CHECK(memchr(out->problem, '\0', sizeof(out->problem)) != NULL);
	CHECK(memchr(out->explanation, '\0', sizeof(out->explanation)) != NULL);
	for (i = 0; out->explanation[i] != '\0'; i++)
		CHECK(out->explanation[i] >= 0x20 &&
		      out->explanation[i] < 0x7f);
	CHECK(out->explanation[0] == '\0' || out->result == SPF_FAIL);
	CHECK(out->lookups <= SPF_LOOKUPS_HARD_MAX + 1);
	spf_received_field(out, v6 ? "2001:db8::1" : "192.0.2.1",
	                   "mail.example.com", "mx.example.org", field,
	                   sizeof(field));
	for (i = 0; field[i] != '\0'; i++)
		CHECK(field[i] >= 0x20 && field[i] < 0x7f);
	spf_trace_result(out, false, "mail.example.com", field, sizeof(field));
	for (i = 0; field[i] != '\0'; i++)
		CHECK(field[i] >= 0x20 && field[i] < 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct spf_limits limits = {10, 2, true};
	struct spf_limits lim = limits;
	struct spf_request req;
	struct spf_eval *ev;
	unsigned flags, answers = 0, stop_after;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	fuzz_in = data + 1;
	fuzz_left = size - 1;
	fuzz_queue = NULL;
	fuzz_pending = 0;
	fuzz_done_calls = 0;
	stop_after = flags >> 4;
	lim.explain = (flags & 4) != 0;

	memset(&req, 0, sizeof(req));
	req.ip = (flags & 1) ? "2001:db8::1" : "192.0.2.1";
	req.sender = (flags & 8) ? "" : "user.name@example.com";
	req.helo = "mail.example.com";
	req.receiver = "mx.example.org";
	req.now = 1700000000;
	req.helo_identity = (flags & 2) != 0;

	ev = spf_eval_new(&fuzz_methods, NULL, &lim, &req);
	if (ev == NULL)
		return 0;
	rc = spf_eval_start(ev, fuzz_on_done, &fuzz_done_calls);
	CHECK(rc == PTL_DONE || rc == PTL_AGAIN);
	CHECK(fuzz_done_calls == 0); /* never from inside start */
	if (rc == PTL_DONE)
		CHECK(fuzz_queue == NULL);
	while (rc == PTL_AGAIN && fuzz_queue != NULL) {
		CHECK(fuzz_done_calls == 0);
		CHECK(fuzz_pending == 1); /* one question at a time */
		if (stop_after != 0 && answers == stop_after)
			break;
		CHECK(++answers <= FUZZ_MAX_ANSWERS);
		fuzz_answer_one();
	}
	if (rc == PTL_AGAIN && fuzz_queue == NULL)
		CHECK(fuzz_done_calls == 1);
	if (rc == PTL_DONE || fuzz_done_calls == 1)
		fuzz_check_outcome(spf_eval_outcome(ev), (flags & 1) != 0);
	/* Freeing with a question pending cancels it. */
	spf_eval_free(ev);
	CHECK(fuzz_queue == NULL && fuzz_pending == 0);
	return 0;
}
