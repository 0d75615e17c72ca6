# SPDX-License-Identifier: MIT
"""Helpers for the relay tests: a dnsmasq serving the test domains' MX
and A records, SMTP peers on 127.0.0.x as their mail servers, and a
Petrel (smtp + queue + resolver + passwd + maildir) that takes mail from
a trusted client and relays it.

Needs the dnsmasq binary (Debian: dnsmasq-base or dnsmasq) and openssl.
The peers are tests/integration/smtp_peer.py; every MX listens on the
same port of its own loopback address, and Petrel's relay.mx_port points
there (port 25 needs no test: it is the default).
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

import harness
import smtp_harness
from smtp_peer import SmtpPeer, free_port_on

SENDER = "alice@example.test"
TRUSTED_NET = "127.0.0.1/32"


def dnsmasq_path():
    for p in ("/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"):
        if os.path.exists(p):
            return p
    return shutil.which("dnsmasq")


class Dns:
    """dnsmasq on 127.0.0.1:PORT answering for *.test only: names it was
    given resolve, other names under .test are NXDOMAIN, a name with A
    records but no MX answers the MX query with no data."""

    def __init__(self, testcase, mx=(), hosts=None, null_mx=()):
        self.port = harness.free_port()
        exe = dnsmasq_path()
        if exe is None:
            raise AssertionError("dnsmasq not installed (apt-get install "
                                 "dnsmasq-base)")
        args = [exe, "--no-daemon", "-C", "/dev/null", "--no-resolv",
                "--no-hosts", "--port=%d" % self.port,
                "--listen-address=127.0.0.1", "--bind-interfaces",
                "--pid-file=", "--local=/test/", "--log-facility=-"]
        if harness.IS_ROOT:
            args.append("--user=nobody")
        for domain, host, pref in mx:
            args.append("--mx-host=%s,%s,%d" % (domain, host, pref))
        for domain in null_mx:
            args.append("--mx-host=%s,.,0" % domain)
        for name, ips in (hosts or {}).items():
            if isinstance(ips, str):
                ips = [ips]
            args.append("--host-record=%s,%s" % (name, ",".join(ips)))
        self.log_path = os.path.join(
            tempfile.gettempdir(),
            "petrel-dnsmasq-%d-%d.log" % (os.getpid(), self.port))
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        testcase.addCleanup(self.stop)
        self._wait()

    def _wait(self):
        """dnsmasq binds before it logs "started"; poll the log."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as f:
                if b"started" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        with open(self.log_path, "rb") as f:
            raise AssertionError("dnsmasq did not start: %s"
                                 % f.read().decode("utf-8", "replace"))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        try:
            os.unlink(self.log_path)
        except OSError:
            pass


