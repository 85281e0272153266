#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS (default 20) on the stable toolchain.
#   scripts/fuzz.sh 20            # CI: a short bounded run of every target
#   scripts/fuzz.sh 600 probe_mkv # one target, longer
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"; shift || true
targets=("$@"); [ "${#targets[@]}" -gt 0 ] || targets=(probe_mp4 probe_mkv probe_ts probe_any demux_any progressive_mp4)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
fuzz/seed.sh
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz build -O
for t in "${targets[@]}"; do
  echo "== fuzz $t for ${secs}s"
  rm -rf "artifacts/$t"
  cargo fuzz run -O "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -max_len=262144 2>&1 \
    | grep -E "^(#[0-9]+\s+DONE|Done [0-9]+ runs|==[0-9]+==|SUMMARY|panicked)" || true
  if ls "artifacts/$t"/crash-* >/dev/null 2>&1; then echo "crash found in $t"; exit 1; fi
done
