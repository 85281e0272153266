#!/usr/bin/env bash
# Installs what hlsgate's build, tests and fixtures need on Debian/Ubuntu (idempotent).
# Needs root (or sudo). Rust itself is expected from rustup.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
pkgs=(ffmpeg nginx-light python3 util-linux pkg-config clang)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx-light's package starts a system nginx on port 80; the tests run their own on free ports.
if command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1; then :; else
  cargo install --locked cargo-nextest
fi
