/* SPDX-License-Identifier: MIT */
/* filter_dnsbl internals: config, per-process state and sessions. */
#ifndef PETREL_DNSBL_H
#define PETREL_DNSBL_H

#include <stdbool.h>
#include <stdint.h>

#include <petrel/petrel.h>
#include <petrel/filter.h>
#include <petrel/resolver.h>

#include "dnsbl_cache.h"
#include "dnsbl_query.h"
#include "policy_net.h"

enum dnsbl_zone_type {
	DNSBL_ZONE_IP = 0,
	DNSBL_ZONE_DOMAIN = 1,
};

enum dnsbl_mode {
	DNSBL_MODE_SCORE = 0,
	DNSBL_MODE_FIRST_HIT = 1,
};

enum dnsbl_action {
	DNSBL_ACT_REJECT = 0,
	DNSBL_ACT_TEMPFAIL = 1,
	DNSBL_ACT_TAG = 2,
};

enum dnsbl_at {
	DNSBL_AT_CONNECT = 0,
	DNSBL_AT_RCPT = 1,
};

enum dnsbl_on_failure {
	DNSBL_FAIL_CONTINUE = 0,
	DNSBL_FAIL_TEMPFAIL = 1,
};

struct dnsbl_zone_conf {
	const char *zone;
	int type; /* enum dnsbl_zone_type */
	int64_t weight;
	struct ptl_conf_list returns;
	const char *reason;
	bool txt;
	bool ipv4;
	bool ipv6;
};

struct dnsbl_conf {
	struct ptl_conf_list zones; /* struct dnsbl_zone_conf */
	int mode;
	int64_t threshold;
	int action;
	int reject_at;
	int on_failure;
	struct ptl_conf_list whitelist;
	struct ptl_conf_list roles;
	struct ptl_conf_list exempt_recipients;
	int64_t timeout;
	int64_t cache_size;
	int64_t cache_ttl;
	const char *header;
};

struct dnsbl_zone {
	const char *zone;
	int type;
	int64_t weight;
	struct dnsbl_range *ranges;
	size_t nranges;
	const char *reason;
	bool txt, ipv4, ipv6;
};

#define DNSBL_BUCKETS 1024

struct dnsbl_session;

struct dnsbl_state {
	const struct dnsbl_conf *conf;
	struct dnsbl_zone zones[DNSBL_ZONES_MAX];
	size_t nzones;
	bool has_domain_zones;
	struct policy_cidr *whitelist;
	size_t nwhitelist;
	struct ptl_filter_methods methods;
	/* Per process (set in init_worker). */
	const struct ptl_service *resolver;
	struct dnsbl_cache cache;
	struct dnsbl_session *sessions[DNSBL_BUCKETS];
	uint32_t error_warned; /* zones that answered 127.255.255.x */
};

enum dnsbl_zstate {
	DNSBL_Z_IDLE = 0, /* not asked (domain zone before MAIL) */
	DNSBL_Z_PENDING,
	DNSBL_Z_DONE,
	DNSBL_Z_FAILED,
	DNSBL_Z_SKIPPED, /* does not apply (IPv6, no sender domain) */
};

/* One lookup in flight: the completion's argument. */
struct dnsbl_lookup {
	struct dnsbl_session *s;
	struct ptl_dns_query *q;
	uint8_t zone;
	bool txt;
};

struct dnsbl_zres {
	struct dnsbl_lookup a, t;
	uint8_t state; /* enum dnsbl_zstate */
	bool txt_pending;
	uint32_t code; /* the listing answer (host order); 0: none */
	uint32_t ttl;
	char *txt; /* malloc'd */
};

enum dnsbl_outcome {
	DNSBL_PENDING = 0,
	DNSBL_CLEAN,
	DNSBL_LISTED,
	DNSBL_FAILED,
};

struct dnsbl_session {
	struct dnsbl_session *next;
	const void *key; /* the smtp session (the check's arg) */
	struct dnsbl_state *st;
	char id[48];
	char ip_text[POLICY_IP_TEXT_MAX];
	struct policy_ip ip;
	char rev[72];
	char domain[DNSBL_NAME_MAX + 1];
	bool from_cache, cached;
	bool logged_ip, logged_domain;
	struct dnsbl_zres z[DNSBL_ZONES_MAX];
	/* The suspended check, if any. */
	bool waiting;
	bool wait_domain;
	ptl_filter_done_fn done;
	void *done_arg;
	/* The verdict handed out (valid during check() or done()). */
	char text[DNSBL_TEXT_MAX + 1];
	char details[400];
	char result[256];
	struct ptl_filter_header header;
};

/* Config keys and cross-key checks (dnsbl_conf.c). */
extern const struct ptl_conf_key dnsbl_conf_keys[];
int dnsbl_check_config(struct ptl_instance *inst, const json_t *section,
                       void *conf_ptr, struct ptl_error *err);

/* The filter methods (dnsbl_session.c). */
int dnsbl_check(void *instance, const struct ptl_filter_request *req,
                struct ptl_filter_verdict *verdict_out, ptl_filter_done_fn done,
                void *arg);
void dnsbl_cancel(void *instance, void *arg);
void dnsbl_session_end(void *instance, void *arg);
/* Free every session left (process exit). */
void dnsbl_sessions_free(struct dnsbl_state *st);

#endif
