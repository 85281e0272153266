//! Local files, confined to a media root.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use crate::{BoxFuture, ByteRange, ByteSource, Identity, Result, SourceError, Stats};

/// The folder local sources must stay inside.
#[derive(Debug, Clone)]
pub struct MediaRoot {
    root: PathBuf,
}

impl MediaRoot {
    /// A root at `dir` (canonicalised; it must exist).
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let root = dir.canonicalize().map_err(|e| SourceError::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        Ok(MediaRoot { root })
    }

    /// The canonical root folder.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves `rel` (a path relative to the root, `/`-separated) to a canonical path inside
    /// the root. Refuses absolute paths, `..`, and anything that resolves (through symlinks)
    /// outside the root.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf> {
        let outside = || SourceError::OutsideRoot(rel.to_string());
        if rel.is_empty() || rel.contains('\0') {
            return Err(outside());
        }
        let p = Path::new(rel);
        for c in p.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                    return Err(outside())
                }
            }
        }
        let joined = self.root.join(p);
        let canon = joined.canonicalize().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SourceError::NotFound(rel.to_string()),
            _ => SourceError::Io {
                path: rel.to_string(),
                source: e,
            },
        })?;
        if !canon.starts_with(&self.root) {
            return Err(outside());
        }
        Ok(canon)
    }
}

/// A local file read with positioned reads.
#[derive(Debug)]
pub struct FileSource {
    file: Arc<File>,
    path: PathBuf,
    identity: Identity,
    stats: Arc<Stats>,
}

impl FileSource {
    /// Opens `rel` under `root`; the identity's location is `rel`.
    pub async fn open(root: &MediaRoot, rel: &str) -> Result<Self> {
        let path = root.resolve(rel)?;
        Self::open_at(path, rel.to_string()).await
    }

    /// Opens a path as given (for the CLI, where the user chose the file).
    pub async fn open_path(path: &Path) -> Result<Self> {
        Self::open_at(path.to_path_buf(), path.display().to_string()).await
    }

    async fn open_at(path: PathBuf, location: String) -> Result<Self> {
        let p = path.clone();
        let loc = location.clone();
        let (file, identity) = tokio::task::spawn_blocking(move || -> Result<(File, Identity)> {
            let io = |e: std::io::Error| match e.kind() {
                std::io::ErrorKind::NotFound => SourceError::NotFound(loc.clone()),
                _ => SourceError::Io {
                    path: loc.clone(),
                    source: e,
                },
            };
            let file = File::open(&p).map_err(io)?;
            let meta = file.metadata().map_err(io)?;
            if !meta.is_file() {
                return Err(SourceError::NotFound(format!("{loc} (not a regular file)")));
            }
            let identity = identity_of(&loc, &meta);
            Ok((file, identity))
        })
        .await
        .map_err(|e| SourceError::Io {
            path: location.clone(),
            source: std::io::Error::other(e),
        })??;
        Ok(FileSource {
            file: Arc::new(file),
            path,
            identity,
            stats: Arc::new(Stats::default()),
        })
    }

    /// The resolved path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn identity_of(location: &str, meta: &std::fs::Metadata) -> Identity {
    Identity {
        location: location.to_string(),
        size: meta.len(),
        etag: None,
        last_modified: None,
        mtime_ns: meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_nanos()),
    }
}

impl ByteSource for FileSource {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn read(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(async move {
            let end = crate::clamp_range(range, self.identity.size)?;
            let file = Arc::clone(&self.file);
            let expected = self.identity.clone();
            let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                let io = |e: std::io::Error| SourceError::Io {
                    path: expected.location.clone(),
                    source: e,
                };
                // The open file must still be the one we identified (size + mtime).
                let now = identity_of(&expected.location, &file.metadata().map_err(io)?);
                if now != expected {
                    return Err(SourceError::IdentityChanged(format!(
                        "{}: size {} -> {}, mtime changed: {}",
                        expected.location,
                        expected.size,
                        now.size,
                        now.mtime_ns != expected.mtime_ns
                    )));
                }
                let len = usize::try_from(end - range.start)
                    .map_err(|_| io(std::io::Error::other("range too large for this platform")))?;
                let mut buf = vec![0u8; len];
                file.read_exact_at(&mut buf, range.start).map_err(io)?;
                Ok(buf)
            })
            .await
            .map_err(|e| SourceError::Io {
                path: self.identity.location.clone(),
                source: std::io::Error::other(e),
            })??;
            self.stats.record(data.len() as u64);
            Ok(Bytes::from(data))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn root_cannot_be_escaped() {
        let scratch = tempfile::Builder::new()
            .prefix("hlsgate-root-")
            .tempdir()
            .unwrap();
        let base = scratch.path();
        let root_dir = base.join("media");
        std::fs::create_dir_all(root_dir.join("sub")).unwrap();
        std::fs::write(root_dir.join("sub/a.mkv"), b"inside").unwrap();
        std::fs::write(base.join("secret.txt"), b"outside").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root_dir.join("link.mkv")).unwrap();
        std::os::unix::fs::symlink(root_dir.join("sub/a.mkv"), root_dir.join("inner.mkv")).unwrap();
        let root = MediaRoot::new(&root_dir).unwrap();

        assert!(root.resolve("sub/a.mkv").is_ok());
        assert!(root.resolve("./sub/a.mkv").is_ok());
        assert!(
            root.resolve("inner.mkv").is_ok(),
            "a symlink inside the root is fine"
        );
        for bad in [
            "../secret.txt",
            "sub/../../secret.txt",
            "/etc/passwd",
            "link.mkv",
            "",
            "sub/\0a.mkv",
        ] {
            assert!(
                matches!(root.resolve(bad), Err(SourceError::OutsideRoot(_))),
                "{bad:?} was not refused"
            );
        }
        assert!(matches!(
            root.resolve("nope.mkv"),
            Err(SourceError::NotFound(_))
        ));

        let src = FileSource::open(&root, "sub/a.mkv").await.unwrap();
        assert_eq!(src.size(), 6);
        assert_eq!(&src.read(ByteRange::new(1, 4)).await.unwrap()[..], b"nsi");
        assert_eq!(src.stats().requests(), 1);
        // Changing the file is noticed on the next read.
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(root_dir.join("sub/a.mkv"), b"inside, longer").unwrap();
        assert!(matches!(
            src.read(ByteRange::new(0, 2)).await,
            Err(SourceError::IdentityChanged(_))
        ));
    }
}
