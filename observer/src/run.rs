//! `kdump-dma-observer run`: attach, stream the timeline, account for every record, stop cleanly.
use std::{future::Future, path::PathBuf};

use tokio::sync::{mpsc, watch};

use crate::{
    event::{Detail, Event, Source},
    kernel::{capture, tracefs::Tracefs},
    probes::{self, KernelView, LoadOptions, ProbeReport},
    sinks::jsonl::{self, Destination, WriterTotals},
    sources::ebpf::{EbpfSource, KernelCounters, SourceTotals},
};

/// Batches in flight between the sources and the writer. When the writer falls behind, the
/// sources wait, the ring buffer fills, and the kernel counts drops: loss is visible, memory
/// stays bounded.
const CHANNEL_BATCHES: usize = 64;

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub destination: Destination,
    pub load: LoadOptions,
    /// The file whose presence marks a capture kernel.
    pub vmcore: PathBuf,
}

/// What a finished run did.
#[derive(Clone, Debug)]
pub struct RunSummary {
    pub capture_kernel: bool,
    pub probes: Vec<ProbeReport>,
    pub kernel: KernelCounters,
    pub source: SourceTotals,
    pub writer: WriterTotals,
}

/// Failures that stop the daemon (a single missing probe never does).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] probes::LoadError),
    #[error(transparent)]
    Source(#[from] crate::sources::ebpf::EbpfSourceError),
    #[error(transparent)]
    Output(#[from] jsonl::OpenError),
}

/// Runs until `shutdown` resolves. `on_ready` is called once every probe is attached and the
/// start record is queued; the status it receives is also the timeline's first line.
pub async fn run(
    config: RunConfig,
    object: &[u8],
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&[ProbeReport], bool),
) -> Result<RunSummary, RunError> {
    let capture_kernel = capture::is_capture_kernel(&config.vmcore);
    let tracefs = Tracefs::find_or_mount().map(|(t, mount)| {
        tracing::debug!(root = %t.root().display(), ?mount, "tracefs");
        t
    });
    let kernel = KernelView::probe_running_kernel(tracefs.map_err(|e| e.to_string()));
    let mut attached = probes::load_and_attach(object, &config.load, &kernel)?;
    let decoder = std::mem::take(&mut attached.decoder);
    let mut source = EbpfSource::new(&mut attached.ebpf, decoder)?;

    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let writer = jsonl::spawn(&config.destination, rx)?;
    let started = Event::new(
        crate::clock::monotonic_ns(),
        Source::Observer,
        Detail::ObserverStarted {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            capture_kernel,
            kernel_release: kernel_release(),
            probes: attached.reports.clone(),
        },
    );
    // The writer is fresh and the channel empty: this cannot fail.
    let _ = tx.send(vec![started]).await;
    on_ready(&attached.reports, capture_kernel);

    let (stop_tx, stop_rx) = watch::channel(false);
    {
        let reading = source.run(&tx, stop_rx);
        tokio::pin!(reading);
        tokio::select! {
            result = &mut reading => result?,
            () = shutdown => {
                let _ = stop_tx.send(true);
                reading.await?;
            }
        }
    }

    let kernel_counters = source.kernel_counters()?;
    let totals = source.totals();
    let stopped = Event::new(
        crate::clock::monotonic_ns(),
        Source::Observer,
        Detail::ObserverStopped {
            submitted: kernel_counters.submitted,
            dropped: kernel_counters.dropped,
            received: totals.received,
            undecodable: totals.undecodable,
        },
    );
    let _ = tx.send(vec![stopped]).await;
    drop(tx);
    let writer = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("writer join task")
        .expect("writer thread panicked");
    Ok(RunSummary {
        capture_kernel,
        probes: attached.reports,
        kernel: kernel_counters,
        source: totals,
        writer,
    })
}

/// `uname -r`.
#[must_use]
pub fn kernel_release() -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::uname(&raw mut uts) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates the field.
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}
