/* SPDX-License-Identifier: MIT */
/* Destination resolution: route host or MX hosts, then their addresses. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "relay_mx.h"

/* ---- Ordering (pure) ----------------------------------------------------- */

int
relay_mx_order(const struct ptl_dns_mx *mx, size_t n, const char *self,
               relay_rand_fn rnd, void *rnd_arg, struct relay_mx_host *out,
               size_t cap, size_t *n_out)
{
	const struct ptl_dns_mx *sorted[RELAY_MX_HOSTS_MAX * 4];
	size_t ns = 0, i, j, run, kept = 0;
	bool any_host = false, self_seen = false;
	uint16_t self_pref = 0;

	*n_out = 0;
	for (i = 0; i < n; i++) {
		if (mx[i].exchange != NULL && mx[i].exchange[0] != '\0')
			any_host = true;
	}
	/* RFC 7505: "." names no host. A set made only of such records
	 * says the domain takes no mail; a "." among real hosts is a
	 * mistake of the zone and is skipped. */
	if (!any_host)
		return PTL_DECLINED;
	for (i = 0; i < n && ns < sizeof(sorted) / sizeof(sorted[0]); i++) {
		const char *x = mx[i].exchange;

		if (x == NULL || x[0] == '\0' || strlen(x) >= RELAY_HOST_MAX)
			continue;
		if (self != NULL && strcasecmp(x, self) == 0 &&
		    (!self_seen || mx[i].preference < self_pref)) {
			self_seen = true;
			self_pref = mx[i].preference;
		}
		/* Insertion keeps the answer order among equals, which the
		 * shuffle below then randomizes. */
		for (j = ns;
		     j > 0 && sorted[j - 1]->preference > mx[i].preference; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = &mx[i];
		ns++;
	}
	/* RFC 5321 5.1: hosts no more preferred than ourselves would send
	 * the mail back here. */
	if (self_seen) {
		while (ns > 0 && sorted[ns - 1]->preference >= self_pref)
			ns--;
		if (ns == 0)
			return PTL_DONE;
	}
	for (i = 0; i < ns; i = run) {
		for (run = i + 1; run < ns && sorted[run]->preference ==
		                                  sorted[i]->preference;
		     run++)
			;
		/* Fisher-Yates over the run of equal preference. */
		for (j = run - 1; j > i; j--) {
			size_t k = i + rnd((uint32_t)(j - i + 1), rnd_arg);
			const struct ptl_dns_mx *t = sorted[j];

			sorted[j] = sorted[k];
			sorted[k] = t;
		}
	}
	for (i = 0; i < ns && kept < cap; i++) {
		relay_text(out[kept].name, sizeof(out[kept].name), "%s",
		           sorted[i]->exchange);
		out[kept].preference = sorted[i]->preference;
		kept++;
	}
	*n_out = kept;
	return PTL_OK;
}

/* ---- Resolution --------------------------------------------------------- */

static void mx_on_mx(const struct ptl_dns_result *res, void *arg);
static void mx_on_addr(const struct ptl_dns_result *res, void *arg);

char *
relay_text(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	if (cap == 0)
		return out;
	va_start(ap, fmt);
	if (vsnprintf(out, cap, fmt, ap) < 0)
		out[0] = '\0';
	va_end(ap);
	for (i = 0; out[i] != '\0'; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c >= 0x7f)
			out[i] = '?';
	}
	return out;
}

/* Reasons end up in bounces and logs: relay_text() keeps them sane
 * whatever a domain name held. */
#define mx_end(mx, st, ...)                                                    \
	do {                                                                   \
		relay_text((mx)->reason, sizeof((mx)->reason), __VA_ARGS__);   \
		(mx)->status = (st);                                           \
		(mx)->phase = RELAY_MX_END;                                    \
	} while (0)

void
relay_mx_init(struct relay_mx *mx, const struct relay_mx_params *p)
{
	memset(mx, 0, sizeof(*mx));
	mx->p = *p;
	mx->phase = RELAY_MX_INIT;
}

