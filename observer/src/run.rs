//! `kdump-dma-observer run`: attach, replay the backlog (boot trace, kernel log), stream live
//! events, de-duplicate, write, account for every record, stop cleanly.
//!
//! Data flows one way: sources → [`Fusion`] → writer.
use std::{future::Future, path::PathBuf, sync::Arc};

use tokio::{
    sync::{mpsc, watch},
    time::{Duration, interval},
};

use crate::{
    clock::monotonic_ns,
    event::{Detail, Event, Source},
    kernel::{
        capture,
        clock_offset::{self, ClockOffset},
        tracefs::{Mount, Tracefs},
    },
    probes::{self, KernelView, LoadOptions, ProbeReport},
    sinks::{
        http,
        jsonl::{self, Destination, WriterTotals},
        kmsg_mirror::KmsgMirror,
        metrics::Metrics,
    },
    sources::{
        boot_trace,
        ebpf::{EbpfSource, KernelCounters, SourceTotals},
        kmsg::KmsgSource,
        pci_snapshot::{self, PciSnapshotSource},
    },
    status::{BootTraceStatus, RingStatus, Status},
    timeline::{Fusion, smmu_reset},
    verdict::LiveVerdict,
};

/// Batches in flight between stages. When the writer falls behind, the sources wait, the ring
/// buffer fills, and the kernel counts drops: loss is visible, memory stays bounded.
const CHANNEL_BATCHES: usize = 64;
/// How often held (possibly duplicate) events are checked for release.
const RELEASE_PERIOD: Duration = Duration::from_millis(100);

/// Everything `run` needs.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub destination: Destination,
    pub load: LoadOptions,
    /// The file whose presence marks a capture kernel.
    pub vmcore: PathBuf,
    /// Where to write `status.json`, if anywhere.
    pub status: Option<PathBuf>,
    /// Mirror events into `/dev/kmsg`.
    pub kmsg_mirror: bool,
    /// Serve `/events` (NDJSON), `/metrics` and `/healthz` here.
    pub listen: Option<std::net::SocketAddr>,
    /// Where to write `kdump-dma-observer.prom` at the end (node_exporter textfile hand-off).
    pub textfile_dir: Option<PathBuf>,
    /// Keep every capability after attaching (debugging only).
    pub keep_privileges: bool,
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

