/* SPDX-License-Identifier: MIT */
/* Unit tests for the passwd module: parser, tables, verify, reload. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <petrel/petrel.h>

#include "core/loop.h"
#include "passwd.h"

/* The module's descriptor, compiled into this test from passwd_module.c. */
extern const struct ptl_module petrel_module;

/* ---- Helpers ------------------------------------------------------------ */

/* A hash of @password made here, with a low cost: tests must be quick. */
static void
make_hash(const char *prefix, unsigned long count, const char *password,
          char *out, size_t out_size)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data = calloc(1, sizeof(*data));
	const char *hash;

	assert_non_null(data);
	assert_non_null(crypt_gensalt_rn(prefix, count, NULL, 0, setting,
	                                 (int)sizeof(setting)));
	hash = crypt_rn(password, setting, data, (int)sizeof(*data));
	assert_non_null(hash);
	assert_true(hash[0] == '$');
	assert_true(strlen(hash) < out_size);
	strcpy(out, hash);
	free(data);
}

static void
default_options(struct passwd_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->file = opts->file_name = "users.passwd";
	opts->aliases = opts->aliases_name = "aliases";
	opts->delimiters = "+";
}

/* Build a db from texts; fails the test on error. */
static struct passwd_db *
build(const struct passwd_options *opts, const char *users, const char *aliases)
{
	struct ptl_error err = {0};
	struct passwd_db *db = NULL;
	int rc;

	rc = passwd_db_build(opts, users, strlen(users), aliases,
	                     aliases ? strlen(aliases) : 0, &db, &err);
	if (rc != PTL_OK)
		fail_msg("build failed: %s", err.text);
	return db;
}

/* Build a db that must fail; returns the error. */
static struct ptl_error
build_fails(const struct passwd_options *opts, const char *users,
            const char *aliases)
{
	struct ptl_error err = {0};
	struct passwd_db *db = NULL;

	assert_int_equal(passwd_db_build(opts, users, strlen(users), aliases,
	                                 aliases ? strlen(aliases) : 0, &db,
	                                 &err),
	                 PTL_ERROR);
	assert_null(db);
	return err;
}

/* "a,b,c" of the users @address resolves to, or "" when none. */
static const char *
resolve(const struct passwd_db *db, const char *address)
{
	static char out[1024];
	struct passwd_resolved r;

	out[0] = '\0';
	if (!passwd_db_resolve(db, address, &r))
		return out;
	for (size_t i = 0; i < r.nusers; i++) {
		if (i > 0)
			strcat(out, ",");
		strcat(out, r.users[i]->name);
	}
	return out;
}

/* A hash valid for libcrypt, made once, for tables that only parse. */
static char sha_hash[CRYPT_OUTPUT_SIZE];

static int
group_setup(void **state)
{
	make_hash("$6$", 1000, "secret", sha_hash, sizeof(sha_hash));
	return 0;
}

/* ---- Parser ------------------------------------------------------------- */

static void
test_parse_good_lines(void **state)
{
	struct passwd_entry e;
	char why[PASSWD_WHY_MAX];
	char line[1024];

	/* Every Dovecot field, and then some: kept in rest, not judged. */
	snprintf(line, sizeof(line),
	         "alice@example.test:{SHA512-CRYPT}%s:1000:1000:Alice:"
	         "/home/alice:/bin/sh:userdb_quota_rule=*:storage=1G:x",
	         sha_hash);
	assert_int_equal(passwd_parse_user_line(line, strlen(line), false, &e,
	                                        why, sizeof(why)),
	                 PTL_OK);
	assert_int_equal(e.user.len, strlen("alice@example.test"));
	assert_int_equal(e.scheme, PASSWD_SCHEME_SHA512_CRYPT);
	assert_int_equal(e.hash.len, strlen(sha_hash));
	assert_memory_equal(e.hash.ptr, sha_hash, e.hash.len);
	assert_int_equal(e.prefix.len, strlen("{SHA512-CRYPT}"));
	assert_true(e.rest.len > 0 && e.rest.ptr[0] == ':');
	assert_non_null(strstr(e.rest.ptr, "storage=1G:x"));

	/* Two fields only, CRLF, {CRYPT} and a bare hash. */
	snprintf(line, sizeof(line), "b@x:{crypt}%s\r", sha_hash);
	assert_int_equal(passwd_parse_user_line(line, strlen(line), false, &e,
	                                        why, sizeof(why)),
	                 PTL_OK);
	assert_int_equal(e.scheme, PASSWD_SCHEME_SHA512_CRYPT);
	assert_int_equal(e.hash.len, strlen(sha_hash));
	assert_int_equal(e.rest.len, 0);
	snprintf(line, sizeof(line), "b@x:%s", sha_hash);
	assert_int_equal(passwd_parse_user_line(line, strlen(line), false, &e,
	                                        why, sizeof(why)),
	                 PTL_OK);
	assert_int_equal(e.prefix.len, 0);
	assert_int_equal(e.scheme, PASSWD_SCHEME_SHA512_CRYPT);

	/* No password: a mailbox without login. */
	assert_int_equal(
	    passwd_parse_user_line("c@x::::", 7, false, &e, why, sizeof(why)),
	    PTL_OK);
	assert_int_equal(e.scheme, PASSWD_SCHEME_NONE);
	assert_int_equal(
	    passwd_parse_user_line("c@x:", 4, false, &e, why, sizeof(why)),
	    PTL_OK);

	/* Comments and blank lines. */
	assert_int_equal(
	    passwd_parse_user_line("# a@x:y", 7, false, &e, why, sizeof(why)),
	    PTL_DECLINED);
	assert_int_equal(
	    passwd_parse_user_line("   \t", 4, false, &e, why, sizeof(why)),
	    PTL_DECLINED);
	assert_int_equal(
	    passwd_parse_user_line("", 0, false, &e, why, sizeof(why)),
	    PTL_DECLINED);
	assert_int_equal(
	    passwd_parse_user_line("\r", 1, false, &e, why, sizeof(why)),
	    PTL_DECLINED);

	/* Plaintext, when allowed. */
	assert_int_equal(passwd_parse_user_line("p@x:{PLAIN}pw", 13, true, &e,
	                                        why, sizeof(why)),
	                 PTL_OK);
	assert_int_equal(e.scheme, PASSWD_SCHEME_PLAIN);
	assert_int_equal(passwd_parse_user_line("p@x:{CLEARTEXT}pw:1", 19, true,
	                                        &e, why, sizeof(why)),
	                 PTL_OK);
	assert_int_equal(e.hash.len, 2);
}

