# SPDX-License-Identifier: MIT
"""Shared pieces of the benchmark drivers (smtp_bench.py, relay_bench.py,
pop3_bench.py): cleanup on exit, commands, scratch directories, test
messages, a Petrel started from a JSON config, and a private Postfix
instance.

The drivers run as root and start servers whose workers run as RUN_USER.
Everything a driver starts registers its stop with at_cleanup(), and
cleanup() undoes it all in reverse order: a failed or interrupted run
leaves no server behind and, unless kept, no scratch directory.

The Postfix instance never touches the system one: it has its own
config_directory and queue_directory under the scratch directory, listens
on a free loopback port and is stopped by cleanup(). What the benchmarks
need differently (Maildir delivery to virtual mailboxes, a relayhost, ...)
is given as main.cf and master.cf extras.
"""

import argparse
import atexit
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_ROOT, "tests", "integration"))

import harness  # noqa: E402  (free_port, wait_port, children, run)
from smtp_harness import hash_password  # noqa: E402


def tool(name):
    """Path of a Postfix or Dovecot program: on PATH or in /usr/sbin."""
    return shutil.which(name) or os.path.join("/usr/sbin", name)


SMTP_SOURCE = tool("smtp-source")
SMTP_SINK = tool("smtp-sink")
POSTFIX = tool("postfix")
POSTMAP = tool("postmap")
POSTCONF = tool("postconf")
RUN_USER = "nobody"

# ------------------------------------------------------------- cleanup

_cleanups = []


def at_cleanup(fn, first=False):
    """Have cleanup() call fn; first=True: after everything else (the
    scratch directory goes once the servers writing into it are gone)."""
    if first:
        _cleanups.insert(0, fn)
    else:
        _cleanups.append(fn)


def cleanup():
    """Call the registered functions, last registered first; one that
    fails is reported and the others still run."""
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # keep cleaning up
            print("# cleanup: %s" % e, file=sys.stderr)


def cleanup_at_exit():
    """Run cleanup() at exit, also on SIGINT and SIGTERM."""
    atexit.register(cleanup)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *a: sys.exit(1))


# ---------------------------------------------------- commands, files

def run(argv, timeout=600, check=True, **kwargs):
    """Run a command to completion, its output captured as text; with
    check, a non-zero status raises RuntimeError with that output."""
    result = harness.run(argv, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (
            " ".join(argv), result.returncode, result.stdout,
            result.stderr))
    return result


def arg_parser(doc):
    """A command line parser described by doc's first line, with the
    option every driver has: --build (the meson build directory)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--build", required=True)
    return ap


def require_postfix(prog, tools):
    """Exit with a message unless running as root (Postfix's master
    needs it) and every one of the Postfix tools runs."""
    if os.geteuid() != 0:
        sys.exit("%s: run as root (Postfix's master needs it)" % prog)
    for path in tools:
        if not os.access(path, os.X_OK):
            sys.exit("%s: %s missing (apt-get install postfix)"
                     % (prog, path))


def chown_run_user(path):
    """Give path to the account the servers' workers run as."""
    pw = pwd.getpwnam(RUN_USER)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def make_dir(path, run_user=False):
    """A new directory readable by all, owned by RUN_USER if run_user."""
    os.mkdir(path)
    os.chmod(path, 0o755)
    if run_user:
        chown_run_user(path)
    return path


def scratch_dir(prefix, keep):
    """A new directory under $BENCH_DIR (default /var/tmp: the disk being
    measured), removed by cleanup() unless keep."""
    base = os.environ.get("BENCH_DIR", "/var/tmp")
    scratch = tempfile.mkdtemp(prefix=prefix, dir=base)
    os.chmod(scratch, 0o755)
    if not keep:
        at_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True),
                   first=True)
    return scratch


def disk_info(path):
    """(file system type, mount point) of the disk holding path."""
    fs = run(["df", "-PT", path]).stdout.splitlines()[1].split()
    return fs[1], fs[6]


def write_passwd(path, users, password):
    """A Dovecot-style passwd-file: every user with password hashed as
    {SHA512-CRYPT} (5000 rounds), readable by the workers."""
    hashed = hash_password(password)
    with open(path, "w") as f:
        for user in users:
            f.write("%s:{SHA512-CRYPT}%s\n" % (user, hashed))
    os.chmod(path, 0o644)


def message_file(path, size, marker, sender, rcpt, subject="bench",
                 fill="b"):
    """A message for smtp-source -F of about size bytes on the wire,
    with marker after the header and at the end: a delivered copy that
    holds it twice arrived whole."""
    lines = ["From: <%s>" % sender, "To: <%s>" % rcpt,
             "Subject: %s %s" % (subject, marker), "", marker]
    i = 0
    while sum(len(l) + 2 for l in lines) < size - 20:
        lines.append("line %06d %s" % (i, fill * 64))
        i += 1
    lines.append(marker)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o644)


def smtp_source(port, count, sessions, msgfile, sender, rcpt, helo,
                reuse):
    """Send count copies of msgfile to 127.0.0.1:port over sessions
    parallel sessions with smtp-source (-d with reuse: several messages
    per session); returns the wall time in seconds."""
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(count),
            "-F", msgfile, "-f", sender, "-t", rcpt, "-M", helo, "-C", "5"]
    if reuse:
        argv.append("-d")
    argv.append("127.0.0.1:%d" % port)
    start = time.monotonic()
    run(argv, timeout=1800)
    return time.monotonic() - start


