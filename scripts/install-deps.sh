#!/usr/bin/env bash
# Installs what hlsgate needs on Debian/Ubuntu (idempotent). Needs root (or sudo). Rust itself is
# expected from rustup.
#
#   scripts/install-deps.sh          # build, tests and fixtures: FFmpeg, players, nginx, Redis…
#   scripts/install-deps.sh serve    # only what building and serving need (scripts/run.sh):
#                                    # FFmpeg and its headers, clang, pkg-config, node for the page
set -euo pipefail
mode="${1:-test}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
# libav*-dev + clang: ffmpeg-next (the pipeline's FFmpeg glue) builds against Debian's FFmpeg 5.1.
# redis-server: the cache tests start their own on free ports. chromium and mpv: the end-to-end
# player checks (tests/players). curl: the player tests call the API. time: /usr/bin/time measures
# the probe's peak RSS in the hostile-input tests. vlc-bin, vlc-plugin-base and the GStreamer
# packages: the VLC and GStreamer player checks (tests/players/vlc-check.py, gst-check.py; the
# latter needs Debian's python3 with python3-gi and gir1.2-gstreamer-1.0).
pkgs=(ffmpeg libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libswscale-dev
  libswresample-dev libavutil-dev nginx-light python3 util-linux pkg-config clang libclang-dev
  redis-server curl chromium chromium-driver mpv time vlc-bin vlc-plugin-base gstreamer1.0-tools
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav python3-gi
  gir1.2-gstreamer-1.0)
if [ "$mode" = serve ]; then
  pkgs=(ffmpeg libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libswscale-dev
    libswresample-dev libavutil-dev pkg-config clang libclang-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node and npm (the checks' harness and the page's hls.js): Debian's packages unless a node with
# its own npm (e.g. NodeSource's, which conflicts with Debian's npm package) is already there.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Node packages, exactly as locked (no browser download: the checks drive Debian's chromium).
# A stamp (a copy of the lock file) skips `npm ci` when node_modules already matches the lock.
root="$(cd "$(dirname "$0")/.." && pwd)"
npm_dirs=("$root/tests/players" "$root/crates/server/assets")
[ "$mode" = serve ] && npm_dirs=("$root/crates/server/assets")
for dir in "${npm_dirs[@]}"; do
  stamp="$dir/node_modules/.hlsgate-lock.json"
  if ! cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$dir/package-lock.json" "$stamp"
  fi
done
# The page embeds hls.js from npm (crates/server/assets/README.md); copied only when it changed,
# so cargo does not rebuild the server for nothing.
hls_src="$root/crates/server/assets/node_modules/hls.js/dist/hls.min.js"
hls_dst="$root/crates/server/assets/hls.min.js"
cmp -s "$hls_src" "$hls_dst" || cp "$hls_src" "$hls_dst"
[ "$mode" = serve ] && exit 0
# nginx-light's package starts a system nginx on port 80; the tests run their own on free ports.
if command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1; then :; else
  cargo install --locked cargo-nextest
fi