/// Failures that stop the daemon (a single missing probe or source never does).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] probes::LoadError),
    #[error(transparent)]
    Source(#[from] crate::sources::ebpf::EbpfSourceError),
    #[error(transparent)]
    Output(#[from] jsonl::OpenError),
    #[error("cannot write the status file {path}: {source}", path = path.display())]
    Status {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Runs until `shutdown` resolves. `on_ready` is called once every probe is attached and the
/// backlog is queued; the status it receives is also the timeline's first line.
#[expect(
    clippy::too_many_lines,
    reason = "one linear start-up/shutdown sequence; the PCI snapshots added three steps"
)]
pub async fn run(
    config: RunConfig,
    object: &[u8],
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(&[ProbeReport], bool),
) -> Result<RunSummary, RunError> {
    let mut phases = crate::status::PhaseClock::start();
    let Attachment {
        capture_kernel,
        tracefs,
        tracefs_state,
        kprobe_names,
        attached,
        mut ebpf,
    } = attach(&config, object, &mut phases)?;
    let (backlog, boot_status) = read_backlog(tracefs.as_ref().ok(), capture_kernel);
    phases.lap("boot_trace");
    // Before the kernel log is read and before the capability drop: one clock for the timeline.
    let clock = clock_offset::measure(std::path::Path::new(crate::sources::kmsg::KMSG_PATH));
    phases.lap("clock_offset");
    match &clock {
        Ok(o) => tracing::info!(
            offset_ns = o.offset_ns,
            uncertainty_ns = o.uncertainty_ns,
            "kernel log clock offset from CLOCK_MONOTONIC measured"
        ),
        Err(e) => tracing::warn!(
            error = %e,
            "cannot measure the kernel log clock offset; kernel-log times stay on the printk clock"
        ),
    }

    let mut status = initial_status(
        capture_kernel,
        tracefs_state,
        &attached.reports,
        boot_status,
        &backlog,
    );
    status.set_clock_offset(&clock);
    status.kprobe_names = kprobe_names;
    let (out_tx, out_rx) = mpsc::channel(CHANNEL_BATCHES);
    let metrics = Metrics::new(capture_kernel, unix_now());
    metrics.set_probes(&attached.reports);
    let mirror = config.kmsg_mirror.then(open_mirror).flatten();
    status.kmsg_mirror = mirror.is_some();
    let mut kmsg = open_kmsg(&mut status);
    phases.lap("kmsg_open");
    // Before the capability drop: the config files it opens stay readable in full.
    let mut pci = PciSnapshotSource::new("/sys");
    let pci_start = pci.scan(pci_snapshot::Phase::Start, monotonic_ns());
    phases.lap("pci_scan");
    let feed = match config.listen {
        Some(addr) => start_http(addr, Arc::clone(&metrics)).await,
        None => None,
    };
    // Everything privileged is done; the writer thread is created after this, so it inherits
    // the reduced set too.
    status.privileges = drop_privileges(config.keep_privileges);
    let writer = jsonl::spawn(
        &config.destination,
        out_rx,
        mirror,
        Some(Arc::clone(&metrics)),
    )?;
    let started = Event::new(
        monotonic_ns(),
        Source::Observer,
        Detail::ObserverStarted {
            version: status.version.clone(),
            capture_kernel,
            kernel_release: status.kernel_release.clone(),
            hostname: hostname(),
            probes: attached.reports.clone(),
        },
    );
    let live_verdict = LiveVerdict::new(capture_kernel);
    metrics.set_verdict(live_verdict.current());
    let mut out = Output {
        tx: out_tx,
        feed,
        metrics: Arc::clone(&metrics),
        verdict: live_verdict,
    };
    let identity =
        crate::sources::system::identity_event(std::path::Path::new("/"), &config.vmcore);
    phases.lap("identity");
    // The writer is fresh and the channel empty: this cannot fail.
    out.send(vec![started, identity]).await;
    out.send(pci_start).await;
    phases.lap("first_write");
    status.startup_ms = crate::status::process_age_ms();
    status.startup_phases = phases.into_phases();
    tracing::info!(
        startup_ms = status.startup_ms,
        phases = %status
            .startup_phases
            .iter()
            .map(|p| format!("{}={:.1}", p.phase, p.ms))
            .collect::<Vec<_>>()
            .join(" "),
        "ready"
    );
    write_status(config.status.as_deref(), &status)?;
    on_ready(&attached.reports, capture_kernel);

    let (live_tx, live_rx) = mpsc::channel(CHANNEL_BATCHES);
    let (stop_tx, stop_rx) = watch::channel(false);
    let fusion = fuse(backlog, live_rx, out, clock.ok());
    let sources = read_sources(
        &mut ebpf,
        kmsg.as_mut(),
        &mut pci,
        live_tx,
        stop_rx,
        async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        },
    );
    let (source_result, (mut out, merged)) = tokio::join!(sources, fusion);
    source_result?;
    if let Some(k) = &kmsg {
        status.kmsg = kmsg_summary(k);
    }

    out.send(pci.scan(pci_snapshot::Phase::Stop, monotonic_ns()))
        .await;
    let kernel_counters = ebpf.kernel_counters()?;
    let totals = ebpf.totals();
    let stopped = Event::new(
        monotonic_ns(),
        Source::Observer,
        Detail::ObserverStopped {
            submitted: kernel_counters.submitted,
            dropped: kernel_counters.dropped,
            received: totals.received,
            undecodable: totals.undecodable,
        },
    );
    out.send(vec![stopped]).await;
    drop(out);
    let writer = tokio::task::spawn_blocking(move || writer.join())
        .await
        .expect("writer join task")
        .expect("writer thread panicked");

    finish_status(&mut status, &writer, kernel_counters, merged);
    status.textfile = write_textfile(&config, capture_kernel, &metrics);
    write_status(config.status.as_deref(), &status)?;
    Ok(RunSummary {
        capture_kernel,
        probes: attached.reports,
        kernel: kernel_counters,
        source: totals,
        writer,
    })
}

