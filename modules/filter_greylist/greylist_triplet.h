/* SPDX-License-Identifier: MIT */
/* Greylisting decisions: triplet keys and the state of one entry. */
#ifndef PETREL_GREYLIST_TRIPLET_H
#define PETREL_GREYLIST_TRIPLET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <petrel/config.h>

#include "policy_net.h"
#include "policy_table.h"

/** The timing policy, in milliseconds. */
struct gl_times {
	int64_t delay;            /* shortest wait before a retry passes */
	int64_t retry_window;     /* longest: after it, start again */
	int64_t whitelist_expiry; /* a passed triplet / client stays known */
};

/** What one RCPT meets. */
enum gl_outcome {
	GL_NEW = 0,    /* first seen: temporary failure */
	GL_EARLY = 1,  /* retried before the delay: temporary failure */
	GL_PASSED = 2, /* retried in time: passes, now whitelisted */
	GL_KNOWN = 3,  /* whitelisted before: passes */
};

/**
 * Step the triplet entry @p slot at wall-clock time @p now (ms). @p fresh:
 * not seen (or expired). Sets the slot's expiry. For GL_NEW and GL_EARLY
 * *@p wait_ms_out is the time left before a retry passes; for GL_PASSED
 * it is how long the client took.
 */
enum gl_outcome gl_triplet_step(const struct gl_times *t,
                                struct policy_slot *slot, bool fresh,
                                int64_t now, int64_t *wait_ms_out);

/**
 * Count one triplet of a client network passed: after @p needed passes
 * the network is whitelisted. @return whether it is (now) whitelisted.
 */
bool gl_net_passed(const struct gl_times *t, int64_t needed,
                   struct policy_slot *slot, bool fresh, int64_t now);

/** Whether the network entry says whitelisted (and then extends it). */
bool gl_net_whitelisted(const struct gl_times *t, struct policy_slot *slot,
                        int64_t now);

/**
 * The sender as greylisting compares it: lower case, a BATV tag
 * ("prvs=1234abcdef=user@") dropped and every run of digits in the local
 * part made "#", so that per-message bounce addresses (VERP, BATV) of
 * one list are one sender. "" stays "" (the null sender).
 * @return the length written.
 */
size_t gl_normalize_sender(const char *sender, char *out, size_t size);

/**
 * The bytes that identify a triplet, hashed into the table key:
 * "t" NUL network NUL sender NUL recipient, with the client address
 * reduced to its network (@p v4_bits, @p v6_bits), the sender
 * normalized and the recipient in lower case.
 * @return the length, or 0 when it does not fit @p size.
 */
size_t gl_triplet_bytes(const struct policy_ip *ip, unsigned v4_bits,
                        unsigned v6_bits, const char *sender, const char *rcpt,
                        char *out, size_t size);

/** The bytes of a client network's entry ("n" NUL network). */
size_t gl_net_bytes(const struct policy_ip *ip, unsigned v4_bits,
                    unsigned v6_bits, char *out, size_t size);

/**
 * Whether the domain of @p address (after the last '@') is one of
 * @p domains or below one ("example.org" covers "mx.example.org").
 */
bool gl_domain_listed(const struct ptl_conf_list *domains, const char *address);

#endif
