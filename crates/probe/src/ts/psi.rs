//! Program-specific information: section assembly (ISO/IEC 13818-1 §2.4.4.1–2.4.4.2), the
//! Program Association Table (§2.4.4.3), the Program Map Table (§2.4.4.8), the descriptors we
//! read (§2.6: registration §2.6.8, ISO 639 language §2.6.18; ETSI EN 300 468 Annex D/§6.2 for
//! the DVB AC-3, E-AC-3, DTS, subtitling and teletext descriptors) and the section CRC
//! (Annex A, CRC-32/MPEG-2).

use crate::limits;
use crate::{Codec, ProbeError, Result, TrackKind};

const CONTAINER: &str = "mpeg-ts";
/// Largest PAT/PMT section: 3 header bytes + `section_length` ≤ 1021 (§2.4.4.3, §2.4.4.8).
const MAX_SECTION_LENGTH: usize = 1021;

/// CRC-32/MPEG-2 table (polynomial 0x04C11DB7, MSB first), built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut k = 0;
        while k < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// CRC-32/MPEG-2 (Annex A). Over a whole section, `CRC_32` field included, it is 0.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |c, &b| {
        (c << 8) ^ CRC_TABLE[usize::from((c >> 24) as u8 ^ b)]
    })
}

/// A complete section and the absolute offset of its `table_id`.
pub(crate) type Section = (u64, Vec<u8>);

/// Reassembles the sections of one PSI PID from packet payloads (§2.4.4.2: `pointer_field`).
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    buf: Vec<u8>,
    start: u64,
    active: bool,
}

impl Assembler {
    /// Feeds the payload of one packet found at absolute `offset`; appends the sections it
    /// completes (or why one is unusable) to `out`.
    pub(crate) fn push(
        &mut self,
        pid: u16,
        pusi: bool,
        payload: &[u8],
        offset: u64,
        out: &mut Vec<Result<Section>>,
    ) {
        if !pusi {
            if self.active {
                self.feed(pid, payload, out);
            }
            return;
        }
        let Some((&pointer, rest)) = payload.split_first() else {
            return;
        };
        let pointer = usize::from(pointer);
        let (Some(tail), Some(mut data)) = (rest.get(..pointer), rest.get(pointer..)) else {
            self.active = false;
            out.push(Err(ProbeError::malformed(
                CONTAINER,
                offset,
                format!("PSI (PID {pid:#06x}): pointer_field {pointer} runs past the packet"),
            )));
            return;
        };
        if self.active {
            self.feed(pid, tail, out);
            // A section not finished by the bytes before the new one is lost.
            self.active = false;
        }
        let mut off = offset + 1 + pointer as u64;
        // Several sections may follow one another; 0xFF is stuffing up to the packet end.
        while let Some(&table_id) = data.first() {
            if table_id == 0xFF {
                break;
            }
            self.buf.clear();
            self.start = off;
            self.active = true;
            let used = self.feed(pid, data, out);
            if self.active {
                break;
            }
            data = data.get(used..).unwrap_or(&[]);
            off += used as u64;
        }
    }

    /// Appends to the current section; returns the bytes of `data` it used.
    fn feed(&mut self, pid: u16, data: &[u8], out: &mut Vec<Result<Section>>) -> usize {
        let mut used = 0;
        if self.buf.len() < 3 {
            let n = (3 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(data.get(..n).unwrap_or(&[]));
            used = n;
            if self.buf.len() < 3 {
                return used;
            }
        }
        let section_length = usize::from(u16::from_be_bytes([
            self.buf.get(1).copied().unwrap_or(0) & 0x0F,
            self.buf.get(2).copied().unwrap_or(0),
        ]));
        if section_length > MAX_SECTION_LENGTH {
            self.active = false;
            out.push(Err(ProbeError::malformed(
                CONTAINER,
                self.start,
                format!(
                    "PSI section (PID {pid:#06x}, table_id {:#04x}): section_length \
                     {section_length} exceeds {MAX_SECTION_LENGTH}",
                    self.buf.first().copied().unwrap_or(0)
                ),
            )));
            return data.len();
        }
        let total = 3 + section_length;
        let rest = data.get(used..).unwrap_or(&[]);
        let n = (total - self.buf.len()).min(rest.len());
        self.buf.extend_from_slice(rest.get(..n).unwrap_or(&[]));
        used += n;
        if self.buf.len() == total {
            self.active = false;
            out.push(Ok((self.start, std::mem::take(&mut self.buf))));
        }
        used
    }
}

/// Checks the generic long-form section header and CRC; returns the bytes between the
/// 8-byte header and the CRC, or `None` for a section that is not yet applicable
/// (`current_next_indicator == 0`).
fn long_section<'a>(
    s: &'a [u8],
    offset: u64,
    table: &str,
    table_id: u8,
) -> Result<Option<&'a [u8]>> {
    let bad = |what: String| ProbeError::malformed(CONTAINER, offset, format!("{table}: {what}"));
    if s.first() != Some(&table_id) {
        return Err(bad(format!(
            "table_id {:#04x}, expected {table_id:#04x}",
            s.first().copied().unwrap_or(0)
        )));
    }
    if s.len() < 12 {
        return Err(bad(format!("section of {} bytes is too short", s.len())));
    }
    if s.get(1).is_some_and(|b| b & 0x80 == 0) {
        return Err(bad("section_syntax_indicator is 0".into()));
    }
    let crc = crc32(s);
    if crc != 0 {
        return Err(bad(format!("CRC_32 mismatch (remainder {crc:#010x})")));
    }
    if s.get(5).is_some_and(|b| b & 1 == 0) {
        return Ok(None);
    }
    Ok(s.get(8..s.len() - 4))
}

