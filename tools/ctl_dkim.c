/* SPDX-License-Identifier: MIT */
/* petrelctl dkim keygen: a signing key and the DNS record to publish. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ctl.h"
#include "ctl_dkim.h"

/* A TXT character-string holds at most 255 bytes (RFC 1035 3.3.14). */
#define DKIM_TXT_STRING_MAX 255

struct dkim_keygen {
	const char *type;
	long bits;
	const char *selector;
	const char *domain;
	const char *out;
};

static void
dkim_usage(void)
{
	ctl_error("usage: petrelctl dkim keygen --type rsa|ed25519 "
	          "[--bits 2048|3072] --selector S --domain D --out FILE");
}

/* Letters, digits, '-', '_' and dots between labels. */
static bool
dkim_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 200 || s[0] == '.' || s[n - 1] == '.' ||
	    strstr(s, "..") != NULL)
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return false;
	}
	return true;
}

static int
dkim_parse(int argc, char **argv, struct dkim_keygen *k)
{
	int i;

	memset(k, 0, sizeof(*k));
	k->bits = 2048;
	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (v == NULL)
			return -1;
		if (strcmp(argv[i], "--type") == 0) {
			k->type = v;
		} else if (strcmp(argv[i], "--bits") == 0) {
			errno = 0;
			k->bits = strtol(v, &end, 10);
			if (errno != 0 || *end != '\0')
				return -1;
		} else if (strcmp(argv[i], "--selector") == 0) {
			k->selector = v;
		} else if (strcmp(argv[i], "--domain") == 0) {
			k->domain = v;
		} else if (strcmp(argv[i], "--out") == 0) {
			k->out = v;
		} else {
			return -1;
		}
		i++;
	}
	if (k->type == NULL || k->selector == NULL || k->domain == NULL ||
	    k->out == NULL)
		return -1;
	return 0;
}

static EVP_PKEY *
dkim_generate(const struct dkim_keygen *k)
{
	bool rsa = strcmp(k->type, "rsa") == 0;
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *pkey = NULL;

	ctx = EVP_PKEY_CTX_new_id(rsa ? EVP_PKEY_RSA : EVP_PKEY_ED25519, NULL);
	if (ctx == NULL)
		return NULL;
	if (EVP_PKEY_keygen_init(ctx) != 1 ||
	    (rsa && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)k->bits) != 1) ||
	    EVP_PKEY_keygen(ctx, &pkey) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return pkey;
}

/*
 * The key file is created, never replaced: overwriting a key that is
 * already published would break every signature until DNS catches up.
 */
static int
dkim_write_key(const char *path, EVP_PKEY *pkey)
{
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ctl_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) != 0) {
		ctl_error("%s: %s", path, strerror(errno));
		(void)close(fd);
		(void)unlink(path);
		return -1;
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		ctl_error("%s: %s", path, strerror(errno));
		(void)close(fd);
		(void)unlink(path);
		return -1;
	}
	if (PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    fflush(f) != 0 || fsync(fileno(f)) != 0) {
		ctl_error("%s: cannot write the key", path);
		(void)fclose(f);
		(void)unlink(path);
		return -1;
	}
	if (fclose(f) != 0) {
		ctl_error("%s: %s", path, strerror(errno));
		(void)unlink(path);
		return -1;
	}
	return 0;
}

/* p=: base64 of the SubjectPublicKeyInfo (rsa) or the raw key (ed25519).
 * @return malloc'd text or NULL. */
static char *
dkim_public_b64(EVP_PKEY *pkey, bool rsa)
{
	unsigned char *der = NULL, raw[32];
	size_t raw_len = sizeof(raw), len;
	char *b64;
	int n;

	if (rsa) {
		n = i2d_PUBKEY(pkey, &der);
		if (n <= 0)
			return NULL;
		len = (size_t)n;
	} else {
		if (EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) != 1)
			return NULL;
		len = raw_len;
	}
	b64 = malloc((len + 2) / 3 * 4 + 1);
	if (b64 != NULL)
		(void)EVP_EncodeBlock((unsigned char *)b64, rsa ? der : raw,
		                      (int)len);
	OPENSSL_free(der);
	return b64;
}

/* One line, the record split into quoted strings of at most 255 bytes. */
static void
dkim_print_record(const struct dkim_keygen *k, const char *b64, bool rsa)
{
	char *record;
	size_t len, off, n;

	len = strlen(b64) + 32;
	record = malloc(len);
	if (record == NULL) {
		ctl_error("out of memory");
		return;
	}
	(void)snprintf(record, len, "v=DKIM1; k=%s; p=%s",
	               rsa ? "rsa" : "ed25519", b64);
	printf("%s._domainkey.%s. IN TXT", k->selector, k->domain);
	len = strlen(record);
	for (off = 0; off < len; off += n) {
		n = len - off < DKIM_TXT_STRING_MAX ? len - off
		                                    : DKIM_TXT_STRING_MAX;
		printf(" \"%.*s\"", (int)n, record + off);
	}
	printf("\n");
	free(record);
}

static int
dkim_keygen(int argc, char **argv)
{
	struct dkim_keygen k;
	EVP_PKEY *pkey;
	char *b64;
	bool rsa;

	if (dkim_parse(argc, argv, &k) != 0) {
		dkim_usage();
		return CTL_EXIT_USAGE;
	}
	rsa = strcmp(k.type, "rsa") == 0;
	if (!rsa && strcmp(k.type, "ed25519") != 0) {
		ctl_error("--type: rsa or ed25519");
		return CTL_EXIT_USAGE;
	}
	/* The module signs with 2048 to 3072 bits: a larger b= would not
	 * fit the header field a filter can add. */
	if (rsa && (k.bits < 2048 || k.bits > 3072)) {
		ctl_error("--bits: 2048 to 3072");
		return CTL_EXIT_USAGE;
	}
	if (!dkim_name_ok(k.selector) || !dkim_name_ok(k.domain)) {
		ctl_error("--selector and --domain: letters, digits, '-', '_' "
		          "and dots");
		return CTL_EXIT_USAGE;
	}
	pkey = dkim_generate(&k);
	if (pkey == NULL) {
		ctl_error("key generation failed");
		return CTL_EXIT_ERROR;
	}
	b64 = dkim_public_b64(pkey, rsa);
	if (b64 == NULL || dkim_write_key(k.out, pkey) != 0) {
		if (b64 == NULL)
			ctl_error("cannot encode the public key");
		free(b64);
		EVP_PKEY_free(pkey);
		return CTL_EXIT_ERROR;
	}
	dkim_print_record(&k, b64, rsa);
	free(b64);
	EVP_PKEY_free(pkey);
	return CTL_EXIT_OK;
}

int
ctl_dkim_main(int argc, char **argv)
{
	if (argc < 1 || strcmp(argv[0], "keygen") != 0) {
		dkim_usage();
		return CTL_EXIT_USAGE;
	}
	return dkim_keygen(argc, argv);
}
