# SPDX-License-Identifier: MIT
"""The passwd module and petrelctl: users added, changed, checked and
deleted through the command; the file stays parseable and keeps what
petrelctl does not own; petrel refuses a malformed file naming the line."""

import os
import pty
import select
import signal
import stat
import subprocess
import time
import unittest

import harness
from harness import BUILD_ROOT

PETRELCTL = os.environ.get("PETRELCTL_BIN",
                           os.path.join(BUILD_ROOT, "tools", "petrelctl"))


class PetrelctlTestCase(harness.PetrelTestCase):

    def setUp(self):
        self.p = self.petrel()
        self.file = self.p.path("users.passwd")

    def ctl(self, *args, password=None, file=True):
        """Run petrelctl; the password (if any) goes to stdin."""
        argv = [PETRELCTL]
        if file:
            argv += ["-f", self.file]
        argv += list(args)
        if password is None:
            return harness.run(argv, cwd=self.p.dir)
        return harness.run(argv, cwd=self.p.dir, input=password + "\n")

    def add(self, address, password, *extra):
        result = self.ctl("user", "add", address, *extra, password=password)
        self.assertExit(result, 0)
        return result

    def check(self, address, password):
        return self.ctl("user", "check", address, password=password)

    def users(self):
        result = self.ctl("user", "list")
        self.assertExit(result, 0)
        return [line.split("\t") for line in result.stdout.splitlines()]

    def read(self):
        with open(self.file) as f:
            return f.read()

    def passwd_config(self, **keys):
        section = {"file": self.file}
        section.update(keys)
        return self.p.config(modules={"passwd": section})


