/* SPDX-License-Identifier: MIT */
/* Domain names in U-labels to the A-labels DNS knows (IDNA2008). */
#ifndef PETREL_QUEUE_RELAY_IDN_H
#define PETREL_QUEUE_RELAY_IDN_H

#include <stdbool.h>
#include <stddef.h>

/**
 * Write the DNS form of @p domain into @p out (@p cap bytes): an ASCII
 * name is copied as it is; one with UTF-8 U-labels ("bücher.test", from
 * SMTPUTF8 mail) becomes A-labels ("xn--bcher-kva.test") by IDNA2008
 * with UTS #46 non-transitional mapping (libidn2).
 * @return true, or false with *@p why set (static text) when the name is
 *         not a valid IDN or does not fit.
 */
bool relay_idn_to_ascii(const char *domain, char *out, size_t cap,
                        const char **why);

#endif
