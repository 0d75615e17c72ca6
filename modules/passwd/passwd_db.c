/* SPDX-License-Identifier: MIT */
/* In-memory user database: users, aliases, domains, catch-alls. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <petrel/petrel.h>

#include "passwd.h"

/* Cost-matched stand-in when the file has no hash to borrow a setting. */
#define PASSWD_FALLBACK_DUMMY "$6$rounds=100000$petrel.dummy$"

/* An open-addressing hash table of NUL-terminated keys. */
struct passwd_slot {
	const char *key;
	void *value;
};

struct passwd_table {
	struct passwd_slot *slots;
	size_t mask;
	size_t count;
};

enum passwd_alias_state {
	PASSWD_ALIAS_NEW = 0,
	PASSWD_ALIAS_VISITING,
	PASSWD_ALIAS_DONE,
};

struct passwd_alias {
	const char *key; /* lower case */
	unsigned line;
	const char **targets; /* lower case addresses */
	unsigned *target_lines;
	size_t ntargets;
	enum passwd_alias_state state;
	unsigned height; /* alias hops below, this one included */
	const struct passwd_user **users;
	size_t nusers;
};

struct passwd_catch {
	const struct passwd_user *user;   /* the target is a user, */
	const struct passwd_alias *alias; /* or an alias */
};

struct passwd_db {
	struct ptl_pool *pool;
	uint64_t seed;
	struct passwd_table users;
	struct passwd_table aliases;
	struct passwd_table domains;
	struct passwd_table catch_alls;
	struct passwd_alias **alias_list; /* file order */
	size_t naliases;
	const char *delimiters;
	const char *dummy_hash;
	enum passwd_scheme dummy_scheme;
	struct passwd_file_id users_id;
	struct passwd_file_id aliases_id;
	char warning[PASSWD_WHY_MAX + PASSWD_ADDRESS_MAX];
	size_t nwarnings;
	unsigned stamp;
};

/* Where a target or an address leads. */
struct passwd_dest {
	const struct passwd_user *user;
	struct passwd_alias *alias;
};

/* What building needs besides the db: messages name files and lines. */
struct passwd_build {
	struct passwd_db *db;
	const struct passwd_options *opts;
	struct ptl_error *err;
	struct passwd_alias *stack[PASSWD_ALIAS_DEPTH + 1];
	size_t depth;
};

/* ---- Hash table -------------------------------------------------------- */

static uint64_t
passwd_hash(uint64_t seed, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ull;
	}
	/* FNV's low bits mix poorly; the mask keeps only those. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

static int
passwd_table_init(struct passwd_table *t, struct ptl_pool *pool,
                  size_t expected)
{
	size_t cap = 16;

	while (cap < expected * 2 && cap < ((size_t)1 << 40))
		cap <<= 1;
	t->slots = ptl_pcalloc(pool, cap * sizeof(*t->slots));
	if (t->slots == NULL)
		return PTL_ERROR;
	t->mask = cap - 1;
	t->count = 0;
	return PTL_OK;
}

static void *
passwd_table_find(const struct passwd_table *t, uint64_t seed, const char *key,
                  size_t len)
{
	size_t i = (size_t)passwd_hash(seed, key, len) & t->mask;

	for (;;) {
		const struct passwd_slot *s = &t->slots[i];

		if (s->key == NULL)
			return NULL;
		if (strlen(s->key) == len && memcmp(s->key, key, len) == 0)
			return s->value;
		i = (i + 1) & t->mask;
	}
}

/*
 * Insert @key unless present. The table was sized for every key it can
 * get, so it never fills. @return NULL when inserted, else the value
 * already there.
 */
static void *
passwd_table_insert(struct passwd_table *t, uint64_t seed, const char *key,
                    void *value)
{
	size_t len = strlen(key);
	size_t i = (size_t)passwd_hash(seed, key, len) & t->mask;

	for (;;) {
		struct passwd_slot *s = &t->slots[i];

		if (s->key == NULL) {
			s->key = key;
			s->value = value;
			t->count++;
			return NULL;
		}
		if (strcmp(s->key, key) == 0)
			return s->value;
		i = (i + 1) & t->mask;
	}
}

