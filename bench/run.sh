#!/usr/bin/env bash
# hlsgate's benchmark suite: one command sets everything up, runs hlsgate side by side with the
# ffmpeg CLI, mediaflow-proxy and nginx on this machine in the same run, and prints one markdown
# table (stdout; progress on stderr). Not part of CI.
#
#   bench/run.sh                 # full run (~6 min on 2 cores, after the build)
#   QUICK=1 bench/run.sh         # fewer repetitions (~3 min)
#
# Knobs (environment): RUNS (CLI rows, 10), TRANSCODE_RUNS (5), SERVER_RUNS (10),
# SERVER_TRANSCODE_RUNS (5), PLAYER_RUNS (5), WRK_RUNS (3), WRK_SECS (5), WRK_THREADS (2),
# EXPORT_RUNS (3), RSS_CLIENTS (50), RSS_SEGMENTS (4), BENCH_CACHE (~/.cache/hlsgate-bench: the
# mediaflow-proxy venv), KEEP=1 keeps the work folder.
#
# What it sets up: Debian packages (hyperfine, wrk, nginx-light, redis-server, chromium,
# python3-venv), the node modules of tests/players, the fixtures (only if missing), a release
# build, mediaflow-proxy 2.4.9 from PyPI in a venv; then, on free loopback ports: nginx (the
# Range-capable upstream, and the peer for cached throughput), two hlsgate servers in signed mode
# reading nginx (one with --prefetch 0 for clean counts, one with the default prefetch for the
# players), Redis + mediaflow-proxy (uvicorn, one worker, CPU only). Helpers: bench/rows.py (rows
# and the table), bench/server.py (HTTP figures), bench/player.mjs (hls.js in Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t_start=$(date +%s)
log() { echo "bench [$(( $(date +%s) - t_start )) s]: $*" >&2; }

if [ "${QUICK:-0}" = 1 ]; then
  : "${RUNS:=5}" "${TRANSCODE_RUNS:=2}" "${SERVER_RUNS:=5}" "${SERVER_TRANSCODE_RUNS:=2}"
  : "${PLAYER_RUNS:=1}" "${WRK_RUNS:=1}" "${WRK_SECS:=3}" "${EXPORT_RUNS:=1}"
fi
: "${RUNS:=10}" "${TRANSCODE_RUNS:=5}" "${SERVER_RUNS:=10}" "${SERVER_TRANSCODE_RUNS:=5}"
: "${PLAYER_RUNS:=5}" "${WRK_RUNS:=3}" "${WRK_SECS:=5}" "${WRK_THREADS:=2}" "${EXPORT_RUNS:=3}"
: "${RSS_CLIENTS:=50}" "${RSS_SEGMENTS:=4}"
: "${BENCH_CACHE:=$HOME/.cache/hlsgate-bench}"
MEDIAFLOW_VERSION=2.4.9

# ---------------------------------------------------------------------------------------------
# Setup: tools, fixtures, build, peers
apt_missing=()
for pair in hyperfine:hyperfine wrk:wrk nginx:nginx-light redis-server:redis-server \
            chromium:chromium node:nodejs npm:npm; do
  command -v "${pair%%:*}" >/dev/null || apt_missing+=("${pair#*:}")
