/* SPDX-License-Identifier: MIT */
/* DKIM (RFC 6376, RFC 8463): the pure library shared by module and tests. */
#ifndef PETREL_DKIM_H
#define PETREL_DKIM_H

/*
 * Everything declared here is plain C on OpenSSL: no event loop, no
 * Petrel core, so the unit tests and the test tool (tests/dkim) compile
 * these files in as they are. The module (dkim_filter.c, dkim_module.c)
 * feeds them from the thread pool and the resolver.
 *
 * Bounds: a message's header section is parsed from one buffer of at
 * most the configured size; the body is streamed in chunks of any size
 * and each canonicalizer keeps a fixed amount of state, so a 100 MB body
 * hashes in constant memory.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* ---- results ----------------------------------------------------------- */

/** Result of one signature (the RFC 8601 dkim= values). */
enum dkim_status {
	DKIM_NONE = 0, /* no signature (message-level only) */
	DKIM_PASS,
	DKIM_FAIL,
	DKIM_NEUTRAL,
	DKIM_TEMPERROR,
	DKIM_PERMERROR,
	DKIM_POLICY,
};

/** "pass", "fail", ... as written in Authentication-Results. */
const char *dkim_status_name(enum dkim_status st);

enum dkim_canon {
	DKIM_CANON_SIMPLE = 0,
	DKIM_CANON_RELAXED = 1,
};

enum dkim_alg {
	DKIM_ALG_NONE = 0,
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
};

/** "rsa-sha256" or "ed25519-sha256". */
const char *dkim_alg_name(enum dkim_alg alg);

/* ---- tag=value lists (RFC 6376 section 3.2) ---------------------------- */

#define DKIM_TAGS_MAX     32 /* more tags in one list: refused */
#define DKIM_TAG_NAME_MAX 32 /* longer tag names: refused */

struct dkim_tag {
	const char *name; /* into the parsed text, not NUL-terminated */
	size_t name_len;
	const char *value; /* without the surrounding whitespace */
	size_t value_len;
	/* Offsets in the text of everything after '=' up to the ';' or the
	 * end: what "the b= value removed" deletes (section 3.7). */
	size_t raw_start;
	size_t raw_end;
};

struct dkim_tags {
	struct dkim_tag tag[DKIM_TAGS_MAX];
	size_t count;
};

/**
 * Parse @p len bytes of @p text strictly: tag names ALPHA *(ALPHA / DIGIT
 * / "_"), values of VALCHAR with inner whitespace, folding only as CRLF
 * followed by a space or tab, no duplicate names, at most DKIM_TAGS_MAX.
 * A final ";" and whitespace after it are allowed.
 * @return 0, or -1 with *@p why_out set to a static reason.
 */
int dkim_tags_parse(const char *text, size_t len, struct dkim_tags *out,
                    const char **why_out);

/** The tag named @p name (case-sensitive, as RFC 6376 says), or NULL. */
const struct dkim_tag *dkim_tags_get(const struct dkim_tags *tags,
                                     const char *name);

/** Whether the value of @p tag is exactly @p s. */
bool dkim_tag_equals(const struct dkim_tag *tag, const char *s);

/* ---- base64 and digests (dkim_hash.c) ---------------------------------- */

/**
 * Decode base64 that may contain folding whitespace (SP, HTAB, CR, LF),
 * strictly: only the alphabet, '=' padding at the end, no stray bits.
 * @return 0 and *@p out_len, or -1 (malformed, or longer than
 * @p out_max).
 */
int dkim_b64_decode(const char *in, size_t len, unsigned char *out,
                    size_t out_max, size_t *out_len);

/** Encode into @p out (NUL-terminated). @return the length, or 0 when
 *  @p out_size is too small. */
size_t dkim_b64_encode(const unsigned char *in, size_t len, char *out,
                       size_t out_size);

/** Where canonicalized bytes go. */
typedef void (*dkim_emit_fn)(void *arg, const char *data, size_t len);

/** A streaming SHA-256. */
struct dkim_digest {
	EVP_MD_CTX *md;
	bool failed; /* an OpenSSL call failed: the result is unusable */
};