static void
test_parse_malformed_lines(void **state)
{
	static const struct {
		const char *line;
		const char *why;
	} cases[] = {
	    {"bad line", "missing ':' after the user name"},
	    {":x", "empty user name"},
	    {"nodomain:$6$x$y", "user name \"nodomain\" is not an address"},
	    {"a@b@c:$6$x$y", "user name \"a@b@c\" is not an address"},
	    {"@b:$6$x$y", "is not an address"},
	    {"a@:$6$x$y", "is not an address"},
	    {"a b@c:$6$x$y", "user name contains a blank or a control"},
	    {"a@b:{MD5}xyz", "unknown password scheme \"{MD5}\""},
	    {"a@b:{SHA512-CRYPT", "missing '}' after the password scheme"},
	    {"a@b:{SHA512-CRYPT}", "empty hash after {SHA512-CRYPT}"},
	    {"a@b:{SHA512-CRYPT}$y$j9T$a$b",
	     "{SHA512-CRYPT} hash does not start with \"$6$\""},
	    {"a@b:{BLF-CRYPT}$6$a$b",
	     "{BLF-CRYPT} hash does not start with \"$2y$\" or \"$2b$\""},
	    {"a@b:{YESCRYPT}$6$a$b",
	     "{YESCRYPT} hash does not start with \"$y$\""},
	    {"a@b:{CRYPT}$1$abc$def", "{CRYPT} hash of an unsupported kind"},
	    {"a@b:secret", "password field is neither {SCHEME}hash nor"},
	    {"a@b:{PLAIN}secret", "plaintext password refused"},
	    {"a@b:{CLEARTEXT}secret", "plaintext password refused"},
	    {"a@b:$6$", "malformed SHA512-CRYPT hash"},
	    {"a@b:{BLF-CRYPT}$2y$05$short", "malformed BLF-CRYPT hash"},
	};
	struct passwd_entry e;
	char why[PASSWD_WHY_MAX];
	char *longline;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		why[0] = '\0';
		if (passwd_parse_user_line(cases[i].line, strlen(cases[i].line),
		                           false, &e, why,
		                           sizeof(why)) != PTL_ERROR)
			fail_msg("accepted: %s", cases[i].line);
		if (strstr(why, cases[i].why) == NULL)
			fail_msg("%s: got \"%s\", want \"%s\"", cases[i].line,
			         why, cases[i].why);
	}

	assert_int_equal(
	    passwd_parse_user_line("a@b:x\0y", 7, false, &e, why, sizeof(why)),
	    PTL_ERROR);
	assert_string_equal(why, "NUL byte in the line");

	longline = malloc(PASSWD_LINE_MAX + 2);
	assert_non_null(longline);
	memset(longline, 'a', PASSWD_LINE_MAX + 1);
	assert_int_equal(passwd_parse_user_line(longline, PASSWD_LINE_MAX + 1,
	                                        false, &e, why, sizeof(why)),
	                 PTL_ERROR);
	assert_non_null(strstr(why, "line longer than 8192 bytes"));
	free(longline);
}

static void
test_db_error_names_file_and_line(void **state)
{
	struct passwd_options opts;
	struct ptl_error err;
	char users[4096];

	default_options(&opts);
	snprintf(users, sizeof(users),
	         "# users\n"
	         "a@x:%s\n"
	         "\n"
	         "b@x:%s::::::\n"
	         "# more\n"
	         "c@x:%s\n"
	         "broken\n"
	         "d@x:%s\n",
	         sha_hash, sha_hash, sha_hash, sha_hash);
	err = build_fails(&opts, users, NULL);
	assert_string_equal(err.text,
	                    "users.passwd:7: missing ':' after the user name");
	assert_string_equal(err.path, "file");

	/* Same user twice, differing only in case. */
	snprintf(users, sizeof(users), "a@x:%s\nA@X:%s\n", sha_hash, sha_hash);
	err = build_fails(&opts, users, NULL);
	assert_string_equal(err.text, "users.passwd:2: duplicate user "
	                              "\"A@x\" (first on line 1)");

	/* Unknown scheme: a load error naming the line. */
	snprintf(users, sizeof(users), "a@x:%s\nb@x:{SSHA}abc\n", sha_hash);
	err = build_fails(&opts, users, NULL);
	assert_non_null(strstr(err.text, "users.passwd:2: unknown password "
	                                 "scheme \"{SSHA}\""));

	/* Plaintext: refused unless allowed. */
	err = build_fails(&opts, "p@x:{PLAIN}pw\n", NULL);
	assert_non_null(strstr(err.text, "users.passwd:1: plaintext password "
	                                 "refused"));
	opts.allow_plaintext = true;
	passwd_db_free(build(&opts, "p@x:{PLAIN}pw\n", NULL));
}

