/* SPDX-License-Identifier: MIT */
/* A streaming MIME walker and the base64/quoted-printable decoders. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <petrel/sasl.h>

#include "regex_mime.h"

/* RFC 2046 5.1.1: at most 70 characters; a little slack for the sloppy. */
#define MIME_BOUNDARY_MAX 200
/* Buffers start small and grow up to max_line. */
#define MIME_BUF_START 1024

/* ---- Decoders ---------------------------------------------------------- */

size_t
mime_b64_decode(struct mime_b64 *st, const char *in, size_t len, char *out)
{
	size_t i, n = 0;
	int v;

	for (i = 0; i < len && !st->done; i++) {
		if (in[i] == '=') {
			/* Padding: a partial group carries no more bytes. */
			st->done = st->bits > 0;
			st->acc = 0;
			st->bits = 0;
			continue;
		}
		v = ptl_base64_digit((unsigned char)in[i]);
		if (v < 0)
			continue;
		st->acc = (st->acc << 6) | (uint32_t)v;
		st->bits += 6;
		if (st->bits >= 8) {
			st->bits -= 8;
			out[n++] = (char)((st->acc >> st->bits) & 0xff);
			st->acc &= (1u << st->bits) - 1;
		}
	}
	return n;
}

static int
mime_hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

size_t
mime_qp_decode_line(const char *in, size_t len, char *out, bool *soft_out)
{
	size_t i, n = 0;
	int hi, lo;

	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t' ||
	                   in[len - 1] == '\r'))
		len--;
	*soft_out = len > 0 && in[len - 1] == '=';
	if (*soft_out)
		len--;
	for (i = 0; i < len; i++) {
		if (in[i] == '=' && i + 2 < len) {
			hi = mime_hex((unsigned char)in[i + 1]);
			lo = mime_hex((unsigned char)in[i + 2]);
			if (hi >= 0 && lo >= 0) {
				out[n++] = (char)(hi * 16 + lo);
				i += 2;
				continue;
			}
		}
		out[n++] = in[i];
	}
	return n;
}

