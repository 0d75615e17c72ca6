#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""POP3 benchmark: Petrel against a private Dovecot serving the same mail.

Both servers read the same Maildirs (one per user, the same messages,
CRLF line ends as Petrel's SMTP stores them) and check passwords in the
same Dovecot-style passwd-file ({SHA512-CRYPT}, 5000 rounds). With 50
concurrent clients (one user each: POP3 locks a mailbox per session), with
and without TLS (implicit TLS, POP3S), it measures:

  RETR throughput  each client logs in, RETRs every message of its
                   mailbox, QUITs (no DELE), and starts over; MB/s of
                   message data received over the measurement window.
  logins/s         each client connects, reads the greeting, USER, PASS,
                   QUIT, and starts over; completed logins per second.

Each figure is printed for both servers with the ratio Petrel/Dovecot.
The clients are asyncio processes on the same host (one per CPU), so on a
small machine they compete with the servers for CPU: the ratio is the
figure to look at.

Dovecot runs from its own config directory on high loopback ports with
its out-of-the-box process settings, except pop3-login in Dovecot's
documented high-performance mode (service_count = 0, process_min_avail =
CPU count). Its system instance is never started or touched. Needs root
(Dovecot's master) and the package dovecot-pop3d.

usage: pop3_bench.py --build BUILD_DIR [--users N] [--messages N]
                     [--size BYTES] [--duration S] [--workers N]
                     [--only petrel|dovecot] [--keep]
Environment: BENCH_DIR picks the disk (default /var/tmp).
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))

import harness  # noqa: E402  (free_port, wait_port)

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
RUN_USER = "nobody"
DOMAIN = "example.test"
PASSWORD = "bench password"

_cleanups = []


def cleanup():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning up
            print("# cleanup: %s" % e, file=sys.stderr)


