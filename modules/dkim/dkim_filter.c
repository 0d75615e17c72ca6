/* SPDX-License-Identifier: MIT */
/* The "filter.dkim" service: verify inbound and sign outbound at DATA. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dkim_module.h"

/*
 * One check is one job:
 *   1. check() decides what to do (verify, sign, both or nothing), dups
 *      the message fd and submits the job to the thread pool;
 *   2. the task reads the header section (growing a buffer up to
 *      max_header_size), then streams the body in chunks through every
 *      canonicalizer, and signs;
 *   3. back on the loop, each signature still undecided gets its key
 *      looked up through the resolver; the last answer verifies and
 *      completes the check with the fields to add.
 * The job is malloc'd, not from the session's pool: a cancelled job whose
 * task still runs is freed when the task comes back.
 */

#define JOB_CHUNK      65536
#define JOB_FIRST_READ 16384
#define JOB_AR_MAX     850 /* pack results into fields of this size */
#define JOB_FIELDS_MAX 16
#define JOB_FORGED_MAX 16  /* forged Authentication-Results removed */
#define JOB_RESULT_MAX 256 /* ptl_filter_verdict.result */

struct dkim_job;

/* The argument of one key lookup: which signature of which job. */
struct job_query {
	struct dkim_job *job;
	size_t sig;
};

struct dkim_job {
	struct dkim_job *next;
	struct dkim_state *st;
	void *arg;
	ptl_filter_done_fn done;
	bool cancelled;
	bool in_task;

	int fd; /* our dup of the message fd; -1 once closed */
	uint64_t start, size;
	char session[48], message[48];
	int64_t now;

	bool verify, may_sign;
	/* Authentication-Results fields claiming our authserv-id, by
	 * their 1-based rank among the fields of that name. */
	unsigned forged[JOB_FORGED_MAX];
	size_t nforged;
	struct dkim_verifier ver;
	bool ver_ok;

	const struct dkim_signer *signers[DKIM_SIGNERS_MAX];
	size_t nsigners;
	char from_domain[256];
	struct dkim_sign_job sj;
	bool signed_ok;
	char why[160]; /* read or signing failure */
	bool io_failed;

	struct ptl_dns_query **queries; /* ver.nsig entries */
	struct job_query *qargs;        /* ver.nsig entries */
	size_t dns_pending;

	struct ptl_filter_header fields[JOB_FIELDS_MAX];
	char *field_text[JOB_FIELDS_MAX];
	size_t nfields;
	char result[JOB_RESULT_MAX + 1];
#if PTL_FILTER_VERSION >= 2
	struct ptl_filter_header_edit edits[JOB_FORGED_MAX];
#endif
};

/* ---- the task (pool thread) ------------------------------------------ */

/* pread all of [off, off + len) or fail. */
static int
job_pread(struct dkim_job *j, char *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(j->fd, buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)snprintf(j->why, sizeof(j->why),
			               "reading the message: %s",
			               n < 0 ? strerror(errno) : "short file");
			j->io_failed = true;
			return -1;
		}
		got += (size_t)n;
	}
	return 0;
}

/*
 * Read the message start until the header section is complete (a CRLF
 * CRLF, or the whole message) or max_header_size is reached.
 * @return the buffer (malloc'd), its length in *@p len_out.
 */
static char *
job_read_header(struct dkim_job *j, size_t *len_out, bool *complete_out)
{
	uint64_t max = j->st->conf->max_header_size;
	size_t cap = JOB_FIRST_READ, len = 0, want;
	char *buf = NULL, *grown;

	for (;;) {
		if (cap > max)
			cap = (size_t)max;
		grown = realloc(buf, cap);
		if (grown == NULL) {
			(void)snprintf(j->why, sizeof(j->why), "out of memory");
			j->io_failed = true;
			free(buf);
			return NULL;
		}
		buf = grown;
		want = cap - len;
		if (want > j->size - len)
			want = (size_t)(j->size - len);
		if (job_pread(j, buf + len, want, j->start + len) != 0) {
			free(buf);
			return NULL;
		}
		/* Search from a little before the new data: the CRLF CRLF
		 * may straddle two reads. */
		if (memmem(buf + (len > 3 ? len - 3 : 0),
		           len + want - (len > 3 ? len - 3 : 0), "\r\n\r\n",
		           4) != NULL ||
		    (len + want >= 2 && buf[0] == '\r' && buf[1] == '\n')) {
			len += want;
			break;
		}
		len += want;
		if (len == j->size || cap == max)
			break;
		cap *= 2;
	}
	*len_out = len;
	*complete_out = len == j->size;
	return buf;
}

