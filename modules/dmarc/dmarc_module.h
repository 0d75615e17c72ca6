/* SPDX-License-Identifier: MIT */
/* The dmarc module's config and per-process state, shared by its files. */
#ifndef PETREL_DMARC_MODULE_H
#define PETREL_DMARC_MODULE_H

#include <petrel/petrel.h>
#include <petrel/filter.h>
#include <petrel/resolver.h>

#include "dmarc.h"

/* What to do with a message. */
enum dmarc_action {
	DMARC_ACT_CONTINUE = 0, /* index in the enum names */
	DMARC_ACT_REJECT = 1,
	DMARC_ACT_TEMPFAIL = 2,
	DMARC_ACT_QUARANTINE = 3,
};

/* Which action applies: the disposition of a failing message (enum
 * dmarc_policy), or an error. */
enum dmarc_case {
	DMARC_CASE_NONE = 0,
	DMARC_CASE_QUARANTINE = 1,
	DMARC_CASE_REJECT = 2,
	DMARC_CASE_TEMPERROR = 3,
	DMARC_CASE_PERMERROR = 4,
};
#define DMARC_CASES 5

struct dmarc_conf {
	int actions[DMARC_CASES]; /* enum dmarc_action */
	struct ptl_conf_list roles;
	bool check_authenticated;
	bool check_trusted;
	const char *public_suffix_list;
	bool report;
	const char *report_dir;
	const char *folder;
	uint64_t max_header;
};

struct dmarc_job;

/* Lives in the instance pool; each process has its own copy. */
struct dmarc_state {
	const struct dmarc_conf *conf;
	struct ptl_filter_methods methods;
	struct dmarc_psl *psl; /* loaded in the master, shared */
	const char *report_dir;
	/* Per process. */
	const struct ptl_service *resolver;
	struct dmarc_job *jobs;
	uint64_t rng;
};

/* The filter methods (dmarc_filter.c). */
int dmarc_filter_check(void *instance, const struct ptl_filter_request *req,
                       struct ptl_filter_verdict *verdict_out,
                       ptl_filter_done_fn done, void *arg);
void dmarc_filter_cancel(void *instance, void *arg);
void dmarc_filter_session_end(void *instance, void *arg);
/* Forget every check of this process (exit_worker). */
void dmarc_filter_free_all(struct dmarc_state *st);

#endif
