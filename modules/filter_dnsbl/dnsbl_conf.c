/* SPDX-License-Identifier: MIT */
/* filter_dnsbl configuration: key table, validators, cross-key checks. */
#include <stdio.h>
#include <string.h>

#include "dnsbl.h"

static const char *const dnsbl_type_names[] = {"ip", "domain", NULL};
static const char *const dnsbl_mode_names[] = {"score", "first_hit", NULL};
static const char *const dnsbl_action_names[] = {"reject", "tempfail", "tag",
                                                 NULL};
static const char *const dnsbl_at_names[] = {"connect", "rcpt", NULL};
static const char *const dnsbl_failure_names[] = {"continue", "tempfail", NULL};

/* Zone names prefix a query of up to 64 bytes (IPv6) within 253. */
static int
dnsbl_validate_zone(const json_t *value, void *field, struct ptl_error *err)
{
	const char *zone = *(const char **)field;
	char name[DNSBL_NAME_MAX + 1];
	const char *p;

	if (zone == NULL)
		return PTL_OK;
	for (p = zone; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
		      *p == '.'))
			return ptl_error_set(
			    err, "\"%s\" is not a DNS zone name", zone);
	}
	if (strlen(zone) > DNSBL_NAME_MAX - 64 ||
	    dnsbl_query_name("x", zone, name, sizeof(name)) != PTL_OK)
		return ptl_error_set(err,
		                     "\"%s\" is not a DNS zone name of at "
		                     "most 189 characters",
		                     zone);
	return PTL_OK;
}

static int
dnsbl_validate_returns(const json_t *value, void *field, struct ptl_error *err)
{
	const struct ptl_conf_list *list = field;
	const char *const *items = list->items;
	struct dnsbl_range r;
	size_t i;

	for (i = 0; i < list->count; i++) {
		if (dnsbl_range_parse(items[i], &r, err) != PTL_OK)
			return PTL_ERROR;
	}
	return PTL_OK;
}

static int
dnsbl_validate_reason(const json_t *value, void *field, struct ptl_error *err)
{
	const char *tmpl = *(const char **)field;

	return tmpl == NULL ? PTL_OK : dnsbl_template_check(tmpl, err);
}

static int
dnsbl_validate_header(const json_t *value, void *field, struct ptl_error *err)
{
	const char *name = *(const char **)field;
	size_t i, n = name != NULL ? strlen(name) : 0;

	if (n == 0 || n > 76)
		return ptl_error_set(err, "a header field name of 1 to 76 "
		                          "characters");
	for (i = 0; i < n; i++) {
		if (name[i] <= ' ' || name[i] > '~' || name[i] == ':')
			return ptl_error_set(err,
			                     "\"%s\" is not a header "
			                     "field name",
			                     name);
	}
	return PTL_OK;
}

static const struct ptl_conf_key dnsbl_zone_keys[] = {
    {.name = "zone",
     .type = PTL_CONF_STRING,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct dnsbl_zone_conf, zone),
     .validate = dnsbl_validate_zone,
     .doc = "The list's DNS zone, e.g. \"zen.spamhaus.org\"."},
    {.name = "type",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_zone_conf, type),
     .def = "ip",
     .enum_names = dnsbl_type_names,
     .doc = "\"ip\": client addresses (DNSBL); \"domain\": sender "
            "domains, asked at MAIL (RHSBL)."},
    {.name = "weight",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct dnsbl_zone_conf, weight),
     .def = "1",
     .min = -1000,
     .max = 1000,
     .doc = "Added to the score when the list lists the client "
            "(negative: an allow list)."},
    {.name = "returns",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_zone_conf, returns),
     .def = "[]",
     .max = 64,
     .validate = dnsbl_validate_returns,
     .doc = "Answers that count: \"127.0.0.2\", \"127.0.0.4-127.0.0.11\", "
            "\"127.0.0.0/24\", \"&0.0.0.4\" (bit). Empty: 127.0.0.2 and "
            "up. 127.255.255.x never counts."},
    {.name = "reason",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dnsbl_zone_conf, reason),
     .validate = dnsbl_validate_reason,
     .doc = "Reply text: %i address, %z zone, %d sender domain, %r "
            "answer, %t TXT record, %% a percent sign."},
    {.name = "txt",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dnsbl_zone_conf, txt),
     .def = "false",
     .doc = "Ask the TXT record of a listing, for %t."},
    {.name = "ipv4",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dnsbl_zone_conf, ipv4),
     .def = "true",
     .doc = "Ask this list about IPv4 clients."},
    {.name = "ipv6",
     .type = PTL_CONF_BOOL,
     .offset = offsetof(struct dnsbl_zone_conf, ipv6),
     .def = "true",
     .doc = "Ask this list about IPv6 clients."},
    {NULL},
};

