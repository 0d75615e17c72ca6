/* SPDX-License-Identifier: MIT */
/* The filter chain: asks each filter for a verdict at a hook (filter.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp.h"

/* At most this many added header fields per message (and per session),
 * and as many edits. */
#define FILTER_HEADERS_MAX 32
#define FILTER_NAME_MAX    76
#define FILTER_VALUE_MAX   900
#define FILTER_TEXT_MAX    200
#define FILTER_RESULT_MAX  256
#define FILTER_INDEX_MAX   1000
/* Verdicts kept per session (a transaction with many recipients and
 * filters can give more: those are logged, not kept). */
#define FILTER_TRACE_MAX 256
/* Version 1 filters know these hooks only. */
#define FILTER_V1_HOOKS 0x1fu

/* What one verdict means for the chain. */
enum filter_decision {
	FILTER_NEXT = 0, /* ask the next filter */
	FILTER_STOP,     /* proceed with the command, skip the others */
	FILTER_REFUSED,  /* the command was refused (reply sent) */
};

static const char *const filter_hook_names[PTL_FILTER_HOOKS] = {
    "connect", "helo", "mail", "rcpt", "data", "relay",
};

static const char *const filter_action_names[] = {
    "continue", "accept", "reject", "tempfail", "discard", "quarantine",
};

static const char *const filter_body_names[] = {
    NULL,
    "7BIT",
    "8BITMIME",
    "BINARYMIME",
};

int
smtp_filter_resolve(struct smtp_worker *w, bool final)
{
	const struct smtp_filter_conf *list = w->conf->filter_list;
	const struct ptl_filter_methods *m;
	const struct ptl_service *svc;
	struct smtp_filter_ref *ref;
	char svcname[128];
	size_t i;
	int rc = PTL_OK;

	w->nfilters = 0;
	for (i = 0; i < w->conf->nfilter_list && i < SMTP_FILTERS_MAX; i++) {
		(void)snprintf(svcname, sizeof(svcname), "%s%s",
		               PTL_FILTER_SERVICE_PREFIX, list[i].module);
		svc = ptl_service_find(svcname, PTL_FILTER_VERSION_MIN);
		m = svc != NULL ? svc->methods : NULL;
		if (m == NULL || m->version < PTL_FILTER_VERSION_MIN ||
		    m->check == NULL || m->cancel == NULL) {
			if (final)
				ptl_log(
				    PTL_LOG_ERROR,
				    "smtp: filter \"%s\": no service \"%s\" "
				    "v%d; every session is refused with "
				    "421 4.3.0",
				    list[i].module, svcname,
				    PTL_FILTER_VERSION_MIN);
			rc = PTL_ERROR;
			continue;
		}
		ref = &w->filters[w->nfilters++];
		ref->name = list[i].module;
		ref->m = m;
		ref->instance = svc->instance;
		ref->conf = &list[i];
		ref->hooks =
		    m->hooks & (m->version >= 2 ? (1u << PTL_FILTER_HOOKS) - 1
		                                : FILTER_V1_HOOKS);
	}
	if (rc == PTL_OK || final)
		w->filters_resolved = true;
	return rc;
}

static bool
filter_applies(const struct smtp_session *s, const struct smtp_filter_ref *f,
               int hook)
{
	return (f->hooks & PTL_FILTER_HOOK_BIT(hook)) &&
	       (f->conf->listen_mask & (1u << s->listener->index));
}

bool
smtp_filter_wants(const struct smtp_session *s, int hook)
{
	size_t i;

	for (i = 0; i < s->w->nfilters; i++) {
		if (filter_applies(s, &s->w->filters[i], hook))
			return true;
	}
	return false;
}

/* ---- The trace -------------------------------------------------------- */

/* Entries of another (ended) transaction are dropped lazily. */
static void
trace_sync(struct smtp_session *s)
{
	struct smtp_trace *tr = &s->trace;
	const char *id = s->txn != NULL ? s->txn->id : "";

	if (strcmp(tr->txn_id, id) == 0)
		return;
	while (tr->count > tr->nsession)
		free(tr->items[--tr->count]);
	(void)snprintf(tr->txn_id, sizeof(tr->txn_id), "%s", id);
	tr->dropped = 0;
}

