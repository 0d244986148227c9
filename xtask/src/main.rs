//! Developer tasks: `cargo xtask setup | build | ci`.
mod build;
mod ci;
mod cmd;
mod demo;
mod elf;
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
    Setup,
    /// Build the daemon (with its embedded eBPF object) in release mode.
    Build(build::BuildArgs),
    /// Run the daemon on this machine's kernel for a few seconds, trigger its self-test probe,
    /// and summarise the timeline it wrote (needs root).
    Demo(demo::DemoArgs),
    /// What CI runs: setup, rustfmt check, clippy (userspace and eBPF), all tests (the host
    /// eBPF tests need root), and the static aarch64 build.
    Ci,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.task {
        Task::Setup => setup::run(&root),
        Task::Build(args) => build::run(&root, &args).map(|_| ()),
        Task::Demo(args) => demo::run(&root, &args),
        Task::Ci => ci::run(&root),
    }
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}
