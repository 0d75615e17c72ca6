/* SPDX-License-Identifier: MIT */
/* Test module: a filter whose verdict at each hook comes from the config. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>

/*
 * {"connect"|"helo"|"mail"|"rcpt"|"data"|"relay": {
 *     "action": "continue|accept|reject|tempfail|discard|quarantine|
 *                hang|error",
 *     "code": 554, "enhanced": "5.7.1", "text": "go away",
 *     "match": "substring",   only when the peer IP / HELO / sender /
 *                             recipient / message contains it
 *     "delay": "200ms",       answer asynchronously after this
 *     "header": "X-Test: yes",
 *     "folder": "Junk",
 *     "result": "test=pass",  trace result (filter.h version 2)
 *     "remove_header": "X-Old", "replace_header": "Subject: new",
 *     "header_index": 0,      which instance they act on (0: all)
 *     "echo_trace": true},    add "X-Trace-Seen:" listing the trace
 *                             this check saw (filter/hook/action/result)
 *  "timeout": "2s",           the filter's own verdict timeout
 *  "fail_open": false}
 * "hang" never answers (tests the timeout), "error" returns PTL_ERROR.
 * Registered as the filter service "filter.test_filter"; built with
 * -DTF_NAME='"other"' it is module "other" with service "filter.other"
 * (the out-of-tree build in test_filter_chain.py does that).
 */

#ifndef TF_NAME
#define TF_NAME "test_filter"
#endif

/* The v1 hooks plus RELAY. */
#define TF_HOOKS 6

enum tf_action {
	TF_NONE = 0,
	TF_CONTINUE,
	TF_ACCEPT,
	TF_REJECT,
	TF_TEMPFAIL,
	TF_DISCARD,
	TF_QUARANTINE,
	TF_HANG,
	TF_ERROR,
};

static const char *const tf_action_names[] = {
    "none",    "continue",   "accept", "reject", "tempfail",
    "discard", "quarantine", "hang",   "error",  NULL,
};

struct tf_hook_conf {
	int action;
	int64_t code;
	const char *enhanced;
	const char *text;
	const char *match;
	int64_t delay;
	const char *header;
	const char *folder;
	const char *result;
	const char *remove_header;
	const char *replace_header;
	int64_t header_index;
	bool echo_trace;
};

struct tf_conf {
	struct tf_hook_conf hooks[TF_HOOKS];
	int64_t timeout;
	bool fail_open;
};

static const struct ptl_conf_key tf_hook_keys[] = {
    {.name = "action",
     .type = PTL_CONF_ENUM,
     .def = "none",
     .offset = offsetof(struct tf_hook_conf, action),
     .enum_names = tf_action_names,
     .doc = "Verdict."},
    {.name = "code",
     .type = PTL_CONF_INT,
     .def = "0",
     .min = 0,
     .max = 999,
     .offset = offsetof(struct tf_hook_conf, code),
     .doc = "Reply code."},
    {.name = "enhanced",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, enhanced),
     .doc = "Enhanced status code."},
    {.name = "text",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, text),
     .doc = "Reply text."},
    {.name = "match",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, match),
     .doc = "Apply only when this substring is found."},
    {.name = "delay",
     .type = PTL_CONF_DURATION,
     .def = "0",
     .offset = offsetof(struct tf_hook_conf, delay),
     .doc = "Answer asynchronously after this."},
    {.name = "header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, header),
     .doc = "\"Name: value\" to add."},
    {.name = "folder",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, folder),
     .doc = "Quarantine folder."},
    {.name = "result",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, result),
     .doc = "Result for the trace."},
    {.name = "remove_header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, remove_header),
     .doc = "Field name to remove."},
    {.name = "replace_header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct tf_hook_conf, replace_header),
     .doc = "\"Name: value\" to put in place."},
    {.name = "header_index",
     .type = PTL_CONF_INT,
     .def = "0",
     .min = 0,
     .max = 1000,
     .offset = offsetof(struct tf_hook_conf, header_index),
     .doc = "Instance the edits act on (0: all)."},
    {.name = "echo_trace",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct tf_hook_conf, echo_trace),
     .doc = "Add X-Trace-Seen: with the trace seen."},
    {NULL},
};

