# SPDX-License-Identifier: MIT
"""Relay: the SMTP conversation with the remote MX. Retries after 4xx and
after the remote was down, 5xx failures with the remote's reply in the
bounce, per-recipient results, ESMTP (PIPELINING, SIZE, 8BITMIME,
SMTPUTF8, DSN), HELO fallback, big messages streamed, and connection
reuse."""

import unittest

import harness
import relay_harness as rh
import smtp_harness

DOMAIN = "remote.test"
MX = "mx.remote.test"


class RelayCase(harness.PetrelTestCase):
    """One MX for remote.test on 127.0.0.2."""

    peer_args = {}

    def setUp(self):
        self.port, (self.peer,) = rh.peers(self, [("127.0.0.2", MX)],
                                           **self.peer_args)
        self.dns = rh.Dns(self, mx=[(DOMAIN, MX, 10)],
                          hosts={MX: "127.0.0.2"})

    def server(self, **kwargs):
        return rh.RelayServer(self, dns=self.dns, mx_port=self.port,
                              **kwargs)

    def assertClean(self, msgs):
        """SECURITY.md #1: no bare CR or LF ever left Petrel."""
        for m in msgs:
            self.assertFalse(m.bare_newline, m)


class RetryTest(RelayCase):
    def test_4xx_then_success(self):
        self.peer.set_replies("RCPT", ["451 4.3.0 try again later"])
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "deferred")
        self.assertIn("451 4.3.0 try again later", line)
        self.assertIn("relay=%s[127.0.0.2]" % MX, line)
        msgs = self.peer.wait_messages(1, timeout=20)
        self.assertEqual(msgs[0].rcpts, ["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "delivered")
        self.assertIn("attempts=2", line)

    def test_4xx_after_data_then_success(self):
        self.peer.set_replies("DOT", ["452 4.3.1 disk full"])
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        s.wait_status("bob@" + DOMAIN, "deferred")
        self.peer.wait_messages(1, timeout=20)
        s.wait_status("bob@" + DOMAIN, "delivered")

    def test_remote_down_then_up(self):
        self.peer.stop()
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "deferred")
        self.assertIn("4.4.1", line)
        # The peer comes back on the same address and port.
        _, (back,) = rh.peers(self, [("127.0.0.2", MX)], port=self.port)
        back.wait_messages(1, timeout=20)
        s.wait_status("bob@" + DOMAIN, "delivered")

    def test_5xx_fails_and_the_sender_gets_the_reply(self):
        self.peer.set_replies(
            "RCPT", lambda a: "550 5.1.1 <%s>: no such user" % a
            if a.startswith("nobody") else None)
        s = self.server()
        s.submit(["nobody@" + DOMAIN, "bob@" + DOMAIN])
        line = s.wait_status("nobody@" + DOMAIN, "failed")
        self.assertIn("550 5.1.1 <nobody@remote.test>: no such user", line)
        self.assertIn("attempts=1", line)
        s.wait_status("bob@" + DOMAIN, "delivered")
        msgs = self.peer.wait_messages(1)
        self.assertEqual(msgs[0].rcpts, ["bob@" + DOMAIN])
        # The bounce reaches the local sender with the remote's words.
        bounce = s.wait_messages(rh.SENDER, 1, timeout=20)[0]
        self.assertIn(b"nobody@remote.test", bounce)
        self.assertIn(b"no such user", bounce)
        self.assertIn(b"5.1.1", bounce)
        self.assertNotIn(b"Final-Recipient: rfc822; bob@remote.test",
                         bounce)

    def test_5xx_to_mail_and_data_fail_everyone(self):
        self.peer.set_replies("MAIL", ["553 5.7.1 sender refused"])
        s = self.server()
        s.submit(["a@" + DOMAIN, "b@" + DOMAIN])
        for r in ("a@", "b@"):
            line = s.wait_status(r + DOMAIN, "failed")
            self.assertIn("553 5.7.1 sender refused", line)
        self.peer.set_replies("DOT", ["554 5.6.0 content refused"])
        s.submit(["c@" + DOMAIN])
        line = s.wait_status("c@" + DOMAIN, "failed")
        self.assertIn("554 5.6.0 content refused", line)
        self.assertEqual(self.peer.messages, [])

    def test_multi_line_reply_kept_on_one_line(self):
        self.peer.set_replies("RCPT", [
            "550-5.7.1 first line\r\n550-5.7.1 second\r\n"
            "550 5.7.1 third"])
        s = self.server()
        s.submit(["bob@" + DOMAIN])
        line = s.wait_status("bob@" + DOMAIN, "failed")
        self.assertIn("(550 5.7.1 first line second third)", line)


class EsmtpTest(RelayCase):
    def test_pipelining_in_one_write(self):
        s = self.server()
        s.submit(["a@" + DOMAIN, "b@" + DOMAIN, "c@" + DOMAIN])
        msgs = self.peer.wait_messages(1)
        self.assertEqual(msgs[0].rcpts, ["a@remote.test", "b@remote.test",
                                         "c@remote.test"])
        self.assertRegex(msgs[0].mail_params, r"^SIZE=\d+$")
        self.assertClean(msgs)

    def test_no_pipelining_and_helo_fallback(self):
        self.peer.set_replies("EHLO", ["502 5.5.2 what?"])
        s = self.server()
        s.submit(["a@" + DOMAIN, "b@" + DOMAIN])
        msgs = self.peer.wait_messages(1)
        self.assertEqual(msgs[0].rcpts, ["a@remote.test", "b@remote.test"])
        cmds = self.peer.commands()
        self.assertEqual([c.split()[0] for c in cmds[:3]],
                         ["EHLO", "HELO", "MAIL"])
        # Without SIZE announced, none is sent.
        self.assertEqual(msgs[0].mail_params, "")

    def test_size_limit_of_the_remote(self):
        self.peer.ehlo = ["SIZE 2000", "PIPELINING"]
        s = self.server()
        s.submit(["bob@" + DOMAIN], smtp_harness.make_message(size=5000))
        line = s.wait_status("bob@" + DOMAIN, "failed")
        self.assertIn("552 5.3.4", line)
        self.assertEqual(self.peer.commands("MAIL"), [])

    def test_8bitmime_passed_on(self):
        msg = smtp_harness.make_message(body="Grüße\r\n".encode())
        s = self.server()
        s.submit(["bob@" + DOMAIN], msg, mail_params=" BODY=8BITMIME")
        m = self.peer.wait_messages(1)[0]
        self.assertIn("BODY=8BITMIME", m.mail_params)
        self.assertIn("Grüße\r\n".encode(), m.data)

    def test_dsn_parameters_passed_on(self):
        s = self.server()
        s.submit(["bob@" + DOMAIN],
                 mail_params=" RET=HDRS ENVID=env+2Bid",
                 rcpt_params=" NOTIFY=SUCCESS,FAILURE "
                             "ORCPT=rfc822;bob@remote.test")
        m = self.peer.wait_messages(1)[0]
        self.assertIn("RET=HDRS", m.mail_params)
        self.assertIn("ENVID=env+2Bid", m.mail_params)
        params = m.rcpt_params["bob@remote.test"]
        self.assertIn("NOTIFY=SUCCESS,FAILURE", params)
        self.assertIn("ORCPT=rfc822;bob@remote.test", params)

    def test_no_dsn_parameters_to_a_server_without_dsn(self):
        self.peer.ehlo = ["PIPELINING"]
        s = self.server()
        s.submit(["bob@" + DOMAIN], mail_params=" RET=HDRS",
                 rcpt_params=" NOTIFY=NEVER")
        m = self.peer.wait_messages(1)[0]
        self.assertEqual(m.mail_params, "")
        self.assertEqual(m.rcpt_params["bob@remote.test"], "")

    def test_smtputf8(self):
        """An SMTPUTF8 message goes to a server with SMTPUTF8 as is; to
        one without, it fails with 5.6.7 unless it is all ASCII."""
        # Each message asks the peer's EHLO again.
        s = self.server(relay={"reuse_messages": 0})
        utf8_rcpt = "jörg@" + DOMAIN
        s.submit([utf8_rcpt], mail_params=" SMTPUTF8")
        m = self.peer.wait_messages(1)[0]
        self.assertIn("SMTPUTF8", m.mail_params)
        self.assertEqual(m.rcpts, [utf8_rcpt])

        self.peer.ehlo = ["PIPELINING", "8BITMIME"]
        s.submit(["ascii@" + DOMAIN], mail_params=" SMTPUTF8")
        m = self.peer.wait_messages(2)[1]
        self.assertNotIn("SMTPUTF8", m.mail_params)
        s.submit(["zoë@" + DOMAIN], mail_params=" SMTPUTF8")
        line = s.wait_status("zo\\xc3\\xab@" + DOMAIN, "failed")
        self.assertIn("553 5.6.7", line)


class StreamTest(RelayCase):
    def test_big_message_arrives_intact(self):
        """A 6 MB message is streamed from the spool under backpressure
        and arrives byte for byte."""
        body = b"".join(b"line %07d %s\r\n" % (i, b"x" * 50)
                        for i in range(100000))
        body += b".\r\n..\r\nlast line without end"
        msg = smtp_harness.make_message(body=body)
        s = self.server()
        s.submit(["bob@" + DOMAIN], msg)
        m = self.peer.wait_messages(1, timeout=60)[0]
        self.assertTrue(m.data.endswith(msg[-2000:] + b"\r\n") or
                        m.data.endswith(msg[-2000:]))
        self.assertIn(msg[:-30], m.data)
        self.assertClean([m])


class ReuseTest(RelayCase):
    def test_connection_reused_for_the_next_messages(self):
        s = self.server(relay={"reuse_idle": "30s"})
        for i in range(5):
            # One after the other: each finds the last one's connection.
            s.submit(["u%d@%s" % (i, DOMAIN)])
            s.wait_status("u%d@%s" % (i, DOMAIN), "delivered")
        self.peer.wait_messages(5)
        self.assertEqual(len(self.peer.conns), 1)
        self.assertEqual(len(self.peer.commands("EHLO")), 1)
        self.assertEqual(self.peer.commands("RSET"), [])

    def test_reuse_off(self):
        s = self.server(relay={"reuse_messages": 0})
        for i in range(3):
            s.submit(["u%d@%s" % (i, DOMAIN)])
        self.peer.wait_messages(3)
        harness.wait_until(lambda: len(self.peer.commands("QUIT")) == 3,
                           10, "3 QUITs")
        self.assertEqual(len(self.peer.conns), 3)

    def test_remote_closing_an_idle_connection(self):
        """The server drops the parked connection: the next message
        simply opens a new one."""
        s = self.server(relay={"reuse_idle": "30s"})
        s.submit(["a@" + DOMAIN])
        self.peer.wait_messages(1)
        self.peer.stop()
        _, (back,) = rh.peers(self, [("127.0.0.2", MX)], port=self.port)
        s.submit(["b@" + DOMAIN])
        back.wait_messages(1, timeout=20)
        s.wait_status("b@" + DOMAIN, "delivered")


if __name__ == "__main__":
    unittest.main()
