#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Relay benchmark: smtp-source submits 2 KB messages from a trusted network
# to Petrel and to a private Postfix in one run; each relays them to a local
# smtp-sink as its smarthost. Prints messages/s from submission until the
# sink has counted the last message, for both, and the ratio Petrel/Postfix
# (1,000 and 5,000 messages, 10 and 50 submission sessions). Not part of
# CI. Needs root and the postfix package (its system instance is never
# started).
#
# usage: bench/run-relay.sh [BUILD_DIR] [relay_bench.py options...]
#   BUILD_DIR  meson build directory (default: build)
#   options    --scale F (message counts), --runs 1000x10,5000x50,...,
#              --reuse (several messages per session), --workers N,
#              --only petrel|postfix, --keep
# BENCH_DIR    where both servers keep their queues (default /var/tmp)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$src/$build" ;; esac

for tool in smtp-source smtp-sink; do
	if ! command -v "$tool" >/dev/null && [ ! -x "/usr/sbin/$tool" ]; then
		echo "run-relay.sh: $tool missing; install postfix without" \
			"configuring it:" >&2
		echo "  echo 'postfix postfix/main_mailer_type select No" \
			"configuration' | debconf-set-selections" >&2
		echo "  DEBIAN_FRONTEND=noninteractive apt-get install -y" \
			"postfix" >&2
		exit 1
	fi
done

ninja -C "$build" petrel modules/smtp.so modules/maildir.so \
	modules/passwd.so modules/queue.so modules/resolver.so >/dev/null
exec python3 "$src/bench/relay_bench.py" --build "$build" "$@"
