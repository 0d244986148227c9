//! `run`: attach the probes and stream the timeline; with --dump-dir, the capture lifecycle.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use observer::{
    capture::{lifecycle::CaptureRun, live_dir::HandOff},
    kernel::capture::VMCORE,
    probes::{LoadOptions, ProbeReport, ProbeState},
    run::{RunConfig, RunSummary},
    sinks::jsonl::Destination,
};
use tokio::signal::unix::{SignalKind, signal};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Append the timeline to FILE instead of writing it to stdout. Every batch of events is
    /// fsync'd before the next is taken, so a crash loses at most the batch in flight.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the daemon's status (probe states, per-source event counts, losses) to FILE as
    /// JSON: atomically when it is ready, and again when it stops.
    #[arg(long, value_name = "FILE")]
    pub status: Option<PathBuf>,
    /// Do not mirror events into the kernel log. By default every event except self-test ones
    /// is also written to /dev/kmsg as `kdump-dma-observer: v1 <json>`, so a console or pstore
    /// copy keeps the timeline if this kernel dies (unthrottled with printk.devkmsg=on, which
    /// `cmdline` adds; otherwise the kernel allows 10 records per 5 s).
    #[arg(long)]
    pub no_kmsg_mirror: bool,
    /// Serve the live timeline over HTTP at ADDR (e.g. 127.0.0.1:9477): GET /events streams
    /// NDJSON (recent history first), GET /metrics serves Prometheus/OpenMetrics text,
    /// GET /healthz answers `ok`. Off unless given; bind
    /// loopback unless you mean to expose it. A bind failure is reported, not fatal.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Write the final metrics as DIR/kdump-dma-observer.prom (OpenMetrics text, atomically)
    /// when stopping. In a capture kernel with --output the default is the timeline's
    /// directory, so the file lands next to the dump for `recover` to publish.
    #[arg(long, value_name = "DIR")]
    pub textfile_dir: Option<PathBuf>,
    /// Keep all capabilities after attaching. By default every capability but CAP_BPF (needed
    /// for reading the drop counters) is dropped once the probes are attached and the
    /// outputs open.
    #[arg(long)]
    pub keep_privileges: bool,
    /// Capture-kernel mode, as the systemd unit runs it: DIR is the dump directory
    /// (KDUMP_COREDIR / kdump.conf `path`, normally /var/crash). The timeline, status.json and
    /// metrics are written into DIR/kdump-dma-observer.<UTC stamp>/ while the dump is taken.
    /// As soon as the dump is written (kdump-tools then reboots with `reboot -f`, which
    /// signals no process), or on SIGTERM, the daemon stops and moves them into the directory
    /// the dump tool created for this capture (kdump-tools: DIR/<stamp>/), beside report.md,
    /// report.html, report.json and verdict.json. Without a dump the files stay where they
    /// are, and `recover` moves them later.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "status", "textfile_dir"])]
    pub dump_dir: Option<PathBuf>,
    /// Size of the BPF ring buffer in bytes: a power of two, at least the page size. Each event
    /// takes 96 bytes; events that do not fit are counted as drops and reported.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub ring_buffer_bytes: u32,
    /// Also record every getpgid(2) call made by process PID, with its argument as a sequence
    /// number: a self-test of the whole pipeline (used by the tests and benchmarks).
    #[arg(long, value_name = "PID")]
    pub self_test_pid: Option<u32>,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    super::raise_memlock_limit();
    let capture = match &args.dump_dir {
        Some(dir) => Some(CaptureRun::start(dir, std::time::SystemTime::now())?),
        None => None,
    };
    let (output, status, textfile_dir) = match capture.as_ref().map(CaptureRun::outputs) {
        Some(o) => (Some(o.timeline), Some(o.status), Some(o.textfile_dir)),
        None => (
            args.output.clone(),
            args.status.clone(),
            args.textfile_dir.clone(),
        ),
    };
    let destination = output.map_or(Destination::Stdout, Destination::File);
    let config = RunConfig {
        destination: destination.clone(),
        load: LoadOptions {
            ring_buffer_bytes: args.ring_buffer_bytes,
            self_test_tgid: args.self_test_pid,
        },
        vmcore: PathBuf::from(VMCORE),
        status,
        kmsg_mirror: !args.no_kmsg_mirror,
        listen: args.listen,
        textfile_dir,
        keep_privileges: args.keep_privileges,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
        let watched = capture.clone();
        let shutdown = async move {
            let dump_written = async move {
                match &watched {
                    Some(c) => c.dump_written().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                dir = dump_written => {
                    eprintln!("the dump in {} is written: stopping to hand the timeline over", dir.display());
                }
            }
        };
        observer::run::run(
            config,
            observer::EBPF_OBJECT,
            shutdown,
            |probes, capture_kernel| {
                print_status(probes, capture_kernel, &destination);
                notify_ready(probes);
            },
        )
        .await
        .context("kdump-dma-observer run")
    })?;
    let code = finish(&summary);
    if let Some(capture) = &capture {
        hand_off(capture);
    }
    Ok(code)
}

/// Tells systemd (`Type=notify`) that the probes are attached, so the dump may start.
fn notify_ready(probes: &[ProbeReport]) {
    let attached = probes
        .iter()
        .filter(|p| p.state == ProbeState::Attached)
        .count();
    let state = format!(
        "READY=1\nSTATUS={attached} of {} probes attached",
        probes.len()
    );
    if let Err(e) = observer::sd_notify::notify(&state) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// `--dump-dir`: moves the timeline, status and metrics beside the dump and writes the report.
fn hand_off(capture: &CaptureRun) {
    let _ = observer::sd_notify::notify("STOPPING=1");
    let done = capture.finish(true);
    match &done.hand_off {
        Ok(HandOff::Moved(_)) => {}
        Ok(HandOff::NoDump) => eprintln!(
            "no dump directory appeared: the timeline stays in {} (`recover` will pair it with a later dump)",
            done.dir.display()
        ),
        Err(e) => eprintln!(
            "kdump-dma-observer: error: {e}; the files stay in {}",
            done.dir.display()
        ),
    }
    eprintln!(
        "report: {} ({}): {}",
        done.dir.join("report.md").display(),
        done.report.verdict,
        done.report.summary
    );
}

fn print_status(probes: &[ProbeReport], capture_kernel: bool, destination: &Destination) {
    eprintln!(
        "kdump-dma-observer {} on Linux {} ({})",
        env!("CARGO_PKG_VERSION"),
        observer::run::kernel_release(),
        if capture_kernel {
            "capture kernel: /proc/vmcore present"
        } else {
            "not a capture kernel: no /proc/vmcore"
        }
    );
    eprintln!("{:<16} {:<42} state", "probe", "target");
    for p in probes {
        eprintln!("{p}");
    }
    let attached = probes
        .iter()
        .filter(|p| p.state == ProbeState::Attached)
        .count();
    let to = match destination {
        Destination::Stdout => "stdout".to_owned(),
        Destination::File(p) => p.display().to_string(),
    };
    eprintln!(
        "ready: {attached} of {} probes attached; streaming the timeline to {to}",
        probes.len()
    );
}

fn finish(summary: &RunSummary) -> ExitCode {
    let w = &summary.writer;
    eprintln!(
        "stopped: {} lines written, {} events received, {} dropped in the kernel (ring full), {} undecodable",
        w.lines, summary.source.received, summary.kernel.dropped, summary.source.undecodable
    );
    if w.failed_lines > 0 {
        eprintln!(
            "kdump-dma-observer: error: {} timeline lines could not be written ({} failed batches)",
            w.failed_lines, w.failed_batches
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
