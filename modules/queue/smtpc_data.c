/* SPDX-License-Identifier: MIT */
/* Streaming a queued message to the server: DATA encoding or raw BDAT. */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "smtpc.h"

void
smtpc_dot_init(struct smtpc_dot *d)
{
	d->line_start = true;
	d->pending_cr = false;
}

size_t
smtpc_dot_encode(struct smtpc_dot *d, const char *in, size_t len, char *out)
{
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		char c = in[i];

		if (d->pending_cr) {
			/* A CR ends the line whatever follows it: the line
			 * break goes out as CRLF, never as a lone CR. */
			d->pending_cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			d->line_start = true;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			d->pending_cr = true;
			continue;
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			d->line_start = true;
			continue;
		}
		/* RFC 5321 4.5.2: transparency. */
		if (c == '.' && d->line_start)
			out[o++] = '.';
		out[o++] = c;
		d->line_start = false;
	}
	return o;
}

size_t
smtpc_dot_finish(struct smtpc_dot *d, char *out)
{
	size_t o = 0;

	if (d->pending_cr || !d->line_start) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	d->pending_cr = false;
	d->line_start = true;
	out[o++] = '.';
	out[o++] = '\r';
	out[o++] = '\n';
	return o;
}

int
smtpc_data_begin(struct smtpc_data *d, int fd, uint64_t size, bool raw,
                 struct ptl_error *err)
{
	d->fd = fd;
	d->size = size;
	d->offset = 0;
	d->raw = raw;
	d->done = false;
	smtpc_dot_init(&d->dot);
	d->in = malloc(SMTPC_DATA_CHUNK);
	d->out = raw ? NULL : malloc(2 * SMTPC_DATA_CHUNK + 8);
	if (d->in == NULL || (!raw && d->out == NULL)) {
		smtpc_data_end(d);
		return ptl_error_set(err, "out of memory");
	}
	return PTL_OK;
}

void
smtpc_data_end(struct smtpc_data *d)
{
	free(d->in);
	free(d->out);
	d->in = NULL;
	d->out = NULL;
}

/* One chunk of the file; a file shorter than the queue said is an error,
 * never a shorter message. */
static int
data_read(struct smtpc_data *d, size_t *got_out, struct ptl_error *err)
{
	uint64_t left = d->size - d->offset;
	size_t want = left < SMTPC_DATA_CHUNK ? (size_t)left : SMTPC_DATA_CHUNK;
	ssize_t n;

	do {
		n = pread(d->fd, d->in, want, (off_t)d->offset);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return ptl_error_set_errno(err, errno, "reading the message");
	if (n == 0)
		return ptl_error_set(err,
		                     "message file shorter than its "
		                     "size (%llu of %llu bytes)",
		                     (unsigned long long)d->offset,
		                     (unsigned long long)d->size);
	d->offset += (uint64_t)n;
	*got_out = (size_t)n;
	return PTL_OK;
}

int
smtpc_data_send(struct smtpc_data *d, struct ptl_conn *c, struct ptl_error *err)
{
	size_t got = 0, n;
	int rc;

	if (d->done)
		return PTL_DONE;
	for (;;) {
		if (d->offset >= d->size) {
			if (d->raw) {
				d->done = true;
				return PTL_DONE;
			}
			n = smtpc_dot_finish(&d->dot, d->out);
			rc = ptl_conn_write(c, d->out, n);
			if (rc == PTL_ERROR)
				return ptl_error_set(err, "cannot queue the "
				                          "end of data");
			d->done = true;
			return PTL_DONE;
		}
		if (data_read(d, &got, err) != PTL_OK)
			return PTL_ERROR;
		if (d->raw) {
			rc = ptl_conn_write(c, d->in, got);
		} else {
			n = smtpc_dot_encode(&d->dot, d->in, got, d->out);
			rc = ptl_conn_write(c, d->out, n);
		}
		if (rc == PTL_ERROR)
			return ptl_error_set(err, "cannot queue message data");
		/* Queued, but the queue is over its mark: wait. */
		if (rc == PTL_AGAIN)
			return PTL_AGAIN;
	}
}
