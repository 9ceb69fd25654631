#!/usr/bin/env bash
# Load benchmark on one machine: kakehi against HAProxy, nginx, Sōzu (when a `sozu` binary is on
# PATH), @fastify/reply-from and node-http-proxy, all in front of the same nginx backend, plus a
# direct-to-backend baseline.
# Each proxy is pinned to core 0; wrk and the backend share core 1. See docs/performance.md.
#
#   bash bench/load/run.sh            (npm run bench:load builds first)
#   SCHEME=https bash bench/load/run.sh                       (TLS termination, keep-alive)
#   SCHEME=https CONNECTION=close bash bench/load/run.sh      (one request per TLS handshake)
#   SCHEME=h2 bash bench/load/run.sh  (HTTP/2 over TLS: h2load, 64 streams over 8 connections,
#                                      against HAProxy and nginx with h2 on; backend stays HTTP/1.1)
#   MODE=tcp bash bench/load/run.sh   (TCP pass-through: kakehi protocol: tcp, HAProxy mode tcp,
#                                      Sōzu's TCP listener when `sozu` is on PATH, nginx stream
#                                      when its module is there; wrk's HTTP goes through unparsed)
#
# Environment:
#   DURATION=10s      measured wrk (h2load) run per target
#   CONNECTIONS=64    wrk connections (one wrk thread); SCHEME=h2: h2load connections, default 8
#   STREAMS=8         SCHEME=h2 only: concurrent streams per h2load connection (h2load -m)
#   WARMUP=10s        unmeasured wrk run before each measured one (Node peers need ~10 s of JIT warm-up)
#   ROUNDS=1          repeat the whole sequence; the report shows medians
#   PROXIES="haproxy nginx kakehi sozu reply-from http-proxy"   subset to run; the direct
#                     baseline is always measured; sozu only when on PATH (over http only).
#                     SCHEME=h2: "haproxy nginx kakehi node-h2" (node-h2: peer-node-h2.ts)
#                     MODE=tcp: "haproxy kakehi sozu nginx", sozu
#                     and nginx only when available (a named one that is not fails)
#   NICE=-10          niceness of every process the benchmark starts (proxies, backend, wrk) and
#                     of their scheduling autogroups, so that unrelated work on the machine takes
#                     less of the two cores; negative values need root (else 0 is used)
#   QUIET_WAIT=30     before each target, wait up to this many seconds for both cores to be
#                     under 20% busy (other work on a shared machine skews the figures)
#   READY_TIMEOUT=15  seconds a proxy gets to answer its first HTTP request
#   RESULTS_DIR=bench/results/load-<UTC time>   where logs, configs and summaries go
#   SCHEME=http       https: the proxies terminate TLS (TLS 1.3 offered; wrk negotiates it) with a
#                     certificate generated into RESULTS_DIR; the backend and the direct baseline
#                     stay plain HTTP. reply-from and sozu are not run over https.
#   KEY=ecdsa         https certificate key: ecdsa (P-256) or rsa (2048 bits)
#   CONNECTION=keep-alive   close: wrk sends "Connection: close", so every request opens a new
#                     connection (a full TLS handshake with https: wrk resumes no session)
#   MODE=http         tcp: the proxies relay bytes (see above); SCHEME must stay http
#   SCHEME=h2         the client is h2load (one thread, -c CONNECTIONS -m STREAMS, ALPN h2 over
#                     TLS with the https certificate) against kakehi (https listener, its default
#                     alpn), HAProxy (bind ... alpn h2,http/1.1) and nginx (listen ... ssl http2);
#                     the direct baseline is h2load --h1 with CONNECTIONS x STREAMS connections to
#                     the plain-HTTP backend. p50/p99 come from h2load's --log-file.
#
# Exit codes: 0 done (even if kakehi was not available), 1 a run failed, 2 missing tools.
# Installs nothing; every process it starts is stopped on exit, even on failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

