/* SPDX-License-Identifier: MIT */
/* The delivery engine: job lifecycle, host fallback, connection reuse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "relay.h"
#include "relay_idn.h"
#include "relay_mx.h"
#include "smtpc.h"

/*
 * One job is one message to one destination. Its delivery resolves the
 * destination (relay_mx.c), then tries addresses one after the other
 * until a session (smtpc_session.c) settles the recipients or the
 * attempts run out; unsettled recipients are deferred with the last
 * reason heard.
 *
 * A session that ended cleanly is parked under its destination key for
 * a few seconds: the next message to the same destination skips DNS,
 * connect, greeting and TLS (as Postfix's connection cache does). A
 * parked session that failed to take a message is not counted as an
 * attempt: the delivery then resolves and connects as usual.
 */

/* Idle connections kept over every destination. */
#define RELAY_PARKED_MAX 128
/* "route|host|port|tls|ca_file|user" */
#define RELAY_KEY_MAX 768

struct relay_parked {
	struct relay_parked *prev, *next;
	struct relay_engine *e;
	struct smtpc_session *s;
	char key[RELAY_KEY_MAX];
};

struct relay_delivery {
	struct relay_delivery *prev, *next;
	struct relay_engine *e;
	struct relay_job *job;
	relay_done_fn done;
	void *arg;
	struct ptl_timer *timer; /* runs the start outside relay_start() */
	bool *settled;

	enum relay_tls_policy tls;
	const char *ca_file;
	uint16_t port;
	char key[RELAY_KEY_MAX]; /* "" when not reusable */
	/* The domain as DNS knows it: A-labels for an IDN. */
	char domain[RELAY_HOST_MAX];

	struct relay_mx mx;
	bool mx_started;
	struct smtpc_session *session;
	bool on_parked; /* the session came from the cache */
	unsigned attempts;
	struct smtpc_target target; /* of the running session */
	char target_host[RELAY_HOST_MAX];

	bool have_reason;
	bool reason_remote;
	bool reason_permanent;
	char reason[RELAY_REASON_MAX];
	char reason_peer[RELAY_HOST_MAX];
};

struct relay_engine {
	struct ptl_instance *inst;
	const struct smtpc_conf *conf;
	const struct ptl_resolver_methods *dns;
	void *dns_inst;
	char helo[RELAY_HOST_MAX];
	uint64_t rng;
	bool aborting;
	struct relay_delivery *deliveries;
	struct relay_parked *parked; /* newest first */
	struct relay_parked *parked_tail;
	unsigned nparked;
};

static void delivery_next_host(struct relay_delivery *d);

/* ---- Randomness for MX shuffling ----------------------------------------- */

static uint32_t
engine_rand(uint32_t bound, void *arg)
{
	struct relay_engine *e = arg;
	uint64_t x = e->rng;

	/* xorshift64*: the shuffle needs spread, not secrecy. */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	e->rng = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dULL) >> 32) % bound;
}

static void
engine_seed(struct relay_engine *e)
{
	uint64_t seed = 0;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	e->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ULL;
}

/* ---- Parked sessions ------------------------------------------------------
 */

static void
parked_unlink(struct relay_engine *e, struct relay_parked *p)
{
	if (p->prev != NULL)
		p->prev->next = p->next;
	else
		e->parked = p->next;
	if (p->next != NULL)
		p->next->prev = p->prev;
	else
		e->parked_tail = p->prev;
	e->nparked--;
}

static void
parked_on_closed(struct smtpc_session *s, void *arg)
{
	struct relay_parked *p = arg;

	parked_unlink(p->e, p);
	free(p);
}

static struct smtpc_session *
parked_take(struct relay_engine *e, const char *key)
{
	struct relay_parked *p;
	struct smtpc_session *s;

	if (key[0] == '\0')
		return NULL;
	for (p = e->parked; p != NULL; p = p->next) {
		if (strcmp(p->key, key) != 0)
			continue;
		s = p->s;
		parked_unlink(e, p);
		free(p);
		return s;
	}
	return NULL;
}

/* After a settled transaction: keep the connection for the next message
 * to the same destination, or say goodbye. */
