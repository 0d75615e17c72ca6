#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Filter chain cost: SMTP throughput with no filters against a chain of 20
# filter_regex rules plus filter_dnsbl (two lists served by dnsmasq), in
# one run, interleaved rounds; prints both rates, the CPU per message and
# the ratios (target: the chain costs less than 15 %). Not part of CI.
# Uses smtp-source (package postfix) when it is there, else a Python
# client.
#
# usage: bench/filter_bench.sh [BUILD_DIR] [filter_bench.py options...]
#   BUILD_DIR  meson build directory (default: build)
#   options    --messages N (1500), --sessions N (20), --size BYTES (4096),
#              --workers N (2), --rounds N (11), --storage maildir|null,
#              --target PERCENT (15), --no-soa, --python-client, --keep
# Prints per-round and median figures (throughput and CPU per message of
# the petrel processes) and a final PASS/FAIL line; exits 1 on FAIL.
# BENCH_DIR    scratch directory for both servers (default /var/tmp)
#
# To get smtp-source without configuring a Postfix:
#   echo "postfix postfix/main_mailer_type select No configuration" |
#       debconf-set-selections
#   DEBIAN_FRONTEND=noninteractive apt-get install -y postfix
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
[ $# -gt 0 ] && shift
case "$build" in /*) ;; *) build="$src/$build" ;; esac

if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
	echo "filter_bench.sh: smtp-source missing, using the Python client" >&2
fi
targets="petrel modules/smtp.so modules/maildir.so modules/passwd.so
	modules/filter_regex.so tests/modules/null_storage.so"
for m in filter_dnsbl resolver; do
	[ -d "$src/modules/$m" ] && targets="$targets modules/$m.so"
done
# shellcheck disable=SC2086
ninja -C "$build" $targets >/dev/null
exec python3 "$src/bench/filter_bench.py" --build "$build" "$@"
