#!/usr/bin/env bash
# Checks that kakehi works installed as operators install it: packs the project
# (npm pack), installs the tarball globally into a fresh prefix, and runs the
# installed command from there: --version, every command's --help (each loads
# its own modules), `validate` on the shipped config.example.yaml, the systemd
# units present, and `kakehi run` on the embedded default until it answers on
# 127.0.0.1:8080. A file missing from package.json "files" fails one of these.
# Usage: scripts/check-package.sh [--prebuilt]
#   --prebuilt  pack dist/ as it is, without the prepare build (the caller has
#               just built it: npm test does)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
self=$root/scripts/check-package.sh

fail() {
  echo "check-package: $*" >&2
  exit 1
}

# Internal step, run inside a network namespace where one exists (below):
# start the embedded default, fetch its page, stop it with SIGTERM.
if [ "${1:-}" = "__serve-default" ]; then
  kakehi=$2
  # Loopback may start down in a fresh namespace; it is up on the host.
  ip link set lo up 2>/dev/null || true
  # Its working directory takes the default command socket (./kakehi.sock).
  cd "$(mktemp -d)"
  "$kakehi" run >stdout.log 2>stderr.log &
  pid=$!
  code=1
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    # node, not curl: the one tool sure to be here. Prints the body, then the status.
    if body=$(node -e "fetch('http://127.0.0.1:8080/', { signal: AbortSignal.timeout(2000) })
        .then(async (r) => console.log(await r.text() + '\\n' + r.status), () => process.exit(1))"); then
      status=${body##*$'\n'}
      if [ "$status" = 404 ] && grep -q 'kakehi is running' <<<"$body"; then
        code=0
        echo "embedded default: 127.0.0.1:8080 answered 404 with the welcome page"
      else
        echo "embedded default: 127.0.0.1:8080 answered $status without the welcome page:" >&2
        echo "$body" >&2
      fi
      break
    fi
    sleep 0.2
  done
  if kill -TERM "$pid" 2>/dev/null; then
    wait "$pid" && stopped=0 || stopped=$?
    [ "$stopped" = 0 ] || {
      echo "embedded default: kakehi exited $stopped after SIGTERM" >&2
      code=1
    }
  else
    echo "embedded default: kakehi exited before answering" >&2
  fi
  # The process log is for machines: every line JSON, none plain (a person at a
  # terminal gets plain sentences; this stderr is a file).
  if ! node -e "for (const l of require('fs').readFileSync('stderr.log','utf8').split('\\n').filter(Boolean)) JSON.parse(l)" 2>/dev/null; then
    echo "embedded default: a line of the process log is not JSON:" >&2
    code=1
  fi
  [ "$code" = 0 ] || cat stderr.log >&2
  rm -rf "$PWD"
  exit "$code"
fi

pack_flags=()
case "${1:-}" in
  --prebuilt) pack_flags=(--ignore-scripts) ;;
  '') ;;
  *) fail "unknown option $1 (usage: scripts/check-package.sh [--prebuilt])" ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "npm pack ${pack_flags[*]}"
(cd "$root" && npm pack --silent --pack-destination "$tmp" "${pack_flags[@]}" >/dev/null)
tarball=$(ls "$tmp"/kakehi-*.tgz)
echo "$(basename "$tarball"): $(tar -tzf "$tarball" | wc -l) files, $(du -k "$tarball" | cut -f1) KiB"

# From $tmp, so that nothing of the repository (its .npmrc, its node_modules) is
# used: the dependencies come from package.json as a user's install gets them
# (the npm cache first).
prefix=$tmp/prefix
(cd "$tmp" && npm install -g --prefix "$prefix" --prefer-offline --no-audit --no-fund --loglevel=error \
  "$tarball" >/dev/null)
kakehi=$prefix/bin/kakehi
installed=$prefix/lib/node_modules/kakehi
[ -x "$kakehi" ] || fail "no executable $kakehi after the global install"
cd "$tmp"

version=$(node -p "require('$root/package.json').version")
out=$("$kakehi" --version) || fail "kakehi --version failed"
[ "$out" = "kakehi $version" ] || fail "kakehi --version printed '$out', not 'kakehi $version'"
echo "$out"

for cmd in run validate ctl pki prometheus pulsar schema; do
  "$kakehi" "$cmd" --help >/dev/null || fail "kakehi $cmd --help failed"
done
"$kakehi" schema >/dev/null || fail "kakehi schema failed"
echo "--help of every command: ok"

[ -f "$installed/config.example.yaml" ] || fail "config.example.yaml is not in the package"
# docs/operations.md copies the units from the installed package.
for unit in "$root"/packaging/systemd/*.service; do
  [ -f "$installed/packaging/systemd/$(basename "$unit")" ] || fail "$(basename "$unit") is not in the package"
done
"$kakehi" validate -c "$installed/config.example.yaml" || fail "kakehi validate on the shipped config.example.yaml failed"

# The embedded default listens on 127.0.0.1:8080, which something else on this
# machine may hold (it has no setting). In a network namespace of its own
# (unshare, as an unprivileged user namespace) the port is always free;
# without one, the host's port is used if it is free.
if unshare -rn true 2>/dev/null; then
  unshare -rn bash "$self" __serve-default "$kakehi"
elif ! (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  bash "$self" __serve-default "$kakehi"
else
  fail "127.0.0.1:8080 is taken and no network namespace can be made (unshare -rn): cannot run the embedded default"
fi
