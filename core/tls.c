/* SPDX-License-Identifier: MIT */
/* OpenSSL contexts: server certificates with SNI, cached client contexts. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/cycle.h"
#include "core/tls.h"

/*
 * Used for TLS <= 1.2 when the config names no list: forward-secret AEAD
 * suites first, nothing anonymous, export-grade, RC4, 3DES or MD5-based.
 */
#define TLS_DEFAULT_CIPHERS                                                    \
	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:ECDHE+AES:HIGH:"  \
	"!aNULL:!eNULL:!EXPORT:!MD5:!RC4:!3DES:!DES:!PSK:!SRP:!DSS:!IDEA:"     \
	"!SEED"

/* Distinct (verify, ca_file) pairs come from the config: a small number. */
#define TLS_CLIENT_CACHE_MAX 64

/* A host name has at most 253 characters (RFC 1035 2.3.4). */
#define TLS_NAME_MAX 253

struct tls_cert {
	SSL_CTX *ctx;
	char **names; /* lower case, "*.example.com" allowed */
	size_t nnames;
};

struct ptl_tls {
	struct tls_cert *certs; /* certs[0] is the default */
	size_t ncerts;
};

struct tls_client_entry {
	struct tls_client_entry *next;
	int verify;
	char *ca_file; /* NULL: system store */
	SSL_CTX *ctx;
};

static struct tls_client_entry *tls_clients;
static unsigned tls_nclients;

/*
 * The first queued OpenSSL error is the most specific one (the later ones
 * are the callers giving up). Empties the thread's queue so that a stale
 * error never confuses a later SSL_get_error().
 */
static const char *
tls_error_text(char *buf, size_t size)
{
	unsigned long first = ERR_get_error();
	const char *reason;

	ERR_clear_error();
	if (first == 0)
		return "unknown error";
	reason = ERR_reason_error_string(first);
	if (reason != NULL)
		snprintf(buf, size, "%s", reason);
	else
		ERR_error_string_n(first, buf, size);
	return buf;
}

/* An encrypted key must fail to load, never prompt on the terminal. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)userdata;
	return 0;
}

static bool
tls_name_matches(const char *pattern, const char *name)
{
	const char *dot;

	if (strcasecmp(pattern, name) == 0)
		return true;
	/* "*.example.com" stands for exactly one leftmost label. */
	if (pattern[0] != '*' || pattern[1] != '.')
		return false;
	dot = strchr(name, '.');
	if (dot == NULL || dot == name)
		return false;
	return strcasecmp(pattern + 1, dot) == 0;
}

/* Picks the certificate for the name the client asked for (RFC 6066 3). */
static int
tls_servername_cb(SSL *ssl, int *alert, void *arg)
{
	const struct ptl_tls *tls = arg;
	const char *name;
	size_t i, j;

	(void)alert;
	name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (name == NULL || name[0] == '\0')
		return SSL_TLSEXT_ERR_NOACK;
	for (i = 0; i < tls->ncerts; i++) {
		for (j = 0; j < tls->certs[i].nnames; j++) {
			if (!tls_name_matches(tls->certs[i].names[j], name))
				continue;
			if (i > 0 &&
			    SSL_set_SSL_CTX(ssl, tls->certs[i].ctx) == NULL)
				return SSL_TLSEXT_ERR_ALERT_FATAL;
			return SSL_TLSEXT_ERR_OK;
		}
	}
	/* Unknown name: the default certificate answers. */
	return SSL_TLSEXT_ERR_NOACK;
}

static int
tls_cert_add_name(struct tls_cert *cert, const char *name, size_t len)
{
	char **names;
	char *copy;
	size_t i;

	if (len == 0 || len > TLS_NAME_MAX || memchr(name, '\0', len) != NULL)
		return PTL_OK; /* not a usable host name: ignore it */
	names = realloc(cert->names, (cert->nnames + 1) * sizeof(*names));
	if (names == NULL)
		return PTL_ERROR;
	cert->names = names;
	copy = malloc(len + 1);
	if (copy == NULL)
		return PTL_ERROR;
	for (i = 0; i < len; i++) {
		char ch = name[i];

		copy[i] =
		    (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
	}
	copy[len] = '\0';
	cert->names[cert->nnames++] = copy;
	return PTL_OK;
}

/* Names from the certificate: SAN DNS entries, else the subject CN. */
static int
tls_cert_names_from_x509(struct tls_cert *cert, X509 *x509)
{
	GENERAL_NAMES *sans;
	X509_NAME *subject;
	int i, rc = PTL_OK;

	sans = X509_get_ext_d2i(x509, NID_subject_alt_name, NULL, NULL);
	if (sans != NULL) {
		for (i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
			const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
			const ASN1_IA5STRING *dns;

			if (gn->type != GEN_DNS)
				continue;
			dns = gn->d.dNSName;
			if (tls_cert_add_name(cert, (const char *)dns->data,
			                      (size_t)dns->length) != PTL_OK) {
				rc = PTL_ERROR;
				break;
			}
		}
		GENERAL_NAMES_free(sans);
		if (rc != PTL_OK || cert->nnames > 0)
			return rc;
	}
	subject = X509_get_subject_name(x509);
	i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	if (i >= 0) {
		const ASN1_STRING *cn =
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));

		if (ASN1_STRING_type(cn) == V_ASN1_UTF8STRING ||
		    ASN1_STRING_type(cn) == V_ASN1_PRINTABLESTRING ||
		    ASN1_STRING_type(cn) == V_ASN1_IA5STRING)
			rc = tls_cert_add_name(
			    cert, (const char *)ASN1_STRING_get0_data(cn),
			    (size_t)ASN1_STRING_length(cn));
	}
	return rc;
}