static bool
job_find_signers(struct dkim_job *j, const struct dkim_headers *h)
{
	const struct dkim_state *st = j->st;
	const struct dkim_hfield *f;
	const char *colon;
	size_t i;

	for (i = 0; i < h->count; i++) {
		if (dkim_headers_is(h, i, "from", 4))
			break;
	}
	if (i == h->count)
		return false;
	f = &h->field[i];
	colon = memchr(h->base + f->off, ':', f->len);
	if (colon == NULL ||
	    dkim_from_domain(colon + 1,
	                     f->len - (size_t)(colon + 1 - (h->base + f->off)),
	                     j->from_domain, sizeof(j->from_domain)) != 0)
		return false;
	for (i = 0; i < st->nsigners && j->nsigners < DKIM_SIGNERS_MAX; i++) {
		if (strcmp(st->signers[i].domain, j->from_domain) == 0)
			j->signers[j->nsigners++] = &st->signers[i];
	}
	return j->nsigners > 0;
}

/* Skip whitespace and (nested) comments: RFC 5322 CFWS, bounded. */
static const char *
job_skip_cfws(const char *p, const char *end)
{
	int depth = 0;

	while (p < end) {
		if (*p == '(') {
			if (++depth > 8)
				return end;
		} else if (*p == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && *p != ' ' && *p != '\t' &&
		           *p != '\r' && *p != '\n') {
			break;
		}
		p++;
	}
	return p;
}

/*
 * RFC 8601 section 5: an Authentication-Results field with our own
 * authserv-id that arrives from outside is forged; find them so that
 * they are removed before ours is added.
 */
static void
job_find_forged(struct dkim_job *j, const struct dkim_headers *h)
{
	const char *id = j->st->authserv_id, *p, *end, *start;
	size_t i, n = strlen(id);
	unsigned rank = 0;

	for (i = 0; i < h->count; i++) {
		if (!dkim_headers_is(h, i, "authentication-results", 22))
			continue;
		rank++;
		p = memchr(h->base + h->field[i].off, ':', h->field[i].len);
		end = h->base + h->field[i].off + h->field[i].len;
		p = job_skip_cfws(p + 1, end);
		for (start = p; p < end && *p != ';' && *p != ' ' &&
		                *p != '\t' && *p != '(' && *p != '\r';
		     p++)
			;
		if ((size_t)(p - start) == n &&
		    strncasecmp(start, id, n) == 0 &&
		    j->nforged < JOB_FORGED_MAX)
			j->forged[j->nforged++] = rank;
	}
}