def stop_process(proc, timeout):
    """SIGTERM, up to timeout seconds to exit, then SIGKILL for its whole
    process group (started with start_new_session: it leads one)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait(5)


# -------------------------------------------------------------- Petrel

def petrel_config(state, workers, modules, hostname="mail.example.test",
                  log_level="info", **server):
    """A Petrel config: workers as RUN_USER, state in state, the given
    modules; server adds keys to the "server" section."""
    section = {"hostname": hostname, "state_dir": state,
               "workers": workers, "user": RUN_USER,
               "log": {"level": log_level}}
    section.update(server)
    return {"server": section, "modules": modules}


def mx_listener(port):
    """An SMTP listener on 127.0.0.1:port with no connection caps: the
    load comes from one address."""
    return {"address": "127.0.0.1:%d" % port, "role": "mx",
            "max_connections": 100000, "max_per_ip": 100000}


class Petrel:
    """A Petrel master started from cfg in directory (petrel.json and
    petrel.log there), in a session of its own so that stop() reaches
    its workers; ready once every port in ports accepts."""

    def __init__(self, build, directory, cfg, ports, stop_timeout=10.0):
        self.dir = directory
        self.stop_timeout = stop_timeout
        self.conf = os.path.join(directory, "petrel.json")
        with open(self.conf, "w") as f:
            json.dump(cfg, f, indent=2)
        self.log_path = os.path.join(directory, "petrel.log")
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(build, "petrel"), "-c", self.conf, "-M",
             os.path.join(build, "modules")],
            cwd=directory, stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        at_cleanup(self.stop)
        for port in ports:
            harness.wait_port(port, 15, proc=self.proc)

    def workers(self):
        """Pids of the worker processes."""
        return harness.children(self.proc.pid)

    def log_has(self, text):
        """True once the log holds text (bytes)."""
        with open(self.log_path, "rb") as f:
            return text in f.read()

    def stop(self):
        stop_process(self.proc, self.stop_timeout)
        self.log.close()


# ------------------------------------------------------------- Postfix

MASTER_CF = """\
{listen}:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# No local delivery, no aliases, relaying only for mynetworks: what a
# benchmark adds comes after (main.cf's last setting of a name wins).
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
meta_directory = /etc/postfix
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.example.test
mydomain = example.test
myorigin = example.test
inet_interfaces = {listen}
inet_protocols = ipv4
mydestination =
local_recipient_maps =
relay_domains =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
maillog_file = {dir}/maillog
# 100 concurrent sessions from one address: lift anvil's per-client cap
# (default 50) and allow enough smtpd processes (default 100).
smtpd_client_connection_count_limit = 0
default_process_limit = 300
biff = no
"""


class Postfix:
    """A private Postfix instance in scratch/postfix: conf/ (main.cf,
    master.cf, maps), queue/, data/. The constructor only writes the
    config; add_map() then start().

    main_extra: main.cf settings {name: value} appended to MAIN_CF, the
    values formatted with {dir} (the instance's directory) and {conf};
    master_extra: master.cf lines appended to MASTER_CF; listen: the
    address of the smtpd listener (on a free port, self.port) and
    inet_interfaces."""

    def __init__(self, scratch, main_extra=None, master_extra="",
                 listen="127.0.0.1"):
        self.dir = os.path.join(scratch, "postfix")
        self.conf = os.path.join(self.dir, "conf")
        self.listen = listen
        for d in (self.dir, self.conf, os.path.join(self.dir, "queue"),
                  os.path.join(self.dir, "data")):
            make_dir(d)
        pw = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.dir, "data"), pw.pw_uid, pw.pw_gid)
        self.port = harness.free_port()
        main = MAIN_CF.format(dir=self.dir, listen=listen)
        for name, value in (main_extra or {}).items():
            main += "%s = %s\n" % (name, str(value).format(
                dir=self.dir, conf=self.conf))
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(main)
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(listen=listen, port=self.port)
                    + master_extra)

    def add_map(self, name, text):
        """Write conf/name and build its hash: table; returns its path."""
        path = os.path.join(self.conf, name)
        with open(path, "w") as f:
            f.write(text)
        run([POSTMAP, "-c", self.conf, path])
        return path

    def start(self):
        """Check the config, start the master and wait for smtpd; stopped
        by cleanup()."""
        run([POSTFIX, "-c", self.conf, "check"])
        run([POSTFIX, "-c", self.conf, "start"])
        at_cleanup(self.stop)
        harness.wait_port(self.port, 20, host=self.listen)
        return self

    def version(self):
        return run([POSTCONF, "-c", self.conf, "-h", "mail_version"],
                   check=False).stdout.strip()

    def pids(self):
        """The master and all its descendants."""
        with open(os.path.join(self.dir, "queue", "pid",
                               "master.pid")) as f:
            master = int(f.read().split()[0])
        out, pending = [], [master]
        while pending:
            pid = pending.pop()
            out.append(pid)
            pending.extend(harness.children(pid))
        return out

    def queue_empty(self):
        """No message waiting in any queue: every one delivered or
        bounced, none to be retried."""
        for sub in ("incoming", "active", "deferred", "maildrop", "hold"):
            for _, _, files in os.walk(os.path.join(self.dir, "queue",
                                                    sub)):
                if files:
                    return False
        return True

    def stop(self):
        run([POSTFIX, "-c", self.conf, "stop"], check=False, timeout=60)