size_t
mime_latin1_to_utf8(const char *in, size_t len, char *out)
{
	size_t i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c < 0x80) {
			out[n++] = (char)c;
		} else {
			out[n++] = (char)(0xc0 | (c >> 6));
			out[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	return n;
}

enum mime_charset
mime_charset_find(const char *name, size_t len)
{
	static const struct {
		const char *name;
		enum mime_charset cs;
	} known[] = {
	    {"utf-8", MIME_CHARSET_UTF8},
	    {"utf8", MIME_CHARSET_UTF8},
	    {"us-ascii", MIME_CHARSET_UTF8},
	    {"ascii", MIME_CHARSET_UTF8},
	    {"iso-8859-1", MIME_CHARSET_LATIN1},
	    {"iso8859-1", MIME_CHARSET_LATIN1},
	    {"iso_8859-1", MIME_CHARSET_LATIN1},
	    {"latin1", MIME_CHARSET_LATIN1},
	    {NULL, MIME_CHARSET_OTHER},
	};
	size_t i;

	for (i = 0; known[i].name != NULL; i++) {
		if (strlen(known[i].name) == len &&
		    strncasecmp(known[i].name, name, len) == 0)
			return known[i].cs;
	}
	return MIME_CHARSET_OTHER;
}

/* ---- The walker -------------------------------------------------------- */

enum mime_kind {
	MIME_TEXT = 0,
	MIME_MULTIPART,
	MIME_MESSAGE,
	MIME_OTHER,
};

enum mime_cte {
	MIME_IDENTITY = 0,
	MIME_QP,
	MIME_BASE64,
};

enum mime_state {
	MIME_ST_HEADER = 0, /* an entity's header */
	MIME_ST_TEXT,       /* a text body: decoded */
	MIME_ST_SKIP,       /* preamble, epilogue, other bodies */
};

/* What an entity's header said. */
struct mime_entity {
	enum mime_kind kind;
	enum mime_cte cte;
	enum mime_charset charset;
	char boundary[MIME_BOUNDARY_MAX + 1];
	size_t boundary_len;
};

/* One level of nesting: a multipart (with its boundary) or a message. */
struct mime_level {
	char boundary[MIME_BOUNDARY_MAX + 1];
	size_t len; /* 0: message/rfc822 */
};

/* A growing buffer bounded by max_line. */
struct mime_buf {
	char *p;
	size_t len, cap;
};

struct mime_walker {
	struct mime_limits lim;
	struct mime_handler h;
	struct mime_buf line;  /* the line being assembled */
	bool line_cont;        /* it continues a line already passed on */
	struct mime_buf field; /* the header field being unfolded */
	bool field_active;
	struct mime_buf text; /* decoded text line being assembled */
	struct mime_buf dec;  /* decoder output */
	struct mime_level *levels;
	size_t depth;
	enum mime_state state;
	bool in_body; /* past the message's own header */
	struct mime_entity ent;
	struct mime_b64 b64;
	struct mime_stats st;
	size_t header_bytes;
	bool stop;
};

static bool
mime_buf_reserve(struct mime_buf *b, size_t want, size_t max)
{
	size_t cap = b->cap > 0 ? b->cap : MIME_BUF_START;
	char *p;

	if (want <= b->cap)
		return true;
	if (want > max)
		want = max;
	while (cap < want)
		cap *= 2;
	if (cap > max)
		cap = max;
	if (cap <= b->cap)
		return true;
	p = realloc(b->p, cap);
	if (p == NULL)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

/* Append what fits under @max; the rest is cut. */
static bool
mime_buf_add(struct mime_buf *b, const char *data, size_t len, size_t max)
{
	if (b->len + len > max)
		len = max - b->len;
	if (len == 0)
		return true;
	if (!mime_buf_reserve(b, b->len + len, max))
		return false;
	memcpy(b->p + b->len, data, len);
	b->len += len;
	return true;
}

static void
mime_entity_reset(struct mime_entity *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = MIME_TEXT; /* RFC 2045 5.2: text/plain; us-ascii */
}

struct mime_walker *
mime_walker_new(const struct mime_limits *limits,
                const struct mime_handler *handler)
{
	struct mime_walker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->lim = *limits;
	if (w->lim.max_line < 64)
		w->lim.max_line = 64;
	w->h = *handler;
	mime_entity_reset(&w->ent);
	return w;
}

void
mime_walker_free(struct mime_walker *w)
{
	if (w == NULL)
		return;
	free(w->line.p);
	free(w->field.p);
	free(w->text.p);
	free(w->dec.p);
	free(w->levels);
	free(w);
}

void
mime_walker_stats(const struct mime_walker *w, struct mime_stats *out)
{
	*out = w->st;
}

/* ---- Decoded text ------------------------------------------------------ */

static void
mime_text_emit(struct mime_walker *w)
{
	/* An empty first line has no buffer yet: never hand over NULL
	 * (PCRE2 refuses a NULL subject even when it is empty). */
	const char *line = w->text.p != NULL ? w->text.p : "";
	size_t len = w->text.len;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (w->h.text_line != NULL && !w->h.text_line(w->h.arg, line, len))
		w->stop = true;
	w->text.len = 0;
}

/* Decoded bytes, in the part's charset: split into lines. */
static void
mime_text_put(struct mime_walker *w, const char *data, size_t len)
{
	const char *lf;
	size_t n;

	while (len > 0 && !w->stop && !w->st.text_capped) {
		if (w->st.text_bytes >= w->lim.max_text_bytes) {
			w->st.text_capped = true;
			return;
		}
		if (len > w->lim.max_text_bytes - w->st.text_bytes)
			len = w->lim.max_text_bytes - w->st.text_bytes;
		lf = memchr(data, '\n', len);
		n = lf != NULL ? (size_t)(lf - data) : len;
		if (w->text.len + n >= w->lim.max_line)
			n = w->lim.max_line - w->text.len;
		if (!mime_buf_add(&w->text, data, n, w->lim.max_line)) {
			w->stop = true;
			return;
		}
		w->st.text_bytes += n;
		data += n;
		len -= n;
		if (w->text.len >= w->lim.max_line) {
			mime_text_emit(w);
		} else if (len > 0 && data[0] == '\n') {
			data++;
			len--;
			w->st.text_bytes++;
			mime_text_emit(w);
		}
	}
}

/* Charset conversion in front of mime_text_put(). */
static void
mime_text_decoded(struct mime_walker *w, const char *data, size_t len)
{
	if (w->ent.charset != MIME_CHARSET_LATIN1) {
		mime_text_put(w, data, len);
		return;
	}
	while (len > 0 && !w->stop) {
		char out[512];
		size_t take = len < sizeof(out) / 2 ? len : sizeof(out) / 2;

		mime_text_put(w, out, mime_latin1_to_utf8(data, take, out));
		data += take;
		len -= take;
	}
}

/* The end of a text body: what is pending becomes the last line. */
static void
mime_text_flush(struct mime_walker *w)
{
	if (w->state == MIME_ST_TEXT && w->text.len > 0 && !w->stop)
		mime_text_emit(w);
	w->text.len = 0;
	memset(&w->b64, 0, sizeof(w->b64));
}

static void
mime_text_line(struct mime_walker *w, const char *line, size_t len, bool eol)
{
	bool soft = false;
	size_t n;

	switch (w->ent.cte) {
	case MIME_IDENTITY:
		/* A whole line that fits, nothing pending: it is its own
		 * decoded line, passed on without the copy (what the copy
		 * would give, limits included). */
		if (eol && w->text.len == 0 &&
		    w->ent.charset != MIME_CHARSET_LATIN1 &&
		    len < w->lim.max_line &&
		    w->st.text_bytes + len + 1 <= w->lim.max_text_bytes &&
		    !w->st.text_capped && memchr(line, '\n', len) == NULL) {
			w->st.text_bytes += len + 1;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			if (w->h.text_line != NULL &&
			    !w->h.text_line(w->h.arg, line, len))
				w->stop = true;
			return;
		}
		mime_text_decoded(w, line, len);
		if (eol)
			mime_text_decoded(w, "\n", 1);
		return;
	case MIME_QP:
		if (!mime_buf_reserve(&w->dec, len + 1, w->lim.max_line + 1)) {
			w->stop = true;
			return;
		}
		n = mime_qp_decode_line(line, len, w->dec.p, &soft);
		mime_text_decoded(w, w->dec.p, n);
		if (eol && !soft)
			mime_text_decoded(w, "\n", 1);
		return;
	case MIME_BASE64:
		if (!mime_buf_reserve(&w->dec, len * 3 / 4 + 4,
		                      w->lim.max_line + 4)) {
			w->stop = true;
			return;
		}
		n = mime_b64_decode(&w->b64, line, len, w->dec.p);
		mime_text_decoded(w, w->dec.p, n);
		return;
	}
}

/* ---- Header fields ----------------------------------------------------- */

/* Skip white space and RFC 5322 comments (nested, bounded). */
static const char *
mime_skip_cfws(const char *p, const char *end)
{
	unsigned level = 0;

	for (; p < end; p++) {
		if (*p == '(' && level < 64)
			level++;
		else if (*p == ')' && level > 0)
			level--;
		else if (level == 0 && *p != ' ' && *p != '\t')
			break;
	}
	return p;
}

/* A parameter value: token or quoted string, into @out (cut to @cap-1). */
static const char *
mime_param_value(const char *p, const char *end, char *out, size_t cap,
                 size_t *len_out)
{
	size_t n = 0;

	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (n + 1 < cap)
				out[n++] = *p;
		}
		if (p < end)
			p++;
	} else {
		for (; p < end && *p != ';' && *p != ' ' && *p != '\t' &&
		       *p != '(';
		     p++) {
			if (n + 1 < cap)
				out[n++] = *p;
		}
	}
	out[n] = '\0';
	*len_out = n;
	return p;
}

