//! JSON Lines output, on its own thread so that disk latency never stalls the ring buffer.
//!
//! Durability policy: every batch the sources hand over is written, flushed and — for a file —
//! `fdatasync`ed before the next batch is taken. A line is *acknowledged* once its batch is
//! synced; a crash can only lose (or tear) the batch in flight, never an earlier one.
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
    thread::JoinHandle,
};

use tokio::sync::mpsc;

use std::sync::Arc;

use super::{kmsg_mirror::KmsgMirror, metrics::Metrics};
use crate::event::Event;

/// Where lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Stdout,
    /// Appended to, created if missing: a restarted daemon never truncates earlier evidence.
    File(PathBuf),
}

/// Totals of a finished writer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterTotals {
    /// Lines written per witnessing source (a merged event counts for each of its sources).
    pub by_source: std::collections::BTreeMap<crate::event::Source, u64>,
    /// Lines written and synced.
    pub lines: u64,
    /// Writes (one or more coalesced batches) that failed to write or sync.
    pub failed_batches: u64,
    /// Lines in failed batches.
    pub failed_lines: u64,
    /// Events mirrored into the kernel log.
    pub mirrored: u64,
    /// Events not mirrored (rate limit, too long, write error).
    pub mirror_skipped: u64,
}

/// The output could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open {path} for appending: {source}", path = path.display())]
pub struct OpenError {
    pub path: PathBuf,
    pub source: io::Error,
}

enum Out {
    Stdout(io::Stdout),
    File(File),
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(s) => s.write(buf),
            Self::File(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(s) => s.flush(),
            Self::File(f) => f.flush(),
        }
    }
}

/// Opens `destination` and starts the writer thread; it ends when every sender is dropped.
/// With a `mirror`, every batch also goes to the kernel log — before the file, so a full disk
/// or a dying machine still leaves it on the console.
pub fn spawn(
    destination: &Destination,
    rx: mpsc::Receiver<Vec<Event>>,
    mirror: Option<KmsgMirror>,
    metrics: Option<Arc<Metrics>>,
) -> Result<JoinHandle<WriterTotals>, OpenError> {
    let out = match destination {
        Destination::Stdout => Out::Stdout(io::stdout()),
        Destination::File(path) => Out::File(open_append(path)?),
    };
    Ok(std::thread::Builder::new()
        .name("jsonl-writer".into())
        .spawn(move || write_loop(out, rx, mirror, metrics.as_deref()))
        .expect("spawning a thread"))
}

fn open_append(path: &Path) -> Result<File, OpenError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| OpenError {
            path: path.to_path_buf(),
            source,
        })
}

/// Upper bound of bytes written (and synced) at once.
const COALESCE_BYTES: usize = 4 << 20;

fn write_loop(
    mut out: Out,
    mut rx: mpsc::Receiver<Vec<Event>>,
    mut mirror: Option<KmsgMirror>,
    metrics: Option<&Metrics>,
) -> WriterTotals {
    let mut buf = Vec::with_capacity(1 << 20);
    let mut totals = WriterTotals::default();
    // After a failed write the file may end in a torn line; the next batch starts a new one.
    let mut torn = false;
    while let Some(batch) = rx.blocking_recv() {
        let (lines_before, failed_before) = (totals.lines, totals.failed_lines);
        let skipped_before = mirror.as_ref().map_or(0, |m| m.skipped);
        if let Some(m) = mirror.as_mut() {
            m.mirror(&batch);
        }
        buf.clear();
        if torn {
            buf.push(b'\n');
        }
        encode(&mut buf, &batch);
        let mut count = batch.len() as u64;
        // Under load, take every batch already queued and sync them together: one fsync per
        // wake-up instead of one per batch keeps the writer ahead of the ring buffer.
        let mut coalesced = Vec::new();
        while buf.len() < COALESCE_BYTES {
            let Ok(more) = rx.try_recv() else { break };
            if let Some(m) = mirror.as_mut() {
                m.mirror(&more);
            }
            encode(&mut buf, &more);
            count += more.len() as u64;
            coalesced.push(more);
        }
        match write_synced(&mut out, &buf) {
            Ok(()) => {
                totals.lines += count;
                count_sources(&mut totals, &batch);
                for more in &coalesced {
                    count_sources(&mut totals, more);
                }
                if torn {
                    tracing::info!("timeline writes succeed again");
                    torn = false;
                }
            }
            Err(e) => {
                totals.failed_batches += 1;
                totals.failed_lines += count;
                if !torn {
                    tracing::error!(
                        error = %e,
                        "timeline write failed; still observing, counting losses"
                    );
                    torn = true;
                }
            }
        }
        if let Some(metrics) = metrics {
            metrics.written(
                totals.lines - lines_before,
                totals.failed_lines - failed_before,
                mirror.as_ref().map_or(0, |m| m.skipped) - skipped_before,
            );
        }
    }
    if let Some(m) = mirror {
        totals.mirrored = m.mirrored;
        totals.mirror_skipped = m.skipped;
    }
    totals
}

