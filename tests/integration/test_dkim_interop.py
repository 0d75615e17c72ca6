# SPDX-License-Identifier: MIT
"""DKIM interoperability: Petrel's signer and verifier against dkimpy.

dkimpy is Debian's python3-dkim (with python3-nacl for Ed25519); the test
is skipped when it is missing. Petrel's side is tests/dkim/dkim_tool, the
module's DKIM files as a command, with the key records given on its
command line instead of DNS; dkimpy gets them through its dnsfunc hook.

Both directions, for rsa-sha256 (2048 bits) and ed25519-sha256, in every
canonicalization, on messages with folding, odd whitespace, trailing
empty lines, an empty body, 8-bit text and a 100 KB body; then l= and
tampering."""

import base64
import os
import re
import shutil
import subprocess
import tempfile
import unittest

try:
    import dkim  # python3-dkim
    import nacl.signing  # noqa: F401  (dkimpy needs it for Ed25519)
    HAVE_DKIMPY = True
except ImportError:
    HAVE_DKIMPY = False

TOOL = os.environ.get("DKIM_TOOL", "")
PETRELCTL = os.environ.get("PETRELCTL", "")
OPENSSL = shutil.which("openssl")
DOMAIN = "example.org"
CANONS = ["relaxed/relaxed", "simple/simple", "relaxed/simple",
          "simple/relaxed"]


def crlf(text):
    return text.replace("\n", "\r\n").encode()


