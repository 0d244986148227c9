//! `recover`: report every new capture on the production boot after a crash.
use std::{path::PathBuf, process::ExitCode};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The dump directory (KDUMP_COREDIR / kdump.conf `path`).
    #[arg(long, default_value = "/var/crash", value_name = "DIR")]
    pub dump_dir: PathBuf,
    /// pstore mount point, read for captures that left no timeline.
    #[arg(long, default_value = "/sys/fs/pstore", value_name = "DIR")]
    pub pstore: PathBuf,
    /// node_exporter's textfile collector directory (e.g.
    /// /var/lib/prometheus/node-exporter); nothing is published without it.
    #[arg(long, value_name = "DIR")]
    pub textfile_dir: Option<PathBuf>,
    /// State file: captures already processed and the persistent counters.
    #[arg(
        long,
        default_value = "/var/lib/kdump-dma-observer/recover-state.json",
        value_name = "FILE"
    )]
    pub state: PathBuf,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    let config = observer::capture::recover::RecoverConfig {
        dump_dir: args.dump_dir.clone(),
        pstore: Some(args.pstore.clone()),
        textfile_dir: args.textfile_dir.clone(),
        state: args.state.clone(),
        journal: true,
    };
    let done = observer::capture::recover::run(&config)?;
    if done.is_empty() {
        eprintln!("recover: no new capture in {}", args.dump_dir.display());
    }
    for r in &done {
        println!("{}: {} ({})", r.dir.display(), r.verdict, r.summary);
    }
    Ok(ExitCode::SUCCESS)
}