fn count_sources(totals: &mut WriterTotals, batch: &[Event]) {
    for event in batch {
        if event.sources.is_empty() {
            *totals.by_source.entry(event.source).or_default() += 1;
        } else {
            for source in &event.sources {
                *totals.by_source.entry(*source).or_default() += 1;
            }
        }
    }
}

/// Appends one JSON line per event to `buf`.
pub fn encode(buf: &mut Vec<u8>, batch: &[Event]) {
    for event in batch {
        serde_json::to_writer(&mut *buf, event).expect("events always serialize");
        buf.push(b'\n');
    }
}

fn write_synced(out: &mut Out, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.flush()?;
    if let Out::File(file) = out {
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Detail, Source};

    fn ev(seq: u64) -> Event {
        Event::new(seq, Source::Ebpf, Detail::SelfTest { seq, tid: 1 })
    }

    #[test]
    fn appends_one_json_object_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "{\"earlier\":1}\n").unwrap();
        let (tx, rx) = mpsc::channel(4);
        let handle = spawn(&Destination::File(path.clone()), rx, None, None).unwrap();
        tx.blocking_send(vec![ev(1), ev(2)]).unwrap();
        tx.blocking_send(vec![ev(3)]).unwrap();
        drop(tx);
        let totals = handle.join().unwrap();
        assert_eq!(totals.lines, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4, "earlier content kept");
        for (i, line) in lines[1..].iter().enumerate() {
            let e: Event = serde_json::from_str(line).unwrap();
            assert_eq!(e, ev(i as u64 + 1));
        }
    }

    #[test]
    fn unopenable_output_names_the_path() {
        let (_tx, rx) = mpsc::channel(1);
        let e = spawn(
            &Destination::File("/nonexistent-dir/x.jsonl".into()),
            rx,
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/x.jsonl"), "{e}");
    }

    #[test]
    fn write_failures_are_counted_not_fatal() {
        // /dev/full accepts open() and fails every write with ENOSPC.
        let (tx, rx) = mpsc::channel(4);
        // The mirror keeps going while the disk is full.
        let dir = tempfile::tempdir().unwrap();
        let kmsg = dir.path().join("kmsg");
        std::fs::write(&kmsg, "").unwrap();
        let mirror = KmsgMirror::open(&kmsg, true).unwrap();
        let handle = spawn(
            &Destination::File("/dev/full".into()),
            rx,
            Some(mirror),
            None,
        )
        .unwrap();
        tx.blocking_send(vec![ev(1), ev(2)]).unwrap();
        tx.blocking_send(vec![ev(3)]).unwrap();
        drop(tx);
        let totals = handle.join().unwrap();
        assert_eq!(totals.lines, 0);
        assert_eq!(totals.failed_lines, 3);
        assert!(totals.failed_batches >= 1);
        assert_eq!(totals.mirrored, 0, "self-test events are not mirrored");
        let found = std::fs::read_to_string(&kmsg).unwrap();
        assert!(found.is_empty(), "{found:?}");
    }
}
