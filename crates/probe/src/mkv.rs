//! Matroska / WebM probe (RFC 9559). Being written.

use crate::{ContainerProbe, Poll, ProbeError, Result, Store};

/// Probe state machine for Matroska and WebM.
#[derive(Debug)]
pub struct MkvProbe {
    size: u64,
}

impl MkvProbe {
    /// A probe for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        MkvProbe { size }
    }
}

impl ContainerProbe for MkvProbe {
    fn poll(&mut self, _store: &mut Store) -> Result<Poll> {
        Err(ProbeError::Unsupported {
            container: "matroska",
            what: format!("not implemented yet ({} bytes)", self.size),
        })
    }
}