/* ---- Schemes ------------------------------------------------------------ */

static void
test_hash_schemes_match(void **state)
{
	static const struct {
		const char *prefix;
		unsigned long count;
		enum passwd_scheme scheme;
	} kinds[] = {
	    {"$6$", 1000, PASSWD_SCHEME_SHA512_CRYPT},
	    {"$2b$", 4, PASSWD_SCHEME_BLF_CRYPT},
	    {"$2y$", 4, PASSWD_SCHEME_BLF_CRYPT},
	    {"$y$", 1, PASSWD_SCHEME_YESCRYPT},
	};
	struct crypt_data *scratch = calloc(1, sizeof(*scratch));
	char hash[CRYPT_OUTPUT_SIZE];

	assert_non_null(scratch);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		make_hash(kinds[i].prefix, kinds[i].count, "right horse", hash,
		          sizeof(hash));
		assert_true(passwd_hash_valid(hash, strlen(hash)));
		assert_true(passwd_hash_matches(kinds[i].scheme, hash,
		                                strlen(hash), "right horse", 11,
		                                scratch));
		assert_false(passwd_hash_matches(kinds[i].scheme, hash,
		                                 strlen(hash), "right hors", 10,
		                                 scratch));
		assert_false(passwd_hash_matches(kinds[i].scheme, hash,
		                                 strlen(hash), "Right horse",
		                                 11, scratch));
		/* crypt(3) stops at NUL; the length says there is more. */
		assert_false(passwd_hash_matches(kinds[i].scheme, hash,
		                                 strlen(hash), "right horse\0x",
		                                 13, scratch));
	}
	assert_true(passwd_hash_matches(PASSWD_SCHEME_PLAIN, "pw", 2, "pw", 2,
	                                scratch));
	assert_false(passwd_hash_matches(PASSWD_SCHEME_PLAIN, "pw", 2, "pw2", 3,
	                                 scratch));
	assert_false(
	    passwd_hash_matches(PASSWD_SCHEME_PLAIN, "pw", 2, "p", 1, scratch));
	assert_false(
	    passwd_hash_matches(PASSWD_SCHEME_NONE, "", 0, "", 0, scratch));
	free(scratch);
}

static void
test_hash_make_round_trip(void **state)
{
	static const enum passwd_scheme schemes[] = {
	    PASSWD_SCHEME_SHA512_CRYPT,
	    PASSWD_SCHEME_BLF_CRYPT,
	    PASSWD_SCHEME_YESCRYPT,
	};
	static const char *const prefixes[] = {
	    "{SHA512-CRYPT}$6$",
	    "{BLF-CRYPT}$2y$",
	    "{CRYPT}$y$",
	};
	struct crypt_data *scratch = calloc(1, sizeof(*scratch));
	struct passwd_entry e;
	char field[CRYPT_OUTPUT_SIZE + 32], line[CRYPT_OUTPUT_SIZE + 64];
	char why[PASSWD_WHY_MAX];

	assert_non_null(scratch);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(passwd_hash_make(schemes[i], "pa:ss wörd",
		                                  field, sizeof(field), why,
		                                  sizeof(why)),
		                 PTL_OK);
		assert_memory_equal(field, prefixes[i], strlen(prefixes[i]));
		/* What petrelctl writes, the server parses. */
		snprintf(line, sizeof(line), "u@x:%s", field);
		assert_int_equal(passwd_parse_user_line(line, strlen(line),
		                                        false, &e, why,
		                                        sizeof(why)),
		                 PTL_OK);
		assert_int_equal(e.scheme, schemes[i]);
		assert_true(passwd_hash_matches(e.scheme, e.hash.ptr,
		                                e.hash.len, "pa:ss wörd",
		                                strlen("pa:ss wörd"), scratch));
		assert_false(passwd_hash_matches(
		    e.scheme, e.hash.ptr, e.hash.len, "pa:ss word",
		    strlen("pa:ss word"), scratch));
	}
	assert_int_equal(passwd_hash_make(PASSWD_SCHEME_PLAIN, "x", field,
	                                  sizeof(field), why, sizeof(why)),
	                 PTL_ERROR);
	free(scratch);
}

static void
test_consttime_compare(void **state)
{
	assert_true(passwd_equal_consttime("abc", 3, "abc", 3));
	assert_false(passwd_equal_consttime("abc", 3, "abd", 3));
	assert_false(passwd_equal_consttime("abc", 3, "ab", 2));
	assert_false(passwd_equal_consttime("ab", 2, "abc", 3));
	assert_false(passwd_equal_consttime("", 0, "a", 1));
	assert_true(passwd_equal_consttime("", 0, "", 0));
}

/* ---- Aliases, catch-alls, plus addressing, case ---------------------------
 */

