#!/usr/bin/env bash
# Profiles a running hlsgate server with perf (Debian linux-perf) on one of the benchmark's
# figures and prints where its CPU time goes, by hlsgate function (bench/perf_summary.py).
#
#   bench/profile.sh segment [SOURCES]   cold remux segments through the HTTP upstream (nginx):
#                                        every video and audio segment of SOURCES fresh copies of
#                                        bench720.mkv (default 20), hlsgate with --prefetch 0
#   bench/profile.sh hit [SECONDS]       a cached 2.26 MB segment under wrk -c100 (default 5 s)
#
# PERF_DATA=path keeps the recording (perf report -i path). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
log() { echo "profile: $*" >&2; }
what=${1:-segment}
command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
cargo build --release -p hlsgate >/dev/null 2>&1 || cargo build --release -p hlsgate
bin=${CARGO_TARGET_DIR:-$repo/target}/release/hlsgate
F=$repo/fixtures/out
[ -s "$F/bench720.mkv" ] || fixtures/make.sh bench >/dev/null

work=$(mktemp -d /tmp/hlsgate-profile.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
source "$repo/bench/lib.sh"

mkdir -p "$work/upstream"
ng_port=$(free_port)
start_nginx "$work/upstream" "$work/nginx" "$ng_port"
hg_port=$(free_port)
start_hlsgate hlsgate "$hg_port" --media-root "$work" "${signed[@]}" --prefetch 0
hg_pid=$last_pid
cat >"$work/conf.json" <<EOF
{"rows": "$work/rows.jsonl", "work": "$work", "fixtures": "$F", "hlsgate_bin": "$bin",
 "nginx": {"url": "http://127.0.0.1:$ng_port", "root": "$work/upstream", "log": "$work/nginx/logs/access.log"},
 "hlsgate": {"base": "http://127.0.0.1:$hg_port", "api_key": "$API_KEY"}, "runs": {}}
EOF
data=${PERF_DATA:-$work/perf.data}
record() { # record SECONDS: perf on the hlsgate process, in the background
  perf record -F 1999 -g --call-graph dwarf,16384 -o "$data" -p "$hg_pid" -- sleep "$1" >/dev/null 2>&1 &
  perf_pid=$!
  sleep 0.3
}
case $what in
  segment)
    python3 bench/server.py "$work/conf.json" drive --sources 2 >/dev/null  # warm-up
    record 15
    python3 bench/server.py "$work/conf.json" drive --sources "${2:-20}"
    ;;
  hit)
    url=$(python3 bench/server.py "$work/conf.json" cached-url)
    record $((${2:-5} + 1))
    wrk -t2 -c100 -d"${2:-5}"s "$url" | grep -E "Requests/sec|Transfer/sec"
    ;;
  *) echo "usage: bench/profile.sh segment [SOURCES] | hit [SECONDS]" >&2; exit 2 ;;
esac
kill -INT "$perf_pid" 2>/dev/null || true
wait "$perf_pid" 2>/dev/null || true
perf script -i "$data" --no-inline -F comm,tid,ip,sym,dso 2>/dev/null | python3 bench/perf_summary.py 12
