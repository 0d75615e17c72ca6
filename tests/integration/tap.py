#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run the unittest tests of one file and report them as TAP.

usage: tap.py TEST_FILE.py

Prints `1..N`, then `ok I - name`, `not ok I - name` (followed by `# `
lines with the traceback) or `ok I - name # SKIP reason` per test, as
each test ends. Anything the tests print goes to stderr so that stdout
stays pure TAP. Exits 1 if any test failed.
"""

import importlib.util
import os
import sys
import traceback
import unittest


def flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from flatten(item)
        else:
            yield item


class TapResult(unittest.TestResult):
    """Collects each test's outcome and prints its TAP line at its end."""

    def __init__(self, out, names):
        super().__init__()
        self.out = out
        self.names = names        # test id -> display name
        self.number = 0
        self.reported = set()
        self.any_failed = False
        self.pending = {}         # test id -> list of (status, text)
        self.orphans = []         # errors of fixtures (setUpClass, ...)

    def emit(self, line):
        self.out.write(line + "\n")
        self.out.flush()

    def note(self, test, status, text=""):
        self.pending.setdefault(test.id(), []).append((status, text))

    def startTest(self, test):
        super().startTest(test)
        self.pending[test.id()] = []
        # Names the culprit when a hanging test gets the run killed.
        self.emit("# start %s" % self.names.get(test.id(), test.id()))

    def addSuccess(self, test):
        super().addSuccess(test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.note(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        if test.id() not in self.names:
            # setUpClass/tearDownModule etc.: not a test of its own.
            self.orphans.append((test.id(),
                                 "".join(traceback.format_exception(*err))))
            return
        self.note(test, "fail", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.note(test, "skip", reason)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.note(test, "fail", "unexpected success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self.note(test, "fail", "%s\n%s" % (
                subtest.id(), self._exc_info_to_string(err, test)))

    def stopTest(self, test):
        super().stopTest(test)
        self.report(test.id(), self.pending.pop(test.id(), []))

    def report(self, test_id, notes):
        if test_id in self.reported:
            return
        self.reported.add(test_id)
        self.number += 1
        name = self.names.get(test_id, test_id)
        fails = [text for status, text in notes if status == "fail"]
        skips = [text for status, text in notes if status == "skip"]
        if fails:
            self.any_failed = True
            self.emit("not ok %d - %s" % (self.number, name))
            for text in fails:
                for line in text.rstrip("\n").splitlines():
                    self.emit("# " + line)
        elif skips:
            reason = " ".join(skips[0].split())
            self.emit("ok %d - %s # SKIP %s" % (self.number, name, reason))
        else:
            self.emit("ok %d - %s" % (self.number, name))


def load(path):
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return unittest.defaultTestLoader.loadTestsFromModule(module)


def display_names(tests):
    """Method names, with the class in front where a name repeats."""
    methods = [t.id().rsplit(".", 1)[-1] for t in tests]
    names = {}
    for test, method in zip(tests, methods):
        if methods.count(method) > 1:
            method = ".".join(test.id().rsplit(".", 2)[-2:])
        names[test.id()] = method
    return names


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: tap.py TEST_FILE.py\n")
        return 2
    out = sys.stdout
    # Whatever tests print must not corrupt the TAP stream.
    sys.stdout = sys.stderr
    try:
        suite = load(argv[1])
    except Exception:
        out.write("1..1\nnot ok 1 - import %s\n" % argv[1])
        for line in traceback.format_exc().splitlines():
            out.write("# " + line + "\n")
        out.flush()
        return 1
    tests = list(flatten(suite))
    names = display_names(tests)
    out.write("1..%d\n" % len(tests))
    out.flush()
    result = TapResult(out, names)
    suite.run(result)
    # Tests that never ran because a class or module fixture failed.
    fixture_errors = "\n".join("%s\n%s" % o for o in result.orphans)
    for test in tests:
        if test.id() not in result.reported:
            result.report(test.id(), [("fail", fixture_errors or
                                       "test did not run")])
    if result.orphans and not result.any_failed:
        # A failing tearDownClass: attach it to the run's outcome.
        for line in fixture_errors.splitlines():
            out.write("# " + line + "\n")
        result.any_failed = True
    out.flush()
    return 1 if result.any_failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
