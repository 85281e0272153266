#!/usr/bin/env bash
# Installs what is missing, builds hlsgate, and runs it. Today hlsgate can probe and plan (the
# HTTP server arrives with issue "HTTP front end"):
#   scripts/run.sh                          # probe + plan a fixture
#   scripts/run.sh probe FILE_OR_URL [--json]
#   scripts/run.sh plan FILE_OR_URL [--m3u8]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p hlsgate
if [ "$#" -eq 0 ]; then
  fixtures/make.sh >/dev/null
  target/release/hlsgate probe fixtures/out/h264_bframes.mkv
  echo
  target/release/hlsgate plan fixtures/out/h264_bframes.mkv
else
  target/release/hlsgate "$@"
fi
