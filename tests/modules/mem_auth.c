/* SPDX-License-Identifier: MIT */
/* Test module: an "auth" service whose users and aliases come from config. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <petrel/petrel.h>

/*
 * {"domains": ["example.test"],
 *  "users": [{"address": "alice@example.test", "password": "secret"}],
 *  "aliases": [{"address": "all@example.test",
 *               "users": ["alice@example.test", "bob@example.test"]}],
 *  "tempfail": ["broken@example.test"],  lookups that fail temporarily
 *  "verify_delay": "10ms",               verify() answers after this
 *  "async_lookup": false}                lookup() answers through a timer
 */

struct mem_user_conf {
	const char *address;
	const char *password;
};

struct mem_alias_conf {
	const char *address;
	struct ptl_conf_list users;
};

struct mem_auth_conf {
	struct ptl_conf_list domains;
	struct ptl_conf_list users;   /* struct mem_user_conf */
	struct ptl_conf_list aliases; /* struct mem_alias_conf */
	struct ptl_conf_list tempfail;
	int64_t verify_delay;
	bool async_lookup;
};

static const struct ptl_conf_key mem_user_keys[] = {
    {.name = "address",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct mem_user_conf, address)},
    {.name = "password",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct mem_user_conf, password)},
    {NULL},
};

static const struct ptl_conf_key mem_alias_keys[] = {
    {.name = "address",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct mem_alias_conf, address)},
    {.name = "users",
     .type = PTL_CONF_STRING_LIST,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct mem_alias_conf, users)},
    {NULL},
};

static const struct ptl_conf_key mem_auth_keys[] = {
    {.name = "domains",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct mem_auth_conf, domains),
     .doc = "Local domains."},
    {.name = "users",
     .type = PTL_CONF_OBJECT_LIST,
     .offset = offsetof(struct mem_auth_conf, users),
     .sub = mem_user_keys,
     .sub_size = sizeof(struct mem_user_conf),
     .doc = "Users."},
    {.name = "aliases",
     .type = PTL_CONF_OBJECT_LIST,
     .offset = offsetof(struct mem_auth_conf, aliases),
     .sub = mem_alias_keys,
     .sub_size = sizeof(struct mem_alias_conf),
     .doc = "Aliases."},
    {.name = "tempfail",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct mem_auth_conf, tempfail),
     .doc = "Addresses whose lookup fails temporarily."},
    {.name = "verify_delay",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct mem_auth_conf, verify_delay),
     .def = "10ms",
     .min = 1,
     .max = 60000,
     .doc = "Time verify() takes."},
    {.name = "async_lookup",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct mem_auth_conf, async_lookup),
     .def = "false",
     .doc = "Answer lookups through a timer."},
    {NULL},
};

/* A pending asynchronous answer. */
struct mem_pending {
	struct mem_pending *next;
	struct ptl_timer *timer;
	void *arg;
	bool is_verify;
	ptl_auth_verify_fn verify_done;
	enum ptl_auth_status status;
	char *user;
	ptl_auth_lookup_fn lookup_done;
	struct ptl_auth_lookup res;
};

struct mem_auth {
	const struct mem_auth_conf *conf;
	struct mem_pending *pending;
};

static bool
mem_in_list(const struct ptl_conf_list *l, const char *s)
{
	const char *const *items = l->items;
	size_t i;

	for (i = 0; i < l->count; i++) {
		if (strcasecmp(items[i], s) == 0)
			return true;
	}
	return false;
}

static int
mem_is_local_domain(void *instance, const char *domain)
{
	struct mem_auth *a = instance;

	return mem_in_list(&a->conf->domains, domain);
}

static const struct mem_user_conf *
mem_find_user(const struct mem_auth_conf *conf, const char *address)
{
	const struct mem_user_conf *u = conf->users.items;
	size_t i;

	for (i = 0; i < conf->users.count; i++) {
		if (strcasecmp(u[i].address, address) == 0)
			return &u[i];
	}
	return NULL;
}

static void
mem_resolve(const struct mem_auth_conf *conf, const char *address,
            struct ptl_pool *pool, struct ptl_auth_lookup *res)
{
	const struct mem_alias_conf *al = conf->aliases.items;
	const struct mem_user_conf *u;
	size_t i;

	memset(res, 0, sizeof(*res));
	res->status = PTL_AUTH_NOTFOUND;
	if (mem_in_list(&conf->tempfail, address)) {
		res->status = PTL_AUTH_TEMPFAIL;
		return;
	}
	for (i = 0; i < conf->aliases.count; i++) {
		if (strcasecmp(al[i].address, address) != 0)
			continue;
		res->users = al[i].users.items;
		res->nusers = al[i].users.count;
		res->status = PTL_AUTH_OK;
		return;
	}
	u = mem_find_user(conf, address);
	if (u == NULL)
		return;
	res->users = ptl_palloc(pool, sizeof(char *));
	if (res->users == NULL) {
		res->status = PTL_AUTH_TEMPFAIL;
		return;
	}
	res->users[0] = u->address;
	res->nusers = 1;
	res->status = PTL_AUTH_OK;
}

