#!/bin/sh
# Installs what the PKI connector's ACME end-to-end test needs: Debian's pebble
# (ACME test server, with pebble-challtestsrv) and certbot. Idempotent: does
# nothing when the binaries are already there. Needs root (apt-get).
set -eu
if command -v pebble >/dev/null 2>&1 && command -v pebble-challtestsrv >/dev/null 2>&1 \
  && command -v certbot >/dev/null 2>&1; then
  echo "pebble, pebble-challtestsrv and certbot are installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends pebble certbot
command -v pebble && command -v pebble-challtestsrv && command -v certbot