static bool
mime_token_is(const char *p, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(p, word, len) == 0;
}

/* RFC 2045 5.1: type "/" subtype *(";" parameter). */
static void
mime_content_type(struct mime_entity *e, const char *v, size_t vlen)
{
	const char *end = v + vlen, *p, *name;
	char value[MIME_BOUNDARY_MAX + 1];
	size_t n, vl;

	p = mime_skip_cfws(v, end);
	name = p;
	while (p < end && *p != '/' && *p != ';' && *p != ' ')
		p++;
	n = (size_t)(p - name);
	if (mime_token_is(name, n, "multipart"))
		e->kind = MIME_MULTIPART;
	else if (mime_token_is(name, n, "message"))
		e->kind = MIME_MESSAGE;
	else if (mime_token_is(name, n, "text"))
		e->kind = MIME_TEXT;
	else
		e->kind = MIME_OTHER;
	if (e->kind == MIME_MESSAGE) {
		/* Only message/rfc822 holds a message to walk into. */
		const char *sub = p < end && *p == '/' ? p + 1 : p;
		const char *s = sub;

		while (s < end && *s != ';' && *s != ' ' && *s != '\t')
			s++;
		if (!mime_token_is(sub, (size_t)(s - sub), "rfc822"))
			e->kind = MIME_OTHER;
	}
	while (p < end) {
		p = memchr(p, ';', (size_t)(end - p));
		if (p == NULL)
			break;
		p = mime_skip_cfws(p + 1, end);
		name = p;
		while (p < end && *p != '=' && *p != ';' && *p != ' ')
			p++;
		n = (size_t)(p - name);
		p = mime_skip_cfws(p, end);
		if (p >= end || *p != '=')
			continue;
		p = mime_skip_cfws(p + 1, end);
		p = mime_param_value(p, end, value, sizeof(value), &vl);
		if (mime_token_is(name, n, "boundary") && vl > 0) {
			memcpy(e->boundary, value, vl + 1);
			e->boundary_len = vl;
		} else if (mime_token_is(name, n, "charset")) {
			e->charset = mime_charset_find(value, vl);
		}
	}
}