seconds() { # "10s" or "10" -> 10
  local value=${1%s}
  if [[ ! $value =~ ^[0-9]+$ ]] || ((value < 1)); then
    echo "run.sh: $2 must be a whole number of seconds (got '$1')" >&2
    exit 2
  fi
  echo "$value"
}
duration=$(seconds "${DURATION:-10s}" DURATION)
warmup=$(seconds "${WARMUP:-10s}" WARMUP)
scheme=${SCHEME:-http}
[[ $scheme == http || $scheme == https || $scheme == h2 ]] || { echo "run.sh: SCHEME must be http, https or h2" >&2; exit 2; }
tls=false
[[ $scheme == https || $scheme == h2 ]] && tls=true
if [[ $scheme == h2 ]]; then connections=${CONNECTIONS:-8}; else connections=${CONNECTIONS:-64}; fi
streams=${STREAMS:-8}
[[ $streams =~ ^[0-9]+$ ]] && ((streams > 0)) || { echo "run.sh: STREAMS must be a positive integer" >&2; exit 2; }
rounds=${ROUNDS:-1}
ready_timeout=${READY_TIMEOUT:-15}
niceness=${NICE:--10}
quiet_wait=${QUIET_WAIT:-30}
[[ $connections =~ ^[0-9]+$ ]] && ((connections > 0)) || { echo "run.sh: CONNECTIONS must be a positive integer" >&2; exit 2; }
[[ $rounds =~ ^[0-9]+$ ]] && ((rounds > 0)) || { echo "run.sh: ROUNDS must be a positive integer" >&2; exit 2; }
[[ $ready_timeout =~ ^[0-9]+$ ]] || { echo "run.sh: READY_TIMEOUT must be a whole number" >&2; exit 2; }
[[ $quiet_wait =~ ^[0-9]+$ ]] || { echo "run.sh: QUIET_WAIT must be a whole number of seconds" >&2; exit 2; }
[[ $niceness =~ ^-?[0-9]+$ ]] || { echo "run.sh: NICE must be an integer" >&2; exit 2; }
mode=${MODE:-http}
[[ $mode == http || $mode == tcp ]] || { echo "run.sh: MODE must be http or tcp" >&2; exit 2; }
key_type=${KEY:-ecdsa}
connection=${CONNECTION:-keep-alive}
[[ $key_type == ecdsa || $key_type == rsa ]] || { echo "run.sh: KEY must be ecdsa or rsa" >&2; exit 2; }
[[ $connection == keep-alive || $connection == close ]] || { echo "run.sh: CONNECTION must be keep-alive or close" >&2; exit 2; }
[[ $mode == tcp && $scheme != http ]] && { echo "run.sh: MODE=tcp relays plain HTTP; SCHEME must be http" >&2; exit 2; }
wrk_header=()
[[ $connection == close ]] && wrk_header=(-H 'Connection: close')
[[ $scheme == h2 && $connection == close ]] && { echo "run.sh: SCHEME=h2 keeps its connections; CONNECTION must be keep-alive" >&2; exit 2; }
if ((niceness < 0)) && [[ $(id -u) != 0 ]]; then
  echo "run.sh: not root, so NICE=$niceness cannot be applied; running at the normal priority" >&2
  niceness=0
fi
# Runs a command in a new session (so it can be stopped as a group), pinned to a core, at the
# benchmark's niceness. The kernel groups tasks by session for scheduling (autogroup), and a
# plain nice value only counts inside a group, so the new session's group gets it too.
pinned='[ -w /proc/self/autogroup ] && echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" taskset -c "$1" "${@:2}"'
on_core() { # core command... : waits for it (stopped on exit like the others), returns its exit code
  local pid rc=0
  setsid bash -c "$pinned" "$niceness" "$@" </dev/null &
  pid=$!
  started+=("$pid")
  wait "$pid" || rc=$?
  forget "$pid"
  return "$rc"
}

# nginx's stream module: built in (nothing to load), a dynamic module to load, or absent.
stream_module=absent
if [[ " $(PATH="$PATH:/usr/sbin" nginx -V 2>&1 | tr '\n' ' ') " == *" --with-stream "* ]]; then
  stream_module=""
else
  for so in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so; do
    [[ -f $so ]] && { stream_module="load_module $so;"; break; }
  done
