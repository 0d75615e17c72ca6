/* SPDX-License-Identifier: MIT */
/* The dmarc module's internal seams: PSL, records, From, policy, reports. */
#ifndef PETREL_DMARC_H
#define PETREL_DMARC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest domain name in text form. */
#define DMARC_NAME_MAX 253
/* DKIM signatures taken from the trace. */
#define DMARC_DKIM_MAX 8
/* Longest rua= value kept for the report. */
#define DMARC_RUA_MAX 512

/* ---- the Public Suffix List (dmarc_psl.c) ------------------------------ */

struct dmarc_psl;

/*
 * Parse the list in its published format (publicsuffix.org): one rule
 * per line, "//" comments, "*." wildcards, "!" exceptions, Unicode rules
 * (stored as A-labels). @return the table (free with dmarc_psl_free()),
 * or NULL with @why set (out of memory, or no rule at all).
 */
struct dmarc_psl *dmarc_psl_parse(const char *text, size_t len,
                                  const char **why);
/* Read and parse @path. NULL with @why set (errno-based text). */
struct dmarc_psl *dmarc_psl_load(const char *path, char *why, size_t size);
void dmarc_psl_free(struct dmarc_psl *psl);
size_t dmarc_psl_rules(const struct dmarc_psl *psl);

/*
 * The Organizational Domain of @domain (RFC 7489 section 3.2): the
 * public suffix plus one label; a public suffix itself is its own.
 * @domain is lower-case ASCII without the trailing dot.
 * @return 0, or -1 when it does not fit in @size.
 */
int dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *out,
                     size_t size);

/*
 * @in (UTF-8 or ASCII, trailing dot allowed) as a lower-case A-label
 * domain name: each label with bytes >= 0x80 is Punycode-encoded (RFC
 * 3492) with "xn--" in front. @return 0, or -1 (invalid UTF-8, empty
 * label, too long).
 */
int dmarc_domain_to_ascii(const char *in, size_t len, char *out, size_t size);

/* ---- DMARC records (dmarc_record.c) ------------------------------------ */

enum dmarc_policy {
	DMARC_P_NONE = 0,
	DMARC_P_QUARANTINE = 1,
	DMARC_P_REJECT = 2,
};

struct dmarc_record {
	enum dmarc_policy p;
	enum dmarc_policy sp; /* = p when absent */
	bool has_sp;
	bool adkim_strict, aspf_strict;
	unsigned pct;                /* 0..100 */
	unsigned ri;                 /* seconds */
	char rua[DMARC_RUA_MAX + 1]; /* as published, printable ASCII */
	char fo[16];
};

const char *dmarc_policy_name(enum dmarc_policy p);

/* Whether a TXT record is a DMARC record: "v=DMARC1" as the first tag. */
bool dmarc_record_is_dmarc(const char *txt, size_t len);

/*
 * Parse a DMARC record (RFC 7489 section 6.3). Unknown tags and bad
 * optional values are ignored (defaults apply); an invalid or missing p
 * (or an invalid sp) makes the record count as p=none when rua holds a
 * URI, else it is unusable (section 6.6.3).
 * @return 0, or -1 with *@why set: no DMARC processing.
 */
int dmarc_record_parse(const char *txt, size_t len, struct dmarc_record *out,
                       const char **why);

/* ---- the From domain (dmarc_from.c) ----------------------------------- */

/*
 * The domain of the one address of the one From field in the header
 * section @hdr (@len bytes, CRLF or LF lines, up to the empty line or
 * the end), lower case A-labels (RFC 7489 section 6.6.1). @complete:
 * the whole header section is in @hdr.
 * @return 0, or -1 with *@why: no From, several From fields, several
 * or no addresses, or an address without a usable domain.
 */
int dmarc_from_domain(const char *hdr, size_t len, bool complete, char *out,
                      size_t size, const char **why);

/* ---- policy (dmarc_policy.c) ------------------------------------------ */

/* What SPF and DKIM gave, from the filter trace. */
struct dmarc_auth {
	char spf[16];                        /* "" when SPF did not run */
	char spf_domain[DMARC_NAME_MAX + 1]; /* MAIL FROM (or HELO) domain */
	bool spf_helo;                       /* the HELO identity */
	struct {
		char result[16];
		char domain[DMARC_NAME_MAX + 1];
		char selector[64];
	} dkim[DMARC_DKIM_MAX];
	size_t ndkim;
};

/*
 * Take the "spf=..." and "dkim=..." resinfos (RFC 8601) of one trace
 * result. @mail_hook: the result was given at MAIL, where SPF checks
 * the identity DMARC aligns (section 3.1.2); SPF results of other hooks
 * (the HELO check) are not used.
 */
void dmarc_auth_add(struct dmarc_auth *a, const char *result, bool mail_hook);

enum dmarc_result {
	DMARC_RES_NONE = 0,
	DMARC_RES_PASS = 1,
	DMARC_RES_FAIL = 2,
	DMARC_RES_TEMPERROR = 3,
	DMARC_RES_PERMERROR = 4,
};

const char *dmarc_result_name(enum dmarc_result r);

/* Identifier alignment (section 3.1): strict or relaxed. */
bool dmarc_aligned(const struct dmarc_psl *psl, const char *from_domain,
                   const char *auth_domain, bool strict);

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_policy policy;      /* p, or sp for a subdomain */
	enum dmarc_policy disposition; /* what applies after pct */
	bool subdomain_policy;         /* sp was the one that applied */
	bool spf_aligned, dkim_aligned;
	bool sampled_out; /* pct left this message out of the policy */
	int dkim_index;   /* the aligned passing signature, or -1 */
};

/*
 * Evaluate the policy @rec found at the From domain (@at_org false) or
 * at its Organizational Domain (@at_org true) for @from_domain.
 * @roll: a number 0..99 drawn at random, compared with pct (section
 * 6.6.4): a failing message with roll >= pct gets the next policy down.
 */
void dmarc_evaluate(const struct dmarc_psl *psl, const char *from_domain,
                    bool at_org, const struct dmarc_record *rec,
                    const struct dmarc_auth *auth, unsigned roll,
                    struct dmarc_outcome *out);

/* ---- reports (dmarc_report.c) ----------------------------------------- */

/* What one line of aggregate report data says about a message. */
struct dmarc_report_in {
	int64_t time;
	const char *source_ip;
	const char *header_from;
	const char *envelope_from;
	const char *policy_domain;
	const char *message_id; /* the transaction id in our logs */
	const struct dmarc_record *rec;
	const struct dmarc_auth *auth;
	const struct dmarc_outcome *out;
};

/*
 * One line of JSON (no newline inside, "\n" at the end) for the
 * report file; malloc'd, NULL when out of memory.
 */
char *dmarc_report_line(const struct dmarc_report_in *in);

/* "YYYY-MM-DD.jsonl" of @time (UTC) into @out (at least 17 bytes). */
void dmarc_report_file_name(int64_t time, char *out, size_t size);

/*
 * Append @line to @dir/@name, creating @dir (0750) and the file (0640)
 * as needed; one write, so lines of several processes never mix.
 * Blocking: call it on the thread pool. @return 0 or an errno value.
 */
int dmarc_report_append(const char *dir, const char *name, const char *line);

#endif
