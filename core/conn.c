/* SPDX-License-Identifier: MIT */
/* Connections: lifecycle, events, timers, close and abort, accessors. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/conn_internal.h"
#include "core/cycle.h"
#include "core/listener.h"
#include "core/log_internal.h"
#include "core/process.h"
#include "core/loop.h"
#include "core/tls.h"

#define CONN_CLOSE_TIMEOUT_MS 10000
#define CONN_LINGER_MS        2000
#define CONN_TIMEOUT_GRACE_MS 30000
#define CONN_LINGER_READS     4

static struct ptl_conn *conn_list;
static unsigned conn_live;
static unsigned long long conn_serial;

static void conn_on_kick(void *arg);

void
conn_log(const struct ptl_conn *c, enum ptl_log_level level, const char *fmt,
         ...)
{
	va_list ap;

	va_start(ap, fmt);
	ptl_log_with_id(level, c->id, fmt, ap);
	va_end(ap);
}

PTL_API void
ptl_conn_log(const struct ptl_conn *c, enum ptl_log_level level,
             const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ptl_log_with_id(level, c->id, fmt, ap);
	va_end(ap);
}

/*
 * A peer that vanishes while we write must cost an EPIPE, not the process:
 * OpenSSL writes to the socket with write(), which raises SIGPIPE.
 */
static void
conn_ignore_sigpipe(void)
{
	static bool done;
	struct sigaction sa;

	if (done)
		return;
	done = true;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGPIPE, &sa, NULL);
	}
}

static void
conn_addr_text(const struct sockaddr *sa, char *ip, size_t size,
               uint16_t *port_out)
{
	const void *src = NULL;
	uint16_t port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;

		src = &sin->sin_addr;
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		src = &sin6->sin6_addr;
		port = ntohs(sin6->sin6_port);
	}
	if (src == NULL ||
	    inet_ntop(sa->sa_family, src, ip, (socklen_t)size) == NULL)
		snprintf(ip, size, "unknown");
	*port_out = port;
}

static void
conn_local_addr(struct ptl_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(c->fd, (struct sockaddr *)&ss, &len) == 0)
		conn_addr_text((struct sockaddr *)&ss, c->local_ip,
		               sizeof(c->local_ip), &c->local_port);
}

static int64_t
conn_add_ms(int64_t base, int64_t ms)
{
	return ms > INT64_MAX - base ? INT64_MAX : base + ms;
}

static void
conn_limits_normalize(struct ptl_conn_limits *l)
{
	if (l->idle_timeout_ms <= 0)
		l->idle_timeout_ms = CONN_IDLE_TIMEOUT_MS;
	if (l->total_timeout_ms <= 0)
		l->total_timeout_ms = CONN_TOTAL_TIMEOUT_MS;
	if (l->max_input_bytes == 0)
		l->max_input_bytes = CONN_MAX_INPUT;
	if (l->max_line == 0)
		l->max_line = CONN_MAX_LINE;
	if (l->max_line < 2)
		l->max_line = 2;
	if (l->max_line > CONN_MAX_LINE_LIMIT)
		l->max_line = CONN_MAX_LINE_LIMIT;
	if (l->input_buffer == 0)
		l->input_buffer = CONN_INPUT_BUFFER;
	if (l->input_buffer > CONN_INPUT_LIMIT)
		l->input_buffer = CONN_INPUT_LIMIT;
	/* A line of max_line bytes must fit, or read_line could never say
	 * DECLINED and the connection would stall with a full buffer. */
	if (l->input_buffer < l->max_line + 2)
		l->input_buffer = l->max_line + 2;
	if (l->write_high_water == 0)
		l->write_high_water = CONN_HIGH_WATER;
	if (l->write_high_water > CONN_HIGH_WATER_LIMIT)
		l->write_high_water = CONN_HIGH_WATER_LIMIT;
}

static void conn_on_timer(struct ptl_timer *t, void *arg);
static void conn_on_io(struct ptl_io *io, unsigned events, void *arg);