/* A new HELO/EHLO: the verdicts on the old name no longer hold. */
static void
trace_forget_helo(struct smtp_session *s)
{
	struct smtp_trace *tr = &s->trace;
	size_t i, j;

	trace_sync(s);
	for (i = 0, j = 0; i < tr->count; i++) {
		if (i < tr->nsession && tr->items[i]->hook == PTL_FILTER_HELO) {
			free(tr->items[i]);
			continue;
		}
		tr->items[j++] = tr->items[i];
	}
	tr->nsession -= tr->count - j;
	tr->count = j;
}

static size_t
trace_strlen(const char *p)
{
	return p != NULL ? strlen(p) + 1 : 0;
}

static const char *
trace_copy(char **dst, const char *src)
{
	const char *out = *dst;
	size_t n;

	if (src == NULL)
		return NULL;
	n = strlen(src) + 1;
	memcpy(*dst, src, n);
	*dst += n;
	return out;
}

static void
trace_add(struct smtp_session *s, const struct smtp_filter_ref *f,
          enum ptl_filter_action action, unsigned code, const char *enhanced,
          const char *text, const char *result, unsigned flags)
{
	struct smtp_trace *tr = &s->trace;
	bool session_wide = s->frun.hook <= PTL_FILTER_HELO || s->txn == NULL;
	struct ptl_filter_trace *e;
	char *p;

	trace_sync(s);
	if (tr->items == NULL) {
		tr->items = calloc(FILTER_TRACE_MAX, sizeof(*tr->items));
		if (tr->items == NULL)
			return;
	}
	if (tr->count >= FILTER_TRACE_MAX ||
	    (session_wide && tr->count > tr->nsession)) {
		tr->dropped++;
		return;
	}
	e = malloc(sizeof(*e) + trace_strlen(enhanced) + trace_strlen(text) +
	           trace_strlen(result) + 1);
	if (e == NULL) {
		tr->dropped++;
		return;
	}
	p = (char *)(e + 1);
	memset(e, 0, sizeof(*e));
	e->struct_size = sizeof(*e);
	e->filter = f->name;
	e->hook = (enum ptl_filter_hook)s->frun.hook;
	e->action = action;
	e->code = code;
	e->enhanced = trace_copy(&p, enhanced);
	e->text = trace_copy(&p, text);
	e->result = trace_copy(&p, result != NULL ? result : "");
	e->flags = flags;
	tr->items[tr->count++] = e;
	if (session_wide)
		tr->nsession = tr->count;
}

void
smtp_filter_trace_free(struct smtp_session *s)
{
	struct smtp_trace *tr = &s->trace;

	while (tr->count > 0)
		free(tr->items[--tr->count]);
	free(tr->items);
	memset(tr, 0, sizeof(*tr));
}

/*
 * The results of the trace as one field, in the shape of RFC 8601:
 * "Authentication-Results: HOST; res; res" (or "HOST; none"), folded
 * before each result.
 */
char *
smtp_filter_trace_header(struct smtp_session *s, struct ptl_pool *pool)
{
	struct smtp_trace *tr = &s->trace;
	size_t len, i, n = 0;
	char *out, *w;

	trace_sync(s);
	len = strlen("Authentication-Results: ") + strlen(s->w->hostname) +
	      sizeof("; none\r\n");
	for (i = 0; i < tr->count; i++)
		len += strlen(tr->items[i]->result) + 4;
	out = ptl_palloc(pool, len + 1);
	if (out == NULL)
		return NULL;
	w = out + snprintf(out, len + 1, "Authentication-Results: %s",
	                   s->w->hostname);
	for (i = 0; i < tr->count; i++) {
		if (tr->items[i]->result[0] == '\0')
			continue;
		w = stpcpy(w, ";\r\n\t");
		w = stpcpy(w, tr->items[i]->result);
		n++;
	}
	(void)stpcpy(w, n == 0 ? "; none\r\n" : "\r\n");
	return out;
}

