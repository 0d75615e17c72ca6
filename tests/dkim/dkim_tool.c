/* SPDX-License-Identifier: MIT */
/* dkim_tool: Petrel's DKIM signer and verifier from the command line. */

/*
 * For the interoperability tests and the benchmark: the same library files
 * as the dkim module, with key records from argv instead of DNS.
 *
 *   dkim_tool verify FILE [--record REC] [--dns NAME=REC]... [--now T]
 *                         [--min-rsa-bits N] [--reject-l] [--chunk N]
 *       One line per signature: "STATUS d=D s=S a=ALG reason=TEXT".
 *       Exit 0 when there is a signature and all passed, 1 otherwise.
 *   dkim_tool sign FILE --domain D (--key PEM --selector S)...
 *                       [--canon H/B] [--headers a:b] [--oversign a:b]
 *                       [--now T] [--ttl SECONDS]
 *       Prints the message with the DKIM-Signature fields prepended.
 *   dkim_tool bench-sign FILE ... [--iterations N | --seconds S]
 *   dkim_tool bench-verify FILE ... [--iterations N | --seconds S]
 *       Prints operations per second.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dkim.h"

#define TOOL_MAX_DNS  8
#define TOOL_MAX_LIST 64

struct tool_opts {
	const char *file;
	const char *record;
	const char *dns_name[TOOL_MAX_DNS];
	const char *dns_rec[TOOL_MAX_DNS];
	size_t ndns;
	int64_t now;
	unsigned min_rsa_bits;
	bool reject_l;
	size_t chunk;
	const char *domain;
	const char *key[DKIM_SIGNERS_MAX];
	const char *selector[DKIM_SIGNERS_MAX];
	size_t nkey, nsel;
	enum dkim_canon hcanon, bcanon;
	const char *headers[TOOL_MAX_LIST];
	size_t nheaders;
	const char *oversign[TOOL_MAX_LIST];
	size_t noversign;
	int64_t ttl;
	long iterations;
	double seconds;  /* > 0: run for this long instead */
	char *copies[2]; /* what tool_split() allocated */
	bool quiet;
};

static char *
tool_read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL, *grown;
	size_t len = 0, cap = 0, n;

	if (f == NULL) {
		fprintf(stderr, "dkim_tool: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			cap = cap == 0 ? 65536 : cap * 2;
			grown = realloc(buf, cap + 1);
			if (grown == NULL) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = grown;
		}
		n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	buf[len] = '\0';
	*len_out = len;
	return buf;
}

/* "a:b:c" into @list (pointers into *@copy_out, freed by the caller). */
static size_t
tool_split(const char *text, const char **list, size_t max, char **copy_out)
{
	char *copy = strdup(text), *save = NULL, *tok;
	size_t n = 0;

	free(*copy_out);
	*copy_out = copy;
	if (copy == NULL)
		return 0;
	for (tok = strtok_r(copy, ":", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, ":", &save))
		list[n++] = tok;
	return n;
}

static bool
tool_canon_word(const char *s, size_t n, enum dkim_canon *out)
{
	if (n == 6 && strncmp(s, "simple", 6) == 0)
		*out = DKIM_CANON_SIMPLE;
	else if (n == 7 && strncmp(s, "relaxed", 7) == 0)
		*out = DKIM_CANON_RELAXED;
	else
		return false;
	return true;
}

