#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What the filter chain costs: SMTP throughput with no filters against
throughput with a chain of 20 filter_regex rules (envelope, header, raw
body and decoded-text rules, none of which match the benchmark mail, so
that every rule runs on every message) plus filter_dnsbl asking two
lists through the resolver service, in one run, same machine, same
messages, in interleaved rounds (none, chain, chain, none, ...). Prints
per round and as medians with their spread: messages/s, the CPU time
per message of the petrel processes (master + workers, all threads),
the throughput ratio and the CPU ratio; then a PASS/FAIL line against
the target (cost under 15 %, both in throughput and in CPU).

The DNSBL lists are served by a dnsmasq started here on 127.0.0.1,
authoritatively (the client 127.0.0.1 is not listed: NXDOMAIN with the
zone's SOA, cached after the first session, as it is for a real list
and a mail stream with returning clients); --no-soa serves them without
SOA, so that nothing is cached (the worst case: two lookups per
session).
Without dnsmasq or the filter_dnsbl module the chain is regex only, and
the output says so.

The client is Postfix's smtp-source (package postfix); without it a
Python client with the same shape (N concurrent sessions, one message
each) is used. Storage is the real maildir module (fsync per message)
by default, or --storage null (the null_storage test module: writes, no
durability wait) to see the filters' CPU cost without the disk.

usage: filter_bench.py --build BUILD_DIR [--messages N] [--sessions N]
                       [--size BYTES] [--storage maildir|null] [--rounds N]
                       [--target PERCENT] [--no-soa]
