//! The self-contained HTML report: verdict, evidence, an SVG timeline with one lane per
//! evidence family (the reset marked, details on hover through SVG `<title>`), no scripts and
//! no external assets.
use std::fmt::Write as _;

use super::{LANES, MAX_ROWS, Report, lane, markdown::verdict_word, secs, shown};
use crate::{
    event::Event,
    verdict::{describe, fatal_sign, human_duration},
};

/// Escapes text for HTML element content and attribute values.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {}
            c => out.push(c),
        }
    }
    out
}

/// Fits a 1280-pixel screen: the body is at most 70em wide, tables at most the body, and long
/// machine text (command lines, log lines, DMI strings: cells of class `m`) wraps inside its
/// cell, anywhere if it must; times and kinds never break.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}\
table{border-collapse:collapse;margin:1em 0;max-width:100%}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}\
th{white-space:nowrap}td.m{overflow-wrap:anywhere}td.m code{white-space:pre-wrap}\
.verdict{font-size:1.4em;padding:.5em 1em;border-radius:.3em;display:inline-block}\
.flagged{background:#fdd;border:2px solid #c00}.reset-no-fatal{background:#ffe9c0;border:2px solid #d80}\
.preserved{background:#dfd;border:2px solid #080}.not-capture-kernel,.inconclusive{background:#eee;border:2px solid #888}\
tr.evidence{background:#fff6d0}code{background:#f3f3f3;padding:0 .2em}svg{border:1px solid #ddd;background:#fcfcfc;max-width:100%;height:auto}";

/// Renders `report` as one HTML document.
#[must_use]
pub fn render(report: &Report) -> String {
    let v = &report.verdict;
    let h = &report.header;
    let word = verdict_word(v);
    let system = escape(&h.system_name());
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>kdump DMA observer report: {system}: {word}</title><style>{STYLE}</style></head><body>\n\
         <h1>kdump DMA observer report: {system}</h1>\n<h2>System</h2>\n<table>\n"
    );
    let row = |out: &mut String, k: &str, val: Option<&str>| {
        let _ = writeln!(
            out,
            "<tr><th>{k}</th><td class=\"m\">{}</td></tr>",
            val.map_or_else(|| "unknown".to_owned(), escape)
        );
    };
    for (label, value) in h.rows() {
        row(&mut out, label, value.as_deref());
    }
    let _ = write!(
        out,
        "</table>\n<h2>Verdict</h2>\n\
         <p class=\"verdict {word}\">Verdict: <strong>{word}</strong> (confidence {:?})</p>\n<p>{}</p>\n<table>\n",
        v.confidence,
        escape(&v.summary)
    );
    row(
        &mut out,
        "boots in input",
        Some(&format!("{} (judged: {})", v.boots, v.judged_boot + 1)),
    );
    if let Some(ns) = v.reset_to_first_fatal_ns {
        row(
            &mut out,
            "reset → first fatal sign",
            Some(&human_duration(ns)),
        );
    }
    out.push_str("</table>\n<h2>Timeline</h2>\n");
    out.push_str(&svg(report));

    out.push_str("<h2>Evidence</h2>\n<table><tr><th>time (s)</th><th>kind</th><th>fatal</th><th>what</th></tr>\n");
    for e in &v.evidence {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"m\">{}</td></tr>",
            secs(e.ts_ns),
            escape(&e.kind),
            if e.fatal { "yes" } else { "" },
            escape(&e.summary)
        );
    }
    out.push_str("</table>\n");
    if !v.missing.is_empty() {
        out.push_str("<h2>What is missing</h2>\n<ul>\n");
        for m in &v.missing {
            let _ = writeln!(out, "<li>{}</li>", escape(m));
        }
        out.push_str("</ul>\n");
    }
    let _ = writeln!(
        out,
        "<h2>Command line audit</h2>\n<p>Boot instrumentation: {}</p>\n<ul>",
        if v.cmdline_audit.boot_instrumentation {
            "present"
        } else {
            "absent"
        }
    );
    for f in &v.cmdline_audit.findings {
        let _ = writeln!(
            out,
            "<li><strong>{}</strong> <code>{}</code>: {}</li>",
            escape(&f.level),
            escape(&f.parameter),
            escape(&f.note)
        );
    }
    out.push_str("</ul>\n");
    pci_table(&mut out, report);
    events_table(&mut out, report);
    let _ = writeln!(
        out,
        "<p><small>kdump-dma-observer {}</small></p>\n</body></html>",
        env!("CARGO_PKG_VERSION")
    );
    out
}

fn pci_table(out: &mut String, report: &Report) {
    if report.pci.is_empty() {
        return;
    }
    out.push_str(
        "<h2>PCI devices that can master DMA or carry errors</h2>\n\
         <table><tr><th>device</th><th>name / IDs</th><th>class</th><th>driver</th>\
         <th>SMMU (group)</th><th>bus master</th><th>errors</th><th>residue</th>\
         <th>new during capture</th><th>registers</th></tr>\n",
    );
    for r in &report.pci {
        let list = |items: &[String]| {
            items
                .iter()
                .map(|i| escape(i))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        let _ = writeln!(
            out,
            // Decoded bits, residue and register dumps are long machine text: class `m` cells
            // wrap anywhere, so the table fits the page (html-check measures it).
            "<tr{}><td>{}</td><td class=\"m\">{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td class=\"m\">{}</td><td class=\"m\">{}</td><td class=\"m\">{}</td><td class=\"m\"><code>{}</code></td></tr>",
            if r.has_errors() {
                " class=\"evidence\""
            } else {
                ""
            },
            escape(&r.bdf),
            escape(&r.name.clone().map_or_else(
                || format!("{}:{}", r.vendor, r.device),
                |n| format!("{n} ({}:{})", r.vendor, r.device)
            )),
            escape(&r.class),
            escape(r.driver.as_deref().unwrap_or("none")),
            escape(r.smmu.as_deref().unwrap_or("none")),
            r.iommu_group.map(|g| format!(" ({g})")).unwrap_or_default(),
            if r.bus_master { "yes" } else { "no" },
            list(&r.errors),
            list(&r.residue),
            list(&r.new_since_start),
            list(&r.registers),
        );
    }
    out.push_str("</table>\n<dl>\n");
    for (name, meaning) in super::pci::REGISTERS {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(name), escape(meaning));
    }
    out.push_str("</dl>\n");
}

fn events_table(out: &mut String, report: &Report) {
    out.push_str("<h2>Events of the judged boot</h2>\n<table><tr><th>time (s)</th><th>kind</th><th>source</th><th>what</th><th>log line</th></tr>\n");
    let evidence = report.evidence_rows();
    let rows: Vec<_> = report
        .timeline
        .iter()
        .enumerate()
        .filter(|(_, e)| shown(e))
        .collect();
    for (i, e) in rows.iter().take(MAX_ROWS) {
        let _ = writeln!(
            out,
            "<tr{}><td>{}</td><td>{}</td><td>{}</td><td class=\"m\">{}</td><td class=\"m\"><code>{}</code></td></tr>",
            if evidence.contains(i) {
                " class=\"evidence\""
            } else {
                ""
            },
            secs(e.ts_ns),
            escape(e.detail.kind()),
            e.source.as_str(),
            escape(&describe(e)),
            escape(e.raw.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table>\n");
    if rows.len() > MAX_ROWS {
        let _ = writeln!(
            out,
            "<p>{} more events: see the JSON report.</p>",
            rows.len() - MAX_ROWS
        );
    }
}

/// The SVG timeline: one lane per family, a dot per event (red: fatal, amber: other errors,
/// blue: the rest), a red line at the reset; hovering a dot shows its details.
fn svg(report: &Report) -> String {
    const WIDTH: f64 = 960.0;
    const LEFT: f64 = 120.0;
    const LANE_H: f64 = 36.0;
    let events: Vec<(&Event, usize)> = report
        .timeline
        .iter()
        .filter_map(|e| {
            lane(e)
                .and_then(|l| LANES.iter().position(|x| *x == l))
                .map(|n| (e, n))
        })
        .collect();
    #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
    let height = LANE_H * (LANES.len() as f64) + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"timeline\">"
    );
    for (n, name) in LANES.iter().enumerate() {
        #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
        let y = LANE_H * n as f64 + LANE_H / 2.0 + 10.0;
        let _ = writeln!(
            out,
            "<text x=\"8\" y=\"{:.1}\" font-size=\"13\">{}</text><line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>",
            y + 4.0,
            escape(name),
            WIDTH - 10.0
        );
    }
    let (Some(min), Some(max)) = (
        events.iter().map(|(e, _)| e.ts_ns).min(),
        events.iter().map(|(e, _)| e.ts_ns).max(),
    ) else {
        out.push_str("<text x=\"130\" y=\"30\" font-size=\"13\">no SMMU or error events in this boot</text></svg>\n");
        return out;
    };
    let span = (max - min).max(1);
    #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
    let x = |ts: u64| LEFT + (WIDTH - LEFT - 20.0) * ((ts - min) as f64 / span as f64);
    if let Some(reset) = &report.verdict.reset {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"4\" x2=\"{0:.1}\" y2=\"{1:.1}\" stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"4 3\" aria-label=\"smmu_reset at {2} s\"><title>smmu_reset: SMMU reset at {2} s</title></line>\
             <text x=\"{3:.1}\" y=\"{4:.1}\" font-size=\"12\" fill=\"#c00\">reset</text>",
            x(reset.ts_ns),
            height - 24.0,
            secs(reset.ts_ns),
            x(reset.ts_ns) + 3.0,
            height - 12.0
        );
    }
    for (e, n) in &events {
        #[expect(clippy::cast_precision_loss, reason = "pixel positions")]
        let y = LANE_H * *n as f64 + LANE_H / 2.0 + 10.0;
        let color = if fatal_sign(e).is_some() {
            "#c00"
        } else if matches!(e.detail, crate::event::Detail::Aer { .. }) {
            "#d80"
        } else {
            "#36c"
        };
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"6\" fill=\"{color}\" aria-label=\"{kind} at {at} s\"><title>{kind} at {at} s: {}</title></circle>",
            x(e.ts_ns),
            escape(&describe(e)),
            kind = escape(e.detail.kind()),
            at = secs(e.ts_ns),
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\">{} s</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{} s</text></svg>",
        height - 4.0,
        secs(min),
        WIDTH - 20.0,
        height - 4.0,
        secs(max)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Detail, Source};

    fn hostile_report() -> Report {
        let events = vec![
            Event::new(
                0,
                Source::Console,
                Detail::CaptureKernelMarker {
                    evidence: "elfcorehdr".into(),
                },
            ),
            Event::new(
                1_000_000,
                Source::Console,
                Detail::SmmuReset {
                    smmu: "<script>alert(1)</script>".into(),
                    writes: Vec::new(),
                },
            ),
            Event::new(
                2_000_000,
                Source::Console,
                Detail::Aer {
                    device: "0000:02:00.0\"><img src=x onerror=alert(2)>".into(),
                    severity: AerSeverity::Fatal,
                    status: None,
                    error_type: None,
                    reporter: None,
                    errors: Vec::new(),
                    firmware_first: None,
                },
            )
            .with_raw("virtio-pci <b>bold</b> | pipe `tick` *star*"),
        ];
        Report::build("console.log <i>", events)
    }

    #[test]
    fn hostile_strings_are_inert_in_html() {
        let html = render(&hostile_report());
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>bold"));
        assert!(!html.contains("<i>"));
        assert!(html.contains("class=\"verdict flagged\""));
        assert!(html.contains("<svg") && html.contains("<title>"));
        assert!(
            !html.contains("http://") || html.matches("http://").count() == 1,
            "only the SVG namespace"
        );
        assert!(!html.contains("<script"), "no scripts at all");
    }

    #[test]
    fn hostile_strings_are_inert_in_markdown() {
        let md = super::super::markdown::render(&hostile_report());
        assert!(!md.contains("<script>"));
        assert!(md.contains("&lt;script&gt;"));
        assert!(!md.contains("<img"));
        assert!(md.contains("**Verdict: `flagged`**"));
        for line in md
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains("0000:02:00.0"))
        {
            // Every table row keeps its column count despite `|` in the data.
            assert_eq!(
                line.matches(" | ").count() + 2,
                line.matches('|').count() - line.matches("\\|").count()
            );
        }
    }

    #[test]
    fn json_report_carries_the_verdict_word_and_version() {
        let v = super::super::json::render(&hostile_report());
        assert_eq!(v["verdict"], "flagged");
        assert_eq!(v["schema_version"], 2);
        assert_eq!(v["timeline"].as_array().unwrap().len(), 3);
    }
}
