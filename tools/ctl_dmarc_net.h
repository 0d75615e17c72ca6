/* SPDX-License-Identifier: MIT */
/* petrelctl dmarc: the external-destination lookup and SMTP submission. */
#ifndef PETREL_CTL_DMARC_NET_H
#define PETREL_CTL_DMARC_NET_H

#include <stddef.h>

/*
 * Prepare res_query(): the system's resolver, or @resolver ("IP:PORT",
 * IPv4) when not NULL. @return 0, or -1 with @why.
 */
int ctl_dmarc_dns_init(const char *resolver, char *why, size_t size);

/*
 * RFC 7489 7.1: whether the domain @rua_domain accepts reports about
 * @policy_domain, i.e. has a TXT record starting with "v=DMARC1" at
 * POLICY-DOMAIN._report._dmarc.RUA-DOMAIN. Blocking.
 * @return 1 yes, 0 no (no such record), -1 the lookup failed (@why).
 */
int ctl_dmarc_external_ok(const char *policy_domain, const char *rua_domain,
                          char *why, size_t size);

/*
 * Submit one message over plain SMTP to @hostport ("HOST:PORT",
 * "[IPv6]:PORT"): EHLO @helo, MAIL FROM:<@from>, RCPT TO:<@to>, DATA
 * with @msg (CRLF lines, dot-stuffed here), QUIT; every reply checked,
 * 30 s per read or write. Blocking.
 * @return 0 (accepted), or -1 with @why (the failing step and reply).
 */
int ctl_dmarc_smtp_send(const char *hostport, const char *helo,
                        const char *from, const char *to, const char *msg,
                        size_t len, char *why, size_t size);

#endif
