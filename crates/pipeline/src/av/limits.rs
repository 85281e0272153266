//! Named caps on what one call may ask of FFmpeg (hostile or mistaken input must not make us
//! allocate without bound).

/// Largest codec configuration record accepted as decoder extradata.
pub const MAX_EXTRADATA: usize = 1 << 20;
/// Largest output picture side, in pixels.
pub const MAX_DIMENSION: u32 = 8192;
/// Most AAC frames one [`super::transcode_audio`] call may produce (≈ 87 s at 48 kHz; a
/// segment is at most ~20 s).
pub const MAX_AUDIO_FRAMES: u32 = 4096;
/// Largest |first AAC frame index| (≈ 2.9 years at 48 kHz): keeps every sample position times
/// a sample rate inside `i64`.
pub const MAX_AUDIO_FRAME_INDEX: u64 = 1 << 32;
/// Largest |sample position| a decoded run may start at (same reason).
pub const MAX_AUDIO_POSITION: i64 = 1 << 44;
/// Most packets one call may be handed.
pub const MAX_PACKETS: usize = 200_000;
/// Most decoded audio samples (per channel, at the decoded rate) one call accepts (≈ 104 s at
/// 96 kHz; 80 MB as stereo float).
pub const MAX_AUDIO_SAMPLES: u64 = 10_000_000;
/// Most encoder threads.
pub const MAX_THREADS: u32 = 64;
