/* SPDX-License-Identifier: MIT */
/* The "auth" service methods: domains, lookups, verify, cancel. */
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>

#include "passwd.h"

/* ---- Calls ----------------------------------------------------------------
 */

void
passwd_call_free(struct passwd_call *call)
{
	if (call == NULL)
		return;
	if (call->password != NULL) {
		explicit_bzero(call->password, call->password_len);
		free(call->password);
	}
	free(call->address);
	free(call->login);
	free(call->canonical);
	free(call->hash);
	free(call);
}

void
passwd_call_unlink(struct passwd_call *call)
{
	struct passwd_service *svc = call->svc;

	if (call->prev != NULL)
		call->prev->next = call->next;
	else if (call->on == PASSWD_CALL_WAITING)
		svc->waiting_head = call->next;
	else if (call->on == PASSWD_CALL_HASHING)
		svc->hashing = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	else if (call->on == PASSWD_CALL_WAITING)
		svc->waiting_tail = call->prev;
	call->prev = call->next = NULL;
	call->on = PASSWD_CALL_DETACHED;
}

void
passwd_call_wait(struct passwd_call *call)
{
	struct passwd_service *svc = call->svc;

	/* First in, first answered: replies keep the order of requests. */
	call->on = PASSWD_CALL_WAITING;
	call->next = NULL;
	call->prev = svc->waiting_tail;
	if (svc->waiting_tail != NULL)
		svc->waiting_tail->next = call;
	else
		svc->waiting_head = call;
	svc->waiting_tail = call;
}

void
passwd_call_hashing(struct passwd_call *call)
{
	struct passwd_service *svc = call->svc;

	call->on = PASSWD_CALL_HASHING;
	call->prev = NULL;
	call->next = svc->hashing;
	if (svc->hashing != NULL)
		svc->hashing->prev = call;
	svc->hashing = call;
}

void
passwd_service_drop_calls(struct passwd_service *svc)
{
	struct passwd_call *call;

	if (svc == NULL)
		return;
	while ((call = svc->waiting_head) != NULL) {
		passwd_call_unlink(call);
		passwd_call_free(call);
	}
	/* Still hashing: the thread owns them; their done frees them. */
	for (call = svc->hashing; call != NULL; call = call->next)
		call->cancelled = true;
}

/* ---- Service --------------------------------------------------------------
 */

int
passwd_service_create(const struct passwd_options *opts,
                      int64_t check_interval_ms,
                      struct passwd_service **svc_out, struct ptl_error *err)
{
	struct passwd_service *svc;

	*svc_out = NULL;
	svc = calloc(1, sizeof(*svc));
	if (svc == NULL)
		return ptl_error_set(err, "out of memory");
	svc->magic = PASSWD_SERVICE_MAGIC;
	svc->opts = *opts;
	svc->check_interval_ms = check_interval_ms;
	if (passwd_db_load(&svc->opts, &svc->db, err) != PTL_OK) {
		free(svc);
		return PTL_ERROR;
	}
	svc->seen_users = *passwd_db_users_id(svc->db);
	svc->seen_aliases = *passwd_db_aliases_id(svc->db);
	*svc_out = svc;
	return PTL_OK;
}

void
passwd_service_destroy(struct passwd_service *svc)
{
	if (svc == NULL)
		return;
	passwd_service_drop_calls(svc);
	passwd_db_free(svc->db);
	svc->magic = 0;
	free(svc);
}

static struct passwd_service *
passwd_service_of(void *instance)
{
	struct passwd_service *svc = instance;

	return svc != NULL && svc->magic == PASSWD_SERVICE_MAGIC ? svc : NULL;
}

/* Resolve now, from the tables this process has. */
static void
passwd_answer(struct passwd_service *svc, const char *address,
              struct ptl_pool *pool, struct ptl_auth_lookup *res)
{
	struct passwd_resolved r;
	const char **users;

	memset(res, 0, sizeof(*res));
	if (!passwd_db_resolve(svc->db, address, &r)) {
		res->status = PTL_AUTH_NOTFOUND;
		return;
	}
	users = ptl_palloc(pool, r.nusers * sizeof(*users));
	if (users == NULL) {
		res->status = PTL_AUTH_TEMPFAIL;
		return;
	}
	for (size_t i = 0; i < r.nusers; i++) {
		users[i] = ptl_pstrdup(pool, r.users[i]->name);
		if (users[i] == NULL) {
			res->status = PTL_AUTH_TEMPFAIL;
			return;
		}
	}
	res->status = PTL_AUTH_OK;
	res->users = users;
	res->nusers = r.nusers;
}

