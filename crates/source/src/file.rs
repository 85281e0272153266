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
        let canon = joined.canonicalize().map_err(|e| path_error(rel, e))?;
        if !canon.starts_with(&self.root) {
            return Err(outside());
        }
        Ok(canon)
    }
}

/// `ELOOP` on Linux and the BSDs/macOS (`std::io::ErrorKind::FilesystemLoop` is unstable).
#[cfg(any(target_os = "linux", target_os = "android"))]
const ELOOP: i32 = 40;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const ELOOP: i32 = 62;

/// Maps an error from resolving or opening the path `rel` we were given. Whatever the path
/// itself causes is the caller's error, never an internal one: missing, a symlink loop, a
/// component that is not a folder, a name too long → [`SourceError::NotFound`]; no
/// permission → [`SourceError::Forbidden`]. Anything else (`EIO`, `EMFILE`...) is
/// [`SourceError::Io`].
fn path_error(rel: &str, e: std::io::Error) -> SourceError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound | K::NotADirectory | K::InvalidFilename | K::IsADirectory => {
            SourceError::NotFound(rel.to_string())
        }
        K::PermissionDenied => SourceError::Forbidden(rel.to_string()),
        _ if e.raw_os_error() == Some(ELOOP) => SourceError::NotFound(rel.to_string()),
        _ => SourceError::Io {
            path: rel.to_string(),
            source: e,
        },
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
            let file = File::open(&p).map_err(|e| path_error(&loc, e))?;
            let meta = file.metadata().map_err(|e| SourceError::Io {
                path: loc.clone(),
                source: e,
            })?;
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

    /// Paths that loop, run through a file, are too long or unreadable are the caller's
    /// error (404/403 at the server), never an internal one.
    #[tokio::test]
    async fn bad_paths_are_not_found_or_forbidden() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let scratch = tempfile::Builder::new()
            .prefix("hlsgate-loop-")
            .tempdir()
            .unwrap();
        let dir = scratch.path();
        std::fs::write(dir.join("a.mkv"), b"inside").unwrap();
        symlink(dir.join("loop2.mkv"), dir.join("loop1.mkv")).unwrap();
        symlink(dir.join("loop1.mkv"), dir.join("loop2.mkv")).unwrap();
        symlink(dir.join("self.mkv"), dir.join("self.mkv")).unwrap();
        std::fs::create_dir(dir.join("looped")).unwrap();
        symlink(dir.join("looped"), dir.join("looped/again")).unwrap();
        let root = MediaRoot::new(dir).unwrap();

        let long = "x".repeat(300);
        let deep = "looped/again/".repeat(50) + "a.mkv";
        for rel in [
            "loop1.mkv",
            "self.mkv",
            "loop1.mkv/a.mkv",
            "a.mkv/x.mkv",
            long.as_str(),
            deep.as_str(),
            "looped",
        ] {
            assert!(
                matches!(
                    FileSource::open(&root, rel).await,
                    Err(SourceError::NotFound(_))
                ),
                "{rel:.40}: {:?}",
                FileSource::open(&root, rel).await.err()
            );
        }
        // The CLI path (no root) maps the same way.
        assert!(matches!(
            FileSource::open_path(&dir.join("loop1.mkv")).await,
            Err(SourceError::NotFound(_))
        ));

        // A folder we may not read (skipped as root, which bypasses permissions).
        let locked = dir.join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::write(locked.join("b.mkv"), b"b").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(locked.join("b.mkv")).is_err() {
            assert!(matches!(
                FileSource::open(&root, "locked/b.mkv").await,
                Err(SourceError::Forbidden(_))
            ));
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();

        // The mapping itself, for the errors a test cannot provoke as root.
        let e = |code| path_error("p", std::io::Error::from_raw_os_error(code));
        assert!(matches!(e(13), SourceError::Forbidden(_)), "EACCES");
        assert!(matches!(e(1), SourceError::Forbidden(_)), "EPERM");
        assert!(matches!(e(ELOOP), SourceError::NotFound(_)), "ELOOP");
        assert!(matches!(e(2), SourceError::NotFound(_)), "ENOENT");
        assert!(matches!(e(20), SourceError::NotFound(_)), "ENOTDIR");
        assert!(matches!(e(5), SourceError::Io { .. }), "EIO stays internal");
    }
}
