/* SPDX-License-Identifier: MIT */
/* Failed AUTH attempts per client address, remembered across connections. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_authfail.h"

/* Slots probed per address: a small neighbourhood keeps lookups O(1). */
#define AUTHFAIL_PROBES 8
/* Longest address text (an IPv6 address). */
#define AUTHFAIL_IP_MAX 46

struct authfail_slot {
	char ip[AUTHFAIL_IP_MAX];
	unsigned count;
	int64_t last_ms;
};

struct smtp_authfail {
	struct authfail_slot slots[SMTP_AUTHFAIL_SLOTS];
};

struct smtp_authfail *
smtp_authfail_new(void)
{
	return calloc(1, sizeof(struct smtp_authfail));
}

void
smtp_authfail_free(struct smtp_authfail *t)
{
	free(t);
}

/* FNV-1a: the key is a short string; an attacker choosing addresses can
 * at worst evict its own entries, since eviction takes the oldest. */
static size_t
authfail_hash(const char *ip)
{
	uint32_t h = 2166136261u;

	for (; *ip != '\0'; ip++) {
		h ^= (unsigned char)*ip;
		h *= 16777619u;
	}
	return h % SMTP_AUTHFAIL_SLOTS;
}

static struct authfail_slot *
authfail_find(struct smtp_authfail *t, const char *ip, int64_t now_ms,
              bool create)
{
	struct authfail_slot *slot, *victim = NULL;
	size_t h = authfail_hash(ip), i;

	if (strlen(ip) >= AUTHFAIL_IP_MAX)
		return NULL;
	for (i = 0; i < AUTHFAIL_PROBES; i++) {
		slot = &t->slots[(h + i) % SMTP_AUTHFAIL_SLOTS];
		if (slot->count > 0 &&
		    now_ms - slot->last_ms > SMTP_AUTHFAIL_WINDOW_MS)
			slot->count = 0;
		if (slot->count > 0 && strcmp(slot->ip, ip) == 0)
			return slot;
		if (victim == NULL || slot->count == 0 ||
		    (victim->count > 0 && slot->last_ms < victim->last_ms))
			victim = slot;
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	strcpy(victim->ip, ip);
	return victim;
}

unsigned
smtp_authfail_count(struct smtp_authfail *t, const char *ip, int64_t now_ms)
{
	struct authfail_slot *slot = authfail_find(t, ip, now_ms, false);

	return slot != NULL ? slot->count : 0;
}

unsigned
smtp_authfail_add(struct smtp_authfail *t, const char *ip, int64_t now_ms)
{
	struct authfail_slot *slot = authfail_find(t, ip, now_ms, true);

	if (slot == NULL)
		return 0;
	if (slot->count < 1000000)
		slot->count++;
	slot->last_ms = now_ms;
	return slot->count;
}

void
smtp_authfail_clear(struct smtp_authfail *t, const char *ip)
{
	struct authfail_slot *slot = authfail_find(t, ip, INT64_MIN / 2, false);

	if (slot != NULL)
		slot->count = 0;
}
