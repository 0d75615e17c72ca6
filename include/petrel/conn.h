/* SPDX-License-Identifier: MIT */
/* Listeners and buffered non-blocking connections with TLS. */
#ifndef PETREL_CONN_H
#define PETREL_CONN_H

#include <stdbool.h>
#include <sys/socket.h>
#include <petrel/core.h>
#include <petrel/config.h>
#include <petrel/log.h>
#include <petrel/module.h>
#include <petrel/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * All functions here run on the loop thread of a worker, helper or
 * single process, except the listener declaration (master, init_master).
 */

/** A connection. Owned by the core; valid until its CLOSED event. */
struct ptl_conn;

/** Events delivered to a connection's handler. */
enum ptl_conn_event {
	/** Input is buffered: read it with ptl_conn_read_line()/peek(). */
	PTL_CONN_READ = 1,
	/** Write queue fell below the low-water mark after being above. */
	PTL_CONN_DRAINED,
	/** TLS handshake completed (implicit TLS or after starttls). */
	PTL_CONN_TLS_READY,
	/**
	 * Idle or total timeout expired (once); the handler should say
	 * goodbye and close. A connection still not closed 30 s later is
	 * aborted.
	 */
	PTL_CONN_TIMEOUT,
	/** Peer closed its side; buffered input was delivered before. */
	PTL_CONN_EOF,
	/** I/O or TLS error (details logged); the connection is closing. */
	PTL_CONN_ERROR,
	/** Outgoing connect completed (client connections). */
	PTL_CONN_CONNECTED,
	/**
	 * Last event: the connection is being freed. Release everything that
	 * points to it. Always delivered exactly once.
	 */
	PTL_CONN_CLOSED,
};

/** The handler of one connection. */
typedef void (*ptl_conn_fn)(struct ptl_conn *c, enum ptl_conn_event ev,
                            void *arg);

/** TLS mode of a listener. */
enum ptl_tls_mode {
	PTL_TLS_NONE = 0,     /**< plaintext; STARTTLS may upgrade */
	PTL_TLS_IMPLICIT = 1, /**< handshake right after accept (RFC 8314) */
};

/** Limits of one connection; zero fields take the defaults shown. */
struct ptl_conn_limits {
	int64_t idle_timeout_ms;  /**< no input and no output progress for
	                             this long: TIMEOUT (300s); also bounds
	                             a TLS handshake */
	int64_t total_timeout_ms; /**< session age limit: TIMEOUT (3600s) */
	uint64_t max_input_bytes; /**< input budget; past it: ERROR (1 GiB) */
	size_t max_line;          /**< longest line read_line accepts,
	                             terminator included (4096; at most
	                             1 MiB) */
	size_t input_buffer;      /**< read buffer bytes (8 KiB; raised to
	                             max_line + 2 when smaller) */
	size_t write_high_water;  /**< pending output that pauses reading and
	                             makes ptl_conn_write() return PTL_AGAIN
	                             (64 KiB) */
};

/** Called in a worker when a listener accepted @p c. Set its handler. */
typedef void (*ptl_accept_fn)(struct ptl_conn *c, void *arg);

/** A listener declaration, copied by ptl_listener_add(). */
struct ptl_listen_spec {
	struct ptl_conf_address address; /**< where to bind */
	enum ptl_tls_mode tls;           /**< implicit TLS or not */
	int backlog;                     /**< 0: 511 */
	struct ptl_conn_limits limits;   /**< applied to accepted conns */
	unsigned max_connections;        /**< per process (0: no limit) */
	unsigned max_per_ip;             /**< per process (0: no limit) */
};

/**
 * Declare a listening socket for this generation. Master, init_master
 * only: the master binds it (as root, so ports < 1024 work), keeps it
 * across reloads when the address is unchanged, and in each worker calls
 * @p on_accept(@p conn, @p arg) for every accepted connection.
 * The host must be an IP literal or "*" (the IPv4 wildcard 0.0.0.0; add
 * "[::]:port" for IPv6). Implicit TLS needs a certificate in the "tls"
 * section. Connections past max_connections / max_per_ip are closed at
 * once, before on_accept. With implicit TLS the handler gets TLS_READY
 * before any READ.
 * @return PTL_OK, or PTL_ERROR (bad address, address declared twice,
 * implicit TLS without a certificate).
 */
