#!/usr/bin/env bash
# The whole test suite: lints, unit tests, end-to-end tests against real ffmpeg/ffprobe and a
# real nginx upstream. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
fixtures/make.sh long
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# No module of a crate may depend on itself through others (one owner per concern).
python3 scripts/module-cycles.py crates/*/src proxy-bin/src | grep -i 'cycle'
# The end-to-end tests run the real `hlsgate` binary: build it first.
cargo build --workspace
cargo nextest run --workspace --no-fail-fast
