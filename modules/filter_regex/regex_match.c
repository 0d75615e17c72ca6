/* SPDX-License-Identifier: MIT */
/* Running the rules: envelope subjects, the message scan, the verdict. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "regex.h"
#include "regex_2047.h"
#include "regex_mime.h"

/* Message bytes read per pread(). */
#define SCAN_CHUNK (64 * 1024)

int
regex_eval_init(struct regex_eval *ev, const struct regex_conf *conf, int hook)
{
	size_t n = conf->rules.count + 1;

	memset(ev, 0, sizeof(*ev));
	ev->conf = conf;
	ev->hook = hook;
	ev->matched = calloc(n, 3 * sizeof(bool));
	if (ev->matched == NULL)
		return PTL_ERROR;
	ev->evaluated = ev->matched + n;
	ev->limited = ev->matched + 2 * n;
	return PTL_OK;
}

void
regex_eval_free(struct regex_eval *ev)
{
	free(ev->matched);
	ev->matched = NULL;
}

void
regex_eval_subject(struct regex_eval *ev, size_t rule, pcre2_match_data *md,
                   const char *subject, size_t len)
{
	const struct regex_rule *r =
	    &((const struct regex_rule *)ev->conf->rules.items)[rule];

	ev->evaluated[rule] = true;
	if (ev->matched[rule])
		return;
	switch (regex_rule_match(r, ev->conf, md, subject, len)) {
	case REGEX_YES:
		ev->matched[rule] = true;
		break;
	case REGEX_LIMIT:
		ev->limited[rule] = true;
		if (ev->conf->on_limit == REGEX_LIMIT_MATCH)
			ev->matched[rule] = true;
		else if (ev->conf->on_limit == REGEX_LIMIT_TEMPFAIL)
			ev->tempfail = true;
		break;
	case REGEX_NO:
		break;
	}
}

void
regex_log_limits(const struct regex_eval *ev, const char *session_id,
                 const char *message_id)
{
	static const char *const counts[] = {"no match", "a match",
	                                     "a temporary failure"};
	const struct regex_rule *rules = ev->conf->rules.items;
	size_t i;

	for (i = 0; i < ev->conf->rules.count; i++) {
		if (!ev->limited[i])
			continue;
		ptl_log(PTL_LOG_WARN,
		        "filter_regex: session %s%s%s: rule %s (%s): PCRE2 "
		        "match limit hit, counted as %s",
		        session_id != NULL ? session_id : "-",
		        message_id != NULL ? " message " : "",
		        message_id != NULL ? message_id : "", rules[i].label,
		        rules[i].target, counts[ev->conf->on_limit]);
	}
}

/* "a; b" of the results, cut to the buffer. */
static void
verdict_result(struct regex_verdict *out, const struct regex_rule *r)
{
	size_t len = strlen(out->result);
	int n;

	if (len + 3 >= sizeof(out->result))
		return;
	if (r->result != NULL)
		n = snprintf(out->result + len, sizeof(out->result) - len,
		             "%s%s", len > 0 ? "; " : "", r->result);
	else
		n = snprintf(out->result + len, sizeof(out->result) - len,
		             "%sregex=hit rule=%s", len > 0 ? "; " : "",
		             r->label);
	if (n < 0 || (size_t)n >= sizeof(out->result) - len)
		out->result[len] = '\0';
}

/*
 * In rule order: a rule applies when it was evaluated and its match
 * differs from `negate`. Every applying rule adds its header changes and
 * result; the first whose action is not "continue" decides.
 */
int
regex_verdict_build(const struct regex_eval *ev, struct regex_verdict *out)
{
	const struct regex_conf *conf = ev->conf;
	const struct regex_rule *rules = conf->rules.items, *r;
	size_t i, j, n = conf->rules.count;

	memset(out, 0, sizeof(*out));
	out->headers = calloc(n + 1, sizeof(*out->headers));
	out->edits = calloc(2 * n + 1, sizeof(*out->edits));
	if (out->headers == NULL || out->edits == NULL) {
		regex_verdict_free(out);
		return PTL_ERROR;
	}
	out->v.action = PTL_FILTER_CONTINUE;
	out->v.headers = out->headers;
	out->v.edits = out->edits;
	out->v.result = out->result;
	if (ev->tempfail) {
		out->v.action = PTL_FILTER_TEMPFAIL;
		out->v.text = "Content check failed, try again later";
		(void)snprintf(out->result, sizeof(out->result),
		               "regex=temperror");
		return PTL_OK;
	}
	for (i = 0; i < n; i++) {
		r = &rules[i];
		if (r->hook != ev->hook || !ev->evaluated[i] ||
		    ev->matched[i] == r->negate)
			continue;
		if (r->add.name != NULL)
			out->headers[out->v.nheaders++] = r->add;
		for (j = 0; j < r->nedits; j++)
			out->edits[out->v.nedits++] = r->edits[j];
		verdict_result(out, r);
		if (r->action == PTL_FILTER_CONTINUE)
			continue;
		out->v.action = (enum ptl_filter_action)r->action;
		out->v.code = (unsigned)r->code;
		out->v.enhanced = r->enhanced;
		out->v.text = r->text;
		out->v.folder = r->folder;
		break;
	}
	return PTL_OK;
}

