//! ISO BMFF probe. Being written.

use crate::{ContainerProbe, Poll, ProbeError, Result, Store};

/// Probe state machine for MP4/MOV and fragmented MP4.
#[derive(Debug)]
pub struct Mp4Probe {
    size: u64,
}

impl Mp4Probe {
    /// A probe for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        Mp4Probe { size }
    }
}

impl ContainerProbe for Mp4Probe {
    fn poll(&mut self, _store: &mut Store) -> Result<Poll> {
        Err(ProbeError::Unsupported {
            container: "mp4",
            what: format!("not implemented yet ({} bytes)", self.size),
        })
    }
}