/* @p o is zeroed by the caller (it frees what this allocates). */
static int
tool_parse(int argc, char **argv, struct tool_opts *o)
{
	const char *slash, *eq;
	int i;

	o->now = (int64_t)time(NULL);
	o->min_rsa_bits = 1024;
	o->chunk = 65536;
	o->hcanon = o->bcanon = DKIM_CANON_RELAXED;
	o->iterations = 100;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (a[0] != '-') {
			if (o->file != NULL)
				return -1;
			o->file = a;
			continue;
		}
		if (strcmp(a, "--reject-l") == 0) {
			o->reject_l = true;
			continue;
		}
		if (strcmp(a, "--quiet") == 0) {
			o->quiet = true;
			continue;
		}
		if (v == NULL)
			return -1;
		i++;
		if (strcmp(a, "--record") == 0) {
			o->record = v;
		} else if (strcmp(a, "--dns") == 0) {
			eq = strchr(v, '=');
			if (eq == NULL || o->ndns == TOOL_MAX_DNS)
				return -1;
			o->dns_name[o->ndns] = strndup(v, (size_t)(eq - v));
			o->dns_rec[o->ndns++] = eq + 1;
		} else if (strcmp(a, "--now") == 0) {
			o->now = strtoll(v, NULL, 10);
		} else if (strcmp(a, "--min-rsa-bits") == 0) {
			o->min_rsa_bits = (unsigned)strtoul(v, NULL, 10);
		} else if (strcmp(a, "--chunk") == 0) {
			o->chunk = strtoul(v, NULL, 10);
			if (o->chunk == 0)
				return -1;
		} else if (strcmp(a, "--domain") == 0) {
			o->domain = v;
		} else if (strcmp(a, "--key") == 0) {
			if (o->nkey == DKIM_SIGNERS_MAX)
				return -1;
			o->key[o->nkey++] = v;
		} else if (strcmp(a, "--selector") == 0) {
			if (o->nsel == DKIM_SIGNERS_MAX)
				return -1;
			o->selector[o->nsel++] = v;
		} else if (strcmp(a, "--canon") == 0) {
			slash = strchr(v, '/');
			if (slash == NULL
			        ? !tool_canon_word(v, strlen(v), &o->hcanon)
			        : (!tool_canon_word(v, (size_t)(slash - v),
			                            &o->hcanon) ||
			           !tool_canon_word(slash + 1,
			                            strlen(slash + 1),
			                            &o->bcanon)))
				return -1;
			if (slash == NULL)
				o->bcanon = DKIM_CANON_SIMPLE;
		} else if (strcmp(a, "--headers") == 0) {
			o->nheaders = tool_split(v, o->headers, TOOL_MAX_LIST,
			                         &o->copies[0]);
		} else if (strcmp(a, "--oversign") == 0) {
			o->noversign = tool_split(v, o->oversign, TOOL_MAX_LIST,
			                          &o->copies[1]);
		} else if (strcmp(a, "--ttl") == 0) {
			o->ttl = strtoll(v, NULL, 10);
		} else if (strcmp(a, "--seconds") == 0) {
			o->seconds = strtod(v, NULL);
			if (!(o->seconds > 0 && o->seconds < 600))
				return -1;
		} else if (strcmp(a, "--iterations") == 0) {
			o->iterations = strtol(v, NULL, 10);
			if (o->iterations <= 0)
				return -1;
		} else {
			return -1;
		}
	}
	return o->file != NULL ? 0 : -1;
}

/* ---- verify ------------------------------------------------------------ */

static const char *
tool_lookup(const struct tool_opts *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->ndns; i++) {
		if (strcmp(o->dns_name[i], name) == 0)
			return o->dns_rec[i];
	}
	return o->record;
}

/* @return 0 all passed, 1 not, -1 out of memory. */
static int
tool_verify_once(const struct tool_opts *o, const char *msg, size_t len,
                 bool print)
{
	struct dkim_verify_opts vo = {
	    .now = o->now,
	    .max_signatures = 8,
	    .max_fields = 10000,
	    .min_rsa_bits = o->min_rsa_bits,
	    .reject_l = o->reject_l,
	    .future_slack = 3600,
	};
	struct dkim_verifier v;
	const char *rec;
	size_t i, off, n, rec_len;
	char name[300];
	int rc;

	if (dkim_verify_begin(&v, msg, len, true, &vo) != 0)
		return -1;
	for (off = v.hdrs.body_off; off < len; off += n) {
		n = len - off < o->chunk ? len - off : o->chunk;
		dkim_verify_body(&v, msg + off, n);
	}
	dkim_verify_body_end(&v);
	for (i = 0; i < v.nsig; i++) {
		if (!dkim_verify_needs_key(&v, i))
			continue;
		rec = dkim_verify_key_name(&v, i, name, sizeof(name)) == 0
		          ? tool_lookup(o, name)
		          : NULL;
		if (rec == NULL) {
			dkim_verify_set(&v, i, DKIM_PERMERROR, "no key record");
			continue;
		}
		rec_len = strlen(rec);
		dkim_verify_with_records(&v, i, &rec, &rec_len, 1);
	}
	rc = v.nsig > 0 ? 0 : 1;
	if (print && v.header_error)
		printf("permerror header section: %s\n", v.header_reason);
	if (print && v.nsig == 0 && !v.header_error)
		printf("none\n");
	for (i = 0; i < v.nsig; i++) {
		const struct dkim_sig *s = &v.sig[i];

		if (s->status != DKIM_PASS)
			rc = 1;
		if (print)
			printf("%s d=%s s=%s a=%s bits=%u reason=%s\n",
			       dkim_status_name(s->status), s->domain,
			       s->selector, dkim_alg_name(s->alg), s->key_bits,
			       s->reason);
	}
	dkim_verifier_free(&v);
	return rc;
}

/* ---- sign -------------------------------------------------------------- */

struct tool_signers {
	struct dkim_signer sg[DKIM_SIGNERS_MAX];
	const struct dkim_signer *ptr[DKIM_SIGNERS_MAX];
	size_t n;
};

static const char *const tool_default_headers[] = {
    "from",         "to",
    "cc",           "subject",
    "date",         "message-id",
    "reply-to",     "mime-version",
    "content-type", "content-transfer-encoding",
};

