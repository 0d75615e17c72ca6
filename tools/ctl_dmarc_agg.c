/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: aggregation of report data lines and the report XML. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_dmarc_agg.h"

/*
 * A row is its count and a key: every value the report shows for it,
 * NUL-separated in the order of enum agg_field, then per DKIM result its
 * domain, selector and result. Two messages share a row only when the
 * report would say the same of both, and a row costs what its values
 * take, not a fixed struct (a day can have many distinct rows).
 */
enum agg_field {
	F_SOURCE_IP,
	F_DISPOSITION,
	F_DKIM_EVAL,
	F_SPF_EVAL,
	F_SAMPLED,
	F_HEADER_FROM,
	F_ENVELOPE_FROM,
	F_SPF_DOMAIN,
	F_SPF_SCOPE,
	F_SPF_RESULT,
	F_NDKIM,
	F_FIXED, /* number of the fields above */
};

#define AGG_FIELDS_MAX (F_FIXED + 3 * CTL_DMARC_DKIM_MAX)
#define AGG_KEY_MAX    (AGG_FIELDS_MAX * (CTL_DMARC_VALUE_MAX + 1))

struct ctl_dmarc_row {
	struct ctl_dmarc_row *hnext;
	const struct ctl_dmarc_group *group;
	uint32_t hash;
	uint64_t count;
	size_t keylen;
	char key[];
};

struct agg_group {
	struct ctl_dmarc_group pub; /* first: the public view */
	struct agg_group *hnext;
	uint32_t hash;
	size_t rows_cap;
};

struct ctl_dmarc_agg {
	struct agg_group **groups; /* in order of appearance, then sorted */
	size_t ngroups, groups_cap;
	struct agg_group **ghash;
	size_t ghash_size;
	struct ctl_dmarc_row **rhash;
	size_t rhash_size, nrows;
};

/* ---- reading one line ------------------------------------------------- */

/*
 * The string @key of @obj into @out: printable ASCII of at most
 * CTL_DMARC_VALUE_MAX bytes; null or missing read as "" when
 * @may_be_null. @return 0, or -1: the line is malformed.
 */
static int
agg_str(json_t *obj, const char *key, bool may_be_null, char *out, size_t size)
{
	json_t *v = json_object_get(obj, key);
	const char *s;
	size_t i, n;

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return may_be_null ? 0 : -1;
	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n >= size || n > CTL_DMARC_VALUE_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return -1;
		out[i] = s[i];
	}
	out[n] = '\0';
	return 0;
}

static bool
agg_bool(json_t *obj, const char *key)
{
	return json_is_true(json_object_get(obj, key));
}

