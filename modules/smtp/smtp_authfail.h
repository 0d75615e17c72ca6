/* SPDX-License-Identifier: MIT */
/* Failed AUTH attempts per client address, remembered across connections. */
#ifndef PETREL_SMTP_AUTHFAIL_H
#define PETREL_SMTP_AUTHFAIL_H

#include <stdint.h>

/** Entries kept per process; the least recently failing one is evicted. */
#define SMTP_AUTHFAIL_SLOTS 1024
/** A client address is forgotten this long after its last failure. */
#define SMTP_AUTHFAIL_WINDOW_MS ((int64_t)15 * 60 * 1000)

struct smtp_authfail;

/** Create an empty table. @return it, or NULL when out of memory. */
struct smtp_authfail *smtp_authfail_new(void);
void smtp_authfail_free(struct smtp_authfail *t);

/** Failures of @p ip still remembered at @p now_ms. */
unsigned smtp_authfail_count(struct smtp_authfail *t, const char *ip,
                             int64_t now_ms);
/** Record one failure of @p ip. @return its failures now. */
unsigned smtp_authfail_add(struct smtp_authfail *t, const char *ip,
                           int64_t now_ms);
/** Forget @p ip (a successful login). */
void smtp_authfail_clear(struct smtp_authfail *t, const char *ip);

#endif