#define TF_HOOK_KEY(n, i)                                                      \
	{                                                                      \
		.name = n, .type = PTL_CONF_OBJECT,                            \
		.offset = offsetof(struct tf_conf, hooks) +                    \
		          (i) * sizeof(struct tf_hook_conf),                   \
		.sub = tf_hook_keys, .doc = "Verdict at this hook."            \
	}

static const struct ptl_conf_key tf_keys[] = {
    TF_HOOK_KEY("connect", PTL_FILTER_CONNECT),
    TF_HOOK_KEY("helo", PTL_FILTER_HELO),
    TF_HOOK_KEY("mail", PTL_FILTER_MAIL),
    TF_HOOK_KEY("rcpt", PTL_FILTER_RCPT),
    TF_HOOK_KEY("data", PTL_FILTER_DATA),
    TF_HOOK_KEY("relay", PTL_FILTER_RELAY),
    {.name = "timeout",
     .type = PTL_CONF_DURATION,
     .def = "0",
     .offset = offsetof(struct tf_conf, timeout),
     .doc = "Verdict timeout (0: the smtp module's)."},
    {.name = "fail_open",
     .type = PTL_CONF_BOOL,
     .def = "false",
     .offset = offsetof(struct tf_conf, fail_open),
     .doc = "Continue when the filter fails."},
    {NULL},
};

/* A verdict prepared from the config. */
struct tf_hook {
	struct ptl_filter_verdict verdict;
	struct ptl_filter_header header;
	struct ptl_filter_header_edit edits[2];
};

/* Longest X-Trace-Seen: value. */
#define TF_TRACE_MAX 800

struct tf_pending {
	struct tf_pending *next;
	struct tf_state *st;
	struct ptl_timer *timer; /* NULL for "hang" */
	struct ptl_filter_verdict verdict;
	struct ptl_filter_header trace_header;
	char trace[TF_TRACE_MAX + 1];
	ptl_filter_done_fn done;
	void *arg;
};

struct tf_state {
	const struct tf_conf *conf;
	struct ptl_filter_methods methods;
	struct tf_hook hooks[TF_HOOKS];
	struct tf_pending *pending;
	struct ptl_filter_header sync_header;
	char sync_trace[TF_TRACE_MAX + 1];
};

