/* SPDX-License-Identifier: MIT */
/* Seams between the files of the resolver module. */
#ifndef PETREL_RESOLVER_INTERNAL_H
#define PETREL_RESOLVER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <petrel/petrel.h>
#include <petrel/resolver.h>

/* Records kept per answer; the rest are dropped (SECURITY.md #8). */
#define RESOLVER_MAX_RECORDS 100
/* CNAMEs followed inside one answer. */
#define RESOLVER_MAX_CNAMES 8
/* Longest name in text form, without the trailing dot (255 on the wire). */
#define RESOLVER_NAME_MAX 253
/* Size of a buffer that holds any name in text form plus its NUL. */
#define RESOLVER_NAME_BUF (RESOLVER_NAME_MAX + 1)

/* ---- Configuration (resolver_module.c) ------------------------------ */

struct resolver_conf {
	struct ptl_conf_list servers; /* const char *: "ip" or "ip:port" */
	int64_t timeout_ms;
	int64_t tries;
	int64_t cache_size;
	uint64_t cache_memory;
	int64_t min_ttl_ms;
	int64_t max_ttl_ms;
	int64_t negative_ttl_ms;
	bool edns;
	bool dnssec_ad;
	/*
	 * Not a key: the servers as c-ares CSV ("[::1]:53,192.0.2.1:53"),
	 * from "servers" or read from /etc/resolv.conf by init_master (as
	 * root, before any chroot), inherited by the children.
	 */
	const char *servers_csv;
};

/* ---- Names (resolver_parse.c) ---------------------------------------- */

/* Character classes of a name. */
enum resolver_name_class {
	RESOLVER_NAME_HOST,  /* letters, digits, '-' */
	RESOLVER_NAME_OWNER, /* also '_' */
};

/*
 * Check @name (text, optional trailing dot) and write it lower case
 * without the trailing dot into @out (RESOLVER_NAME_BUF bytes).
 * Returns PTL_OK, or PTL_ERROR with *why_out a static reason.
 */
int resolver_name_normalize(const char *name, enum resolver_name_class cls,
                            char *out, const char **why_out);

/* The name class a lookup of @type requires (see resolver.h). */
enum resolver_name_class resolver_name_class_for(enum ptl_dns_type type);

/*
 * Write the reverse name of @addr (in-addr.arpa or ip6.arpa; a mapped
 * IPv4 address counts as IPv4) into @out (RESOLVER_NAME_BUF bytes).
 * Returns PTL_OK, or PTL_ERROR for another family.
 */
int resolver_ptr_name(const struct sockaddr *addr, char *out);

/* Whether @type is one of enum ptl_dns_type. */
bool resolver_type_supported(int type);
/* "MX", "A", ... for logs. */
const char *resolver_type_name(enum ptl_dns_type type);
/* "OK", "NXDOMAIN", ... for logs. */
const char *resolver_status_name(enum ptl_dns_status status);

/* ---- Answers (resolver_parse.c) -------------------------------------- */

/*
 * One answer: the result handed to completions, with its records and
 * strings in the same allocation. Shared by the cache and the lookups
 * being delivered: reference counted, freed at zero.
 */
struct resolver_answer {
	unsigned refs;
	/* ttl holds the TTL from the wire (see has_negative_ttl). */
	struct ptl_dns_result result;
	/* NXDOMAIN/NODATA came with an SOA, so result.ttl may be cached. */
	bool has_negative_ttl;
	/* Records the answer had beyond RESOLVER_MAX_RECORDS. */
	size_t dropped;
	/* Size of the allocation, for the cache's memory bound. */
	size_t size;
};

/*
 * Parse the DNS response @msg (@len bytes) to a query for @type at @name
 * (normalized). Always makes an answer: OK, NXDOMAIN, NODATA, TEMPFAIL
 * for a failure rcode, PERMFAIL with the reason for anything malformed.
 * Returns it with one reference, or NULL when out of memory.
 */
struct resolver_answer *resolver_parse(const unsigned char *msg, size_t len,
                                       const char *name,
                                       enum ptl_dns_type type);

/*
 * An answer without records: @status with @reason (static or copied).
 * Returns it with one reference, or NULL when out of memory.
 */
struct resolver_answer *resolver_answer_status(const char *name,
                                               enum ptl_dns_type type,
                                               enum ptl_dns_status status,
                                               const char *reason);

void resolver_answer_ref(struct resolver_answer *a);
/* Drop one reference; NULL is a no-op. */
void resolver_answer_unref(struct resolver_answer *a);

