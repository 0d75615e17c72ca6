/* SPDX-License-Identifier: MIT */
/* Internal interfaces of the passwd module (shared with petrelctl/tests). */
#ifndef PETREL_PASSWD_H
#define PETREL_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include <petrel/auth.h>
#include <petrel/core.h>

/*
 * Two layers. passwd_file.c and passwd_crypt.c depend on libc and
 * libcrypt only: petrelctl compiles them too. Everything below the
 * "module" line uses the core (pools, loop, thread pool).
 */

/* ---- Bounds ----------------------------------------------------------- */

#define PASSWD_LINE_MAX        8192        /* bytes per line, LF excluded */
#define PASSWD_FILE_MAX        (64u << 20) /* bytes per file */
#define PASSWD_ALIAS_DEPTH     8           /* alias -> alias hops */
#define PASSWD_ALIAS_MAX_USERS 1024        /* users one alias expands to */
#define PASSWD_PASSWORD_MAX    1024        /* longer passwords never match */
#define PASSWD_ADDRESS_MAX     512         /* longer addresses never match */
#define PASSWD_WHY_MAX         256         /* one parse error message */

/* ---- passwd_file.c: lines of the users and aliases files -------------- */

enum passwd_scheme {
	PASSWD_SCHEME_NONE = 0, /* empty password field: login disabled */
	PASSWD_SCHEME_SHA512_CRYPT,
	PASSWD_SCHEME_BLF_CRYPT,
	PASSWD_SCHEME_YESCRYPT,
	PASSWD_SCHEME_PLAIN, /* {PLAIN} / {CLEARTEXT} */
};

/* A piece of a line: not NUL-terminated. */
struct passwd_span {
	const char *ptr;
	size_t len;
};

/* One user line: `user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:...`. */
struct passwd_entry {
	struct passwd_span user;   /* as written */
	struct passwd_span prefix; /* "{SCHEME}" with braces, or empty */
	struct passwd_span hash;   /* the password field after the prefix */
	struct passwd_span rest;   /* ":uid:..." with its first ':', or empty */
	enum passwd_scheme scheme;
};

/*
 * Parse one line of the users file (@len bytes, without its LF; a CR
 * before it is ignored). Plaintext passwords are refused unless
 * @allow_plaintext.
 * @return PTL_OK (@out filled), PTL_DECLINED (comment or blank line), or
 * PTL_ERROR with the reason in @why (no file name or line number).
 */
int passwd_parse_user_line(const char *line, size_t len, bool allow_plaintext,
                           struct passwd_entry *out, char *why,
                           size_t why_size);

/*
 * Parse one line of the aliases file: `address: target, target ...`.
 * @return PTL_OK (@address_out and @targets_out set), PTL_AGAIN (a
 * continuation line, starting with a space or tab: only @targets_out
 * set), PTL_DECLINED (comment or blank), or PTL_ERROR with @why.
 */
int passwd_parse_alias_line(const char *line, size_t len,
                            struct passwd_span *address_out,
                            struct passwd_span *targets_out, char *why,
                            size_t why_size);

/*
 * Take the next target from @list (separated by commas and/or blanks),
 * advancing @list. @return true with @target_out set, false at the end.
 */
bool passwd_next_target(struct passwd_span *list,
                        struct passwd_span *target_out);

/*
 * Check that @addr is `local@domain`: one '@', both parts non-empty, no
 * blank, control character, ':' or ','. @what names it in @why
 * ("user name", "alias").
 * @return PTL_OK or PTL_ERROR with @why.
 */
int passwd_check_address(const char *addr, size_t len, const char *what,
                         char *why, size_t why_size);

/*
 * The lookup key of @addr: ASCII lower case, so that local parts compare
 * case-insensitively. @out has room for @len + 1 bytes.
 */
void passwd_address_key(const char *addr, size_t len, char *out);

/* "SHA512-CRYPT", "BLF-CRYPT", "YESCRYPT", "PLAIN" or "NONE". */
const char *passwd_scheme_name(enum passwd_scheme scheme);

/*
 * The scheme a petrelctl option names ("sha512-crypt", "blf-crypt",
 * "yescrypt"; any case), or PASSWD_SCHEME_NONE.
 */
enum passwd_scheme passwd_scheme_from_option(const char *name);

/* ---- passwd_crypt.c: hashing and comparing ---------------------------- */

struct crypt_data;

