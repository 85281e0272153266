//! MPEG-TS probe (ISO/IEC 13818-1). Being written.

use crate::{ContainerProbe, Poll, ProbeError, Result, Store};

/// Packet layout of a transport stream: 188-byte packets, or 192 (M2TS, 4-byte timecode first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsLayout {
    /// Bytes per packet (188 or 192).
    pub packet_size: usize,
    /// Offset of the first sync byte (0x47) in the file.
    pub sync_offset: usize,
}

/// Recognises a transport stream by sync bytes at a regular stride.
pub fn sync_layout(head: &[u8]) -> Option<TsLayout> {
    for (packet_size, sync_offset) in [(188usize, 0usize), (192, 4)] {
        let ok = (0..3).all(|i| head.get(sync_offset + i * packet_size) == Some(&0x47));
        if ok {
            return Some(TsLayout {
                packet_size,
                sync_offset,
            });
        }
    }
    None
}

/// Probe state machine for MPEG-TS.
#[derive(Debug)]
pub struct TsProbe {
    size: u64,
}

impl TsProbe {
    /// A probe for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        TsProbe { size }
    }
}

impl ContainerProbe for TsProbe {
    fn poll(&mut self, _store: &mut Store) -> Result<Poll> {
        Err(ProbeError::Unsupported {
            container: "mpeg-ts",
            what: format!("not implemented yet ({} bytes)", self.size),
        })
    }
}
