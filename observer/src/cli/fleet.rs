//! `fleet`: roll many report.json files up by platform, BIOS, crashed kernel and verdict.
use std::{io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context as _;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// report.json files, or directories searched recursively for *.json.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Write the roll-up to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// What `fleet` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// A Markdown table, then the skipped files.
    Md,
    /// CSV, one row per group (skipped files go to stderr).
    Csv,
    /// JSON: {reports, groups, skipped}.
    Json,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    use observer::report::fleet::{self, Fleet};
    let mut rollup = Fleet::new();
    rollup.add_paths(&args.paths);
    let text = match args.format {
        Format::Md => fleet::render_markdown(&rollup),
        Format::Csv => fleet::render_csv(&rollup),
        Format::Json => fleet::render_json(&rollup)?,
    };
    match &args.output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing the roll-up to {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    eprintln!(
        "fleet: {} reports in {} groups, {} files skipped",
        rollup.reports,
        rollup.groups.len(),
        rollup.skipped.len()
    );
    Ok(ExitCode::SUCCESS)
}