void
regex_verdict_free(struct regex_verdict *out)
{
	free(out->headers);
	free(out->edits);
	out->headers = NULL;
	out->edits = NULL;
}

/* The envelope hooks: short subjects, matched on the loop. */
int
regex_envelope(const struct regex_conf *conf,
               const struct ptl_filter_request *req, pcre2_match_data *md,
               struct regex_eval *ev)
{
	const struct regex_rule *rules = conf->rules.items;
	const char *subject;
	size_t i;

	for (i = 0; i < conf->rules.count; i++) {
		if (rules[i].hook != (int)req->hook)
			continue;
		switch (rules[i].kind) {
		case REGEX_CLIENT_IP:
			subject = req->peer_ip;
			break;
		case REGEX_HELO:
			subject = req->helo;
			break;
		case REGEX_MAIL_FROM:
			subject = req->mail_from;
			break;
		case REGEX_RCPT:
			subject = req->rcpt;
			break;
		default:
			subject = NULL; /* client_hostname: after the PTR */
			break;
		}
		if (subject != NULL)
			regex_eval_subject(ev, i, md, subject, strlen(subject));
	}
	return PTL_OK;
}

/* ---- The message scan (thread pool) ------------------------------------ */

static int64_t
scan_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Between two matches: is there time left? */
static bool
scan_go_on(struct regex_scan *sc)
{
	if (sc->timed_out)
		return false;
	if (scan_now_ms() > sc->deadline_ms) {
		sc->timed_out = true;
		return false;
	}
	return sc->undecided > 0;
}

static void
scan_subject(struct regex_scan *sc, size_t i, const char *s, size_t len)
{
	bool before = sc->ev.matched[i];

	regex_eval_subject(&sc->ev, i, sc->md, s, len);
	if (!before && sc->ev.matched[i])
		sc->undecided--;
}

static bool
scan_scratch(struct regex_scan *sc, size_t want)
{
	char *p;

	if (want <= sc->scratch_cap)
		return true;
	p = realloc(sc->scratch, want);
	if (p == NULL)
		return false;
	sc->scratch = p;
	sc->scratch_cap = want;
	return true;
}

/*
 * Subjects of one field, built once and only when a rule wants them:
 * the value decoded (RFC 2047), and "Name: value" (any_header) plain or
 * decoded. All in the scratch buffer, bounded by the field's size.
 */
struct scan_field {
	const char *name, *value;
	size_t nlen, vlen;
	char *decoded; /* "Name: " + decoded value */
	size_t dlen;   /* length of the decoded value */
	char *plain;   /* "Name: " + value */
};

static const char *
scan_field_subject(struct regex_scan *sc, struct scan_field *f,
                   const struct regex_rule *r, size_t *len_out)
{
	size_t prefix = f->nlen + 2;

	if (f->decoded == NULL && f->plain == NULL) {
		if (!scan_scratch(sc, 2 * prefix + 3 * f->vlen + 1))
			return NULL;
	}
	if (r->decode_2047 && f->decoded == NULL) {
		f->decoded = sc->scratch;
		memcpy(f->decoded, f->name, f->nlen);
		memcpy(f->decoded + f->nlen, ": ", 2);
		f->dlen = regex_2047_decode(
		    f->value, f->vlen, f->decoded + prefix, 2 * f->vlen + 1);
	}
	if (r->kind == REGEX_ANY_HEADER && !r->decode_2047 &&
	    f->plain == NULL) {
		f->plain = sc->scratch + prefix + 2 * f->vlen + 1;
		memcpy(f->plain, f->name, f->nlen);
		memcpy(f->plain + f->nlen, ": ", 2);
		memcpy(f->plain + prefix, f->value, f->vlen);
	}
	if (r->kind == REGEX_ANY_HEADER) {
		*len_out = prefix + (r->decode_2047 ? f->dlen : f->vlen);
		return r->decode_2047 ? f->decoded : f->plain;
	}
	*len_out = r->decode_2047 ? f->dlen : f->vlen;
	return r->decode_2047 ? f->decoded + prefix : f->value;
}

static bool
scan_header(void *arg, const char *name, size_t nlen, const char *value,
            size_t vlen)
{
	struct regex_scan *sc = arg;
	const struct regex_rule *rules = sc->conf->rules.items, *r;
	struct scan_field f = {name, value, nlen, vlen, NULL, 0, NULL};
	const char *subject;
	size_t i, len;

	for (i = 0; i < sc->conf->rules.count && scan_go_on(sc); i++) {
		r = &rules[i];
		if (r->hook != PTL_FILTER_DATA || sc->ev.matched[i])
			continue;
		if (r->kind == REGEX_HEADER) {
			if (strlen(r->header_name) != nlen ||
			    strncasecmp(r->header_name, name, nlen) != 0)
				continue;
		} else if (r->kind != REGEX_ANY_HEADER) {
			continue;
		}
		subject = scan_field_subject(sc, &f, r, &len);
		if (subject == NULL)
			return false;
		scan_subject(sc, i, subject, len);
	}
	return scan_go_on(sc);
}