/* Everything but the socket watcher; @fd is owned from here on. */
static struct ptl_conn *
conn_create(int fd, const struct ptl_conn_limits *limits,
            const struct sockaddr *peer, socklen_t peerlen)
{
	struct ptl_conn *c;

	conn_ignore_sigpipe();
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	/*
	 * Every reply is queued whole and written at once, so Nagle's
	 * algorithm only adds delay: a reply split over TLS records or over
	 * two writes would wait for the peer's delayed ACK. Best effort.
	 */
	if (peer->sa_family == AF_INET || peer->sa_family == AF_INET6) {
		int on = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	}
	if (limits != NULL)
		c->limits = *limits;
	conn_limits_normalize(&c->limits);
	c->pool = ptl_pool_create(0);
	if (c->pool == NULL ||
	    ptl_buf_init(&c->in, c->pool, c->limits.input_buffer) != PTL_OK)
		goto fail;
	c->timer = ptl_timer_new(conn_on_timer, c);
	if (c->timer == NULL)
		goto fail;

	snprintf(c->id, sizeof(c->id), "%ld.%llu", (long)ptl_self_pid(),
	         ++conn_serial);
	if (peerlen > sizeof(c->peer))
		peerlen = sizeof(c->peer);
	memcpy(&c->peer, peer, peerlen);
	c->peerlen = peerlen;
	conn_addr_text(peer, c->peer_ip, sizeof(c->peer_ip), &c->peer_port);
	snprintf(c->local_ip, sizeof(c->local_ip), "unknown");
	conn_local_addr(c);
	c->created_ms = c->active_ms = ptl_now_ms();

	c->next = conn_list;
	if (conn_list != NULL)
		conn_list->prev = c;
	conn_list = c;
	conn_live++;
	return c;
fail:
	ptl_pool_destroy(c->pool);
	free(c);
	close(fd);
	return NULL;
}

/* Frees @c; it must already be unlinked from nothing but conn_list. */
static void
conn_destroy(struct ptl_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		conn_list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	conn_live--;

	ptl_io_remove(c->io);
	if (c->fd >= 0)
		close(c->fd);
	ptl_timer_free(c->timer);
	SSL_free(c->ssl);
	conn_queue_free(c);
	ptl_pool_destroy(c->pool);
	free(c);
}

void
conn_kick(struct ptl_conn *c, unsigned what)
{
	c->kick |= what;
	if (c->kick_scheduled || c->finishing)
		return;
	c->kick_scheduled = true;
	if (ptl_defer(conn_on_kick, c) == PTL_OK) {
		c->kick_via_timer = false;
		return;
	}
	c->kick_via_timer = true;
	ptl_timer_start(c->timer, 0);
	c->timer_at = ptl_now_ms();
}

/* Close the socket now; CLOSED follows from the kick. */
static void
conn_abort_now(struct ptl_conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	c->state = CONN_DEAD;
	ptl_io_remove(c->io);
	c->io = NULL;
	c->io_events = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->listener != NULL) {
		ptl_listener_conn_closed(c->listener,
		                         (const struct sockaddr *)&c->peer);
		c->listener = NULL;
	}
	conn_queue_free(c);
	c->in.pos = c->in.last = c->in.start;
	if (!(c->kick_scheduled && c->kick_via_timer)) {
		ptl_timer_stop(c->timer);
		c->timer_at = 0;
	}
	conn_kick(c, 0);
}

void
conn_emit(struct ptl_conn *c, enum ptl_conn_event ev)
{
	if (c->handler == NULL) {
		if (ev != PTL_CONN_CLOSED) {
			conn_log(c, PTL_LOG_ERROR,
			         "connection has no handler; closing it");
			conn_abort_now(c);
		}
		return;
	}
	c->handler(c, ev, c->handler_arg);
}

void
conn_fail(struct ptl_conn *c)
{
	if (c->state == CONN_DEAD)
		return;
	if (c->state != CONN_CLOSING)
		conn_emit(c, PTL_CONN_ERROR);
	conn_abort_now(c);
}

/*
 * A flush is already scheduled for this loop iteration: it writes at
 * once and arms EPOLLOUT only if the socket is full, which saves two
 * epoll_ctl calls around nearly every reply.
 */
static bool
conn_flush_due(const struct ptl_conn *c)
{
	return c->kick_scheduled && (c->kick & KICK_FLUSH) != 0 &&
	       !c->kick_via_timer;
}

