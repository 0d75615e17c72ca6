#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the libFuzzer harnesses of the SMTP parsers (not part of CI).
# Usage: tests/fuzz/build.sh [OUTDIR]   (default: build-fuzz)
# Run one:  build-fuzz/fuzz_smtp_data -max_total_time=60
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/build-fuzz}
CC=${CC:-clang}
SMTP=$ROOT/modules/smtp
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -I$ROOT/include -I$SMTP"
# The parsers need only pools and errors from the core.
CORE="$ROOT/core/pool.c $ROOT/core/error.c"

mkdir -p "$OUT"
build() {
	name=$1
	shift
	# shellcheck disable=SC2086
	$CC $CFLAGS -o "$OUT/$name" "$ROOT/tests/fuzz/$name.c" "$@" $CORE
	echo "built $OUT/$name"
}

build fuzz_smtp_command "$SMTP/smtp_parse.c"
build fuzz_smtp_addr "$SMTP/smtp_addr.c" "$SMTP/smtp_parse.c"
build fuzz_smtp_params "$SMTP/smtp_params.c"
build fuzz_smtp_data "$SMTP/smtp_data.c"
build fuzz_smtp_sasl "$SMTP/smtp_sasl.c" "$ROOT/core/sasl.c"