MESSAGES = {
    "plain": crlf(
        "From: Alice <alice@example.org>\n"
        "To: Bob <bob@example.net>\n"
        "Subject: Lunch?\n"
        "Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
        "Message-ID: <lunch-1@example.org>\n"
        "\n"
        "Shall we have lunch at noon?\n"),
    "folded": crlf(
        "From: \"Alice Example\"\n\t<alice@example.org>\n"
        "To: bob@example.net,\n   carol@example.net  \n"
        "Subject:   lots   of\t space   \n"
        "Date: Mon, 01 Jan 2024 12:00:00 +0000\n"
        "\n"
        "   indented   text  \t\n"
        "\t\n"
        "end of text   \n"
        "\n"
        "\n"
        "\n"),
    "empty-body": crlf(
        "From: alice@example.org\n"
        "Subject: nothing\n"
        "\n"),
    "utf8": (
        "From: =?utf-8?q?Al=C3=AFce?= <alice@example.org>\r\n"
        "Subject: caf\u00e9\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "\u00c7a va tr\u00e8s bien, merci.\r\n").encode("utf-8"),
    "big": crlf(
        "From: alice@example.org\n"
        "To: bob@example.net\n"
        "Subject: a big one\n"
        "\n") + b"".join(b"line %05d of the body,  with  spaces \t\r\n"
                         % i for i in range(2500)),
}


def run(*args, input_bytes=None):
    return subprocess.run([TOOL] + list(args), input=input_bytes,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60, check=False)


@unittest.skipUnless(HAVE_DKIMPY, "python3-dkim (dkimpy) is not installed")
@unittest.skipUnless(OPENSSL, "the openssl command is not installed")
@unittest.skipUnless(TOOL and os.path.exists(TOOL), "DKIM_TOOL not built")
class DkimInterop(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="petrel-dkim-")
        cls.rsa_pem = os.path.join(cls.dir, "rsa.pem")
        cls.ed_pem = os.path.join(cls.dir, "ed.pem")
        subprocess.run([OPENSSL, "genpkey", "-algorithm", "RSA",
                        "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", cls.rsa_pem], check=True,
                       stderr=subprocess.DEVNULL)
        subprocess.run([OPENSSL, "genpkey", "-algorithm", "ED25519",
                        "-out", cls.ed_pem], check=True)
        rsa_pub = subprocess.run(
            [OPENSSL, "pkey", "-in", cls.rsa_pem, "-pubout", "-outform",
             "DER"], check=True, stdout=subprocess.PIPE).stdout
        ed_pub = subprocess.run(
            [OPENSSL, "pkey", "-in", cls.ed_pem, "-pubout", "-outform",
             "DER"], check=True, stdout=subprocess.PIPE).stdout[-32:]
        ed_priv = subprocess.run(
            [OPENSSL, "pkey", "-in", cls.ed_pem, "-outform", "DER"],
            check=True, stdout=subprocess.PIPE).stdout[-32:]
        with open(cls.rsa_pem, "rb") as f:
            cls.rsa_private = f.read()
        # dkimpy takes an Ed25519 key as its base64 32-byte seed.
        cls.ed_private = base64.b64encode(ed_priv)
        cls.records = {
            "rsa1": "v=DKIM1; k=rsa; p="
                    + base64.b64encode(rsa_pub).decode(),
            "ed1": "v=DKIM1; k=ed25519; p="
                   + base64.b64encode(ed_pub).decode(),
        }

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def dnsfunc(self, name, timeout=5):
        for sel, rec in self.records.items():
            if name == ("%s._domainkey.%s." % (sel, DOMAIN)).encode():
                return rec.encode()
        return None

    def dns_args(self):
        args = []
        for sel, rec in self.records.items():
            args += ["--dns", "%s._domainkey.%s=%s" % (sel, DOMAIN, rec)]
        return args

    def write(self, name, data):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def dkimpy_sign(self, msg, canon, length=False, headers=None):
        h, b = canon.encode().split(b"/")
        kw = {"canonicalize": (h, b), "length": length}
        if headers is not None:
            kw["include_headers"] = headers
        rsa = dkim.sign(msg, b"rsa1", DOMAIN.encode(), self.rsa_private,
                        **kw)
        ed = dkim.sign(msg, b"ed1", DOMAIN.encode(), self.ed_private,
                       signature_algorithm=b"ed25519-sha256", **kw)
        return rsa + ed + msg

    def petrel_verify(self, signed, *extra):
        path = self.write("verify.eml", signed)
        res = run("verify", path, "--chunk", "1000", *self.dns_args(),
                  *extra)
        lines = res.stdout.decode().splitlines()
        return res.returncode, lines

    def petrel_sign(self, msg, canon):
        path = self.write("sign.eml", msg)
        res = run("sign", path, "--domain", DOMAIN, "--canon", canon,
                  "--key", self.rsa_pem, "--selector", "rsa1",
                  "--key", self.ed_pem, "--selector", "ed1",
                  "--oversign", "from:to:subject:date")
        self.assertEqual(res.returncode, 0, res.stderr.decode())
        return res.stdout

    def dkimpy_verify_all(self, signed):
        d = dkim.DKIM(signed)
        count = sum(1 for line in signed.split(b"\r\n\r\n")[0]
                    .split(b"\r\n")
                    if line.lower().startswith(b"dkim-signature:"))
        return [d.verify(idx=i, dnsfunc=self.dnsfunc) for i in range(count)]

    def test_dkimpy_signs_petrel_verifies(self):
        for name, msg in MESSAGES.items():
            for canon in CANONS:
                with self.subTest(message=name, canon=canon):
                    signed = self.dkimpy_sign(msg, canon)
                    rc, lines = self.petrel_verify(signed)
                    self.assertEqual(len(lines), 2, lines)
                    for line in lines:
                        self.assertTrue(line.startswith("pass "), line)
                    self.assertEqual(rc, 0)

    def test_petrel_signs_dkimpy_verifies(self):
        for name, msg in MESSAGES.items():
            for canon in CANONS:
                with self.subTest(message=name, canon=canon):
                    signed = self.petrel_sign(msg, canon)
                    self.assertTrue(signed.endswith(msg))
                    self.assertEqual(self.dkimpy_verify_all(signed),
                                     [True, True])

    def test_petrel_signature_survives_relaxed_changes(self):
        signed = self.petrel_sign(MESSAGES["plain"], "relaxed/relaxed")
        changed = signed.replace(b"Subject: Lunch?",
                                 b"Subject:   Lunch? \r\n ")
        changed = changed.replace(b"at noon?\r\n", b"at  noon? \r\n\r\n")
        self.assertEqual(self.dkimpy_verify_all(changed), [True, True])
        rc, lines = self.petrel_verify(changed)
        self.assertEqual(rc, 0, lines)

    def test_oversigned_field_added(self):
        signed = self.petrel_sign(MESSAGES["plain"], "relaxed/relaxed")
        forged = signed.replace(b"From: Alice",
                                b"Subject: Urgent\r\nFrom: Alice")
        self.assertEqual(self.dkimpy_verify_all(forged), [False, False])
        rc, lines = self.petrel_verify(forged)
        self.assertEqual(rc, 1)
        self.assertTrue(all(line.startswith("fail ") for line in lines),
                        lines)

    def test_tampered_dkimpy_message(self):
        signed = self.dkimpy_sign(MESSAGES["plain"], "relaxed/relaxed")
        rc, lines = self.petrel_verify(signed.replace(b"noon", b"one"))
        self.assertEqual(rc, 1)
        for line in lines:
            self.assertIn("reason=body hash did not verify", line)
        rc, lines = self.petrel_verify(signed.replace(b"Lunch", b"Dinner"))
        self.assertEqual(rc, 1)
        for line in lines:
            self.assertIn("reason=signature did not verify", line)

    def test_l_tag_from_dkimpy(self):
        signed = self.dkimpy_sign(MESSAGES["plain"], "relaxed/relaxed",
                                  length=True)
        self.assertIn(b" l=", signed)
        rc, lines = self.petrel_verify(signed)
        self.assertEqual(rc, 0, lines)
        appended = signed + b"P.S. unsigned text\r\n"
        rc, lines = self.petrel_verify(appended)
        self.assertEqual(rc, 0, lines)
        for line in lines:
            self.assertTrue(line.startswith("pass "), line)
            self.assertIn("reason=l= leaves 20 body bytes unsigned", line)
        rc, lines = self.petrel_verify(appended, "--reject-l")
        self.assertEqual(rc, 1)
        for line in lines:
            self.assertTrue(line.startswith("policy "), line)

    @unittest.skipUnless(PETRELCTL, "petrelctl not built")
    def test_petrelctl_keygen(self):
        for kind in ("rsa", "ed25519"):
            with self.subTest(kind=kind):
                out = os.path.join(self.dir, "keygen-%s.pem" % kind)
                res = subprocess.run(
                    [PETRELCTL, "dkim", "keygen", "--type", kind,
                     "--selector", "k" + kind, "--domain", DOMAIN,
                     "--out", out], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, timeout=60, check=False)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertEqual(os.stat(out).st_mode & 0o777, 0o600)
                line = res.stdout.decode().strip()
                prefix = "k%s._domainkey.%s. IN TXT " % (kind, DOMAIN)
                self.assertTrue(line.startswith(prefix), line)
                strings = re.findall(r'"([^"]*)"', line[len(prefix):])
                self.assertTrue(all(len(s) <= 255 for s in strings))
                record = "".join(strings)
                self.assertTrue(record.startswith(
                    "v=DKIM1; k=%s; p=" % kind), record)
                # The key signs, and the printed record verifies it.
                path = self.write("kg.eml", MESSAGES["plain"])
                res = run("sign", path, "--domain", DOMAIN, "--key", out,
                          "--selector", "k" + kind)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertTrue(dkim.verify(
                    res.stdout,
                    dnsfunc=lambda name, timeout=5: record.encode()))
                # Never over an existing key.
                res = subprocess.run(
                    [PETRELCTL, "dkim", "keygen", "--type", kind,
                     "--selector", "x", "--domain", DOMAIN, "--out", out],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    timeout=60, check=False)
                self.assertEqual(res.returncode, 1)
                self.assertIn(b"File exists", res.stderr)

    def test_dkimpy_default_headers(self):
        # dkimpy's own choice of fields (it over-signs some of them).
        msg = MESSAGES["folded"]
        signed = self.dkimpy_sign(msg, "relaxed/relaxed", headers=None)
        rc, lines = self.petrel_verify(signed)
        self.assertEqual(rc, 0, lines)


if __name__ == "__main__":
    unittest.main()
