# SPDX-License-Identifier: MIT
"""The resolver service in a real petrel process.

The resolver_probe test module (tests/modules/resolver_probe.c) turns lines
such as `MX example.test` into lookups through the "resolver" service and
answers with one line of results. The name servers are real: a dnsmasq
started here on 127.0.0.1 with the test records, and a small DNS server
in this file for what dnsmasq will not say (the AD bit, SOA-backed
negative answers, 150 records, a PTR name crafted to inject a header,
silence)."""

import grp
import os
import pwd
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import IS_ROOT, TEST_MODULE_DIR

PROBE = os.path.join(TEST_MODULE_DIR, "resolver_probe.so")
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"

BIG_TXT = ["%c" % (ord("a") + i) * 250 for i in range(6)]


def free_dns_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        port = harness.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port for DNS")


def ip6_arpa(ip):
    packed = socket.inet_pton(socket.AF_INET6, ip)
    nibbles = "".join("%02x" % b for b in packed)
    return ".".join(reversed(nibbles)) + ".ip6.arpa"


class Dnsmasq:
    """dnsmasq serving the test zone example.test on 127.0.0.1:port."""

    def __init__(self):
        if not os.path.exists(DNSMASQ):
            raise AssertionError("dnsmasq is not installed "
                                 "(apt-get install dnsmasq-base)")
        self.port = free_dns_port()
        self.dir = tempfile.mkdtemp(prefix="petrel-dnsmasq-")
        self.log_path = os.path.join(self.dir, "dnsmasq.log")
        args = [
            DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
            "--conf-file=/dev/null", "--pid-file=",
            "--port=%d" % self.port, "--listen-address=127.0.0.1",
            "--bind-interfaces", "--log-queries", "--log-facility=-",
            # Names under example.test that are not listed: NXDOMAIN.
            "--local=/example.test/", "--local-ttl=300",
            "--mx-host=example.test,mx2.example.test,20",
            "--mx-host=example.test,mx1.example.test,10",
            "--mx-host=null.example.test,.,0",
            "--host-record=mx1.example.test,192.0.2.10,2001:db8::10",
            "--host-record=mx2.example.test,192.0.2.20",
            "--host-record=many.example.test,192.0.2.31",
            "--cname=alias.example.test,mx1.example.test",
            "--txt-record=example.test,v=spf1 mx -all",
            "--txt-record=_dmarc.example.test,v=DMARC1; p=reject",
            "--txt-record=big.example.test," + ",".join(BIG_TXT),
            "--ptr-record=10.2.0.192.in-addr.arpa,mx1.example.test",
            "--ptr-record=%s,mx1.example.test" % ip6_arpa("2001:db8::10"),
            "--dns-rr=_25._tcp.mx1.example.test,52,"
            "030101" + "ab" * 32,
        ]
        if IS_ROOT:
            nobody = pwd.getpwnam("nobody")
            args += ["--user=nobody",
                     "--group=" + grp.getgrgid(nobody.pw_gid).gr_name]
        self.args = args
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        harness.wait_port(self.port, proc=self.proc)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# ------------------------------------------------------- a small DNS server

def dns_name(name):
    out = b""
    for label in name.split(".") if name else []:
        raw = label.encode("latin-1")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


