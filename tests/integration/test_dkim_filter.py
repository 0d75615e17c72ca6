# SPDX-License-Identifier: MIT
"""The dkim filter module in a real petrel: smtp + resolver + dkim.

Inbound (mx): messages signed by dkimpy for example.org, whose keys a
dnsmasq started here publishes, are stored with an
Authentication-Results: field saying what the signatures gave. Outbound
(submission, authenticated): messages From: example.test get one
DKIM-Signature per configured key (rsa-sha256 and ed25519-sha256), which
dkimpy verifies on the stored copy. Skipped without dkimpy or dnsmasq."""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness
import smtp_harness
from smtp_harness import SmtpServer

try:
    import dkim  # python3-dkim
    import nacl.signing  # noqa: F401
    HAVE_DKIMPY = True
except ImportError:
    HAVE_DKIMPY = False

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
OPENSSL = shutil.which("openssl")


def genkey(directory, kind):
    path = os.path.join(directory, kind + ".pem")
    if kind == "rsa":
        args = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    else:
        args = ["-algorithm", "ED25519"]
    subprocess.run([OPENSSL, "genpkey"] + args + ["-out", path],
                   check=True, stderr=subprocess.DEVNULL)
    os.chmod(path, 0o600)
    der = subprocess.run([OPENSSL, "pkey", "-in", path, "-pubout",
                          "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    priv = subprocess.run([OPENSSL, "pkey", "-in", path, "-outform", "DER"],
                          check=True, stdout=subprocess.PIPE).stdout
    if kind == "rsa":
        record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
        with open(path, "rb") as f:
            private = f.read()
    else:
        record = ("v=DKIM1; k=ed25519; p="
                  + base64.b64encode(der[-32:]).decode())
        private = base64.b64encode(priv[-32:])
    return path, record, private


class Dns:
    """dnsmasq answering TXT records from a dict, on 127.0.0.1."""

    def __init__(self, records):
        self.port = harness.free_port()
        self.dir = tempfile.mkdtemp(prefix="petrel-dkim-dns-")
        args = [DNSMASQ, "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=",
                "--port=%d" % self.port, "--listen-address=127.0.0.1",
                "--bind-interfaces", "--local=/example.org/",
                "--local=/example.test/"]
        for name, text in records.items():
            # One record of character-strings of at most 255 bytes.
            parts = [text[i:i + 250] for i in range(0, len(text), 250)]
            args.append("--txt-record=%s,%s" % (name, ",".join(parts)))
        if harness.IS_ROOT:
            args.append("--user=nobody")
        self.log = open(os.path.join(self.dir, "dnsmasq.log"), "wb")
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


def message(sender, subject, body=b"Hello.\r\n"):
    return ("From: Someone <%s>\r\n"
            "To: alice@example.test\r\n"
            "Subject: %s\r\n"
            "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
            "Message-ID: <%s@example.org>\r\n"
            "\r\n" % (sender, subject, re.sub(r"\W", ".", subject))
            ).encode() + body


def header_fields(stored, name):
    """Values of the fields called name in the header of stored."""
    head = stored.split(b"\r\n\r\n", 1)[0]
    out = []
    for field in re.split(rb"\r\n(?![ \t])", head):
        if field.lower().startswith(name.lower().encode() + b":"):
            out.append(field.split(b":", 1)[1].strip().decode())
    return out


@unittest.skipUnless(HAVE_DKIMPY, "python3-dkim (dkimpy) is not installed")
@unittest.skipUnless(os.path.exists(DNSMASQ), "dnsmasq is not installed")
@unittest.skipUnless(OPENSSL, "the openssl command is not installed")
class DkimFilter(harness.PetrelTestCase):

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="petrel-dkim-keys-")
        # example.org: the remote signer (dkimpy); example.test: us.
        cls.org_rsa = genkey(cls.keydir, "rsa")
        cls.org_ed = genkey(cls.keydir, "ed25519")
        os.rename(cls.org_rsa[0], os.path.join(cls.keydir, "org-rsa.pem"))
        os.rename(cls.org_ed[0], os.path.join(cls.keydir, "org-ed.pem"))
        cls.our_rsa = genkey(cls.keydir, "rsa")
        cls.our_ed = genkey(cls.keydir, "ed25519")
        cls.records = {
            "r1._domainkey.example.org": cls.org_rsa[1],
            "e1._domainkey.example.org": cls.org_ed[1],
            "revoked._domainkey.example.org": "v=DKIM1; p=",
            "petrel-r._domainkey.example.test": cls.our_rsa[1],
            "petrel-e._domainkey.example.test": cls.our_ed[1],
        }
        cls.dns = Dns(cls.records)

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def setUp(self):
        self.srv = SmtpServer(
            self, smtp={"filters": ["dkim"]},
            extra_modules={
                "resolver": {"servers": ["127.0.0.1:%d" % self.dns.port]},
                "dkim": {
                    "authserv_id": "mx.example.test",
                    # Local delivery here: sign every message, not only
                    # what leaves through the queue (the relay hook).
                    "sign_hook": "data",
                    "sign": [
                        {"domain": "example.test", "selector": "petrel-r",
                         "key": self.our_rsa[0]},
                        {"domain": "example.test", "selector": "petrel-e",
                         "key": self.our_ed[0]},
                    ],
                }})

    def dnsfunc(self, name, timeout=5):
        rec = self.records.get(name.decode().rstrip("."))
        return rec.encode() if rec else None

    def sign_org(self, msg, selector="r1", key=None, alg=b"rsa-sha256"):
        key = key if key is not None else self.org_rsa[2]
        return dkim.sign(msg, selector.encode(), b"example.org", key,
                         signature_algorithm=alg,
                         canonicalize=(b"relaxed", b"relaxed")) + msg

    def deliver_mx(self, msg, n):
        c = self.srv.ehlo_client("mx")
        r = c.send_mail("someone@example.org", ["alice@example.test"], msg)
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        return self.srv.wait_messages("alice@example.test", n)[-1]

    def test_inbound_results(self):
        msg = message("someone@example.org", "both keys")
        signed = self.sign_org(self.sign_org(msg), "e1", self.org_ed[2],
                               b"ed25519-sha256")
        stored = self.deliver_mx(signed, 1)
        ar = header_fields(stored, "Authentication-Results")
        self.assertEqual(len(ar), 1, ar)
        self.assertTrue(ar[0].startswith("mx.example.test; "), ar)
        self.assertRegex(ar[0], r"dkim=pass \(256-bit ed25519 key\) "
                                r"header\.d=example\.org header\.s=e1 ")
        self.assertRegex(ar[0], r"dkim=pass \(2048-bit rsa key\) "
                                r"header\.d=example\.org header\.s=r1 ")
        # The stored copy still verifies: nothing signed was changed.
        self.assertTrue(dkim.verify(stored, dnsfunc=self.dnsfunc))

        tampered = self.sign_org(msg).replace(b"Hello.", b"Hullo.")
        stored = self.deliver_mx(tampered, 2)
        ar = header_fields(stored, "Authentication-Results")
        # The body hash is checked first: no key lookup needed.
        self.assertIn("dkim=fail (body hash did not verify) "
                      "header.d=example.org header.s=r1", ar[0])

        stored = self.deliver_mx(message("x@example.org", "plain"), 3)
        self.assertEqual(header_fields(stored, "Authentication-Results"),
                         ["mx.example.test; dkim=none"])

        stored = self.deliver_mx(
            self.sign_org(msg, "revoked"), 4)
        self.assertIn("dkim=permerror (key revoked)",
                      header_fields(stored, "Authentication-Results")[0])
        stored = self.deliver_mx(self.sign_org(msg, "nokey"), 5)
        self.assertIn("dkim=permerror (no key for signature)",
                      header_fields(stored, "Authentication-Results")[0])
        self.srv.p.wait_log("dkim: message")

    def test_forged_results_removed(self):
        # RFC 8601 section 5: fields claiming our authserv-id that come
        # from outside are removed; other servers' fields stay.
        msg = message("someone@example.org", "forged")
        forged = (b"Authentication-Results: MX.example.test;\r\n"
                  b"  dkim=pass header.d=bank.example\r\n"
                  b"Authentication-Results: relay.example.net; spf=pass\r\n"
                  b"Authentication-Results: (comment) mx.example.test 1; "
                  b"dkim=pass\r\n")
        stored = self.deliver_mx(forged + self.sign_org(msg), 1)
        ar = header_fields(stored, "Authentication-Results")
        self.assertEqual(len(ar), 2, ar)
        self.assertIn("relay.example.net; spf=pass", ar)
        self.assertTrue(any(a.startswith("mx.example.test; dkim=pass "
                                         "(2048-bit rsa key)") for a in ar),
                        ar)
        self.assertNotIn(b"bank.example", stored)
        self.srv.p.wait_log("removing 2 Authentication-Results fields "
                            "claiming mx.example.test")

    def test_l_tag_reported(self):
        msg = message("someone@example.org", "with l=")
        signed = dkim.sign(msg, b"r1", b"example.org", self.org_rsa[2],
                           canonicalize=(b"relaxed", b"relaxed"),
                           length=True) + msg
        stored = self.deliver_mx(signed + b"Unsigned P.S.\r\n", 1)
        ar = header_fields(stored, "Authentication-Results")
        self.assertIn("dkim=pass (2048-bit rsa key; l= leaves 15 body "
                      "bytes unsigned)", ar[0])

    def test_outbound_signed(self):
        c = self.srv.auth_client("submission")
        msg = message("alice@example.test", "signed by petrel")
        msg = msg.replace(b"To: alice@example.test", b"To: bob@example.test")
        r = c.send_mail("alice@example.test", ["bob@example.test"], msg)
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        stored = self.srv.wait_messages("bob@example.test", 1)[0]
        sigs = header_fields(stored, "DKIM-Signature")
        self.assertEqual(len(sigs), 2, stored[:2000])
        self.assertTrue(any("a=rsa-sha256" in s and "s=petrel-r" in s
                            for s in sigs), sigs)
        self.assertTrue(any("a=ed25519-sha256" in s and "s=petrel-e" in s
                            for s in sigs), sigs)
        d = dkim.DKIM(stored)
        self.assertTrue(all(d.verify(idx=i, dnsfunc=self.dnsfunc)
                            for i in range(2)))
        # Authenticated mail is not verified (by default).
        self.assertEqual(header_fields(stored, "Authentication-Results"),
                         [])
        self.srv.p.wait_log("signed for example.test with 2 keys")

    def test_outbound_other_domain_unsigned(self):
        c = self.srv.auth_client("submission")
        msg = message("alice@elsewhere.example", "not our domain")
        r = c.send_mail("alice@example.test", ["bob@example.test"], msg)
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        stored = self.srv.wait_messages("bob@example.test", 1)[0]
        self.assertEqual(header_fields(stored, "DKIM-Signature"), [])


    def test_signed_at_relay(self):
        # The default hook: a message with remote recipients is signed
        # after the DATA filters, before it is handed to the queue.
        from queue_harness import SmtpSink
        sink = SmtpSink().start()
        self.addCleanup(sink.stop)
        srv = SmtpServer(
            self, smtp={"filters": ["dkim"]},
            extra_modules={
                "resolver": {"servers": ["127.0.0.1:%d" % self.dns.port]},
                "queue": {"routes": {"*": {"host": "127.0.0.1",
                                           "port": sink.port,
                                           "tls": "none"}},
                          "relay": {"tls": "none"}},
                "dkim": {"sign": [
                    {"domain": "example.test", "selector": "petrel-r",
                     "key": self.our_rsa[0]},
                    {"domain": "example.test", "selector": "petrel-e",
                     "key": self.our_ed[0]}]}})
        c = srv.auth_client("submission")
        msg = message("alice@example.test", "leaving")
        msg = msg.replace(b"To: alice@example.test",
                          b"To: someone@remote.example")
        r = c.send_mail("alice@example.test",
                        ["someone@remote.example", "bob@example.test"], msg)
        self.assertEqual(r.code, 250, str(r))
        c.quit()
        sink.wait_count(1, 30)
        sent = sink.snapshot()[0].data
        self.assertEqual(len(header_fields(sent, "DKIM-Signature")), 2,
                         sent[:1500])
        d = dkim.DKIM(sent)
        self.assertTrue(all(d.verify(idx=i, dnsfunc=self.dnsfunc)
                            for i in range(2)))
        srv.wait_messages("bob@example.test", 1)