const struct ptl_conf_key dnsbl_conf_keys[] = {
    {.name = "zones",
     .type = PTL_CONF_OBJECT_LIST,
     .flags = PTL_CONF_REQUIRED,
     .offset = offsetof(struct dnsbl_conf, zones),
     .min = 1,
     .max = DNSBL_ZONES_MAX,
     .sub = dnsbl_zone_keys,
     .sub_size = sizeof(struct dnsbl_zone_conf),
     .doc = "The lists: {zone, type, weight, returns, reason, txt, ipv4, "
            "ipv6}, 1 to 32."},
    {.name = "mode",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, mode),
     .def = "score",
     .enum_names = dnsbl_mode_names,
     .doc = "\"score\": act when the weights of the listing lists reach "
            "threshold; \"first_hit\": act on any listing."},
    {.name = "threshold",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct dnsbl_conf, threshold),
     .def = "1",
     .min = 1,
     .max = 100000,
     .doc = "Score at which the action is taken."},
    {.name = "action",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, action),
     .def = "reject",
     .enum_names = dnsbl_action_names,
     .doc = "\"reject\" (5xx), \"tempfail\" (4xx) or \"tag\" (add the "
            "header, accept)."},
    {.name = "reject_at",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, reject_at),
     .def = "connect",
     .enum_names = dnsbl_at_names,
     .doc = "\"connect\": refuse the connection; \"rcpt\": refuse each "
            "RCPT except exempt_recipients."},
    {.name = "on_failure",
     .type = PTL_CONF_ENUM,
     .offset = offsetof(struct dnsbl_conf, on_failure),
     .def = "continue",
     .enum_names = dnsbl_failure_names,
     .doc = "When a list cannot be asked (timeout, SERVFAIL): "
            "\"continue\" as if not listed, or \"tempfail\"."},
    {.name = "whitelist",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_conf, whitelist),
     .def = "[]",
     .validate = policy_validate_cidrs,
     .doc = "Client networks never looked up."},
    {.name = "roles",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_conf, roles),
     .def = "[\"mx\"]",
     .validate = ptl_filter_validate_roles,
     .doc = "Listener roles checked (empty: all)."},
    {.name = "exempt_recipients",
     .type = PTL_CONF_STRING_LIST,
     .offset = offsetof(struct dnsbl_conf, exempt_recipients),
     .def = "[\"postmaster\", \"abuse\"]",
     .doc = "With reject_at rcpt: recipients never refused: a local "
            "part (any domain) or a whole address."},
    {.name = "timeout",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct dnsbl_conf, timeout),
     .def = "0",
     .min = 0,
     .max = 600000,
     .doc = "Longest wait for the lists (0: the smtp filter_timeout); "
            "then as on_failure."},
    {.name = "cache_size",
     .type = PTL_CONF_INT,
     .offset = offsetof(struct dnsbl_conf, cache_size),
     .def = "1024",
     .min = 0,
     .max = 1000000,
     .doc = "Client addresses whose results each process keeps (0: "
            "none; the resolver's cache still answers)."},
    {.name = "cache_ttl",
     .type = PTL_CONF_DURATION,
     .offset = offsetof(struct dnsbl_conf, cache_ttl),
     .def = "5m",
     .min = 0,
     .max = 86400000,
     .doc = "Longest time a result is kept (never beyond the DNS TTL)."},
    {.name = "header",
     .type = PTL_CONF_STRING,
     .offset = offsetof(struct dnsbl_conf, header),
     .def = "X-DNSBL",
     .validate = dnsbl_validate_header,
     .doc = "Header field added by action \"tag\"."},
    {NULL},
};

int
dnsbl_check_config(struct ptl_instance *inst, const json_t *section,
                   void *conf_ptr, struct ptl_error *err)
{
	const struct dnsbl_conf *conf = conf_ptr;
	const struct dnsbl_zone_conf *zc = conf->zones.items;
	char path[64];
	size_t i;

	for (i = 0; i < conf->zones.count; i++) {
		(void)snprintf(path, sizeof(path), "zones[%zu].weight", i);
		if (conf->mode == DNSBL_MODE_FIRST_HIT && zc[i].weight < 0)
			return ptl_error_set_path(err, path,
			                          "negative weights need mode "
			                          "\"score\"");
	}
	return PTL_OK;
}
