//! Media segments: `styp` + `moof` + `mdat` (see the crate docs for the tree).
//!
//! `trun` is written here rather than with mp4-atom: mp4-atom picks the trun version and the
//! flag layout itself (e.g. a one-sample run becomes `first_sample_flags`), and we want one
//! fixed layout so the bytes (and the goldens) do not move when mp4-atom changes its choices.

use mp4_atom::{FourCC, Mfhd, Styp, Tfdt, Tfhd};

use crate::boxes::{atom, write_box, write_full_box};
use crate::{limits, Fmp4Error, Run, TrackSpec, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS};

/// trun flags (§8.8.8.1).
mod trun_flags {
    pub const DATA_OFFSET: u32 = 0x00_0001;
    pub const SAMPLE_DURATION: u32 = 0x00_0100;
    pub const SAMPLE_SIZE: u32 = 0x00_0200;
    pub const SAMPLE_FLAGS: u32 = 0x00_0400;
    pub const SAMPLE_COMPOSITION_TIME_OFFSET: u32 = 0x00_0800;
}

/// `styp` + `moof` (mfhd sequence_number = `sequence`, one `traf` per run in the given order) +
/// one `mdat` holding each run's sample data one after the other.
pub fn media_segment(sequence: u32, runs: &[Run<'_>]) -> Result<Vec<u8>, Fmp4Error> {
    let total = validate(runs)?;

    let mut out =
        Vec::with_capacity(256 + runs.iter().map(|r| 16 * r.samples.len()).sum::<usize>());

    // styp: §8.16.2, same layout as ftyp.
    let mut brands = vec![FourCC::new(b"msdh")];
    brands.extend(crate::brands(runs.len()).into_iter().map(FourCC::from));
    atom(
        &mut out,
        &Styp {
            major_brand: FourCC::new(b"msdh"),
            minor_version: 0,
            compatible_brands: brands,
        },
    )?;

    let moof_start = out.len();
    // Where each run's trun data_offset field is, to backpatch once the moof size is known.
    let mut offset_fields = Vec::with_capacity(runs.len());
    // moof: §8.8.4, a container.
    write_box(&mut out, b"moof", |out| {
        // mfhd: §8.8.5.
        atom(
            out,
            &Mfhd {
                sequence_number: sequence,
            },
        )?;
        for run in runs {
            // traf: §8.8.6, a container.
            write_box(out, b"traf", |out| {
                // tfhd: §8.8.7. default-base-is-moof (0x020000) and no base_data_offset: trun
                // data offsets count from the first byte of this moof. No defaults: trun carries
                // every sample's fields.
                atom(
                    out,
                    &Tfhd {
                        track_id: run.track_id,
                        default_base_is_moof: true,
                        ..Tfhd::default()
                    },
                )?;
                // tfdt: §8.8.12, version 1 (64-bit) base_media_decode_time.
                atom(
                    out,
                    &Tfdt {
                        base_media_decode_time: run.base_decode_time,
                    },
                )?;
                offset_fields.push(trun(out, run)?);
                Ok(())
            })?;
        }
        Ok(())
    })?;

    // data_offset = from the moof's first byte to the run's first byte in mdat (after its
    // 8-byte header).
    let moof_size = (out.len() - moof_start) as u64;
    let mut offset = moof_size + 8;
    for (run, field) in runs.iter().zip(offset_fields) {
        let data_offset =
            i32::try_from(offset).map_err(|_| Fmp4Error::DataTooLarge { bytes: total })?;
        out[field..field + 4].copy_from_slice(&data_offset.to_be_bytes());
        offset += run_bytes(run);
    }

    // mdat: §8.1.1. Reserved only now that every offset is known to fit.
    out.try_reserve(8 + total as usize)
        .map_err(|_| Fmp4Error::DataTooLarge { bytes: total })?;
    write_box(&mut out, b"mdat", |out| {
        for run in runs {
            for sample in &run.samples {
                out.extend_from_slice(sample.data);
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// [`media_segment`], after checking that every run's track is one of `tracks` (those of the
/// init segment the media segment goes with).
pub fn media_segment_for(
    tracks: &[TrackSpec],
    sequence: u32,
    runs: &[Run<'_>],
) -> Result<Vec<u8>, Fmp4Error> {
    if let Some(run) = runs
        .iter()
        .find(|r| !tracks.iter().any(|t| t.id == r.track_id))
    {
        return Err(Fmp4Error::UnknownTrack(run.track_id));
    }
    media_segment(sequence, runs)
}

fn run_bytes(run: &Run<'_>) -> u64 {
    run.samples.iter().map(|s| s.data.len() as u64).sum()
}

/// Checks the runs; returns the total sample bytes.
fn validate(runs: &[Run<'_>]) -> Result<u64, Fmp4Error> {
    if runs.is_empty() {
        return Err(Fmp4Error::NoRuns);
    }
    if runs.len() > limits::MAX_RUNS {
        return Err(Fmp4Error::TooManyRuns {
            count: runs.len(),
            limit: limits::MAX_RUNS,
        });
    }
    let mut total = 0u64;
    for (i, run) in runs.iter().enumerate() {
        if run.track_id == 0 {
            return Err(Fmp4Error::UnknownTrack(0));
        }
        if runs[..i].iter().any(|r| r.track_id == run.track_id) {
            return Err(Fmp4Error::DuplicateTrack(run.track_id));
        }
        if run.samples.is_empty() {
            return Err(Fmp4Error::EmptyRun(run.track_id));
        }
        if run.samples.len() > limits::MAX_SAMPLES_PER_RUN {
            return Err(Fmp4Error::TooManySamples {
                track: run.track_id,
                count: run.samples.len(),
                limit: limits::MAX_SAMPLES_PER_RUN,
            });
        }
        total += run_bytes(run);
    }
    // The mdat size is 32 bits (we never write largesize); data offsets are checked against
    // i32 once the moof size is known.
    if total > u64::from(u32::MAX) - 8 {
        return Err(Fmp4Error::DataTooLarge { bytes: total });
    }
    Ok(total)
}

/// trun (§8.8.8), version 1 so composition offsets are signed. Flags: data-offset, and
/// per-sample duration, size and flags; per-sample composition offsets only when one of the
/// run's is non-zero. Returns the position of the data_offset field (written as 0).
fn trun(out: &mut Vec<u8>, run: &Run<'_>) -> Result<usize, Fmp4Error> {
    use trun_flags::*;
    let with_cts = run.samples.iter().any(|s| s.composition_offset != 0);
    let mut flags = DATA_OFFSET | SAMPLE_DURATION | SAMPLE_SIZE | SAMPLE_FLAGS;
    if with_cts {
        flags |= SAMPLE_COMPOSITION_TIME_OFFSET;
    }
    let mut field = 0;
    write_full_box(out, b"trun", 1, flags, |out| {
        // validate() caps the count at limits::MAX_SAMPLES_PER_RUN.
        out.extend_from_slice(&(run.samples.len() as u32).to_be_bytes());
        field = out.len();
        out.extend_from_slice(&0i32.to_be_bytes());
        for s in &run.samples {
            out.extend_from_slice(&s.duration.to_be_bytes());
            // validate() caps the segment's data under 4 GiB, so each sample fits a u32.
            out.extend_from_slice(&(s.data.len() as u32).to_be_bytes());
            let sample_flags = if s.keyframe {
                SYNC_SAMPLE_FLAGS
            } else {
                NON_SYNC_SAMPLE_FLAGS
            };
            out.extend_from_slice(&sample_flags.to_be_bytes());
            if with_cts {
                out.extend_from_slice(&s.composition_offset.to_be_bytes());
            }
        }
        Ok(())
    })?;
    Ok(field)
}
