//! Post-mortem reports: one capture boot, the system it ran on, its verdict and the evidence,
//! as Markdown, as self-contained HTML with an SVG timeline, as versioned JSON
//! (`docs/report.schema.json`), or as 80-column plain text for a mailing-list reply.
//!
//! Every string that came from a machine (device names, command lines, log lines) is escaped
//! for the format it lands in.
pub mod fleet;
pub mod html;
pub mod input;
pub mod json;
pub mod markdown;
pub mod pci;
pub mod system;
pub mod text;

use serde::{Deserialize, Serialize};

use crate::{
    event::{Detail, Event},
    verdict::{self, Verdict},
};

/// Version of the JSON report layout (2: `header.system`, `header.crash_time`; see
/// docs/report.md).
pub const SCHEMA_VERSION: u32 = 2;
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
    /// The crashed kernel: VMCOREINFO's release when the daemon read it, else the crashed
    /// boot's `Linux version` line when the input holds it (console log, vmcore-dmesg).
    pub crashed_kernel: Option<String>,
    /// When the crashed kernel crashed (VMCOREINFO `CRASHTIME`), UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_time: Option<String>,
    /// The machine, its CPU and firmware (schema 2).
    #[serde(default)]
    pub system: system::SystemSection,
    /// The capture kernel's command line.
    pub cmdline: Option<String>,
    /// SMMUv3 instances seen.
    pub smmu_instances: Vec<String>,
    /// Events in the judged boot / in the input.
    pub events_in_boot: usize,
    pub events_total: usize,
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
    /// PCI devices that can master DMA or carry error bits or residue (`pci_device` events).
    pub pci: Vec<pci::PciRow>,
}

impl Report {
    /// Judges `events` and gathers what the report shows. `input` names the source.
    #[must_use]
    pub fn build(input: &str, events: Vec<Event>) -> Self {
        // Ordered once, in place; `judge` finds the order already made. The judged boot's
        // events are moved into the report at the end, not copied.
        let events = verdict::into_ordered(events);
        let verdict = verdict::judge(&events);
        let boots = verdict::split(&events);
        let range = boots
            .get(verdict.judged_boot)
            .map_or(0..events.len(), |b| b.start..b.end);
        let boot_start = range.start;
        let sorted = &events[range.clone()];
        let mut header = Header {
            input: input.to_owned(),
            events_in_boot: sorted.len(),
            events_total: events.len(),
            cmdline: verdict.cmdline_audit.cmdline.clone(),
            ..Header::default()
        };
        for e in sorted {
            match &e.detail {
                Detail::ObserverStarted {
                    kernel_release,
                    hostname,
                    ..
                } => {
                    header
                        .capture_kernel
                        .get_or_insert_with(|| kernel_release.clone());
                    if !hostname.is_empty() {
                        header
                            .host
                            .get_or_insert_with(|| crate::system::bounded(hostname));
                    }
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
        header.system = system::SystemSection::find(sorted, &events);
        if let Some(id) = &header.system.identity {
            if let Some(k) = &id.crashed_kernel {
                header.crashed_kernel = Some(k.release.clone());
                header.crash_time = k.crash_time.and_then(system::utc);
            }
            if let Some(k) = &id.running_kernel {
                header
                    .capture_kernel
                    .get_or_insert_with(|| k.release.clone());
                if header.cmdline.is_none() && !k.cmdline.is_empty() {
                    header.cmdline = Some(k.cmdline.clone());
                }
            }
        }
        if header.crashed_kernel.is_none() {
            header.crashed_kernel = crashed_kernel(&events, &boots, &verdict);
        }
        let mut timed_total = 0;
        for e in &events {
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
        let pci = pci::rows(sorted);
        Self {
            header,
            verdict,
            pci,
            timeline: boot_events(events, range),
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

/// The events of the judged boot (`range` of the ordered input), moved out of `events`.
fn boot_events(mut events: Vec<Event>, range: std::ops::Range<usize>) -> Vec<Event> {
    events.truncate(range.end);
    if range.start == 0 {
        events
    } else {
        events.split_off(range.start)
    }
}

fn crashed_kernel(events: &[Event], boots: &[verdict::Boot], verdict: &Verdict) -> Option<String> {
    let previous = boots.get(verdict.judged_boot.checked_sub(1)?)?;
    events[previous.start..previous.end]
        .iter()
        .find_map(|e| match &e.detail {
            Detail::KernelBoot { version: Some(v) } => Some(v.clone()),
            _ => None,
        })
}

impl Header {
    /// The System section as (label, value) rows, the same in every format; `None` reads
    /// "unknown".
    #[must_use]
    pub fn rows(&self) -> Vec<(&'static str, Option<String>)> {
        let sys = &self.system;
        let id = sys.identity.as_ref();
        let smmus = match id.map(|i| &i.smmus).filter(|s| !s.is_empty()) {
            Some(instances) => Some(
                instances
                    .iter()
                    .map(crate::system::smmu::SmmuInstance::summary)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            None => Some(self.smmu_instances.join(", ")).filter(|s| !s.is_empty()),
        };
        let mut rows = vec![
            ("machine", sys.machine.clone()),
            ("CPU", sys.cpu.clone()),
            ("firmware", sys.bios.clone()),
            ("error handling", sys.firmware.clone()),
            ("host", self.host.clone()),
            ("capture kernel", self.capture_kernel.clone()),
            ("crashed kernel", self.crashed_kernel.clone()),
            ("crash time", self.crash_time.clone()),
            ("command line", self.cmdline.clone()),
            ("SMMU instances", smmus),
            ("identity from", sys.source.clone()),
        ];
        if let Some(status) = id.map(|i| &i.status).filter(|s| !s.is_empty()) {
            rows.push(("not available", Some(status.join("; "))));
        }
        rows.push(("input", Some(self.input.clone())));
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

    /// What the report's title calls the system: the machine, else the host, else "unknown
    /// system".
    #[must_use]
    pub fn system_name(&self) -> String {
        self.system
            .machine
            .clone()
            .or_else(|| self.host.clone())
            .unwrap_or_else(|| "unknown system".into())
    }
}

/// Kernel monotonic nanoseconds as the log prints them: `seconds.micros`.
fn secs(ts_ns: u64) -> String {
    format!(
        "{}.{:06}",
        ts_ns / 1_000_000_000,
        ts_ns % 1_000_000_000 / 1000
    )
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

/// The lane of the SVG timeline an event belongs to ([`Detail::lane`](crate::event::Detail::lane)).
#[must_use]
pub fn lane(event: &Event) -> Option<&'static str> {
    event.detail.lane()
}

/// The lanes, top to bottom.
pub const LANES: &[&str] = &[
    "SMMU",
    "AER",
    "DPC",
    "PCI",
    "GHES",
    "SError / abort",
    "panic",
];
