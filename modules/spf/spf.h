/* SPDX-License-Identifier: MIT */
/* The spf module's internal seams: records, macros, the evaluator. */
#ifndef PETREL_SPF_H
#define PETREL_SPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <petrel/resolver.h>

/* Longest domain name in text form (RFC 7208 section 4.3, RFC 1035). */
#define SPF_NAME_MAX 253
/* Longest macro expansion kept before domain truncation (section 7.3). */
#define SPF_EXPAND_MAX 2048
/* Longest SPF record accepted (a TXT record of joined strings). */
#define SPF_RECORD_MAX 16384
/* Longest explanation kept (it becomes an SMTP reply text). */
#define SPF_EXPLAIN_MAX 200
/* Hard bounds for the configurable limits. */
#define SPF_LOOKUPS_HARD_MAX 30
#define SPF_NAMES_MAX        10 /* MX and PTR names (section 4.6.4) */

/* check_host() results (RFC 7208 section 2.6). */
enum spf_result {
	SPF_NONE = 0,
	SPF_NEUTRAL = 1,
	SPF_PASS = 2,
	SPF_FAIL = 3,
	SPF_SOFTFAIL = 4,
	SPF_TEMPERROR = 5,
	SPF_PERMERROR = 6,
};
#define SPF_RESULTS 7

/* "none", "neutral", ... as in Received-SPF and Authentication-Results. */
const char *spf_result_name(enum spf_result r);

