/* SPDX-License-Identifier: MIT */
/* The dkim module's config and per-process state, shared by its files. */
#ifndef PETREL_DKIM_MODULE_H
#define PETREL_DKIM_MODULE_H

#include <petrel/petrel.h>
#include <petrel/filter.h>
#include <petrel/resolver.h>

#include "dkim.h"

/* Longest field value the smtp module accepts from a filter. */
#define DKIM_FIELD_VALUE_MAX 900

/* Where outbound mail is signed. */
enum dkim_sign_hook {
	DKIM_SIGN_AT_RELAY = 0, /* index in the enum names */
	DKIM_SIGN_AT_DATA = 1,
};

enum dkim_on_sign_error {
	DKIM_SIGN_ERROR_TEMPFAIL = 0, /* index in the enum names */
	DKIM_SIGN_ERROR_CONTINUE = 1,
};

/* One item of "sign". */
struct dkim_sign_conf {
	const char *domain;
	const char *selector;
	const char *key;
	const char *canonicalization; /* "header/body" */
};

struct dkim_conf {
	bool verify;
	struct ptl_conf_list verify_roles; /* const char * */
	bool verify_authenticated;
	bool verify_trusted;
	int64_t max_signatures;
	uint64_t max_header_size;
	int64_t max_header_fields;
	int64_t min_rsa_bits;
	bool reject_l_tag;
	bool add_header;
	bool remove_forged_results;
	const char *authserv_id;
	int64_t timeout;           /* ms; 0: the smtp module's filter_timeout */
	struct ptl_conf_list sign; /* struct dkim_sign_conf */
	struct ptl_conf_list sign_headers;     /* const char * */
	struct ptl_conf_list oversign_headers; /* const char * */
	bool sign_authenticated;
	bool sign_trusted;
	int64_t signature_ttl; /* ms; 0: no x= */
	int sign_hook;         /* enum dkim_sign_hook */
	int on_sign_error;     /* enum dkim_on_sign_error */
};

struct dkim_job;

/* Lives in the instance pool; each process has its own copy. */
struct dkim_state {
	const struct dkim_conf *conf;
	struct ptl_filter_methods methods;
	/* Keys loaded in the master, one per "sign" item (pkey owned). */
	struct dkim_signer *signers;
	size_t nsigners;
	/* Found on first use: the resolver may start after this module. */
	const struct ptl_service *resolver;
	bool resolver_looked_up;
	const char *authserv_id;
	struct dkim_job *jobs; /* checks in progress in this process */
};

/* The filter methods (dkim_filter.c). */
int dkim_filter_check(void *instance, const struct ptl_filter_request *req,
                      struct ptl_filter_verdict *verdict_out,
                      ptl_filter_done_fn done, void *arg);
void dkim_filter_cancel(void *instance, void *arg);
void dkim_filter_session_end(void *instance, void *arg);

#endif
