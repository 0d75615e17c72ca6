/* SPDX-License-Identifier: MIT */
/* A streaming MIME walker and the base64/quoted-printable decoders. */
#ifndef PETREL_REGEX_MIME_H
#define PETREL_REGEX_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The walker takes the message (from the first byte of its header) in
 * pieces of any size and calls back with what the rules look at. Every
 * buffer it keeps is bounded by the limits: a line longer than max_line
 * is handed over in pieces of max_line bytes.
 */

/** Callbacks; each returns false to stop the walk. NULL: not wanted. */
struct mime_handler {
	void *arg;
	/** A field of the message's own header, unfolded (line breaks
	 *  removed, the folding white space kept); value without the
	 *  white space after the colon. */
	bool (*header)(void *arg, const char *name, size_t name_len,
	               const char *value, size_t value_len);
	/** A line of the body as sent (everything after the header, MIME
	 *  structure included), without its CRLF. */
	bool (*body_line)(void *arg, const char *line, size_t len);
	/** A line of decoded text: the body of a text part (text/plain,
	 * text/html...) (or of a message without MIME structure) decoded from
	 * base64 or quoted-printable, ISO-8859-1 converted to UTF-8. */
	bool (*text_line)(void *arg, const char *line, size_t len);
};

/** Bounds of one walk. */
struct mime_limits {
	size_t max_line;         /**< longest line (and field) kept */
	size_t max_header_bytes; /**< header fields reported up to this */
	size_t max_headers;      /**< ... and this many */
	size_t max_depth;        /**< multipart / message nesting */
	size_t max_text_bytes;   /**< decoded text reported, in total */
};

/** What a walk ran into (for logs and tests). */
struct mime_stats {
	size_t headers;        /**< header fields reported */
	size_t parts;          /**< MIME parts seen */
	size_t text_bytes;     /**< decoded text reported */
	bool header_truncated; /**< max_header_bytes or max_headers hit */
	bool depth_capped;     /**< nesting deeper than max_depth */
	bool text_capped;      /**< max_text_bytes hit */
};

struct mime_walker;

/** A walker, or NULL when out of memory. */
struct mime_walker *mime_walker_new(const struct mime_limits *limits,
                                    const struct mime_handler *handler);
/** Feed @p len bytes. @return false once a callback asked to stop or
 *  memory ran out (feeding more does nothing). */
bool mime_walker_feed(struct mime_walker *w, const char *data, size_t len);
/** The end of the message: flush what is pending. */
bool mime_walker_finish(struct mime_walker *w);
void mime_walker_stats(const struct mime_walker *w, struct mime_stats *out);
void mime_walker_free(struct mime_walker *w);

/** Base64 decoding state across calls. */
struct mime_b64 {
	uint32_t acc;
	unsigned bits;
	bool done; /* padding seen: the rest is ignored */
};

/**
 * Decode base64 text @p in into @p out (room for len * 3 / 4 + 3 bytes),
 * skipping bytes outside the alphabet (line breaks, junk).
 * @return bytes written.
 */
size_t mime_b64_decode(struct mime_b64 *st, const char *in, size_t len,
                       char *out);

/**
 * Decode one quoted-printable line (without its line break) into @p out
 * (room for @p len bytes). Trailing white space is dropped (RFC 2045
 * 6.7); a final '=' is a soft line break (*@p soft_out). A malformed
 * '=' sequence is kept as it is.
 * @return bytes written.
 */
size_t mime_qp_decode_line(const char *in, size_t len, char *out,
                           bool *soft_out);

/** ISO-8859-1 to UTF-8; @p out has room for 2 * len bytes.
 *  @return bytes written. */
size_t mime_latin1_to_utf8(const char *in, size_t len, char *out);

/** Charsets converted to UTF-8. */
enum mime_charset {
	MIME_CHARSET_UTF8 = 0, /* also us-ascii: kept as it is */
	MIME_CHARSET_LATIN1,
	MIME_CHARSET_OTHER, /* kept as it is */
};

/** The charset named @p name (@p len bytes, case-insensitive). */
enum mime_charset mime_charset_find(const char *name, size_t len);

#endif
