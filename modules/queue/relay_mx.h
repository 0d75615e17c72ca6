/* SPDX-License-Identifier: MIT */
/* Destination resolution: route host or MX hosts, then their addresses. */
#ifndef PETREL_QUEUE_RELAY_MX_H
#define PETREL_QUEUE_RELAY_MX_H

#include <stdbool.h>
#include <stdint.h>

#include <petrel/petrel.h>
#include <petrel/resolver.h>

#include "relay.h"

/* MX hosts kept of one answer (the resolver gives at most 100), and
 * addresses kept per host: far more than max_hosts lets anyone try. */
#define RELAY_MX_HOSTS_MAX 32
#define RELAY_MX_ADDRS_MAX 16
/* Room for a host name (253) and its NUL. */
#define RELAY_HOST_MAX   256
#define RELAY_REASON_MAX 512

/**
 * printf into @p out (truncating) and make the result one printable
 * ASCII line: text that ends up in bounces and logs. @return @p out.
 */
char *relay_text(char *out, size_t cap, const char *fmt, ...) PTL_PRINTF(3, 4);

/** A uniform random number below @p bound (> 0). */
typedef uint32_t (*relay_rand_fn)(uint32_t bound, void *arg);

/** One MX host, in the order to try. */
struct relay_mx_host {
	char name[RELAY_HOST_MAX];
	uint16_t preference;
};

/**
 * Order MX records for delivery (pure): by preference, equal preferences
 * shuffled (RFC 5321 5.1); records naming @p self (this server's name)
 * and every one of equal or higher preference dropped (5.1: mail must
 * not loop). At most @p cap hosts are written to @p out.
 * @return PTL_OK (*@p n_out hosts), PTL_DECLINED (a null MX, RFC 7505:
 * the domain takes no mail), PTL_DONE (every host was dropped: mail for
 * the domain loops back to us).
 */
int relay_mx_order(const struct ptl_dns_mx *mx, size_t n, const char *self,
                   relay_rand_fn rnd, void *rnd_arg, struct relay_mx_host *out,
                   size_t cap, size_t *n_out);

/** What resolution is for. Strings are borrowed for the whole run. */
struct relay_mx_params {
	const struct ptl_resolver_methods *dns; /* NULL: no resolver */
	void *dns_inst;
	const char *domain;     /* recipients' domain, or "[192.0.2.1]" */
	const char *route_host; /* smarthost name or IP, or NULL: MX */
	const char *self;       /* our host name, for the loop check */
	bool want_ipv4, want_ipv6;
	relay_rand_fn rnd;
	void *rnd_arg;
	/* A lookup finished: call relay_mx_next() again. */
	void (*wake)(void *arg);
	void *arg;
};

enum relay_mx_phase {
	RELAY_MX_INIT = 0,
	RELAY_MX_QUERY_MX,   /* MX lookup of the domain running */
	RELAY_MX_HOSTS,      /* host list known */
	RELAY_MX_QUERY_ADDR, /* A/AAAA of the current host running */
	RELAY_MX_ADDRS,      /* addresses of the current host known */
	RELAY_MX_END,        /* exhausted; status and reason set */
};

/** Resolution state of one delivery. Owned by its delivery. */
struct relay_mx {
	struct relay_mx_params p;
	enum relay_mx_phase phase;
	bool implicit; /* no MX: the domain is its own mail host */

	struct relay_mx_host hosts[RELAY_MX_HOSTS_MAX];
	size_t nhosts, host_i;

	struct ptl_dns_query *q_mx, *q_a, *q_aaaa;
	bool a_pending, aaaa_pending;
	struct ptl_dns_addr addrs[RELAY_MX_ADDRS_MAX];
	size_t naddrs, addr_i;
	size_t n_addr_found; /* addresses found over every host */
	bool tempfail;       /* some address lookup failed temporarily */
	char tempfail_reason[RELAY_REASON_MAX];

	/* The address handed out by relay_mx_next(). */
	const char *cur_host;
	struct ptl_dns_addr cur_addr;

	/* At RELAY_MX_END: */
	enum relay_rcpt_status status;
	char reason[RELAY_REASON_MAX];
};

/** Prepare @p mx (no lookup yet). */
void relay_mx_init(struct relay_mx *mx, const struct relay_mx_params *p);

/**
 * The next address to try.
 * @return PTL_OK (cur_host/cur_addr set), PTL_AGAIN (a lookup runs;
 * p.wake follows, never from inside this call), PTL_DONE (nothing left:
 * status/reason say why; a DEFERRED reason is generic when addresses
 * were handed out: the caller knows better).
 */
int relay_mx_next(struct relay_mx *mx);

/** Cancel pending lookups; wake will not run. */
void relay_mx_cancel(struct relay_mx *mx);

#endif
