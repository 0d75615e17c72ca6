/* SPDX-License-Identifier: MIT */
/* Header edits from filters: rewriting a spool file's header section. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <petrel/core.h>
#include <petrel/filter.h>

#include "smtp_edit.h"

/*
 * The header section is read line by line through a fixed buffer; only
 * the start of a line (where the field name is) must be in the buffer at
 * once, so a field of any length streams through. The header section
 * ends at the first empty line, or at the end of the file: a line that is
 * not a field (no colon) does not end it, so that a junk line cannot hide
 * the fields after it from the edits while a reader still sees them as
 * header fields.
 */

#define EDIT_BUF  (64 * 1024)
#define EDIT_PEEK 1024 /* a field name longer than this matches nothing */
#define EDIT_MAX  80   /* edits per rewrite */

enum edit_mode {
	EDIT_COPY = 0, /* the field stays */
	EDIT_SKIP,     /* removed (or replaced: the new one is written) */
	EDIT_INSPECT,  /* kept whole in `field` until its end, then decided */
};

struct edit_io {
	int in_fd, out_fd;
	uint64_t in_off, size;
	size_t start, end; /* unread bytes: in[start..end) */
	size_t wlen;
	uint64_t written;
	bool changed;
	enum edit_mode mode;
	size_t field_len;
	const struct smtp_edit *inspect; /* the edit deciding `field` */
	unsigned seen[EDIT_MAX];         /* fields named like edit i */
	bool applied[EDIT_MAX];          /* REPLACE i has been written */
	char in[EDIT_BUF];
	char out[EDIT_BUF];
	char field[SMTP_EDIT_FIELD_MAX];
};

static int
edit_flush(struct edit_io *io)
{
	size_t off = 0;
	ssize_t n;

	while (off < io->wlen) {
		n = write(io->out_fd, io->out + off, io->wlen - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return PTL_ERROR;
		}
		off += (size_t)n;
	}
	io->wlen = 0;
	return PTL_OK;
}

static int
edit_out(struct edit_io *io, const char *data, size_t len)
{
	size_t n;

	io->written += len;
	if (io->out_fd < 0)
		return PTL_OK;
	while (len > 0) {
		if (io->wlen == sizeof(io->out) && edit_flush(io) != PTL_OK)
			return PTL_ERROR;
		n = sizeof(io->out) - io->wlen;
		n = n < len ? n : len;
		memcpy(io->out + io->wlen, data, n);
		io->wlen += n;
		data += n;
		len -= n;
	}
	return PTL_OK;
}

/* Keep the unread bytes and read more behind them. @return bytes
 * available, or (size_t)-1 on a read error. */
static size_t
edit_fill(struct edit_io *io)
{
	size_t room;
	ssize_t n;

	if (io->start > 0) {
		memmove(io->in, io->in + io->start, io->end - io->start);
		io->end -= io->start;
		io->start = 0;
	}
	while (io->end < sizeof(io->in) && io->in_off < io->size) {
		room = sizeof(io->in) - io->end;
		if ((uint64_t)room > io->size - io->in_off)
			room = (size_t)(io->size - io->in_off);
		n = pread(io->in_fd, io->in + io->end, room, (off_t)io->in_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return (size_t)-1;
		if (n == 0) {
			errno = EIO; /* the file is shorter than it was */
			return (size_t)-1;
		}
		io->end += (size_t)n;
		io->in_off += (uint64_t)n;
		break;
	}
	return io->end - io->start;
}

/* Make the start of the next line readable: up to EDIT_PEEK bytes or
 * its LF. @return bytes available (0 at the end of the file). */
static size_t
edit_peek(struct edit_io *io)
{
	size_t avail = io->end - io->start;

	while (avail < EDIT_PEEK &&
	       memchr(io->in + io->start, '\n', avail) == NULL &&
	       io->in_off < io->size) {
		avail = edit_fill(io);
		if (avail == (size_t)-1)
			return (size_t)-1;
	}
	return avail;
}

/* Field body of the kept field: whether its first token is @id. */
static bool
edit_authserv_is(const char *field, size_t len, const char *id)
{
	const char *p = memchr(field, ':', len), *end = field + len, *tok;
	size_t idlen = strlen(id);

	unsigned depth = 0;

	if (p == NULL)
		return false;
	/* RFC 8601 2.2: CFWS may come first, comments included. */
	for (p++; p < end; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0 && *p != ' ' && *p != '\t' && *p != '\r' &&
		         *p != '\n')
			break;
	}
	tok = p;
	while (p < end && *p != ';' && *p != ' ' && *p != '\t' && *p != '\r' &&
	       *p != '\n' && *p != '(')
		p++;
	return (size_t)(p - tok) == idlen && strncasecmp(tok, id, idlen) == 0;
}