class FakeDns(threading.Thread):
    """Answers by query name (A unless said):
      secure.test      A 192.0.2.50; AD set when the query had AD
      nx.test          NXDOMAIN, SOA TTL 600 MINIMUM 120
      many.test        150 A records
      silent.test      no answer
      4.3.2.1.in-addr.arpa  PTR "x\\r\\nInjected: yes.test"
    and remembers the name, type and flags of each query. An answer over
    1232 bytes goes over UDP truncated (TC), whole over TCP."""

    def __init__(self):
        super().__init__(daemon=True)
        self.port = free_dns_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.2)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.tcp_thread = threading.Thread(target=self.run_tcp, daemon=True)
        self.running = True
        self.queries = []

    def start(self):
        super().start()
        self.tcp_thread.start()

    def run(self):
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self.answer(data)
            if reply is None:
                continue
            if len(reply) > 1232:
                # Header and question only, with TC: "ask over TCP".
                qend = 12 + len(self.last_question)
                flags = struct.unpack(">H", reply[2:4])[0] | 0x0200
                reply = (reply[:2] + struct.pack(">HHHHH", flags, 1, 0, 0,
                                                 0) + reply[12:qend])
            self.sock.sendto(reply, peer)

    def run_tcp(self):
        while self.running:
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    size = struct.unpack(">H", self.recv_all(conn, 2))[0]
                    reply = self.answer(self.recv_all(conn, size))
                    if reply is not None:
                        conn.sendall(struct.pack(">H", len(reply)) + reply)
                except (OSError, struct.error):
                    pass

    @staticmethod
    def recv_all(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def answer(self, q):
        pos, labels = 12, []
        while q[pos] != 0:
            n = q[pos]
            labels.append(q[pos + 1:pos + 1 + n].decode("latin-1"))
            pos += 1 + n
        qtype = struct.unpack(">H", q[pos + 1:pos + 3])[0]
        question = q[12:pos + 5]
        self.last_question = question
        name = ".".join(labels).lower()
        flags_in = struct.unpack(">H", q[2:4])[0]
        arcount = struct.unpack(">H", q[10:12])[0]
        self.queries.append((name, qtype, bool(flags_in & 0x20),
                             arcount > 0))
        flags = 0x8180
        answers, authority = [], []
        ptr = b"\xc0\x0c"
        if name == "silent.test":
            return None
        if name == "secure.test":
            answers.append(rr(ptr, 1, 3600, socket.inet_aton("192.0.2.50")))
            if flags_in & 0x20:
                flags |= 0x20
        elif name == "nx.test":
            flags |= 3
            soa = (dns_name("ns.test") + dns_name("hostmaster.test") +
                   struct.pack(">IIIII", 1, 3600, 600, 86400, 120))
            authority.append(rr(dns_name("test"), 6, 600, soa))
        elif name == "many.test":
            for i in range(150):
                answers.append(rr(ptr, 1, 600,
                                  bytes([192, 0, 2, i % 256])))
        elif name == "4.3.2.1.in-addr.arpa" and qtype == 12:
            answers.append(rr(ptr, 12, 600,
                              dns_name("x\r\nInjected: yes.test")))
        else:
            flags |= 3
        header = struct.pack(">HHHHHH", struct.unpack(">H", q[:2])[0],
                             flags, 1, len(answers), len(authority), 0)
        return header + question + b"".join(answers) + b"".join(authority)

    def stop(self):
        self.running = False
        self.join(2)
        self.tcp_thread.join(2)
        self.sock.close()
        self.tcp.close()


# ------------------------------------------------------------------ tests

class ResolverCase(harness.PetrelTestCase):

    def start_petrel(self, servers, **resolver):
        self.p = self.petrel()
        self.port = harness.free_port()
        section = {"servers": servers}
        section.update(resolver)
        cfg = self.p.config(modules={
            "resolver": section,
            "resolver_probe": {"path": PROBE,
                               "listen": "127.0.0.1:%d" % self.port}},
            log={"level": "debug"})
        self.p.write_config(cfg)
        self.p.start(wait_ports=[self.port])
        self.client = harness.LineClient(self.port)
        self.addCleanup(self.client.close)
        self.assertEqual(self.client.greeting, "+OK resolver probe")

    def ask(self, line, timeout=10):
        return self.client.cmd(line, timeout=timeout)

    def stats(self):
        reply = self.ask("STATS")
        self.assertTrue(reply.startswith("+OK "), reply)
        return {k: int(v) for k, v in
                (item.split("=") for item in reply[4:].split())}


class WithDnsmasq(ResolverCase):

    @classmethod
    def setUpClass(cls):
        cls.dns = Dnsmasq()
        cls.addClassCleanup(cls.dns.stop)

    def setUp(self):
        self.start_petrel(["127.0.0.1:%d" % self.dns.port])

    def test_mx_by_preference_then_from_cache(self):
        self.assertEqual(self.ask("MX example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 "
                         "| 10 mx1.example.test | 20 mx2.example.test")
        # Same answer from the cache, case and trailing dot aside.
        reply = self.ask("MX Example.TEST.")
        self.assertRegex(reply, r"^\+OK OK ttl=(299|300) secure=0 cached=1 "
                                r"\| 10 mx1\.example\.test "
                                r"\| 20 mx2\.example\.test$")
        st = self.stats()
        self.assertEqual((st["lookups"], st["hits"], st["queries"]),
                         (2, 1, 1))
        # Lookups are logged at debug level.
        self.p.wait_log("resolver: MX example.test: OK, records 2, ttl 300")
        self.p.wait_log("resolver: MX example.test: from the cache")

    def test_null_mx(self):
        self.assertEqual(self.ask("MX null.example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 | 0 .")

    def test_addresses_and_cname(self):
        self.assertEqual(self.ask("A mx1.example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 | 192.0.2.10")
        self.assertEqual(self.ask("AAAA mx1.example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 | 2001:db8::10")
        self.assertEqual(self.ask("A alias.example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 "
                         "canonical=mx1.example.test | 192.0.2.10")

    def test_txt_records(self):
        self.assertEqual(self.ask("TXT example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 "
                         "| v=spf1\\x20mx\\x20-all")
        self.assertEqual(self.ask("TXT _dmarc.example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 "
                         "| v=DMARC1;\\x20p=reject")

    def test_large_txt_over_tcp(self):
        # 1.5 KB does not fit the 1232-byte EDNS size: dnsmasq sets TC,
        # c-ares asks again over TCP; the strings arrive joined.
        reply = self.ask("TXT big.example.test")
        self.assertEqual(reply, "+OK OK ttl=300 secure=0 cached=0 | " +
                         "".join(BIG_TXT))
        with open(self.dns.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertIn("query[TXT] big.example.test", log)

    def test_ptr_v4_and_v6(self):
        self.assertEqual(self.ask("PTR 192.0.2.10"),
                         "+OK OK ttl=300 secure=0 cached=0 "
                         "| mx1.example.test")
        self.assertEqual(self.ask("PTR 2001:db8::10"),
                         "+OK OK ttl=300 secure=0 cached=0 "
                         "| mx1.example.test")
        self.assertEqual(self.ask("PTR not-an-ip"), "-ERR not an IP address")

    def test_tlsa(self):
        self.assertEqual(self.ask("TLSA _25._tcp.mx1.example.test"),
                         "+OK OK ttl=300 secure=0 cached=0 | 3 1 1 " +
                         "ab" * 32)

    def test_negative_answers(self):
        self.assertEqual(self.ask("A nx.example.test"),
                         "+OK NXDOMAIN ttl=0 secure=0 cached=0")
        self.assertEqual(self.ask("MX mx1.example.test"),
                         "+OK NODATA ttl=0 secure=0 cached=0")
        # dnsmasq sends no SOA with these: not cached (RFC 2308 s5).
        self.assertEqual(self.ask("A nx.example.test"),
                         "+OK NXDOMAIN ttl=0 secure=0 cached=0")

    def test_invalid_names_never_queried(self):
        before = self.stats()["queries"]
        for line in ("MX bad_host.example.test", "A a..example.test",
                     "TXT " + "a" * 64 + ".example.test",
                     "A " + "abcdefghi." * 26 + "test"):
            reply = self.ask(line)
            self.assertTrue(reply.startswith("+OK PERMFAIL ttl=0 "), reply)
            self.assertIn("reason=invalid\\x20name", reply)
        # '_' is fine in owner names looked up as TXT and A.
        self.assertTrue(self.ask("TXT _dmarc.example.test")
                        .startswith("+OK OK"))
        self.assertEqual(self.stats()["queries"], before + 1)

    def test_identical_lookups_share_a_query(self):
        self.assertEqual(self.ask("MULTI 5 A mx2.example.test"),
                         "+OK n=5 OK OK OK OK OK")
        st = self.stats()
        self.assertEqual((st["queries"], st["joined"]), (1, 4))
        with open(self.dns.log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertEqual(log.count("query[A] mx2.example.test"), 1)

    def test_cancel_at_once(self):
        self.assertEqual(self.ask("DROP MX example.test"), "+OK cancelled")
        self.assertEqual(self.stats()["cancelled"], 1)
        # The answer still fills the cache.
        harness.wait_until(lambda: self.stats()["entries"] == 1, 5,
                           "the cancelled lookup's answer in the cache")
        self.assertIn("cached=1", self.ask("MX example.test"))

    def test_max_ttl_caps(self):
        self.p.stop()
        self.client.close()
        self.start_petrel(["127.0.0.1:%d" % self.dns.port], max_ttl="1m")
        self.assertEqual(self.ask("A mx1.example.test"),
                         "+OK OK ttl=60 secure=0 cached=0 | 192.0.2.10")

    def test_no_cache(self):
        self.p.stop()
        self.client.close()
        self.start_petrel(["127.0.0.1:%d" % self.dns.port], cache_size=0)
        self.ask("A mx1.example.test")
        self.assertIn("cached=0", self.ask("A mx1.example.test"))
        self.assertEqual(self.stats()["queries"], 2)


class WithFakeServer(ResolverCase):

    def setUp(self):
        self.dns = FakeDns()
        self.dns.start()
        self.addCleanup(self.dns.stop)
        self.start_petrel(["127.0.0.1:%d" % self.dns.port],
                          timeout="500ms", tries=1)

    def test_ad_bit_reported_as_secure(self):
        self.assertEqual(self.ask("A secure.test"),
                         "+OK OK ttl=3600 secure=1 cached=0 | 192.0.2.50")
        name, qtype, ad, edns = self.dns.queries[-1]
        self.assertEqual((name, qtype, ad, edns),
                         ("secure.test", 1, True, True))
        self.assertIn("secure=1 cached=1", self.ask("A secure.test"))

    def test_ad_and_edns_off(self):
        self.p.stop()
        self.client.close()
        self.start_petrel(["127.0.0.1:%d" % self.dns.port],
                          dnssec_ad=False, edns=False)
        self.assertIn("secure=0", self.ask("A secure.test"))
        self.assertEqual(self.dns.queries[-1][2:], (False, False))

    def test_negative_ttl_from_soa(self):
        self.assertEqual(self.ask("MX nx.test"),
                         "+OK NXDOMAIN ttl=120 secure=0 cached=0")
        self.assertRegex(self.ask("MX nx.test"),
                         r"^\+OK NXDOMAIN ttl=1(19|20) secure=0 cached=1$")
        self.assertEqual(len(self.dns.queries), 1)

    def test_negative_ttl_capped(self):
        self.p.stop()
        self.client.close()
        self.start_petrel(["127.0.0.1:%d" % self.dns.port],
                          negative_ttl="30s")
        self.assertEqual(self.ask("MX nx.test"),
                         "+OK NXDOMAIN ttl=30 secure=0 cached=0")

    def test_more_than_100_records(self):
        reply = self.ask("A many.test")
        self.assertTrue(reply.startswith("+OK OK ttl=600 "), reply)
        self.assertEqual(reply.count(" | "), 100)
        # Truncated over UDP, then whole over TCP.
        self.assertEqual([q[0] for q in self.dns.queries],
                         ["many.test", "many.test"])
        self.p.wait_log("resolver: A many.test: more than 100 records in "
                        "the answer, 50 dropped")

    def test_injected_ptr_refused(self):
        reply = self.ask("PTR 1.2.3.4")
        self.assertTrue(reply.startswith("+OK PERMFAIL ttl=0 "), reply)
        self.assertNotIn("Injected", reply)
        self.assertNotIn("\r\nInjected", self.p.log_text())

    def test_timeout_is_tempfail(self):
        start = time.monotonic()
        self.assertEqual(self.ask("A silent.test"),
                         "+OK TEMPFAIL ttl=0 secure=0 cached=0 "
                         "reason=timeout")
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(self.stats()["tempfails"], 1)

    def test_client_gone_cancels(self):
        self.client.send_line("A silent.test")
        time.sleep(0.1)
        self.client.close()
        self.p.wait_log("resolver_probe: lookup cancelled at close")
        # The query times out after the session is gone: nobody is
        # called (the probe would log it), the worker lives on.
        time.sleep(1.0)
        with harness.LineClient(self.port) as c:
            reply = c.cmd("STATS")
        self.assertIn("cancelled=1", reply)
        self.assertIn("tempfails=1", reply)
        self.assertNotIn("completion for a finished session",
                         self.p.log_text())


class ServerDown(ResolverCase):

    def test_unreachable_server_is_tempfail(self):
        # Nothing listens there: ICMP port unreachable or a timeout.
        self.start_petrel(["127.0.0.1:%d" % free_dns_port()],
                          timeout="300ms", tries=1)
        reply = self.ask("MX example.test")
        self.assertTrue(reply.startswith("+OK TEMPFAIL ttl=0 "), reply)


class Config(harness.PetrelTestCase):

    def check(self, section):
        p = self.petrel()
        return p.check(p.config(modules={"resolver": section}))

    def test_good_config(self):
        self.assertCheckOk(self.check({
            "servers": ["127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"],
            "timeout": "2s", "tries": 3, "cache_size": 0,
            "min_ttl": "10s", "max_ttl": "1h", "negative_ttl": "5m",
            "edns": False, "dnssec_ad": False}))
        self.assertCheckOk(self.check({}))

    def test_bad_server(self):
        result = self.check({"servers": ["127.0.0.1", "ns1.example.test"]})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("modules.resolver.servers", result.stderr)
        self.assertIn("servers[1]", result.stderr)
        self.assertIn("not an IP address", result.stderr)
        result = self.check({"servers": ["127.0.0.1:99999"]})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("bad port", result.stderr)

    def test_ttl_bounds(self):
        result = self.check({"min_ttl": "2h", "max_ttl": "1h"})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("modules.resolver.min_ttl", result.stderr)
        result = self.check({"tries": 0})
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("modules.resolver.tries", result.stderr)


if __name__ == "__main__":
    unittest.main()