static void
mime_cte(struct mime_entity *e, const char *v, size_t vlen)
{
	const char *end = v + vlen, *p = mime_skip_cfws(v, end), *t = p;

	while (p < end && *p != ' ' && *p != '\t' && *p != '(')
		p++;
	if (mime_token_is(t, (size_t)(p - t), "base64"))
		e->cte = MIME_BASE64;
	else if (mime_token_is(t, (size_t)(p - t), "quoted-printable"))
		e->cte = MIME_QP;
	else
		e->cte = MIME_IDENTITY;
}

/* A whole field has been unfolded into w->field. */
static void
mime_field_end(struct mime_walker *w)
{
	const char *f = w->field.p, *colon, *v, *end;
	size_t nlen;

	if (!w->field_active)
		return;
	w->field_active = false;
	end = f + w->field.len;
	colon = w->field.len > 0 ? memchr(f, ':', w->field.len) : NULL;
	if (colon == NULL)
		return;
	nlen = (size_t)(colon - f);
	while (nlen > 0 && (f[nlen - 1] == ' ' || f[nlen - 1] == '\t'))
		nlen--;
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	if (mime_token_is(f, nlen, "content-type"))
		mime_content_type(&w->ent, v, (size_t)(end - v));
	else if (mime_token_is(f, nlen, "content-transfer-encoding"))
		mime_cte(&w->ent, v, (size_t)(end - v));
	if (w->in_body || w->h.header == NULL || w->st.header_truncated)
		return;
	if (w->st.headers >= w->lim.max_headers) {
		w->st.header_truncated = true;
		return;
	}
	w->st.headers++;
	if (!w->h.header(w->h.arg, f, nlen, v, (size_t)(end - v)))
		w->stop = true;
}

/* The blank line after an entity's header: what its body is. */
static void
mime_body_start(struct mime_walker *w)
{
	struct mime_level *l;

	mime_field_end(w);
	w->in_body = true;
	/* The nesting stack is only needed by MIME mail. */
	if ((w->ent.kind == MIME_MULTIPART || w->ent.kind == MIME_MESSAGE) &&
	    w->levels == NULL) {
		w->levels = calloc(w->lim.max_depth + 1, sizeof(*w->levels));
		if (w->levels == NULL) {
			w->stop = true;
			return;
		}
	}
	if (w->ent.kind == MIME_MULTIPART && w->ent.boundary_len > 0 &&
	    w->depth < w->lim.max_depth) {
		l = &w->levels[w->depth++];
		memcpy(l->boundary, w->ent.boundary, w->ent.boundary_len);
		l->len = w->ent.boundary_len;
		w->state = MIME_ST_SKIP; /* the preamble */
		return;
	}
	if (w->ent.kind == MIME_MESSAGE && w->depth < w->lim.max_depth) {
		w->levels[w->depth++].len = 0;
		mime_entity_reset(&w->ent);
		w->state = MIME_ST_HEADER;
		return;
	}
	if (w->ent.kind == MIME_MULTIPART || w->ent.kind == MIME_MESSAGE)
		w->st.depth_capped = w->depth >= w->lim.max_depth;
	w->state = w->ent.kind == MIME_TEXT ? MIME_ST_TEXT : MIME_ST_SKIP;
	memset(&w->b64, 0, sizeof(w->b64));
}

static void
mime_header_line(struct mime_walker *w, const char *line, size_t len,
                 bool start, bool eol)
{
	if (!w->in_body) {
		w->header_bytes += len + (eol ? 2 : 0);
		if (w->header_bytes > w->lim.max_header_bytes)
			w->st.header_truncated = true;
	}
	if (start && len == 0 && eol) {
		mime_body_start(w);
		return;
	}
	if (start && line[0] != ' ' && line[0] != '\t') {
		mime_field_end(w);
		w->field.len = 0;
		w->field_active = true;
	}
	if (w->field_active &&
	    !mime_buf_add(&w->field, line, len, w->lim.max_line))
		w->stop = true;
}

