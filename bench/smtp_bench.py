#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SMTP benchmark: Petrel against a private Postfix doing the same job.

Both receive the same messages from Postfix's smtp-source for the same
domain and deliver them into a Maildir per user on the same disk. For 2 KB
and 100 KB messages at 1, 10 and 100 concurrent sessions it prints
messages/s and the ratio Petrel/Postfix. Petrel answers 250 only once the
message is fsync'd in the Maildir, so its rate is both "accepted" and
"delivered". Postfix answers 250 once the message is fsync'd in its queue
and delivers to the Maildir afterwards; both of its rates are printed
("accepted": smtp-source's wall time; "delivered": until the last file is
in the Maildir), and the ratio is given against each.

Then the memory of idle connections: the RSS (and PSS) of Petrel's
workers before and after opening N idle plaintext connections (greeting
read), in KiB per connection.

Needs root (Postfix's master runs as root, the workers of both servers as
unprivileged users), smtp-source and postfix (Debian package postfix; the
system Postfix is never started or touched: the private instance has its
own config_directory and queue_directory under a scratch directory and is
stopped at the end).

usage: smtp_bench.py --build BUILD_DIR [--scale F] [--idle N] [--reuse]
                     [--rounds N] [--latency N] [--workers N] [--keep]
Environment: BENCH_DIR picks the disk (default /var/tmp).
"""

import os
import pwd
import resource
import socket
import sys
import time

import benchlib
from benchlib import harness

DOMAIN = "example.test"
USER = "bench@" + DOMAIN
SENDER = "bench@example.org"
HELO = "client.example.org"

# Messages per measurement, before --scale: {size: {sessions: count}}.
COUNTS = {2048: {1: 400, 10: 1500, 100: 3000},
          102400: {1: 200, 10: 600, 100: 1000}}
SIZES = (2048, 102400)
SESSIONS = (1, 10, 100)


def maildir_new(base):
    return os.path.join(base, DOMAIN, "bench", "Maildir", "new")


def count_new(base):
    try:
        return len(os.listdir(maildir_new(base)))
    except FileNotFoundError:
        return 0


def clear_new(base):
    d = maildir_new(base)
    if os.path.isdir(d):
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))


def check_marker(base, marker, sample=20):
    """A few of the delivered files hold the marker twice (begin and
    end): the message arrived whole."""
    d = maildir_new(base)
    names = sorted(os.listdir(d))
    step = max(1, len(names) // sample)
    for name in names[::step]:
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        if data.count(marker.encode()) < 2:
            raise RuntimeError("message %s is not intact" % name)


def wait_count(base, count, timeout, what):
    deadline = time.monotonic() + timeout
    while count_new(base) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("%s: %d of %d messages after %d s"
                               % (what, count_new(base), count, timeout))
        time.sleep(0.005)


def memory_kib(pids):
    """(RSS, PSS) in KiB summed over pids."""
    rss = pss = 0
    for pid in pids:
        rss += int(harness.proc_status(pid, "VmRSS").split()[0])
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


# ------------------------------------------------------------- servers

class PetrelServer(benchlib.Petrel):
    """Petrel taking mail for DOMAIN into a Maildir per user under
    self.mail, its workers up."""

    def __init__(self, build, scratch, workers):
        d = benchlib.make_dir(os.path.join(scratch, "petrel"))
        self.mail = benchlib.make_dir(os.path.join(d, "mail"),
                                      run_user=True)
        state = benchlib.make_dir(os.path.join(d, "state"), run_user=True)
        self.port = harness.free_port()
        passwd = os.path.join(d, "users.passwd")
        benchlib.write_passwd(passwd, [USER], "x")
        cfg = benchlib.petrel_config(state, workers, {
            "passwd": {"file": passwd},
            "maildir": {"location": os.path.join(self.mail,
                                                 "%d/%n/Maildir")},
            "smtp": {"hostname": "mail.example.test",
                     "local_domains": [DOMAIN],
                     "listen": [benchlib.mx_listener(self.port)]}},
            shutdown_timeout="3s")
        super().__init__(build, d, cfg, [self.port])
        harness.wait_until(lambda: len(self.workers()) >= workers, 15,
                           "petrel workers")


class PostfixServer(benchlib.Postfix):
    """Postfix delivering DOMAIN to virtual Maildirs under self.mail as
    RUN_USER."""

    def __init__(self, scratch):
        run_pw = pwd.getpwnam(benchlib.RUN_USER)
        super().__init__(scratch, main_extra={
            "smtpd_recipient_restrictions": "reject_unauth_destination",
            "virtual_mailbox_domains": DOMAIN,
            "virtual_mailbox_base": "{dir}/mail",
            "virtual_mailbox_maps": "hash:{conf}/vmailbox",
            "virtual_uid_maps": "static:%d" % run_pw.pw_uid,
            "virtual_gid_maps": "static:%d" % run_pw.pw_gid,
            "virtual_minimum_uid": "1"})
        self.mail = benchlib.make_dir(os.path.join(self.dir, "mail"),
                                      run_user=True)
        # A trailing "/" selects Maildir delivery.
        self.add_map("vmailbox", "%s %s/bench/Maildir/\n" % (USER, DOMAIN))
        self.start()


# ------------------------------------------------------------ the runs

def measure_petrel(p, size, sessions, count, msgfile, marker, reuse):
    clear_new(p.mail)
    took = benchlib.smtp_source(p.port, count, sessions, msgfile, SENDER,
                                USER, HELO, reuse)
    got = count_new(p.mail)
    if got != count:
        raise RuntimeError("petrel: %d of %d messages stored after 250"
                           % (got, count))
    check_marker(p.mail, marker)
    return count / took


def measure_postfix(pf, size, sessions, count, msgfile, marker, reuse):
    clear_new(pf.mail)
    start = time.monotonic()
    took = benchlib.smtp_source(pf.port, count, sessions, msgfile, SENDER,
                                USER, HELO, reuse)
    wait_count(pf.mail, count, 600, "postfix")
    delivered = time.monotonic() - start
    harness.wait_until(pf.queue_empty, 60, "postfix queue empty")
    check_marker(pf.mail, marker)
    return count / took, count / delivered


def eod_latency(port, count, size):
    """Median and 90th percentile, in ms, of end-of-data -> 250 and of a
    whole one-message session, over count sequential sessions."""
    body = b"".join(b"line %06d %s\r\n" % (i, b"b" * 64)
                    for i in range(max(1, size // 78)))
    msg = (b"From: <bench@example.org>\r\nTo: <%s>\r\nSubject: lat\r\n"
           b"\r\n" % USER.encode()) + body + b".\r\n"

    def reply(f):
        while True:
            line = f.readline()
            if not line:
                raise RuntimeError("connection closed")
            if line[3:4] != b"-":
                return line

    eod, whole = [], []
    for _ in range(count):
        t0 = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            f = s.makefile("rb")
            reply(f)
            for cmd in (b"EHLO client.example.org", b"MAIL FROM:<bench@"
                        b"example.org>", b"RCPT TO:<%s>" % USER.encode(),
                        b"DATA"):
                s.sendall(cmd + b"\r\n")
                reply(f)
            t1 = time.perf_counter()
            s.sendall(msg)
            if not reply(f).startswith(b"250"):
                raise RuntimeError("message refused")
            t2 = time.perf_counter()
            s.sendall(b"QUIT\r\n")
            reply(f)
        eod.append((t2 - t1) * 1000)
        whole.append((time.perf_counter() - t0) * 1000)
    eod.sort()
    whole.sort()
    return (median(eod), eod[int(len(eod) * 0.9)], median(whole))


def idle_memory(pids_fn, port, n):
    """KiB of RSS and PSS per idle connection, and how many opened."""
    time.sleep(0.5)
    rss0, pss0 = memory_kib(pids_fn())
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
        for s in socks:
            s.settimeout(10)
            if not s.recv(512).startswith(b"220"):
                raise RuntimeError("no greeting on an idle connection")
        time.sleep(1.0)
        rss1, pss1 = memory_kib(pids_fn())
    finally:
        for s in socks:
            s.close()
    return (rss1 - rss0) / n, (pss1 - pss0) / n, rss0, rss1


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the message counts")
    ap.add_argument("--idle", type=int, default=1000,
                    help="idle connections for the memory figure")
    ap.add_argument("--reuse", action="store_true",
                    help="smtp-source -d: several messages per session")
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch directory")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="Petrel worker processes (default: CPUs)")
    ap.add_argument("--latency", type=int, default=200,
                    help="sequential sessions for the end-of-data "
                         "latency figures (0: skip)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measurements per point, alternating which "
                         "server goes first; medians are printed")
    args = ap.parse_args()

    benchlib.require_postfix("smtp_bench", (
        benchlib.SMTP_SOURCE, benchlib.POSTFIX, benchlib.POSTMAP))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, 8 * args.idle + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

    scratch = benchlib.scratch_dir("petrel-smtp-bench.", args.keep)
    benchlib.cleanup_at_exit()

    fstype, mount = benchlib.disk_info(scratch)
    print("# petrel SMTP benchmark: smtp-source -> petrel and -> postfix,"
          " Maildir delivery, same disk")
    print("# disk: %s (%s on %s); %d CPUs; petrel workers: %d; %s"
          % (scratch, fstype, mount, os.cpu_count() or 0, args.workers,
             "several messages per session (-d)" if args.reuse
             else "one message per session"))
    p = PetrelServer(args.build, scratch, args.workers)
    pf = PostfixServer(scratch)
    version = pf.version()
    print("# postfix %s: 250 after its queue file is fsync'd; delivered ="
          " until the last file is in the Maildir" % version)
    print("# petrel: 250 after the Maildir file and directory are fsync'd")

    # Idle connections first, on fresh servers: later, Postfix has idle
    # smtpd processes left from the runs and a new connection costs it
    # nothing visible.
    kib_rss, kib_pss, r0, r1 = idle_memory(p.workers, p.port, args.idle)
    print("# petrel idle connections: %d plaintext, workers' RSS %d -> %d "
          "KiB: %.1f KiB per connection (PSS %.1f KiB)"
          % (args.idle, r0, r1, kib_rss, kib_pss))
    n_pf = min(args.idle, 100)
    kib_rss, kib_pss, r0, r1 = idle_memory(pf.pids, pf.port, n_pf)
    print("# postfix idle connections: %d, all its processes' RSS %d -> "
          "%d KiB (one smtpd each): %.1f KiB per connection (PSS %.1f KiB)"
          % (n_pf, r0, r1, kib_rss, kib_pss))

    msgdir = os.path.join(scratch, "msgs")
    os.mkdir(msgdir)
    os.chmod(msgdir, 0o755)
    # Warm up both (processes, maildirs, page cache).
    warm = os.path.join(msgdir, "warm.txt")
    benchlib.message_file(warm, 2048, "WARM-UP-MARKER", SENDER, USER)
    measure_petrel(p, 2048, 10, 100, warm, "WARM-UP-MARKER", args.reuse)
    measure_postfix(pf, 2048, 10, 100, warm, "WARM-UP-MARKER", args.reuse)

    print("# each point: %d rounds, the servers alternating which goes "
          "first; medians, and the spread of the per-round ratio"
          % args.rounds)
    print("%-6s %8s %6s %12s %14s %17s %9s %9s %13s" % (
        "size", "sessions", "msgs", "petrel msg/s", "postfix acc/s",
        "postfix deliv/s", "ratio acc", "ratio del", "acc min..max"))
    rows = []
    for size in SIZES:
        for sessions in SESSIONS:
            count = max(sessions, int(COUNTS[size][sessions] * args.scale))
            marker = "BENCH-MARKER-%d-%d" % (size, sessions)
            msgfile = os.path.join(msgdir, "%d-%d.txt" % (size, sessions))
            benchlib.message_file(msgfile, size, marker, SENDER, USER)
            prs, accs, dlvs = [], [], []
            for r in range(max(1, args.rounds)):
                def run_petrel():
                    prs.append(measure_petrel(p, size, sessions, count,
                                              msgfile, marker, args.reuse))

                def run_postfix():
                    acc, dlv = measure_postfix(pf, size, sessions, count,
                                               msgfile, marker, args.reuse)
                    accs.append(acc)
                    dlvs.append(dlv)
                order = (run_petrel, run_postfix) if r % 2 == 0 else \
                    (run_postfix, run_petrel)
                for fn in order:
                    fn()
            ratios = sorted(a / b for a, b in zip(prs, accs))
            pr, acc, dlv = median(prs), median(accs), median(dlvs)
            rows.append((size, sessions, pr, acc, dlv, median(ratios)))
            print("%-6s %8d %6d %12.0f %14.0f %17.0f %8.2fx %8.2fx "
                  "%5.2f..%.2fx" % (
                      "%dK" % (size // 1024), sessions, count, pr, acc, dlv,
                      median(ratios), pr / dlv, ratios[0], ratios[-1]))
            sys.stdout.flush()

    if args.latency > 0:
        for size in SIZES:
            res = []
            for name, port, base in (("petrel", p.port, p.mail),
                                     ("postfix", pf.port, pf.mail)):
                clear_new(base)
                res.append((name,) + eod_latency(port, args.latency, size))
            print("# %dK, %d sequential sessions: end of data -> 250 median "
                  "(p90), whole session median: %s"
                  % (size // 1024, args.latency, "; ".join(
                      "%s %.2f (%.2f), %.2f ms" % r for r in res)))

    worst = min(rows, key=lambda r: r[5])
    print("# lowest median ratio against postfix acceptance: %.2fx (%dK, %d "
          "sessions)" % (worst[5], worst[0] // 1024, worst[1]))
    print("# floor 1.0x at every point: %s"
          % ("PASS" if worst[5] >= 1.0 else "FAIL"))


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2

if __name__ == "__main__":
    main()
