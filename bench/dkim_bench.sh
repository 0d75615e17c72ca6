#!/bin/sh
# SPDX-License-Identifier: MIT
# DKIM sign and verify per second, Petrel against dkimpy, same run, same
# messages, same keys.
#
# usage: bench/dkim_bench.sh [BUILD_DIR] [SECONDS]
#   BUILD_DIR  where tests/unit/dkim_tool was built (default: build)
#   SECONDS    time per measurement (default: 2)
#
# Petrel's side is tests/dkim/dkim_tool (the dkim module's files, in one
# process, one thread); dkimpy's side is Debian's python3-dkim in one
# Python process. Both verify with the key record in memory (no DNS), so
# the figures are canonicalization + hashing + the public-key operation.
# Both count operations per second of CPU time of their one thread, so
# that other load on the machine does not skew the ratio.
# Messages of 2 KB and 100 KB, rsa-sha256 (2048 bits) and ed25519-sha256,
# relaxed/relaxed. The ratio is Petrel / dkimpy.
set -eu

BUILD=${1:-build}
SECONDS_EACH=${2:-2}
TOOL=${DKIM_TOOL:-$BUILD/tests/unit/dkim_tool}
PYTHON=${PYTHON:-/usr/bin/python3}

if [ ! -x "$TOOL" ]; then
	echo "dkim_bench: $TOOL not found (ninja -C $BUILD tests/unit/dkim_tool)" >&2
	exit 1
fi
if ! "$PYTHON" -c 'import dkim, nacl' 2>/dev/null; then
	echo "dkim_bench: dkimpy missing (apt-get install python3-dkim python3-nacl)" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
	-out "$tmp/rsa.pem" 2>/dev/null
openssl genpkey -algorithm ED25519 -out "$tmp/ed.pem"
rsa_pub=$(openssl pkey -in "$tmp/rsa.pem" -pubout -outform DER | base64 -w0)
ed_pub=$(openssl pkey -in "$tmp/ed.pem" -pubout -outform DER | tail -c 32 |
	base64 -w0)
openssl pkey -in "$tmp/ed.pem" -outform DER | tail -c 32 | base64 -w0 \
	>"$tmp/ed.seed"
rsa_rec="v=DKIM1; k=rsa; p=$rsa_pub"
ed_rec="v=DKIM1; k=ed25519; p=$ed_pub"

# Two messages: mail-like text, CRLF line ends.
"$PYTHON" - "$tmp" <<'EOF'
import sys
head = ("From: Alice Example <alice@example.org>\r\n"
        "To: Bob Example <bob@example.net>\r\n"
        "Subject: The quarterly figures, as promised\r\n"
        "Date: Mon, 01 Jan 2024 12:00:00 +0000\r\n"
        "Message-ID: <bench.1@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n").encode()
line = b"The  quick brown fox jumps over the lazy dog,  again and again.\r\n"
for name, size in (("2k", 2048), ("100k", 102400)):
    body = line * ((size - len(head)) // len(line) + 1)
    with open("%s/m%s.eml" % (sys.argv[1], name), "wb") as f:
        f.write((head + body)[:size - 2] + b"\r\n")
EOF

petrel() { # petrel sign|verify SIZE ALG
	msg="$tmp/m$2.eml"
	if [ "$3" = rsa ]; then key="$tmp/rsa.pem" sel=r1 rec="$rsa_rec"
	else key="$tmp/ed.pem" sel=e1 rec="$ed_rec"; fi
	if [ "$1" = sign ]; then
		"$TOOL" bench-sign "$msg" --domain example.org --key "$key" \
			--selector "$sel" --seconds "$SECONDS_EACH"
	else
		"$TOOL" sign "$msg" --domain example.org --key "$key" \
			--selector "$sel" >"$tmp/signed-$2-$3.eml"
		"$TOOL" bench-verify "$tmp/signed-$2-$3.eml" --record "$rec" \
			--seconds "$SECONDS_EACH"
	fi
}

dkimpy() { # dkimpy sign|verify SIZE ALG
	"$PYTHON" - "$tmp" "$1" "$2" "$3" "$SECONDS_EACH" "$rsa_rec" \
		"$ed_rec" <<'EOF'
import sys, time, dkim
tmp, op, size, alg, secs, rsa_rec, ed_rec = sys.argv[1:]
msg = open("%s/m%s.eml" % (tmp, size), "rb").read()
if alg == "rsa":
    key, sel, a, rec = open(tmp + "/rsa.pem", "rb").read(), b"r1", \
        b"rsa-sha256", rsa_rec
else:
    key, sel, a, rec = open(tmp + "/ed.seed", "rb").read(), b"e1", \
        b"ed25519-sha256", ed_rec
headers = [b"from", b"to", b"subject", b"date", b"message-id",
           b"mime-version", b"content-type"]
def sign():
    return dkim.sign(msg, sel, b"example.org", key, signature_algorithm=a,
                     canonicalize=(b"relaxed", b"relaxed"),
                     include_headers=headers) + msg
signed = sign()
dns = lambda name, timeout=5: rec.encode()
def verify():
    if not dkim.verify(signed, dnsfunc=dns):
        raise SystemExit("dkimpy: verification failed")
fn = sign if op == "sign" else verify
n, start = 0, time.process_time()
while time.process_time() - start < float(secs):
    fn()
    n += 1
print("%.1f" % (n / (time.process_time() - start)))
EOF
}

printf '%-7s %-5s %-8s %12s %12s %8s\n' op size alg petrel/s dkimpy/s ratio
for op in sign verify; do
	for size in 2k 100k; do
		for alg in rsa ed25519; do
			p=$(petrel "$op" "$size" "$alg")
			d=$(dkimpy "$op" "$size" "$alg")
			r=$(awk -v p="$p" -v d="$d" \
				'BEGIN { printf "%.1f", (d > 0 ? p / d : 0) }')
			printf '%-7s %-5s %-8s %12s %12s %7sx\n' \
				"$op" "$size" "$alg" "$p" "$d" "$r"
		done
	done
done