static unsigned
conn_wanted_events(const struct ptl_conn *c)
{
	unsigned ev = 0;

	switch (c->state) {
	case CONN_CONNECTING:
		return PTL_IO_WRITE;
	case CONN_DEAD:
		return 0;
	case CONN_CLOSING:
	case CONN_OPEN:
		break;
	}
	if (c->lingering)
		return PTL_IO_READ;
	switch (c->tls) {
	case CONN_TLS_HANDSHAKE:
		return c->hs_want;
	case CONN_TLS_FLUSH_CLEAR:
		return c->clear_left > 0 ? PTL_IO_WRITE : 0;
	case CONN_TLS_NONE:
		if (c->pending > 0 && !conn_flush_due(c))
			ev |= PTL_IO_WRITE;
		if (conn_may_read(c))
			ev |= PTL_IO_READ;
		return ev;
	case CONN_TLS_ACTIVE:
		if (c->pending > 0 && !conn_flush_due(c))
			ev |= c->write_wants_read ? PTL_IO_READ : PTL_IO_WRITE;
		if (conn_may_read(c))
			ev |= c->read_wants_write ? PTL_IO_WRITE : PTL_IO_READ;
		return ev;
	}
	return ev;
}

static int64_t
conn_deadline(const struct ptl_conn *c)
{
	int64_t d;

	if (c->state == CONN_CLOSING) {
		d = c->close_deadline;
		if (c->lingering && c->linger_deadline < d)
			d = c->linger_deadline;
		return d;
	}
	if (c->timeout_sent)
		return conn_add_ms(c->timeout_at, CONN_TIMEOUT_GRACE_MS);
	d = conn_add_ms(c->active_ms, c->limits.idle_timeout_ms);
	if (conn_add_ms(c->created_ms, c->limits.total_timeout_ms) < d)
		d = conn_add_ms(c->created_ms, c->limits.total_timeout_ms);
	return d;
}

/*
 * Input moves active_ms forward without touching the timer heap; a timer
 * that fires early just re-arms for the remaining time.
 */
static void
conn_arm_timer(struct ptl_conn *c)
{
	int64_t deadline, now;

	if (c->kick_scheduled && c->kick_via_timer)
		return;
	deadline = conn_deadline(c);
	if (c->timer_at != 0 && c->timer_at <= deadline &&
	    ptl_timer_active(c->timer))
		return;
	now = ptl_now_ms();
	ptl_timer_start(c->timer, deadline > now ? deadline - now : 0);
	c->timer_at = deadline > now ? deadline : now;
}

void
conn_update(struct ptl_conn *c)
{
	unsigned want;

	if (c->state == CONN_DEAD || c->finishing)
		return;
	want = conn_wanted_events(c);
	if (want != c->io_events && !c->fail_pending) {
		if (ptl_io_modify(c->io, want) != PTL_OK) {
			conn_log(c, PTL_LOG_ERROR, "cannot watch socket: %s",
			         strerror(errno));
			c->fail_pending = true;
			conn_kick(c, 0);
			return;
		}
		c->io_events = want;
	}
	conn_arm_timer(c);
	/*
	 * Decrypted bytes OpenSSL holds do not make the socket readable
	 * again: fetch them without waiting for epoll.
	 */
	if (c->tls == CONN_TLS_ACTIVE && conn_may_read(c) &&
	    SSL_pending(c->ssl) > 0)
		conn_kick(c, KICK_READ);
	if (c->state == CONN_CLOSING && !c->lingering &&
	    c->tls != CONN_TLS_HANDSHAKE && conn_flushable(c) == 0)
		conn_kick(c, KICK_FLUSH);
}

/*
 * All output is out. Closing a socket with unread input makes the kernel
 * send RST, which can destroy our last reply before the peer reads it, so
 * half-close and drain the peer's input briefly instead.
 */
static void
conn_close_flushed(struct ptl_conn *c)
{
	if (c->tls == CONN_TLS_ACTIVE) {
		ERR_clear_error();
		(void)SSL_shutdown(c->ssl); /* close_notify, best effort */
		ERR_clear_error();
	}
	if (c->eof_seen || shutdown(c->fd, SHUT_WR) < 0) {
		conn_abort_now(c);
		return;
	}
	c->lingering = true;
	c->linger_deadline = conn_add_ms(ptl_now_ms(), CONN_LINGER_MS);
}

static void
conn_linger_read(struct ptl_conn *c)
{
	int i;

	for (i = 0; i < CONN_LINGER_READS; i++) {
		ssize_t n =
		    recv(c->fd, c->in.start, ptl_buf_capacity(&c->in), 0);

		if (n > 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		conn_abort_now(c); /* the peer's FIN (or an error): done */
		return;
	}
}

static void
conn_check_error(struct ptl_conn *c)
{
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0)
		conn_log(c, PTL_LOG_INFO, "connection error: %s",
		         strerror(soerr));
	else
		conn_log(c, PTL_LOG_INFO, "connection reset by peer");
	conn_fail(c);
}