fi
all_proxies=(haproxy nginx kakehi reply-from http-proxy)
# Sōzu's HTTP peer is plain HTTP only here: its HTTPS listener would need its own certificate setup.
[[ $scheme == http ]] && command -v sozu >/dev/null 2>&1 && all_proxies=(haproxy nginx kakehi sozu reply-from http-proxy)
[[ $scheme == https ]] && all_proxies=(haproxy nginx kakehi http-proxy)
# node-h2: the smallest node:http2 proxy (peer-node-h2.ts), the engine kakehi's h2 side runs on.
[[ $scheme == h2 ]] && all_proxies=(haproxy nginx kakehi node-h2)
alpn=http/1.1
[[ $scheme == h2 ]] && alpn=h2,http/1.1
if [[ $mode == tcp ]]; then
  all_proxies=(haproxy kakehi)
  command -v sozu >/dev/null 2>&1 && all_proxies+=(sozu)
  [[ $stream_module != absent ]] && all_proxies+=(nginx)
fi
read -r -a proxies <<<"${PROXIES:-${all_proxies[*]}}"
for name in "${proxies[@]}"; do
  case $mode:$name in
    *:haproxy | *:nginx | *:kakehi | *:sozu | http:reply-from | http:http-proxy | http:fastify | http:node-h2) ;;
    *) echo "run.sh: unknown proxy '$name' in PROXIES for MODE=$mode (known: ${all_proxies[*]})" >&2; exit 2 ;;
  esac
done
proxies=("${proxies[@]/#fastify/reply-from}")
not_over_tls=(reply-from sozu)
[[ $scheme == h2 ]] && not_over_tls+=(http-proxy)
for name in "${not_over_tls[@]}"; do
  if [[ $tls == true && " ${proxies[*]} " == *" $name "* ]]; then
    echo "run.sh: $name is not run over $scheme" >&2
    exit 2
  fi
done
if [[ $scheme != h2 && " ${proxies[*]} " == *" node-h2 "* ]]; then
  echo "run.sh: node-h2 is run over SCHEME=h2 only" >&2
  exit 2
fi
wants() { local n; for n in "${proxies[@]}"; do [[ $n == "$1" ]] && return 0; done; return 1; }

# --- prerequisites: report, never install -----------------------------------------------
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need wrk wrk
[[ $scheme == h2 ]] && need h2load nghttp2-client
need nginx nginx-light
wants haproxy && need haproxy haproxy
wants sozu && need sozu "sozu (not packaged by Debian: build it from github.com/sozu-proxy/sozu)"
need taskset util-linux
need setsid util-linux
need curl curl
[[ $tls == true ]] && need openssl openssl
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "run.sh: missing tools. Install them with:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 2
fi
if (($(nproc) < 2)); then
  echo "run.sh: needs at least 2 CPU cores (proxy on core 0, wrk and backend on core 1); found $(nproc)" >&2
  exit 2
fi
for file in dist/bench/load/ports.js dist/bench/load/report.js dist/bench/load/peer-reply-from.js dist/bench/load/peer-http-proxy.js dist/bench/load/peer-node-h2.js; do
  if [[ ! -f $file ]]; then
    echo "run.sh: $file is missing: run 'npm run build' (or 'npm run bench:load')" >&2
    exit 2
  fi
done
for module in fastify @fastify/reply-from http-proxy; do
  if [[ ! -d node_modules/$module ]]; then
    echo "run.sh: node module $module is missing: run 'npm ci'" >&2
    exit 2
  fi
done

# --- processes: each in its own session, all stopped on exit --------------------------------
started=()
start() { # log-file core command... ; sets $last_pid (also the session and group id)
  local log=$1 core=$2
  shift 2
  setsid bash -c "$pinned" "$niceness" "$core" "$@" >"$log" 2>&1 </dev/null &
  last_pid=$!
  started+=("$last_pid")
}
alive() { # any non-zombie process left in session $1?
  ps -s "$1" -o stat= 2>/dev/null | grep -qv '^Z'
}
stop() { # session id
  local sid=$1 i
  kill -TERM -- "-$sid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do alive "$sid" || break; sleep 0.1; done
  if alive "$sid"; then
    kill -KILL -- "-$sid" 2>/dev/null || true
    sleep 0.2
  fi
  wait "$sid" 2>/dev/null || true
  forget "$sid"
}
forget() { # drop a session id from the list of processes to stop
  local kept=() pid
  for pid in "${started[@]}"; do [[ $pid == "$1" ]] || kept+=("$pid"); done
  started=("${kept[@]}")
}
cleanup() {
  local sid
  for sid in "${started[@]}"; do stop "$sid"; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- run directory --------------------------------------------------------------------------
out=${RESULTS_DIR:-$root/bench/results/load-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
: >"$out/targets.tsv"

read -r backend_port haproxy_port nginx_port kakehi_port reply_from_port http_proxy_port sozu_port node_h2_port \
  < <(node dist/bench/load/ports.js 8)
port_of() {
  case $1 in
    direct) echo "$backend_port" ;;
    haproxy) echo "$haproxy_port" ;;
    nginx) echo "$nginx_port" ;;
    kakehi) echo "$kakehi_port" ;;
    reply-from) echo "$reply_from_port" ;;
    http-proxy) echo "$http_proxy_port" ;;
    sozu) echo "$sozu_port" ;;
    node-h2) echo "$node_h2_port" ;;
  esac
}
render() { # template port output
  sed -e "s|BACKEND_PORT|$backend_port|g" -e "s|127.0.0.1:PORT|127.0.0.1:$2|g" -e "s|RUN_DIR|$out|g" "$1" >"$3"
}

