/* SPDX-License-Identifier: MIT */
/* Internal: helpers shared by the config parser, value parsers and docs. */
#ifndef PETREL_CORE_CONF_INTERNAL_H
#define PETREL_CORE_CONF_INTERNAL_H

#include <stdbool.h>
#include <petrel/config.h>

#define CONF_HINT_SIZE                                                         \
	"expected a size such as \"512\", \"10k\", \"25M\" or \"1G\""
#define CONF_HINT_DURATION                                                     \
	"expected a duration such as \"250ms\", \"30s\", \"5m\", \"4h\" or "   \
	"\"5d\""
#define CONF_HINT_ADDRESS "expected \"host:port\""

/* Only a key table that refers to itself nests this deep. */
#define CONF_DEPTH_MAX 32

/* Whether a key has min/max bounds (both zero: none). */
static inline bool
conf_bounded(const struct ptl_conf_key *k)
{
	return k->min != 0 || k->max != 0;
}

/* "10M" when exact in a binary unit, else plain bytes. */
void ptl_conf_format_size(char *out, size_t size, int64_t bytes);
/* "5m" when exact in a unit, else milliseconds. */
void ptl_conf_format_duration(char *out, size_t size, int64_t ms);
/* Name of a value type in docs and messages ("duration"). */
const char *ptl_conf_type_name(enum ptl_conf_type type);

#endif
