//! The offset between the kernel log's clock and `CLOCK_MONOTONIC` on the running kernel.
//!
//! Kernel-log records carry the printk clock: `local_clock()` at the time the record is stored
//! (`kernel/printk/printk.c`, `vprintk_store()`), which `/dev/kmsg` reports in microseconds
//! (`devkmsg_read()` → `info_print_ext_header()`). Boot-trace records (`trace_clock=mono`) and
//! eBPF records (`bpf_ktime_get_ns()`) carry `CLOCK_MONOTONIC`. Both start near zero at boot
//! but not at the same instant, and in QEMU capture kernels they were seen about 200 ms apart,
//! enough to put the driver's `SMMU currently enabled! Resetting...` line after the register
//! writes it precedes.
//!
//! The offset is measured, not assumed: a marker record is written to `/dev/kmsg` between two
//! `clock_gettime(CLOCK_MONOTONIC)` calls, read back, and its printk timestamp is compared with
//! the midpoint of the two readings. The write stores the record synchronously
//! (`devkmsg_write()` → `printk_emit()`), so its timestamp lies between the two readings; half
//! their distance (plus the record's 1 µs resolution) bounds the error. The best of a few
//! attempts (the narrowest bracket) is kept.
//!
//! The marker starts with the mirror prefix (`kdump-dma-observer: `), so the daemon's own kmsg
//! source skips it like its mirror lines, and is written at `LOG_USER | LOG_DEBUG` so that it
//! does not reach a console at the default log level.
use std::{
    fs::{File, OpenOptions},
    io::{self, Read, Seek, SeekFrom, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use crate::{clock::monotonic_ns, logparse};

/// How many markers are written at most; every one counts against the kernel's `/dev/kmsg`
/// write rate limit (10 records per 5 s unless `printk.devkmsg=on`), which the mirror shares.
pub const ATTEMPTS: usize = 2;
/// How long to look for a marker after writing it before giving up.
const READ_BACK_TIMEOUT: Duration = Duration::from_millis(500);
/// Resolution of a `/dev/kmsg` record's timestamp.
const RECORD_RESOLUTION_NS: u64 = 1_000;
/// Marker text, before a per-attempt tag; begins with the mirror prefix so the kmsg source
/// skips it.
pub const MARKER: &str = "kdump-dma-observer: clock marker";

/// `CLOCK_MONOTONIC` minus the printk clock, as measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockOffset {
    /// Add this to a kernel-log timestamp to get `CLOCK_MONOTONIC` (nanoseconds, signed).
    pub offset_ns: i64,
    /// Half the `CLOCK_MONOTONIC` bracket around the marker's write, plus the record's 1 µs
    /// resolution: the offset is right to within this.
    pub uncertainty_ns: u64,
}

impl ClockOffset {
    /// The offset from one marker: written between `before_ns` and `after_ns`
    /// (`CLOCK_MONOTONIC`), stamped `record_ts_ns` by the printk clock.
    #[must_use]
    pub fn from_marker(before_ns: u64, after_ns: u64, record_ts_ns: u64) -> Self {
        let (lo, hi) = (before_ns.min(after_ns), before_ns.max(after_ns));
        let mid = lo + (hi - lo) / 2;
        Self {
            offset_ns: signed_difference(mid, record_ts_ns),
            uncertainty_ns: (hi - lo).div_ceil(2) + RECORD_RESOLUTION_NS,
        }
    }

    /// `ts_ns` of the printk clock on `CLOCK_MONOTONIC` (clamped at zero: a record older than
    /// the monotonic clock's start is stamped at that start).
    #[must_use]
    pub fn to_monotonic(&self, ts_ns: u64) -> u64 {
        ts_ns.saturating_add_signed(self.offset_ns)
    }
}

/// `a - b` as a signed number of nanoseconds (saturating; boot-relative clocks never get near).
fn signed_difference(a: u64, b: u64) -> i64 {
    if a >= b {
        i64::try_from(a - b).unwrap_or(i64::MAX)
    } else {
        i64::try_from(b - a).map_or(i64::MIN, |d| -d)
    }
}

/// Why the offset could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum ClockOffsetError {
    #[error("cannot open {path} to {what}: {source}")]
    Open {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("cannot write the clock marker to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "the clock marker did not come back from {path} within {timeout_ms} ms (dropped by the \
         kernel's /dev/kmsg rate limit? boot with printk.devkmsg=on)"
    )]
    NotFound { path: PathBuf, timeout_ms: u128 },
}

/// Measures the offset on the running kernel through `kmsg` (`/dev/kmsg`): the best of
/// [`ATTEMPTS`] markers.
pub fn measure(kmsg: &Path) -> Result<ClockOffset, ClockOffsetError> {
    let open = |write: bool| {
        let mut options = OpenOptions::new();
        if write {
            options.write(true);
        } else {
            options.read(true).custom_flags(libc::O_NONBLOCK);
        }
        options.open(kmsg).map_err(|source| ClockOffsetError::Open {
            path: kmsg.to_owned(),
            what: if write {
                "write the clock marker"
            } else {
                "read the clock marker back"
            },
            source,
        })
    };
    let mut reader = open(false)?;
    let mut writer = open(true)?;
    // Only records stored from now on: the marker is among the next few.
    reader
        .seek(SeekFrom::End(0))
        .map_err(|source| ClockOffsetError::Read {
            path: kmsg.to_owned(),
            source,
        })?;
    let mut best: Option<ClockOffset> = None;
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        match one_marker(kmsg, &mut reader, &mut writer, attempt) {
            Ok(o) => {
                if best
                    .as_ref()
                    .is_none_or(|b| o.uncertainty_ns < b.uncertainty_ns)
                {
                    best = Some(o);
                }
            }
            Err(e) => last_error = Some(e),
        }
    }
    match (best, last_error) {
        (Some(best), _) => Ok(best),
        (None, Some(e)) => Err(e),
        (None, None) => unreachable!("ATTEMPTS > 0"),
    }
}

