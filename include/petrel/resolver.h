/* SPDX-License-Identifier: MIT */
/* The "resolver" service: asynchronous, cached DNS lookups on the loop. */
#ifndef PETREL_RESOLVER_H
#define PETREL_RESOLVER_H

#include <stdbool.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <petrel/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Service name and interface version of this header. */
#define PTL_RESOLVER_SERVICE "resolver"
#define PTL_RESOLVER_VERSION 1

/*
 * Contract for callers
 * --------------------
 * Every method is called on the loop thread of a worker, helper or single
 * process, with the provider's `instance` (ptl_service.instance). The
 * master has no resolver: lookups there fail with PTL_ERROR.
 *
 * A lookup never blocks and never calls back from inside the call that
 * started it: even an answer from the cache, or a refusal of a malformed
 * name, arrives from the loop afterwards. The completion runs exactly
 * once, unless the lookup was cancelled first; then it never runs.
 *
 * Memory: the result and everything it points to are BORROWED: valid
 * only while the completion runs. Copy what you keep. The completion may
 * start new lookups and cancel other pending ones.
 *
 * Names are domain names in ASCII (A-labels for IDNs), with or without
 * the trailing dot, case-insensitive; at most 253 characters, labels of
 * 1 to 63. Characters allowed in the name looked up:
 *   MX, PTR          letters, digits, '-' (host names, RFC 1123)
 *   A, AAAA,         also '_': owner names such as "_dmarc.example.com",
 *   TXT, TLSA        "sel._domainkey.example.com", "_25._tcp.mx.example",
 *                    and SPF "exists:" targets
 * Any other name completes with PTL_DNS_PERMFAIL ("invalid name").
 * Queries are sent as given: no search list, no host aliases.
 *
 * Names in results (MX exchange, PTR name, canonical name) are lower
 * case, without the trailing dot, and contain only letters, digits, '-'
 * and '_': a record whose name has any other byte (a PTR set to
 * "evil\r\nX-Header: ..." by whoever controls a reverse zone) is dropped.
 *
 * Security of `secure`: it repeats the AD bit of the answer, which only a
 * validating resolver sets, and only means something when the path to
 * that resolver is trusted (the resolver runs on the same host, or the
 * link is protected). Petrel does not validate DNSSEC itself.
 */

/** Record types that can be looked up (values are the DNS type codes). */
enum ptl_dns_type {
	PTL_DNS_A = 1,
	PTL_DNS_PTR = 12,
	PTL_DNS_MX = 15,
	PTL_DNS_TXT = 16,
	PTL_DNS_AAAA = 28,
	PTL_DNS_TLSA = 52,
};

/** Outcome of a lookup. */
enum ptl_dns_status {
	PTL_DNS_OK = 0,       /**< count >= 1 records of the type asked */
	PTL_DNS_NXDOMAIN = 1, /**< the name does not exist */
	PTL_DNS_NODATA = 2,   /**< the name exists, no record of that type */
	PTL_DNS_TEMPFAIL = 3, /**< timeout, SERVFAIL, REFUSED, network error,
	                         out of memory: try again later */
	PTL_DNS_PERMFAIL = 4, /**< invalid name, or a malformed answer */
};

/** An A or AAAA record. */
struct ptl_dns_addr {
	int family; /**< AF_INET or AF_INET6 */
	union {
		struct in_addr in4;  /**< when AF_INET */
		struct in6_addr in6; /**< when AF_INET6 */
	};
};

/** An MX record. */
struct ptl_dns_mx {
	uint16_t preference;
	/**
	 * Host name of the exchange; "" for the root, which with preference
	 * 0 is a "null MX" (RFC 7505: the domain accepts no mail).
	 */
	const char *exchange;
};

/** A TXT record: its character-strings joined without separator. */
struct ptl_dns_txt {
	/**
	 * @p len bytes, followed by a NUL that is not counted. The data may
	 * itself contain NUL bytes: use @p len. Joining is what SPF (RFC
	 * 7208 section 3.3), DKIM and DMARC need.
	 */
	const char *data;
	size_t len;
};

/** A TLSA record (RFC 6698). */
struct ptl_dns_tlsa {
	uint8_t usage;    /**< certificate usage: 0..3 */
	uint8_t selector; /**< 0: full certificate, 1: SubjectPublicKeyInfo */
	uint8_t mtype;    /**< matching type: 0 exact, 1 SHA-256, 2 SHA-512 */
	const unsigned char *data; /**< association data, @p len bytes */
	size_t len;
};

