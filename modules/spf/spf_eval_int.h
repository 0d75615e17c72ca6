/* SPDX-License-Identifier: MIT */
/* The SPF evaluator's state, shared by its question and answer halves. */
#ifndef PETREL_SPF_EVAL_INT_H
#define PETREL_SPF_EVAL_INT_H

#include <petrel/core.h>

#include "spf.h"

/*
 * spf_eval.c asks (the steps of check_host(), the machine, the
 * interface); spf_answer.c takes what the resolver answers and moves
 * the machine on. Both see the whole state.
 */

enum spf_state {
	SPF_ST_FETCH, /* look up the record of the current frame */
	SPF_ST_TERM,  /* evaluate the next term of the current frame */
	SPF_ST_EXP,   /* fail: find the explanation */
	SPF_ST_DONE,
};

enum spf_wait {
	SPF_W_NONE,
	SPF_W_TXT,
	SPF_W_ADDR,   /* "a" */
	SPF_W_MX,     /* "mx": the MX names */
	SPF_W_MXADDR, /* "mx": the addresses of one name */
	SPF_W_EXISTS,
	SPF_W_PTR,     /* validation: the PTR names */
	SPF_W_PTRADDR, /* validation: the addresses of one name */
	SPF_W_EXP,
};

enum spf_ptr_state {
	SPF_PTR_NONE,
	SPF_PTR_RUNNING,
	SPF_PTR_DONE,
};

/* What a step of the machine did. */
enum spf_step {
	SPF_NEXT, /* go on */
	SPF_WAIT, /* a question is pending */
};

struct spf_frame {
	char domain[SPF_NAME_MAX + 1];
	struct spf_record *rec;
	size_t next;       /* the term being evaluated */
	bool via_redirect; /* "none" from here is a permerror */
};

/* Frames: one per include level; the lookup limit bounds the nesting. */
#define SPF_FRAMES (SPF_LOOKUPS_HARD_MAX + 2)

/* Longest explanation TXT record used (section 6.2). */
#define SPF_EXP_TXT_MAX 1024

struct spf_eval {
	const struct ptl_resolver_methods *m;
	void *inst;
	struct spf_limits lim;
	struct spf_ip ip;
	bool ip_ok;
	char *sender, *local, *sender_domain, *helo, *receiver;
	int64_t now;
	struct spf_outcome out;

	struct spf_frame frames[SPF_FRAMES];
	size_t depth;
	enum spf_state state;
	bool counted; /* the current term's lookup has been counted */

	/* The mechanism in progress. */
	char target[SPF_NAME_MAX + 1];
	char mx[SPF_NAMES_MAX][SPF_NAME_MAX + 1];
	size_t nmx, mx_i;

	/* PTR validation (section 5.5). */
	enum spf_ptr_state ptr_state;
	char ptr[SPF_NAMES_MAX][SPF_NAME_MAX + 1];
	bool ptr_valid[SPF_NAMES_MAX];
	size_t nptr, ptr_i;

	/* The explanation: 0 fetch it, 1 expand exp_text. */
	int exp_step;
	char *exp_text;
	size_t exp_len;

	struct ptl_dns_query *q;
	enum spf_wait wait;
	spf_done_fn done;
	void *arg;
	bool in_start, finished;
};

/* ---- spf_eval.c --------------------------------------------------------*/

/* End the evaluation with an error result (temperror, permerror). */
void spf_error(struct spf_eval *ev, enum spf_result r, const char *fmt, ...)
    PTL_PRINTF(3, 4);
/* The current frame ended with @r (section 5.2 for includes). */
void spf_frame_result(struct spf_eval *ev, enum spf_result r, const char *mech,
                      size_t mech_len);
/* The current term matched / did not match. */
enum spf_step spf_matched(struct spf_eval *ev, const struct spf_term *t);
enum spf_step spf_no_match(struct spf_eval *ev);
/* Count a void lookup. @return true when over the limit (ended). */
bool spf_void(struct spf_eval *ev);

/* ---- spf_answer.c ------------------------------------------------------*/

/* The answer to the question asked for @wait: update @ev. */
void spf_answer(struct spf_eval *ev, enum spf_wait wait,
                const struct ptl_dns_result *res);

#endif
