/* SPDX-License-Identifier: MIT */
/* Test module: a filter whose verdict at each hook comes from the config. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>

/*
 * {"connect"|"helo"|"mail"|"rcpt"|"data": {
 *     "action": "continue|accept|reject|tempfail|discard|quarantine|
 *                hang|error",
 *     "code": 554, "enhanced": "5.7.1", "text": "go away",
 *     "match": "substring",   only when the peer IP / HELO / sender /
 *                             recipient / message contains it
 *     "delay": "200ms",       answer asynchronously after this
 *     "header": "X-Test: yes",
 *     "folder": "Junk"},
 *  "timeout": "2s",           the filter's own verdict timeout
 *  "fail_open": false}
 * "hang" never answers (tests the timeout), "error" returns PTL_ERROR.
 * Registered as the filter service "filter.test_filter".
 */

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
};

struct tf_conf {
	struct tf_hook_conf hooks[PTL_FILTER_HOOKS];
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
};

struct tf_pending {
	struct tf_pending *next;
	struct tf_state *st;
	struct ptl_timer *timer; /* NULL for "hang" */
	const struct ptl_filter_verdict *verdict;
	ptl_filter_done_fn done;
	void *arg;
};

struct tf_state {
	const struct tf_conf *conf;
	struct ptl_filter_methods methods;
	struct tf_hook hooks[PTL_FILTER_HOOKS];
	struct tf_pending *pending;
};

static void
tf_pending_free(struct tf_state *st, struct tf_pending *p)
{
	struct tf_pending **pp;

	for (pp = &st->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	ptl_timer_free(p->timer);
	free(p);
}

static void
tf_on_timer(struct ptl_timer *t, void *arg)
{
	struct tf_pending *p = arg;
	struct tf_state *st = p->st;
	ptl_filter_done_fn done = p->done;
	const struct ptl_filter_verdict *v = p->verdict;
	void *darg = p->arg;

	tf_pending_free(st, p);
	done(v, darg);
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
		return PTL_OK;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return PTL_ERROR;
	p->st = st;
	p->verdict = &st->hooks[req->hook].verdict;
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
	for (i = 0; i < PTL_FILTER_HOOKS; i++) {
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
	return ptl_service_register(inst,
	                            PTL_FILTER_SERVICE_PREFIX "test_filter",
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
    {PTL_FILTER_SERVICE_PREFIX "test_filter", PTL_FILTER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "test_filter",
    .version = "0",
    .description = "test filter with verdicts from the config",
    .license = "MIT",
    .provides = tf_provides,
    .conf_keys = tf_keys,
    .conf_size = sizeof(struct tf_conf),
    .init_master = tf_init_master,
    .exit_worker = tf_exit_worker,
};
