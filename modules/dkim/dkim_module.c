/* SPDX-License-Identifier: MIT */
/* The dkim module: config, signing keys, and the "filter.dkim" service. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "dkim_module.h"

/*
 * The module declares no `needs`: verification wants the resolver, signing
 * does not, and a static needs list cannot say "only when verify is on".
 * The filter looks the resolver up on first use and, when it is missing,
 * logs it once and reports verification as temperror.
 */

static const char *const dkim_sign_hook_names[] = {"relay", "data", NULL};
static const char *const dkim_on_sign_error_names[] = {"tempfail", "continue",
                                                       NULL};

static const struct ptl_conf_key dkim_sign_keys[] = {
    {
        .name = "domain",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct dkim_sign_conf, domain),
        .doc = "Sign mail whose From: is in this domain (d=).",
    },
    {
        .name = "selector",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct dkim_sign_conf, selector),
        .doc = "Selector (s=): the key is published at "
               "SELECTOR._domainkey.DOMAIN.",
    },
    {
        .name = "key",
        .type = PTL_CONF_STRING,
        .flags = PTL_CONF_REQUIRED,
        .offset = offsetof(struct dkim_sign_conf, key),
        .doc = "PEM private key file (RSA 2048-3072 bits or Ed25519), "
               "read as root at start and reload.",
    },
    {
        .name = "canonicalization",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct dkim_sign_conf, canonicalization),
        .def = "relaxed/relaxed",
        .doc = "\"header/body\", each simple or relaxed.",
    },
    {NULL},
};

