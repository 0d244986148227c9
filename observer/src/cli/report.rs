//! `report`: judge a capture boot and write a post-mortem report.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;

#[derive(clap::Args)]
pub(crate) struct Args {
    /// Timeline, capture directory, kernel log, console log or pstore directory.
    pub input: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// What `report` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Markdown.
    Md,
    /// A self-contained HTML page with an SVG timeline.
    Html,
    /// Versioned JSON (schema in docs/report.schema.json).
    Json,
    /// Plain text, at most 80 columns, for a reply on a kernel mailing list.
    Text,
}

pub(crate) fn execute(args: &Args) -> anyhow::Result<ExitCode> {
    use observer::report::{Report, html, input, json, markdown, text};
    let loaded = input::load(&args.input)?;
    for w in &loaded.warnings {
        tracing::warn!(warning = %w, "input");
    }
    for (file, what) in &loaded.files {
        tracing::info!(file = %file.display(), read_as = %what, "input");
    }
    let report = Report::build(&args.input.display().to_string(), loaded.events);
    let rendered = match args.format {
        Format::Html => Some(html::render(&report)),
        Format::Json => None,
        Format::Md => Some(markdown::render(&report)),
        Format::Text => Some(text::render(&report)),
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
