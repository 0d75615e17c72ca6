# SPDX-License-Identifier: MIT
"""Harness for Petrel integration tests: run the real binary, talk to it.

Standard library only. Every wait is bounded, and every started server is
killed (with its whole process group) when its test ends, pass or fail.

Environment (set by tests/integration/meson.build; defaults fit a
checkout with a `build` directory):
  PETREL_BIN, PETREL_MODULE_DIR, PETREL_TEST_MODULE_DIR,
  PETREL_SOURCE_ROOT, PETREL_BUILD_ROOT
"""

import atexit
import json
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

SOURCE_ROOT = os.environ.get(
    "PETREL_SOURCE_ROOT",
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))))
BUILD_ROOT = os.environ.get("PETREL_BUILD_ROOT",
                            os.path.join(SOURCE_ROOT, "build"))
PETREL_BIN = os.environ.get("PETREL_BIN", os.path.join(BUILD_ROOT, "petrel"))
MODULE_DIR = os.environ.get("PETREL_MODULE_DIR",
                            os.path.join(BUILD_ROOT, "modules"))
TEST_MODULE_DIR = os.environ.get(
    "PETREL_TEST_MODULE_DIR", os.path.join(BUILD_ROOT, "tests", "modules"))

IS_ROOT = os.geteuid() == 0
# The unprivileged account workers switch to when the tests run as root.
RUN_USER = "nobody"

START_TIMEOUT = 10.0     # server start: port open or log line seen
COMMAND_TIMEOUT = 30.0   # `petrel -t` and other short commands
IO_TIMEOUT = 5.0         # one network read

# Reported by ASan/UBSan/LSan; a server log containing one fails the test.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                   "Sanitizer has encountered a fatal error")


# ---------------------------------------------------------------- ports

_used_ports = set()


def _port_range():
    """Ports to pick from: below the kernel's ephemeral range, so that no
    outgoing connection of a parallel test can take a port between the
    moment it is picked and the moment petrel binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    high = min(low, 32768) - 1
    return max(1024, high - 12000), high


_CLAIM_DIR = "/tmp/petrel-test-ports"


def _claim_port(port):
    """Reserve @port among every test process running on this machine
    (meson runs test files in parallel): a file named after the port,
    created exclusively, holding our pid. A claim whose owner is dead is
    taken over. Claims are released at exit."""
    os.makedirs(_CLAIM_DIR, mode=0o1777, exist_ok=True)
    path = os.path.join(_CLAIM_DIR, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and pid_alive(owner):
                return False
            try:
                os.unlink(path)
            except OSError:
                return False
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _claimed_ports.append(path)
        return True
    return False


_claimed_ports = []


def _release_ports():
    for path in _claimed_ports:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_release_ports)


def free_port():
    """A loopback TCP port that is free now and not handed out before in
    this run. Checked by binding 127.0.0.1:PORT (then released)."""
    low, high = _port_range()
    for _ in range(200):
        port = random.randint(low, high)
        if port in _used_ports or not _claim_port(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _used_ports.add(port)
        return port
    # Fall back to whatever the kernel offers.
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _used_ports:
            _used_ports.add(port)
            return port
    raise RuntimeError("no free loopback port")


def wait_port(port, timeout=START_TIMEOUT, host="127.0.0.1", proc=None):
    """Wait until host:port accepts a TCP connection."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise AssertionError("petrel exited (status %s) before port %d "
                                 "opened" % (proc.returncode, port))
        if time.monotonic() > deadline:
            raise AssertionError("port %d not open after %.0f s"
                                 % (port, timeout))
        time.sleep(0.05)


def wait_until(predicate, timeout, what, interval=0.05):
    """Poll predicate() until it returns a true value; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


# ---------------------------------------------------------- processes

def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    # The state follows the command name in parentheses.
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X")


def children(pid):
    """Live child pids of pid."""
    found = []
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            found = [int(x) for x in f.read().split()]
    except FileNotFoundError:
        # Kernel without CONFIG_PROC_CHILDREN (or pid gone): scan /proc.
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 1 and int(fields[1]) == pid:
                found.append(int(entry))
    except OSError:
        return []
    return [c for c in found if pid_alive(c)]


def proc_status(pid, key):
    """A field of /proc/PID/status, e.g. "Uid" -> "65534 65534 65534 ..."."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(key)


