/* SPDX-License-Identifier: MIT */
/* The master process: forks workers and helpers, supervises them. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "cycle.h"
#include "listener.h"
#include "log_internal.h"
#include "loop.h"
#include "process.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   30000
/* A child dying sooner than this after its start makes the backoff grow. */
#define QUICK_DEATH_MS 10000
/* A child that lived this long starts over with an immediate respawn. */
#define STABLE_LIFE_MS 60000
/* Past shutdown_timeout, children get this long before SIGKILL. */
#define KILL_GRACE_MS 2000

/* A config generation and the processes serving it. */
struct gen {
	struct ptl_cycle *cycle;
	unsigned nlive;   /* children forked and not yet reaped */
	bool retiring;    /* replaced by a reload: its children drain */
	struct gen *next; /* the next older generation */
};

/* One slot of the process table: a worker or a helper of a generation. */
struct proc {
	pid_t pid; /* 0 while not running (respawn pending) */
	enum ptl_process_kind kind;
	unsigned index; /* worker index, or index into cycle->helpers */
	struct gen *gen;
	int64_t started_at; /* ptl_now_ms() at fork */
	int64_t backoff_ms; /* delay before the next respawn */
	struct ptl_timer *respawn;
	struct proc *next;
};

static struct {
	struct gen *gens; /* the current generation first */
	struct proc *procs;
	/* Of the first generation: a reload does not move it. */
	char pid_file[PATH_MAX];
	bool stopping;
	struct ptl_timer *kill_timer;
} master;

static void
proc_label(const struct proc *p, char *out, size_t outsz)
{
	if (p->kind == PTL_PROCESS_WORKER)
		snprintf(out, outsz, "worker %u", p->index);
	else
		snprintf(out, outsz, "helper %s",
		         p->gen->cycle->helpers[p->index].name);
}

static void
describe_status(int status, char *out, size_t outsz)
{
	if (WIFSIGNALED(status))
		snprintf(out, outsz, "exited on signal %d", WTERMSIG(status));
	else
		snprintf(out, outsz, "exited with status %d",
		         WEXITSTATUS(status));
}

static unsigned
master_live_children(void)
{
	unsigned n = 0;

	for (const struct gen *g = master.gens; g != NULL; g = g->next)
		n += g->nlive;
	return n;
}

static bool
cycle_uses_fd(const struct ptl_cycle *cycle, int fd)
{
	for (size_t i = 0; i < cycle->nlisteners; i++)
		if (cycle->listeners[i]->fd == fd)
			return true;
	return false;
}

/*
 * A child of the new generation must not hold the listening sockets that
 * only an older generation uses: when the master closes them at
 * retirement, the port would stay open with nobody accepting.
 */
static void
child_close_foreign_listeners(const struct ptl_cycle *mine)
{
	for (const struct gen *g = master.gens; g != NULL; g = g->next) {
		if (g->cycle == mine)
			continue;
		for (size_t i = 0; i < g->cycle->nlisteners; i++) {
			int fd = g->cycle->listeners[i]->fd;

			if (fd >= 0 && !cycle_uses_fd(mine, fd))
				close(fd);
		}
	}
}

/*
 * The master's dispositions must not leak into the child. The mask stays
 * full: ptl_child_run() routes its signals to its own loop first, so a
 * SIGTERM sent during start-up waits there instead of being lost.
 */
static void
child_reset_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (int signo = 1; signo < _NSIG; signo++) {
		if (signo == SIGKILL || signo == SIGSTOP)
			continue;
		/* Signals reserved by libc fail with EINVAL: fine. */
		(void)sigaction(signo, &sa, NULL);
	}
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
}

static void __attribute__((noreturn))
child_main(struct proc *p, pid_t master_pid)
{
	struct ptl_cycle *cycle = p->gen->cycle;
	struct ptl_helper_decl *helper = NULL;
	int rc;

	child_reset_signals();
	child_close_foreign_listeners(cycle);
	if (p->kind == PTL_PROCESS_HELPER)
		helper = &cycle->helpers[p->index];
	rc = ptl_child_run(cycle, p->kind, p->index, helper, master_pid);
	/*
	 * _exit: atexit handlers and stdio buffers belong to the master; the
	 * child released its own resources in ptl_child_run().
	 */
	_exit(rc);
}