static void
mem_pending_free(struct mem_auth *a, struct mem_pending *p)
{
	struct mem_pending **pp;

	for (pp = &a->pending; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	ptl_timer_free(p->timer);
	free(p->user);
	free(p);
}

static struct mem_auth *mem_the_instance;

/* One instance per process: the timer callback finds it here. */
static void
mem_on_timer(struct ptl_timer *t, void *arg)
{
	struct mem_pending *p = arg;
	struct mem_auth *a = mem_the_instance;

	if (p->is_verify)
		p->verify_done(p->status,
		               p->status == PTL_AUTH_OK ? p->user : NULL,
		               p->arg);
	else
		p->lookup_done(&p->res, p->arg);
	mem_pending_free(a, p);
}

static struct mem_pending *
mem_pending_new(struct mem_auth *a, void *arg, int64_t delay)
{
	struct mem_pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->timer = ptl_timer_new(mem_on_timer, p);
	if (p->timer == NULL) {
		free(p);
		return NULL;
	}
	p->arg = arg;
	p->next = a->pending;
	a->pending = p;
	ptl_timer_start(p->timer, delay);
	return p;
}

static int
mem_lookup(void *instance, const char *address, struct ptl_pool *pool,
           struct ptl_auth_lookup *res_out, ptl_auth_lookup_fn done, void *arg)
{
	struct mem_auth *a = instance;
	struct mem_pending *p;

	if (!a->conf->async_lookup) {
		mem_resolve(a->conf, address, pool, res_out);
		return PTL_OK;
	}
	p = mem_pending_new(a, arg, 5);
	if (p == NULL)
		return PTL_ERROR;
	mem_resolve(a->conf, address, pool, &p->res);
	p->lookup_done = done;
	return PTL_AGAIN;
}

/* Compare everything so that the time does not depend on where they
 * differ (a test module, but a model too). */
static bool
mem_password_equal(const char *want, const char *got, size_t len)
{
	size_t wlen = strlen(want), i;
	unsigned char diff = (unsigned char)(wlen != len);

	for (i = 0; i < len; i++)
		diff |= (unsigned char)(got[i] ^ want[i < wlen ? i : 0]);
	return diff == 0;
}

static int
mem_verify(void *instance, const char *user, const char *password, size_t len,
           ptl_auth_verify_fn done, void *arg)
{
	struct mem_auth *a = instance;
	const struct mem_user_conf *u = mem_find_user(a->conf, user);
	struct mem_pending *p;

	p = mem_pending_new(a, arg, a->conf->verify_delay);
	if (p == NULL)
		return PTL_ERROR;
	p->is_verify = true;
	p->verify_done = done;
	p->status = PTL_AUTH_NOTFOUND;
	if (u != NULL && mem_password_equal(u->password, password, len)) {
		p->user = strdup(u->address);
		p->status = p->user != NULL ? PTL_AUTH_OK : PTL_AUTH_TEMPFAIL;
	}
	return PTL_AGAIN;
}

static void
mem_cancel(void *instance, void *arg)
{
	struct mem_auth *a = instance;
	struct mem_pending *p, *next;

	for (p = a->pending; p != NULL; p = next) {
		next = p->next;
		if (p->arg == arg)
			mem_pending_free(a, p);
	}
}

static const struct ptl_auth_methods mem_auth_methods = {
    .version = PTL_AUTH_VERSION,
    .is_local_domain = mem_is_local_domain,
    .lookup = mem_lookup,
    .verify = mem_verify,
    .cancel = mem_cancel,
};

static int
mem_auth_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct mem_auth *a;

	a = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*a));
	if (a == NULL)
		return ptl_error_set(err, "out of memory");
	a->conf = ptl_instance_conf(inst);
	mem_the_instance = a;
	ptl_instance_set_data(inst, a);
	return ptl_service_register(inst, PTL_AUTH_SERVICE, PTL_AUTH_VERSION,
	                            &mem_auth_methods, a, err);
}

static void
mem_auth_exit_worker(struct ptl_instance *inst)
{
	struct mem_auth *a = ptl_instance_data(inst);

	while (a != NULL && a->pending != NULL)
		mem_pending_free(a, a->pending);
}

static const struct ptl_service_ref mem_auth_provides[] = {
    {PTL_AUTH_SERVICE, PTL_AUTH_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "mem_auth",
    .version = "0",
    .description = "test auth service with users from the config",
    .license = "MIT",
    .provides = mem_auth_provides,
    .conf_keys = mem_auth_keys,
    .conf_size = sizeof(struct mem_auth_conf),
    .init_worker = mem_auth_init_worker,
    .exit_worker = mem_auth_exit_worker,
};
