/* SPDX-License-Identifier: MIT */
/* Scheduling arithmetic: backoff, expiry, which DSN is due. Pure. */
#include <petrel/queue.h>

#include "queue_sched.h"

int64_t
queue_backoff_ms(const struct queue_policy *p, uint32_t attempts)
{
	int64_t delay = p->backoff_min;
	uint32_t i;

	if (attempts == 0)
		return 0;
	/* Doubling stops at the ceiling, so this never overflows. */
	for (i = 1; i < attempts && delay < p->backoff_max; i++)
		delay = delay > p->backoff_max / 2 ? p->backoff_max : delay * 2;
	return delay < p->backoff_max ? delay : p->backoff_max;
}

bool
queue_sched_report_failure(const struct queue_report_rule *rule)
{
	if (rule->null_sender)
		return false;
	return rule->notify == 0 || (rule->notify & PTL_DSN_NOTIFY_FAILURE);
}

bool
queue_sched_report_success(const struct queue_report_rule *rule)
{
	return !rule->null_sender && (rule->notify & PTL_DSN_NOTIFY_SUCCESS);
}

bool
queue_sched_warn_due(const struct queue_policy *p,
                     const struct queue_report_rule *rule, int64_t received_ms,
                     int64_t now_ms, const struct queue_rcpt_state *st)
{
	if (p->delay_warning <= 0 || rule->null_sender ||
	    st->status != QUEUE_RCPT_DEFERRED ||
	    (st->flags & QUEUE_RCPT_WARNED))
		return false;
	if (rule->notify != 0 && !(rule->notify & PTL_DSN_NOTIFY_DELAY))
		return false;
	return now_ms - received_ms >= p->delay_warning;
}

void
queue_sched_apply(const struct queue_policy *p,
                  const struct queue_report_rule *rule, int64_t received_ms,
                  int64_t now_ms, enum queue_outcome outcome,
                  struct queue_rcpt_state *st, bool *expired_out)
{
	int64_t deadline = received_ms + p->lifetime, next;

	*expired_out = false;
	st->last_ms = now_ms;
	st->next_try_ms = 0;
	switch (outcome) {
	case QUEUE_OUTCOME_DELIVERED:
		st->status = QUEUE_RCPT_DELIVERED;
		st->attempts++;
		if (!queue_sched_report_success(rule))
			st->flags |= QUEUE_RCPT_REPORTED;
		return;
	case QUEUE_OUTCOME_DEFERRED:
		st->attempts++;
		if (now_ms < deadline) {
			next = now_ms + queue_backoff_ms(p, st->attempts);
			st->status = QUEUE_RCPT_DEFERRED;
			st->next_try_ms = next < deadline ? next : deadline;
			return;
		}
		*expired_out = true;
		break;
	case QUEUE_OUTCOME_FAILED:
		st->attempts++;
		break;
	}
	st->status = QUEUE_RCPT_FAILED;
	if (!queue_sched_report_failure(rule))
		st->flags |= QUEUE_RCPT_REPORTED;
}

bool
queue_sched_done(const struct queue_rcpt_state *st)
{
	return (st->status == QUEUE_RCPT_DELIVERED ||
	        st->status == QUEUE_RCPT_FAILED) &&
	       (st->flags & QUEUE_RCPT_REPORTED);
}

bool
queue_sched_due(const struct queue_rcpt_state *st, int64_t now_ms)
{
	if (st->status == QUEUE_RCPT_PENDING)
		return true;
	return st->status == QUEUE_RCPT_DEFERRED && st->next_try_ms <= now_ms;
}