static const struct ptl_conf_key dkim_conf_keys[] = {
    {
        .name = "verify",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, verify),
        .def = "true",
        .doc = "Verify the DKIM signatures of inbound mail.",
    },
    {
        .name = "verify_roles",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct dkim_conf, verify_roles),
        .def = "[\"mx\"]",
        .max = 3,
        .doc = "Listener roles whose mail is verified: mx, submission, "
               "submissions.",
    },
    {
        .name = "verify_authenticated",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, verify_authenticated),
        .def = "false",
        .doc = "Also verify mail of authenticated sessions.",
    },
    {
        .name = "verify_trusted",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, verify_trusted),
        .def = "true",
        .doc = "Also verify mail from the smtp module's "
               "trusted_networks.",
    },
    {
        .name = "max_signatures",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct dkim_conf, max_signatures),
        .def = "8",
        .min = 1,
        .max = 32,
        .doc = "Signatures verified per message (top down); the rest "
               "are ignored.",
    },
    {
        .name = "max_header_size",
        .type = PTL_CONF_SIZE,
        .offset = offsetof(struct dkim_conf, max_header_size),
        .def = "1M",
        .min = 16384,
        .max = 16777216,
        .doc = "Largest header section read; larger: permerror.",
    },
    {
        .name = "max_header_fields",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct dkim_conf, max_header_fields),
        .def = "10000",
        .min = 100,
        .max = 100000,
        .doc = "Most header fields parsed; more: permerror.",
    },
    {
        .name = "min_rsa_bits",
        .type = PTL_CONF_INT,
        .offset = offsetof(struct dkim_conf, min_rsa_bits),
        .def = "1024",
        .min = 1024,
        .max = 4096,
        .doc = "Smallest RSA key accepted when verifying (RFC 8301: "
               "1024).",
    },
    {
        .name = "reject_l_tag",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, reject_l_tag),
        .def = "false",
        .doc = "A signature whose l= leaves body content unsigned is "
               "\"policy\" instead of \"pass\".",
    },
    {
        .name = "add_header",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, add_header),
        .def = "true",
        .doc = "Add Authentication-Results: with the verification "
               "results.",
    },
    {
        .name = "remove_forged_results",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, remove_forged_results),
        .def = "true",
        .doc = "Remove Authentication-Results: fields of verified mail "
               "that claim our authserv_id (RFC 8601 section 5).",
    },
    {
        .name = "authserv_id",
        .type = PTL_CONF_STRING,
        .offset = offsetof(struct dkim_conf, authserv_id),
        .doc = "authserv-id of Authentication-Results: (default: the "
               "server's hostname).",
    },
    {
        .name = "timeout",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct dkim_conf, timeout),
        .def = "0",
        .min = 0,
        .max = 600000,
        .doc = "Longest wait for a verdict (0: the smtp module's "
               "filter_timeout).",
    },
    {
        .name = "sign",
        .type = PTL_CONF_OBJECT_LIST,
        .offset = offsetof(struct dkim_conf, sign),
        .max = 64,
        .sub = dkim_sign_keys,
        .sub_size = sizeof(struct dkim_sign_conf),
        .doc = "Signing keys: {domain, selector, key, "
               "canonicalization}; up to 4 per domain, all used.",
    },
    {
        .name = "sign_headers",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct dkim_conf, sign_headers),
        .def = "[\"from\", \"to\", \"cc\", \"subject\", \"date\", "
               "\"message-id\", \"reply-to\", \"in-reply-to\", "
               "\"references\", \"mime-version\", \"content-type\", "
               "\"content-transfer-encoding\", \"list-id\", "
               "\"list-unsubscribe\", \"list-unsubscribe-post\", "
               "\"sender\"]",
        .max = 48,
        .doc = "Header fields signed (each instance present).",
    },
    {
        .name = "oversign_headers",
        .type = PTL_CONF_STRING_LIST,
        .offset = offsetof(struct dkim_conf, oversign_headers),
        .def = "[\"from\", \"to\", \"cc\", \"subject\", \"date\", "
               "\"message-id\", \"reply-to\", \"sender\", "
               "\"mime-version\", \"content-type\"]",
        .max = 48,
        .doc = "Fields signed once more than present, so that adding "
               "one breaks the signature.",
    },
    {
        .name = "sign_authenticated",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, sign_authenticated),
        .def = "true",
        .doc = "Sign mail of authenticated sessions.",
    },
    {
        .name = "sign_trusted",
        .type = PTL_CONF_BOOL,
        .offset = offsetof(struct dkim_conf, sign_trusted),
        .def = "false",
        .doc = "Sign mail from the smtp module's trusted_networks.",
    },
    {
        .name = "signature_ttl",
        .type = PTL_CONF_DURATION,
        .offset = offsetof(struct dkim_conf, signature_ttl),
        .def = "0",
        .min = 0,
        .max = 31536000000,
        .doc = "x= after t= (0: signatures do not expire).",
    },
    {
        .name = "sign_hook",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct dkim_conf, sign_hook),
        .def = "relay",
        .enum_names = dkim_sign_hook_names,
        .doc = "Sign at relay (mail leaving through the queue, after "
               "the other filters' edits) or at data (every message).",
    },
    {
        .name = "on_sign_error",
        .type = PTL_CONF_ENUM,
        .offset = offsetof(struct dkim_conf, on_sign_error),
        .def = "tempfail",
        .enum_names = dkim_on_sign_error_names,
        .doc = "When a message cannot be signed: tempfail (451) or "
               "continue unsigned.",
    },
    {NULL},
};

/* ---- config checks ---------------------------------------------------- */

static bool
dkim_name_ok(const char *s, bool dots)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      (dots && c == '.')))
			return false;
	}
	return true;
}

static bool
dkim_field_name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 76)
		return false;
	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127 ||
		    s[i] == ':')
			return false;
	}
	return true;
}

static int
dkim_parse_canon(const char *text, enum dkim_canon *h, enum dkim_canon *b)
{
	static const char *const names[] = {"simple", "relaxed"};
	char head[16];
	const char *slash = strchr(text, '/');
	size_t n = slash != NULL ? (size_t)(slash - text) : strlen(text);
	int i, found = 0;

	if (n >= sizeof(head))
		return -1;
	memcpy(head, text, n);
	head[n] = '\0';
	*h = *b = DKIM_CANON_SIMPLE;
	for (i = 0; i < 2; i++) {
		if (strcmp(head, names[i]) == 0) {
			*h = (enum dkim_canon)i;
			found++;
		}
		if (slash != NULL && strcmp(slash + 1, names[i]) == 0) {
			*b = (enum dkim_canon)i;
			found++;
		}
	}
	return found == (slash != NULL ? 2 : 1) ? 0 : -1;
}

