/* SPDX-License-Identifier: MIT */
/* Delivery status notifications (RFC 3464 multipart/report). Pure. */
#ifndef PETREL_QUEUE_DSN_H
#define PETREL_QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Action of one recipient in a report (RFC 3464 2.3.3). */
enum queue_dsn_action {
	QUEUE_DSN_FAILED = 0,
	QUEUE_DSN_DELAYED = 1,
	QUEUE_DSN_DELIVERED = 2, /* stored locally */
	QUEUE_DSN_RELAYED = 3,   /* handed to the next hop */
};

struct queue_dsn_rcpt {
	const char *address;
	const char *orcpt; /* "rfc822;a@b" as received, or NULL */
	enum queue_dsn_action action;
	const char *diagnostic; /* remote reply or our reason, or NULL */
	const char *remote_mta; /* or NULL */
	int64_t last_attempt;   /* wall-clock seconds, 0: unknown */
};

/** A report about one message. */
struct queue_dsn {
	const char *reporting_mta; /* this server's host name */
	const char *queue_id;      /* of the original message */
	const char *message_id;    /* Message-ID of the report, no <> */
	const char *boundary;      /* MIME boundary, unique */
	const char *sender;        /* original sender: the report's To */
	const char *envid;         /* or NULL */
	int64_t arrival;           /* wall-clock seconds */
	int64_t now;
	int64_t retry_until; /* for delayed recipients, 0: omit */
	bool utf8;           /* RFC 6533 global types */
	bool full;           /* include the whole message, else its
	                        header only */
	size_t nrcpts;
	const struct queue_dsn_rcpt *rcpts;
};

/** Where the report goes: returns 0 or -1. */
typedef int (*queue_dsn_write_fn)(void *ctx, const void *p, size_t len);

/**
 * Write the whole report (header, text part, delivery-status part,
 * returned message or header read from @p orig_fd, @p orig_size bytes
 * from offset 0), lines ending in CRLF.
 * @return 0, or -1 with @p why filled.
 */
int queue_dsn_compose(const struct queue_dsn *d, int orig_fd,
                      uint64_t orig_size, queue_dsn_write_fn write, void *ctx,
                      char *why, size_t why_size);

/**
 * The RFC 3463 status for @p action from a reply text ("550 5.1.1 ..."):
 * its enhanced code with the class set to fit the action, else X.0.0;
 * "delivery time expired" gives 5.4.7. @p out holds 16 bytes.
 */
void queue_dsn_status(enum queue_dsn_action action, const char *diagnostic,
                      char out[16]);

/** Copy @p in into @p out as printable ASCII for a header (controls
 *  become spaces), truncated to fit. */
void queue_dsn_clean(char *out, size_t size, const char *in, bool utf8);

#endif
