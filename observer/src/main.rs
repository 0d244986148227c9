//! The `kdump-dma-observer` command.
#![expect(
    clippy::doc_markdown,
    reason = "doc comments here are clap --help text, printed verbatim"
)]
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use observer::{
    kernel::capture::VMCORE,
    probes::{LoadOptions, ProbeReport, ProbeState},
    run::{RunConfig, RunSummary},
    sinks::jsonl::Destination,
};
use tokio::signal::unix::{SignalKind, signal};

/// Watch a kdump capture kernel reset the IOMMU and record what happened to DMA in flight.
///
/// When a Linux server crashes, kdump boots a capture kernel to save its memory. On arm64 that
/// kernel finds the SMMUv3 still enabled and resets it (SMMUEN off, GBPA=ABORT); devices still
/// doing DMA for the crashed kernel are aborted, which can raise fatal AER, DPC, firmware (GHES)
/// errors or SErrors that kill the capture itself. This daemon records those events as one
/// timeline of JSON Lines.
#[derive(Parser)]
#[command(name = "kdump-dma-observer", version, propagate_version = true)]
struct Cli {
    /// Log filter for diagnostics on stderr (error, warn, info, debug, trace, or a
    /// tracing-subscriber directive). RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info", value_name = "FILTER")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attach every probe this kernel offers and stream the timeline until SIGINT/SIGTERM.
    ///
    /// Prints each probe's status (attached / not present on this kernel / ambiguous /
    /// unsupported / refused, with errno) on stderr, then one JSON object per line: first an
    /// `observer_started` record with the same status, last an `observer_stopped` record with
    /// the loss accounting. Mounts tracefs at /sys/kernel/tracing when it is absent. Needs root
    /// (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN for tracefs).
    ///
    /// Examples:
    ///   kdump-dma-observer run
    ///   kdump-dma-observer run --output /var/crash/timeline.jsonl
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Print the kernel command-line additions that make a capture kernel record the SMMU reset
    /// and the error paths at boot, before any userspace exists.
    ///
    /// SMMUv3 is built into distro kernels and resets the IOMMU at device_initcall, long before
    /// this daemon can start. The printed parameters arm boot-time kprobes (kprobe_event=) on
    /// arm_smmu_write_reg_sync and the SError / external abort / GHES / DPC / panic paths, and
    /// enable ras:aer_event (trace_event=); `run` harvests those records from tracefs later.
    /// Every symbol is checked against this kernel's kallsyms (the capture kernel is normally
    /// the same build): missing and ambiguous ones are left out, and stderr says why.
    ///
    /// Example (kexec-tools):
    ///   kexec -p /boot/vmlinuz --initrd=/boot/initrd.img \
    ///     --append="$(cat /proc/cmdline) reset_devices nr_cpus=1 $(kdump-dma-observer cmdline)"
    #[command(verbatim_doc_comment)]
    Cmdline,
    /// Audit the kdump configuration; with --apply, add the boot-time instrumentation to it.
    ///
    /// Finds Debian's kdump-tools (/etc/default/kdump-tools, KDUMP_CMDLINE_APPEND) or
    /// kdump-utils (/etc/sysconfig/kdump, KDUMP_COMMANDLINE_APPEND), merges what `cmdline`
    /// prints into the capture kernel's command line (keeping every other parameter, and
    /// kdump-tools' default when the variable is unset), checks the crash reservation against
    /// the observer's needs, and warns about settings that hide evidence (hest_disable,
    /// pci=noaer, pcie_ports=compat, ...). Without --apply nothing is written. With it the
    /// file is backed up (FILE.kdump-dma-observer-<stamp>.bak) and replaced atomically; a
    /// second run changes nothing. Reload kdump afterwards (the output says how).
    ///
    /// Examples:
    ///   kdump-dma-observer setup
    ///   kdump-dma-observer setup --apply && systemctl restart kdump-tools
    #[command(verbatim_doc_comment)]
    Setup(SetupArgs),
    /// Attach every probe this kernel offers, print each probe's state, detach and exit.
    Probes(ProbesArgs),
    /// Judge a capture boot and write a post-mortem report.
    ///
    /// INPUT is any of: a timeline written by `run` (JSON Lines), a capture output directory
    /// (its timeline.jsonl, else its dmesg / console logs), raw dmesg or /dev/kmsg text, a
    /// serial console log holding the crashed and the capture boot, or a pstore directory
    /// (/sys/fs/pstore). The verdict is one of flagged, reset-no-fatal, preserved,
    /// not-capture-kernel, inconclusive (docs/verdict.md has the rules).
    ///
    /// Examples:
    ///   kdump-dma-observer report /var/crash/202611241003/timeline.jsonl
    ///   kdump-dma-observer report console.log --format html --output report.html
    #[command(verbatim_doc_comment)]
    Report(ReportArgs),
    /// Serve a recorded timeline (or any `report` input) as if it were live: /metrics,
    /// /events and /healthz over HTTP until SIGINT/SIGTERM. Point Prometheus at it to try
    /// dashboards and alert rules on a past capture.
    ///
    /// Example:
    ///   kdump-dma-observer replay target/lab/kdump-aer/timeline.jsonl --listen 127.0.0.1:9477
    #[command(verbatim_doc_comment)]
    Replay(ReplayArgs),
    /// On the production boot after a crash: report every new capture in the dump directory
    /// and publish its metrics for node_exporter.
    ///
    /// For each capture sub-directory not seen before (kdump-tools: /var/crash/<stamp>/,
    /// kdump-utils: /var/crash/<ip>-<date>/) it reads the daemon's timeline, else the
    /// capture's dmesg files, else pstore (the capture kernel's log with the daemon's
    /// `kdump-dma-observer: v1` mirror lines survives there if it died), judges whether the
    /// dump is complete (dump.* / vmcore vs *-incomplete), and writes report.md, report.html,
    /// report.json and verdict.json next to the dump. With --textfile-dir it writes
    /// kdump-dma-observer.prom there atomically, with captures_seen_total and
    /// captures_flagged_total kept across boots in the state file.
    #[command(verbatim_doc_comment)]
    Recover(RecoverArgs),
}