wrk_version=$(wrk -v 2>&1 | head -1 | awk '{print $2}' || true)
h2load_version=$(command -v h2load >/dev/null && h2load --version 2>/dev/null | head -1 | sed 's|.*nghttp2/||' || echo "")
nginx_version=$(nginx -v 2>&1 | sed 's|.*nginx/||')
haproxy_version=$(command -v haproxy >/dev/null && haproxy -v 2>/dev/null | head -1 | awk '{print $3}' || echo "")
# `sozu --version` prints "sozu 2.3.3 ()" (the parentheses hold an empty commit id).
sozu_version=$(command -v sozu >/dev/null && sozu --version 2>/dev/null | head -1 | awk '{print $2}' || echo "")
pkg_version() { node -p "require('./node_modules/$1/package.json').version"; }
{
  echo "command=MODE=$mode SCHEME=$scheme KEY=$key_type CONNECTION=$connection DURATION=${duration}s CONNECTIONS=$connections$([[ $scheme == h2 ]] && echo " STREAMS=$streams") WARMUP=${warmup}s ROUNDS=$rounds PROXIES=\"${proxies[*]}\" bash bench/load/run.sh"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine=$(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/^Mem:/{print $2}') GB RAM, Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), Node $(node -v)"
  if [[ $scheme == h2 ]]; then
    echo "client_args=h2load $h2load_version -t1 -c$connections -m$streams -D ${duration}s https://… (ALPN h2; after a ${warmup}s warm-up; direct: --h1 -c$((connections * streams)) -m1 http://…)"
  else
    echo "client_args=wrk $wrk_version -t1 -c$connections -d${duration}s --latency$([[ $connection == close ]] && echo " -H 'Connection: close'") $scheme://… (after a ${warmup}s warm-up)"
  fi
  echo "tls=$([[ $tls == true ]] && echo "$key_type certificate, OpenSSL $(openssl version | awk '{print $2}')" || echo none)"
  echo "clk_tck=$(getconf CLK_TCK)"
  echo "kakehi_tree=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown) (dist/ as built from it)"
  echo "rounds=$rounds"
  echo "mode=$mode"
  echo "nice=$niceness"
  echo "label.direct=direct to backend (no proxy$([[ $tls == true ]] && echo ", plain HTTP/1.1"))"
  echo "label.haproxy=HAProxy $haproxy_version"
  echo "label.nginx=nginx $nginx_version"
  echo "label.kakehi=kakehi"
  echo "label.reply-from=fastify $(pkg_version fastify) + @fastify/reply-from $(pkg_version @fastify/reply-from)"
  echo "label.http-proxy=node-http-proxy $(pkg_version http-proxy)"
  echo "label.sozu=Sōzu $sozu_version"
  echo "label.node-h2=node:http2 + node:http keep-alive agent (Node $(node -v))"
  if [[ $mode == tcp ]]; then
    echo "label.haproxy=HAProxy $haproxy_version, mode tcp"
    echo "label.nginx=nginx $nginx_version, stream"
    echo "label.kakehi=kakehi, protocol: tcp"
    echo "label.sozu=Sōzu $sozu_version, TCP listener"
  fi
} >"$out/meta.txt"

# --- readiness and sanity ---------------------------------------------------------------------
backend_body='bench-backend'
url_of() { # port -> URL; the backend (and so the direct baseline) is always plain HTTP
  if [[ $tls == true && $1 != "$backend_port" ]]; then echo "https://127.0.0.1:$1/"; else echo "http://127.0.0.1:$1/"; fi
}
wait_ready() { # pid port -> 0 when any HTTP answer arrives
  local pid=$1 port=$2 deadline=$((SECONDS + ready_timeout))
  while ((SECONDS < deadline)); do
    alive "$pid" || return 1
    curl -sk -o /dev/null -m 1 "$(url_of "$port")" && return 0
    sleep 0.1
  done
  return 1
}
check_proxies() { # port -> 0 when the backend's answer comes through
  local body
  local want=" 200" args=(-w ' %{http_code}')
  # h2: the proxy must also negotiate h2 by ALPN, or h2load would fail or measure HTTP/1.1.
  if [[ $scheme == h2 && $1 != "$backend_port" ]]; then want=" 200 2"; args=(--http2 -w ' %{http_code} %{http_version}'); fi
  body=$(curl -sk -m 2 "${args[@]}" "$(url_of "$1")") || return 1
  [[ $body == "$backend_body"$'\n'"$want" ]]
}

# --- CPU accounting around each measured run ---------------------------------------------------
backend_worker=""
session_ticks() { # sid -> utime+stime of every process in the session, in clock ticks
  local sum=0 pid
  for pid in $(ps -s "$1" -o pid= 2>/dev/null); do
    [[ -r /proc/$pid/stat ]] || continue
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}
snapshot() { # label proxy-sid
  echo "$1"
  echo "t $(date +%s.%N)"
  grep -E '^cpu[01] ' /proc/stat
  echo "backend $(awk '{print $14 + $15}' "/proc/$backend_worker/stat" 2>/dev/null || echo 0)"
  if [[ -n $2 ]]; then echo "proxy $(session_ticks "$2")"; fi
  # CPU time of every process on the machine ("pid PID ticks"), to see how much unrelated work
  # ran during the measured window; wrk is not running at either snapshot.
  cat /proc/[0-9]*/stat 2>/dev/null | sed 's/ (.*) / /' | awk '{print "pid", $1, $13 + $14}'
  echo "self $$"
}

core_busy() { # prints "cpu0 N% cpu1 N%", busy share of each core over one second
  local a b
  a=$(grep -E '^cpu[01] ' /proc/stat)
  sleep 1
  b=$(grep -E '^cpu[01] ' /proc/stat)
  paste <(echo "$a") <(echo "$b") | awk '{
    t = 0; for (k = 2; k <= 9; k++) t += $(k + 11) - $k
    i = ($16 - $5) + ($17 - $6)
    printf "%s %d%% ", $1, (t > 0 ? 100 * (1 - i / t) : 0)
  }'
}
wait_quiet() { # up to $quiet_wait seconds until both cores are under 20% busy
  local deadline=$((SECONDS + quiet_wait)) busy said=""
  while :; do
    busy=$(core_busy)
    if ! echo "$busy" | grep -qE '([2-9][0-9]|100)%'; then return 0; fi
    if ((SECONDS >= deadline)); then
      echo "  (machine still busy after ${quiet_wait}s: $busy; measuring anyway)"
      return 0
    fi
    [[ -n $said ]] || echo "  (other work on the machine: $busy; waiting up to ${quiet_wait}s)"
    said=1
  done
}

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$out/targets.tsv"; }

