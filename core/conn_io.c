/* SPDX-License-Identifier: MIT */
/* Connection I/O: the input buffer and lines, the write queue and flushing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/conn_internal.h"

#define CONN_QUEUE_FACTOR 16
#define CONN_CHUNK_MIN    4096
#define CONN_IOV_MAX      16

bool
conn_may_read(const struct ptl_conn *c)
{
	return c->state == CONN_OPEN &&
	       (c->tls == CONN_TLS_NONE || c->tls == CONN_TLS_ACTIVE) &&
	       !c->paused && !c->eof_seen && !c->in_full &&
	       c->pending <= c->limits.write_high_water;
}

int
conn_read_socket(struct ptl_conn *c, size_t *got)
{
	ssize_t n;

	*got = 0;
	if (ptl_buf_room(&c->in) < ptl_buf_capacity(&c->in) / 4)
		ptl_buf_compact(&c->in);
	if (ptl_buf_room(&c->in) == 0) {
		c->in_full = true;
		return PTL_OK;
	}
	if (c->tls == CONN_TLS_ACTIVE)
		return conn_read_tls(c, got);
	for (;;) {
		n = recv(c->fd, c->in.last, ptl_buf_room(&c->in), 0);
		if (n > 0) {
			c->in.last += n;
			*got = (size_t)n;
			return PTL_OK;
		}
		if (n == 0)
			return PTL_DONE;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return PTL_OK;
		conn_log(c, PTL_LOG_INFO, "read error: %s", strerror(errno));
		return PTL_ERROR;
	}
}

/* Drop the rest of an over-long line; the buffer held nothing else. */
static void
conn_discard(struct ptl_conn *c)
{
	size_t len = ptl_buf_len(&c->in);
	const char *lf = memchr(c->in.pos, '\n', len);

	if (lf == NULL) {
		ptl_buf_consume(&c->in, len);
		return;
	}
	ptl_buf_consume(&c->in, (size_t)(lf - c->in.pos) + 1);
	c->discarding = false;
}

int
conn_input(struct ptl_conn *c, size_t got)
{
	c->bytes_in += got;
	c->active_ms = ptl_now_ms();
	if (c->bytes_in > c->limits.max_input_bytes) {
		conn_log(c, PTL_LOG_NOTICE,
		         "input limit of %llu bytes exceeded; closing",
		         (unsigned long long)c->limits.max_input_bytes);
		conn_fail(c);
		return PTL_ERROR;
	}
	if (c->discarding)
		conn_discard(c);
	return PTL_OK;
}

/* The handler made room: reading may go on. */
static void
conn_consumed(struct ptl_conn *c)
{
	if (c->in_full) {
		c->in_full = false;
		conn_update(c);
	} else if (c->tls == CONN_TLS_ACTIVE) {
		conn_update(c); /* OpenSSL may hold more */
	}
}

PTL_API int
ptl_conn_read_line(struct ptl_conn *c, const char **line_out, size_t *len_out)
{
	size_t len;
	const char *lf;
	int rc;

	if (c->state != CONN_OPEN || c->discarding)
		return PTL_AGAIN;
	rc = ptl_buf_find_line(&c->in, c->limits.max_line, &len);
	if (rc == PTL_OK) {
		/* Consumed now; the bytes stay put until the next socket
		 * read, which never happens inside the handler. */
		*line_out = c->in.pos;
		*len_out = len;
		ptl_buf_consume(&c->in, len);
		conn_consumed(c);
		return PTL_OK;
	}
	if (rc != PTL_DECLINED)
		return PTL_AGAIN;
	len = ptl_buf_len(&c->in);
	lf = memchr(c->in.pos, '\n', len);
	if (lf != NULL) {
		ptl_buf_consume(&c->in, (size_t)(lf - c->in.pos) + 1);
	} else {
		ptl_buf_consume(&c->in, len);
		c->discarding = true;
	}
	conn_consumed(c);
	return PTL_DECLINED;
}

PTL_API size_t
ptl_conn_peek(struct ptl_conn *c, const char **data_out)
{
	*data_out = c->in.pos;
	if (c->state != CONN_OPEN)
		return 0;
	return ptl_buf_len(&c->in);
}

PTL_API void
ptl_conn_consume(struct ptl_conn *c, size_t n)
{
	if (c->state != CONN_OPEN)
		return;
	ptl_buf_consume(&c->in, n);
	conn_consumed(c);
}

PTL_API void
ptl_conn_pause(struct ptl_conn *c)
{
	if (c->paused || c->state == CONN_DEAD)
		return;
	c->paused = true;
	conn_update(c);
}

PTL_API void
ptl_conn_resume(struct ptl_conn *c)
{
	if (!c->paused || c->state == CONN_DEAD)
		return;
	c->paused = false;
	if (ptl_buf_len(&c->in) > 0 || (c->eof_seen && !c->eof_delivered))
		conn_kick(c, KICK_DELIVER);
	conn_update(c);
}

PTL_API void
ptl_conn_set_max_line(struct ptl_conn *c, size_t max_line)
{
	size_t len, capacity;
	char *mem;

	if (max_line < 2)
		max_line = 2;
	if (max_line > CONN_MAX_LINE_LIMIT)
		max_line = CONN_MAX_LINE_LIMIT;
	if (max_line + 2 <= ptl_buf_capacity(&c->in)) {
		c->limits.max_line = max_line;
		return;
	}
	/* The old buffer stays in the pool, so a line already returned
	 * by read_line stays valid. Grows at most to the cap above. */
	capacity = max_line + 2;
	mem = ptl_palloc(c->pool, capacity);
	if (mem == NULL) {
		conn_log(c, PTL_LOG_ERROR,
		         "out of memory for a %zu byte line buffer", capacity);
		c->limits.max_line = ptl_buf_capacity(&c->in) - 2;
		return;
	}
	len = ptl_buf_len(&c->in);
	memcpy(mem, c->in.pos, len);
	ptl_buf_wrap(&c->in, mem, capacity);
	c->in.last += len;
	c->limits.max_line = max_line;
	c->limits.input_buffer = capacity;
	conn_consumed(c);
}

