/* SPDX-License-Identifier: MIT */
/* RETR and TOP: stream a message from storage, byte-stuffed, with backpressure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>

#include "pop3.h"

/*
 * How a message goes out
 *
 * The storage gives a file descriptor. One chunk at a time is read into
 * the second half of the session's buffer and encoded forward into its
 * first half (each input octet makes at most two output octets, so the
 * writer never overtakes the reader), then queued on the connection.
 * When the queue is over its high-water mark the session waits for
 * DRAINED; while it streams, command input is paused, so pipelined
 * commands run after the message (RFC 2449 section 6.6).
 *
 * Reading must not block the loop: tmpfs and memfd files are read
 * directly, other files with RWF_NOWAIT (page cache only); a read that
 * would wait for the disk goes to a pool thread.
 */

/*
 * Room between the encoder's output and the next unread input octet: the
 * status line goes in front of the first chunk and ".\r\n" after the
 * last, so a short message leaves in one write. A lone small write at
 * the end would become its own TLS record and TCP segment, which Nagle's
 * algorithm may hold until the client's delayed ACK.
 */
#define POP3_RETR_SLACK 64

/* ---- Byte stuffing -------------------------------------------------- */

void
pop3_dot_init(struct pop3_dot *d, bool top, uint64_t lines)
{
	memset(d, 0, sizeof(*d));
	d->top = top;
	d->lines_left = lines;
}

/* TOP: a line just ended. The first empty line ends the header. */
static void
pop3_dot_line_end(struct pop3_dot *d)
{
	if (!d->in_body) {
		if (d->line_len == 0 || (d->line_len == 1 && d->prev_cr)) {
			d->in_body = true;
			if (d->lines_left == 0)
				d->done = true;
		}
		return;
	}
	if (d->lines_left > 0)
		d->lines_left--;
	if (d->lines_left == 0)
		d->done = true;
}

size_t
pop3_dot_encode(struct pop3_dot *d, const char *in, size_t len, char *out,
                size_t *used_out)
{
	const char *p = in, *end = in + len, *lf;
	char *o = out;
	size_t run;

	while (p < end && !d->done) {
		if (d->line_len == 0 && *p == '.')
			*o++ = '.';
		lf = memchr(p, '\n', (size_t)(end - p));
		run = (size_t)((lf != NULL ? lf : end) - p);
		/* memmove: encoding may run in place, out trailing in. */
		memmove(o, p, run);
		o += run;
		if (run > 0)
			d->prev_cr = p[run - 1] == '\r';
		d->line_len += run;
		p += run;
		if (lf == NULL)
			break;
		p++;
		if (!d->prev_cr)
			*o++ = '\r';
		*o++ = '\n';
		if (d->top)
			pop3_dot_line_end(d);
		d->line_len = 0;
		d->prev_cr = false;
	}
	*used_out = (size_t)(p - in);
	return (size_t)(o - out);
}

size_t
pop3_dot_finish(struct pop3_dot *d, char *out)
{
	char *o = out;

	/* A last line without its end gets one, or "." would not be
	 * alone on its line. */
	if (d->line_len > 0) {
		if (!d->prev_cr)
			*o++ = '\r';
		*o++ = '\n';
	}
	memcpy(o, ".\r\n", 3);
	o += 3;
	d->line_len = 0;
	d->prev_cr = false;
	return (size_t)(o - out);
}

/* ---- Streaming ------------------------------------------------------ */

static void pop3_retr_pump(struct pop3_session *s);

void
pop3_retr_release(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;

	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	if (st->task_pending)
		return; /* a pool thread still writes into in[] */
	free(st->out);
	st->out = NULL;
	st->in = NULL;
}

/* The message cannot be sent whole after "+OK": the client must not take
 * a cut message for a complete one, so the connection ends. */
static void
pop3_retr_fail(struct pop3_session *s, const char *why, int errnum)
{
	struct pop3_stream *st = &s->stream;

	if (s->conn != NULL)
		ptl_conn_log(s->conn, PTL_LOG_ERROR,
		             "pop3: reading a message failed after %llu of "
		             "%llu octets: %s%s%s",
		             (unsigned long long)st->offset,
		             (unsigned long long)st->size, why,
		             errnum != 0 ? ": " : "",
		             errnum != 0 ? strerror(errnum) : "");
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	s->phase = POP3_PHASE_CLOSING;
	if (s->conn != NULL)
		ptl_conn_abort(s->conn);
}

