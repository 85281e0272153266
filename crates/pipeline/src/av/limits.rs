//! Named caps on what one call may ask of FFmpeg (hostile or mistaken input must not make us
//! allocate without bound).

/// Largest codec configuration record accepted as decoder extradata.
pub const MAX_EXTRADATA: usize = 1 << 20;
/// Largest output picture side, in pixels.
pub const MAX_DIMENSION: u32 = 8192;
/// Most AAC frames one [`super::transcode_audio`] call may produce (≈ 7 min at 48 kHz).
pub const MAX_AUDIO_FRAMES: u32 = 20_000;
/// Most packets one call may be handed.
pub const MAX_PACKETS: usize = 200_000;
/// Most decoded audio samples (per channel, at the decoded rate) one call accepts.
pub const MAX_AUDIO_SAMPLES: u64 = 48_000 * 60 * 10;
/// Most encoder threads.
pub const MAX_THREADS: u32 = 64;
