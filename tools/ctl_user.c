/* SPDX-License-Identifier: MIT */
/* `petrelctl user add|passwd|del|list|check` on a passwd-file. */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passwd.h"
#include "ctl.h"

/* What new hashes use unless --scheme says otherwise. */
#define CTL_DEFAULT_SCHEME PASSWD_SCHEME_YESCRYPT

/* A line of the file: where it is, and the user on it (if any). */
struct ctl_line {
	size_t start; /* offset of the first byte */
	size_t end;   /* offset after the LF, or the end of the text */
	bool is_user;
	struct passwd_entry entry;
};

/* The parsed file: every line, so that edits keep the others as-is. */
struct ctl_users {
	struct ctl_line *lines;
	size_t count;
};

static void
ctl_users_free(struct ctl_users *u)
{
	free(u->lines);
	u->lines = NULL;
	u->count = 0;
}

/*
 * Parse every line. The tool does not judge plaintext (the server's
 * config does), but anything the server could not parse stops an edit:
 * petrelctl never writes a file the server would refuse.
 */
static int
ctl_users_parse(const struct ctl_file *f, struct ctl_users *u)
{
	char why[PASSWD_WHY_MAX];
	size_t pos = 0, cap = 64;
	int rc;

	ctl_users_free(u);
	u->lines = malloc(cap * sizeof(*u->lines));
	if (u->lines == NULL) {
		ctl_error("out of memory");
		return -1;
	}
	while (pos < f->len) {
		const char *nl = memchr(f->text + pos, '\n', f->len - pos);
		size_t line_end = nl ? (size_t)(nl - f->text) : f->len;
		struct ctl_line *line;

		if (u->count == cap) {
			struct ctl_line *bigger;

			cap *= 2;
			bigger = realloc(u->lines, cap * sizeof(*u->lines));
			if (bigger == NULL) {
				ctl_error("out of memory");
				return -1;
			}
			u->lines = bigger;
		}
		line = &u->lines[u->count++];
		line->start = pos;
		line->end = nl ? line_end + 1 : line_end;
		rc = passwd_parse_user_line(f->text + pos, line_end - pos, true,
		                            &line->entry, why, sizeof(why));
		if (rc == PTL_ERROR) {
			ctl_error("%s:%zu: %s; fix the file first", f->path,
			          u->count, why);
			return -1;
		}
		line->is_user = rc == PTL_OK;
		pos = line->end;
	}
	return 0;
}

/* The line of the user @key (lower case), or NULL. */
static const struct ctl_line *
ctl_users_find(const struct ctl_users *u, const char *key)
{
	char found[PASSWD_LINE_MAX + 1];

	for (size_t i = 0; i < u->count; i++) {
		const struct passwd_entry *e = &u->lines[i].entry;

		if (!u->lines[i].is_user || e->user.len != strlen(key))
			continue;
		passwd_address_key(e->user.ptr, e->user.len, found);
		if (strcmp(found, key) == 0)
			return &u->lines[i];
	}
	return NULL;
}

/* ADDRESS checked, with its domain in lower case (as the server does). */
static int
ctl_address(const char *arg, char *out, size_t out_size)
{
	char why[PASSWD_WHY_MAX];
	size_t len = strlen(arg);
	char *at;

	if (passwd_check_address(arg, len, "address", why, sizeof(why)) !=
	    PTL_OK) {
		ctl_error("%s", why);
		return -1;
	}
	if (len >= out_size) {
		ctl_error("address too long");
		return -1;
	}
	memcpy(out, arg, len + 1);
	at = strchr(out, '@');
	passwd_address_key(at, strlen(at), at);
	return 0;
}

/* Read the password and hash it. */
static int
ctl_new_hash(enum passwd_scheme scheme, char *hash, size_t hash_size)
{
	char password[PASSWD_PASSWORD_MAX + 1];
	char why[PASSWD_WHY_MAX];
	int rc;

	if (ctl_password_read(true, password, sizeof(password)) < 0)
		return -1;
	rc = passwd_hash_make(scheme, password, hash, hash_size, why,
	                      sizeof(why));
	explicit_bzero(password, sizeof(password));
	if (rc != PTL_OK) {
		ctl_error("%s", why);
		return -1;
	}
	return 0;
}

/*
 * Rewrite the file with line @skip left out (NULL: none) and @insert put
 * in its place (or appended when @skip is NULL). Other lines are copied
 * byte for byte: comments and extra fields survive.
 */
