/* SPDX-License-Identifier: MIT */
/* Unit tests for the event loop: fd watchers, deferred calls, signals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "core/loop.h"

static struct ptl_timer *safety;

static void
fail_safety(struct ptl_timer *t, void *arg)
{
	fail_msg("safety timer fired: the loop did not get to its exit");
}

static int
loop_setup(void **state)
{
	struct ptl_error err;

	assert_int_equal(ptl_loop_init(&err), PTL_OK);
	safety = ptl_timer_new(fail_safety, NULL);
	assert_non_null(safety);
	ptl_timer_start(safety, 30000);
	return 0;
}

static int
loop_teardown(void **state)
{
	ptl_loop_fini();
	return 0;
}

static void
make_pipe(int fds[2])
{
	assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
}

static void
make_socketpair(int fds[2])
{
	assert_int_equal(socketpair(AF_UNIX,
	                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                            0, fds),
	                 0);
}

static void
exit_loop(struct ptl_timer *t, void *arg)
{
	ptl_loop_exit();
}

/* Run the loop for a short while; used to show that nothing fires. */
static void
run_briefly(void)
{
	struct ptl_timer *t = ptl_timer_new(exit_loop, NULL);

	assert_non_null(t);
	ptl_timer_start(t, 20);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	ptl_timer_free(t);
}

struct io_probe {
	int fd;
	int calls;
	unsigned last_events;
	char buf[16];
	ssize_t nread;
	int exit_after;
};

static void
on_io(struct ptl_io *io, unsigned events, void *arg)
{
	struct io_probe *p = arg;

	p->calls++;
	p->last_events = events;
	if (events & PTL_IO_READ)
		p->nread = read(p->fd, p->buf, sizeof(p->buf));
	if (p->calls >= p->exit_after)
		ptl_loop_exit();
}

static void
test_read_readiness(void **state)
{
	struct io_probe p = {.exit_after = 1};
	struct ptl_io *io;
	int fds[2];

	make_pipe(fds);
	p.fd = fds[0];
	io = ptl_io_add(fds[0], PTL_IO_READ, on_io, &p);
	assert_non_null(io);
	run_briefly();
	assert_int_equal(p.calls, 0);

	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 1);
	assert_true(p.last_events & PTL_IO_READ);
	assert_int_equal(p.nread, 1);
	assert_int_equal(p.buf[0], 'x');

	/* Drained: level-triggered, but nothing more to report. */
	run_briefly();
	assert_int_equal(p.calls, 1);

	/* Hang-up is always reported, whatever was asked. */
	assert_int_equal(ptl_io_modify(io, 0), PTL_OK);
	close(fds[1]);
	p.exit_after = 2;
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 2);
	assert_true(p.last_events & PTL_IO_ERROR);

	ptl_io_remove(io);
	close(fds[0]);
}

static void
test_write_readiness_and_modify(void **state)
{
	struct io_probe p = {.exit_after = 1};
	struct ptl_io *io;
	int fds[2];

	make_socketpair(fds);
	p.fd = fds[0];
	io = ptl_io_add(fds[0], PTL_IO_WRITE, on_io, &p);
	assert_non_null(io);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.last_events, PTL_IO_WRITE);

	/* Now only reading: writable no longer wakes us. */
	assert_int_equal(ptl_io_modify(io, PTL_IO_READ), PTL_OK);
	run_briefly();
	assert_int_equal(p.calls, 1);

	assert_int_equal(write(fds[1], "hello", 5), 5);
	p.exit_after = 2;
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 2);
	assert_int_equal(p.last_events, PTL_IO_READ);
	assert_int_equal(p.nread, 5);

	/* Both at once. */
	assert_int_equal(write(fds[1], "a", 1), 1);
	assert_int_equal(ptl_io_modify(io, PTL_IO_READ | PTL_IO_WRITE), PTL_OK);
	p.exit_after = 3;
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.last_events, PTL_IO_READ | PTL_IO_WRITE);

	ptl_io_remove(io);
	close(fds[0]);
	close(fds[1]);
}

struct pair_probe {
	struct ptl_io *io[2];
	int fd[2];
	int calls[2];
	int removed_by;
};

