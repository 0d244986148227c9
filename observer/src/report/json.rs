//! The versioned JSON report (schema: `docs/report.schema.json`).
use serde::Serialize;

use super::{Header, Report, SCHEMA_VERSION};
use crate::{event::Event, report::markdown::verdict_word, verdict::Verdict};

/// The JSON report, borrowing the report's parts (no intermediate JSON tree: a report can
/// carry a million events).
#[derive(Serialize)]
pub struct JsonReport<'a> {
    pub schema_version: u32,
    pub generator: String,
    /// The verdict word: flagged, reset-no-fatal, preserved, not-capture-kernel, inconclusive.
    pub verdict: String,
    pub header: &'a Header,
    pub judgement: &'a Verdict,
    /// PCI devices that can master DMA or carry error bits or residue, decoded.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub pci_devices: &'a [super::pci::PciRow],
    pub timeline: &'a [Event],
}

/// The serializable JSON report of `report`.
#[must_use]
pub fn report(report: &Report) -> JsonReport<'_> {
    JsonReport {
        schema_version: SCHEMA_VERSION,
        generator: format!("kdump-dma-observer {}", env!("CARGO_PKG_VERSION")),
        verdict: verdict_word(&report.verdict),
        header: &report.header,
        judgement: &report.verdict,
        pci_devices: &report.pci,
        timeline: &report.timeline,
    }
}

/// Renders `report` as a JSON value (tests, small reports); top-level `verdict` is the
/// verdict word.
#[must_use]
pub fn render(report: &Report) -> serde_json::Value {
    serde_json::to_value(self::report(report)).expect("reports serialize")
}

/// Writes `report` as compact JSON followed by a newline.
pub fn write(report: &Report, out: impl std::io::Write) -> serde_json::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer(&mut out, &self::report(report))?;
    std::io::Write::write_all(&mut out, b"\n").map_err(serde_json::Error::io)
}