static int
ctl_rewrite(struct ctl_file *f, const struct ctl_line *skip, const char *insert)
{
	size_t extra = insert ? strlen(insert) + 2 : 0;
	size_t len = 0;
	char *text;
	int rc;

	text = malloc(f->len + extra + 1);
	if (text == NULL) {
		ctl_error("out of memory");
		return -1;
	}
	if (skip == NULL) {
		memcpy(text, f->text, f->len);
		len = f->len;
		if (len > 0 && text[len - 1] != '\n')
			text[len++] = '\n';
		if (insert != NULL) {
			memcpy(text + len, insert, strlen(insert));
			len += strlen(insert);
			text[len++] = '\n';
		}
	} else {
		memcpy(text, f->text, skip->start);
		len = skip->start;
		if (insert != NULL) {
			memcpy(text + len, insert, strlen(insert));
			len += strlen(insert);
			text[len++] = '\n';
		}
		memcpy(text + len, f->text + skip->end, f->len - skip->end);
		len += f->len - skip->end;
	}
	rc = ctl_file_replace(f, text, len);
	free(text);
	return rc;
}

/* Lock, read and parse: the start of every edit. */
static int
ctl_edit_begin(struct ctl_file *f, struct ctl_users *u, bool may_be_missing)
{
	if (ctl_file_lock(f) != 0 || ctl_file_read(f, may_be_missing) != 0 ||
	    ctl_users_parse(f, u) != 0)
		return -1;
	return 0;
}

static int
ctl_user_add(struct ctl_file *f, const char *address, const char *key,
             enum passwd_scheme scheme)
{
	char hash[CRYPT_OUTPUT_SIZE + 32];
	char line[PASSWD_ADDRESS_MAX + sizeof(hash) + 2];
	struct ctl_users u = {0};
	int rc = -1;

	/* Refuse early, before asking for a password... */
	if (ctl_file_read(f, true) != 0 || ctl_users_parse(f, &u) != 0)
		goto out;
	if (ctl_users_find(&u, key) != NULL) {
		ctl_error("user %s already exists in %s", address, f->path);
		goto out;
	}
	if (ctl_new_hash(scheme, hash, sizeof(hash)) != 0)
		goto out;
	/* ...and check again under the lock: the file may have changed. */
	if (ctl_edit_begin(f, &u, true) != 0)
		goto out;
	if (ctl_users_find(&u, key) != NULL) {
		ctl_error("user %s already exists in %s", address, f->path);
		goto out;
	}
	(void)snprintf(line, sizeof(line), "%s:%s", address, hash);
	rc = ctl_rewrite(f, NULL, line);
out:
	explicit_bzero(hash, sizeof(hash));
	ctl_users_free(&u);
	return rc;
}

static int
ctl_user_passwd(struct ctl_file *f, const char *address, const char *key,
                enum passwd_scheme scheme)
{
	char hash[CRYPT_OUTPUT_SIZE + 32];
	struct ctl_users u = {0};
	const struct ctl_line *found;
	char *line = NULL;
	int rc = -1;

	if (ctl_file_read(f, false) != 0 || ctl_users_parse(f, &u) != 0)
		goto out;
	if (ctl_users_find(&u, key) == NULL) {
		ctl_error("no user %s in %s", address, f->path);
		goto out;
	}
	if (ctl_new_hash(scheme, hash, sizeof(hash)) != 0 ||
	    ctl_edit_begin(f, &u, false) != 0)
		goto out;
	found = ctl_users_find(&u, key);
	if (found == NULL) {
		ctl_error("no user %s in %s", address, f->path);
		goto out;
	}
	/* Same name as written, new password, the rest of the line kept. */
	line = malloc(found->entry.user.len + strlen(hash) +
	              found->entry.rest.len + 2);
	if (line == NULL) {
		ctl_error("out of memory");
		goto out;
	}
	(void)sprintf(line, "%.*s:%s%.*s", (int)found->entry.user.len,
	              found->entry.user.ptr, hash, (int)found->entry.rest.len,
	              found->entry.rest.ptr);
	rc = ctl_rewrite(f, found, line);
out:
	explicit_bzero(hash, sizeof(hash));
	free(line);
	ctl_users_free(&u);
	return rc;
}

static int
ctl_user_del(struct ctl_file *f, const char *address, const char *key)
{
	struct ctl_users u = {0};
	const struct ctl_line *found;
	int rc = -1;

	if (ctl_edit_begin(f, &u, false) != 0)
		goto out;
	found = ctl_users_find(&u, key);
	if (found == NULL) {
		ctl_error("no user %s in %s", address, f->path);
		goto out;
	}
	rc = ctl_rewrite(f, found, NULL);
out:
	ctl_users_free(&u);
	return rc;
}

static int
ctl_user_list(struct ctl_file *f)
{
	struct ctl_users u = {0};
	int rc = -1;

	if (ctl_file_read(f, false) != 0 || ctl_users_parse(f, &u) != 0)
		goto out;
	for (size_t i = 0; i < u.count; i++) {
		const struct passwd_entry *e = &u.lines[i].entry;

		if (u.lines[i].is_user)
			printf("%.*s\t%s\n", (int)e->user.len, e->user.ptr,
			       passwd_scheme_name(e->scheme));
	}
	rc = fflush(stdout) == 0 ? 0 : -1;
	if (rc != 0)
		ctl_error("cannot write the list");
out:
	ctl_users_free(&u);
	return rc;
}