PTL_API int ptl_listener_add(struct ptl_instance *inst,
                             const struct ptl_listen_spec *spec,
                             ptl_accept_fn on_accept, void *arg,
                             struct ptl_error *err) PTL_WUR;

/** Set the handler that receives @p c's events. */
PTL_API void ptl_conn_set_handler(struct ptl_conn *c, ptl_conn_fn fn,
                                  void *arg);

/**
 * Start a non-blocking outgoing TCP connection to @p addr (IPv4 or IPv6
 * socket address). Events go to @p fn: CONNECTED, or ERROR then CLOSED.
 * @p limits may be NULL (defaults).
 * @return the connection, or NULL (err filled).
 */
PTL_API struct ptl_conn *ptl_conn_connect(const struct sockaddr *addr,
                                          socklen_t addrlen,
                                          const struct ptl_conn_limits *limits,
                                          ptl_conn_fn fn, void *arg,
                                          struct ptl_error *err) PTL_WUR;

/**
 * Read the next complete line (ending in LF) from the input buffer.
 * *@p line_out points into the buffer and is valid until the next read
 * call; *@p len_out includes the line terminator (CRLF or bare LF: the
 * caller decides whether a bare LF is acceptable).
 * @return PTL_OK (a line), PTL_AGAIN (no complete line yet), or
 * PTL_DECLINED (the line exceeded max_line: its bytes are discarded up to
 * and including the next LF and the caller should answer with an error).
 */
PTL_API int ptl_conn_read_line(struct ptl_conn *c, const char **line_out,
                               size_t *len_out) PTL_WUR;

/**
 * Borrow the buffered input without consuming it.
 * @return number of bytes at *@p data_out (0 when none).
 */
PTL_API size_t ptl_conn_peek(struct ptl_conn *c, const char **data_out);
/** Consume @p n bytes of what ptl_conn_peek() showed. */
PTL_API void ptl_conn_consume(struct ptl_conn *c, size_t n);

/**
 * Queue @p len bytes for sending (copied; the queue holds only unsent
 * bytes). While more than write_high_water bytes are queued, reading
 * pauses; DRAINED follows once the queue falls to a quarter of it.
 * @return PTL_OK; PTL_AGAIN when the queue is over the high-water mark
 * (the data WAS queued; wait for DRAINED before writing more bulk data);
 * PTL_ERROR when out of memory, when the queue would exceed 16 times the
 * high-water mark (nothing is queued), or the connection is closing.
 */
PTL_API int ptl_conn_write(struct ptl_conn *c, const void *data,
                           size_t len) PTL_WUR;
/** printf into the write queue; results as ptl_conn_write(). */
PTL_API int ptl_conn_printf(struct ptl_conn *c, const char *fmt, ...)
    PTL_PRINTF(2, 3) PTL_WUR;
/** Bytes queued and not yet sent. */
PTL_API size_t ptl_conn_pending(const struct ptl_conn *c);

/** Stop delivering READ events (e.g. while waiting for a service). */
PTL_API void ptl_conn_pause(struct ptl_conn *c);
/** Resume READ events; buffered input is delivered soon after. */
PTL_API void ptl_conn_resume(struct ptl_conn *c);

/**
 * Upgrade a plaintext server-side connection to TLS (STARTTLS/STLS).
 * Every input byte buffered before the call is discarded (CVE-2011-0411:
 * commands pipelined after STARTTLS must not run inside TLS). Output
 * queued before the call (the "220 ready" reply: queue it first) is sent
 * in clear; anything written after the call goes out encrypted. No READ
 * until TLS_READY; TLS_READY or ERROR follows. A TLS connection never
 * falls back to cleartext: any TLS error ends it.
 * @return PTL_OK (handshake started) or PTL_ERROR (err filled).
 */
PTL_API int ptl_conn_starttls(struct ptl_conn *c,
                              struct ptl_error *err) PTL_WUR;