static void
engine_release_session(struct relay_engine *e, struct smtpc_session *s,
                       const char *key)
{
	struct relay_parked *p;

	if (key[0] == '\0' || strlen(key) >= sizeof(p->key) || e->aborting ||
	    ptl_loop_stopping() || !smtpc_session_reusable(s)) {
		smtpc_session_quit(s);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		smtpc_session_quit(s);
		return;
	}
	p->e = e;
	p->s = s;
	memcpy(p->key, key, strlen(key) + 1);
	p->next = e->parked;
	if (e->parked != NULL)
		e->parked->prev = p;
	else
		e->parked_tail = p;
	e->parked = p;
	e->nparked++;
	smtpc_session_park(s, e->conf->reuse_idle, parked_on_closed, p);
	if (e->nparked > RELAY_PARKED_MAX) {
		p = e->parked_tail;
		s = p->s;
		parked_unlink(e, p);
		free(p);
		smtpc_session_quit(s);
	}
}

/* ---- Deliveries ------------------------------------------------------------
 */

static const char *
delivery_status_name(enum relay_rcpt_status st)
{
	switch (st) {
	case RELAY_RCPT_DELIVERED:
		return "sent";
	case RELAY_RCPT_FAILED:
		return "bounced";
	case RELAY_RCPT_DEFERRED:
	default:
		return "deferred";
	}
}

static void
delivery_settle(struct relay_delivery *d, size_t i, enum relay_rcpt_status st,
                const char *reply, const char *remote_host)
{
	struct relay_rcpt *r = &d->job->rcpts[i];

	r->status = st;
	r->dsn_passed = false;
	relay_text(r->reply, sizeof(r->reply), "%s", reply);
	relay_text(r->remote_host, sizeof(r->remote_host), "%s",
	           remote_host != NULL ? remote_host : "");
	d->settled[i] = true;
}

static void
delivery_settle_rest(struct relay_delivery *d, enum relay_rcpt_status st,
                     const char *reply, const char *remote_host)
{
	size_t i;

	for (i = 0; i < d->job->nrcpts; i++) {
		if (!d->settled[i])
			delivery_settle(d, i, st, reply, remote_host);
	}
}

static void
delivery_unlink(struct relay_delivery *d)
{
	struct relay_engine *e = d->e;

	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		e->deliveries = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	d->prev = d->next = NULL;
}

/* Every recipient gets a result, then the scheduler its callback. */
static void
delivery_finish(struct relay_delivery *d)
{
	struct relay_job *job = d->job;
	relay_done_fn done = d->done;
	void *arg = d->arg;
	size_t i;

	if (d->mx_started)
		relay_mx_cancel(&d->mx);
	delivery_settle_rest(
	    d, RELAY_RCPT_DEFERRED,
	    d->have_reason ? d->reason : "451 4.4.0 delivery not finished",
	    d->have_reason && d->reason_remote ? d->reason_peer : NULL);
	for (i = 0; i < job->nrcpts; i++) {
		const struct relay_rcpt *r = &job->rcpts[i];

		/* The queue logs the outcome it records; this is detail. */
		ptl_log(PTL_LOG_DEBUG,
		        "relay: %s: to=<%s>, relay=%s, status=%s "
		        "(%s)",
		        job->queue_id != NULL ? job->queue_id : "-", r->address,
		        r->remote_host[0] != '\0' ? r->remote_host : "none",
		        delivery_status_name(r->status), r->reply);
	}
	delivery_unlink(d);
	ptl_timer_free(d->timer);
	free(d->settled);
	free(d);
	done(job, arg);
}

static void
delivery_note(struct relay_delivery *d, struct smtpc_session *s)
{
	const char *reason = smtpc_session_reason(s);

	if (reason[0] == '\0')
		return;
	d->have_reason = true;
	relay_text(d->reason, sizeof(d->reason), "%s", reason);
	d->reason_remote = smtpc_session_reason_remote(s);
	d->reason_permanent = smtpc_session_permanent(s);
	relay_text(d->reason_peer, sizeof(d->reason_peer), "%s",
	           smtpc_session_peer(s));
}