static void
tf_unlink(struct tf_state *st, struct tf_pending *p)
{
	struct tf_pending **pp;

	for (pp = &st->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
}

static void
tf_pending_free(struct tf_state *st, struct tf_pending *p)
{
	tf_unlink(st, p);
	ptl_timer_free(p->timer);
	free(p);
}

static void
tf_on_timer(struct ptl_timer *t, void *arg)
{
	struct tf_pending *p = arg;
	struct tf_state *st = p->st;
	ptl_filter_done_fn done = p->done;
	void *darg = p->arg;

	/* Unlinked first: done() may cancel, which must not find it. */
	tf_unlink(st, p);
	done(&p->verdict, darg);
	ptl_timer_free(p->timer);
	free(p);
}

static bool
tf_matches(const struct tf_hook_conf *hc, const struct ptl_filter_request *r)
{
	const char *subject = NULL;
	char buf[65536];
	ssize_t n;

	if (hc->match == NULL)
		return true;
	switch (r->hook) {
	case PTL_FILTER_CONNECT:
		subject = r->peer_ip;
		break;
	case PTL_FILTER_HELO:
		subject = r->helo;
		break;
	case PTL_FILTER_MAIL:
		subject = r->mail_from;
		break;
	case PTL_FILTER_RCPT:
		subject = r->rcpt;
		break;
	case PTL_FILTER_DATA:
	case PTL_FILTER_RELAY:
		n = pread(r->message_fd, buf, sizeof(buf) - 1,
		          (off_t)r->message_body_offset);
		if (n < 0)
			return false;
		buf[n] = '\0';
		return memmem(buf, (size_t)n, hc->match, strlen(hc->match)) !=
		       NULL;
	}
	return subject != NULL && strstr(subject, hc->match) != NULL;
}

static const char *const tf_hook_names[] = {
    "connect", "helo", "mail", "rcpt", "data", "relay",
};

static const char *const tf_verdict_names[] = {
    "continue", "accept", "reject", "tempfail", "discard", "quarantine",
};

/* "filter/hook/action/result, ..." of what the request carries. */
static void
tf_trace_text(const struct ptl_filter_request *r, char *out, size_t cap)
{
	const struct ptl_filter_trace *e;
	size_t len = 0, i;
	int n;

	out[0] = '\0';
	if (r->struct_size <
	    offsetof(struct ptl_filter_request, ntrace) + sizeof(r->ntrace))
		return;
	for (i = 0; i < r->ntrace && len < cap; i++) {
		e = r->trace[i];
		n = snprintf(
		    out + len, cap - len, "%s%s/%s/%s/%s", i > 0 ? ", " : "",
		    e->filter,
		    (unsigned)e->hook < TF_HOOKS ? tf_hook_names[e->hook] : "?",
		    (unsigned)e->action <= PTL_FILTER_QUARANTINE
		        ? tf_verdict_names[e->action]
		        : "?",
		    e->result);
		if (n < 0)
			break;
		len += (size_t)n;
	}
	if (len >= cap)
		out[cap - 1] = '\0';
}

static int
tf_check(void *instance, const struct ptl_filter_request *req,
         struct ptl_filter_verdict *verdict_out, ptl_filter_done_fn done,
         void *arg)
{
	struct tf_state *st = instance;
	const struct tf_hook_conf *hc = &st->conf->hooks[req->hook];
	struct tf_pending *p;

	if (!tf_matches(hc, req)) {
		verdict_out->action = PTL_FILTER_CONTINUE;
		return PTL_OK;
	}
	if (hc->action == TF_ERROR)
		return PTL_ERROR;
	if (hc->action != TF_HANG && hc->delay <= 0) {
		*verdict_out = st->hooks[req->hook].verdict;
		if (hc->echo_trace) {
			/* One loop thread: the buffer holds until the session
			 * has copied the verdict. */
			tf_trace_text(req, st->sync_trace,
			              sizeof(st->sync_trace));
			st->sync_header.name = "X-Trace-Seen";
			st->sync_header.value = st->sync_trace;
			verdict_out->headers = &st->sync_header;
			verdict_out->nheaders = 1;
		}
		return PTL_OK;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return PTL_ERROR;
	p->verdict = st->hooks[req->hook].verdict;
	if (hc->echo_trace) {
		tf_trace_text(req, p->trace, sizeof(p->trace));
		p->trace_header.name = "X-Trace-Seen";
		p->trace_header.value = p->trace;
		p->verdict.headers = &p->trace_header;
		p->verdict.nheaders = 1;
	}
	p->st = st;
	p->done = done;
	p->arg = arg;
	if (hc->action != TF_HANG) {
		p->timer = ptl_timer_new(tf_on_timer, p);
		if (p->timer == NULL) {
			free(p);
			return PTL_ERROR;
		}
		ptl_timer_start(p->timer, hc->delay);
	}
	p->next = st->pending;
	st->pending = p;
	return PTL_AGAIN;
}

static void
tf_cancel(void *instance, void *arg)
{
	struct tf_state *st = instance;
	struct tf_pending *p, *next;

	for (p = st->pending; p != NULL; p = next) {
		next = p->next;
		if (p->arg == arg)
			tf_pending_free(st, p);
	}
}

static const enum ptl_filter_action tf_actions[] = {
    [TF_NONE] = PTL_FILTER_CONTINUE,
    [TF_CONTINUE] = PTL_FILTER_CONTINUE,
    [TF_ACCEPT] = PTL_FILTER_ACCEPT,
    [TF_REJECT] = PTL_FILTER_REJECT,
    [TF_TEMPFAIL] = PTL_FILTER_TEMPFAIL,
    [TF_DISCARD] = PTL_FILTER_DISCARD,
    [TF_QUARANTINE] = PTL_FILTER_QUARANTINE,
    [TF_HANG] = PTL_FILTER_CONTINUE,
    [TF_ERROR] = PTL_FILTER_CONTINUE,
};

/* "Name: value" into its two parts (in pool memory). */
static int
tf_split(struct ptl_pool *pool, const char *text, const char **name_out,
         const char **value_out, struct ptl_error *err)
{
	char *name, *colon;

	name = ptl_pstrdup(pool, text);
	if (name == NULL)
		return ptl_error_set(err, "out of memory");
	colon = strchr(name, ':');
	if (colon == NULL)
		return ptl_error_set(err, "expected \"Name: value\"");
	*colon++ = '\0';
	while (*colon == ' ')
		colon++;
	*name_out = name;
	*value_out = colon;
	return PTL_OK;
}

static int
tf_edits(struct ptl_pool *pool, const struct tf_hook_conf *hc,
         struct tf_hook *h, struct ptl_error *err)
{
	struct ptl_filter_header_edit *e;

	if (hc->remove_header != NULL) {
		e = &h->edits[h->verdict.nedits++];
		e->op = PTL_FILTER_HEADER_REMOVE;
		e->name = hc->remove_header;
		e->index = (unsigned)hc->header_index;
	}
	if (hc->replace_header != NULL) {
		e = &h->edits[h->verdict.nedits++];
		e->op = PTL_FILTER_HEADER_REPLACE;
		e->index = (unsigned)hc->header_index;
		if (tf_split(pool, hc->replace_header, &e->name, &e->value,
		             err) != PTL_OK)
			return PTL_ERROR;
	}
	h->verdict.edits = h->verdict.nedits > 0 ? h->edits : NULL;
	return PTL_OK;
}

static int
tf_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const struct tf_conf *conf = ptl_instance_conf(inst);
	const struct tf_hook_conf *hc;
	struct tf_state *st;
	struct tf_hook *h;
	char *name, *colon;
	int i;

	st = ptl_pcalloc(pool, sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = conf;
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.timeout_ms = conf->timeout;
	st->methods.flags = conf->fail_open ? PTL_FILTER_FAIL_OPEN : 0;
	st->methods.check = tf_check;
	st->methods.cancel = tf_cancel;
	for (i = 0; i < TF_HOOKS; i++) {
		hc = &conf->hooks[i];
		h = &st->hooks[i];
		if (hc->action == TF_NONE)
			continue;
		st->methods.hooks |= PTL_FILTER_HOOK_BIT(i);
		h->verdict.action = tf_actions[hc->action];
		h->verdict.code = (unsigned)hc->code;
		h->verdict.enhanced = hc->enhanced;
		h->verdict.text = hc->text;
		h->verdict.folder = hc->folder;
		h->verdict.result = hc->result;
		if (tf_edits(pool, hc, h, err) != PTL_OK)
			return PTL_ERROR;
		if (hc->header == NULL)
			continue;
		name = ptl_pstrdup(pool, hc->header);
		if (name == NULL)
			return ptl_error_set(err, "out of memory");
		colon = strchr(name, ':');
		if (colon == NULL)
			return ptl_error_set(err, "header: expected "
			                          "\"Name: value\"");
		*colon++ = '\0';
		while (*colon == ' ')
			colon++;
		h->header.name = name;
		h->header.value = colon;
		h->verdict.headers = &h->header;
		h->verdict.nheaders = 1;
	}
	ptl_instance_set_data(inst, st);
	return ptl_service_register(inst, PTL_FILTER_SERVICE_PREFIX TF_NAME,
	                            PTL_FILTER_VERSION, &st->methods, st, err);
}

static void
tf_exit_worker(struct ptl_instance *inst)
{
	struct tf_state *st = ptl_instance_data(inst);

	while (st != NULL && st->pending != NULL)
		tf_pending_free(st, st->pending);
}

static const struct ptl_service_ref tf_provides[] = {
    {PTL_FILTER_SERVICE_PREFIX TF_NAME, PTL_FILTER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = TF_NAME,
    .version = "0",
    .description = "test filter with verdicts from the config",
    .license = "MIT",
    .provides = tf_provides,
    .conf_keys = tf_keys,
    .conf_size = sizeof(struct tf_conf),
    .init_master = tf_init_master,
    .exit_worker = tf_exit_worker,
};