/* ---- Requests and verdicts --------------------------------------------- */

static void
filter_request(struct smtp_session *s, int hook, struct ptl_filter_request *r)
{
	const struct smtp_txn *t = s->txn;
	struct ptl_conn *c = s->conn;

	memset(r, 0, sizeof(*r));
	r->struct_size = sizeof(*r);
	r->hook = (enum ptl_filter_hook)hook;
	r->session_id = ptl_conn_id(c);
	r->peer_ip = ptl_conn_peer_ip(c);
	r->peer_port = ptl_conn_peer_port(c);
	r->local_ip = ptl_conn_local_ip(c);
	r->local_port = ptl_conn_local_port(c);
	r->role = smtp_role_names[s->listener->role];
	if (s->tls) {
		r->tls_version = ptl_conn_tls_version(c);
		r->tls_cipher = ptl_conn_tls_cipher(c);
	}
	r->auth_user = s->auth_user;
	r->trusted = s->trusted;
	r->helo = s->helo[0] != '\0' ? s->helo : NULL;
	r->esmtp = s->esmtp;
	r->message_fd = -1;
	trace_sync(s);
	r->trace = (const struct ptl_filter_trace *const *)s->trace.items;
	r->ntrace = s->trace.count;
	if (t == NULL || hook < PTL_FILTER_MAIL)
		return;
	r->message_id = t->id;
	r->mail_from = t->sender;
	r->smtputf8 = t->params.smtputf8;
	r->body = filter_body_names[t->params.body];
	r->rcpts = t->rcpt_addrs;
	r->nrcpts = t->nrcpts;
	if (hook == PTL_FILTER_RCPT)
		r->rcpt = t->pending.address;
	if (hook >= PTL_FILTER_DATA) {
		r->message_fd = t->spool.fd;
		r->message_size = t->spool.size;
		r->message_body_offset = t->body_offset;
	}
	if (hook == PTL_FILTER_RELAY) {
		r->remote_rcpts = t->remote_addrs;
		r->nremote_rcpts = t->nremote_addrs;
	}
}

/* RFC 5322 field name: printable ASCII except ':'. */
static bool
filter_name_ok(const char *name)
{
	size_t n, i;

	if (name == NULL)
		return false;
	n = strlen(name);
	if (n == 0 || n > FILTER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	return true;
}

static bool
filter_value_ok(const char *value)
{
	size_t n, i;

	if (value == NULL)
		return false;
	n = strlen(value);
	if (n > FILTER_VALUE_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '\r' || c == '\n' || (c < 32 && c != '\t') ||
		    c == 0x7f)
			return false;
	}
	return true;
}

static bool
filter_session_wide(const struct smtp_session *s)
{
	return s->frun.hook <= PTL_FILTER_HELO || s->txn == NULL;
}

static void
filter_add_header(struct smtp_session *s, const struct smtp_filter_ref *f,
                  const char *name, const char *value)
{
	bool session_wide = filter_session_wide(s);
	struct ptl_pool *pool =
	    session_wide ? ptl_conn_pool(s->conn) : s->txn->pool;
	char ***list = session_wide ? &s->headers : &s->txn->headers;
	size_t *count = session_wide ? &s->nheaders : &s->txn->nheaders;
	char *line;

	if (!filter_name_ok(name) || !filter_value_ok(value) ||
	    *count >= FILTER_HEADERS_MAX) {
		ptl_conn_log(s->conn, PTL_LOG_WARN,
		             "filter %s: header dropped (invalid or too many)",
		             f->name);
		return;
	}
	if (*list == NULL) {
		*list = ptl_pcalloc(pool, FILTER_HEADERS_MAX * sizeof(char *));
		if (*list == NULL)
			return;
	}
	line = ptl_psprintf(pool, "%s: %s\r\n", name, value);
	if (line == NULL)
		return;
	(*list)[(*count)++] = line;
}