fn one_marker(
    kmsg: &Path,
    reader: &mut File,
    writer: &mut File,
    attempt: usize,
) -> Result<ClockOffset, ClockOffsetError> {
    let tag = format!("{} {attempt}", std::process::id());
    // <15>: facility LOG_USER (1), level LOG_DEBUG (7).
    let line = format!("<15>{MARKER} {tag}\n");
    let before = monotonic_ns();
    let written = writer.write(line.as_bytes());
    let after = monotonic_ns();
    written.map_err(|source| ClockOffsetError::Write {
        path: kmsg.to_owned(),
        source,
    })?;
    let record_ts = read_back(kmsg, reader, &tag)?;
    Ok(ClockOffset::from_marker(before, after, record_ts))
}

/// Reads records until the marker tagged `tag`; returns its timestamp (ns, printk clock).
fn read_back(kmsg: &Path, reader: &mut File, tag: &str) -> Result<u64, ClockOffsetError> {
    let deadline = Instant::now() + READ_BACK_TIMEOUT;
    let mut buf = vec![0; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => {}
            Ok(n) => {
                if let Some(ts) = marker_timestamp(&buf[..n], tag) {
                    return Ok(ts);
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Records overwritten meanwhile: reading goes on with the oldest remaining one.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(source) => {
                return Err(ClockOffsetError::Read {
                    path: kmsg.to_owned(),
                    source,
                });
            }
        }
        if Instant::now() >= deadline {
            return Err(ClockOffsetError::NotFound {
                path: kmsg.to_owned(),
                timeout_ms: READ_BACK_TIMEOUT.as_millis(),
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The timestamp (ns) of `record` if it is the marker tagged `tag`.
fn marker_timestamp(record: &[u8], tag: &str) -> Option<u64> {
    let record = logparse::parse_record(record).ok()?;
    let rest = record.text.strip_prefix(MARKER)?.trim();
    (rest == tag).then(|| record.ts_ns())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_is_the_bracket_midpoint_minus_the_record_time() {
        // Written between 1.800 s and 1.800 010 s monotonic, stamped 2.000 005 s by printk:
        // the printk clock is 200 ms ahead.
        let o = ClockOffset::from_marker(1_800_000_000, 1_800_010_000, 2_000_005_000);
        assert_eq!(o.offset_ns, -200_000_000);
        assert_eq!(o.uncertainty_ns, 5_000 + 1_000);
        assert_eq!(o.to_monotonic(2_000_005_000), 1_800_005_000);
        // The other way round: monotonic ahead.
        let o = ClockOffset::from_marker(5_000_000, 5_000_002, 1_000_000);
        assert_eq!(o.offset_ns, 4_000_001);
        assert_eq!(o.uncertainty_ns, 1_001);
    }

    #[test]
    fn records_older_than_the_monotonic_start_clamp_at_zero() {
        let o = ClockOffset {
            offset_ns: -200_000_000,
            uncertainty_ns: 0,
        };
        assert_eq!(o.to_monotonic(150_000_000), 0);
        assert_eq!(o.to_monotonic(250_000_000), 50_000_000);
    }

    #[test]
    fn only_the_tagged_marker_record_is_taken() {
        let ours = format!("15,812,2000005,-,caller=T301;{MARKER} 301 0\n");
        assert_eq!(
            marker_timestamp(ours.as_bytes(), "301 0"),
            Some(2_000_005_000)
        );
        let other_attempt = format!("15,813,2000105,-;{MARKER} 301 1\n");
        assert_eq!(marker_timestamp(other_attempt.as_bytes(), "301 0"), None);
        assert_eq!(
            marker_timestamp(
                b"6,814,2000200,-;arm-smmu-v3 9050000.smmuv3: ias 44-bit\n",
                "301 0"
            ),
            None
        );
        assert_eq!(marker_timestamp(b"garbage", "301 0"), None);
    }

    #[test]
    fn the_marker_is_skipped_by_the_kmsg_source_like_a_mirror_line() {
        assert!(logparse::is_mirrored_line(&format!("{MARKER} 301 0")));
    }

    #[test]
    fn a_missing_device_is_an_error_naming_it() {
        let err = measure(Path::new("/nonexistent/kmsg"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/kmsg"), "{err}");
        assert!(err.contains("read the clock marker back"), "{err}");
    }
}