def process_uids(pid):
    """Real, effective, saved and filesystem uid of pid."""
    return [int(x) for x in proc_status(pid, "Uid").split()]


def process_name(pid):
    return proc_status(pid, "Name")


def run(args, timeout=COMMAND_TIMEOUT, **kwargs):
    """Run a command, capture its output as text, bounded in time."""
    if "input" not in kwargs:
        kwargs["stdin"] = subprocess.DEVNULL
    return subprocess.run(args, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          timeout=timeout, **kwargs)


# ---------------------------------------------------------------- TLS

_cert_dir = None
_certs = {}


def _cleanup_cert_dir():
    if _cert_dir:
        shutil.rmtree(_cert_dir, ignore_errors=True)


def make_cert(name="localhost", sans=("localhost",)):
    """A self-signed EC P-256 certificate made with the openssl CLI, once
    per test run and name: returns (cert_path, key_path)."""
    global _cert_dir
    key = (name, tuple(sans))
    if key in _certs:
        return _certs[key]
    if _cert_dir is None:
        _cert_dir = tempfile.mkdtemp(prefix="petrel-certs-")
        os.chmod(_cert_dir, 0o755)
        atexit.register(_cleanup_cert_dir)
    base = os.path.join(_cert_dir, "%s-%d" % (name, len(_certs)))
    cert, keyfile = base + ".crt", base + ".key"
    san = ",".join("DNS:" + s for s in sans)
    result = run(["openssl", "req", "-x509", "-newkey", "ec",
                  "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                  "-days", "2", "-subj", "/CN=" + name,
                  "-addext", "subjectAltName=" + san,
                  "-keyout", keyfile, "-out", cert])
    if result.returncode != 0:
        raise RuntimeError("openssl req failed: " + result.stderr)
    os.chmod(keyfile, 0o600)
    os.chmod(cert, 0o644)
    _certs[key] = (cert, keyfile)
    return _certs[key]