int dkim_digest_init(struct dkim_digest *d);
/** dkim_emit_fn over a struct dkim_digest. */
void dkim_digest_emit(void *arg, const char *data, size_t len);
/** Final 32 bytes. @return 0 or -1. */
int dkim_digest_final(struct dkim_digest *d, unsigned char out[32]);
void dkim_digest_free(struct dkim_digest *d);

/* ---- canonicalization (dkim_canon.c) ----------------------------------- */

/**
 * Canonicalize one header field: @p field holds "Name: value" with its
 * folding, without the CRLF that ends it. Simple emits it unchanged,
 * relaxed lower-cases the name, unfolds, reduces whitespace runs to one
 * space and strips it around the colon and at the end (section 3.4.2).
 * @p crlf: emit the final CRLF (every field except the signature's own).
 */
void dkim_canon_header(enum dkim_canon mode, const char *field, size_t len,
                       bool crlf, dkim_emit_fn emit, void *arg);

#define DKIM_CANON_BUF 4096

/**
 * Streaming body canonicalizer (section 3.4.3 and 3.4.4). Its state is
 * the counters below and one output buffer: trailing empty lines are
 * counted, not stored, and only written out when text follows them.
 */
struct dkim_body_canon {
	enum dkim_canon mode;
	bool has_limit;        /* l= */
	uint64_t limit;        /* emit at most this many bytes */
	uint64_t emitted;      /* bytes given to emit (<= limit) */
	uint64_t total;        /* canonical length, l= or not */
	uint64_t crlf_pending; /* line ends not yet known to be trailing */
	bool cr_pending;       /* a CR was the last byte seen */
	bool wsp_pending;      /* relaxed: whitespace run not yet written */
	bool content;          /* some non-empty line was seen */
	dkim_emit_fn emit;
	void *emit_arg;
	size_t out_len;
	char out[DKIM_CANON_BUF];
};

void dkim_body_canon_init(struct dkim_body_canon *c, enum dkim_canon mode,
                          bool has_limit, uint64_t limit, dkim_emit_fn emit,
                          void *emit_arg);
void dkim_body_canon_update(struct dkim_body_canon *c, const char *data,
                            size_t len);
/** End of body: writes the final line end and flushes. */
void dkim_body_canon_final(struct dkim_body_canon *c);

/* ---- the header section of a message ----------------------------------- */

/** One header field: bytes [off, off + len) of the buffer, no CRLF. */
struct dkim_hfield {
	size_t off;
	size_t len;
	size_t name_len; /* 0: no valid "name:" (never selected) */
};

struct dkim_headers {
	const char *base;
	struct dkim_hfield *field; /* malloc'd */
	size_t count;
	size_t cap;
	/* Where the body starts: just after the first CRLF CRLF, or the
	 * end of the buffer when there is none (no body). */
	size_t body_off;
	bool has_body; /* a CRLF CRLF was found */
};

/**
 * Split @p buf into header fields up to the first CRLF CRLF and no
 * further (SECURITY.md #10): that is the only end of the header section.
 * A bare LF does not end a line, and a line of spaces is a continuation,
 * never the end. When @p buf holds only the start of a message (@p
 * complete false) and contains no CRLF CRLF, the section is too large.
 * @return 0, or -1 with *@p why_out (too many fields, too large, out of
 * memory).
 */
int dkim_headers_parse(const char *buf, size_t len, bool complete,
                       size_t max_fields, struct dkim_headers *out,
                       const char **why_out);
void dkim_headers_free(struct dkim_headers *h);

/** A field name in h= (not NUL-terminated). */
struct dkim_name {
	const char *p;
	size_t n;
};

/**
 * The header part of the hash input (section 5.4.2): for each of the @p n
 * names, the last field of that name not yet used, canonicalized with its
 * CRLF; a name with no field left adds nothing (which is what makes
 * over-signing work). @p used has h->count entries, false except for
 * fields never to select (the signature's own field).
 */
