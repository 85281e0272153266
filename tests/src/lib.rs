//! Shared helpers for the end-to-end tests: the fixtures (made once, under a file lock, by
//! `fixtures/make.sh`), a real nginx serving files with Range support on a free loopback port,
//! the real `hlsgate` binary, and ffprobe.
//!
//! Nothing here is faked: the tests read real files through real HTTP and compare with ffprobe.

pub mod crafted;
pub mod mp4check;
pub mod players;
pub mod server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A scratch folder for one test: removed when dropped, kept (and its path printed) when the
/// test is failing, so that what it made can be looked at.
pub struct Scratch(Option<tempfile::TempDir>);

impl Scratch {
    /// A new empty folder under the system temp dir, named `hlsgate-{tag}-…`.
    pub fn new(tag: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hlsgate-{tag}-"))
            .tempdir()
            .expect("scratch dir");
        Scratch(Some(dir))
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        self.0.as_ref().expect("scratch dir is live").path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.0.take() {
                eprintln!("kept scratch dir {}", dir.keep().display());
            }
        }
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The fixtures folder, made by `fixtures/make.sh long` if needed (serialised across test
/// processes with `flock`).
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let ws = workspace();
        let out = ws.join("fixtures/out");
        std::fs::create_dir_all(&out).expect("create fixtures/out");
        let status = Command::new("flock")
            .arg(out.join(".lock"))
            .arg(ws.join("fixtures/make.sh"))
            .arg("long")
            .stdout(Stdio::null())
            .status()
            .expect("run fixtures/make.sh (is flock installed?)");
        assert!(status.success(), "fixtures/make.sh failed");
        out
    })
}

/// The fixtures the native probes hand to libavformat (issue 12): audio files, AVI, FLV, ASF and
/// QuickTime with ProRes + PCM.
pub const UNIVERSAL_FIXTURES: &[&str] = &[
    "audio.flac",
    "audio_cbr.mp3",
    "audio_vbr.mp3",
    "audio_vorbis.ogg",
    "audio_opus.opus",
    "audio.wav",
    "audio.aiff",
    "audio_alac.m4a",
    "mpeg4_mp3.avi",
    "h264_aac.flv",
    "wmv2_wma.wmv",
    "prores_pcm.mov",
];

/// A fixture's path.
pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// The fixtures that hold a video track, with their container family.
pub const VIDEO_FIXTURES: &[(&str, Family)] = &[
    ("h264_aac_faststart.mp4", Family::Mp4),
    ("h264_aac_moov_end.mp4", Family::Mp4),
    ("h264_long_gop.mp4", Family::Mp4),
    ("h264_aac_fragmented.mp4", Family::Mp4),
    ("h264_bframes.mkv", Family::Mkv),
    ("mkv_no_cues.mkv", Family::Mkv),
    ("hevc_ac3.mkv", Family::Mkv),
    ("vp9_opus.webm", Family::Mkv),
    ("multi_audio_subs.mkv", Family::Mkv),
    ("h264_aac.ts", Family::Ts),
];

/// Container family, for what "offset" means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Offset = the sample's first byte.
    Mp4,
    /// Offset = the cluster holding the keyframe.
    Mkv,
    /// Offset = the TS packet that starts the PES.
    Ts,
}