def cert_der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def client_context(cafile=None, minimum=None, maximum=None, ciphers=None):
    """A client SSLContext: verifies against cafile when given (check the
    host name too), else verifies nothing."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
        ctx.check_hostname = True
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if minimum is not None:
        ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


# -------------------------------------------------------- line client

class LineClient:
    """A CRLF line protocol client: connect, read the greeting, send a
    line, read the reply; can start TLS at connect or later."""

    def __init__(self, port, host="127.0.0.1", tls=False, context=None,
                 server_hostname="localhost", timeout=IO_TIMEOUT,
                 read_greeting=True):
        self.timeout = timeout
        self.buf = b""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        if tls:
            self._wrap(context, server_hostname)
        self.greeting = self.read_line() if read_greeting else None

    def _wrap(self, context, server_hostname):
        if context is None:
            context = client_context()
        self.sock = context.wrap_socket(self.sock,
                                        server_hostname=server_hostname)

    def starttls(self, context=None, server_hostname="localhost"):
        """Start TLS on the connection; bytes already received and not
        read would be plaintext the server sent past its reply."""
        if self.buf:
            raise AssertionError("server sent bytes before the TLS "
                                 "handshake: %r" % self.buf)
        self._wrap(context, server_hostname)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_line(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def read_line(self, timeout=None):
        """Next line without its CRLF; AssertionError on EOF/timeout."""
        self.sock.settimeout(timeout or self.timeout)
        while b"\n" not in self.buf:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                raise AssertionError("no reply within %.0f s (got %r)"
                                     % (timeout or self.timeout, self.buf))
            if not data:
                raise AssertionError("connection closed (got %r)"
                                     % self.buf)
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_line_unbuffered(self, timeout=None):
        """A line read byte by byte, so nothing after it is consumed."""
        self.sock.settimeout(timeout or self.timeout)
        line = self.buf
        self.buf = b""
        while not line.endswith(b"\n"):
            data = self.sock.recv(1)
            if not data:
                raise AssertionError("connection closed (got %r)" % line)
            line += data
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def cmd(self, line, timeout=None):
        self.send_line(line)
        return self.read_line(timeout)

    def wait_closed(self, timeout=IO_TIMEOUT):
        """True once the server closed the connection (EOF or reset)."""
        self.sock.settimeout(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                return False
            except (ConnectionError, ssl.SSLError, OSError):
                return True
            if not data:
                return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ------------------------------------------------------------ servers

_live_groups = set()
_live_dirs = set()


def _kill_leftovers():
    for pgid in list(_live_groups):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    if os.environ.get("PETREL_KEEP_TEST_DIRS") != "1":
        for path in list(_live_dirs):
            shutil.rmtree(path, ignore_errors=True)


atexit.register(_kill_leftovers)


def _on_terminate(signo, frame):
    # meson test sends SIGTERM to a test that timed out. Servers run in
    # sessions of their own, so nothing else would stop them.
    _kill_leftovers()
    signal.signal(signo, signal.SIG_DFL)
    os.kill(os.getpid(), signo)


for _signo in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_signo) in (signal.SIG_DFL, None):
        signal.signal(_signo, _on_terminate)


class Petrel:
    """One petrel server (or `petrel -t` run) in its own temp dir.

    Cleanup (registered on the test case) kills the whole process group,
    checks the log for sanitizer reports and removes the directory."""

    def __init__(self, testcase, module_dir=None):
        self.testcase = testcase
        self.dir = tempfile.mkdtemp(prefix="petrel-test-")
        _live_dirs.add(self.dir)
        os.chmod(self.dir, 0o755)
        self.module_dir = module_dir or MODULE_DIR
        self.state_dir = self.path("state")
        os.mkdir(self.state_dir)
        self.chown_run_user(self.state_dir)
        self.conf_path = self.path("petrel.json")
        self.log_path = self.path("petrel.log")
        self.proc = None
        self._log_file = None
        testcase.addCleanup(self.cleanup)

    # -- files

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def chown_run_user(self, path):
        """Give path to the account workers run as (only when root)."""
        if IS_ROOT:
            pw = pwd.getpwnam(RUN_USER)
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def config(self, modules=None, tls=None, **server):
        """A config dict: the server section (state_dir in the temp dir,
        one worker, short shutdown, "user" when root) plus the sections
        given. Keyword arguments override server keys."""
        srv = {"hostname": "mail.example.test",
               "state_dir": self.state_dir,
               "workers": 1,
               "shutdown_timeout": "3s",
               "log": {"level": "info"}}
        if IS_ROOT:
            srv["user"] = RUN_USER
        srv.update(server)
        cfg = {"server": srv}
        if tls is not None:
            cfg["tls"] = tls
        cfg["modules"] = modules if modules is not None else {}
        return cfg

    def write_config(self, cfg, path=None):
        path = path or self.conf_path
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)
        return path

    def write_text(self, text, path=None):
        path = path or self.conf_path
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- one-shot runs

    def run(self, *args, timeout=COMMAND_TIMEOUT):
        """Run petrel with args; returns CompletedProcess (text)."""
        return run([PETREL_BIN] + list(args), timeout=timeout,
                   cwd=self.dir)

    def check(self, cfg=None, module_dir=None, path=None):
        """`petrel -t` on cfg (a dict, written first) or the file."""
        if cfg is not None:
            path = self.write_config(cfg, path)
        return self.run("-t", "-c", path or self.conf_path,
                        "-M", module_dir or self.module_dir)

    # -- a running server

    def start(self, foreground=False, wait_ports=(), wait_log=None,
              timeout=START_TIMEOUT, extra_args=()):
        """Start petrel on the current config, wait until every port in
        wait_ports accepts and wait_log (if given) is logged."""
        if self.proc is not None:
            raise RuntimeError("already started")
        args = [PETREL_BIN, "-c", self.conf_path, "-M", self.module_dir]
        if foreground:
            args.append("-f")
        args.extend(extra_args)
        self._log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=self.dir,
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._log_file,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        _live_groups.add(self.proc.pid)
        for port in wait_ports:
            self.wait_port(port, timeout)
        if wait_log:
            self.wait_log(wait_log, timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_port(self, port, timeout=START_TIMEOUT):
        try:
            wait_port(port, timeout, proc=self.proc)
        except AssertionError as e:
            raise AssertionError("%s\n--- petrel log:\n%s"
                                 % (e, self.log_tail()))

    def log_text(self, path=None):
        try:
            with open(path or self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40, path=None):
        return "\n".join(self.log_text(path).splitlines()[-lines:])

    def log_mark(self, path=None):
        """Current end of the log: pass as since= to wait_log."""
        return len(self.log_text(path))

    def wait_log(self, substr, timeout=START_TIMEOUT, since=0, path=None,
                 count=1):
        """Wait until substr appears (count times) in the log after
        offset since; returns the log text from since on. Fails early if
        the server exited without logging it."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text(path)[since:]
            if text.count(substr) >= count:
                return text
            exited = self.proc is not None and self.proc.poll() is not None
            if exited or time.monotonic() > deadline:
                # A last look: the line may have been written just now.
                text = self.log_text(path)[since:]
                if text.count(substr) >= count:
                    return text
                why = ("petrel exited with status %s" % self.proc.returncode
                       if exited else "timed out after %.1f s" % timeout)
                raise AssertionError("%r not logged (%s)\n--- petrel log:\n"
                                     "%s" % (substr, why,
                                             self.log_tail(path=path)))
            time.sleep(0.05)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def children(self):
        return children(self.proc.pid)

    def wait_children(self, n, timeout=START_TIMEOUT):
        return wait_until(lambda: (len(self.children()) == n
                                   and self.children()),
                          timeout, "%d child processes" % n)

    def wait_exit(self, timeout):
        """Wait for the master to exit; returns its status or None."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to timeout, then SIGKILL the whole group.
        Returns the master's exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()
        return self.proc.returncode

    def kill_group(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        _live_groups.discard(self.proc.pid)
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def cleanup(self):
        try:
            self.kill_group()
            # Workers can outlive the master for a moment; give them a
            # chance to write their reports before reading the log.
            log = self.log_text()
            for mark in SANITIZER_MARKS:
                if mark in log:
                    raise AssertionError("sanitizer report in petrel log:"
                                         "\n%s" % log[-8000:])
        finally:
            _live_dirs.discard(self.dir)
            if os.environ.get("PETREL_KEEP_TEST_DIRS") != "1":
                shutil.rmtree(self.dir, ignore_errors=True)


class PetrelTestCase(unittest.TestCase):
    """Base class with assertions on petrel's exit status and messages.
    A missing binary or module is a failure, never a skip."""

    maxDiff = None

    def petrel(self, module_dir=None):
        return Petrel(self, module_dir)

    def assertExit(self, result, code, msg=None):
        self.assertEqual(result.returncode, code,
                         msg or "exit status %d, expected %d\nstdout: %s\n"
                         "stderr: %s" % (result.returncode, code,
                                         result.stdout, result.stderr))

    def assertCheckOk(self, result):
        self.assertExit(result, 0)
        self.assertRegex(result.stderr, r"petrel: configuration \S+ is ok")

    def assertCheckFails(self, result, *phrases):
        """`petrel -t` failed with exit 1 and a message holding each
        phrase (a str, or a compiled regex)."""
        self.assertExit(result, 1)
        for phrase in phrases:
            if hasattr(phrase, "search"):
                self.assertRegex(result.stderr, phrase)
            else:
                self.assertIn(phrase, result.stderr)
