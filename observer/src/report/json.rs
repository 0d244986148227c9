//! The versioned JSON report (schema: `docs/report.schema.json`).
use serde_json::{Value, json};

use super::{Report, SCHEMA_VERSION};
use crate::report::markdown::verdict_word;

/// Renders `report` as a JSON value; top-level `verdict` is the verdict word.
#[must_use]
pub fn render(report: &Report) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "generator": format!("kdump-dma-observer {}", env!("CARGO_PKG_VERSION")),
        "verdict": verdict_word(&report.verdict),
        "header": report.header,
        "judgement": report.verdict,
        "timeline": report.timeline,
    })
}
