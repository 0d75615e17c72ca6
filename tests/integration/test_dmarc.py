# SPDX-License-Identifier: MIT
"""The dmarc filter module in a real petrel: smtp + resolver + spf (+ dkim)
+ dmarc, with SPF and DMARC records (and a DKIM key) served by dnsmasq,
and the smtp module's Authentication-Results field (trace_header).

The domains are under .test, which the Public Suffix List does not
know: the Organizational Domain of a.b.name.test is name.test. The
client connects from 127.0.0.1.

  aligned SPF (relaxed)         pass, delivered, report line written
  aspf=s, subdomain MAIL FROM   fail, 550 5.7.1 at end of data
  unaligned SPF                 fail, 550 5.7.1
  p=quarantine                  delivered to Quarantine
  sp=reject from the org domain subdomain refused; the org domain itself
                                (p=none) delivered with dmarc=fail
  pct=0                         reject becomes quarantine
  no record / two records       dmarc=none
  DNS failure                   dmarc=temperror, delivered
  two From fields               dmarc=permerror (refused when configured)
  DKIM aligned (dkimpy signs)   pass although SPF is not aligned
  forged Authentication-Results claiming our name: removed
Skipped without dnsmasq; the DKIM case without dkimpy."""

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness
import mailauth_harness
from mailauth_harness import Dns, header_fields
from smtp_harness import SmtpServer

SPF_OK = "v=spf1 ip4:127.0.0.1 -all"
RECORDS = {
    "aligned.test": SPF_OK,
    "mail.aligned.test": SPF_OK,
    "_dmarc.aligned.test": "v=DMARC1; p=reject; "
                           "rua=mailto:agg@aligned.test",
    "mail.strict.test": SPF_OK,
    "_dmarc.strict.test": "v=DMARC1; p=reject; aspf=s",
    "other.test": SPF_OK,
    "_dmarc.quar.test": "v=DMARC1; p=quarantine",
    "_dmarc.parent.test": "v=DMARC1; p=none; sp=reject",
    "_dmarc.pct.test": "v=DMARC1; p=reject; pct=0",
    "_dmarc.two.test": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "_dmarc.signed.test": "v=DMARC1; p=reject; adkim=s",
    "nodmarc.test": SPF_OK,
}

OPENSSL = shutil.which("openssl")
SYSTEM_PYTHON = "/usr/bin/python3"


def have_dkimpy():
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import dkim"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def rsa_key(directory):
    """A 2048-bit RSA key: (PEM path, DKIM TXT record)."""
    path = os.path.join(directory, "dkim.pem")
    subprocess.run([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                    "rsa_keygen_bits:2048", "-out", path], check=True,
                   stderr=subprocess.DEVNULL)
    der = subprocess.run([OPENSSL, "pkey", "-in", path, "-pubout",
                          "-outform", "DER"], check=True,
                         stdout=subprocess.PIPE).stdout
    return path, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def dkimpy_sign(msg, domain, selector, key_path):
    """msg signed by dkimpy (Debian's python3-dkim, run with the system
    python: the tests may run under another one)."""
    script = ("import dkim, sys\n"
              "key = open(sys.argv[3], 'rb').read()\n"
              "msg = sys.stdin.buffer.read()\n"
              "sig = dkim.sign(msg, sys.argv[2].encode(), "
              "sys.argv[1].encode(), key, "
              "canonicalize=(b'relaxed', b'relaxed'))\n"
              "sys.stdout.buffer.write(sig + msg)\n")
    r = subprocess.run([SYSTEM_PYTHON, "-c", script, domain, selector,
                        key_path], input=msg, stdout=subprocess.PIPE,
                       check=True, timeout=60)
    return r.stdout


def message(from_field, subject, extra=b""):
    return ("From: %s\r\nTo: alice@example.test\r\nSubject: %s\r\n"
            "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
            "Message-ID: <%s@example.test>\r\n"
            % (from_field, subject, re.sub(r"\W", ".", subject))).encode() \
        + extra + b"\r\nHello.\r\n"


@unittest.skipUnless(mailauth_harness.have_dnsmasq(),
                     "dnsmasq is not installed")