static void
on_pair(struct ptl_io *io, unsigned events, void *arg)
{
	struct pair_probe *p = arg;
	int me = io == p->io[0] ? 0 : 1;

	assert_ptr_equal(io, p->io[me]);
	p->calls[me]++;
	/* The other one is also ready in this same batch: remove it. */
	ptl_io_remove(p->io[1 - me]);
	p->io[1 - me] = NULL;
	p->removed_by = me;
	ptl_loop_exit();
}

static void
test_remove_other_in_batch(void **state)
{
	struct pair_probe p = {0};
	int a[2], b[2];

	make_socketpair(a);
	make_socketpair(b);
	p.fd[0] = a[0];
	p.fd[1] = b[0];
	assert_int_equal(write(a[1], "1", 1), 1);
	assert_int_equal(write(b[1], "2", 1), 1);
	p.io[0] = ptl_io_add(a[0], PTL_IO_READ, on_pair, &p);
	p.io[1] = ptl_io_add(b[0], PTL_IO_READ, on_pair, &p);
	assert_non_null(p.io[0]);
	assert_non_null(p.io[1]);

	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls[0] + p.calls[1], 1);
	assert_int_equal(p.calls[1 - p.removed_by], 0);

	/* The removed one stays silent though its fd is still readable. */
	run_briefly();
	assert_int_equal(p.calls[1 - p.removed_by], 0);
	ptl_io_remove(p.io[p.removed_by]);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

static void
on_remove_self(struct ptl_io *io, unsigned events, void *arg)
{
	int *calls = arg;

	(*calls)++;
	ptl_io_remove(io);
}

static void
test_remove_self(void **state)
{
	int calls = 0;
	int fds[2];

	make_pipe(fds);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_non_null(
	    ptl_io_add(fds[0], PTL_IO_READ, on_remove_self, &calls));
	run_briefly();
	/* Unread data would fire it every iteration had it stayed. */
	assert_int_equal(calls, 1);
	close(fds[0]);
	close(fds[1]);
}

static void
test_add_errors(void **state)
{
	struct io_probe p = {0};
	struct ptl_io *io;
	int fds[2];

	errno = 0;
	assert_null(ptl_io_add(-1, PTL_IO_READ, on_io, &p));
	assert_int_equal(errno, EINVAL);
	make_pipe(fds);
	close(fds[1]);
	assert_null(ptl_io_add(fds[1], PTL_IO_READ, on_io, &p));
	assert_int_equal(errno, EBADF);
	io = ptl_io_add(fds[0], PTL_IO_READ, on_io, &p);
	assert_non_null(io);
	/* One watcher per fd. */
	assert_null(ptl_io_add(fds[0], PTL_IO_READ, on_io, &p));
	assert_int_equal(errno, EEXIST);
	ptl_io_remove(io);
	ptl_io_remove(NULL);
	close(fds[0]);
}

static void
test_exclusive(void **state)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct io_probe p = {.exit_after = 1};
	struct ptl_io *io;
	int lfd, cfd;

	/* An abstract socket: nothing to clean up in the file system. */
	snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
	         "petrel-test-event-%ld", (long)getpid());
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(lfd, 8), 0);
	p.fd = -1;
	io = ptl_io_add_exclusive(lfd, on_io, &p);
	assert_non_null(io);
	errno = 0;
	assert_int_equal(ptl_io_modify(io, PTL_IO_READ | PTL_IO_WRITE),
	                 PTL_ERROR);
	assert_int_equal(errno, EINVAL);

	run_briefly();
	assert_int_equal(p.calls, 0);
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.last_events, PTL_IO_READ);
	ptl_io_remove(io);
	close(cfd);
	close(lfd);
}

struct defer_log {
	int order[16];
	int n;
};

struct defer_step {
	struct defer_log *log;
	int id;
	struct defer_step *then; /* deferred from inside this one */
};

static void
on_defer(void *arg)
{
	struct defer_step *s = arg;

	s->log->order[s->log->n++] = s->id;
	if (s->then != NULL)
		assert_int_equal(ptl_defer(on_defer, s->then), PTL_OK);
}

static void
defer_exit(void *arg)
{
	ptl_loop_exit();
}