static void
delivery_exhausted(struct relay_delivery *d)
{
	/* A session's own words say more than "no more hosts". */
	if (d->have_reason && !(d->mx.phase == RELAY_MX_END &&
	                        d->mx.status == RELAY_RCPT_FAILED)) {
		delivery_settle_rest(d,
		                     d->reason_permanent ? RELAY_RCPT_FAILED
		                                         : RELAY_RCPT_DEFERRED,
		                     d->reason,
		                     d->reason_remote ? d->reason_peer : NULL);
	} else if (d->mx.phase == RELAY_MX_END) {
		delivery_settle_rest(d, d->mx.status, d->mx.reason, NULL);
	} else {
		delivery_settle_rest(d, RELAY_RCPT_DEFERRED,
		                     "451 4.4.1 no host answered", NULL);
	}
	delivery_finish(d);
}

static void
delivery_on_result(struct smtpc_session *s, enum smtpc_outcome outcome,
                   void *arg)
{
	struct relay_delivery *d = arg;
	struct relay_engine *e = d->e;
	struct ptl_error err;

	d->session = NULL;
	delivery_note(d, s);
	switch (outcome) {
	case SMTPC_DONE:
		engine_release_session(e, s, d->key);
		delivery_finish(d);
		return;
	case SMTPC_TLS_RETRY:
		if (!d->on_parked) {
			/* "may" means any TLS, else none: a server whose TLS
			 * is broken still gets the mail, in clear. */
			ptl_log(PTL_LOG_INFO,
			        "relay: %s: retrying without "
			        "STARTTLS",
			        smtpc_session_peer(s));
			d->target.no_starttls = true;
			d->session = smtpc_session_start(
			    e->conf, e->helo, &d->target,
			    &(struct smtpc_txn){d->job, d->settled,
			                        delivery_on_result, d},
			    &err);
			if (d->session != NULL)
				return;
			ptl_log(PTL_LOG_INFO, "relay: %s", err.text);
		}
		break;
	case SMTPC_NEXT_HOST:
		break;
	}
	d->on_parked = false;
	delivery_next_host(d);
}

static void
delivery_wake(void *arg)
{
	delivery_next_host(arg);
}

static void
delivery_mx_start(struct relay_delivery *d)
{
	struct relay_engine *e = d->e;
	const struct relay_route *route = d->job->route;
	struct relay_mx_params p = {
	    .dns = e->dns,
	    .dns_inst = e->dns_inst,
	    .domain = d->domain,
	    .route_host = route != NULL ? route->host : NULL,
	    .self = e->helo,
	    .want_ipv4 = e->conf->ip_version != SMTPC_IP_IPV6,
	    .want_ipv6 = e->conf->ip_version != SMTPC_IP_IPV4,
	    .rnd = engine_rand,
	    .rnd_arg = e,
	    .wake = delivery_wake,
	    .arg = d,
	};

	relay_mx_init(&d->mx, &p);
	d->mx_started = true;
}

static void
delivery_next_host(struct relay_delivery *d)
{
	struct relay_engine *e = d->e;
	const struct relay_route *route = d->job->route;
	struct ptl_error err;
	int rc;

	if (!d->mx_started)
		delivery_mx_start(d);
	for (;;) {
		if (d->attempts >= (unsigned)e->conf->max_hosts) {
			delivery_exhausted(d);
			return;
		}
		rc = relay_mx_next(&d->mx);
		if (rc == PTL_AGAIN)
			return;
		if (rc == PTL_DONE) {
			delivery_exhausted(d);
			return;
		}
		d->attempts++;
		relay_text(d->target_host, sizeof(d->target_host), "%s",
		           d->mx.cur_host);
		d->target = (struct smtpc_target){
		    .host = d->target_host,
		    .tls = d->tls,
		    .ca_file = d->ca_file,
		    .auth_user = route != NULL ? route->auth_user : NULL,
		    .auth_password =
		        route != NULL ? route->auth_password : NULL,
		};
		d->target.addrlen = ptl_dns_addr_sockaddr(
		    &d->mx.cur_addr, d->port, &d->target.addr);
		d->session = smtpc_session_start(
		    e->conf, e->helo, &d->target,
		    &(struct smtpc_txn){d->job, d->settled, delivery_on_result,
		                        d},
		    &err);
		if (d->session != NULL)
			return;
		d->have_reason = true;
		d->reason_remote = false;
		d->reason_permanent = false;
		relay_text(d->reason, sizeof(d->reason), "451 4.4.1 %s",
		           err.text);
		ptl_log(PTL_LOG_INFO, "relay: %s", d->reason);
	}
}

