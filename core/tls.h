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
 * no compression, no renegotiation, no session resumption). Reads the key
 * files, so the master calls it as root. cycle->tls stays NULL when no
 * certificates.
 *
 * Ordering contract: ptl_cycle_init_master() calls this BEFORE any
 * module's init_master, because ptl_listener_add() refuses an implicit-TLS
 * listener when cycle->tls is NULL.
 *
 * The first certificate is the default; the others are chosen by SNI when
 * the client's server name matches one of their names (config "names", or
 * else the certificate's SAN DNS names, or else its CN; "*.example.com"
 * matches exactly one leftmost label; case-insensitive). Errors carry the
 * JSON path ("tls.certificates[1].key") and name the file.
 */
int ptl_tls_build(struct ptl_cycle *cycle, struct ptl_error *err);
void ptl_tls_free(struct ptl_tls *tls);

/* Server context for new connections, or NULL when TLS is not set up. */
SSL_CTX *ptl_tls_server_ctx(struct ptl_tls *tls);
/*
 * Client context for (verify, ca_file) (verify: enum ptl_tls_verify),
 * created on first use and cached per process (at most 64 entries).
 * TLS 1.2+, no compression, no renegotiation. With PTL_TLS_VERIFY_PEER
 * the chain is checked against @ca_file (NULL: the system store); the
 * host name check is set per connection (ptl_conn_starttls_client()).
 */
SSL_CTX *ptl_tls_client_ctx(int verify, const char *ca_file,
                            struct ptl_error *err);
/* Free cached client contexts (process exit). */
void ptl_tls_client_fini(void);

#endif