static void
test_defer_order(void **state)
{
	struct defer_log log = {.n = 0};
	struct defer_step s4 = {&log, 4, NULL};
	struct defer_step s3 = {&log, 3, &s4};
	struct defer_step s2 = {&log, 2, NULL};
	struct defer_step s1 = {&log, 1, &s3};

	assert_int_equal(ptl_defer(on_defer, &s1), PTL_OK);
	assert_int_equal(ptl_defer(on_defer, &s2), PTL_OK);
	assert_int_equal(ptl_defer(defer_exit, NULL), PTL_OK);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	/* s3 was queued during the first round: it waits for the next. */
	assert_int_equal(log.n, 2);
	run_briefly();
	assert_int_equal(log.n, 4);
	assert_int_equal(log.order[0], 1);
	assert_int_equal(log.order[1], 2);
	assert_int_equal(log.order[2], 3);
	assert_int_equal(log.order[3], 4);
}

struct spinner {
	int rounds;
	int io_seen;
	int timer_seen;
};

static void
spin(void *arg)
{
	struct spinner *s = arg;

	s->rounds++;
	if (s->io_seen && s->timer_seen)
		ptl_loop_exit();
	else
		assert_int_equal(ptl_defer(spin, s), PTL_OK);
}

static void
spin_io(struct ptl_io *io, unsigned events, void *arg)
{
	struct spinner *s = arg;

	s->io_seen = 1;
	ptl_io_remove(io);
}

static void
spin_timer(struct ptl_timer *t, void *arg)
{
	struct spinner *s = arg;

	s->timer_seen = 1;
}

static void
test_defer_does_not_starve(void **state)
{
	struct spinner s = {0};
	struct ptl_timer *t = ptl_timer_new(spin_timer, &s);
	int fds[2];

	assert_non_null(t);
	make_pipe(fds);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_non_null(ptl_io_add(fds[0], PTL_IO_READ, spin_io, &s));
	ptl_timer_start(t, 5);
	assert_int_equal(ptl_defer(spin, &s), PTL_OK);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_true(s.io_seen);
	assert_true(s.timer_seen);
	assert_true(s.rounds >= 1);
	ptl_timer_free(t);
	close(fds[0]);
	close(fds[1]);
}

static void
defer_from_io(struct ptl_io *io, unsigned events, void *arg)
{
	char c;

	assert_int_equal(read(*(int *)arg, &c, 1), 1);
	ptl_io_remove(io);
	/* Nothing else will wake the loop: the call must run before sleep. */
	assert_int_equal(ptl_defer(defer_exit, NULL), PTL_OK);
}

static void
test_defer_before_sleep(void **state)
{
	int fds[2];

	make_pipe(fds);
	assert_int_equal(write(fds[1], "x", 1), 1);
	assert_non_null(
	    ptl_io_add(fds[0], PTL_IO_READ, defer_from_io, &fds[0]));
	assert_int_equal(ptl_loop_run(), PTL_OK);
	close(fds[0]);
	close(fds[1]);
}

struct sig_probe {
	int signo;
	int calls;
};

static void
on_signal(int signo, void *arg)
{
	struct sig_probe *p = arg;

	p->signo = signo;
	p->calls++;
	ptl_loop_exit();
}

static void
test_signal(void **state)
{
	struct sig_probe p = {0};
	sigset_t cur;

	assert_int_equal(ptl_loop_signal(SIGUSR1, on_signal, &p), PTL_OK);
	assert_int_equal(sigprocmask(SIG_BLOCK, NULL, &cur), 0);
	assert_true(sigismember(&cur, SIGUSR1));
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.signo, SIGUSR1);

	/* A second signal on the same signalfd. */
	assert_int_equal(ptl_loop_signal(SIGUSR2, on_signal, &p), PTL_OK);
	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 2);
	assert_int_equal(p.signo, SIGUSR2);

	assert_int_equal(ptl_loop_signal(0, on_signal, &p), PTL_ERROR);
}

static void
test_exit_and_rerun(void **state)
{
	struct ptl_timer *t = ptl_timer_new(exit_loop, NULL);

	assert_non_null(t);
	ptl_timer_start(t, 0);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_false(ptl_timer_active(t));
	/* The exit request was consumed: a new run waits for a new one. */
	ptl_timer_start(t, 10);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_false(ptl_timer_active(t));
	ptl_timer_free(t);
}

