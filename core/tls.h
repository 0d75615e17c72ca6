/* SPDX-License-Identifier: MIT */
/* Internal: OpenSSL contexts built from the "tls" section. */
#ifndef PETREL_CORE_TLS_H
#define PETREL_CORE_TLS_H

#include <openssl/ssl.h>
#include <petrel/petrel.h>

struct ptl_cycle;
struct ptl_tls;

/*
 * Build the server context(s) of @cycle (certificates, SNI, TLS 1.2+,
 * no compression, no client renegotiation). Reads the key files, so the
 * master calls it as root. cycle->tls stays NULL when no certificates.
 */
int ptl_tls_build(struct ptl_cycle *cycle, struct ptl_error *err);
void ptl_tls_free(struct ptl_tls *tls);

/* Server context for new connections, or NULL when TLS is not set up. */
SSL_CTX *ptl_tls_server_ctx(struct ptl_tls *tls);
/* Client context for (verify, ca_file), created on first use, cached. */
SSL_CTX *ptl_tls_client_ctx(int verify, const char *ca_file,
			    struct ptl_error *err);
/* Free cached client contexts (process exit). */
void ptl_tls_client_fini(void);

#endif
