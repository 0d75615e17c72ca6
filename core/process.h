/* SPDX-License-Identifier: MIT */
/* Internal: master supervision, workers, helpers, privileges. */
#ifndef PETREL_CORE_PROCESS_H
#define PETREL_CORE_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>
#include <petrel/petrel.h>

struct ptl_cycle;
struct ptl_helper_decl;

/*
 * This process's pid, kept up to date across fork() (the log line, the
 * task pool's fork check and connection ids ask for it constantly).
 */
pid_t ptl_self_pid(void);

/* Run the master: bind, fork, supervise, reload. Returns the exit code. */
int ptl_master_run(struct ptl_cycle *cycle);
/*
 * The -M argument (NULL when not given), passed again to ptl_cycle_load()
 * on each reload so that a reload reads modules from where startup did.
 */
void ptl_master_set_module_dir(const char *module_dir);
/* Run everything in this one process (-f). Returns the exit code. */
int ptl_single_run(struct ptl_cycle *cycle);
/* Switch to the configured user/group; no-op when not root. */
int ptl_privs_drop(const struct ptl_cycle *cycle, struct ptl_error *err);
/* Set the process kind reported by ptl_process_kind(). */
void ptl_process_set_kind(enum ptl_process_kind kind, unsigned worker_index);

/*
 * Master and single process, before binding: resolve server.user and
 * server.group (as root: both must exist and the user must not be uid 0)
 * and check that server.chroot is a directory. Not root: logs once that
 * user/group are ignored. Errors carry the JSON path ("server.user").
 */
int ptl_privs_check(const struct ptl_cycle *cycle, struct ptl_error *err);
/*
 * Master and single process, before binding: create server.state_dir
 * (mkdir -p, mode 0750) and, as root, give it to server.user/group so
 * that workers can write there after the privilege drop.
 */
int ptl_privs_prepare_state_dir(const struct ptl_cycle *cycle,
                                struct ptl_error *err);
/*
 * Master, as root, after it (re)opened a log file it may have created:
 * give the file to server.user so that workers can reopen it on SIGUSR1
 * after the privilege drop. Only a regular, singly linked file owned by
 * root is changed. No-op when not root or not logging to a file.
 */
int ptl_privs_share_log(const struct ptl_cycle *cycle, struct ptl_error *err);

/*
 * Master and single process start-up, in this order: ptl_privs_check(),
 * state directory, pid file check, ptl_cycle_init_master(), bind every
 * listener, write the pid file. On failure what was done is undone except
 * init_master: *@inited_out says whether ptl_cycle_free() must run
 * fini_master.
 */
int ptl_master_setup(struct ptl_cycle *cycle, bool *inited_out,
                     struct ptl_error *err);
/*
 * SIGHUP in the master: read old's file again with the same checks as -t,
 * number it old->generation + 1, run init_master and the modules' reload
 * callbacks, bind (taking over old's sockets with the same address). On
 * PTL_ERROR nothing changed and ptl_cycle_current is @old again.
 */
int ptl_generation_prepare(struct ptl_cycle *old, struct ptl_cycle **cycle_out,
                           struct ptl_error *err);
/* ptl_privs_share_log(), logging a failure as a warning. */
void ptl_master_share_log(const struct ptl_cycle *cycle);
/*
 * Log @err (formatted like `petrel -t` does) at error level after the
 * prefix @what; with an empty prefix (a start-up failure) it also goes to
 * stderr when the log is elsewhere.
 */
void ptl_master_report(const struct ptl_cycle *cycle, const char *what,
                       const struct ptl_error *err);

/*
 * In a child right after fork(), with every signal blocked: become worker
 * @index or the helper @helper of @cycle, run until told to stop, and
 * return the exit status. @master_pid is the parent (for the death check).
 */
int ptl_child_run(struct ptl_cycle *cycle, enum ptl_process_kind kind,
                  unsigned index, struct ptl_helper_decl *helper,
                  pid_t master_pid);

/*
 * The pid file. check: PTL_ERROR when @path names a live petrel master
 * (or single process) other than this one; a stale file is fine.
 * write: "PID\n" through a temporary file and rename(), so a crash never
 * leaves a half-written file. remove: unlink if it still names us.
 */
int ptl_pidfile_check(const char *path, struct ptl_error *err);
int ptl_pidfile_write(const char *path, struct ptl_error *err);
void ptl_pidfile_remove(const char *path);

#endif