/**
 * Whether ptl_conn_starttls() can work on @p c: a plaintext, open,
 * server-side connection of a configuration that has a certificate.
 * Protocols offer STARTTLS/STLS only then, instead of answering "ready"
 * and dropping the client. Since ABI 1.1.
 */
PTL_API bool ptl_conn_starttls_available(const struct ptl_conn *c);

/** Certificate checking of a client-side TLS connection. */
enum ptl_tls_verify {
	PTL_TLS_VERIFY_NONE = 0, /**< encrypt, accept any certificate */
	PTL_TLS_VERIFY_PEER = 1, /**< chain and host name must verify */
};

/**
 * Start TLS as a client on @p c (after the peer's "220 ready" was read;
 * buffered input is discarded). @p sni is the server name sent and, with
 * PTL_TLS_VERIFY_PEER, checked; @p ca_file NULL uses the system store.
 * TLS_READY or ERROR follows.
 * @return PTL_OK or PTL_ERROR.
 */
PTL_API int ptl_conn_starttls_client(struct ptl_conn *c, const char *sni,
                                     enum ptl_tls_verify verify,
                                     const char *ca_file,
                                     struct ptl_error *err) PTL_WUR;

/** Whether @p c is encrypted (handshake complete). */
PTL_API bool ptl_conn_is_tls(const struct ptl_conn *c);
/** TLS protocol name ("TLSv1.3") or NULL when not TLS. */
PTL_API const char *ptl_conn_tls_version(const struct ptl_conn *c);
/** TLS cipher name or NULL. */
PTL_API const char *ptl_conn_tls_cipher(const struct ptl_conn *c);
/** Whether the peer certificate verified (client side), else false. */
PTL_API bool ptl_conn_tls_verified(const struct ptl_conn *c);

/**
 * Close after the queued output is sent (at most 10 s, then the rest is
 * dropped). No event but CLOSED follows, from a deferred call (never from
 * inside this function), so @p c stays usable until the handler returns.
 * During a connect or a TLS handshake this is ptl_conn_abort().
 * Safe inside the handler.
 */
PTL_API void ptl_conn_close(struct ptl_conn *c);
/** Close now, dropping queued output; CLOSED follows (deferred). Safe
 * inside the handler. */
PTL_API void ptl_conn_abort(struct ptl_conn *c);

/** Replace @p c's timeouts (ms; 0 keeps the current one). */
PTL_API void ptl_conn_set_timeouts(struct ptl_conn *c, int64_t idle_ms,
                                   int64_t total_ms);
/** Replace the longest line accepted by ptl_conn_read_line() (at most
 * 1 MiB; the input buffer grows when needed). */
PTL_API void ptl_conn_set_max_line(struct ptl_conn *c, size_t max_line);

/** Pool living as long as the connection. */
PTL_API struct ptl_pool *ptl_conn_pool(const struct ptl_conn *c);
/** Unique id of the connection in this server's logs, "PID.N", e.g.
 * "4711.12" (N counts the connections of the process). */
PTL_API const char *ptl_conn_id(const struct ptl_conn *c);
/** Peer IP address as text ("192.0.2.1", "2001:db8::1"). */
PTL_API const char *ptl_conn_peer_ip(const struct ptl_conn *c);
/** Peer port. */
PTL_API uint16_t ptl_conn_peer_port(const struct ptl_conn *c);
/** Peer socket address. */
PTL_API const struct sockaddr *ptl_conn_peer_addr(const struct ptl_conn *c,
                                                  socklen_t *len_out);
/** Local address as text and port. */
PTL_API const char *ptl_conn_local_ip(const struct ptl_conn *c);
PTL_API uint16_t ptl_conn_local_port(const struct ptl_conn *c);
/** Total bytes received so far. */
PTL_API uint64_t ptl_conn_bytes_in(const struct ptl_conn *c);

/**
 * Log one line prefixed with the connection id (see ptl_log()).
 */
PTL_API void ptl_conn_log(const struct ptl_conn *c, enum ptl_log_level level,
                          const char *fmt, ...) PTL_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif
#endif
