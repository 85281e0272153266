#!/usr/bin/env bash
# hlsgate's benchmark command: side by side with the ffmpeg tools doing the same job, same run.
# Prints a markdown table (median, min, max of N runs, load average) to stdout.
#
#   bench/run.sh            # probe and segment benchmarks
#
# Figures: time to index a 2-hour MKV (Cues) and the other fixtures from local disk, against
#   - ffprobe -show_format -show_streams (tracks only: less work than ours), and
#   - ffprobe listing the video keyframes from packets (the same job as ours: keyframes + offsets).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null; }
fixtures/make.sh long >/dev/null
cargo build --release -p hlsgate >/dev/null 2>&1
bin=target/release/hlsgate
F=fixtures/out
runs="${RUNS:-20}"
out=$(mktemp -d)
echo "# hlsgate benchmarks — $(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| job | file | hlsgate median (min–max) | peer | peer median (min–max) | ratio (peer / hlsgate) |"
echo "|---|---|---|---|---|---|"
row() { # row JOB FILE PEERNAME HLSGATE_CMD PEER_CMD
  local job=$1 file=$2 peer=$3 ours=$4 theirs=$5
  hyperfine -N --warmup 2 --runs "$runs" --export-json "$out/r.json" "$ours" "$theirs" >/dev/null 2>&1
  python3 - "$out/r.json" "$job" "$file" "$peer" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
def f(x): return f"{x['median']*1000:.1f} ms ({x['min']*1000:.1f}–{x['max']*1000:.1f})"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {f(r[0])} | {sys.argv[4]} | {f(r[1])} | {r[1]['median']/r[0]['median']:.1f}× |")
PY
}
for f in long_2h.mkv h264_aac_moov_end.mp4 h264_bframes.mkv mkv_no_cues.mkv h264_aac.ts; do
  row "probe (tracks + all keyframes)" "$f" "ffprobe packets (keyframes)" \
    "$bin probe --json $F/$f" \
    "ffprobe -v error -select_streams v:0 -show_entries packet=pts_time,pos,flags -of csv $F/$f"
done
row "probe (tracks + all keyframes)" long_2h.mkv "ffprobe -show_streams (tracks only)" \
  "$bin probe --json $F/long_2h.mkv" "ffprobe -v error -show_format -show_streams $F/long_2h.mkv"

# Segments (issue "Segment pipeline"): one 6 s segment of a 720p file, whole process each time
# (probe + plan + read + make + write), against the ffmpeg CLI doing the same unit of work.
fixtures/make.sh bench >/dev/null
row "remux segment 3 (6 s, 720p H.264)" bench720.mkv "ffmpeg -ss -t -c copy (fMP4)" \
  "$bin segment $F/bench720.mkv v1 3 -o /dev/null" \
  "ffmpeg -v error -ss 18 -i $F/bench720.mkv -t 6 -map 0:v -c copy -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null"
# The same segment made in a running process (probe done, nothing cached): what a server spends.
inproc() { # inproc JOB FILE PEERNAME "HLSGATE ARGS" PEER_CMD N
  local job=$1 file=$2 peer=$3 args=$4 theirs=$5 n=$6
  $bin segment $args -o /dev/null --repeat $((n + 2)) 2> "$out/inproc.txt" >/dev/null
  hyperfine -N --warmup 1 --runs "$n" --export-json "$out/p.json" "$theirs" >/dev/null 2>&1
  python3 - "$out/inproc.txt" "$out/p.json" "$job" "$file" "$peer" <<'PY'
import json, statistics, sys
ms = [float(l.split()[1]) for l in open(sys.argv[1]) if l.startswith("make_ms")][2:]
p = json.load(open(sys.argv[2]))["results"][0]
med = statistics.median(ms)
print(f"| {sys.argv[3]} (in a running process) | {sys.argv[4]} | {med:.1f} ms ({min(ms):.1f}–{max(ms):.1f}) | {sys.argv[5]} | {p['median']*1000:.1f} ms ({p['min']*1000:.1f}–{p['max']*1000:.1f}) | {p['median']*1000/med:.1f}× |")
PY
}
inproc "remux segment 3 (6 s, 720p H.264)" bench720.mkv "ffmpeg -ss -t -c copy (fMP4)" \
  "$F/bench720.mkv v1 3" \
  "ffmpeg -v error -ss 18 -i $F/bench720.mkv -t 6 -map 0:v -c copy -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null" "$runs"
runs_saved=$runs; runs="${TRANSCODE_RUNS:-5}"
row "transcode segment 3 (6 s, HEVC 720p → H.264 veryfast)" bench720_hevc_ac3.mkv "ffmpeg libx264 veryfast crf 23" \
  "$bin segment $F/bench720_hevc_ac3.mkv v1-h264 3 -o /dev/null" \
  "ffmpeg -v error -ss 18 -i $F/bench720_hevc_ac3.mkv -t 6 -map 0:v -c:v libx264 -preset veryfast -crf 23 -threads 2 -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null"
row "transcode audio segment 3 (6 s, AC-3 5.1 → AAC stereo)" bench720_hevc_ac3.mkv "ffmpeg aac 128k stereo" \
  "$bin segment $F/bench720_hevc_ac3.mkv a2 3 -o /dev/null" \
  "ffmpeg -v error -ss 18 -i $F/bench720_hevc_ac3.mkv -t 6 -map 0:a -c:a aac -b:a 128k -ac 2 -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null"
inproc "transcode segment 3 (6 s, HEVC 720p → H.264 veryfast)" bench720_hevc_ac3.mkv "ffmpeg libx264 veryfast crf 23" \
  "$F/bench720_hevc_ac3.mkv v1-h264 3" \
  "ffmpeg -v error -ss 18 -i $F/bench720_hevc_ac3.mkv -t 6 -map 0:v -c:v libx264 -preset veryfast -crf 23 -threads 2 -f mp4 -movflags frag_keyframe+empty_moov -y /dev/null" "$runs"
runs=$runs_saved
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); bytes read by hlsgate for long_2h.mkv: $($bin probe --json $F/long_2h.mkv | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["upstream"]["bytes"], "of", j["file_size"])')"
rm -rf "$out"
