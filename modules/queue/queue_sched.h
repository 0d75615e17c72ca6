/* SPDX-License-Identifier: MIT */
/* Scheduling arithmetic: backoff, expiry, which DSN is due. Pure. */
#ifndef PETREL_QUEUE_SCHED_H
#define PETREL_QUEUE_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "queue_spool.h"

/** The knobs of queue_conf that decide timing (milliseconds). */
struct queue_policy {
	int64_t backoff_min;
	int64_t backoff_max;
	int64_t lifetime;
	int64_t delay_warning; /* 0: off */
};

/** How one attempt ended for one recipient. */
enum queue_outcome {
	QUEUE_OUTCOME_DELIVERED = 0,
	QUEUE_OUTCOME_DEFERRED = 1,
	QUEUE_OUTCOME_FAILED = 2,
};

/** Who a recipient's reports go to. */
struct queue_report_rule {
	unsigned notify;  /* PTL_DSN_NOTIFY_*, 0: unset */
	bool null_sender; /* "" sender, or the message is a DSN itself */
};

/**
 * Wait after the @p attempts-th temporary failure (attempts >= 1):
 * backoff_min doubled attempts - 1 times, at most backoff_max.
 */
int64_t queue_backoff_ms(const struct queue_policy *p, uint32_t attempts);

/**
 * Apply @p outcome at @p now_ms to @p st (texts untouched). A deferral
 * past the lifetime (counted from @p received_ms) becomes a failure and
 * sets *@p expired_out. A deferral is retried after the backoff, but
 * never later than the end of the lifetime, so that the last attempt is
 * made right at the deadline. REPORTED is set when no DSN is due.
 */
void queue_sched_apply(const struct queue_policy *p,
                       const struct queue_report_rule *rule,
                       int64_t received_ms, int64_t now_ms,
                       enum queue_outcome outcome, struct queue_rcpt_state *st,
                       bool *expired_out);

/** Whether a failure report is due (RFC 3461 4.1: NOTIFY). */
bool queue_sched_report_failure(const struct queue_report_rule *rule);
/** Whether a success report is due (NOTIFY=SUCCESS only). */
bool queue_sched_report_success(const struct queue_report_rule *rule);
/**
 * Whether a delay warning is due now for a deferred recipient: warnings
 * on, old enough, not warned yet, NOTIFY unset or with DELAY.
 */
bool queue_sched_warn_due(const struct queue_policy *p,
                          const struct queue_report_rule *rule,
                          int64_t received_ms, int64_t now_ms,
                          const struct queue_rcpt_state *st);

/** Whether the recipient needs nothing more (final and reported). */
bool queue_sched_done(const struct queue_rcpt_state *st);

/** Whether the recipient is due for an attempt at @p now_ms. */
bool queue_sched_due(const struct queue_rcpt_state *st, int64_t now_ms);

#endif
