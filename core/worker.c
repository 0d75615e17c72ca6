/* SPDX-License-Identifier: MIT */
/* Worker, helper and single processes: set up, serve, drain, exit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#include "cycle.h"
#include "listener.h"
#include "log_internal.h"
#include "loop.h"
#include "process.h"

/* How often a draining process looks whether its connections are gone. */
#define DRAIN_POLL_MS 100
/* After cutting connections at the deadline: how long their close may take. */
#define DRAIN_CLOSE_MS      1000
#define DRAIN_CLOSE_POLL_MS 10
/* Exit status of a child that could not start (the master respawns it). */
#define CHILD_EXIT_INIT 2

static enum ptl_process_kind process_kind = PTL_PROCESS_MASTER;

PTL_API enum ptl_process_kind
ptl_process_kind(void)
{
	return process_kind;
}

void
ptl_process_set_kind(enum ptl_process_kind kind, unsigned worker_index)
{
	process_kind = kind;
	(void)worker_index;
}

/* The graceful stop of a serving process. */
static struct {
	struct ptl_cycle *cycle;
	bool listening; /* listeners were started here */
	bool draining;
	bool aborted;     /* the deadline passed: connections were cut */
	int64_t deadline; /* ptl_now_ms() at which connections are cut */
	struct ptl_timer *poll;
} drain;

static void
drain_on_poll(struct ptl_timer *t, void *arg)
{
	unsigned left = ptl_conn_count();
	int64_t now = ptl_now_ms();

	if (left == 0) {
		ptl_loop_exit();
		return;
	}
	if (!drain.aborted && now >= drain.deadline) {
		ptl_log(PTL_LOG_NOTICE,
		        "shutdown timeout: closing %u connection%s", left,
		        left == 1 ? "" : "s");
		drain.aborted = true;
		/* Their CLOSED events come on the next loop rounds. */
		ptl_conn_abort_all();
	} else if (drain.aborted && now >= drain.deadline + DRAIN_CLOSE_MS) {
		ptl_log(PTL_LOG_WARN, "%u connection%s did not close", left,
		        left == 1 ? "" : "s");
		ptl_loop_exit();
		return;
	}
	ptl_timer_start(t, drain.aborted ? DRAIN_CLOSE_POLL_MS : DRAIN_POLL_MS);
}

static void
drain_start(void)
{
	if (drain.draining)
		return;
	drain.draining = true;
	ptl_loop_set_stopping(1);
	if (drain.listening)
		ptl_listeners_stop(drain.cycle);
	drain.deadline = ptl_now_ms() + drain.cycle->server.shutdown_timeout_ms;
	if (drain.poll == NULL) {
		/* Without a timer, wait no longer than this loop round. */
		ptl_conn_abort_all();
		ptl_loop_exit();
		return;
	}
	ptl_timer_start(drain.poll, 0);
}

static const char *
signal_name(int signo)
{
	switch (signo) {
	case SIGTERM:
		return "SIGTERM";
	case SIGQUIT:
		return "SIGQUIT";
	case SIGINT:
		return "SIGINT";
	default:
		return "signal";
	}
}

static void
on_stop_signal(int signo, void *arg)
{
	if (!drain.draining)
		ptl_log(PTL_LOG_INFO, "%s: stopping gracefully",
		        signal_name(signo));
	drain_start();
}

static void
on_reopen_signal(int signo, void *arg)
{
	struct ptl_error err = {0};

	if (ptl_log_reopen(&err) != PTL_OK)
		ptl_log(PTL_LOG_ERROR, "cannot reopen the log: %s", err.text);
}

static void
on_reload_signal(int signo, void *arg)
{
	ptl_log(PTL_LOG_WARN, "reload is not supported in single-process mode");
}

/*
 * Route the signals this process handles to its loop. SIGINT drains too:
 * ^C in a terminal reaches the whole process group, master and children.
 */
static int
serve_signals(bool single, struct ptl_error *err)
{
	static const int stop[] = {SIGTERM, SIGQUIT, SIGINT};

	for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++)
		if (ptl_loop_signal(stop[i], on_stop_signal, NULL) != PTL_OK)
			return ptl_error_set_errno(err, errno, "signalfd");
	if (ptl_loop_signal(SIGUSR1, on_reopen_signal, NULL) != PTL_OK)
		return ptl_error_set_errno(err, errno, "signalfd");
	if (single) {
		if (ptl_loop_signal(SIGHUP, on_reload_signal, NULL) != PTL_OK)
			return ptl_error_set_errno(err, errno, "signalfd");
	} else {
		/* Reload is the master's business. */
		(void)signal(SIGHUP, SIG_IGN);
	}
	return PTL_OK;
}

/*
 * A child starts with every signal blocked; once its loop owns the ones
 * it handles, everything else is delivered normally again.
 */
static void
unblock_other_signals(void)
{
	static const int routed[] = {SIGTERM, SIGQUIT, SIGINT, SIGUSR1};
	sigset_t mask;

	sigemptyset(&mask);
	for (size_t i = 0; i < sizeof(routed) / sizeof(routed[0]); i++)
		sigaddset(&mask, routed[i]);
	sigprocmask(SIG_SETMASK, &mask, NULL);
}

/* The master may have died before PR_SET_PDEATHSIG was in place. */
static bool
bind_to_master(pid_t master_pid)
{
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);
	return getppid() == master_pid;
}

