# SPDX-License-Identifier: MIT
"""kill -9 of every petrel process in the middle of a 1,000-message relay
run, then a restart: every message arrives, and the only duplicates are
messages that were in flight at the kill (accepted by the remote, not yet
recorded by the queue), counted here."""

import os
import re
import signal
import sys
import threading
import time
import unittest

import harness
from queue_harness import QueueServer, SmtpSink

COUNT = 1000
KILL_AT = 400
SEQ = re.compile(rb"\r\nX-Seq: (\d+)\r\n")


def seq_of(data):
    m = SEQ.search(data)
    return int(m.group(1)) if m else None


class QueueDurabilityTest(harness.PetrelTestCase):

    def test_kill9_mid_run(self):
        gate = threading.Event()

        def policy(stage, mail_from, arg):
            if stage == "data":
                gate.wait(120)
            return None

        sink = SmtpSink(policy=policy).start()
        self.addCleanup(sink.stop)
        self.addCleanup(gate.set)
        q = QueueServer(self, sink.port,
                        queue={"max_concurrency": 20,
                               "max_per_destination": 20})
        # 1. Queue them all (each +OK means: on disk, fsync'd).
        t0 = time.monotonic()
        with q.inject() as c:
            for i in range(COUNT):
                body = ("Subject: seq %d\r\nX-Seq: %d\r\n\r\nmessage %d\r\n"
                        % (i, i, i)).encode()
                c.enqueue("alice@example.test",
                          ["rcpt%d@remote.test" % (i % 7)], body)
        enqueue_s = time.monotonic() - t0

        # 2. Let deliveries flow, kill every process at KILL_AT.
        gate.set()
        sink.wait_count(KILL_AT, 120)
        os.killpg(q.p.proc.pid, signal.SIGKILL)
        harness.wait_until(lambda: not harness.pid_alive(q.p.proc.pid)
                           or q.p.proc.poll() is not None, 10,
                           "the master gone")
        # Connections cut by the kill end their sink threads now.
        time.sleep(1.0)
        before = sink.snapshot()
        accepted = {}
        for m in before:
            s = seq_of(m.data)
            accepted[s] = accepted.get(s, 0) + 1
        self.assertTrue(all(n == 1 for n in accepted.values()),
                        "duplicates before any crash")
        queued = set()
        msg_dir = os.path.join(q.queue_dir, "msg")
        for name in os.listdir(msg_dir):
            with open(os.path.join(msg_dir, name), "rb") as f:
                s = seq_of(f.read())
            self.assertIsNotNone(s, "queue file %s without a seq" % name)
            queued.add(s)
        in_flight = queued & set(accepted)
        self.assertLess(len(accepted), COUNT, "the kill was not mid-run")
        # Nothing was lost by the kill: delivered or still queued.
        self.assertEqual(set(accepted) | queued, set(range(COUNT)))

        # 3. Restart on the same spool; everything arrives.
        q.p.kill_group()
        q.start()
        try:
            harness.wait_until(
                lambda: len({seq_of(m.data) for m in sink.snapshot()})
                >= COUNT, 180, "all %d messages at the sink" % COUNT)
        except AssertionError:
            got = {seq_of(m.data) for m in sink.snapshot()}
            ids = q.queued_ids()
            log = q.p.log_text().splitlines()
            order = [l.split("queue: ")[1].split(":")[0] for l in log
                     if "queued from=" in l]
            missing = sorted(set(range(COUNT)) - got)
            want = [order[i] for i in missing[:3]]
            raise AssertionError("%d of %d arrived, %d queued, missing %s"
                                 " (sink: %d connections, %d in DATA)"
                                 "\n%s" % (
                                     len(got), COUNT, len(ids), missing,
                                     sink.connections, sink.open_data,
                                     "\n".join(
                                     l for l in log
                                     if any(w in l for w in want) or
                                     "started" in l or "error" in l or
                                     "warn" in l)))
        try:
            q.wait_empty(30)
        except AssertionError:
            ids = q.queued_ids()
            raise AssertionError("%d left: %s\n%s\n%s" % (
                len(ids), ids[:5], q.petrelctl("show", ids[0]).stdout,
                "\n".join(l for l in q.p.log_text().splitlines()
                          if ids[0] in l or "error" in l or "warn" in l)))
        counts = {}
        for m in sink.snapshot():
            s = seq_of(m.data)
            counts[s] = counts.get(s, 0) + 1
        self.assertEqual(set(counts), set(range(COUNT)))
        dups = {s for s, n in counts.items() if n > 1}
        print("# enqueue %.1f s; at the kill: %d accepted by the sink, %d "
              "still queued, %d of them in flight; after restart: %d "
              "duplicates" % (enqueue_s, len(accepted), len(queued),
                              len(in_flight), len(dups)), file=sys.stderr)
        self.assertLessEqual(len(dups), len(in_flight))
        self.assertTrue(dups <= in_flight,
                        "duplicates that were not in flight: %s"
                        % sorted(dups - in_flight)[:20])
        self.assertTrue(all(n <= 2 for n in counts.values()))


if __name__ == "__main__":
    unittest.main()