/// The first program of a PAT: `(program_number, program_map_PID)`, if it lists one.
pub(crate) fn parse_pat(s: &[u8], offset: u64) -> Result<Option<(u16, u16)>> {
    let Some(body) = long_section(s, offset, "PAT", 0x00)? else {
        return Ok(None);
    };
    // §2.4.4.3: program_number 16 | reserved 3 | PID 13; program 0 names the NIT.
    Ok(body.chunks_exact(4).find_map(|e| match *e {
        [p0, p1, m0, m1] => {
            let program = u16::from_be_bytes([p0, p1]);
            (program != 0).then_some((program, u16::from_be_bytes([m0 & 0x1F, m1])))
        }
        _ => None,
    }))
}

/// One elementary stream listed in the PMT, with what its type and descriptors say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EsInfo {
    /// Its PID.
    pub pid: u16,
    /// `stream_type` (Table 2-34).
    pub stream_type: u8,
    /// The codec the type and descriptors name (refined later from the bitstream).
    pub codec: Codec,
    /// What it carries.
    pub kind: TrackKind,
    /// ISO 639-2 language, when tagged.
    pub language: Option<String>,
    /// Channels from the Opus extension descriptor.
    pub opus_channels: Option<u16>,
}

/// What we keep of a PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pmt {
    /// `program_number`.
    pub program: u16,
    /// PES streams, in PMT order.
    pub streams: Vec<EsInfo>,
}

/// Walks a descriptor loop (§2.6.1: tag 8 | length 8 | body).
fn descriptors<'a>(
    mut d: &'a [u8],
    offset: u64,
    what: &str,
    mut f: impl FnMut(u8, &'a [u8]),
) -> Result<()> {
    while !d.is_empty() {
        let (Some(&tag), Some(&len)) = (d.first(), d.get(1)) else {
            return Err(ProbeError::malformed(
                CONTAINER,
                offset,
                format!("{what}: truncated descriptor"),
            ));
        };
        let end = 2 + usize::from(len);
        let Some(body) = d.get(2..end) else {
            return Err(ProbeError::malformed(
                CONTAINER,
                offset,
                format!("{what}: descriptor {tag:#04x} of {len} bytes runs past its loop"),
            ));
        };
        f(tag, body);
        d = d.get(end..).unwrap_or(&[]);
    }
    Ok(())
}

/// A three-letter ISO 639-2 code, lowercased; `und`/garbage → `None`.
fn language(b: &[u8]) -> Option<String> {
    let code = b.get(..3)?;
    if !code.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let s: String = code
        .iter()
        .map(|c| char::from(c.to_ascii_lowercase()))
        .collect();
    (s != "und").then_some(s)
}

/// Splits a 12-bit length field preceded by 4 reserved bits.
fn len12(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([
        b.get(at).copied().unwrap_or(0) & 0x0F,
        b.get(at + 1).copied().unwrap_or(0),
    ]))
}