def run(argv, check=True, **kwargs):
    result = subprocess.run(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=120,
                            **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed: %s" % (argv[0], result.stderr))
    return result


def user_name(i):
    return "bench%02d@%s" % (i, DOMAIN)


# ------------------------------------------------------------- content

def make_content(scratch, users, messages, size):
    """Maildirs with @messages messages of about @size octets per user,
    owned by the run user; a passwd-file for both servers; a cert."""
    pw = pwd.getpwnam(RUN_USER)
    mail = os.path.join(scratch, "mail")
    line = b"abcdefghijklmnopqrstuvwxyz0123456789" * 2 + b"\r\n"
    for u in range(1, users + 1):
        local = "bench%02d" % u
        base = os.path.join(mail, DOMAIN, local, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(base, sub))
        for m in range(messages):
            head = ("Return-Path: <sender@example.org>\r\n"
                    "From: sender@example.org\r\nTo: %s\r\n"
                    "Subject: bench %d\r\nMessage-ID: <%d.%d@bench>\r\n\r\n"
                    % (user_name(u), m, u, m)).encode()
            body = line * max(1, (size - len(head)) // len(line))
            # A dot line now and then, as real mail has.
            body += b".signature\r\n"
            name = "17000%05d.M%dP%d.bench:2,S" % (m, m, u)
            with open(os.path.join(base, "cur", name), "wb") as f:
                f.write(head + body)
    for root, dirs, files in os.walk(mail):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for name in files:
            os.chown(os.path.join(root, name), pw.pw_uid, pw.pw_gid)
    hashed = run(["openssl", "passwd", "-6", "-stdin"],
                 input=PASSWORD + "\n").stdout.strip()
    users_file = os.path.join(scratch, "users.passwd")
    with open(users_file, "w") as f:
        for u in range(1, users + 1):
            f.write("%s:{SHA512-CRYPT}%s\n" % (user_name(u), hashed))
    os.chmod(users_file, 0o644)
    cert = os.path.join(scratch, "cert.pem")
    key = os.path.join(scratch, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-keyout", key, "-out", cert])
    os.chmod(key, 0o644)  # both servers read it; scratch is private
    return mail, users_file, cert, key


# ------------------------------------------------------------- servers

class Petrel:
    name = "petrel"

    def __init__(self, build, scratch, mail, users_file, cert, key,
                 workers):
        self.dir = os.path.join(scratch, "petrel")
        os.makedirs(os.path.join(self.dir, "state"))
        pw = pwd.getpwnam(RUN_USER)
        os.chown(os.path.join(self.dir, "state"), pw.pw_uid, pw.pw_gid)
        self.plain = harness.free_port()
        self.tls = harness.free_port()
        cfg = {
            "server": {"hostname": "bench.example.test",
                       "user": RUN_USER, "workers": workers,
                       "state_dir": os.path.join(self.dir, "state"),
                       "log": {"level": "notice"}},
            "tls": {"certificates": [{"cert": cert, "key": key}]},
            "modules": {
                "passwd": {"file": users_file},
                "maildir": {"location": os.path.join(mail,
                                                     "%d/%n/Maildir")},
                "pop3": {
                    "listen": [{"address": "127.0.0.1:%d" % self.plain},
                               {"address": "127.0.0.1:%d" % self.tls,
                                "tls": "implicit"}],
                    "plaintext_auth_networks": ["127.0.0.1"],
                    "max_per_ip": 0, "max_connections": 0}}}
        conf = os.path.join(self.dir, "petrel.json")
        with open(conf, "w") as f:
            json.dump(cfg, f, indent=1)
        self.log = open(os.path.join(self.dir, "petrel.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(build, "petrel"), "-c", conf, "-M",
             os.path.join(build, "modules")],
            stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        _cleanups.append(self.stop)
        harness.wait_port(self.plain, proc=self.proc)
        harness.wait_port(self.tls, proc=self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


class Dovecot:
    name = "dovecot"

    def __init__(self, scratch, mail, users_file, cert, key):
        self.dir = os.path.join(scratch, "dovecot")
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        self.plain = harness.free_port()
        self.tls = harness.free_port()
        cpus = os.cpu_count() or 1
        self.conf = os.path.join(self.dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write("""# Private benchmark instance (bench/pop3_bench.py).
base_dir = {dir}/run
state_dir = {dir}/state
instance_name = petrel-bench
log_path = {dir}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{mail}/%d/%n/Maildir
passdb {{
  driver = passwd-file
  args = scheme=SHA512-CRYPT {users}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={mail}/%d/%n
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {plain}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {tls}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = {cpus}
}}
service anvil {{
  inet_listener anvil {{
    port = 0
  }}
}}
""".format(dir=self.dir, cert=cert, key=key, mail=mail, users=users_file,
                   uid=pwd.getpwnam(RUN_USER).pw_uid,
                   gid=pwd.getpwnam(RUN_USER).pw_gid, plain=self.plain,
                   tls=self.tls, cpus=cpus))
        # The master daemonizes and keeps no pipe of ours open.
        rc = subprocess.call([DOVECOT, "-c", self.conf],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, timeout=60)
        if rc != 0:
            raise RuntimeError("dovecot did not start (status %d); see "
                               "%s/dovecot.log" % (rc, self.dir))
        _cleanups.append(self.stop)
        harness.wait_port(self.plain)
        harness.wait_port(self.tls)

    def stop(self):
        subprocess.call([DOVECOT, "-c", self.conf, "stop"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, timeout=60)


# ------------------------------------------------------------- clients

class Pop3Error(Exception):
    pass


class Pop3Client(asyncio.Protocol):
    """A lean POP3 client: replies are awaited one at a time; a message
    body is counted and skipped as it arrives, never kept, so that the
    client costs as little CPU as possible next to the server."""

    def __init__(self, loop):
        self.loop = loop
        self.buf = bytearray()
        self.want = None  # (kind, future): kind "line" or "body"
        self.body = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if self.want is not None and not self.want[1].done():
            self.want[1].set_exception(
                ConnectionError("connection closed: %s" % exc))
        self.want = None

    def data_received(self, data):
        self.buf += data
        self._process()

    def _process(self):
        if self.want is None or not self.buf:
            return
        kind, fut = self.want
        if kind == "line":
            i = self.buf.find(b"\n")
            if i < 0:
                return
            line = bytes(self.buf[:i + 1])
            del self.buf[:i + 1]
            self.want = None
            fut.set_result(line)
            return
        i = self.buf.find(b"\r\n.\r\n")
        if i < 0:
            # Keep what could be the start of the terminator.
            n = len(self.buf) - 4
            if n > 0:
                self.body += n
                del self.buf[:n]
            return
        self.body += i + 5
        del self.buf[:i + 5]
        self.want = None
        fut.set_result(self.body)
        self.body = 0

    def expect(self, kind):
        fut = self.loop.create_future()
        self.want = (kind, fut)
        self._process()
        return fut

    async def cmd(self, line):
        self.transport.write(line + b"\r\n")
        reply = await self.expect("line")
        if not reply.startswith(b"+OK"):
            raise Pop3Error("%r -> %r" % (line[:20], reply))
        return reply

    def close(self):
        self.transport.close()


async def pop3_open(port, ctx):
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: Pop3Client(loop), "127.0.0.1", port, ssl=ctx,
        server_hostname="localhost" if ctx else None)
    greeting = await client.expect("line")
    if not greeting.startswith(b"+OK"):
        raise Pop3Error("greeting %r" % greeting)
    return client


async def pop3_login(c, user):
    await c.cmd(b"USER " + user.encode())
    return await c.cmd(b"PASS " + PASSWORD.encode())


async def client_retr(port, ctx, user, deadline, stats):
    while time.monotonic() < deadline:
        c = await pop3_open(port, ctx)
        await pop3_login(c, user)
        count = int((await c.cmd(b"STAT")).split()[1])
        for i in range(1, count + 1):
            if time.monotonic() >= deadline:
                break
            await c.cmd(b"RETR %d" % i)
            stats["bytes"] += await c.expect("body")
            stats["messages"] += 1
        await c.cmd(b"QUIT")
        c.close()
        stats["sessions"] += 1


async def client_logins(port, ctx, user, deadline, stats):
    while time.monotonic() < deadline:
        c = await pop3_open(port, ctx)
        await pop3_login(c, user)
        await c.cmd(b"QUIT")
        c.close()
        stats["logins"] += 1


def client_process(kind, port, use_tls, users, start_at, duration, queue):
    """One process of clients: waits for start_at, runs until the end."""
    ctx = None
    if use_tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    stats = {"bytes": 0, "messages": 0, "sessions": 0, "logins": 0,
             "errors": 0, "error": ""}

    async def one(user, deadline):
        fn = client_retr if kind == "retr" else client_logins
        while time.monotonic() < deadline:
            try:
                await fn(port, ctx, user, deadline, stats)
            except (OSError, Pop3Error, ssl.SSLError) as e:
                stats["errors"] += 1
                stats["error"] = "%s: %s" % (type(e).__name__, e)
                await asyncio.sleep(0.01)

    async def main():
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        deadline = time.monotonic() + duration
        await asyncio.gather(*(one(u, deadline) for u in users))

    asyncio.run(main())
    queue.put(stats)


def measure(kind, port, use_tls, users, duration):
    """Run the clients (one process per CPU) against port; totals."""
    nproc = max(1, min(os.cpu_count() or 1, len(users)))
    queue = multiprocessing.Queue()
    start_at = time.time() + 0.5
    procs = []
    for i in range(nproc):
        mine = users[i::nproc]
        p = multiprocessing.Process(target=client_process, args=(
            kind, port, use_tls, mine, start_at, duration, queue))
        p.start()
        procs.append(p)
    totals = {"bytes": 0, "messages": 0, "sessions": 0, "logins": 0,
              "errors": 0, "error": ""}
    for _ in procs:
        stats = queue.get(timeout=duration + 120)
        for k in ("bytes", "messages", "sessions", "logins", "errors"):
            totals[k] += stats[k]
        totals["error"] = totals["error"] or stats["error"]
    for p in procs:
        p.join(30)
    return totals


# ----------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--users", type=int, default=50,
                    help="concurrent clients, one mailbox each (50)")
    ap.add_argument("--messages", type=int, default=20,
                    help="messages per mailbox (20)")
    ap.add_argument("--size", type=int, default=100 * 1024,
                    help="message size in octets (102400)")
    ap.add_argument("--duration", type=float, default=8.0,
                    help="seconds per measurement (8)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="Petrel worker processes (CPU count)")
    ap.add_argument("--only", choices=("petrel", "dovecot"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the scratch directory")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("pop3_bench.py: needs root (Dovecot's master, workers "
                 "as %s)" % RUN_USER)
    if args.only != "petrel" and not os.path.exists(DOVECOT):
        sys.exit("pop3_bench.py: dovecot missing: apt-get install "
                 "dovecot-pop3d (the system instance is not started)")
    build = os.path.abspath(args.build)
    base = os.environ.get("BENCH_DIR", "/var/tmp")
    scratch = tempfile.mkdtemp(prefix="petrel-pop3-bench-", dir=base)
    os.chmod(scratch, 0o755)
    if not args.keep:
        _cleanups.insert(0, lambda: shutil.rmtree(scratch,
                                                  ignore_errors=True))
    try:
        mail, users_file, cert, key = make_content(
            scratch, args.users, args.messages, args.size)
        servers = []
        if args.only != "dovecot":
            servers.append(Petrel(build, scratch, mail, users_file, cert,
                                  key, args.workers))
        if args.only != "petrel":
            servers.append(Dovecot(scratch, mail, users_file, cert, key))
        users = [user_name(u) for u in range(1, args.users + 1)]
        print("# %d clients, %d mailboxes x %d messages x %d octets, "
              "%.0f s per figure, %d CPUs, load %.1f"
              % (args.users, args.users, args.messages, args.size,
                 args.duration, os.cpu_count() or 1, os.getloadavg()[0]))
        # Warm up: page cache, Dovecot's indexes and uidlists.
        for srv in servers:
            measure("retr", srv.plain, False, users, 2.0)
        results = {}
        for kind, unit in (("retr", "MB/s"), ("logins", "logins/s")):
            for use_tls in (False, True):
                row = {}
                for srv in servers:
                    port = srv.tls if use_tls else srv.plain
                    t = measure(kind, port, use_tls, users, args.duration)
                    value = (t["bytes"] / 1e6 if kind == "retr"
                             else t["logins"]) / args.duration
                    row[srv.name] = value
                    label = "%s %s" % ("RETR" if kind == "retr"
                                       else "logins",
                                       "TLS" if use_tls else "plain")
                    extra = ""
                    if t["errors"]:
                        extra = "  (%d errors, last: %s)" % (t["errors"],
                                                             t["error"])
                    print("%-8s %-13s %10.1f %s%s"
                          % (srv.name, label, value, unit, extra))
                    sys.stdout.flush()
                results[(kind, use_tls)] = row
        if len(servers) == 2:
            print("\n%-13s %12s %12s %8s" % ("figure", "petrel",
                                               "dovecot", "ratio"))
            for (kind, use_tls), row in results.items():
                label = "%s %s" % ("RETR MB/s" if kind == "retr"
                                   else "logins/s",
                                   "TLS" if use_tls else "plain")
                ratio = (row["petrel"] / row["dovecot"]
                         if row["dovecot"] else float("inf"))
                print("%-17s %10.1f %12.1f %7.2fx"
                      % (label, row["petrel"], row["dovecot"], ratio))
    finally:
        cleanup()
        if args.keep:
            print("# kept %s" % scratch)


if __name__ == "__main__":
    main()