void dkim_canon_select(const struct dkim_headers *h,
                       const struct dkim_name *names, size_t n,
                       enum dkim_canon mode, bool *used, dkim_emit_fn emit,
                       void *arg);

/** Whether field @p i is named @p name (case-insensitive). */
bool dkim_headers_is(const struct dkim_headers *h, size_t i, const char *name,
                     size_t name_len);

/* ---- key records (dkim_key.c) ------------------------------------------ */

struct dkim_key {
	EVP_PKEY *pkey;    /* NULL when revoked */
	enum dkim_alg alg; /* the key type; *_SHA256 */
	unsigned bits;     /* RSA modulus size; 256 for ed25519 */
	bool revoked;      /* empty p= */
	bool testing;      /* t=y */
	bool strict;       /* t=s: i= must be in d= exactly */
};

/**
 * Parse a DNS key record (section 3.6.1): v=DKIM1 first if present,
 * k=rsa|ed25519, h= must allow sha256, s= must allow email, p= base64
 * (SubjectPublicKeyInfo or RSAPublicKey for rsa, 32 raw bytes for
 * ed25519). RSA keys below @p min_rsa_bits or above 8192 bits are
 * refused. @return DKIM_PASS (usable key, or revoked), or DKIM_PERMERROR
 * with @p why filled.
 */
enum dkim_status dkim_key_parse(const char *rec, size_t len,
                                unsigned min_rsa_bits, struct dkim_key *out,
                                char *why, size_t why_size);
void dkim_key_free(struct dkim_key *k);

/* ---- verification (dkim_verify.c) -------------------------------------- */

#define DKIM_DOMAIN_MAX   255
#define DKIM_SELECTOR_MAX 255
#define DKIM_SIG_MAX      1024 /* bytes of b=: 8192-bit RSA */

struct dkim_verify_opts {
	int64_t now;           /* seconds since the epoch */
	size_t max_signatures; /* signatures evaluated; others: policy */
	size_t max_fields;     /* header fields parsed */
	unsigned min_rsa_bits; /* smaller keys: permerror */
	bool reject_l;         /* l= with unsigned content: policy */
	int64_t future_slack;  /* t= may be this far ahead (s) */
};

/** One DKIM-Signature and what became of it. */
struct dkim_sig {
	enum dkim_status status; /* DKIM_NONE while still undecided */
	char reason[128];
	size_t field; /* index of its header field */
	enum dkim_alg alg;
	enum dkim_canon hcanon, bcanon;
	char domain[DKIM_DOMAIN_MAX + 1];     /* d=, lower case */
	char selector[DKIM_SELECTOR_MAX + 1]; /* s= */
	char auid[DKIM_DOMAIN_MAX + 66];      /* i=, or "@" d= */
	char b_prefix[12]; /* first 8 characters of b= (RFC 6008) */
	bool has_l;
	uint64_t l;
	bool has_t, has_x;
	int64_t t, x;
	unsigned char bh[32];
	unsigned char b[DKIM_SIG_MAX];
	size_t b_len;
	unsigned char hdr_hash[32]; /* SHA-256 of the header data */
	unsigned key_bits;
	bool testing;       /* key had t=y */
	uint64_t body_len;  /* canonical body length */
	bool unsigned_body; /* l= left body bytes unsigned */
	/* Body hashing state, only while the body streams. */
	struct dkim_digest body_digest;
	struct dkim_body_canon *body;
};

struct dkim_verifier {
	struct dkim_verify_opts opts;
	struct dkim_headers hdrs;
	struct dkim_sig *sig; /* malloc'd, nsig entries */
	size_t nsig;
	bool header_error; /* the header section could not be parsed */
	char header_reason[96];
};

/**
 * Parse the header section in @p buf (see dkim_headers_parse) and every
 * DKIM-Signature in it, top down; check each signature's tags and hash
 * its header data. Signatures that fail here are decided (permerror);
 * the others wait for the body and their key. @p buf is not kept.
 * @return 0, or -1 out of memory.
 */
int dkim_verify_begin(struct dkim_verifier *v, const char *buf, size_t len,
                      bool complete, const struct dkim_verify_opts *opts);