static void
filter_add_edit(struct smtp_session *s, const struct smtp_filter_ref *f,
                const struct ptl_filter_header_edit *e)
{
	bool session_wide = filter_session_wide(s);
	struct ptl_pool *pool =
	    session_wide ? ptl_conn_pool(s->conn) : s->txn->pool;
	struct smtp_edit **list = session_wide ? &s->edits : &s->txn->edits;
	size_t *count = session_wide ? &s->nedits : &s->txn->nedits;
	struct smtp_edit *d;

	if (e->op == PTL_FILTER_HEADER_ADD) {
		filter_add_header(s, f, e->name, e->value);
		return;
	}
	if ((e->op != PTL_FILTER_HEADER_REMOVE &&
	     e->op != PTL_FILTER_HEADER_REPLACE) ||
	    !filter_name_ok(e->name) || e->index > FILTER_INDEX_MAX ||
	    (e->op == PTL_FILTER_HEADER_REPLACE &&
	     !filter_value_ok(e->value)) ||
	    *count >= FILTER_HEADERS_MAX) {
		ptl_conn_log(s->conn, PTL_LOG_WARN,
		             "filter %s: header edit dropped (invalid or too "
		             "many)",
		             f->name);
		return;
	}
	if (*list == NULL) {
		*list = ptl_pcalloc(pool, FILTER_HEADERS_MAX * sizeof(**list));
		if (*list == NULL)
			return;
	}
	d = &(*list)[*count];
	d->op = (int)e->op;
	d->index = e->index;
	d->name = ptl_pstrdup(pool, e->name);
	d->value = e->op == PTL_FILTER_HEADER_REPLACE
	               ? ptl_pstrdup(pool, e->value)
	               : NULL;
	if (d->name == NULL ||
	    (e->op == PTL_FILTER_HEADER_REPLACE && d->value == NULL))
		return;
	(*count)++;
}

static void
filter_add_headers(struct smtp_session *s, const struct smtp_filter_ref *f,
                   const struct ptl_filter_verdict *v, bool v2)
{
	size_t i;

	for (i = 0; v->headers != NULL && i < v->nheaders; i++)
		filter_add_header(s, f, v->headers[i].name,
		                  v->headers[i].value);
	for (i = 0; v2 && v->edits != NULL && i < v->nedits; i++)
		filter_add_edit(s, f, &v->edits[i]);
}

/* Enhanced code "C.S.D" of the class @cls: 1-3 digits per part. */
static bool
filter_enhanced_ok(const char *e, char cls)
{
	size_t i = 0, part, digits;

	if (e == NULL || e[0] != cls || e[1] != '.')
		return false;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; e[i] >= '0' && e[i] <= '9'; i++)
			digits++;
		if (digits == 0 || digits > 3)
			return false;
		if (part == 0 && e[i++] != '.')
			return false;
	}
	return e[i] == '\0';
}

/* Printable copy of @in, cut to @cap - 1 bytes; UTF-8 is kept when
 * @utf8 (results), other bytes become '?'. */
