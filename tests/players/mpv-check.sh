#!/usr/bin/env bash
# mpv plays a URL to the end, as fast as it can decode, with no output devices:
#
#   mpv-check.sh <url> [timeout_seconds=120] [audio-only]
#
# With "audio-only" no video is expected (an audio-only master), and the end position is not
# compared with the duration: without video, mpv's time-pos observations coalesce and the last
# one seen falls seconds short of the end even on the source .m4a itself (16.5 of 20 s, timed
# or untimed); the other players measure the played duration of audio-only streams.
# Fails when mpv exits non-zero or is killed by the timeout, when it logs any warning or error
# (--msg-level=all=warn), when playback stops more than 1 s before the duration, or when no
# video was decoded. Known-harmless lines are allowed: FFmpeg 5.1's HLS demuxer cannot read
# WebVTT renditions and says so once ("Can't support the subtitle"). A run whose only fault is
# mpv's A/V desynchronisation warning is repeated, timed at 8x and then 2x speed: that warning
# means decoding fell behind the audio clock (mpv compares the two positions by their
# timestamps), so on a loaded machine it measures the machine, not the stream; a stream whose
# timestamps disagree warns every time. In those timed retries "Audio device underrun detected"
# (the null audio output starved by the same slow decoding) is allowed too.
# Prints one JSON line; exit 0 = pass, 1 = fail, 3 = usage.
set -uo pipefail
if [ $# -lt 1 ] || [ $# -gt 3 ]; then
  echo "usage: mpv-check.sh <url> [timeout_seconds] [audio-only]" >&2
  exit 3
fi
url="$1"
limit="${2:-120}"
audio_only="${3:-}"
here="$(cd "$(dirname "$0")" && pwd)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

for attempt in 1 2 3; do
start=$(date +%s%N)
# Attempt 1 decodes untimed (as fast as it can); attempts 2 and 3, each only after a run whose
# one fault was a desync warning, play timed at 8x and then 2x, where the audio clock leads and
# a decoder starved by a loaded machine has more and more slack.
case "$attempt" in
  1) pace=(--ao-null-untimed --untimed) ;;
  2) pace=(--speed=8) ;;
  *) pace=(--speed=2) ;;
esac
timeout --kill-after=5 "$limit" mpv --vo=null --ao=null "${pace[@]}" --no-config \
  --no-ytdl --input-terminal=no --msg-level=all=warn --script="$here/mpv-report.lua" \
  -- "$url" </dev/null >"$log" 2>&1
code=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))

python3 - "$url" "$code" "$elapsed_ms" "$limit" "$log" "$attempt" "$audio_only" <<'PY'
import json, re, sys
url, code, elapsed_ms, limit, log = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
attempt = int(sys.argv[6])
audio_only = sys.argv[7] == "audio-only"
ALLOWED = [re.compile(r"hls: Can't support the subtitle")]
# In the timed retries, the null audio output reports an underrun when the loaded machine did
# not decode in time: about the machine, like the desync warning (an audio gap in the stream
# shows as a desync or a timestamp warning, which still fail).
if attempt > 1:
    ALLOWED.append(re.compile(r"^Audio device underrun detected"))
report = {"check": "mpv", "url": url, "ok": False, "exit_code": code, "elapsed_ms": elapsed_ms,
          "end_reason": None, "last_pos": None, "duration": None, "video_width": 0,
          "allowed": [], "messages": [], "failures": []}
end = None
for line in open(log, errors="replace").read().splitlines():
    if line.startswith("HLSGATE_MPV "):
        end = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    elif line.strip():
        (report["allowed"] if any(p.search(line) for p in ALLOWED) else report["messages"]).append(line[:300])
num = lambda s: float(s) if s not in (None, "nil") else None
if code == 124 or code == 137:
    report["failures"].append(f"mpv did not finish within {limit} s")
elif code != 0:
    report["failures"].append(f"mpv exited with {code}")
if end is None:
    report["failures"].append("no end-of-file report from mpv")
else:
    report["end_reason"] = end.get("reason")
    report["last_pos"] = num(end.get("last"))
    report["duration"] = num(end.get("duration"))
    report["video_width"] = int(end.get("width", "0"))
    if end.get("reason") != "eof":
        report["failures"].append(f"playback ended with reason {end.get('reason')} ({end.get('error')})")
    if report["video_width"] <= 0 and not audio_only:
        report["failures"].append("no video decoded")
    d, last = report["duration"], report["last_pos"]
    if d is None or last is None:
        report["failures"].append(f"no position/duration (last {last}, duration {d})")
    elif last < d - 1.0 and not audio_only:
        report["failures"].append(f"playback stopped at {last:.3f} s of {d:.3f} s")
if report["messages"]:
    report["failures"].append(f"{len(report['messages'])} warning/error line(s) from mpv")
report["ok"] = not report["failures"]
report["attempts"] = attempt
# Untimed playback on a loaded machine sometimes makes mpv warn about A/V desynchronisation
# (its video decoding fell behind its untimed null audio). If that warning is the only fault,
# run once more: a stream whose timestamps really disagree warns every time.
DESYNC = ("Audio/Video desynchronisation", "hardware, temporary CPU", "position will not match")
only_desync = report["messages"] and all(m.startswith(DESYNC) for m in report["messages"])
if attempt < 3 and report["failures"] == [f"{len(report['messages'])} warning/error line(s) from mpv"] and only_desync:
    sys.exit(10)
print(json.dumps(report))
sys.exit(0 if report["ok"] else 1)
PY
rc=$?
[ "$rc" = 10 ] || exit "$rc"
done