static SSL_CTX *
tls_server_ctx_new(const struct ptl_tls_conf *conf, struct ptl_error *err)
{
	char reason[256];
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		ptl_error_set(err, "cannot create TLS context: %s",
		              tls_error_text(reason, sizeof(reason)));
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, conf->min_version == 1
	                                           ? TLS1_3_VERSION
	                                           : TLS1_2_VERSION) != 1) {
		ptl_error_set_path(err, "tls.min_version",
		                   "cannot set the minimum TLS version: %s",
		                   tls_error_text(reason, sizeof(reason)));
		goto fail;
	}
	/*
	 * No compression (CRIME), no renegotiation at all (client-initiated
	 * renegotiation is a cheap CPU DoS, and a renegotiated peer could
	 * change identity mid-session).
	 */
	SSL_CTX_set_options(
	    ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	             SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	/*
	 * No resumption: each worker is a separate process, so a session
	 * cache would rarely hit, and tickets need key rotation we would
	 * have to share between processes.
	 */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
		ptl_error_set(err, "cannot disable TLS session tickets: %s",
		              tls_error_text(reason, sizeof(reason)));
		goto fail;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (SSL_CTX_set_cipher_list(ctx, conf->ciphers != NULL
	                                     ? conf->ciphers
	                                     : TLS_DEFAULT_CIPHERS) != 1) {
		ptl_error_set_path(
		    err, "tls.ciphers", "no usable cipher in \"%s\": %s",
		    conf->ciphers != NULL ? conf->ciphers : TLS_DEFAULT_CIPHERS,
		    tls_error_text(reason, sizeof(reason)));
		goto fail;
	}
	if (conf->ciphersuites != NULL &&
	    SSL_CTX_set_ciphersuites(ctx, conf->ciphersuites) != 1) {
		ptl_error_set_path(err, "tls.ciphersuites",
		                   "no usable TLS 1.3 suite in \"%s\": %s",
		                   conf->ciphersuites,
		                   tls_error_text(reason, sizeof(reason)));
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int
tls_cert_load(struct tls_cert *cert, const struct ptl_tls_conf *conf,
              const struct ptl_tls_cert_conf *cc, size_t index,
              struct ptl_error *err)
{
	char path[64], reason[256];
	const char *const *names;
	size_t i;

	cert->ctx = tls_server_ctx_new(conf, err);
	if (cert->ctx == NULL)
		return PTL_ERROR;

	snprintf(path, sizeof(path), "tls.certificates[%zu].cert", index);
	if (cc->cert == NULL)
		return ptl_error_set_path(err, path, "no certificate file");
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(cert->ctx, cc->cert) != 1)
		return ptl_error_set_path(
		    err, path, "cannot load certificate chain \"%s\": %s",
		    cc->cert, tls_error_text(reason, sizeof(reason)));

	snprintf(path, sizeof(path), "tls.certificates[%zu].key", index);
	if (cc->key == NULL)
		return ptl_error_set_path(err, path, "no private key file");
	if (SSL_CTX_use_PrivateKey_file(cert->ctx, cc->key, SSL_FILETYPE_PEM) !=
	    1)
		return ptl_error_set_path(
		    err, path, "cannot load private key \"%s\": %s", cc->key,
		    tls_error_text(reason, sizeof(reason)));
	if (SSL_CTX_check_private_key(cert->ctx) != 1)
		return ptl_error_set_path(
		    err, path,
		    "private key \"%s\" does not match certificate \"%s\": %s",
		    cc->key, cc->cert, tls_error_text(reason, sizeof(reason)));

	if (cc->names.count > 0) {
		names = cc->names.items;
		for (i = 0; i < cc->names.count; i++) {
			if (names[i] == NULL)
				continue;
			if (tls_cert_add_name(cert, names[i],
			                      strlen(names[i])) != PTL_OK)
				return ptl_error_set(err, "out of memory");
		}
		return PTL_OK;
	}
	if (tls_cert_names_from_x509(
	        cert, SSL_CTX_get0_certificate(cert->ctx)) != PTL_OK)
		return ptl_error_set(err, "out of memory");
	return PTL_OK;
}

int
ptl_tls_build(struct ptl_cycle *cycle, struct ptl_error *err)
{
	const struct ptl_tls_conf *conf = &cycle->tls_conf;
	const struct ptl_tls_cert_conf *items = conf->certificates.items;
	struct ptl_tls *tls;
	size_t i;

	cycle->tls = NULL;
	if (conf->certificates.count == 0)
		return PTL_OK;

	tls = calloc(1, sizeof(*tls));
	if (tls == NULL)
		return ptl_error_set(err, "out of memory");
	tls->certs = calloc(conf->certificates.count, sizeof(*tls->certs));
	if (tls->certs == NULL) {
		free(tls);
		return ptl_error_set(err, "out of memory");
	}
	for (i = 0; i < conf->certificates.count; i++) {
		tls->ncerts++;
		if (tls_cert_load(&tls->certs[i], conf, &items[i], i, err) !=
		    PTL_OK) {
			ptl_tls_free(tls);
			return PTL_ERROR;
		}
	}
	if (tls->ncerts > 1) {
		SSL_CTX_set_tlsext_servername_callback(tls->certs[0].ctx,
		                                       tls_servername_cb);
		SSL_CTX_set_tlsext_servername_arg(tls->certs[0].ctx, tls);
	}
	cycle->tls = tls;
	return PTL_OK;
}

void
ptl_tls_free(struct ptl_tls *tls)
{
	size_t i, j;

	if (tls == NULL)
		return;
	for (i = 0; i < tls->ncerts; i++) {
		SSL_CTX_free(tls->certs[i].ctx);
		for (j = 0; j < tls->certs[i].nnames; j++)
			free(tls->certs[i].names[j]);
		free(tls->certs[i].names);
	}
	free(tls->certs);
	free(tls);
}

SSL_CTX *
ptl_tls_server_ctx(struct ptl_tls *tls)
{
	if (tls == NULL || tls->ncerts == 0)
		return NULL;
	return tls->certs[0].ctx;
}

static SSL_CTX *
tls_client_ctx_new(int verify, const char *ca_file, struct ptl_error *err)
{
	char reason[256];
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		ptl_error_set(err, "cannot create TLS client context: %s",
		              tls_error_text(reason, sizeof(reason)));
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		ptl_error_set(err, "cannot set the minimum TLS version: %s",
		              tls_error_text(reason, sizeof(reason)));
		goto fail;
	}
	SSL_CTX_set_options(ctx,
	                    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                          SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_set_cipher_list(ctx, TLS_DEFAULT_CIPHERS) != 1) {
		ptl_error_set(err, "cannot set the TLS cipher list: %s",
		              tls_error_text(reason, sizeof(reason)));
		goto fail;
	}
	if (verify == PTL_TLS_VERIFY_PEER) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) !=
			    1) {
				ptl_error_set(
				    err, "cannot load CA file \"%s\": %s",
				    ca_file,
				    tls_error_text(reason, sizeof(reason)));
				goto fail;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			ptl_error_set(err,
			              "cannot load the system CA store: %s",
			              tls_error_text(reason, sizeof(reason)));
			goto fail;
		}
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
ptl_tls_client_ctx(int verify, const char *ca_file, struct ptl_error *err)
{
	struct tls_client_entry *e;

	verify = verify == PTL_TLS_VERIFY_PEER ? PTL_TLS_VERIFY_PEER
	                                       : PTL_TLS_VERIFY_NONE;
	/* Without verification the CA file is not used: share one context. */
	if (verify == PTL_TLS_VERIFY_NONE)
		ca_file = NULL;
	for (e = tls_clients; e != NULL; e = e->next) {
		if (e->verify != verify)
			continue;
		if ((e->ca_file == NULL) != (ca_file == NULL))
			continue;
		if (ca_file == NULL || strcmp(e->ca_file, ca_file) == 0)
			return e->ctx;
	}
	if (tls_nclients >= TLS_CLIENT_CACHE_MAX) {
		ptl_error_set(err,
		              "too many distinct TLS client settings "
		              "(more than %d CA files)",
		              TLS_CLIENT_CACHE_MAX);
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		ptl_error_set(err, "out of memory");
		return NULL;
	}
	if (ca_file != NULL && (e->ca_file = strdup(ca_file)) == NULL) {
		free(e);
		ptl_error_set(err, "out of memory");
		return NULL;
	}
	e->verify = verify;
	e->ctx = tls_client_ctx_new(verify, ca_file, err);
	if (e->ctx == NULL) {
		free(e->ca_file);
		free(e);
		return NULL;
	}
	e->next = tls_clients;
	tls_clients = e;
	tls_nclients++;
	return e->ctx;
}

void
ptl_tls_client_fini(void)
{
	struct tls_client_entry *e, *next;

	for (e = tls_clients; e != NULL; e = next) {
		next = e->next;
		SSL_CTX_free(e->ctx);
		free(e->ca_file);
		free(e);
	}
	tls_clients = NULL;
	tls_nclients = 0;
}
