/* SPDX-License-Identifier: MIT */
/* Internal: the connection struct and what the conn*.c files share. */
#ifndef PETREL_CORE_CONN_INTERNAL_H
#define PETREL_CORE_CONN_INTERNAL_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <petrel/petrel.h>

/*
 * How a connection works
 *
 * Events reach the handler from three places only: the fd watcher, the
 * connection's timer and its deferred "kick" (ptl_defer). Public functions
 * called by a handler never call the handler back: they change state and
 * schedule a kick. At most one kick is pending per connection and the
 * connection is freed only inside its kick (after CLOSED), so a deferred
 * call never sees freed memory. When ptl_defer() runs out of memory the
 * kick rides on the connection's own timer, which needs none.
 *
 * Watched events are recomputed from the state after every step
 * (conn_update), so pausing, backpressure and TLS want-read/want-write
 * never leave a level-triggered watcher spinning.
 */

#define CONN_IDLE_TIMEOUT_MS  ((int64_t)300 * 1000)
#define CONN_TOTAL_TIMEOUT_MS ((int64_t)3600 * 1000)
#define CONN_MAX_INPUT        ((uint64_t)1 << 30)
#define CONN_MAX_LINE         4096
#define CONN_INPUT_BUFFER     8192
#define CONN_HIGH_WATER       (64 * 1024)

#define CONN_MAX_LINE_LIMIT   (1024 * 1024)
#define CONN_INPUT_LIMIT      (16 * 1024 * 1024)
#define CONN_HIGH_WATER_LIMIT (64 * 1024 * 1024)

enum conn_state {
	CONN_CONNECTING, /* outgoing connect in progress */
	CONN_OPEN,
	CONN_CLOSING, /* ptl_conn_close(): flushing, then lingering */
	CONN_DEAD,    /* socket closed, CLOSED pending */
};

enum conn_tls {
	CONN_TLS_NONE,
	CONN_TLS_FLUSH_CLEAR, /* starttls: cleartext reply still queued */
	CONN_TLS_HANDSHAKE,
	CONN_TLS_ACTIVE,
};

/* Work for the next kick. */
#define KICK_FLUSH     0x1u
#define KICK_READ      0x2u /* read the socket (TLS data already buffered) */
#define KICK_DELIVER   0x4u /* resume(): deliver buffered input */
#define KICK_HANDSHAKE 0x8u

struct conn_chunk {
	struct conn_chunk *next;
	char *pos;
	char *last;
	char *end;
	char data[];
};

struct ptl_conn {
	struct ptl_conn *prev, *next; /* every connection of the process */
	struct ptl_pool *pool;
	int fd;
	struct ptl_io *io;
	unsigned io_events;
	struct ptl_timer *timer;
	int64_t timer_at; /* when it fires; 0: not armed by us */

	ptl_conn_fn handler;
	void *handler_arg;
	struct ptl_listener *listener; /* counted against it while set */
	SSL_CTX *server_ctx;           /* for STARTTLS; NULL: no certs */

	struct ptl_conn_limits limits;
	enum conn_state state;
	enum conn_tls tls;
	SSL *ssl;
	bool tls_server;
	bool tls_verify;
	bool tls_verified;
	unsigned hs_want;      /* handshake waits for this readiness */
	bool read_wants_write; /* SSL_read said WANT_WRITE */
	bool write_wants_read; /* SSL_write said WANT_READ */
	size_t clear_left;     /* CONN_TLS_FLUSH_CLEAR: bytes to send */

	struct ptl_buf in;
	bool in_full;    /* buffer full, nothing consumed: stop reading */
	bool discarding; /* dropping an over-long line up to its LF */
	bool paused;
	bool eof_seen;
	bool eof_delivered;
	bool fail_pending; /* a failure to report from the next kick */
	uint64_t bytes_in;

	struct conn_chunk *wq_head, *wq_tail;
	size_t pending;
	bool want_drained;

	int64_t created_ms;
	int64_t active_ms; /* last input or output progress */
	int64_t timeout_at;
	int64_t close_deadline;
	int64_t linger_deadline;
	bool timeout_sent;
	bool lingering;
	bool finishing; /* delivering CLOSED */

	unsigned kick;
	bool kick_scheduled;
	bool kick_via_timer;

	char id[32];
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char peer_ip[INET6_ADDRSTRLEN];
	uint16_t peer_port;
	char local_ip[INET6_ADDRSTRLEN];
	uint16_t local_port;
};

/* conn.c: lifecycle, events, timers, close and abort. */
void conn_log(const struct ptl_conn *c, enum ptl_log_level level,
              const char *fmt, ...) PTL_PRINTF(3, 4);
/* Ask for a kick that does @what (KICK_*); never calls the handler. */
void conn_kick(struct ptl_conn *c, unsigned what);
/* Re-derive the watched events and the timer; never calls the handler. */
void conn_update(struct ptl_conn *c);
void conn_emit(struct ptl_conn *c, enum ptl_conn_event ev);
/* An error ends the connection: ERROR (unless closing), then CLOSED. */
void conn_fail(struct ptl_conn *c);

/* conn_io.c: the input buffer and the write queue. */
bool conn_may_read(const struct ptl_conn *c);
/* Output that may still go out: not what waits behind a STARTTLS. */
size_t conn_flushable(const struct ptl_conn *c);
void conn_queue_consume(struct ptl_conn *c, size_t n);
void conn_queue_free(struct ptl_conn *c);
/* PTL_OK (maybe blocked) or PTL_ERROR (the connection failed). */
int conn_flush(struct ptl_conn *c);
/* Like conn_read_tls(); through TLS when it is active. */
int conn_read_socket(struct ptl_conn *c, size_t *got);
/* New bytes arrived: account them. PTL_ERROR: the connection failed. */
int conn_input(struct ptl_conn *c, size_t got);

/* conn_tls.c: handshakes and the SSL side of reads and writes. */
int conn_tls_setup(struct ptl_conn *c, SSL_CTX *ctx, bool server,
                   struct ptl_error *err);
void conn_handshake(struct ptl_conn *c);
/* PTL_OK (*got bytes, maybe 0), PTL_DONE (EOF after them), PTL_ERROR. */
int conn_read_tls(struct ptl_conn *c, size_t *got);
/* Like conn_flush(), for CONN_TLS_ACTIVE. */
int conn_flush_tls(struct ptl_conn *c);

#endif
