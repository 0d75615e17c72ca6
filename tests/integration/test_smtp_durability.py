# SPDX-License-Identifier: MIT
"""Durability and storage failures (issue 3 point 8): a 250 after the
data means the message is in the mailbox at that moment; a worker killed
in the middle of DATA leaves nothing behind; a storage failure gives a
4xx and nothing half-written (read-only Maildir, read-only SQLite
database, unwritable spool, full disk)."""

import os
import signal
import subprocess
import time
import unittest

import harness
from smtp_harness import SmtpServer, make_message, split_stored, dot_stuff

ALICE = "alice@example.test"
BOB = "bob@example.test"


class Durable(harness.PetrelTestCase):

    BACKEND = "maildir"

    def setUp(self):
        self.s = SmtpServer(self, self.BACKEND)

    def test_250_means_stored(self):
        msgs = [make_message("durable %d" % i, size=2000 + 997 * i)
                for i in range(20)]
        with self.s.ehlo_client() as c:
            for i, m in enumerate(msgs):
                r = c.send_mail("a@example.org", [ALICE], m)
                self.assertEqual(r.code, 250, r)
                # Looked at right after the reply, without waiting.
                stored = self.s.messages(ALICE)
                self.assertEqual(len(stored), i + 1)
                self.assertIn(m, [split_stored(x)[3] for x in stored])
                if self.BACKEND == "maildir":
                    self.assertEqual(self.s.files(ALICE, "tmp"), [])
                    for path in self.s.files(ALICE, "new"):
                        self.assertRegex(os.path.basename(path),
                                         r",S=%d$" % os.path.getsize(path))

    def find_session_worker(self):
        workers = self.s.worker_pids()
        self.assertEqual(len(workers), 1)
        return workers[0]

    def test_kill_worker_in_data(self):
        first = make_message("kept")
        with self.s.ehlo_client() as c:
            self.assertEqual(c.send_mail("a@example.org", [ALICE],
                                         first).code, 250)
        worker = self.find_session_worker()
        c = self.s.ehlo_client()
        c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        c.expect("RCPT TO:<%s>" % BOB, 250, "2.1.5")
        c.expect("DATA", 354)
        half = make_message("partial", size=300000)
        c.send(dot_stuff(half)[:200000])
        time.sleep(0.3)
        os.kill(worker, signal.SIGKILL)
        self.assertTrue(c.closed(10))
        c.close()
        time.sleep(0.3)
        stored = self.s.messages(ALICE)
        self.assertEqual(len(stored), 1)
        self.assertEqual(split_stored(stored[0])[3], first)
        self.assertEqual(self.s.messages(BOB), [])
        if self.BACKEND == "maildir":
            for user in (ALICE, BOB):
                self.assertEqual(self.s.files(user, "tmp"), [])
        # The master starts another worker, and mail flows again.
        self.s.p.wait_log("worker 0 started", count=2, timeout=15)
        second = make_message("after restart")
        c = harness.wait_until(lambda: _connect(self.s), 10, "a worker")
        with c:
            c.ehlo()
            self.assertEqual(c.send_mail("a@example.org", [ALICE],
                                         second).code, 250)
        self.assertEqual(len(self.s.messages(ALICE)), 2)

    def test_client_gone_after_data_end(self):
        """The client disconnects right after the final dot: the message
        is stored in full or not at all."""
        msg = make_message("gone", size=100000)
        c = self.s.ehlo_client()
        c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        c.expect("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.close()
        time.sleep(1)
        stored = self.s.messages(ALICE)
        self.assertLessEqual(len(stored), 1)
        for m in stored:
            self.assertEqual(split_stored(m)[3], msg)


class DurableSqlite(Durable):
    BACKEND = "sqlite"


def _connect(s):
    try:
        return s.connect()
    except (AssertionError, OSError):
        return None


class StorageFailure(harness.PetrelTestCase):
    """Root bypasses file modes; the workers run as an unprivileged user
    when the tests run as root, so the modes below apply to them."""

    def test_readonly_maildir(self):
        s = SmtpServer(self)
        with s.ehlo_client() as c:
            self.assertEqual(c.send_mail("a@example.org", [ALICE],
                                         make_message("first")).code, 250)
        maildir = s.maildir(ALICE)
        for sub in ("tmp", "new"):
            os.chmod(os.path.join(maildir, sub), 0o555)
        self.addCleanup(self.restore, maildir)
        msg = make_message("refused")
        with s.ehlo_client() as c:
            r = c.send_mail("a@example.org", [ALICE], msg)
            self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
            self.assertIn("Temporary storage failure", r.text)
            # Two recipients, one failing: 451 for the message.
            r = c.send_mail("a@example.org", [BOB, ALICE], msg)
            self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
            c.expect("NOOP", 250, "2.0.0")
        self.assertEqual(len(s.files(ALICE, "new")), 1)
        self.assertEqual(s.files(ALICE, "tmp"), [])
        self.assertEqual(s.files(BOB, "tmp"), [])
        for m in s.messages(BOB):
            self.assertEqual(split_stored(m)[3], msg)
        log = s.p.wait_log("storage failed for 1 of ")
        self.assertIn("maildir: delivery to alice@example.test failed", log)
        if s.messages(BOB):
            self.assertIn("will be duplicated", log)
        # Writable again: the retry is accepted.
        self.restore(maildir)
        with s.ehlo_client() as c:
            self.assertEqual(c.send_mail("a@example.org", [ALICE],
                                         msg).code, 250)
        self.assertEqual(split_stored(s.messages(ALICE)[-1])[3], msg)

    def restore(self, maildir):
        for sub in ("tmp", "new"):
            os.chmod(os.path.join(maildir, sub), 0o700)

    def test_over_quota_permanent(self):
        """Every copy refused permanently (over quota): 554 5.3.0."""
        s = SmtpServer(self, start=False)
        s.cfg["modules"]["maildir"]["quota"] = "10k"
        s.p.write_config(s.cfg)
        s.start()
        big = make_message("over quota", size=20000)
        small = make_message("fits")
        with s.ehlo_client() as c:
            r = c.send_mail("a@example.org", [ALICE], big)
            self.assertEqual((r.code, r.enhanced), (554, "5.3.0"), r)
            r = c.send_mail("a@example.org", [ALICE], small)
            self.assertEqual(r.code, 250, r)
            # One permanent and one good copy: not "every copy".
            r = c.send_mail("a@example.org", [ALICE, BOB], big)
            self.assertNotEqual(r.code, 250, r)
        self.assertEqual([split_stored(m)[3] for m in s.messages(ALICE)],
                         [small])
        self.assertEqual(s.files(ALICE, "tmp"), [])

    def test_readonly_sqlite(self):
        """The database cannot be created (its directory is read-only):
        451, then a delivery once the directory is writable works."""
        s = SmtpServer(self, "sqlite")
        os.chmod(s.mail_dir, 0o555)
        self.addCleanup(os.chmod, s.mail_dir, 0o755)
        msg = make_message("sqlite retry")
        with s.ehlo_client() as c:
            r = c.send_mail("a@example.org", [ALICE], msg)
            self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
            os.chmod(s.mail_dir, 0o755)
            r = c.send_mail("a@example.org", [ALICE], msg)
            self.assertEqual(r.code, 250, r)
        stored = s.messages(ALICE)
        self.assertEqual(len(stored), 1)
        self.assertEqual(split_stored(stored[0])[3], msg)
        s.p.wait_log("sqlite: delivery to alice@example.test failed")

    def test_unwritable_spool(self):
        s = SmtpServer(self, start=False)
        spool = s.p.path("spool")
        os.mkdir(spool, 0o700)
        s.p.chown_run_user(spool)
        s.cfg["modules"]["smtp"]["spool_dir"] = spool
        s.p.write_config(s.cfg)
        s.start()
        os.chmod(spool, 0o500)
        self.addCleanup(os.chmod, spool, 0o700)
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
            r = c.cmd("DATA")
            if r.code == 354:
                c.send(dot_stuff(make_message("spool")) + b".\r\n")
                r = c.reply(kind="DATA-END")
            self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
        self.assertEqual(s.count_all(), 0)

    def test_disk_full(self):
        if not harness.IS_ROOT:
            self.skipTest("needs root to mount a tmpfs")
        s = SmtpServer(self, start=False)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o",
                                 "size=1m,mode=0755", "tmpfs", s.mail_dir],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=10)
        if result.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % result.stdout)
        self.addCleanup(subprocess.run, ["umount", "-l", s.mail_dir],
                        timeout=10)
        s.p.chown_run_user(s.mail_dir)
        s.start()
        small = make_message("small")
        big = make_message("big", size=2 * 1024 * 1024)
        with s.ehlo_client() as c:
            self.assertEqual(c.send_mail("a@example.org", [ALICE],
                                         small).code, 250)
            r = c.send_mail("a@example.org", [ALICE], big, timeout=60)
            self.assertEqual((r.code, r.enhanced), (451, "4.3.0"), r)
            self.assertEqual(c.send_mail("a@example.org", [ALICE],
                                         small).code, 250)
        self.assertEqual(s.files(ALICE, "tmp"), [])
        stored = s.messages(ALICE)
        self.assertEqual(len(stored), 2)
        for m in stored:
            self.assertEqual(split_stored(m)[3], small)


if __name__ == "__main__":
    unittest.main()
