/* SPDX-License-Identifier: MIT */
/* Internal: master supervision, workers, helpers, privileges. */
#ifndef PETREL_CORE_PROCESS_H
#define PETREL_CORE_PROCESS_H

#include <stdbool.h>
#include <petrel/petrel.h>

struct ptl_cycle;

/* Run the master: bind, fork, supervise, reload. Returns the exit code. */
int ptl_master_run(struct ptl_cycle *cycle);
/* Run everything in this one process (-f). Returns the exit code. */
int ptl_single_run(struct ptl_cycle *cycle);
/* Switch to the configured user/group; no-op when not root. */
int ptl_privs_drop(const struct ptl_cycle *cycle, struct ptl_error *err);
/* Set the process kind reported by ptl_process_kind(). */
void ptl_process_set_kind(enum ptl_process_kind kind, unsigned worker_index);

#endif
