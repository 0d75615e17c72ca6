/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: aggregation of report data lines and the report XML. */
#ifndef PETREL_CTL_DMARC_AGG_H
#define PETREL_CTL_DMARC_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest line of report data read; longer ones are malformed. */
#define CTL_DMARC_LINE_MAX (16 * 1024)
/* Distinct (policy domain, rua) pairs in one day. */
#define CTL_DMARC_GROUPS_MAX 10000
/* Distinct records (rows) in one day, all groups together. */
#define CTL_DMARC_ROWS_MAX 200000
/* DKIM results kept per row (the dmarc module writes at most 8). */
#define CTL_DMARC_DKIM_MAX 8
/* Longest value taken from a line (a domain name is at most 253). */
#define CTL_DMARC_VALUE_MAX 255
/* Largest text any ctl_dmarc_buf grows to. */
#define CTL_DMARC_BUF_MAX ((size_t)512 * 1024 * 1024)

/* A growing byte buffer; after a failed append it stays failed. */
struct ctl_dmarc_buf {
	char *data; /* NUL-terminated while not failed */
	size_t len, cap;
	bool failed; /* out of memory or over CTL_DMARC_BUF_MAX */
};

void ctl_dmarc_buf_init(struct ctl_dmarc_buf *b);
void ctl_dmarc_buf_free(struct ctl_dmarc_buf *b);
/* Append @len bytes of @s. @return 0, or -1 (and b->failed). */
int ctl_dmarc_buf_add(struct ctl_dmarc_buf *b, const void *s, size_t len);
int ctl_dmarc_buf_str(struct ctl_dmarc_buf *b, const char *s);
int ctl_dmarc_buf_printf(struct ctl_dmarc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Append @s as XML character data or attribute text: "&<>\"'" become
 * entities and every byte outside printable ASCII becomes '?', so the
 * result is well-formed whatever the input. @return 0 or -1.
 */
int ctl_dmarc_xml_escape(struct ctl_dmarc_buf *b, const char *s);

/* Whether @s is a host name: letters, digits, '-', '_', dots between
 * labels, 1..253 bytes. Safe in file names and header fields. */
bool ctl_dmarc_domain_ok(const char *s);

/* The policy a group's records were evaluated with (its first line). */
struct ctl_dmarc_policy {
	char p[12], sp[12]; /* none, quarantine, reject */
	char adkim[2], aspf[2];
	char fo[16];
	unsigned pct;
};

struct ctl_dmarc_row;

/* One report: the messages of one policy domain for one rua value. */
struct ctl_dmarc_group {
	char policy_domain[CTL_DMARC_VALUE_MAX + 1]; /* lower case */
	char rua[CTL_DMARC_VALUE_MAX * 2 + 3];       /* as published */
	struct ctl_dmarc_policy policy;
	uint64_t messages;
	size_t nrows;
	struct ctl_dmarc_row **rows; /* sorted by ctl_dmarc_agg_finish() */
};

struct ctl_dmarc_agg;

enum ctl_dmarc_line {
	CTL_DMARC_LINE_OK = 0,
	CTL_DMARC_LINE_MALFORMED = 1, /* not a valid line: skipped */
	CTL_DMARC_LINE_FULL = 2,      /* over a GROUPS/ROWS bound: skipped */
	CTL_DMARC_LINE_NOMEM = -1,
};

/* An empty aggregation; NULL when out of memory. */
struct ctl_dmarc_agg *ctl_dmarc_agg_new(void);
void ctl_dmarc_agg_free(struct ctl_dmarc_agg *a);

/*
 * Count one line of report data (the dmarc module's JSON, without the
 * newline; @len bytes, need not be NUL-terminated) in its group and row.
 * Messages with the same source address, disposition, policy evaluation,
 * identifiers and authentication results share one row.
 * @return an enum ctl_dmarc_line value.
 */
int ctl_dmarc_agg_add(struct ctl_dmarc_agg *a, const char *line, size_t len);

/* Sort the groups (by policy domain, rua) and their rows; call once,
 * after the last ctl_dmarc_agg_add(). @return 0 or -1 (out of memory). */
int ctl_dmarc_agg_finish(struct ctl_dmarc_agg *a);

size_t ctl_dmarc_agg_ngroups(const struct ctl_dmarc_agg *a);
const struct ctl_dmarc_group *ctl_dmarc_agg_group(const struct ctl_dmarc_agg *a,
                                                  size_t i);

/* What report_metadata says. */
struct ctl_dmarc_meta {
	const char *org_name;
	const char *email;
	const char *report_id;
	int64_t begin, end; /* date_range, seconds since the epoch */
};

/*
 * The RFC 7489 appendix C aggregate report of @g as XML into @out.
 * @return 0, or -1 (out of memory, or over CTL_DMARC_BUF_MAX).
 */
int ctl_dmarc_xml(const struct ctl_dmarc_group *g,
                  const struct ctl_dmarc_meta *meta, struct ctl_dmarc_buf *out);

#endif
