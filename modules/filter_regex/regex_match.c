/* SPDX-License-Identifier: MIT */
/* Running the rules: envelope subjects, the message scan, the verdict. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/uio.h>

#include "regex.h"
#include "regex_2047.h"
#include "regex_mime.h"

/* Message bytes read per pread(). */
#define SCAN_CHUNK (64 * 1024)
/* Most bytes and lines in a block of lines (see block_rule). */
#define SCAN_BLOCK_BYTES (16 * 1024)
#define SCAN_BLOCK_LINES 512

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
	regex_eval_record(
	    ev, rule, regex_rule_match(r, ev->conf->mctx, md, subject, len));
}

void
regex_eval_record(struct regex_eval *ev, size_t rule, enum regex_hit hit)
{
	ev->evaluated[rule] = true;
	switch (hit) {
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
	size_t i, j, n = conf->rules.count, nadd = 0, nedit = 0;

	memset(out, 0, sizeof(*out));
	/* Room for the header changes of the rules that apply (usually
	 * none: nothing to allocate). */
	for (i = 0; i < n; i++) {
		r = &rules[i];
		if (r->hook != ev->hook || !ev->evaluated[i] ||
		    ev->matched[i] == r->negate)
			continue;
		nadd += r->add.name != NULL;
		nedit += r->nedits;
	}
	if (nadd > 0)
		out->headers = calloc(nadd, sizeof(*out->headers));
	if (nedit > 0)
		out->edits = calloc(nedit, sizeof(*out->edits));
	if ((nadd > 0 && out->headers == NULL) ||
	    (nedit > 0 && out->edits == NULL)) {
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

/* Reading the clock costs about as much as matching a short line: it is
 * read before a match when SCAN_CLOCK_EVERY matches or SCAN_CLOCK_BYTES
 * of subject went by since it was last read (a match's time grows with
 * its subject, each start position bounded by the match limit). */
#define SCAN_CLOCK_EVERY 16
#define SCAN_CLOCK_BYTES 4096

static bool
scan_clock(struct regex_scan *sc, size_t len)
{
	if (sc->clock_countdown > 0 && sc->clock_bytes < SCAN_CLOCK_BYTES) {
		sc->clock_countdown--;
		sc->clock_bytes += len;
		return true;
	}
	sc->clock_countdown = SCAN_CLOCK_EVERY - 1;
	sc->clock_bytes = len;
	if (scan_now_ms() <= sc->deadline_ms)
		return true;
	if (sc->inline_mode)
		sc->yielded = true;
	else
		sc->timed_out = true;
	return false;
}

/* Between two matches: is there time left, and a rule to decide? */
static bool
scan_go_on(const struct regex_scan *sc)
{
	return !sc->timed_out && !sc->yielded && sc->undecided > 0;
}

static void
scan_subject(struct regex_scan *sc, size_t i, const char *s, size_t len)
{
	const struct regex_rule *r =
	    &((const struct regex_rule *)sc->conf->rules.items)[i];
	enum regex_hit hit;

	if (!scan_clock(sc, len))
		return;
	hit = regex_rule_match(r, sc->mctx, sc->md, s, len);
	if (hit == REGEX_LIMIT && sc->inline_mode) {
		/* The lower limit of the loop: the pool decides. */
		sc->yielded = true;
		return;
	}
	regex_eval_record(&sc->ev, i, hit);
	if (sc->ev.matched[i])
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
	const struct regex_conf *conf = sc->conf;
	const struct regex_rule *rules = conf->rules.items, *r;
	struct scan_field f = {name, value, nlen, vlen, NULL, 0, NULL};
	const char *subject;
	size_t k, i, len;

	/* header:NAME rules, then any_header rules. */
	for (k = conf->target_first[REGEX_HEADER];
	     k < conf->target_first[REGEX_ANY_HEADER + 1] && scan_go_on(sc);
	     k++) {
		i = conf->by_target[k];
		r = &rules[i];
		if (sc->ev.matched[i])
			continue;
		if (r->kind == REGEX_HEADER &&
		    (r->header_name_len != nlen ||
		     strncasecmp(r->header_name, name, nlen) != 0))
			continue;
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
	const struct regex_conf *conf = sc->conf;
	size_t k, i;

	for (k = conf->target_first[kind];
	     k < conf->target_first[kind + 1] && scan_go_on(sc); k++) {
		i = conf->by_target[k];
		if (!sc->ev.matched[i])
			scan_subject(sc, i, line, len);
	}
	return scan_go_on(sc);
}

/* ---- Blocks of lines ---------------------------------------------------- */

/*
 * A pattern that regex_block_safe() accepts searches a block of lines in
 * one match instead of one match per line (the cost of a match is mostly
 * its fixed part when lines are short). A match found in the block is
 * checked on the line where it starts, with the line's own pattern and
 * limits, so the result is the line-by-line one; a limit hit in the
 * block falls back to line by line.
 */

static const char *
block_line(const struct regex_block *bl, size_t j, size_t *len_out)
{
	size_t end = j + 1 < bl->n ? bl->starts[j + 1] - 1 : bl->len;

	*len_out = end - bl->starts[j];
	return bl->text + bl->starts[j];
}

/* The line of @bl holding offset @at, from line @j on. */
static size_t
block_find(const struct regex_block *bl, size_t j, size_t at)
{
	size_t lo = j, hi = bl->n - 1, mid;

	while (lo < hi) {
		mid = lo + (hi - lo + 1) / 2;
		if (bl->starts[mid] <= at)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static void
block_rule(struct regex_scan *sc, size_t i, const struct regex_block *bl)
{
	const struct regex_rule *r =
	    &((const struct regex_rule *)sc->conf->rules.items)[i];
	const char *line;
	size_t j = 0, at = 0, len;
	enum regex_hit hit;

	while (j < bl->n && scan_go_on(sc) && !sc->ev.matched[i]) {
		if (r->block_re == NULL) {
			line = block_line(bl, j++, &len);
			scan_subject(sc, i, line, len);
			continue;
		}
		if (!scan_clock(sc, bl->len - bl->starts[j]))
			return;
		hit = regex_rule_match_block(r, sc->mctx, sc->md, bl->text,
		                             bl->len, bl->starts[j], &at);
		if (hit == REGEX_NO)
			return;
		if (hit == REGEX_YES)
			j = block_find(bl, j, at);
		/* A limit: this line and the next ones, one by one. */
		while (j < bl->n && scan_go_on(sc) && !sc->ev.matched[i]) {
			line = block_line(bl, j++, &len);
			scan_subject(sc, i, line, len);
			if (hit == REGEX_YES)
				break;
		}
	}
}

static void
block_flush(struct regex_scan *sc, enum regex_target kind)
{
	const struct regex_conf *conf = sc->conf;
	struct regex_block *bl = &sc->blocks[kind == REGEX_BODY_TEXT];
	size_t k, i;

	for (k = conf->target_first[kind];
	     k < conf->target_first[kind + 1] && scan_go_on(sc); k++) {
		i = conf->by_target[k];
		if (!sc->ev.matched[i])
			block_rule(sc, i, bl);
	}
	bl->len = 0;
	bl->n = 0;
}

static bool
block_alloc(struct regex_block *bl, size_t cap)
{
	if (bl->text != NULL)
		return true;
	bl->cap = cap;
	bl->text = malloc(cap);
	bl->starts = malloc(SCAN_BLOCK_LINES * sizeof(*bl->starts));
	if (bl->text != NULL && bl->starts != NULL)
		return true;
	free(bl->text);
	free(bl->starts);
	bl->text = NULL;
	bl->starts = NULL;
	return false;
}

static bool
block_add(struct regex_scan *sc, enum regex_target kind, const char *line,
          size_t len)
{
	struct regex_block *bl = &sc->blocks[kind == REGEX_BODY_TEXT];

	/* A long line, or one that would not be one line in the block
	 * (no line holds an LF: this is a safety net), goes alone. */
	if (!block_alloc(bl, sc->block_cap) || len > bl->cap / 4 ||
	    memchr(line, '\n', len) != NULL) {
		block_flush(sc, kind);
		return scan_lines(sc, kind, line, len);
	}
	if (bl->n == SCAN_BLOCK_LINES || bl->len + (bl->n > 0) + len > bl->cap)
		block_flush(sc, kind);
	if (bl->n > 0)
		bl->text[bl->len++] = '\n';
	bl->starts[bl->n++] = bl->len;
	memcpy(bl->text + bl->len, line, len);
	bl->len += len;
	return scan_go_on(sc);
}

static bool
scan_body_line(void *arg, const char *line, size_t len)
{
	struct regex_scan *sc = arg;

	if (sc->conf->block_body)
		return block_add(sc, REGEX_BODY, line, len);
	return scan_lines(sc, REGEX_BODY, line, len);
}

static bool
scan_text_line(void *arg, const char *line, size_t len)
{
	struct regex_scan *sc = arg;

	if (sc->conf->block_text)
		return block_add(sc, REGEX_BODY_TEXT, line, len);
	return scan_lines(sc, REGEX_BODY_TEXT, line, len);
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
	sc->mctx = conf->mctx;
	sc->block_cap = SCAN_BLOCK_BYTES;
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
	if (sc->fd >= 0 && !sc->inline_mode)
		close(sc->fd);
	sc->fd = -1;
	pcre2_match_data_free(sc->md);
	sc->md = NULL;
	free(sc->scratch);
	sc->scratch = NULL;
	for (size_t b = 0; b < 2; b++) {
		free(sc->blocks[b].text);
		free(sc->blocks[b].starts);
		sc->blocks[b].text = NULL;
		sc->blocks[b].starts = NULL;
	}
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

/* Up to @want bytes at sc->offset; < 0: stop (sc says why). */
static ssize_t
scan_read(struct regex_scan *sc, char *buf, size_t want)
{
	struct iovec iov = {buf, want};
	ssize_t n;

	if (!sc->inline_mode) {
		n = pread(sc->fd, buf, want, (off_t)sc->offset);
		if (n <= 0)
			sc->read_error = true;
		return n > 0 ? n : -1;
	}
	/* The loop must not wait for a disk: only what is cached. */
	do {
		n = preadv2(sc->fd, &iov, 1, (off_t)sc->offset, RWF_NOWAIT);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		sc->yielded = true;
	return n > 0 ? n : -1;
}

static void
scan_walk(struct regex_scan *sc, char *buf, size_t cap)
{
	const struct regex_conf *conf = sc->conf;
	struct mime_limits lim;
	struct mime_handler h;
	struct mime_walker *w;
	uint64_t stop = sc->end;
	ssize_t n;
	size_t want;

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
	w = mime_walker_new(&lim, &h);
	if (w == NULL) {
		sc->read_error = true;
		return;
	}
	while (sc->offset < stop && scan_go_on(sc)) {
		want =
		    stop - sc->offset < cap ? (size_t)(stop - sc->offset) : cap;
		n = scan_read(sc, buf, want);
		if (n < 0)
			break;
		sc->offset += (uint64_t)n;
		if (!mime_walker_feed(w, buf, (size_t)n)) {
			/* Stopped by us, or out of memory. */
			sc->read_error = scan_go_on(sc);
			break;
		}
	}
	if (scan_go_on(sc) && !sc->read_error)
		(void)mime_walker_finish(w);
	mime_walker_free(w);
	if (!sc->read_error) {
		block_flush(sc, REGEX_BODY);
		block_flush(sc, REGEX_BODY_TEXT);
	}
}

void
regex_scan_run(struct regex_scan *sc)
{
	char *buf = malloc(SCAN_CHUNK);

	sc->deadline_ms = scan_now_ms() + sc->conf->scan_time_limit;
	if (buf == NULL)
		sc->read_error = true;
	else
		scan_walk(sc, buf, SCAN_CHUNK);
	free(buf);
	scan_mark(sc);
}

bool
regex_scan_inline(struct regex_scan *sc)
{
	size_t cap;
	char *buf;

	sc->inline_mode = true;
	if (sc->end - sc->offset > REGEX_INLINE_BYTES ||
	    sc->conf->inline_mctx == NULL)
		return false;
	/* Small buffers for small mail: malloc() and free() then keep to
	 * the heap's free lists, without brk() calls. */
	cap = sc->end - sc->offset < SCAN_CHUNK
	          ? (size_t)(sc->end - sc->offset) + 1
	          : SCAN_CHUNK;
	sc->block_cap = cap < SCAN_BLOCK_BYTES / 4 ? SCAN_BLOCK_BYTES / 4
	                                           : SCAN_BLOCK_BYTES;
	buf = malloc(cap);
	if (buf == NULL)
		return false;
	sc->mctx = sc->conf->inline_mctx;
	sc->deadline_ms = scan_now_ms() + REGEX_INLINE_MS;
	scan_walk(sc, buf, cap);
	free(buf);
	if (sc->yielded || sc->read_error)
		return false;
	scan_mark(sc);
	return true;
}