/* An address may go into a command line only when it cannot break it. */
static bool
delivery_check_envelope(struct relay_delivery *d)
{
	const struct relay_job *job = d->job;
	bool any = false;
	size_t i;

	if (!smtpc_address_ok(job->mail_from, job->smtputf8)) {
		delivery_settle_rest(d, RELAY_RCPT_FAILED,
		                     "553 5.1.7 bad sender address syntax",
		                     NULL);
		return false;
	}
	for (i = 0; i < job->nrcpts; i++) {
		const char *a = job->rcpts[i].address;

		if (a == NULL || a[0] == '\0' ||
		    !smtpc_address_ok(a, job->smtputf8))
			delivery_settle(d, i, RELAY_RCPT_FAILED,
			                "553 5.1.3 bad recipient address "
			                "syntax",
			                NULL);
		else
			any = true;
	}
	return any;
}

/* An SMTPUTF8 recipient domain in U-labels is looked up by its A-labels
 * (RFC 6531 3.2; the MX records of "bücher.test" are those of
 * "xn--bcher-kva.test"). A name that is no valid IDN never will be,
 * unless a smarthost takes it: then the domain is never looked up. */
static bool
delivery_idn(struct relay_delivery *d)
{
	const struct relay_route *route = d->job->route;
	const char *why = NULL;
	char reply[RELAY_REASON_MAX];

	if (relay_idn_to_ascii(d->job->domain, d->domain, sizeof(d->domain),
	                       &why))
		return true;
	if (route != NULL && route->host != NULL) {
		relay_text(d->domain, sizeof(d->domain), "%s", d->job->domain);
		return true;
	}
	relay_text(reply, sizeof(reply), "553 5.1.2 bad domain name %s: %s",
	           d->job->domain, why);
	delivery_settle_rest(d, RELAY_RCPT_FAILED, reply, NULL);
	return false;
}

static void
delivery_key(struct relay_delivery *d)
{
	const struct relay_route *route = d->job->route;
	int n;

	if (route != NULL && route->host != NULL)
		n = snprintf(d->key, sizeof(d->key), "route|%s|%u|%d|%s|%s",
		             route->host, (unsigned)d->port, (int)d->tls,
		             d->ca_file != NULL ? d->ca_file : "",
		             route->auth_user != NULL ? route->auth_user : "");
	else
		n = snprintf(d->key, sizeof(d->key), "mx|%s|%u|%d|%s|%s",
		             d->domain, (unsigned)d->port, (int)d->tls,
		             d->ca_file != NULL ? d->ca_file : "",
		             route != NULL && route->auth_user != NULL
		                 ? route->auth_user
		                 : "");
	if (n < 0 || (size_t)n >= sizeof(d->key))
		d->key[0] = '\0';
}

static void
delivery_begin(struct ptl_timer *t, void *arg)
{
	struct relay_delivery *d = arg;
	struct relay_engine *e = d->e;
	const struct relay_route *route = d->job->route;
	struct smtpc_session *s;

	if (!delivery_check_envelope(d)) {
		delivery_finish(d);
		return;
	}
	if (!delivery_idn(d)) {
		delivery_finish(d);
		return;
	}
	d->tls =
	    route != NULL ? route->tls : (enum relay_tls_policy)e->conf->tls;
	d->ca_file = route != NULL && route->ca_file != NULL ? route->ca_file
	                                                     : e->conf->ca_file;
	d->port = route != NULL && route->port != 0
	              ? route->port
	              : (uint16_t)e->conf->mx_port;
	delivery_key(d);
	while ((s = parked_take(e, d->key)) != NULL) {
		if (smtpc_session_send(s,
		                       &(struct smtpc_txn){d->job, d->settled,
		                                           delivery_on_result,
		                                           d}) == PTL_OK) {
			d->session = s;
			d->on_parked = true;
			return;
		}
		smtpc_session_abort(s);
	}
	delivery_next_host(d);
}

