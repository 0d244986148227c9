//! Post-mortem reports: one capture boot, its verdict and the evidence, as Markdown, as
//! self-contained HTML with an SVG timeline, or as versioned JSON (`docs/report.schema.json`).
//!
//! Every string that came from a machine (device names, command lines, log lines) is escaped
//! for the format it lands in.
pub mod html;
pub mod input;
pub mod json;
pub mod markdown;

use serde::{Deserialize, Serialize};

use crate::{
    event::{Detail, Event},
    verdict::{self, Verdict},
};

/// Version of the JSON report layout.
pub const SCHEMA_VERSION: u32 = 1;
/// Timeline rows shown in Markdown/HTML; the JSON report has them all.
pub const MAX_ROWS: usize = 500;

/// Who and what the report is about.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Where the input came from.
    pub input: String,
    /// The machine, when the daemon recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The capture kernel (`uname -r` or `Linux version` line), when known.
    pub capture_kernel: Option<String>,
    /// The crashed kernel, when the input holds its boot (console log, vmcore-dmesg).
    pub crashed_kernel: Option<String>,
    /// The capture kernel's command line.
    pub cmdline: Option<String>,
    /// SMMUv3 instances seen.
    pub smmu_instances: Vec<String>,
    /// Events in the judged boot / in the input.
    pub events_in_boot: usize,
    pub events_total: usize,
    /// The system, from a `DMI:`, `Hardware name:` or `Machine model:` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Text-log lines that could not be read wholly (invalid UTF-8, over-long), when the
    /// input was text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_lines: Option<u64>,
    /// Text-log lines without a time stamp (placed by position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub untimed_lines: Option<u64>,
    /// No line of the text input had a time stamp: times are unknown, order is the log's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub times_unknown: bool,
}

/// Everything a report shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub header: Header,
    pub verdict: Verdict,
    /// The judged boot's events, time-ordered.
    pub timeline: Vec<Event>,
    /// Position of the judged boot's first event in the whole ordered input: evidence index
    /// minus this is the row in `timeline`.
    pub boot_start: usize,
}

impl Report {
    /// Judges `events` and gathers what the report shows. `input` names the source.
    #[must_use]
    pub fn build(input: &str, events: &[Event]) -> Self {
        let verdict = verdict::judge(events);
        let (sorted, boot_start) = judged_boot_events(events, &verdict);
        let mut header = Header {
            input: input.to_owned(),
            events_in_boot: sorted.len(),
            events_total: events.len(),
            cmdline: verdict.cmdline_audit.cmdline.clone(),
            ..Header::default()
        };
        for e in &sorted {
            match &e.detail {
                Detail::ObserverStarted { kernel_release, .. } => {
                    header
                        .capture_kernel
                        .get_or_insert_with(|| kernel_release.clone());
                }
                Detail::KernelBoot { version: Some(v) } => {
                    header.capture_kernel.get_or_insert_with(|| v.clone());
                }
                Detail::SmmuProbe { smmu, .. }
                | Detail::SmmuReset { smmu, .. }
                | Detail::SmmuAdopt { smmu }
                | Detail::SmmuAdoptFallback { smmu, .. }
                    if !header.smmu_instances.contains(smmu) =>
                {
                    header.smmu_instances.push(smmu.clone());
                }
                _ => {}
            }
        }
        header.crashed_kernel = crashed_kernel(events, &verdict);
        header.platform = sorted.iter().chain(events).find_map(|e| match &e.detail {
            Detail::PlatformName { name, .. } => Some(name.clone()),
            _ => None,
        });
        let mut timed_total = 0;
        for e in events {
            if let Detail::LogRead {
                unreadable,
                untimed,
                timed,
                ..
            } = &e.detail
            {
                *header.unreadable_lines.get_or_insert(0) += unreadable;
                *header.untimed_lines.get_or_insert(0) += untimed;
                timed_total += timed;
            }
        }
        header.times_unknown = header.untimed_lines.is_some_and(|n| n > 0) && timed_total == 0;
        Self {
            header,
            verdict,
            timeline: sorted,
            boot_start,
        }
    }

