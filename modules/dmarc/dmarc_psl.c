/* SPDX-License-Identifier: MIT */
/* The Public Suffix List as a sorted table, and Organizational Domains. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmarc.h"

/*
 * The list (Debian's publicsuffix package ships it) is parsed once per
 * config generation in the master into one sorted array of rules over
 * one string blob, inherited by the workers: a lookup is a binary
 * search per label of the domain. A rule's key is the rule without its
 * "*." or "!" prefix; the flags say which kinds of rule have that key.
 * Unicode rules are stored as A-labels, the form domains arrive in.
 */

#define PSL_NORMAL    0x1u
#define PSL_WILDCARD  0x2u /* "*.key" */
#define PSL_EXCEPTION 0x4u /* "!key" */

/* The list is about 250 KB; refuse anything absurdly larger. */
#define PSL_FILE_MAX (16u * 1024 * 1024)

struct psl_rule {
	uint32_t off; /* key in blob */
	uint8_t flags;
};

struct dmarc_psl {
	struct psl_rule *rules;
	size_t nrules;
	char *blob;
};

/* ---- Punycode (RFC 3492 section 6.3) ------------------------------------*/

enum {
	PUNY_BASE = 36,
	PUNY_TMIN = 1,
	PUNY_TMAX = 26,
	PUNY_SKEW = 38,
	PUNY_DAMP = 700,
	PUNY_BIAS = 72,
	PUNY_N = 128,
};

#define PUNY_MAX_CP 64 /* code points in one label */

static uint32_t
puny_adapt(uint32_t delta, uint32_t npoints, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / PUNY_DAMP : delta / 2;
	delta += delta / npoints;
	while (delta > ((PUNY_BASE - PUNY_TMIN) * PUNY_TMAX) / 2) {
		delta /= PUNY_BASE - PUNY_TMIN;
		k += PUNY_BASE;
	}
	return k + (PUNY_BASE - PUNY_TMIN + 1) * delta / (delta + PUNY_SKEW);
}

static char
puny_digit(uint32_t d)
{
	return (char)(d < 26 ? 'a' + d : '0' + (d - 26));
}

