//! Helpers for the server tests: the real `hlsgate serve` binary on a free loopback port, and a
//! tiny redirecting HTTP server (for the SSRF redirect checks). Standard library only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hlsgate_bin;

/// A running `hlsgate serve`. Killed on drop.
pub struct Hlsgate {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Hlsgate {
    /// Starts `hlsgate serve ARGS` with `env` added (and `--listen 127.0.0.1:0` unless the
    /// arguments or environment set a listen address), and waits until it listens.
    pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Hlsgate {
        Self::try_serve(args, env).unwrap_or_else(|log| panic!("hlsgate serve failed:\n{log}"))
    }

    /// Like [`Hlsgate::serve`], returning the log when it exits before listening.
    pub fn try_serve(args: &[&str], env: &[(&str, &str)]) -> Result<Hlsgate, String> {
        let mut cmd = Command::new(hlsgate_bin());
        cmd.arg("serve");
        let has_listen = args.contains(&"--listen")
            || env.iter().any(|(k, _)| *k == "HLSGATE_LISTEN")
            || args.contains(&"--config");
        if !has_listen {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args);
        // A clean environment for our own variables: only what the test sets.
        for (k, _) in std::env::vars() {
            if k.starts_with("HLSGATE_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "info");
        cmd.env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let (child, addr, log) = spawn_listening(cmd)?;
        Ok(Hlsgate { child, addr, log })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `POST /api/v1/streams {"source": …}` (no API key); the JSON answer.
    pub fn create_stream(&self, source: &str) -> serde_json::Value {
        let body = serde_json::json!({ "source": source }).to_string();
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-f",
                "-X",
                "POST",
                "-H",
                "content-type: application/json",
                "-d",
            ])
            .arg(&body)
            .arg(self.url("/api/v1/streams"))
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "POST /api/v1/streams: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("JSON answer")
    }

    /// A counter or gauge of its `/metrics`, summed over the label sets whose line contains
    /// `filter` (`""` = all).
    pub fn metric(&self, name: &str, filter: &str) -> f64 {
        let (status, _, body) = http_get(&self.url("/metrics"));
        assert_eq!(status, 200, "GET /metrics");
        String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with(['{', ' ']))
                    && l.contains(filter)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends SIGTERM and waits (at most 10 s) for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(Instant::now() < deadline, "hlsgate did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hlsgate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `hlsgate serve ARGS` expecting it to refuse to start; returns (exit code, stderr).
pub fn serve_refused(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(hlsgate_bin());
    cmd.arg("serve").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("HLSGATE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .expect("run hlsgate serve");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A minimal HTTP server on `ip:0` that answers every request with `302 Location: target`
/// and counts requests. Runs until the process ends.
pub struct Redirector {
    /// Its port.
    pub port: u16,
    hits: Arc<AtomicUsize>,
}

impl Redirector {
    /// Starts it on `ip` (e.g. `127.0.0.2`).
    pub fn start(ip: &str, target: &str) -> Redirector {
        let l = TcpListener::bind((ip, 0)).expect("bind redirector");
        let port = l.local_addr().expect("addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        let target = target.to_string();
        std::thread::spawn(move || {
            for mut s in l.incoming().map_while(Result::ok) {
                h.fetch_add(1, Ordering::SeqCst);
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = write!(
                    s,
                    "HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Redirector { port, hits }
    }

    /// Requests it answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// `GET url` with curl (120 s bound): (status, `Retry-After`, body). Status 0 = no answer.
pub fn http_get(url: &str) -> (u16, Option<String>, Vec<u8>) {
    http_get_bounded(url, 120.0)
}

/// [`http_get`] that gives up (disconnects) after `secs` seconds.
pub fn http_get_bounded(url: &str, secs: f64) -> (u16, Option<String>, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/stderr", "--max-time"])
        .arg(format!("{secs}"))
        .arg(url)
        .output()
        .expect("run curl");
    let head = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let retry = head.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .map(|v| v.trim().to_string())
    });
    (status, retry, out.stderr)
}

/// Spawns `cmd` (an `hlsgate serve`, possibly behind a launcher such as `prlimit`) with its
/// stderr collected into a log, and waits until it prints `listening on http://ADDR`. Err with
/// the log when it exits or stays silent for 20 s.
#[allow(clippy::type_complexity)]
pub fn spawn_listening(
    mut cmd: Command,
) -> Result<(Child, SocketAddr, Arc<Mutex<String>>), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hlsgate serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let log2 = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                if let (Some(t), Ok(a)) = (tx.take(), rest.trim().parse::<SocketAddr>()) {
                    let _ = t.send(a);
                }
            }
            let mut l = log2.lock().unwrap_or_else(|p| p.into_inner());
            l.push_str(&line);
            l.push('\n');
        }
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => Ok((child, addr, log)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            let l = log.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Err(l)
        }
    }
}
