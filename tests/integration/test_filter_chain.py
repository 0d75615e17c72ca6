# SPDX-License-Identifier: MIT
"""The filter chain of the smtp module end to end (docs/filters.md): every
verdict at every hook, asynchronous verdicts while the same worker serves
another session, per-filter timeouts and on_timeout, per-role chains,
header edits in the stored message, the trace (and its header), the
quarantine folder in Maildir, the RELAY hook, and a filter built out of
tree with the installed pkg-config file."""

import glob
import os
import re
import shlex
import shutil
import socket
import tempfile
import time
import unittest

import harness
from harness import SOURCE_ROOT, TEST_MODULE_DIR
from smtp_harness import SmtpClient, SmtpServer, make_message

ACTIONS = ("reject", "tempfail", "discard", "quarantine", "accept",
           "continue")
HOOKS = ("connect", "helo", "mail", "rcpt", "data", "relay")

# The trigger of each hook: only what carries it meets the verdict.
TRIGGER = {
    "connect": "127.0.0.2",              # client address
    "helo": "trigger-helo.example.org",  # HELO name
    "mail": "trigger-mail@example.org",  # sender
    "rcpt": "bob@example.test",          # recipient
    "data": "TRIGGER-DATA",              # message text
    "relay": "TRIGGER-RELAY",            # message text, remote recipient
}


def test_filter_module(**hooks):
    section = {"path": os.path.join(TEST_MODULE_DIR, "test_filter.so")}
    section.update(hooks)
    return section


def regex_module(rules, **keys):
    section = {"rules": rules}
    section.update(keys)
    return section


class FromClient(SmtpClient):
    """An SMTP client connecting from another loopback address."""

    def __init__(self, port, source, **kwargs):
        real = socket.create_connection

        def connect(address, timeout=None, source_address=None):
            return real(address, timeout=timeout,
                        source_address=(source, 0))

        socket.create_connection = connect
        try:
            super().__init__(port, **kwargs)
        finally:
            socket.create_connection = real


class Base(harness.PetrelTestCase):

    def server(self, filters, modules, smtp=None, queue=False, **kwargs):
        section = {"filters": filters, "max_errors": 100,
                   "trusted_networks": ["127.0.0.0/8"]}
        section.update(smtp or {})
        extra = dict(modules)
        s = SmtpServer(self, smtp=section, extra_modules=extra,
                       start=False, **kwargs)
        if queue:
            s.queue_dir = s.p.path("queue")
            os.mkdir(s.queue_dir)
            os.chmod(s.queue_dir, 0o777)
            s.cfg["modules"]["null_queue"] = {
                "path": os.path.join(TEST_MODULE_DIR, "null_queue.so"),
                "dir": s.queue_dir}
            s.p.write_config(s.cfg)
        s.start()
        return s

    def queued(self, s):
        return sorted(glob.glob(os.path.join(s.queue_dir, "*.eml")))

    def folder_files(self, s, user, folder):
        d = os.path.join(s.maildir(user), "." + folder, "new")
        try:
            return sorted(os.path.join(d, n) for n in os.listdir(d))
        except FileNotFoundError:
            return []

    def inbox(self, s, user="alice@example.test"):
        return s.messages(user)


