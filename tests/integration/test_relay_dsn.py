# SPDX-License-Identifier: MIT
"""Success DSNs across a relay hop (RFC 3461 5.2), with Postfix's
smtp-sink as the next hop: when it advertises DSN, NOTIFY, ORCPT, RET and
ENVID go on with the message and the sender gets nothing from Petrel;
when it does not (smtp-sink -N), the sender gets a "relayed" report in
her mailbox. And a "delivered" report for NOTIFY=SUCCESS on the queue's
local route."""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import harness
import relay_harness as rh
import smtp_harness
from queue_harness import QueueServer, SmtpSink, make_message
from smtp_peer import free_port_on

DOMAIN = "dsn.test"
MX = "mx.dsn.test"
SINK_ADDR = "127.0.0.11"
BODY_MARK = b"dsn relay test body"


def smtp_sink_path():
    for p in ("/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"):
        if os.path.exists(p):
            return p
    return shutil.which("smtp-sink")


def queue_id(log_line):
    """The queue id in "queue: ID: to=<...> ... status=..."."""
    m = re.search(r"queue: ([0-9A-F]+): to=<", log_line)
    if m is None:
        raise AssertionError("no queue id in %s" % log_line)
    return m.group(1)


class RelayDsnTest(harness.PetrelTestCase):

    def sink(self, *options):
        """smtp-sink on SINK_ADDR dumping every transaction to a file;
        returns (port, dump directory)."""
        exe = smtp_sink_path()
        if exe is None:
            raise AssertionError("smtp-sink not installed (apt-get install "
                                 "postfix)")
        port = free_port_on([SINK_ADDR])
        dump = tempfile.mkdtemp(prefix="petrel-dsn-sink-")
        self.addCleanup(shutil.rmtree, dump, True)
        args = [exe] + list(options) + [
            "-h", MX, "-d", os.path.join(dump, "m."),
            "%s:%d" % (SINK_ADDR, port), "10"]
        if harness.IS_ROOT:
            pw = pwd.getpwnam(harness.RUN_USER)
            os.chown(dump, pw.pw_uid, pw.pw_gid)
            args[1:1] = ["-u", harness.RUN_USER]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)

        def stop():
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.addCleanup(stop)
        harness.wait_port(port, host=SINK_ADDR)
        return port, dump

    def dumped(self, dump, n=1):
        """The transactions the sink wrote, once n of them are whole."""
        def whole():
            out = []
            for name in os.listdir(dump):
                with open(os.path.join(dump, name), "rb") as f:
                    data = f.read()
                if BODY_MARK not in data:
                    return None
                out.append(data)
            return out if len(out) >= n else None
        return harness.wait_until(whole, 30, "%d messages at smtp-sink" % n)

    def server(self, sink_port):
        dns = rh.Dns(self, mx=[(DOMAIN, MX, 10)], hosts={MX: SINK_ADDR})
        return rh.RelayServer(self, dns=dns, mx_port=sink_port)

    def submit(self, s):
        msg = smtp_harness.make_message(subject="dsn test",
                                        body=BODY_MARK + b"\r\n",
                                        sender=rh.SENDER)
        s.submit(
            ["bob@" + DOMAIN], msg,
            mail_params=" RET=HDRS ENVID=env+2Did-42",
            rcpt_params=" NOTIFY=SUCCESS,FAILURE "
                        "ORCPT=rfc822;bob+2Borig@" + DOMAIN)

    def test_next_hop_with_dsn_gets_the_parameters_no_report(self):
        port, dump = self.sink()
        s = self.server(port)
        self.submit(s)
        (data,) = self.dumped(dump)
        head = data.split(b"\n\n", 1)[0].decode()
        mail_args = re.search(r"^X-Mail-Args: (.*)$", head, re.M).group(1)
        rcpt_args = re.search(r"^X-Rcpt-Args: (.*)$", head, re.M).group(1)
        self.assertIn("RET=HDRS", mail_args)
        self.assertIn("ENVID=env-id-42", mail_args)
        self.assertIn("NOTIFY=SUCCESS,FAILURE", rcpt_args)
        self.assertIn("ORCPT=rfc822;bob+2Borig@" + DOMAIN, rcpt_args)
        # Delivered, done and gone, without a report: the next hop has
        # the NOTIFY and reports success itself (RFC 3461 5.2.1).
        qid = queue_id(s.wait_status("bob@" + DOMAIN, "delivered"))
        s.p.wait_log("queue: %s: removed (done)" % qid, timeout=20)
        self.assertNotIn("delivery status notification", s.p.log_text())
        self.assertEqual(s.messages(rh.SENDER), [])

    def test_next_hop_without_dsn_relayed_report_to_sender(self):
        port, dump = self.sink("-N")
        s = self.server(port)
        self.submit(s)
        (data,) = self.dumped(dump)
        head = data.split(b"\n\n", 1)[0].decode()
        self.assertNotIn("NOTIFY=", head)
        self.assertNotIn("ORCPT=", head)
        self.assertNotIn("ENVID=", head)
        qid = queue_id(s.wait_status("bob@" + DOMAIN, "delivered"))
        # RFC 3461 5.2.2: a "relayed" DSN goes back to the sender.
        (report,) = s.wait_messages(rh.SENDER, 1, timeout=20)
        text = report.decode("utf-8", "replace")
        self.assertIn("multipart/report", text)
        self.assertIn("report-type=delivery-status", text)
        self.assertIn("Original-Envelope-Id: env-id-42", text)
        self.assertIn("Original-Recipient: rfc822;bob+orig@" + DOMAIN,
                      text)
        self.assertIn("Final-Recipient: rfc822; bob@" + DOMAIN, text)
        self.assertIn("Action: relayed", text)
        self.assertIn("Status: 2.0.0", text)
        self.assertIn("Remote-MTA: dns; ", text)
        self.assertIn("X-Petrel-Queue-ID: %s" % qid, text)
        # RET=HDRS: the header comes back, not the body.
        self.assertIn("text/rfc822-headers", text)
        self.assertNotIn(BODY_MARK.decode(), text)
        s.p.wait_log("queue: %s: removed (done)" % qid, timeout=20)

    def test_local_route_delivered_report(self):
        """The queue's local route with NOTIFY=SUCCESS: a "delivered"
        report, from the queue, to the (remote) sender."""
        sink = SmtpSink().start()
        self.addCleanup(sink.stop)
        q = QueueServer(self, sink.port, start=False)
        mail = q.p.path("mail")
        os.mkdir(mail)
        q.p.chown_run_user(mail)
        q.modules["maildir"] = {"location": mail + "/%d/%n/Maildir"}
        q.section["local_domains"] = ["example.test"]
        q.p.write_config(q.p.config(modules=q.modules))
        q.start()
        q.enqueue("carol@sender.test", ["dave@example.test"],
                  make_message("local success"), "NOTIFY=SUCCESS")
        sink.wait_count(1, 30)
        q.wait_empty(10)
        new = os.path.join(mail, "example.test", "dave", "Maildir", "new")
        self.assertEqual(len(os.listdir(new)), 1)
        (dsn,) = sink.snapshot()
        self.assertEqual(dsn.mail_from, "")
        self.assertEqual(dsn.rcpts, ["carol@sender.test"])
        text = dsn.data.decode("utf-8", "replace")
        self.assertIn("Final-Recipient: rfc822; dave@example.test", text)
        self.assertIn("Action: delivered", text)
        self.assertIn("Status: 2.0.0", text)


