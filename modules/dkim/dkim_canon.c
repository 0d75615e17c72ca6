/* SPDX-License-Identifier: MIT */
/* DKIM canonicalization (RFC 6376 section 3.4) and the header/body split. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim.h"

static bool
canon_is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- header fields ----------------------------------------------------- */

/* Relaxed output of one field is never longer than its input + 3. */
#define CANON_HDR_CHUNK 512

struct canon_out {
	dkim_emit_fn emit;
	void *arg;
	size_t n;
	char buf[CANON_HDR_CHUNK];
};

static void
canon_out_byte(struct canon_out *o, char c)
{
	if (o->n == sizeof(o->buf)) {
		o->emit(o->arg, o->buf, o->n);
		o->n = 0;
	}
	o->buf[o->n++] = c;
}

static void
canon_out_flush(struct canon_out *o)
{
	if (o->n > 0)
		o->emit(o->arg, o->buf, o->n);
	o->n = 0;
}

void
dkim_canon_header(enum dkim_canon mode, const char *field, size_t len,
                  bool crlf, dkim_emit_fn emit, void *arg)
{
	struct canon_out o;
	const char *colon;
	size_t i, name_end;
	bool wsp = false, started = false;

	if (mode == DKIM_CANON_SIMPLE) {
		emit(arg, field, len);
		if (crlf)
			emit(arg, "\r\n", 2);
		return;
	}
	o.emit = emit;
	o.arg = arg;
	o.n = 0;
	colon = memchr(field, ':', len);
	name_end = colon != NULL ? (size_t)(colon - field) : len;
	/* The name, lower case, without the whitespace before the colon. */
	i = name_end;
	while (i > 0 && canon_is_wsp(field[i - 1]))
		i--;
	for (size_t k = 0; k < i; k++) {
		char c = field[k];

		canon_out_byte(&o, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
	}
	if (colon != NULL) {
		canon_out_byte(&o, ':');
		/* The value: unfolded, runs of WSP become one SP, none at
		 * either end. */
		for (i = name_end + 1; i < len; i++) {
			char c = field[i];

			/* Unfolding removes CRLF pairs only. */
			if (c == '\r' && i + 1 < len && field[i + 1] == '\n') {
				i++;
				continue;
			}
			if (canon_is_wsp(c)) {
				wsp = true;
				continue;
			}
			if (wsp && started)
				canon_out_byte(&o, ' ');
			wsp = false;
			started = true;
			canon_out_byte(&o, c);
		}
	}
	if (crlf) {
		canon_out_byte(&o, '\r');
		canon_out_byte(&o, '\n');
	}
	canon_out_flush(&o);
}

/* ---- body -------------------------------------------------------------- */

void
dkim_body_canon_init(struct dkim_body_canon *c, enum dkim_canon mode,
                     bool has_limit, uint64_t limit, dkim_emit_fn emit,
                     void *emit_arg)
{
	memset(c, 0, offsetof(struct dkim_body_canon, out));
	c->mode = mode;
	c->has_limit = has_limit;
	c->limit = limit;
	c->emit = emit;
	c->emit_arg = emit_arg;
}

static void
canon_flush(struct dkim_body_canon *c)
{
	if (c->out_len > 0)
		c->emit(c->emit_arg, c->out, c->out_len);
	c->out_len = 0;
}

/*
 * Every canonical byte goes through here: counted in total, and passed on
 * only while under the l= limit, so the limit costs nothing to enforce.
 */
static inline void
canon_put(struct dkim_body_canon *c, char ch)
{
	c->total++;
	if (c->has_limit && c->emitted >= c->limit)
		return;
	c->emitted++;
	/* Full before writing: canon_put_span() may fill it exactly. */
	if (c->out_len == sizeof(c->out))
		canon_flush(c);
	c->out[c->out_len++] = ch;
}

/* Line ends held back because only empty lines followed them so far. */
static void
canon_put_pending_crlf(struct dkim_body_canon *c)
{
	uint64_t n = c->crlf_pending;

	c->crlf_pending = 0;
	while (n > 0) {
		if (c->has_limit && c->emitted >= c->limit) {
			c->total += 2 * n;
			return;
		}
		canon_put(c, '\r');
		canon_put(c, '\n');
		n--;
	}
}

/* A byte of line content (anything but the CRLF that ends a line). */
static inline void
canon_content(struct dkim_body_canon *c, char ch)
{
	if (c->crlf_pending > 0)
		canon_put_pending_crlf(c);
	if (c->wsp_pending) {
		canon_put(c, ' ');
		c->wsp_pending = false;
	}
	c->content = true;
	canon_put(c, ch);
}

/* A run of line content with nothing pending: copied as one span. */
static void
canon_put_span(struct dkim_body_canon *c, const char *p, size_t n)
{
	uint64_t room;

	c->content = true;
	c->total += n;
	if (c->has_limit) {
		room = c->limit - c->emitted;
		if (n > room)
			n = (size_t)room;
	}
	if (n == 0)
		return;
	c->emitted += n;
	if (c->out_len + n > sizeof(c->out)) {
		canon_flush(c);
		if (n >= sizeof(c->out)) {
			c->emit(c->emit_arg, p, n);
			return;
		}
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
}

/*
 * Where the next byte that needs a decision is: CR, and in relaxed mode
 * a tab or a run of spaces. A single space between two other bytes is
 * already canonical and stays inside the span, so ordinary text goes
 * through in long runs.
 */
static size_t
canon_span_end(const char *data, size_t i, size_t len, bool relaxed)
{
	const char *cr;
	char ch, next;

	if (!relaxed) {
		cr = memchr(data + i, '\r', len - i);
		return cr != NULL ? (size_t)(cr - data) : len;
	}
	while (i < len) {
		ch = data[i];
		if (ch == '\r' || ch == '\t')
			break;
		if (ch == ' ') {
			if (i + 1 == len)
				break;
			next = data[i + 1];
			if (next == ' ' || next == '\t' || next == '\r')
				break;
			i += 2;
			continue;
		}
		i++;
	}
	return i;
}

void
dkim_body_canon_update(struct dkim_body_canon *c, const char *data, size_t len)
{
	bool relaxed = c->mode == DKIM_CANON_RELAXED;
	size_t i = 0, end;
	char ch;

	while (i < len) {
		if (!c->cr_pending && c->crlf_pending == 0 && !c->wsp_pending) {
			end = canon_span_end(data, i, len, relaxed);
			if (end > i) {
				canon_put_span(c, data + i, end - i);
				i = end;
				continue;
			}
		}
		ch = data[i++];
		if (c->cr_pending) {
			c->cr_pending = false;
			if (ch == '\n') {
				/* End of line: whitespace before it is
				 * dropped in relaxed mode. */
				c->wsp_pending = false;
				c->crlf_pending++;
				continue;
			}
			/* A CR not followed by LF is line content. */
			canon_content(c, '\r');
		}
		if (ch == '\r')
			c->cr_pending = true;
		else if (relaxed && canon_is_wsp(ch))
			c->wsp_pending = true;
		else
			canon_content(c, ch);
	}
}

void
dkim_body_canon_final(struct dkim_body_canon *c)
{
	if (c->cr_pending) {
		c->cr_pending = false;
		canon_content(c, '\r');
	}
	/* Trailing whitespace of an unterminated last line is dropped. */
	c->wsp_pending = false;
	/*
	 * Trailing empty lines are ignored and a missing final CRLF is
	 * added; an empty body is CRLF in simple mode and stays empty in
	 * relaxed mode (section 3.4.3, 3.4.4).
	 */
	c->crlf_pending = 0;
	if (c->content || c->mode == DKIM_CANON_SIMPLE) {
		canon_put(c, '\r');
		canon_put(c, '\n');
	}
	canon_flush(c);
}

/* ---- the header section ------------------------------------------------ */

static int
canon_add_field(struct dkim_headers *h, size_t off, size_t len,
                size_t max_fields)
{
	struct dkim_hfield *f;
	const char *s = h->base + off;
	size_t n, grow;

	if (h->count == max_fields)
		return -1;
	if (h->count == h->cap) {
		grow = h->cap == 0 ? 32 : h->cap * 2;
		if (grow > max_fields)
			grow = max_fields;
		f = realloc(h->field, grow * sizeof(*f));
		if (f == NULL)
			return -2;
		h->field = f;
		h->cap = grow;
	}
	f = &h->field[h->count++];
	f->off = off;
	f->len = len;
	/* field-name = 1*ftext (printable, not ':'), then optional WSP
	 * (obsolete syntax) and the colon. */
	for (n = 0; n < len && (unsigned char)s[n] > 32 &&
	            (unsigned char)s[n] < 127 && s[n] != ':';
	     n++)
		;
	f->name_len = n;
	while (n < len && canon_is_wsp(s[n]))
		n++;
	if (f->name_len == 0 || n == len || s[n] != ':')
		f->name_len = 0;
	return 0;
}

int
dkim_headers_parse(const char *buf, size_t len, bool complete,
                   size_t max_fields, struct dkim_headers *out,
                   const char **why_out)
{
	const char *end;
	size_t hdr_len, pos = 0, start, eol;
	int rc;

	memset(out, 0, sizeof(*out));
	out->base = buf;
	/* The split is the first CRLF CRLF and nothing else. */
	if (len >= 2 && buf[0] == '\r' && buf[1] == '\n') {
		/* No header fields at all: the message starts with CRLF. */
		hdr_len = 0;
		out->body_off = 2;
		out->has_body = true;
	} else if ((end = memmem(buf, len, "\r\n\r\n", 4)) != NULL) {
		hdr_len = (size_t)(end - buf) + 2; /* with the last CRLF */
		out->body_off = hdr_len + 2;
		out->has_body = true;
	} else if (!complete) {
		*why_out = "header section too large";
		return -1;
	} else {
		hdr_len = len;
		out->body_off = len;
	}
	while (pos < hdr_len) {
		start = pos;
		/* A field runs until a CRLF that is not followed by WSP. */
		for (;;) {
			const char *crlf =
			    memmem(buf + pos, hdr_len - pos, "\r\n", 2);

			if (crlf == NULL) {
				eol = hdr_len;
				pos = hdr_len;
				break;
			}
			eol = (size_t)(crlf - buf);
			pos = eol + 2;
			if (pos < hdr_len && canon_is_wsp(buf[pos]))
				continue;
			break;
		}
		rc = canon_add_field(out, start, eol - start, max_fields);
		if (rc != 0) {
			*why_out = rc == -1 ? "too many header fields"
			                    : "out of memory";
			dkim_headers_free(out);
			return -1;
		}
	}
	return 0;
}

void
dkim_headers_free(struct dkim_headers *h)
{
	free(h->field);
	h->field = NULL;
	h->count = h->cap = 0;
}

bool
dkim_headers_is(const struct dkim_headers *h, size_t i, const char *name,
                size_t name_len)
{
	const struct dkim_hfield *f = &h->field[i];

	return f->name_len == name_len && name_len > 0 &&
	       strncasecmp(h->base + f->off, name, name_len) == 0;
}

void
dkim_canon_select(const struct dkim_headers *h, const struct dkim_name *names,
                  size_t n, enum dkim_canon mode, bool *used, dkim_emit_fn emit,
                  void *arg)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = h->count; k-- > 0;) {
			if (used[k] ||
			    !dkim_headers_is(h, k, names[i].p, names[i].n))
				continue;
			used[k] = true;
			dkim_canon_header(mode, h->base + h->field[k].off,
			                  h->field[k].len, true, emit, arg);
			break;
		}
	}
}