/*
 * Hash @password (NUL-terminated) with a fresh random salt into @out as
 * a password field with its prefix: "{SHA512-CRYPT}$6$...",
 * "{BLF-CRYPT}$2y$...", or "{CRYPT}$y$..." (how Dovecot writes
 * yescrypt).
 * @return PTL_OK or PTL_ERROR with @why.
 */
int passwd_hash_make(enum passwd_scheme scheme, const char *password, char *out,
                     size_t out_size, char *why, size_t why_size);

/*
 * Whether @password (@password_len bytes, NUL-terminated) matches the
 * stored @hash (@hash_len bytes, NUL-terminated) of @scheme. Slow for
 * the crypt schemes: call it off the event loop. @scratch is the
 * caller's (large) work area. The final comparison is constant-time.
 */
bool passwd_hash_matches(enum passwd_scheme scheme, const char *hash,
                         size_t hash_len, const char *password,
                         size_t password_len, struct crypt_data *scratch);

/* Whether a crypt hash is well-formed for libcrypt (crypt_checksalt). */
bool passwd_hash_valid(const char *hash, size_t len);

/*
 * Compare two byte strings in time that depends on their lengths only,
 * never on where they differ.
 */
bool passwd_equal_consttime(const void *a, size_t alen, const void *b,
                            size_t blen);

/* ---- module: tables, service ------------------------------------------ */

struct ptl_pool;
struct ptl_error;

/* What the loader needs from the config. Strings outlive the tables. */
struct passwd_catch_all {
	const char *domain; /* lower case */
	const char *target; /* an address */
};

struct passwd_options {
	const char *file;         /* path to open */
	const char *file_name;    /* path as configured, for messages */
	const char *aliases;      /* NULL: no aliases file */
	const char *aliases_name; /* as configured */
	bool allow_plaintext;
	const char *delimiters; /* recipient_delimiter characters; "" none */
	const char *const *domains;
	size_t ndomains;
	const struct passwd_catch_all *catch_alls;
	size_t ncatch_alls;
};

/* What tells a changed file from the one loaded: stat() fields. */
struct passwd_file_id {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	struct timespec ctime;
};

/* A user of the table. */
struct passwd_user {
	const char *name; /* as written, domain in lower case */
	const char *key;  /* lower case: the lookup key */
	const char *hash; /* password field after its prefix; "" disabled */
	size_t hash_len;
	enum passwd_scheme scheme;
	unsigned line;
	unsigned mark; /* alias expansion de-duplication, build time only */
};

/* Where an address delivers: one user, or the users of an alias. */
struct passwd_resolved {
	const struct passwd_user *const *users;
	size_t nusers;
	const struct passwd_user *single; /* users points here for a user */
};

struct passwd_db;

/* Identity of @path now (exists = false when stat fails). */
void passwd_file_id_get(const char *path, struct passwd_file_id *out);
bool passwd_file_id_equal(const struct passwd_file_id *a,
                          const struct passwd_file_id *b);

/*
 * Read the files named in @opts and build the tables. Pure: any thread.
 * @return PTL_OK with *@db_out (free with passwd_db_free()), or
 * PTL_ERROR with err->text like "users.passwd:7: missing ':' after the
 * user name" and err->path the config key of the file at fault ("file"
 * or "aliases"), relative to the module's section.
 */
int passwd_db_load(const struct passwd_options *opts, struct passwd_db **db_out,
                   struct ptl_error *err);

/* passwd_db_load() on texts in memory (tests); no file identities. */
int passwd_db_build(const struct passwd_options *opts, const char *users,
                    size_t users_len, const char *aliases, size_t aliases_len,
                    struct passwd_db **db_out, struct ptl_error *err);

void passwd_db_free(struct passwd_db *db);

/* Counts, for log lines. */
size_t passwd_db_nusers(const struct passwd_db *db);
size_t passwd_db_naliases(const struct passwd_db *db);
size_t passwd_db_ndomains(const struct passwd_db *db);

/* Identities of the files as read (for the reload check). */
const struct passwd_file_id *passwd_db_users_id(const struct passwd_db *db);
const struct passwd_file_id *passwd_db_aliases_id(const struct passwd_db *db);

/*
 * Problems that do not stop a load (an alias target that is nobody):
 * the first one's text and how many there were. NULL when none.
 */
const char *passwd_db_warning(const struct passwd_db *db, size_t *count_out);

/* Whether @domain (any case) is served. */
bool passwd_db_is_local_domain(const struct passwd_db *db, const char *domain);

/*
 * Resolve @address: exact user, alias, then the same without a
 * "+detail" (recipient_delimiter), then the domain's catch-all.
 * @return true with @out filled (valid while the db lives), else false.
 */