class RelayServer(smtp_harness.SmtpServer):
    """Petrel relaying for trusted 127.0.0.1 through the queue to MX
    hosts found with the resolver module at dns."""

    def __init__(self, testcase, dns=None, mx_port=25, relay=None,
                 queue=None, resolver=None, smtp=None, **kwargs):
        relay_conf = {"mx_port": mx_port, "ip_version": "ipv4",
                      "connect_timeout": "2s", "greeting_timeout": "5s",
                      "command_timeout": "5s", "data_timeout": "5s",
                      "data_block_timeout": "5s",
                      "data_done_timeout": "10s", "quit_timeout": "2s"}
        relay_conf.update(relay or {})
        queue_conf = {"local_domains": [smtp_harness.DOMAIN],
                      "backoff_min": "1s", "backoff_max": "2s",
                      "scan_interval": "1s", "relay": relay_conf}
        queue_conf.update(queue or {})
        resolver_conf = {"timeout": "1s", "tries": 1, "cache_size": 0}
        if dns is not None:
            resolver_conf["servers"] = ["127.0.0.1:%d" % dns.port]
        resolver_conf.update(resolver or {})
        smtp_conf = {"trusted_networks": [TRUSTED_NET]}
        smtp_conf.update(smtp or {})
        extra = {"resolver": resolver_conf, "queue": queue_conf}
        extra.update(kwargs.pop("extra_modules", {}))
        super().__init__(testcase, smtp=smtp_conf, roles=("mx",),
                         extra_modules=extra, **kwargs)

    def start(self, timeout=harness.START_TIMEOUT):
        super().start(timeout)
        self.p.wait_log("queue: runner started", timeout=timeout)
        return self

    def submit(self, rcpts, message=None, sender=SENDER, mail_params="",
               rcpt_params=""):
        """Send one message from the trusted client; returns the queue
        reply (250 ... queued as ID)."""
        if isinstance(rcpts, str):
            rcpts = [rcpts]
        if message is None:
            message = smtp_harness.make_message(subject="relay test",
                                                sender=sender)
        with self.ehlo_client() as c:
            c.expect("MAIL FROM:<%s>%s" % (sender, mail_params), 250)
            for r in rcpts:
                c.expect("RCPT TO:<%s>%s" % (r, rcpt_params), 250)
            r = c.data(message)
            c.quit()
        if r.code != 250:
            raise AssertionError("message not queued: %s" % r)
        return r

    def wait_status(self, rcpt, status, timeout=20, since=0):
        """Wait for the queue's log line for rcpt with status (delivered,
        deferred, failed); returns the line."""
        needle = "to=<%s>" % rcpt
        deadline = time.monotonic() + timeout
        while True:
            for line in self.p.log_text()[since:].splitlines():
                if needle in line and ("status=" + status) in line:
                    return line
            if time.monotonic() > deadline:
                raise AssertionError(
                    "no status=%s for %s after %.0f s\n--- petrel log:\n%s"
                    % (status, rcpt, timeout, self.p.log_tail(60)))
            time.sleep(0.05)


def peers(testcase, addrs, port=None, **kwargs):
    """Start one SmtpPeer per (address, name) on a common port; they stop
    at the end of the test. Returns (port, [peers])."""
    port = port or free_port_on([a for a, _ in addrs])
    started = []
    for addr, name in addrs:
        p = SmtpPeer(addr, port, name=name, **kwargs)
        p.start()
        testcase.addCleanup(p.stop)
        started.append(p)
    return port, started


def make_ca(name="Petrel Test CA"):
    """A CA and a function that issues a server certificate for names:
    returns (ca_cert, issue(name, sans) -> (cert, key))."""
    d = tempfile.mkdtemp(prefix="petrel-ca-")
    os.chmod(d, 0o755)
    ca_key, ca_cert = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    r = harness.run(["openssl", "req", "-x509", "-newkey", "ec",
                     "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-days", "2", "-subj", "/CN=" + name,
                     "-addext", "basicConstraints=critical,CA:TRUE",
                     "-addext", "keyUsage=critical,keyCertSign",
                     "-keyout", ca_key, "-out", ca_cert])
    if r.returncode != 0:
        raise RuntimeError("openssl: " + r.stderr)
    os.chmod(ca_cert, 0o644)
    counter = [0]

    def issue(cn, sans=None):
        counter[0] += 1
        base = os.path.join(d, "srv%d" % counter[0])
        key, csr, crt = base + ".key", base + ".csr", base + ".crt"
        ext = base + ".ext"
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\n" % ",".join(
                "DNS:" + s for s in (sans or [cn])))
            f.write("extendedKeyUsage=serverAuth\n")
        r = harness.run(["openssl", "req", "-new", "-newkey", "ec",
                         "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                         "-subj", "/CN=" + cn, "-keyout", key,
                         "-out", csr])
        if r.returncode != 0:
            raise RuntimeError("openssl: " + r.stderr)
        r = harness.run(["openssl", "x509", "-req", "-in", csr,
                         "-CA", ca_cert, "-CAkey", ca_key,
                         "-CAcreateserial", "-days", "2",
                         "-extfile", ext, "-out", crt])
        if r.returncode != 0:
            raise RuntimeError("openssl: " + r.stderr)
        os.chmod(key, 0o644)
        os.chmod(crt, 0o644)
        return crt, key

    import atexit
    atexit.register(shutil.rmtree, d, True)
    return ca_cert, issue