/* Everything is queued: the next command may run. */
static void
pop3_retr_done(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;

	close(st->fd);
	st->fd = -1;
	if (st->retr)
		s->n_retr++;
	else
		s->n_top++;
	pop3_session_continue(s);
}

static void
pop3_retr_work(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_stream *st = &s->stream;
	uint64_t left = st->size - st->offset;
	size_t want = left < st->chunk ? (size_t)left : st->chunk;
	ssize_t n;

	do {
		n = pread(st->fd, st->in, want, (off_t)st->offset);
	} while (n < 0 && errno == EINTR);
	st->task_got = n;
	st->task_errno = n < 0 ? errno : 0;
}

/*
 * Encode and queue @p got octets from in[], after the status line if it
 * is still pending and with the terminator if this was the end.
 * @return false to stop pumping.
 */
static bool
pop3_retr_send(struct pop3_session *s, size_t got)
{
	struct pop3_stream *st = &s->stream;
	size_t used, n = st->status_len;

	memcpy(st->out, st->status, n);
	st->status_len = 0;
	n += pop3_dot_encode(&st->dot, st->in, got, st->out + n, &used);
	st->offset += got;
	if (st->dot.done || st->offset >= st->size) {
		n += pop3_dot_finish(&st->dot, st->out + n);
		st->finished = true;
	}
	s->bytes_sent += n;
	if (n > 0)
		pop3_write(s, st->out, n);
	return s->phase != POP3_PHASE_CLOSING && !s->blocked;
}

static void
pop3_retr_read_done(void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_stream *st = &s->stream;

	if (s->magic != POP3_SESSION_MAGIC)
		return;
	st->task_pending = false;
	if (s->conn == NULL) {
		(void)pop3_session_orphan_done(s);
		return;
	}
	if (s->phase == POP3_PHASE_CLOSING || s->wait != POP3_WAIT_STREAM)
		return;
	if (st->task_got <= 0) {
		pop3_retr_fail(s,
		               st->task_got == 0 ? "file is shorter than "
		                                   "its size"
		                                 : "read",
		               st->task_errno);
		return;
	}
	if (pop3_retr_send(s, (size_t)st->task_got))
		pop3_retr_pump(s);
}

/*
 * Read the next chunk on the loop if that cannot wait for a disk.
 * @return octets read (> 0), 0 when a pool thread took the read (its
 * completion continues), or -1 after failing the stream.
 */
static ssize_t
pop3_retr_read(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	uint64_t left = st->size - st->offset;
	size_t want = left < st->chunk ? (size_t)left : st->chunk;
	struct iovec iov = {st->in, want};
	ssize_t n;

	if (st->in_memory || st->nowait_ok) {
		do {
			n = st->in_memory
			        ? pread(st->fd, st->in, want, (off_t)st->offset)
			        : preadv2(st->fd, &iov, 1, (off_t)st->offset,
			                  RWF_NOWAIT);
		} while (n < 0 && errno == EINTR);
		if (n > 0)
			return n;
		if (n == 0) {
			pop3_retr_fail(s, "file is shorter than its size", 0);
			return -1;
		}
		if (errno == EOPNOTSUPP || errno == EINVAL) {
			st->nowait_ok = false;
		} else if (errno != EAGAIN) {
			pop3_retr_fail(s, "read", errno);
			return -1;
		}
	}
	st->task_pending = true;
	if (ptl_task_submit(pop3_retr_work, pop3_retr_read_done, s) != PTL_OK) {
		st->task_pending = false;
		pop3_retr_fail(s, "out of memory", 0);
		return -1;
	}
	return 0;
}

