/* SPDX-License-Identifier: MIT */
/* Greylisting decisions: triplet keys and the state of one entry. */
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "greylist_triplet.h"

/* Triplet entry values. */
#define GL_T_STATE  0 /* GL_STATE_GREY or GL_STATE_WHITE */
#define GL_T_FIRST  1 /* first seen (ms) */
#define GL_T_LAST   2 /* last seen (ms) */
#define GL_T_PASSES 3 /* messages passed while whitelisted */

#define GL_STATE_GREY  1
#define GL_STATE_WHITE 2

/* Network entry values. */
#define GL_N_PASSED 0 /* triplets of this network that passed */
#define GL_N_WHITE  1 /* 1: the whole network is whitelisted */

enum gl_outcome
gl_triplet_step(const struct gl_times *t, struct policy_slot *slot, bool fresh,
                int64_t now, int64_t *wait_ms_out)
{
	int64_t elapsed;

	*wait_ms_out = 0;
	if (fresh || (slot->val[GL_T_STATE] != GL_STATE_GREY &&
	              slot->val[GL_T_STATE] != GL_STATE_WHITE)) {
		slot->val[GL_T_STATE] = GL_STATE_GREY;
		slot->val[GL_T_FIRST] = now;
		slot->val[GL_T_LAST] = now;
		slot->val[GL_T_PASSES] = 0;
		slot->expires = now + t->retry_window;
		*wait_ms_out = t->delay;
		return GL_NEW;
	}
	slot->val[GL_T_LAST] = now;
	if (slot->val[GL_T_STATE] == GL_STATE_WHITE) {
		slot->val[GL_T_PASSES]++;
		slot->expires = now + t->whitelist_expiry;
		return GL_KNOWN;
	}
	/* A clock set back must not make the wait longer than the delay. */
	elapsed = now - slot->val[GL_T_FIRST];
	if (elapsed < 0) {
		slot->val[GL_T_FIRST] = now;
		elapsed = 0;
	}
	if (elapsed < t->delay) {
		*wait_ms_out = t->delay - elapsed;
		return GL_EARLY;
	}
	slot->val[GL_T_STATE] = GL_STATE_WHITE;
	slot->val[GL_T_PASSES] = 1;
	slot->expires = now + t->whitelist_expiry;
	*wait_ms_out = elapsed;
	return GL_PASSED;
}

bool
gl_net_passed(const struct gl_times *t, int64_t needed,
              struct policy_slot *slot, bool fresh, int64_t now)
{
	if (fresh) {
		slot->val[GL_N_PASSED] = 0;
		slot->val[GL_N_WHITE] = 0;
	}
	slot->val[GL_N_PASSED]++;
	if (slot->val[GL_N_PASSED] >= needed)
		slot->val[GL_N_WHITE] = 1;
	slot->expires = now + t->whitelist_expiry;
	return slot->val[GL_N_WHITE] == 1;
}

bool
gl_net_whitelisted(const struct gl_times *t, struct policy_slot *slot,
                   int64_t now)
{
	if (slot->val[GL_N_WHITE] != 1)
		return false;
	slot->expires = now + t->whitelist_expiry;
	return true;
}

size_t
gl_normalize_sender(const char *sender, char *out, size_t size)
{
	const char *at = strrchr(sender, '@');
	const char *local = sender, *p, *eq;
	size_t n = 0, prefix = 0;

	if (size == 0)
		return 0;
	/* BATV (draft-levine-smtp-batv): "prvs=TAG=local@domain". */
	if (at != NULL && strncasecmp(local, "prvs=", 5) == 0)
		prefix = 5;
	else if (at != NULL && strncasecmp(local, "msprvs1=", 8) == 0)
		prefix = 8;
	if (prefix > 0) {
		/* The prefix has no '@': the last '@' is after it. */
		eq = memchr(local + prefix, '=', (size_t)(at - local) - prefix);
		if (eq != NULL)
			local = eq + 1;
	}
	for (p = local; *p != '\0' && n + 1 < size; p++) {
		char c = *p;

		if (at != NULL && p < at && c >= '0' && c <= '9') {
			if (n == 0 || out[n - 1] != '#')
				out[n++] = '#';
			continue;
		}
		out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	out[n] = '\0';
	return n;
}

static size_t
gl_put(char *out, size_t size, size_t at, const char *s, size_t len)
{
	if (at == 0 || at + len + 1 > size)
		return 0;
	memcpy(out + at, s, len);
	out[at + len] = '\0';
	return at + len + 1;
}

size_t
gl_net_bytes(const struct policy_ip *ip, unsigned v4_bits, unsigned v6_bits,
             char *out, size_t size)
{
	char net[POLICY_IP_TEXT_MAX];
	struct policy_ip masked = *ip;

	policy_ip_mask(&masked, v4_bits, v6_bits);
	(void)policy_ip_format(&masked,
	                       ip->family == AF_INET ? v4_bits : v6_bits, net,
	                       sizeof(net));
	if (size < 2)
		return 0;
	out[0] = 'n';
	out[1] = '\0';
	return gl_put(out, size, 2, net, strlen(net));
}

size_t
gl_triplet_bytes(const struct policy_ip *ip, unsigned v4_bits, unsigned v6_bits,
                 const char *sender, const char *rcpt, char *out, size_t size)
{
	char norm[512];
	size_t n, len;

	n = gl_net_bytes(ip, v4_bits, v6_bits, out, size);
	if (n == 0)
		return 0;
	out[0] = 't';
	len = gl_normalize_sender(sender, norm, sizeof(norm));
	n = gl_put(out, size, n, norm, len);
	len = policy_lower(norm, sizeof(norm), rcpt);
	return gl_put(out, size, n, norm, len);
}

bool
gl_domain_listed(const struct ptl_conf_list *domains, const char *address)
{
	const char *const *items = domains->items;
	const char *at = strrchr(address, '@');
	const char *domain = at != NULL ? at + 1 : address;
	size_t dlen = strlen(domain), wlen, i;

	if (dlen > 0 && domain[dlen - 1] == '.')
		dlen--;
	for (i = 0; i < domains->count; i++) {
		const char *w = items[i];

		wlen = strlen(w);
		if (wlen > 0 && w[wlen - 1] == '.')
			wlen--;
		if (wlen == 0 || wlen > dlen)
			continue;
		if (strncasecmp(domain + dlen - wlen, w, wlen) != 0)
			continue;
		if (wlen == dlen || domain[dlen - wlen - 1] == '.')
			return true;
	}
	return false;
}
