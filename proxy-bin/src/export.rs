//! `hlsgate export` and `hlsgate segment`: the pipeline from the command line.
//!
//! `export` writes the whole HLS tree of a source into a folder (master playlist, every
//! rendition's playlist, init and segments) — the same bytes the server would serve — with
//! progress on stderr, atomically (a hidden sibling folder renamed at the end).
//! `segment` makes one output in a fresh process, which is how the tests prove that segments are
//! independent of each other. `download` writes the progressive MP4 the server serves as
//! `download.mp4`, also atomically, with progress.

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

/// How an export shows its progress on stderr: a bar on a terminal, else one line per
/// rendition (logs and CI keep a readable record).
enum Progress {
    Bar(indicatif::ProgressBar),
    Lines,
}

impl Progress {
    fn new(total: u64) -> Progress {
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} outputs ({eta} left) {msg}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            Progress::Bar(bar)
        } else {
            Progress::Lines
        }
    }

    fn step(&self, what: &str) {
        if let Progress::Bar(b) = self {
            b.set_message(what.to_string());
            b.inc(1);
        }
    }

    fn rendition_done(&self, id: &str, done: u64, total: u64, bytes: u64) {
        match self {
            Progress::Bar(b) => b.set_message(format!("{id} done")),
            Progress::Lines => eprintln!(
                "export: {id} done, {done}/{total} outputs ({}%), {bytes} bytes so far",
                done * 100 / total.max(1)
            ),
        }
    }

    fn finish(&self) {
        if let Progress::Bar(b) = self {
            b.finish_and_clear();
        }
    }
}

/// Writes the whole HLS tree of `src` as `dir`: every rendition, the master listing what
/// `caps` asks for. Atomic: the tree is written into a hidden sibling folder and renamed to
/// `dir` at the end, so an interrupted export never leaves a `master.m3u8` pointing at missing
/// files. An existing `dir` is replaced when it is empty or an earlier export (it holds a
/// `master.m3u8`); anything else there is refused, never deleted.
pub async fn export(
    src: Arc<dyn ByteSource>,
    dir: &Path,
    opts: MediaOptions,
    caps: &plan::Caps,
) -> anyhow::Result<Exported> {
    let media = Arc::new(pipeline::io::load(&src, opts).await?);
    let replace = match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            let empty = entries.next().is_none();
            if !empty && !dir.join("master.m3u8").is_file() {
                anyhow::bail!(
                    "{} exists and is not an earlier export (no master.m3u8): choose another folder",
                    dir.display()
                );
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let name = dir
        .file_name()
        .with_context(|| format!("{} names no folder", dir.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("creating the folder {}", parent.display()))?;
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let result = write_tree(&media, &src, &partial, caps).await;
    let done = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    if replace {
        // rename(2) cannot replace a non-empty folder: move the old one aside first. Between
        // the two renames `dir` does not exist; it never holds a half-written tree.
        let old = parent.join(format!(".{name}.old-{}", std::process::id()));
        std::fs::rename(dir, &old)
            .with_context(|| format!("moving the earlier {} aside", dir.display()))?;
        std::fs::rename(&partial, dir)
            .with_context(|| format!("renaming the export to {}", dir.display()))?;
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("removing the earlier export {}", old.display()))?;
    } else {
        std::fs::rename(&partial, dir)
            .with_context(|| format!("renaming the export to {}", dir.display()))?;
    }
    Ok(done)
}

/// Writes `download.mp4` of `src` (an MP4 file) as `out`: into a hidden sibling file renamed at
/// the end, with a bar (or a line per tenth) on stderr. Returns the bytes written.
pub async fn download(
    src: Arc<dyn ByteSource>,
    out: &Path,
    all_audio: bool,
) -> anyhow::Result<u64> {
    let loaded = pipeline::io::probe(&src).await?;
    let moov = loaded.tables.clone();
    let media = Media::new(
        loaded.index.clone(),
        moov.as_deref(),
        MediaOptions::default(),
    )?;
    let tracks = pipeline::download::tracks(&media, all_audio).map_err(|e| anyhow::anyhow!(e))?;
    let moov = moov.context("this MP4 file keeps no sample tables")?;
    let index = loaded.index;
    let layout = tokio::task::spawn_blocking(move || {
        pipeline::download::Layout::new(&index, &moov, &tracks)
    })
    .await??;
    let name = out
        .file_name()
        .with_context(|| format!("{} names no file", out.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let written = write_download(&src, &layout, &partial).await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, out)
        .with_context(|| format!("renaming the download to {}", out.display()))?;
    Ok(layout.size)
}

async fn write_download(
    src: &Arc<dyn ByteSource>,
    layout: &pipeline::download::Layout,
    path: &Path,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let b = indicatif::ProgressBar::new(layout.size);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        ) {
            b.set_style(style.progress_chars("=> "));
        }
        b
    });
    let mut done = 0u64;
    let mut tenth = 0;
    let mut advance = |n: u64| {
        done += n;
        match &bar {
            Some(b) => b.set_position(done),
            None => {
                let t = done * 10 / layout.size.max(1);
                if t > tenth {
                    tenth = t;
                    eprintln!("download: {}% ({done} of {} bytes)", t * 10, layout.size);
                }
            }
        }
    };
    w.write_all(&layout.head)?;
    advance(layout.head.len() as u64);
    for r in pipeline::download::reads(&layout.pieces) {
        let bytes = src
            .read(source::ByteRange::new(r.src, r.src + r.len))
            .await?;
        anyhow::ensure!(bytes.len() as u64 == r.len, "the source ended early");
        for (at, len) in &r.parts {
            w.write_all(&bytes[*at as usize..(*at + *len) as usize])?;
            advance(*len);
        }
    }
    w.flush()?;
    w.get_ref().sync_all()?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(())
}

