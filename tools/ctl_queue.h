/* SPDX-License-Identifier: MIT */
/* petrelctl queue: the spool commands (ctl_queue.c). */
#ifndef PETREL_CTL_QUEUE_H
#define PETREL_CTL_QUEUE_H

/*
 * `petrelctl queue ...` on the spool at @qdir: @argv[0] is the verb
 * (list, show ID, flush [ID], retry ID, delete ID).
 * @return an exit code (CTL_EXIT_*); CTL_EXIT_USAGE prints the usage.
 */
int ctl_queue_main(const char *qdir, int argc, char **argv);

#endif
