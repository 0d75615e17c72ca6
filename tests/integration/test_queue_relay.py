# SPDX-License-Identifier: MIT
"""The queue with real delivery: enqueue in a worker (queue_inject), the
runner in its helper process, the SMTP client to a Python sink reached by
a route; retries, bounces, the local route, restarts."""

import os
import signal
import time
import unittest

import harness
from queue_harness import QueueServer, SmtpSink, make_message


def dsn_parts(data):
    """The parts of a multipart/report (bytes) as text, checked for the
    structure RFC 3464 asks: three parts, the second a delivery-status."""
    text = data.decode("utf-8", "replace")
    head, _, body = text.partition("\r\n\r\n")
    assert "multipart/report" in head, head
    assert "report-type=delivery-status" in head, head
    boundary = head.split('boundary="', 1)[1].split('"', 1)[0]
    assert body.rstrip("\r\n").endswith("--%s--" % boundary), body[-200:]
    parts = body.split("\r\n--%s" % boundary)[1:-1]
    return head, [p.lstrip("\r\n") for p in parts]


class QueueRelayTest(harness.PetrelTestCase):

    def sink(self, policy=None, port=None):
        s = SmtpSink(policy=policy, port=port).start()
        self.addCleanup(s.stop)
        return s

    def test_deliver_through_route(self):
        sink = self.sink()
        q = QueueServer(self, sink.port)
        ids = [q.enqueue("alice@example.test",
                         ["bob@remote.test", "carol@other.test"],
                         make_message("m%d" % i)) for i in range(3)]
        sink.wait_count(6, 30)
        q.wait_empty(10)
        got = sink.snapshot()
        self.assertEqual(sorted(m.rcpts[0] for m in got),
                         ["bob@remote.test"] * 3 + ["carol@other.test"] * 3)
        for m in got:
            self.assertEqual(m.mail_from, "alice@example.test")
            self.assertIn(b"Subject: m", m.data)
        # The runner logs the removal after the unlink that wait_empty()
        # sees, so wait for the line rather than read the log at once.
        for qid in ids:
            q.p.wait_log("queue: %s: removed (done)" % qid, timeout=10)
        log = q.p.log_text()
        for qid in ids:
            self.assertIn("queue: %s: queued from=<alice@example.test> "
                          "nrcpt=2" % qid, log)

    def test_tempfail_then_success(self):
        tries = {}

        def policy(stage, mail_from, arg):
            if stage == "rcpt":
                tries[arg] = tries.get(arg, 0) + 1
                if tries[arg] <= 2:
                    return "451 4.3.0 come back later"
            return None

        sink = self.sink(policy)
        q = QueueServer(self, sink.port)
        qid = q.enqueue("alice@example.test", ["bob@remote.test"],
                        make_message("retry me"))
        sink.wait_count(1, 30)
        q.wait_empty(10)
        self.assertEqual(tries["bob@remote.test"], 3)
        log = q.p.log_text()
        self.assertIn("%s: to=<bob@remote.test>" % qid, log)
        self.assertIn("attempts=1 status=deferred", log)
        self.assertIn("attempts=3 status=delivered", log)

    def test_permfail_bounce_to_remote_sender(self):
        def policy(stage, mail_from, arg):
            if stage == "rcpt" and arg == "nobody@remote.test":
                return "550 5.1.1 <nobody@remote.test>: no such user"
            return None

        sink = self.sink(policy)
        q = QueueServer(self, sink.port)
        qid = q.enqueue("alice@sender.test",
                        ["nobody@remote.test", "bob@remote.test"],
                        make_message("will bounce"), "ENVID=E-77",
                        "ORCPT=rfc822;Nobody@Remote.test")
        sink.wait_count(2, 30)
        q.wait_empty(10)
        msgs = sink.snapshot()
        normal = [m for m in msgs if m.mail_from]
        dsn = [m for m in msgs if not m.mail_from]
        self.assertEqual([m.rcpts for m in normal], [["bob@remote.test"]])
        self.assertEqual(len(dsn), 1)
        self.assertEqual(dsn[0].rcpts, ["alice@sender.test"])
        head, parts = dsn_parts(dsn[0].data)
        self.assertIn("To: <alice@sender.test>", head)
        self.assertIn("Auto-Submitted: auto-replied", head)
        self.assertEqual(len(parts), 3)
        self.assertIn("Content-Type: message/delivery-status", parts[1])
        self.assertIn("Original-Envelope-Id: E-77", parts[1])
        self.assertIn("X-Petrel-Queue-ID: %s" % qid, parts[1])
        self.assertIn("Original-Recipient: rfc822;Nobody@Remote.test",
                      parts[1])
        self.assertIn("Final-Recipient: rfc822; nobody@remote.test\r\n"
                      "Action: failed\r\nStatus: 5.1.1", parts[1])
        self.assertIn("Diagnostic-Code: smtp; 550 5.1.1 "
                      "<nobody@remote.test>: no such user", parts[1])
        self.assertNotIn("bob@remote.test", parts[1])
        self.assertIn("Subject: will bounce", parts[2])

    def test_bounce_to_local_sender_through_storage(self):
        def policy(stage, mail_from, arg):
            if stage == "rcpt":
                return "554 5.7.1 rejected"
            return None

        sink = self.sink(policy)
        q = QueueServer(self, sink.port, start=False)
        mail = q.p.path("mail")
        os.mkdir(mail)
        q.p.chown_run_user(mail)
        q.modules["maildir"] = {"location": mail + "/%d/%n/Maildir"}
        q.section["local_domains"] = ["example.test"]
        q.p.write_config(q.p.config(modules=q.modules))
        q.start()
        q.enqueue("alice@example.test", ["bob@remote.test"],
                  make_message("bounce home"))
        new = os.path.join(mail, "example.test", "alice", "Maildir", "new")
        harness.wait_until(lambda: os.path.isdir(new) and os.listdir(new),
                           30, "the report in alice's mailbox")
        q.wait_empty(10)
        with open(os.path.join(new, os.listdir(new)[0]), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"Return-Path: <>\r\n"
                                        b"Delivered-To: alice@example.test"
                                        b"\r\n"), data[:200])
        _, parts = dsn_parts(data.split(b"\r\n", 2)[2])
        self.assertIn("Action: failed", parts[1])
        self.assertIn("Diagnostic-Code: smtp; 554 5.7.1 rejected", parts[1])
        # Nothing came back to the remote side but the one attempt.
        self.assertEqual(sink.snapshot(), [])

    def test_local_route_retried(self):
        q = QueueServer(self, None, start=False)
        mail = q.p.path("mail")
        os.mkdir(mail)
        q.p.chown_run_user(mail)
        q.modules["maildir"] = {"location": mail + "/%d/%n/Maildir"}
        q.section["local_domains"] = ["example.test"]
        q.p.write_config(q.p.config(modules=q.modules))
        # Not writable for the server's user (as root the workers run as
        # the unprivileged account, so the mode applies to them too).
        os.chmod(mail, 0o500)
        q.start()
        mark = q.p.log_mark()
        q.enqueue("someone@remote.test", ["carol@example.test"],
                  make_message("for carol"))
        q.p.wait_log("to=<carol@example.test> relay=local attempts=1 "
                     "status=deferred", 30, since=mark)
        os.chmod(mail, 0o755)
        new = os.path.join(mail, "example.test", "carol", "Maildir", "new")
        harness.wait_until(lambda: os.path.isdir(new) and os.listdir(new),
                           30, "the message in carol's mailbox")
        q.wait_empty(10)
        with open(os.path.join(new, os.listdir(new)[0]), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(
            b"Return-Path: <someone@remote.test>\r\n"
            b"Delivered-To: carol@example.test\r\n"), data[:200])
        self.assertIn(b"Subject: for carol", data)

    def test_remote_down_then_up(self):
        port = harness.free_port()
        q = QueueServer(self, port)
        mark = q.p.log_mark()
        qid = q.enqueue("alice@example.test", ["bob@remote.test"],
                        make_message("patience"))
        q.p.wait_log("%s: to=<bob@remote.test>" % qid, 30, since=mark)
        self.assertIn("status=deferred", q.p.log_text()[mark:])
        self.assertEqual(q.queued_ids(), [qid])
        sink = self.sink(port=port)
        sink.wait_count(1, 30)
        q.wait_empty(10)

    def test_survives_restart(self):
        port = harness.free_port()
        q = QueueServer(self, port)
        mark = q.p.log_mark()
        qid = q.enqueue("alice@example.test", ["bob@remote.test"],
                        make_message("across a restart"))
        q.p.wait_log("%s: to=<bob@remote.test>" % qid, 30, since=mark)
        q.p.stop()
        self.assertEqual(q.queued_ids(), [qid])
        sink = self.sink(port=port)
        q.start()
        sink.wait_count(1, 30)
        q.wait_empty(10)
        self.assertIn(b"across a restart", sink.snapshot()[0].data)

    def test_notify_success_report(self):
        sink = self.sink()
        q = QueueServer(self, sink.port)
        q.enqueue("alice@sender.test", ["bob@remote.test"],
                  make_message("tell me"), "NOTIFY=SUCCESS,FAILURE")
        sink.wait_count(2, 30)
        q.wait_empty(10)
        dsn = [m for m in sink.snapshot() if not m.mail_from]
        self.assertEqual(len(dsn), 1)
        head, parts = dsn_parts(dsn[0].data)
        self.assertIn("Subject: Successful Mail Delivery Report", head)
        self.assertIn("Action: relayed\r\nStatus: 2.0.0", parts[1])

    def test_never_a_bounce_for_a_bounce(self):
        def policy(stage, mail_from, arg):
            if stage == "rcpt":
                return "550 5.1.1 no"
            return None

        sink = self.sink(policy)
        q = QueueServer(self, sink.port)
        mark = q.p.log_mark()
        qid = q.enqueue("<>", ["bob@remote.test"], make_message("a DSN"))
        q.p.wait_log("%s: removed (done)" % qid, 30, since=mark)
        qid2 = q.enqueue("alice@sender.test", ["bob@remote.test"],
                         make_message("x"), "NOTIFY=NEVER")
        q.p.wait_log("%s: removed (done)" % qid2, 30, since=mark)
        time.sleep(0.5)
        self.assertEqual(q.queued_ids(), [])
        self.assertNotIn("delivery status notification",
                         q.p.log_text()[mark:])

    def test_lifetime_expiry_bounces(self):
        def policy(stage, mail_from, arg):
            if stage == "rcpt" and arg == "slow@remote.test":
                return "451 4.4.1 not now"
            return None

        sink = self.sink(policy)
        q = QueueServer(self, sink.port, queue={"lifetime": "3s"})
        q.enqueue("alice@sender.test", ["slow@remote.test"],
                  make_message("too slow"))
        sink.wait_count(1, 30)
        q.wait_empty(10)
        dsn = sink.snapshot()[0]
        self.assertEqual(dsn.mail_from, "")
        _, parts = dsn_parts(dsn.data)
        self.assertIn("Action: failed\r\nStatus: 5.4.7", parts[1])
        self.assertIn("delivery time expired; last error: 451 4.4.1",
                      parts[1])

    def test_delay_warning(self):
        def policy(stage, mail_from, arg):
            if stage == "rcpt" and arg == "slow@remote.test":
                return "451 4.4.1 not now"
            return None

        sink = self.sink(policy)
        q = QueueServer(self, sink.port,
                        queue={"delay_warning": "1s", "lifetime": "1h"})
        q.enqueue("alice@sender.test", ["slow@remote.test"],
                  make_message("delayed"))
        sink.wait_count(1, 30)
        time.sleep(3)
        warnings = sink.snapshot()
        self.assertEqual(len(warnings), 1, "one warning, not one per try")
        head, parts = dsn_parts(warnings[0].data)
        self.assertIn("Subject: Delayed Mail", head)
        self.assertIn("Action: delayed\r\nStatus: 4.4.1", parts[1])
        self.assertIn("Will-Retry-Until:", parts[1])
        self.assertEqual(len(q.queued_ids()), 1)

    def test_reload_keeps_one_runner(self):
        sink = self.sink()
        q = QueueServer(self, sink.port)
        q.enqueue("alice@example.test", ["bob@remote.test"],
                  make_message("before"))
        sink.wait_count(1, 30)
        mark = q.p.log_mark()
        q.p.signal(signal.SIGHUP)
        q.p.wait_log("reload: generation 2 accepted", 15, since=mark)
        # The new helper runs only once the old one let go of the spool.
        q.p.wait_log("queue: runner started", 15, since=mark)
        for i in range(5):
            q.enqueue("alice@example.test", ["bob@remote.test"],
                      make_message("after %d" % i))
        sink.wait_count(6, 30)
        q.wait_empty(10)
        time.sleep(0.5)
        subjects = sorted(m.header("Subject") for m in sink.snapshot())
        self.assertEqual(subjects, ["after %d" % i for i in range(5)] +
                         ["before"])


if __name__ == "__main__":
    unittest.main()