static void
job_work(void *arg)
{
	struct dkim_job *j = arg;
	const struct dkim_conf *conf = j->st->conf;
	struct dkim_verify_opts vo = {
	    .now = j->now,
	    .max_signatures = (size_t)conf->max_signatures,
	    .max_fields = (size_t)conf->max_header_fields,
	    .min_rsa_bits = (unsigned)conf->min_rsa_bits,
	    .reject_l = conf->reject_l_tag,
	    .future_slack = 3600,
	};
	struct dkim_headers probe;
	const char *why;
	char *hdr, *chunk = NULL;
	size_t hdr_len, body_off, n;
	uint64_t off;
	bool complete, sign = false, verify_body = false;

	hdr = job_read_header(j, &hdr_len, &complete);
	if (hdr == NULL)
		goto out;
	if (j->verify) {
		if (dkim_verify_begin(&j->ver, hdr, hdr_len, complete, &vo) !=
		    0) {
			(void)snprintf(j->why, sizeof(j->why), "out of memory");
			j->io_failed = true;
			dkim_verifier_free(&j->ver);
			goto out;
		}
		j->ver_ok = true;
		if (conf->remove_forged_results && !j->ver.header_error)
			job_find_forged(j, &j->ver.hdrs);
	}
	if (j->may_sign) {
		if (dkim_headers_parse(hdr, hdr_len, complete,
		                       (size_t)conf->max_header_fields, &probe,
		                       &why) == 0) {
			sign = job_find_signers(j, &probe);
			dkim_headers_free(&probe);
		}
		if (sign && dkim_sign_begin(&j->sj, j->signers, j->nsigners,
		                            hdr, hdr_len, complete,
		                            (size_t)conf->max_header_fields,
		                            j->why, sizeof(j->why)) != 0)
			goto out;
	}
	/* The body is read only when some signature waits for it. */
	for (n = 0; j->ver_ok && n < j->ver.nsig && !verify_body; n++)
		verify_body = j->ver.sig[n].body != NULL;
	if (!verify_body && !sign) {
		if (j->ver_ok)
			dkim_verify_body_end(&j->ver);
		goto out;
	}
	body_off = verify_body ? j->ver.hdrs.body_off : j->sj.hdrs.body_off;
	if (body_off < hdr_len) {
		if (verify_body)
			dkim_verify_body(&j->ver, hdr + body_off,
			                 hdr_len - body_off);
		if (sign)
			dkim_sign_body(&j->sj, hdr + body_off,
			               hdr_len - body_off);
	}
	chunk = malloc(JOB_CHUNK);
	if (chunk == NULL && hdr_len < j->size) {
		(void)snprintf(j->why, sizeof(j->why), "out of memory");
		j->io_failed = true;
	}
	for (off = hdr_len; off < j->size && !j->io_failed; off += n) {
		n = j->size - off < JOB_CHUNK ? (size_t)(j->size - off)
		                              : JOB_CHUNK;
		if (job_pread(j, chunk, n, j->start + off) != 0)
			break;
		if (verify_body)
			dkim_verify_body(&j->ver, chunk, n);
		if (sign)
			dkim_sign_body(&j->sj, chunk, n);
	}
	if (j->io_failed) {
		/* Half a body proves nothing: no results at all. */
		if (j->ver_ok)
			dkim_verifier_free(&j->ver);
		j->ver_ok = false;
		goto out_sign;
	}
	if (j->ver_ok)
		dkim_verify_body_end(&j->ver);
	if (sign && dkim_sign_end(&j->sj, j->now, j->why, sizeof(j->why)) == 0)
		j->signed_ok = true;
out_sign:
	if (sign && !j->signed_ok && j->why[0] == '\0')
		(void)snprintf(j->why, sizeof(j->why), "signing failed");
out:
	free(chunk);
	free(hdr);
	/* The header buffer is gone: keep only the signature values. */
	dkim_headers_free(&j->sj.hdrs);
	if (j->ver_ok)
		dkim_headers_free(&j->ver.hdrs);
	(void)close(j->fd);
	j->fd = -1;
}

/* ---- results ---------------------------------------------------------- */

static void
job_free(struct dkim_job *j)
{
	size_t i;

	if (j->fd >= 0)
		(void)close(j->fd);
	if (j->ver_ok)
		dkim_verifier_free(&j->ver);
	dkim_sign_free(&j->sj);
	for (i = 0; i < j->nfields; i++)
		free(j->field_text[i]);
	free(j->queries);
	free(j->qargs);
	free(j);
}

static void
job_unlink(struct dkim_job *j)
{
	struct dkim_job **p;

	for (p = &j->st->jobs; *p != NULL; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			return;
		}
	}
}

static int
job_add_field(struct dkim_job *j, const char *name, char *text)
{
	if (text == NULL)
		return -1;
	if (j->nfields == JOB_FIELDS_MAX) {
		free(text);
		return -1;
	}
	j->field_text[j->nfields] = text;
	j->fields[j->nfields].name = name;
	j->fields[j->nfields].value = text;
	j->nfields++;
	return 0;
}

/* Only bytes that cannot break the field's syntax go into it. */
static bool
job_token_ok(const char *s, const char *extra)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		      c == '_' || strchr(extra, c) != NULL))
			return false;
	}
	return true;
}