done
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
if [ ${#apt_missing[@]} -gt 0 ]; then
  log "installing ${apt_missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
[ -d tests/players/node_modules/hls.js ] || (log "npm ci (tests/players)"; npm ci --prefix tests/players --silent)

F=$repo/fixtures/out
for f in long_2h.mkv bench720.mkv bench720_hevc_ac3.mkv h264_aac_faststart.mp4 h264_aac_moov_end.mp4 \
         h264_bframes.mkv mkv_no_cues.mkv h264_aac.ts; do
  [ -s "$F/$f" ] || { log "making fixtures ($f missing)"; fixtures/make.sh long >/dev/null; break; }
done

log "cargo build --release -p hlsgate"
cargo build --release -p hlsgate >/dev/null 2>&1 || cargo build --release -p hlsgate
bin=${CARGO_TARGET_DIR:-$repo/target}/release/hlsgate
[ -x "$bin" ] || { log "no binary at $bin"; exit 1; }

venv=$BENCH_CACHE/mediaflow-$MEDIAFLOW_VERSION
mediaflow_error=""
if [ ! -x "$venv/bin/uvicorn" ]; then
  log "installing mediaflow-proxy $MEDIAFLOW_VERSION into $venv"
  mkdir -p "$BENCH_CACHE"
  { python3 -m venv "$venv" && "$venv/bin/pip" install -q "mediaflow-proxy==$MEDIAFLOW_VERSION"; } >"$BENCH_CACHE/pip.log" 2>&1 \
    || mediaflow_error="pip install failed: $(tail -1 "$BENCH_CACHE/pip.log")"
fi

work=$(mktemp -d /tmp/hlsgate-bench.XXXXXX)
chmod 755 "$work"  # nginx workers (user nobody) read the upstream root under it
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-0}" = 1 ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
rows=$work/rows.jsonl
: >"$rows"

source "$repo/bench/lib.sh"

start_mediaflow() { # start_mediaflow NAME PORT → sets last_pid (or mediaflow_error)
  local name=$1 port=$2
  (cd "$work" && exec env TRANSCODE_PREFER_GPU=false TRANSCODE_VIDEO_PRESET=veryfast \
     REDIS_URL="redis://127.0.0.1:$redis_port" LOG_LEVEL=INFO \
     "$venv/bin/uvicorn" mediaflow_proxy.main:app --host 127.0.0.1 --port "$port" --workers 1 \
     >"$work/$name.log" 2>&1) &
  last_pid=$!
  pids+=("$last_pid")
  wait_http "http://127.0.0.1:$port/health" 60 || mediaflow_error="did not start: $(tail -1 "$work/$name.log")"
}

machine="$(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo none)
git diff --quiet HEAD -- crates proxy-bin 2>/dev/null || commit="$commit (+ uncommitted changes in crates/ or proxy-bin/)"

# ---------------------------------------------------------------------------------------------
# 1. Whole processes (hyperfine): probe and one segment, against the ffmpeg tools on local files
hf() { # hf JSON CMD_OURS CMD_PEER [hyperfine options...]
  local json=$1 ours=$2 theirs=$3; shift 3
  hyperfine -N --warmup 2 --runs "$RUNS" "$@" --export-json "$json" "$ours" "$theirs" >/dev/null 2>&1
}
log "CLI rows (probe, segment)"
g="Whole processes on local files (hyperfine -N; process start-up included)"
for f in long_2h.mkv h264_aac_moov_end.mp4 h264_bframes.mkv mkv_no_cues.mkv h264_aac.ts; do
  lb=$(cut -d' ' -f1 /proc/loadavg)
  hf "$work/h.json" "$bin probe --json $F/$f" \
    "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,pos,flags -of csv $F/$f"
  python3 bench/rows.py hyperfine "$work/h.json" "$rows" --group "$g" --load-before "$lb" \
    --figure "probe: tracks + all keyframes" --file "$f" --peer "ffprobe packets (keyframes)"
done
lb=$(cut -d' ' -f1 /proc/loadavg)
hf "$work/h.json" "$bin probe --json $F/long_2h.mkv" "ffprobe -v error -show_format -show_streams $F/long_2h.mkv"
python3 bench/rows.py hyperfine "$work/h.json" "$rows" --group "$g" --load-before "$lb" \
  --figure "probe: tracks + all keyframes" --file long_2h.mkv --peer "ffprobe -show_streams (tracks only: less work)"
ff_remux="ffmpeg -v error -ss 18 -i $F/bench720.mkv -t 6 -map 0:v -c copy -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null"
ff_x264="ffmpeg -v error -ss 18 -i $F/bench720_hevc_ac3.mkv -t 6 -map 0:v -c:v libx264 -preset veryfast -crf 23 -threads 2 -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null"
lb=$(cut -d' ' -f1 /proc/loadavg)
hf "$work/h.json" "$bin segment $F/bench720.mkv v1 3 -o /dev/null" "$ff_remux"
python3 bench/rows.py hyperfine "$work/h.json" "$rows" --group "$g" --load-before "$lb" \
  --figure "remux segment 3 (6 s, 720p H.264), video" --file bench720.mkv --peer "ffmpeg -ss -t -c copy (fMP4)" \
  --note "both are mostly process start-up (see the in-process row)"
lb=$(cut -d' ' -f1 /proc/loadavg)
RUNS=$TRANSCODE_RUNS hf "$work/h.json" "$bin segment $F/bench720_hevc_ac3.mkv v1-h264 3 -o /dev/null" "$ff_x264"
python3 bench/rows.py hyperfine "$work/h.json" "$rows" --group "$g" --load-before "$lb" \
  --figure "transcode segment 3 (6 s, HEVC 720p → H.264 veryfast), video" --file bench720_hevc_ac3.mkv \
  --peer "ffmpeg libx264 veryfast crf 23" --goal-ratio 1.0

# The same segments made N times inside one process (probe done, nothing cached): what a server
# spends on a cold segment, without HTTP.
inproc() { # inproc FILE RENDITION N PEER_CMD FIGURE PEER GOAL
  local lb; lb=$(cut -d' ' -f1 /proc/loadavg)
  "$bin" segment "$F/$1" "$2" 3 -o /dev/null --repeat $(($3 + 2)) 2>"$work/inproc.txt" >/dev/null
  hyperfine -N --warmup 1 --runs "$3" --export-json "$work/p.json" "$4" >/dev/null 2>&1
  python3 bench/rows.py inproc "$work/inproc.txt" "$work/p.json" "$rows" --load-before "$lb" \
    --group "Inside one process (hlsgate segment --repeat: probe done, nothing cached; the CLI peer as above)" \
    --figure "$5" --file "$1" --peer "$6" --goal-ratio "$7"
}
log "in-process rows"
inproc bench720.mkv v1 "$RUNS" "$ff_remux" "remux segment 3 (6 s, 720p H.264), video" "ffmpeg -ss -t -c copy (fMP4)" 20
inproc bench720_hevc_ac3.mkv v1-h264 "$TRANSCODE_RUNS" "$ff_x264" \
  "transcode segment 3 (6 s, HEVC 720p → H.264 veryfast), video" "ffmpeg libx264 veryfast crf 23" 1.0

# ---------------------------------------------------------------------------------------------
# 2. Servers on loopback
ng_root=$work/upstream
mkdir -p "$ng_root/static"
ng_port=$(free_port)
start_nginx "$ng_root" "$work/nginx" "$ng_port"
ng_url=http://127.0.0.1:$ng_port
# A static HLS made by the ffmpeg CLI beforehand: the floor for time-to-first-frame.
ffmpeg -nostdin -v error -i "$F/bench720.mkv" -map 0:v -map 0:a -c copy -f hls -hls_time 6 \
  -hls_segment_type fmp4 -hls_playlist_type vod -hls_segment_filename "$ng_root/static/s%d.m4s" \
  "$ng_root/static/index.m3u8"

hg_port=$(free_port)
start_hlsgate hlsgate "$hg_port" --media-root "$work" "${signed[@]}" --prefetch 0
hg_pid=$last_pid
hgp_port=$(free_port)
start_hlsgate hlsgate-prefetch "$hgp_port" --media-root "$work" "${signed[@]}"

redis_port=$(free_port)
mf_port=$(free_port)
if [ -z "$mediaflow_error" ]; then
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/redis.log" 2>&1 &
  pids+=($!)
  log "starting mediaflow-proxy"
  start_mediaflow mediaflow "$mf_port"
fi

MEDIAFLOW_ERROR=$mediaflow_error python3 - "$work/conf.json" <<PY
import json, os, sys
err = os.environ.get("MEDIAFLOW_ERROR", "")
json.dump({
  "rows": "$rows", "work": "$work", "fixtures": "$F", "hlsgate_bin": "$bin",
  "nginx": {"url": "$ng_url", "root": "$ng_root", "log": "$work/nginx/logs/access.log"},
  "hlsgate": {"base": "http://127.0.0.1:$hg_port", "api_key": "$API_KEY"},
  "hlsgate_prefetch": {"base": "http://127.0.0.1:$hgp_port"},
  "mediaflow": {"error": err} if err else {"base": "http://127.0.0.1:$mf_port", "log": "$work/mediaflow.log"},
  "static_hls": "$ng_url/static/index.m3u8",
  "rss_media_root": "$work/rss-media",
  "runs": {"server": $SERVER_RUNS, "server_transcode": $SERVER_TRANSCODE_RUNS, "player": $PLAYER_RUNS,
           "wrk": $WRK_RUNS, "wrk_secs": $WRK_SECS, "wrk_threads": $WRK_THREADS,
           "rss_clients": $RSS_CLIENTS, "rss_segments": $RSS_SEGMENTS},
}, open(sys.argv[1], "w"), indent=1)
PY
srv() { log "server figure: $1"; python3 bench/server.py "$work/conf.json" "$@"; }
srv cold
srv segment
srv upstream
srv concurrent
srv wrk
srv players

# Peak RSS: a fresh server process per target, 50 clients on 50 different files.
log "peak RSS runs"
stop "$hg_pid"
port=$(free_port)
start_hlsgate hlsgate-rss "$port" --media-root "$work" "${signed[@]}"
srv rss --pid "$last_pid" --target hlsgate --base "http://127.0.0.1:$port" >/dev/null
stop "$last_pid"
port=$(free_port)
mkdir -p "$work/rss-media"
start_hlsgate hlsgate-rss-file "$port" --media-root "$work/rss-media"
srv rss --pid "$last_pid" --target hlsgate-file --base "http://127.0.0.1:$port" >/dev/null
stop "$last_pid"
if [ -z "$mediaflow_error" ]; then
  port=$(free_port)
  start_mediaflow mediaflow-rss "$port"
  [ -n "$mediaflow_error" ] || srv rss --pid "$last_pid" --target mediaflow --base "http://127.0.0.1:$port" >/dev/null
  stop "$last_pid"
fi
srv rss-rows

# ---------------------------------------------------------------------------------------------
# 3. Whole file: the 2-hour film, every segment of every rendition written to disk
log "whole-file export"
segs=$("$bin" plan "$F/long_2h.mkv" | sed -n 's/.* segments \([0-9]*\) .*/\1/p' | head -1)
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$F/long_2h.mkv")
lb=$(cut -d' ' -f1 /proc/loadavg)
hyperfine -N --warmup 1 --runs "$EXPORT_RUNS" --export-json "$work/e.json" \
  --prepare "rm -rf $work/exp $work/ffexp" \
  "$bin export $F/long_2h.mkv $work/exp" \
  "bash -c 'mkdir -p $work/ffexp && ffmpeg -nostdin -v error -i $F/long_2h.mkv -map 0:v -map 0:a -c copy -f hls -hls_time 6 -hls_segment_type fmp4 -hls_playlist_type vod -hls_segment_filename $work/ffexp/s%d.m4s $work/ffexp/x.m3u8'" >/dev/null 2>&1
python3 bench/rows.py hyperfine "$work/e.json" "$rows" --load-before "$lb" --rate "$segs" --realtime "$dur" \
  --group "Whole file: remux of a 2-hour film to disk (process start-up included)" \
  --figure "all $segs segments (6 s) of video + audio: hlsgate export" --file "long_2h.mkv (160×90)" \
  --peer "ffmpeg -c copy -f hls -hls_segment_type fmp4"
rm -rf "$work/exp" "$work/ffexp"

# ---------------------------------------------------------------------------------------------
# The table
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
probe_bytes=$("$bin" probe --json "$F/long_2h.mkv" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["upstream"]["bytes"], "of", j["file_size"])')
echo "# hlsgate benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), commit $commit"
echo
echo "machine: $machine"
echo "load average (1/5/15 min) before: $load_before; after: $load_after; wall time $(( $(date +%s) - t_start )) s (setup and build included)"
echo "runs: RUNS=$RUNS TRANSCODE_RUNS=$TRANSCODE_RUNS SERVER_RUNS=$SERVER_RUNS SERVER_TRANSCODE_RUNS=$SERVER_TRANSCODE_RUNS PLAYER_RUNS=$PLAYER_RUNS WRK_RUNS=$WRK_RUNS WRK_SECS=$WRK_SECS EXPORT_RUNS=$EXPORT_RUNS${QUICK:+ (QUICK=$QUICK)}"
echo "peers: $(ffmpeg -version | head -1 | cut -d' ' -f1-3), $(nginx -v 2>&1 | cut -d' ' -f3), mediaflow-proxy $MEDIAFLOW_VERSION${mediaflow_error:+ (unavailable: $mediaflow_error)}, hls.js $(node -p "require('$repo/tests/players/node_modules/hls.js/package.json').version") in $(chromium --version 2>/dev/null | head -1)"
echo
python3 bench/rows.py table "$rows"
echo
echo "bytes read by \`hlsgate probe\` for long_2h.mkv: $probe_bytes"