static int
dkim_check_list(const struct ptl_conf_list *l, const char *key,
                struct ptl_error *err)
{
	const char *const *items = l->items;
	char path[64];
	size_t i;

	for (i = 0; i < l->count; i++) {
		if (dkim_field_name_ok(items[i]))
			continue;
		(void)snprintf(path, sizeof(path), "%s[%zu]", key, i);
		return ptl_error_set_path(err, path, "not a header field name");
	}
	return PTL_OK;
}

static int
dkim_check_config(struct ptl_instance *inst, const json_t *section,
                  void *conf_ptr, struct ptl_error *err)
{
	const struct dkim_conf *conf = conf_ptr;
	const struct dkim_sign_conf *sc = conf->sign.items;
	const char *const *roles = conf->verify_roles.items;
	enum dkim_canon h, b;
	char path[64];
	size_t i, k, same;

	for (i = 0; i < conf->verify_roles.count; i++) {
		if (strcmp(roles[i], "mx") == 0 ||
		    strcmp(roles[i], "submission") == 0 ||
		    strcmp(roles[i], "submissions") == 0)
			continue;
		(void)snprintf(path, sizeof(path), "verify_roles[%zu]", i);
		return ptl_error_set_path(err, path,
		                          "expected mx, submission or "
		                          "submissions");
	}
	for (i = 0; i < conf->sign.count; i++) {
		if (!dkim_name_ok(sc[i].domain, true)) {
			(void)snprintf(path, sizeof(path), "sign[%zu].domain",
			               i);
			return ptl_error_set_path(err, path,
			                          "not a domain name");
		}
		if (!dkim_name_ok(sc[i].selector, true) ||
		    strlen(sc[i].selector) + strlen(sc[i].domain) > 240) {
			(void)snprintf(path, sizeof(path), "sign[%zu].selector",
			               i);
			return ptl_error_set_path(err, path,
			                          "not a valid selector");
		}
		if (dkim_parse_canon(sc[i].canonicalization, &h, &b) != 0) {
			(void)snprintf(path, sizeof(path),
			               "sign[%zu].canonicalization", i);
			return ptl_error_set_path(
			    err, path,
			    "expected \"relaxed/relaxed\", "
			    "\"simple/simple\", ...");
		}
		for (k = 0, same = 0; k < conf->sign.count; k++)
			same += strcasecmp(sc[k].domain, sc[i].domain) == 0;
		if (same > DKIM_SIGNERS_MAX) {
			(void)snprintf(path, sizeof(path), "sign[%zu].domain",
			               i);
			return ptl_error_set_path(err, path,
			                          "more than %d keys for one "
			                          "domain",
			                          DKIM_SIGNERS_MAX);
		}
	}
	if (dkim_check_list(&conf->sign_headers, "sign_headers", err) != PTL_OK)
		return PTL_ERROR;
	return dkim_check_list(&conf->oversign_headers, "oversign_headers",
	                       err);
}

/* ---- lifecycle -------------------------------------------------------- */

static void
dkim_free_key(void *arg)
{
	EVP_PKEY_free(arg);
}

static int
dkim_load_signers(struct ptl_instance *inst, struct dkim_state *st,
                  struct ptl_error *err)
{
	struct ptl_pool *pool = ptl_instance_pool(inst);
	const struct dkim_conf *conf = st->conf;
	const struct dkim_sign_conf *sc = conf->sign.items;
	struct dkim_signer *sg;
	unsigned bits;
	char why[256], path[64], *domain;
	size_t i;

