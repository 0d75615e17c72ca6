# SPDX-License-Identifier: MIT
"""ESMTP extensions: the EHLO list, PIPELINING (RFC 2920), SIZE (RFC 1870),
8BITMIME, ENHANCEDSTATUSCODES on every reply (RFC 2034), SMTPUTF8 (RFC
6531), CHUNKING/BDAT and BINARYMIME (RFC 3030) and the DSN parameters
(RFC 3461)."""

import smtplib
import unittest

import harness
from smtp_harness import (HOSTNAME, SmtpServer, make_message, split_stored,
                          dot_stuff)

MAX_SIZE = 200 * 1024


class Esmtp(harness.PetrelTestCase):

    def setUp(self):
        # Longer command lines than the default 512, so that the limits
        # of the parameters themselves are what is tested.
        self.s = SmtpServer(self, smtp={"max_message_size": MAX_SIZE,
                                        "max_errors": 100,
                                        "max_command_line": 4096})

    def stored(self, user="alice@example.test", count=1):
        msgs = self.s.messages(user)
        self.assertEqual(len(msgs), count, msgs)
        return [split_stored(m) for m in msgs]

    # -- the EHLO reply

    def test_ehlo_keywords_in_order(self):
        with self.s.connect() as c:
            r = c.expect("EHLO client.example.org", 250)
            self.assertTrue(r.lines[0].startswith(HOSTNAME))
            self.assertEqual(r.lines[1:], [
                "PIPELINING", "SIZE %d" % MAX_SIZE, "8BITMIME", "BINARYMIME",
                "CHUNKING", "SMTPUTF8", "DSN", "STARTTLS",
                "ENHANCEDSTATUSCODES"])

    def test_ehlo_after_tls_and_on_submission(self):
        c = self.s.tls_client("mx")
        r = c.expect("EHLO client.example.org", 250)
        self.assertNotIn("STARTTLS", r.lines)
        self.assertNotIn("AUTH PLAIN LOGIN", r.lines)
        c.close()
        c = self.s.tls_client("submission")
        r = c.expect("EHLO client.example.org", 250)
        self.assertEqual(r.lines[1:], [
            "PIPELINING", "SIZE %d" % MAX_SIZE, "8BITMIME", "BINARYMIME",
            "CHUNKING", "SMTPUTF8", "DSN", "AUTH PLAIN LOGIN",
            "ENHANCEDSTATUSCODES"])
        c.close()

    # -- PIPELINING

    def test_pipelined_transaction(self):
        msg = make_message("pipelined")
        with self.s.ehlo_client() as c:
            replies = c.pipeline([
                "MAIL FROM:<sender@example.org>",
                "RCPT TO:<alice@example.test>",
                "RCPT TO:<nobody@example.test>",
                "RCPT TO:<bob@example.test>",
                "DATA"])
            self.assertEqual([(r.code, r.enhanced) for r in replies], [
                (250, "2.1.0"), (250, "2.1.5"), (550, "5.1.1"),
                (250, "2.1.5"), (354, None)])
            # Body, end and the next transaction in one write too.
            c.send(dot_stuff(msg) + b".\r\nRSET\r\nNOOP\r\n")
            c.expect_reply(250, "2.0.0", kind="DATA-END")
            c.expect_reply(250, "2.0.0", kind="RSET")
            c.expect_reply(250, "2.0.0", kind="NOOP")
        self.assertEqual(self.stored()[0][3], msg)
        self.assertEqual(self.stored("bob@example.test")[0][3], msg)

    def test_pipelined_failure_then_data(self):
        """RCPT all refused and DATA pipelined: DATA gets 554 and the
        lines after it are commands, never message text."""
        with self.s.ehlo_client() as c:
            replies = c.pipeline([
                "MAIL FROM:<sender@example.org>",
                "RCPT TO:<nobody@example.test>",
                "DATA",
                "NOOP"])
            self.assertEqual([r.code for r in replies],
                             [250, 550, 554, 250])
        self.assertEqual(self.s.count_all(), 0)

    def test_many_pipelined_commands(self):
        with self.s.ehlo_client() as c:
            c.send(b"NOOP\r\n" * 2000)
            for _ in range(2000):
                c.expect_reply(250, "2.0.0", kind="NOOP")
            c.quit()

    def test_several_messages_in_one_write(self):
        msgs = [make_message("batch %d" % i) for i in range(10)]
        with self.s.ehlo_client() as c:
            # A client may not send the text before 354 arrives, but
            # everything after it: one write per message.
            for m in msgs:
                c.send(b"MAIL FROM:<sender@example.org>\r\n"
                       b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
                c.expect_reply(250, "2.1.0", kind="MAIL")
                c.expect_reply(250, "2.1.5", kind="RCPT")
                c.expect_reply(354, kind="DATA")
                c.send(dot_stuff(m) + b".\r\n")
                c.expect_reply(250, "2.0.0", kind="DATA-END")
        got = sorted(s[3] for s in self.stored("bob@example.test", 10))
        self.assertEqual(got, sorted(msgs))

    # -- SIZE

    def test_size(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org> SIZE=%d" % MAX_SIZE, 250,
                     "2.1.0")
            c.expect("RSET", 250, "2.0.0")
            c.expect("MAIL FROM:<a@example.org> SIZE=%d" % (MAX_SIZE + 1),
                     552, "5.3.4")
            c.expect("MAIL FROM:<a@example.org> SIZE=12k", 501, "5.5.4")
            c.expect("MAIL FROM:<a@example.org> SIZE=-1", 501, "5.5.4")
            c.expect("MAIL FROM:<a@example.org> SIZE=", 501, "5.5.4")
            c.expect("MAIL FROM:<a@example.org> SIZE=1 SIZE=2", 501,
                     "5.5.4")
            c.expect("MAIL FROM:<a@example.org> size=100", 250, "2.1.0")

    def test_size_twenty_digits(self):
        """RFC 1870: size-value is 1*20DIGIT, so 20 nines is valid
        syntax (and too big)."""
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org> SIZE=99999999999999999999",
                     552, "5.3.4")
            c.expect("MAIL FROM:<a@example.org> SIZE=999999999999999999999",
                     501, "5.5.4")

    def test_size_declared_small_body_large(self):
        """SIZE is advisory: a body above the limit is refused at its
        end (552 5.3.4), nothing stored, the session goes on."""
        msg = make_message("big", size=MAX_SIZE + 5000)
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org> SIZE=100", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            r = c.data(msg)
            self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
            c.expect("NOOP", 250, "2.0.0")
            # The transaction is over.
            c.expect("RCPT TO:<alice@example.test>", 503, "5.5.1")
        self.assertEqual(self.s.count_all(), 0)

    def test_exactly_max_size(self):
        msg = make_message("exact", size=MAX_SIZE - 200)
        msg += b"z" * (MAX_SIZE - len(msg) - 2) + b"\r\n"
        self.assertEqual(len(msg), MAX_SIZE)
        msg = msg.replace(b"z" * 1000, b"z" * 900 + b"\r\n" + b"z" * 98)
        self.assertEqual(len(msg), MAX_SIZE)
        with self.s.ehlo_client() as c:
            r = c.send_mail("a@example.org", ["alice@example.test"], msg,
                            mail_params=" SIZE=%d" % MAX_SIZE)
            self.assertEqual(r.code, 250, r)
            r = c.send_mail("a@example.org", ["alice@example.test"],
                            msg + b"x\r\n")
            self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertEqual(self.stored()[0][3], msg)

    # -- 8BITMIME and BODY

    def test_body_parameter(self):
        msg = make_message("8bit", body="Grüße, ½ €\r\n".encode("utf-8")
                           + bytes(range(0x80, 0x100)) + b"\r\n")
        with self.s.ehlo_client() as c:
            for value in ("7BIT", "8bitmime", "BINARYMIME"):
                c.expect("MAIL FROM:<a@example.org> BODY=" + value, 250,
                         "2.1.0")
                c.expect("RSET", 250, "2.0.0")
            c.expect("MAIL FROM:<a@example.org> BODY=9BIT", 501, "5.5.4")
            c.expect("MAIL FROM:<a@example.org> BODY=", 501, "5.5.4")
            c.expect("MAIL FROM:<a@example.org> BODY=7BIT BODY=7BIT", 501,
                     "5.5.4")
            r = c.send_mail("a@example.org", ["alice@example.test"], msg,
                            " BODY=8BITMIME")
            self.assertEqual(r.code, 250, r)
            # BINARYMIME needs BDAT.
            c.expect("MAIL FROM:<a@example.org> BODY=BINARYMIME", 250,
                     "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            c.expect("DATA", 503, "5.5.1")
        self.assertEqual(self.stored()[0][3], msg)

    def test_smtplib_8bitmime(self):
        msg = make_message("smtplib 8bit", body="naïve café\r\n".encode())
        with smtplib.SMTP("127.0.0.1", self.s.mx, timeout=30) as c:
            c.ehlo("client.example.org")
            self.assertTrue(c.has_extn("8bitmime"))
            c.sendmail("a@example.org", ["alice@example.test"], msg,
                       mail_options=["BODY=8BITMIME"])
        self.assertEqual(self.stored()[0][3], msg)

    # -- ENHANCEDSTATUSCODES

    def test_enhanced_codes_everywhere(self):
        """The client checks every reply; this walks through most of
        them in one session, including the error replies."""
        with self.s.connect() as c:
            for line in ("NOOP", "HELP", "VRFY x", "EXPN x", "FROB",
                         "MAIL FROM:<a@example.org>", "RCPT TO:<a@b.c>",
                         "DATA", "RSET", "BDAT 0 LAST", "AUTH PLAIN",
                         "STARTTLS now", "HELO", "EHLO"):
                r = c.cmd(line)
                self.assertIsNotNone(r.enhanced, r)
            c.ehlo()
            for line in ("MAIL FROM:<a@localhost>",
                         "MAIL FROM:<a@example.org> SIZE=x",
                         "MAIL FROM:<a@example.org> X=1",
                         "MAIL FROM:<a@example.org>",
                         "RCPT TO:<x@example.org>",
                         "RCPT TO:<nobody@example.test>",
                         "RCPT TO:<alice@example.test>"):
                self.assertIsNotNone(c.cmd(line).enhanced)
            r = c.data(make_message("enh"))
            self.assertEqual(r.enhanced, "2.0.0")
            self.assertEqual(len(c.replies), 25)
            c.expect("QUIT", 221, "2.0.0")

    # -- SMTPUTF8

    def test_smtputf8(self):
        msg = ("From: Jöran <jöran@exämple.org>\r\nTo: alice@example.test\r\n"
               "Subject: ünïcödé\r\n\r\nΚαλημέρα\r\n").encode()
        sender = "jöran@exämple.org"
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<%s>" % sender, 553, "5.6.7")
            c.expect("MAIL FROM:<a@example.org> SMTPUTF8=yes", 501,
                     "5.5.4")
            c.expect("MAIL FROM:<%s> SMTPUTF8" % sender, 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            r = c.data(msg)
            self.assertEqual(r.code, 250, r)
            # Without SMTPUTF8 on MAIL a non-ASCII recipient is refused.
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<ålice@example.test>", 553, "5.6.7")
        ret, _, received, rest = self.stored()[0]
        self.assertEqual(ret.decode(), sender)
        self.assertEqual(rest, msg)
        self.assertIn(b" with UTF8SMTP id ", received)

    def test_smtplib_smtputf8(self):
        msg = "Subject: ü\r\n\r\nbody ü\r\n".encode()
        with smtplib.SMTP("127.0.0.1", self.s.mx, timeout=30) as c:
            c.ehlo("client.example.org")
            self.assertTrue(c.has_extn("smtputf8"))
            c.sendmail("ü@example.org", ["alice@example.test"], msg,
                       mail_options=["SMTPUTF8", "BODY=8BITMIME"])
        ret, _, _, rest = self.stored()[0]
        self.assertEqual(ret.decode(), "ü@example.org")
        self.assertEqual(rest, msg)

    # -- CHUNKING / BDAT

    def bdat(self, c, chunk, last=False, code=250, enhanced="2.0.0"):
        c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"")
               + chunk)
        return c.expect_reply(code, enhanced, kind="BDAT")

    def test_bdat_chunks(self):
        parts = [b"Subject: bdat\r\n\r\n", b"line 1\r\n.dot not stuffed\r\n",
                 b"", b".\r\nlast\r\n"]
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            total = 0
            for p in parts[:-1]:
                r = self.bdat(c, p)
                total += len(p)
                # The chunk's size or the total so far (RFC 3030's
                # examples count the total).
                self.assertIn(r.text, ("2.0.0 %d octets received" % len(p),
                                       "2.0.0 %d octets received" % total))
            r = self.bdat(c, parts[-1], last=True)
            self.assertRegex(r.text, r"^2\.0\.0 Ok: queued as [0-9A-F]+$")
        self.assertEqual(self.stored()[0][3], b"".join(parts))

    def test_bdat_pipelined(self):
        msg = b"Subject: p\r\n\r\n" + (b"x" * 998 + b"\r\n") * 70
        with self.s.ehlo_client() as c:
            c.send(b"MAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<alice@example.test>\r\n"
                   b"BDAT 10\r\n" + msg[:10] +
                   b"BDAT %d LAST\r\n" % (len(msg) - 10) + msg[10:] +
                   b"NOOP\r\n")
            c.expect_reply(250, "2.1.0", kind="MAIL")
            c.expect_reply(250, "2.1.5", kind="RCPT")
            c.expect_reply(250, "2.0.0", kind="BDAT")
            c.expect_reply(250, "2.0.0", kind="BDAT")
            c.expect_reply(250, "2.0.0", kind="NOOP")
        self.assertEqual(self.stored()[0][3], msg)

    def test_bdat_zero_last(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.bdat(c, b"Subject: z\r\n\r\nbody\r\n")
            self.bdat(c, b"", last=True)
        self.assertEqual(self.stored()[0][3], b"Subject: z\r\n\r\nbody\r\n")

    def test_bdat_sequence_errors(self):
        with self.s.ehlo_client() as c:
            # Without MAIL: the chunk is read, then 503.
            self.bdat(c, b"MAIL FROM:<evil@example.org>\r\n", True, 503,
                      "5.5.1")
            c.expect("NOOP", 250, "2.0.0")
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            # Without recipients: 554.
            self.bdat(c, b"RCPT TO:<alice@example.test>\r\n", True, 554,
                      "5.5.1")
            c.expect("NOOP", 250, "2.0.0")
            c.expect("RSET", 250, "2.0.0")
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.bdat(c, b"Subject: x\r\n")
            # DATA after BDAT.
            c.expect("DATA", 503, "5.5.1")
            c.expect("BDAT x", 501, "5.5.4")
            c.expect("BDAT 1 FIRST", 501, "5.5.4")
        self.assertEqual(self.s.count_all(), 0)
        with self.s.connect() as c:
            c.expect("HELO client.example.org", 250)
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            # BDAT after HELO is not allowed (CHUNKING needs EHLO).
            self.bdat(c, b"Subject: y\r\n\r\n", True, 503, "5.5.1")
            c.expect("NOOP", 250, "2.0.0")
        self.assertEqual(self.s.count_all(), 0)

    def test_bdat_bare_lf_and_binarymime(self):
        bare = b"Subject: bare\r\n\r\nline\nwith bare LF\r\n"
        binary = b"Subject: bin\r\n\r\n\0\x01\n\r\xff\r\n.\r\n"
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.bdat(c, bare, True, 550, "5.6.11")
            c.expect("MAIL FROM:<a@example.org> BODY=BINARYMIME", 250,
                     "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            self.bdat(c, binary, True)
        self.assertEqual(self.stored()[0][3], binary)

    def test_bdat_too_large(self):
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            # Above the limit but under twice it: read, then refused.
            self.bdat(c, b"x" * (MAX_SIZE + 10), True, 552, "5.3.4")
            c.expect("NOOP", 250, "2.0.0")
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test>", 250, "2.1.5")
            # Twice the limit announced: refused and closed at once.
            c.send(b"BDAT %d LAST\r\n" % (3 * MAX_SIZE))
            c.expect_reply(552, "5.3.4", kind="BDAT")
            self.assertTrue(c.closed())
        self.assertEqual(self.s.count_all(), 0)

    # -- DSN

    def test_dsn_parameters(self):
        msg = make_message("dsn")
        with self.s.ehlo_client() as c:
            c.expect("MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2Bz1",
                     250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test> NOTIFY=SUCCESS,FAILURE"
                     " ORCPT=rfc822;alice+40example.test", 250, "2.1.5")
            c.expect("RCPT TO:<bob@example.test> NOTIFY=NEVER", 250, "2.1.5")
            c.expect("RCPT TO:<carol@example.test> notify=delay", 250,
                     "2.1.5")
            self.assertEqual(c.data(msg).code, 250)
            for bad in ("RET=ALL", "RET=FULL RET=HDRS", "ENVID=",
                        "ENVID=" + "e" * 101, "ENVID=a+0D+0Ab",
                        "ENVID=a+zz", "AUTH=" + "x" * 501):
                c.expect("MAIL FROM:<a@example.org> " + bad, 501, "5.5.4")
            c.expect("MAIL FROM:<a@example.org> RET=FULL ENVID=x "
                     "AUTH=<>", 250, "2.1.0")
            for bad in ("NOTIFY=NEVER,SUCCESS", "NOTIFY=SUCCESS,SUCCESS",
                        "NOTIFY=SOMETIMES", "NOTIFY=", "ORCPT=rfc822",
                        "ORCPT=rfc822;" + "o" * 501,
                        "NOTIFY=DELAY NOTIFY=DELAY"):
                c.expect("RCPT TO:<alice@example.test> " + bad, 501,
                         "5.5.4")
            c.expect("RCPT TO:<alice@example.test> NOTIFY=FAILURE X-Y=z",
                     555, "5.5.4")
            c.expect("RCPT TO:<alice@example.test> ORCPT=rfc822;a+40b.c",
                     250, "2.1.5")
        for user in ("alice@example.test", "bob@example.test",
                     "carol@example.test"):
            self.assertEqual(self.stored(user)[0][3], msg)

    def test_parameters_need_ehlo(self):
        with self.s.connect() as c:
            c.expect("HELO client.example.org", 250)
            c.expect("MAIL FROM:<a@example.org> BODY=8BITMIME", 555,
                     "5.5.4")
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
            c.expect("RCPT TO:<alice@example.test> NOTIFY=NEVER", 555,
                     "5.5.4")


if __name__ == "__main__":
    unittest.main()