static int
proc_spawn(struct proc *p)
{
	pid_t master_pid = getpid();
	sigset_t all, saved;
	int fork_errno;
	pid_t pid;

	/*
	 * Blocked across fork() so that no signal reaches the child before it
	 * has reset what it inherited from the master.
	 */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0)
		child_main(p, master_pid);
	fork_errno = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0) {
		char label[96];

		proc_label(p, label, sizeof(label));
		ptl_log(PTL_LOG_ERROR, "cannot start %s: fork: %s", label,
		        strerror(fork_errno));
		return PTL_ERROR;
	}
	p->pid = pid;
	p->started_at = ptl_now_ms();
	p->gen->nlive++;
	return PTL_OK;
}

static void
proc_start(struct proc *p)
{
	int64_t delay;

	if (proc_spawn(p) == PTL_OK)
		return;
	delay = p->backoff_ms > 0 ? p->backoff_ms : BACKOFF_FIRST_MS;
	p->backoff_ms = delay * 2 < BACKOFF_MAX_MS ? delay * 2 : BACKOFF_MAX_MS;
	ptl_timer_start(p->respawn, delay);
}

static void
proc_on_respawn(struct ptl_timer *t, void *arg)
{
	struct proc *p = arg;

	if (!master.stopping && !p->gen->retiring && p->pid == 0)
		proc_start(p);
}

static struct proc *
proc_new(struct gen *g, enum ptl_process_kind kind, unsigned index)
{
	struct proc *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->respawn = ptl_timer_new(proc_on_respawn, p);
	if (p->respawn == NULL) {
		free(p);
		return NULL;
	}
	p->kind = kind;
	p->index = index;
	p->gen = g;
	p->next = master.procs;
	master.procs = p;
	return p;
}

static void
proc_remove(struct proc *p)
{
	struct proc **pp = &master.procs;

	while (*pp != NULL && *pp != p)
		pp = &(*pp)->next;
	if (*pp != NULL)
		*pp = p->next;
	ptl_timer_free(p->respawn);
	free(p);
}

