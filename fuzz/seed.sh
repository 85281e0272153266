#!/usr/bin/env bash
# Seeds each fuzz target's corpus with the head (and a cut-down whole) of the fixtures.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../fixtures/out"
for t in probe_mp4 probe_mkv probe_ts probe_any demux_any progressive_mp4; do mkdir -p "$here/corpus/$t"; done
# Crafted attack files (made by the hostile-input tests, committed in seeds/): nesting bombs,
# absurd durations, sample-count bombs.
for t in probe_mp4 probe_mkv probe_ts; do cp "$here/seeds/$t"/* "$here/corpus/$t/"; done
# The end-to-end attack files (tests/src/crafted.rs), by container.
for f in "$here"/../fixtures/crafted/*; do
  case "$f" in
    *.mp4) cp "$f" "$here/corpus/probe_mp4/" ;;
    *.mkv) cp "$f" "$here/corpus/probe_mkv/" ;;
    *.ts) cp "$f" "$here/corpus/probe_ts/" ;;
  esac
done
for f in "$out"/*.mp4; do head -c 65536 "$f" > "$here/corpus/probe_mp4/$(basename "$f")" || true; done
for f in "$out"/*.mkv "$out"/*.webm; do [ "$(basename "$f")" = long_2h.mkv ] && continue; head -c 65536 "$f" > "$here/corpus/probe_mkv/$(basename "$f")" || true; done
for f in "$out"/*.ts; do head -c 65424 "$f" > "$here/corpus/probe_ts/$(basename "$f")"; done
cp "$here"/corpus/probe_mp4/* "$here"/corpus/probe_mkv/* "$here"/corpus/probe_ts/* "$here/corpus/probe_any/"
# The demuxer needs files the probe indexes: heads that index (fragmented MP4, TS, MKV
# without a Segment size) and the small audio-only file whole.
cp "$here"/corpus/probe_any/* "$here/corpus/demux_any/"
cp "$out/aac_only.m4a" "$here/corpus/demux_any/"
# The progressive layout needs MP4 files whose moov the probe reads: the MP4 heads (faststart
# files keep their moov in the first 64 KiB), the crafted MP4s and the small audio file whole.
cp "$here"/corpus/probe_mp4/* "$here/corpus/progressive_mp4/"
cp "$out/aac_only.m4a" "$here/corpus/progressive_mp4/"