/* The field being kept whole has ended: drop or write it. */
static int
edit_inspect_end(struct edit_io *io)
{
	int rc = PTL_OK;

	if (io->mode != EDIT_INSPECT)
		return PTL_OK;
	if (edit_authserv_is(io->field, io->field_len, io->inspect->value))
		io->changed = true;
	else
		rc = edit_out(io, io->field, io->field_len);
	io->mode = EDIT_COPY;
	io->field_len = 0;
	return rc;
}

static bool
edit_name_is(const char *line, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(line, name, len) == 0;
}

static int
edit_write_field(struct edit_io *io, const char *name, const char *value)
{
	io->changed = true;
	if (edit_out(io, name, strlen(name)) != PTL_OK ||
	    edit_out(io, ": ", 2) != PTL_OK ||
	    edit_out(io, value, strlen(value)) != PTL_OK)
		return PTL_ERROR;
	return edit_out(io, "\r\n", 2);
}

/* A new field called line[0..namelen): what happens to it. */
static int
edit_decide(struct edit_io *io, const char *line, size_t namelen,
            const struct smtp_edit *edits, size_t n)
{
	enum edit_mode mode = EDIT_COPY;
	const struct smtp_edit *e;
	size_t i;

	io->inspect = NULL;
	for (i = 0; i < n; i++) {
		e = &edits[i];
		if (!edit_name_is(line, namelen, e->name))
			continue;
		io->seen[i]++;
		if (mode == EDIT_SKIP)
			continue;
		switch (e->op) {
		case PTL_FILTER_HEADER_REMOVE:
			if (e->index == 0 || e->index == io->seen[i])
				mode = EDIT_SKIP;
			break;
		case PTL_FILTER_HEADER_REPLACE:
			if (e->index != 0 && e->index != io->seen[i])
				break;
			mode = EDIT_SKIP;
			if (io->applied[i])
				break;
			io->applied[i] = true;
			if (edit_write_field(io, e->name, e->value) != PTL_OK)
				return PTL_ERROR;
			break;
		case SMTP_EDIT_REMOVE_AUTHSERV:
			if (mode == EDIT_COPY && io->inspect == NULL) {
				mode = EDIT_INSPECT;
				io->inspect = e;
			}
			break;
		default:
			break;
		}
	}
	if (mode == EDIT_SKIP)
		io->changed = true;
	io->mode = mode;
	io->field_len = 0;
	return PTL_OK;
}

/* Name of the field starting at @line, or 0 when it is not a field. */
static size_t
edit_field_name(const char *line, size_t avail)
{
	size_t i, len;

	for (i = 0; i < avail && i < EDIT_PEEK; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c == ':')
			break;
		if (c == '\n')
			return 0;
	}
	if (i == avail || i == EDIT_PEEK)
		return 0;
	/* RFC 5322 4.5.1 (obsolete syntax): space before the colon. */
	for (len = i;
	     len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'); len--)
		;
	for (i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 33 || (unsigned char)line[i] > 126)
			return 0;
	}
	return len;
}

