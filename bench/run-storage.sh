#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Storage benchmark: deliveries/s of each backend (2 KB and 100 KB, fsync
# on) beside the raw fsync rate of the same disk, measured in the same run.
#
# usage: bench/run-storage.sh [BUILD_DIR] [COUNT]
#   BUILD_DIR  meson build directory (default: build)
#   COUNT      messages per measurement (default: 300)
# BENCH_DIR    where to write (default: a new directory under /var/tmp, on
#              disk rather than tmpfs; put it on the disk you care about)
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-build}"
count="${2:-300}"
case "$build" in /*) ;; *) build="$src/$build" ;; esac

ninja -C "$build" tests/storage/storage_bench modules/maildir.so \
	modules/sqlite.so >/dev/null

scratch="$(mktemp -d "${BENCH_DIR:-/var/tmp}/petrel-bench.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

fs="$(df -PT "$scratch" | awk 'NR == 2 { print $2 " on " $7 }')"
echo "# petrel storage benchmark: $count messages per row, fsync on"
echo "# disk: $scratch ($fs)"
echo "# ratio = deliveries/s divided by raw loops/s (write 2 KB + fsync +"
echo "#   rename + directory fsync, the least a durable delivery costs)"
first=1
for backend in maildir sqlite; do
	case "$backend" in
	maildir) section='{"location": "mail/%d/%n/Maildir"}' ;;
	sqlite) section='{"database": "mail/mailstore.db"}' ;;
	esac
	mkdir -p "$scratch/$backend"
	"$build/tests/storage/storage_bench" "$build/modules/$backend.so" \
		"$section" "$scratch/$backend" "$count" 2>&1 |
		if [ "$first" = 1 ]; then cat; else tail -n +2; fi
	first=0
done