/// Writes the metrics textfile into `--textfile-dir`, else (in a capture kernel) beside the
/// timeline; returns its path.
fn write_textfile(config: &RunConfig, capture_kernel: bool, metrics: &Metrics) -> Option<String> {
    let dir = match (&config.textfile_dir, &config.destination) {
        (Some(dir), _) => dir.clone(),
        (None, Destination::File(path)) if capture_kernel => path.parent()?.to_path_buf(),
        _ => return None,
    };
    match metrics.write_textfile(&dir) {
        Ok(path) => Some(path.display().to_string()),
        Err(e) => {
            tracing::warn!(
                dir = %dir.display(),
                error = %e,
                "cannot write the metrics textfile"
            );
            None
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn drop_privileges(keep: bool) -> String {
    if keep {
        return "kept (--keep-privileges)".into();
    }
    match crate::privileges::drop_privileges() {
        Ok(()) => "dropped all capabilities but CAP_BPF".into(),
        Err(e) => {
            tracing::warn!(error = %e, "could not drop capabilities");
            format!("not dropped: {e}")
        }
    }
}

fn open_kmsg(status: &mut Status) -> Option<KmsgSource> {
    match KmsgSource::open() {
        Ok(k) => {
            status.kmsg = "reading".into();
            Some(k)
        }
        Err(e) => {
            tracing::warn!(error = %e, "running without the kernel log (degraded)");
            status.kmsg = format!("unavailable: {e}");
            None
        }
    }
}

fn kmsg_summary(kmsg: &KmsgSource) -> String {
    let t = kmsg.totals();
    format!(
        "read {} records ({} undecodable, {} lost before they could be read, {} mirror lines skipped)",
        t.records, t.undecodable, t.lost, t.mirrored
    )
}

fn open_mirror() -> Option<KmsgMirror> {
    let unlimited = KmsgMirror::kernel_allows_unlimited();
    match KmsgMirror::open(std::path::Path::new("/dev/kmsg"), unlimited) {
        Ok(m) => {
            if !unlimited {
                tracing::info!(
                    "kmsg mirror throttled to the kernel's 10 records / 5 s (boot with printk.devkmsg=on to lift it)"
                );
            }
            Some(m)
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot open /dev/kmsg for the mirror");
            None
        }
    }
}

fn initial_status(
    capture_kernel: bool,
    tracefs: String,
    probes: &[ProbeReport],
    boot_trace: BootTraceStatus,
    backlog: &[Event],
) -> Status {
    let mut status = Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        state: "running".into(),
        capture_kernel,
        kernel_release: kernel_release(),
        tracefs,
        probes: probes.to_vec(),
        boot_trace,
        ..Status::default()
    };
    for event in backlog {
        *status.events_by_source.entry(event.source).or_default() += 1;
    }
    status
}

fn finish_status(status: &mut Status, writer: &WriterTotals, kernel: KernelCounters, merged: u64) {
    status.state = "stopped".into();
    status.events_by_source.clone_from(&writer.by_source);
    status.events_written = writer.lines;
    status.write_failures = writer.failed_lines;
    status.ring_buffer = RingStatus {
        submitted: kernel.submitted,
        dropped: kernel.dropped,
    };
    status.merged_duplicates = merged;
    status.kmsg_mirrored = writer.mirrored;
    status.kmsg_mirror_skipped = writer.mirror_skipped;
    status.peak_rss_kib = crate::status::peak_rss_kib();
}

/// Everything that happened before the daemon started: the boot trace, SMMU register writes
/// folded into resets.
fn read_backlog(tracefs: Option<&Tracefs>, capture_kernel: bool) -> (Vec<Event>, BootTraceStatus) {
    let mut status = BootTraceStatus::default();
    let mut events = Vec::new();
    match tracefs {
        Some(t) => {
            status.registered_events = boot_trace::registered_events(t.root());
            match boot_trace::harvest(t) {
                Ok(harvest) => {
                    let mut boot = harvest.events;
                    status.records = boot.len() as u64;
                    status.records_by_event = harvest.records_by_event;
                    smmu_reset::attach_writes(&mut boot, capture_kernel);
                    events.extend(boot);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "event source");
                    status.error = Some(e.to_string());
                }
            }
        }
        None => status.error = Some("tracefs unavailable".into()),
    }
    (events, status)
}

/// Runs the live sources into `live` until `shutdown` resolves (it must flip `stop`), then lets
/// them drain and closes the channel.
async fn read_sources(
    ebpf: &mut EbpfSource,
    kmsg: Option<&mut KmsgSource>,
    pci: &mut PciSnapshotSource,
    live: mpsc::Sender<Vec<Event>>,
    stop: watch::Receiver<bool>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), crate::sources::ebpf::EbpfSourceError> {
    let kmsg_stop = stop.clone();
    let mut pci_stop = stop.clone();
    let pci_rescans = async {
        let mut tick = interval(pci_snapshot::RESCAN_PERIOD);
        tick.tick().await; // the first tick is immediate: the start scan just ran
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let events = pci.scan(pci_snapshot::Phase::Rescan, monotonic_ns());
                    if !events.is_empty() && live.send(events).await.is_err() {
                        break;
                    }
                }
                _ = pci_stop.wait_for(|s| *s) => break,
            }
        }
    };
    let kmsg_reading = async {
        if let Some(k) = kmsg
            && let Err(e) = k.run(&live, kmsg_stop).await
        {
            tracing::warn!(error = %e, "kernel log source stopped");
        }
    };
    let both = async { tokio::join!(ebpf.run(&live, stop), kmsg_reading, pci_rescans).0 };
    let (result, ()) = tokio::join!(both, shutdown);
    drop(live);
    result
}