static int
start_helpers(struct ptl_cycle *cycle, struct ptl_helper_decl *only,
              struct ptl_error *err)
{
	for (size_t i = 0; i < cycle->nhelpers; i++) {
		struct ptl_helper_decl *h = &cycle->helpers[i];

		if (only != NULL && h != only)
			continue;
		if (h->start(h->inst, h->arg, err) != PTL_OK)
			return PTL_ERROR;
		if (process_kind == PTL_PROCESS_HELPER)
			ptl_log(PTL_LOG_INFO, "helper %s started", h->name);
	}
	return PTL_OK;
}

/* Modules' worker side: thread pool, init_worker, listeners or helper. */
static int
serve_setup(struct ptl_cycle *cycle, unsigned worker_index,
            struct ptl_helper_decl *helper, struct ptl_error *err)
{
	drain.cycle = cycle;
	drain.poll = ptl_timer_new(drain_on_poll, NULL);
	if (ptl_task_init((unsigned)cycle->server.threads, err) != PTL_OK)
		return PTL_ERROR;
	ptl_cycle_current = cycle;
	ptl_cycle_set_worker_index(worker_index);
	if (ptl_cycle_init_worker(cycle, err) != PTL_OK)
		return PTL_ERROR;
	if (process_kind != PTL_PROCESS_HELPER) {
		if (ptl_listeners_start(cycle, err) != PTL_OK)
			return PTL_ERROR;
		drain.listening = true;
	}
	if (process_kind == PTL_PROCESS_WORKER)
		return PTL_OK;
	/* A helper runs its own entry; the single process runs them all. */
	return start_helpers(cycle, helper, err);
}

/* exit_worker runs only for the instances whose init_worker succeeded. */
static void
serve_teardown(struct ptl_cycle *cycle)
{
	/* Task completions may still use module state: drain them first. */
	ptl_task_fini();
	ptl_cycle_exit_worker(cycle);
	ptl_timer_free(drain.poll);
	drain.poll = NULL;
}

int
ptl_child_run(struct ptl_cycle *cycle, enum ptl_process_kind kind,
              unsigned index, struct ptl_helper_decl *helper, pid_t master_pid)
{
	struct ptl_error err = {0};
	char label[96];

	ptl_process_set_kind(kind, index);
	if (kind == PTL_PROCESS_WORKER)
		snprintf(label, sizeof(label), "worker %u", index);
	else
		snprintf(label, sizeof(label), "helper %s", helper->name);
	ptl_log_set_process(label);
	(void)prctl(PR_SET_NAME,
	            kind == PTL_PROCESS_WORKER ? "petrel-worker"
	                                       : "petrel-helper",
	            0, 0, 0);
	if (!bind_to_master(master_pid))
		return 0;

	ptl_loop_forget();
	if (ptl_loop_init(&err) != PTL_OK ||
	    serve_signals(false, &err) != PTL_OK ||
	    ptl_privs_drop(cycle, &err) != PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "cannot start: %s", err.text);
		return CHILD_EXIT_INIT;
	}
	/* Changing credentials cleared the parent-death signal. */
	if (!bind_to_master(master_pid))
		return 0;
	if (serve_setup(cycle, kind == PTL_PROCESS_WORKER ? index : 0, helper,
	                &err) != PTL_OK) {
		ptl_log(PTL_LOG_ERROR, "cannot start: %s", err.text);
		serve_teardown(cycle);
		ptl_loop_fini();
		return CHILD_EXIT_INIT;
	}
	if (kind == PTL_PROCESS_WORKER)
		ptl_log(PTL_LOG_INFO, "worker %u started", index);
	unblock_other_signals();
	if (ptl_loop_run() != PTL_OK)
		ptl_log(PTL_LOG_ERROR, "event loop failed");
	serve_teardown(cycle);
	ptl_loop_fini();
	return 0;
}

static int
single_serve(struct ptl_cycle *cycle, struct ptl_error *err)
{
	if (serve_signals(true, err) != PTL_OK ||
	    ptl_privs_drop(cycle, err) != PTL_OK)
		return PTL_ERROR;
	if (serve_setup(cycle, 0, NULL, err) != PTL_OK) {
		serve_teardown(cycle);
		return PTL_ERROR;
	}
	ptl_log(PTL_LOG_INFO, "single process started, generation %u",
	        cycle->generation);
	if (ptl_loop_run() != PTL_OK)
		ptl_log(PTL_LOG_ERROR, "event loop failed");
	serve_teardown(cycle);
	return PTL_OK;
}

int
ptl_single_run(struct ptl_cycle *cycle)
{
	struct ptl_error err = {0};
	bool inited;
	int rc = 0;

	ptl_process_set_kind(PTL_PROCESS_SINGLE, 0);
	ptl_log_set_process("single");
	if (cycle->generation == 0)
		cycle->generation = 1;
	ptl_cycle_current = cycle;

	if (ptl_loop_init(&err) != PTL_OK) {
		ptl_master_report(cycle, "", &err);
		ptl_cycle_free(cycle, false);
		return 1;
	}
	if (ptl_master_setup(cycle, &inited, &err) != PTL_OK) {
		ptl_master_report(cycle, "", &err);
		ptl_loop_fini();
		ptl_cycle_free(cycle, inited);
		return 1;
	}
	if (single_serve(cycle, &err) != PTL_OK) {
		ptl_master_report(cycle, "", &err);
		rc = 1;
	}
	ptl_pidfile_remove(cycle->server.pid_file);
	ptl_log(PTL_LOG_INFO, "stopped");
	ptl_listeners_close(cycle);
	ptl_loop_fini();
	ptl_cycle_free(cycle, true);
	ptl_cycle_current = NULL;
	return rc;
}
