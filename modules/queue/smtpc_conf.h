/* SPDX-License-Identifier: MIT */
/* The relay part of the queue module's config: the SMTP client's keys. */
#ifndef PETREL_QUEUE_SMTPC_CONF_H
#define PETREL_QUEUE_SMTPC_CONF_H

#include <stdbool.h>
#include <stdint.h>

#include <petrel/config.h>

/*
 * How the queue module embeds this
 * --------------------------------
 * The queue module owns its whole key table (queue_conf.c). The outbound
 * SMTP client's settings live in one object under it, "relay":
 *
 *     "queue": { ..., "relay": { "helo_name": "mx.example.org",
 *                                "tls": "may", "max_hosts": 5 } }
 *
 * queue_conf.c declares it as one key of its table:
 *
 *     { .name = "relay", .type = PTL_CONF_OBJECT,
 *       .offset = offsetof(struct queue_conf, relay),
 *       .sub = smtpc_conf_keys, .sub_size = sizeof(struct smtpc_conf),
 *       .doc = "Outbound SMTP client (see docs/relay.md)." },
 *
 * with a `struct smtpc_conf relay;` member in its config struct, and
 * passes `&conf->relay` as the `conf` argument of relay_engine_create().
 * An absent "relay" object is parsed as {} so every default applies.
 * Every rule is in the key table (types, bounds, validators): there is
 * no cross-key check to call.
 *
 * Per-destination settings (smarthost, port, TLS policy, CA file, AUTH
 * credentials) are the queue module's routes (struct relay_route); the
 * keys here are the defaults for MX delivery and for the whole client.
 */

/** Address families to connect to; the index in smtpc_ip_version_names. */
enum smtpc_ip_version {
	SMTPC_IP_ANY = 0,  /* IPv4 addresses first, then IPv6 */
	SMTPC_IP_IPV4 = 1, /* no AAAA lookups */
	SMTPC_IP_IPV6 = 2, /* no A lookups */
};

extern const char *const smtpc_ip_version_names[];
/** "may", "none", "encrypt", "verify": enum relay_tls_policy order. */
extern const char *const smtpc_tls_policy_names[];

/** The "relay" object. Durations are milliseconds. */
struct smtpc_conf {
	const char *helo_name;    /**< NULL: server.hostname */
	int64_t connect_timeout;  /**< TCP connect */
	int64_t greeting_timeout; /**< the 220 greeting (RFC 5321 4.5.3.2.1) */
	int64_t command_timeout;  /**< EHLO, STARTTLS, AUTH, MAIL, RCPT, RSET,
	                             and a TLS handshake (4.5.3.2.2, .3) */
	int64_t data_timeout;     /**< reply to DATA (4.5.3.2.4) */
	int64_t data_block_timeout; /**< no progress sending data (.5) */
	int64_t data_done_timeout;  /**< reply to the final "." (.6) */
	int64_t quit_timeout;       /**< reply to QUIT before closing */
	int64_t max_hosts;          /**< connection attempts per delivery */
	int tls;                    /**< enum relay_tls_policy, for MX */
	const char *ca_file;        /**< for "verify"; NULL: system store */
	int64_t mx_port;            /**< port of MX hosts and of routes that
	                               give none: 25; a test/lab knob */
	int ip_version;             /**< enum smtpc_ip_version */
	int64_t reuse_messages;     /**< messages per cached connection; 0:
	                               no connection reuse */
	int64_t reuse_idle;         /**< how long an idle connection is kept */
};

/** Keys of the "relay" object; ends with a NULL name. */
extern const struct ptl_conf_key smtpc_conf_keys[];

#endif