static void
test_aliases(void **state)
{
	struct passwd_options opts;
	struct passwd_db *db;
	char users[2048];
	const char *warning;
	size_t nwarnings;

	default_options(&opts);
	snprintf(users, sizeof(users), "a@x:%s\nb@x:%s\nc@x:%s\n", sha_hash,
	         sha_hash, sha_hash);
	db = build(&opts, users,
	           "# Postfix-like aliases\n"
	           "team@x: a@x, b@x\n"
	           "all@x: team@x,\n"
	           "   c@x a@x\n" /* an indented line continues */
	           "\n"
	           "sales@y: all@x\n"
	           "ghost@x: nobody@x, b@x\n"
	           "void@x: nobody@x\n");
	assert_string_equal(resolve(db, "team@x"), "a@x,b@x");
	/* Nested, de-duplicated, in target order. */
	assert_string_equal(resolve(db, "all@x"), "a@x,b@x,c@x");
	assert_string_equal(resolve(db, "sales@y"), "a@x,b@x,c@x");
	/* A target that is nobody is skipped; an alias of nobody is a miss. */
	assert_string_equal(resolve(db, "ghost@x"), "b@x");
	assert_string_equal(resolve(db, "void@x"), "");
	assert_string_equal(resolve(db, "nobody@x"), "");
	assert_int_equal(passwd_db_naliases(db), 5);
	warning = passwd_db_warning(db, &nwarnings);
	assert_non_null(warning);
	assert_int_equal(nwarnings, 2);
	assert_string_equal(warning, "aliases:7: alias target \"nobody@x\" is "
	                             "not a user or an alias; ignored");
	/* Alias domains are served. */
	assert_true(passwd_db_is_local_domain(db, "y"));
	passwd_db_free(db);
}

static void
test_alias_errors(void **state)
{
	struct passwd_options opts;
	struct ptl_error err;
	char users[512];

	default_options(&opts);
	snprintf(users, sizeof(users), "a@x:%s\n", sha_hash);

	err = build_fails(&opts, users, "ok@x: a@x\nbroken a@x\n");
	assert_string_equal(err.text, "aliases:2: missing ':' after the "
	                              "alias address");
	assert_string_equal(err.path, "aliases");
	err = build_fails(&opts, users, "# c\n\nempty@x:\nok@x: a@x\n");
	assert_string_equal(err.text, "aliases:3: alias \"empty@x\" has no "
	                              "targets");
	err = build_fails(&opts, users, "ok@x: a@x\nok@X: a@x\n");
	assert_string_equal(err.text, "aliases:2: duplicate alias \"ok@x\" "
	                              "(first on line 1)");
	err = build_fails(&opts, users, "ok@x: a@x,\n  bob\n");
	assert_string_equal(err.text, "aliases:2: alias target \"bob\" is not "
	                              "an address (local@domain)");
	err = build_fails(&opts, users, "  a@x\nok@x: a@x\n");
	assert_string_equal(err.text, "aliases:1: indented line without an "
	                              "alias before it");
	err = build_fails(&opts, users, "nodomain: a@x\n");
	assert_string_equal(err.text, "aliases:1: alias \"nodomain\" is not "
	                              "an address (local@domain)");
}

static void
test_alias_loops(void **state)
{
	struct passwd_options opts;
	struct ptl_error err;
	char users[512];

	default_options(&opts);
	snprintf(users, sizeof(users), "a@x:%s\n", sha_hash);
	err = build_fails(&opts, users, "l1@x: l2@x\nl2@x: a@x, l1@x\n");
	assert_string_equal(err.text,
	                    "aliases:1: alias loop: l1@x -> l2@x -> l1@x");
	err = build_fails(&opts, users, "self@x: self@x\n");
	assert_string_equal(err.text,
	                    "aliases:1: alias loop: self@x -> self@x");
	/* Through plus addressing: l+x@x is l@x. */
	err = build_fails(&opts, users, "l@x: m@x\nm@x: l+x@x\n");
	assert_string_equal(err.text,
	                    "aliases:1: alias loop: l@x -> m@x -> l@x");
}

/* A chain of @n aliases d1 -> d2 -> ... -> dn -> a@x. */
static char *
alias_chain(int n, bool reversed)
{
	char *text = malloc(64 * (size_t)(n + 1));
	size_t used = 0;

	assert_non_null(text);
	text[0] = '\0';
	for (int k = 0; k < n; k++) {
		int i = reversed ? n - k : k + 1;

		if (i < n)
			used += (size_t)sprintf(text + used, "d%d@x: d%d@x\n",
			                        i, i + 1);
		else
			used += (size_t)sprintf(text + used, "d%d@x: a@x\n", i);
	}
	return text;
}

static void
test_alias_depth(void **state)
{
	struct passwd_options opts;
	struct passwd_db *db;
	struct ptl_error err;
	char users[512], *chain;

	default_options(&opts);
	snprintf(users, sizeof(users), "a@x:%s\n", sha_hash);
	/* 8 levels: fine, in either file order. */
	for (int reversed = 0; reversed < 2; reversed++) {
		chain = alias_chain(PASSWD_ALIAS_DEPTH, reversed);
		db = build(&opts, users, chain);
		assert_string_equal(resolve(db, "d1@x"), "a@x");
		passwd_db_free(db);
		free(chain);
	}
	/* 9 levels: refused, whichever alias the walk starts from. */
	chain = alias_chain(PASSWD_ALIAS_DEPTH + 1, false);
	err = build_fails(&opts, users, chain);
	assert_string_equal(err.text, "aliases:1: aliases nested more than 8 "
	                              "deep below \"d1@x\"");
	free(chain);
	chain = alias_chain(PASSWD_ALIAS_DEPTH + 1, true);
	err = build_fails(&opts, users, chain);
	assert_non_null(strstr(err.text, "aliases nested more than 8 deep "
	                                 "below \"d1@x\""));
	free(chain);
}

