/* SPDX-License-Identifier: MIT */
/* Test module: an "auth" service with users from the config, for POP3 tests. */

/*
 * Config: {"users": ["login:password[:canonical]", ...],
 *          "tempfail": ["login", ...], "delay": "5ms"}
 * verify() answers after "delay" from a timer, like a real provider that
 * hashes on a pool thread; cancel() drops pending answers.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <petrel/petrel.h>

struct fake_auth_conf {
	struct ptl_conf_list users;
	struct ptl_conf_list tempfail;
	int64_t delay_ms;
};

static const struct ptl_conf_key fake_auth_keys[] = {
    {
        .name = "users",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct fake_auth_conf, users),
        .doc = "login:password[:canonical]",
    },
    {
        .name = "tempfail",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct fake_auth_conf, tempfail),
        .doc = "logins whose verify answers TEMPFAIL",
    },
    {
        .name = "delay",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct fake_auth_conf, delay_ms),
        .def = "5ms",
        .doc = "time verify takes",
    },
    {NULL},
};

struct fake_pending {
	struct fake_pending *next;
	struct ptl_timer *timer;
	ptl_auth_verify_fn done;
	void *arg;
	enum ptl_auth_status status;
	char user[512];
};

static struct fake_pending *fake_pending_list;

static const struct fake_auth_conf *
fake_conf(void *instance)
{
	return ptl_instance_conf(instance);
}

/* Find "login:..." in the users list; fills password and canonical. */
static bool
fake_find(const struct fake_auth_conf *conf, const char *login,
          const char **pass_out, size_t *pass_len_out, const char **canon_out,
          size_t *canon_len_out)
{
	const char *const *items = conf->users.items;
	size_t i, n = strlen(login);

	for (i = 0; i < conf->users.count; i++) {
		const char *e = items[i], *pass, *canon;

		if (strncmp(e, login, n) != 0 || e[n] != ':')
			continue;
		pass = e + n + 1;
		canon = strchr(pass, ':');
		*pass_out = pass;
		*pass_len_out =
		    canon != NULL ? (size_t)(canon - pass) : strlen(pass);
		*canon_out = canon != NULL ? canon + 1 : login;
		*canon_len_out = strlen(*canon_out);
		return true;
	}
	return false;
}

static int
fake_is_local_domain(void *instance, const char *domain)
{
	const struct fake_auth_conf *conf = fake_conf(instance);
	const char *const *items = conf->users.items;
	size_t i, n = strlen(domain);

	for (i = 0; i < conf->users.count; i++) {
		const char *at = strchr(items[i], '@');

		if (at != NULL && strncmp(at + 1, domain, n) == 0 &&
		    at[1 + n] == ':')
			return 1;
	}
	return 0;
}

static int
fake_lookup(void *instance, const char *address, struct ptl_pool *pool,
            struct ptl_auth_lookup *res, ptl_auth_lookup_fn done, void *arg)
{
	const char *pass, *canon;
	size_t pass_len, canon_len;

	memset(res, 0, sizeof(*res));
	res->status = PTL_AUTH_NOTFOUND;
	if (!fake_find(fake_conf(instance), address, &pass, &pass_len, &canon,
	               &canon_len))
		return PTL_OK;
	res->users = ptl_palloc(pool, sizeof(*res->users));
	if (res->users == NULL)
		return PTL_ERROR;
	res->users[0] = ptl_pstrndup(pool, canon, canon_len);
	if (res->users[0] == NULL)
		return PTL_ERROR;
	res->nusers = 1;
	res->status = PTL_AUTH_OK;
	return PTL_OK;
}

static void
fake_unlink(struct fake_pending *p)
{
	struct fake_pending **pp;

	for (pp = &fake_pending_list; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			return;
		}
	}
}

static void
fake_fire(struct ptl_timer *t, void *arg)
{
	struct fake_pending *p = arg;

	fake_unlink(p);
	p->done(p->status, p->status == PTL_AUTH_OK ? p->user : NULL, p->arg);
	ptl_timer_free(p->timer);
	free(p);
}

static int
fake_verify(void *instance, const char *user, const char *password, size_t len,
            ptl_auth_verify_fn done, void *arg)
{
	const struct fake_auth_conf *conf = fake_conf(instance);
	const char *const *temp = conf->tempfail.items;
	const char *pass, *canon;
	size_t pass_len, canon_len, i;
	struct fake_pending *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return PTL_ERROR;
	p->timer = ptl_timer_new(fake_fire, p);
	if (p->timer == NULL) {
		free(p);
		return PTL_ERROR;
	}
	p->done = done;
	p->arg = arg;
	p->status = PTL_AUTH_NOTFOUND;
	for (i = 0; i < conf->tempfail.count; i++) {
		if (strcmp(temp[i], user) == 0)
			p->status = PTL_AUTH_TEMPFAIL;
	}
	if (p->status != PTL_AUTH_TEMPFAIL &&
	    fake_find(conf, user, &pass, &pass_len, &canon, &canon_len) &&
	    pass_len == len && memcmp(pass, password, len) == 0 &&
	    canon_len < sizeof(p->user)) {
		p->status = PTL_AUTH_OK;
		memcpy(p->user, canon, canon_len);
		p->user[canon_len] = '\0';
	}
	p->next = fake_pending_list;
	fake_pending_list = p;
	ptl_timer_start(p->timer, conf->delay_ms);
	return PTL_AGAIN;
}

static void
fake_cancel(void *instance, void *arg)
{
	struct fake_pending **pp = &fake_pending_list, *p;

	while ((p = *pp) != NULL) {
		if (p->arg != arg) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		ptl_timer_free(p->timer);
		free(p);
	}
}

static const struct ptl_auth_methods fake_auth_methods = {
    .version = PTL_AUTH_VERSION,
    .is_local_domain = fake_is_local_domain,
    .lookup = fake_lookup,
    .verify = fake_verify,
    .cancel = fake_cancel,
};

static int
fake_auth_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	return ptl_service_register(inst, PTL_AUTH_SERVICE, PTL_AUTH_VERSION,
	                            &fake_auth_methods, inst, err);
}

static const struct ptl_service_ref fake_auth_provides[] = {
    {PTL_AUTH_SERVICE, PTL_AUTH_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "pop3_fake_auth",
    .version = "1.0",
    .description = "test auth service with users from the config",
    .license = "MIT",
    .provides = fake_auth_provides,
    .conf_keys = fake_auth_keys,
    .conf_size = sizeof(struct fake_auth_conf),
    .init_master = fake_auth_init_master,
};
