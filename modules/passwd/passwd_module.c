/* SPDX-License-Identifier: MIT */
/* The passwd module: config, lifecycle and the descriptor. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <petrel/petrel.h>

#include "passwd.h"

struct passwd_conf {
	const char *file;
	const char *aliases;
	json_t *catch_all;            /* {"domain": "target@domain"} or NULL */
	struct ptl_conf_list domains; /* const char * */
	bool allow_plaintext;
	const char *recipient_delimiter;
	int64_t reload_check; /* ms */
};

/* A domain as written in the config: no '@', blank or control. */
static int
passwd_check_domain(const char *domain, struct ptl_error *err)
{
	size_t len = strlen(domain);

	if (len == 0 || len > 255)
		return ptl_error_set(err, "expected a domain name");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)domain[i];

		if (c <= 0x20 || c == 0x7f || c == '@' || c == ':' || c == ',')
			return ptl_error_set(err, "expected a domain name");
	}
	if (domain[len - 1] == '.')
		return ptl_error_set(err, "a domain without its trailing dot");
	return PTL_OK;
}

static int
passwd_validate_delimiter(const json_t *value, void *field,
                          struct ptl_error *err)
{
	const char *text = *(const char **)field;

	if (text == NULL)
		return PTL_OK;
	if (strlen(text) > 8)
		return ptl_error_set(err, "at most 8 delimiter characters");
	for (; *text != '\0'; text++) {
		unsigned char c = (unsigned char)*text;

		if (c <= 0x20 || c >= 0x7f || c == '@' || c == ':' || c == ',')
			return ptl_error_set(err,
			                     "delimiters are printable ASCII "
			                     "characters other than '@', ':' "
			                     "and ','");
	}
	return PTL_OK;
}

static const struct ptl_conf_key passwd_conf_keys[] = {
    {
        .name = "file",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct passwd_conf, file),
        .doc = "The passwd-file: `user@domain:{SCHEME}hash:...` (Dovecot "
               "format). Relative to the working directory at startup.",
    },
    {
        .name = "aliases",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct passwd_conf, aliases),
        .doc = "Aliases file: `address: user1@d, user2@d` per line.",
    },
    {
        .name = "catch_all",
        .type = PTL_CONF_JSON,
        .offset = offsetof(struct passwd_conf, catch_all),
        .doc = "Per-domain catch-all: {\"example.test\": "
               "\"postmaster@example.test\"}.",
    },
    {
        .name = "domains",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct passwd_conf, domains),
        .max = 10000,
        .doc = "Domains served besides those of the users and aliases.",
    },
    {
        .name = "allow_plaintext",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct passwd_conf, allow_plaintext),
        .def = "false",
        .doc = "Accept {PLAIN}/{CLEARTEXT} passwords in the file.",
    },
    {
        .name = "recipient_delimiter",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct passwd_conf, recipient_delimiter),
        .def = "+",
        .validate = passwd_validate_delimiter,
        .doc = "Characters that start an address extension "
               "(user+tag@domain delivers to user@domain); \"\" "
               "disables.",
    },
    {
        .name = "reload_check",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct passwd_conf, reload_check),
        .def = "1s",
        .min = 0,
        .max = 86400000,
        .doc = "How often a process looks whether the files changed "
               "(on use; 0: before every lookup).",
    },
    {NULL},
};

/* @path made absolute against the working directory, or as it is. */
static const char *
passwd_absolute(struct ptl_pool *pool, const char *path)
{
	char cwd[PATH_MAX];

	if (path == NULL || path[0] == '/')
		return path;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return path;
	return ptl_psprintf(pool, "%s/%s", cwd, path);
}

static int
passwd_catch_alls(const struct passwd_conf *conf, struct ptl_pool *pool,
                  struct passwd_options *opts, struct ptl_error *err)
{
	struct passwd_catch_all *items;
	char why[PASSWD_WHY_MAX];
	const char *domain;
	json_t *value;
	size_t n = 0;

	if (conf->catch_all == NULL)
		return PTL_OK;
	if (!json_is_object(conf->catch_all))
		return ptl_error_set_path(err, "catch_all",
		                          "expected an object {\"domain\": "
		                          "\"address\"}");
	items = ptl_pcalloc(pool, (json_object_size(conf->catch_all) + 1) *
	                              sizeof(*items));
	if (items == NULL)
		return ptl_error_set(err, "out of memory");
	json_object_foreach(conf->catch_all, domain, value)
	{
		char path[PTL_ERROR_PATH_MAX];
		const char *target = json_string_value(value);
		char *key;

		(void)snprintf(path, sizeof(path), "catch_all.%s", domain);
		if (passwd_check_domain(domain, err) != PTL_OK) {
			(void)snprintf(err->path, sizeof(err->path), "%s",
			               path);
			return PTL_ERROR;
		}
		if (target == NULL)
			return ptl_error_set_path(err, path,
			                          "expected an address string");
		if (passwd_check_address(target, strlen(target), "catch-all",
		                         why, sizeof(why)) != PTL_OK)
			return ptl_error_set_path(err, path, "%s", why);
		key = ptl_palloc(pool, strlen(domain) + 1);
		if (key == NULL)
			return ptl_error_set(err, "out of memory");
		passwd_address_key(domain, strlen(domain), key);
		items[n].domain = key;
		items[n].target = target;
		n++;
	}
	opts->catch_alls = items;
	opts->ncatch_alls = n;
	return PTL_OK;
}