static void
conn_connect_done(struct ptl_conn *c)
{
	socklen_t len = sizeof(int);
	int soerr = 0;

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr != 0) {
		conn_log(c, PTL_LOG_INFO, "connect to %s port %u failed: %s",
		         c->peer_ip, (unsigned)c->peer_port, strerror(soerr));
		conn_fail(c);
		return;
	}
	c->state = CONN_OPEN;
	c->active_ms = ptl_now_ms();
	conn_local_addr(c);
	conn_emit(c, PTL_CONN_CONNECTED);
}

static void
conn_progress_open(struct ptl_conn *c, unsigned ioev, unsigned kick)
{
	enum conn_tls tls = c->tls;
	bool tls_on = tls == CONN_TLS_ACTIVE;
	bool did_read = false;
	size_t got = 0;
	int rc = PTL_OK;

	if (c->lingering) {
		conn_linger_read(c);
		return;
	}
	if (tls == CONN_TLS_FLUSH_CLEAR) {
		if ((ioev & (PTL_IO_WRITE | PTL_IO_ERROR)) ||
		    (kick & KICK_FLUSH)) {
			if (conn_flush(c) != PTL_OK)
				return;
		}
		if (c->clear_left > 0)
			return;
		if (c->state == CONN_CLOSING) {
			conn_close_flushed(c);
			return;
		}
		/* The clear reply is out: only now may the handshake read. */
		c->tls = CONN_TLS_HANDSHAKE;
		conn_handshake(c);
		return;
	}
	if (tls == CONN_TLS_HANDSHAKE) {
		if (ioev != 0 || (kick & KICK_HANDSHAKE))
			conn_handshake(c);
		return;
	}

	if (c->pending > 0 &&
	    ((kick & KICK_FLUSH) || (ioev & (PTL_IO_WRITE | PTL_IO_ERROR)) ||
	     (tls_on && c->write_wants_read && (ioev & PTL_IO_READ)))) {
		if (conn_flush(c) != PTL_OK)
			return;
	}
	if (c->state == CONN_CLOSING) {
		if (conn_flushable(c) == 0)
			conn_close_flushed(c);
		return;
	}
	if (c->want_drained && c->pending <= c->limits.write_high_water / 4) {
		c->want_drained = false;
		conn_emit(c, PTL_CONN_DRAINED);
		if (c->state != CONN_OPEN || c->tls != tls)
			return;
	}

	if (conn_may_read(c) &&
	    ((ioev & (PTL_IO_READ | PTL_IO_ERROR)) || (kick & KICK_READ) ||
	     (tls_on && c->read_wants_write && (ioev & PTL_IO_WRITE)))) {
		did_read = true;
		rc = conn_read_socket(c, &got);
		if (rc == PTL_ERROR) {
			conn_fail(c);
			return;
		}
		if (got > 0 && conn_input(c, got) != PTL_OK)
			return;
	}
	if ((got > 0 || (kick & KICK_DELIVER)) && !c->paused &&
	    ptl_buf_len(&c->in) > 0) {
		conn_emit(c, PTL_CONN_READ);
		if (c->state != CONN_OPEN || c->tls != tls)
			return;
	}
	if (rc == PTL_DONE)
		c->eof_seen = true;
	if (c->eof_seen && !c->eof_delivered && !c->paused) {
		c->eof_delivered = true;
		conn_emit(c, PTL_CONN_EOF);
		return;
	}
	/* Hang-up or error while not reading: find out, never spin on it. */
	if ((ioev & PTL_IO_ERROR) && !did_read && c->pending == 0)
		conn_check_error(c);
}

static void
conn_progress(struct ptl_conn *c, unsigned ioev, unsigned kick)
{
	if (c->fail_pending) {
		c->fail_pending = false;
		conn_fail(c);
		return;
	}
	switch (c->state) {
	case CONN_CONNECTING:
		if (ioev != 0)
			conn_connect_done(c);
		break;
	case CONN_OPEN:
	case CONN_CLOSING:
		conn_progress_open(c, ioev, kick);
		break;
	case CONN_DEAD:
		return;
	}
	conn_update(c);
}

static void
conn_on_io(struct ptl_io *io, unsigned events, void *arg)
{
	(void)io;
	conn_progress(arg, events, 0);
}

static void
conn_finish(struct ptl_conn *c)
{
	c->finishing = true;
	conn_emit(c, PTL_CONN_CLOSED);
	conn_destroy(c);
}