static void
filter_clean(char *out, size_t cap, const char *in, bool utf8)
{
	size_t i;

	/* Called for every verdict: a plain loop, no snprintf(). */
	for (i = 0; in != NULL && in[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = c < 0x20 || c == 0x7f || (c > 0x7e && !utf8) ? '?'
		                                                      : (char)c;
	}
	out[i] = '\0';
}

/* One line per verdict, with the session id (ptl_conn_log adds it):
 * "filter NAME at HOOK: [WHY: ]ACTION[ CODE ENH][ message ID][ result=".."]" */
static void
filter_log(struct smtp_session *s, const struct smtp_filter_ref *f,
           enum ptl_log_level level, const char *why,
           enum ptl_filter_action action, unsigned code, const char *enhanced,
           const char *result)
{
	char codes[32] = "", res[FILTER_RESULT_MAX * 4 + 16] = "";
	char esc[FILTER_RESULT_MAX * 4 + 1];

	if (!ptl_log_enabled(level))
		return;
	if (code != 0)
		(void)snprintf(codes, sizeof(codes), " %u %s", code,
		               enhanced != NULL ? enhanced : "");
	if (result != NULL && result[0] != '\0') {
		smtp_session_log_escape(esc, sizeof(esc), result);
		(void)snprintf(res, sizeof(res), " result=\"%s\"", esc);
	}
	ptl_conn_log(s->conn, level, "filter %s at %s: %s%s%s%s%s%s%s", f->name,
	             filter_hook_names[s->frun.hook], why != NULL ? why : "",
	             why != NULL ? ": " : "", filter_action_names[action],
	             codes, s->txn != NULL ? " message " : "",
	             s->txn != NULL ? s->txn->id : "", res);
}

/* The refusal effects that go with a hook. */
static void
filter_refused(struct smtp_session *s, bool close)
{
	if (s->frun.hook == PTL_FILTER_MAIL || s->frun.hook >= PTL_FILTER_DATA)
		smtp_txn_abort(s);
	if (close || s->frun.hook == PTL_FILTER_CONNECT)
		smtp_session_close(s, false);
}

static int
filter_reject(struct smtp_session *s, const struct smtp_filter_ref *f,
              const struct ptl_filter_verdict *v, const char *result,
              const char *why, unsigned flags)
{
	bool temp = v->action == PTL_FILTER_TEMPFAIL;
	bool connect = s->frun.hook == PTL_FILTER_CONNECT;
	char cls = temp ? '4' : '5';
	char text[FILTER_TEXT_MAX + 1];
	const char *enhanced;
	unsigned code = v->code;

	if (temp)
		code =
		    connect ? 421 : (code >= 400 && code <= 499 ? code : 451);
	else if (code < 500 || code > 599)
		code = connect ? 554 : 550;
	enhanced = filter_enhanced_ok(v->enhanced, cls)
	               ? v->enhanced
	               : (temp ? "4.7.1" : "5.7.1");
	filter_clean(text, sizeof(text),
	             v->text != NULL
	                 ? v->text
	                 : (temp ? "Try again later" : "Rejected by policy"),
	             false);
	filter_log(s, f, why != NULL ? PTL_LOG_WARN : PTL_LOG_INFO, why,
	           v->action, code, enhanced, result);
	trace_add(s, f, v->action, code, enhanced, text, result, flags);
	smtp_reply(s, code, enhanced, "%s", text);
	filter_refused(s, code == 421);
	return FILTER_REFUSED;
}

/* No verdict (error, timeout, nonsense): what the config says, else
 * fail closed unless the filter is fail-open. */
static int
filter_failure(struct smtp_session *s, const struct smtp_filter_ref *f,
               const char *why, bool timeout)
{
	struct ptl_filter_verdict v;
	unsigned flags =
	    timeout ? PTL_FILTER_TRACE_TIMEOUT : PTL_FILTER_TRACE_ERROR;
	int on = timeout ? f->conf->on_timeout : f->conf->on_error;
	unsigned code;

	if (on == SMTP_FILTER_ON_DEFAULT)
		on = (f->m->flags & PTL_FILTER_FAIL_OPEN)
		         ? SMTP_FILTER_ON_CONTINUE
		         : SMTP_FILTER_ON_TEMPFAIL;
	memset(&v, 0, sizeof(v));
	switch (on) {
	case SMTP_FILTER_ON_CONTINUE:
	case SMTP_FILTER_ON_ACCEPT:
		v.action = on == SMTP_FILTER_ON_ACCEPT ? PTL_FILTER_ACCEPT
		                                       : PTL_FILTER_CONTINUE;
		filter_log(s, f, PTL_LOG_WARN, why, v.action, 0, NULL, NULL);
		trace_add(s, f, v.action, 0, NULL, NULL, NULL, flags);
		return on == SMTP_FILTER_ON_ACCEPT ? FILTER_STOP : FILTER_NEXT;
	case SMTP_FILTER_ON_REJECT:
		v.action = PTL_FILTER_REJECT;
		v.text = "Rejected: a policy check failed";
		return filter_reject(s, f, &v, NULL, why, flags);
	default:
		break;
	}
	code = s->frun.hook == PTL_FILTER_CONNECT ? 421 : 451;
	filter_log(s, f, PTL_LOG_WARN, why, PTL_FILTER_TEMPFAIL, code, "4.3.0",
	           NULL);
	if (code == 421) {
		trace_add(s, f, PTL_FILTER_TEMPFAIL, code, "4.3.0",
		          "Service temporarily unavailable", NULL, flags);
		smtp_reply(s, 421, "4.3.0", "Service temporarily unavailable");
	} else {
		trace_add(s, f, PTL_FILTER_TEMPFAIL, code, "4.3.0",
		          "Temporary filter failure, try again later", NULL,
		          flags);
		smtp_reply(s, 451, "4.3.0",
		           "Temporary filter failure, try again later");
	}
	filter_refused(s, false);
	return FILTER_REFUSED;
}

static int
filter_apply(struct smtp_session *s, const struct smtp_filter_ref *f,
             const struct ptl_filter_verdict *v)
{
	bool session_wide = filter_session_wide(s);
	bool v2 = f->m->version >= 2;
	char result[FILTER_RESULT_MAX + 1];
	const char *folder;

	if (v == NULL)
		return filter_failure(s, f, "no verdict", false);
	if ((unsigned)v->action > PTL_FILTER_QUARANTINE)
		return filter_failure(s, f, "unknown action", false);
	filter_clean(result, sizeof(result), v2 ? v->result : NULL, true);
	if (v->action == PTL_FILTER_REJECT || v->action == PTL_FILTER_TEMPFAIL)
		return filter_reject(s, f, v, result, NULL, 0);
	filter_add_headers(s, f, v, v2);
	if (v->action == PTL_FILTER_QUARANTINE) {
		folder = ptl_pstrdup(
		    session_wide ? ptl_conn_pool(s->conn) : s->txn->pool,
		    v->folder != NULL ? v->folder : "Quarantine");
		if (folder == NULL)
			return filter_failure(s, f, "out of memory", false);
		if (session_wide)
			s->folder = folder;
		else
			s->txn->folder = folder;
	} else if (v->action == PTL_FILTER_DISCARD) {
		if (session_wide)
			s->discard = true;
		else
			s->txn->discard = true;
	}
	filter_log(s, f, PTL_LOG_INFO, NULL, v->action, 0, NULL, result);
	trace_add(s, f, v->action, 0, NULL, NULL, result, 0);
	return v->action == PTL_FILTER_CONTINUE ? FILTER_NEXT : FILTER_STOP;
}

/* ---- Running the chain ------------------------------------------------- */

static void filter_done(const struct ptl_filter_verdict *v, void *arg);

static int64_t
filter_timeout_ms(const struct smtp_session *s, const struct smtp_filter_ref *f)
{
	if (f->conf->timeout > 0)
		return f->conf->timeout;
	if (f->m->timeout_ms > 0)
		return f->m->timeout_ms;
	return s->w->conf->filter_timeout;
}

/*
 * Ask the filters from frun.index on.
 * @return PTL_OK (proceed), PTL_DECLINED (refused) or PTL_AGAIN.
 */
static int
filter_next(struct smtp_session *s)
{
	struct smtp_worker *w = s->w;
	const struct smtp_filter_ref *f;
	struct ptl_filter_request req;
	struct ptl_filter_verdict v;
	int rc, d;

	while (s->frun.index < w->nfilters) {
		f = &w->filters[s->frun.index];
		if (!filter_applies(s, f, s->frun.hook)) {
			s->frun.index++;
			continue;
		}
		filter_request(s, s->frun.hook, &req);
		memset(&v, 0, sizeof(v));
		s->frun.seen |= 1u << s->frun.index;
		s->frun.waiting = true;
		s->frun.in_call = true;
		s->frun.early_set = false;
		rc = f->m->check(f->instance, &req, &v, filter_done, s);
		s->frun.in_call = false;
		if (rc == PTL_AGAIN && s->frun.early_set) {
			d = s->frun.early;
		} else if (rc == PTL_AGAIN) {
			if (smtp_session_timer(s, SMTP_TIMER_FILTER,
			                       filter_timeout_ms(s, f)) ==
			    PTL_OK)
				return PTL_AGAIN;
			f->m->cancel(f->instance, s);
			s->frun.waiting = false;
			d = filter_failure(s, f, "out of memory", false);
		} else {
			s->frun.waiting = false;
			d = rc == PTL_OK ? filter_apply(s, f, &v)
			                 : filter_failure(s, f, "error", false);
		}
		if (d == FILTER_REFUSED)
			return PTL_DECLINED;
		if (d == FILTER_STOP)
			return PTL_OK;
		s->frun.index++;
	}
	return PTL_OK;
}

int
smtp_filter_run_then(struct smtp_session *s, int hook,
                     void (*on_done)(struct smtp_session *s, int rc))
{
	int rc;

	if (s->w->nfilters == 0)
		return PTL_OK;
	if (hook == PTL_FILTER_HELO)
		trace_forget_helo(s);
	s->frun.hook = hook;
	s->frun.index = 0;
	s->frun.on_done = on_done;
	rc = filter_next(s);
	if (rc != PTL_AGAIN) {
		s->frun.hook = -1;
		s->frun.on_done = NULL;
	}
	return rc;
}

int
smtp_filter_run(struct smtp_session *s, int hook)
{
	return smtp_filter_run_then(s, hook, NULL);
}

static void
filter_continue(struct smtp_session *s, int d)
{
	void (*on_done)(struct smtp_session *, int);
	int rc;

	if (d == FILTER_NEXT) {
		s->frun.index++;
		rc = filter_next(s);
		if (rc == PTL_AGAIN)
			return;
	} else {
		rc = d == FILTER_STOP ? PTL_OK : PTL_DECLINED;
	}
	on_done = s->frun.on_done;
	s->frun.hook = -1;
	s->frun.on_done = NULL;
	if (on_done != NULL)
		on_done(s, rc);
	else
		smtp_cmd_resume(s, rc);
}

static void
filter_done(const struct ptl_filter_verdict *v, void *arg)
{
	struct smtp_session *s = arg;
	const struct smtp_filter_ref *f;
	int d;

	if (s == NULL || s->magic != SMTP_SESSION_MAGIC || !s->frun.waiting)
		return;
	f = &s->w->filters[s->frun.index];
	s->frun.waiting = false;
	d = filter_apply(s, f, v);
	if (s->frun.in_call) {
		/* Called from inside check(): finished when it returns. */
		s->frun.early = d;
		s->frun.early_set = true;
		return;
	}
	smtp_session_timer_stop(s);
	filter_continue(s, d);
}

void
smtp_filter_timeout(struct smtp_session *s)
{
	const struct smtp_filter_ref *f;
	char why[64];

	if (!s->frun.waiting || s->frun.hook < 0)
		return;
	f = &s->w->filters[s->frun.index];
	f->m->cancel(f->instance, s);
	s->frun.waiting = false;
	(void)snprintf(why, sizeof(why), "no verdict within %lld ms",
	               (long long)filter_timeout_ms(s, f));
	filter_continue(s, filter_failure(s, f, why, true));
}

void
smtp_filter_end_session(struct smtp_session *s)
{
	const struct smtp_filter_ref *f;
	size_t i;

	if (s->frun.waiting && s->frun.index < s->w->nfilters) {
		f = &s->w->filters[s->frun.index];
		f->m->cancel(f->instance, s);
	}
	s->frun.waiting = false;
	s->frun.hook = -1;
	s->frun.on_done = NULL;
	for (i = 0; i < s->w->nfilters; i++) {
		if (!(s->frun.seen & (1u << i)))
			continue;
		f = &s->w->filters[i];
		if (f->m->session_end != NULL)
			f->m->session_end(f->instance, s);
	}
	s->frun.seen = 0;
	smtp_filter_trace_free(s);
}