/* "192.0.2.1", "[192.0.2.1]", "[IPv6:2001:db8::1]", "2001:db8::1". */
static bool
mx_parse_literal(const char *s, struct ptl_dns_addr *out)
{
	char buf[64];
	size_t len = strlen(s);

	if (len >= sizeof(buf))
		return false;
	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return false;
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
	} else {
		memcpy(buf, s, len + 1);
	}
	memset(out, 0, sizeof(*out));
	if (strncasecmp(buf, "IPv6:", 5) == 0) {
		out->family = AF_INET6;
		return inet_pton(AF_INET6, buf + 5, &out->in6) == 1;
	}
	if (inet_pton(AF_INET, buf, &out->in4) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (s[0] != '[' && inet_pton(AF_INET6, buf, &out->in6) == 1) {
		out->family = AF_INET6;
		return true;
	}
	return false;
}

/* A destination that is an address needs no DNS at all. */
static void
mx_use_literal(struct relay_mx *mx, const struct ptl_dns_addr *addr)
{
	/* The bare address names the host: it is what a certificate for
	 * an address carries (and what the TLS layer checks). */
	if (inet_ntop(addr->family,
	              addr->family == AF_INET6 ? (const void *)&addr->in6
	                                       : (const void *)&addr->in4,
	              mx->hosts[0].name, sizeof(mx->hosts[0].name)) == NULL)
		mx->hosts[0].name[0] = '\0';
	mx->nhosts = 1;
	mx->host_i = 0;
	mx->addrs[0] = *addr;
	mx->naddrs = 1;
	mx->addr_i = 0;
	mx->n_addr_found = 1;
	mx->phase = RELAY_MX_ADDRS;
}

static int
mx_start(struct relay_mx *mx)
{
	const struct relay_mx_params *p = &mx->p;
	struct ptl_dns_addr lit;
	int rc;

	if (p->route_host != NULL) {
		if (mx_parse_literal(p->route_host, &lit)) {
			mx_use_literal(mx, &lit);
			return PTL_OK;
		}
		if (strlen(p->route_host) >= RELAY_HOST_MAX) {
			mx_end(mx, RELAY_RCPT_DEFERRED,
			       "451 4.3.5 route host name too long");
			return PTL_OK;
		}
		/* A smarthost is the host itself, never an MX lookup. */
		relay_text(mx->hosts[0].name, sizeof(mx->hosts[0].name), "%s",
		           p->route_host);
		mx->nhosts = 1;
		mx->phase = RELAY_MX_HOSTS;
		return PTL_OK;
	}
	if (p->domain[0] == '[') {
		/* RFC 5321 5.1: an address literal is the host to use. */
		if (mx_parse_literal(p->domain, &lit))
			mx_use_literal(mx, &lit);
		else
			mx_end(mx, RELAY_RCPT_FAILED,
			       "553 5.1.2 bad address literal %s", p->domain);
		return PTL_OK;
	}
	if (p->dns == NULL) {
		mx_end(mx, RELAY_RCPT_DEFERRED,
		       "451 4.3.5 no resolver service (load the resolver "
		       "module)");
		return PTL_OK;
	}
	mx->phase = RELAY_MX_QUERY_MX;
	rc = p->dns->lookup(p->dns_inst, p->domain, PTL_DNS_MX, mx_on_mx, mx,
	                    &mx->q_mx);
	if (rc != PTL_AGAIN) {
		mx->q_mx = NULL;
		mx_end(mx, RELAY_RCPT_DEFERRED,
		       "451 4.3.0 cannot start the MX lookup of %s", p->domain);
		return PTL_OK;
	}
	return PTL_AGAIN;
}

