# SPDX-License-Identifier: MIT
"""Relay under load: Postfix's smtp-sink as the remote MX (interop with a
real MTA's server side), and a kill -9 of every Petrel process in the
middle of a 1,000-message run: after the restart every message arrives,
and no more are duplicated than were in flight at the kill."""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import harness
import relay_harness as rh
from smtp_peer import free_port_on

DOMAIN = "sink.test"
MX = "mx.sink.test"


def smtp_sink_path():
    for p in ("/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"):
        if os.path.exists(p):
            return p
    return shutil.which("smtp-sink")


def message(n):
    return ("From: <alice@example.test>\r\nTo: <bob@sink.test>\r\n"
            "Subject: load %d\r\nMessage-ID: <load-%d@example.test>\r\n\r\n"
            "Message number %d.\r\n.dot line\r\n" % (n, n, n)).encode()


def submit_many(server, first, count, rcpt="bob@" + DOMAIN):
    """count messages in one SMTP session (one transaction each)."""
    with server.ehlo_client() as c:
        for n in range(first, first + count):
            c.expect("MAIL FROM:<%s>" % rh.SENDER, 250)
            c.expect("RCPT TO:<%s>" % rcpt, 250)
            r = c.data(message(n))
            if r.code != 250:
                raise AssertionError("message %d: %s" % (n, r))
        c.quit()


class SmtpSinkTest(harness.PetrelTestCase):
    def test_postfix_smtp_sink_gets_every_message_once(self):
        exe = smtp_sink_path()
        if exe is None:
            raise AssertionError("smtp-sink not installed (apt-get install "
                                 "postfix)")
        port = free_port_on(["127.0.0.7"])
        dump = tempfile.mkdtemp(prefix="petrel-sink-")
        self.addCleanup(shutil.rmtree, dump, True)
        args = [exe, "-d", os.path.join(dump, "%M."), "127.0.0.7:%d" % port,
                "100"]
        if harness.IS_ROOT:
            pw = pwd.getpwnam(harness.RUN_USER)
            os.chown(dump, pw.pw_uid, pw.pw_gid)
            args[1:1] = ["-u", harness.RUN_USER]
        sink = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL,
                                start_new_session=True)

        def stop():
            sink.send_signal(signal.SIGTERM)
            try:
                sink.wait(5)
            except subprocess.TimeoutExpired:
                sink.kill()
        self.addCleanup(stop)
        harness.wait_port(port, host="127.0.0.7")
        dns = rh.Dns(self, mx=[(DOMAIN, MX, 10)], hosts={MX: "127.0.0.7"})
        s = rh.RelayServer(self, dns=dns, mx_port=port)
        n = 100
        submit_many(s, 0, n)

        def dumped():
            files = []
            for root, _, names in os.walk(dump):
                files += [os.path.join(root, f) for f in names]
            return files
        def complete():
            # smtp-sink creates each file before it has written it: wait
            # until every one holds its body, not just until it exists.
            files = dumped()
            if len(files) < n:
                return None
            for path in files:
                with open(path, "rb") as f:
                    if b"\n.dot line" not in f.read():
                        return None
            return files
        files = harness.wait_until(complete, 60,
                                   "%d messages at smtp-sink" % n)
        ids = []
        for path in files:
            with open(path, "rb") as f:
                data = f.read()
            ids += re.findall(rb"Message-ID: <(load-\d+)@", data)
            # Dot-stuffed on the wire, unstuffed by the sink.
            self.assertIn(b"\n.dot line", data)
            self.assertNotIn(b"..dot line", data)
        self.assertEqual(sorted(set(ids)), sorted(
            ("load-%d" % i).encode() for i in range(n)))
        self.assertEqual(len(ids), n)


class KillTest(harness.PetrelTestCase):
    def test_kill_9_in_the_middle_of_1000_messages(self):
        total = 1000
        port, (peer,) = rh.peers(self, [("127.0.0.8", MX)])
        dns = rh.Dns(self, mx=[(DOMAIN, MX, 10)], hosts={MX: "127.0.0.8"})
        s = rh.RelayServer(self, dns=dns, mx_port=port)
        # Nothing is delivered until everything is queued (a 4xx, so
        # that no message is taken without an acknowledgement).
        gate = [True]
        peer.set_replies("MAIL", lambda a: "451 4.3.2 not yet"
                         if gate[0] else None)
        submit_many(s, 0, total)
        gate[0] = False
        # Mid-run: the peer acknowledges up to 150 messages, then holds
        # every reply to the data again. The messages it has but did not
        # acknowledge are the ones in flight. Waiting a moment lets every
        # earlier acknowledgement be recorded: then no transaction is
        # left between the peer's 250 and Petrel's record.
        peer.hold_after = 150
        harness.wait_until(lambda: len(peer.messages) >= 150, 60,
                           "150 messages at the peer")
        harness.wait_until(lambda: peer.held > 0, 20, "a held delivery")
        time.sleep(1.5)
        in_flight = peer.held
        before = len(peer.messages)
        s.p.kill_group()
        self.assertLess(before, total)
        peer.hold_after = None
        peer.holding = False

        # Restart on the same state directory.
        s.p.proc = None
        s.start()

        def unique():
            return {m.data.split(b"Message-ID: <")[1].split(b"@")[0]
                    for m in list(peer.messages)}
        harness.wait_until(lambda: len(unique()) >= total, 240,
                           "all %d messages" % total)
        time.sleep(1)
        received = len(peer.messages)
        if os.environ.get("RELAY_DEBUG"):
            seen = {}
            for i, m in enumerate(list(peer.messages)):
                k = m.data.split(b"Message-ID: <")[1].split(b"@")[0]
                seen.setdefault(k, []).append((i, m.conn.number))
            for k, v in seen.items():
                if len(v) > 1:
                    print("# dup", k, v, "before", before)
        duplicates = received - total
        print("# kill -9 after %d of %d messages, %d in flight, %d "
              "duplicates" % (before, total, in_flight, duplicates))
        self.assertEqual(len(unique()), total)
        self.assertLessEqual(duplicates, in_flight)


if __name__ == "__main__":
    unittest.main()