static void
conn_on_kick(void *arg)
{
	struct ptl_conn *c = arg;
	unsigned what = c->kick;

	c->kick = 0;
	c->kick_scheduled = false;
	c->kick_via_timer = false;
	if (c->state == CONN_DEAD) {
		conn_finish(c);
		return;
	}
	conn_progress(c, 0, what);
}

static void
conn_on_timer(struct ptl_timer *t, void *arg)
{
	struct ptl_conn *c = arg;
	int64_t now;

	(void)t;
	c->timer_at = 0;
	if (c->kick_scheduled && c->kick_via_timer) {
		conn_on_kick(c);
		return;
	}
	if (c->state == CONN_DEAD)
		return;
	now = ptl_now_ms();
	if (c->state == CONN_CLOSING) {
		if (now >= conn_deadline(c)) {
			if (!c->lingering)
				conn_log(c, PTL_LOG_INFO,
				         "output not sent %d s after close; "
				         "dropping it",
				         CONN_CLOSE_TIMEOUT_MS / 1000);
			conn_abort_now(c);
			return;
		}
	} else if (c->timeout_sent) {
		if (now >= conn_deadline(c)) {
			conn_log(c, PTL_LOG_NOTICE,
			         "not closed %d s after a timeout; aborting",
			         CONN_TIMEOUT_GRACE_MS / 1000);
			conn_abort_now(c);
			return;
		}
	} else if (now >= conn_deadline(c)) {
		bool idle =
		    now >= conn_add_ms(c->active_ms, c->limits.idle_timeout_ms);

		c->timeout_sent = true;
		c->timeout_at = now;
		conn_log(c, PTL_LOG_DEBUG, "%s timeout",
		         idle ? "idle" : "session");
		conn_emit(c, PTL_CONN_TIMEOUT);
		if (c->state == CONN_DEAD)
			return;
	}
	conn_update(c);
}

static int
conn_watch(struct ptl_conn *c, unsigned events)
{
	c->io = ptl_io_add(c->fd, events, conn_on_io, c);
	if (c->io == NULL)
		return PTL_ERROR;
	c->io_events = events;
	conn_arm_timer(c);
	return PTL_OK;
}

struct ptl_conn *
ptl_conn_new_accepted(int fd, struct ptl_listener *l,
                      const struct sockaddr *peer, socklen_t peerlen)
{
	struct ptl_error err;
	struct ptl_conn *c;

	c = conn_create(fd, l != NULL ? &l->spec.limits : NULL, peer, peerlen);
	if (c == NULL) {
		ptl_log(PTL_LOG_ERROR, "cannot accept a connection: out of "
		                       "memory");
		return NULL;
	}
	c->state = CONN_OPEN;
	if (l != NULL && l->cycle != NULL)
		c->server_ctx = ptl_tls_server_ctx(l->cycle->tls);
	if (l != NULL && l->spec.tls == PTL_TLS_IMPLICIT) {
		if (c->server_ctx == NULL) {
			conn_log(c, PTL_LOG_ERROR,
			         "implicit TLS without a certificate");
			conn_destroy(c);
			return NULL;
		}
		if (conn_tls_setup(c, c->server_ctx, true, &err) != PTL_OK) {
			conn_log(c, PTL_LOG_ERROR, "%s", err.text);
			conn_destroy(c);
			return NULL;
		}
		c->tls = CONN_TLS_HANDSHAKE;
	}
	if (conn_watch(c, PTL_IO_READ) != PTL_OK) {
		conn_log(c, PTL_LOG_ERROR, "cannot watch socket: %s",
		         strerror(errno));
		conn_destroy(c);
		return NULL;
	}
	c->listener = l;
	conn_log(c, PTL_LOG_DEBUG, "connection from %s port %u to %s port %u",
	         c->peer_ip, (unsigned)c->peer_port, c->local_ip,
	         (unsigned)c->local_port);
	return c;
}