    /// Rows of `timeline` that are evidence of the verdict.
    #[must_use]
    pub fn evidence_rows(&self) -> std::collections::BTreeSet<usize> {
        self.verdict
            .evidence
            .iter()
            .filter_map(|e| e.index.checked_sub(self.boot_start))
            .collect()
    }
}

/// The events of the judged boot, in the verdict's order (its evidence indices point here
/// after subtracting the boot's start).
fn judged_boot_events(events: &[Event], verdict: &Verdict) -> (Vec<Event>, usize) {
    let ordered = verdict::ordered(events);
    let boots = verdict::split(&ordered);
    match boots.get(verdict.judged_boot) {
        Some(b) => (ordered[b.start..b.end].to_vec(), b.start),
        None => (ordered, 0),
    }
}

fn crashed_kernel(events: &[Event], verdict: &Verdict) -> Option<String> {
    let ordered = verdict::ordered(events);
    let boots = verdict::split(&ordered);
    let previous = boots.get(verdict.judged_boot.checked_sub(1)?)?;
    ordered[previous.start..previous.end]
        .iter()
        .find_map(|e| match &e.detail {
            Detail::KernelBoot { version: Some(v) } => Some(v.clone()),
            _ => None,
        })
}

impl Header {
    /// The header as (label, value) rows, the same in every format; `None` reads "unknown".
    #[must_use]
    pub fn rows(&self) -> Vec<(&'static str, Option<String>)> {
        let mut rows = vec![
            ("input", Some(self.input.clone())),
            ("host", self.host.clone()),
            ("capture kernel", self.capture_kernel.clone()),
            ("crashed kernel", self.crashed_kernel.clone()),
            ("command line", self.cmdline.clone()),
            (
                "SMMU instances",
                Some(self.smmu_instances.join(", ")).filter(|s| !s.is_empty()),
            ),
        ];
        if let Some(platform) = &self.platform {
            rows.insert(2, ("system", Some(platform.clone())));
        }
        if self.times_unknown {
            rows.push((
                "times",
                Some("unknown: no line has a time stamp; events are in log order".into()),
            ));
        } else if let Some(n) = self.untimed_lines.filter(|n| *n > 0) {
            rows.push((
                "times",
                Some(format!(
                    "{n} line(s) without a time stamp, placed by position"
                )),
            ));
        }
        if let Some(n) = self.unreadable_lines {
            rows.push(("unreadable lines", Some(n.to_string())));
        }
        rows
    }
}

/// Events worth a timeline row (the self-test and bookkeeping kinds are not).
#[must_use]
pub fn shown(event: &Event) -> bool {
    !matches!(
        event.detail,
        Detail::SelfTest { .. }
            | Detail::IommuAttach { .. }
            | Detail::IommuGroupAdd { .. }
            | Detail::LogRead { .. }
    )
}

/// The lane of the SVG timeline an event belongs to.
#[must_use]
pub fn lane(event: &Event) -> Option<&'static str> {
    Some(match event.detail {
        Detail::SmmuProbe { .. }
        | Detail::SmmuReset { .. }
        | Detail::SmmuAdopt { .. }
        | Detail::SmmuAdoptFallback { .. }
        | Detail::SmmuRegWrite { .. }
        | Detail::SmmuGerror { .. }
        | Detail::SmmuFault { .. }
        | Detail::SmmuError { .. } => "SMMU",
        Detail::Aer { .. } | Detail::AerUnknownSeverity { .. } | Detail::AerRecovery { .. } => {
            "AER"
        }
        Detail::Dpc { .. } => "DPC",
        Detail::Ghes { .. } | Detail::GhesFatal => "GHES",
        Detail::Serror { .. } | Detail::ExternalAbort { .. } => "SError / abort",
        Detail::Panic { .. } => "panic",
        _ => return None,
    })
}

/// The lanes, top to bottom.
pub const LANES: &[&str] = &["SMMU", "AER", "DPC", "GHES", "SError / abort", "panic"];