void
passwd_call_resume(struct passwd_call *call)
{
	struct ptl_auth_lookup res;
	ptl_auth_lookup_fn lookup_done;
	ptl_auth_verify_fn verify_done;
	void *arg = call->arg;

	if (call->kind == PASSWD_CALL_LOOKUP) {
		passwd_answer(call->svc, call->address, call->pool, &res);
		lookup_done = call->done.lookup;
		passwd_call_free(call);
		lookup_done(&res, arg);
		return;
	}
	if (passwd_verify_submit(call) == PTL_AGAIN)
		return;
	/* Too late to return PTL_ERROR: the caller was told PTL_AGAIN. */
	verify_done = call->done.verify;
	passwd_call_free(call);
	verify_done(PTL_AUTH_TEMPFAIL, NULL, arg);
}

/* ---- Methods --------------------------------------------------------------
 */

static int
passwd_svc_is_local_domain(void *instance, const char *domain)
{
	struct passwd_service *svc = passwd_service_of(instance);

	if (svc == NULL || domain == NULL)
		return 0;
	(void)passwd_reload_poke(svc);
	return passwd_db_is_local_domain(svc->db, domain);
}

static int
passwd_svc_lookup(void *instance, const char *address, struct ptl_pool *pool,
                  struct ptl_auth_lookup *res_out, ptl_auth_lookup_fn done,
                  void *arg)
{
	struct passwd_service *svc = passwd_service_of(instance);
	struct passwd_call *call;

	if (svc == NULL || address == NULL || pool == NULL || res_out == NULL)
		return PTL_ERROR;
	/*
	 * While the file is being checked, wait for the check: a user
	 * added a second ago must not get a 550. Without a done callback
	 * (or memory to queue), answer from the current tables.
	 */
	if (done != NULL && passwd_reload_poke(svc)) {
		call = calloc(1, sizeof(*call));
		if (call != NULL)
			call->address = strdup(address);
		if (call != NULL && call->address != NULL) {
			call->svc = svc;
			call->kind = PASSWD_CALL_LOOKUP;
			call->arg = arg;
			call->done.lookup = done;
			call->pool = pool;
			passwd_call_wait(call);
			return PTL_AGAIN;
		}
		passwd_call_free(call);
	}
	passwd_answer(svc, address, pool, res_out);
	return PTL_OK;
}

static int
passwd_svc_verify(void *instance, const char *user, const char *password,
                  size_t len, ptl_auth_verify_fn done, void *arg)
{
	struct passwd_service *svc = passwd_service_of(instance);
	struct passwd_call *call;

	if (svc == NULL || user == NULL || done == NULL ||
	    (password == NULL && len > 0))
		return PTL_ERROR;
	call = calloc(1, sizeof(*call));
	if (call == NULL)
		return PTL_ERROR;
	call->svc = svc;
	call->kind = PASSWD_CALL_VERIFY;
	call->arg = arg;
	call->done.verify = done;
	call->login = strdup(user);
	/* Too long: hash the dummy with nothing, it can never match. */
	call->password_usable = len <= PASSWD_PASSWORD_MAX;
	call->password_len = call->password_usable ? len : 0;
	call->password = malloc(call->password_len + 1);
	if (call->login == NULL || call->password == NULL) {
		passwd_call_free(call);
		return PTL_ERROR;
	}
	if (call->password_len > 0)
		memcpy(call->password, password, call->password_len);
	call->password[call->password_len] = '\0';
	if (passwd_reload_poke(svc)) {
		passwd_call_wait(call);
		return PTL_AGAIN;
	}
	if (passwd_verify_submit(call) != PTL_AGAIN) {
		passwd_call_free(call);
		return PTL_ERROR;
	}
	return PTL_AGAIN;
}

static void
passwd_svc_cancel(void *instance, void *arg)
{
	struct passwd_service *svc = passwd_service_of(instance);
	struct passwd_call *call, *next;

	if (svc == NULL)
		return;
	for (call = svc->waiting_head; call != NULL; call = next) {
		next = call->next;
		if (call->arg != arg)
			continue;
		passwd_call_unlink(call);
		passwd_call_free(call);
	}
	/* The hash cannot be stopped; only its answer is dropped. */
	for (call = svc->hashing; call != NULL; call = call->next)
		if (call->arg == arg)
			call->cancelled = true;
}

const struct ptl_auth_methods passwd_auth_methods = {
    .version = PTL_AUTH_VERSION,
    .is_local_domain = passwd_svc_is_local_domain,
    .lookup = passwd_svc_lookup,
    .verify = passwd_svc_verify,
    .cancel = passwd_svc_cancel,
};
