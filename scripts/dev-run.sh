#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build Petrel and run it in the foreground with conf/petrel.json.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/deps.sh build

# Configure once; afterwards ninja re-runs meson by itself when a
# meson.build changes. --reconfigure picks up new options; --wipe recovers
# a build dir made by another meson version.
if [ -f build/meson-private/coredata.dat ]; then
	meson setup --reconfigure build >/dev/null ||
		meson setup --wipe build
else
	meson setup build
fi
ninja -C build

mkdir -p var/state var/mail var/tls

if [ ! -f var/tls/cert.pem ] || [ ! -f var/tls/key.pem ]; then
	echo "dev-run.sh: creating a self-signed certificate in var/tls" >&2
	(
		umask 077
		openssl req -x509 -newkey ec \
			-pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
			-subj "/CN=localhost" \
			-addext "subjectAltName=DNS:localhost,DNS:mail.example.test" \
			-keyout var/tls/key.pem -out var/tls/cert.pem 2>/dev/null
	)
	chmod 0644 var/tls/cert.pem
fi
chmod 0600 var/tls/key.pem

# A development user so that SMTP AUTH and POP3 work at once:
# dev@example.test, password "petrel-dev" (change it with
# build/tools/petrelctl -f var/users.passwd user passwd dev@example.test).
if [ ! -f var/users.passwd ]; then
	echo "dev-run.sh: creating var/users.passwd with dev@example.test" >&2
	printf 'petrel-dev\n' |
		build/tools/petrelctl -f var/users.passwd user add dev@example.test
fi

if [ "$(id -u)" -eq 0 ]; then
	# Workers never run as root: they switch to this user.
	if ! id -u petrel >/dev/null 2>&1; then
		useradd --system --no-create-home --shell /usr/sbin/nologin petrel
	fi
	chown -R petrel: var/state var/mail
	# Workers re-read the user file when it changes.
	chgrp petrel var/users.passwd
	chmod 0640 var/users.passwd
	# Only the master (root) reads the private key.
	chown root: var/tls/key.pem
fi

exec build/petrel -c conf/petrel.json -M build/modules