/* One "dkim=..." resinfo (RFC 8601 section 2.7.1). */
static void
job_resinfo(const struct dkim_sig *s, char *out, size_t size)
{
	char comment[200];
	size_t n = 0;

	comment[0] = '\0';
	if (s->key_bits > 0)
		n += (size_t)snprintf(
		    comment, sizeof(comment), "%u-bit %s key", s->key_bits,
		    s->alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519");
	if (s->testing && n < sizeof(comment))
		n += (size_t)snprintf(comment + n, sizeof(comment) - n,
		                      "%stesting", n > 0 ? "; " : "");
	if (s->reason[0] != '\0' && n < sizeof(comment))
		(void)snprintf(comment + n, sizeof(comment) - n, "%s%s",
		               n > 0 ? "; " : "", s->reason);
	n = (size_t)snprintf(out, size, "dkim=%s", dkim_status_name(s->status));
	if (comment[0] != '\0' && n < size)
		n += (size_t)snprintf(out + n, size - n, " (%s)", comment);
	if (job_token_ok(s->domain, "") && n < size)
		n += (size_t)snprintf(out + n, size - n, " header.d=%s",
		                      s->domain);
	if (job_token_ok(s->selector, "") && n < size)
		n += (size_t)snprintf(out + n, size - n, " header.s=%s",
		                      s->selector);
	if (job_token_ok(s->auid, "@+=") && n < size)
		n += (size_t)snprintf(out + n, size - n, " header.i=%s",
		                      s->auid);
	if (s->alg != DKIM_ALG_NONE && n < size)
		n += (size_t)snprintf(out + n, size - n, " header.a=%s",
		                      dkim_alg_name(s->alg));
	if (job_token_ok(s->b_prefix, "+/") && n < size)
		(void)snprintf(out + n, size - n, " header.b=%s", s->b_prefix);
}

static void
job_log_results(const struct dkim_job *j)
{
	const struct dkim_sig *s;
	size_t i;

	if (j->ver.header_error) {
		ptl_log(PTL_LOG_INFO, "%s: dkim: message %s: permerror (%s)",
		        j->session, j->message, j->ver.header_reason);
		return;
	}
	if (j->ver.nsig == 0) {
		ptl_log(PTL_LOG_DEBUG, "%s: dkim: message %s: no signature",
		        j->session, j->message);
		return;
	}
	for (i = 0; i < j->ver.nsig; i++) {
		s = &j->ver.sig[i];
		ptl_log(PTL_LOG_INFO,
		        "%s: dkim: message %s: %s d=%s s=%s a=%s%s%s%s",
		        j->session, j->message, dkim_status_name(s->status),
		        s->domain, s->selector, dkim_alg_name(s->alg),
		        s->reason[0] != '\0' ? " (" : "", s->reason,
		        s->reason[0] != '\0' ? ")" : "");
	}
}

/* Authentication-Results: fields, as many as needed to stay short. */
static void
job_add_results(struct dkim_job *j)
{
	const char *id = j->st->authserv_id;
	char cur[JOB_AR_MAX + 300], one[400];
	size_t len, i;

	len = (size_t)snprintf(cur, sizeof(cur), "%s", id);
	if (j->ver.header_error) {
		(void)snprintf(cur + len, sizeof(cur) - len,
		               "; dkim=permerror (%s)", j->ver.header_reason);
		(void)job_add_field(j, "Authentication-Results", strdup(cur));
		return;
	}
	if (j->ver.nsig == 0) {
		(void)snprintf(cur + len, sizeof(cur) - len, "; dkim=none");
		(void)job_add_field(j, "Authentication-Results", strdup(cur));
		return;
	}
	for (i = 0; i < j->ver.nsig; i++) {
		job_resinfo(&j->ver.sig[i], one, sizeof(one));
		if (len + 2 + strlen(one) > JOB_AR_MAX && len > strlen(id)) {
			(void)job_add_field(j, "Authentication-Results",
			                    strdup(cur));
			len = (size_t)snprintf(cur, sizeof(cur), "%s", id);
		}
		len +=
		    (size_t)snprintf(cur + len, sizeof(cur) - len, "; %s", one);
	}
	(void)job_add_field(j, "Authentication-Results", strdup(cur));
}

/*
 * The verdict's result for the trace (filter.h version 2), read by the
 * filters after this one (DMARC): one short resinfo per signature,
 * passes first, as many as fit in JOB_RESULT_MAX bytes.
 */
static void
job_build_result(struct dkim_job *j)
{
	const struct dkim_sig *s;
	size_t len = 0, i, pass;
	char one[160];
	int n;

	if (j->ver.header_error || j->ver.nsig == 0) {
		(void)snprintf(j->result, sizeof(j->result), "dkim=%s",
		               j->ver.header_error ? "permerror" : "none");
		return;
	}
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < j->ver.nsig; i++) {
			s = &j->ver.sig[i];
			if ((s->status == DKIM_PASS) != (pass == 0))
				continue;
			n = snprintf(one, sizeof(one), "%sdkim=%s",
			             len ? "; " : "",
			             dkim_status_name(s->status));
			if (job_token_ok(s->domain, "") &&
			    (size_t)n < sizeof(one))
				n += snprintf(one + n, sizeof(one) - (size_t)n,
				              " header.d=%s", s->domain);
			if (job_token_ok(s->selector, "") &&
			    (size_t)n < sizeof(one))
				n += snprintf(one + n, sizeof(one) - (size_t)n,
				              " header.s=%s", s->selector);
			if ((size_t)n >= sizeof(one) ||
			    len + (size_t)n > JOB_RESULT_MAX)
				return;
			memcpy(j->result + len, one, (size_t)n + 1);
			len += (size_t)n;
		}
	}
}

