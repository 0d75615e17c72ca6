/* SPDX-License-Identifier: MIT */
/* The filter_regex module's shared types: rules, config, the scanner. */
#ifndef PETREL_REGEX_H
#define PETREL_REGEX_H

#include <stdbool.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>

/** Most rules in a config. */
#define REGEX_RULES_MAX 256

/** What a rule looks at; the index in regex_target_names. */
enum regex_target {
	REGEX_CLIENT_IP = 0,
	REGEX_CLIENT_HOSTNAME,
	REGEX_HELO,
	REGEX_MAIL_FROM,
	REGEX_RCPT,
	REGEX_HEADER, /* "header:NAME" */
	REGEX_ANY_HEADER,
	REGEX_BODY,
	REGEX_BODY_TEXT,
};

#define REGEX_TARGETS (REGEX_BODY_TEXT + 1)

/** What a limit hit (match, depth, heap, JIT stack) counts as. */
enum regex_on_limit {
	REGEX_LIMIT_NO_MATCH = 0,
	REGEX_LIMIT_MATCH,
	REGEX_LIMIT_TEMPFAIL,
};

/** One item of "rules": keys, then what check_config derives. */
struct regex_rule {
	const char *name;
	const char *target;
	const char *pattern;
	bool caseless;
	bool utf;
	bool negate;
	bool decode_2047;
	int action; /* enum ptl_filter_action */
	int64_t code;
	const char *enhanced;
	const char *text;
	const char *folder;
	const char *result;
	const char *add_header;     /* "Name: value" */
	const char *remove_header;  /* "Name" */
	const char *replace_header; /* "Name: value" */
	int64_t header_index;

	/* Derived. */
	enum regex_target kind;
	const char *header_name; /* REGEX_HEADER */
	size_t header_name_len;
	int hook; /* enum ptl_filter_hook */
	pcre2_code *re;
	bool jit;
	/* body, body_text: the pattern in multi-line mode, to search many
	 * lines in one match (NULL when that could miss a line's match;
	 * see regex_block_safe). */
	pcre2_code *block_re;
	bool block_jit;
	struct ptl_filter_header add;
	struct ptl_filter_header_edit edits[2];
	size_t nedits;
	const char *label; /* name, or "#INDEX" */
};

/** The module's config section. */
struct regex_conf {
	struct ptl_conf_list rules; /* struct regex_rule */
	int64_t match_limit;
	int64_t depth_limit;
	uint64_t heap_limit;
	int on_limit; /* enum regex_on_limit */
	uint64_t max_line;
	uint64_t max_header_bytes;
	int64_t max_headers;
	int64_t max_mime_depth;
	uint64_t max_body_bytes; /* decoded text, body_text */
	uint64_t max_scan_bytes; /* message bytes read at DATA */
	int64_t scan_time_limit; /* ms */
	bool jit;
	int64_t timeout; /* ms; 0: the smtp module's */
	bool fail_open;

	/* Derived by check_config. */
	pcre2_match_context *mctx;
	unsigned hooks;     /* PTL_FILTER_HOOK_BIT of hooks with rules */
	bool want_headers;  /* DATA: some rule reads header fields */
	bool want_body;     /* ... raw body lines */
	bool want_text;     /* ... decoded text */
	bool want_hostname; /* CONNECT: a client_hostname rule */
	unsigned njit;      /* rules compiled to machine code */
	/* Rule indexes grouped by target, each group in rule order:
	 * by_target[target_first[k] .. target_first[k + 1]). */
	size_t *by_target;
	size_t target_first[REGEX_TARGETS + 1];
	/* body / body_text rules searched a block of lines at a time. */
	bool block_body, block_text;
	/* The limits of a scan tried on the loop (regex_scan_inline). */
	pcre2_match_context *inline_mctx;
};

extern const struct ptl_conf_key regex_conf_keys[];
extern const char *const regex_target_names[];

/* regex_conf.c */
int regex_check_config(struct ptl_instance *inst, const json_t *section,
                       void *conf, struct ptl_error *err);
/* Check and compile a parsed config (what check_config does); the
 * compiled rules are freed with @p pool. */
int regex_conf_prepare(struct regex_conf *conf, struct ptl_pool *pool,
                       struct ptl_error *err);

/* regex_rules.c */
int regex_rule_compile(struct regex_rule *r, const struct regex_conf *conf,
                       size_t index, struct ptl_pool *pool,
                       struct ptl_error *err);
