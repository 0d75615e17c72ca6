/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the users and aliases files and the tables built. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "passwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: one byte of settings, then the users file, the aliases file and
 * a list of lookups, separated by 0xff bytes. A lookup line "*DOMAIN
 * TARGET" is a catch-all instead. The files come from the admin, but a
 * broken one (or one written by a careless script) must give an error,
 * never a crash or a wrong table.
 */

#define FUZZ_CATCH_ALLS 4

struct span {
	const char *p;
	size_t len;
};

/* The next piece up to a 0xff byte (or the end). */
static struct span
section(const char **p, const char *end)
{
	struct span s = {*p, 0};
	const char *ff = memchr(*p, 0xff, (size_t)(end - *p));

	s.len = (size_t)((ff != NULL ? ff : end) - *p);
	*p = ff != NULL ? ff + 1 : end;
	return s;
}

static void
touch(const char *p, size_t len)
{
	volatile char sink = 0;

	for (size_t i = 0; i < len; i++)
		sink ^= p[i];
	(void)sink;
}

static bool
within(struct passwd_span s, const char *line, size_t len)
{
	return s.ptr >= line && s.len <= len && s.ptr + s.len <= line + len;
}

/* Each line alone, as petrelctl checks them. */
static void
lines(struct span text, bool plain)
{
	const char *p = text.p, *end = text.p + text.len, *nl;
	struct passwd_entry e;
	struct passwd_span addr, list, target;
	char why[PASSWD_WHY_MAX];
	size_t len, count;
	int rc;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		why[0] = '\0';
		rc =
		    passwd_parse_user_line(p, len, plain, &e, why, sizeof(why));
		if (rc == PTL_OK) {
			if (!within(e.user, p, len) ||
			    !within(e.hash, p, len) ||
			    !within(e.rest, p, len) ||
			    !within(e.prefix, p, len) ||
			    passwd_check_address(e.user.ptr, e.user.len, "user",
			                         NULL, 0) != PTL_OK)
				abort();
		} else if (rc == PTL_ERROR) {
			if (why[0] == '\0' || strlen(why) >= sizeof(why))
				abort();
		} else if (rc != PTL_DECLINED) {
			abort();
		}
		rc = passwd_parse_alias_line(p, len, &addr, &list, why,
		                             sizeof(why));
		if (rc == PTL_OK || rc == PTL_AGAIN) {
			if (!within(list, p, len) ||
			    (rc == PTL_OK && !within(addr, p, len)))
				abort();
			count = 0;
			while (passwd_next_target(&list, &target)) {
				if (!within(target, p, len) ||
				    target.len == 0 || ++count > len)
					abort();
			}
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

static void
check_user(const struct passwd_db *db, const struct passwd_user *u)
{
	size_t n = strlen(u->name);

	touch(u->hash, u->hash_len);
	if (strlen(u->key) != n || u->hash[u->hash_len] != '\0' ||
	    passwd_db_find_user(db, u->name) != u)
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = u->name[i];

		if (u->key[i] != ((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c))
			abort();
	}
}

static void
lookups(const struct passwd_db *db, struct span q)
{
	const char *p = q.p, *end = q.p + q.len, *nl;
	struct passwd_resolved r;
	char addr[PASSWD_ADDRESS_MAX + 64];
	size_t len;

	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		len = (size_t)((nl != NULL ? nl : end) - p);
		if (len < sizeof(addr) && memchr(p, '\0', len) == NULL) {
			memcpy(addr, p, len);
			addr[len] = '\0';
			if (passwd_db_resolve(db, addr, &r)) {
				if (r.nusers == 0 ||
				    r.nusers > PASSWD_ALIAS_MAX_USERS)
					abort();
				for (size_t i = 0; i < r.nusers; i++) {
					check_user(db, r.users[i]);
					for (size_t j = 0; j < i && i < 64; j++)
						if (r.users[j] == r.users[i])
							abort();
				}
			}
			if (passwd_db_find_user(db, addr) != NULL)
				check_user(db, passwd_db_find_user(db, addr));
			(void)passwd_db_is_local_domain(db, addr);
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct passwd_catch_all catch_alls[FUZZ_CATCH_ALLS];
	char catch_text[FUZZ_CATCH_ALLS][2][PASSWD_ADDRESS_MAX + 1];
	const char *domains[] = {"example.org", "EXAMPLE.net"};
	struct passwd_options opts;
	struct passwd_db *db;
	struct ptl_error err;
	struct span users, aliases, queries;
	const char *p, *end, *nl, *sp;
	enum passwd_scheme scheme;
	size_t ncatch = 0, len, count;
	uint8_t flags;
	int rc;

	if (size < 1)
		return 0;
	flags = data[0];
	p = (const char *)data + 1;
	end = (const char *)data + size;
	users = section(&p, end);
	aliases = section(&p, end);
	queries = section(&p, end);

	/* "*DOMAIN TARGET" lookup lines are catch-alls. */
	for (p = queries.p; p < queries.p + queries.len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(queries.p + queries.len - p));
		if (nl == NULL)
			nl = queries.p + queries.len;
		len = (size_t)(nl - p);
		sp = len > 1 && p[0] == '*' ? memchr(p, ' ', len) : NULL;
		if (sp == NULL || ncatch == FUZZ_CATCH_ALLS ||
		    (size_t)(sp - p - 1) > PASSWD_ADDRESS_MAX ||
		    (size_t)(nl - sp - 1) > PASSWD_ADDRESS_MAX ||
		    memchr(p, '\0', len) != NULL)
			continue;
		memcpy(catch_text[ncatch][0], p + 1, (size_t)(sp - p - 1));
		catch_text[ncatch][0][sp - p - 1] = '\0';
		memcpy(catch_text[ncatch][1], sp + 1, (size_t)(nl - sp - 1));
		catch_text[ncatch][1][nl - sp - 1] = '\0';
		catch_alls[ncatch].domain = catch_text[ncatch][0];
		catch_alls[ncatch].target = catch_text[ncatch][1];
		ncatch++;
	}

	lines(users, flags & 1);
	lines(aliases, flags & 1);

	memset(&opts, 0, sizeof(opts));
	opts.file = opts.file_name = "users";
	opts.aliases = opts.aliases_name = "aliases";
	opts.allow_plaintext = flags & 1;
	opts.delimiters = (flags & 6) == 0 ? "" : (flags & 2) ? "+" : "+-@";
	opts.domains = domains;
	opts.ndomains = (flags & 8) ? 2 : 0;
	opts.catch_alls = catch_alls;
	opts.ncatch_alls = ncatch;
	memset(&err, 0, sizeof(err));
	rc = passwd_db_build(&opts, users.p, users.len,
	                     (flags & 16) ? NULL : aliases.p, aliases.len, &db,
	                     &err);
	if (rc != PTL_OK) {
		if (db != NULL || err.text[0] == '\0' ||
		    memchr(err.text, '\0', sizeof(err.text)) == NULL)
			abort();
		return 0;
	}
	if (db == NULL || passwd_db_dummy_hash(db, &scheme) == NULL)
		abort();
	touch(passwd_db_dummy_hash(db, &scheme),
	      strlen(passwd_db_dummy_hash(db, &scheme)));
	if (passwd_db_warning(db, &count) != NULL)
		touch(passwd_db_warning(db, &count),
		      strlen(passwd_db_warning(db, &count)));
	(void)passwd_db_nusers(db);
	(void)passwd_db_naliases(db);
	(void)passwd_db_ndomains(db);
	lookups(db, queries);
	lookups(db, users);
	lookups(db, aliases);
	passwd_db_free(db);
	return 0;
}
