#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build Petrel, run every test suite (normal and ASan+UBSan), summarize.
# Environment: PETREL_SKIP_ASAN=1 skips the sanitizer build.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/deps.sh all

failed=()   # --build-failed arguments for the summary
tested=()   # build dirs whose tests ran

# configure DIR [MESON_ARGS...]: set up or refresh a build dir.
configure() {
	local dir=$1
	shift
	if [ -f "$dir/meson-private/coredata.dat" ]; then
		meson setup --reconfigure "$dir" "$@" ||
			meson setup --wipe "$dir" "$@"
	else
		meson setup "$dir" "$@"
	fi
}

# build_and_test DIR [MESON_ARGS...]: build DIR and run all its tests.
build_and_test() {
	local dir=$1
	shift
	echo "=== $dir: configure" >&2
	rm -f "$dir/meson-logs/testlog.json"
	if ! configure "$dir" "$@"; then
		failed+=(--build-failed "$dir: meson setup")
		return 0
	fi
	echo "=== $dir: build" >&2
	if ! ninja -C "$dir"; then
		failed+=(--build-failed "$dir: ninja")
		return 0
	fi
	echo "=== $dir: test" >&2
	# Failing tests make meson test exit non-zero; the summary counts
	# them from the log, so that is not an error here.
	meson test -C "$dir" --print-errorlogs --num-processes 2 \
		"${test_args[@]}" || true
	tested+=("$dir")
}

test_args=()
build_and_test build

if [ "${PETREL_SKIP_ASAN:-0}" = 1 ]; then
	echo "=== build-asan: skipped (PETREL_SKIP_ASAN=1)" >&2
else
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	test_args=(--timeout-multiplier 2)
	build_and_test build-asan -Dsanitize=address,undefined
fi

echo "=== summary" >&2
exec python3 scripts/test_summary.py "${failed[@]}" "${tested[@]}"
