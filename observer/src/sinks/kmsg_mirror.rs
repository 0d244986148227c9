//! Mirror of the timeline into the kernel log, so the evidence survives a capture kernel that
//! dies: the console, netconsole and pstore all carry kernel log lines.
//!
//! Each event becomes one record `kdump-dma-observer: v1 <compact JSON>` at `KERN_NOTICE`.
//! The format itself (prefix, version, encoding and decoding) lives in `logparse::mirror`, so a
//! console log or pstore file can be parsed back into the timeline, and the live kmsg source
//! never reads the mirror as new evidence. This sink only writes, under a rate limit.
use std::{
    fs::OpenOptions,
    io::{self, Write as _},
    path::Path,
    time::Instant,
};

use crate::{
    event::{Detail, Event},
    logparse::mirror::record,
};

/// Writes events into `/dev/kmsg` under a rate limit.
pub struct KmsgMirror {
    out: std::fs::File,
    budget: TokenBucket,
    /// Events not mirrored: over the rate limit, too long, or the write failed.
    pub skipped: u64,
    pub mirrored: u64,
}

/// Mirrors what one of the daemon's own sources witnessed (eBPF, boot trace, start/stop/loss
/// lines), also when the kernel log saw the same event and, on one clock, saw it first (a
/// fatal AER error seen by the tracepoint and the log: the mirror line carries the merged
/// fields to a console that may be all that survives). Not what only the kernel log holds (a
/// mirrored `kernel_boot` would even split a console log into extra boots), and not self-test
/// events.
#[must_use]
pub fn worth_mirroring(event: &Event) -> bool {
    let own_witness = event.source != crate::event::Source::Kmsg
        || event
            .sources
            .iter()
            .any(|s| *s != crate::event::Source::Kmsg);
    own_witness && !matches!(event.detail, Detail::SelfTest { .. })
}

impl KmsgMirror {
    /// Opens `/dev/kmsg` (or `path`) for writing. The kernel rate-limits writers to 10 records
    /// per 5 s unless `printk.devkmsg=on`; `unlimited` says which applies.
    pub fn open(path: &Path, unlimited: bool) -> io::Result<Self> {
        let out = OpenOptions::new().write(true).open(path)?;
        let budget = if unlimited {
            TokenBucket::new(200, 100)
        } else {
            TokenBucket::new(10, 2)
        };
        Ok(Self {
            out,
            budget,
            skipped: 0,
            mirrored: 0,
        })
    }

    /// Whether the kernel lets writers through unthrottled (`printk.devkmsg=on`).
    #[must_use]
    pub fn kernel_allows_unlimited() -> bool {
        std::fs::read_to_string("/proc/sys/kernel/printk_devkmsg").is_ok_and(|v| v.trim() == "on")
    }

    /// Mirrors the events of a batch that are worth it, within the budget.
    pub fn mirror(&mut self, batch: &[Event]) {
        for event in batch.iter().filter(|e| worth_mirroring(e)) {
            let Some(line) = record(event) else {
                self.skipped += 1;
                continue;
            };
            if !self.budget.take(Instant::now()) {
                self.skipped += 1;
                continue;
            }
            // One write() is one record.
            match self.out.write_all(line.as_bytes()) {
                Ok(()) => self.mirrored += 1,
                Err(_) => self.skipped += 1,
            }
        }
    }
}

/// A classic token bucket: `burst` at once, `per_sec` sustained.
struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    fn new(burst: u32, per_sec: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            burst: f64::from(burst),
            per_sec: f64::from(per_sec),
            last: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Source};

    fn aer() -> Event {
        Event::new(
            9_669_622_000,
            Source::Kmsg,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: None,
                error_type: Some("Inaccessible".into()),
                reporter: Some("0000:00:03.0".into()),
                errors: Vec::new(),
                firmware_first: None,
            },
        )
        .with_raw("pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0")
    }

    #[test]
    fn mirror_writes_one_record_per_event_within_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(&path, "").unwrap();
        let mut m = KmsgMirror::open(&path, false).unwrap();
        let batch: Vec<Event> = (0..15)
            .map(|_| {
                let mut e = aer();
                e.source = Source::Ebpf;
                e
            })
            .collect();
        m.mirror(&batch);
        assert_eq!(m.mirrored, 10, "the throttled budget is 10 at once");
        assert_eq!(m.skipped, 5);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 10);
        let self_test = Event::new(1, Source::Ebpf, Detail::SelfTest { seq: 0, tid: 1 });
        assert!(!worth_mirroring(&self_test));
        assert!(!worth_mirroring(&aer()), "the kernel logged it already");
        let mut merged = aer();
        merged.sources = vec![Source::Kmsg, Source::Ebpf];
        assert!(
            worth_mirroring(&merged),
            "the tracepoint saw it too, after the log line"
        );
    }

    #[test]
    fn bucket_refills_over_time() {
        let mut b = TokenBucket::new(1, 2);
        let t0 = Instant::now();
        assert!(b.take(t0));
        assert!(!b.take(t0));
        assert!(b.take(t0 + std::time::Duration::from_millis(600)));
    }
}
