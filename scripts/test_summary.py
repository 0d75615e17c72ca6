#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count test results of every build's meson test log; print one summary.

usage: test_summary.py [--build-failed WHAT]... [BUILD_DIR]...

Each BUILD_DIR/meson-logs/testlog.json holds one JSON object per test
(name, result, stdout, ...). A test that printed TAP counts each of its
`ok`/`not ok` lines; one that printed none counts as a single test with
its meson result. Every --build-failed names a build step that failed
and counts as one failed test. The last line printed is always
`N passed, N failed, N skipped`; the exit status is 1 if anything failed.
"""

import argparse
import glob
import json
import os
import re
import sys

TAP_RESULT = re.compile(r"^\s*(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$")
TAP_PLAN = re.compile(r"^\s*1\.\.(\d+)")
GOOD_RESULTS = ("OK", "EXPECTEDFAIL")
SKIP_RESULTS = ("SKIP",)


class Totals:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []  # "build/test/case" strings

    def fail(self, where, count=1):
        self.failed += count
        self.failures.append(where)


def directive(description):
    """Return ("skip"|"todo"|None) for a TAP description."""
    if "#" not in description:
        return None
    text = description.split("#", 1)[1].strip().lower()
    if text.startswith("skip"):
        return "skip"
    if text.startswith("todo"):
        return "todo"
    return None


def case_name(description, number):
    name = description.split("#", 1)[0].strip()
    return name or "#%s" % number


def short_name(name):
    """"petrel:unit / test_conf" -> "unit/test_conf"."""
    m = re.match(r"^[^:/ ]+:(\S+) / (.+)$", name)
    return "%s/%s" % m.groups() if m else name


def count_test(totals, build, test):
    name = short_name(test.get("name", "?"))
    result = str(test.get("result", "ERROR")).upper()
    stdout = test.get("stdout") or ""
    seen = 0
    not_ok = 0
    plan = None
    for line in stdout.splitlines():
        m = TAP_PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = TAP_RESULT.match(line)
        if not m:
            continue
        seen += 1
        status, number, description = m.groups()
        kind = directive(description)
        if kind == "skip" or (kind == "todo" and status == "not ok"):
            totals.skipped += 1
        elif status == "ok":
            totals.passed += 1
        else:
            not_ok += 1
            totals.fail("%s/%s/%s" % (build, name,
                                      case_name(description, number)))
    if seen == 0:
        if result in GOOD_RESULTS:
            totals.passed += 1
        elif result in SKIP_RESULTS:
            totals.skipped += 1
        else:
            totals.fail("%s/%s (%s)" % (build, name, result))
        return
    # Results that never came (crash, timeout) count as failures too.
    if plan is not None and plan > seen:
        missing = plan - seen
        totals.fail("%s/%s (%s: %d planned result%s missing)"
                    % (build, name, result, missing,
                       "s" if missing > 1 else ""), missing)
    elif result not in GOOD_RESULTS + SKIP_RESULTS and not_ok == 0:
        totals.fail("%s/%s (%s)" % (build, name, result))


def count_build(totals, build_dir):
    build = os.path.basename(os.path.normpath(build_dir))
    log = os.path.join(build_dir, "meson-logs", "testlog.json")
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError as e:
        totals.fail("%s (no test log: %s)" % (build, e.strerror))
        return
    tests = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        try:
            test = json.loads(line)
        except ValueError:
            totals.fail("%s (unreadable test log line)" % build)
            continue
        tests += 1
        count_test(totals, build, test)
    if tests == 0:
        totals.fail("%s (test log lists no test)" % build)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-failed", action="append", default=[],
                        metavar="WHAT", help="a failed build step")
    parser.add_argument("build_dirs", nargs="*", metavar="BUILD_DIR")
    args = parser.parse_args(argv)

    dirs = args.build_dirs
    if not dirs and not args.build_failed:
        dirs = sorted(os.path.dirname(os.path.dirname(p)) for p in
                      glob.glob("build*/meson-logs/testlog.json"))
    totals = Totals()
    for what in args.build_failed:
        totals.fail("%s (build failed)" % what)
    for d in dirs:
        count_build(totals, d)

    for where in totals.failures:
        print("FAILED: %s" % where)
    # Must stay the very last line: CI reads it.
    print("%d passed, %d failed, %d skipped"
          % (totals.passed, totals.failed, totals.skipped))
    sys.stdout.flush()
    return 1 if totals.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