static bool
scan_lines(struct regex_scan *sc, enum regex_target kind, const char *line,
           size_t len)
{
	const struct regex_rule *rules = sc->conf->rules.items;
	size_t i;

	for (i = 0; i < sc->conf->rules.count && scan_go_on(sc); i++) {
		if (rules[i].kind == kind && !sc->ev.matched[i])
			scan_subject(sc, i, line, len);
	}
	return scan_go_on(sc);
}

static bool
scan_body_line(void *arg, const char *line, size_t len)
{
	return scan_lines(arg, REGEX_BODY, line, len);
}

static bool
scan_text_line(void *arg, const char *line, size_t len)
{
	return scan_lines(arg, REGEX_BODY_TEXT, line, len);
}

int
regex_scan_init(struct regex_scan *sc, const struct regex_conf *conf, int fd,
                uint64_t offset, uint64_t end)
{
	const struct regex_rule *rules = conf->rules.items;
	size_t i;

	memset(sc, 0, sizeof(*sc));
	sc->conf = conf;
	sc->fd = fd;
	sc->offset = offset;
	sc->end = end;
	if (regex_eval_init(&sc->ev, conf, PTL_FILTER_DATA) != PTL_OK)
		return PTL_ERROR;
	sc->md = pcre2_match_data_create(1, NULL);
	if (sc->md == NULL) {
		regex_eval_free(&sc->ev);
		return PTL_ERROR;
	}
	for (i = 0; i < conf->rules.count; i++)
		sc->undecided += rules[i].hook == PTL_FILTER_DATA ? 1 : 0;
	return PTL_OK;
}

void
regex_scan_free(struct regex_scan *sc)
{
	if (sc->fd >= 0)
		close(sc->fd);
	sc->fd = -1;
	pcre2_match_data_free(sc->md);
	sc->md = NULL;
	free(sc->scratch);
	sc->scratch = NULL;
	regex_eval_free(&sc->ev);
}

/*
 * Every DATA rule is evaluated: absent header fields simply do not
 * match. A scan cut short by the time limit leaves the rules it did not
 * decide unevaluated, so that a negated rule does not fire on what was
 * never read.
 */
static void
scan_mark(struct regex_scan *sc)
{
	const struct regex_rule *rules = sc->conf->rules.items;
	size_t i;

	for (i = 0; i < sc->conf->rules.count; i++) {
		if (rules[i].hook != PTL_FILTER_DATA)
			continue;
		sc->ev.evaluated[i] =
		    sc->ev.matched[i] || (!sc->timed_out && !sc->read_error);
	}
}

void
regex_scan_run(struct regex_scan *sc)
{
	const struct regex_conf *conf = sc->conf;
	struct mime_limits lim;
	struct mime_handler h;
	struct mime_walker *w;
	char *buf;
	uint64_t stop = sc->end;
	ssize_t n;
	size_t want;

	sc->deadline_ms = scan_now_ms() + conf->scan_time_limit;
	if (sc->end - sc->offset > conf->max_scan_bytes) {
		stop = sc->offset + conf->max_scan_bytes;
		sc->capped = true;
	}
	memset(&lim, 0, sizeof(lim));
	lim.max_line = (size_t)conf->max_line;
	lim.max_header_bytes = (size_t)conf->max_header_bytes;
	lim.max_headers = (size_t)conf->max_headers;
	lim.max_depth = (size_t)conf->max_mime_depth;
	lim.max_text_bytes = (size_t)conf->max_body_bytes;
	memset(&h, 0, sizeof(h));
	h.arg = sc;
	h.header = conf->want_headers ? scan_header : NULL;
	h.body_line = conf->want_body ? scan_body_line : NULL;
	h.text_line = conf->want_text ? scan_text_line : NULL;
	buf = malloc(SCAN_CHUNK);
	w = buf != NULL ? mime_walker_new(&lim, &h) : NULL;
	if (w == NULL) {
		sc->read_error = true;
		free(buf);
		scan_mark(sc);
		return;
	}
	while (sc->offset < stop && scan_go_on(sc)) {
		want = stop - sc->offset < SCAN_CHUNK
		           ? (size_t)(stop - sc->offset)
		           : SCAN_CHUNK;
		n = pread(sc->fd, buf, want, (off_t)sc->offset);
		if (n <= 0) {
			sc->read_error = true;
			break;
		}
		sc->offset += (uint64_t)n;
		if (!mime_walker_feed(w, buf, (size_t)n)) {
			/* Stopped by us, or out of memory. */
			sc->read_error = scan_go_on(sc);
			break;
		}
	}
	if (scan_go_on(sc))
		(void)mime_walker_finish(w);
	mime_walker_free(w);
	free(buf);
	scan_mark(sc);
}
