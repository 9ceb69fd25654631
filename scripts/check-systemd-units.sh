#!/usr/bin/env bash
# Checks the systemd units in packaging/systemd without a running systemd:
# `systemd-analyze verify` (syntax, unknown keys, commands) and
# `systemd-analyze security --offline` (exposure score, at most 2.0 each).
# Prints each unit's exposure line; docs/operations.md records them.
# Usage: scripts/check-systemd-units.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
units=("$root"/packaging/systemd/*.service)
# Highest exposure accepted (systemd's scale ×10: 20 is 2.0, "OK"), so that a
# hardening setting lost in an edit fails here.
threshold=20

command -v systemd-analyze >/dev/null || {
  echo "check-systemd-units: systemd-analyze is missing (scripts/debian-tools.sh systemd-analyze)" >&2
  exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# verify refuses a unit whose ExecStart binary does not exist, and kakehi is
# not installed at /usr/local/bin here: check copies whose commands point to a
# stub instead. Only that path changes; every other line is checked as shipped.
printf '#!/bin/sh\nexit 0\n' >"$tmp/kakehi"
chmod +x "$tmp/kakehi"
for unit in "${units[@]}"; do
  grep -q '^ExecStart=/usr/local/bin/kakehi ' "$unit" || {
    echo "check-systemd-units: $unit: ExecStart is not /usr/local/bin/kakehi (docs/operations.md)" >&2
    exit 1
  }
  sed "s|/usr/local/bin/kakehi|$tmp/kakehi|g" "$unit" >"$tmp/$(basename "$unit")"
done

# Every kakehi unit one names (PartOf=, After=, WantedBy=…) must be shipped:
# systemd accepts a dangling name silently.
for name in $(grep -ho 'kakehi[a-z-]*\.service' "${units[@]}" | sort -u); do
  [ -f "$tmp/$name" ] || {
    echo "check-systemd-units: $name is named by a unit but not in packaging/systemd" >&2
    exit 1
  }
done

# verify exits 0 on an unknown key or a bad value (it only warns): any output
# is a failure. It looks up the units named by these in their directory.
out=$(cd "$tmp" && systemd-analyze verify --man=no ./*.service 2>&1) || {
  echo "$out" >&2
  echo "check-systemd-units: systemd-analyze verify failed" >&2
  exit 1
}
if [ -n "$out" ]; then
  echo "$out" >&2
  echo "check-systemd-units: systemd-analyze verify warned (above)" >&2
  exit 1
fi
echo "systemd-analyze verify: ${#units[@]} units, no warnings"

for unit in "${units[@]}"; do
  name=$(basename "$unit")
  if ! out=$(cd "$tmp" && systemd-analyze security --offline=true --no-pager --threshold=$threshold "./$name" 2>&1); then
    echo "$out" >&2
    echo "check-systemd-units: $name exposure above $((threshold / 10)).$((threshold % 10))" >&2
    exit 1
  fi
  grep 'Overall exposure level' <<<"$out"
done
