//! Developer tasks: `cargo xtask setup | build | demo | lab | ci`.
mod build;
mod ci;
mod cmd;
mod dashboards;
mod demo;
mod elf;
mod fuzz;
mod lab;
mod setup;
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
    /// Run the daemon on this machine's kernel for a few seconds, trigger its self-test probe,
    /// and summarise the timeline it wrote (needs root).
    Demo(demo::DemoArgs),
    // Its help text is `lab::LabArgs`'s doc comment.
    Lab(lab::LabArgs),
    /// What CI runs: setup (with the lab's host part), rustfmt check, clippy (userspace and
    /// eBPF), all tests (the host eBPF tests need root), the static aarch64 build, and the QEMU
    /// lab (`lab all`).
    Ci,
    /// Check the Grafana dashboard and the alert rules in dashboards/ on a real Prometheus
    /// (installs Debian's prometheus and prometheus-node-exporter if missing).
    DashboardsTest(dashboards::DashboardsArgs),
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
        Task::Demo(args) => demo::run(&root, &args),
        Task::Lab(args) => lab::run_cli(&root, &args),
        Task::Ci => ci::run(&root),
        Task::DashboardsTest(args) => dashboards::run(&root, &args),
        Task::Fuzz(args) => fuzz::run(&root, &args),
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}