class VerdictsAtHooks(Base):
    """test_filter gives ACTION at every hook, each only for its trigger;
    filter_regex after it rejects every trigger with 550 5.7.9, which
    shows whether the chain went on (continue) or stopped."""

    def start_for(self, action):
        hooks = {}
        for hook in HOOKS:
            entry = {"action": action, "match": TRIGGER[hook],
                     "text": "test says %s" % action}
            if hook == "rcpt":
                entry["match"] = "bob@"
            hooks[hook] = entry
        rules = [
            {"target": "client_ip", "pattern": r"^127\.0\.0\.2$"},
            {"target": "helo", "pattern": "^trigger-helo"},
            {"target": "mail_from", "pattern": "^trigger-mail@"},
            {"target": "rcpt", "pattern": "^bob@"},
            {"target": "body", "pattern": "TRIGGER-DATA"},
        ]
        for r in rules:
            r.update({"action": "reject", "code": 550, "enhanced": "5.7.9",
                      "text": "regex said no"})
        return self.server(
            ["test_filter", "filter_regex"],
            {"test_filter": test_filter_module(**hooks),
             "filter_regex": regex_module(rules)}, queue=True)

    def transaction(self, c, sender="sender@example.org",
                    rcpt="alice@example.test", body=b"plain\r\n",
                    expect_rcpt=250):
        c.expect("MAIL FROM:<%s>" % sender, 250, "2.1.0")
        c.expect("RCPT TO:<%s>" % rcpt, expect_rcpt)
        return c.data(make_message(body=body))

    def check_stored(self, s, action, hook, count_before, queued_before,
                     user="alice@example.test", remote=False):
        """Where the message went for the action (in the inbox, the
        quarantine folder, nowhere)."""
        time.sleep(0.1)
        inbox = len(self.inbox(s, user))
        quarantined = len(self.folder_files(s, user, "Quarantine"))
        queued = len(self.queued(s))
        if action in ("accept", "continue"):
            if remote:
                self.assertEqual(queued, queued_before + 1, hook)
            else:
                self.assertEqual(inbox, count_before[0] + 1, hook)
        elif action == "quarantine":
            self.assertEqual(quarantined, count_before[1] + 1, hook)
            self.assertEqual(inbox, count_before[0], hook)
            self.assertEqual(queued, queued_before, hook)
        else:
            self.assertEqual(inbox, count_before[0], hook)
            self.assertEqual(quarantined, count_before[1], hook)
            self.assertEqual(queued, queued_before, hook)

    def counts(self, s, user="alice@example.test"):
        return (len(self.inbox(s, user)),
                len(self.folder_files(s, user, "Quarantine")))

    def refused(self, action, r, hook):
        if action == "reject":
            code = 554 if hook == "connect" else 550
            self.assertEqual(r.code, code, r)
            self.assertEqual(r.enhanced, "5.7.1", r)
            self.assertIn("test says reject", r.text)
        else:
            code = 421 if hook == "connect" else 451
            self.assertEqual(r.code, code, r)
            self.assertEqual(r.enhanced, "4.7.1", r)

    def run_action(self, action):
        s = self.start_for(action)
        for hook in HOOKS:
            with self.subTest(action=action, hook=hook):
                self.one_hook(s, action, hook)
        # Every verdict has its log line with the connection id.
        log = s.p.log_text()
        self.assertRegex(log, r"filter test_filter at mail: %s" % action)

    def one_hook(self, s, action, hook):
        before = self.counts(s)
        queued_before = len(self.queued(s))
        mark = s.p.log_mark()
        if hook == "connect":
            c = FromClient(s.mx, TRIGGER["connect"])
            g = c.greeting
            if action in ("reject", "tempfail"):
                self.refused(action, g, hook)
                self.assertTrue(c.closed())
                c.close()
                return
            if action == "continue":
                # The regex rule's own code, even on connect.
                self.assertEqual((g.code, g.enhanced), (550, "5.7.9"), g)
                self.assertTrue(c.closed())
                c.close()
                return
            self.assertEqual(g.code, 220, g)
            c.ehlo()
            r = self.transaction(c)
            self.assertEqual(r.code, 250, r)
            c.quit()
            self.check_stored(s, action, hook, before, queued_before)
            return
        with s.connect() as c:
            if hook == "helo":
                r = c.cmd("EHLO " + TRIGGER["helo"])
                if action in ("reject", "tempfail"):
                    self.refused(action, r, hook)
                    return
                if action == "continue":
                    self.assertEqual((r.code, r.enhanced), (550, "5.7.9"))
                    return
                self.assertEqual(r.code, 250, r)
                r = self.transaction(c)
                self.assertEqual(r.code, 250, r)
                self.check_stored(s, action, hook, before, queued_before)
                return
            c.ehlo()
            if hook == "mail":
                r = c.cmd("MAIL FROM:<%s>" % TRIGGER["mail"])
                if action in ("reject", "tempfail"):
                    self.refused(action, r, hook)
                    return
                if action == "continue":
                    self.assertEqual((r.code, r.enhanced), (550, "5.7.9"))
                    return
                self.assertEqual(r.code, 250, r)
                c.expect("RCPT TO:<alice@example.test>", 250)
                r = c.data(make_message())
                self.assertEqual(r.code, 250, r)
                self.check_stored(s, action, hook, before, queued_before)
                return
            if hook == "rcpt":
                user = "bob@example.test"
                before = self.counts(s, user)
                c.expect("MAIL FROM:<sender@example.org>", 250)
                r = c.cmd("RCPT TO:<%s>" % TRIGGER["rcpt"])
                if action in ("reject", "tempfail"):
                    self.refused(action, r, hook)
                    return
                if action == "continue":
                    self.assertEqual((r.code, r.enhanced), (550, "5.7.9"))
                    return
                self.assertEqual(r.code, 250, r)
                r = c.data(make_message())
                self.assertEqual(r.code, 250, r)
                self.check_stored(s, action, hook, before, queued_before,
                                  user=user)
                return
            if hook == "data":
                r = self.transaction(c, body=b"x TRIGGER-DATA x\r\n")
                if action in ("reject", "tempfail"):
                    self.refused(action, r, hook)
                    self.check_stored(s, "reject", hook, before,
                                      queued_before)
                    return
                if action == "continue":
                    self.assertEqual((r.code, r.enhanced), (550, "5.7.9"))
                    self.check_stored(s, "reject", hook, before,
                                      queued_before)
                    return
                self.assertEqual(r.code, 250, r)
                self.check_stored(s, action, hook, before, queued_before)
                return
            # relay: a remote recipient (the client is trusted).
            r = self.transaction(c, rcpt="someone@remote.example",
                                 body=b"x TRIGGER-RELAY x\r\n")
            if action in ("reject", "tempfail"):
                self.refused(action, r, hook)
                self.check_stored(s, "reject", hook, before, queued_before,
                                  remote=True)
                return
            self.assertEqual(r.code, 250, r)
            if action == "quarantine":
                # No local copy to quarantine; the remote one is held.
                self.assertEqual(len(self.queued(s)), queued_before)
                s.p.wait_log("remote recipients not relayed", since=mark)
                return
            if action == "discard":
                self.assertEqual(len(self.queued(s)), queued_before)
                return
            self.check_stored(s, action, hook, before, queued_before,
                              remote=True)

    def test_reject(self):
        self.run_action("reject")

    def test_tempfail(self):
        self.run_action("tempfail")

    def test_discard(self):
        self.run_action("discard")

    def test_quarantine(self):
        self.run_action("quarantine")

    def test_accept(self):
        self.run_action("accept")

    def test_continue(self):
        self.run_action("continue")


