/* SPDX-License-Identifier: MIT */
/* Connections, listeners and TLS over real loopback sockets and the loop. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/cycle.h"
#include "core/listener.h"
#include "core/loop.h"
#include "core/tls.h"

#define MAX_LINES  32
#define MAX_EVENTS 64
#define MB         (1024 * 1024)

/* ---- loop driving ---- */

typedef bool (*cond_fn)(void *arg);

struct waiter {
	cond_fn cond;
	void *arg;
	int64_t deadline;
	bool met;
};

static void
waiter_tick(struct ptl_timer *t, void *arg)
{
	struct waiter *w = arg;

	if (w->cond != NULL && w->cond(w->arg)) {
		w->met = true;
		ptl_loop_exit();
		return;
	}
	if (ptl_now_ms() >= w->deadline) {
		ptl_loop_exit();
		return;
	}
	ptl_timer_start(t, 2);
}

/* Run the loop until @cond holds (polled every 2 ms) or @ms pass. */
static bool
run_until(cond_fn cond, void *arg, int64_t ms)
{
	struct waiter w = {cond, arg, ptl_now_ms() + ms, false};
	struct ptl_timer *t = ptl_timer_new(waiter_tick, &w);

	assert_non_null(t);
	ptl_timer_start(t, 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	ptl_timer_free(t);
	return w.met;
}

static bool
no_conns(void *arg)
{
	(void)arg;
	return ptl_conn_count() == 0;
}

/* Every test leaves no connection behind. */
static void
expect_no_conns(void)
{
	assert_true(run_until(no_conns, NULL, 5000));
}

/* ---- sockets ---- */

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	assert_true(fl >= 0);
	assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* A connected loopback pair: a plain client fd and an accepted server fd. */
static void
tcp_pair(int *client_out, int *server_out, struct sockaddr_storage *peer,
         socklen_t *peerlen)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd, cfd, sfd;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*peerlen = sizeof(*peer);
	sfd = accept4(lfd, (struct sockaddr *)peer, peerlen,
	              SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(sfd >= 0);
	close(lfd);
	*client_out = cfd;
	*server_out = sfd;
}

/* A port that was free a moment ago. */
static uint16_t
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* Read what is available from a non-blocking fd; -1 at EOF. */
static ssize_t
read_some(int fd, char *buf, size_t size)
{
	ssize_t n = read(fd, buf, size);

	if (n == 0)
		return -1;
	if (n < 0)
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
	return n;
}

/* ---- a recording handler ---- */

struct probe {
	struct ptl_conn *c;
	char lines[MAX_LINES][160];
	size_t nlines;
	int declined;
	int counts[PTL_CONN_CLOSED + 1];
	enum ptl_conn_event order[MAX_EVENTS];
	size_t norder;
	bool close_on_eof;
	bool pause_after_line;
	/* Called for each line read; may write, close, start TLS. */
	void (*on_line)(struct probe *p, const char *line, size_t len);
	/* Called for events other than READ and CLOSED. */
	void (*on_event)(struct probe *p, enum ptl_conn_event ev);
	void *data;
	int writes_after_close;
};

static void
probe_read(struct probe *p)
{
	for (;;) {
		const char *line;
		size_t len;
		int rc = ptl_conn_read_line(p->c, &line, &len);

		if (rc == PTL_AGAIN)
			return;
		if (rc == PTL_DECLINED) {
			p->declined++;
			continue;
		}
		if (p->nlines < MAX_LINES) {
			size_t n = len < 159 ? len : 159;

			memcpy(p->lines[p->nlines], line, n);
			p->lines[p->nlines][n] = '\0';
			p->nlines++;
		}
		/* Handlers get the NUL-terminated copy. */
		if (p->on_line != NULL && p->nlines > 0)
			p->on_line(p, p->lines[p->nlines - 1], len);
		if (p->pause_after_line) {
			ptl_conn_pause(p->c);
			return;
		}
	}
}

static void
probe_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct probe *p = arg;

	p->counts[ev]++;
	if (p->norder < MAX_EVENTS)
		p->order[p->norder++] = ev;
	switch (ev) {
	case PTL_CONN_READ:
		probe_read(p);
		break;
	case PTL_CONN_CLOSED:
		/* Everything must be harmless now. */
		if (ptl_conn_write(c, "x", 1) != PTL_ERROR)
			p->writes_after_close++;
		ptl_conn_close(c);
		ptl_conn_abort(c);
		p->c = NULL;
		break;
	case PTL_CONN_EOF:
		if (p->close_on_eof)
			ptl_conn_close(c);
		if (p->on_event != NULL)
			p->on_event(p, ev);
		break;
	default:
		if (p->on_event != NULL)
			p->on_event(p, ev);
		break;
	}
}

static struct ptl_listener plain_listener = {.fd = -1};

static struct ptl_conn *
server_conn(int sfd, const struct sockaddr_storage *peer, socklen_t peerlen,
            struct ptl_listener *l, struct probe *p)
{
	struct ptl_conn *c;

	c = ptl_conn_new_accepted(sfd, l, (const struct sockaddr *)peer,
	                          peerlen);
	assert_non_null(c);
	p->c = c;
	ptl_conn_set_handler(c, probe_handler, p);
	return c;
}

static bool
probe_closed(void *arg)
{
	return ((struct probe *)arg)->counts[PTL_CONN_CLOSED] > 0;
}

/* ---- tests: lines ---- */

struct trickle {
	int fd;
	const char *data;
	size_t len, off;
};

static void
trickle_tick(struct ptl_timer *t, void *arg)
{
	struct trickle *tr = arg;

	if (tr->off < tr->len) {
		write_all(tr->fd, tr->data + tr->off, 1);
		tr->off++;
		ptl_timer_start(t, 1);
	}
}

static bool
probe_has_1_line(void *arg)
{
	return ((struct probe *)arg)->nlines >= 1;
}

static bool
probe_has_3_lines(void *arg)
{
	return ((struct probe *)arg)->nlines >= 3;
}