# Runs the load generator on core 1: url seconds output-file [log-file]. wrk, or with SCHEME=h2
# h2load (the plain-HTTP backend gets --h1 with one request in flight per connection, as wrk does).
drive() {
  local url=$1 seconds=$2 output=$3 log=${4:-}
  if [[ $scheme == h2 ]]; then
    local shape=(-c"$connections" -m"$streams")
    [[ $url == http://* ]] && shape=(--h1 -c$((connections * streams)) -m1)
    on_core 1 timeout $((seconds + 30)) h2load -t1 "${shape[@]}" -D "${seconds}s" ${log:+"--log-file=$log"} "$url" >"$output" 2>&1
  else
    on_core 1 timeout $((seconds + 30)) wrk -t1 -c"$connections" -d"${seconds}s" --latency "${wrk_header[@]}" "$url" >"$output" 2>&1
  fi
}
client=wrk result_line='^Requests/sec:'
[[ $scheme == h2 ]] && client=h2load result_line='^finished in .* req/s'

measure() { # round name port proxy-sid
  local round=$1 name=$2 port=$3 sid=$4 url file="$out/r$1-$2"
  local result="$file.$client"
  url=$(url_of "$port")
  drive "$url" "$warmup" "$file.warmup" || true
  snapshot before "$sid" >"$file.cpu"
  # h2load prints no percentiles: its per-request log gives them (report.ts reads it).
  if ! drive "$url" "$duration" "$result" "$([[ $client == h2load ]] && echo "$file.h2log")"; then
    record "$round" "$name" failed "$client failed: $(tail -1 "$result")"
    return 1
  fi
  snapshot after "$sid" >>"$file.cpu"
  if ! grep -q "$result_line" "$result"; then
    record "$round" "$name" failed "$client printed no result: $(tail -1 "$result")"
    return 1
  fi
  record "$round" "$name" ok ""
  if [[ $client == h2load ]]; then
    printf '  %-11s %12s req/s   %s\n' "$name" "$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$result")" \
      "$(grep '^requests:' "$result" | sed 's/^requests: //')"
  else
    printf '  %-11s %12s req/s   p99 %s\n' "$name" "$(awk '/^Requests\/sec:/{print $2}' "$result")" \
      "$(awk '$1 == "99%" || $1 == "99.000%" {print $2}' "$result")"
  fi
}

start_proxy() { # name port -> sets $last_pid, or returns 1 with $why
  local name=$1 port=$2 log="$out/$1.log"
  why=""
  case $mode:$name in
    tcp:haproxy)
      render "$here/haproxy-tcp.cfg" "$port" "$out/haproxy.cfg"
      start "$log" 0 haproxy -db -f "$out/haproxy.cfg"
      ;;
    tcp:nginx)
      render "$here/nginx-stream.conf" "$port" "$out/nginx-stream.conf"
      sed -i "s|^LOAD_MODULE$|$stream_module|" "$out/nginx-stream.conf"
      start "$log" 0 nginx -p "$out" -e "$out/nginx-stream.error.log" -c "$out/nginx-stream.conf"
      ;;
    tcp:kakehi)
      render "$here/kakehi-tcp.yaml" "$port" "$out/kakehi.yaml"
      start "$log" 0 node dist/src/cli/main.js run -c "$out/kakehi.yaml"
      ;;
    tcp:sozu)
      render "$here/sozu-tcp.toml" "$port" "$out/sozu.toml"
      start "$log" 0 sozu start -c "$out/sozu.toml"
      ;;
  esac
  [[ $mode == tcp ]] || case $name in
    haproxy)
      render "$here/haproxy.cfg" "$port" "$out/haproxy.cfg"
      [[ $tls == true ]] && sed -i "s|^\( *bind 127.0.0.1:$port\)$|\1 ssl crt $out/tls/bench.pem alpn $alpn|" "$out/haproxy.cfg"
      start "$log" 0 haproxy -db -f "$out/haproxy.cfg"
      ;;
    nginx)
      render "$here/nginx-proxy.conf" "$port" "$out/nginx-proxy.conf"
      [[ $tls == true ]] && sed -i "s|^\( *\)listen 127.0.0.1:$port;$|\1listen 127.0.0.1:$port ssl$([[ $scheme == h2 ]] && echo " http2");\n\1ssl_certificate $out/tls/cert.pem;\n\1ssl_certificate_key $out/tls/key.pem;\n\1ssl_protocols TLSv1.2 TLSv1.3;|" "$out/nginx-proxy.conf"
      mkdir -p "$out/nginx-proxy-tmp"
      start "$log" 0 nginx -p "$out" -e "$out/nginx-proxy.error.log" -c "$out/nginx-proxy.conf"
      ;;
    kakehi)
      if [[ ! -f dist/src/cli/main.js ]]; then
        why="dist/src/cli/main.js does not exist (run npm run build once src/cli/main.ts exists)"
        return 1
      fi
      render "$here/kakehi.yaml" "$port" "$out/kakehi.yaml"
      # kakehi's https listener offers h2 and http/1.1 by default (alpn), as HAProxy and nginx do here with h2.
      if [[ $tls == true ]]; then
        sed -i 's|^\( *protocol:\) http$|\1 https|' "$out/kakehi.yaml"
        printf 'certificates:\n  - listener: 127.0.0.1:%s\n    certificate_file: %s\n    key_file: %s\n    default: true\n' \
          "$port" "$out/tls/cert.pem" "$out/tls/key.pem" >>"$out/kakehi.yaml"
      fi
      start "$log" 0 node dist/src/cli/main.js run -c "$out/kakehi.yaml"
      ;;
    sozu)
      render "$here/sozu-http.toml" "$port" "$out/sozu.toml"
      start "$log" 0 sozu start -c "$out/sozu.toml"
      ;;
    reply-from) start "$log" 0 node dist/bench/load/peer-reply-from.js "$port" "$backend_port" ;;
    http-proxy) start "$log" 0 node dist/bench/load/peer-http-proxy.js "$port" "$backend_port" ${tls_files[@]+"${tls_files[@]}"} ;;
    node-h2) start "$log" 0 node dist/bench/load/peer-node-h2.js "$port" "$backend_port" "${tls_files[@]}" ;;
  esac
  if ! wait_ready "$last_pid" "$port"; then
    why="no HTTP answer on 127.0.0.1:$port within ${ready_timeout}s ($(alive "$last_pid" && echo "still running" || echo "exited")); log: $(tail -c 300 "$log" | tr '\n\t' '  ')"
    stop "$last_pid"
    return 1
  fi
  if ! check_proxies "$port"; then
    why="answers, but not with the backend's 200 '$backend_body' ($(curl -sk -m 2 -o /dev/null -w '%{http_code}' "$(url_of "$port")" || true))"
    stop "$last_pid"
    return 1
  fi
}