static bool
agg_one_of(const char *s, const char *const *set)
{
	for (; *set != NULL; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static const char *const agg_policies[] = {"none", "quarantine", "reject",
                                           NULL};
/* The result types of the RFC 7489 appendix C schema. */
static const char *const agg_dkim_results[] = {
    "none",    "pass",      "fail",      "policy",
    "neutral", "temperror", "permerror", NULL};
static const char *const agg_spf_results[] = {
    "none",     "neutral",   "pass",      "fail",
    "softfail", "temperror", "permerror", NULL};

/* A result outside the schema's set would make the report invalid; the
 * module writes none, and a hand-edited file gets the closest. */
static void
agg_result(char *r, const char *const *set)
{
	size_t i;

	for (i = 0; r[i] != '\0'; i++)
		if (r[i] >= 'A' && r[i] <= 'Z')
			r[i] = (char)(r[i] - 'A' + 'a');
	if (strcmp(r, "hardfail") == 0)
		strcpy(r, "fail");
	if (r[0] == '\0')
		strcpy(r, "none");
	if (!agg_one_of(r, set))
		strcpy(r, "permerror");
}

static void
agg_lower(char *s)
{
	for (; *s != '\0'; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

struct agg_line {
	char policy_domain[CTL_DMARC_VALUE_MAX + 1];
	char rua[CTL_DMARC_VALUE_MAX * 2 + 3];
	struct ctl_dmarc_policy policy;
	char key[AGG_KEY_MAX];
	size_t keylen;
};

static int
agg_key_add(struct agg_line *l, const char *v)
{
	size_t n = strlen(v);

	if (l->keylen + n + 1 > sizeof(l->key))
		return -1;
	memcpy(l->key + l->keylen, v, n + 1);
	l->keylen += n + 1;
	return 0;
}

static int
agg_policy(json_t *pol, struct agg_line *l)
{
	json_t *pct = json_object_get(pol, "pct");
	json_t *rua = json_object_get(pol, "rua");
	struct ctl_dmarc_policy *p = &l->policy;
	char v[CTL_DMARC_VALUE_MAX + 1];
	size_t i;

	if (!json_is_object(pol) || !json_is_string(rua) ||
	    json_string_length(rua) >= sizeof(l->rua) ||
	    json_string_length(rua) == 0)
		return -1;
	memcpy(l->rua, json_string_value(rua), json_string_length(rua) + 1);
	for (i = 0; l->rua[i] != '\0'; i++)
		if (l->rua[i] < 0x20 || l->rua[i] > 0x7e)
			return -1;
	if (agg_str(pol, "p", false, p->p, sizeof(p->p)) != 0 ||
	    !agg_one_of(p->p, agg_policies))
		return -1;
	if (agg_str(pol, "sp", true, p->sp, sizeof(p->sp)) != 0)
		return -1;
	if (!agg_one_of(p->sp, agg_policies))
		strcpy(p->sp, p->p);
	if (agg_str(pol, "adkim", true, v, sizeof(v)) != 0)
		return -1;
	strcpy(p->adkim, strcmp(v, "s") == 0 ? "s" : "r");
	if (agg_str(pol, "aspf", true, v, sizeof(v)) != 0)
		return -1;
	strcpy(p->aspf, strcmp(v, "s") == 0 ? "s" : "r");
	if (agg_str(pol, "fo", true, v, sizeof(v)) != 0)
		return -1;
	if (v[0] == '\0' || strlen(v) >= sizeof(p->fo) ||
	    strspn(v, "01ds:") != strlen(v))
		strcpy(v, "0");
	strcpy(p->fo, v);
	if (pct == NULL || json_is_null(pct)) {
		p->pct = 100;
	} else if (json_is_integer(pct) && json_integer_value(pct) >= 0 &&
	           json_integer_value(pct) <= 100) {
		p->pct = (unsigned)json_integer_value(pct);
	} else {
		return -1;
	}
	return 0;
}

static int
agg_auth(json_t *root, struct agg_line *l)
{
	json_t *spf = json_object_get(root, "spf");
	json_t *dkim = json_object_get(root, "dkim");
	char v[CTL_DMARC_VALUE_MAX + 1], ndkim[4];
	size_t i, n;
	json_t *sig;

	if (!json_is_object(spf) ||
	    (dkim != NULL && !json_is_null(dkim) && !json_is_array(dkim)))
		return -1;
	if (agg_str(spf, "domain", true, v, sizeof(v)) != 0)
		return -1;
	agg_lower(v);
	if (agg_key_add(l, v) != 0)
		return -1;
	if (agg_str(spf, "scope", true, v, sizeof(v)) != 0)
		return -1;
	if (agg_key_add(l, strcmp(v, "helo") == 0 ? "helo" : "mfrom") != 0)
		return -1;
	if (agg_str(spf, "result", true, v, sizeof(v)) != 0)
		return -1;
	agg_result(v, agg_spf_results);
	if (agg_key_add(l, v) != 0)
		return -1;
	n = json_is_array(dkim) ? json_array_size(dkim) : 0;
	if (n > CTL_DMARC_DKIM_MAX)
		n = CTL_DMARC_DKIM_MAX;
	(void)snprintf(ndkim, sizeof(ndkim), "%zu", n);
	if (agg_key_add(l, ndkim) != 0)
		return -1;
	for (i = 0; i < n; i++) {
		sig = json_array_get(dkim, i);
		if (!json_is_object(sig))
			return -1;
		if (agg_str(sig, "domain", true, v, sizeof(v)) != 0)
			return -1;
		agg_lower(v);
		if (agg_key_add(l, v) != 0)
			return -1;
		if (agg_str(sig, "selector", true, v, sizeof(v)) != 0 ||
		    agg_key_add(l, v) != 0)
			return -1;
		if (agg_str(sig, "result", true, v, sizeof(v)) != 0)
			return -1;
		agg_result(v, agg_dkim_results);
		if (agg_key_add(l, v) != 0)
			return -1;
	}
	return 0;
}

static int
agg_parse(const char *text, size_t len, struct agg_line *l)
{
	json_t *root, *spf, *dkim, *sig;
	char v[CTL_DMARC_VALUE_MAX + 1], ip[INET6_ADDRSTRLEN];
	unsigned char addr[16];
	bool dkim_pass = false;
	const char *at;
	size_t i;
	int rc = -1;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root))
		goto out;
	if (agg_str(root, "policy_domain", false, l->policy_domain,
	            sizeof(l->policy_domain)) != 0)
		goto out;
	agg_lower(l->policy_domain);
	/* It goes into file names and header fields. */
	if (!ctl_dmarc_domain_ok(l->policy_domain))
		goto out;
	if (agg_policy(json_object_get(root, "policy"), l) != 0)
		goto out;
	l->keylen = 0;
	if (agg_str(root, "source_ip", false, v, sizeof(v)) != 0)
		goto out;
	/* The canonical form: one row for one address however written. */
	if (inet_pton(AF_INET, v, addr) == 1) {
		if (inet_ntop(AF_INET, addr, ip, sizeof(ip)) == NULL)
			goto out;
	} else if (inet_pton(AF_INET6, v, addr) == 1) {
		if (inet_ntop(AF_INET6, addr, ip, sizeof(ip)) == NULL)
			goto out;
	} else {
		goto out;
	}
	if (agg_key_add(l, ip) != 0)
		goto out;
	if (agg_str(root, "disposition", false, v, sizeof(v)) != 0 ||
	    !agg_one_of(v, agg_policies) || agg_key_add(l, v) != 0)
		goto out;
	/* policy_evaluated: an aligned pass of each mechanism (section
	 * 4.2); the module marks the aligned passing signature. */
	spf = json_object_get(root, "spf");
	dkim = json_object_get(root, "dkim");
	for (i = 0; json_is_array(dkim) && i < json_array_size(dkim); i++) {
		sig = json_array_get(dkim, i);
		if (agg_bool(sig, "aligned") &&
		    json_is_string(json_object_get(sig, "result")) &&
		    strcmp(json_string_value(json_object_get(sig, "result")),
		           "pass") == 0)
			dkim_pass = true;
	}
	if (agg_key_add(l, dkim_pass ? "pass" : "fail") != 0)
		goto out;
	if (agg_key_add(l, agg_bool(spf, "aligned") ? "pass" : "fail") != 0)
		goto out;
	if (agg_key_add(l, agg_bool(root, "sampled_out") ? "1" : "0") != 0)
		goto out;
	if (agg_str(root, "header_from", false, v, sizeof(v)) != 0 ||
	    v[0] == '\0')
		goto out;
	agg_lower(v);
	if (agg_key_add(l, v) != 0)
		goto out;
	/* identifiers/envelope_from is the MAIL FROM domain. */
	if (agg_str(root, "envelope_from", true, v, sizeof(v)) != 0)
		goto out;
	at = strrchr(v, '@');
	agg_lower(v);
	if (agg_key_add(l, at != NULL ? at + 1 : v) != 0)
		goto out;
	if (agg_auth(root, l) != 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* ---- the tables ------------------------------------------------------- */

/* FNV-1a: a hostile file can at worst make lookups slow, and the
 * number of rows is bounded. */
static uint32_t
agg_hash(const void *p, size_t len, uint32_t h)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 16777619u;
	}
	return h;
}

static int
agg_grow_groups(struct ctl_dmarc_agg *a)
{
	struct agg_group **tab, *g, *next;
	size_t size = a->ghash_size != 0 ? a->ghash_size * 2 : 64, i;

	tab = calloc(size, sizeof(*tab));
	if (tab == NULL)
		return -1;
	for (i = 0; i < a->ghash_size; i++) {
		for (g = a->ghash[i]; g != NULL; g = next) {
			next = g->hnext;
			g->hnext = tab[g->hash & (size - 1)];
			tab[g->hash & (size - 1)] = g;
		}
	}
	free(a->ghash);
	a->ghash = tab;
	a->ghash_size = size;
	return 0;
}

static int
agg_grow_rows(struct ctl_dmarc_agg *a)
{
	struct ctl_dmarc_row **tab, *r, *next;
	size_t size = a->rhash_size != 0 ? a->rhash_size * 2 : 256, i;

	tab = calloc(size, sizeof(*tab));
	if (tab == NULL)
		return -1;
	for (i = 0; i < a->rhash_size; i++) {
		for (r = a->rhash[i]; r != NULL; r = next) {
			next = r->hnext;
			r->hnext = tab[r->hash & (size - 1)];
			tab[r->hash & (size - 1)] = r;
		}
	}
	free(a->rhash);
	a->rhash = tab;
	a->rhash_size = size;
	return 0;
}

/* The group of @l, made when new. @return it, or NULL with *@rc set. */
static struct agg_group *
agg_group(struct ctl_dmarc_agg *a, const struct agg_line *l, int *rc)
{
	size_t dlen = strlen(l->policy_domain);
	uint32_t h = agg_hash(l->policy_domain, dlen + 1, 2166136261u);
	struct agg_group *g, **groups;

	h = agg_hash(l->rua, strlen(l->rua), h);
	for (g = a->ghash_size != 0 ? a->ghash[h & (a->ghash_size - 1)] : NULL;
	     g != NULL; g = g->hnext)
		if (g->hash == h &&
		    strcmp(g->pub.policy_domain, l->policy_domain) == 0 &&
		    strcmp(g->pub.rua, l->rua) == 0)
			return g;
	if (a->ngroups >= CTL_DMARC_GROUPS_MAX) {
		*rc = CTL_DMARC_LINE_FULL;
		return NULL;
	}
	*rc = CTL_DMARC_LINE_NOMEM;
	if (a->ngroups >= a->ghash_size && agg_grow_groups(a) != 0)
		return NULL;
	if (a->ngroups == a->groups_cap) {
		size_t cap = a->groups_cap != 0 ? a->groups_cap * 2 : 16;

		groups = realloc(a->groups, cap * sizeof(*groups));
		if (groups == NULL)
			return NULL;
		a->groups = groups;
		a->groups_cap = cap;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	memcpy(g->pub.policy_domain, l->policy_domain, dlen + 1);
	memcpy(g->pub.rua, l->rua, strlen(l->rua) + 1);
	g->pub.policy = l->policy;
	g->hash = h;
	g->hnext = a->ghash[h & (a->ghash_size - 1)];
	a->ghash[h & (a->ghash_size - 1)] = g;
	a->groups[a->ngroups++] = g;
	return g;
}

static int
agg_row(struct ctl_dmarc_agg *a, struct agg_group *g, const struct agg_line *l)
{
	uint32_t h = agg_hash(&g, sizeof(g), 2166136261u);
	struct ctl_dmarc_row *r, **rows;

	h = agg_hash(l->key, l->keylen, h);
	for (r = a->rhash_size != 0 ? a->rhash[h & (a->rhash_size - 1)] : NULL;
	     r != NULL; r = r->hnext) {
		if (r->hash == h && r->group == &g->pub &&
		    r->keylen == l->keylen &&
		    memcmp(r->key, l->key, l->keylen) == 0) {
			r->count++;
			g->pub.messages++;
			return CTL_DMARC_LINE_OK;
		}
	}
	if (a->nrows >= CTL_DMARC_ROWS_MAX)
		return CTL_DMARC_LINE_FULL;
	if (a->nrows >= a->rhash_size && agg_grow_rows(a) != 0)
		return CTL_DMARC_LINE_NOMEM;
	if (g->pub.nrows == g->rows_cap) {
		size_t cap = g->rows_cap != 0 ? g->rows_cap * 2 : 8;

		rows = realloc(g->pub.rows, cap * sizeof(*rows));
		if (rows == NULL)
			return CTL_DMARC_LINE_NOMEM;
		g->pub.rows = rows;
		g->rows_cap = cap;
	}
	r = malloc(sizeof(*r) + l->keylen);
	if (r == NULL)
		return CTL_DMARC_LINE_NOMEM;
	r->group = &g->pub;
	r->hash = h;
	r->count = 1;
	r->keylen = l->keylen;
	memcpy(r->key, l->key, l->keylen);
	r->hnext = a->rhash[h & (a->rhash_size - 1)];
	a->rhash[h & (a->rhash_size - 1)] = r;
	g->pub.rows[g->pub.nrows++] = r;
	g->pub.messages++;
	a->nrows++;
	return CTL_DMARC_LINE_OK;
}

struct ctl_dmarc_agg *
ctl_dmarc_agg_new(void)
{
	return calloc(1, sizeof(struct ctl_dmarc_agg));
}

void
ctl_dmarc_agg_free(struct ctl_dmarc_agg *a)
{
	size_t i, j;

	if (a == NULL)
		return;
	for (i = 0; i < a->ngroups; i++) {
		for (j = 0; j < a->groups[i]->pub.nrows; j++)
			free(a->groups[i]->pub.rows[j]);
		free(a->groups[i]->pub.rows);
		free(a->groups[i]);
	}
	free(a->groups);
	free(a->ghash);
	free(a->rhash);
	free(a);
}

int
ctl_dmarc_agg_add(struct ctl_dmarc_agg *a, const char *line, size_t len)
{
	struct agg_line *l;
	struct agg_group *g;
	int rc;

	if (len > CTL_DMARC_LINE_MAX)
		return CTL_DMARC_LINE_MALFORMED;
	/* The key buffer is too big for the stack of a sanitized build. */
	l = malloc(sizeof(*l));
	if (l == NULL)
		return CTL_DMARC_LINE_NOMEM;
	if (agg_parse(line, len, l) != 0) {
		free(l);
		return CTL_DMARC_LINE_MALFORMED;
	}
	g = agg_group(a, l, &rc);
	if (g != NULL)
		rc = agg_row(a, g, l);
	free(l);
	return rc;
}

static int
agg_cmp_groups(const void *x, const void *y)
{
	const struct agg_group *a = *(struct agg_group *const *)x;
	const struct agg_group *b = *(struct agg_group *const *)y;
	int c = strcmp(a->pub.policy_domain, b->pub.policy_domain);

	return c != 0 ? c : strcmp(a->pub.rua, b->pub.rua);
}

static int
agg_cmp_rows(const void *x, const void *y)
{
	const struct ctl_dmarc_row *a = *(struct ctl_dmarc_row *const *)x;
	const struct ctl_dmarc_row *b = *(struct ctl_dmarc_row *const *)y;
	size_t n = a->keylen < b->keylen ? a->keylen : b->keylen;
	int c = memcmp(a->key, b->key, n);

	if (c != 0)
		return c;
	return a->keylen < b->keylen ? -1 : a->keylen > b->keylen;
}

int
ctl_dmarc_agg_finish(struct ctl_dmarc_agg *a)
{
	size_t i;

	if (a->ngroups > 0)
		qsort(a->groups, a->ngroups, sizeof(*a->groups),
		      agg_cmp_groups);
	for (i = 0; i < a->ngroups; i++)
		if (a->groups[i]->pub.nrows > 0)
			qsort(a->groups[i]->pub.rows, a->groups[i]->pub.nrows,
			      sizeof(*a->groups[i]->pub.rows), agg_cmp_rows);
	return 0;
}

size_t
ctl_dmarc_agg_ngroups(const struct ctl_dmarc_agg *a)
{
	return a->ngroups;
}

const struct ctl_dmarc_group *
ctl_dmarc_agg_group(const struct ctl_dmarc_agg *a, size_t i)
{
	return i < a->ngroups ? &a->groups[i]->pub : NULL;
}

/* ---- XML -------------------------------------------------------------- */

/* <name>escaped value</name> at @indent. */
static void
xml_elem(struct ctl_dmarc_buf *b, int indent, const char *name,
         const char *value)
{
	(void)ctl_dmarc_buf_printf(b, "%*s<%s>", indent, "", name);
	(void)ctl_dmarc_xml_escape(b, value);
	(void)ctl_dmarc_buf_printf(b, "</%s>\n", name);
}

static void
xml_row(struct ctl_dmarc_buf *b, const struct ctl_dmarc_row *r)
{
	const char *f[AGG_FIELDS_MAX];
	size_t nf = 0, off = 0, ndkim, i;
	char count[24];

	while (off < r->keylen && nf < AGG_FIELDS_MAX) {
		f[nf++] = r->key + off;
		off += strlen(r->key + off) + 1;
	}
	ndkim = nf > F_NDKIM ? strtoul(f[F_NDKIM], NULL, 10) : 0;
	if (nf < F_FIXED || nf != F_FIXED + 3 * ndkim) {
		b->failed = true; /* cannot happen: agg_parse() built it */
		return;
	}
	(void)snprintf(count, sizeof(count), "%llu",
	               (unsigned long long)r->count);
	(void)ctl_dmarc_buf_str(b, "  <record>\n    <row>\n");
	xml_elem(b, 6, "source_ip", f[F_SOURCE_IP]);
	xml_elem(b, 6, "count", count);
	(void)ctl_dmarc_buf_str(b, "      <policy_evaluated>\n");
	xml_elem(b, 8, "disposition", f[F_DISPOSITION]);
	xml_elem(b, 8, "dkim", f[F_DKIM_EVAL]);
	xml_elem(b, 8, "spf", f[F_SPF_EVAL]);
	if (strcmp(f[F_SAMPLED], "1") == 0)
		(void)ctl_dmarc_buf_str(b,
		                        "        <reason>\n"
		                        "          <type>sampled_out</type>\n"
		                        "        </reason>\n");
	(void)ctl_dmarc_buf_str(b, "      </policy_evaluated>\n"
	                           "    </row>\n    <identifiers>\n");
	xml_elem(b, 6, "envelope_from", f[F_ENVELOPE_FROM]);
	xml_elem(b, 6, "header_from", f[F_HEADER_FROM]);
	(void)ctl_dmarc_buf_str(b, "    </identifiers>\n    <auth_results>\n");
	for (i = 0; i < ndkim; i++) {
		const char *const *d = f + F_FIXED + 3 * i;

		(void)ctl_dmarc_buf_str(b, "      <dkim>\n");
		xml_elem(b, 8, "domain", d[0]);
		if (d[1][0] != '\0')
			xml_elem(b, 8, "selector", d[1]);
		xml_elem(b, 8, "result", d[2]);
		(void)ctl_dmarc_buf_str(b, "      </dkim>\n");
	}
	(void)ctl_dmarc_buf_str(b, "      <spf>\n");
	xml_elem(b, 8, "domain", f[F_SPF_DOMAIN]);
	xml_elem(b, 8, "scope", f[F_SPF_SCOPE]);
	xml_elem(b, 8, "result", f[F_SPF_RESULT]);
	(void)ctl_dmarc_buf_str(b, "      </spf>\n    </auth_results>\n"
	                           "  </record>\n");
}

int
ctl_dmarc_xml(const struct ctl_dmarc_group *g,
              const struct ctl_dmarc_meta *meta, struct ctl_dmarc_buf *b)
{
	const struct ctl_dmarc_policy *p = &g->policy;
	char num[24];
	size_t i;

	(void)ctl_dmarc_buf_str(b,
	                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	                        "<feedback>\n  <version>1.0</version>\n"
	                        "  <report_metadata>\n");
	xml_elem(b, 4, "org_name", meta->org_name);
	xml_elem(b, 4, "email", meta->email);
	xml_elem(b, 4, "report_id", meta->report_id);
	(void)ctl_dmarc_buf_printf(b,
	                           "    <date_range>\n"
	                           "      <begin>%lld</begin>\n"
	                           "      <end>%lld</end>\n"
	                           "    </date_range>\n"
	                           "  </report_metadata>\n"
	                           "  <policy_published>\n",
	                           (long long)meta->begin,
	                           (long long)meta->end);
	xml_elem(b, 4, "domain", g->policy_domain);
	xml_elem(b, 4, "adkim", p->adkim);
	xml_elem(b, 4, "aspf", p->aspf);
	xml_elem(b, 4, "p", p->p);
	xml_elem(b, 4, "sp", p->sp);
	(void)snprintf(num, sizeof(num), "%u", p->pct);
	xml_elem(b, 4, "pct", num);
	xml_elem(b, 4, "fo", p->fo);
	(void)ctl_dmarc_buf_str(b, "  </policy_published>\n");
	for (i = 0; i < g->nrows && !b->failed; i++)
		xml_row(b, g->rows[i]);
	(void)ctl_dmarc_buf_str(b, "</feedback>\n");
	return b->failed ? -1 : 0;
}
