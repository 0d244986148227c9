//! Live kernel log source: replays `/dev/kmsg` from the oldest record the kernel still holds
//! (the SMMU probe and reset of this boot, if the buffer has not wrapped), then follows new
//! records as the kernel signals them readable (no polling).
//!
//! `/dev/kmsg` semantics (`Documentation/ABI/testing/dev-kmsg`): each `read()` returns one
//! record; the first read after `open()` returns the oldest record; `EPIPE` means records were
//! overwritten before they were read (reading continues with the oldest remaining one);
//! `EAGAIN` on an `O_NONBLOCK` descriptor means no record is waiting.
//!
//! Multi-line groups (an AER error and its detail lines) are emitted once the log has been
//! quiet for [`FLUSH_GRACE`] after a read found nothing more (`EAGAIN`), so a group whose lines
//! are still being printed is not cut in two.
use std::{
    fs::{File, OpenOptions},
    io::{self, Read},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use tokio::{
    io::{Interest, unix::AsyncFd},
    sync::{mpsc, watch},
    time::{Duration, Instant, sleep_until},
};

use crate::{
    clock::monotonic_ns,
    event::Event,
    logparse::{KmsgDecoder, KmsgTotals},
};

/// The kernel log device.
pub const KMSG_PATH: &str = "/dev/kmsg";
/// How long a pending multi-line group waits for more lines once the log is quiet.
pub const FLUSH_GRACE: Duration = Duration::from_millis(100);
/// Read buffer: a record never exceeds the kernel's 8 KiB extended-record limit; a read into
/// a buffer too small for the record fails with `EINVAL`.
const READ_BUFFER: usize = 64 * 1024;
/// Records read before handing a batch on and giving the runtime a turn.
const MAX_RECORDS_PER_DRAIN: usize = 4096;

/// Errors of the kmsg source.
#[derive(Debug, thiserror::Error)]
pub enum KmsgError {
    #[error("cannot open {path}: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot register the kernel log with the event loop: {0}")]
    Poll(io::Error),
    #[error("reading the kernel log: {0}")]
    Read(io::Error),
}

/// How a [`KmsgReader::read_available`] call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// `EAGAIN`: nothing more to read now.
    WouldBlock,
    /// End of file (a regular file, not the device).
    Eof,
    /// The per-call record limit was reached; more may be waiting.
    More,
}

/// The I/O-free core: reads records from any reader with `/dev/kmsg` semantics (one record
/// per `read()`, `EPIPE` for lost records, `WouldBlock` when empty) and decodes them.
#[derive(Debug)]
pub struct KmsgReader {
    decoder: KmsgDecoder,
    buf: Box<[u8]>,
}

impl Default for KmsgReader {
    fn default() -> Self {
        Self::new()
    }
}

impl KmsgReader {
    #[must_use]
    pub fn new() -> Self {
        Self {
            decoder: KmsgDecoder::new(),
            buf: vec![0; READ_BUFFER].into_boxed_slice(),
        }
    }

    /// Reads up to `max_records` records, appending the events they complete to `out`.
    /// `EPIPE` is accounted (a `kmsg_lost` event follows) and reading goes on; `EINTR` is
    /// retried.
    pub fn read_available<R: Read>(
        &mut self,
        src: &mut R,
        out: &mut Vec<Event>,
        max_records: usize,
    ) -> Result<Drain, KmsgError> {
        let mut records = 0;
        while records < max_records {
            match src.read(&mut self.buf) {
                Ok(0) => return Ok(Drain::Eof),
                Ok(n) => {
                    records += 1;
                    self.decoder.push_record(&self.buf[..n], out);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Drain::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => self.decoder.note_overrun(),
                Err(e) => return Err(KmsgError::Read(e)),
            }
        }
        Ok(Drain::More)
    }

    /// Emits the pending multi-line group, if any.
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        self.decoder.flush(out);
    }

    /// Final flush at stop: the pending group, and an overrun no record followed.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.decoder.finish_at(monotonic_ns(), out);
    }

    /// Whether a multi-line group is waiting for more lines.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        self.decoder.has_pending()
    }

    #[must_use]
    pub fn totals(&self) -> KmsgTotals {
        self.decoder.totals()
    }
}

/// The live source over a non-blocking kmsg descriptor.
pub struct KmsgSource {
    fd: AsyncFd<File>,
    reader: KmsgReader,
}

impl KmsgSource {
    /// Opens `/dev/kmsg`. Must be called inside the tokio runtime.
    pub fn open() -> Result<Self, KmsgError> {
        Self::open_path(Path::new(KMSG_PATH))
    }

