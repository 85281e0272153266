//! Named caps on everything a hostile file could inflate. Every parser checks against these
//! before allocating or looping; exceeding one is a [`ProbeError::Limit`](crate::ProbeError).

/// Largest `moov` box we will read into memory (a 10 h film with 4 tracks is ~60 MiB).
pub const MAX_MOOV_BYTES: u64 = 256 << 20;
/// Largest single read the probe asks for (other than `moov`).
pub const MAX_READ_BYTES: u64 = 16 << 20;
/// Total bytes a probe may ask for (moov excluded), or twice the file size when that is larger
/// (an MPEG-TS scan reads the whole file once).
pub const MAX_TOTAL_READ_BYTES: u64 = 512 << 20;
/// Total requests one probe may make (a cluster scan makes one per cluster).
pub const MAX_REQUESTS: u64 = 200_000;
/// Tracks in one file.
pub const MAX_TRACKS: usize = 128;
/// Samples in one track's tables (stsz/stts entries): ~46 h at 60 fps.
pub const MAX_SAMPLES: u64 = 10_000_000;
/// Chunks in one track (stco/co64 entries).
pub const MAX_CHUNKS: u64 = 10_000_000;
/// Keyframes in one index.
pub const MAX_KEYFRAMES: usize = 2_000_000;
/// Nesting depth of boxes / EBML elements we descend into.
pub const MAX_DEPTH: usize = 16;
/// Bytes of codec private data (avcC, hvcC, CodecPrivate) per track.
pub const MAX_CODEC_PRIVATE: u64 = 1 << 20;
/// Bytes of a Matroska metadata element we parse in full (SeekHead, Info, Tracks, Cues).
pub const MAX_EBML_ELEMENT: u64 = 64 << 20;
/// Clusters walked by the no-Cues cluster scan.
pub const MAX_CLUSTERS: u64 = 1_000_000;
/// Top-level boxes walked in an MP4 (fragmented files have two per fragment).
pub const MAX_TOP_LEVEL_BOXES: u64 = 2_000_000;
/// Length of a string field (language, title, codec id) we keep.
pub const MAX_STRING: usize = 1024;
/// Bytes an MPEG-TS scan searches for the next sync byte pattern after losing sync.
pub const MAX_TS_RESYNC_BYTES: usize = 64 << 10;
/// Bytes of an MPEG-TS file scanned for its PAT and PMT before giving up.
pub const MAX_TS_PSI_SCAN_BYTES: u64 = 8 << 20;
/// Bytes of one PES packet's start kept to read its header, picture type and codec config.
pub const MAX_PES_HEAD_BYTES: usize = 64 << 10;
/// Boxes and descriptors the nesting pre-walk ([`crate::mp4::check_nesting`]) may visit in one
/// `moov`/`moof`. A real `moov` takes a few hundred (≈30 boxes per track plus the scanned sample
/// entries, at most ~130 tries each), 128 tracks ~55 000; 200 000 keeps its memo table under
/// ~8 MB and its time under ~20 ms.
pub const MAX_NESTING_STEPS: u64 = 200_000;
/// Longest duration, start time or keyframe time a source may claim: 7 days. Longer than any
/// recording we serve (a week-long surveillance capture), and small enough that the plans and
/// playlists built from it (one segment per few seconds) stay bounded. Larger numbers come from
/// broken or hostile headers (an `stts` delta of 2^32−1, a Cluster timestamp of 10^15).
pub const MAX_DURATION_SECS: u64 = 7 * 24 * 3600;
/// Keyframes per second of duration: all-intra video at 240 fps is the densest real case; more
/// keyframes than 1000 a second (plus one) means the times are made up.
pub const MAX_KEYFRAMES_PER_SEC: u64 = 1000;
/// Samples over all tracks of a non-fragmented MP4 (sum of the claimed counts, checked before
/// any table is built). Each sample costs 40 bytes while the probe walks the tables and again in
/// the demuxer's tables, which live as long as the source is memoised: 3 M samples are 120 MiB
/// each, inside the server's memory budget. That is a 6 h film with four audio tracks
/// (0.5 M video + 4 × 1 M AAC frames), or 27 h of 30 fps video; larger files are refused.
pub const MAX_TOTAL_SAMPLES: u64 = 3_000_000;
/// Heap one finished [`MediaIndex`](crate::MediaIndex) may hold
/// ([`MediaIndex::heap_bytes`](crate::MediaIndex::heap_bytes)): the server keeps many in memory.
/// A 10 h film indexes to ~2 MiB of spans and keyframes; 256 MiB is far past any real file.
pub const MAX_INDEX_BYTES: u64 = 256 << 20;
/// Largest step between an MPEG-TS PES timestamp and the last one of any stream (streams are
/// muxed within seconds of each other; a 33-bit wrap unwraps to a small step). A larger step
/// is a discontinuity we do not unroll: an error, not hours of invented timeline.
pub const MAX_TS_PTS_JUMP_SECS: u64 = 10 * 60;
