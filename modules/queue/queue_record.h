/* SPDX-License-Identifier: MIT */
/* Length-framed records of queue files: "KEY LEN:VALUE\n", and CRC-32. */
#ifndef PETREL_QUEUE_RECORD_H
#define PETREL_QUEUE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every queue file (envelope, state log, petrelctl request) is a sequence
 * of records
 *
 *     KEY SP LEN ":" VALUE LF
 *
 * KEY is 1 to 16 of [A-Z0-9_], LEN the decimal byte count of VALUE (no
 * leading zeros), VALUE any bytes. The reader never looks for a line end:
 * the LF after VALUE is only checked, so a CR, LF or NUL inside a value
 * (an envelope address, a remote reply) can never start a record of its
 * own (SECURITY.md #5, Exim CVE-2020-28021). This file has no dependency
 * on the core: petrelctl compiles it too.
 */

#define QREC_KEY_MAX 16
/* Largest value accepted by the reader and the writer. */
#define QREC_VALUE_MAX ((size_t)16 * 1024 * 1024)

/** A growable output buffer with a hard capacity. */
struct qrec_buf {
	char *data;
	size_t len;
	size_t cap;   /* allocated */
	size_t limit; /* never grows past this */
	bool failed;  /* out of memory or over the limit: the content is
	                 incomplete and must not be written */
};

/** Start an empty buffer that may grow to @p limit bytes. */
void qrec_buf_init(struct qrec_buf *b, size_t limit);
/** Free the storage and reset. */
void qrec_buf_free(struct qrec_buf *b);
/** Drop the content, keep the storage. */
void qrec_buf_reset(struct qrec_buf *b);
/** Append raw bytes (no framing). */
void qrec_buf_raw(struct qrec_buf *b, const void *p, size_t len);

/** Append one record with a @p len byte value. */
void qrec_put(struct qrec_buf *b, const char *key, const void *value,
              size_t len);
/** Append a record whose value is the string @p s (nothing when NULL). */
void qrec_put_str(struct qrec_buf *b, const char *key, const char *s);
/** Append a record whose value is @p v in decimal. */
void qrec_put_u64(struct qrec_buf *b, const char *key, uint64_t v);
void qrec_put_i64(struct qrec_buf *b, const char *key, int64_t v);

/** One parsed record; key and value point into the input. */
struct qrec {
	const char *key;
	size_t key_len;
	const char *value;
	size_t len;
};

/** Results of qrec_next(). */
enum qrec_result {
	QREC_RECORD = 1, /* a record; *used_out bytes consumed */
	QREC_END = 0,    /* no bytes left */
	QREC_BAD = -1,   /* not a record */
	QREC_SHORT = -2, /* a valid beginning cut off (torn write) */
};

/** Parse the record at the start of @p p (@p avail bytes). */
enum qrec_result qrec_next(const char *p, size_t avail, struct qrec *r,
                           size_t *used_out);

/** Whether @p r has key @p key. */
bool qrec_is(const struct qrec *r, const char *key);

/**
 * The value as an unsigned decimal that fits @p max.
 * @return true, or false when it is not one.
 */
bool qrec_u64(const struct qrec *r, uint64_t max, uint64_t *out);
/** The value as a signed decimal ("-" allowed). */
bool qrec_i64(const struct qrec *r, int64_t *out);
/** Whether the value contains no NUL byte (usable as a C string). */
bool qrec_is_text(const struct qrec *r);

/** CRC-32 (IEEE 802.3, as zlib): start with crc 0. */
uint32_t qrec_crc32(uint32_t crc, const void *p, size_t len);

#endif
