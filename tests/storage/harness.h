/* SPDX-License-Identifier: MIT */
/* Storage backend suite: loading a backend through the core, sync calls. */
#ifndef PETREL_TESTS_STORAGE_HARNESS_H
#define PETREL_TESTS_STORAGE_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include <petrel/petrel.h>

/* Bytes of the "X-Seq: xxxxxxxx\r\n" header that starts every test message. */
#define SUITE_SEQ_HEADER 17

/* What the suite runs against, set once by main(). */
struct suite_setup {
	char module_path[PATH_MAX]; /* absolute .so */
	char module_dir[PATH_MAX];
	char name[64];   /* module name: the config key */
	json_t *section; /* the backend's config section */
	char self_exe[PATH_MAX];
	char base_dir[PATH_MAX]; /* scratch root of this run */
	char log_path[PATH_MAX];
	bool root;
	bool dac_dropped; /* root without CAP_DAC_OVERRIDE: modes apply */
};
extern struct suite_setup suite;

/* Result of one synchronous storage call. */
struct st_result {
	enum ptl_storage_status status;
	char reason[256];
	int rc; /* what the method returned: PTL_AGAIN, or PTL_ERROR */
};

/* The loaded backend's storage service. */
extern const struct ptl_storage_methods *st;
extern void *st_inst;

/* harness.c */
int harness_prepare(void);
int harness_child_main(int argc, char **argv);
int harness_load(const json_t *extra, char *why, size_t whysz);
void harness_unload(void);
const char *harness_user(const char *tag);
int harness_test_dir(const char *name);
void harness_leave_dir(void);
void harness_chmod_tree(const char *path, bool writable);
void harness_remove_tree(const char *path);
size_t harness_tmp_leftovers(const char *path);
long harness_log_mark(void);
bool harness_log_has(long mark, const char *needle1, const char *needle2);
int harness_child_open_lock(const char *user);
void harness_tap_filter_start(void);
void harness_tap_filter_finish(void);

/* Test messages: X-Seq header, then bytes derived from seed and offset. */
unsigned char msg_byte(uint32_t seed, uint64_t i);
int msg_source(uint32_t seed, uint64_t size);
void msg_expect_fd(int fd, const char *prefix, size_t prefix_len, uint32_t seed,
                   uint64_t size);
int msg_seed_of_fd(int fd, uint32_t *seed_out);

/* Synchronous wrappers: run the loop until the completion came. */
struct st_result st_deliver_fd(const char *user, int fd, uint64_t size,
                               const char *prefix, size_t prefix_len);
struct st_result st_deliver(const char *user, uint32_t seed, uint64_t size,
                            const char *prefix);
struct st_result st_open(const char *user, unsigned flags,
                         struct ptl_mailbox **mb_out);
struct st_result st_read(struct ptl_mailbox *mb, size_t index, int *fd_out);
struct st_result st_expunge(struct ptl_mailbox *mb, const size_t *indexes,
                            size_t n);
struct st_result st_quota(const char *user, uint64_t *used, uint64_t *limit);

/* Asynchronous building blocks for the concurrency test. */
extern unsigned suite_pending;
void suite_run_pending(void);

#endif
