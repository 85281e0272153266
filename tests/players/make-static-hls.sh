#!/usr/bin/env bash
# Makes a static HLS (fMP4 segments, VOD) from a video file with the ffmpeg CLI, as a
# reference the player checks must pass on — and, with a breakage, one they must fail on.
#
#   make-static-hls.sh <input> <outdir> [missing-segment|corrupt-segment|bad-init]
#   make-static-hls.sh --break <missing-segment|corrupt-segment|bad-init> <outdir>   (in place)
#
# ffmpeg writes the media playlists and segments (video in r0/, each audio track in rN/, one
# WebVTT file per subtitle track in subsN/); this script writes master.m3u8 itself, because
# ffmpeg 5.1's master omits EXT-X-STREAM-INF for copied streams (no bitrate known) and cannot put
# subtitles beside fMP4 segments.
#
# Breakages: missing-segment deletes a video segment the playlist lists (a 404 mid-stream);
# corrupt-segment overwrites a video segment with random bytes; bad-init truncates the video
# init segment.
set -euo pipefail

break_hls() { # <breakage> <outdir>
  case "$1" in
    "") ;;
    missing-segment) rm "$2/r0/seg4.m4s" ;;
    corrupt-segment)
      n="$(stat -c %s "$2/r0/seg4.m4s")"
      head -c "$n" /dev/urandom >"$2/r0/seg4.m4s"
      ;;
    bad-init) truncate -s 40 "$2/r0/init_0.mp4" ;;
    *) echo "make-static-hls.sh: unknown breakage '$1'" >&2; exit 1 ;;
  esac
}

if [ "${1:-}" = --break ]; then
  break_hls "$2" "$3"
  exit 0
fi
in="$1"
out="$2"
breakage="${3:-}"
rm -rf "$out"
mkdir -p "$out"

probe() { ffprobe -v error -select_streams "$1" -show_entries "$2" -of csv=p=0 "$in"; }

n_audio="$(probe a stream=index | wc -l)"
n_subs="$(probe s stream=index | wc -l)"
duration="$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$in")"

# Video and audio: ffmpeg's hls muxer, segments on the source keyframes.
maps=(-map 0:v:0)
vsm="v:0,agroup:aud"
for ((i = 0; i < n_audio; i++)); do
  maps+=(-map "0:a:$i")
  vsm+=" a:$i,agroup:aud"
done
# AAC is copied (fast, exact); anything else becomes stereo AAC-LC.
acodec=(-c:a aac -b:a 128k -ac 2)
if [ "$n_audio" -gt 0 ] && ! probe a stream=codec_name | grep -qv '^aac$'; then acodec=(-c:a copy); fi
# Video is re-encoded without B-frames (H.264 High, a keyframe every 2 s): ffmpeg 5.1's fMP4
# segments of a B-frame stream start at the first composition offset (0.08 s), which hls.js
# reports as a buffer hole — the reference must be clean.
ffmpeg -v error -nostdin -y -i "$in" "${maps[@]}" \
  -c:v libx264 -preset veryfast -profile:v high -bf 0 -b:v 400k -pix_fmt yuv420p \
  -force_key_frames 'expr:gte(t,n_forced*2)' -sc_threshold 0 -x264-params threads=2 \
  "${acodec[@]}" \
  -f hls -hls_time 6 -hls_segment_type fmp4 -hls_playlist_type vod \
  -hls_fmp4_init_filename init.mp4 -hls_segment_filename "$out/r%v/seg%d.m4s" \
  -var_stream_map "$vsm" "$out/r%v/index.m3u8"

# Subtitles: one WebVTT file per track, listed as a single segment covering the whole file.
for ((i = 0; i < n_subs; i++)); do
  mkdir -p "$out/subs$i"
  ffmpeg -v error -nostdin -y -i "$in" -map "0:s:$i" -c:s webvtt -f webvtt "$out/subs$i/all.vtt"
  dur_ceil="$(python3 -c "import math,sys; print(math.ceil(float(sys.argv[1])))" "$duration")"
  printf '#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:%s\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:%s,\nall.vtt\n#EXT-X-ENDLIST\n' \
    "$dur_ceil" "$duration" >"$out/subs$i/index.m3u8"
done

# CODECS: avc1.PPCCLL from the SPS fields ffprobe reports for what x264 wrote.
vprobe() { ffprobe -v error -show_entries "$1" -of csv=p=0 "$out/r0/index.m3u8"; }
profile="$(vprobe stream=profile | sed -n 1p)"
level="$(vprobe stream=level | sed -n 1p)"
case "$profile" in
  High) pc=6400 ;;
  Main) pc=4d40 ;;
  "Constrained Baseline") pc=42e0 ;;
  Baseline) pc=4200 ;;
  *) echo "make-static-hls.sh: unknown H.264 profile '$profile'" >&2; exit 1 ;;
esac
avc="avc1.${pc}$(printf '%02x' "$level")"
size="$(vprobe stream=width,height | sed -n 1p | tr , x)"
# Peak bandwidth: the largest segment (video plus the first audio track) over its duration.
bandwidth="$(python3 - "$out" "$n_audio" <<'PY'
import os, re, sys
out, n_audio = sys.argv[1], int(sys.argv[2])
def rates(d):
    text = open(os.path.join(out, d, "index.m3u8")).read()
    durs = [float(x) for x in re.findall(r"#EXTINF:([0-9.]+)", text)]
    segs = [l for l in text.splitlines() if l and not l.startswith("#")]
    return [os.path.getsize(os.path.join(out, d, s)) * 8 / max(t, 0.001) for s, t in zip(segs, durs)]
v = max(rates("r0"))
a = max(rates("r1")) if n_audio > 0 else 0
print(int((v + a) * 1.1))
PY
)"

{
  echo '#EXTM3U'
  echo '#EXT-X-VERSION:7'
  echo '#EXT-X-INDEPENDENT-SEGMENTS'
  for ((i = 0; i < n_audio; i++)); do
    lang="$(probe "a:$i" stream_tags=language | sed -n 1p)"
    lang="${lang:-und}"
    default=NO
    [ "$i" = 0 ] && default=YES
    echo "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Audio $((i + 1)) ($lang)\",LANGUAGE=\"$lang\",DEFAULT=$default,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"r$((i + 1))/index.m3u8\""
  done
  for ((i = 0; i < n_subs; i++)); do
    lang="$(probe "s:$i" stream_tags=language | sed -n 1p)"
    lang="${lang:-und}"
    echo "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"Subtitles $((i + 1)) ($lang)\",LANGUAGE=\"$lang\",DEFAULT=NO,AUTOSELECT=NO,URI=\"subs$i/index.m3u8\""
  done
  codecs="$avc"
  attrs="BANDWIDTH=$bandwidth,RESOLUTION=$size"
  if [ "$n_audio" -gt 0 ]; then
    codecs="$avc,mp4a.40.2"
    attrs+=",AUDIO=\"aud\""
  fi
  [ "$n_subs" -gt 0 ] && attrs+=",SUBTITLES=\"subs\""
  echo "#EXT-X-STREAM-INF:$attrs,CODECS=\"$codecs\""
  echo 'r0/index.m3u8'
} >"$out/master.m3u8"

break_hls "$breakage" "$out"
echo "$out/master.m3u8"