class LocalSuccessReportTest(harness.PetrelTestCase):
    """RFC 3461 6.2: a local recipient whose RCPT asked NOTIFY=SUCCESS gets
    its message stored and the sender a "delivered" report, also when the
    message came in over SMTP (the smtp module hands such recipients to
    the queue's local route, which stores and reports)."""

    def server(self):
        return rh.RelayServer(self, dns=rh.Dns(self), mx_port=9)

    def test_delivered_report_for_a_local_recipient(self):
        s = self.server()
        mark = s.p.log_mark()
        msg = smtp_harness.make_message(subject="local dsn",
                                        body=BODY_MARK + b"\r\n",
                                        sender=rh.SENDER)
        s.submit(["bob@example.test", "carol@example.test"], msg,
                 mail_params=" ENVID=local-42", rcpt_params="")
        s.submit(["bob@example.test"], msg, mail_params=" ENVID=local-43",
                 rcpt_params=" NOTIFY=SUCCESS")
        s.wait_messages("bob@example.test", 2, timeout=20)
        self.assertEqual(len(s.messages("carol@example.test")), 1)
        (report,) = s.wait_messages(rh.SENDER, 1, timeout=20)
        text = report.decode("utf-8", "replace")
        self.assertIn("multipart/report", text)
        self.assertIn("Original-Envelope-Id: local-43", text)
        self.assertIn("Final-Recipient: rfc822; bob@example.test", text)
        self.assertIn("Action: delivered", text)
        self.assertIn("Status: 2.0.0", text)
        # Only the second message went through the queue ...
        log = s.p.wait_log(" accepted from=<%s>" % rh.SENDER, 5, since=mark,
                           count=2)
        accepted = [l for l in log.splitlines() if " accepted from=" in l]
        self.assertNotIn(" queued=", accepted[0])
        self.assertIn(" queued=", accepted[1])
        # ... and the one without NOTIFY=SUCCESS brought no report.
        self.assertEqual(len(s.messages(rh.SENDER)), 1)
        for stored in s.messages("bob@example.test"):
            self.assertIn(BODY_MARK, stored)
            self.assertTrue(stored.startswith(b"Return-Path: <%s>"
                                              % rh.SENDER.encode()))

    def test_failure_only_is_stored_directly(self):
        s = self.server()
        mark = s.p.log_mark()
        s.submit(["bob@example.test"], None,
                 rcpt_params=" NOTIFY=FAILURE,DELAY")
        s.wait_messages("bob@example.test", 1, timeout=10)
        log = s.p.wait_log(" accepted from=", 5, since=mark)
        self.assertNotIn(" queued=", log)
        self.assertEqual(s.messages(rh.SENDER), [])


if __name__ == "__main__":
    unittest.main()