Exit status 0 on PASS, 1 on FAIL.
"""

import argparse
import atexit
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))

import harness  # noqa: E402
from smtp_harness import hash_password  # noqa: E402

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
USER = "bench@example.test"

# 20 rules that do not match the benchmark mail: each is tried on every
# subject of its target.
RULES = [
    {"target": "client_ip", "pattern": r"^10\.66\.", "action": "reject"},
    {"target": "client_ip", "pattern": r"^192\.0\.2\.", "action": "reject"},
    {"target": "helo", "pattern": r"(?i)^(localhost|\d+\.\d+\.\d+\.\d+)$",
     "action": "reject"},
    {"target": "helo", "pattern": r"\.(invalid|local)$", "action": "reject"},
    {"target": "mail_from", "pattern": r"@(spam|junk)\.example$",
     "action": "reject"},
    {"target": "mail_from", "pattern": r"^[0-9]{8,}@", "action": "reject"},
    {"target": "rcpt", "pattern": r"^(abuse-test|spamtrap)@",
     "action": "reject"},
    {"target": "header:Subject", "pattern": r"(?i)v[i1]agra|c[i1]al[i1]s",
     "decode_2047": True, "action": "reject"},
    {"target": "header:Subject", "pattern": r"(?i)\bfree money\b",
     "action": "reject"},
    {"target": "header:From", "pattern": r"@(spam|junk)\.example>?$",
     "action": "reject"},
    {"target": "header:X-Mailer", "pattern": r"(?i)massmailer",
     "action": "reject"},
    {"target": "any_header", "pattern": r"^X-Spam-Flag: YES",
     "action": "quarantine"},
    {"target": "any_header", "pattern": r"^Content-Type: .*charset=\"?koi8",
     "action": "reject"},
    {"target": "body", "pattern": r"(?i)click here to unsubscribe now",
     "action": "reject"},
    {"target": "body", "pattern": r"https?://[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+/",
     "action": "reject"},
    {"target": "body", "pattern": r"(?i)wire transfer.*urgent",
     "action": "reject"},
    {"target": "body_text", "pattern": r"(?i)lottery winner",
     "action": "reject"},
    {"target": "body_text", "pattern": r"(?i)bitcoin wallet [13][a-z0-9]{25}",
     "action": "reject"},
    {"target": "body_text", "pattern": r"(?i)enlarge|pharmacy online",
     "action": "reject"},
    {"target": "body_text", "pattern": r"\$[0-9]{1,3}(,[0-9]{3}){2,}",
     "action": "reject"},
]
assert len(RULES) == 20


def run(argv, timeout=600, **kw):
    return subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=True, **kw)


def message(path, size):
    lines = ["From: <sender@example.org>", "To: <%s>" % USER,
             "Subject: quarterly report", "Message-ID: <bench@example.org>",
             "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", "", "Hello,"]
    i = 0
    while sum(len(l) + 2 for l in lines) < size:
        lines.append("line %06d of the report, nothing to see %s"
                     % (i, "x" * 20))
        i += 1
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)


class Dnsmasq:
    """The two lists, served authoritatively: a negative answer carries
    the zone's SOA (negative TTL 300 s), as a real list's does, so that
    the resolver and filter_dnsbl may cache it (RFC 2308). With
    no_soa, the zones are plain local zones whose NXDOMAIN has no SOA:
    nothing is cached and every session asks both lists."""

    def __init__(self, scratch, no_soa=False):
        self.port = harness.free_port()
        args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--log-facility=-",
                "--host-record=2.0.0.127.bl.test,127.0.0.2"]
        if no_soa:
            args += ["--local=/bl.test/", "--local=/bl2.test/",
                     "--local-ttl=300", "--neg-ttl=300"]
        else:
            args += ["--auth-server=ns.bl.test,127.0.0.1",
                     "--auth-zone=bl.test", "--auth-zone=bl2.test",
                     "--auth-ttl=300",
                     "--auth-soa=1,hostmaster.bl.test,1200,180,"
                     "1209600,300"]
        if os.geteuid() == 0:
            args += ["--user=nobody", "--group=nogroup"]
        self.log = open(os.path.join(scratch, "dnsmasq.log"), "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        harness.wait_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self.log.close()


class Server:
    def __init__(self, args, scratch, name, filters, extra):
        self.dir = os.path.join(scratch, name)
        os.mkdir(self.dir)
        os.chmod(self.dir, 0o755)
        self.port = harness.free_port()
        self.mail = os.path.join(self.dir, "mail")
        os.mkdir(self.mail)
        os.chmod(self.mail, 0o777)
        state = os.path.join(self.dir, "state")
        os.mkdir(state)
        os.chmod(state, 0o777)
        passwd = os.path.join(self.dir, "users.passwd")
        with open(passwd, "w") as f:
            f.write("%s:{SHA512-CRYPT}%s\n" % (USER, hash_password("x")))
        os.chmod(passwd, 0o644)
        modules = {"passwd": {"file": passwd}}
        if args.storage == "maildir":
            modules["maildir"] = {
                "location": os.path.join(self.mail, "%d/%n/Maildir")}
        else:
            modules["null_storage"] = {
                "path": os.path.join(args.build, "tests", "modules",
                                     "null_storage.so"),
                "dir": self.mail}
        modules["smtp"] = {"hostname": "mail.example.test",
                           "local_domains": ["example.test"],
                           "listen": [{"address": "127.0.0.1:%d"
                                       % self.port,
                                       "max_per_ip": 0,
                                       "max_connections": 0}],
                           "starttls": False,
                           "filters": filters}
        modules.update(extra)
        server = {"hostname": "mail.example.test", "state_dir": state,
                  "workers": args.workers, "log": {"level": "warn"}}
        if os.geteuid() == 0:
            server["user"] = "nobody"
        self.conf = os.path.join(self.dir, "petrel.json")
        with open(self.conf, "w") as f:
            json.dump({"server": server, "modules": modules}, f, indent=1)
        self.log = open(os.path.join(self.dir, "petrel.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(args.build, "petrel"), "-c", self.conf, "-M",
             os.path.join(args.build, "modules")],
            stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        atexit.register(self.stop)
        harness.wait_port(self.port, proc=self.proc)
        time.sleep(0.3)

    def cpu(self):
        """CPU seconds used so far by the master and its workers, every
        thread included (the thread pool's too): the on-CPU time of
        each task from /proc/PID/task/TID/schedstat (nanoseconds), or
        utime + stime from /proc/PID/stat (clock ticks) without it."""
        total = 0.0
        for pid in [self.proc.pid] + harness.children(self.proc.pid):
            try:
                tids = os.listdir("/proc/%d/task" % pid)
                ns = 0
                for tid in tids:
                    with open("/proc/%d/task/%s/schedstat"
                              % (pid, tid)) as f:
                        ns += int(f.read().split()[0])
                total += ns / 1e9
                continue
            except (OSError, ValueError, IndexError):
                pass
            try:
                with open("/proc/%d/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / \
                os.sysconf("SC_CLK_TCK")
        return total

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def log_text(self):
        with open(os.path.join(self.dir, "petrel.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")


def python_source(port, sessions, count, msgfile):
    """smtp-source's job in Python: `sessions` concurrent sessions, one
    message each, until `count` messages were sent."""
    with open(msgfile, "rb") as f:
        body = f.read().replace(b"\n", b"\r\n")
    left = [count]
    lock = threading.Lock()
    errors = []

    def reply(sock, buf):
        while True:
            while b"\r\n" not in buf[0]:
                data = sock.recv(65536)
                if not data:
                    raise OSError("closed")
                buf[0] += data
            line, buf[0] = buf[0].split(b"\r\n", 1)
            if line[3:4] != b"-":
                return int(line[:3])

    def one():
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        buf = [b""]
        try:
            codes = [reply(s, buf)]
            for cmd in (b"EHLO client.example.org",
                        b"MAIL FROM:<sender@example.org>",
                        b"RCPT TO:<%s>" % USER.encode(), b"DATA"):
                s.sendall(cmd + b"\r\n")
                codes.append(reply(s, buf))
            s.sendall(body + b".\r\n")
            codes.append(reply(s, buf))
            s.sendall(b"QUIT\r\n")
            if codes[-1] != 250:
                raise OSError("refused: %r" % codes)
        finally:
            s.close()

    def worker():
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                one()
            except OSError as e:
                errors.append(str(e))
                return

    threads = [threading.Thread(target=worker) for _ in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("python client: %s" % errors[0])


def measure(args, server, msgfile):
    """(messages/s, petrel CPU ms per message)."""
    cpu = server.cpu()
    start = time.monotonic()
    if os.path.exists(SMTP_SOURCE) and not args.python_client:
        run([SMTP_SOURCE, "-s", str(args.sessions), "-m",
             str(args.messages), "-F", msgfile, "-f", "sender@example.org",
             "-t", USER, "-M", "client.example.org", "-C", "5",
             "127.0.0.1:%d" % server.port], timeout=1800)
    else:
        python_source(server.port, args.sessions, args.messages, msgfile)
    rate = args.messages / (time.monotonic() - start)
    return rate, (server.cpu() - cpu) * 1000 / args.messages


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--messages", type=int, default=1500)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=11,
                    help="pairs of measurements (none, chain), "
                         "interleaved; the medians are compared")
    ap.add_argument("--target", type=float, default=15.0,
                    help="largest cost of the chain, in %% (15)")
    ap.add_argument("--storage", choices=("maildir", "null"),
                    default="maildir")
    ap.add_argument("--no-soa", action="store_true",
                    help="serve the lists without SOA: negative answers "
                         "are not cacheable, every session asks both")
    ap.add_argument("--python-client", action="store_true")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)

    scratch = tempfile.mkdtemp(prefix="petrel-filter-bench-",
                               dir=os.environ.get("BENCH_DIR", "/var/tmp"))
    os.chmod(scratch, 0o755)
    if not args.keep:
        atexit.register(shutil.rmtree, scratch, True)
    msgfile = os.path.join(scratch, "message.txt")
    message(msgfile, args.size)

    chain = ["filter_regex"]
    extra = {"filter_regex": {"rules": RULES}}
    what = "20 regex rules"
    dnsbl = os.path.join(args.build, "modules", "filter_dnsbl.so")
    if os.path.exists(dnsbl) and os.path.exists(DNSMASQ):
        dns = Dnsmasq(scratch, args.no_soa)
        atexit.register(dns.stop)
        chain.append("filter_dnsbl")
        extra["resolver"] = {"servers": ["127.0.0.1:%d" % dns.port]}
        extra["filter_dnsbl"] = {"zones": [{"zone": "bl.test"},
                                           {"zone": "bl2.test"}]}
        what += " + DNSBL (2 lists, dnsmasq%s)" % (
            ", no SOA: uncached" if args.no_soa else "")
    else:
        what += " (no DNSBL: %s missing)" % (
            "filter_dnsbl" if not os.path.exists(dnsbl) else "dnsmasq")

    plain = Server(args, scratch, "plain", [], {})
    filtered = Server(args, scratch, "chain", chain, extra)
    client = "smtp-source" if os.path.exists(SMTP_SOURCE) and \
        not args.python_client else "python client"
    print("filter chain: %s" % what)
    print("%d messages of %d bytes per round, %d sessions, %d workers, "
          "%s storage, %s, %d interleaved rounds"
          % (args.messages, args.size, args.sessions, args.workers,
             args.storage, client, args.rounds))
    # Warm up both (JIT, caches, page cache), then alternate, so that a
    # slow spell of the machine hits both alike.
    for s in (plain, filtered):
        saved = args.messages
        args.messages = min(200, saved)
        measure(args, s, msgfile)
        args.messages = saved
    rates = {"plain": [], "chain": []}
    cpus = {"plain": [], "chain": []}
    for i in range(args.rounds):
        order = (("plain", plain), ("chain", filtered))
        for name, s in order if i % 2 == 0 else order[::-1]:
            rate, cpu = measure(args, s, msgfile)
            rates[name].append(rate)
            cpus[name].append(cpu)
        print("  round %d  none %8.1f msg/s %6.3f ms CPU/msg   "
              "chain %8.1f msg/s %6.3f ms CPU/msg   ratio %.3f"
              % (i + 1, rates["plain"][-1], cpus["plain"][-1],
                 rates["chain"][-1], cpus["chain"][-1],
                 rates["chain"][-1] / rates["plain"][-1]))
    # Each round's pair was measured back to back: the ratios of the
    # pairs are less noisy than the ratio of two medians.
    ratios = [c / p for c, p in zip(rates["chain"], rates["plain"])]
    cpu_ratios = [c / p for c, p in zip(cpus["chain"], cpus["plain"])
                  if p > 0]
    ratio = median(ratios)
    cost = (1 - ratio) * 100
    print("no filters:   %8.1f msg/s  %6.3f ms CPU per message (medians, "
          "master + workers)" % (median(rates["plain"]),
                                 median(cpus["plain"])))
    print("filter chain: %8.1f msg/s  %6.3f ms CPU per message"
          % (median(rates["chain"]), median(cpus["chain"])))
    print("throughput ratio chain/none: median %.3f, spread %.3f .. %.3f "
          "(throughput cost %.1f %%)"
          % (ratio, min(ratios), max(ratios), cost))
    cpu_cost = None
    if cpu_ratios:
        cpu_cost = (median(cpu_ratios) - 1) * 100
        print("CPU per message chain/none: median %.3f, spread %.3f .. "
              "%.3f (CPU cost %+.1f %%)"
              % (median(cpu_ratios), min(cpu_ratios), max(cpu_ratios),
                 cpu_cost))
    errors = [l for l in filtered.log_text().splitlines()
              if " error " in l or "warn" in l]
    if errors:
        print("chain server warnings:\n  " + "\n  ".join(errors[:10]))
    ok = cost < args.target and (cpu_cost is None or
                                 cpu_cost < args.target)
    print("%s: filter chain cost %.1f %% throughput, %s CPU per message "
          "(target < %g %%)"
          % ("PASS" if ok else "FAIL", cost,
             "%+.1f %%" % cpu_cost if cpu_cost is not None else "n/a",
             args.target))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