static void
test_catch_all(void **state)
{
	static const struct passwd_catch_all catch_alls[] = {
	    {"example.test", "PostMaster@example.test"},
	    {"team.test", "staff@example.test"},
	    {"nowhere.test", "ghost@example.test"},
	};
	struct passwd_options opts;
	struct passwd_db *db;
	char users[1024];
	size_t nwarnings;

	default_options(&opts);
	opts.catch_alls = catch_alls;
	opts.ncatch_alls = 3;
	snprintf(users, sizeof(users),
	         "postmaster@example.test:%s\nalice@example.test:%s\n",
	         sha_hash, sha_hash);
	db = build(&opts, users,
	           "staff@example.test: alice@example.test, "
	           "postmaster@example.test\n");
	/* Users and aliases first, the catch-all for the rest. */
	assert_string_equal(resolve(db, "alice@example.test"),
	                    "alice@example.test");
	assert_string_equal(resolve(db, "whoever@example.test"),
	                    "postmaster@example.test");
	assert_string_equal(resolve(db, "x@team.test"),
	                    "alice@example.test,postmaster@example.test");
	/* A catch-all to nobody is dropped (with a warning). */
	assert_string_equal(resolve(db, "x@nowhere.test"), "");
	assert_non_null(passwd_db_warning(db, &nwarnings));
	assert_true(passwd_db_is_local_domain(db, "nowhere.test"));
	/* Domains without a catch-all still say no. */
	assert_string_equal(resolve(db, "x@other.test"), "");
	assert_string_equal(resolve(db, "not-an-address"), "");
	passwd_db_free(db);
}

static void
test_plus_addressing(void **state)
{
	struct passwd_options opts;
	struct passwd_db *db;
	char users[1024];

	default_options(&opts);
	snprintf(users, sizeof(users), "alice@x:%s\nbob+x@x:%s\n", sha_hash,
	         sha_hash);
	db = build(&opts, users, "team@x: alice@x\n");
	assert_string_equal(resolve(db, "alice+news@x"), "alice@x");
	assert_string_equal(resolve(db, "alice+a+b@x"), "alice@x");
	assert_string_equal(resolve(db, "team+x@x"), "alice@x");
	/* An exact user wins over stripping. */
	assert_string_equal(resolve(db, "bob+x@x"), "bob+x@x");
	assert_string_equal(resolve(db, "bob+y@x"), "");
	/* A delimiter first is part of the name. */
	assert_string_equal(resolve(db, "+alice@x"), "");
	assert_string_equal(resolve(db, "alice-news@x"), "");
	passwd_db_free(db);

	opts.delimiters = "";
	db = build(&opts, users, NULL);
	assert_string_equal(resolve(db, "alice+news@x"), "");
	passwd_db_free(db);

	opts.delimiters = "-+";
	db = build(&opts, users, NULL);
	assert_string_equal(resolve(db, "alice-news@x"), "alice@x");
	assert_string_equal(resolve(db, "alice+news@x"), "alice@x");
	passwd_db_free(db);
}

static void
test_case_handling(void **state)
{
	static const char *const domains[] = {"extra.test"};
	struct passwd_options opts;
	struct passwd_db *db;
	char users[1024];

	default_options(&opts);
	opts.domains = domains;
	opts.ndomains = 1;
	snprintf(users, sizeof(users), "Alice@Example.TEST:%s\n", sha_hash);
	db = build(&opts, users, NULL);
	/* Local parts compare case-insensitively (ASCII); the name
	 * reported is as written, its domain lower case. */
	assert_string_equal(resolve(db, "alice@example.test"),
	                    "Alice@example.test");
	assert_string_equal(resolve(db, "ALICE@EXAMPLE.TEST"),
	                    "Alice@example.test");
	assert_non_null(passwd_db_find_user(db, "aLiCe@example.Test"));
	assert_true(passwd_db_is_local_domain(db, "example.test"));
	assert_true(passwd_db_is_local_domain(db, "EXAMPLE.Test"));
	assert_true(passwd_db_is_local_domain(db, "extra.test"));
	assert_false(passwd_db_is_local_domain(db, "example.org"));
	assert_false(passwd_db_is_local_domain(db, ""));
	assert_int_equal(passwd_db_ndomains(db), 2);
	passwd_db_free(db);
}

static void
test_dummy_hash_follows_scheme(void **state)
{
	struct passwd_options opts;
	struct passwd_db *db;
	enum passwd_scheme scheme;
	char users[2048], bf1[CRYPT_OUTPUT_SIZE], bf2[CRYPT_OUTPUT_SIZE];
	const char *dummy;

	default_options(&opts);
	make_hash("$2b$", 4, "x", bf1, sizeof(bf1));
	make_hash("$2b$", 4, "y", bf2, sizeof(bf2));
	snprintf(users, sizeof(users), "a@x:%s\nb@x:%s\nc@x:%s\nd@x:\n",
	         sha_hash, bf1, bf2);
	db = build(&opts, users, NULL);
	dummy = passwd_db_dummy_hash(db, &scheme);
	assert_int_equal(scheme, PASSWD_SCHEME_BLF_CRYPT);
	assert_string_equal(dummy, bf1);
	passwd_db_free(db);

	db = build(&opts, "nobody@x:\n", NULL);
	dummy = passwd_db_dummy_hash(db, &scheme);
	assert_int_equal(scheme, PASSWD_SCHEME_SHA512_CRYPT);
	assert_memory_equal(dummy, "$6$", 3);
	passwd_db_free(db);
}

/* ---- The service on a real loop and thread pool ---------------------------
 */

static char tmp_dir[64];

static void
write_file(const char *name, const char *text)
{
	char path[128], tmp[160];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp_dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	/* As petrelctl does: a new inode, so every change is seen. */
	assert_int_equal(rename(tmp, path), 0);
}

static void
safety_fired(struct ptl_timer *t, void *arg)
{
	fail_msg("safety timer: the service did not answer");
}

static struct ptl_timer *safety;