/** What a completion receives. Borrowed: valid during the call only. */
struct ptl_dns_result {
	enum ptl_dns_status status;
	enum ptl_dns_type type; /**< the type asked for */
	const char *name;       /**< the name asked for, normalized (lower
	                           case, no trailing dot; as given when it
	                           was invalid) */
	/**
	 * Owner of the records after following CNAMEs (at most 8), equal to
	 * @p name when there was none. NULL unless status is OK/NODATA/
	 * NXDOMAIN.
	 */
	const char *canonical;
	/** The answer had the AD bit set (see "Security of secure"). */
	bool secure;
	/** Served from this process's cache. */
	bool cached;
	/**
	 * Seconds this answer stays valid: for OK the smallest TTL of the
	 * records and CNAMEs used, for NXDOMAIN/NODATA the negative TTL from
	 * the SOA (RFC 2308), both within the configured bounds; from the
	 * cache, what remains of it. 0 for TEMPFAIL/PERMFAIL.
	 */
	uint32_t ttl;
	/** Why it failed ("timeout", "SERVFAIL", "invalid name",
	 *  "malformed answer: ..."); NULL when status is OK. */
	const char *reason;
	/**
	 * Records, 0 unless status is OK; at most 100 (more in an answer are
	 * dropped, as Postfix does: SECURITY.md #8).
	 */
	size_t count;
	/** The records; the member that matches @p type is valid. */
	union {
		/** A/AAAA: in answer order. */
		const struct ptl_dns_addr *addrs;
		/**
		 * MX: sorted by preference, lowest first; records of equal
		 * preference keep answer order: the caller shuffles them
		 * (RFC 5321 section 5.1).
		 */
		const struct ptl_dns_mx *mx;
		/** TXT: one entry per record. */
		const struct ptl_dns_txt *txt;
		/** PTR: host names. */
		const char *const *ptr;
		/** TLSA: in answer order. */
		const struct ptl_dns_tlsa *tlsa;
	};
};

/** Completion of a lookup. Loop thread. @p res is borrowed. */
typedef void (*ptl_dns_fn)(const struct ptl_dns_result *res, void *arg);

/**
 * A pending lookup: the handle that cancels it. Owned by the resolver;
 * valid from the lookup call until its completion starts or it is
 * cancelled, whichever is first.
 */
struct ptl_dns_query;

/** Counters of one process's resolver, for monitoring and tests. */
struct ptl_resolver_stats {
	uint64_t lookups;     /**< lookups started */
	uint64_t hits;        /**< answered from the cache */
	uint64_t misses;      /**< not in the cache (queried or joined) */
	uint64_t joined;      /**< misses that joined an identical query
	                         already on the wire */
	uint64_t queries;     /**< queries handed to c-ares */
	uint64_t tempfails;   /**< queries that ended in TEMPFAIL */
	uint64_t cancelled;   /**< lookups cancelled by their caller */
	uint64_t entries;     /**< answers in the cache now */
	uint64_t cache_bytes; /**< bytes those answers take */
	uint64_t evictions;   /**< answers pushed out to keep within the
	                         cache's bounds */
};

/** Methods of the "resolver" service. */
struct ptl_resolver_methods {
	unsigned version; /**< PTL_RESOLVER_VERSION implemented */

	/**
	 * Look up the records of @p type at @p name. @p done(@p res, @p arg)
	 * runs later, once, on the loop, unless the query is cancelled.
	 * An invalid name is not an error here: it completes with
	 * PTL_DNS_PERMFAIL. Logged at debug level.
	 * @param query_out receives the cancel handle; may be NULL when the
	 *        caller will never cancel (it must then stay alive until
	 *        @p done runs).
	 * @return PTL_AGAIN (started), or PTL_ERROR: out of memory, @p type
	 * not one of enum ptl_dns_type, @p done NULL, not in a worker or
	 * helper; nothing was started and @p done will not run.
	 */
	int (*lookup)(void *instance, const char *name, enum ptl_dns_type type,
	              ptl_dns_fn done, void *arg,
	              struct ptl_dns_query **query_out);

	/**
	 * Look up the PTR records of an IP address: builds the
	 * "d.c.b.a.in-addr.arpa" name (RFC 1035 section 3.5), or the nibble
	 * "ip6.arpa" name (RFC 3596 section 2.5); an IPv4-mapped IPv6
	 * address (::ffff:a.b.c.d) is looked up as IPv4. The port is
	 * ignored. Otherwise as lookup() with PTL_DNS_PTR.
	 * @return PTL_AGAIN, or PTL_ERROR (also for a family other than
	 * AF_INET/AF_INET6).
	 */
	int (*lookup_ptr)(void *instance, const struct sockaddr *addr,
	                  ptl_dns_fn done, void *arg,
	                  struct ptl_dns_query **query_out);

	/**
	 * Cancel a pending lookup (the session that started it is going
	 * away): its completion will not run, and @p query is freed. Never
	 * call it once the completion has started, nor twice. The query on
	 * the wire, if any, still completes and fills the cache.
	 */
	void (*cancel)(void *instance, struct ptl_dns_query *query);

	/** Copy this process's counters into *@p out. */
	void (*stats)(void *instance, struct ptl_resolver_stats *out);
};

/**
 * Fill @p out with @p addr as a socket address with port @p port
 * (host order), ready for ptl_conn_connect().
 * @return the length of the socket address.
 */
static inline socklen_t
ptl_dns_addr_sockaddr(const struct ptl_dns_addr *addr, uint16_t port,
                      struct sockaddr_storage *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

	*out = (struct sockaddr_storage){0};
	if (addr->family == AF_INET6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = addr->in6;
		return (socklen_t)sizeof(*sin6);
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	sin->sin_addr = addr->in4;
	return (socklen_t)sizeof(*sin);
}

#ifdef __cplusplus
}
#endif
#endif
