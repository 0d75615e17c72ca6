/* SPDX-License-Identifier: MIT */
/* Password hashes through libxcrypt: make, check, compare in constant time. */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "passwd.h"

/* Salt entropy handed to crypt_gensalt_rn: more than any method uses. */
#define PASSWD_SALT_BYTES 32

bool
passwd_equal_consttime(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile unsigned char *pa = a, *pb = b;
	unsigned char diff = alen != blen;
	size_t i;

	/* Walk all of @a whatever the contents, so no early exit leaks. */
	for (i = 0; i < alen; i++)
		diff |= (unsigned char)(pa[i] ^ (i < blen ? pb[i] : 0));
	return diff == 0;
}

/*
 * crypt_checksalt() judges the setting only, so "$6$" alone would pass
 * and then never match anything: also want a non-empty hash after the
 * last '$' (53 characters of salt and hash for bcrypt).
 */
bool
passwd_hash_valid(const char *hash, size_t len)
{
	char copy[CRYPT_OUTPUT_SIZE];
	const char *last;
	size_t dollars = 0;

	if (len == 0 || len >= sizeof(copy))
		return false;
	for (size_t i = 0; i < len; i++)
		dollars += hash[i] == '$';
	last = memrchr(hash, '$', len);
	if (dollars < 3 || last == NULL || last == hash + len - 1)
		return false;
	if (hash[1] == '2' && hash + len - last - 1 != 53)
		return false;
	memcpy(copy, hash, len);
	copy[len] = '\0';
	return crypt_checksalt(copy) == CRYPT_SALT_OK;
}

bool
passwd_hash_matches(enum passwd_scheme scheme, const char *hash,
                    size_t hash_len, const char *password, size_t password_len,
                    struct crypt_data *scratch)
{
	const char *out;

	switch (scheme) {
	case PASSWD_SCHEME_PLAIN:
		return passwd_equal_consttime(password, password_len, hash,
		                              hash_len);
	case PASSWD_SCHEME_SHA512_CRYPT:
	case PASSWD_SCHEME_BLF_CRYPT:
	case PASSWD_SCHEME_YESCRYPT:
		break;
	case PASSWD_SCHEME_NONE:
		return false;
	}
	memset(scratch, 0, sizeof(*scratch));
	out = crypt_rn(password, hash, scratch, (int)sizeof(*scratch));
	/* crypt(3) stops at a NUL: "a\0b" must not log in as "a". */
	if (out == NULL || memchr(password, '\0', password_len) != NULL)
		return false;
	return passwd_equal_consttime(out, strlen(out), hash, hash_len);
}

/*
 * The cost of new hashes. libxcrypt's defaults (5000 SHA-512 rounds,
 * bcrypt cost 5) date from slower machines; yescrypt's is current.
 */
#define PASSWD_SHA512_ROUNDS 100000ul
#define PASSWD_BCRYPT_COST   10ul

static const char *
passwd_gensalt_prefix(enum passwd_scheme scheme, const char **field_out,
                      unsigned long *count_out)
{
	*count_out = 0;
	switch (scheme) {
	case PASSWD_SCHEME_SHA512_CRYPT:
		*field_out = "{SHA512-CRYPT}";
		*count_out = PASSWD_SHA512_ROUNDS;
		return "$6$";
	case PASSWD_SCHEME_BLF_CRYPT:
		/* $2y$: what Dovecot writes and every bcrypt reads. */
		*field_out = "{BLF-CRYPT}";
		*count_out = PASSWD_BCRYPT_COST;
		return "$2y$";
	case PASSWD_SCHEME_YESCRYPT:
		/* Dovecot has no YESCRYPT name: {CRYPT} is what it reads. */
		*field_out = "{CRYPT}";
		return "$y$";
	case PASSWD_SCHEME_PLAIN:
	case PASSWD_SCHEME_NONE:
		break;
	}
	return NULL;
}

int
passwd_hash_make(enum passwd_scheme scheme, const char *password, char *out,
                 size_t out_size, char *why, size_t why_size)
{
	unsigned char entropy[PASSWD_SALT_BYTES];
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *data;
	const char *prefix, *field, *hash;
	unsigned long count;
	int rc = PTL_ERROR;

	prefix = passwd_gensalt_prefix(scheme, &field, &count);
	if (prefix == NULL) {
		(void)snprintf(why, why_size, "cannot make a %s hash",
		               passwd_scheme_name(scheme));
		return PTL_ERROR;
	}
	if (getentropy(entropy, sizeof(entropy)) != 0) {
		(void)snprintf(why, why_size, "getentropy: %s",
		               strerror(errno));
		return PTL_ERROR;
	}
	if (crypt_gensalt_rn(prefix, count, (const char *)entropy,
	                     (int)sizeof(entropy), setting,
	                     (int)sizeof(setting)) == NULL) {
		(void)snprintf(why, why_size, "crypt_gensalt(%s): %s", prefix,
		               strerror(errno));
		explicit_bzero(entropy, sizeof(entropy));
		return PTL_ERROR;
	}
	explicit_bzero(entropy, sizeof(entropy));
	data = calloc(1, sizeof(*data));
	if (data == NULL) {
		(void)snprintf(why, why_size, "out of memory");
		return PTL_ERROR;
	}
	hash = crypt_rn(password, setting, data, (int)sizeof(*data));
	if (hash == NULL || hash[0] == '*') {
		(void)snprintf(why, why_size, "crypt(%s) failed: %s", prefix,
		               strerror(errno));
	} else if ((size_t)snprintf(out, out_size, "%s%s", field, hash) >=
	           out_size) {
		(void)snprintf(why, why_size, "hash too long");
	} else {
		rc = PTL_OK;
	}
	explicit_bzero(data, sizeof(*data));
	free(data);
	return rc;
}
