/* SPDX-License-Identifier: MIT */
/* Storage backend suite: checks shared by the generic and backend tests. */
#ifndef PETREL_TESTS_STORAGE_SUITE_TESTS_H
#define PETREL_TESTS_STORAGE_SUITE_TESTS_H

#include "harness.h"

/* storage_suite.c */
void suite_reload(const json_t *extra);
void expect_ok(struct st_result r);
void expect_message(struct ptl_mailbox *mb, size_t index, const char *prefix,
                    uint32_t seed, uint64_t size);
size_t expect_count(const char *user, size_t want);

/* backend_tests.c: checks only one backend can answer; others skip. */
void test_maildir_layout(void **state);
void test_maildir_unsafe_users(void **state);
void test_maildir_missing_subdirs(void **state);
void test_maildir_foreign_files(void **state);
void test_sqlite_corrupt(void **state);
void test_sqlite_layout(void **state);

#endif