static void
test_lines_one_byte_at_a_time(void **state)
{
	static const char input[] = "HELO a\r\nMAIL FROM:<x@y>\nNOOP\r\n";
	struct trickle tr = {0};
	struct probe p = {0};
	struct sockaddr_storage peer;
	struct ptl_timer *t;
	socklen_t peerlen;
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	assert_string_equal(ptl_conn_peer_ip(p.c), "127.0.0.1");
	assert_string_equal(ptl_conn_local_ip(p.c), "127.0.0.1");
	assert_non_null(strchr(ptl_conn_id(p.c), '.'));
	assert_false(ptl_conn_is_tls(p.c));
	assert_null(ptl_conn_tls_version(p.c));

	tr.fd = cfd;
	tr.data = input;
	tr.len = sizeof(input) - 1;
	t = ptl_timer_new(trickle_tick, &tr);
	assert_non_null(t);
	ptl_timer_start(t, 1);
	assert_true(run_until(probe_has_3_lines, &p, 5000));
	ptl_timer_free(t);

	assert_int_equal(p.nlines, 3);
	assert_string_equal(p.lines[0], "HELO a\r\n");
	assert_string_equal(p.lines[1], "MAIL FROM:<x@y>\n");
	assert_string_equal(p.lines[2], "NOOP\r\n");
	assert_int_equal(p.declined, 0);
	/* One READ per arriving byte at most, never more. */
	assert_true(p.counts[PTL_CONN_READ] >= 3);
	assert_true(p.counts[PTL_CONN_READ] <= (int)tr.len);
	assert_int_equal(ptl_conn_bytes_in(p.c), tr.len);

	p.close_on_eof = true;
	close(cfd);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.counts[PTL_CONN_EOF], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	assert_int_equal(p.writes_after_close, 0);
	expect_no_conns();
}

static bool
probe_has_2_lines(void *arg)
{
	return ((struct probe *)arg)->nlines >= 2;
}

static void
test_overlong_line_declined(void **state)
{
	struct ptl_listener l = {.fd = -1};
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	char *big;
	int cfd, sfd;

	(void)state;
	l.spec.limits.max_line = 32;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &l, &p);

	/* 33 bytes with CRLF: one too many. Then an exact fit. */
	write_all(cfd, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n", 33);
	write_all(cfd, "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\r\n", 32);
	write_all(cfd, "NOOP\r\n", 6);
	assert_true(run_until(probe_has_2_lines, &p, 5000));
	assert_int_equal(p.declined, 1);
	assert_string_equal(p.lines[0], "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\r\n");
	assert_string_equal(p.lines[1], "NOOP\r\n");

	/* A line far longer than the whole input buffer: DECLINED once. */
	big = malloc(40000);
	assert_non_null(big);
	memset(big, 'Z', 40000);
	write_all(cfd, big, 40000);
	write_all(cfd, "\r\nQUIT\r\n", 8);
	free(big);
	assert_true(run_until(probe_has_3_lines, &p, 5000));
	assert_int_equal(p.declined, 2);
	assert_string_equal(p.lines[2], "QUIT\r\n");

	p.close_on_eof = true;
	close(cfd);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	expect_no_conns();
}

/* ---- tests: output ---- */

struct bulk {
	struct probe *p;
	int fd;
	size_t got;
	size_t want;
	bool eof;
	bool bad;
};

static bool
bulk_read(void *arg)
{
	struct bulk *b = arg;
	char buf[65536];
	ssize_t n;

	while ((n = read_some(b->fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != (char)('a' + (b->got + (size_t)i) % 26))
				b->bad = true;
		b->got += (size_t)n;
	}
	if (n < 0)
		b->eof = true;
	return b->got >= b->want && b->p->counts[PTL_CONN_DRAINED] > 0;
}

static void
fill_pattern(char *buf, size_t len, size_t offset)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (offset + i) % 26);
}