/* ---- API --------------------------------------------------------------------
 */

int
relay_engine_create(struct ptl_instance *inst, const void *conf,
                    struct relay_engine **engine_out, struct ptl_error *err)
{
	const struct smtpc_conf *c = conf;
	const struct ptl_server_info *info = ptl_server_info();
	const struct ptl_service *svc;
	struct relay_engine *e;
	const char *helo;

	if (c == NULL)
		return ptl_error_set(err, "relay: no configuration");
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return ptl_error_set(err, "relay: out of memory");
	e->inst = inst;
	e->conf = c;
	helo = c->helo_name;
	if (helo == NULL && info != NULL)
		helo = info->hostname;
	relay_text(e->helo, sizeof(e->helo), "%s",
	           helo != NULL && helo[0] != '\0' ? helo : "localhost");
	svc = ptl_service_find(PTL_RESOLVER_SERVICE, PTL_RESOLVER_VERSION);
	if (svc != NULL) {
		e->dns = svc->methods;
		e->dns_inst = svc->instance;
	} else {
		ptl_log(PTL_LOG_WARN,
		        "relay: no \"resolver\" service: mail that needs an "
		        "MX lookup stays deferred (add the resolver module)");
	}
	engine_seed(e);
	*engine_out = e;
	return PTL_OK;
}

void
relay_engine_free(struct relay_engine *e)
{
	if (e == NULL)
		return;
	relay_abort_all(e);
	free(e);
}

int
relay_start(struct relay_engine *e, struct relay_job *job, relay_done_fn done,
            void *arg)
{
	struct relay_delivery *d;
	size_t i;

	if (e == NULL || job == NULL || done == NULL || e->aborting ||
	    job->domain == NULL || job->mail_from == NULL ||
	    (job->nrcpts > 0 && job->rcpts == NULL))
		return PTL_ERROR;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return PTL_ERROR;
	d->settled =
	    calloc(job->nrcpts > 0 ? job->nrcpts : 1, sizeof(*d->settled));
	d->timer = ptl_timer_new(delivery_begin, d);
	if (d->settled == NULL || d->timer == NULL) {
		ptl_timer_free(d->timer);
		free(d->settled);
		free(d);
		return PTL_ERROR;
	}
	d->e = e;
	d->job = job;
	d->done = done;
	d->arg = arg;
	for (i = 0; i < job->nrcpts; i++) {
		job->rcpts[i].status = RELAY_RCPT_DEFERRED;
		job->rcpts[i].reply[0] = '\0';
		job->rcpts[i].remote_host[0] = '\0';
		job->rcpts[i].dsn_passed = false;
	}
	d->next = e->deliveries;
	if (e->deliveries != NULL)
		e->deliveries->prev = d;
	e->deliveries = d;
	/* done() must never run from inside this call. */
	ptl_timer_start(d->timer, 0);
	return PTL_OK;
}

void
relay_abort_all(struct relay_engine *e)
{
	struct relay_delivery *d;
	struct relay_parked *p;

	if (e == NULL)
		return;
	e->aborting = true;
	while ((d = e->deliveries) != NULL) {
		if (d->session != NULL) {
			smtpc_session_abort(d->session);
			d->session = NULL;
		}
		if (d->mx_started)
			relay_mx_cancel(&d->mx);
		d->have_reason = true;
		d->reason_remote = false;
		relay_text(d->reason, sizeof(d->reason),
		           "451 4.3.2 delivery interrupted: the server is "
		           "stopping");
		delivery_finish(d);
	}
	while ((p = e->parked) != NULL) {
		struct smtpc_session *s = p->s;

		parked_unlink(e, p);
		free(p);
		smtpc_session_abort(s);
	}
	e->aborting = false;
}