bool passwd_db_resolve(const struct passwd_db *db, const char *address,
                       struct passwd_resolved *out);

/* The user whose login name is @login (exact address only), or NULL. */
const struct passwd_user *passwd_db_find_user(const struct passwd_db *db,
                                              const char *login);

/*
 * The hash an unknown login is checked against, so that it costs what
 * a wrong password costs: the setting of a user of the most common
 * scheme (the result is always discarded).
 */
const char *passwd_db_dummy_hash(const struct passwd_db *db,
                                 enum passwd_scheme *scheme_out);

/* ---- passwd_service.c, passwd_reload.c, passwd_verify.c --------------- */

struct passwd_call;

/* Per-process state behind the "auth" service. */
struct passwd_service {
	uint32_t magic;
	struct passwd_options opts;
	int64_t check_interval_ms; /* reload_check */
	struct passwd_db *db;

	/* Reload check: loop thread of this process only. */
	int64_t last_check_ms;
	bool checked_once;
	bool check_running;
	struct passwd_file_id seen_users; /* last identities examined */
	struct passwd_file_id seen_aliases;

	/* Calls waiting for the check, and verifies hashing on a thread. */
	struct passwd_call *waiting_head, *waiting_tail;
	struct passwd_call *hashing;
};

#define PASSWD_SERVICE_MAGIC 0x50535744u /* "PSWD" */

enum passwd_call_kind {
	PASSWD_CALL_LOOKUP,
	PASSWD_CALL_VERIFY,
};

/* Which list of the service a call is on. */
enum passwd_call_list {
	PASSWD_CALL_DETACHED = 0,
	PASSWD_CALL_WAITING, /* for the reload check */
	PASSWD_CALL_HASHING, /* on a pool thread */
};

/* A lookup or verify that could not be answered at once. */
struct passwd_call {
	struct passwd_call *prev, *next;
	enum passwd_call_list on;
	struct passwd_service *svc;
	enum passwd_call_kind kind;
	bool cancelled; /* done must not run */
	void *arg;
	union {
		ptl_auth_lookup_fn lookup;
		ptl_auth_verify_fn verify;
	} done;

	/* lookup */
	struct ptl_pool *pool;
	char *address;

	/* verify: set on the loop, read by the thread */
	char *login;
	char *password; /* scrubbed after hashing */
	size_t password_len;
	bool password_usable; /* not too long, no NUL byte */
	char *canonical;      /* user name to report on success */
	char *hash;
	size_t hash_len;
	enum passwd_scheme scheme;
	bool known;
	/* verify: set by the thread */
	bool matched;
	bool failed; /* out of memory on the thread */
};

/*
 * Create the service and load the files. @opts is copied, not the
 * strings and arrays it points to: they must outlive the service.
 * @return PTL_OK or PTL_ERROR (err as for passwd_db_load()).
 */
int passwd_service_create(const struct passwd_options *opts,
                          int64_t check_interval_ms,
                          struct passwd_service **svc_out,
                          struct ptl_error *err);

/* Free calls still queued (their done is not called). */
void passwd_service_drop_calls(struct passwd_service *svc);

/*
 * Drop the queued calls, the tables and the service. NULL is a no-op.
 * Nothing may be hashing (the core drains its tasks first).
 */
void passwd_service_destroy(struct passwd_service *svc);

/* The methods of "auth" v1; instance is a struct passwd_service. */
extern const struct ptl_auth_methods passwd_auth_methods;

/* A queued call may proceed: the reload check finished (service.c). */
void passwd_call_resume(struct passwd_call *call);

/* Free a call (unlinked, not hashing), scrubbing its password. */
void passwd_call_free(struct passwd_call *call);

/* Append @call to the calls waiting for the reload check. */
void passwd_call_wait(struct passwd_call *call);

/* Put @call on the hashing list / take it off whichever list it is on. */
void passwd_call_hashing(struct passwd_call *call);
void passwd_call_unlink(struct passwd_call *call);

/* Log the counts (and the first warning) of the tables just loaded. */
void passwd_service_log_loaded(const struct passwd_service *svc);

/*
 * Start a reload check if one is due. @return true if calls must wait
 * for it (a check is running), false if the tables can be used now.
 */
bool passwd_reload_poke(struct passwd_service *svc);

/*
 * Verify: look up the login in the current tables and hash on the
 * thread pool. @return PTL_AGAIN (done will run), or PTL_ERROR (the
 * call was not taken: the caller still owns it).
 */
int passwd_verify_submit(struct passwd_call *call);

#endif