/* Decode UTF-8 (no overlongs, no surrogates). @return count or -1. */
static int
utf8_decode(const char *s, size_t len, uint32_t *cp, size_t max)
{
	size_t i = 0, n = 0, extra, k;
	uint32_t c, min;

	while (i < len) {
		unsigned char b = (unsigned char)s[i++];

		if (n == max)
			return -1;
		if (b < 0x80) {
			cp[n++] = b;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			c = b & 0x1f, extra = 1, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			c = b & 0x0f, extra = 2, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			c = b & 0x07, extra = 3, min = 0x10000;
		} else {
			return -1;
		}
		for (k = 0; k < extra; k++) {
			if (i >= len || ((unsigned char)s[i] & 0xc0) != 0x80)
				return -1;
			c = (c << 6) | ((unsigned char)s[i++] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return -1;
		cp[n++] = c;
	}
	return (int)n;
}

/* One label to "xn--..." (with @ascii copied as is when ASCII). */
static int
puny_label(const char *s, size_t len, char *out, size_t size)
{
	uint32_t cp[PUNY_MAX_CP], n = PUNY_N, delta = 0, bias = PUNY_BIAS;
	uint32_t h, b = 0, m, q, k, t;
	size_t o = 0, i;
	int count = utf8_decode(s, len, cp, PUNY_MAX_CP);

	if (count <= 0)
		return -1;
#define PUT(ch)                                                                \
	do {                                                                   \
		if (o + 1 >= size)                                             \
			return -1;                                             \
		out[o++] = (ch);                                               \
	} while (0)
	PUT('x');
	PUT('n');
	PUT('-');
	PUT('-');
	for (i = 0; i < (size_t)count; i++) {
		if (cp[i] < 0x80) {
			char c = (char)cp[i];

			PUT(c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
			b++;
		}
	}
	h = b;
	if (b > 0)
		PUT('-');
	while (h < (uint32_t)count) {
		m = UINT32_MAX;
		for (i = 0; i < (size_t)count; i++) {
			if (cp[i] >= n && cp[i] < m)
				m = cp[i];
		}
		if ((m - n) > (UINT32_MAX - delta) / (h + 1))
			return -1;
		delta += (m - n) * (h + 1);
		n = m;
		for (i = 0; i < (size_t)count; i++) {
			if (cp[i] < n && ++delta == 0)
				return -1;
			if (cp[i] != n)
				continue;
			q = delta;
			for (k = PUNY_BASE;; k += PUNY_BASE) {
				t = k <= bias               ? PUNY_TMIN
				    : k >= bias + PUNY_TMAX ? PUNY_TMAX
				                            : k - bias;
				if (q < t)
					break;
				PUT(puny_digit(t + (q - t) % (PUNY_BASE - t)));
				q = (q - t) / (PUNY_BASE - t);
			}
			PUT(puny_digit(q));
			bias = puny_adapt(delta, h + 1, h == b);
			delta = 0;
			h++;
		}
		delta++;
		n++;
	}
#undef PUT
	out[o] = '\0';
	return (int)o;
}

int
dmarc_domain_to_ascii(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0, start = 0, i, j;
	bool wide;
	int n;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || size == 0)
		return -1;
	while (start <= len) {
		for (i = start; i < len && in[i] != '.'; i++)
			;
		if (i == start)
			return -1; /* empty label */
		if (o > 0) {
			if (o + 1 >= size)
				return -1;
			out[o++] = '.';
		}
		wide = false;
		for (j = start; j < i; j++)
			wide |= (unsigned char)in[j] >= 0x80;
		if (wide) {
			n = puny_label(in + start, i - start, out + o,
			               size - o);
			if (n < 0 || n > 63)
				return -1;
			o += (size_t)n;
		} else {
			if (i - start > 63 || o + (i - start) + 1 > size)
				return -1;
			for (j = start; j < i; j++) {
				char c = in[j];

				out[o++] =
				    c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
			}
		}
		start = i + 1;
	}
	out[o] = '\0';
	return o <= DMARC_NAME_MAX ? 0 : -1;
}

/* ---- the table ---------------------------------------------------------*/

static int
psl_cmp(const void *a, const void *b, void *arg)
{
	const struct psl_rule *x = a, *y = b;
	const char *blob = arg;

	return strcmp(blob + x->off, blob + y->off);
}

struct dmarc_psl *
dmarc_psl_parse(const char *text, size_t len, const char **why)
{
	struct dmarc_psl *psl = calloc(1, sizeof(*psl));
	size_t cap = 0, bcap = 0, bused = 0, pos = 0, i, w, tok_len;
	char key[DMARC_NAME_MAX + 1];
	const char *line, *end, *tok;
	uint8_t flags;

	if (psl == NULL)
		goto oom;
	while (pos < len) {
		line = text + pos;
		end = memchr(line, '\n', len - pos);
		if (end == NULL)
			end = text + len;
		pos = (size_t)(end - text) + 1;
		/* The rule is the first word; the rest of the line is not. */
		for (tok = line; tok < end && (*tok == ' ' || *tok == '\t');
		     tok++)
			;
		for (tok_len = 0; tok + tok_len < end && tok[tok_len] != ' ' &&
		                  tok[tok_len] != '\t' && tok[tok_len] != '\r';
		     tok_len++)
			;
		if (tok_len == 0 ||
		    (tok_len >= 2 && tok[0] == '/' && tok[1] == '/'))
			continue;
		flags = PSL_NORMAL;
		if (tok[0] == '!') {
			flags = PSL_EXCEPTION;
			tok++, tok_len--;
		} else if (tok_len > 2 && tok[0] == '*' && tok[1] == '.') {
			flags = PSL_WILDCARD;
			tok += 2, tok_len -= 2;
		}
		if (tok_len == 0 ||
		    dmarc_domain_to_ascii(tok, tok_len, key, sizeof(key)) != 0)
			continue; /* not a rule any domain could match */
		w = strlen(key) + 1;
		if (psl->nrules == cap) {
			struct psl_rule *r;

			cap = cap ? cap * 2 : 4096;
			r = realloc(psl->rules, cap * sizeof(*r));
			if (r == NULL)
				goto oom;
			psl->rules = r;
		}
		if (bused + w > bcap) {
			char *nb;

			bcap = bcap ? bcap * 2 : 64 * 1024;
			nb = realloc(psl->blob, bcap);
			if (nb == NULL)
				goto oom;
			psl->blob = nb;
		}
		memcpy(psl->blob + bused, key, w);
		psl->rules[psl->nrules].off = (uint32_t)bused;
		psl->rules[psl->nrules].flags = flags;
		psl->nrules++;
		bused += w;
	}
	if (psl->nrules == 0) {
		*why = "no rules";
		dmarc_psl_free(psl);
		return NULL;
	}
	qsort_r(psl->rules, psl->nrules, sizeof(*psl->rules), psl_cmp,
	        psl->blob);
	/* Merge rules with one key ("ck" and "*.ck"). */
	for (i = 1, w = 0; i < psl->nrules; i++) {
		if (strcmp(psl->blob + psl->rules[w].off,
		           psl->blob + psl->rules[i].off) == 0)
			psl->rules[w].flags |= psl->rules[i].flags;
		else
			psl->rules[++w] = psl->rules[i];
	}
	psl->nrules = w + 1;
	return psl;
oom:
	*why = "out of memory";
	dmarc_psl_free(psl);
	return NULL;
}

struct dmarc_psl *
dmarc_psl_load(const char *path, char *why, size_t size)
{
	struct dmarc_psl *psl = NULL;
	const char *reason = NULL;
	struct stat sb;
	char *text = NULL;
	size_t got = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		(void)snprintf(why, size, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    (uint64_t)sb.st_size > PSL_FILE_MAX) {
		(void)snprintf(why, size,
		               "%s: not a regular file of at most "
		               "16 MB",
		               path);
		goto out;
	}
	text = malloc((size_t)sb.st_size + 1);
	if (text == NULL) {
		(void)snprintf(why, size, "out of memory");
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		n = read(fd, text + got, (size_t)sb.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)snprintf(why, size, "%s: %s", path,
			               n < 0 ? strerror(errno) : "short read");
			goto out;
		}
		got += (size_t)n;
	}
	psl = dmarc_psl_parse(text, got, &reason);
	if (psl == NULL)
		(void)snprintf(why, size, "%s: %s", path, reason);
out:
	free(text);
	(void)close(fd);
	return psl;
}

void
dmarc_psl_free(struct dmarc_psl *psl)
{
	if (psl == NULL)
		return;
	free(psl->rules);
	free(psl->blob);
	free(psl);
}

size_t
dmarc_psl_rules(const struct dmarc_psl *psl)
{
	return psl != NULL ? psl->nrules : 0;
}

static unsigned
psl_flags(const struct dmarc_psl *psl, const char *key)
{
	size_t lo = 0, hi = psl->nrules, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(key, psl->blob + psl->rules[mid].off);
		if (c == 0)
			return psl->rules[mid].flags;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/*
 * The publicsuffix.org algorithm: the matching rule with the most
 * labels wins, an exception rule above all; no match means "*". The
 * Organizational Domain is one label more than the public suffix.
 */
int
dmarc_org_domain(const struct dmarc_psl *psl, const char *domain, char *out,
                 size_t size)
{
	const char *starts[128];
	size_t n = 0, k, best = 1, len = strlen(domain);
	const char *p;
	unsigned f;

	if (len == 0 || len >= size)
		return -1;
	for (p = domain + len; p > domain && n < 128; p--) {
		if (p[-1] == '.')
			starts[n++] = p;
	}
	if (n < 128)
		starts[n++] = domain;
	/* starts[k - 1]: the last k labels. */
	for (k = 1; psl != NULL && k <= n; k++) {
		f = psl_flags(psl, starts[k - 1]);
		if (f & PSL_EXCEPTION) {
			best = k - 1;
			break;
		}
		if ((f & PSL_NORMAL) && k > best)
			best = k;
		if ((f & PSL_WILDCARD) && k < n && k + 1 > best)
			best = k + 1;
	}
	p = best < n ? starts[best] : domain;
	memmove(out, p, strlen(p) + 1); /* @out may be @domain */
	return 0;
}