/* "--boundary" or "--boundary--" of an open multipart: its level + 1,
 * negated for the close delimiter; 0 when it is no delimiter. */
static long
mime_delimiter(const struct mime_walker *w, const char *line, size_t len)
{
	const struct mime_level *l;
	size_t i, k;

	if (len < 3 || line[0] != '-' || line[1] != '-')
		return 0;
	for (i = w->depth; i-- > 0;) {
		l = &w->levels[i];
		if (l->len == 0 || len - 2 < l->len ||
		    memcmp(line + 2, l->boundary, l->len) != 0)
			continue;
		k = 2 + l->len;
		if (len - k >= 2 && line[k] == '-' && line[k + 1] == '-')
			return -(long)(i + 1);
		for (; k < len; k++) {
			if (line[k] != ' ' && line[k] != '\t' &&
			    line[k] != '\r')
				break;
		}
		if (k == len)
			return (long)(i + 1);
	}
	return 0;
}

static void
mime_delimiter_found(struct mime_walker *w, long d)
{
	size_t level = (size_t)(d < 0 ? -d : d) - 1;

	mime_text_flush(w);
	mime_field_end(w);
	if (d > 0) {
		w->depth = level + 1;
		mime_entity_reset(&w->ent);
		w->state = MIME_ST_HEADER;
		w->st.parts++;
	} else {
		w->depth = level;
		w->state = MIME_ST_SKIP; /* the epilogue */
	}
}

/* One line, or a piece of a long one (@start: it begins a line, @eol: it
 * ends one). */
static void
mime_line(struct mime_walker *w, const char *line, size_t len, bool start,
          bool eol)
{
	long d;

	if (len > 0 && line[len - 1] == '\r' && eol)
		len--;
	if (!w->in_body) {
		mime_header_line(w, line, len, start, eol);
		return;
	}
	if (w->h.body_line != NULL && !w->h.body_line(w->h.arg, line, len)) {
		w->stop = true;
		return;
	}
	if (start && w->depth > 0) {
		d = mime_delimiter(w, line, len);
		if (d != 0) {
			mime_delimiter_found(w, d);
			return;
		}
	}
	switch (w->state) {
	case MIME_ST_HEADER:
		mime_header_line(w, line, len, start, eol);
		break;
	case MIME_ST_TEXT:
		mime_text_line(w, line, len, eol);
		break;
	case MIME_ST_SKIP:
		break;
	}
}

bool
mime_walker_feed(struct mime_walker *w, const char *data, size_t len)
{
	const char *lf;
	size_t n;
	bool eol;

	while (len > 0 && !w->stop) {
		if (w->line.len == w->lim.max_line) {
			/*
			 * A full piece waited for the next byte: an LF ends
			 * its line, as when both came in one piece (how the
			 * input is cut must not change the lines).
			 */
			eol = data[0] == '\n';
			mime_line(w, w->line.p, w->line.len, !w->line_cont,
			          eol);
			w->line_cont = !eol;
			w->line.len = 0;
			if (eol) {
				data++;
				len--;
			}
			continue;
		}
		lf = memchr(data, '\n', len);
		n = lf != NULL ? (size_t)(lf - data) : len;
		if (w->line.len + n > w->lim.max_line) {
			/* A piece of max_line bytes goes on its own. */
			n = w->lim.max_line - w->line.len;
			lf = NULL;
		}
		if (w->line.len == 0 && lf != NULL) {
			/* A whole line in the input: no copy. */
			mime_line(w, data, n, !w->line_cont, true);
			w->line_cont = false;
		} else {
			if (!mime_buf_add(&w->line, data, n, w->lim.max_line)) {
				w->stop = true;
				break;
			}
			if (lf != NULL) {
				mime_line(w, w->line.p, w->line.len,
				          !w->line_cont, true);
				w->line_cont = false;
				w->line.len = 0;
			}
		}
		data += n + (lf != NULL ? 1 : 0);
		len -= n + (lf != NULL ? 1 : 0);
	}
	return !w->stop;
}

bool
mime_walker_finish(struct mime_walker *w)
{
	if (w->stop)
		return false;
	if (w->line.len > 0) {
		mime_line(w, w->line.p, w->line.len, !w->line_cont, true);
		w->line.len = 0;
	}
	if (!w->in_body)
		mime_field_end(w);
	else if (w->state == MIME_ST_HEADER)
		mime_field_end(w);
	mime_text_flush(w);
	return !w->stop;
}
