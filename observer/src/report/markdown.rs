//! The Markdown report.
use std::fmt::Write as _;

use super::{MAX_ROWS, Report, secs, shown};
use crate::verdict::{self, describe, human_duration};

/// Escapes text for a Markdown table cell or paragraph: no raw HTML, no emphasis or links,
/// no broken tables.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders `report` as Markdown.
#[must_use]
pub fn render(report: &Report) -> String {
    let v = &report.verdict;
    let h = &report.header;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# kdump DMA observer report: {}\n",
        escape(&h.system_name())
    );
    let _ = writeln!(md, "## System\n\n| | |\n|---|---|");
    let row = |md: &mut String, k: &str, val: Option<&str>| {
        let _ = writeln!(
            md,
            "| {k} | {} |",
            val.map_or_else(|| "unknown".to_owned(), escape)
        );
    };
    for (label, value) in h.rows() {
        row(&mut md, label, value.as_deref());
    }
    let _ = writeln!(md, "\n## Verdict\n");
    let _ = writeln!(
        md,
        "**Verdict: `{}`** (confidence {:?})\n",
        verdict_word(v),
        v.confidence
    );
    let _ = writeln!(md, "{}\n", escape(&v.summary));
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(
        md,
        "| boots in input | {} (judged: {}) |",
        v.boots,
        v.judged_boot + 1
    );
    if let Some(ns) = v.reset_to_first_fatal_ns {
        let _ = writeln!(md, "| reset → first fatal sign | {} |", human_duration(ns));
    }

    let _ = writeln!(md, "\n## Evidence\n");
    if v.evidence.is_empty() {
        let _ = writeln!(md, "None.");
    } else {
        let _ = writeln!(
            md,
            "| time (s) | kind | fatal | sources | what |\n|---|---|---|---|---|"
        );
        for e in &v.evidence {
            let sources: Vec<String> = e.sources.iter().map(|s| s.as_str().to_owned()).collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                secs(e.ts_ns),
                escape(&e.kind),
                if e.fatal { "yes" } else { "" },
                escape(&sources.join(", ")),
                escape(&e.summary)
            );
        }
    }
    if !v.missing.is_empty() {
        let _ = writeln!(md, "\n## What is missing\n");
        for m in &v.missing {
            let _ = writeln!(md, "- {}", escape(m));
        }
    }
    let _ = writeln!(md, "\n## Command line audit\n");
    let _ = writeln!(
        md,
        "Boot instrumentation: {}\n",
        if v.cmdline_audit.boot_instrumentation {
            "present"
        } else {
            "absent"
        }
    );
    for f in &v.cmdline_audit.findings {
        let _ = writeln!(
            md,
            "- **{}** `{}`: {}",
            f.level,
            escape(&f.parameter),
            escape(&f.note)
        );
    }

    pci_section(&mut md, report);
    timeline_section(&mut md, report);
    md
}

fn pci_section(md: &mut String, report: &Report) {
    if report.pci.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "\n## PCI devices that can master DMA or carry errors\n\n\
         From the daemon's own reads of config space (start, every 3 s, stop).\n\n\
         | device | name / IDs | class | driver | SMMU (group) | bus master | errors | residue | new during capture |\n\
         |---|---|---|---|---|---|---|---|---|"
    );
    for r in &report.pci {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            escape(&r.bdf),
            escape(&r.name.clone().map_or_else(
                || format!("{}:{}", r.vendor, r.device),
                |n| format!("{n} ({}:{})", r.vendor, r.device)
            )),
            escape(&r.class),
            escape(r.driver.as_deref().unwrap_or("none")),
            escape(&format!(
                "{}{}",
                r.smmu.as_deref().unwrap_or("none"),
                r.iommu_group.map(|g| format!(" ({g})")).unwrap_or_default()
            )),
            if r.bus_master { "yes" } else { "no" },
            escape(&r.errors.join(", ")),
            escape(&r.residue.join("; ")),
            escape(&r.new_since_start.join(", "))
        );
    }
    for r in report.pci.iter().filter(|r| r.has_errors()) {
        let _ = writeln!(
            md,
            "\n**{}** registers: {}",
            escape(&r.bdf),
            escape(&r.registers.join("; "))
        );
    }
    let _ = writeln!(md, "\nWhat the registers mean:\n");
    for (name, meaning) in super::pci::REGISTERS {
        let _ = writeln!(md, "- **{}**: {}", escape(name), escape(meaning));
    }
}

fn timeline_section(md: &mut String, report: &Report) {
    let _ = writeln!(md, "\n## Timeline of the judged boot\n");
    let rows: Vec<_> = report
        .timeline
        .iter()
        .enumerate()
        .filter(|(_, e)| shown(e))
        .collect();
    let evidence = report.evidence_rows();
    let _ = writeln!(md, "| time (s) | kind | source | what |\n|---|---|---|---|");
    for (i, e) in rows.iter().take(MAX_ROWS) {
        let mark = if evidence.contains(i) { " ◀" } else { "" };
        let _ = writeln!(
            md,
            "| {} | {}{mark} | {} | {} |",
            secs(e.ts_ns),
            escape(e.detail.kind()),
            e.source.as_str(),
            escape(&describe(e))
        );
    }
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            md,
            "\n{} more rows: see the JSON report.",
            rows.len() - MAX_ROWS
        );
    }
}

/// The verdict's JSON word (`flagged`, `reset-no-fatal`, ...).
#[must_use]
pub fn verdict_word(v: &verdict::Verdict) -> String {
    serde_json::to_value(v.verdict)
        .ok()
        .and_then(|w| w.as_str().map(str::to_owned))
        .unwrap_or_default()
}