void regex_rules_free(void *conf);

/** Outcome of matching one subject. */
enum regex_hit {
	REGEX_NO = 0,
	REGEX_YES = 1,
	REGEX_LIMIT = 2, /* a limit stopped the match */
};

bool regex_block_safe(const char *pattern);
enum regex_hit regex_rule_match_block(const struct regex_rule *r,
                                      pcre2_match_context *mctx,
                                      pcre2_match_data *md, const char *block,
                                      size_t len, size_t start, size_t *at_out);
enum regex_hit regex_rule_match(const struct regex_rule *r,
                                pcre2_match_context *mctx, pcre2_match_data *md,
                                const char *subject, size_t len);

/*
 * What the rules of one hook decided: per rule, matched, and whether it
 * was looked at (a rule whose target was absent or could not be read
 * completely is not evaluated: it neither matches nor, negated, fires).
 */
struct regex_eval {
	const struct regex_conf *conf;
	int hook;
	bool *matched;   /* per rule */
	bool *evaluated; /* per rule */
	bool *limited;   /* per rule: a limit was hit */
	bool tempfail;   /* on_limit tempfail was hit */
};

/** A verdict with the storage it points into. */
struct regex_verdict {
	struct ptl_filter_verdict v;
	struct ptl_filter_header *headers;
	struct ptl_filter_header_edit *edits;
	char result[512];
};

/* regex_match.c */
int regex_eval_init(struct regex_eval *ev, const struct regex_conf *conf,
                    int hook);
void regex_eval_free(struct regex_eval *ev);
void regex_eval_record(struct regex_eval *ev, size_t rule, enum regex_hit hit);
void regex_eval_subject(struct regex_eval *ev, size_t rule,
                        pcre2_match_data *md, const char *subject, size_t len);
int regex_verdict_build(const struct regex_eval *ev, struct regex_verdict *out);
void regex_verdict_free(struct regex_verdict *out);
void regex_log_limits(const struct regex_eval *ev, const char *session_id,
                      const char *message_id);
int regex_envelope(const struct regex_conf *conf,
                   const struct ptl_filter_request *req, pcre2_match_data *md,
                   struct regex_eval *ev);

/** A scan of the message at DATA, run on the thread pool. */
struct regex_scan {
	const struct regex_conf *conf;
	int fd; /* a dup() of message_fd, owned */
	uint64_t offset, end;
	struct regex_eval ev;
	pcre2_match_data *md;
	char *scratch; /* RFC 2047 output, "Name: value" */
	size_t scratch_cap;
	size_t undecided; /* DATA rules not matched yet */
	int64_t deadline_ms;
	bool timed_out;
	bool read_error;
	bool capped; /* max_scan_bytes reached */
	/* On the loop (regex_scan_inline): */
	bool inline_mode;
	bool yielded; /* gave up: the thread pool must scan */
	pcre2_match_context *mctx;
	unsigned clock_countdown; /* matches until the clock is read */
	size_t clock_bytes;       /* subject bytes since it was read */
	/* Lines of body (0) and body_text (1) rules, matched a block at a
	 * time: the lines joined with LF, and where each starts. */
	struct regex_block {
		char *text;
		size_t len, cap;
		size_t *starts;
		size_t n;
	} blocks[2];
	size_t block_cap; /* bytes of a block */
};

/*
 * A message scanned on the loop: at most REGEX_INLINE_BYTES, read only
 * from the page cache (RWF_NOWAIT), in at most REGEX_INLINE_MS and with
 * a match limit of at most REGEX_INLINE_MATCH_LIMIT. Anything else is
 * left to the thread pool, which scans from the start: the verdict is
 * the same either way, the pool hand-off (two thread switches and an
 * eventfd round trip) is saved for ordinary mail.
 */
#define REGEX_INLINE_BYTES       (256 * 1024)
#define REGEX_INLINE_MS          3
#define REGEX_INLINE_MATCH_LIMIT 10000

int regex_scan_init(struct regex_scan *sc, const struct regex_conf *conf,
                    int fd, uint64_t offset, uint64_t end);
void regex_scan_run(struct regex_scan *sc);
/* Scan on the loop thread; @sc->fd is read, not closed by
 * regex_scan_free(). @return true when decided, false when the scan
 * must run on the thread pool (a fresh regex_scan). */
bool regex_scan_inline(struct regex_scan *sc);
void regex_scan_free(struct regex_scan *sc);

#endif
