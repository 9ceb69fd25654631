#!/usr/bin/env bash
# Debian packages the tests drive as real third-party tools, installed only
# when missing: prometheus and promtool (metrics connector), testssl (TLS
# policy gauge), openssl (test certificates), pebble and certbot (ACME flow),
# systemd-analyze (checks the units in packaging/systemd; no running systemd),
# haproxy (a real PROXY-protocol peer), systemd-notify (main's readiness and new
# pid, ctl upgrade --main).
# varnishtest (from varnish: broken backends scripted to the byte) and
# slowhttptest (slow clients), for test/hostile; curl (a real h2c client);
# chromium (the web console's browser tests, driven by puppeteer-core);
# h2load (from nghttp2-client: many HTTP/2 streams on few connections).
# Usage: scripts/debian-tools.sh [command...]  (default: every tool)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

declare -A PACKAGE=(
  [promtool]=prometheus
  [prometheus]=prometheus
  [testssl]=testssl.sh
  [openssl]=openssl
  [pebble]=pebble
  [certbot]=certbot
  [systemd-analyze]=systemd
  [haproxy]=haproxy
  [systemd-notify]=systemd
  [varnishtest]=varnish
  [slowhttptest]=slowhttptest
  [curl]=curl
  [chromium]=chromium
  [h2load]=nghttp2-client
)

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=("${!PACKAGE[@]}")
missing=()
for cmd in "${wanted[@]}"; do
  pkg=${PACKAGE[$cmd]:-}
  [ -n "$pkg" ] || { echo "debian-tools.sh: unknown tool $cmd" >&2; exit 2; }
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
# Unique package names, in a stable order.
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "installing ${packages[*]} (apt-get)" >&2
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
