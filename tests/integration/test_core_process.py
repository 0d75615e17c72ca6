# SPDX-License-Identifier: MIT
"""Master and workers: startup, privilege drop, respawn, reload, shutdown,
log reopening, JSON logs, and what happens when the master dies."""

import json
import os
import signal
import time
import unittest

import harness
from harness import IS_ROOT, LineClient


class Master(harness.PetrelTestCase):

    def setUp(self):
        self.p = self.petrel()
        self.port = harness.free_port()

    def cfg(self, greeting="first", workers=2, **server):
        return self.p.config(modules={"example": {
            "greeting": greeting,
            "listen": [{"address": "127.0.0.1:%d" % self.port}]}},
            workers=workers, **server)

    def start(self, cfg=None):
        self.p.write_config(cfg or self.cfg())
        self.p.start(wait_ports=[self.port],
                     wait_log="master started, 2 workers, generation 1")
        self.p.wait_log("worker 0 started")
        self.p.wait_log("worker 1 started")
        return self.p.wait_children(2)

    def client(self):
        return LineClient(self.port)

    def worker_pid_of(self, client):
        reply = client.cmd("PID")
        self.assertRegex(reply, r"^\+OK \d+$")
        return int(reply.split()[1])

    # -- startup

    def test_startup_logs_and_children(self):
        kids = self.start()
        self.assertEqual(len(kids), 2)
        self.assertEqual(harness.process_name(self.p.pid), "petrel-master")
        for pid in kids:
            self.assertEqual(harness.process_name(pid), "petrel-worker")

    def test_pid_file(self):
        self.start()
        pid_file = os.path.join(self.p.state_dir, "petrel.pid")
        with open(pid_file) as f:
            self.assertEqual(f.read(), "%d\n" % self.p.pid)

    def test_pid_file_configured(self):
        pid_file = self.p.path("run.pid")
        self.start(self.cfg(pid_file=pid_file))
        with open(pid_file) as f:
            self.assertEqual(f.read(), "%d\n" % self.p.pid)

    @unittest.skipUnless(IS_ROOT, "privilege drop needs root")
    def test_workers_are_not_root(self):
        kids = self.start()
        uid = harness.pwd.getpwnam(harness.RUN_USER).pw_uid
        self.assertEqual(harness.process_uids(self.p.pid)[0], 0)
        for pid in kids:
            self.assertEqual(harness.process_uids(pid), [uid] * 4,
                             "worker %d uids" % pid)
            groups = harness.proc_status(pid, "Groups").split()
            self.assertNotIn("0", groups, "worker keeps group root")
            self.assertEqual(harness.proc_status(pid, "NoNewPrivs"), "1")

    def test_echo_and_pid(self):
        kids = self.start()
        with self.client() as c:
            self.assertEqual(c.greeting, "+OK first")
            self.assertEqual(c.cmd("ECHO hello world"), "+OK hello world")
            self.assertIn(self.worker_pid_of(c), kids)
            self.assertEqual(c.cmd("TLS"), "+OK none")
            self.assertEqual(c.cmd("NOPE"), "-ERR unknown command")
            self.assertEqual(c.cmd("QUIT"), "+OK bye")
            self.assertTrue(c.wait_closed())

    def test_lf_only_lines(self):
        self.start()
        with self.client() as c:
            c.send_raw(b"ECHO bare lf\n")
            self.assertEqual(c.read_line(), "+OK bare lf")

    def test_pipelined_commands(self):
        self.start()
        with self.client() as c:
            c.send_raw(b"ECHO one\r\nECHO two\r\nECHO three\r\n")
            self.assertEqual([c.read_line() for _ in range(3)],
                             ["+OK one", "+OK two", "+OK three"])

    def test_many_connections(self):
        self.start()
        clients = [self.client() for _ in range(20)]
        try:
            for i, c in enumerate(clients):
                self.assertEqual(c.greeting, "+OK first")
                self.assertEqual(c.cmd("ECHO %d" % i), "+OK %d" % i)
        finally:
            for c in clients:
                c.close()

    # -- supervision

    def test_worker_killed_is_respawned(self):
        kids = self.start()
        with self.client() as c:
            victim = self.worker_pid_of(c)
        self.assertIn(victim, kids)
        mark = self.p.log_mark()
        os.kill(victim, signal.SIGKILL)
        self.p.wait_log("(pid %d) exited on signal 9; respawning" % victim,
                        since=mark)
        new = harness.wait_until(
            lambda: (len(self.p.children()) == 2
                     and victim not in self.p.children()
                     and self.p.children()),
            harness.START_TIMEOUT, "a new worker")
        replacement = (set(new) - set(kids)).pop()
        # Named right after fork: wait for it rather than race it.
        harness.wait_until(
            lambda: harness.process_name(replacement) == "petrel-worker",
            5, "the new worker's process name")
        for _ in range(6):
            with self.client() as c:
                self.assertEqual(c.greeting, "+OK first")
                self.assertEqual(c.cmd("ECHO alive"), "+OK alive")
                self.assertIn(self.worker_pid_of(c), new)

    # -- reload

    def test_reload_new_greeting_old_connection_drains(self):
        self.start(self.cfg(shutdown_timeout="20s"))
        old = self.client()
        self.addCleanup(old.close)
        self.assertEqual(old.greeting, "+OK first")
        old_pid = self.worker_pid_of(old)

        self.p.write_config(self.cfg("second", shutdown_timeout="20s"))
        mark = self.p.log_mark()
        self.p.signal(signal.SIGHUP)
        self.p.wait_log("reload: generation 2 accepted", since=mark)

        # Old workers may still hold a connection from the backlog for a
        # moment; after the first new greeting every one must be new.
        def new_greeting():
            with self.client() as c:
                return c.greeting == "+OK second"
        harness.wait_until(new_greeting, 5, "the new greeting")
        # Old workers that got their SIGQUIT a moment after a new worker
        # started may have taken one more connection; let them settle.
        time.sleep(0.5)
        for _ in range(8):
            with self.client() as c:
                self.assertEqual(c.greeting, "+OK second")
                self.assertNotEqual(self.worker_pid_of(c), old_pid)

        # The connection from before the reload is served to its end.
        self.assertNotIn("reload: generation 1 retired",
                         self.p.log_text()[mark:])
        self.assertEqual(old.cmd("ECHO still here"), "+OK still here")
        self.assertEqual(self.worker_pid_of(old), old_pid)
        quit_at = time.monotonic()
        self.assertEqual(old.cmd("QUIT"), "+OK bye")
        self.p.wait_log("reload: generation 1 retired", since=mark,
                        timeout=15)
        # Well before shutdown_timeout (20 s): the QUIT let it go.
        self.assertLess(time.monotonic() - quit_at, 10)
        self.assertFalse(harness.pid_alive(old_pid))
        self.assertEqual(len(self.p.wait_children(2)), 2)

    def test_reload_broken_config_keeps_old(self):
        kids = self.start()
        self.p.write_text('{"server": {,}}\n')
        mark = self.p.log_mark()
        self.p.signal(signal.SIGHUP)
        text = self.p.wait_log("reload: configuration rejected", since=mark)
        self.assertRegex(text, r"reload: configuration rejected: .*"
                         r"syntax error")
        self.assertNotIn("generation 2 accepted", self.p.log_text())
        with self.client() as c:
            self.assertEqual(c.greeting, "+OK first")
            self.assertEqual(c.cmd("ECHO ok"), "+OK ok")
        self.assertEqual(sorted(self.p.children()), sorted(kids))

    def test_reload_semantic_error_keeps_old(self):
        self.start()
        cfg = self.cfg("second")
        cfg["modules"]["example"]["listen"][0]["address"] = "nope"
        self.p.write_config(cfg)
        mark = self.p.log_mark()
        self.p.signal(signal.SIGHUP)
        self.p.wait_log('reload: configuration rejected: ', since=mark)
        self.p.wait_log('modules.example.listen[0].address: expected '
                        '"host:port"', since=mark)
        with self.client() as c:
            self.assertEqual(c.greeting, "+OK first")

    def test_two_reloads(self):
        self.start()
        for gen, greeting in ((2, "second"), (3, "third")):
            self.p.write_config(self.cfg(greeting))
            mark = self.p.log_mark()
            self.p.signal(signal.SIGHUP)
            self.p.wait_log("reload: generation %d accepted" % gen,
                            since=mark)
            self.p.wait_log("reload: generation %d retired" % (gen - 1),
                            since=mark)

            def fresh(expected="+OK " + greeting):
                with self.client() as c:
                    return c.greeting == expected
            harness.wait_until(fresh, 5, "greeting " + greeting)
        self.assertEqual(len(self.p.wait_children(2)), 2)

    # -- shutdown

    def test_sigterm_stops_everything(self):
        kids = self.start(self.cfg(shutdown_timeout="2s"))
        pid_file = os.path.join(self.p.state_dir, "petrel.pid")
        self.assertTrue(os.path.exists(pid_file))
        mark = self.p.log_mark()
        self.p.signal(signal.SIGTERM)
        status = self.p.wait_exit(2 + 5)
        self.assertEqual(status, 0, self.p.log_tail())
        text = self.p.log_text()[mark:]
        self.assertIn("shutting down", text)
        self.assertIn("stopped", text)
        # Idle workers drain and exit cleanly (a sanitizer report at exit
        # would show up here as a non-zero status or a signal).
        self.assertNotRegex(text, r"exited (on signal|with status [1-9])")
        self.assertFalse(os.path.exists(pid_file))
        for pid in kids:
            self.assertFalse(harness.pid_alive(pid), "child %d left" % pid)

    def test_sigterm_with_open_connection(self):
        """A client that never leaves does not hold the shutdown past
        shutdown_timeout."""
        kids = self.start(self.cfg(shutdown_timeout="2s"))
        c = self.client()
        self.addCleanup(c.close)
        self.assertEqual(c.cmd("ECHO x"), "+OK x")
        started = time.monotonic()
        self.p.signal(signal.SIGTERM)
        status = self.p.wait_exit(2 + 5)
        self.assertEqual(status, 0, self.p.log_tail())
        self.assertLess(time.monotonic() - started, 2 + 5)
        for pid in kids:
            self.assertFalse(harness.pid_alive(pid), "child %d left" % pid)
        self.assertTrue(c.wait_closed())

    def test_sigint_stops(self):
        self.start()
        self.p.signal(signal.SIGINT)
        self.assertEqual(self.p.wait_exit(3 + 5), 0, self.p.log_tail())

    def test_master_killed_children_exit(self):
        kids = self.start()
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.proc.wait(5)
        harness.wait_until(
            lambda: not any(harness.pid_alive(k) for k in kids), 5,
            "workers to exit after the master died")

    # -- logs

    def test_sigusr1_reopens_log_file(self):
        logdir = self.p.path("log")
        os.mkdir(logdir, 0o755)
        self.p.chown_run_user(logdir)
        log = os.path.join(logdir, "petrel.log")
        cfg = self.cfg(log={"level": "info", "target": "file",
                            "file": log})
        self.p.write_config(cfg)
        self.p.start(wait_ports=[self.port])
        self.p.wait_log("master started, 2 workers", path=log)
        rotated = log + ".1"
        os.rename(log, rotated)
        self.p.signal(signal.SIGUSR1)
        harness.wait_until(lambda: os.path.exists(log), 5,
                           "a new log file")
        # A reload makes the master and the new workers log something.
        self.p.write_config(self.cfg("second", log=cfg["server"]["log"]))
        self.p.signal(signal.SIGHUP)
        self.p.wait_log("reload: generation 2 accepted", path=log)
        self.p.wait_log("worker 0 started", path=log)
        self.assertNotIn("generation 2", self.p.log_text(rotated))
        self.assertIn("master started", self.p.log_text(rotated))
        # Every process, the unprivileged workers too, reopened it.
        for path in (log, rotated, self.p.log_path):
            self.assertNotIn("cannot reopen the log", self.p.log_text(path))

    def test_json_log_lines(self):
        self.start(self.cfg(log={"level": "info", "json": True}))
        with self.client() as c:
            self.assertEqual(c.cmd("QUIT"), "+OK bye")
        self.p.signal(signal.SIGTERM)
        self.assertEqual(self.p.wait_exit(8), 0, self.p.log_tail())
        lines = [l for l in self.p.log_text().splitlines() if l.strip()]
        self.assertTrue(lines)
        messages = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                self.fail("log line is not JSON: %r" % line)
            self.assertIsInstance(record, dict, line)
            messages.append(json.dumps(record))
        self.assertTrue(any("master started, 2 workers" in m
                            for m in messages))
        self.assertTrue(any("worker 1 started" in m for m in messages))


if __name__ == "__main__":
    unittest.main()
