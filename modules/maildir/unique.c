/* SPDX-License-Identifier: MIT */
/* Maildir file names: making unique ones, reading size, uid and order. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"

/*
 * Longest host name part kept in a unique name: the part before "," is
 * the uid, which must fit in a POP3 UIDL (70 characters) together with
 * time, microseconds, pid and counter (at most 38 characters).
 */
#define MAILDIR_HOST_KEEP 32

/*
 * The Maildir spec escapes "/" and ":" in the host name as "\057" and
 * "\072"; "," is escaped too, as Dovecot does, because it starts the
 * ",S=" field.
 */
void
maildir_hostname_sanitize(const char *host, char *out, size_t outsz)
{
	size_t pos = 0;

	if (outsz > MAILDIR_HOST_KEEP + 1)
		outsz = MAILDIR_HOST_KEEP + 1;
	for (; *host != '\0'; host++) {
		unsigned char c = (unsigned char)*host;
		char esc[5];
		size_t n = 1;

		if (c == '/' || c == ':' || c == ',' || c == '\\' ||
		    c <= 0x20 || c >= 0x7f) {
			snprintf(esc, sizeof(esc), "\\%03o", c);
			n = 4;
		} else {
			esc[0] = (char)c;
		}
		if (pos + n >= outsz)
			break;
		memcpy(out + pos, esc, n);
		pos += n;
	}
	if (pos == 0 && outsz > 9) {
		memcpy(out, "localhost", 9);
		pos = 9;
	}
	out[pos] = '\0';
}

int
maildir_unique_name(struct maildir_instance *md, char *out, size_t outsz)
{
	struct timespec ts;
	uint_fast64_t q = atomic_fetch_add(&md->counter, 1) + 1;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(out, outsz, "%lld.M%ldP%ldQ%" PRIuFAST64 ".%s",
	             (long long)ts.tv_sec, ts.tv_nsec / 1000, (long)getpid(), q,
	             md->hostname);
	if (n < 0 || (size_t)n >= outsz)
		return PTL_ERROR;
	return PTL_OK;
}

/* The base name: everything before the ":2,FLAGS" info. */
static size_t
maildir_base_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

bool
maildir_name_size(const char *name, uint64_t *size_out)
{
	size_t base = maildir_base_len(name);
	const char *p = name;
	uint64_t size = 0;

	for (;;) {
		p = memchr(p, ',', base - (size_t)(p - name));
		if (p == NULL)
			return false;
		p++;
		if ((size_t)(p - name) + 2 <= base && p[0] == 'S' &&
		    p[1] == '=')
			break;
	}
	p += 2;
	if (*p < '0' || *p > '9')
		return false;
	while (*p >= '0' && *p <= '9') {
		if (size > (UINT64_MAX - 9) / 10)
			return false;
		size = size * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (*p != ',' && *p != ':' && *p != '\0')
		return false;
	*size_out = size;
	return true;
}

static uint64_t
maildir_fnv1a(const char *s, size_t len, uint64_t basis)
{
	uint64_t h = basis;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/*
 * The unique part (before the first "," or ":") never changes while the
 * flags do, so it is the uid. Names from other programs that do not fit
 * a POP3 UIDL get a digest of the whole base name instead.
 */
void
maildir_name_uid(const char *name, char *uid_out, size_t uidsz)
{
	size_t base = maildir_base_len(name), len;
	const char *comma = memchr(name, ',', base);
	bool ok = true;

	len = comma != NULL ? (size_t)(comma - name) : base;
	if (len == 0 || len > MAILDIR_UID_MAX || len >= uidsz)
		ok = false;
	for (size_t i = 0; ok && i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c <= 0x20 || c >= 0x7f)
			ok = false;
	}
	if (ok) {
		memcpy(uid_out, name, len);
		uid_out[len] = '\0';
		return;
	}
	snprintf(uid_out, uidsz, "H%016" PRIx64 "%016" PRIx64,
	         maildir_fnv1a(name, base, 0xcbf29ce484222325ULL),
	         maildir_fnv1a(name, base, 0x84222325cbf29ce4ULL));
}

/* Leading decimal number of @p, advancing *@p; 0 when there is none. */
static uint64_t
maildir_leading_number(const char **p)
{
	uint64_t v = 0;

	while (**p >= '0' && **p <= '9') {
		if (v < UINT64_MAX / 16)
			v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	return v;
}

/*
 * Delivery order: seconds, then microseconds (".M<usec>"), then the
 * name. Plain strcmp() would misorder "999.x" and "1000.x".
 */
int
maildir_name_compare(const char *a, const char *b)
{
	const char *pa = a, *pb = b;
	uint64_t sa = maildir_leading_number(&pa);
	uint64_t sb = maildir_leading_number(&pb);
	uint64_t ua = 0, ub = 0;

	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (pa[0] == '.' && pa[1] == 'M') {
		pa += 2;
		ua = maildir_leading_number(&pa);
	}
	if (pb[0] == '.' && pb[1] == 'M') {
		pb += 2;
		ub = maildir_leading_number(&pb);
	}
	if (ua != ub)
		return ua < ub ? -1 : 1;
	return strcmp(a, b);
}
