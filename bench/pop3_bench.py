#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""POP3 benchmark: Petrel against a private Dovecot serving the same mail.

Both servers read the same Maildirs (one per user, the same messages,
CRLF line ends as Petrel's SMTP stores them) and check passwords in the
same Dovecot-style passwd-file ({SHA512-CRYPT}, 5000 rounds). With 50
concurrent clients (one user each: POP3 locks a mailbox per session), with
and without TLS (implicit TLS, POP3S), it measures:

  RETR throughput  each client logs in, RETRs every message of its
                   mailbox --passes times, QUITs (no DELE), and starts
                   over; MB/s of RETR responses received.
  logins/s         each client connects, reads the greeting, USER, PASS,
                   QUIT, and starts over; completed logins per second.

Each figure is printed for both servers with the ratio Petrel/Dovecot.
The clients are bench/pop3_load.c (compiled here with cc, -lssl), one
epoll process per CPU on the same host: they cost little next to the
servers, but on a small machine they still share its CPUs.

Dovecot runs from its own config directory on high loopback ports with
its out-of-the-box process settings, except pop3-login in Dovecot's
documented high-performance mode (service_count = 0, process_min_avail =
CPU count). Its system instance is never started or touched. Needs root
(Dovecot's master), the package dovecot-pop3d, a C compiler and the
OpenSSL headers.

usage: pop3_bench.py --build BUILD_DIR [--users N] [--messages N]
                     [--size BYTES] [--duration S] [--passes N]
                     [--repeat N] [--workers N] [--only petrel|dovecot]
                     [--keep]
Environment: BENCH_DIR picks the disk (default /var/tmp); CC.
"""

import os
import pwd
import subprocess
import sys

import benchlib
from benchlib import RUN_USER, harness, run

DOVECOT = benchlib.tool("dovecot")
DOMAIN = "example.test"
PASSWORD = "bench password"


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
    users_file = os.path.join(scratch, "users.passwd")
    benchlib.write_passwd(users_file,
                          [user_name(u) for u in range(1, users + 1)],
                          PASSWORD)
    cert = os.path.join(scratch, "cert.pem")
    key = os.path.join(scratch, "key.pem")
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-keyout", key, "-out", cert])
    os.chmod(key, 0o644)  # both servers read it; scratch is private
    return mail, users_file, cert, key


# ------------------------------------------------------------- servers

class Petrel(benchlib.Petrel):
    name = "petrel"

    def __init__(self, build, scratch, mail, users_file, cert, key,
                 workers):
        d = benchlib.make_dir(os.path.join(scratch, "petrel"))
        state = benchlib.make_dir(os.path.join(d, "state"), run_user=True)
        self.plain = harness.free_port()
        self.tls = harness.free_port()
        cfg = benchlib.petrel_config(state, workers, {
            "passwd": {"file": users_file},
            "maildir": {"location": os.path.join(mail, "%d/%n/Maildir")},
            "pop3": {
                "listen": [{"address": "127.0.0.1:%d" % self.plain},
                           {"address": "127.0.0.1:%d" % self.tls,
                            "tls": "implicit"}],
                "plaintext_auth_networks": ["127.0.0.1"],
                "max_per_ip": 0, "max_connections": 0}},
            hostname="bench.example.test", log_level="notice")
        cfg["tls"] = {"certificates": [{"cert": cert, "key": key}]}
        super().__init__(build, d, cfg, [self.plain, self.tls],
                         stop_timeout=15.0)


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
        benchlib.at_cleanup(self.stop)
        harness.wait_port(self.plain)
        harness.wait_port(self.tls)

    def stop(self):
        subprocess.call([DOVECOT, "-c", self.conf, "stop"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, timeout=60)


# ------------------------------------------------------------- clients

def build_load(scratch):
    """Compile the C load generator bench/pop3_load.c."""
    exe = os.path.join(scratch, "pop3_load")
    cc = os.environ.get("CC", "cc")
    run([cc, "-O2", "-D_GNU_SOURCE", "-o", exe,
         os.path.join(benchlib.HERE, "pop3_load.c"), "-lssl", "-lcrypto"])
    return exe


def measure(load, kind, port, use_tls, nusers, duration, passes):
    """Run pop3_load (one process per CPU, the users split between them)
    against port; the summed counters."""
    nproc = max(1, min(os.cpu_count() or 1, nusers))
    procs, first = [], 1
    for i in range(nproc):
        n = nusers // nproc + (1 if i < nusers % nproc else 0)
        argv = [load, "-p", str(port), "-m", kind, "-n", str(n),
                "-f", str(first), "-d", str(duration), "-r", str(passes),
                "-w", PASSWORD]
        if use_tls:
            argv.append("-t")
        first += n
        procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    totals = {"bytes": 0, "messages": 0, "sessions": 0, "logins": 0,
              "errors": 0, "last_error": "-"}
    for p in procs:
        out, err = p.communicate(timeout=duration + 60)
        if p.returncode != 0:
            raise RuntimeError("pop3_load failed: " + err)
        for field in out.split():
            key, _, value = field.partition("=")
            if key == "last_error":
                if value != "-":
                    totals[key] = value
            elif key in totals:
                totals[key] += int(value)
    return totals


# ----------------------------------------------------------------- main

def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--users", type=int, default=50,
                    help="concurrent clients, one mailbox each (50)")
    ap.add_argument("--messages", type=int, default=20,
                    help="messages per mailbox (20)")
    ap.add_argument("--size", type=int, default=100 * 1024,
                    help="message size in octets (102400)")
    ap.add_argument("--duration", type=float, default=8.0,
                    help="seconds per measurement (8)")
    ap.add_argument("--passes", type=int, default=10,
                    help="RETR rounds over the mailbox per session (10)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="measurements per figure, median kept (3)")
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
    scratch = benchlib.scratch_dir("petrel-pop3-bench-", args.keep)
    try:
        mail, users_file, cert, key = make_content(
            scratch, args.users, args.messages, args.size)
        servers = []
        if args.only != "dovecot":
            servers.append(Petrel(build, scratch, mail, users_file, cert,
                                  key, args.workers))
        if args.only != "petrel":
            servers.append(Dovecot(scratch, mail, users_file, cert, key))
        load = build_load(scratch)
        print("# %d clients, %d mailboxes x %d messages x %d octets, "
              "%.0f s per figure, %d CPUs, load %.1f"
              % (args.users, args.users, args.messages, args.size,
                 args.duration, os.cpu_count() or 1, os.getloadavg()[0]))
        # Warm up: page cache, Dovecot's indexes and uidlists.
        for srv in servers:
            measure(load, "retr", srv.plain, False, args.users, 2.0, 1)
        results = {}
        for kind, unit in (("retr", "MB/s"), ("logins", "logins/s")):
            for use_tls in (False, True):
                label = "%s %s" % ("RETR" if kind == "retr" else "logins",
                                   "TLS" if use_tls else "plain")
                samples = {srv.name: [] for srv in servers}
                # The servers take turns, so that a burst of load from
                # elsewhere hits both alike; the median is kept.
                for _ in range(args.repeat):
                    for srv in servers:
                        port = srv.tls if use_tls else srv.plain
                        t = measure(load, kind, port, use_tls, args.users,
                                    args.duration, args.passes)
                        value = (t["bytes"] / 1e6 if kind == "retr"
                                 else t["logins"]) / args.duration
                        samples[srv.name].append(value)
                        extra = ""
                        if t["errors"]:
                            extra = "  (%d errors, last: %s)" % (
                                t["errors"], t["last_error"])
                        print("%-8s %-13s %10.1f %s%s"
                              % (srv.name, label, value, unit, extra))
                        sys.stdout.flush()
                results[(kind, use_tls)] = {
                    name: sorted(v)[len(v) // 2]
                    for name, v in samples.items()}
        print("\n%-17s %10s %12s %8s   (medians of %d, load now %.1f)"
              % ("figure", "petrel", "dovecot", "ratio", args.repeat,
                 os.getloadavg()[0]))
        for (kind, use_tls), row in results.items():
            label = "%s %s" % ("RETR MB/s" if kind == "retr"
                               else "logins/s",
                               "TLS" if use_tls else "plain")
            p, d = row.get("petrel"), row.get("dovecot")
            ratio = "%7.2fx" % (p / d) if p is not None and d else "      -"
            print("%-17s %10s %12s %s"
                  % (label, "%.1f" % p if p is not None else "-",
                     "%.1f" % d if d is not None else "-", ratio))
    finally:
        benchlib.cleanup()
        if args.keep:
            print("# kept %s" % scratch)


if __name__ == "__main__":
    main()
