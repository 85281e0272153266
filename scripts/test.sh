#!/usr/bin/env bash
# The whole test suite: lints, unit tests, end-to-end tests against real ffmpeg/ffprobe and a
# real nginx upstream. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
fixtures/make.sh long
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The end-to-end tests run the real `hlsgate` binary: build it first.
cargo build --workspace
cargo nextest run --workspace --no-fail-fast