/*
 * The loader's options from the parsed config. @absolute: resolve the
 * paths now, so that a later reload opens the same files.
 */
static int
passwd_options_make(const struct passwd_conf *conf, struct ptl_pool *pool,
                    bool absolute, struct passwd_options *opts,
                    struct ptl_error *err)
{
	const char *const *domains = conf->domains.items;
	const char **lower;

	memset(opts, 0, sizeof(*opts));
	opts->file_name = conf->file;
	opts->aliases_name = conf->aliases;
	opts->file = absolute ? passwd_absolute(pool, conf->file) : conf->file;
	opts->aliases =
	    absolute ? passwd_absolute(pool, conf->aliases) : conf->aliases;
	if (opts->file == NULL || (conf->aliases != NULL && !opts->aliases))
		return ptl_error_set(err, "out of memory");
	opts->allow_plaintext = conf->allow_plaintext;
	opts->delimiters =
	    conf->recipient_delimiter != NULL ? conf->recipient_delimiter : "";

	lower = ptl_pcalloc(pool, (conf->domains.count + 1) * sizeof(*lower));
	if (lower == NULL)
		return ptl_error_set(err, "out of memory");
	for (size_t i = 0; i < conf->domains.count; i++) {
		char *key;

		if (passwd_check_domain(domains[i], err) != PTL_OK) {
			(void)snprintf(err->path, sizeof(err->path),
			               "domains[%zu]", i);
			return PTL_ERROR;
		}
		key = ptl_palloc(pool, strlen(domains[i]) + 1);
		if (key == NULL)
			return ptl_error_set(err, "out of memory");
		passwd_address_key(domains[i], strlen(domains[i]), key);
		lower[i] = key;
	}
	opts->domains = lower;
	opts->ndomains = conf->domains.count;
	return passwd_catch_alls(conf, pool, opts, err);
}

/*
 * `petrel -t` and a SIGHUP reload run this, not init_master: reading
 * the files here is what makes a malformed line a config error.
 */
static int
passwd_check_config(struct ptl_instance *inst, const json_t *section,
                    void *conf_ptr, struct ptl_error *err)
{
	const struct passwd_conf *conf = conf_ptr;
	struct passwd_options opts;
	struct passwd_db *db = NULL;
	struct ptl_pool *pool;
	int rc;

	pool = ptl_pool_create(0);
	if (pool == NULL)
		return ptl_error_set(err, "out of memory");
	rc = passwd_options_make(conf, pool, false, &opts, err);
	if (rc == PTL_OK)
		rc = passwd_db_load(&opts, &db, err);
	passwd_db_free(db);
	ptl_pool_destroy(pool);
	return rc;
}

static int
passwd_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	const struct passwd_conf *conf = ptl_instance_conf(inst);
	struct passwd_options opts;
	struct passwd_service *svc;

	if (passwd_options_make(conf, ptl_instance_pool(inst), true, &opts,
	                        err) != PTL_OK ||
	    passwd_service_create(&opts, conf->reload_check, &svc, err) !=
	        PTL_OK)
		return PTL_ERROR;
	/* Workers inherit the tables with the fork; each then reloads alone. */
	if (ptl_service_register(inst, PTL_AUTH_SERVICE, PTL_AUTH_VERSION,
	                         &passwd_auth_methods, svc, err) != PTL_OK) {
		passwd_service_destroy(svc);
		return PTL_ERROR;
	}
	ptl_instance_set_data(inst, svc);
	passwd_service_log_loaded(svc);
	return PTL_OK;
}

static void
passwd_exit_worker(struct ptl_instance *inst)
{
	passwd_service_drop_calls(ptl_instance_data(inst));
}

static void
passwd_fini_master(struct ptl_instance *inst)
{
	passwd_service_destroy(ptl_instance_data(inst));
	ptl_instance_set_data(inst, NULL);
}

static const struct ptl_service_ref passwd_provides[] = {
    {PTL_AUTH_SERVICE, PTL_AUTH_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "passwd",
    .version = "1.0",
    .description = "users, aliases and passwords from a Dovecot-style "
                   "passwd-file",
    .license = "MIT",
    .provides = passwd_provides,
    .conf_keys = passwd_conf_keys,
    .conf_size = sizeof(struct passwd_conf),
    .check_config = passwd_check_config,
    .init_master = passwd_init_master,
    .exit_worker = passwd_exit_worker,
    .fini_master = passwd_fini_master,
};
