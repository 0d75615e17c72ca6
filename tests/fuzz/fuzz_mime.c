/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the streaming MIME walker and its decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "regex_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: 6 bytes of settings (limits, split points), then the message.
 * The walk is done twice, once in one piece and once cut at the split
 * points: the callbacks must see exactly the same thing.
 */

struct trace {
	const struct mime_limits *lim;
	uint64_t hash; /* FNV-1a over every callback and its bytes */
	size_t headers, text_bytes;
};

static void
trace_mix(struct trace *t, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		t->hash ^= s[i];
		t->hash *= 0x100000001b3ull;
	}
	/* The length too, so that "ab","c" differs from "a","bc". */
	for (size_t i = 0; i < sizeof(len); i++) {
		t->hash ^= (len >> (8 * i)) & 0xff;
		t->hash *= 0x100000001b3ull;
	}
}

static void
touch(const char *p, size_t len)
{
	volatile char sink = 0;

	/* ASan checks that every byte handed over is readable. */
	for (size_t i = 0; i < len; i++)
		sink ^= p[i];
	(void)sink;
}

static bool
on_header(void *arg, const char *name, size_t name_len, const char *value,
          size_t value_len)
{
	struct trace *t = arg;

	touch(name, name_len);
	touch(value, value_len);
	if (name_len + value_len > t->lim->max_line)
		abort();
	if (memchr(name, ':', name_len) != NULL)
		abort();
	t->headers++;
	trace_mix(t, "H", 1);
	trace_mix(t, name, name_len);
	trace_mix(t, value, value_len);
	return true;
}

static bool
on_body_line(void *arg, const char *line, size_t len)
{
	struct trace *t = arg;

	touch(line, len);
	if (len > t->lim->max_line || memchr(line, '\n', len) != NULL)
		abort();
	trace_mix(t, "B", 1);
	trace_mix(t, line, len);
	return true;
}

static bool
on_text_line(void *arg, const char *line, size_t len)
{
	struct trace *t = arg;

	touch(line, len);
	if (len > t->lim->max_line || memchr(line, '\n', len) != NULL)
		abort();
	t->text_bytes += len;
	trace_mix(t, "T", 1);
	trace_mix(t, line, len);
	return true;
}

static void
walk(const struct mime_limits *lim, const uint8_t *msg, size_t size,
     const uint8_t *cuts, size_t ncuts, struct trace *t, struct mime_stats *st)
{
	struct mime_handler h = {t, on_header, on_body_line, on_text_line};
	struct mime_walker *w;
	size_t off = 0, k = 0, n;

	memset(t, 0, sizeof(*t));
	t->lim = lim;
	t->hash = 0xcbf29ce484222325ull;
	w = mime_walker_new(lim, &h);
	if (w == NULL)
		abort();
	while (off < size) {
		/* Piece sizes 1..256 from the cut bytes, then the rest. */
		n = k < ncuts ? (size_t)cuts[k++] + 1 : size - off;
		if (n > size - off)
			n = size - off;
		if (!mime_walker_feed(w, (const char *)msg + off, n))
			abort(); /* the callbacks never stop it */
		off += n;
	}
	if (!mime_walker_finish(w))
		abort();
	mime_walker_stats(w, st);
	mime_walker_free(w);
	if (st->headers != t->headers || st->headers > lim->max_headers ||
	    st->text_bytes > lim->max_text_bytes)
		abort();
}

/* The decoders alone, with their documented output bounds. */
static void
decoders(const char *in, size_t len)
{
	struct mime_b64 b64 = {0};
	char *out = malloc(2 * len + 4);
	size_t n, half = len / 2;
	bool soft;

	if (out == NULL)
		abort();
	/* Two calls carry the state across a cut in the middle. */
	n = mime_b64_decode(&b64, in, half, out);
	if (n > half * 3 / 4 + 3)
		abort();
	n = mime_b64_decode(&b64, in + half, len - half, out);
	if (n > (len - half) * 3 / 4 + 3 || b64.bits >= 8)
		abort();
	n = mime_qp_decode_line(in, len, out, &soft);
	if (n > len)
		abort();
	n = mime_latin1_to_utf8(in, len, out);
	if (n > 2 * len || n < len)
		abort();
	(void)mime_charset_find(in, len < 32 ? len : 32);
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_limits lim;
	struct trace a, b;
	struct mime_stats sa, sb;
	const uint8_t *cuts, *msg;
	size_t ncuts, msg_len;

	if (size < 6)
		return 0;
	/* Small limits, so that every cap is reached by short inputs. */
	lim.max_line = 64 + (size_t)data[0] * 4;
	lim.max_header_bytes = 64 + (size_t)data[1] * 32;
	lim.max_headers = data[2] % 32;
	lim.max_depth = data[3] % 8;
	lim.max_text_bytes = 1 + (size_t)data[4] * 64;
	ncuts = data[5] % 32;
	data += 6;
	size -= 6;
	if (ncuts > size)
		ncuts = size;
	cuts = data;
	msg = data + ncuts;
	msg_len = size - ncuts;

	walk(&lim, msg, msg_len, NULL, 0, &a, &sa);
	walk(&lim, msg, msg_len, cuts, ncuts, &b, &sb);
	if (a.hash != b.hash || sa.headers != sb.headers ||
	    sa.parts != sb.parts || sa.text_bytes != sb.text_bytes ||
	    sa.header_truncated != sb.header_truncated ||
	    sa.depth_capped != sb.depth_capped ||
	    sa.text_capped != sb.text_capped)
		abort();
	decoders((const char *)msg, msg_len);
	return 0;
}