PTL_API struct ptl_conn *
ptl_conn_connect(const struct sockaddr *addr, socklen_t addrlen,
                 const struct ptl_conn_limits *limits, ptl_conn_fn fn,
                 void *arg, struct ptl_error *err)
{
	char ip[INET6_ADDRSTRLEN];
	struct ptl_conn *c;
	uint16_t port;
	int fd;

	if (addr == NULL || !((addr->sa_family == AF_INET &&
	                       addrlen >= sizeof(struct sockaddr_in)) ||
	                      (addr->sa_family == AF_INET6 &&
	                       addrlen >= sizeof(struct sockaddr_in6)))) {
		ptl_error_set(err, "connect: not an IPv4 or IPv6 address");
		return NULL;
	}
	conn_addr_text(addr, ip, sizeof(ip), &port);
	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0) {
		ptl_error_set_errno(err, errno, "connect to %s port %u: socket",
		                    ip, (unsigned)port);
		return NULL;
	}
	if (connect(fd, addr, addrlen) < 0 && errno != EINPROGRESS &&
	    errno != EINTR) {
		ptl_error_set_errno(err, errno, "connect to %s port %u", ip,
		                    (unsigned)port);
		close(fd);
		return NULL;
	}
	c = conn_create(fd, limits, addr, addrlen);
	if (c == NULL) {
		ptl_error_set(err, "connect to %s port %u: out of memory", ip,
		              (unsigned)port);
		return NULL;
	}
	c->state = CONN_CONNECTING;
	c->handler = fn;
	c->handler_arg = arg;
	/* Even an immediate success is reported when writable, not here. */
	if (conn_watch(c, PTL_IO_WRITE) != PTL_OK) {
		ptl_error_set_errno(err, errno, "connect to %s port %u: watch",
		                    ip, (unsigned)port);
		conn_destroy(c);
		return NULL;
	}
	return c;
}

PTL_API void
ptl_conn_set_handler(struct ptl_conn *c, ptl_conn_fn fn, void *arg)
{
	c->handler = fn;
	c->handler_arg = arg;
}

PTL_API void
ptl_conn_close(struct ptl_conn *c)
{
	if (c->state == CONN_DEAD || c->state == CONN_CLOSING)
		return;
	/* Nothing can be sent before the connect or the handshake is done. */
	if (c->state == CONN_CONNECTING || c->tls == CONN_TLS_HANDSHAKE) {
		conn_abort_now(c);
		return;
	}
	c->state = CONN_CLOSING;
	c->close_deadline = conn_add_ms(ptl_now_ms(), CONN_CLOSE_TIMEOUT_MS);
	conn_kick(c, KICK_FLUSH);
	conn_update(c);
}

PTL_API void
ptl_conn_abort(struct ptl_conn *c)
{
	conn_abort_now(c);
}

PTL_API void
ptl_conn_set_timeouts(struct ptl_conn *c, int64_t idle_ms, int64_t total_ms)
{
	if (idle_ms > 0)
		c->limits.idle_timeout_ms = idle_ms;
	if (total_ms > 0)
		c->limits.total_timeout_ms = total_ms;
	conn_update(c);
}

PTL_API struct ptl_pool *
ptl_conn_pool(const struct ptl_conn *c)
{
	return c->pool;
}

PTL_API const char *
ptl_conn_id(const struct ptl_conn *c)
{
	return c->id;
}

PTL_API const char *
ptl_conn_peer_ip(const struct ptl_conn *c)
{
	return c->peer_ip;
}

PTL_API uint16_t
ptl_conn_peer_port(const struct ptl_conn *c)
{
	return c->peer_port;
}

PTL_API const struct sockaddr *
ptl_conn_peer_addr(const struct ptl_conn *c, socklen_t *len_out)
{
	if (len_out != NULL)
		*len_out = c->peerlen;
	return (const struct sockaddr *)&c->peer;
}

PTL_API const char *
ptl_conn_local_ip(const struct ptl_conn *c)
{
	return c->local_ip;
}

PTL_API uint16_t
ptl_conn_local_port(const struct ptl_conn *c)
{
	return c->local_port;
}

PTL_API uint64_t
ptl_conn_bytes_in(const struct ptl_conn *c)
{
	return c->bytes_in;
}

unsigned
ptl_conn_count(void)
{
	return conn_live;
}

void
ptl_conn_abort_all(void)
{
	struct ptl_conn *c;

	/* New connections are linked at the head: not visited, fine. */
	for (c = conn_list; c != NULL; c = c->next) {
		if ((c->state != CONN_OPEN && c->state != CONN_CONNECTING) ||
		    c->timeout_sent)
			continue;
		c->timeout_sent = true;
		c->timeout_at = ptl_now_ms();
		conn_emit(c, PTL_CONN_TIMEOUT);
	}
	for (c = conn_list; c != NULL; c = c->next) {
		if (c->state == CONN_DEAD)
			continue;
		/* One last non-blocking try for a goodbye line. */
		if (c->state != CONN_CONNECTING && conn_flushable(c) > 0) {
			c->state = CONN_CLOSING;
			(void)conn_flush(c);
		}
		conn_abort_now(c);
	}
}
