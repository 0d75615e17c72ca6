#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# POP3 benchmark: Petrel against a private Dovecot (same Maildirs, same
# passwd-file) in one run: RETR throughput (MB/s) and logins/s with 50
# concurrent clients, with and without TLS, and the Petrel/Dovecot ratio
# of each. Not part of CI. Needs root and the dovecot-pop3d package (its
# system instance is never started).
#
# usage: bench/run-pop3.sh [BUILD_DIR] [pop3_bench.py options...]
#   BUILD_DIR  meson build directory (default: build)
#   options    --users N (50), --messages N (20), --size BYTES (102400),
#              --duration S (8), --passes N (10), --repeat N (3), --workers N,
#              --only petrel|dovecot, --keep
# BENCH_DIR    where the mail is written (default /var/tmp; pick the disk)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$src/$build" ;; esac

if ! command -v dovecot >/dev/null && [ ! -x /usr/sbin/dovecot ]; then
	echo "run-pop3.sh: dovecot missing; install it (the system instance" \
		"is not started by the benchmark):" >&2
	echo "  DEBIAN_FRONTEND=noninteractive apt-get install -y" \
		"dovecot-pop3d" >&2
	exit 1
fi

ninja -C "$build" petrel modules/pop3.so modules/maildir.so \
	modules/passwd.so >/dev/null
exec python3 "$src/bench/pop3_bench.py" --build "$build" "$@"
