//! `hlsgate export` and `hlsgate segment`: the pipeline from the command line.
//!
//! `export` writes the whole HLS tree of a source into a folder (master playlist, every
//! rendition's playlist, init and segments) — the same bytes the server would serve.
//! `segment` makes one output in a fresh process, which is how the tests prove that segments are
//! independent of each other.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use pipeline::{Media, MediaOptions, Output};
use plan::RenditionKind;
use source::ByteSource;

/// Makes `out` on a blocking thread.
pub async fn make(
    media: &Arc<Media>,
    src: &Arc<dyn ByteSource>,
    out: Output,
) -> anyhow::Result<Vec<u8>> {
    let ranges = media.needs(&out)?;
    let data = pipeline::io::fetch(src.as_ref(), &ranges).await?;
    let m = Arc::clone(media);
    Ok(tokio::task::spawn_blocking(move || m.make(&out, &data)).await??)
}

/// Counts of what an export wrote.
#[derive(Debug, Default)]
pub struct Exported {
    /// Files written.
    pub files: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes the whole HLS tree of `src` under `dir`: every rendition, the master listing what
/// `caps` asks for.
pub async fn export(
    src: Arc<dyn ByteSource>,
    dir: &Path,
    opts: MediaOptions,
    caps: &plan::AudioCaps,
) -> anyhow::Result<Exported> {
    let media = Arc::new(pipeline::io::load(&src, opts).await?);
    let mut done = Exported::default();
    let mut write = |path: &Path, bytes: &[u8]| -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the folder {}", parent.display()))?;
        }
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
        done.files += 1;
        done.bytes += bytes.len() as u64;
        Ok(())
    };
    let master = media.master_playlist(caps, |r| format!("{}/index.m3u8", r.id));
    write(&dir.join("master.m3u8"), master.as_bytes())?;
    for r in media.renditions() {
        let rdir = dir.join(&r.id);
        write(
            &rdir.join("index.m3u8"),
            media.media_playlist(&r.id)?.as_bytes(),
        )?;
        if r.kind == RenditionKind::Subtitle {
            for n in 0..media.segment_count() {
                let b = make(&media, &src, Output::Subtitle(r.id.clone(), n)).await?;
                write(&rdir.join(format!("{n}.vtt")), &b)?;
            }
            continue;
        }
        let b = make(&media, &src, Output::Init(r.id.clone())).await?;
        write(&rdir.join("init.mp4"), &b)?;
        for n in 0..media.segment_count() {
            let b = make(&media, &src, Output::Segment(r.id.clone(), n)).await?;
            write(&rdir.join(format!("{n}.m4s")), &b)?;
        }
    }
    Ok(done)
}

/// Parses what `hlsgate segment` is asked for: `init`, a segment number, `stream-init`,
/// `stream-N`, or `thumb-MS[@WIDTH]` (the rendition is ignored for the last three).
pub fn output(media: &Media, rendition: &str, what: &str) -> anyhow::Result<Output> {
    if let Some(n) = what.strip_prefix("stream-") {
        return Ok(if n == "init" {
            Output::StreamInit
        } else {
            Output::StreamFragment(n.parse()?)
        });
    }
    if let Some(t) = what.strip_prefix("thumb-") {
        let (ms, width) = t.split_once('@').unwrap_or((t, "320"));
        return Ok(Output::Thumbnail {
            ms: ms.parse()?,
            width: width.parse()?,
        });
    }
    let Ok(r) = media.rendition(rendition) else {
        let ids: Vec<&str> = media.renditions().iter().map(|r| r.id.as_str()).collect();
        anyhow::bail!(
            "no rendition {rendition:?} in this source; it has: {}",
            ids.join(", ")
        );
    };
    let number = |n: &str| -> anyhow::Result<u32> {
        let count = media.segment_count();
        let i: u32 = n.parse().with_context(|| {
            format!("{n:?} is not init, a segment number, stream-init, stream-N or thumb-MS")
        })?;
        anyhow::ensure!(
            i < count,
            "no segment {i}: this source has {count} (0 to {})",
            count.saturating_sub(1)
        );
        Ok(i)
    };
    Ok(match (what, r.kind) {
        ("init", _) => Output::Init(r.id.clone()),
        (n, RenditionKind::Subtitle) => Output::Subtitle(r.id.clone(), number(n)?),
        (n, _) => Output::Segment(r.id.clone(), number(n)?),
    })
}
