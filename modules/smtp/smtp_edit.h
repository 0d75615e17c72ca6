/* SPDX-License-Identifier: MIT */
/* Header edits from filters: rewriting a spool file's header section. */
#ifndef PETREL_SMTP_EDIT_H
#define PETREL_SMTP_EDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A header edit kept for delivery. */
struct smtp_edit {
	int op; /* enum ptl_filter_header_op, or SMTP_EDIT_REMOVE_AUTHSERV */
	const char *name;
	const char *value; /* REPLACE: the body; REMOVE_AUTHSERV: the id */
	unsigned index;    /* 1-based; 0: every field of that name */
};

/* Remove the `name` fields whose first token (an RFC 8601 authserv-id)
 * equals `value`, case-insensitively. */
#define SMTP_EDIT_REMOVE_AUTHSERV 100

/* Longest field inspected whole (REMOVE_AUTHSERV); longer ones stay. */
#define SMTP_EDIT_FIELD_MAX 8192

/**
 * Copy @p size bytes of @p in_fd to @p out_fd (from offset 0, with
 * pread/write), applying the REMOVE, REPLACE and REMOVE_AUTHSERV edits to
 * the header section that starts at @p header_offset (bytes before it
 * are copied as they are). Streams: memory stays bounded whatever the
 * message. With @p out_fd -1 nothing is written: it only tells through
 * @p changed_out whether the edits change anything. Blocking: call on a
 * pool thread.
 * @return PTL_OK with *@p out_size (bytes written), or PTL_ERROR with
 * errno set.
 */
int smtp_edit_rewrite(int in_fd, uint64_t size, uint64_t header_offset,
                      int out_fd, const struct smtp_edit *edits, size_t nedits,
                      uint64_t *out_size, bool *changed_out);

#endif
