/* SPDX-License-Identifier: MIT */
/* The spf module's config and per-process state, shared by its files. */
#ifndef PETREL_SPF_MODULE_H
#define PETREL_SPF_MODULE_H

#include <petrel/petrel.h>
#include <petrel/filter.h>
#include <petrel/resolver.h>

#include "spf.h"

/* What to do with a message for each SPF result. */
enum spf_action {
	SPF_ACT_CONTINUE = 0, /* index in the enum names */
	SPF_ACT_REJECT = 1,
	SPF_ACT_TEMPFAIL = 2,
	SPF_ACT_QUARANTINE = 3,
};

struct spf_conf {
	int actions[SPF_RESULTS];   /* enum spf_action, by enum spf_result */
	struct ptl_conf_list roles; /* const char * */
	bool check_helo;
	bool received_spf;
	bool check_authenticated;
	bool check_trusted;
	bool explanation;
	int64_t max_lookups;
	int64_t max_void_lookups;
	int64_t timeout; /* ms */
	const char *folder;
	const char *receiver;
};

#define SPF_BUCKETS 256

struct spf_session;

/* Lives in the instance pool; each process has its own copy. */
struct spf_state {
	const struct spf_conf *conf;
	struct ptl_filter_methods methods;
	struct spf_limits limits;
	const char *receiver;
	/* Per process (set in init_worker). */
	const struct ptl_service *resolver;
	struct spf_session *sessions[SPF_BUCKETS];
};

/* The filter methods (spf_filter.c). */
int spf_filter_check(void *instance, const struct ptl_filter_request *req,
                     struct ptl_filter_verdict *verdict_out,
                     ptl_filter_done_fn done, void *arg);
void spf_filter_cancel(void *instance, void *arg);
void spf_filter_session_end(void *instance, void *arg);
/* Free every session of this process (exit_worker). */
void spf_filter_free_all(struct spf_state *st);

#endif
