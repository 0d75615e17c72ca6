/* SPDX-License-Identifier: MIT */
/* Password checks on the thread pool, answered on the loop. */
#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>

#include "passwd.h"

/*
 * What an attacker must not learn from a failed login: whether the user
 * exists. An unknown user (or one without a password) is hashed against
 * the dummy hash of the file's most common scheme, on the same thread
 * pool, and answers with the same status as a wrong password.
 */

static void
passwd_verify_work(void *arg)
{
	struct passwd_call *call = arg;
	struct crypt_data *scratch;
	bool matched;

	/* 32 KiB: on the heap, not on a pool thread's stack. */
	scratch = malloc(sizeof(*scratch));
	if (scratch == NULL) {
		call->failed = true;
	} else {
		matched = passwd_hash_matches(call->scheme, call->hash,
		                              call->hash_len, call->password,
		                              call->password_len, scratch);
		call->matched = matched && call->known;
		explicit_bzero(scratch, sizeof(*scratch));
		free(scratch);
	}
	explicit_bzero(call->password, call->password_len);
}

static void
passwd_verify_done(void *arg)
{
	struct passwd_call *call = arg;
	enum ptl_auth_status status;
	char login[128];

	passwd_call_unlink(call);
	if (call->failed)
		status = PTL_AUTH_TEMPFAIL;
	else if (call->matched)
		status = PTL_AUTH_OK;
	else
		status = PTL_AUTH_NOTFOUND;
	if (status != PTL_AUTH_OK && ptl_log_enabled(PTL_LOG_DEBUG))
		ptl_log(PTL_LOG_DEBUG, "passwd: login \"%s\" %s",
		        ptl_log_escape(login, sizeof(login), call->login,
		                       strlen(call->login)),
		        call->failed  ? "failed: out of memory"
		        : call->known ? "refused: wrong password"
		                      : "refused: no such user");
	if (!call->cancelled)
		call->done.verify(
		    status, status == PTL_AUTH_OK ? call->canonical : NULL,
		    call->arg);
	passwd_call_free(call);
}

int
passwd_verify_submit(struct passwd_call *call)
{
	struct passwd_service *svc = call->svc;
	const struct passwd_user *user;
	const char *hash;

	user = passwd_db_find_user(svc->db, call->login);
	call->known = user != NULL && user->scheme != PASSWD_SCHEME_NONE &&
	              call->password_usable;
	if (call->known) {
		hash = user->hash;
		call->scheme = user->scheme;
		call->canonical = strdup(user->name);
		if (call->canonical == NULL)
			return PTL_ERROR;
	} else {
		hash = passwd_db_dummy_hash(svc->db, &call->scheme);
	}
	/* The tables may be swapped while the thread hashes: own a copy. */
	call->hash = strdup(hash);
	if (call->hash == NULL)
		return PTL_ERROR;
	call->hash_len = strlen(hash);
	if (ptl_task_submit(passwd_verify_work, passwd_verify_done, call) !=
	    PTL_OK)
		return PTL_ERROR;
	passwd_call_hashing(call);
	return PTL_AGAIN;
}