class UserCommands(PetrelctlTestCase):

    def test_add_list_check_passwd_del(self):
        self.add("alice@Example.TEST", "alice pw")
        self.add("bob@example.test", "bob pw", "--scheme", "sha512-crypt")
        self.add("carol@example.test", "carol pw", "--scheme=blf-crypt")
        self.assertEqual(self.users(), [
            ["alice@example.test", "YESCRYPT"],
            ["bob@example.test", "SHA512-CRYPT"],
            ["carol@example.test", "BLF-CRYPT"]])
        # Dovecot's names: yescrypt is {CRYPT}.
        text = self.read()
        self.assertIn("alice@example.test:{CRYPT}$y$", text)
        self.assertIn("bob@example.test:{SHA512-CRYPT}$6$", text)
        self.assertIn("carol@example.test:{BLF-CRYPT}$2y$", text)

        for who, pw in (("alice", "alice pw"), ("bob", "bob pw"),
                        ("carol", "carol pw")):
            self.assertExit(self.check(who + "@example.test", pw), 0)
            bad = self.check(who + "@example.test", pw + "x")
            self.assertExit(bad, 1)
            self.assertIn("wrong password", bad.stderr)
        # Addresses compare case-insensitively.
        self.assertExit(self.check("ALICE@example.test", "alice pw"), 0)

        result = self.ctl("user", "passwd", "alice@example.test",
                          "--scheme", "sha512-crypt", password="new pw")
        self.assertExit(result, 0)
        self.assertExit(self.check("alice@example.test", "new pw"), 0)
        self.assertExit(self.check("alice@example.test", "alice pw"), 1)
        self.assertEqual(self.users()[0],
                         ["alice@example.test", "SHA512-CRYPT"])

        self.assertExit(self.ctl("user", "del", "bob@example.test"), 0)
        self.assertEqual([u[0] for u in self.users()],
                         ["alice@example.test", "carol@example.test"])
        gone = self.check("bob@example.test", "bob pw")
        self.assertExit(gone, 1)
        self.assertIn("no user bob@example.test", gone.stderr)

        # The server reads what petrelctl wrote.
        self.assertCheckOk(self.p.check(self.passwd_config()))

    def test_refusals(self):
        self.add("alice@example.test", "pw")
        again = self.ctl("user", "add", "alice@EXAMPLE.test", password="x")
        self.assertExit(again, 1)
        self.assertIn("already exists", again.stderr)
        for verb in ("passwd", "del", "check"):
            result = self.ctl("user", verb, "nobody@example.test",
                              password="x")
            self.assertExit(result, 1)
            self.assertIn("no user nobody@example.test", result.stderr)
        bad = self.ctl("user", "add", "not-an-address", password="x")
        self.assertExit(bad, 1)
        self.assertIn("is not an address", bad.stderr)
        empty = self.ctl("user", "add", "new@example.test", password="")
        self.assertExit(empty, 1)
        self.assertIn("empty password", empty.stderr)
        none = harness.run([PETRELCTL, "-f", self.file, "user", "add",
                            "new@example.test"])
        self.assertExit(none, 1)
        self.assertIn("no password", none.stderr)
        self.assertEqual([u[0] for u in self.users()],
                         ["alice@example.test"])
        missing = harness.run([PETRELCTL, "-f", self.p.path("none"),
                               "user", "list"])
        self.assertExit(missing, 1)
        self.assertIn("cannot open", missing.stderr)

    def test_usage_errors_exit_2(self):
        for args in (["user"], ["user", "bogus"], ["user", "add"],
                     ["user", "add", "a@x", "--scheme", "md5"],
                     ["user", "add", "a@x", "b@x"],
                     ["user", "list", "extra"], ["group", "list"], ["-q"]):
            with self.subTest(args=args):
                result = self.ctl(*args, password="x")
                self.assertExit(result, 2)
                self.assertIn("usage: petrelctl", result.stderr)
        # No file named anywhere.
        result = harness.run([PETRELCTL, "user", "list"])
        self.assertExit(result, 2)
        self.assertIn("-f FILE or -c CONFIG", result.stderr)
        self.assertExit(harness.run([PETRELCTL, "-h"]), 0)

    def test_file_from_config(self):
        self.add("alice@example.test", "pw")
        conf = self.p.write_config(self.passwd_config())
        result = harness.run([PETRELCTL, "-c", conf, "user", "list"])
        self.assertExit(result, 0)
        self.assertEqual(result.stdout, "alice@example.test\tYESCRYPT\n")
        other = self.p.write_config(self.p.config(), self.p.path("o.json"))
        result = harness.run([PETRELCTL, "-c", other, "user", "list"])
        self.assertExit(result, 1)
        self.assertIn("no modules.passwd.file", result.stderr)

    def test_password_from_stdin_line(self):
        # One line: the CR of a CRLF is not part of the password, the
        # rest of the line (spaces included) is.
        result = harness.run([PETRELCTL, "-f", self.file, "user", "add",
                              "a@example.test"], input=" two words \r\n"
                             "ignored second line\n")
        self.assertExit(result, 0)
        self.assertExit(self.check("a@example.test", " two words "), 0)
        self.assertExit(self.check("a@example.test", "two words"), 1)
        # No newline at the end is fine too.
        result = harness.run([PETRELCTL, "-f", self.file, "user", "check",
                              "a@example.test"], input=" two words ")
        self.assertExit(result, 0)

    def test_password_from_terminal_without_echo(self):
        """On a terminal: a prompt, no echo, asked twice."""
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                [PETRELCTL, "-f", self.file, "user", "add",
                 "tty@example.test"],
                stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                start_new_session=True)
            os.close(slave)
            slave = None
            seen = self.expect(master, b"Password: ")
            os.write(master, b"s3cret words\n")
            seen += self.expect(master, b"Retype password: ")
            os.write(master, b"s3cret words\n")
            self.assertEqual(proc.wait(harness.COMMAND_TIMEOUT), 0)
            seen += self.drain(master)
            self.assertNotIn(b"s3cret", seen)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertExit(self.check("tty@example.test", "s3cret words"), 0)

        # Two different passwords: nothing is written.
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen(
                [PETRELCTL, "-f", self.file, "user", "add",
                 "tty2@example.test"],
                stdin=slave, stdout=slave, stderr=slave, close_fds=True,
                start_new_session=True)
            os.close(slave)
            slave = None
            self.expect(master, b"Password: ")
            os.write(master, b"one\n")
            self.expect(master, b"Retype password: ")
            os.write(master, b"two\n")
            self.assertEqual(proc.wait(harness.COMMAND_TIMEOUT), 1)
            self.assertIn(b"do not match", self.drain(master))
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual([u[0] for u in self.users()], ["tty@example.test"])

    def expect(self, fd, text, timeout=harness.COMMAND_TIMEOUT):
        seen = b""
        deadline = time.monotonic() + timeout
        while text not in seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r on the terminal (got %r)"
                                     % (text, seen))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(fd, 1024)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("terminal closed (got %r)" % seen)
                seen += chunk
        return seen

    def drain(self, fd):
        seen = b""
        while True:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                return seen
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                return seen
            if not chunk:
                return seen
            seen += chunk