/* ---- Cache (resolver_cache.c) ---------------------------------------- */

/* TTL bounds in seconds. */
struct resolver_ttl_policy {
	uint32_t min_ttl;
	uint32_t max_ttl;
	uint32_t negative_ttl;
};

/*
 * Seconds to keep @a: positive answers within min..max, negative ones
 * up to negative_ttl when they carried an SOA; 0 (do not keep) for
 * failures and for negative answers without an SOA (RFC 2308 section 5).
 */
uint32_t resolver_ttl_effective(const struct resolver_ttl_policy *policy,
                                const struct resolver_answer *a);

struct resolver_cache;

/* A cache of at most @max_entries answers and @max_bytes (0: none). */
struct resolver_cache *resolver_cache_new(size_t max_entries, size_t max_bytes);
void resolver_cache_free(struct resolver_cache *cache);

/*
 * The live answer for @type at @name, or NULL. An expired one is removed.
 * A hit becomes the most recently used. The answer is borrowed: take a
 * reference to keep it. *@remaining_out gets its seconds left (rounded
 * up).
 */
struct resolver_answer *resolver_cache_get(struct resolver_cache *cache,
                                           enum ptl_dns_type type,
                                           const char *name, int64_t now_ms,
                                           uint32_t *remaining_out);

/*
 * Keep @a (its result.type and result.name are the key) until
 * @expires_ms, replacing an older answer; takes a reference. Evicts the
 * least recently used answers to stay within the bounds.
 * Returns PTL_OK, or PTL_ERROR when out of memory or @a alone is over
 * the memory bound (nothing kept).
 */
int resolver_cache_put(struct resolver_cache *cache, struct resolver_answer *a,
                       int64_t expires_ms);

size_t resolver_cache_count(const struct resolver_cache *cache);
size_t resolver_cache_bytes(const struct resolver_cache *cache);
uint64_t resolver_cache_evictions(const struct resolver_cache *cache);

/* ---- c-ares on the loop (resolver_ares.c) ---------------------------- */

struct resolver_ares;

/* How a query ended, before parsing. */
enum resolver_ares_status {
	RESOLVER_ARES_ANSWER,    /* msg/len hold the response */
	RESOLVER_ARES_TEMPFAIL,  /* reason says why */
	RESOLVER_ARES_PERMFAIL,  /* reason says why */
	RESOLVER_ARES_DESTROYED, /* the channel is going away */
};

/*
 * Completion of resolver_ares_send(). Called from the loop (I/O or timer
 * callback), or from inside resolver_ares_send() when c-ares fails at
 * once; @msg is valid during the call only.
 */
typedef void (*resolver_ares_fn)(void *arg, enum resolver_ares_status status,
                                 const char *reason, const unsigned char *msg,
                                 size_t len);

/* A channel on the current process's loop, configured from @conf. */
int resolver_ares_new(const struct resolver_conf *conf,
                      struct resolver_ares **out, struct ptl_error *err);
/* Pending completions run with RESOLVER_ARES_DESTROYED. NULL: no-op. */
void resolver_ares_free(struct resolver_ares *ra);

/*
 * Send one query for @type at @name (normalized). Returns PTL_OK, after
 * which @done runs exactly once (maybe before this returns), or
 * PTL_ERROR (out of memory; @done will not run).
 */
int resolver_ares_send(struct resolver_ares *ra, const char *name,
                       enum ptl_dns_type type, resolver_ares_fn done,
                       void *arg);

/*
 * The name servers c-ares finds in /etc/resolv.conf, as CSV in @pool.
 * Master, init_master.
 */
int resolver_ares_system_servers(struct ptl_pool *pool, const char **csv_out,
                                 struct ptl_error *err);

/*
 * Turn "ip" or "ip:port" or "[v6]:port" into c-ares form ("ip:port",
 * "[v6]:port") in @out. Returns PTL_OK or PTL_ERROR (err->text).
 */
int resolver_server_normalize(const char *text, char *out, size_t out_size,
                              struct ptl_error *err);

/* ---- The service (resolver_lookup.c) --------------------------------- */

struct resolver;

/* Per-process state: cache, channel, pending lookups. */
int resolver_new(const struct resolver_conf *conf, struct resolver **out,
                 struct ptl_error *err);
/* Drops every pending lookup without calling it. NULL: no-op. */
void resolver_free(struct resolver *r);

/* The methods, with a struct resolver as instance. */
extern const struct ptl_resolver_methods resolver_methods;

#endif
