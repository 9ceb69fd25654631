#!/usr/bin/env bash
# Cost of metrics on the hot path: runs the load benchmark (run.sh, kakehi only) in
# pairs, metrics on and off (KAKEHI_METRICS), and prints each pair's req/s and
# on ÷ off, then the median ratio. Alternating pairs, not two long runs,
# because other work on a shared machine drifts over minutes. See docs/performance.md.
#
#   PAIRS=5 bash bench/load/metrics-cost.sh      (after npm run build)
#
# Environment: PAIRS=5, plus anything run.sh reads (DURATION defaults to 5s here).
# Results: bench/results/metrics-cost-<UTC time>/{pairs.tsv, on-N/, off-N/}.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
pairs=${PAIRS:-5}
[[ $pairs =~ ^[0-9]+$ ]] && ((pairs > 0)) || { echo "metrics-cost.sh: PAIRS must be a positive integer" >&2; exit 2; }
out=$root/bench/results/metrics-cost-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
printf 'pair\ton\toff\tratio\ton_per_core\toff_per_core\tratio_per_core\n' >"$out/pairs.tsv"

rps() { # results dir -> "req/s req/s-per-core-of-proxy-CPU" of kakehi, from run.sh's summary
  node -e '
    const s = JSON.parse(require("fs").readFileSync(process.argv[1] + "/summary.json", "utf8"));
    const t = (n) => s.targets.find((x) => x.target === n && x.status === "ok");
    const k = t("kakehi");
    if (k) console.log(k.requestsPerSecond, Math.round(k.perProxyCore));
  ' "$1" 2>/dev/null || true
}
run() { # on|off dir
  KAKEHI_METRICS=$1 PROXIES=kakehi DURATION=${DURATION:-5s} ROUNDS=1 RESULTS_DIR=$2 \
    bash "$here/run.sh" >"$2.log" 2>&1 || true
}

echo "metrics on/off, $pairs pairs: results in ${out#"$root"/}"
for ((i = 1; i <= pairs; i++)); do
  # Order alternates too (on-off, off-on, …), so a drift during a pair favours neither.
  if ((i % 2)); then
    run on "$out/on-$i"
    run off "$out/off-$i"
  else
    run off "$out/off-$i"
    run on "$out/on-$i"
  fi
  read -r on on_pc < <(rps "$out/on-$i"; echo)
  read -r off off_pc < <(rps "$out/off-$i"; echo)
  if [[ -z $on || -z $off ]]; then
    echo "pair $i failed; see $out/on-$i.log and $out/off-$i.log" >&2
    continue
  fi
  ratio=$(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.3f", a / b}')
  ratio_pc=$(awk -v a="$on_pc" -v b="$off_pc" 'BEGIN{printf "%.3f", a / b}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$on" "$off" "$ratio" "$on_pc" "$off_pc" "$ratio_pc" >>"$out/pairs.tsv"
  printf 'pair %d: on %s req/s, off %s req/s, on/off %s (per core of proxy CPU: %s / %s = %s)\n' \
    "$i" "$on" "$off" "$ratio" "$on_pc" "$off_pc" "$ratio_pc"
done
median() { # column of pairs.tsv
  tail -n +2 "$out/pairs.tsv" | cut -f"$1" | sort -n |
    awk '{a[NR]=$1} END{if (NR == 0) exit 1; print (NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2)}'
}
n=$(($(wc -l <"$out/pairs.tsv") - 1))
((n > 0)) || { echo "no pair completed" >&2; exit 1; }
{
  echo "median on/off over $n pairs: $(median 4)"
  echo "median on/off per core of proxy CPU (discounts other work on the proxy's core): $(median 7)"
} | tee "$out/median.txt"