class FileSafety(PetrelctlTestCase):

    def test_keeps_comments_extra_fields_and_mode(self):
        self.add("seed@example.test", "pw")
        seed = self.read().strip()
        original = ("# Managed by hand and by petrelctl\n"
                    "\n"
                    + seed + ":1000:1000:Seed User:/home/seed:/bin/sh:"
                    "userdb_quota_rule=*:storage=1G:future=field\n"
                    "# keep me\n"
                    "nologin@example.test::::::\n")
        with open(self.file, "w") as f:
            f.write(original)
        os.chmod(self.file, 0o604)

        self.add("new@example.test", "pw")
        text = self.read()
        self.assertTrue(text.startswith(original), text)
        self.assertEqual(stat.S_IMODE(os.stat(self.file).st_mode), 0o604)

        self.assertExit(self.ctl("user", "passwd", "seed@example.test",
                                 password="changed"), 0)
        text = self.read()
        line = [ln for ln in text.splitlines()
                if ln.startswith("seed@")][0]
        self.assertTrue(line.endswith(
            ":1000:1000:Seed User:/home/seed:/bin/sh:"
            "userdb_quota_rule=*:storage=1G:future=field"), line)
        self.assertNotIn(seed, text)
        self.assertIn("# Managed by hand and by petrelctl\n\n", text)
        self.assertIn("# keep me\nnologin@example.test::::::\n", text)
        self.assertExit(self.check("seed@example.test", "changed"), 0)

        self.assertExit(self.ctl("user", "del", "new@example.test"), 0)
        text = self.read()
        self.assertNotIn("new@example.test", text)
        self.assertEqual(stat.S_IMODE(os.stat(self.file).st_mode), 0o604)
        # The login-less user is listed, and the server parses it all.
        self.assertIn(["nologin@example.test", "NONE"], self.users())
        self.assertCheckOk(self.p.check(self.passwd_config()))
        leftovers = [n for n in os.listdir(self.p.dir) if ".tmp." in n]
        self.assertEqual(leftovers, [])

    def test_refuses_to_edit_a_broken_file(self):
        with open(self.file, "w") as f:
            f.write("# fine\nbroken line\n")
        result = self.ctl("user", "add", "a@example.test", password="pw")
        self.assertExit(result, 1)
        self.assertIn("users.passwd:2: missing ':' after the user name",
                      result.stderr)
        with open(self.file) as f:
            self.assertEqual(f.read(), "# fine\nbroken line\n")

    def test_symlinked_file_stays_a_symlink(self):
        real = self.p.path("real.passwd")
        self.file = real
        self.add("a@example.test", "pw")
        link = self.p.path("users.passwd")
        os.symlink("real.passwd", link)
        self.file = link
        self.add("b@example.test", "pw")
        self.assertTrue(os.path.islink(link))
        with open(real) as f:
            self.assertIn("b@example.test:", f.read())

    def test_new_file_mode(self):
        self.add("a@example.test", "pw")
        self.assertEqual(stat.S_IMODE(os.stat(self.file).st_mode), 0o640)

    def test_concurrent_adds_lose_nothing(self):
        """20 petrelctl runs at once: the lock serializes the edits."""
        procs = []
        for i in range(20):
            procs.append(subprocess.Popen(
                [PETRELCTL, "-f", self.file, "user", "add",
                 "user%02d@example.test" % i, "--scheme", "sha512-crypt"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True))
        for i, proc in enumerate(procs):
            out, err = proc.communicate("pw%02d\n" % i,
                                        timeout=harness.COMMAND_TIMEOUT * 2)
            self.assertEqual(proc.returncode, 0, err)
        names = sorted(u[0] for u in self.users())
        self.assertEqual(names, ["user%02d@example.test" % i
                                 for i in range(20)])
        for i in (0, 7, 19):
            self.assertExit(self.check("user%02d@example.test" % i,
                                       "pw%02d" % i), 0)
        self.assertCheckOk(self.p.check(self.passwd_config()))
        leftovers = [n for n in os.listdir(self.p.dir) if ".tmp." in n]
        self.assertEqual(leftovers, [])


class ServerChecks(PetrelctlTestCase):

    def write(self, text):
        with open(self.file, "w") as f:
            f.write(text)

    def test_malformed_file_fails_petrel_t_naming_the_line(self):
        self.add("alice@example.test", "pw")
        good = self.read()
        cfg = self.passwd_config()
        cases = (
            ("broken\n", "missing ':' after the user name"),
            ("bob@example.test:{MD5}abcdef\n",
             'unknown password scheme "{MD5}"'),
            ("bob@example.test:{PLAIN}secret\n",
             "plaintext password refused"),
            ("bob@example.test:secret\n",
             "password field is neither {SCHEME}hash nor a crypt hash"),
            ("alice@example.test:{CRYPT}$y$j9T$a$b\n",
             'duplicate user "alice@example.test" (first on line 2)'),
        )
        for bad, why in cases:
            with self.subTest(line=bad):
                self.write("# users\n" + good + bad)
                result = self.p.check(cfg)
                self.assertCheckFails(
                    result, "modules.passwd.file: %s:3: %s"
                    % (self.file, why))
        # Plaintext is fine once allowed.
        self.write(good + "bob@example.test:{PLAIN}secret\n")
        self.assertCheckOk(self.p.check(
            self.passwd_config(allow_plaintext=True)))

    def test_aliases_and_config_errors(self):
        self.add("alice@example.test", "pw")
        aliases = self.p.path("aliases")
        with open(aliases, "w") as f:
            f.write("team@example.test: alice@example.test\n"
                    "loop1@example.test: loop2@example.test\n"
                    "loop2@example.test: loop1@example.test\n")
        result = self.p.check(self.passwd_config(aliases=aliases))
        self.assertCheckFails(
            result, "modules.passwd.aliases: %s:2: alias loop: "
            "loop1@example.test -> loop2@example.test -> loop1@example.test"
            % aliases)
        with open(aliases, "w") as f:
            f.write("team@example.test: alice@example.test\n")
        self.assertCheckOk(self.p.check(self.passwd_config(
            aliases=aliases,
            catch_all={"example.test": "postmaster@example.test"},
            domains=["example.org"], recipient_delimiter="+-",
            reload_check="250ms")))
        self.assertCheckFails(
            self.p.check(self.passwd_config(catch_all={"x.test": "nobody"})),
            "modules.passwd.catch_all.x.test:")
        self.assertCheckFails(self.p.check(self.passwd_config(bogus=1)),
                              'unknown key "bogus"')
        self.assertCheckFails(
            self.p.check(self.p.config(modules={"passwd": {}})),
            "modules.passwd")

    def test_server_loads_file_and_sighup_rejects_a_broken_one(self):
        self.add("alice@example.test", "pw")
        self.add("bob@example.test", "pw")
        aliases = self.p.path("aliases")
        with open(aliases, "w") as f:
            f.write("team@example.test: alice@example.test, "
                    "bob@example.test\n")
        self.p.write_config(self.passwd_config(aliases=aliases))
        self.p.start(wait_log="worker 0 started")
        self.p.wait_log("passwd: loaded %s: 2 users, 1 aliases, 1 domains"
                        % self.file)

        mark = self.p.log_mark()
        with open(self.file, "a") as f:
            f.write("broken\n")
        self.p.signal(signal.SIGHUP)
        text = self.p.wait_log("reload: configuration rejected", since=mark)
        self.assertIn("modules.passwd.file: %s:3: missing ':' after the "
                      "user name" % self.file, text)
        self.assertTrue(self.p.running())

        mark = self.p.log_mark()
        self.assertExit(self.ctl("user", "add", "carol@example.test",
                                 password="pw"), 1)
        with open(self.file) as f:
            lines = f.read().splitlines()
        self.write("\n".join(lines[:-1]) + "\n")
        self.add("carol@example.test", "pw")
        self.p.signal(signal.SIGHUP)
        self.p.wait_log("reload: generation 2 accepted", since=mark)
        self.p.wait_log("passwd: loaded %s: 3 users" % self.file,
                        since=mark)
        self.assertEqual(self.p.stop(), 0)

    def test_foreground_single_process(self):
        self.add("alice@example.test", "pw")
        self.p.write_config(self.passwd_config())
        self.p.start(foreground=True,
                     wait_log="passwd: loaded %s: 1 users" % self.file)
        self.assertEqual(self.p.stop(), 0)


if __name__ == "__main__":
    unittest.main()