class Async(Base):

    def test_worker_serves_others_while_a_verdict_is_pending(self):
        """One worker; session A waits 3 s for its MAIL verdict while
        session B does a whole transaction."""
        s = self.server(
            ["test_filter"],
            {"test_filter": test_filter_module(
                mail={"action": "continue", "match": "slow@",
                      "delay": "3s"})},
            workers=1)
        a = s.ehlo_client()
        self.addCleanup(a.close)
        t0 = time.monotonic()
        a.send("MAIL FROM:<slow@example.org>\r\n")
        with s.ehlo_client() as b:
            r = b.send_mail("fast@example.org", ["alice@example.test"],
                            make_message(subject="fast"))
            self.assertEqual(r.code, 250, r)
            b.quit()
        t_b = time.monotonic() - t0
        self.assertLess(t_b, 2.5, "B waited for A's filter")
        self.assertEqual(len(s.messages("alice@example.test")), 1)
        r = a.expect_reply(250, "2.1.0", kind="MAIL", timeout=10)
        self.assertGreater(time.monotonic() - t0, 2.5)
        a.expect("RCPT TO:<alice@example.test>", 250)
        r = a.data(make_message(subject="slow"))
        self.assertEqual(r.code, 250, r)
        a.quit()
        self.assertEqual(len(s.messages("alice@example.test")), 2)


class Timeouts(Base):

    def start(self, on_timeout=None, on_error=None, action="hang"):
        entry = {"module": "test_filter", "timeout": "300ms"}
        if on_timeout:
            entry["on_timeout"] = on_timeout
        if on_error:
            entry["on_error"] = on_error
        return self.server(
            [entry],
            {"test_filter": test_filter_module(
                mail={"action": action, "match": "wait@"})})

    def mail(self, s):
        with s.ehlo_client() as c:
            t0 = time.monotonic()
            r = c.cmd("MAIL FROM:<wait@example.org>", timeout=10)
            elapsed = time.monotonic() - t0
            if r.code == 250:
                c.expect("RCPT TO:<alice@example.test>", 250)
                self.assertEqual(c.data(make_message()).code, 250)
            return r, elapsed

    def test_on_timeout(self):
        for on, code, enh in (("continue", 250, "2.1.0"),
                              ("accept", 250, "2.1.0"),
                              ("tempfail", 451, "4.3.0"),
                              ("reject", 550, "5.7.1"),
                              (None, 451, "4.3.0")):
            with self.subTest(on_timeout=on):
                s = self.start(on_timeout=on)
                r, elapsed = self.mail(s)
                self.assertEqual((r.code, r.enhanced), (code, enh), r)
                self.assertGreater(elapsed, 0.25)
                self.assertLess(elapsed, 3)
                s.p.wait_log("filter test_filter at mail: no verdict "
                             "within 300 ms")

    def test_on_error(self):
        for on, code in (("continue", 250), ("reject", 550),
                         (None, 451)):
            with self.subTest(on_error=on):
                s = self.start(on_error=on, action="error")
                r, _ = self.mail(s)
                self.assertEqual(r.code, code, r)
                s.p.wait_log("filter test_filter at mail: error")


