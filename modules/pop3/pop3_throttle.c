/* SPDX-License-Identifier: MIT */
/* Failed POP3 logins per client address, remembered across connections. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "pop3.h"

/*
 * The table lives in one worker process: a client spread over several
 * workers is counted in each of them separately (docs/pop3.md says so).
 * It is set-associative with a fixed size, so a flood of addresses costs
 * no memory, only evictions within one set.
 */

struct pop3_throttle_entry {
	uint8_t key[16]; /* the address, IPv6 reduced to its /64 */
	unsigned failures;
	int64_t last_ms; /* 0: free slot */
};

struct pop3_throttle {
	int64_t window_ms;
	uint32_t seed; /* per process, so collisions cannot be planned */
	struct pop3_throttle_entry slots[POP3_THROTTLE_SETS]
	                                [POP3_THROTTLE_WAYS];
};

struct pop3_throttle *
pop3_throttle_new(int64_t window_ms)
{
	struct pop3_throttle *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->window_ms = window_ms > 0 ? window_ms : 1;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(t->seed))
		t->seed = (uint32_t)(uintptr_t)t ^ (uint32_t)ptl_now_ms();
	return t;
}

void
pop3_throttle_free(struct pop3_throttle *t)
{
	free(t);
}

/*
 * An IPv6 client usually owns a whole /64: counting single addresses
 * would let it try each password from a fresh one.
 */
static bool
pop3_throttle_key(const char *ip, uint8_t key[16])
{
	struct in6_addr a6;
	struct in_addr a4;

	memset(key, 0, 16);
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		key[10] = 0xff;
		key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
		return true;
	}
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return false;
	memcpy(key, &a6, 16);
	if (!IN6_IS_ADDR_V4MAPPED(&a6))
		memset(key + 8, 0, 8);
	return true;
}

static struct pop3_throttle_entry *
pop3_throttle_set(struct pop3_throttle *t, const uint8_t key[16])
{
	uint32_t h = 2166136261u ^ t->seed;
	size_t i;

	for (i = 0; i < 16; i++) {
		h ^= key[i];
		h *= 16777619u;
	}
	return t->slots[h % POP3_THROTTLE_SETS];
}

static struct pop3_throttle_entry *
pop3_throttle_find(struct pop3_throttle *t, const uint8_t key[16],
                   int64_t now_ms)
{
	struct pop3_throttle_entry *set = pop3_throttle_set(t, key);
	size_t i;

	for (i = 0; i < POP3_THROTTLE_WAYS; i++) {
		struct pop3_throttle_entry *e = &set[i];

		if (e->last_ms == 0 || memcmp(e->key, key, 16) != 0)
			continue;
		if (now_ms - e->last_ms >= t->window_ms) {
			e->last_ms = 0;
			e->failures = 0;
			return NULL;
		}
		return e;
	}
	return NULL;
}

unsigned
pop3_throttle_count(struct pop3_throttle *t, const char *ip, int64_t now_ms)
{
	struct pop3_throttle_entry *e;
	uint8_t key[16];

	if (t == NULL || !pop3_throttle_key(ip, key))
		return 0;
	e = pop3_throttle_find(t, key, now_ms);
	return e != NULL ? e->failures : 0;
}

unsigned
pop3_throttle_add(struct pop3_throttle *t, const char *ip, int64_t now_ms)
{
	struct pop3_throttle_entry *e, *set, *victim;
	uint8_t key[16];
	size_t i;

	if (t == NULL || !pop3_throttle_key(ip, key))
		return 0;
	if (now_ms <= 0)
		now_ms = 1;
	e = pop3_throttle_find(t, key, now_ms);
	if (e == NULL) {
		set = pop3_throttle_set(t, key);
		victim = &set[0];
		for (i = 0; i < POP3_THROTTLE_WAYS; i++) {
			if (set[i].last_ms == 0 ||
			    now_ms - set[i].last_ms >= t->window_ms) {
				victim = &set[i];
				break;
			}
			if (set[i].last_ms < victim->last_ms)
				victim = &set[i];
		}
		e = victim;
		memcpy(e->key, key, 16);
		e->failures = 0;
	}
	if (e->failures < 1000000)
		e->failures++;
	e->last_ms = now_ms;
	return e->failures;
}

int64_t
pop3_throttle_delay(int64_t base_ms, int64_t max_ms, unsigned failures)
{
	int64_t d = base_ms;
	unsigned i;

	if (failures == 0 || base_ms <= 0)
		return 0;
	for (i = 1; i < failures && d < max_ms; i++)
		d *= 2;
	return d < max_ms ? d : max_ms;
}