/// Writes every file of the tree under `dir`, showing progress.
async fn write_tree(
    media: &Arc<Media>,
    src: &Arc<dyn ByteSource>,
    dir: &Path,
    caps: &plan::Caps,
) -> anyhow::Result<Exported> {
    let segments = u64::from(media.segment_count());
    let total: u64 = media
        .renditions()
        .iter()
        .map(|r| {
            if r.kind == RenditionKind::Subtitle {
                segments
            } else {
                segments + 1
            }
        })
        .sum();
    let progress = Progress::new(total);
    let mut done = Exported::default();
    let mut outputs = 0u64;
    let write = |done: &mut Exported, path: &Path, bytes: &[u8]| -> anyhow::Result<()> {
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
    write(&mut done, &dir.join("master.m3u8"), master.as_bytes())?;
    for r in media.renditions() {
        let rdir = dir.join(&r.id);
        write(
            &mut done,
            &rdir.join("index.m3u8"),
            media.media_playlist(&r.id)?.as_bytes(),
        )?;
        if r.kind == RenditionKind::Subtitle {
            for n in 0..media.segment_count() {
                let b = make(media, src, Output::Subtitle(r.id.clone(), n)).await?;
                write(&mut done, &rdir.join(format!("{n}.vtt")), &b)?;
                outputs += 1;
                progress.step(&format!("{}/{n}.vtt", r.id));
            }
        } else {
            let b = make(media, src, Output::Init(r.id.clone())).await?;
            write(&mut done, &rdir.join("init.mp4"), &b)?;
            outputs += 1;
            progress.step(&format!("{}/init.mp4", r.id));
            for n in 0..media.segment_count() {
                let b = make(media, src, Output::Segment(r.id.clone(), n)).await?;
                write(&mut done, &rdir.join(format!("{n}.m4s")), &b)?;
                outputs += 1;
                progress.step(&format!("{}/{n}.m4s", r.id));
            }
        }
        progress.rendition_done(&r.id, outputs, total, done.bytes);
    }
    progress.finish();
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