class Roles(Base):

    def test_chain_per_role(self):
        s = self.server(
            [{"module": "test_filter", "roles": ["mx"]}],
            {"test_filter": test_filter_module(
                mail={"action": "reject", "text": "mx only"})},
            smtp={"trusted_networks": []})
        with s.ehlo_client("mx") as c:
            c.expect("MAIL FROM:<a@example.org>", 550, "5.7.1", "mx only")
        with s.auth_client("submission") as c:
            c.expect("MAIL FROM:<alice@example.test>", 250, "2.1.0")

    def test_chain_per_listener(self):
        s = SmtpServer(self, smtp={"filters": []}, start=False)
        sub = "127.0.0.1:%d" % s.sub
        s.cfg["modules"]["smtp"]["filters"] = [
            {"module": "test_filter", "listeners": [sub]}]
        s.cfg["modules"]["test_filter"] = test_filter_module(
            mail={"action": "reject", "text": "submission listener"})
        s.p.write_config(s.cfg)
        s.start()
        with s.ehlo_client("mx") as c:
            c.expect("MAIL FROM:<a@example.org>", 250, "2.1.0")
        with s.auth_client("submission") as c:
            c.expect("MAIL FROM:<alice@example.test>", 550, "5.7.1",
                     "submission listener")

    def test_config_errors(self):
        s = SmtpServer(self, start=False)
        smtp = s.cfg["modules"]["smtp"]
        s.cfg["modules"]["test_filter"] = test_filter_module()
        for filters, phrase in (
                ([{"module": "test_filter", "roles": ["relay"]}],
                 "modules.smtp.filters[0].roles[0]"),
                ([{"module": "test_filter", "listeners": ["1.2.3.4:25"]}],
                 "modules.smtp.filters[0].listeners[0]"),
                ([{"module": "test_filter", "on_timeout": "maybe"}],
                 "modules.smtp.filters[0].on_timeout"),
                ([{"timeout": "1s"}], "modules.smtp.filters[0]"),
                (["test_filter", {"module": "test_filter"}],
                 "listed twice"),
                ([42], "modules.smtp.filters[0]"),
                ([{"module": "bad name!"}],
                 "modules.smtp.filters[0].module")):
            with self.subTest(filters=filters):
                smtp["filters"] = filters
                self.assertCheckFails(s.p.check(s.cfg), phrase)
        # The same module twice, on disjoint roles, is fine.
        smtp["filters"] = [{"module": "test_filter", "roles": ["mx"]},
                           {"module": "test_filter",
                            "roles": ["submission"]}]
        self.assertCheckOk(s.p.check(s.cfg))