/* An IP address; IPv4-mapped IPv6 addresses are stored as IPv4. */
struct spf_ip {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/* Parse an address in text form. @return 0, or -1 when it is none. */
int spf_ip_parse(const char *text, struct spf_ip *out);
/* Whether @a lies in @net/@prefix (the families must be equal). */
bool spf_ip_match(const struct spf_ip *a, const struct spf_ip *net,
                  unsigned prefix);
/* @a as text (RFC 5952 for IPv6) into @out (at least 46 bytes). */
void spf_ip_format(const struct spf_ip *a, char *out, size_t size);

/* ---- records (spf_record.c) ------------------------------------------ */

enum spf_mech {
	SPF_MECH_ALL = 0,
	SPF_MECH_INCLUDE,
	SPF_MECH_A,
	SPF_MECH_MX,
	SPF_MECH_PTR,
	SPF_MECH_IP4,
	SPF_MECH_IP6,
	SPF_MECH_EXISTS,
};

/* A mechanism; the strings point into the record's own copy. */
struct spf_term {
	enum spf_mech mech;
	enum spf_result qualifier; /* PASS, FAIL, SOFTFAIL or NEUTRAL */
	const char *text;          /* the directive as written */
	size_t text_len;
	const char *domain_spec; /* NULL: the current domain */
	size_t domain_len;
	unsigned cidr4, cidr6; /* a, mx, ip4, ip6: prefix lengths */
	struct spf_ip net;     /* ip4, ip6 */
};

/* A parsed record: one allocation, freed with spf_record_free(). */
struct spf_record {
	struct spf_term *terms;
	size_t nterms;
	const char *redirect; /* domain-spec of redirect=, or NULL */
	size_t redirect_len;
	const char *exp; /* domain-spec of exp=, or NULL */
	size_t exp_len;
	char *text; /* the record's copy */
};

/*
 * Whether a TXT record is an SPF record: "v=spf1" in any case, then a
 * space or the end (section 4.5).
 */
bool spf_record_is_spf(const char *txt, size_t len);

/*
 * Parse the SPF record @txt (@len bytes, starting with the version).
 * The whole record is checked before any of it is used (section 4.6):
 * any syntax error fails it.
 * @return a record to free with spf_record_free(), or NULL: *@why_out
 * says why (a static string; "out of memory" included).
 */
struct spf_record *spf_record_parse(const char *txt, size_t len,
                                    const char **why_out);
void spf_record_free(struct spf_record *rec);

/* Whether @term causes a DNS query (counted by the 10-lookup limit). */
bool spf_term_is_dns(const struct spf_term *term);

/* ---- macros (spf_macro.c) -------------------------------------------- */

/* What the macro letters of section 7.2 expand to. */
struct spf_macro_ctx {
	const char *sender;        /* s: local-part@domain */
	const char *local;         /* l */
	const char *sender_domain; /* o */
	const char *domain;        /* d: the current domain */
	const struct spf_ip *ip;   /* i, c, v */
	const char *ptr_name;      /* p: validated name, or NULL: "unknown" */
	const char *helo;          /* h */
	const char *receiver;      /* r */
	int64_t now;               /* t: seconds since the epoch */
};

/*
 * Check the syntax of a macro-string. @exp: explanation text, where the
 * letters c, r and t are allowed and spaces are literal.
 * @return 0, or -1 with *@why_out set.
 */
int spf_macro_check(const char *s, size_t len, bool exp, const char **why_out);

/*
 * Check a domain-spec (section 7.1): a valid macro-string that ends in
 * a macro-expand or in "." toplabel ["."]; empty is an error.
 */
int spf_domain_spec_check(const char *s, size_t len, const char **why_out);

/* Whether the (checked) macro-string uses the letter @letter (p or P). */
bool spf_macro_uses(const char *s, size_t len, char letter);

/*
 * Expand a checked macro-string into @out (NUL-terminated).
 * @return 0, or -1 when the result does not fit in @size bytes (or a
 * syntax error that spf_macro_check() would have found).
 */
int spf_macro_expand(const char *s, size_t len, bool exp,
                     const struct spf_macro_ctx *ctx, char *out, size_t size);

/*
 * Make an expanded domain-spec a query name: drop one trailing dot,
 * then drop labels from the left until at most 253 characters remain
 * (section 7.3). In place.
 */
void spf_domain_truncate(char *name);

/*
 * Whether @name can be a query name: 1 to 253 characters, labels of 1
 * to 63, printable ASCII (the resolver refuses more: such a name then
 * just does not exist for SPF). @initial: the stricter rule
 * for the domain check_host() starts from (section 4.3): at least two
 * labels of letters, digits, '-' and '_' only.
 */
bool spf_domain_valid(const char *name, bool initial);

/* ---- the evaluator (spf_eval.c) -------------------------------------- */

struct spf_limits {
	unsigned max_lookups; /* DNS mechanisms and redirects: 10 */
	unsigned max_void;    /* lookups with no answer: 2 */
	bool explain;         /* fetch exp= texts for fail */
};

/* What check_host() is asked. Strings are copied by spf_eval_new(). */
struct spf_request {
	const char *ip;       /* client address, text */
	const char *sender;   /* MAIL FROM without <>; "" for the null path */
	const char *helo;     /* HELO/EHLO argument; may be NULL */
	const char *receiver; /* our host name (r macro) */
	int64_t now;          /* t macro */
	bool helo_identity;   /* check the HELO identity, not MAIL FROM */
};

/* The outcome of an evaluation. */
struct spf_outcome {
	enum spf_result result;
	/* Identity checked: "mailfrom" or "helo"; the address and domain. */
	const char *identity;
	char sender[320];
	char domain[SPF_NAME_MAX + 1];
	/* The mechanism that matched ("default" or "" when none did). */
	char mechanism[96];
	/* permerror / temperror: why. */
	char problem[128];
	/* fail: the expanded exp= text, printable ASCII; else empty. */
	char explanation[SPF_EXPLAIN_MAX + 1];
	unsigned lookups, voids, queries;
};

struct spf_eval;
typedef void (*spf_done_fn)(struct spf_eval *ev, void *arg);

/*
 * A new evaluation of @req through the resolver @m/@instance (loop
 * thread). @return it, or NULL when out of memory.
 */
struct spf_eval *spf_eval_new(const struct ptl_resolver_methods *m,
                              void *instance, const struct spf_limits *lim,
                              const struct spf_request *req);

/*
 * Run it. @return PTL_DONE when the outcome is known at once (done is
 * not called), or PTL_AGAIN: @done(@ev, @arg) runs once from a resolver
 * completion when it is (it may free @ev).
 */
int spf_eval_start(struct spf_eval *ev, spf_done_fn done, void *arg);

/* The outcome (complete once finished). */
const struct spf_outcome *spf_eval_outcome(const struct spf_eval *ev);

/* Cancel what is pending (done is then never called) and free. NULL ok. */
void spf_eval_free(struct spf_eval *ev);

/* ---- fields (spf_header.c) ------------------------------------------- */

/*
 * The Received-SPF field body (RFC 7208 section 9.1) for @out, checked
 * for client @ip with HELO @helo by @receiver, into @buf. Values that
 * came from the client are quoted or left out so that they cannot break
 * the field. When @size is too small (a long sender and HELO name can
 * need more than 900 bytes), the pairs from the first one that does not
 * fit are left out whole, so that the field stays well-formed.
 */
void spf_received_field(const struct spf_outcome *out, const char *ip,
                        const char *helo, const char *receiver, char *buf,
                        size_t size);

/*
 * The result for the filter trace and Authentication-Results (RFC 8601
 * section 2.7.2): "spf=pass smtp.mailfrom=a@example.org", or for the
 * HELO identity and the null path "spf=none smtp.helo=host.example".
 * A value that is no safe token is left out.
 */
void spf_trace_result(const struct spf_outcome *out, bool null_path,
                      const char *helo, char *buf, size_t size);

/* Whether @s is a dot-atom (RFC 5322), with one '@' when @address. */
bool spf_dot_atom(const char *s, bool address);

#endif
