/* SPDX-License-Identifier: MIT */
/* This process's pid, cached: getpid() is a system call, asked per message. */
#include <pthread.h>
#include <unistd.h>

#include "core/process.h"

static pid_t self_pid;
static pthread_once_t self_once = PTHREAD_ONCE_INIT;

/* Every fork(), ours or a library's, gives the child a pid of its own. */
static void
self_after_fork(void)
{
	self_pid = getpid();
}

static void
self_init(void)
{
	self_pid = getpid();
	(void)pthread_atfork(NULL, NULL, self_after_fork);
}

pid_t
ptl_self_pid(void)
{
	(void)pthread_once(&self_once, self_init);
	return self_pid;
}
