#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SMTP benchmark: smtp-source against Petrel and against a private Postfix
# (same domain, Maildir delivery, same messages) in one run; messages/s at
# 1, 10 and 100 sessions with 2 KB and 100 KB messages, the ratio, and the
# memory of idle connections. Not part of CI. Needs root and the postfix
# package (its system instance is never started).
#
# usage: bench/run-smtp.sh [BUILD_DIR] [smtp_bench.py options...]
#   BUILD_DIR  meson build directory (default: build)
#   options    --scale F (message counts), --idle N (default 1000),
#              --rounds N (default 3: medians of alternating runs),
#              --reuse (several messages per session), --workers N, --keep
# BENCH_DIR    where both servers write (default /var/tmp; pick the disk)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$src/$build" ;; esac

if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
	echo "run-smtp.sh: smtp-source missing; install postfix without" \
		"configuring it:" >&2
	echo "  echo 'postfix postfix/main_mailer_type select No" \
		"configuration' | debconf-set-selections" >&2
	echo "  DEBIAN_FRONTEND=noninteractive apt-get install -y postfix" >&2
	exit 1
fi

ninja -C "$build" petrel modules/smtp.so modules/maildir.so \
	modules/passwd.so >/dev/null
exec python3 "$src/bench/smtp_bench.py" --build "$build" "$@"
