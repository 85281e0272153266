//! The handlers, by area.

pub mod api;
pub mod assets;
pub mod download;
pub mod file;
pub mod hls;
pub mod login;
pub mod ops;