	if (conf->sign.count == 0)
		return PTL_OK;
	st->signers = ptl_pcalloc(pool, conf->sign.count * sizeof(*sg));
	if (st->signers == NULL)
		return ptl_error_set(err, "out of memory");
	for (i = 0; i < conf->sign.count; i++) {
		sg = &st->signers[i];
		(void)snprintf(path, sizeof(path), "sign[%zu].key", i);
		if (dkim_signer_load_key(sc[i].key, &sg->pkey, &sg->alg, &bits,
		                         why, sizeof(why)) != 0)
			return ptl_error_set_path(err, path, "%s", why);
		if (ptl_pool_cleanup_add(pool, dkim_free_key, sg->pkey) !=
		    PTL_OK) {
			EVP_PKEY_free(sg->pkey);
			return ptl_error_set(err, "out of memory");
		}
		domain = ptl_pstrdup(pool, sc[i].domain);
		if (domain == NULL)
			return ptl_error_set(err, "out of memory");
		for (char *p = domain; *p != '\0'; p++) {
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p + 32);
		}
		sg->domain = domain;
		sg->selector = sc[i].selector;
		(void)dkim_parse_canon(sc[i].canonicalization, &sg->hcanon,
		                       &sg->bcanon);
		sg->headers = conf->sign_headers.items;
		sg->nheaders = conf->sign_headers.count;
		sg->oversign = conf->oversign_headers.items;
		sg->noversign = conf->oversign_headers.count;
		sg->ttl = conf->signature_ttl / 1000;
		sg->add_time = true;
		st->nsigners++;
		ptl_log(PTL_LOG_INFO,
		        "dkim: signing for %s with %s key %s (%s, %u bits)",
		        sg->domain,
		        sg->alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519",
		        sg->selector, sc[i].key, bits);
	}
	return PTL_OK;
}

/*
 * Master, as root: the key files can stay readable by root only. The
 * loaded keys live in the generation's pool and are inherited by the
 * workers.
 */
static int
dkim_init_master(struct ptl_instance *inst, struct ptl_error *err)
{
	struct dkim_state *st;

	st = ptl_pcalloc(ptl_instance_pool(inst), sizeof(*st));
	if (st == NULL)
		return ptl_error_set(err, "out of memory");
	st->conf = ptl_instance_conf(inst);
	st->methods.version = PTL_FILTER_VERSION;
	st->methods.hooks = PTL_FILTER_HOOK_BIT(PTL_FILTER_DATA);
#if PTL_FILTER_VERSION >= 2
	if (st->conf->sign.count > 0 &&
	    st->conf->sign_hook == DKIM_SIGN_AT_RELAY)
		st->methods.hooks |= PTL_FILTER_HOOK_BIT(PTL_FILTER_RELAY);
#else
	if (st->conf->sign.count > 0 &&
	    st->conf->sign_hook == DKIM_SIGN_AT_RELAY)
		ptl_log(PTL_LOG_WARN, "dkim: this server has no relay hook: "
		                      "signing at data");
#endif
	st->methods.flags = 0;
	st->methods.timeout_ms = st->conf->timeout;
	st->methods.check = dkim_filter_check;
	st->methods.cancel = dkim_filter_cancel;
	st->methods.session_end = dkim_filter_session_end;
	if (dkim_load_signers(inst, st, err) != PTL_OK)
		return PTL_ERROR;
	if (!st->conf->verify && st->nsigners == 0)
		ptl_log(PTL_LOG_WARN, "dkim: verify is off and no signing key "
		                      "is configured: the filter does nothing");
	ptl_instance_set_data(inst, st);
	return ptl_service_register(inst, "filter.dkim", PTL_FILTER_VERSION,
	                            &st->methods, st, err);
}

static int
dkim_init_worker(struct ptl_instance *inst, struct ptl_error *err)
{
	struct dkim_state *st = ptl_instance_data(inst);
	const struct ptl_server_info *info = ptl_server_info();

	if (st == NULL)
		return ptl_error_set(err, "dkim: no state from the master");
	st->authserv_id = st->conf->authserv_id != NULL ? st->conf->authserv_id
	                  : info != NULL                ? info->hostname
	                                                : "localhost";
	st->jobs = NULL;
	st->resolver = NULL;
	st->resolver_looked_up = false;
	return PTL_OK;
}

static const struct ptl_service_ref dkim_provides[] = {
    {"filter.dkim", PTL_FILTER_VERSION},
    {NULL, 0},
};

PTL_MODULE_EXPORT const struct ptl_module petrel_module = {
    PTL_MODULE_HEADER,
    .name = "dkim",
    .version = "1.0",
    .description = "DKIM signing and verification (RFC 6376, RFC 8463)",
    .license = "MIT",
    .provides = dkim_provides,
    .conf_keys = dkim_conf_keys,
    .conf_size = sizeof(struct dkim_conf),
    .check_config = dkim_check_config,
    .init_master = dkim_init_master,
    .init_worker = dkim_init_worker,
};