static void
job_finish(struct dkim_job *j)
{
	const struct dkim_conf *conf = j->st->conf;
	struct ptl_filter_verdict v;
	ptl_filter_done_fn done = j->done;
	void *arg = j->arg;
	size_t i;
	bool fail = false;

	memset(&v, 0, sizeof(v));
	v.action = PTL_FILTER_CONTINUE;
	if (j->ver_ok) {
		job_log_results(j);
		if (conf->add_header)
			job_add_results(j);
		job_build_result(j);
#if PTL_FILTER_VERSION >= 2
		v.result = j->result;
		/* Highest rank first: each removal leaves the ranks below
		 * it unchanged. */
		for (i = j->nforged; i-- > 0;) {
			struct ptl_filter_header_edit *e =
			    &j->edits[v.nedits++];

			e->op = PTL_FILTER_HEADER_REMOVE;
			e->name = "Authentication-Results";
			e->value = NULL;
			e->index = j->forged[i];
		}
		v.edits = j->edits;
		if (j->nforged > 0)
			ptl_log(PTL_LOG_NOTICE,
			        "%s: dkim: message %s: removing %zu "
			        "Authentication-Results field%s claiming %s",
			        j->session, j->message, j->nforged,
			        j->nforged > 1 ? "s" : "", j->st->authserv_id);
#endif
	} else if (j->verify) {
		ptl_log(PTL_LOG_WARN, "%s: dkim: message %s: not verified: %s",
		        j->session, j->message, j->why);
	}
	if (j->signed_ok) {
		for (i = 0; i < j->nsigners; i++) {
			if (strlen(j->sj.value[i]) > DKIM_FIELD_VALUE_MAX) {
				(void)snprintf(j->why, sizeof(j->why),
				               "DKIM-Signature longer than %d "
				               "bytes (sign fewer headers)",
				               DKIM_FIELD_VALUE_MAX);
				fail = true;
				break;
			}
		}
		for (i = 0; i < j->nsigners && !fail; i++) {
			if (job_add_field(j, "DKIM-Signature",
			                  strdup(j->sj.value[i])) != 0)
				fail = true;
		}
		if (!fail)
			ptl_log(PTL_LOG_INFO,
			        "%s: dkim: message %s: signed for %s with %zu "
			        "key%s",
			        j->session, j->message, j->from_domain,
			        j->nsigners, j->nsigners > 1 ? "s" : "");
	} else if (j->nsigners > 0) {
		fail = true;
	}
	if (fail) {
		ptl_log(PTL_LOG_ERROR, "%s: dkim: message %s: not signed: %s%s",
		        j->session, j->message, j->why,
		        conf->on_sign_error == DKIM_SIGN_ERROR_CONTINUE
		            ? " (sent unsigned)"
		            : "");
		if (conf->on_sign_error == DKIM_SIGN_ERROR_TEMPFAIL) {
			v.action = PTL_FILTER_TEMPFAIL;
			v.code = 451;
			v.enhanced = "4.3.0";
			v.text = "DKIM signing failed, try again later";
		}
	}
	v.headers = j->fields;
	v.nheaders = j->nfields;
	job_unlink(j);
	done(&v, arg);
	job_free(j);
}

/* ---- key lookups (loop) ----------------------------------------------- */

