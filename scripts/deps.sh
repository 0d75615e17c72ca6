#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install the Debian 12 packages Petrel needs: deps.sh [build|test|all].
set -euo pipefail

# To compile the server, its modules and the unit tests.
BUILD_PKGS=(
	meson ninja-build gcc pkg-config
	libjansson-dev libssl-dev libpcre2-dev libcmocka-dev
	libc-ares-dev libsqlite3-dev libcrypt-dev libidn2-dev zlib1g-dev
	openssl python3
)

# To run the integration tests (real clients talking to a real server).
# >>> Extend here as later features need more tools (postfix, dnsmasq,
# >>> ...); keep one package per word, nothing else in this list.
# postfix: smtp-source/smtp-sink for load tests and a peer MX (the system
# instance is never started); dnsmasq-base: a DNS server the tests start on
# a loopback port; python3-dkim: DKIM interop; publicsuffix: DMARC's
# organizational domains; fetchmail: a real POP3 client.
TEST_PKGS=(
	swaks curl openssl postfix dnsmasq-base python3-dkim publicsuffix
	fetchmail
)

usage() {
	echo "usage: $0 [build|test|all]" >&2
	exit 2
}

want=()
case "${1:-all}" in
build) want=("${BUILD_PKGS[@]}") ;;
test) want=("${TEST_PKGS[@]}") ;;
all) want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
*) usage ;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: no dpkg-query (not Debian?); make sure these are" \
		"installed: ${want[*]}" >&2
	exit 0
fi

missing=()
for pkg in "${want[@]}"; do
	# Skip duplicates (openssl is in both lists).
	case " ${missing[*]} " in *" $pkg "*) continue ;; esac
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null ||
		true)
	if [[ "$status" != ii* ]]; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root (e.g. sudo $0 ${1:-all}) or install them:" \
		"apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Postfix would otherwise ask how to configure the system instance; the
# tests only use its tools and private instances.
if command -v debconf-set-selections >/dev/null 2>&1; then
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
fi
apt-get -qq update
apt-get -qq install -y --no-install-recommends "${missing[@]}" >/dev/null
