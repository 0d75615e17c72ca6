/* SPDX-License-Identifier: MIT */
/* The "auth" service: user database (recipients, aliases) and passwords. */
#ifndef PETREL_AUTH_H
#define PETREL_AUTH_H

#include <petrel/core.h>
#include <petrel/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Service name and interface version of this header. */
#define PTL_AUTH_SERVICE "auth"
#define PTL_AUTH_VERSION 1

/** Outcome of a lookup or a password check. */
enum ptl_auth_status {
	PTL_AUTH_OK = 0,       /**< found / password matches */
	PTL_AUTH_NOTFOUND = 1, /**< no such address / wrong user or password */
	PTL_AUTH_TEMPFAIL = 2, /**< the backend cannot answer now (4xx) */
};

/** Result of resolving one address to local mailboxes. */
struct ptl_auth_lookup {
	enum ptl_auth_status status;
	/** Canonical user names ("user@domain") the address delivers to:
	 *  one for a user, one or more for an alias. Allocated from the
	 *  pool passed to lookup(). */
	const char **users;
	size_t nusers;
};

/** Completion of an asynchronous lookup. Loop thread. */
typedef void (*ptl_auth_lookup_fn)(const struct ptl_auth_lookup *res,
                                   void *arg);

/** Completion of a password check. @p user is the canonical user name
 *  on PTL_AUTH_OK (valid during the call only), else NULL. Loop thread. */
typedef void (*ptl_auth_verify_fn)(enum ptl_auth_status status,
                                   const char *user, void *arg);

/**
 * Methods of the "auth" service. Every call is made on the loop thread of
 * a worker/helper with the provider's `instance` as first argument.
 */
struct ptl_auth_methods {
	unsigned version; /**< PTL_AUTH_VERSION the provider implements */

	/**
	 * Whether @p domain (lower case, no trailing dot) is a domain this
	 * userdb serves. Synchronous, cheap.
	 */
	int (*is_local_domain)(void *instance, const char *domain);

	/**
	 * Resolve the address @p address ("local@domain", domain lower
	 * case) to local users, following aliases and catch-alls.
	 * Either fills *@p res_out and returns PTL_OK (answered at once;
	 * @p done is not called), or returns PTL_AGAIN and later calls
	 * @p done(res, arg) exactly once. Strings go into @p pool.
	 * Returns PTL_ERROR only for bad arguments.
	 */
	int (*lookup)(void *instance, const char *address,
	              struct ptl_pool *pool, struct ptl_auth_lookup *res_out,
	              ptl_auth_lookup_fn done, void *arg);

	/**
	 * Check @p password (not NUL-terminated, @p len bytes) of the login
	 * name @p user (an address). Hashing is slow by design, so it runs
	 * off the loop: the provider returns PTL_AGAIN and calls @p done
	 * exactly once on the loop thread. The comparison is constant-time;
	 * an unknown user costs the same as a wrong password. The provider
	 * copies what it needs before returning.
	 * @return PTL_AGAIN, or PTL_ERROR (out of memory; done not called).
	 */
	int (*verify)(void *instance, const char *user, const char *password,
	              size_t len, ptl_auth_verify_fn done, void *arg);

	/**
	 * Cancel every pending verify or lookup started with @p arg (the
	 * session is going away): their @p done will not be called.
	 */
	void (*cancel)(void *instance, void *arg);
};

#ifdef __cplusplus
}
#endif
#endif