class Dmarc(harness.PetrelTestCase):

    @classmethod
    def setUpClass(cls):
        cls.keydir = tempfile.mkdtemp(prefix="petrel-dmarc-keys-")
        cls.dkim_ok = have_dkimpy() and OPENSSL is not None
        records = dict(RECORDS)
        if cls.dkim_ok:
            cls.key_path, record = rsa_key(cls.keydir)
            records["s1._domainkey.signed.test"] = record
        cls.dns = Dns(txt=records, local=("test",))

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        shutil.rmtree(cls.keydir, ignore_errors=True)

    def server(self, dmarc=None, filters=("spf", "dmarc"), extra=None):
        modules = {
            "resolver": {"servers": [self.dns.server], "timeout": "1s",
                         "tries": 1},
            "spf": {"actions": {"fail": "continue"}},
            "dmarc": dmarc or {},
        }
        modules.update(extra or {})
        return SmtpServer(self, smtp={"filters": list(filters),
                                      "trace_header": True},
                          extra_modules=modules)

    def setUp(self):
        self.srv = self.server()

    def send(self, mail_from, msg):
        c = self.srv.ehlo_client("mx")
        r = c.send_mail(mail_from, ["alice@example.test"], msg)
        c.quit()
        return r

    def deliver(self, mail_from, from_field, n, extra=b""):
        r = self.send(mail_from, message(from_field, "dmarc %d" % n, extra))
        self.assertEqual(r.code, 250, str(r))
        return self.srv.wait_messages("alice@example.test", n)[-1]

    def results(self, stored):
        ar = header_fields(stored, "Authentication-Results")
        self.assertEqual(len(ar), 1, ar)
        self.assertTrue(ar[0].startswith("mail.example.test;"), ar)
        return ar[0]

    def quarantined(self, n):
        qdir = os.path.join(self.srv.maildir("alice@example.test"),
                            ".Quarantine", "new")
        names = harness.wait_until(
            lambda: os.path.isdir(qdir) and len(os.listdir(qdir)) >= n
            and sorted(os.listdir(qdir)), 10, "quarantined messages")
        paths = sorted((os.path.join(qdir, x) for x in names),
                       key=os.path.getmtime)
        with open(paths[-1], "rb") as f:
            return f.read()

    def report_lines(self, n):
        rdir = os.path.join(self.srv.p.state_dir, "dmarc")

        def lines():
            out = []
            if os.path.isdir(rdir):
                for name in sorted(os.listdir(rdir)):
                    with open(os.path.join(rdir, name)) as f:
                        out += [json.loads(x) for x in f]
            return len(out) >= n and out
        return harness.wait_until(lines, 10, "%d report lines" % n)

    def test_aligned_spf_pass_and_report(self):
        stored = self.deliver("bounce@mail.aligned.test",
                              "A <a@aligned.test>", 1)
        ar = self.results(stored)
        self.assertIn("spf=pass smtp.mailfrom=bounce@mail.aligned.test", ar)
        self.assertIn("dmarc=pass (p=reject dis=none) "
                      "header.from=aligned.test", ar)
        line = self.report_lines(1)[0]
        self.assertEqual(line["header_from"], "aligned.test")
        self.assertEqual(line["policy_domain"], "aligned.test")
        self.assertEqual(line["source_ip"], "127.0.0.1")
        self.assertEqual(line["envelope_from"], "bounce@mail.aligned.test")
        self.assertEqual(line["dmarc"], "pass")
        self.assertEqual(line["disposition"], "none")
        self.assertEqual(line["policy"]["p"], "reject")
        self.assertEqual(line["policy"]["rua"], "mailto:agg@aligned.test")
        self.assertEqual(line["spf"], {"result": "pass",
                                       "domain": "mail.aligned.test",
                                       "scope": "mfrom", "aligned": True})
        self.assertEqual(line["dkim"], [])
        self.assertEqual(os.listdir(os.path.join(self.srv.p.state_dir,
                                                 "dmarc")),
                         [time.strftime("%Y-%m-%d.jsonl", time.gmtime())])

    def test_strict_and_unaligned_rejected(self):
        r = self.send("bounce@mail.strict.test",
                      message("a@strict.test", "strict"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), str(r))
        self.assertIn("strict.test", r.text)
        r = self.send("x@other.test", message("a@aligned.test", "unaligned"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), str(r))
        self.srv.p.wait_log("dmarc: message")
        self.srv.p.wait_log("fail header.from=aligned.test policy=reject "
                            "(aligned.test) dis=reject spf=pass dkim=none "
                            "-> reject")
        lines = self.report_lines(2)
        self.assertEqual([x["disposition"] for x in lines],
                         ["reject", "reject"])
        self.assertEqual(lines[1]["spf"]["aligned"], False)

    def test_quarantine_and_pct(self):
        self.assertEqual(self.send("x@other.test",
                                   message("a@quar.test", "q")).code, 250)
        stored = self.quarantined(1)
        self.assertIn("dmarc=fail (p=quarantine dis=quarantine) "
                      "header.from=quar.test", self.results(stored))
        # pct=0: never sampled, reject becomes quarantine.
        self.assertEqual(self.send("x@other.test",
                                   message("a@pct.test", "pct")).code, 250)
        stored = self.quarantined(2)
        self.assertIn("dmarc=fail (p=reject dis=quarantine) "
                      "header.from=pct.test", self.results(stored))
        self.assertEqual(self.srv.messages("alice@example.test"), [])

    def test_subdomain_policy(self):
        r = self.send("x@other.test", message("a@news.parent.test", "sp"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), str(r))
        # The record was found at the Organizational Domain.
        names = [n for t, n in self.dns.queries() if t == "TXT"]
        self.assertIn("_dmarc.news.parent.test", names)
        self.assertIn("_dmarc.parent.test", names)
        stored = self.deliver("x@other.test", "a@parent.test", 1)
        self.assertIn("dmarc=fail (p=none dis=none) header.from=parent.test",
                      self.results(stored))
        lines = self.report_lines(2)
        self.assertEqual(lines[0]["policy_domain"], "parent.test")
        self.assertEqual(lines[0]["header_from"], "news.parent.test")

    def test_none_temperror_permerror(self):
        stored = self.deliver("x@nodmarc.test", "a@nodmarc.test", 1)
        self.assertIn("dmarc=none header.from=nodmarc.test",
                      self.results(stored))
        stored = self.deliver("x@other.test", "a@two.test", 2)
        self.assertIn("dmarc=none header.from=two.test",
                      self.results(stored))
        # A domain dnsmasq does not serve: REFUSED, a temporary error.
        stored = self.deliver("x@other.test", "a@unanswered.example.net", 3)
        self.assertIn("dmarc=temperror header.from=unanswered.example.net",
                      self.results(stored))
        stored = self.deliver("x@other.test", "a@aligned.test", 4,
                              extra=b"From: b@other.test\r\n")
        self.assertIn("dmarc=permerror", self.results(stored))
        self.srv.p.wait_log("dmarc: message")
        self.srv.p.wait_log(": permerror: several From fields")
        # No report line for messages without a policy.
        rdir = os.path.join(self.srv.p.state_dir, "dmarc")
        self.assertFalse(os.path.isdir(rdir) and os.listdir(rdir))

    def test_configured_actions(self):
        self.srv.p.stop()
        self.srv = self.server(dmarc={
            "actions": {"permerror": "reject", "reject": "quarantine",
                        "temperror": "tempfail"},
            "report": False})
        r = self.send("x@other.test",
                      message("a@aligned.test", "two from",
                              b"From: b@other.test\r\n"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), str(r))
        self.assertIn("several From fields", r.text)
        r = self.send("x@other.test", message("a@aligned.test", "q"))
        self.assertEqual(r.code, 250)
        self.quarantined(1)
        r = self.send("x@other.test",
                      message("a@unanswered.example.net", "t"))
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), str(r))
        self.assertFalse(os.path.exists(
            os.path.join(self.srv.p.state_dir, "dmarc")))

    def test_forged_results_removed(self):
        forged = (b"Authentication-Results: mail.example.test; "
                  b"dmarc=pass header.from=aligned.test\r\n"
                  b"Authentication-Results: other.example; spf=pass\r\n")
        stored = self.deliver("x@other.test", "a@nodmarc.test", 1,
                              extra=forged)
        ar = header_fields(stored, "Authentication-Results")
        self.assertEqual(len(ar), 2, ar)
        self.assertTrue(ar[0].startswith("mail.example.test; "), ar)
        self.assertIn("dmarc=none", ar[0])
        self.assertEqual(ar[1], "other.example; spf=pass")

    @unittest.skipUnless(have_dkimpy() and OPENSSL,
                         "dkimpy (python3-dkim) or openssl is missing")
    def test_dkim_alignment(self):
        self.srv.p.stop()
        self.srv = self.server(
            filters=("spf", "dkim", "dmarc"),
            extra={"dkim": {"add_header": False}})
        msg = message("a@signed.test", "signed")
        signed = dkimpy_sign(msg, "signed.test", "s1", self.key_path)
        r = self.send("x@other.test", signed)
        self.assertEqual(r.code, 250, str(r))
        stored = self.srv.wait_messages("alice@example.test", 1)[-1]
        ar = self.results(stored)
        self.assertIn("dkim=pass header.d=signed.test header.s=s1", ar)
        self.assertIn("dmarc=pass (p=reject dis=none) "
                      "header.from=signed.test", ar)
        line = self.report_lines(1)[0]
        self.assertEqual(line["dkim"], [{"result": "pass",
                                         "domain": "signed.test",
                                         "selector": "s1",
                                         "aligned": True}])
        # The body changed in transit: no pass, p=reject applies.
        tampered = signed.replace(b"Hello.", b"Hullo.")
        r = self.send("x@other.test", tampered)
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), str(r))


if __name__ == "__main__":
    unittest.main()