static void
test_backpressure_drained(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	struct bulk b = {0};
	socklen_t peerlen;
	int cfd, sfd, small = 32768, rc, agains = 0;
	char *chunk;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	/*
	 * Kernel buffers small enough that 1 MB cannot hide in them (much
	 * smaller ones stall loopback TCP itself after a shrink).
	 */
	assert_int_equal(
	    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	assert_int_equal(
	    setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	set_nonblock(cfd);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);

	chunk = malloc(65536);
	assert_non_null(chunk);
	for (int i = 0; i < 16; i++) {
		fill_pattern(chunk, 65536, (size_t)i * 65536);
		rc = ptl_conn_write(p.c, chunk, 65536);
		assert_true(rc == PTL_OK || rc == PTL_AGAIN);
		if (rc == PTL_AGAIN)
			agains++;
		if (i == 0)
			assert_int_equal(rc, PTL_OK);
		else
			assert_int_equal(rc, PTL_AGAIN);
	}
	assert_int_equal(agains, 15);
	assert_int_equal(ptl_conn_pending(p.c), MB);
	/* 16 x high water is the hard bound: the write is refused. */
	assert_int_equal(ptl_conn_write(p.c, "x", 1), PTL_ERROR);
	assert_int_equal(ptl_conn_pending(p.c), MB);
	free(chunk);

	/* The peer does not read: no DRAINED, output stays queued. */
	assert_false(run_until(NULL, NULL, 300));
	assert_int_equal(p.counts[PTL_CONN_DRAINED], 0);
	assert_true(ptl_conn_pending(p.c) > 65536);

	/* Now it reads: DRAINED once, every byte arrives in order. */
	b.p = &p;
	b.fd = cfd;
	b.want = MB;
	assert_true(run_until(bulk_read, &b, 10000));
	assert_false(b.bad);
	assert_int_equal(b.got, MB);
	assert_int_equal(p.counts[PTL_CONN_DRAINED], 1);
	assert_int_equal(ptl_conn_pending(p.c), 0);

	ptl_conn_close(p.c);
	close(cfd);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	assert_int_equal(p.counts[PTL_CONN_ERROR], 0);
	expect_no_conns();
}

static void
test_eof_after_data(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	char buf[64];
	int cfd, sfd;
	ssize_t n;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	p.close_on_eof = true;
	write_all(cfd, "NOOP\r\nPARTIAL", 13);
	assert_int_equal(shutdown(cfd, SHUT_WR), 0);
	assert_true(run_until(probe_closed, &p, 5000));

	assert_int_equal(p.nlines, 1);
	assert_string_equal(p.lines[0], "NOOP\r\n");
	assert_int_equal(p.counts[PTL_CONN_EOF], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	assert_int_equal(p.order[0], PTL_CONN_READ);
	assert_int_equal(p.order[p.norder - 2], PTL_CONN_EOF);
	assert_int_equal(p.order[p.norder - 1], PTL_CONN_CLOSED);
	n = read(cfd, buf, sizeof(buf));
	assert_int_equal(n, 0);
	close(cfd);
	expect_no_conns();
}

static void
big_reply_and_close(struct probe *p, const char *line, size_t len)
{
	struct bulk *b = p->data;
	char chunk[8192];
	size_t off;

	(void)line;
	(void)len;
	for (off = 0; off < b->want; off += sizeof(chunk)) {
		fill_pattern(chunk, sizeof(chunk), off);
		if (ptl_conn_write(p->c, chunk, sizeof(chunk)) == PTL_ERROR)
			b->bad = true;
	}
	ptl_conn_close(p->c);
	/* Closing twice, then aborting, is harmless too. */
	ptl_conn_close(p->c);
}

static bool
bulk_eof_and_closed(void *arg)
{
	struct bulk *b = arg;

	(void)bulk_read(b);
	if (b->eof && b->fd >= 0) {
		close(b->fd); /* our FIN ends the server's linger */
		b->fd = -1;
	}
	return b->eof && b->p->counts[PTL_CONN_CLOSED] > 0;
}

static void
test_close_flushes_output(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	struct bulk b = {0};
	socklen_t peerlen;
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	set_nonblock(cfd);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	b.p = &p;
	b.fd = cfd;
	b.want = 512 * 1024;
	p.data = &b;
	p.on_line = big_reply_and_close;
	write_all(cfd, "DATA\r\nIGNORED\r\n", 15);
	assert_true(run_until(bulk_eof_and_closed, &b, 10000));
	assert_false(b.bad);
	assert_int_equal(b.got, b.want);
	/* After close() no READ: the second line was never delivered. */
	assert_int_equal(p.nlines, 1);
	assert_int_equal(p.counts[PTL_CONN_READ], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	assert_int_equal(p.counts[PTL_CONN_ERROR], 0);
	assert_int_equal(p.writes_after_close, 0);
	expect_no_conns();
}

static void
abort_in_handler(struct probe *p, const char *line, size_t len)
{
	(void)line;
	(void)len;
	ptl_conn_close(p->c);
	ptl_conn_abort(p->c);
	ptl_conn_abort(p->c);
	ptl_conn_close(p->c);
	if (ptl_conn_write(p->c, "x", 1) != PTL_ERROR)
		p->writes_after_close++;
	/* The connection stays usable (read-only) until we return. */
	if (ptl_conn_id(p->c)[0] == '\0')
		p->writes_after_close++;
}

static void
test_closed_exactly_once(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	p.on_line = abort_in_handler;
	write_all(cfd, "ONE\r\nTWO\r\nTHREE\r\n", 17);
	assert_true(run_until(probe_closed, &p, 5000));
	/* Let anything stray run. */
	assert_false(run_until(NULL, NULL, 50));
	assert_int_equal(p.nlines, 1);
	assert_int_equal(p.counts[PTL_CONN_READ], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	assert_int_equal(p.counts[PTL_CONN_ERROR], 0);
	assert_int_equal(p.writes_after_close, 0);
	close(cfd);
	expect_no_conns();
}

/* ---- tests: timeouts and limits ---- */

static void
goodbye_on_timeout(struct probe *p, enum ptl_conn_event ev)
{
	if (ev != PTL_CONN_TIMEOUT)
		return;
	if (ptl_conn_write(p->c, "421 timeout\r\n", 13) != PTL_OK)
		p->declined = 100;
	ptl_conn_close(p->c);
}

static void
test_idle_timeout(void **state)
{
	struct ptl_listener l = {.fd = -1};
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	int64_t start;
	char buf[64];
	ssize_t n;
	int cfd, sfd;

	(void)state;
	l.spec.limits.idle_timeout_ms = 150;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	start = ptl_now_ms();
	server_conn(sfd, &peer, peerlen, &l, &p);
	p.on_event = goodbye_on_timeout;
	/* Input 100 ms in restarts the idle timer. */
	assert_false(run_until(NULL, NULL, 100));
	write_all(cfd, "NOOP\r\n", 6);
	shutdown(cfd, SHUT_WR);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_true(ptl_now_ms() - start >= 240);
	assert_true(ptl_now_ms() - start < 3000);
	assert_int_equal(p.counts[PTL_CONN_TIMEOUT], 0 + 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	n = read(cfd, buf, sizeof(buf));
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "421 timeout\r\n", 13);
	close(cfd);
	expect_no_conns();
}

static void
test_timeout_then_abort_if_not_closed(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	/* The handler ignores TIMEOUT; shutdown ends it with abort_all. */
	ptl_conn_set_timeouts(p.c, 50, 0);
	assert_false(run_until(probe_closed, &p, 200));
	assert_int_equal(p.counts[PTL_CONN_TIMEOUT], 1);
	ptl_conn_abort_all();
	assert_true(run_until(probe_closed, &p, 1000));
	assert_int_equal(p.counts[PTL_CONN_TIMEOUT], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	close(cfd);
	expect_no_conns();
}

static void
test_abort_all_sends_timeout(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	char buf[64];
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	p.on_event = goodbye_on_timeout;
	assert_int_equal(ptl_conn_count(), 1);
	ptl_conn_abort_all();
	assert_int_equal(p.counts[PTL_CONN_TIMEOUT], 1);
	assert_true(run_until(probe_closed, &p, 1000));
	/* The goodbye still went out in the last flush attempt. */
	assert_int_equal(read(cfd, buf, sizeof(buf)), 13);
	close(cfd);
	expect_no_conns();
}

static void
test_input_budget(void **state)
{
	struct ptl_listener l = {.fd = -1};
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	char data[3000];
	int cfd, sfd;

	(void)state;
	l.spec.limits.max_input_bytes = 1000;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &l, &p);
	memset(data, 'x', sizeof(data));
	for (size_t i = 99; i < sizeof(data); i += 100)
		data[i] = '\n';
	write_all(cfd, data, sizeof(data));
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.counts[PTL_CONN_ERROR], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	assert_true(p.nlines <= 10);
	close(cfd);
	expect_no_conns();
}

static void
resume_later(struct ptl_timer *t, void *arg)
{
	struct probe *p = arg;

	(void)t;
	ptl_conn_resume(p->c);
}

static bool
probe_has_4_lines(void *arg)
{
	return ((struct probe *)arg)->nlines >= 4;
}

static void
test_pause_resume_delivers_buffered(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	struct ptl_timer *t;
	socklen_t peerlen;
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &p);
	p.pause_after_line = true;
	write_all(cfd, "A\r\nB\r\nC\r\nD\r\n", 12);
	assert_false(run_until(probe_has_2_lines, &p, 100));
	assert_int_equal(p.nlines, 1);

	/* Each resume delivers the buffered input without new bytes. */
	t = ptl_timer_new(resume_later, &p);
	assert_non_null(t);
	for (size_t want = 2; want <= 4; want++) {
		ptl_timer_start(t, 5);
		assert_false(run_until(NULL, NULL, 60));
		assert_int_equal(p.nlines, want);
	}
	ptl_timer_free(t);
	assert_true(run_until(probe_has_4_lines, &p, 10));
	assert_string_equal(p.lines[3], "D\r\n");

	/* EOF while paused waits for resume. */
	p.close_on_eof = true;
	shutdown(cfd, SHUT_WR);
	assert_false(run_until(probe_closed, &p, 100));
	assert_int_equal(p.counts[PTL_CONN_EOF], 0);
	p.pause_after_line = false;
	ptl_conn_resume(p.c);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.counts[PTL_CONN_EOF], 1);
	close(cfd);
	expect_no_conns();
}

/* ---- TLS fixtures ---- */

static char tmpdir[64];
static char cert_a[128], key_a[128], cert_b[128], key_b[128];
static struct ptl_cycle tls_cycle;
static struct ptl_tls_cert_conf tls_certs[2];
static struct ptl_listener tls_listener = {.fd = -1};

static void
make_cert(const char *name, const char *cert_path, const char *key_path)
{
	static long serial = 1;
	EVP_PKEY *pkey;
	X509_EXTENSION *ext;
	X509V3_CTX v3;
	X509_NAME *subj;
	char san[128];
	X509 *x;
	FILE *f;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(pkey);
	x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	assert_int_equal(X509_set_pubkey(x, pkey), 1);
	subj = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
	                           (const unsigned char *)name, -1, -1, 0);
	assert_int_equal(X509_set_issuer_name(x, subj), 1);
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	snprintf(san, sizeof(san), "DNS:%s", name);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);

	f = fopen(cert_path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	f = fopen(key_path, "w");
	assert_non_null(f);
	assert_int_equal(
	    PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

static int
tls_setup(void **state)
{
	struct ptl_error err;

	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/petrel-test-conn-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cert_a, sizeof(cert_a), "%s/a.pem", tmpdir);
	snprintf(key_a, sizeof(key_a), "%s/a.key", tmpdir);
	snprintf(cert_b, sizeof(cert_b), "%s/b.pem", tmpdir);
	snprintf(key_b, sizeof(key_b), "%s/b.key", tmpdir);
	make_cert("localhost", cert_a, key_a);
	make_cert("*.b.test", cert_b, key_b);
	tls_certs[0].cert = cert_a;
	tls_certs[0].key = key_a;
	tls_certs[1].cert = cert_b;
	tls_certs[1].key = key_b;
	tls_cycle.tls_conf.certificates.count = 2;
	tls_cycle.tls_conf.certificates.items = tls_certs;
	if (ptl_tls_build(&tls_cycle, &err) != PTL_OK) {
		fprintf(stderr, "ptl_tls_build: %s: %s\n", err.path, err.text);
		return -1;
	}
	tls_listener.cycle = &tls_cycle;
	return 0;
}

static void
tls_teardown(void)
{
	ptl_tls_free(tls_cycle.tls);
	tls_cycle.tls = NULL;
	ptl_tls_client_fini();
	unlink(cert_a);
	unlink(key_a);
	unlink(cert_b);
	unlink(key_b);
	rmdir(tmpdir);
}

static void
test_tls_build_errors(void **state)
{
	struct ptl_tls_cert_conf certs[1] = {{0}};
	struct ptl_cycle cycle = {0};
	struct ptl_error err;
	char missing[160];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/missing.pem", tmpdir);
	cycle.tls_conf.certificates.count = 1;
	cycle.tls_conf.certificates.items = certs;
	certs[0].cert = missing;
	certs[0].key = key_a;
	assert_int_equal(ptl_tls_build(&cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "tls.certificates[0].cert");
	assert_non_null(strstr(err.text, missing));
	assert_null(cycle.tls);

	/* Key of another certificate. */
	certs[0].cert = cert_a;
	certs[0].key = key_b;
	assert_int_equal(ptl_tls_build(&cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "tls.certificates[0].key");
	assert_non_null(strstr(err.text, key_b));

	cycle.tls_conf.ciphers = "NO-SUCH-CIPHER";
	certs[0].key = key_a;
	assert_int_equal(ptl_tls_build(&cycle, &err), PTL_ERROR);
	assert_string_equal(err.path, "tls.ciphers");

	/* No certificates: no TLS, no error. */
	cycle.tls_conf.ciphers = NULL;
	cycle.tls_conf.certificates.count = 0;
	assert_int_equal(ptl_tls_build(&cycle, &err), PTL_OK);
	assert_null(cycle.tls);
	assert_null(ptl_tls_server_ctx(NULL));

	/* The client context cache hands out one context per setting. */
	assert_ptr_equal(ptl_tls_client_ctx(PTL_TLS_VERIFY_PEER, cert_a, &err),
	                 ptl_tls_client_ctx(PTL_TLS_VERIFY_PEER, cert_a, &err));
	assert_ptr_not_equal(
	    ptl_tls_client_ctx(PTL_TLS_VERIFY_PEER, cert_a, &err),
	    ptl_tls_client_ctx(PTL_TLS_VERIFY_NONE, NULL, &err));
	assert_null(ptl_tls_client_ctx(PTL_TLS_VERIFY_PEER, missing, &err));
	assert_non_null(strstr(err.text, missing));
}

/* ---- STARTTLS injection (CVE-2011-0411) ---- */

struct tls_client {
	int fd;
	char reply[128];
	bool ok;
	char error[256];
};

/* A blocking OpenSSL client in its own thread, like a real MUA. */
static void *
injecting_client(void *arg)
{
	struct tls_client *tc = arg;
	static const char inject[] = "STARTTLS\r\nRSET\r\n";
	char line[64];
	size_t len = 0;
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	int n;

	if (write(tc->fd, inject, sizeof(inject) - 1) !=
	    (ssize_t)(sizeof(inject) - 1))
		goto out;
	/* The "220" must come in clear, byte by byte up to its LF. */
	while (len < sizeof(line) - 1) {
		if (read(tc->fd, line + len, 1) != 1)
			goto out;
		if (line[len++] == '\n')
			break;
	}
	line[len] = '\0';
	if (strcmp(line, "220 Ready\r\n") != 0) {
		snprintf(tc->error, sizeof(tc->error), "clear reply: %s", line);
		goto out;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	ssl = ctx != NULL ? SSL_new(ctx) : NULL;
	if (ssl == NULL || SSL_set_fd(ssl, tc->fd) != 1)
		goto out;
	if (SSL_connect(ssl) != 1) {
		snprintf(tc->error, sizeof(tc->error), "SSL_connect failed");
		goto out;
	}
	if (SSL_write(ssl, "NOOP\r\n", 6) != 6)
		goto out;
	len = 0;
	while (len < sizeof(tc->reply) - 1) {
		n = SSL_read(ssl, tc->reply + len, 1);
		if (n != 1)
			break;
		if (tc->reply[len++] == '\n')
			break;
	}
	tc->reply[len] = '\0';
	tc->ok = true;
	(void)SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(tc->fd);
	ERR_clear_error();
	return NULL;
}

static void
starttls_server_line(struct probe *p, const char *line, size_t len)
{
	struct ptl_error err;

	(void)len;
	if (strncmp(line, "STARTTLS\r\n", 10) == 0) {
		/* The reply is queued first and must go out in clear. */
		if (ptl_conn_write(p->c, "220 Ready\r\n", 11) != PTL_OK ||
		    ptl_conn_starttls(p->c, &err) != PTL_OK)
			p->declined = 100;
		return;
	}
	if (!ptl_conn_is_tls(p->c)) {
		p->declined = 200; /* a cleartext line after STARTTLS */
		return;
	}
	if (ptl_conn_printf(p->c, "250 %.*s", (int)len, line) != PTL_OK)
		p->declined = 100;
	ptl_conn_close(p->c);
}

static void
test_starttls_discards_injected_input(void **state)
{
	struct sockaddr_storage peer;
	struct tls_client tc = {0};
	struct probe p = {0};
	socklen_t peerlen;
	pthread_t th;
	int sfd;

	(void)state;
	tcp_pair(&tc.fd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &tls_listener, &p);
	p.on_line = starttls_server_line;
	assert_int_equal(pthread_create(&th, NULL, injecting_client, &tc), 0);
	assert_true(run_until(probe_closed, &p, 10000));
	assert_int_equal(pthread_join(th, NULL), 0);

	assert_string_equal(tc.error, "");
	assert_true(tc.ok);
	assert_int_equal(p.declined, 0);
	assert_int_equal(p.counts[PTL_CONN_TLS_READY], 1);
	/* "RSET" was sent in clear with STARTTLS: it must never be seen. */
	assert_int_equal(p.nlines, 2);
	assert_string_equal(p.lines[0], "STARTTLS\r\n");
	assert_string_equal(p.lines[1], "NOOP\r\n");
	assert_string_equal(tc.reply, "250 NOOP\r\n");
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	expect_no_conns();
}

/* Injected bytes still in the kernel buffer break the handshake instead. */
static void
test_starttls_late_injection_fails_handshake(void **state)
{
	struct sockaddr_storage peer;
	struct probe p = {0};
	socklen_t peerlen;
	int cfd, sfd;

	(void)state;
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &tls_listener, &p);
	p.on_line = starttls_server_line;
	write_all(cfd, "STARTTLS\r\n", 10);
	assert_false(run_until(probe_closed, &p, 100));
	write_all(cfd, "RSET\r\nQUIT\r\n", 12);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.nlines, 1);
	assert_int_equal(p.counts[PTL_CONN_TLS_READY], 0);
	assert_int_equal(p.counts[PTL_CONN_ERROR], 1);
	close(cfd);
	expect_no_conns();
}

/* ---- client-side TLS, listeners, SNI ---- */

struct smtp_like {
	struct probe server;
	struct probe client;
	const char *sni;
	const char *ca_file;
	enum ptl_tls_verify verify;
	bool implicit;
	bool verified;
	char version[32];
	char cipher[64];
	int accepted;
	enum ptl_conn_event server_first;
};

static void
server_line(struct probe *p, const char *line, size_t len)
{
	struct ptl_error err;

	(void)len;
	if (strcmp(line, "STARTTLS\r\n") == 0) {
		if (ptl_conn_write(p->c, "220 go\r\n", 8) != PTL_OK ||
		    ptl_conn_starttls(p->c, &err) != PTL_OK)
			p->declined = 100;
	} else if (strcmp(line, "EHLO x\r\n") == 0) {
		if (ptl_conn_write(p->c, "250 ok\r\n", 8) != PTL_OK)
			p->declined = 100;
	} else if (strcmp(line, "QUIT\r\n") == 0) {
		if (ptl_conn_write(p->c, "221 bye\r\n", 9) != PTL_OK)
			p->declined = 100;
		ptl_conn_close(p->c);
	}
}

static void
on_accept(struct ptl_conn *c, void *arg)
{
	struct smtp_like *s = arg;

	s->accepted++;
	s->server.c = c;
	s->server.on_line = server_line;
	ptl_conn_set_handler(c, probe_handler, &s->server);
	if (!s->implicit && ptl_conn_write(c, "220 hi\r\n", 8) != PTL_OK)
		s->server.declined = 100;
}

static void
client_start_tls(struct smtp_like *s)
{
	struct ptl_error err;

	if (ptl_conn_starttls_client(s->client.c, s->sni, s->verify, s->ca_file,
	                             &err) != PTL_OK)
		s->client.declined = 100;
}

static void
client_line(struct probe *p, const char *line, size_t len)
{
	struct smtp_like *s = p->data;

	(void)len;
	if (strcmp(line, "220 hi\r\n") == 0) {
		if (ptl_conn_write(p->c, "STARTTLS\r\n", 10) != PTL_OK)
			p->declined = 100;
	} else if (strcmp(line, "220 go\r\n") == 0) {
		client_start_tls(s);
	} else if (strcmp(line, "250 ok\r\n") == 0) {
		if (ptl_conn_write(p->c, "QUIT\r\n", 6) != PTL_OK)
			p->declined = 100;
	}
}

static void
client_event(struct probe *p, enum ptl_conn_event ev)
{
	struct smtp_like *s = p->data;
	const char *v;

	if (ev == PTL_CONN_CONNECTED && s->implicit)
		client_start_tls(s);
	if (ev == PTL_CONN_TLS_READY) {
		s->verified = ptl_conn_tls_verified(p->c);
		v = ptl_conn_tls_version(p->c);
		snprintf(s->version, sizeof(s->version), "%s", v ? v : "");
		v = ptl_conn_tls_cipher(p->c);
		snprintf(s->cipher, sizeof(s->cipher), "%s", v ? v : "");
		if (ptl_conn_write(p->c, "EHLO x\r\n", 8) != PTL_OK)
			p->declined = 100;
	}
	if (ev == PTL_CONN_EOF || ev == PTL_CONN_ERROR)
		ptl_conn_close(p->c);
}

static void
server_event(struct probe *p, enum ptl_conn_event ev)
{
	if (ev == PTL_CONN_EOF)
		ptl_conn_close(p->c);
}

static void
dump_probe(const char *who, const struct probe *p)
{
	fprintf(stderr, "%s: lines %zu declined %d events", who, p->nlines,
	        p->declined);
	for (size_t i = 0; i < p->norder; i++)
		fprintf(stderr, " %d", (int)p->order[i]);
	for (size_t i = 0; i < p->nlines; i++)
		fprintf(stderr, " [%s]", p->lines[i]);
	fprintf(stderr, "\n");
}

static bool
both_closed(void *arg)
{
	struct smtp_like *s = arg;

	return s->client.counts[PTL_CONN_CLOSED] > 0 &&
	       s->server.counts[PTL_CONN_CLOSED] > 0;
}

static struct ptl_module test_module = {.name = "testmod"};

/* A cycle with one listener through the real listener code. */
static void
listen_cycle(struct ptl_cycle *cycle, struct ptl_instance *inst,
             struct smtp_like *s, uint16_t port, enum ptl_tls_mode tls,
             unsigned max_conns, unsigned max_per_ip)
{
	struct ptl_listen_spec spec;
	struct ptl_error err;
	char text[32];

	memset(cycle, 0, sizeof(*cycle));
	memset(inst, 0, sizeof(*inst));
	cycle->pool = ptl_pool_create(0);
	assert_non_null(cycle->pool);
	cycle->tls = tls_cycle.tls;
	inst->module = &test_module;
	inst->cycle = cycle;
	cycle->in_init_master = true;
	snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)port);
	memset(&spec, 0, sizeof(spec));
	spec.address.text = text;
	spec.tls = tls;
	spec.max_connections = max_conns;
	spec.max_per_ip = max_per_ip;
	assert_int_equal(ptl_listener_add(inst, &spec, on_accept, s, &err),
	                 PTL_OK);
	assert_int_equal(ptl_listeners_bind(cycle, NULL, &err), PTL_OK);
	assert_int_equal(ptl_listeners_start(cycle, &err), PTL_OK);
}

static void
listen_cycle_free(struct ptl_cycle *cycle)
{
	ptl_listeners_stop(cycle);
	ptl_listeners_close(cycle);
	ptl_pool_destroy(cycle->pool);
}

static void
connect_client(struct smtp_like *s, uint16_t port)
{
	struct sockaddr_in sin;
	struct ptl_error err;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	s->client.data = s;
	s->client.on_line = client_line;
	s->client.on_event = client_event;
	s->server.on_event = server_event;
	s->client.c = ptl_conn_connect((struct sockaddr *)&sin, sizeof(sin),
	                               NULL, probe_handler, &s->client, &err);
	assert_non_null(s->client.c);
}

static void
test_starttls_client_verified(void **state)
{
	struct ptl_cycle cycle;
	struct ptl_instance inst;
	struct smtp_like s;
	uint16_t port = free_port();

	(void)state;
	memset(&s, 0, sizeof(s));
	s.sni = "localhost";
	s.ca_file = cert_a;
	s.verify = PTL_TLS_VERIFY_PEER;
	listen_cycle(&cycle, &inst, &s, port, PTL_TLS_NONE, 0, 0);
	connect_client(&s, port);
	if (!run_until(both_closed, &s, 10000)) {
		dump_probe("client", &s.client);
		dump_probe("server", &s.server);
		fail();
	}
	assert_int_equal(s.accepted, 1);
	assert_int_equal(s.client.counts[PTL_CONN_CONNECTED], 1);
	assert_int_equal(s.client.counts[PTL_CONN_TLS_READY], 1);
	assert_int_equal(s.server.counts[PTL_CONN_TLS_READY], 1);
	assert_int_equal(s.client.counts[PTL_CONN_ERROR], 0);
	assert_int_equal(s.server.counts[PTL_CONN_ERROR], 0);
	assert_int_equal(s.client.declined, 0);
	assert_int_equal(s.server.declined, 0);
	assert_true(s.verified);
	assert_string_equal(s.version, "TLSv1.3");
	assert_true(s.cipher[0] != '\0');
	assert_int_equal(s.client.nlines, 4);
	assert_string_equal(s.client.lines[3], "221 bye\r\n");
	assert_int_equal(s.server.nlines, 3);
	expect_no_conns();
	listen_cycle_free(&cycle);
}

static void
test_starttls_client_wrong_name_fails(void **state)
{
	struct ptl_cycle cycle;
	struct ptl_instance inst;
	struct smtp_like s;
	uint16_t port = free_port();

	(void)state;
	memset(&s, 0, sizeof(s));
	s.sni = "mail.example.net";
	s.ca_file = cert_a;
	s.verify = PTL_TLS_VERIFY_PEER;
	listen_cycle(&cycle, &inst, &s, port, PTL_TLS_NONE, 0, 0);
	connect_client(&s, port);
	assert_true(run_until(both_closed, &s, 10000));
	assert_int_equal(s.client.counts[PTL_CONN_TLS_READY], 0);
	assert_int_equal(s.client.counts[PTL_CONN_ERROR], 1);
	assert_int_equal(s.client.counts[PTL_CONN_CLOSED], 1);
	assert_int_equal(s.server.counts[PTL_CONN_TLS_READY], 0);
	assert_false(s.verified);
	expect_no_conns();
	listen_cycle_free(&cycle);
}

static void
test_implicit_tls_sni(void **state)
{
	static const char *const names[] = {"localhost", "mx.b.test"};
	const char *cas[] = {cert_a, cert_b};

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct ptl_cycle cycle;
		struct ptl_instance inst;
		struct smtp_like s;
		uint16_t port = free_port();

		memset(&s, 0, sizeof(s));
		s.implicit = true;
		s.sni = names[i];
		s.ca_file = cas[i];
		s.verify = PTL_TLS_VERIFY_PEER;
		listen_cycle(&cycle, &inst, &s, port, PTL_TLS_IMPLICIT, 0, 0);
		connect_client(&s, port);
		assert_true(run_until(both_closed, &s, 10000));
		/* The right certificate was chosen: it verified. */
		assert_true(s.verified);
		assert_int_equal(s.client.counts[PTL_CONN_ERROR], 0);
		/* The module hears TLS_READY before any input. */
		assert_int_equal(s.server.order[0], PTL_CONN_TLS_READY);
		assert_int_equal(s.server.nlines, 2);
		assert_string_equal(s.server.lines[0], "EHLO x\r\n");
		expect_no_conns();
		listen_cycle_free(&cycle);
	}
}

