//! `replay`: serve a recorded timeline's /metrics and /events as if it were live.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timeline, capture directory, kernel log, console log or pstore directory.
    pub input: PathBuf,
    /// Address to serve on (loopback unless you mean to expose it).
    #[arg(long, default_value = "127.0.0.1:9477", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
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