class HeaderEdits(Base):

    MESSAGE = (b"From: <sender@example.org>\r\n"
               b"To: <alice@example.test>\r\n"
               b"X-Remove: one\r\n"
               b"Subject: original\r\n"
               b"X-Remove: two,\r\n"
               b"\tfolded\r\n"
               b"X-Twice: first\r\n"
               b"X-Twice: second\r\n"
               b"\r\n"
               b"Body line\r\n"
               b"X-Remove: in the body stays\r\n")

    def stored_header(self, s):
        msgs = s.wait_messages("alice@example.test", 1)
        head, _, body = msgs[-1].partition(b"\r\n\r\n")
        return head, body

    def test_add_remove_replace(self):
        s = self.server(
            ["test_filter"],
            {"test_filter": test_filter_module(
                data={"action": "continue", "header": "X-Added: yes",
                      "remove_header": "X-Remove",
                      "replace_header": "Subject: replaced"})})
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            self.MESSAGE)
            self.assertEqual(r.code, 250, r)
        head, body = self.stored_header(s)
        self.assertIn(b"\r\nX-Added: yes\r\n", head)
        self.assertNotIn(b"X-Remove", head)
        self.assertNotIn(b"folded", head)
        self.assertIn(b"\r\nSubject: replaced\r\n", head)
        self.assertNotIn(b"original", head)
        self.assertEqual(head.count(b"Subject:"), 1)
        self.assertEqual(body, b"Body line\r\nX-Remove: in the body stays"
                               b"\r\n")

    def test_nth_instance_and_replace_absent(self):
        s = self.server(
            ["test_filter"],
            {"test_filter": test_filter_module(
                data={"action": "continue", "remove_header": "x-twice",
                      "replace_header": "X-New: made", "header_index": 2})})
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            self.MESSAGE)
            self.assertEqual(r.code, 250, r)
        head, _ = self.stored_header(s)
        self.assertIn(b"X-Twice: first\r\n", head)
        self.assertNotIn(b"X-Twice: second", head)
        # No second X-New: REPLACE adds it at the end of the header.
        self.assertTrue(head.endswith(b"X-Twice: first\r\nX-New: made"),
                        head)
        self.assertIn(b"X-Remove: one", head)

    def test_edits_before_relay_hook(self):
        """RELAY filters see the message with the DATA edits applied."""
        s = self.server(
            ["test_filter"],
            {"test_filter": test_filter_module(
                data={"action": "continue",
                      "replace_header": "Subject: edited"},
                relay={"action": "continue", "match": "Subject: edited",
                       "header": "X-Relay-Saw: edited subject"})},
            queue=True)
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["x@remote.example"],
                            self.MESSAGE)
            self.assertEqual(r.code, 250, r)
        files = harness.wait_until(lambda: self.queued(s), 5, "queued")
        with open(files[0], "rb") as f:
            data = f.read()
        self.assertIn(b"X-Relay-Saw: edited subject\r\n", data)
        self.assertIn(b"Subject: edited\r\n", data)
        self.assertNotIn(b"original", data)


class Trace(Base):

    def test_trace_seen_by_later_filters_and_header(self):
        rules = [{"name": "known-sender", "target": "mail_from",
                  "pattern": "@example\\.org$",
                  "result": "regex=pass smtp.mailfrom=example.org"},
                 {"name": "greeting", "target": "helo",
                  "pattern": "."}]
        s = self.server(
            ["filter_regex", "test_filter"],
            {"filter_regex": regex_module(rules),
             "test_filter": test_filter_module(
                 data={"action": "continue", "echo_trace": True,
                       "result": "test=pass header.d=example.org"})},
            smtp={"trace_header": True})
        message = (b"Authentication-Results: mail.example.test; spf=pass\r\n"
                   b"Authentication-Results: other.example; dkim=fail\r\n"
                   b"Authentication-Results:\r\n"
                   b"  MAIL.example.test; dmarc=pass\r\n"
                   + make_message(subject="trace"))
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            message)
            self.assertEqual(r.code, 250, r)
        msg = s.wait_messages("alice@example.test", 1)[-1]
        head = msg.partition(b"\r\n\r\n")[0]
        # The filter at DATA saw the verdicts before it.
        seen = re.search(rb"X-Trace-Seen: ([^\r\n]*)", head).group(1)
        self.assertIn(b"filter_regex/helo/continue/regex=hit rule=greeting",
                      seen)
        self.assertIn(b"filter_regex/mail/continue/regex=pass "
                      b"smtp.mailfrom=example.org", seen)
        # Our Authentication-Results: with every result, in order.
        ar = re.search(rb"Authentication-Results: mail\.example\.test;"
                       rb"((?:\r\n\t[^\r\n]*)*)\r\n", head)
        self.assertTrue(ar, head)
        self.assertEqual(
            ar.group(1),
            b"\r\n\tregex=hit rule=greeting;"
            b"\r\n\tregex=pass smtp.mailfrom=example.org;"
            b"\r\n\ttest=pass header.d=example.org")
        # Forged fields with our authserv-id are gone (RFC 8601 5),
        # others stay.
        self.assertNotIn(b"spf=pass", head)
        self.assertNotIn(b"dmarc=pass", head)
        self.assertIn(b"Authentication-Results: other.example; dkim=fail",
                      head)
        log = s.p.log_text()
        self.assertRegex(
            log, r"filter filter_regex at mail: continue message \S+ "
                 r"result=\"regex=pass smtp\.mailfrom=example\.org\"")
        self.assertRegex(
            log, r"filter test_filter at data: continue message \S+ "
                 r"result=\"test=pass header\.d=example\.org\"")

    def test_no_results(self):
        s = self.server([], {}, smtp={"trace_header": True})
        with s.ehlo_client() as c:
            self.assertEqual(c.send_mail("sender@example.org",
                                         ["alice@example.test"],
                                         make_message()).code, 250)
        msg = s.wait_messages("alice@example.test", 1)[-1]
        self.assertIn(b"\r\nAuthentication-Results: mail.example.test; "
                      b"none\r\n", msg)