#[derive(clap::Args)]
struct RecoverArgs {
    /// The dump directory (KDUMP_COREDIR / kdump.conf `path`).
    #[arg(long, default_value = "/var/crash", value_name = "DIR")]
    dump_dir: PathBuf,
    /// pstore mount point, read for captures that left no timeline.
    #[arg(long, default_value = "/sys/fs/pstore", value_name = "DIR")]
    pstore: PathBuf,
    /// node_exporter's textfile collector directory (e.g.
    /// /var/lib/prometheus/node-exporter); nothing is published without it.
    #[arg(long, value_name = "DIR")]
    textfile_dir: Option<PathBuf>,
    /// State file: captures already processed and the persistent counters.
    #[arg(
        long,
        default_value = "/var/lib/kdump-dma-observer/recover-state.json",
        value_name = "FILE"
    )]
    state: PathBuf,
}

#[derive(clap::Args)]
struct SetupArgs {
    /// Write the change (default: only show it).
    #[arg(long)]
    apply: bool,
    /// The kdump configuration file, if not the flavour's standard one.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Which kdump implementation reads the file (default: the one whose file exists).
    #[arg(long, value_parser = ["kdump-tools", "kdump-utils"])]
    flavor: Option<String>,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// Timeline, capture directory, kernel log, console log or pstore directory.
    input: PathBuf,
    /// Address to serve on (loopback unless you mean to expose it).
    #[arg(long, default_value = "127.0.0.1:9477", value_name = "ADDR")]
    listen: std::net::SocketAddr,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Timeline, capture directory, kernel log, console log or pstore directory.
    input: PathBuf,
    /// Output format: md (Markdown), html (self-contained, SVG timeline) or json (versioned,
    /// schema in docs/report.schema.json).
    #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
    format: String,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ProbesArgs {
    /// Print the states as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Append the timeline to FILE instead of writing it to stdout. Every batch of events is
    /// fsync'd before the next is taken, so a crash loses at most the batch in flight.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write the daemon's status (probe states, per-source event counts, losses) to FILE as
    /// JSON: atomically when it is ready, and again when it stops.
    #[arg(long, value_name = "FILE")]
    status: Option<PathBuf>,
    /// Do not mirror events into the kernel log. By default every event except self-test ones
    /// is also written to /dev/kmsg as `kdump-dma-observer: v1 <json>`, so a console or pstore
    /// copy keeps the timeline if this kernel dies (unthrottled with printk.devkmsg=on, which
    /// `cmdline` adds; otherwise the kernel allows 10 records per 5 s).
    #[arg(long)]
    no_kmsg_mirror: bool,
    /// Serve the live timeline over HTTP at ADDR (e.g. 127.0.0.1:9477): GET /events streams
    /// NDJSON (recent history first), GET /metrics serves Prometheus/OpenMetrics text,
    /// GET /healthz answers `ok`. Off unless given; bind
    /// loopback unless you mean to expose it. A bind failure is reported, not fatal.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Write the final metrics as DIR/kdump-dma-observer.prom (OpenMetrics text, atomically)
    /// when stopping. In a capture kernel with --output the default is the timeline's
    /// directory, so the file lands next to the dump for `recover` to publish.
    #[arg(long, value_name = "DIR")]
    textfile_dir: Option<PathBuf>,
    /// Keep all capabilities after attaching. By default every capability but CAP_BPF (needed
    /// for reading the drop counters) is dropped once the probes are attached and the
    /// outputs open.
    #[arg(long)]
    keep_privileges: bool,
    /// Capture-kernel mode, as the systemd unit runs it: DIR is the dump directory
    /// (KDUMP_COREDIR / kdump.conf `path`, normally /var/crash). The timeline, status.json and
    /// metrics are written into DIR/kdump-dma-observer.<UTC stamp>/ while the dump is taken.
    /// As soon as the dump is written (kdump-tools then reboots with `reboot -f`, which
    /// signals no process), or on SIGTERM, the daemon stops and moves them into the directory
    /// the dump tool created for this capture (kdump-tools: DIR/<stamp>/), beside report.md,
    /// report.html, report.json and verdict.json. Without a dump the files stay where they
    /// are, and `recover` moves them later.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["output", "status", "textfile_dir"])]
    dump_dir: Option<PathBuf>,
    /// Size of the BPF ring buffer in bytes: a power of two, at least the page size. Each event
    /// takes 96 bytes; events that do not fit are counted as drops and reported.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    ring_buffer_bytes: u32,
    /// Also record every getpgid(2) call made by process PID, with its argument as a sequence
    /// number: a self-test of the whole pipeline (used by the tests and benchmarks).
    #[arg(long, value_name = "PID")]
    self_test_pid: Option<u32>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log);
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::Cmdline => cmdline(),
        Command::Setup(args) => setup(&args),
        Command::Probes(args) => probes(&args),
        Command::Report(args) => report(&args),
        Command::Replay(args) => replay(&args),
        Command::Recover(args) => recover(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("kdump-dma-observer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    raise_memlock_limit();
    let live = match &args.dump_dir {
        Some(dir) => Some(observer::capture_dir::LiveDir::create(
            dir,
            std::time::SystemTime::now(),
        )?),
        None => None,
    };
    let (output, status, textfile_dir) = match &live {
        Some(l) => (Some(l.timeline()), Some(l.status()), Some(l.path.clone())),
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
        let dump = live.clone();
        let shutdown = async move {
            let dump_written = async move {
                match dump {
                    Some(l) => observer::capture_dir::dump_finished(l).await,
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
            |probes, capture| {
                print_status(probes, capture, &destination);
                notify_ready(probes);
            },
        )
        .await
        .context("kdump-dma-observer run")
    })?;
    let code = finish(&summary);
    if let Some(live) = &live {
        hand_off(live);
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
        tracing::warn!("cannot notify the service manager: {e}");
    }
}

/// `--dump-dir`: moves the timeline, status and metrics beside the dump and writes the report.
fn hand_off(live: &observer::capture_dir::LiveDir) {
    use observer::capture_dir::HandOff;
    let _ = observer::sd_notify::notify("STOPPING=1");
    let dir = match observer::capture_dir::hand_off(live) {
        Ok(HandOff::Moved(dir)) => dir,
        Ok(HandOff::NoDump) => {
            eprintln!(
                "no dump directory appeared: the timeline stays in {} (`recover` will pair it with a later dump)",
                live.path.display()
            );
            live.path.clone()
        }
        Err(e) => {
            eprintln!(
                "kdump-dma-observer: error: {e}; the files stay in {}",
                live.path.display()
            );
            live.path.clone()
        }
    };
    let (done, _) = observer::recover::report_capture(&dir, None, true);
    eprintln!(
        "report: {} ({}): {}",
        dir.join("report.md").display(),
        done.verdict,
        done.summary
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

fn setup(args: &SetupArgs) -> anyhow::Result<ExitCode> {
    use observer::setup::{self, audit::Level, kdump_config::Flavor};
    let flavor = match args.flavor.as_deref() {
        Some("kdump-utils") => Flavor::KdumpUtils,
        Some(_) => Flavor::KdumpTools,
        None => Flavor::detect(std::path::Path::new("/")).ok_or(setup::SetupError::NotFound)?,
    };
    let path = args.config.clone().unwrap_or_else(|| flavor.path());
    let instrumentation = instrumentation_plan()?;
    let system = setup::System {
        proc_cmdline: std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
        crash_size: std::fs::read_to_string("/sys/kernel/kexec_crash_size")
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        measured_peak: setup::last_measured_peak(std::path::Path::new("/var/crash")),
    };
    let plan = setup::plan(flavor, &path, &instrumentation.cmdline, &system)?;
    println!("{} ({})", path.display(), flavor.variable());
    match plan.current.line {
        Some(n) => println!("  line {n}: {}", plan.current.effective),
        None => println!("  not set; the default is: {}", plan.current.effective),
    }
    for f in &plan.findings {
        println!("{:<5} {}", f.level.word(), f.text);
    }
    let warnings = if plan.findings.iter().any(|f| f.level == Level::Warn) {
        "warnings above"
    } else {
        "no warnings"
    };
    let Some(_) = &plan.new_text else {
        println!("ok    the boot-time instrumentation is already configured ({warnings})");
        return Ok(ExitCode::SUCCESS);
    };
    println!("change {} to:\n  {}", flavor.variable(), plan.wanted);
    if args.apply {
        let stamp = observer::capture_dir::utc_stamp(std::time::SystemTime::now());
        if let Some(backup) = setup::apply(&plan, &stamp)? {
            println!("wrote {} (backup: {})", path.display(), backup.display());
        }
        println!("reload kdump to use it: {}", flavor.reload_hint());
    } else {
        println!("dry run: nothing written; run with --apply to make the change ({warnings})");
    }
    Ok(ExitCode::SUCCESS)
}

/// The boot-time instrumentation for this kernel, with what was left out on stderr.
fn instrumentation_plan() -> anyhow::Result<observer::kernel::boot_instrumentation::Plan> {
    use observer::kernel::{boot_instrumentation, kallsyms, tracefs::Tracefs};
    let wanted = observer::probes::wanted_symbols();
    let kallsyms =
        kallsyms::Kallsyms::load_only(std::path::Path::new(kallsyms::KALLSYMS), &wanted)?;
    let tracefs = Tracefs::find_or_mount().ok().map(|(t, _)| t);
    let plan = boot_instrumentation::plan(&kallsyms, |category, name| {
        tracefs
            .as_ref()
            .is_some_and(|t| t.has_event(category, name))
    });
    for d in &plan.decisions {
        match &d.excluded {
            None => eprintln!("included  {:<18} kprobe {}", d.event, d.symbol),
            Some(why) => eprintln!("left out  {:<18} kprobe {}: {why}", d.event, d.symbol),
        }
    }
    Ok(plan)
}

fn cmdline() -> anyhow::Result<ExitCode> {
    let plan = instrumentation_plan()?;
    println!("{}", plan.cmdline);
    Ok(ExitCode::SUCCESS)
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    use observer::report::{Report, html, input, json, markdown};
    let loaded = input::load(&args.input)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    for (file, what) in &loaded.files {
        tracing::info!("read {} as {what}", file.display());
    }
    let report = Report::build(&args.input.display().to_string(), &loaded.events);
    let rendered = match args.format.as_str() {
        "html" => Some(html::render(&report)),
        "json" => None,
        _ => Some(markdown::render(&report)),
    };
    let target = args.output.as_deref();
    let write = |out: &mut dyn std::io::Write| -> anyhow::Result<()> {
        match &rendered {
            Some(text) => out.write_all(text.as_bytes())?,
            None => json::write(&report, out)?,
        }
        Ok(())
    };
    match target {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .with_context(|| format!("writing the report to {}", path.display()))?;
            write(&mut file)
                .with_context(|| format!("writing the report to {}", path.display()))?;
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    eprintln!(
        "verdict: {} ({})",
        markdown::verdict_word(&report.verdict),
        report.verdict.summary
    );
    Ok(ExitCode::SUCCESS)
}

fn recover(args: &RecoverArgs) -> anyhow::Result<ExitCode> {
    let config = observer::recover::RecoverConfig {
        dump_dir: args.dump_dir.clone(),
        pstore: Some(args.pstore.clone()),
        textfile_dir: args.textfile_dir.clone(),
        state: args.state.clone(),
        journal: true,
    };
    let done = observer::recover::run(&config)?;
    if done.is_empty() {
        eprintln!("recover: no new capture in {}", args.dump_dir.display());
    }
    for r in &done {
        println!("{}: {} ({})", r.dir.display(), r.verdict, r.summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        observer::replay::run(&args.input, args.listen, shutdown, |events, addr| {
            eprintln!(
                "replaying {events} events of {} on http://{addr} (/metrics, /events, /healthz)",
                args.input.display()
            );
        })
        .await
        .context("kdump-dma-observer replay")
    })?;
    Ok(ExitCode::SUCCESS)
}

fn probes(args: &ProbesArgs) -> anyhow::Result<ExitCode> {
    use observer::{
        kernel::tracefs::Tracefs,
        probes::{KernelView, load_and_attach},
    };
    raise_memlock_limit();
    let tracefs = Tracefs::find_or_mount()
        .map(|(t, _)| t)
        .map_err(|e| e.to_string());
    let kernel = KernelView::probe_running_kernel(tracefs);
    let options = LoadOptions {
        ring_buffer_bytes: 1 << 20,
        self_test_tgid: None,
    };
    let attached = load_and_attach(observer::EBPF_OBJECT, &options, &kernel)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&attached.reports)?);
    } else {
        println!("{:<16} {:<42} state", "probe", "target");
        for p in &attached.reports {
            println!("{p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so they load there too.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to a rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) } != 0 {
        tracing::debug!(
            "could not raise RLIMIT_MEMLOCK: {}",
            std::io::Error::last_os_error()
        );
    }
}
