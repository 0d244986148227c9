//! Developer tasks: `cargo xtask setup | build | demo | lab | html-check | ci`.
#![warn(unused_crate_dependencies)]
mod bench;
mod bounded;
mod build;
mod chromium;
mod ci;
mod cmd;
mod cycles;
mod dashboards;
mod deb;
mod debian;
mod demo;
mod elf;
mod fuzz;
mod html_check;
mod ink;
mod lab;
mod packaging_checks;
mod setup;
mod test;
mod toolchain;

use clap::{Parser, Subcommand};

/// kdump-dma-observer developer tasks.
#[derive(Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install whatever the build needs and is missing (pinned nightly + rust-src + clippy for
    /// the eBPF crate, bpf-linker 0.10.1, the aarch64 musl target). Idempotent: says what it
    /// did, and does nothing when everything is present.
    Setup(setup::SetupArgs),
    /// Build the daemon (with its embedded eBPF object) in release mode.
    Build(build::BuildArgs),
    /// Build the Debian package (target/debian/kdump-dma-observer_<version>-1_<arch>.deb):
    /// the daemon, both systemd units, the dracut module, the dashboards and a man page. Then
    /// check it: `systemd-analyze verify` of the units, and Debian's dracut (unpacked, not
    /// installed) building an initramfs that holds the module's binary and unit.
    Deb(deb::DebArgs),
    /// The main job: install what is missing (setup, with the QEMU lab's host part), run the
    /// kdump-aer lab scenario (an arm64 kdump whose capture kernel resets the SMMUv3, then
    /// PCI Express AER errors), and print the verdict, the start of `report.md` and where
    /// `report.html` is (needs root). `--local`: run the daemon on this machine's kernel instead, trigger
    /// its self-test probe and summarise the timeline.
    Demo(demo::DemoArgs),
    // Its help text is `lab::LabArgs`'s doc comment.
    Lab(lab::LabArgs),
    /// Check the HTML report in a real browser (Debian's chromium, headless; installed if
    /// missing): the kdump-aer lab report's screenshot is not blank and logs no console
    /// message, and a hostile device name stays text in the DOM.
    HtmlCheck(html_check::HtmlCheckArgs),
    /// Benchmarks against bpftrace and rasdaemon on this kernel (root): attach-to-ready,
    /// peak RSS, end-to-end throughput and loss, report and parse speed (BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// What CI runs: setup (with the lab's host part), rustfmt check, clippy (userspace and
    /// eBPF), all tests (the host eBPF tests need root), the Debian package (`deb`), the
    /// dashboards test, the QEMU lab (`lab all`, each scenario judged by the observer's
    /// `report`), the Debian lab (`lab debian-kdump`), the HTML report in Chromium
    /// (`html-check`) and bounded fuzzing.
    Ci,
    /// Run the tests: unit and integration tests (plain `cargo test`, no root needed); with
    /// --root also the ones that load BPF programs into this kernel (`observer/tests/`:
    /// `host_ebpf.rs`, `faults.rs`).
    Test(test::TestArgs),
    /// Check the Grafana dashboard and the alert rules in dashboards/ on a real Prometheus
    /// (installs Debian's prometheus and prometheus-node-exporter if missing).
    DashboardsTest(dashboards::DashboardsArgs),
    /// Fail, naming each one, when modules of one folder import each other in a circle
    /// (`use crate::`/`super::` paths in observer/src and xtask/src; tests left out).
    Cycles(cycles::CyclesArgs),
    /// Fuzz the observer's parsers (cargo-fuzz on the pinned nightly, installed if missing) for
    /// a bounded time per target; fails on any crash, naming its input and how to reproduce it.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.task {
        Task::Setup(args) => setup::run_with(&root, &args),
        Task::Build(args) => build::run(&root, &args).map(|_| ()),
        Task::Deb(args) => deb::run(&root, &args).map(|_| ()),
        Task::Demo(args) => demo::run(&root, &args),
        Task::Lab(args) => lab::run_cli(&root, &args),
        Task::HtmlCheck(args) => html_check::run(&root, &args),
        Task::Bench(args) => bench::run(&root, &args),
        Task::Ci => ci::run(&root),
        Task::Test(args) => test::run_cli(&root, &args),
        Task::DashboardsTest(args) => dashboards::run(&root, &args),
        Task::Cycles(args) => cycles::run(&root, &args),
        Task::Fuzz(args) => fuzz::run(&root, &args),
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}