static int
tool_load_signers(const struct tool_opts *o, struct tool_signers *ts)
{
	unsigned bits;
	char why[256];
	size_t i;

	if (o->domain == NULL || o->nkey == 0 || o->nkey != o->nsel) {
		fprintf(stderr, "dkim_tool: sign needs --domain and pairs of "
		                "--key/--selector\n");
		return -1;
	}
	for (i = 0; i < o->nkey; i++) {
		struct dkim_signer *sg = &ts->sg[i];

		memset(sg, 0, sizeof(*sg));
		if (dkim_signer_load_key(o->key[i], &sg->pkey, &sg->alg, &bits,
		                         why, sizeof(why)) != 0) {
			fprintf(stderr, "dkim_tool: %s\n", why);
			return -1;
		}
		sg->domain = o->domain;
		sg->selector = o->selector[i];
		sg->hcanon = o->hcanon;
		sg->bcanon = o->bcanon;
		if (o->nheaders > 0) {
			sg->headers = o->headers;
			sg->nheaders = o->nheaders;
		} else {
			sg->headers = tool_default_headers;
			sg->nheaders = sizeof(tool_default_headers) /
			               sizeof(tool_default_headers[0]);
		}
		sg->oversign = o->oversign;
		sg->noversign = o->noversign;
		sg->ttl = o->ttl;
		sg->add_time = true;
		ts->ptr[i] = sg;
	}
	ts->n = o->nkey;
	return 0;
}

static int
tool_sign_once(const struct tool_opts *o, const struct tool_signers *ts,
               const char *msg, size_t len, bool print)
{
	struct dkim_sign_job j;
	size_t off, n, i;
	char why[256];

	if (dkim_sign_begin(&j, ts->ptr, ts->n, msg, len, true, 10000, why,
	                    sizeof(why)) != 0) {
		fprintf(stderr, "dkim_tool: %s\n", why);
		return -1;
	}
	for (off = j.hdrs.body_off; off < len; off += n) {
		n = len - off < o->chunk ? len - off : o->chunk;
		dkim_sign_body(&j, msg + off, n);
	}
	if (dkim_sign_end(&j, o->now, why, sizeof(why)) != 0) {
		fprintf(stderr, "dkim_tool: %s\n", why);
		dkim_sign_free(&j);
		return -1;
	}
	if (print) {
		for (i = 0; i < ts->n; i++)
			printf("DKIM-Signature: %s\r\n", j.value[i]);
		fwrite(msg, 1, len, stdout);
	}
	dkim_sign_free(&j);
	return 0;
}

static double
tool_seconds(void)
{
	struct timespec ts;

	/* CPU time: the figure stays meaningful on a busy machine. */
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct tool_signers ts = {0};
	struct tool_opts o;
	const char *cmd;
	double start, secs;
	size_t len;
	char *msg;
	long i;
	int rc = 2;

	memset(&o, 0, sizeof(o));
	msg = NULL;
	if (argc < 3 || tool_parse(argc - 2, argv + 2, &o) != 0) {
		fprintf(stderr, "usage: dkim_tool verify|sign|bench-sign|"
		                "bench-verify FILE [options]\n");
		goto out;
	}
	cmd = argv[1];
	msg = tool_read_file(o.file, &len);
	if (msg == NULL)
		goto out;
	if (strcmp(cmd, "verify") == 0) {
		rc = tool_verify_once(&o, msg, len, true);
		rc = rc < 0 ? 2 : rc;
	} else if (strcmp(cmd, "sign") == 0) {
		rc = tool_load_signers(&o, &ts) == 0 &&
		             tool_sign_once(&o, &ts, msg, len, true) == 0
		         ? 0
		         : 1;
	} else if (strcmp(cmd, "bench-verify") == 0 ||
	           strcmp(cmd, "bench-sign") == 0) {
		bool sign = strcmp(cmd, "bench-sign") == 0;

		if (sign && tool_load_signers(&o, &ts) != 0) {
			rc = 1;
			goto out;
		}
		start = tool_seconds();
		for (i = 0; o.seconds > 0 ? tool_seconds() - start < o.seconds
		                          : i < o.iterations;
		     i++) {
			if (sign ? tool_sign_once(&o, &ts, msg, len, false) != 0
			         : tool_verify_once(&o, msg, len, false) != 0) {
				fprintf(stderr,
				        "dkim_tool: iteration %ld "
				        "failed\n",
				        i);
				rc = 1;
				goto out;
			}
		}
		secs = tool_seconds() - start;
		printf("%.1f\n", (double)i / secs);
		rc = 0;
	} else {
		fprintf(stderr, "dkim_tool: unknown command %s\n", cmd);
	}
out:
	for (i = 0; i < (long)o.ndns; i++)
		free((char *)o.dns_name[i]);
	free(o.copies[0]);
	free(o.copies[1]);
	for (i = 0; i < (long)ts.n; i++)
		EVP_PKEY_free(ts.sg[i].pkey);
	free(msg);
	return rc;
}
