/* SPDX-License-Identifier: MIT */
/* Markdown reference of config key tables (petrel --keys). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <petrel/config.h>

#include "core/conf_doc.h"
#include "core/conf_internal.h"

const char *
ptl_conf_type_name(enum ptl_conf_type type)
{
	switch (type) {
	case PTL_CONF_STRING:
		return "string";
	case PTL_CONF_INT:
		return "integer";
	case PTL_CONF_BOOL:
		return "boolean";
	case PTL_CONF_SIZE:
		return "size";
	case PTL_CONF_DURATION:
		return "duration";
	case PTL_CONF_ENUM:
		return "enum";
	case PTL_CONF_STRING_LIST:
		return "list of strings";
	case PTL_CONF_OBJECT:
		return "object";
	case PTL_CONF_OBJECT_LIST:
		return "list of objects";
	case PTL_CONF_ADDRESS:
		return "address";
	case PTL_CONF_JSON:
		return "JSON";
	}
	return "?";
}

/* Table cell text: a '|' or a line break would end the cell or the row. */
static void
conf_doc_cell(FILE *out, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		if (*s == '|')
			fputs("\\|", out);
		else if (*s == '\n' || *s == '\r')
			fputc(' ', out);
		else
			fputc(*s, out);
	}
}

static void
conf_doc_bounds(FILE *out, const struct ptl_conf_key *k)
{
	char lo[32], hi[32];

	if (!conf_bounded(k))
		return;
	switch (k->type) {
	case PTL_CONF_INT:
		fprintf(out, "%" PRId64 "..%" PRId64, k->min, k->max);
		break;
	case PTL_CONF_SIZE:
		ptl_conf_format_size(lo, sizeof(lo), k->min);
		ptl_conf_format_size(hi, sizeof(hi), k->max);
		fprintf(out, "%s..%s", lo, hi);
		break;
	case PTL_CONF_DURATION:
		ptl_conf_format_duration(lo, sizeof(lo), k->min);
		ptl_conf_format_duration(hi, sizeof(hi), k->max);
		fprintf(out, "%s..%s", lo, hi);
		break;
	case PTL_CONF_STRING_LIST:
	case PTL_CONF_OBJECT_LIST:
		fprintf(out, "%" PRId64 "..%" PRId64 " items", k->min, k->max);
		break;
	default:
		break;
	}
}

static void
conf_doc_rows(FILE *out, const char *prefix, const struct ptl_conf_key *keys,
              unsigned depth)
{
	const struct ptl_conf_key *k;
	char name[PTL_ERROR_PATH_MAX];
	size_t i;

	if (depth > CONF_DEPTH_MAX)
		return;
	for (k = keys; k->name != NULL; k++) {
		(void)snprintf(name, sizeof(name), "%s%s", prefix, k->name);
		fprintf(out, "| `%s` | %s", name, ptl_conf_type_name(k->type));
		if (k->type == PTL_CONF_ENUM && k->enum_names != NULL) {
			fputs(": ", out);
			for (i = 0; k->enum_names[i] != NULL; i++)
				fprintf(out, "%s`%s`", i > 0 ? ", " : "",
				        k->enum_names[i]);
		}
		fputs(" | ", out);
		if (k->def != NULL) {
			fputs("`", out);
			conf_doc_cell(out, k->def);
			fputs("`", out);
		}
		fputs(" | ", out);
		fputs(k->flags & PTL_CONF_REQUIRED ? "yes" : "no", out);
		fputs(" | ", out);
		conf_doc_bounds(out, k);
		fputs(" | ", out);
		conf_doc_cell(out, k->doc);
		fputs(" |\n", out);
		if (k->sub == NULL)
			continue;
		if (k->type == PTL_CONF_OBJECT) {
			(void)snprintf(name, sizeof(name), "%s%s.", prefix,
			               k->name);
			conf_doc_rows(out, name, k->sub, depth + 1);
		} else if (k->type == PTL_CONF_OBJECT_LIST) {
			(void)snprintf(name, sizeof(name), "%s%s[].", prefix,
			               k->name);
			conf_doc_rows(out, name, k->sub, depth + 1);
		}
	}
}

int
ptl_conf_doc_markdown(FILE *out, const char *section_path,
                      const struct ptl_conf_key *keys)
{
	if (out == NULL || keys == NULL)
		return PTL_ERROR;
	if (section_path != NULL && section_path[0] != '\0')
		fprintf(out, "### `%s`\n\n", section_path);
	fputs("| Key | Type | Default | Required | Bounds | Description |\n"
	      "|---|---|---|---|---|---|\n",
	      out);
	conf_doc_rows(out, "", keys, 0);
	fputc('\n', out);
	return ferror(out) ? PTL_ERROR : PTL_OK;
}