static int
service_setup(void **state)
{
	struct ptl_error err;

	strcpy(tmp_dir, "/tmp/petrel-passwd-XXXXXX");
	assert_non_null(mkdtemp(tmp_dir));
	assert_int_equal(ptl_loop_init(&err), PTL_OK);
	safety = ptl_timer_new(safety_fired, NULL);
	assert_non_null(safety);
	ptl_timer_start(safety, 60000);
	return 0;
}

static int
service_teardown(void **state)
{
	char cmd[128];

	ptl_timer_free(safety);
	ptl_task_fini();
	ptl_loop_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp_dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static struct passwd_service *
service_new(int64_t interval_ms, bool plaintext, const char *aliases)
{
	static char file[128], alias_file[128];
	struct passwd_options opts;
	struct passwd_service *svc = NULL;
	struct ptl_error err = {0};

	default_options(&opts);
	snprintf(file, sizeof(file), "%s/users.passwd", tmp_dir);
	snprintf(alias_file, sizeof(alias_file), "%s/aliases", tmp_dir);
	opts.file = file;
	opts.aliases = aliases ? alias_file : NULL;
	opts.aliases_name = aliases ? "aliases" : NULL;
	opts.allow_plaintext = plaintext;
	if (aliases != NULL)
		write_file("aliases", aliases);
	if (passwd_service_create(&opts, interval_ms, &svc, &err) != PTL_OK)
		fail_msg("service: %s", err.text);
	return svc;
}

/* One answer, as the service reported it. */
struct answer {
	int calls;
	enum ptl_auth_status status;
	char user[256];
	char users[1024];
};

static int answers_wanted;
static int answers_seen;

static void
answered(void)
{
	if (++answers_seen == answers_wanted)
		ptl_loop_exit();
}

static void
on_verify(enum ptl_auth_status status, const char *user, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->status = status;
	snprintf(a->user, sizeof(a->user), "%s", user ? user : "(null)");
	answered();
}

static void
on_lookup(const struct ptl_auth_lookup *res, void *arg)
{
	struct answer *a = arg;

	a->calls++;
	a->status = res->status;
	a->users[0] = '\0';
	for (size_t i = 0; i < res->nusers; i++) {
		if (i > 0)
			strcat(a->users, ",");
		strcat(a->users, res->users[i]);
	}
	answered();
}

/* Run the loop until @n answers came in. */
static void
wait_answers(int n)
{
	answers_wanted = answers_seen + n;
	if (answers_seen < answers_wanted)
		assert_int_equal(ptl_loop_run(), PTL_OK);
}

static void
verify(struct passwd_service *svc, const char *user, const char *password,
       struct answer *a)
{
	memset(a, 0, sizeof(*a));
	assert_int_equal(passwd_auth_methods.verify(svc, user, password,
	                                            strlen(password), on_verify,
	                                            a),
	                 PTL_AGAIN);
}

/* A lookup answered at once or later; either way, filled in @a. */
static void
lookup(struct passwd_service *svc, struct ptl_pool *pool, const char *address,
       struct answer *a)
{
	struct ptl_auth_lookup res;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = passwd_auth_methods.lookup(svc, address, pool, &res, on_lookup, a);
	if (rc == PTL_AGAIN) {
		wait_answers(1);
		return;
	}
	assert_int_equal(rc, PTL_OK);
	answers_seen--; /* on_lookup counts, this was not a callback */
	on_lookup(&res, a);
}

static void
test_service_verify_every_scheme(void **state)
{
	char users[4096], h6[CRYPT_OUTPUT_SIZE], h2y[CRYPT_OUTPUT_SIZE],
	    h2b[CRYPT_OUTPUT_SIZE], hy[CRYPT_OUTPUT_SIZE];
	struct passwd_service *svc;
	struct answer a[12];

	make_hash("$6$", 1000, "six", h6, sizeof(h6));
	make_hash("$2y$", 4, "two-y", h2y, sizeof(h2y));
	make_hash("$2b$", 4, "two-b", h2b, sizeof(h2b));
	make_hash("$y$", 1, "yes", hy, sizeof(hy));
	snprintf(users, sizeof(users),
	         "sha@x:{SHA512-CRYPT}%s:1:1::/home/sha::extra=1\n"
	         "blf@x:{BLF-CRYPT}%s\n"
	         "blfb@x:{BLF-CRYPT}%s\n"
	         "yes@x:{YESCRYPT}%s\n"
	         "crypt@x:{CRYPT}%s\n"
	         "Plain@X:{PLAIN}clear text\n"
	         "nologin@x:\n",
	         h6, h2y, h2b, hy, hy);
	write_file("users.passwd", users);
	svc = service_new(3600 * 1000, true, NULL);

	verify(svc, "sha@x", "six", &a[0]);
	verify(svc, "blf@x", "two-y", &a[1]);
	verify(svc, "blfb@X", "two-b", &a[2]);
	verify(svc, "yes@x", "yes", &a[3]);
	verify(svc, "crypt@x", "yes", &a[4]);
	verify(svc, "plain@x", "clear text", &a[5]);
	verify(svc, "sha@x", "seven", &a[6]);
	verify(svc, "blf@x", "two-b", &a[7]);
	verify(svc, "yes@x", "no", &a[8]);
	verify(svc, "plain@x", "clear tex", &a[9]);
	verify(svc, "nobody@x", "six", &a[10]);
	verify(svc, "nologin@x", "", &a[11]);
	wait_answers(12);

	for (int i = 0; i < 12; i++)
		assert_int_equal(a[i].calls, 1);
	for (int i = 0; i < 6; i++)
		assert_int_equal(a[i].status, PTL_AUTH_OK);
	assert_string_equal(a[0].user, "sha@x");
	assert_string_equal(a[2].user, "blfb@x");
	assert_string_equal(a[5].user, "Plain@x");
	for (int i = 6; i < 12; i++) {
		assert_int_equal(a[i].status, PTL_AUTH_NOTFOUND);
		assert_string_equal(a[i].user, "(null)");
	}
	assert_null(svc->hashing);
	passwd_service_destroy(svc);
}

static void
test_service_lookup_and_domains(void **state)
{
	struct passwd_service *svc;
	struct ptl_pool *pool = ptl_pool_create(0);
	struct answer a;
	char users[1024];

	assert_non_null(pool);
	snprintf(users, sizeof(users), "alice@example.test:%s\n", sha_hash);
	write_file("users.passwd", users);
	svc = service_new(3600 * 1000, false,
	                  "team@example.test: alice@example.test\n");
	lookup(svc, pool, "alice+x@example.test", &a);
	assert_int_equal(a.status, PTL_AUTH_OK);
	assert_string_equal(a.users, "alice@example.test");
	/* Checked a moment ago: answered at once this time. */
	{
		struct ptl_auth_lookup res;

		assert_int_equal(
		    passwd_auth_methods.lookup(svc, "team@example.test", pool,
		                               &res, on_lookup, &a),
		    PTL_OK);
		assert_int_equal(res.status, PTL_AUTH_OK);
		assert_int_equal(res.nusers, 1);
		assert_string_equal(res.users[0], "alice@example.test");
		assert_int_equal(
		    passwd_auth_methods.lookup(svc, "bob@example.test", pool,
		                               &res, on_lookup, &a),
		    PTL_OK);
		assert_int_equal(res.status, PTL_AUTH_NOTFOUND);
		assert_int_equal(res.nusers, 0);
		assert_int_equal(passwd_auth_methods.lookup(
		                     svc, NULL, pool, &res, on_lookup, &a),
		                 PTL_ERROR);
	}
	assert_true(passwd_auth_methods.is_local_domain(svc, "example.test"));
	assert_false(passwd_auth_methods.is_local_domain(svc, "example.org"));
	assert_int_equal(passwd_auth_methods.version, PTL_AUTH_VERSION);
	passwd_service_destroy(svc);
	ptl_pool_destroy(pool);
}

static void
test_service_reloads_changed_file(void **state)
{
	struct passwd_service *svc;
	struct ptl_pool *pool = ptl_pool_create(0);
	char users[2048], hash[CRYPT_OUTPUT_SIZE];
	struct answer a;

	assert_non_null(pool);
	make_hash("$6$", 1000, "new", hash, sizeof(hash));
	snprintf(users, sizeof(users), "alice@x:%s\n", sha_hash);
	write_file("users.passwd", users);
	/* 0: look at the file before every call. */
	svc = service_new(0, false, "team@x: alice@x\n");
	lookup(svc, pool, "bob@x", &a);
	assert_int_equal(a.status, PTL_AUTH_NOTFOUND);

	/* A user added: the next lookup and login see it. */
	snprintf(users, sizeof(users), "alice@x:%s\nbob@x:%s\n", sha_hash,
	         hash);
	write_file("users.passwd", users);
	lookup(svc, pool, "bob@x", &a);
	assert_int_equal(a.status, PTL_AUTH_OK);
	assert_string_equal(a.users, "bob@x");
	verify(svc, "bob@x", "new", &a);
	wait_answers(1);
	assert_int_equal(a.status, PTL_AUTH_OK);

	/* The aliases file is watched too. */
	write_file("aliases", "team@x: alice@x, bob@x\n");
	lookup(svc, pool, "team@x", &a);
	assert_string_equal(a.users, "alice@x,bob@x");

	/* A broken file: logged, and the old table stays. */
	write_file("users.passwd", "alice@x:{MD5}nope\n");
	lookup(svc, pool, "bob@x", &a);
	assert_int_equal(a.status, PTL_AUTH_OK);
	lookup(svc, pool, "bob@x", &a);
	assert_int_equal(a.status, PTL_AUTH_OK);
	/* Fixed again: picked up. */
	snprintf(users, sizeof(users), "alice@x:%s\n", sha_hash);
	write_file("users.passwd", users);
	lookup(svc, pool, "bob@x", &a);
	assert_int_equal(a.status, PTL_AUTH_NOTFOUND);
	assert_int_equal(passwd_db_nusers(svc->db), 1);

	passwd_service_destroy(svc);
	ptl_pool_destroy(pool);
}

static void
poll_idle(struct ptl_timer *t, void *arg)
{
	struct passwd_service *svc = arg;

	if (svc->hashing == NULL && svc->waiting_head == NULL &&
	    !svc->check_running)
		ptl_loop_exit();
	else
		ptl_timer_start(t, 5);
}

/* Run the loop until nothing is queued, checking or hashing. */
static void
wait_idle(struct passwd_service *svc)
{
	struct ptl_timer *t = ptl_timer_new(poll_idle, svc);

	assert_non_null(t);
	ptl_timer_start(t, 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	ptl_timer_free(t);
}

static void
test_service_cancel(void **state)
{
	struct passwd_service *svc;
	struct ptl_pool *pool = ptl_pool_create(0);
	struct answer a, b, c;
	struct ptl_auth_lookup res;
	char users[1024];

	assert_non_null(pool);
	snprintf(users, sizeof(users), "alice@x:%s\n", sha_hash);
	write_file("users.passwd", users);

	/* Waiting for the reload check: dropped from the queue. */
	svc = service_new(0, false, NULL);
	memset(&c, 0, sizeof(c));
	assert_int_equal(passwd_auth_methods.lookup(svc, "alice@x", pool, &res,
	                                            on_lookup, &c),
	                 PTL_AGAIN);
	verify(svc, "alice@x", "secret", &a);
	verify(svc, "alice@x", "secret", &b);
	assert_non_null(svc->waiting_head);
	passwd_auth_methods.cancel(svc, &a);
	passwd_auth_methods.cancel(svc, &c);
	wait_answers(1);
	wait_idle(svc);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, PTL_AUTH_OK);
	assert_int_equal(a.calls, 0);
	assert_int_equal(c.calls, 0);
	passwd_service_destroy(svc);

	/* Already hashing: the work ends, its answer is dropped. */
	svc = service_new(3600 * 1000, false, NULL);
	lookup(svc, pool, "alice@x", &c); /* the first check is done */
	verify(svc, "alice@x", "secret", &a);
	verify(svc, "alice@x", "wrong", &b);
	assert_null(svc->waiting_head);
	assert_non_null(svc->hashing);
	passwd_auth_methods.cancel(svc, &a);
	wait_answers(1);
	wait_idle(svc);
	assert_int_equal(a.calls, 0);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.status, PTL_AUTH_NOTFOUND);
	passwd_service_destroy(svc);
	ptl_pool_destroy(pool);
}

