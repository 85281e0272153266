//! Embeds the player page's static files (`assets/`) into the binary.
//!
//! Every file under `assets/` but hidden ones, `node_modules/` and npm's `package*.json`
//! becomes an entry of `ASSETS` (its path relative to `assets/`, `/`-separated, and its bytes
//! via `include_bytes!`). When `assets/index.html`
//! exists, `assets/hls.min.js` must exist too (it is copied from npm by the player build); its
//! absence fails the build with instructions. Without any `index.html` a small placeholder page
//! is embedded instead, so the server builds before the player exists.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        // npm's folder and manifests build the page; they are not part of it.
        if name.starts_with('.') || name == "node_modules" || name.starts_with("package") {
            continue;
        }
        let path = e.path();
        let rel_name = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if path.is_dir() {
            walk(&path, &rel_name, out);
        } else if path.is_file() {
            out.push((rel_name, path));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let assets = manifest.join("assets");
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(&assets, "", &mut files);
    let has_index = files.iter().any(|(n, _)| n == "index.html");
    let has_hls = files.iter().any(|(n, _)| n == "hls.min.js");
    if has_index && !has_hls {
        panic!(
            "\n\ncrates/server/assets/hls.min.js is missing.\n\
             The player page embeds hls.js from npm (no CDN). Install it and copy it there, e.g.:\n\
             \n    (cd crates/server/assets && npm ci) && cp node_modules/hls.js/dist/hls.min.js crates/server/assets/\n\
             \nor run the project's asset script (see README / DEVELOPERS.md).\n\n"
        );
    }
    let mut code = String::from(
        "/// Embedded static files: (path relative to `assets/`, bytes).\n\
         pub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for (name, path) in &files {
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    if !has_index {
        println!(
            "cargo:warning=crates/server/assets/index.html not found: embedding a placeholder player page"
        );
        code.push_str(
            "    (\"index.html\", b\"<!doctype html><meta charset=utf-8><title>hlsgate</title>\
             <p>hlsgate is running. The player page was not built into this binary.</p>\"),\n",
        );
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("assets.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("cannot write {}: {e}", out.display());
    }
}
