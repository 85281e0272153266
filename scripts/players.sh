#!/usr/bin/env bash
# The full player matrix against the real `hlsgate serve` (not run by CI: several minutes):
# every playable fixture × {ffmpeg, hls.js, mpv, VLC, GStreamer playbin, playbin3}, a table of
# PASS/FAIL with the first reason of each failure, exit 1 on any failure.
#
#   scripts/players.sh [--long] [FIXTURE...]     (--long adds long_*.mkv and bench720*)
set -euo pipefail
cd "$(dirname "$0")/.."
# `--workspace` builds the hlsgate binary the example starts (`--tests` alone would not).
cargo build --workspace
cargo build -p hlsgate-tests --example players_matrix
exec target/debug/examples/players_matrix "$@"