/* ---- The module's config checks ---------------------------------------------
 */

static int
check_config(const char *json, struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_pool_create(0);
	void *conf = calloc(1, petrel_module.conf_size);
	json_t *section = json_loads(json, 0, NULL);
	int rc;

	assert_non_null(pool);
	assert_non_null(conf);
	assert_non_null(section);
	memset(err, 0, sizeof(*err));
	rc = ptl_conf_parse(petrel_module.conf_keys, section, conf, pool,
	                    "modules.passwd", err);
	if (rc == PTL_OK)
		rc = petrel_module.check_config(NULL, section, conf, err);
	json_decref(section);
	free(conf);
	ptl_pool_destroy(pool);
	return rc;
}

static void
test_module_config(void **state)
{
	char json[512], users[4096];
	struct ptl_error err;

	assert_string_equal(petrel_module.name, "passwd");
	assert_string_equal(petrel_module.provides[0].name, PTL_AUTH_SERVICE);
	assert_int_equal(petrel_module.provides[0].version, PTL_AUTH_VERSION);

	snprintf(users, sizeof(users), "a@x:%s\n# 2\n\n# 4\n\n# 6\nbroken\n",
	         sha_hash);
	write_file("users.passwd", users);
	snprintf(json, sizeof(json), "{\"file\": \"%s/users.passwd\"}",
	         tmp_dir);
	assert_int_equal(check_config(json, &err), PTL_ERROR);
	assert_string_equal(err.path, "file");
	assert_non_null(strstr(err.text, "users.passwd:7: missing ':' after "
	                                 "the user name"));

	snprintf(users, sizeof(users), "a@x:%s\n", sha_hash);
	write_file("users.passwd", users);
	assert_int_equal(check_config(json, &err), PTL_OK);

	snprintf(json, sizeof(json),
	         "{\"file\": \"%s/users.passwd\", \"catch_all\": "
	         "{\"x\": \"nobody\"}}",
	         tmp_dir);
	assert_int_equal(check_config(json, &err), PTL_ERROR);
	assert_string_equal(err.path, "catch_all.x");

	snprintf(json, sizeof(json),
	         "{\"file\": \"%s/users.passwd\", \"domains\": [\"a b\"]}",
	         tmp_dir);
	assert_int_equal(check_config(json, &err), PTL_ERROR);
	assert_string_equal(err.path, "domains[0]");

	snprintf(json, sizeof(json),
	         "{\"file\": \"%s/users.passwd\", \"recipient_delimiter\": "
	         "\"@\"}",
	         tmp_dir);
	assert_int_equal(check_config(json, &err), PTL_ERROR);

	snprintf(json, sizeof(json), "{\"file\": \"%s/missing\"}", tmp_dir);
	assert_int_equal(check_config(json, &err), PTL_ERROR);
	assert_non_null(strstr(err.text, "cannot open"));

	assert_int_equal(check_config("{}", &err), PTL_ERROR);
}