static void
job_dns_done(const struct ptl_dns_result *res, void *arg)
{
	struct job_query *q = arg;
	struct dkim_job *j = q->job;
	const char *recs[8];
	size_t lens[8], n, i;
	char why[160];

	j->queries[q->sig] = NULL;
	switch (res->status) {
	case PTL_DNS_OK:
		n = res->count < 8 ? res->count : 8;
		for (i = 0; i < n; i++) {
			recs[i] = res->txt[i].data;
			lens[i] = res->txt[i].len;
		}
		dkim_verify_with_records(&j->ver, q->sig, recs, lens, n);
		break;
	case PTL_DNS_NXDOMAIN:
	case PTL_DNS_NODATA:
		dkim_verify_set(&j->ver, q->sig, DKIM_PERMERROR,
		                "no key for signature");
		break;
	case PTL_DNS_TEMPFAIL:
		(void)snprintf(why, sizeof(why), "key lookup: %s",
		               res->reason != NULL ? res->reason : "failed");
		dkim_verify_set(&j->ver, q->sig, DKIM_TEMPERROR, why);
		break;
	default:
		(void)snprintf(why, sizeof(why), "key lookup: %s",
		               res->reason != NULL ? res->reason : "failed");
		dkim_verify_set(&j->ver, q->sig, DKIM_PERMERROR, why);
		break;
	}
	if (--j->dns_pending == 0)
		job_finish(j);
}

static const struct ptl_resolver_methods *
job_resolver(struct dkim_state *st)
{
	const struct ptl_resolver_methods *m;

	if (!st->resolver_looked_up) {
		st->resolver_looked_up = true;
		st->resolver = ptl_service_find(PTL_RESOLVER_SERVICE,
		                                PTL_RESOLVER_VERSION);
		if (st->resolver == NULL)
			ptl_log(PTL_LOG_ERROR,
			        "dkim: no \"resolver\" service: signatures "
			        "cannot be verified (temperror); load the "
			        "resolver module");
	}
	if (st->resolver == NULL)
		return NULL;
	m = st->resolver->methods;
	return m->version >= PTL_RESOLVER_VERSION ? m : NULL;
}

/* Start a lookup for every signature that needs its key. */
static void
job_lookup_keys(struct dkim_job *j)
{
	const struct ptl_resolver_methods *m = NULL;
	struct job_query *q;
	char name[300];
	size_t i;
	int rc;

	j->queries = calloc(j->ver.nsig + 1, sizeof(*j->queries));
	j->qargs = calloc(j->ver.nsig + 1, sizeof(*j->qargs));
	if (j->queries != NULL && j->qargs != NULL)
		m = job_resolver(j->st);
	/* Counted as one until every lookup is started, so that none can
	 * finish the job early. */
	j->dns_pending = 1;
	for (i = 0; i < j->ver.nsig; i++) {
		if (!dkim_verify_needs_key(&j->ver, i))
			continue;
		if (m == NULL) {
			dkim_verify_set(&j->ver, i, DKIM_TEMPERROR,
			                j->queries == NULL || j->qargs == NULL
			                    ? "out of memory"
			                    : "no resolver service");
			continue;
		}
		if (dkim_verify_key_name(&j->ver, i, name, sizeof(name)) != 0) {
			dkim_verify_set(&j->ver, i, DKIM_PERMERROR,
			                "key name too long");
			continue;
		}
		q = &j->qargs[i];
		q->job = j;
		q->sig = i;
		j->dns_pending++;
		rc = m->lookup(j->st->resolver->instance, name, PTL_DNS_TXT,
		               job_dns_done, q, &j->queries[i]);
		if (rc != PTL_AGAIN) {
			j->dns_pending--;
			j->queries[i] = NULL;
			dkim_verify_set(&j->ver, i, DKIM_TEMPERROR,
			                "key lookup failed");
		}
	}
	if (--j->dns_pending == 0)
		job_finish(j);
}

static void
job_task_done(void *arg)
{
	struct dkim_job *j = arg;

	j->in_task = false;
	if (j->cancelled) {
		job_free(j);
		return;
	}
	if (j->ver_ok)
		job_lookup_keys(j);
	else
		job_finish(j);
}

/* ---- filter methods --------------------------------------------------- */

