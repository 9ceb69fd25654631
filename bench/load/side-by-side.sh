#!/usr/bin/env bash
# Two kakehi builds compared at the same time, not in turns: both run pinned to core 0,
# each with its own wrk (and the one nginx backend) on core 1, and each round compares
# requests served per second of CPU the build used. Whatever else slows the machine
# during a round slows both alike, so the ratio holds still where req/s of runs in
# turns moved by ±30% on this shared machine (docs/performance.md, issue 15).
#
#   bash bench/load/side-by-side.sh old=/tmp/kakehi-old new=.
#   ARGS_new=--max-semi-space-size=4 bash bench/load/side-by-side.sh one=. four=.
#   ENV_off=KAKEHI_METRICS=off bash bench/load/side-by-side.sh on=. off=.
#
# Each argument is NAME=TREE, TREE a checkout with dist/ built (npm run build); the
# second is compared with the first. ARGS_<NAME>: extra node flags of that build
# (workers inherit them); ENV_<NAME>: VAR=value words set for it. Environment:
#   ROUNDS=5 measured rounds, after one unmeasured warm-up round
#   DURATION=5 seconds per round; WARMUP=4 seconds of the warm-up round
#   CONNECTIONS=32 wrk connections per build
#   RESULTS_DIR=bench/results/side-by-side-<UTC time>
# Prints per round each build's requests per CPU-second (and req/s), the ratio
# second ÷ first, and the median ratio. Exit codes: 0 done, 1 a run failed, 2 usage
# or missing tools. Every process it starts is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
if (($# != 2)) || [[ $1 != *=* || $2 != *=* ]]; then
  echo "usage: side-by-side.sh NAME=TREE NAME=TREE" >&2
  exit 2
fi
for tool in wrk nginx taskset setsid curl; do
  command -v "$tool" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null 2>&1 ||
    { echo "side-by-side.sh: $tool is missing (see bench/load/run.sh for the packages)" >&2; exit 2; }
done
export PATH="$PATH:/usr/sbin"
rounds=${ROUNDS:-5}
duration=${DURATION:-5}
warmup=${WARMUP:-4}
connections=${CONNECTIONS:-32}
out=${RESULTS_DIR:-$root/bench/results/side-by-side-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out/nginx-backend-tmp"
out=$(cd "$out" && pwd)
names=()
trees=()
for arg in "$@"; do
  name=${arg%%=*}
  tree=$(cd "${arg#*=}" && pwd)
  [[ $name =~ ^[A-Za-z0-9_]+$ ]] || { echo "side-by-side.sh: name '$name' must be letters, digits or _" >&2; exit 2; }
  [[ -f $tree/dist/src/cli/main.js ]] || { echo "side-by-side.sh: $tree/dist/src/cli/main.js is missing (npm run build there)" >&2; exit 2; }
  names+=("$name")
  trees+=("$tree")
done
[[ ${names[0]} != "${names[1]}" ]] || { echo "side-by-side.sh: the two names must differ" >&2; exit 2; }

started=()
cleanup() {
  local sid
  for sid in "${started[@]}"; do kill -TERM -- "-$sid" 2>/dev/null || true; done
  sleep 0.5
  for sid in "${started[@]}"; do kill -KILL -- "-$sid" 2>/dev/null || true; done
}
trap cleanup EXIT
# As in run.sh: a new session, pinned, at nice -10 for it and its autogroup when root.
niceness=0
[[ $(id -u) == 0 ]] && niceness=-10
pinned='[ -w /proc/self/autogroup ] && echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" taskset -c "$1" "${@:2}"'
start() { # log core command... ; sets $last_pid (the session id)
  local log=$1 core=$2
  shift 2
  setsid bash -c "$pinned" "$niceness" "$core" "$@" >"$log" 2>&1 </dev/null &
  last_pid=$!
  started+=("$last_pid")
}
ticks() { # session -> utime+stime of its processes, in clock ticks
  local sum=0 pid
  for pid in $(ps -s "$1" -o pid= 2>/dev/null); do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
ready() { # port
  local i
  for ((i = 0; i < 150; i++)); do
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$1/" && return 0
    sleep 0.1
  done
  return 1
}

read -r backend_port port0 port1 < <(cd "$root" && node dist/bench/load/ports.js 3)
ports=("$port0" "$port1")
sed -e "s|BACKEND_PORT|$backend_port|g" -e "s|RUN_DIR|$out|g" "$here/nginx-backend.conf" >"$out/nginx-backend.conf"
start "$out/backend.log" 1 nginx -p "$out" -e "$out/nginx-backend.error.log" -c "$out/nginx-backend.conf"
ready "$backend_port" || { echo "side-by-side.sh: the nginx backend did not come up" >&2; exit 1; }
sids=()
for k in 0 1; do
  name=${names[$k]}
  mkdir -p "$out/$name"
  sed -e "s|BACKEND_PORT|$backend_port|g" -e "s|127.0.0.1:PORT|127.0.0.1:${ports[$k]}|g" \
    "$here/kakehi.yaml" >"$out/$name/kakehi.yaml"
  args_var="ARGS_$name"
  env_var="ENV_$name"
  # Its own directory: each kakehi makes its command socket in the working directory.
  read -r -a node_args <<<"${!args_var:-}"
  read -r -a env_words <<<"${!env_var:-}"
  (cd "$out/$name" && start "$out/$name/kakehi.log" 0 env ${env_words[@]+"${env_words[@]}"} \
    node ${node_args[@]+"${node_args[@]}"} "${trees[$k]}/dist/src/cli/main.js" run -c "$out/$name/kakehi.yaml" &&
    echo "$last_pid" >"$out/$name/sid")
  sids+=("$(cat "$out/$name/sid")")
  started+=("${sids[$k]}")
  ready "${ports[$k]}" || { echo "side-by-side.sh: $name did not answer; see $out/$name/kakehi.log" >&2; exit 1; }
done

printf 'round\t%s req/CPU-s\t%s req/CPU-s\t%s req/s\t%s req/s\tratio\n' "${names[0]}" "${names[1]}" "${names[0]}" "${names[1]}" |
  tee "$out/rounds.tsv"
status=0
for ((r = 0; r <= rounds; r++)); do
  seconds=$duration
  ((r == 0)) && seconds=$warmup
  before=("$(ticks "${sids[0]}")" "$(ticks "${sids[1]}")")
  waits=()
  for k in 0 1; do
    taskset -c 1 nice -n "$niceness" wrk -t1 -c"$connections" -d"${seconds}s" "http://127.0.0.1:${ports[$k]}/" \
      >"$out/${names[$k]}/wrk-$r.txt" 2>&1 &
    waits+=($!)
  done
  wait "${waits[@]}" || { echo "side-by-side.sh: wrk failed in round $r" >&2; status=1; continue; }
  ((r == 0)) && continue
  per_cpu=()
  rps=()
  for k in 0 1; do
    used=$(($(ticks "${sids[$k]}") - ${before[$k]}))
    served=$(awk '/requests in/{print $1}' "$out/${names[$k]}/wrk-$r.txt")
    ((used > 0)) && [[ -n $served ]] || { echo "side-by-side.sh: no figures for ${names[$k]} in round $r" >&2; status=1; continue 2; }
    per_cpu+=("$(awk -v n="$served" -v t="$used" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", n / (t / hz)}')")
    rps+=("$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$out/${names[$k]}/wrk-$r.txt")")
  done
  ratio=$(awk -v a="${per_cpu[0]}" -v b="${per_cpu[1]}" 'BEGIN{printf "%.3f", b / a}')
  printf '%d\t%s\t%s\t%s\t%s\t%s\n' "$r" "${per_cpu[0]}" "${per_cpu[1]}" "${rps[0]}" "${rps[1]}" "$ratio" | tee -a "$out/rounds.tsv"
done
tail -n +2 "$out/rounds.tsv" | cut -f6 | sort -n |
  awk -v a="${names[0]}" -v b="${names[1]}" '{x[NR]=$1} END{if (NR == 0) exit 1; m = NR % 2 ? x[(NR+1)/2] : (x[NR/2] + x[NR/2+1]) / 2;
    printf "%s ÷ %s, requests per CPU-second: median %.3f over %d rounds (min %.3f, max %.3f)\n", b, a, m, NR, x[1], x[NR]}' |
  tee "$out/summary.txt"
echo "results: ${out#"$root"/}"
exit "$status"