/// The probes as attached, with what the planner learnt on the way.
struct Attachment {
    capture_kernel: bool,
    tracefs: Result<Tracefs, String>,
    tracefs_state: String,
    kprobe_names: String,
    attached: probes::Attached,
    ebpf: EbpfSource,
}

/// Looks at the kernel (capture or not, tracefs) and attaches every probe it offers.
fn attach(
    config: &RunConfig,
    object: &[u8],
    phases: &mut crate::status::PhaseClock,
) -> Result<Attachment, RunError> {
    let capture_kernel = capture::is_capture_kernel(&config.vmcore);
    let tracefs = Tracefs::find_or_mount();
    let tracefs_state = match &tracefs {
        Ok((_, Mount::Present)) => "present".to_owned(),
        Ok((_, Mount::MountedByUs)) => "mounted_by_us".to_owned(),
        Err(e) => format!("unavailable: {e}"),
    };
    let tracefs = tracefs.map(|(t, _)| t).map_err(|e| e.to_string());
    if let Err(e) = &tracefs {
        tracing::warn!(error = %e, "running without tracepoints and boot trace (degraded)");
    }
    let kernel = KernelView::probe_running_kernel(tracefs.clone());
    let kprobe_names = kernel
        .kprobe_names
        .as_ref()
        .map(probes::KprobeNames::describe)
        .unwrap_or_default();
    phases.lap("kernel_view");
    // Attach first, then read the backlog: an event in between is seen twice and merged, never
    // missed.
    let mut attached = probes::load_and_attach(object, &config.load, &kernel)?;
    phases.lap("load_attach");
    let decoder = std::mem::take(&mut attached.decoder);
    let ebpf = EbpfSource::new(&mut attached.ebpf, decoder)?;
    Ok(Attachment {
        capture_kernel,
        tracefs,
        tracefs_state,
        kprobe_names,
        attached,
        ebpf,
    })
}

