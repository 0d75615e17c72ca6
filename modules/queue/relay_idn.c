/* SPDX-License-Identifier: MIT */
/* U-label domains to A-labels for DNS lookups, with libidn2. */
#include <idn2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "relay_idn.h"

/*
 * Punycode and the IDNA2008 rules (NFC, contextual rules, bidi, UTS #46
 * mapping) are left to libidn2: a well-kept library gets the corner cases
 * right that a hand-written converter would miss.
 */

static bool
idn_is_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s >= 0x80)
			return false;
	}
	return true;
}

bool
relay_idn_to_ascii(const char *domain, char *out, size_t cap, const char **why)
{
	uint8_t *ascii = NULL;
	size_t len;
	int rc;

	if (idn_is_ascii(domain)) {
		len = strlen(domain);
		if (len >= cap) {
			*why = "domain name too long";
			return false;
		}
		memcpy(out, domain, len + 1);
		return true;
	}
	rc = idn2_lookup_u8((const uint8_t *)domain, &ascii,
	                    IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		*why = idn2_strerror(rc);
		return false;
	}
	len = strlen((const char *)ascii);
	if (len >= cap) {
		idn2_free(ascii);
		*why = "domain name too long";
		return false;
	}
	memcpy(out, ascii, len + 1);
	idn2_free(ascii);
	return true;
}