static bool
dkim_role_listed(const struct dkim_conf *conf, const char *role)
{
	const char *const *roles = conf->verify_roles.items;
	size_t i;

	for (i = 0; role != NULL && i < conf->verify_roles.count; i++) {
		if (strcmp(roles[i], role) == 0)
			return true;
	}
	return false;
}

#define REQ_HAS(req, field)                                                    \
	((req)->struct_size >=                                                 \
	 offsetof(struct ptl_filter_request, field) + sizeof((req)->field))

int
dkim_filter_check(void *instance, const struct ptl_filter_request *req,
                  struct ptl_filter_verdict *verdict_out,
                  ptl_filter_done_fn done, void *arg)
{
	struct dkim_state *st = instance;
	const struct dkim_conf *conf = st->conf;
	struct dkim_job *j;
	bool verify, may_sign;

	memset(verdict_out, 0, sizeof(*verdict_out));
	verdict_out->action = PTL_FILTER_CONTINUE;
	if (!REQ_HAS(req, message_body_offset) || req->message_fd < 0)
		return PTL_OK;
	/* Inbound is verified at DATA; outbound is signed at RELAY (after
	 * every DATA filter's edits, only for mail that leaves), or at DATA
	 * when configured so or when the server has no RELAY hook. */
	if (req->hook == PTL_FILTER_DATA) {
		verify =
		    conf->verify && dkim_role_listed(conf, req->role) &&
		    (req->auth_user == NULL || conf->verify_authenticated) &&
		    (!req->trusted || conf->verify_trusted);
		may_sign = PTL_FILTER_VERSION < 2 ||
		           conf->sign_hook == DKIM_SIGN_AT_DATA;
#if PTL_FILTER_VERSION >= 2
	} else if (req->hook == PTL_FILTER_RELAY) {
		verify = false;
		may_sign = conf->sign_hook == DKIM_SIGN_AT_RELAY;
#endif
	} else {
		return PTL_OK;
	}
	may_sign = may_sign && st->nsigners > 0 &&
	           ((req->auth_user != NULL && conf->sign_authenticated) ||
	            (req->trusted && conf->sign_trusted));
	if ((!verify && !may_sign) ||
	    req->message_body_offset > req->message_size)
		return PTL_OK;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return PTL_ERROR;
	j->st = st;
	j->arg = arg;
	j->done = done;
	j->verify = verify;
	j->may_sign = may_sign;
	j->now = ptl_wall_time();
	/* The client's data only: Petrel's own Received: is not part of
	 * what was signed, and what we sign is what the client sent. */
	j->start = req->message_body_offset;
	j->size = req->message_size - req->message_body_offset;
	(void)snprintf(j->session, sizeof(j->session), "%s",
	               req->session_id != NULL ? req->session_id : "-");
	(void)snprintf(j->message, sizeof(j->message), "%s",
	               req->message_id != NULL ? req->message_id : "-");
	/* Our own descriptor: the session may close its copy if it goes
	 * away while the task still reads. */
	j->fd = dup(req->message_fd);
	if (j->fd < 0) {
		ptl_log(PTL_LOG_ERROR, "%s: dkim: dup: %s", j->session,
		        strerror(errno));
		free(j);
		return PTL_ERROR;
	}
	j->in_task = true;
	if (ptl_task_submit(job_work, job_task_done, j) != PTL_OK) {
		job_free(j);
		return PTL_ERROR;
	}
	j->next = st->jobs;
	st->jobs = j;
	return PTL_AGAIN;
}

void
dkim_filter_cancel(void *instance, void *arg)
{
	struct dkim_state *st = instance;
	const struct ptl_resolver_methods *m;
	struct dkim_job *j;
	size_t i;

	for (j = st->jobs; j != NULL && j->arg != arg; j = j->next)
		;
	if (j == NULL)
		return;
	job_unlink(j);
	if (j->in_task) {
		/* The task cannot be stopped: its completion frees the
		 * job. */
		j->cancelled = true;
		return;
	}
	m = st->resolver != NULL ? st->resolver->methods : NULL;
	for (i = 0; j->queries != NULL && m != NULL && i < j->ver.nsig; i++) {
		if (j->queries[i] != NULL)
			m->cancel(st->resolver->instance, j->queries[i]);
	}
	job_free(j);
}

void
dkim_filter_session_end(void *instance, void *arg)
{
	dkim_filter_cancel(instance, arg);
}