/* Pass the rest of the current line (to its LF) through the mode. */
static int
edit_line(struct edit_io *io)
{
	const char *lf;
	size_t avail, n;

	for (;;) {
		avail = io->end - io->start;
		if (avail == 0) {
			if (io->in_off >= io->size)
				return PTL_OK;
			avail = edit_fill(io);
			if (avail == (size_t)-1)
				return PTL_ERROR;
			continue;
		}
		lf = memchr(io->in + io->start, '\n', avail);
		n = lf != NULL ? (size_t)(lf - (io->in + io->start)) + 1
		               : avail;
		if (io->mode == EDIT_INSPECT &&
		    io->field_len + n > sizeof(io->field)) {
			/* Too long to judge: it stays as it is. */
			if (edit_out(io, io->field, io->field_len) != PTL_OK)
				return PTL_ERROR;
			io->mode = EDIT_COPY;
			io->field_len = 0;
		}
		if (io->mode == EDIT_COPY) {
			if (edit_out(io, io->in + io->start, n) != PTL_OK)
				return PTL_ERROR;
		} else if (io->mode == EDIT_INSPECT) {
			memcpy(io->field + io->field_len, io->in + io->start,
			       n);
			io->field_len += n;
		}
		io->start += n;
		if (lf != NULL)
			return PTL_OK;
	}
}

static int
edit_header(struct edit_io *io, const struct smtp_edit *edits, size_t n)
{
	const char *line;
	size_t avail, namelen, i;

	for (;;) {
		avail = edit_peek(io);
		if (avail == (size_t)-1)
			return PTL_ERROR;
		line = io->in + io->start;
		if (avail == 0 || line[0] == '\n' ||
		    (line[0] == '\r' && avail > 1 && line[1] == '\n'))
			break;
		if (line[0] != ' ' && line[0] != '\t') {
			if (edit_inspect_end(io) != PTL_OK)
				return PTL_ERROR;
			namelen = edit_field_name(line, avail);
			if (namelen == 0)
				io->mode = EDIT_COPY;
			else if (edit_decide(io, line, namelen, edits, n) !=
			         PTL_OK)
				return PTL_ERROR;
		}
		if (edit_line(io) != PTL_OK)
			return PTL_ERROR;
	}
	if (edit_inspect_end(io) != PTL_OK)
		return PTL_ERROR;
	for (i = 0; i < n; i++) {
		if (edits[i].op != PTL_FILTER_HEADER_REPLACE || io->applied[i])
			continue;
		io->applied[i] = true;
		if (edit_write_field(io, edits[i].name, edits[i].value) !=
		    PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

/* Copy @n bytes from the input as they are. */
static int
edit_copy(struct edit_io *io, uint64_t n)
{
	size_t avail, take;

	while (n > 0) {
		avail = io->end - io->start;
		if (avail == 0) {
			avail = edit_fill(io);
			if (avail == (size_t)-1)
				return PTL_ERROR;
			if (avail == 0)
				return PTL_OK;
		}
		take = (uint64_t)avail < n ? avail : (size_t)n;
		if (edit_out(io, io->in + io->start, take) != PTL_OK)
			return PTL_ERROR;
		io->start += take;
		n -= take;
	}
	return PTL_OK;
}

int
smtp_edit_rewrite(int in_fd, uint64_t size, uint64_t header_offset, int out_fd,
                  const struct smtp_edit *edits, size_t nedits,
                  uint64_t *out_size, bool *changed_out)
{
	struct edit_io *io;
	int rc;

	if (nedits > EDIT_MAX || header_offset > size) {
		errno = EINVAL;
		return PTL_ERROR;
	}
	io = calloc(1, sizeof(*io));
	if (io == NULL)
		return PTL_ERROR;
	io->in_fd = in_fd;
	io->out_fd = out_fd;
	io->size = size;
	rc = edit_copy(io, header_offset);
	if (rc == PTL_OK)
		rc = edit_header(io, edits, nedits);
	/* A dry run stops here: the body is never read. */
	if (rc == PTL_OK && out_fd >= 0)
		rc = edit_copy(io, UINT64_MAX);
	if (rc == PTL_OK && out_fd >= 0)
		rc = edit_flush(io);
	*out_size = io->written;
	*changed_out = io->changed;
	free(io);
	return rc;
}