static int
ctl_user_check(struct ctl_file *f, const char *address, const char *key)
{
	char password[PASSWD_PASSWORD_MAX + 1];
	struct ctl_users u = {0};
	const struct ctl_line *found;
	struct crypt_data *scratch = NULL;
	char *hash = NULL;
	int len, rc = -1;

	if (ctl_file_read(f, false) != 0 || ctl_users_parse(f, &u) != 0)
		goto out;
	found = ctl_users_find(&u, key);
	if (found == NULL) {
		ctl_error("no user %s in %s", address, f->path);
		goto out;
	}
	if (found->entry.scheme == PASSWD_SCHEME_NONE) {
		ctl_error("user %s has no password (login disabled)", address);
		goto out;
	}
	len = ctl_password_read(false, password, sizeof(password));
	if (len < 0)
		goto out;
	hash = strndup(found->entry.hash.ptr, found->entry.hash.len);
	scratch = calloc(1, sizeof(*scratch));
	if (hash == NULL || scratch == NULL) {
		ctl_error("out of memory");
	} else if (passwd_hash_matches(found->entry.scheme, hash,
	                               found->entry.hash.len, password,
	                               (size_t)len, scratch)) {
		printf("password of %s is correct\n", address);
		rc = 0;
	} else {
		ctl_error("wrong password for %s", address);
	}
	explicit_bzero(password, sizeof(password));
	if (scratch != NULL)
		explicit_bzero(scratch, sizeof(*scratch));
out:
	free(scratch);
	free(hash);
	ctl_users_free(&u);
	return rc;
}

/* ADDRESS [--scheme S]: @argv[0] is the verb. */
static int
ctl_user_args(int argc, char **argv, bool takes_scheme, const char **address,
              enum passwd_scheme *scheme)
{
	*address = NULL;
	*scheme = CTL_DEFAULT_SCHEME;
	for (int i = 1; i < argc; i++) {
		const char *name = NULL;

		if (takes_scheme && strcmp(argv[i], "--scheme") == 0) {
			if (++i == argc) {
				ctl_error("--scheme needs a value");
				return -1;
			}
			name = argv[i];
		} else if (takes_scheme &&
		           strncmp(argv[i], "--scheme=", 9) == 0) {
			name = argv[i] + 9;
		} else if (argv[i][0] == '-' || *address != NULL) {
			ctl_error("unexpected argument \"%s\"", argv[i]);
			return -1;
		} else {
			*address = argv[i];
			continue;
		}
		*scheme = passwd_scheme_from_option(name);
		if (*scheme == PASSWD_SCHEME_NONE) {
			ctl_error("unknown scheme \"%s\" (yescrypt, "
			          "sha512-crypt, blf-crypt)",
			          name);
			return -1;
		}
	}
	if (*address == NULL) {
		ctl_error("user %s needs an ADDRESS", argv[0]);
		return -1;
	}
	return 0;
}

/* One verb on the file @f. @return an exit code. */
static int
ctl_user_run(struct ctl_file *f, int argc, char **argv)
{
	char address[PASSWD_ADDRESS_MAX + 1], key[PASSWD_ADDRESS_MAX + 1];
	const char *verb = argv[0], *arg;
	enum passwd_scheme scheme;
	bool with_scheme;
	int rc;

	if (strcmp(verb, "list") == 0) {
		if (argc != 1) {
			ctl_error("user list takes no arguments");
			return CTL_EXIT_USAGE;
		}
		return ctl_user_list(f) == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
	}
	if (strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0 &&
	    strcmp(verb, "del") != 0 && strcmp(verb, "check") != 0) {
		ctl_error("unknown command \"user %s\"", verb);
		return CTL_EXIT_USAGE;
	}
	with_scheme = strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0;
	if (ctl_user_args(argc, argv, with_scheme, &arg, &scheme) != 0)
		return CTL_EXIT_USAGE;
	if (ctl_address(arg, address, sizeof(address)) != 0)
		return CTL_EXIT_ERROR;
	passwd_address_key(address, strlen(address), key);

	if (strcmp(verb, "add") == 0)
		rc = ctl_user_add(f, address, key, scheme);
	else if (strcmp(verb, "passwd") == 0)
		rc = ctl_user_passwd(f, address, key, scheme);
	else if (strcmp(verb, "del") == 0)
		rc = ctl_user_del(f, address, key);
	else
		rc = ctl_user_check(f, address, key);
	return rc == 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
}

int
ctl_user_main(const char *file, int argc, char **argv)
{
	struct ctl_file f;
	char *real;
	int rc;

	/* Edit the file a symlink points to, not replace the symlink. */
	real = realpath(file, NULL);
	ctl_file_init(&f, real != NULL ? real : file);
	rc = ctl_user_run(&f, argc, argv);
	ctl_file_close(&f);
	free(real);
	return rc;
}
