/* SPDX-License-Identifier: MIT */
/* Internal: listening sockets bound by the master, served by workers. */
#ifndef PETREL_CORE_LISTENER_H
#define PETREL_CORE_LISTENER_H

#include <petrel/petrel.h>

struct ptl_cycle;

struct ptl_listener {
	struct ptl_listen_spec spec; /* strings copied into the cycle pool */
	ptl_accept_fn on_accept;
	void *arg;
	struct ptl_instance *inst;
	int fd;                 /* bound socket, -1 before bind */
	struct ptl_io *io;      /* worker: accept watcher */
	unsigned nconns;        /* worker: open connections from it */
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
/* Worker: start accepting on every listener of @cycle. */
int ptl_listeners_start(struct ptl_cycle *cycle, struct ptl_error *err);
/* Worker: stop accepting (graceful stop); close the sockets. */
void ptl_listeners_stop(struct ptl_cycle *cycle);

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