# --- the run --------------------------------------------------------------------------------
echo "load benchmark: results in ${out#"$root"/}"
busy_before=$(core_busy)
echo "idle check (1 s before starting): $busy_before"
echo "idle_check=$busy_before" >>"$out/meta.txt"

# https: a self-signed certificate for 127.0.0.1 / localhost, made for this run only.
tls_files=()
if [[ $tls == true ]]; then
  mkdir -p "$out/tls"
  if [[ $key_type == ecdsa ]]; then
    key_args=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  else
    key_args=(-newkey rsa:2048)
  fi
  openssl req -x509 "${key_args[@]}" -nodes -days 2 -subj /CN=localhost \
    -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
    -keyout "$out/tls/key.pem" -out "$out/tls/cert.pem" 2>"$out/tls/openssl.log"
  cat "$out/tls/cert.pem" "$out/tls/key.pem" >"$out/tls/bench.pem"
  tls_files=("$out/tls/cert.pem" "$out/tls/key.pem")
fi

render "$here/nginx-backend.conf" "$backend_port" "$out/nginx-backend.conf"
mkdir -p "$out/nginx-backend-tmp"
start "$out/backend.log" 1 nginx -p "$out" -e "$out/nginx-backend.error.log" -c "$out/nginx-backend.conf"
backend_sid=$last_pid
if ! wait_ready "$backend_sid" "$backend_port" || ! check_proxies "$backend_port"; then
  echo "run.sh: the nginx backend did not come up on 127.0.0.1:$backend_port; see $out/nginx-backend.error.log" >&2
  exit 1
fi
backend_worker=$(ps -s "$backend_sid" -o pid=,args= | awk '/worker process/{print $1; exit}')

status=0
for ((round = 1; round <= rounds; round++)); do
  ((rounds > 1)) && echo "round $round of $rounds"
  wait_quiet
  measure "$round" direct "$backend_port" "" || status=1
  for name in "${proxies[@]}"; do
    port=$(port_of "$name")
    wait_quiet
    if ! start_proxy "$name" "$port"; then
      if [[ $name == kakehi ]]; then
        record "$round" "$name" "not available" "$why"
        echo "  kakehi      not available: $why"
      else
        record "$round" "$name" failed "$why"
        echo "  $name failed: $why" >&2
        status=1
      fi
      continue
    fi
    measure "$round" "$name" "$port" "$last_pid" || status=1
    stop "$last_pid"
  done
done
cleanup

echo
node dist/bench/load/report.js "$out"
exit "$status"