class Quarantine(Base):

    def test_into_maildir_folder(self):
        s = self.server(
            ["test_filter"],
            {"test_filter": test_filter_module(
                data={"action": "quarantine", "match": "QUARANTINE-ME"})})
        with s.ehlo_client() as c:
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            make_message(body=b"QUARANTINE-ME\r\n"))
            self.assertEqual(r.code, 250, r)
            r = c.send_mail("sender@example.org", ["alice@example.test"],
                            make_message(body=b"fine\r\n"))
            self.assertEqual(r.code, 250, r)
        folder = os.path.join(s.maildir("alice@example.test"), ".Quarantine")
        files = harness.wait_until(
            lambda: self.folder_files(s, "alice@example.test",
                                      "Quarantine"), 5, "quarantined")
        self.assertEqual(len(files), 1)
        self.assertTrue(os.path.exists(os.path.join(folder,
                                                    "maildirfolder")))
        with open(files[0], "rb") as f:
            self.assertIn(b"QUARANTINE-ME", f.read())
        inbox = s.messages("alice@example.test")
        self.assertEqual(len(inbox), 1)
        self.assertIn(b"fine", inbox[0])


def meson_command():
    meson = shutil.which("meson")
    return [meson] if meson else ["python3", "-m", "mesonbuild.mesonmain"]


class OutOfTree(Base):
    """A third-party filter: tests/modules/test_filter.c compiled as
    module "oot_filter" against the installed headers (pkg-config only),
    loaded by path and listed in "filters"."""

    def test_build_and_use(self):
        destdir = tempfile.mkdtemp(prefix="petrel-oot-filter-")
        self.addCleanup(shutil.rmtree, destdir, True)
        os.chmod(destdir, 0o755)
        result = harness.run(meson_command() + [
            "install", "-C", harness.BUILD_ROOT, "--no-rebuild", "--quiet",
            "--destdir", destdir], timeout=180)
        self.assertExit(result, 0)
        pcs = glob.glob(os.path.join(destdir, "**", "petrel-module.pc"),
                        recursive=True)
        self.assertEqual(len(pcs), 1, pcs)
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]),
                   PKG_CONFIG_SYSROOT_DIR=destdir)
        result = harness.run(["pkg-config", "--cflags", "petrel-module"],
                             env=env)
        self.assertExit(result, 0)
        cflags = shlex.split(result.stdout)
        self.assertNotIn(SOURCE_ROOT + "/include", cflags)
        moddir = tempfile.mkdtemp(prefix="petrel-oot-so-")
        self.addCleanup(shutil.rmtree, moddir, True)
        os.chmod(moddir, 0o755)
        so = os.path.join(moddir, "oot_filter.so")
        src = os.path.join(SOURCE_ROOT, "tests", "modules", "test_filter.c")
        cc = os.environ.get("CC", "cc")
        result = harness.run([cc, "-shared", "-fPIC", "-O2", "-Wall",
                              "-Werror", "-std=c11", "-D_GNU_SOURCE",
                              "-DTF_NAME=\"oot_filter\"", "-o", so, src]
                             + cflags, timeout=120)
        self.assertExit(result, 0)
        os.chmod(so, 0o755)
        s = self.server(
            ["oot_filter"],
            {"oot_filter": {"path": so,
                            "mail": {"action": "reject",
                                     "match": "spammer@",
                                     "text": "out of tree says no",
                                     "result": "oot=fail"}}})
        with s.ehlo_client() as c:
            c.expect("MAIL FROM:<spammer@example.org>", 550, "5.7.1",
                     "out of tree says no")
            r = c.send_mail("friend@example.org", ["alice@example.test"],
                            make_message())
            self.assertEqual(r.code, 250, r)
        s.p.wait_log('filter oot_filter at mail: reject 550 5.7.1 message')


if __name__ == "__main__":
    unittest.main()