static void
mx_on_mx(const struct ptl_dns_result *res, void *arg)
{
	struct relay_mx *mx = arg;
	const char *domain = mx->p.domain;
	int rc;

	mx->q_mx = NULL;
	switch (res->status) {
	case PTL_DNS_OK:
		rc = relay_mx_order(res->mx, res->count, mx->p.self, mx->p.rnd,
		                    mx->p.rnd_arg, mx->hosts,
		                    RELAY_MX_HOSTS_MAX, &mx->nhosts);
		if (rc == PTL_DECLINED)
			mx_end(mx, RELAY_RCPT_FAILED,
			       "556 5.1.10 null MX: %s accepts no mail",
			       domain);
		else if (rc == PTL_DONE)
			mx_end(mx, RELAY_RCPT_FAILED,
			       "554 5.4.6 mail for %s loops back to myself",
			       domain);
		else if (mx->nhosts == 0)
			mx_end(mx, RELAY_RCPT_DEFERRED,
			       "451 4.4.4 no usable MX host for %s", domain);
		else
			mx->phase = RELAY_MX_HOSTS;
		break;
	case PTL_DNS_NODATA:
		/* RFC 5321 5.1: no MX, the domain is its own host. */
		relay_text(mx->hosts[0].name, sizeof(mx->hosts[0].name), "%s",
		           domain);
		mx->nhosts = 1;
		mx->implicit = true;
		mx->phase = RELAY_MX_HOSTS;
		break;
	case PTL_DNS_NXDOMAIN:
		mx_end(mx, RELAY_RCPT_FAILED,
		       "550 5.1.2 domain %s does not exist", domain);
		break;
	case PTL_DNS_PERMFAIL:
		if (res->reason != NULL &&
		    strncmp(res->reason, "invalid name", 12) == 0) {
			mx_end(mx, RELAY_RCPT_FAILED,
			       "553 5.1.2 bad domain name %s", domain);
			break;
		}
		/* A malformed answer may be a passing fault. */
		/* fallthrough */
	case PTL_DNS_TEMPFAIL:
	default:
		mx_end(mx, RELAY_RCPT_DEFERRED,
		       "451 4.4.3 MX lookup of %s failed: %s", domain,
		       res->reason != NULL ? res->reason : "unknown error");
		break;
	}
	mx->p.wake(mx->p.arg);
}

static int
mx_lookup_addrs(struct relay_mx *mx)
{
	const struct relay_mx_params *p = &mx->p;
	const char *name = mx->hosts[mx->host_i].name;
	int rc;

	mx->naddrs = 0;
	mx->addr_i = 0;
	mx->a_pending = p->want_ipv4;
	mx->aaaa_pending = p->want_ipv6;
	mx->phase = RELAY_MX_QUERY_ADDR;
	if (p->want_ipv4) {
		rc = p->dns->lookup(p->dns_inst, name, PTL_DNS_A, mx_on_addr,
		                    mx, &mx->q_a);
		if (rc != PTL_AGAIN) {
			mx->q_a = NULL;
			mx->a_pending = false;
		}
	}
	if (p->want_ipv6) {
		rc = p->dns->lookup(p->dns_inst, name, PTL_DNS_AAAA, mx_on_addr,
		                    mx, &mx->q_aaaa);
		if (rc != PTL_AGAIN) {
			mx->q_aaaa = NULL;
			mx->aaaa_pending = false;
		}
	}
	if (!mx->a_pending && !mx->aaaa_pending) {
		mx->tempfail = true;
		relay_text(mx->tempfail_reason, sizeof(mx->tempfail_reason),
		           "451 4.3.0 cannot start the address lookup of %s",
		           name);
		mx->host_i++;
		mx->phase = RELAY_MX_HOSTS;
		return PTL_OK;
	}
	return PTL_AGAIN;
}

/* IPv4 first: it works on more networks than IPv6 does. A records come
 * in through the same path as AAAA, so they are put in place by type. */
static void
mx_add_addrs(struct relay_mx *mx, const struct ptl_dns_result *res)
{
	size_t i, n4 = 0;

	if (res->type == PTL_DNS_A) {
		for (i = 0; i < mx->naddrs; i++)
			if (mx->addrs[i].family == AF_INET)
				n4++;
		for (i = 0; i < res->count && mx->naddrs < RELAY_MX_ADDRS_MAX;
		     i++) {
			memmove(&mx->addrs[n4 + 1], &mx->addrs[n4],
			        (mx->naddrs - n4) * sizeof(mx->addrs[0]));
			mx->addrs[n4++] = res->addrs[i];
			mx->naddrs++;
		}
		return;
	}
	for (i = 0; i < res->count && mx->naddrs < RELAY_MX_ADDRS_MAX; i++)
		mx->addrs[mx->naddrs++] = res->addrs[i];
}