static void
test_listener_rules(void **state)
{
	struct ptl_cycle cycle = {0}, next = {0};
	struct ptl_instance inst = {0}, inst2 = {0};
	struct ptl_module other = {.name = "othermod"};
	struct ptl_listen_spec spec;
	struct ptl_error err;
	char text[32];
	int fd;

	(void)state;
	cycle.pool = ptl_pool_create(0);
	next.pool = ptl_pool_create(0);
	assert_non_null(cycle.pool);
	inst.module = &test_module;
	inst.cycle = &cycle;
	inst2.module = &other;
	inst2.cycle = &cycle;
	memset(&spec, 0, sizeof(spec));
	snprintf(text, sizeof(text), "127.0.0.1:%u", (unsigned)free_port());
	spec.address.text = text;
	/* Only while init_master runs. */
	assert_int_equal(ptl_listener_add(&inst, &spec, on_accept, NULL, &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "init_master"));
	cycle.in_init_master = true;
	next.in_init_master = true;
	assert_int_equal(ptl_listener_add(&inst, &spec, on_accept, NULL, &err),
	                 PTL_OK);
	assert_int_equal(ptl_listener_add(&inst2, &spec, on_accept, NULL, &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "declared twice"));
	assert_non_null(strstr(err.text, "testmod"));
	assert_non_null(strstr(err.text, "othermod"));

	spec.address.text = "mail.example.com:25";
	assert_int_equal(ptl_listener_add(&inst, &spec, on_accept, NULL, &err),
	                 PTL_ERROR);
	spec.address.text = "[::1]:2525";
	spec.tls = PTL_TLS_IMPLICIT;
	assert_int_equal(ptl_listener_add(&inst, &spec, on_accept, NULL, &err),
	                 PTL_ERROR);
	assert_non_null(strstr(err.text, "implicit TLS"));

	/* Bind; a busy address fails with a message naming it. */
	assert_int_equal(ptl_listeners_bind(&cycle, NULL, &err), PTL_OK);
	fd = cycle.listeners[0]->fd;
	assert_true(fd >= 0);
	inst.cycle = &next;
	spec.address.text = text;
	spec.tls = PTL_TLS_NONE;
	assert_int_equal(ptl_listener_add(&inst, &spec, on_accept, NULL, &err),
	                 PTL_OK);
	{
		struct ptl_cycle third = {0};
		struct ptl_instance inst3 = {0};

		third.pool = ptl_pool_create(0);
		third.in_init_master = true;
		inst3.module = &test_module;
		inst3.cycle = &third;
		assert_int_equal(
		    ptl_listener_add(&inst3, &spec, on_accept, NULL, &err),
		    PTL_OK);
		assert_int_equal(ptl_listeners_bind(&third, NULL, &err),
		                 PTL_ERROR);
		assert_non_null(strstr(err.text, "bind 127.0.0.1:"));
		assert_non_null(strstr(err.text, "in use"));
		ptl_listeners_close(&third);
		ptl_pool_destroy(third.pool);
	}
	/* A reload takes the socket over instead of binding again. */
	assert_int_equal(ptl_listeners_bind(&next, &cycle, &err), PTL_OK);
	assert_int_equal(next.listeners[0]->fd, fd);
	assert_int_equal(cycle.listeners[0]->fd, -1);
	ptl_listeners_close(&cycle);
	assert_true(fcntl(fd, F_GETFD) >= 0);
	ptl_listeners_close(&next);
	ptl_pool_destroy(cycle.pool);
	ptl_pool_destroy(next.pool);
}