static void
pop3_retr_pump(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	ssize_t got;

	while (s->phase != POP3_PHASE_CLOSING && !s->blocked) {
		if (st->finished) {
			pop3_retr_done(s);
			return;
		}
		if (st->offset >= st->size) {
			/* An empty message: status line and terminator. */
			(void)pop3_retr_send(s, 0);
			continue;
		}
		got = pop3_retr_read(s);
		if (got <= 0)
			return;
		if (!pop3_retr_send(s, (size_t)got))
			return;
	}
}

void
pop3_retr_resume(struct pop3_session *s)
{
	if (s->wait != POP3_WAIT_STREAM || s->stream.task_pending)
		return;
	pop3_retr_pump(s);
}

static bool
pop3_retr_buffers(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	size_t chunk = (size_t)s->conf->retr_chunk;

	if (st->out != NULL)
		return true;
	st->out = malloc(2 * chunk + POP3_RETR_SLACK);
	if (st->out == NULL)
		return false;
	st->in = st->out + chunk + POP3_RETR_SLACK;
	st->chunk = chunk;
	return true;
}

static void
pop3_retr_opened(const struct ptl_storage_result *res, int fd, void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_stream *st = &s->stream;
	struct statfs sfs;
	struct stat sb;
	int n;

	if (s->magic != POP3_SESSION_MAGIC || s->wait != POP3_WAIT_READ) {
		if (res->status == PTL_STORAGE_OK && fd >= 0)
			close(fd);
		return;
	}
	if (s->conn == NULL) {
		if (res->status == PTL_STORAGE_OK && fd >= 0)
			close(fd);
		s->wait = POP3_WAIT_NONE;
		(void)pop3_session_orphan_done(s);
		return;
	}
	if (res->status != PTL_STORAGE_OK || fd < 0) {
		ptl_conn_log(s->conn, PTL_LOG_WARN,
		             "pop3: cannot read a message: %s",
		             res->reason != NULL ? res->reason : "unknown");
		if (res->status == PTL_STORAGE_PERMFAIL)
			pop3_reply(s, "-ERR [SYS/PERM] message is not "
			              "available");
		else
			pop3_reply(s, "-ERR [SYS/TEMP] message is not "
			              "available now; try again later");
		pop3_session_continue(s);
		return;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    !pop3_retr_buffers(s)) {
		close(fd);
		ptl_conn_log(s->conn, PTL_LOG_ERROR,
		             "pop3: message is not a regular file, or out of "
		             "memory");
		pop3_reply(s, "-ERR [SYS/TEMP] message is not available now");
		pop3_session_continue(s);
		return;
	}
	st->fd = fd;
	st->offset = 0;
	st->in_memory = fstatfs(fd, &sfs) == 0 &&
	                ((unsigned long)sfs.f_type == TMPFS_MAGIC ||
	                 (unsigned long)sfs.f_type == RAMFS_MAGIC);
	st->nowait_ok = true;
	st->finished = false;
	if (st->retr)
		n = snprintf(st->status, sizeof(st->status),
		             "+OK %llu octets\r\n",
		             (unsigned long long)st->size);
	else
		n = snprintf(st->status, sizeof(st->status),
		             "+OK top of message follows\r\n");
	st->status_len =
	    n > 0 && (size_t)n < sizeof(st->status) ? (size_t)n : 0;
	s->wait = POP3_WAIT_STREAM;
	pop3_retr_pump(s);
}

void
pop3_retr_start(struct pop3_session *s, size_t index, bool top, uint64_t lines)
{
	const struct ptl_storage_methods *st = s->worker->storage;
	const struct ptl_storage_msg *m = st->message(s->mb, index);
	int rc;

	if (m == NULL) {
		pop3_reply(s, "-ERR [SYS/TEMP] message is not available now");
		return;
	}
	s->stream.retr = !top;
	s->stream.size = m->size;
	pop3_dot_init(&s->stream.dot, top, lines);
	pop3_session_wait(s, POP3_WAIT_READ);
	rc = st->read(s->mb, index, pop3_retr_opened, s);
	if (rc == PTL_ERROR && s->wait == POP3_WAIT_READ) {
		pop3_reply(s, "-ERR [SYS/TEMP] message is not available now; "
		              "try again later");
		pop3_session_continue(s);
	}
}