static void
mx_on_addr(const struct ptl_dns_result *res, void *arg)
{
	struct relay_mx *mx = arg;

	if (res->type == PTL_DNS_A) {
		mx->q_a = NULL;
		mx->a_pending = false;
	} else {
		mx->q_aaaa = NULL;
		mx->aaaa_pending = false;
	}
	if (res->status == PTL_DNS_OK) {
		mx_add_addrs(mx, res);
	} else if (res->status == PTL_DNS_TEMPFAIL ||
	           (res->status == PTL_DNS_PERMFAIL && res->reason != NULL &&
	            strncmp(res->reason, "invalid name", 12) != 0)) {
		mx->tempfail = true;
		relay_text(mx->tempfail_reason, sizeof(mx->tempfail_reason),
		           "451 4.4.3 address lookup of %s failed: %s",
		           res->name,
		           res->reason != NULL ? res->reason : "error");
	}
	if (mx->a_pending || mx->aaaa_pending)
		return;
	mx->n_addr_found += mx->naddrs;
	if (mx->naddrs == 0) {
		mx->host_i++;
		mx->phase = RELAY_MX_HOSTS;
	} else {
		mx->phase = RELAY_MX_ADDRS;
	}
	mx->p.wake(mx->p.arg);
}

static void
mx_exhausted(struct relay_mx *mx)
{
	const char *domain = mx->p.domain;

	if (mx->n_addr_found > 0)
		mx_end(mx, RELAY_RCPT_DEFERRED,
		       "451 4.4.1 no more hosts to try for %s", domain);
	else if (mx->tempfail)
		mx_end(mx, RELAY_RCPT_DEFERRED, "%s", mx->tempfail_reason);
	else if (mx->p.route_host != NULL)
		/* The admin's route is wrong: not the sender's fault. */
		mx_end(mx, RELAY_RCPT_DEFERRED,
		       "451 4.4.4 route host %s has no address",
		       mx->p.route_host);
	else if (mx->implicit)
		mx_end(mx, RELAY_RCPT_FAILED,
		       "550 5.1.2 %s has no MX and no address record", domain);
	else
		mx_end(mx, RELAY_RCPT_FAILED,
		       "550 5.4.4 no MX host of %s has an address", domain);
}

int
relay_mx_next(struct relay_mx *mx)
{
	for (;;) {
		switch (mx->phase) {
		case RELAY_MX_INIT:
			if (mx_start(mx) == PTL_AGAIN)
				return PTL_AGAIN;
			break;
		case RELAY_MX_QUERY_MX:
		case RELAY_MX_QUERY_ADDR:
			return PTL_AGAIN;
		case RELAY_MX_HOSTS:
			if (mx->host_i >= mx->nhosts) {
				mx_exhausted(mx);
				break;
			}
			if (mx->p.dns == NULL) {
				mx_end(mx, RELAY_RCPT_DEFERRED,
				       "451 4.3.5 no resolver service (load "
				       "the resolver module)");
				break;
			}
			if (mx_lookup_addrs(mx) == PTL_AGAIN)
				return PTL_AGAIN;
			break;
		case RELAY_MX_ADDRS:
			if (mx->addr_i < mx->naddrs) {
				mx->cur_host = mx->hosts[mx->host_i].name;
				mx->cur_addr = mx->addrs[mx->addr_i++];
				return PTL_OK;
			}
			mx->host_i++;
			mx->phase = RELAY_MX_HOSTS;
			break;
		case RELAY_MX_END:
			return PTL_DONE;
		}
	}
}

void
relay_mx_cancel(struct relay_mx *mx)
{
	const struct relay_mx_params *p = &mx->p;

	if (mx->q_mx != NULL)
		p->dns->cancel(p->dns_inst, mx->q_mx);
	if (mx->q_a != NULL)
		p->dns->cancel(p->dns_inst, mx->q_a);
	if (mx->q_aaaa != NULL)
		p->dns->cancel(p->dns_inst, mx->q_aaaa);
	mx->q_mx = mx->q_a = mx->q_aaaa = NULL;
	mx->a_pending = mx->aaaa_pending = false;
}
