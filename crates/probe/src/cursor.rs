//! A bounds-checked big-endian reader over a byte slice. It never panics: reading past the end
//! is a [`ProbeError::Malformed`] that names the container and absolute offset.

use crate::{ProbeError, Result};

/// Reads big-endian integers from a slice that sits at absolute offset `base` in the file.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    base: u64,
    container: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor over `data`, which starts at file offset `base`.
    pub fn new(data: &'a [u8], base: u64, container: &'static str) -> Self {
        Cursor {
            data,
            pos: 0,
            base,
            container,
        }
    }

    /// Absolute file offset of the next byte.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Position within the slice.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn err(&self, n: usize, what: &str) -> ProbeError {
        ProbeError::malformed(
            self.container,
            self.offset(),
            format!("{what}: need {n} bytes, {} left", self.remaining()),
        )
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.err(n, what))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| self.err(n, what))?;
        self.pos = end;
        Ok(s)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize, what: &str) -> Result<()> {
        self.bytes(n, what).map(|_| ())
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Big-endian u16.
    pub fn u16(&mut self, what: &str) -> Result<u16> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Big-endian 24-bit integer.
    pub fn u24(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(3, what)?;
        Ok(u32::from_be_bytes([0, b[0], b[1], b[2]]))
    }

    /// Big-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Big-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
}

/// Reads bits MSB-first, with Exp-Golomb codes (H.264/HEVC parameter sets). Emulation
/// prevention bytes must already be removed ([`crate::codecs::annexb::unescape_rbsp`]).
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, bit: 0 }
    }

    /// Reads one bit; `None` past the end.
    pub fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.bit / 8)?;
        let v = (byte >> (7 - (self.bit % 8))) & 1;
        self.bit += 1;
        Some(u32::from(v))
    }

    /// Reads `n` ≤ 32 bits.
    pub fn bits(&mut self, n: u32) -> Option<u32> {
        if n > 32 {
            return None;
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        u32::try_from(v).ok()
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.bit.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.bit = end;
        Some(())
    }

    /// Unsigned Exp-Golomb `ue(v)`, capped at 32 leading zeros.
    pub fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        let v = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(v).ok()
    }

    /// Signed Exp-Golomb `se(v)`.
    pub fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }
}
