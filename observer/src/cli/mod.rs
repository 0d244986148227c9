//! The command line: clap definitions, one module per subcommand. This is the binary's edge:
//! each module turns its arguments into calls of the library and prints for a person; errors
//! are `anyhow` here and nowhere below. `--help` text lives in these doc comments.
#![expect(
    clippy::doc_markdown,
    reason = "doc comments here are clap --help text, printed verbatim"
)]
use clap::{Parser, Subcommand};

pub(crate) mod cmdline;
pub(crate) mod fleet;
pub(crate) mod man;
pub(crate) mod probes;
pub(crate) mod recover;
pub(crate) mod replay;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod setup;

/// Watch a kdump capture kernel reset the IOMMU and record what happened to DMA in flight.
///
/// When a Linux server crashes, kdump boots a capture kernel to save its memory. On arm64 that
/// kernel finds the SMMUv3 still enabled and resets it (SMMUEN off, GBPA=ABORT); devices still
/// doing DMA for the crashed kernel are aborted, which can raise fatal AER, DPC, firmware (GHES)
/// errors or SErrors that kill the capture itself. This daemon records those events as one
/// timeline of JSON Lines.
#[derive(Parser)]
#[command(name = "kdump-dma-observer", version, propagate_version = true)]
pub(crate) struct Cli {
    /// Log filter for diagnostics on stderr (error, warn, info, debug, trace, or a
    /// tracing-subscriber directive). RUST_LOG overrides it.
    #[arg(long, global = true, default_value = "info", value_name = "FILTER")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    Run(run::Args),
    /// Print the kernel command-line additions that make a capture kernel record the SMMU reset
    /// and the error paths at boot, before any userspace exists.
    ///
    /// SMMUv3 is built into distro kernels and resets the IOMMU at device_initcall, long before
    /// this daemon can start. The printed parameters arm boot-time kprobes (kprobe_event=) on
    /// arm_smmu_write_reg_sync and the SError / external abort / GHES / DPC / panic paths, and
    /// enable ras:aer_event (trace_event=); `run` harvests those records from tracefs later.
    /// Every symbol is checked against this kernel's kallsyms (the capture kernel is normally
    /// the same build): missing and ambiguous ones are left out, and stderr says why.
    /// kdump_dma_observer.kprobes=<build id>:<hash>[,...] carries the same check of the
    /// daemon's own kprobe names: a capture kernel with the same build ID places its kprobes
    /// from it instead of reading /proc/kallsyms while the dump waits.
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
    Setup(setup::Args),
    /// Attach every probe this kernel offers, print each probe's state, detach and exit.
    Probes(probes::Args),
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
    Report(report::Args),
    /// Serve a recorded timeline (or any `report` input) as if it were live: /metrics,
    /// /events and /healthz over HTTP until SIGINT/SIGTERM. Point Prometheus at it to try
    /// dashboards and alert rules on a past capture.
    ///
    /// Example:
    ///   kdump-dma-observer replay target/lab/kdump-aer/timeline.jsonl --listen 127.0.0.1:9477
    #[command(verbatim_doc_comment)]
    Replay(replay::Args),
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
    Recover(recover::Args),
    /// Roll many report.json files up by platform, BIOS, crashed kernel and verdict.
    ///
    /// Reads each file (directories recursively, every *.json in them) one at a time and
    /// prints, per group, the number of captures, the kinds of the first fatal event and the
    /// median time from the SMMU reset to it. Memory stays bounded: each group keeps at most
    /// 4096 reset-to-fatal samples (exact median below that, a uniform reservoir sample above).
    /// Files that are not reports (bad JSON, other documents, a newer schema) are listed with
    /// the reason and skipped; they never stop the roll-up.
    ///
    /// Examples:
    ///   kdump-dma-observer fleet /srv/kdump-reports
    ///   kdump-dma-observer fleet --format csv a/report.json b/report.json > fleet.csv
    #[command(verbatim_doc_comment)]
    Fleet(fleet::Args),
    /// Write the manual pages (section 8) into a directory; used to build the package.
    #[command(hide = true)]
    Man(man::Args),
}

/// Diagnostics on stderr, filtered by `--log` unless `RUST_LOG` is set.
pub(crate) fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(default))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK; lift it so they load there too.
pub(crate) fn raise_memlock_limit() {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: valid pointer to a rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raw const unlimited) } != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "could not raise RLIMIT_MEMLOCK"
        );
    }
}
