//! `hlsgate`: on-the-fly HLS from any media file.
//!
//! Subcommands: `serve` (the HTTP server, see `serve.rs` and docs/config.md), `probe` (what is
//! inside a file, where its keyframes are, what reading it cost) and `plan` (the segment table).

mod serve;

mod export;

use anyhow::Context as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

/// On-the-fly HLS (fMP4) from any media file, local or on an HTTP upstream.
#[derive(Debug, Parser)]
#[command(name = "hlsgate", version, about)]
struct Cli {
    /// Log lines as text (colour only on a terminal) or as JSON objects, one per line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`, `span`), for log
    /// collectors.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HLS over HTTP: playlists, segments, the original file, the token API, the player.
    Serve(Box<serve::ServeArgs>),
    /// Index a file: tracks, codecs, duration, keyframes, and the requests/bytes it took.
    Probe {
        /// A local path, or an http(s):// URL read with Range requests.
        source: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A header sent with every upstream request, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Plan the segments of a file and print the segment table.
    Plan {
        /// A local path, or an http(s):// URL read with Range requests.
        source: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Target segment duration in seconds.
        #[arg(long, default_value_t = 6.0)]
        target: f64,
        /// Plan for a transcoded rendition (keyframes may be forced on a grid).
        #[arg(long)]
        transcode: bool,
        /// Print the media playlist instead of the table.
        #[arg(long)]
        m3u8: bool,
        /// A header sent with every upstream request, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Write the whole HLS tree of a file (master, playlists, init, segments) into a folder.
    Export {
        /// A local path, or an http(s):// URL read with Range requests.
        source: String,
        /// The folder to write into (created).
        dir: std::path::PathBuf,
        /// A header sent with every upstream request, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
        /// Audio codecs the players decode besides AAC (`ac3,eac3,flac,opus,mp3` or `all`): the
        /// master lists the originals copied in them (every rendition is written either way).
        #[arg(long, value_name = "CODECS", default_value = "")]
        audio: String,
        /// Video codecs the players decode (`h264`, `hevc`): the master lists only those, and
        /// naming `hevc` puts the copied video first (every rendition is written either way).
        #[arg(long, value_name = "CODECS", default_value = "")]
        video: String,
        /// Also write the quality ladder (H.264 rungs below the top video: every rung of the
        /// whole file is transcoded now, where the server makes each only when asked).
        #[arg(long)]
        ladder: bool,
    },
    /// Write one progressive MP4 (`moov` first) of an MP4 file's copied tracks: the same bytes
    /// as the server's `download.mp4`.
    Download {
        /// A local path, or an http(s):// URL read with Range requests.
        source: String,
        /// The file to write (replaced when it exists; written beside it, then renamed).
        out: std::path::PathBuf,
        /// `all` to carry every audio track (AC-3, E-AC-3…), not only the AAC ones.
        #[arg(long, value_name = "aac|all", default_value = "aac")]
        audio: String,
        /// A header sent with every upstream request, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
    /// Make one output: `init`, a segment number, `stream-init`, `stream-N` or `thumb-MS[@WIDTH]`.
    Segment {
        /// A local path, or an http(s):// URL read with Range requests.
        source: String,
        /// The rendition id (`v1`, `v1-h264`, `a2`, `s3`, as in the master playlist; an unknown id
        /// lists the real ones).
        rendition: String,
        /// What to make.
        what: String,
        /// Write here instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<std::path::PathBuf>,
        /// Make it this many times in this process (source already probed, nothing cached) and
        /// print the time of each make on stderr: what a running server spends on a cold
        /// segment (the benchmark uses it).
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// A header sent with every upstream request, `Name: value` (repeatable).
        #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
        headers: Vec<String>,
    },
}

/// The JSON `probe` prints: the index, in seconds, for people and scripts.
#[derive(Debug, Serialize)]
struct ProbeReport<'a> {
    source: &'a str,
    container: &'static str,
    file_size: u64,
    /// Seconds.
    duration: f64,
    /// Seconds (presentation start of the main track).
    start: f64,
    tracks: Vec<TrackReport<'a>>,
    keyframe_count: usize,
    keyframes: Vec<KeyframeReport>,
    upstream: Cost,
}

#[derive(Debug, Serialize)]
struct TrackReport<'a> {
    id: u64,
    kind: probe::TrackKind,
    codec: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    default: bool,
    forced: bool,
    timescale: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    video: Option<&'a probe::VideoInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<&'a probe::AudioInfo>,
}

#[derive(Debug, Serialize)]
struct KeyframeReport {
    /// Seconds.
    pts: f64,
    /// Byte offset.
    offset: u64,
}

#[derive(Debug, Serialize)]
struct Cost {
    requests: u64,
    bytes: u64,
}

/// Opens a CLI source argument with `-H` headers.
async fn open_source(
    arg: &str,
    headers: &[String],
) -> anyhow::Result<std::sync::Arc<dyn source::ByteSource>> {
    let headers = headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| anyhow::anyhow!("--header {h:?} is not `Name: value`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let upstream = source::HttpUpstream::new(source::HttpConfig::default())?;
    Ok(source::open_arg(arg, &upstream, &headers).await?)
}

async fn index_of(arg: &str, headers: &[String]) -> anyhow::Result<(probe::MediaIndex, Cost)> {
    let src = open_source(arg, headers).await?;
    let index = pipeline::io::probe(&src).await?.index;
    // The source's own counter includes an HTTP source's opening request.
    let stats = src.stats();
    Ok((
        index,
        Cost {
            requests: stats.requests(),
            bytes: stats.bytes(),
        },
    ))
}

fn report<'a>(arg: &'a str, ix: &'a probe::MediaIndex, cost: Cost) -> ProbeReport<'a> {
    ProbeReport {
        source: arg,
        container: ix.container.name(),
        file_size: ix.file_size,
        duration: ix.duration_secs(),
        start: ix.secs(ix.start),
        tracks: ix
            .tracks
            .iter()
            .map(|t| TrackReport {
                id: t.id,
                kind: t.kind,
                codec: t.codec.name(),
                language: t.language.as_deref(),
                title: t.title.as_deref(),
                default: t.default,
                forced: t.forced,
                timescale: t.timescale,
                duration: t.duration.map(|d| d as f64 / f64::from(t.timescale.max(1))),
                video: t.video.as_ref(),
                audio: t.audio.as_ref(),
            })
            .collect(),
        keyframe_count: ix.keyframes.len(),
        keyframes: ix
            .keyframes
            .iter()
            .map(|k| KeyframeReport {
                pts: ix.secs(k.pts),
                offset: k.offset,
            })
            .collect(),
        upstream: cost,
    }
}

fn probe_text(r: &ProbeReport<'_>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    // Writing to a String cannot fail: the results are ignored.
    let _ = writeln!(out, "source     {}", r.source);
    let _ = writeln!(out, "container  {}  ({} bytes)", r.container, r.file_size);
    let _ = writeln!(
        out,
        "duration   {:.3} s (start {:.3} s)",
        r.duration, r.start
    );
    for t in &r.tracks {
        let mut line = format!("track {:<4} {:?} {}", t.id, t.kind, t.codec);
        if let Some(v) = t.video {
            line.push_str(&format!(" {}x{}", v.width, v.height));
            if let Some(f) = v.frame_rate {
                line.push_str(&format!(" {:.3} fps", f.as_f64()));
            }
            if let (Some(p), Some(l)) = (v.profile, v.level) {
                line.push_str(&format!(" profile {p} level {l}"));
            }
            if let Some(b) = v.bit_depth {
                line.push_str(&format!(" {b}-bit"));
            }
            if v.rotation != 0 {
                line.push_str(&format!(" rotated {}", v.rotation));
            }
        }
        if let Some(a) = t.audio {
            line.push_str(&format!(" {} Hz {} ch", a.sample_rate, a.channels));
        }
        if let Some(l) = t.language {
            line.push_str(&format!(" [{l}]"));
        }
        if let Some(n) = t.title {
            line.push_str(&format!(" \"{n}\""));
        }
        if t.default {
            line.push_str(" default");
        }
        let _ = writeln!(out, "{line}");
    }
    let first: Vec<String> = r
        .keyframes
        .iter()
        .take(5)
        .map(|k| format!("{:.3}@{}", k.pts, k.offset))
        .collect();
    let _ = writeln!(
        out,
        "keyframes  {} (first: {})",
        r.keyframe_count,
        first.join(" ")
    );
    let _ = writeln!(
        out,
        "upstream   {} requests, {} bytes",
        r.upstream.requests, r.upstream.bytes
    );
    out
}

/// Writes to stdout; a reader that went away (`| head`) ends the output quietly.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(*args).await?,
        Command::Probe {
            source,
            json,
            headers,
        } => {
            let (ix, cost) = index_of(&source, &headers).await?;
            let r = report(&source, &ix, cost);
            if json {
                emit(&(serde_json::to_string_pretty(&r)? + "\n"))?;
            } else {
                emit(&probe_text(&r))?;
            }
        }
        Command::Plan {
            source,
            json,
            target,
            transcode,
            m3u8,
            headers,
        } => {
            let (ix, _) = index_of(&source, &headers).await?;
            let opts = plan::PlanOptions {
                target_secs: target,
                mode: if transcode {
                    plan::VideoMode::Transcode
                } else {
                    plan::VideoMode::Passthrough
                },
                ..plan::PlanOptions::default()
            };
            let p = plan::plan(&ix, &opts)?;
            if json {
                emit(&(serde_json::to_string_pretty(&p)? + "\n"))?;
            } else if m3u8 {
                emit(&p.media_playlist("init.mp4", |i| format!("{i}.m4s")))?;
            } else {
                emit(&p.table())?;
            }
        }
        Command::Export {
            source,
            dir,
            headers,
            audio,
            video,
            ladder,
        } => {
            let src = open_source(&source, &headers).await?;
            let caps = plan::Caps::parse(&audio, &video);
            let mut opts = pipeline::MediaOptions::default();
            opts.renditions.ladder = ladder;
            let done = export::export(src, &dir, opts, &caps).await?;
            emit(&format!(
                "wrote {} files, {} bytes, into {}\n",
                done.files,
                done.bytes,
                dir.display()
            ))?;
        }
        Command::Download {
            source,
            out,
            audio,
            headers,
        } => {
            let all_audio = match audio.as_str() {
                "aac" | "" => false,
                "all" => true,
                other => anyhow::bail!("--audio {other}: use aac or all"),
            };
            let src = open_source(&source, &headers).await?;
            let bytes = export::download(src, &out, all_audio).await?;
            emit(&format!("wrote {bytes} bytes into {}\n", out.display()))?;
        }
        Command::Segment {
            source,
            rendition,
            what,
            output,
            repeat,
            headers,
        } => {
            let src = open_source(&source, &headers).await?;
            let media = std::sync::Arc::new(
                pipeline::io::load(&src, pipeline::MediaOptions::default()).await?,
            );
            let out = export::output(&media, &rendition, &what)?;
            let mut bytes = Vec::new();
            for _ in 0..repeat.max(1) {
                let t = std::time::Instant::now();
                bytes = export::make(&media, &src, out.clone()).await?;
                if repeat > 1 {
                    eprintln!("make_ms {:.3}", t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            match output {
                Some(path) => std::fs::write(&path, bytes)
                    .with_context(|| format!("writing {}", path.display()))?,
                None => {
                    use std::io::Write as _;
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&bytes)?;
                    stdout.flush()?;
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs one line per request at info; the one-shot commands only warnings.
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    // mp4-atom warns about every box it does not model (`sdtp`, `udta` children…): ordinary
    // files, not something a user can act on. Its lines show only when RUST_LOG names it.
    let quiet_atoms = || "mp4_atom=error".parse().ok();
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if v.contains("mp4_atom") => tracing_subscriber::EnvFilter::new(v),
        Ok(v) => {
            let f = tracing_subscriber::EnvFilter::new(v);
            match quiet_atoms() {
                Some(d) => f.add_directive(d),
                None => f,
            }
        }
        Err(_) => tracing_subscriber::EnvFilter::new(format!("{default_level},mp4_atom=error")),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().with_current_span(true).init(),
        // Colour codes only on a terminal, never in files or pipes.
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hlsgate: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hlsgate: {e:#}");
            ExitCode::from(1)
        }
    }
}