/// Where the fusion stage's output goes: the live verdict stage, then the writer, the metrics
/// and HTTP clients if any.
struct Output {
    tx: mpsc::Sender<Vec<Event>>,
    feed: Option<http::Feed>,
    metrics: Arc<Metrics>,
    verdict: LiveVerdict,
}

impl Output {
    /// Sends a batch on; `false` once the writer is gone.
    async fn send(&mut self, batch: Vec<Event>) -> bool {
        if batch.is_empty() {
            return true;
        }
        if self.verdict.observe(&batch) {
            self.metrics.set_verdict(self.verdict.current());
        }
        self.metrics.observe(&batch);
        if let Some(feed) = &self.feed {
            feed.publish(&batch);
        }
        self.tx.send(batch).await.is_ok()
    }
}

async fn start_http(addr: std::net::SocketAddr, metrics: Arc<Metrics>) -> Option<http::Feed> {
    match http::bind(addr).await {
        Ok(listener) => {
            let feed = http::Feed::new();
            tracing::info!(%addr, "serving /events, /metrics and /healthz over HTTP");
            tokio::spawn(http::serve(listener, feed.clone(), Some(metrics)));
            Some(feed)
        }
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot listen; continuing without HTTP");
            None
        }
    }
}

/// The fusion stage: moves kernel-log sightings onto `CLOCK_MONOTONIC` (`clock`, when it was
/// measured), merges sightings of one event by several sources, passes everything else
/// straight through. Returns the output (so the stop record goes last) and the number of
/// merged duplicates.
async fn fuse(
    backlog: Vec<Event>,
    mut live: mpsc::Receiver<Vec<Event>>,
    mut out: Output,
    clock: Option<ClockOffset>,
) -> (Output, u64) {
    let mut fusion = clock.map_or_else(Fusion::new, Fusion::with_clock_offset);
    let now = monotonic_ns();
    let passed: Vec<Event> = backlog
        .into_iter()
        .filter_map(|e| fusion.push(e, now))
        .collect();
    out.send(passed).await;
    let mut tick = interval(RELEASE_PERIOD);
    loop {
        tokio::select! {
            batch = live.recv() => {
                let Some(batch) = batch else { break };
                let now = monotonic_ns();
                let passed: Vec<Event> = batch.into_iter().filter_map(|e| fusion.push(e, now)).collect();
                if !out.send(passed).await {
                    break;
                }
            }
            _ = tick.tick(), if fusion.is_holding() => {
                if !out.send(fusion.release(monotonic_ns())).await {
                    break;
                }
            }
        }
    }
    out.send(fusion.finish()).await;
    let merged = fusion.merged();
    (out, merged)
}

fn write_status(path: Option<&std::path::Path>, status: &Status) -> Result<(), RunError> {
    let Some(path) = path else { return Ok(()) };
    status
        .write_atomically(path)
        .map_err(|source| RunError::Status {
            path: path.to_path_buf(),
            source,
        })
}

/// `uname -n`.
#[must_use]
pub fn hostname() -> String {
    uname_field(|u| u.nodename.as_ptr())
}

/// `uname -r`.
#[must_use]
pub fn kernel_release() -> String {
    uname_field(|u| u.release.as_ptr())
}

fn uname_field(field: impl Fn(&libc::utsname) -> *const libc::c_char) -> String {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    if unsafe { libc::uname(&raw mut uts) } != 0 {
        return String::new();
    }
    // SAFETY: uname NUL-terminates every field.
    unsafe { std::ffi::CStr::from_ptr(field(&uts)) }
        .to_string_lossy()
        .into_owned()
}
