/* SPDX-License-Identifier: MIT */
/* The SPF evaluator's answers: what each DNS reply means for check_host(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "spf_eval_int.h"

/*
 * RFC 7208 section 5 in short: a server failure or timeout is a
 * temperror for the whole evaluation; NXDOMAIN or an empty answer
 * makes the mechanism not match and counts as a void lookup (section
 * 4.6.4); a name the resolver refuses to ask does not exist, and is no
 * void lookup since no server said so. PTR lookups are the exception:
 * their errors only make "ptr" not match (section 5.5).
 */

enum spf_dns_class {
	SPF_DNS_ANSWER,
	SPF_DNS_EMPTY,   /* NXDOMAIN or no records: a void lookup */
	SPF_DNS_INVALID, /* a name the resolver would not ask: no answer */
	SPF_DNS_ERROR,
};

static enum spf_dns_class
spf_dns_class(const struct ptl_dns_result *res)
{
	switch (res->status) {
	case PTL_DNS_OK:
		return res->count > 0 ? SPF_DNS_ANSWER : SPF_DNS_EMPTY;
	case PTL_DNS_NXDOMAIN:
	case PTL_DNS_NODATA:
		return SPF_DNS_EMPTY;
	case PTL_DNS_PERMFAIL:
		if (res->reason != NULL &&
		    strncmp(res->reason, "invalid name", 12) == 0)
			return SPF_DNS_INVALID;
		return SPF_DNS_ERROR;
	default:
		return SPF_DNS_ERROR;
	}
}

static const char *
spf_dns_reason(const struct ptl_dns_result *res)
{
	return res->reason != NULL ? res->reason : "DNS error";
}

/* Whether an answer's addresses contain the client within the CIDR. */
static bool
spf_addrs_match(const struct spf_eval *ev, const struct ptl_dns_result *res,
                unsigned cidr4, unsigned cidr6)
{
	struct spf_ip a;
	size_t i;

	for (i = 0; i < res->count; i++) {
		const struct ptl_dns_addr *d = &res->addrs[i];

		memset(&a, 0, sizeof(a));
		a.family = d->family;
		if (d->family == AF_INET)
			memcpy(a.addr, &d->in4, 4);
		else if (d->family == AF_INET6)
			memcpy(a.addr, &d->in6, 16);
		else
			continue;
		if (spf_ip_match(&ev->ip, &a,
		                 a.family == AF_INET ? cidr4 : cidr6))
			return true;
	}
	return false;
}

static const struct spf_term *
spf_current_term(const struct spf_eval *ev)
{
	const struct spf_frame *f = &ev->frames[ev->depth - 1];

	return &f->rec->terms[f->next];
}

static void
spf_take_txt(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	struct spf_frame *f = &ev->frames[ev->depth - 1];
	const struct ptl_dns_txt *found = NULL;
	const char *why = NULL;
	size_t i, nspf = 0;

	switch (spf_dns_class(res)) {
	case SPF_DNS_ERROR:
		spf_error(ev, SPF_TEMPERROR, "TXT %s: %s", f->domain,
		          spf_dns_reason(res));
		return;
	case SPF_DNS_EMPTY:
	case SPF_DNS_INVALID:
		spf_frame_result(ev, SPF_NONE, "", 0);
		return;
	case SPF_DNS_ANSWER:
		break;
	}
	/* Section 4.5: exactly one record starting "v=spf1". */
	for (i = 0; i < res->count; i++) {
		if (spf_record_is_spf(res->txt[i].data, res->txt[i].len)) {
			found = &res->txt[i];
			nspf++;
		}
	}
	if (nspf == 0) {
		spf_frame_result(ev, SPF_NONE, "", 0);
		return;
	}
	if (nspf > 1) {
		spf_error(ev, SPF_PERMERROR, "%s has %zu SPF records",
		          f->domain, nspf);
		return;
	}
	f->rec = spf_record_parse(found->data, found->len, &why);
	if (f->rec == NULL) {
		if (strcmp(why, "out of memory") == 0)
			spf_error(ev, SPF_TEMPERROR, "out of memory");
		else
			spf_error(ev, SPF_PERMERROR, "record of %s: %s",
			          f->domain, why);
		return;
	}
	f->next = 0;
	ev->counted = false;
	ev->state = SPF_ST_TERM;
}

static void
spf_take_addr(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	const struct spf_term *t = spf_current_term(ev);

	switch (spf_dns_class(res)) {
	case SPF_DNS_ERROR:
		spf_error(ev, SPF_TEMPERROR, "%s: %s", ev->target,
		          spf_dns_reason(res));
		return;
	case SPF_DNS_EMPTY:
		if (!spf_void(ev))
			(void)spf_no_match(ev);
		return;
	case SPF_DNS_INVALID:
		(void)spf_no_match(ev);
		return;
	case SPF_DNS_ANSWER:
		break;
	}
	if (spf_addrs_match(ev, res, t->cidr4, t->cidr6))
		(void)spf_matched(ev, t);
	else
		(void)spf_no_match(ev);
}