/* ---- Files -------------------------------------------------------------- */

void
passwd_file_id_get(const char *path, struct passwd_file_id *out)
{
	struct stat st;

	memset(out, 0, sizeof(*out));
	if (path == NULL || stat(path, &st) != 0)
		return;
	out->exists = true;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->size = st.st_size;
	out->mtime = st.st_mtim;
	out->ctime = st.st_ctim;
}

bool
passwd_file_id_equal(const struct passwd_file_id *a,
                     const struct passwd_file_id *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec &&
	       a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/*
 * The identity is taken before reading: a change made while we read
 * gives a newer identity, so the next check reads the file again.
 */
static int
passwd_read_file(const char *path, const char *name, char **text_out,
                 size_t *len_out, struct passwd_file_id *id_out,
                 struct ptl_error *err)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0, cap;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return ptl_error_set_errno(err, errno, "cannot open %s", name);
	if (fstat(fd, &st) != 0) {
		ptl_error_set_errno(err, errno, "cannot stat %s", name);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ptl_error_set(err, "%s: not a regular file", name);
		goto fail;
	}
	id_out->exists = true;
	id_out->dev = st.st_dev;
	id_out->ino = st.st_ino;
	id_out->size = st.st_size;
	id_out->mtime = st.st_mtim;
	id_out->ctime = st.st_ctim;
	cap = (size_t)st.st_size + 1;
	if (cap > PASSWD_FILE_MAX + 1)
		cap = PASSWD_FILE_MAX + 1;
	text = malloc(cap + 1);
	if (text == NULL) {
		ptl_error_set(err, "%s: out of memory", name);
		goto fail;
	}
	/* The file may grow while we read: read to EOF, within the bound. */
	for (;;) {
		if (len == cap) {
			char *bigger;

			if (cap > PASSWD_FILE_MAX)
				break;
			cap = cap * 2 > PASSWD_FILE_MAX + 1
			          ? PASSWD_FILE_MAX + 1
			          : cap * 2;
			bigger = realloc(text, cap + 1);
			if (bigger == NULL) {
				ptl_error_set(err, "%s: out of memory", name);
				goto fail;
			}
			text = bigger;
		}
		n = read(fd, text + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ptl_error_set_errno(err, errno, "cannot read %s", name);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > PASSWD_FILE_MAX) {
		ptl_error_set(err, "%s: larger than %u MiB", name,
		              PASSWD_FILE_MAX >> 20);
		goto fail;
	}
	(void)close(fd);
	text[len] = '\0';
	*text_out = text;
	*len_out = len;
	return PTL_OK;
fail:
	free(text);
	(void)close(fd);
	return PTL_ERROR;
}

/* ---- Building ------------------------------------------------------------ */

static size_t
passwd_count_lines(const char *text, size_t len)
{
	size_t n = 1;

	for (const char *p = text; p != NULL && p < text + len; p++) {
		p = memchr(p, '\n', (size_t)(text + len - p));
		if (p == NULL)
			break;
		n++;
	}
	return n;
}

/* Next line of @text at *@pos: its start and length without the LF. */
static bool
passwd_next_line(const char *text, size_t len, size_t *pos,
                 const char **line_out, size_t *line_len_out)
{
	const char *start, *nl;

	if (*pos >= len)
		return false;
	start = text + *pos;
	nl = memchr(start, '\n', len - *pos);
	*line_out = start;
	*line_len_out = nl != NULL ? (size_t)(nl - start) : len - *pos;
	*pos += *line_len_out + (nl != NULL ? 1 : 0);
	return true;
}

static char *
passwd_key_dup(struct ptl_pool *pool, const char *addr, size_t len)
{
	char *key = ptl_palloc(pool, len + 1);

	if (key != NULL)
		passwd_address_key(addr, len, key);
	return key;
}

static int
passwd_add_domain(struct passwd_db *db, const char *domain)
{
	char *key;

	if (passwd_table_find(&db->domains, db->seed, domain, strlen(domain)) !=
	    NULL)
		return PTL_OK;
	key = passwd_key_dup(db->pool, domain, strlen(domain));
	if (key == NULL)
		return PTL_ERROR;
	(void)passwd_table_insert(&db->domains, db->seed, key, key);
	return PTL_OK;
}

static void passwd_warn(struct passwd_db *db, const char *fmt, ...)
    PTL_PRINTF(2, 3);

static void
passwd_warn(struct passwd_db *db, const char *fmt, ...)
{
	va_list ap;

	if (db->nwarnings++ > 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(db->warning, sizeof(db->warning), fmt, ap);
	va_end(ap);
}

static int
passwd_oom(struct passwd_build *b)
{
	return ptl_error_set(b->err, "out of memory");
}

static int
passwd_add_user(struct passwd_build *b, const struct passwd_entry *e,
                unsigned line)
{
	struct passwd_db *db = b->db;
	struct passwd_user *u, *old;
	char *name, *at;

	u = ptl_pcalloc(db->pool, sizeof(*u));
	name = ptl_pstrndup(db->pool, e->user.ptr, e->user.len);
	if (u == NULL || name == NULL)
		return passwd_oom(b);
	/* Domains are case-insensitive everywhere: store them lower case. */
	at = strchr(name, '@');
	passwd_address_key(at, strlen(at), at);
	u->name = name;
	u->key = passwd_key_dup(db->pool, name, e->user.len);
	u->hash = ptl_pstrndup(db->pool, e->hash.ptr, e->hash.len);
	if (u->key == NULL || u->hash == NULL)
		return passwd_oom(b);
	u->hash_len = e->hash.len;
	u->scheme = e->scheme;
	u->line = line;
	old = passwd_table_insert(&db->users, db->seed, u->key, u);
	if (old != NULL)
		return ptl_error_set(b->err,
		                     "%s:%u: duplicate user \"%s\" (first on "
		                     "line %u)",
		                     b->opts->file_name, line, u->name,
		                     old->line);
	if (passwd_add_domain(db, strchr(u->key, '@') + 1) != PTL_OK)
		return passwd_oom(b);
	return PTL_OK;
}

static int
passwd_load_users(struct passwd_build *b, const char *text, size_t len)
{
	struct passwd_entry entry;
	char why[PASSWD_WHY_MAX];
	const char *line;
	size_t line_len, pos = 0;
	unsigned lineno = 0;
	int rc;

	while (passwd_next_line(text, len, &pos, &line, &line_len)) {
		lineno++;
		rc = passwd_parse_user_line(line, line_len,
		                            b->opts->allow_plaintext, &entry,
		                            why, sizeof(why));
		if (rc == PTL_DECLINED)
			continue;
		if (rc != PTL_OK)
			return ptl_error_set(b->err, "%s:%u: %s",
			                     b->opts->file_name, lineno, why);
		if (passwd_add_user(b, &entry, lineno) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

/* Targets of the alias being read; copied into the pool when it ends. */
struct passwd_targets {
	const char **items;
	unsigned *lines;
	size_t count, cap;
};

static int
passwd_alias_finish(struct passwd_build *b, struct passwd_alias *a,
                    struct passwd_targets *t)
{
	struct passwd_db *db = b->db;

	if (a == NULL)
		return PTL_OK;
	if (t->count == 0)
		return ptl_error_set(b->err,
		                     "%s:%u: alias \"%s\" has no targets",
		                     b->opts->aliases_name, a->line, a->key);
	a->targets = ptl_palloc(db->pool, t->count * sizeof(*a->targets));
	a->target_lines =
	    ptl_palloc(db->pool, t->count * sizeof(*a->target_lines));
	if (a->targets == NULL || a->target_lines == NULL)
		return passwd_oom(b);
	memcpy(a->targets, t->items, t->count * sizeof(*a->targets));
	memcpy(a->target_lines, t->lines, t->count * sizeof(*t->lines));
	a->ntargets = t->count;
	t->count = 0;
	return PTL_OK;
}

static int
passwd_alias_start(struct passwd_build *b, struct passwd_span addr,
                   unsigned line, struct passwd_alias **alias_out)
{
	struct passwd_db *db = b->db;
	struct passwd_alias *a, *old;

	a = ptl_pcalloc(db->pool, sizeof(*a));
	if (a == NULL)
		return passwd_oom(b);
	a->key = passwd_key_dup(db->pool, addr.ptr, addr.len);
	if (a->key == NULL)
		return passwd_oom(b);
	a->line = line;
	old = passwd_table_insert(&db->aliases, db->seed, a->key, a);
	if (old != NULL)
		return ptl_error_set(b->err,
		                     "%s:%u: duplicate alias \"%s\" (first on "
		                     "line %u)",
		                     b->opts->aliases_name, line, a->key,
		                     old->line);
	if (passwd_table_find(&db->users, db->seed, a->key, strlen(a->key)) !=
	    NULL)
		passwd_warn(db,
		            "%s:%u: alias \"%s\" is also a user; the user "
		            "gets the mail",
		            b->opts->aliases_name, line, a->key);
	if (passwd_add_domain(db, strchr(a->key, '@') + 1) != PTL_OK)
		return passwd_oom(b);
	db->alias_list[db->naliases++] = a;
	*alias_out = a;
	return PTL_OK;
}

static int
passwd_alias_targets(struct passwd_build *b, struct passwd_alias *a,
                     struct passwd_span list, unsigned line,
                     struct passwd_targets *t)
{
	struct passwd_span target;
	char why[PASSWD_WHY_MAX];
	char *key;

	while (passwd_next_target(&list, &target)) {
		if (passwd_check_address(target.ptr, target.len, "alias target",
		                         why, sizeof(why)) != PTL_OK)
			return ptl_error_set(b->err, "%s:%u: %s",
			                     b->opts->aliases_name, line, why);
		if (t->count == PASSWD_ALIAS_MAX_USERS)
			return ptl_error_set(
			    b->err,
			    "%s:%u: alias \"%s\" has more than "
			    "%u targets",
			    b->opts->aliases_name, line, a->key,
			    PASSWD_ALIAS_MAX_USERS);
		if (t->count == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 16;
			const char **items;
			unsigned *lines;

			items = realloc(t->items, cap * sizeof(*items));
			if (items == NULL)
				return passwd_oom(b);
			t->items = items;
			lines = realloc(t->lines, cap * sizeof(*lines));
			if (lines == NULL)
				return passwd_oom(b);
			t->lines = lines;
			t->cap = cap;
		}
		key = passwd_key_dup(b->db->pool, target.ptr, target.len);
		if (key == NULL)
			return passwd_oom(b);
		t->items[t->count] = key;
		t->lines[t->count] = line;
		t->count++;
	}
	return PTL_OK;
}

static int
passwd_load_aliases(struct passwd_build *b, const char *text, size_t len)
{
	struct passwd_targets targets = {0};
	struct passwd_alias *current = NULL;
	struct passwd_span addr, list;
	char why[PASSWD_WHY_MAX];
	const char *line;
	size_t line_len, pos = 0;
	unsigned lineno = 0;
	int rc = PTL_OK;

	while (rc == PTL_OK &&
	       passwd_next_line(text, len, &pos, &line, &line_len)) {
		lineno++;
		rc = passwd_parse_alias_line(line, line_len, &addr, &list, why,
		                             sizeof(why));
		if (rc == PTL_DECLINED) {
			rc = PTL_OK;
		} else if (rc == PTL_AGAIN) {
			rc = current != NULL
			         ? passwd_alias_targets(b, current, list,
			                                lineno, &targets)
			         : ptl_error_set(b->err,
			                         "%s:%u: indented line without "
			                         "an alias before it",
			                         b->opts->aliases_name, lineno);
		} else if (rc == PTL_OK) {
			rc = passwd_alias_finish(b, current, &targets);
			if (rc == PTL_OK)
				rc = passwd_alias_start(b, addr, lineno,
				                        &current);
			if (rc == PTL_OK)
				rc = passwd_alias_targets(b, current, list,
				                          lineno, &targets);
		} else {
			rc = ptl_error_set(b->err, "%s:%u: %s",
			                   b->opts->aliases_name, lineno, why);
		}
	}
	if (rc == PTL_OK)
		rc = passwd_alias_finish(b, current, &targets);
	free(targets.items);
	free(targets.lines);
	return rc;
}

/*
 * Where @key (lower case, @len bytes) leads without a catch-all: a user,
 * an alias, or the same for the address without its "+detail".
 */
static bool
passwd_find_dest(const struct passwd_db *db, const char *key, size_t len,
                 struct passwd_dest *out)
{
	char stripped[PASSWD_ADDRESS_MAX + 1];
	const char *at = memchr(key, '@', len);
	size_t cut;

	out->user = passwd_table_find(&db->users, db->seed, key, len);
	out->alias = NULL;
	if (out->user != NULL)
		return true;
	out->alias = passwd_table_find(&db->aliases, db->seed, key, len);
	if (out->alias != NULL)
		return true;
	if (at == NULL || db->delimiters[0] == '\0' || len > PASSWD_ADDRESS_MAX)
		return false;
	/* "user+tag@d" -> "user@d"; a delimiter first is not a detail. */
	cut = strcspn(key, db->delimiters);
	if (cut == 0 || key + cut >= at)
		return false;
	memcpy(stripped, key, cut);
	memcpy(stripped + cut, at, (size_t)(key + len - at));
	len = cut + (size_t)(key + len - at);
	stripped[len] = '\0';
	out->user = passwd_table_find(&db->users, db->seed, stripped, len);
	if (out->user != NULL)
		return true;
	out->alias = passwd_table_find(&db->aliases, db->seed, stripped, len);
	return out->alias != NULL;
}

static int
passwd_alias_loop(struct passwd_build *b, struct passwd_alias *a)
{
	char chain[PTL_ERROR_TEXT_MAX];
	size_t used = 0, i = 0;
	int n;

	chain[0] = '\0';
	while (i < b->depth && b->stack[i] != a)
		i++;
	for (; i < b->depth && used < sizeof(chain); i++) {
		n = snprintf(chain + used, sizeof(chain) - used, "%s -> ",
		             b->stack[i]->key);
		used = n < 0 ? sizeof(chain) : used + (size_t)n;
	}
	if (used < sizeof(chain))
		(void)snprintf(chain + used, sizeof(chain) - used, "%s",
		               a->key);
	return ptl_error_set(b->err, "%s:%u: alias loop: %s",
	                     b->opts->aliases_name, a->line, chain);
}

static int passwd_alias_expand(struct passwd_build *b, struct passwd_alias *a);

/* Children first (each completes), then merge their users into @a. */
static int
passwd_alias_merge(struct passwd_build *b, struct passwd_alias *a)
{
	struct passwd_db *db = b->db;
	struct passwd_dest dest;
	size_t i, j, n = 0;

	for (i = 0; i < a->ntargets; i++) {
		if (!passwd_find_dest(db, a->targets[i], strlen(a->targets[i]),
		                      &dest)) {
			passwd_warn(db,
			            "%s:%u: alias target \"%s\" is not a user "
			            "or an alias; ignored",
			            b->opts->aliases_name, a->target_lines[i],
			            a->targets[i]);
			continue;
		}
		if (dest.alias == NULL)
			continue;
		if (passwd_alias_expand(b, dest.alias) != PTL_OK)
			return PTL_ERROR;
		if (dest.alias->height + 1 > a->height)
			a->height = dest.alias->height + 1;
	}
	if (a->height + b->depth - 1 > PASSWD_ALIAS_DEPTH)
		return ptl_error_set(b->err,
		                     "%s:%u: aliases nested more than %u deep "
		                     "below \"%s\"",
		                     b->opts->aliases_name, b->stack[0]->line,
		                     PASSWD_ALIAS_DEPTH, b->stack[0]->key);

	/* Two passes with fresh stamps: count, then fill, no duplicates. */
	for (int pass = 0; pass < 2; pass++) {
		unsigned stamp = ++db->stamp;

		if (pass == 1) {
			a->users = ptl_palloc(db->pool,
			                      (n ? n : 1) * sizeof(*a->users));
			if (a->users == NULL)
				return passwd_oom(b);
		}
		for (i = 0; i < a->ntargets; i++) {
			const struct passwd_user *const *list;
			size_t count;

			if (!passwd_find_dest(db, a->targets[i],
			                      strlen(a->targets[i]), &dest))
				continue;
			if (dest.user != NULL) {
				list = &dest.user;
				count = 1;
			} else {
				list = dest.alias->users;
				count = dest.alias->nusers;
			}
			for (j = 0; j < count; j++) {
				struct passwd_user *u =
				    (struct passwd_user *)list[j];

				if (u->mark == stamp)
					continue;
				u->mark = stamp;
				if (pass == 0)
					n++;
				else
					a->users[a->nusers++] = u;
			}
		}
		if (n > PASSWD_ALIAS_MAX_USERS)
			return ptl_error_set(b->err,
			                     "%s:%u: alias \"%s\" expands to "
			                     "more than %u users",
			                     b->opts->aliases_name, a->line,
			                     a->key, PASSWD_ALIAS_MAX_USERS);
	}
	return PTL_OK;
}

static int
passwd_alias_expand(struct passwd_build *b, struct passwd_alias *a)
{
	int rc;

	if (a->state == PASSWD_ALIAS_DONE)
		return PTL_OK;
	if (a->state == PASSWD_ALIAS_VISITING)
		return passwd_alias_loop(b, a);
	if (b->depth == PASSWD_ALIAS_DEPTH)
		return ptl_error_set(b->err,
		                     "%s:%u: aliases nested more than %u deep "
		                     "below \"%s\"",
		                     b->opts->aliases_name, b->stack[0]->line,
		                     PASSWD_ALIAS_DEPTH, b->stack[0]->key);
	a->state = PASSWD_ALIAS_VISITING;
	a->height = 1;
	b->stack[b->depth++] = a;
	rc = passwd_alias_merge(b, a);
	b->depth--;
	a->state = PASSWD_ALIAS_DONE;
	return rc;
}

static int
passwd_expand_aliases(struct passwd_build *b)
{
	for (size_t i = 0; i < b->db->naliases; i++) {
		b->depth = 0;
		if (passwd_alias_expand(b, b->db->alias_list[i]) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

static int
passwd_load_catch_alls(struct passwd_build *b)
{
	const struct passwd_options *opts = b->opts;
	struct passwd_db *db = b->db;

	for (size_t i = 0; i < opts->ncatch_alls; i++) {
		const struct passwd_catch_all *c = &opts->catch_alls[i];
		struct passwd_catch *catch;
		struct passwd_dest dest;
		char key[PASSWD_ADDRESS_MAX + 1];
		size_t len = strlen(c->target);
		char *domain;

		if (passwd_add_domain(db, c->domain) != PTL_OK)
			return passwd_oom(b);
		if (len > PASSWD_ADDRESS_MAX)
			len = PASSWD_ADDRESS_MAX;
		passwd_address_key(c->target, len, key);
		if (!passwd_find_dest(db, key, len, &dest) ||
		    (dest.alias != NULL && dest.alias->nusers == 0)) {
			passwd_warn(db,
			            "catch_all of \"%s\": \"%s\" is not a user "
			            "or an alias; ignored",
			            c->domain, c->target);
			continue;
		}
		catch = ptl_pcalloc(db->pool, sizeof(*catch));
		domain = passwd_key_dup(db->pool, c->domain, strlen(c->domain));
		if (catch == NULL || domain == NULL)
			return passwd_oom(b);
		catch->user = dest.user;
		catch->alias = dest.alias;
		(void)passwd_table_insert(&db->catch_alls, db->seed, domain,
		                          catch);
	}
	return PTL_OK;
}

/*
 * A user of the most common crypt scheme lends its setting (method, cost
 * and salt): an unknown login then costs what a known one costs.
 */
static void
passwd_pick_dummy(struct passwd_db *db)
{
	size_t count[PASSWD_SCHEME_PLAIN + 1] = {0};
	const struct passwd_user *first[PASSWD_SCHEME_PLAIN + 1] = {NULL};
	enum passwd_scheme best = PASSWD_SCHEME_NONE;

	for (size_t i = 0; i <= db->users.mask; i++) {
		const struct passwd_user *u = db->users.slots[i].value;

		if (u == NULL || u->scheme == PASSWD_SCHEME_NONE ||
		    u->scheme == PASSWD_SCHEME_PLAIN)
			continue;
		if (first[u->scheme] == NULL ||
		    u->line < first[u->scheme]->line)
			first[u->scheme] = u;
		count[u->scheme]++;
	}
	for (int s = PASSWD_SCHEME_SHA512_CRYPT; s <= PASSWD_SCHEME_YESCRYPT;
	     s++)
		if (count[s] > count[best])
			best = (enum passwd_scheme)s;
	if (best == PASSWD_SCHEME_NONE) {
		db->dummy_scheme = PASSWD_SCHEME_SHA512_CRYPT;
		db->dummy_hash = PASSWD_FALLBACK_DUMMY;
		return;
	}
	db->dummy_scheme = best;
	db->dummy_hash = first[best]->hash;
}

/* Point the error at the config key naming the file that is wrong. */
static int
passwd_error_in(struct ptl_error *err, const char *key)
{
	if (err != NULL)
		(void)snprintf(err->path, sizeof(err->path), "%s", key);
	return PTL_ERROR;
}

int
passwd_db_build(const struct passwd_options *opts, const char *users,
                size_t users_len, const char *aliases, size_t aliases_len,
                struct passwd_db **db_out, struct ptl_error *err)
{
	struct passwd_build b = {.opts = opts, .err = err};
	struct passwd_db *db;
	size_t nusers, naliases;

	*db_out = NULL;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return ptl_error_set(err, "out of memory");
	b.db = db;
	db->delimiters = opts->delimiters != NULL ? opts->delimiters : "";
	/* Keys come from the admin, but a random seed costs nothing. */
	if (getentropy(&db->seed, sizeof(db->seed)) != 0)
		db->seed = (uint64_t)(uintptr_t)db;
	db->pool = ptl_pool_create(64 * 1024);
	nusers = passwd_count_lines(users, users_len);
	naliases =
	    aliases != NULL ? passwd_count_lines(aliases, aliases_len) : 0;
	if (db->pool == NULL ||
	    passwd_table_init(&db->users, db->pool, nusers) != PTL_OK ||
	    passwd_table_init(&db->aliases, db->pool, naliases) != PTL_OK ||
	    passwd_table_init(&db->catch_alls, db->pool, opts->ncatch_alls) !=
	        PTL_OK ||
	    passwd_table_init(&db->domains, db->pool,
	                      nusers + naliases + opts->ndomains +
	                          opts->ncatch_alls) != PTL_OK ||
	    (db->alias_list = ptl_palloc(
	         db->pool, (naliases + 1) * sizeof(*db->alias_list))) == NULL) {
		passwd_db_free(db);
		return ptl_error_set(err, "out of memory");
	}
	if (passwd_load_users(&b, users, users_len) != PTL_OK) {
		passwd_db_free(db);
		return passwd_error_in(err, "file");
	}
	if ((aliases != NULL &&
	     passwd_load_aliases(&b, aliases, aliases_len) != PTL_OK) ||
	    passwd_expand_aliases(&b) != PTL_OK) {
		passwd_db_free(db);
		return passwd_error_in(err, "aliases");
	}
	if (passwd_load_catch_alls(&b) != PTL_OK) {
		passwd_db_free(db);
		return passwd_error_in(err, "catch_all");
	}
	for (size_t i = 0; i < opts->ndomains; i++) {
		if (passwd_add_domain(db, opts->domains[i]) != PTL_OK) {
			passwd_db_free(db);
			return ptl_error_set(err, "out of memory");
		}
	}
	passwd_pick_dummy(db);
	*db_out = db;
	return PTL_OK;
}

int
passwd_db_load(const struct passwd_options *opts, struct passwd_db **db_out,
               struct ptl_error *err)
{
	struct passwd_file_id users_id = {0}, aliases_id = {0};
	char *users = NULL, *aliases = NULL;
	size_t users_len = 0, aliases_len = 0;
	int rc;

	*db_out = NULL;
	rc = passwd_read_file(opts->file, opts->file_name, &users, &users_len,
	                      &users_id, err);
	if (rc != PTL_OK)
		(void)passwd_error_in(err, "file");
	if (rc == PTL_OK && opts->aliases != NULL) {
		rc = passwd_read_file(opts->aliases, opts->aliases_name,
		                      &aliases, &aliases_len, &aliases_id, err);
		if (rc != PTL_OK)
			(void)passwd_error_in(err, "aliases");
	}
	if (rc == PTL_OK)
		rc = passwd_db_build(opts, users, users_len, aliases,
		                     aliases_len, db_out, err);
	if (rc == PTL_OK) {
		(*db_out)->users_id = users_id;
		(*db_out)->aliases_id = aliases_id;
	}
	free(users);
	free(aliases);
	return rc;
}

void
passwd_db_free(struct passwd_db *db)
{
	if (db == NULL)
		return;
	ptl_pool_destroy(db->pool);
	free(db);
}

/* ---- Queries ------------------------------------------------------------ */

size_t
passwd_db_nusers(const struct passwd_db *db)
{
	return db->users.count;
}

size_t
passwd_db_naliases(const struct passwd_db *db)
{
	return db->naliases;
}

size_t
passwd_db_ndomains(const struct passwd_db *db)
{
	return db->domains.count;
}

const struct passwd_file_id *
passwd_db_users_id(const struct passwd_db *db)
{
	return &db->users_id;
}

const struct passwd_file_id *
passwd_db_aliases_id(const struct passwd_db *db)
{
	return &db->aliases_id;
}

const char *
passwd_db_warning(const struct passwd_db *db, size_t *count_out)
{
	*count_out = db->nwarnings;
	return db->nwarnings > 0 ? db->warning : NULL;
}

bool
passwd_db_is_local_domain(const struct passwd_db *db, const char *domain)
{
	char key[PASSWD_ADDRESS_MAX + 1];
	size_t len = strlen(domain);

	if (len == 0 || len > PASSWD_ADDRESS_MAX)
		return false;
	passwd_address_key(domain, len, key);
	return passwd_table_find(&db->domains, db->seed, key, len) != NULL;
}

static bool
passwd_dest_resolved(const struct passwd_dest *dest,
                     struct passwd_resolved *out)
{
	if (dest->user != NULL) {
		out->single = dest->user;
		out->users = &out->single;
		out->nusers = 1;
		return true;
	}
	/* An alias whose every target is gone delivers nowhere. */
	if (dest->alias == NULL || dest->alias->nusers == 0)
		return false;
	out->users = dest->alias->users;
	out->nusers = dest->alias->nusers;
	return true;
}

bool
passwd_db_resolve(const struct passwd_db *db, const char *address,
                  struct passwd_resolved *out)
{
	char key[PASSWD_ADDRESS_MAX + 1];
	size_t len = strlen(address);
	const struct passwd_catch *catch;
	struct passwd_dest dest;
	const char *at;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len > PASSWD_ADDRESS_MAX)
		return false;
	passwd_address_key(address, len, key);
	at = strrchr(key, '@');
	if (at == NULL || at == key || at[1] == '\0')
		return false;
	if (passwd_find_dest(db, key, len, &dest) &&
	    passwd_dest_resolved(&dest, out))
		return true;
	catch = passwd_table_find(&db->catch_alls, db->seed, at + 1,
	                          strlen(at + 1));
	if (catch == NULL)
		return false;
	dest.user = catch->user;
	dest.alias = (struct passwd_alias *)catch->alias;
	return passwd_dest_resolved(&dest, out);
}

const struct passwd_user *
passwd_db_find_user(const struct passwd_db *db, const char *login)
{
	char key[PASSWD_ADDRESS_MAX + 1];
	size_t len = strlen(login);

	if (len == 0 || len > PASSWD_ADDRESS_MAX)
		return NULL;
	passwd_address_key(login, len, key);
	return passwd_table_find(&db->users, db->seed, key, len);
}

const char *
passwd_db_dummy_hash(const struct passwd_db *db, enum passwd_scheme *scheme_out)
{
	*scheme_out = db->dummy_scheme;
	return db->dummy_hash;
}
