#!/usr/bin/env bash
# Installs what is missing, builds hlsgate (release), and runs it.
#   scripts/run.sh                          # serve the fixtures folder on http://127.0.0.1:8080
#   scripts/run.sh serve --media-root DIR [--listen ADDR] [--secret S] …
#   scripts/run.sh probe FILE_OR_URL [--json]
#   scripts/run.sh plan FILE_OR_URL [--m3u8]
#   scripts/run.sh export FILE_OR_URL DIR   # the whole HLS tree into a folder
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p hlsgate
if [ "$#" -eq 0 ]; then
  fixtures/make.sh >/dev/null
  echo "open http://127.0.0.1:8080/ (Ctrl-C to stop)"
  exec target/release/hlsgate serve --listen 127.0.0.1:8080 --media-root fixtures/out
else
  exec target/release/hlsgate "$@"
fi