static struct proc *
proc_find(pid_t pid)
{
	for (struct proc *p = master.procs; p != NULL; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

/*
 * Immediate the first time; then 100 ms doubling up to 30 s while the
 * child keeps dying within QUICK_DEATH_MS; forgotten once it lived
 * STABLE_LIFE_MS. Returns the delay for this respawn.
 */
static int64_t
proc_next_delay(struct proc *p, int64_t lived_ms)
{
	int64_t delay;

	if (lived_ms >= STABLE_LIFE_MS)
		p->backoff_ms = 0;
	delay = p->backoff_ms;
	if (lived_ms < QUICK_DEATH_MS) {
		if (p->backoff_ms == 0)
			p->backoff_ms = BACKOFF_FIRST_MS;
		else if (p->backoff_ms * 2 < BACKOFF_MAX_MS)
			p->backoff_ms *= 2;
		else
			p->backoff_ms = BACKOFF_MAX_MS;
	}
	return delay;
}

static struct gen *
gen_new(struct ptl_cycle *cycle)
{
	struct gen *g = calloc(1, sizeof(*g));

	if (g != NULL)
		g->cycle = cycle;
	return g;
}

/* @g becomes the current generation. */
static void
gen_link(struct gen *g)
{
	g->next = master.gens;
	master.gens = g;
}

static void
gen_unlink(struct gen *g)
{
	struct gen **gp = &master.gens;

	while (*gp != NULL && *gp != g)
		gp = &(*gp)->next;
	if (*gp != NULL)
		*gp = g->next;
}

/* Fork every worker and helper of @g. */
static int
gen_start(struct gen *g, struct ptl_error *err)
{
	const struct ptl_cycle *cycle = g->cycle;
	unsigned nworkers = cycle->server.nworkers;
	struct proc *p;

	for (unsigned i = 0; i < nworkers + cycle->nhelpers; i++) {
		if (i < nworkers)
			p = proc_new(g, PTL_PROCESS_WORKER, i);
		else
			p = proc_new(g, PTL_PROCESS_HELPER, i - nworkers);
		if (p == NULL)
			return ptl_error_set(err, "out of memory");
		proc_start(p);
	}
	return PTL_OK;
}

/* The last child of a replaced generation is gone: drop it. */
static void
gen_free(struct gen *g, bool log_retired)
{
	unsigned generation = g->cycle->generation;

	gen_unlink(g);
	ptl_listeners_close(g->cycle);
	ptl_cycle_free(g->cycle, true);
	free(g);
	if (log_retired)
		ptl_log(PTL_LOG_INFO, "reload: generation %u retired",
		        generation);
}

/* Tell the children of @g to drain; forget the ones waiting to respawn. */
static void
gen_retire(struct gen *g)
{
	struct proc *p, *next;

	g->retiring = true;
	for (p = master.procs; p != NULL; p = next) {
		next = p->next;
		if (p->gen != g)
			continue;
		if (p->pid > 0)
			(void)kill(p->pid, SIGQUIT);
		else
			proc_remove(p);
	}
	if (g->nlive == 0)
		gen_free(g, true);
}

static void
proc_exited(struct proc *p, int status)
{
	struct gen *g = p->gen;
	int64_t lived = ptl_now_ms() - p->started_at;
	char label[96], how[64];
	pid_t pid = p->pid;
	int64_t delay;

	proc_label(p, label, sizeof(label));
	describe_status(status, how, sizeof(how));
	g->nlive--;
	p->pid = 0;
	if (master.stopping || g->retiring) {
		ptl_log(PTL_LOG_INFO, "%s (pid %d) %s", label, (int)pid, how);
		proc_remove(p);
		if (g->retiring && g->nlive == 0 && !master.stopping)
			gen_free(g, true);
		return;
	}
	delay = proc_next_delay(p, lived);
	if (delay == 0) {
		ptl_log(PTL_LOG_WARN, "%s (pid %d) %s; respawning", label,
		        (int)pid, how);
		proc_start(p);
		return;
	}
	ptl_log(PTL_LOG_WARN, "%s (pid %d) %s; respawning in %lld ms", label,
	        (int)pid, how, (long long)delay);
	ptl_timer_start(p->respawn, delay);
}

static void
master_on_sigchld(int signo, void *arg)
{
	int status;
	pid_t pid;

	/* One SIGCHLD may stand for several children. */
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct proc *p = proc_find(pid);

		if (p != NULL)
			proc_exited(p, status);
	}
	if (master.stopping && master_live_children() == 0)
		ptl_loop_exit();
}

static void
master_on_kill_timeout(struct ptl_timer *t, void *arg)
{
	char label[96];

	for (struct proc *p = master.procs; p != NULL; p = p->next) {
		if (p->pid <= 0)
			continue;
		proc_label(p, label, sizeof(label));
		ptl_log(PTL_LOG_WARN,
		        "%s (pid %d) did not stop in time; "
		        "killing it",
		        label, (int)p->pid);
		(void)kill(p->pid, SIGKILL);
	}
}

static void
master_shutdown(void)
{
	const struct ptl_cycle *cycle = master.gens->cycle;
	struct proc *p, *next;

	if (master.stopping)
		return;
	master.stopping = true;
	ptl_loop_set_stopping(1);
	ptl_log(PTL_LOG_INFO, "shutting down");
	for (p = master.procs; p != NULL; p = next) {
		next = p->next;
		if (p->pid > 0)
			(void)kill(p->pid, SIGTERM);
		else
			proc_remove(p);
	}
	if (master_live_children() == 0) {
		ptl_loop_exit();
		return;
	}
	ptl_timer_start(master.kill_timer,
	                cycle->server.shutdown_timeout_ms + KILL_GRACE_MS);
}

static void
master_on_stop(int signo, void *arg)
{
	master_shutdown();
}

static void
master_on_reopen(int signo, void *arg)
{
	struct ptl_error err = {0};

	if (ptl_log_reopen(&err) != PTL_OK)
		ptl_log(PTL_LOG_ERROR, "cannot reopen the log: %s", err.text);
	else
		ptl_master_share_log(master.gens->cycle);
	for (struct proc *p = master.procs; p != NULL; p = p->next)
		if (p->pid > 0)
			(void)kill(p->pid, SIGUSR1);
}

/*
 * SIGHUP. The new generation is built and bound before anything changes;
 * only then are its children started and the old ones told to drain.
 */
static void
master_reload(void)
{
	struct gen *old = master.gens, *g;
	struct ptl_error err = {0};
	struct ptl_cycle *cycle;

	if (master.stopping)
		return;
	/* Allocated first: once bound, the new generation cannot go back. */
	g = gen_new(NULL);
	if (g == NULL) {
		ptl_error_set(&err, "out of memory");
		ptl_master_report(old->cycle,
		                  "reload: configuration rejected: ", &err);
		return;
	}
	if (ptl_generation_prepare(old->cycle, &cycle, &err) != PTL_OK) {
		free(g);
		ptl_master_report(old->cycle,
		                  "reload: configuration rejected: ", &err);
		return;
	}
	g->cycle = cycle;
	gen_link(g);
	if (ptl_log_configure(&cycle->server.log, &err) != PTL_OK)
		ptl_log(PTL_LOG_ERROR, "reload: keeping the old log target: %s",
		        err.text);
	else
		ptl_master_share_log(cycle);
	ptl_log(PTL_LOG_INFO, "reload: generation %u accepted",
	        cycle->generation);
	if (gen_start(g, &err) != PTL_OK)
		ptl_log(PTL_LOG_ERROR, "reload: %s", err.text);
	gen_retire(old);
}

static void
master_on_reload(int signo, void *arg)
{
	master_reload();
}

static int
master_signals(struct ptl_error *err)
{
	static const struct {
		int signo;
		ptl_signal_fn fn;
	} table[] = {
	    {SIGCHLD, master_on_sigchld}, {SIGHUP, master_on_reload},
	    {SIGTERM, master_on_stop},    {SIGINT, master_on_stop},
	    {SIGQUIT, master_on_stop},    {SIGUSR1, master_on_reopen},
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (ptl_loop_signal(table[i].signo, table[i].fn, NULL) !=
		    PTL_OK)
			return ptl_error_set_errno(err, errno,
			                           "cannot handle signal %d",
			                           table[i].signo);
	return PTL_OK;
}

/* Everything but the loop is gone; drop the last generations. */
static void
master_free_all(void)
{
	/* Oldest first: a newer generation may hold sockets it took over. */
	while (master.gens != NULL) {
		struct gen *g = master.gens;

		while (g->next != NULL)
			g = g->next;
		gen_free(g, false);
	}
	while (master.procs != NULL)
		proc_remove(master.procs);
	ptl_cycle_current = NULL;
}

static int
master_loop(struct ptl_cycle *cycle, struct ptl_error *err)
{
	struct gen *g;

	g = gen_new(cycle);
	if (g == NULL)
		return ptl_error_set(err, "out of memory");
	gen_link(g);
	master.kill_timer = ptl_timer_new(master_on_kill_timeout, NULL);
	if (master.kill_timer == NULL)
		return ptl_error_set(err, "out of memory");
	if (master_signals(err) != PTL_OK)
		return PTL_ERROR;
	if (gen_start(g, err) != PTL_OK)
		return PTL_ERROR;
	ptl_log(PTL_LOG_INFO, "master started, %u workers, generation %u",
	        cycle->server.nworkers, cycle->generation);
	if (ptl_loop_run() != PTL_OK)
		return ptl_error_set(err, "event loop failed");
	return PTL_OK;
}

int
ptl_master_run(struct ptl_cycle *cycle)
{
	struct ptl_error err = {0};
	bool inited;
	int rc = 0;

	ptl_process_set_kind(PTL_PROCESS_MASTER, 0);
	ptl_log_set_process("master");
	(void)prctl(PR_SET_NAME, "petrel-master", 0, 0, 0);
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
	if (cycle->server.pid_file != NULL)
		snprintf(master.pid_file, sizeof(master.pid_file), "%s",
		         cycle->server.pid_file);

	if (master_loop(cycle, &err) != PTL_OK) {
		ptl_master_report(cycle, "", &err);
		rc = 1;
		/* Do not leave children behind without their master. */
		for (struct proc *p = master.procs; p != NULL; p = p->next)
			if (p->pid > 0)
				(void)kill(p->pid, SIGTERM);
	}
	if (master.gens == NULL) {
		ptl_listeners_close(cycle);
		ptl_cycle_free(cycle, true);
	}
	if (master.pid_file[0] != '\0')
		ptl_pidfile_remove(master.pid_file);
	ptl_log(PTL_LOG_INFO, "stopped");
	master_free_all();
	ptl_timer_free(master.kill_timer);
	ptl_loop_fini();
	return rc;
}