struct limit_probe {
	int fds[3];
	int eofs;
};

static bool
two_refused(void *arg)
{
	struct limit_probe *lp = arg;
	char buf[16];

	lp->eofs = 0;
	for (int i = 1; i < 3; i++) {
		ssize_t n =
		    recv(lp->fds[i], buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			lp->eofs++;
	}
	return lp->eofs == 2;
}

static void
test_listener_max_connections(void **state)
{
	struct ptl_cycle cycle;
	struct ptl_instance inst;
	struct limit_probe lp;
	struct smtp_like s;
	struct sockaddr_in sin;
	uint16_t port = free_port();
	char buf[16];

	(void)state;
	memset(&s, 0, sizeof(s));
	listen_cycle(&cycle, &inst, &s, port, PTL_TLS_NONE, 1, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	for (int i = 0; i < 3; i++) {
		lp.fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_int_equal(
		    connect(lp.fds[i], (struct sockaddr *)&sin, sizeof(sin)),
		    0);
	}
	assert_true(run_until(two_refused, &lp, 5000));
	assert_int_equal(s.accepted, 1);
	assert_int_equal(cycle.listeners[0]->nconns, 1);
	/* The first one is served. */
	assert_int_equal(read(lp.fds[0], buf, 8), 8);
	assert_memory_equal(buf, "220 hi\r\n", 8);
	for (int i = 0; i < 3; i++)
		close(lp.fds[i]);
	s.server.close_on_eof = true;
	expect_no_conns();
	assert_int_equal(cycle.listeners[0]->nconns, 0);
	listen_cycle_free(&cycle);
}

/* Clients from 127.0.0.1 and 127.0.0.2: the per-IP limit is per address. */
static int
connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(port);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return fd;
}

static bool
accepted_2(void *arg)
{
	return ((struct smtp_like *)arg)->accepted >= 2;
}

static void
test_listener_max_per_ip(void **state)
{
	struct ptl_cycle cycle;
	struct ptl_instance inst;
	struct limit_probe lp;
	struct smtp_like s;
	uint16_t port = free_port();

	(void)state;
	memset(&s, 0, sizeof(s));
	listen_cycle(&cycle, &inst, &s, port, PTL_TLS_NONE, 0, 1);
	lp.fds[0] = connect_from("127.0.0.1", port);
	lp.fds[1] = connect_from("127.0.0.1", port);
	lp.fds[2] = connect_from("127.0.0.2", port);
	assert_true(run_until(accepted_2, &s, 5000));
	assert_false(run_until(NULL, NULL, 50));
	/* The second from 127.0.0.1 was refused, 127.0.0.2 was served. */
	assert_int_equal(s.accepted, 2);
	assert_int_equal(cycle.listeners[0]->nconns, 2);
	for (int i = 0; i < 3; i++)
		close(lp.fds[i]);
	s.server.close_on_eof = true;
	expect_no_conns();
	assert_int_equal(cycle.listeners[0]->nconns, 0);
	listen_cycle_free(&cycle);
}

/* Out of descriptors: accepting pauses (no spin) and resumes by itself. */
static void
test_listener_emfile_pause(void **state)
{
	struct ptl_cycle cycle;
	struct ptl_instance inst;
	struct rlimit old, low;
	struct smtp_like s;
	uint16_t port = free_port();
	int fds[2], lowest;

	(void)state;
	memset(&s, 0, sizeof(s));
	listen_cycle(&cycle, &inst, &s, port, PTL_TLS_NONE, 0, 0);
	fds[0] = connect_from("127.0.0.1", port);
	fds[1] = connect_from("127.0.0.1", port);
	lowest = dup(0);
	assert_true(lowest >= 0);
	close(lowest);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	assert_false(run_until(accepted_2, &s, 150));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(s.accepted, 0);
	assert_null(cycle.listeners[0]->io);
	assert_non_null(cycle.listeners[0]->resume_timer);
	assert_true(run_until(accepted_2, &s, 2000));
	assert_non_null(cycle.listeners[0]->io);
	close(fds[0]);
	close(fds[1]);
	s.server.close_on_eof = true;
	expect_no_conns();
	listen_cycle_free(&cycle);
}

/* A handler that only peeks: a full buffer stops reading, no spinning. */
struct peeker {
	struct probe p;
	size_t seen;
	bool consume;
};

static void
peeker_handler(struct ptl_conn *c, enum ptl_conn_event ev, void *arg)
{
	struct peeker *pk = arg;
	const char *data;

	if (ev == PTL_CONN_READ) {
		pk->p.counts[ev]++;
		pk->seen = ptl_conn_peek(c, &data);
		if (pk->consume) {
			ptl_conn_consume(c, pk->seen);
			pk->seen = ptl_conn_peek(c, &data);
		}
		return;
	}
	probe_handler(c, ev, &pk->p);
}

static bool
peeker_done(void *arg)
{
	struct peeker *pk = arg;

	return ptl_conn_bytes_in(pk->p.c) == 20000 && pk->seen == 0;
}

static void
consume_later(struct ptl_timer *t, void *arg)
{
	struct peeker *pk = arg;

	(void)t;
	pk->consume = true;
	ptl_conn_consume(pk->p.c, pk->seen);
	pk->seen = 0;
}

static void
test_full_buffer_no_spin(void **state)
{
	struct sockaddr_storage peer;
	struct peeker pk;
	struct ptl_timer *t;
	socklen_t peerlen;
	char data[20000];
	int cfd, sfd;

	(void)state;
	memset(&pk, 0, sizeof(pk));
	memset(data, 'q', sizeof(data));
	tcp_pair(&cfd, &sfd, &peer, &peerlen);
	server_conn(sfd, &peer, peerlen, &plain_listener, &pk.p);
	ptl_conn_set_handler(pk.p.c, peeker_handler, &pk);
	write_all(cfd, data, sizeof(data));
	assert_false(run_until(NULL, NULL, 200));
	/* 8 KiB buffered, then silence: a handful of READs, not thousands. */
	assert_int_equal(pk.seen, 8192);
	assert_int_equal(ptl_conn_bytes_in(pk.p.c), 8192);
	assert_true(pk.p.counts[PTL_CONN_READ] <= 3);

	t = ptl_timer_new(consume_later, &pk);
	assert_non_null(t);
	ptl_timer_start(t, 0);
	assert_true(run_until(peeker_done, &pk, 5000));
	ptl_timer_free(t);

	/* A longer line limit grows the buffer. */
	ptl_conn_set_max_line(pk.p.c, 12000);
	ptl_conn_set_handler(pk.p.c, probe_handler, &pk.p);
	data[10998] = '\r';
	data[10999] = '\n';
	write_all(cfd, data, 11000);
	assert_true(run_until(probe_has_1_line, &pk.p, 5000));
	assert_int_equal(pk.p.declined, 0);

	pk.p.close_on_eof = true;
	close(cfd);
	assert_true(run_until(probe_closed, &pk.p, 5000));
	expect_no_conns();
}

static void
connect_refused_event(struct probe *p, enum ptl_conn_event ev)
{
	(void)p;
	(void)ev;
}

static void
test_connect_refused(void **state)
{
	struct sockaddr_in sin;
	struct ptl_error err;
	struct probe p = {0};

	(void)state;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(free_port());
	p.on_event = connect_refused_event;
	p.c = ptl_conn_connect((struct sockaddr *)&sin, sizeof(sin), NULL,
	                       probe_handler, &p, &err);
	assert_non_null(p.c);
	assert_true(run_until(probe_closed, &p, 5000));
	assert_int_equal(p.counts[PTL_CONN_CONNECTED], 0);
	assert_int_equal(p.counts[PTL_CONN_ERROR], 1);
	assert_int_equal(p.counts[PTL_CONN_CLOSED], 1);
	expect_no_conns();
}

static int
group_setup(void **state)
{
	struct ptl_error err;

	if (ptl_loop_init(&err) != PTL_OK)
		return -1;
	return tls_setup(state);
}

static int
group_teardown(void **state)
{
	(void)state;
	tls_teardown();
	ptl_loop_fini();
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lines_one_byte_at_a_time),
	    cmocka_unit_test(test_overlong_line_declined),
	    cmocka_unit_test(test_backpressure_drained),
	    cmocka_unit_test(test_eof_after_data),
	    cmocka_unit_test(test_close_flushes_output),
	    cmocka_unit_test(test_closed_exactly_once),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_timeout_then_abort_if_not_closed),
	    cmocka_unit_test(test_abort_all_sends_timeout),
	    cmocka_unit_test(test_input_budget),
	    cmocka_unit_test(test_pause_resume_delivers_buffered),
	    cmocka_unit_test(test_tls_build_errors),
	    cmocka_unit_test(test_starttls_discards_injected_input),
	    cmocka_unit_test(test_starttls_late_injection_fails_handshake),
	    cmocka_unit_test(test_starttls_client_verified),
	    cmocka_unit_test(test_starttls_client_wrong_name_fails),
	    cmocka_unit_test(test_implicit_tls_sni),
	    cmocka_unit_test(test_listener_rules),
	    cmocka_unit_test(test_listener_max_connections),
	    cmocka_unit_test(test_listener_max_per_ip),
	    cmocka_unit_test(test_listener_emfile_pause),
	    cmocka_unit_test(test_full_buffer_no_spin),
	    cmocka_unit_test(test_connect_refused),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