/// The `hlsgate` binary of this build (`cargo build` puts it beside the test binaries' parent).
pub fn hlsgate_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/hlsgate
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("hlsgate"))
        .expect("target dir");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p hlsgate` before the tests (the README's test command does)",
        bin.display()
    );
    bin
}

/// Runs `hlsgate ARGS…`, returning (exit code, stdout, stderr).
pub fn hlsgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(hlsgate_bin())
        .args(args)
        .output()
        .expect("run hlsgate");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `ffprobe -v error ARGS -of csv=p=0 PATH` and returns its output.
pub fn ffprobe_csv(path: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {args:?} failed on {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One packet as ffprobe sees it.
#[derive(Debug, Clone, Copy)]
pub struct FfPacket {
    /// Presentation time in seconds.
    pub pts: f64,
    /// Byte position in the file.
    pub pos: u64,
    /// Keyframe flag.
    pub key: bool,
}

/// Every packet of the first video stream, per ffprobe.
pub fn ffprobe_video_packets(path: &Path) -> Vec<FfPacket> {
    ffprobe_csv(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,pos,flags",
        ],
    )
    .lines()
    .filter_map(|l| {
        let mut f = l.split(',');
        let pts = f.next()?.parse().ok()?;
        let pos = f.next()?.parse().ok()?;
        let key = f.next()?.starts_with('K');
        Some(FfPacket { pts, pos, key })
    })
    .collect()
}

/// Presentation times of the decoded keyframes of the first video stream, per ffprobe.
pub fn ffprobe_keyframe_times(path: &Path) -> Vec<f64> {
    ffprobe_csv(
        path,
        &[
            "-select_streams",
            "v:0",
            "-skip_frame",
            "nokey",
            "-show_entries",
            "frame=pts_time",
        ],
    )
    .lines()
    .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
    .collect()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on port {port}");
}

/// A real `redis-server` on a free 127.0.0.1 port (no persistence). Killed on drop; can be
/// killed and started again on the same port.
pub struct Redis {
    child: Option<Child>,
    /// The port.
    pub port: u16,
}

impl Redis {
    /// Starts redis-server and waits until it listens.
    pub fn start() -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
        };
        r.restart();
        r
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL: no shutdown, no save) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)");
        wait_for_port(self.port, &mut child, "redis-server");
        self.child = Some(child);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A real nginx serving `root` on 127.0.0.1 (Range, ETag and Last-Modified as nginx does them).
/// Killed on drop. Its access log counts the requests independently of our own counters.
pub struct Nginx {
    child: Child,
    /// The port.
    pub port: u16,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx serving `root`.
    pub fn start(root: &Path) -> Nginx {
        Self::start_with(root, "")
    }

    /// Starts nginx serving `root`, with `extra` directives in its `location /` block.
    pub fn start_with(root: &Path, extra: &str) -> Nginx {
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix(&format!("hlsgate-nginx-{port}-"))
            .tempdir()
            .expect("nginx dir")
            .keep();
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log {d}/logs/error.log;\n\
             pid {d}/nginx.pid;\nevents {{ worker_connections 256; }}\nhttp {{\n\
             access_log {d}/logs/access.log;\nclient_body_temp_path {d}/cb;\nproxy_temp_path {d}/px;\n\
             fastcgi_temp_path {d}/fc;\nuwsgi_temp_path {d}/uw;\nscgi_temp_path {d}/sc;\n\
             default_type application/octet-stream;\n\
             server {{ listen 127.0.0.1:{port}; root {root}; location / {{ {extra} }} }}\n}}\n",
            d = dir.display(),
            root = root.display()
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let mut child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx (apt-get install nginx-light)");
        wait_for_port(port, &mut child, "nginx");
        Nginx { child, port, dir }
    }

    /// The URL of `name` under the served root.
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, name)
    }

    /// Requests nginx logged so far.
    pub fn logged_requests(&self) -> usize {
        std::fs::read_to_string(self.dir.join("logs/access.log"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Python's `http.server`, which ignores `Range` (answers 200 with the whole file): the
/// negative case for the upstream checks. Killed on drop.
pub struct NoRangeServer {
    child: Child,
    /// The port.
    pub port: u16,
}

impl NoRangeServer {
    /// Serves `root`.
    pub fn start(root: &Path) -> NoRangeServer {
        let port = free_port();
        let mut child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        wait_for_port(port, &mut child, "python http.server");
        NoRangeServer { child, port }
    }
}

impl Drop for NoRangeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One packet of any stream, per ffprobe.
#[derive(Debug, Clone, Copy)]
pub struct FfAnyPacket {
    /// Stream index.
    pub stream: u32,
    /// Presentation time in seconds.
    pub pts: f64,
    /// Byte position.
    pub pos: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Every packet of every stream that has a pts and a position, per ffprobe.
pub fn ffprobe_all_packets(path: &Path) -> Vec<FfAnyPacket> {
    ffprobe_csv(
        path,
        &["-show_entries", "packet=stream_index,pts_time,pos,size"],
    )
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        Some(FfAnyPacket {
            stream: f.first()?.parse().ok()?,
            pts: f.get(1)?.parse().ok()?,
            size: f.get(2)?.parse().ok()?,
            pos: f.get(3)?.parse().ok()?,
        })
    })
    .collect()
}
