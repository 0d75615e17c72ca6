#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Relay benchmark: Petrel against a private Postfix relaying the same load.

Postfix's smtp-source submits 2 KB messages from a trusted network (no
AUTH) for a remote domain; each server queues them (fsync before 250) and
relays them to its smarthost, a local Postfix smtp-sink. Petrel uses a
"*" route to the sink, Postfix a relayhost: the setup of an admin behind
a provider's smarthost, the same for both. The time runs from the start of
smtp-source until the sink has received the last message; the sink's own
counter ("mesg=", smtp-sink -c) is read, so every message is counted, not
assumed. After each run the server's queue must be empty and the sink must
have received exactly the number submitted (no loss, no duplicate).

Printed per run: messages/s relayed for Petrel and for Postfix, their
acceptance rates (smtp-source's wall time) and the ratio Petrel/Postfix.

Needs root (Postfix's master runs as root; the workers of both servers
and the sink run as "nobody"), smtp-source, smtp-sink and postfix (Debian
package postfix; the system Postfix is never started or touched: the
private instance has its own config and queue directory under a scratch
directory and is stopped at the end).

usage: relay_bench.py --build BUILD_DIR [--scale F] [--reuse] [--keep]
                      [--only petrel|postfix] [--workers N]
                      [--runs COUNTxSESSIONS,...]
Environment: BENCH_DIR picks the disk (default /var/tmp).
"""

import os
import re
import subprocess
import sys
import threading
import time

import benchlib
from benchlib import harness

SINK_ADDR = "127.0.0.9"
SENDER = "bench@example.test"
RCPT = "bench@remote.test"
HELO = "client.example.test"
SIZE = 2048

# (messages, submission sessions), before --scale.
RUNS = ((1000, 10), (1000, 50), (5000, 10), (5000, 50))


# ------------------------------------------------------------ the sink

class Sink:
    """smtp-sink on SINK_ADDR with running counters (-c): "mesg=N" is
    updated whenever "." is received. A thread reads them."""

    def __init__(self):
        self.port = harness.free_port()
        self.mesg = 0
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            [benchlib.SMTP_SINK, "-u", benchlib.RUN_USER, "-c",
             "-h", "sink.remote.test", "-m", "1000",
             "%s:%d" % (SINK_ADDR, self.port), "1000"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True)
        benchlib.at_cleanup(self.stop)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        harness.wait_port(self.port, 10, host=SINK_ADDR)

    def _read(self):
        pat = re.compile(rb"mesg=(\d+)")
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                return
            buf = (buf + chunk)[-256:]
            found = pat.findall(buf)
            if found:
                with self.lock:
                    self.mesg = max(self.mesg, int(found[-1]))

    def count(self):
        with self.lock:
            return self.mesg

    def stop(self):
        benchlib.stop_process(self.proc, 5)


# ------------------------------------------------------------- servers

class PetrelServer(benchlib.Petrel):
    """Petrel relaying for 127.0.0.0/8 with a "*" route to the sink,
    its queue runner started."""

    def __init__(self, build, scratch, workers, sink):
        d = benchlib.make_dir(os.path.join(scratch, "petrel"))
        mail = benchlib.make_dir(os.path.join(d, "mail"), run_user=True)
        state = benchlib.make_dir(os.path.join(d, "state"), run_user=True)
        self.spool = os.path.join(state, "queue")
        self.port = harness.free_port()
        passwd = os.path.join(d, "users.passwd")
        benchlib.write_passwd(passwd, [SENDER], "x")
        cfg = benchlib.petrel_config(state, workers, {
            "passwd": {"file": passwd},
            "maildir": {"location": os.path.join(mail, "%d/%n/Maildir")},
            "resolver": {},
            "queue": {
                "routes": {"*": {"host": SINK_ADDR, "port": sink.port,
                                 "tls": "none"}}},
            "smtp": {"hostname": "mail.example.test",
                     "local_domains": ["example.test"],
                     "trusted_networks": ["127.0.0.0/8"],
                     "listen": [benchlib.mx_listener(self.port)]}},
            shutdown_timeout="3s")
        super().__init__(build, d, cfg, [self.port])
        harness.wait_until(lambda: self.log_has(b"queue: runner started"),
                           15, "petrel queue runner")

    def queue_empty(self):
        try:
            return not os.listdir(os.path.join(self.spool, "msg"))
        except FileNotFoundError:
            return True


class PostfixServer(benchlib.Postfix):
    """Postfix relaying for 127.0.0.0/8 to the sink as its relayhost."""

    def __init__(self, scratch, sink):
        super().__init__(scratch, main_extra={
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            "relayhost": "[%s]:%d" % (SINK_ADDR, sink.port),
            "smtp_tls_security_level": "none"})
        self.start()


# ------------------------------------------------------------ the runs

def measure(server, sink, what, count, sessions, msgfile, reuse):
    """(relayed msg/s, accepted msg/s): submission start until the sink
    counted the last message, and until smtp-source was done."""
    harness.wait_until(server.queue_empty, 120, "%s queue empty" % what)
    base = sink.count()
    start = time.monotonic()
    benchlib.smtp_source(server.port, count, sessions, msgfile, SENDER, RCPT,
                         HELO, reuse)
    accepted = time.monotonic() - start
    deadline = start + 600
    while sink.count() - base < count:
        if time.monotonic() > deadline:
            raise RuntimeError("%s: %d of %d messages at the sink after "
                               "600 s" % (what, sink.count() - base, count))
        time.sleep(0.005)
    relayed = time.monotonic() - start
    # Count, not assume: the queue is empty (every message done, none to
    # be retried) and the sink has exactly count more, also a moment later.
    harness.wait_until(server.queue_empty, 60, "%s queue empty" % what)
    time.sleep(0.5)
    got = sink.count() - base
    if got != count:
        raise RuntimeError("%s: the sink received %d messages for %d "
                           "submitted" % (what, got, count))
    return count / relayed, count / accepted


def parse_runs(text):
    runs = []
    for item in text.split(","):
        count, sessions = item.lower().split("x")
        runs.append((int(count), int(sessions)))
    return runs


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the message counts")
    ap.add_argument("--runs", type=parse_runs, default=RUNS,
                    help="COUNTxSESSIONS,... (default 1000x10,1000x50,"
                         "5000x10,5000x50)")
    ap.add_argument("--reuse", action="store_true",
                    help="smtp-source -d: several messages per session")
    ap.add_argument("--only", choices=("petrel", "postfix"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch directory")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="Petrel worker processes (default: CPUs)")
    args = ap.parse_args()

    benchlib.require_postfix("relay_bench", (
        benchlib.SMTP_SOURCE, benchlib.SMTP_SINK, benchlib.POSTFIX))

    scratch = benchlib.scratch_dir("petrel-relay-bench.", args.keep)
    if args.keep:
        print("# scratch directory kept: %s" % scratch)
    benchlib.cleanup_at_exit()

    fstype, mount = benchlib.disk_info(scratch)
    print("# petrel relay benchmark: smtp-source -> server (queue, fsync) "
          "-> smarthost smtp-sink %s" % SINK_ADDR)
    print("# disk: %s (%s on %s); %d CPUs; petrel workers: %d; %s"
          % (scratch, fstype, mount, os.cpu_count() or 0, args.workers,
             "several messages per session (-d)" if args.reuse
             else "one message per session"))
    sink = Sink()
    p = pf = None
    if args.only != "postfix":
        p = PetrelServer(args.build, scratch, args.workers, sink)
    if args.only != "petrel":
        pf = PostfixServer(scratch, sink)
        version = pf.version()
        print("# postfix %s, relayhost = [%s]:%d, default concurrency"
              % (version, SINK_ADDR, sink.port))
    print("# petrel: route \"*\" to %s:%d, default concurrency; rates are "
          "messages/s from submission start until the sink counted the "
          "last one" % (SINK_ADDR, sink.port))

    msgdir = os.path.join(scratch, "msgs")
    os.mkdir(msgdir)
    os.chmod(msgdir, 0o755)
    warm = os.path.join(msgdir, "warm.txt")
    benchlib.message_file(warm, SIZE, "WARM-UP-MARKER", SENDER, RCPT,
                          "relay bench", "r")
    for srv, name in ((p, "petrel"), (pf, "postfix")):
        if srv is not None:
            measure(srv, sink, name, 200, 10, warm, args.reuse)

    print("%-6s %8s %6s %13s %13s %14s %14s %7s" % (
        "size", "sessions", "msgs", "petrel rel/s", "postfix rel/s",
        "petrel acc/s", "postfix acc/s", "ratio"))
    rows = []
    for count, sessions in args.runs:
        count = max(sessions, int(count * args.scale))
        marker = "RELAY-BENCH-%d-%d" % (count, sessions)
        msgfile = os.path.join(msgdir, "%d-%d.txt" % (count, sessions))
        benchlib.message_file(msgfile, SIZE, marker, SENDER, RCPT,
                              "relay bench", "r")
        pr = pa = fr = fa = float("nan")
        if p is not None:
            pr, pa = measure(p, sink, "petrel", count, sessions, msgfile,
                             args.reuse)
        if pf is not None:
            fr, fa = measure(pf, sink, "postfix", count, sessions, msgfile,
                             args.reuse)
        ratio = pr / fr if p is not None and pf is not None else float("nan")
        rows.append((count, sessions, ratio))
        print("%-6s %8d %6d %13.0f %13.0f %14.0f %14.0f %6.2fx" % (
            "%dK" % (SIZE // 1024), sessions, count, pr, fr, pa, fa, ratio))
        sys.stdout.flush()
    if p is not None and pf is not None:
        worst = min(rows, key=lambda r: r[2])
        print("# lowest ratio petrel/postfix (relayed): %.2fx (%d messages,"
              " %d sessions); every run: sink count == submitted, queues "
              "empty" % (worst[2], worst[0], worst[1]))


if __name__ == "__main__":
    main()