/** Feed body bytes (anything after the header section), in order. */
void dkim_verify_body(struct dkim_verifier *v, const char *data, size_t len);
/** End of body: body hashes are compared (fail on mismatch). */
void dkim_verify_body_end(struct dkim_verifier *v);
/** Whether signature @p i still needs its key. */
bool dkim_verify_needs_key(const struct dkim_verifier *v, size_t i);
/** "selector._domainkey.domain" of signature @p i. @return 0 or -1. */
int dkim_verify_key_name(const struct dkim_verifier *v, size_t i, char *out,
                         size_t out_size);
/**
 * Decide signature @p i with the TXT records found at its key name:
 * @p nrec records of @p recs / @p lens. Records that are not DKIM key
 * records are skipped; none usable: permerror.
 */
void dkim_verify_with_records(struct dkim_verifier *v, size_t i,
                              const char *const *recs, const size_t *lens,
                              size_t nrec);
/** Decide signature @p i without a key (DNS failure). */
void dkim_verify_set(struct dkim_verifier *v, size_t i, enum dkim_status st,
                     const char *reason);
void dkim_verifier_free(struct dkim_verifier *v);

/* ---- signing (dkim_sign.c) --------------------------------------------- */

#define DKIM_SIGN_HEADERS_MAX 64

/** One signing key for one domain. */
struct dkim_signer {
	const char *domain; /* lower case */
	const char *selector;
	EVP_PKEY *pkey; /* owned by whoever loaded it */
	enum dkim_alg alg;
	enum dkim_canon hcanon, bcanon;
	/* Names of fields to sign (lower case); those also in oversign
	 * get one extra entry so that a field added later breaks the
	 * signature. */
	const char *const *headers;
	size_t nheaders;
	const char *const *oversign;
	size_t noversign;
	int64_t ttl;   /* x= t + ttl; 0: no x= */
	bool add_time; /* t= */
};

/**
 * Load a PEM private key (PKCS#8 or traditional) from @p path: RSA of
 * 2048 to 3072 bits (a larger b= would not fit the header a filter can
 * add) or Ed25519. @return 0, or -1 with @p why filled.
 */
int dkim_signer_load_key(const char *path, EVP_PKEY **pkey_out,
                         enum dkim_alg *alg_out, unsigned *bits_out, char *why,
                         size_t why_size);

#define DKIM_SIGNERS_MAX 4

/** Signing one message with up to DKIM_SIGNERS_MAX keys at once. */
struct dkim_sign_job {
	const struct dkim_signer *signer[DKIM_SIGNERS_MAX];
	size_t nsigner;
	struct dkim_headers hdrs;
	const char *hdr_buf;               /* borrowed from begin to end */
	struct dkim_digest body_digest[2]; /* per body canonicalization */
	struct dkim_body_canon *body[2];
	/* Results: the value of each DKIM-Signature field (malloc'd,
	 * unfolded, for "DKIM-Signature: " + value + CRLF). */
	char *value[DKIM_SIGNERS_MAX];
};

/**
 * Start signing: @p buf holds the header section (it must stay valid
 * until dkim_sign_end()). @return 0, or -1 with @p why filled (no From
 * field, header section unreadable, out of memory).
 */
int dkim_sign_begin(struct dkim_sign_job *j,
                    const struct dkim_signer *const *signers, size_t n,
                    const char *buf, size_t len, bool complete,
                    size_t max_fields, char *why, size_t why_size);
void dkim_sign_body(struct dkim_sign_job *j, const char *data, size_t len);
/**
 * Finish: hash and sign. @p now is t=. @return 0 with every value[]
 * set, or -1 with @p why filled.
 */
int dkim_sign_end(struct dkim_sign_job *j, int64_t now, char *why,
                  size_t why_size);
void dkim_sign_free(struct dkim_sign_job *j);

/**
 * The domain of the (first) address in a From field value, lower case,
 * into @p out. @return 0, or -1 when none can be found.
 */
int dkim_from_domain(const char *value, size_t len, char *out, size_t out_size);

#endif
