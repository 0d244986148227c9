//! `probes`: attach every probe this kernel offers, print each one's state, detach.
use std::process::ExitCode;

use observer::probes::LoadOptions;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Print the states as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    use observer::{
        kernel::tracefs::Tracefs,
        probes::{KernelView, load_and_attach},
    };
    super::raise_memlock_limit();
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