/// Parses a PMT (`hdmv`: the stream follows the Blu-ray (BDAV/M2TS) stream_type assignments).
pub(crate) fn parse_pmt(s: &[u8], offset: u64, pid: u16, hdmv: bool) -> Result<Option<Pmt>> {
    let table = format!("PMT (PID {pid:#06x})");
    let Some(body) = long_section(s, offset, &table, 0x02)? else {
        return Ok(None);
    };
    let bad = |what: String| ProbeError::malformed(CONTAINER, offset, format!("{table}: {what}"));
    let program = u16::from_be_bytes([
        s.get(3).copied().unwrap_or(0),
        s.get(4).copied().unwrap_or(0),
    ]);
    // §2.4.4.8: reserved 3 | PCR_PID 13 | reserved 4 | program_info_length 12 | descriptors.
    let info_len = len12(body, 2);
    let Some(info) = body.get(4..4 + info_len) else {
        return Err(bad(format!(
            "program_info_length {info_len} runs past the section"
        )));
    };
    let mut hdmv = hdmv;
    descriptors(info, offset, &table, |tag, d| {
        if tag == 0x05 && d.get(..4) == Some(b"HDMV") {
            hdmv = true;
        }
    })?;
    let mut streams: Vec<EsInfo> = Vec::new();
    let mut rest = body.get(4 + info_len..).unwrap_or(&[]);
    while !rest.is_empty() {
        // stream_type 8 | reserved 3 | elementary_PID 13 | reserved 4 | ES_info_length 12.
        let Some(&[stream_type, p0, p1, l0, l1]) = rest.get(..5) else {
            return Err(bad("truncated elementary stream entry".into()));
        };
        let es_pid = u16::from_be_bytes([p0 & 0x1F, p1]);
        let es_len = usize::from(u16::from_be_bytes([l0 & 0x0F, l1]));
        let Some(es_info) = rest.get(5..5 + es_len) else {
            return Err(bad(format!(
                "ES_info_length {es_len} of PID {es_pid:#06x} runs past the section"
            )));
        };
        rest = rest.get(5 + es_len..).unwrap_or(&[]);
        let mut d = Descriptors::default();
        descriptors(es_info, offset, &table, |tag, body| d.note(tag, body))?;
        let Some((codec, kind)) = classify(stream_type, &d, hdmv) else {
            continue;
        };
        if es_pid < 0x10 || es_pid == pid || es_pid == super::packet::NULL_PID {
            continue;
        }
        if streams.iter().any(|s| s.pid == es_pid) {
            continue;
        }
        if streams.len() >= limits::MAX_TRACKS {
            return Err(ProbeError::limit(
                "MAX_TRACKS",
                streams.len() as u64 + 1,
                limits::MAX_TRACKS as u64,
            ));
        }
        streams.push(EsInfo {
            pid: es_pid,
            stream_type,
            codec,
            kind,
            language: d.language,
            opus_channels: d.opus_channels,
        });
    }
    Ok(Some(Pmt { program, streams }))
}

/// The descriptor facts of one elementary stream.
#[derive(Debug, Default)]
struct Descriptors {
    registration: Option<[u8; 4]>,
    language: Option<String>,
    /// Tags of the DVB descriptors seen (AC-3 0x6A, E-AC-3 0x7A, DTS 0x7B, subtitling 0x59,
    /// teletext 0x56).
    dvb: Option<u8>,
    opus_channels: Option<u16>,
}

impl Descriptors {
    fn note(&mut self, tag: u8, body: &[u8]) {
        match tag {
            0x05 => {
                if let Some(id) = body.get(..4) {
                    let mut r = [0u8; 4];
                    r.copy_from_slice(id);
                    self.registration = Some(r);
                }
            }
            0x0A if self.language.is_none() => self.language = language(body),
            0x56 | 0x59 => {
                self.dvb.get_or_insert(tag);
                // Entries start with an ISO 639 code (EN 300 468 §6.2.43, §6.2.41).
                if self.language.is_none() {
                    self.language = language(body);
                }
            }
            0x6A | 0x7A | 0x7B => {
                self.dvb.get_or_insert(tag);
            }
            // Extension descriptor with tag extension 0x80: the (provisional) Opus audio
            // descriptor, as FFmpeg muxes it: channel_config_code 1–8 = channels, 0 = 2.
            0x7F if body.first() == Some(&0x80) => {
                self.opus_channels = body.get(1).map(|&c| match c {
                    1..=8 => u16::from(c),
                    _ => 2,
                });
            }
            _ => {}
        }
    }
}

