/* SPDX-License-Identifier: MIT */
/* Internal: generating reference documentation from config key tables. */
#ifndef PETREL_CORE_CONF_DOC_H
#define PETREL_CORE_CONF_DOC_H

#include <stdio.h>
#include <petrel/config.h>

/*
 * Print a markdown table of @keys (name, type, default, required, bounds,
 * description) to @out, preceded by a "### `section_path`" heading when
 * @section_path is neither NULL nor empty. Keys of OBJECT sub-tables appear
 * as "tls.cert", those of OBJECT_LIST as "listen[].address".
 * Returns PTL_OK, or PTL_ERROR when writing to @out failed.
 */
int ptl_conf_doc_markdown(FILE *out, const char *section_path,
                          const struct ptl_conf_key *keys);

#endif
