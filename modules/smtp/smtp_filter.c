/* SPDX-License-Identifier: MIT */
/* The filter chain: asks each filter for a verdict at a hook (filter.h). */
#include <stdio.h>
#include <string.h>

#include "smtp.h"

/* At most this many added header fields per message (and per session). */
#define FILTER_HEADERS_MAX 32
#define FILTER_NAME_MAX    76
#define FILTER_VALUE_MAX   900
#define FILTER_TEXT_MAX    200

/* What one verdict means for the chain. */
enum filter_decision {
	FILTER_NEXT = 0, /* ask the next filter */
	FILTER_STOP,     /* proceed with the command, skip the others */
	FILTER_REFUSED,  /* the command was refused (reply sent) */
};

static const char *const filter_hook_names[PTL_FILTER_HOOKS] = {
    "connect", "helo", "mail", "rcpt", "data",
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
	const char *const *names = w->conf->filters.items;
	const struct ptl_filter_methods *m;
	const struct ptl_service *svc;
	char svcname[128];
	size_t i;
	int rc = PTL_OK;

	w->nfilters = 0;
	for (i = 0; i < w->conf->filters.count && i < SMTP_FILTERS_MAX; i++) {
		(void)snprintf(svcname, sizeof(svcname), "%s%s",
		               PTL_FILTER_SERVICE_PREFIX, names[i]);
		svc = ptl_service_find(svcname, PTL_FILTER_VERSION);
		m = svc != NULL ? svc->methods : NULL;
		if (m == NULL || m->version < PTL_FILTER_VERSION ||
		    m->check == NULL || m->cancel == NULL) {
			if (final)
				ptl_log(
				    PTL_LOG_ERROR,
				    "smtp: filter \"%s\": no service \"%s\" "
				    "v%d; every session is refused with "
				    "421 4.3.0",
				    names[i], svcname, PTL_FILTER_VERSION);
			rc = PTL_ERROR;
			continue;
		}
		w->filters[w->nfilters].name = names[i];
		w->filters[w->nfilters].m = m;
		w->filters[w->nfilters].instance = svc->instance;
		w->nfilters++;
	}
	if (rc == PTL_OK || final)
		w->filters_resolved = true;
	return rc;
}

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
	if (hook == PTL_FILTER_DATA) {
		r->message_fd = t->spool.fd;
		r->message_size = t->spool.size;
		r->message_body_offset = t->body_offset;
	}
}

/* RFC 5322 field name: printable ASCII except ':'. */
static bool
filter_header_ok(const struct ptl_filter_header *h)
{
	size_t n, i;

	if (h->name == NULL || h->value == NULL)
		return false;
	n = strlen(h->name);
	if (n == 0 || n > FILTER_NAME_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h->name[i];

		if (c < 33 || c > 126 || c == ':')
			return false;
	}
	n = strlen(h->value);
	if (n > FILTER_VALUE_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h->value[i];

		if (c == '\r' || c == '\n' || (c < 32 && c != '\t') ||
		    c == 0x7f)
			return false;
	}
	return true;
}

