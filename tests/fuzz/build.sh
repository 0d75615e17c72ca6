#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the libFuzzer harnesses of the parsers of hostile input (not part
# of CI).
# Usage: tests/fuzz/build.sh [OUTDIR]   (default: build-fuzz)
# Run one:  build-fuzz/fuzz_smtp_data -max_total_time=60
# Harnesses of DNS-derived input (the first byte of an input is a flag):
#   fuzz_resolver_parse  DNS responses of every type into answers and cache
#   fuzz_spf_record      SPF records, macro expansion, Received-SPF field
#   fuzz_spf_eval        the SPF evaluator answered from the input (fake DNS)
#   fuzz_dmarc_record    DMARC records, From domain, Punycode, PSL, trace
#   fuzz_dkim_tags       DKIM tag lists, key records, signatures, base64, canon
#   fuzz_smtpc_reply     relay client: server replies, EHLO, xtext, DATA dots
# Harnesses of message, mailbox and spool input:
#   fuzz_mime            MIME walker cut anywhere, base64/QP/Latin-1 decoders
#   fuzz_rfc2047         RFC 2047 encoded-words, output bounds and cutting
#   fuzz_pop3_parse      POP3 command lines, arguments, RETR/TOP dot-stuffing
#   fuzz_queue_record    spool records, envelopes, message files, state logs,
#                        petrelctl requests, DSN status and composition
#   fuzz_passwd          users/aliases files, tables built, lookups
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

QUEUE=$ROOT/modules/queue
build fuzz_smtpc_reply -I"$QUEUE" "$QUEUE/smtpc_reply.c" \
	"$QUEUE/smtpc_data.c"

RES=$ROOT/modules/resolver
build fuzz_resolver_parse -I"$RES" "$RES/resolver_parse.c" \
	"$RES/resolver_cache.c"

SPF=$ROOT/modules/spf
build fuzz_spf_record -I"$SPF" "$SPF/spf_record.c" "$SPF/spf_macro.c" \
	"$SPF/spf_header.c"
build fuzz_spf_eval -I"$SPF" "$SPF/spf_eval.c" "$SPF/spf_answer.c" \
	"$SPF/spf_record.c" "$SPF/spf_macro.c" "$SPF/spf_header.c"

DMARC=$ROOT/modules/dmarc
build fuzz_dmarc_record -I"$DMARC" "$DMARC/dmarc_record.c" \
	"$DMARC/dmarc_from.c" "$DMARC/dmarc_psl.c" "$DMARC/dmarc_policy.c"

# The dkim library needs no core, only OpenSSL.
DKIM=$ROOT/modules/dkim
build fuzz_dkim_tags -I"$DKIM" "$DKIM/dkim_tags.c" "$DKIM/dkim_hash.c" \
	"$DKIM/dkim_key.c" "$DKIM/dkim_canon.c" "$DKIM/dkim_verify.c" \
	"$DKIM/dkim_sign.c" -lcrypto

# The MIME walker needs no PCRE2: regex_mime.c and regex_2047.c are pure.
REGEX=$ROOT/modules/filter_regex
build fuzz_mime -I"$REGEX" "$REGEX/regex_mime.c" "$ROOT/core/sasl.c"
build fuzz_rfc2047 -I"$REGEX" "$REGEX/regex_2047.c" "$REGEX/regex_mime.c"

# pop3_retr.c holds the dot-stuffing; the harness stubs its session calls.
POP3=$ROOT/modules/pop3
build fuzz_pop3_parse -I"$POP3" "$POP3/pop3_parse.c" "$POP3/pop3_retr.c"

build fuzz_queue_record -I"$QUEUE" "$QUEUE/queue_record.c" \
	"$QUEUE/queue_spool.c" "$QUEUE/queue_state.c" "$QUEUE/queue_write.c" \
	"$QUEUE/queue_dsn.c"

PASSWD=$ROOT/modules/passwd
build fuzz_passwd -I"$PASSWD" "$PASSWD/passwd_file.c" \
	"$PASSWD/passwd_crypt.c" "$PASSWD/passwd_db.c" -lcrypt
