#!/bin/sh
# What the PKI connector's ACME end-to-end test (test/pki/pki-acme.test.ts) needs:
# Debian's pebble (ACME test server; the package also ships pebble-challtestsrv),
# certbot and openssl. Idempotent: scripts/debian-tools.sh installs only what is
# missing (apt-get, so root). One list of Debian tools for the whole project.
set -eu
exec "$(dirname "$0")/../debian-tools.sh" pebble certbot openssl
