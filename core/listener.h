/* SPDX-License-Identifier: MIT */
/* Internal: listening sockets bound by the master, served by workers. */
#ifndef PETREL_CORE_LISTENER_H
#define PETREL_CORE_LISTENER_H

#include <stdbool.h>
#include <sys/socket.h>
#include <petrel/petrel.h>

struct ptl_cycle;
struct ptl_ip_table;

/*
 * One declared listening socket. Allocated from the cycle pool by
 * ptl_listener_add(); the cycle must outlive every connection accepted
 * from it (a worker frees its cycle only after ptl_conn_count() is 0).
 *
 * Addresses are IP literals: "127.0.0.1:25", "[::1]:25", or "*:25", which
 * binds the IPv4 wildcard 0.0.0.0 only (declare "[::]:25" as well for
 * IPv6; IPv6 sockets are IPV6_V6ONLY so both can coexist).
 */
struct ptl_listener {
	struct ptl_listen_spec spec; /* strings copied into the cycle pool */
	ptl_accept_fn on_accept;
	void *arg;
	struct ptl_instance *inst;
	struct ptl_cycle *cycle;      /* owner; its tls serves this listener */
	struct sockaddr_storage addr; /* parsed spec.address */
	socklen_t addrlen;
	int fd;            /* bound socket, -1 before bind */
	struct ptl_io *io; /* worker: accept watcher */
	unsigned nconns;   /* worker: open connections from it */

	/* Bookkeeping private to listener.c. */
	struct ptl_listener *taken_from; /* master: fd came from this one */
	struct ptl_timer *resume_timer;  /* worker: accept paused (EMFILE) */
	struct ptl_ip_table *ips;        /* worker: per-IP counts */
	int64_t limit_logged_ms;         /* rate limit of limit messages */
	unsigned limit_suppressed;
	bool fd_limit_logged;
};

/*
 * Master: bind every listener of @new_cycle, taking over the socket of a
 * listener of @old_cycle (may be NULL) with the same address instead of
 * binding again. Sockets of @old_cycle not taken over stay open until
 * ptl_listeners_close(old).
 */
int ptl_listeners_bind(struct ptl_cycle *new_cycle, struct ptl_cycle *old_cycle,
                       struct ptl_error *err);
/* Close every listening socket of @cycle not taken over by a newer one. */
void ptl_listeners_close(struct ptl_cycle *cycle);
/*
 * Worker (or single process): start accepting on every listener of
 * @cycle. Accepted sockets past spec.max_connections or spec.max_per_ip
 * (counted per process) are closed at once. On PTL_ERROR some listeners
 * may be started: call ptl_listeners_stop().
 */
int ptl_listeners_start(struct ptl_cycle *cycle, struct ptl_error *err);
/*
 * Worker: stop accepting (graceful stop) and close this process's copies of
 * the sockets not taken over by a newer cycle. Open connections go on.
 */
void ptl_listeners_stop(struct ptl_cycle *cycle);
/* Internal (conn.c): a connection accepted from @l closed its socket. */
void ptl_listener_conn_closed(struct ptl_listener *l,
                              const struct sockaddr *peer);

/* Worker: number of open connections (accepted and outgoing). */
unsigned ptl_conn_count(void);
/* Worker: send TIMEOUT to every connection (used at the drain deadline),
 * then abort those still open. */
void ptl_conn_abort_all(void);
/* Internal: wrap an accepted socket. Returns NULL on failure (fd closed). */
struct ptl_conn *ptl_conn_new_accepted(int fd, struct ptl_listener *l,
                                       const struct sockaddr *peer,
                                       socklen_t peerlen);

#endif