static void
test_time_and_stopping(void **state)
{
	int64_t a, b;

	ptl_loop_update_time();
	a = ptl_now_ms();
	assert_int_equal(ptl_now_ms(), a); /* cached */
	run_briefly();
	b = ptl_now_ms();
	assert_true(b >= a);
	assert_true(ptl_wall_time() >= time(NULL) - 2);
	/* time() reads the coarse clock, which may still show the last
	 * second for a few milliseconds after CLOCK_REALTIME moved on. */
	assert_true(ptl_wall_time() <= time(NULL) + 1);

	assert_false(ptl_loop_stopping());
	ptl_loop_set_stopping(1);
	assert_true(ptl_loop_stopping());
	ptl_loop_set_stopping(0);
	assert_false(ptl_loop_stopping());
}

static void
test_init_twice(void **state)
{
	struct ptl_error err;

	assert_int_equal(ptl_loop_init(&err), PTL_ERROR);
	assert_non_null(strstr(err.text, "already"));
}

static void
test_fork_forget(void **state)
{
	struct io_probe p = {.exit_after = 1};
	struct ptl_io *io;
	int fds[2], status;
	pid_t pid;

	make_pipe(fds);
	p.fd = fds[0];
	io = ptl_io_add(fds[0], PTL_IO_READ, on_io, &p);
	assert_non_null(io);
	assert_int_equal(ptl_defer(defer_exit, NULL), PTL_OK);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct ptl_error err;
		struct io_probe cp = {.exit_after = 1};
		int cfds[2];

		/* The child's own loop: none of the parent's state leaks. */
		ptl_loop_forget();
		if (ptl_loop_init(&err) != PTL_OK)
			_exit(2);
		if (pipe2(cfds, O_NONBLOCK) < 0)
			_exit(3);
		cp.fd = cfds[0];
		if (ptl_io_add(cfds[0], PTL_IO_READ, on_io, &cp) == NULL)
			_exit(4);
		if (write(cfds[1], "c", 1) != 1)
			_exit(5);
		if (ptl_loop_run() != PTL_OK || cp.calls != 1)
			_exit(6);
		ptl_loop_fini();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	/* The parent's deferred call and watcher survived the child. */
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 0);
	assert_int_equal(write(fds[1], "p", 1), 1);
	assert_int_equal(ptl_loop_run(), PTL_OK);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.buf[0], 'p');
	ptl_io_remove(io);
	close(fds[0]);
	close(fds[1]);
}

static void
test_fini_frees_all(void **state)
{
	/* Left for ptl_loop_fini(): ASan reports a leak if it does not. */
	int fds[2];
	struct io_probe p = {0};

	make_pipe(fds);
	assert_non_null(ptl_io_add(fds[0], PTL_IO_READ, on_io, &p));
	assert_int_equal(ptl_defer(defer_exit, NULL), PTL_OK);
	ptl_loop_fini();
	close(fds[0]);
	close(fds[1]);
	/* Run/modify without a loop fail cleanly. */
	assert_int_equal(ptl_loop_run(), PTL_ERROR);
	assert_null(ptl_io_add(0, PTL_IO_READ, on_io, &p));
	loop_setup(state);
}

int
main(void)
{
#define LOOP_TEST(f)                                                           \
	cmocka_unit_test_setup_teardown(f, loop_setup, loop_teardown)
	const struct CMUnitTest tests[] = {
	    LOOP_TEST(test_read_readiness),
	    LOOP_TEST(test_write_readiness_and_modify),
	    LOOP_TEST(test_remove_other_in_batch),
	    LOOP_TEST(test_remove_self),
	    LOOP_TEST(test_add_errors),
	    LOOP_TEST(test_exclusive),
	    LOOP_TEST(test_defer_order),
	    LOOP_TEST(test_defer_does_not_starve),
	    LOOP_TEST(test_defer_before_sleep),
	    LOOP_TEST(test_signal),
	    LOOP_TEST(test_exit_and_rerun),
	    LOOP_TEST(test_time_and_stopping),
	    LOOP_TEST(test_init_twice),
	    LOOP_TEST(test_fork_forget),
	    LOOP_TEST(test_fini_frees_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