/// Codec and kind of a PES stream from `stream_type` (Table 2-34; HDMV/ATSC/DVB private
/// assignments), or `None` for types that carry sections rather than PES packets.
fn classify(stream_type: u8, d: &Descriptors, hdmv: bool) -> Option<(Codec, TrackKind)> {
    use Codec::*;
    let audio = |c: Codec| Some((c, TrackKind::Audio));
    let video = |c: Codec| Some((c, TrackKind::Video));
    let other = |s: &str| Some((Other(s.into()), TrackKind::Other));
    match stream_type {
        0x01 | 0x02 => video(Mpeg2Video),
        0x03 | 0x04 => audio(Mp2),
        0x0F => audio(Aac),
        0x10 => video(Mpeg4Part2),
        0x11 => audio(Other("aac_latm".into())),
        0x1B => video(H264),
        0x24 => video(Hevc),
        0x81 => audio(Ac3),
        0x87 => audio(Eac3),
        0x80 if hdmv => audio(Pcm),
        0x82 | 0x85 | 0x86 | 0xA2 if hdmv => audio(Dts),
        0x83 if hdmv => audio(TrueHd),
        0x84 | 0xA1 if hdmv => audio(Eac3),
        0x90 if hdmv => Some((Pgs, TrackKind::Subtitle)),
        0x06 => match (d.dvb, d.registration.as_ref().map(|r| &r[..])) {
            (Some(0x6A), _) | (_, Some(b"AC-3")) => audio(Ac3),
            (Some(0x7A), _) | (_, Some(b"EAC3")) => audio(Eac3),
            (Some(0x7B), _) | (_, Some(b"DTS1" | b"DTS2" | b"DTS3")) => audio(Dts),
            (Some(0x59), _) => Some((DvbSub, TrackKind::Subtitle)),
            (Some(0x56), _) => Some((Other("dvb_teletext".into()), TrackKind::Subtitle)),
            (_, Some(b"Opus")) => audio(Opus),
            (_, Some(b"HEVC")) => video(Hevc),
            (_, Some(b"ID3 ")) => other("timed_id3"),
            _ => other("private_data"),
        },
        0x15 => other("timed_id3"),
        // Sections, not PES: private sections, DSM-CC, SCTE-35 splice info, IPMP.
        0x05 | 0x0A..=0x0D | 0x14 | 0x16..=0x19 | 0x7F | 0x86 => None,
        t => Some((Other(format!("stream_type_{t:#04x}")), TrackKind::Other)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Wraps a section body (after the 8-byte long header) with header and CRC.
    pub(crate) fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let len = body.len() + 5 + 4;
        let mut s = vec![table_id, 0xB0 | (len >> 8) as u8, len as u8];
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&[0xC1, 0, 0]);
        s.extend_from_slice(body);
        let crc = crc32(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        // CRC-32/MPEG-2 check value for "123456789".
        assert_eq!(crc32(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn parses_pat_and_pmt() {
        let pat = section(0, 1, &[0, 0, 0xE0, 0x10, 0, 1, 0xF0, 0x00]);
        assert_eq!(parse_pat(&pat, 0).unwrap(), Some((1, 0x1000)));
        let body = [
            0xE1, 0x00, 0xF0, 0x00, // PCR PID, no program descriptors
            0x1B, 0xE1, 0x00, 0xF0, 0x00, // H.264 on 0x100
            0x06, 0xE1, 0x01, 0xF0, 0x09, 0x0A, 0x04, b'E', b'N', b'G', 0, 0x6A, 0x01, 0x00, 0x86,
            0xE1, 0x02, 0xF0, 0x00, // SCTE-35: skipped
        ];
        let pmt = parse_pmt(&section(2, 1, &body), 0, 0x1000, false)
            .unwrap()
            .unwrap();
        assert_eq!(pmt.streams.len(), 2);
        assert_eq!(pmt.streams[0].codec, Codec::H264);
        assert_eq!(pmt.streams[1].codec, Codec::Ac3);
        assert_eq!(pmt.streams[1].language.as_deref(), Some("eng"));
    }

    #[test]
    fn rejects_bad_crc_and_lengths() {
        let mut pat = section(0, 1, &[0, 1, 0xE0, 0x10]);
        let n = pat.len();
        pat[n - 1] ^= 1;
        assert!(parse_pat(&pat, 0).is_err());
        // ES_info_length far past the section.
        let body = [0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xFF, 0xFF];
        let err = parse_pmt(&section(2, 1, &body), 7, 0x1000, false).unwrap_err();
        assert!(
            matches!(err, ProbeError::Malformed { offset: 7, .. }),
            "{err}"
        );
    }

    #[test]
    fn assembles_sections_across_packets() {
        let pat = section(0, 1, &[0, 1, 0xE0, 0x10]);
        let mut a = Assembler::default();
        let mut out = Vec::new();
        let mut first = vec![0u8];
        first.extend_from_slice(&pat[..5]);
        a.push(0, true, &first, 100, &mut out);
        assert!(out.is_empty());
        let mut second = pat[5..].to_vec();
        second.extend_from_slice(&[0xFF; 20]);
        a.push(0, false, &second, 288, &mut out);
        assert_eq!(out.len(), 1);
        let (off, s) = out.pop().unwrap().unwrap();
        assert_eq!((off, s), (101, pat));
    }
}
