//! Cache keys of what the jobs service stores: outputs, indexes, upstream identities.

use cache::{Key, KeyParts, Kind};
use pipeline::Output;

use super::Subject;

/// The key of the cached index (and `moov`) of a source with this identity key.
pub(super) fn index_key(identity: &str) -> Key {
    Key::new(KeyParts {
        kind: Kind::Index,
        source: identity,
        index_version: probe::INDEX_VERSION,
        plan_version: 0,
        output_version: 0,
        rendition: "",
        index: 0,
    })
}

/// The cache key of `out`: source identity, plan and output versions, every output-shaping
/// option, the output itself.
pub(super) fn key_of(media: &Subject, out: &Output) -> Key {
    let (kind, index) = match out {
        Output::Init(_) | Output::StreamInit => (Kind::Init, 0),
        Output::Segment(_, n) | Output::StreamFragment(n) => (Kind::Segment, u64::from(*n)),
        Output::Subtitle(_, n) => (Kind::Vtt, u64::from(*n)),
        Output::Thumbnail { ms, .. } => (Kind::Thumb, *ms),
        Output::Sheet(n) => (Kind::Thumb, u64::from(*n)),
    };
    let rendition = format!("{}|{}", media.pipeline.params_key(), out.key_text());
    Key::new(KeyParts {
        kind,
        source: &media.source.identity().key(),
        index_version: probe::INDEX_VERSION,
        plan_version: plan::PLAN_VERSION,
        output_version: pipeline::OUTPUT_VERSION,
        rendition: &rendition,
        index,
    })
}

/// The key of the identity record of a source reference (URL and forwarded headers).
pub(super) fn identity_key(reference: &str) -> Key {
    Key::new(KeyParts {
        kind: Kind::Identity,
        source: reference,
        index_version: 0,
        plan_version: 0,
        output_version: 0,
        rendition: "",
        index: 0,
    })
}
