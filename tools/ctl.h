/* SPDX-License-Identifier: MIT */
/* petrelctl internals: exit codes, safe file edits, password input. */
#ifndef PETREL_CTL_H
#define PETREL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <petrel/core.h>

/* Exit codes of petrelctl. */
#define CTL_EXIT_OK    0
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2

/* Print "petrelctl: MESSAGE" on stderr. */
void ctl_error(const char *fmt, ...) PTL_PRINTF(1, 2);

/* A file being edited: its text, its mode and owner, its lock. */
struct ctl_file {
	const char *path;
	char *text; /* NUL-terminated; "" when the file does not exist */
	size_t len;
	bool exists;
	struct stat st; /* when it exists */
	int lock_fd;    /* -1: not locked */
};

/* Initialize @f for @path (no I/O). */
void ctl_file_init(struct ctl_file *f, const char *path);

/*
 * Take the exclusive lock PATH.lock (created when missing), waiting for
 * another petrelctl to finish. Every edit holds it from reading the file
 * to renaming the new one, so no two edits lose each other's changes.
 * @return 0 or -1 (message printed).
 */
int ctl_file_lock(struct ctl_file *f);

/*
 * Read the whole file (a missing file reads as empty when @may_be_missing).
 * @return 0 or -1 (message printed).
 */
int ctl_file_read(struct ctl_file *f, bool may_be_missing);

/*
 * Replace the file by @text: write PATH.tmp.XXXXXX in the same directory
 * with the old mode and owner (0640 for a new file), fsync it, rename it
 * over PATH, fsync the directory.
 * @return 0 or -1 (message printed; the old file is untouched).
 */
int ctl_file_replace(struct ctl_file *f, const char *text, size_t len);

/* Free the text and release the lock. */
void ctl_file_close(struct ctl_file *f);

/*
 * Read a password: from the terminal without echo (twice when
 * @confirm), or one line of stdin when it is not a terminal.
 * @return its length, or -1 (message printed).
 */
int ctl_password_read(bool confirm, char *out, size_t out_size);

/* `petrelctl user ...`: @argv[0] is the verb. @return an exit code. */
int ctl_user_main(const char *file, int argc, char **argv);

#endif