static void
spf_take_mx(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	size_t i;

	switch (spf_dns_class(res)) {
	case SPF_DNS_ERROR:
		spf_error(ev, SPF_TEMPERROR, "MX %s: %s", ev->target,
		          spf_dns_reason(res));
		return;
	case SPF_DNS_EMPTY:
		if (!spf_void(ev))
			(void)spf_no_match(ev);
		return;
	case SPF_DNS_INVALID:
		(void)spf_no_match(ev);
		return;
	case SPF_DNS_ANSWER:
		break;
	}
	/* Section 4.6.4: more than 10 MX names is a permerror. */
	if (res->count > SPF_NAMES_MAX) {
		spf_error(ev, SPF_PERMERROR, "%s has more than %d MX records",
		          ev->target, SPF_NAMES_MAX);
		return;
	}
	ev->nmx = 0;
	ev->mx_i = 0;
	for (i = 0; i < res->count; i++) {
		/* A null MX (RFC 7505) names no host. */
		if (res->mx[i].exchange[0] == '\0' ||
		    strlen(res->mx[i].exchange) > SPF_NAME_MAX)
			continue;
		memcpy(ev->mx[ev->nmx++], res->mx[i].exchange,
		       strlen(res->mx[i].exchange) + 1);
	}
	ev->wait = SPF_W_MXADDR; /* spf_run() asks the first name */
}

static void
spf_take_mx_addr(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	const struct spf_term *t = spf_current_term(ev);

	switch (spf_dns_class(res)) {
	case SPF_DNS_ERROR:
		spf_error(ev, SPF_TEMPERROR, "%s: %s", ev->mx[ev->mx_i - 1],
		          spf_dns_reason(res));
		return;
	case SPF_DNS_ANSWER:
		if (spf_addrs_match(ev, res, t->cidr4, t->cidr6)) {
			(void)spf_matched(ev, t);
			return;
		}
		break;
	default:
		break;
	}
	ev->wait = SPF_W_MXADDR;
}

static void
spf_take_exists(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	switch (spf_dns_class(res)) {
	case SPF_DNS_ERROR:
		spf_error(ev, SPF_TEMPERROR, "%s: %s", ev->target,
		          spf_dns_reason(res));
		return;
	case SPF_DNS_EMPTY:
		if (!spf_void(ev))
			(void)spf_no_match(ev);
		return;
	case SPF_DNS_INVALID:
		(void)spf_no_match(ev);
		return;
	case SPF_DNS_ANSWER:
		(void)spf_matched(ev, spf_current_term(ev));
		return;
	}
}

static void
spf_take_ptr(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	size_t i;

	ev->nptr = 0;
	ev->ptr_i = 0;
	/* Section 5.5: errors make the mechanism not match. A void
	 * answer counts when a "ptr" mechanism asked. */
	if (res->status != PTL_DNS_OK || res->count == 0) {
		if ((res->status == PTL_DNS_NXDOMAIN ||
		     res->status == PTL_DNS_NODATA) &&
		    ev->state == SPF_ST_TERM &&
		    ev->frames[ev->depth - 1].next <
		        ev->frames[ev->depth - 1].rec->nterms &&
		    spf_current_term(ev)->mech == SPF_MECH_PTR && spf_void(ev))
			return;
		ev->ptr_state = SPF_PTR_DONE;
		return;
	}
	for (i = 0; i < res->count && ev->nptr < SPF_NAMES_MAX; i++) {
		if (strlen(res->ptr[i]) > SPF_NAME_MAX)
			continue;
		memcpy(ev->ptr[ev->nptr], res->ptr[i], strlen(res->ptr[i]) + 1);
		ev->ptr_valid[ev->nptr++] = false;
	}
	ev->wait = SPF_W_PTRADDR;
}

static void
spf_take_ptr_addr(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	/* A name whose lookup fails is skipped (section 5.5). */
	if (spf_dns_class(res) == SPF_DNS_ANSWER &&
	    spf_addrs_match(ev, res, 32, 128))
		ev->ptr_valid[ev->ptr_i - 1] = true;
	ev->wait = SPF_W_PTRADDR;
}

static void
spf_take_exp(struct spf_eval *ev, const struct ptl_dns_result *res)
{
	/* Exactly one TXT record, or no explanation (section 6.2). */
	if (res->status != PTL_DNS_OK || res->count != 1 ||
	    res->txt[0].len > SPF_EXP_TXT_MAX ||
	    memchr(res->txt[0].data, '\0', res->txt[0].len) != NULL) {
		ev->state = SPF_ST_DONE;
		return;
	}
	ev->exp_text = malloc(res->txt[0].len + 1);
	if (ev->exp_text == NULL) {
		ev->state = SPF_ST_DONE;
		return;
	}
	memcpy(ev->exp_text, res->txt[0].data, res->txt[0].len);
	ev->exp_text[res->txt[0].len] = '\0';
	ev->exp_len = res->txt[0].len;
	ev->exp_step = 1;
}

void
spf_answer(struct spf_eval *ev, enum spf_wait wait,
           const struct ptl_dns_result *res)
{
	switch (wait) {
	case SPF_W_TXT:
		spf_take_txt(ev, res);
		break;
	case SPF_W_ADDR:
		spf_take_addr(ev, res);
		break;
	case SPF_W_MX:
		spf_take_mx(ev, res);
		break;
	case SPF_W_MXADDR:
		spf_take_mx_addr(ev, res);
		break;
	case SPF_W_EXISTS:
		spf_take_exists(ev, res);
		break;
	case SPF_W_PTR:
		spf_take_ptr(ev, res);
		break;
	case SPF_W_PTRADDR:
		spf_take_ptr_addr(ev, res);
		break;
	case SPF_W_EXP:
		spf_take_exp(ev, res);
		break;
	case SPF_W_NONE:
		break;
	}
}
