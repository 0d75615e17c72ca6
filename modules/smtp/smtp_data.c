/* SPDX-License-Identifier: MIT */
/* Message byte scanner: end of DATA, dot-unstuffing, line and size checks. */
#include <string.h>

#include <petrel/core.h>

#include "smtp_data.h"

/*
 * States. BOL means "just after CR LF" (or at the very start: the CRLF
 * of the DATA command counts), the only place where a dot is special.
 */
enum data_state {
	DATA_BOL = 0,    /* start of a line */
	DATA_BOL_DOT,    /* "." at the start of a line, held back */
	DATA_BOL_DOT_CR, /* "." CR at the start of a line, both held back */
	DATA_MID,        /* inside a line */
	DATA_CR,         /* after a CR (emitted), LF expected */
};

/* Append one message byte, honouring the size limit. */
static inline void
data_emit(struct smtp_data_scan *s, char *out, size_t *n, char c)
{
	s->size++;
	if (s->max_size != 0 && s->size > s->max_size) {
		s->flags |= SMTP_DATA_TOO_BIG;
		return;
	}
	out[(*n)++] = c;
}

static inline void
data_count_line(struct smtp_data_scan *s, uint64_t n)
{
	s->line_len += n;
	if (s->check_lines && s->max_line != 0 && s->line_len > s->max_line)
		s->flags |= SMTP_DATA_LONG_LINE;
}

static inline void
data_bad(struct smtp_data_scan *s, unsigned flag)
{
	if (s->check_lines)
		s->flags |= flag;
}

/*
 * Plain bytes inside a line: copy the run up to the next CR or LF in one
 * go (the common case, so that large messages cost a memchr and a
 * memcpy per line rather than a branch per byte).
 */
static size_t
data_copy_run(struct smtp_data_scan *s, const char *in, size_t len, char *out,
              size_t *n)
{
	size_t run = 0, room;

	while (run < len && in[run] != '\r' && in[run] != '\n')
		run++;
	if (run == 0)
		return 0;
	data_count_line(s, run);
	room = run;
	if (s->max_size != 0) {
		if (s->size >= s->max_size)
			room = 0;
		else if (s->max_size - s->size < run)
			room = (size_t)(s->max_size - s->size);
	}
	memcpy(out + *n, in, room);
	*n += room;
	s->size += run;
	if (room < run)
		s->flags |= SMTP_DATA_TOO_BIG;
	return run;
}

int
smtp_data_scan(struct smtp_data_scan *s, const char *in, size_t len, char *out,
               size_t *out_len, size_t *consumed_out)
{
	size_t i = 0, n = 0, run;
	char c;

	while (i < len) {
		c = in[i];
		switch (s->state) {
		case DATA_BOL:
			if (s->dot_mode && c == '.') {
				data_count_line(s, 1);
				s->state = DATA_BOL_DOT;
				i++;
				continue;
			}
			s->state = DATA_MID;
			continue; /* same byte, as inside a line */
		case DATA_BOL_DOT:
			if (c == '\r') {
				data_count_line(s, 1);
				s->state = DATA_BOL_DOT_CR;
				i++;
				continue;
			}
			/*
			 * RFC 5321 4.5.2: the first dot of a line is dropped,
			 * whatever follows. A bare LF here (".\n") is not an
			 * end of data: it is a bare LF.
			 */
			s->state = DATA_MID;
			continue;
		case DATA_BOL_DOT_CR:
			if (c == '\n') {
				/* CR LF "." CR LF: the end. */
				i++;
				s->state = DATA_BOL;
				s->line_len = 0;
				*out_len = n;
				*consumed_out = i;
				return PTL_DONE;
			}
			/* ".\r" then something else: the CR was bare and
			 * the dot was stuffing. */
			data_bad(s, SMTP_DATA_BARE_CR);
			data_emit(s, out, &n, '\r');
			s->state = DATA_MID;
			continue;
		case DATA_MID:
			if (c == '\r') {
				data_count_line(s, 1);
				data_emit(s, out, &n, c);
				s->state = DATA_CR;
				i++;
				continue;
			}
			if (c == '\n') {
				/* Bare LF: kept so the message is stored as
				 * sent, but it neither ends a line for the
				 * dot rules nor the message. */
				data_bad(s, SMTP_DATA_BARE_LF);
				data_emit(s, out, &n, c);
				s->line_len = 0;
				i++;
				continue;
			}
			run = data_copy_run(s, in + i, len - i, out, &n);
			i += run;
			continue;
		case DATA_CR:
			if (c == '\n') {
				data_count_line(s, 1);
				data_emit(s, out, &n, c);
				s->line_len = 0;
				s->state = DATA_BOL;
				i++;
				continue;
			}
			/* The previous CR was bare; look at c inside the line
			 * (a "." here is not at the start of a line). */
			data_bad(s, SMTP_DATA_BARE_CR);
			s->state = DATA_MID;
			continue;
		}
	}
	*out_len = n;
	*consumed_out = i;
	return PTL_AGAIN;
}

void
smtp_data_finish(struct smtp_data_scan *s)
{
	if (s->state == DATA_CR || s->state == DATA_BOL_DOT_CR)
		data_bad(s, SMTP_DATA_BARE_CR);
}
