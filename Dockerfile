# Untested here (no Docker engine on the dev machines). Builds the hlsgate binary and a runtime
# image with FFmpeg 5.1 from Debian 12.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends clang libclang-dev pkg-config \
    libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libswscale-dev \
    libswresample-dev libavutil-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The player page embeds hls.js from npm (crates/server/assets/README.md).
RUN apt-get update && apt-get install -y --no-install-recommends npm \
    && cd crates/server/assets && npm ci --no-audit --no-fund \
    && cp node_modules/hls.js/dist/hls.min.js hls.min.js
RUN cargo build --release -p hlsgate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ffmpeg ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/hlsgate /usr/local/bin/hlsgate
# Two glibc arenas: resident memory follows the cache budget (docs/caching.md).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["hlsgate"]