static void
filter_add_headers(struct smtp_session *s, const struct smtp_filter_ref *f,
                   const struct ptl_filter_verdict *v)
{
	bool session_wide = s->frun.hook <= PTL_FILTER_HELO || s->txn == NULL;
	struct ptl_pool *pool =
	    session_wide ? ptl_conn_pool(s->conn) : s->txn->pool;
	char ***list = session_wide ? &s->headers : &s->txn->headers;
	size_t *count = session_wide ? &s->nheaders : &s->txn->nheaders;
	char *line;
	size_t i;

	for (i = 0; i < v->nheaders; i++) {
		if (!filter_header_ok(&v->headers[i]) ||
		    *count >= FILTER_HEADERS_MAX) {
			ptl_conn_log(s->conn, PTL_LOG_WARN,
			             "filter %s: header dropped (invalid or "
			             "too many)",
			             f->name);
			continue;
		}
		if (*list == NULL) {
			*list = ptl_pcalloc(pool, FILTER_HEADERS_MAX *
			                              sizeof(char *));
			if (*list == NULL)
				return;
		}
		line = ptl_psprintf(pool, "%s: %s\r\n", v->headers[i].name,
		                    v->headers[i].value);
		if (line == NULL)
			return;
		(*list)[(*count)++] = line;
	}
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

/* The refusal effects that go with a hook. */
static void
filter_refused(struct smtp_session *s, bool close)
{
	if (s->frun.hook == PTL_FILTER_MAIL || s->frun.hook == PTL_FILTER_DATA)
		smtp_txn_abort(s);
	if (close || s->frun.hook == PTL_FILTER_CONNECT)
		smtp_session_close(s, false);
}

static int
filter_reject(struct smtp_session *s, const struct smtp_filter_ref *f,
              const struct ptl_filter_verdict *v)
{
	bool temp = v->action == PTL_FILTER_TEMPFAIL;
	bool connect = s->frun.hook == PTL_FILTER_CONNECT;
	char cls = temp ? '4' : '5';
	char text[FILTER_TEXT_MAX + 1];
	const char *enhanced;
	unsigned code = v->code;
	size_t i;

	if (temp)
		code =
		    connect ? 421 : (code >= 400 && code <= 499 ? code : 451);
	else if (code < 500 || code > 599)
		code = connect ? 554 : 550;
	enhanced = filter_enhanced_ok(v->enhanced, cls)
	               ? v->enhanced
	               : (temp ? "4.7.1" : "5.7.1");
	(void)snprintf(text, sizeof(text), "%s",
	               v->text != NULL
	                   ? v->text
	                   : (temp ? "Try again later" : "Rejected by policy"));
	for (i = 0; text[i] != '\0'; i++) {
		if ((unsigned char)text[i] < 0x20 ||
		    (unsigned char)text[i] > 0x7e)
			text[i] = '?';
	}
	ptl_conn_log(s->conn, PTL_LOG_INFO, "filter %s at %s: %s %u %s%s%s",
	             f->name, filter_hook_names[s->frun.hook],
	             temp ? "tempfail" : "reject", code, enhanced,
	             s->txn != NULL ? " message " : "",
	             s->txn != NULL ? s->txn->id : "");
	smtp_reply(s, code, enhanced, "%s", text);
	filter_refused(s, code == 421);
	return FILTER_REFUSED;
}

/* No verdict (error, timeout, nonsense): fail closed unless told not to. */
static int
filter_failure(struct smtp_session *s, const struct smtp_filter_ref *f,
               const char *why)
{
	ptl_conn_log(s->conn, PTL_LOG_WARN, "filter %s at %s: %s%s", f->name,
	             filter_hook_names[s->frun.hook], why,
	             (f->m->flags & PTL_FILTER_FAIL_OPEN) ? " (fail open)"
	                                                  : "");
	if (f->m->flags & PTL_FILTER_FAIL_OPEN)
		return FILTER_NEXT;
	if (s->frun.hook == PTL_FILTER_CONNECT)
		smtp_reply(s, 421, "4.3.0", "Service temporarily unavailable");
	else
		smtp_reply(s, 451, "4.3.0",
		           "Temporary filter failure, try again later");
	filter_refused(s, false);
	return FILTER_REFUSED;
}

static int
filter_apply(struct smtp_session *s, const struct smtp_filter_ref *f,
             const struct ptl_filter_verdict *v)
{
	bool session_wide = s->frun.hook <= PTL_FILTER_HELO || s->txn == NULL;
	const char *folder;

	if (v == NULL)
		return filter_failure(s, f, "no verdict");
	if (v->action == PTL_FILTER_REJECT || v->action == PTL_FILTER_TEMPFAIL)
		return filter_reject(s, f, v);
	filter_add_headers(s, f, v);
	switch (v->action) {
	case PTL_FILTER_CONTINUE:
		return FILTER_NEXT;
	case PTL_FILTER_ACCEPT:
		return FILTER_STOP;
	case PTL_FILTER_DISCARD:
		ptl_conn_log(s->conn, PTL_LOG_INFO, "filter %s at %s: discard",
		             f->name, filter_hook_names[s->frun.hook]);
		if (session_wide)
			s->discard = true;
		else
			s->txn->discard = true;
		return FILTER_STOP;
	case PTL_FILTER_QUARANTINE:
		folder = ptl_pstrdup(
		    session_wide ? ptl_conn_pool(s->conn) : s->txn->pool,
		    v->folder != NULL ? v->folder : "Quarantine");
		if (folder == NULL)
			return filter_failure(s, f, "out of memory");
		ptl_conn_log(s->conn, PTL_LOG_INFO,
		             "filter %s at %s: quarantine", f->name,
		             filter_hook_names[s->frun.hook]);
		if (session_wide)
			s->folder = folder;
		else
			s->txn->folder = folder;
		return FILTER_STOP;
	default:
		return filter_failure(s, f, "unknown action");
	}
}

static void filter_done(const struct ptl_filter_verdict *v, void *arg);

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
	int64_t timeout;
	int rc, d;

	while (s->frun.index < w->nfilters) {
		f = &w->filters[s->frun.index];
		if (!(f->m->hooks & PTL_FILTER_HOOK_BIT(s->frun.hook))) {
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
			timeout = f->m->timeout_ms > 0
			              ? f->m->timeout_ms
			              : w->conf->filter_timeout;
			if (smtp_session_timer(s, SMTP_TIMER_FILTER, timeout) ==
			    PTL_OK)
				return PTL_AGAIN;
			f->m->cancel(f->instance, s);
			s->frun.waiting = false;
			d = filter_failure(s, f, "out of memory");
		} else {
			s->frun.waiting = false;
			d = rc == PTL_OK ? filter_apply(s, f, &v)
			                 : filter_failure(s, f, "error");
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
smtp_filter_run(struct smtp_session *s, int hook)
{
	int rc;

	if (s->w->nfilters == 0)
		return PTL_OK;
	s->frun.hook = hook;
	s->frun.index = 0;
	rc = filter_next(s);
	if (rc != PTL_AGAIN)
		s->frun.hook = -1;
	return rc;
}

static void
filter_continue(struct smtp_session *s, int d)
{
	int rc;

	if (d == FILTER_NEXT) {
		s->frun.index++;
		rc = filter_next(s);
		if (rc == PTL_AGAIN)
			return;
	} else {
		rc = d == FILTER_STOP ? PTL_OK : PTL_DECLINED;
	}
	s->frun.hook = -1;
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
	int64_t timeout;

	if (!s->frun.waiting || s->frun.hook < 0)
		return;
	f = &s->w->filters[s->frun.index];
	f->m->cancel(f->instance, s);
	s->frun.waiting = false;
	timeout = f->m->timeout_ms > 0 ? f->m->timeout_ms
	                               : s->w->conf->filter_timeout;
	(void)snprintf(why, sizeof(why), "no verdict within %lld ms",
	               (long long)timeout);
	filter_continue(s, filter_failure(s, f, why));
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
	for (i = 0; i < s->w->nfilters; i++) {
		if (!(s->frun.seen & (1u << i)))
			continue;
		f = &s->w->filters[i];
		if (f->m->session_end != NULL)
			f->m->session_end(f->instance, s);
	}
	s->frun.seen = 0;
}