    /// Opens a kmsg-like device read-only and non-blocking. Must be called inside the tokio
    /// runtime.
    pub fn open_path(path: &Path) -> Result<Self, KmsgError> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| KmsgError::Open {
                path: path.to_owned(),
                source,
            })?;
        Self::from_file(file)
    }

    /// Wraps an already open, non-blocking descriptor with one-record-per-read semantics.
    /// Must be called inside the tokio runtime.
    pub fn from_file(file: File) -> Result<Self, KmsgError> {
        // SAFETY: the File owns its descriptor; it stays open, and the same, until the AsyncFd
        // (which owns the File) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(file, Interest::READABLE) }
            .map_err(|e| KmsgError::Poll(e.into_parts().1))?;
        Ok(Self {
            fd,
            reader: KmsgReader::new(),
        })
    }

    /// Records decoded, skipped and lost so far.
    #[must_use]
    pub fn totals(&self) -> KmsgTotals {
        self.reader.totals()
    }

    /// Streams events into `tx` until `stop` changes (or its sender goes away), then reads
    /// what is still readable, flushes and returns. Returns early, without error, if the
    /// receiver of `tx` is gone.
    pub async fn run(
        &mut self,
        tx: &mpsc::Sender<Vec<Event>>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), KmsgError> {
        if !*stop.borrow_and_update() && !self.follow(tx, &mut stop).await? {
            return Ok(());
        }
        self.drain_and_finish(tx).await
    }

    /// Reads and forwards records as they become readable until `stop` changes. `false` if
    /// the receiver is gone.
    async fn follow(
        &mut self,
        tx: &mpsc::Sender<Vec<Event>>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<bool, KmsgError> {
        // When a pending group is flushed if no line completes it first.
        let mut flush_at: Option<Instant> = None;
        // The last read ended with `EAGAIN` (or end of file).
        let mut quiet = false;
        loop {
            if !self.reader.has_pending() {
                flush_at = None;
            } else if flush_at.is_none() && quiet {
                flush_at = Some(Instant::now() + FLUSH_GRACE);
            }
            let grace = async move {
                match flush_at {
                    Some(at) => sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let mut batch = Vec::new();
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(true),
                ready = self.fd.readable_mut() => {
                    let mut guard = ready.map_err(KmsgError::Poll)?;
                    let drained = self.reader.read_available(
                        guard.get_inner_mut(),
                        &mut batch,
                        MAX_RECORDS_PER_DRAIN,
                    )?;
                    quiet = drained != Drain::More;
                    if quiet {
                        guard.clear_ready();
                    }
                    if !batch.is_empty() {
                        // The pending group (if any) may be a new one: give it its own grace.
                        flush_at = None;
                    }
                }
                () = grace => {
                    self.reader.flush(&mut batch);
                    flush_at = None;
                }
            }
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                return Ok(false);
            }
        }
    }

    /// Reads everything readable now, then flushes.
    async fn drain_and_finish(&mut self, tx: &mpsc::Sender<Vec<Event>>) -> Result<(), KmsgError> {
        loop {
            let mut batch = Vec::new();
            let drained =
                self.reader
                    .read_available(self.fd.get_mut(), &mut batch, MAX_RECORDS_PER_DRAIN)?;
            if drained != Drain::More {
                self.reader.finish(&mut batch);
            }
            if !batch.is_empty() && tx.send(batch).await.is_err() {
                return Ok(());
            }
            if drained != Drain::More {
                break;
            }
        }
        let totals = self.reader.totals();
        tracing::debug!(
            records = totals.records,
            lost = totals.lost,
            overruns = totals.overruns,
            undecodable = totals.undecodable,
            mirrored = totals.mirrored,
            "kmsg source stopped"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        os::{fd::OwnedFd, unix::net::UnixDatagram},
    };

    use super::*;
    use crate::event::{Detail, Source};

    /// A reader that replays scripted `read()` results.
    struct Script(VecDeque<io::Result<Vec<u8>>>);

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.pop_front() {
                None => Err(io::ErrorKind::WouldBlock.into()),
                Some(Ok(record)) => {
                    buf[..record.len()].copy_from_slice(&record);
                    Ok(record.len())
                }
                Some(Err(e)) => Err(e),
            }
        }
    }

    fn rec(seq: u64, usec: u64, text: &str) -> Vec<u8> {
        format!("6,{seq},{usec},-;{text}\n SUBSYSTEM=pci\n").into_bytes()
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.detail.kind()).collect()
    }

    #[test]
    fn backfill_epipe_eintr_and_eagain() {
        let mut script = Script(VecDeque::from([
            Ok(rec(
                0,
                1_618_359,
                "arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00088705)",
            )),
            Err(io::ErrorKind::Interrupted.into()),
            Ok(rec(
                1,
                1_637_153,
                "arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...",
            )),
            Err(io::Error::from_raw_os_error(libc::EPIPE)),
            Ok(rec(
                40,
                4_427_993,
                "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0",
            )),
            Ok(rec(
                41,
                4_429_326,
                "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Correctable, type=Data Link Layer, (Receiver ID)",
            )),
        ]));
        let mut reader = KmsgReader::new();
        let mut out = Vec::new();
        assert_eq!(
            reader.read_available(&mut script, &mut out, 100).unwrap(),
            Drain::WouldBlock
        );
        assert_eq!(kinds(&out), ["smmu_probe", "smmu_reset", "kmsg_lost"]);
        assert_eq!(out[2].detail, Detail::KmsgLost { count: Some(38) });
        assert_eq!(out[2].ts_ns, 4_427_993_000);
        assert!(out.iter().take(2).all(|e| e.source == Source::Kmsg));
        assert!(reader.has_pending(), "the AER error waits for more lines");
        reader.flush(&mut out);
        assert_eq!(kinds(&out).last(), Some(&"aer"));
        let totals = reader.totals();
        assert_eq!((totals.records, totals.lost, totals.overruns), (4, 38, 1));
    }

    #[test]
    fn record_limit_and_real_errors() {
        let mut script = Script(VecDeque::from([
            Ok(rec(0, 1, "a")),
            Ok(rec(1, 2, "b")),
            Ok(rec(2, 3, "c")),
            Err(io::Error::from_raw_os_error(libc::EINVAL)),
        ]));
        let mut reader = KmsgReader::new();
        let mut out = Vec::new();
        assert_eq!(
            reader.read_available(&mut script, &mut out, 2).unwrap(),
            Drain::More
        );
        assert!(matches!(
            reader.read_available(&mut script, &mut out, 2),
            Err(KmsgError::Read(_))
        ));
        let mut empty: &[u8] = &[];
        assert_eq!(
            reader.read_available(&mut empty, &mut out, 2).unwrap(),
            Drain::Eof
        );
    }

    #[tokio::test]
    async fn follows_new_records_then_drains_and_flushes_on_stop() {
        let (kernel, daemon) = UnixDatagram::pair().unwrap();
        daemon.set_nonblocking(true).unwrap();
        kernel
            .send(
                b"6,0,1637153,-;arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\n",
            )
            .unwrap();
        // A datagram socket keeps record boundaries, like `/dev/kmsg`, and can be polled.
        let mut source = KmsgSource::from_file(File::from(OwnedFd::from(daemon))).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            source.run(&tx, stop_rx).await.unwrap();
            source.totals()
        });

        // Backfill.
        let batch = rx.recv().await.unwrap();
        assert_eq!(kinds(&batch), ["smmu_reset"]);
        // A new record while running, then a group that only the grace period completes.
        kernel
            .send(b"0,1,6368629,-;Kernel panic - not syncing: sysrq triggered crash\n")
            .unwrap();
        assert_eq!(kinds(&rx.recv().await.unwrap()), ["panic"]);
        kernel
            .send(b"3,2,9668622,-;pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0\n")
            .unwrap();
        let started = std::time::Instant::now();
        let batch = rx.recv().await.unwrap();
        assert_eq!(kinds(&batch), ["aer"]);
        assert!(started.elapsed() >= FLUSH_GRACE / 2);

        // Records readable at stop are still read, and the open group flushed.
        kernel
            .send(b"4,3,9669197,-;virtio-pci 0000:02:00.0: AER: PCIe Bus Error: severity=Uncorrectable (Fatal), type=Inaccessible, (Unregistered Agent ID)\n")
            .unwrap();
        kernel
            .send(b"5,4,9700000,-;kdump-dma-observer: v1 {\"kind\":\"aer\"}\n")
            .unwrap();
        stop_tx.send(true).unwrap();
        let totals = task.await.unwrap();
        let mut rest = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            rest.extend(batch);
        }
        assert_eq!(kinds(&rest), ["aer"], "{rest:#?}");
        assert!(matches!(
            &rest[0].detail,
            Detail::Aer { error_type: Some(t), reporter: None, .. } if t == "Inaccessible"
        ));
        assert_eq!((totals.records, totals.mirrored, totals.lost), (5, 1, 0));
    }

    #[tokio::test]
    async fn open_errors_name_the_path() {
        let err = KmsgSource::open_path(Path::new("/nonexistent/kmsg"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/kmsg"), "{err}");
    }
}
