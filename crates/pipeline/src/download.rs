//! `download.mp4`: which tracks a download of a source carries ([`tracks`]); the layout itself
//! (a progressive MP4, `moov` first, from the sample tables) is [`demux::progressive`].

use plan::{RenditionKind, VideoOutput};
use probe::{Codec, Container, TrackKind};

pub use demux::progressive::{reads, Layout, Piece, Read, DOWNLOAD_VERSION};

use crate::Media;

/// The tracks a download of `media` carries: the video when it is copied, and the AAC audio
/// tracks (every audio track with `all_audio`). `Err`: why there is no download, in words for
/// the user (with what to use instead).
pub fn tracks(media: &Media, all_audio: bool) -> Result<Vec<u64>, &'static str> {
    let ix = media.index();
    if ix.container != Container::Mp4 {
        return Err(
            "download.mp4 is made from MP4 files only (with sample tables: not fragmented, not \
             read through FFmpeg); stream.mp4 plays any source as one fragmented MP4",
        );
    }
    let mut ids = Vec::new();
    if let Some(v) = ix.main().filter(|t| t.kind == TrackKind::Video) {
        let copied = media.renditions().iter().any(|r| {
            r.kind == RenditionKind::Video
                && r.track_id == v.id
                && matches!(r.video, Some(VideoOutput::Passthrough))
        });
        if !copied {
            return Err(
                "the video must be transcoded for players; stream.mp4 plays it as one \
                        fragmented MP4",
            );
        }
        ids.push(v.id);
    }
    for t in ix.tracks.iter().filter(|t| t.kind == TrackKind::Audio) {
        if all_audio || t.codec == Codec::Aac {
            ids.push(t.id);
        }
    }
    if ids.is_empty() {
        return Err("nothing in this file can be copied");
    }
    Ok(ids)
}
