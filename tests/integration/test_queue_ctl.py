# SPDX-License-Identifier: MIT
"""petrelctl queue list|show|flush|retry|delete against a running petrel
(and a stopped one): what admins use to see and steer the queue."""

import os
import time
import unittest

import harness
from queue_harness import QueueServer, SmtpSink, make_message


class QueueCtlTest(harness.PetrelTestCase):

    def setUp(self):
        self.accept = False

        def policy(stage, mail_from, arg):
            if stage == "rcpt" and not self.accept:
                return "451 4.7.1 greylisted"
            return None

        self.sink = SmtpSink(policy=policy).start()
        self.addCleanup(self.sink.stop)
        # An hour of backoff: only petrelctl makes it try again.
        self.q = QueueServer(self, self.sink.port,
                             queue={"backoff_min": "1h",
                                    "backoff_max": "4h"})

    def deferred(self, subject, *rcpts):
        mark = self.q.p.log_mark()
        rcpts = rcpts or ("bob@remote.test",)
        qid = self.q.enqueue("alice@example.test", list(rcpts),
                             make_message(subject))
        for r in rcpts:
            self.q.p.wait_log("%s: to=<%s>" % (qid, r), 30, since=mark)
        # The log line can come before the recipient's new state is in
        # the spool: wait for what petrelctl reads.
        want = "0 pending, %d deferred" % len(rcpts)
        harness.wait_until(
            lambda: any(qid in line and want in line
                        for line in self.ctl("list").stdout.splitlines()),
            15, "%s: %s" % (qid, want))
        return qid

    def ctl(self, *args):
        return self.q.petrelctl(*args)

    def test_list_and_show(self):
        qid = self.deferred("listed", "bob@remote.test", "carol@other.test")
        r = self.ctl("list")
        self.assertExit(r, 0)
        self.assertIn(qid, r.stdout)
        self.assertIn("<alice@example.test>", r.stdout)
        self.assertIn("2 rcpt: 0 pending, 2 deferred, 0 delivered, "
                      "0 failed", r.stdout)
        self.assertIn("1 message in the queue", r.stdout)
        r = self.ctl("show", qid)
        self.assertExit(r, 0)
        self.assertIn("id:        %s" % qid, r.stdout)
        self.assertIn("from:      <alice@example.test>", r.stdout)
        self.assertIn("rcpt:      <bob@remote.test> deferred, 1 attempt, "
                      "next ", r.stdout)
        self.assertIn("last: 451 4.7.1 greylisted", r.stdout)
        self.assertIn("host: ", r.stdout)
        # Errors: unknown id, not an id, bad verb.
        r = self.ctl("show", "NOSUCHID")
        self.assertExit(r, 1)
        self.assertIn("no such message", r.stderr)
        r = self.ctl("show", "../../etc/passwd")
        self.assertExit(r, 2)
        r = self.ctl("frobnicate")
        self.assertExit(r, 2)

    def test_flush(self):
        qid = self.deferred("flush me")
        self.accept = True
        r = self.ctl("flush", qid)
        self.assertExit(r, 0)
        self.assertIn("taken by the queue runner", r.stdout)
        self.sink.wait_count(1, 15)
        self.q.wait_empty(10)
        r = self.ctl("list")
        self.assertIn("0 messages in the queue", r.stdout)

    def test_flush_all(self):
        ids = [self.deferred("all %d" % i) for i in range(3)]
        self.accept = True
        r = self.ctl("flush")
        self.assertExit(r, 0)
        self.sink.wait_count(3, 15)
        self.q.wait_empty(10)
        self.assertEqual(len(ids), 3)

    def test_retry(self):
        qid = self.deferred("retry me")
        self.accept = True
        r = self.ctl("retry", qid)
        self.assertExit(r, 0)
        self.sink.wait_count(1, 15)
        self.q.wait_empty(10)
        self.assertIn("%s: retry requested by petrelctl" % qid,
                      self.q.p.log_text())

    def test_delete(self):
        qid = self.deferred("delete me")
        keep = self.deferred("keep me")
        r = self.ctl("delete", qid)
        self.assertExit(r, 0)
        self.q.p.wait_log("queue: %s: deleted" % qid, 10)
        self.assertEqual(self.q.queued_ids(), [keep])
        # No report for a deleted message.
        time.sleep(0.5)
        self.assertEqual(self.sink.snapshot(), [])
        r = self.ctl("delete", qid)
        self.assertExit(r, 1)

    def test_requests_wait_for_the_runner(self):
        qid = self.deferred("while down")
        self.q.p.stop()
        # Reading works without the server.
        r = self.ctl("show", qid)
        self.assertExit(r, 0)
        r = self.ctl("delete", qid)
        self.assertExit(r, 0)
        self.assertIn("has not taken it yet", r.stdout)
        self.assertEqual(self.q.queued_ids(), [qid])
        self.q.start()
        self.q.wait_empty(15)
        self.assertEqual(self.sink.snapshot(), [])

    def test_malformed_request_ignored(self):
        ctl = os.path.join(self.q.queue_dir, "ctl")
        with open(os.path.join(ctl, ".x"), "wb") as f:
            f.write(b"REQ 6:delete\nID 9:../../etc\n")
        os.rename(os.path.join(ctl, ".x"), os.path.join(ctl, "bad"))
        self.q.p.wait_log("ignored a malformed request", 10)
        harness.wait_until(lambda: not os.listdir(ctl), 10,
                           "the request removed")


if __name__ == "__main__":
    unittest.main()
