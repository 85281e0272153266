#!/usr/bin/env bash
# Installs what serving needs (FFmpeg, its headers, clang, node for the page: not the players,
# nginx or Redis the tests use), builds hlsgate (release) and runs it. Paths are taken as given,
# relative to where you are.
#   scripts/run.sh                          # serve the fixtures folder on http://127.0.0.1:8080
#   scripts/run.sh serve --media-root DIR [--listen ADDR] [--secret S] …
#   scripts/run.sh probe FILE_OR_URL [--json]
#   scripts/run.sh plan FILE_OR_URL [--m3u8]
#   scripts/run.sh export FILE_OR_URL DIR   # the whole HLS tree into a folder
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
"$repo/scripts/install-deps.sh" serve
cargo build --release -p hlsgate --manifest-path "$repo/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$repo/target}/release/hlsgate"
if [ "$#" -eq 0 ]; then
  "$repo/fixtures/make.sh" >/dev/null
  echo "open http://127.0.0.1:8080/ (Ctrl-C to stop)"
  exec "$bin" serve --listen 127.0.0.1:8080 --media-root "$repo/fixtures/out"
else
  exec "$bin" "$@"
fi