class DkimConfig(harness.PetrelTestCase):
    """`petrel -t` refuses bad dkim sections with the key's path."""

    def check(self, section):
        p = self.petrel()
        return p.check(p.config(modules={"dkim": section}))

    def test_bad_values(self):
        cases = [
            ({"sign": [{"domain": "example.org", "selector": "s",
                        "key": "/k.pem", "canonicalization": "relaxed/"}]},
             "modules.dkim.sign[0].canonicalization"),
            ({"sign": [{"domain": "exa mple.org", "selector": "s",
                        "key": "/k.pem"}]},
             "modules.dkim.sign[0].domain"),
            ({"sign": [{"domain": "example.org", "selector": "s;x",
                        "key": "/k.pem"}]},
             "modules.dkim.sign[0].selector"),
            ({"verify_roles": ["mx", "smtp"]},
             "modules.dkim.verify_roles[1]"),
            ({"sign_headers": ["from", "bad name"]},
             "modules.dkim.sign_headers[1]"),
            ({"min_rsa_bits": 512}, "modules.dkim.min_rsa_bits"),
            ({"sign_hook": "queue"}, "modules.dkim.sign_hook"),
        ]
        for section, path in cases:
            with self.subTest(path=path):
                self.assertCheckFails(self.check(section), path)
        self.assertCheckOk(self.check({}))


if __name__ == "__main__":
    unittest.main()