size_t
conn_flushable(const struct ptl_conn *c)
{
	if (c->tls == CONN_TLS_FLUSH_CLEAR)
		return c->clear_left;
	if (c->tls == CONN_TLS_HANDSHAKE)
		return 0;
	return c->pending;
}

void
conn_queue_consume(struct ptl_conn *c, size_t n)
{
	c->pending -= n;
	while (n > 0 && c->wq_head != NULL) {
		struct conn_chunk *ch = c->wq_head;
		size_t len = (size_t)(ch->last - ch->pos);

		if (n < len) {
			ch->pos += n;
			return;
		}
		n -= len;
		c->wq_head = ch->next;
		if (c->wq_head == NULL)
			c->wq_tail = NULL;
		free(ch);
	}
}

void
conn_queue_free(struct ptl_conn *c)
{
	while (c->wq_head != NULL) {
		struct conn_chunk *ch = c->wq_head;

		c->wq_head = ch->next;
		free(ch);
	}
	c->wq_tail = NULL;
	c->pending = 0;
}

static int
conn_flush_plain(struct ptl_conn *c, size_t limit)
{
	while (c->pending > 0 && limit > 0) {
		struct iovec iov[CONN_IOV_MAX];
		struct msghdr msg;
		struct conn_chunk *ch;
		size_t total = 0;
		ssize_t n;
		int niov = 0;

		for (ch = c->wq_head;
		     ch != NULL && niov < CONN_IOV_MAX && total < limit;
		     ch = ch->next) {
			size_t len = (size_t)(ch->last - ch->pos);

			if (len > limit - total)
				len = limit - total;
			iov[niov].iov_base = ch->pos;
			iov[niov].iov_len = len;
			niov++;
			total += len;
		}
		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = iov;
		msg.msg_iovlen = (size_t)niov;
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return PTL_OK;
			conn_log(c, PTL_LOG_INFO, "write error: %s",
			         strerror(errno));
			conn_fail(c);
			return PTL_ERROR;
		}
		conn_queue_consume(c, (size_t)n);
		if (c->tls == CONN_TLS_FLUSH_CLEAR)
			c->clear_left -= (size_t)n;
		limit -= (size_t)n;
		c->active_ms = ptl_now_ms();
		if ((size_t)n < total)
			return PTL_OK; /* socket buffer full */
	}
	return PTL_OK;
}

int
conn_flush(struct ptl_conn *c)
{
	if (c->fd < 0)
		return PTL_ERROR;
	if (c->tls == CONN_TLS_ACTIVE)
		return conn_flush_tls(c);
	if (c->tls == CONN_TLS_HANDSHAKE)
		return PTL_OK;
	return conn_flush_plain(
	    c, c->tls == CONN_TLS_FLUSH_CLEAR ? c->clear_left : SIZE_MAX);
}

PTL_API int
ptl_conn_write(struct ptl_conn *c, const void *data, size_t len)
{
	size_t limit = CONN_QUEUE_FACTOR * c->limits.write_high_water;
	struct conn_chunk *tail = c->wq_tail, *ch = NULL;
	size_t room, first, rest;

	if (c->state != CONN_OPEN && c->state != CONN_CONNECTING)
		return PTL_ERROR;
	if (len > limit || c->pending > limit - len) {
		conn_log(c, PTL_LOG_WARN,
		         "write refused: more than %zu bytes queued", limit);
		return PTL_ERROR;
	}
	room = tail != NULL ? (size_t)(tail->end - tail->last) : 0;
	first = len < room ? len : room;
	rest = len - first;
	/* Allocate before copying so that a failure queues nothing. */
	if (rest > 0) {
		size_t size = rest < CONN_CHUNK_MIN ? CONN_CHUNK_MIN : rest;

		ch = malloc(sizeof(*ch) + size);
		if (ch == NULL) {
			conn_log(c, PTL_LOG_ERROR, "write: out of memory");
			return PTL_ERROR;
		}
		ch->next = NULL;
		ch->pos = ch->last = ch->data;
		ch->end = ch->data + size;
	}
	if (first > 0) {
		memcpy(tail->last, data, first);
		tail->last += first;
	}
	if (ch != NULL) {
		memcpy(ch->last, (const char *)data + first, rest);
		ch->last += rest;
		if (tail != NULL)
			tail->next = ch;
		else
			c->wq_head = ch;
		c->wq_tail = ch;
	}
	c->pending += len;
	if (c->state == CONN_OPEN && len > 0)
		conn_kick(c, KICK_FLUSH);
	if (c->pending > c->limits.write_high_water) {
		c->want_drained = true;
		return PTL_AGAIN;
	}
	return PTL_OK;
}

PTL_API int
ptl_conn_printf(struct ptl_conn *c, const char *fmt, ...)
{
	char small[512];
	va_list ap;
	char *big;
	int n, rc;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return PTL_ERROR;
	if ((size_t)n < sizeof(small))
		return ptl_conn_write(c, small, (size_t)n);
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		conn_log(c, PTL_LOG_ERROR, "write: out of memory");
		return PTL_ERROR;
	}
	va_start(ap, fmt);
	(void)vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	rc = ptl_conn_write(c, big, (size_t)n);
	free(big);
	return rc;
}

PTL_API size_t
ptl_conn_pending(const struct ptl_conn *c)
{
	return c->pending;
}