int
main(void)
{
	const struct CMUnitTest parser[] = {
	    cmocka_unit_test(test_parse_good_lines),
	    cmocka_unit_test(test_parse_malformed_lines),
	    cmocka_unit_test(test_db_error_names_file_and_line),
	    cmocka_unit_test(test_hash_schemes_match),
	    cmocka_unit_test(test_hash_make_round_trip),
	    cmocka_unit_test(test_consttime_compare),
	    cmocka_unit_test(test_aliases),
	    cmocka_unit_test(test_alias_errors),
	    cmocka_unit_test(test_alias_loops),
	    cmocka_unit_test(test_alias_depth),
	    cmocka_unit_test(test_catch_all),
	    cmocka_unit_test(test_plus_addressing),
	    cmocka_unit_test(test_case_handling),
	    cmocka_unit_test(test_dummy_hash_follows_scheme),
	    cmocka_unit_test_setup_teardown(test_service_verify_every_scheme,
	                                    service_setup, service_teardown),
	    cmocka_unit_test_setup_teardown(test_service_lookup_and_domains,
	                                    service_setup, service_teardown),
	    cmocka_unit_test_setup_teardown(test_service_reloads_changed_file,
	                                    service_setup, service_teardown),
	    cmocka_unit_test_setup_teardown(test_service_cancel, service_setup,
	                                    service_teardown),
	    cmocka_unit_test_setup_teardown(test_module_config, service_setup,
	                                    service_teardown),
	};

	return cmocka_run_group_tests(parser, group_setup, NULL);
}
