//! `man` (hidden): the manual pages, generated from these clap definitions (`clap_mangen`),
//! so that they say exactly what `--help` says. `cargo xtask deb` ships them.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::CommandFactory as _;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Directory to write kdump-dma-observer.8 and kdump-dma-observer-<subcommand>.8 into.
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
}

/// Files the package installs; the page's FILES section.
const FILES: &str = "\
/lib/systemd/system/kdump-dma-observer.service: the capture kernel unit, pulled in by \
kdump-tools-dump.service.
/lib/systemd/system/kdump-dma-observer-recover.service: the production boot's unit; reports \
captures and publishes their metrics.
/usr/lib/dracut/modules.d/99kdump-dma-observer/: the dracut module for kdump-utils \
(dracut_args --add kdump-dma-observer).
/var/lib/prometheus/node-exporter/kdump-dma-observer.prom: metrics of the last capture, for \
node_exporter's textfile collector.";

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let top = super::Cli::command()
        .after_long_help(format!("Files:\n{FILES}"))
        .version(env!("CARGO_PKG_VERSION"));
    let mut written = vec![write_page(&args.dir, "kdump-dma-observer", top.clone())?];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("kdump-dma-observer-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .bin_name(format!("kdump-dma-observer {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        written.push(write_page(&args.dir, &name, page)?);
    }
    for path in &written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn write_page(
    dir: &std::path::Path,
    name: &str,
    command: clap::Command,
) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.8"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .section("8")
        .render(&mut page)
        .with_context(|| format!("rendering {name}.8"))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
