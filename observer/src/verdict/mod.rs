//! The verdict: did the capture kernel's aggressive SMMU reset coincide with fatal errors?
//!
//! Rules, applied to the capture boot of a timeline (see `docs/verdict.md`):
//! 1. not a capture kernel → `not-capture-kernel`;
//! 2. an SMMU that was still enabled got the aggressive reset (`smmu_reset`, an adoption
//!    fallback, or a boot-trace CR0 write that cleared SMMUEN) and at least one fatal sign
//!    followed it (uncorrectable AER, DPC, fatal GHES, SError, external abort, panic, an
//!    uncorrectable error latched or wiped in a device's config space: [`pci_config`]) →
//!    `flagged`;
//! 3. a reset and nothing fatal after it (correctable errors may be present) →
//!    `reset-no-fatal`;
//! 4. the patched kernels' adopt path (`kdump: retaining SMMUEN ...`) and no reset →
//!    `preserved`;
//! 5. otherwise → `inconclusive`, saying what is missing.
//!
//! Rule families with their own module: [`ghes`] (firmware-first severities, one count per
//! record), [`dump_tool`] (a failed dump the tool explains is not the reset's fatal sign),
//! [`x86_handover`] (VT-d/AMD-Vi table copies mark a capture kernel and preserve DMA).
mod boots;
pub mod cmdline_audit;
pub mod dump_tool;
pub mod ghes;
mod live;
pub mod pci_config;
pub mod x86_handover;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use boots::{Boot, CaptureEvidence, boot_to_judge, split};
pub use cmdline_audit::CmdlineAudit;
pub use live::LiveVerdict;

use crate::{
    event::{AerSeverity, Detail, Event, Source},
    smmu,
};

/// The five verdicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictKind {
    Flagged,
    ResetNoFatal,
    Preserved,
    NotCaptureKernel,
    Inconclusive,
}

/// How sure the verdict is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// A pointer to one timeline event that supports the verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceRef {
    /// Position in the judged (time-ordered) timeline.
    pub index: usize,
    pub ts_ns: u64,
    pub kind: String,
    pub sources: Vec<Source>,
    /// One line a human reads.
    pub summary: String,
    /// Whether it is a fatal sign.
    pub fatal: bool,
}

/// The verdict on one capture boot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub verdict: VerdictKind,
    pub confidence: Confidence,
    /// One sentence.
    pub summary: String,
    /// The reset (first one), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<EvidenceRef>,
    /// The first fatal sign after the reset, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_fatal: Option<EvidenceRef>,
    /// Time from the reset to the first fatal sign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_to_first_fatal_ns: Option<u64>,
    /// Every event the verdict rests on, in time order.
    pub evidence: Vec<EvidenceRef>,
    /// What the judged input lacks (always said for `inconclusive`; caveats otherwise).
    pub missing: Vec<String>,
    pub cmdline_audit: CmdlineAudit,
    /// Boots found in the input, and which one was judged (0-based).
    pub boots: usize,
    pub judged_boot: usize,
}

/// Judges `events` (any order; sorted here).
#[must_use]
pub fn judge(events: &[Event]) -> Verdict {
    let owned = ordered(events);
    let boots = split(&owned);
    let Some(boot) = boot_to_judge(&boots) else {
        return inconclusive(
            Vec::new(),
            vec!["the input holds no events".into()],
            CmdlineAudit::default(),
        );
    };
    let judged_boot = boots.iter().position(|b| b == boot).unwrap_or(0);
    let range = &owned[boot.start..boot.end];
    let crashed_cmdline = judged_boot
        .checked_sub(1)
        .and_then(|i| boots.get(i))
        .and_then(|b| cmdline_of(&owned[b.start..b.end]));
    let audit = cmdline_audit::audit(cmdline_of(range), crashed_cmdline);
    let mut verdict = if boot.capture.is_capture() {
        judge_capture_boot(range, boot.start, audit)
    } else {
        Verdict {
            verdict: VerdictKind::NotCaptureKernel,
            confidence: match boot.capture {
                CaptureEvidence::Observer(false) => Confidence::High,
                _ => Confidence::Medium,
            },
            summary: "This boot is not a kdump capture kernel: nothing to judge.".into(),
            reset: None,
            first_fatal: None,
            reset_to_first_fatal_ns: None,
            evidence: Vec::new(),
            missing: Vec::new(),
            cmdline_audit: audit,
            boots: 0,
            judged_boot: 0,
        }
    };
    verdict.boots = boots.len();
    verdict.judged_boot = judged_boot;
    verdict
}

/// Rule 5 for a capture boot with neither a reset nor an adoption: `inconclusive`, saying so.
fn no_smmu_evidence(
    range: &[Event],
    all: Vec<EvidenceRef>,
    mut missing: Vec<String>,
    audit: CmdlineAudit,
) -> Verdict {
    missing.insert(
        0,
        "no SMMU reset or adopt evidence in the capture boot".into(),
    );
    if !range
        .iter()
        .any(|e| matches!(e.detail, Detail::SmmuProbe { .. }))
    {
        missing.push("no SMMUv3 probe line either: the machine may have no SMMUv3, or the log lost its start".into());
    }
    inconclusive(all, missing, audit)
}

/// Rules 2–5 on the events of a capture boot; `offset` is its position in the timeline.
fn judge_capture_boot(range: &[Event], offset: usize, audit: CmdlineAudit) -> Verdict {
    let find = |pred: &dyn Fn(&Event) -> bool| {
        range
            .iter()
            .position(pred)
            .map(|i| evidence(offset + i, &range[i]))
    };
    let reset = find(&is_reset);
    let adopt = find(&|e| matches!(e.detail, Detail::SmmuAdopt { .. }));
    let handover = x86_handover::preserving_handover(range);
    let since = reset.as_ref().map(|r| r.index - offset).or(handover);
    let other_resets = other_instances_reset(range, reset.as_ref().map(|r| r.index - offset));
    let Gathered {
        fatal_after,
        all,
        tool_failure,
    } = gather(
        range,
        offset,
        since,
        [&reset, &adopt],
        handover.into_iter().chain(other_resets.iter().copied()),
    );
    let mut missing = caveats(range, &audit);
    missing.extend(pci_config::missing(range, &audit));
    let tool_note = dump_tool::note(tool_failure.as_ref());

    let (verdict, confidence, summary) = match (&reset, &adopt) {
        (Some(reset), _) => {
            let smmu = smmus_reset(range, reset.index - offset, &other_resets);
            let strong = reset.sources.len() > 1 || reset.kind == "smmu_reset";
            match fatal_after.first() {
                Some(first) => (
                    VerdictKind::Flagged,
                    if strong {
                        Confidence::High
                    } else {
                        Confidence::Medium
                    },
                    format!(
                        "The capture kernel reset {smmu} and {} fatal sign(s) followed, the first ({}) {} after the reset.{tool_note}",
                        fatal_after.len(),
                        first.kind,
                        human_duration(first.ts_ns - reset.ts_ns)
                    ),
                ),
                None => (
                    VerdictKind::ResetNoFatal,
                    if strong && missing.is_empty() {
                        Confidence::High
                    } else {
                        Confidence::Medium
                    },
                    format!(
                        "The capture kernel reset {smmu} and nothing fatal followed.{tool_note}"
                    ),
                ),
            }
        }
        (None, Some(_)) => (
            VerdictKind::Preserved,
            Confidence::High,
            format!(
                "The capture kernel adopted the crashed kernel's SMMU configuration (kdump: retaining SMMUEN): in-flight DMA was not aborted.{tool_note}"
            ),
        ),
        (None, None) if let Some(i) = handover => (
            VerdictKind::Preserved,
            Confidence::Medium,
            format!(
                "{}{tool_note}",
                x86_handover::summary(&range[i], fatal_after.len())
            ),
        ),
        (None, None) => return no_smmu_evidence(range, all, missing, audit),
    };
    // Config-space evidence alone carries its own confidence (when the bits were set).
    let confidence =
        match pci_config::confidence(fatal_after.iter().map(|f| &range[f.index - offset])) {
            Some(own) if verdict == VerdictKind::Flagged => weaker(confidence, own),
            _ => confidence,
        };
    let first_fatal = if verdict == VerdictKind::Flagged {
        fatal_after.first().cloned()
    } else {
        None
    };
    Verdict {
        verdict,
        confidence,
        summary,
        reset_to_first_fatal_ns: first_fatal
            .as_ref()
            .zip(reset.as_ref())
            .map(|(f, r)| f.ts_ns - r.ts_ns),
        reset,
        first_fatal,
        evidence: all,
        missing,
        cmdline_audit: audit,
        boots: 0,
        judged_boot: 0,
    }
}

/// What a capture boot's verdict rests on.
struct Gathered {
    /// Fatal signs at or after position `since`.
    fatal_after: Vec<EvidenceRef>,
    /// Every piece of evidence, in time order, each marked fatal or not.
    all: Vec<EvidenceRef>,
    /// The dump tool's own failure with its cause, if it named one.
    tool_failure: Option<(usize, String)>,
}

/// Collects the evidence of `range` (at `offset` in the timeline): the fatal signs from
/// position `since`, the `found` reset/adopt, correctable errors, an explained dump-tool
/// failure, the x86 hand-over.
/// Positions of the first reset of every SMMU instance other than the one reset at `first`
/// (servers have a dozen SMMUv3 instances, each reset on its own), in time order.
fn other_instances_reset(range: &[Event], first: Option<usize>) -> Vec<usize> {
    let Some(first) = first else {
        return Vec::new();
    };
    let mut seen = vec![smmu_of(&range[first])];
    let mut out = Vec::new();
    for (i, e) in range.iter().enumerate() {
        if i != first
            && matches!(
                e.detail,
                Detail::SmmuReset { .. } | Detail::SmmuAdoptFallback { .. }
            )
        {
            let smmu = smmu_of(e);
            if !seen.contains(&smmu) {
                seen.push(smmu);
                out.push(i);
            }
        }
    }
    out
}

/// `an enabled SMMU (name)`, or `4 enabled SMMUs (a, b, c, d)` when several were reset.
fn smmus_reset(range: &[Event], first: usize, others: &[usize]) -> String {
    let names: Vec<String> = std::iter::once(first)
        .chain(others.iter().copied())
        .map(|i| smmu_of(&range[i]))
        .collect();
    if names.len() == 1 {
        format!("an enabled SMMU ({})", names[0])
    } else {
        format!("{} enabled SMMUs ({})", names.len(), names.join(", "))
    }
}

fn gather(
    range: &[Event],
    offset: usize,
    since: Option<usize>,
    found: [&Option<EvidenceRef>; 2],
    listed: impl Iterator<Item = usize>,
) -> Gathered {
    let records = ghes::fatal_records(range);
    let tool_failure = dump_tool::named_failure(range);
    let is_fatal = |e: &Event| {
        fatal_sign(e).is_some()
            && !ghes::counted_by_record(e, &records)
            && !(tool_failure.is_some() && dump_tool::is_failed_capture(e))
    };
    // Fatal signs after the reset; on x86, after the hand-over (listed, not blamed).
    // By position: `range` is in time order, and a log without times is in log order.
    let fatal_after: Vec<EvidenceRef> = since
        .map(|since| {
            range
                .iter()
                .enumerate()
                .filter(|(i, e)| *i >= since && is_fatal(e))
                .map(|(i, e)| evidence(offset + i, e))
                .collect()
        })
        .unwrap_or_default();
    let correctable = range.iter().enumerate().filter(|(_, e)| {
        matches!(
            e.detail,
            Detail::Aer {
                severity: AerSeverity::Correctable,
                ..
            }
        )
    });
    // A failure the dump tool explains is shown, with the failed capture itself.
    let excused = tool_failure.iter().map(|(i, _)| *i).chain(
        range
            .iter()
            .enumerate()
            .filter(|(_, e)| tool_failure.is_some() && dump_tool::is_failed_capture(e))
            .map(|(i, _)| i),
    );
    let mut all: Vec<EvidenceRef> = found
        .into_iter()
        .flatten()
        .chain(fatal_after.iter())
        .cloned()
        .chain(correctable.map(|(i, e)| evidence(offset + i, e)))
        .chain(excused.map(|i| evidence(offset + i, &range[i])))
        .chain(listed.map(|i| evidence(offset + i, &range[i])))
        .collect();
    all.sort_by_key(|e| (e.ts_ns, e.index));
    all.dedup_by_key(|e| e.index);
    for e in &mut all {
        e.fatal = is_fatal(&range[e.index - offset]);
    }
    Gathered {
        fatal_after,
        all,
        tool_failure,
    }
}

fn inconclusive(evidence: Vec<EvidenceRef>, missing: Vec<String>, audit: CmdlineAudit) -> Verdict {
    Verdict {
        verdict: VerdictKind::Inconclusive,
        confidence: Confidence::Low,
        summary: format!(
            "Cannot judge: {}.",
            missing.first().map_or("no evidence", String::as_str)
        ),
        reset: None,
        first_fatal: None,
        reset_to_first_fatal_ns: None,
        evidence,
        missing,
        cmdline_audit: audit,
        boots: 0,
        judged_boot: 0,
    }
}

/// The events in judging order: time order within each boot, boots in input order. Evidence
/// indices point into this order. Input already in that order (a fused timeline) is borrowed,
/// not copied: a million-event timeline is hundreds of MiB.
#[must_use]
pub fn ordered(events: &[Event]) -> Cow<'_, [Event]> {
    if in_judging_order(events) {
        return Cow::Borrowed(events);
    }
    let mut sorted: Vec<&Event> = events.iter().collect();
    sort_within_boots(&mut sorted);
    Cow::Owned(sorted.into_iter().cloned().collect())
}

/// [`ordered`] for owned events: sorted in place when they are not in judging order yet.
#[must_use]
pub fn into_ordered(mut events: Vec<Event>) -> Vec<Event> {
    if !in_judging_order(&events) {
        sort_within_boots(&mut events);
    }
    events
}

/// Whether [`sort_within_boots`] would leave `events` as they are: every boot it would sort
/// is sorted already.
fn in_judging_order(events: &[Event]) -> bool {
    let mut start = 0;
    for i in 1..=events.len() {
        if i == events.len() || starts_boot(events, start, i) {
            if !events[start..i].is_sorted_by_key(|e| e.ts_ns) {
                return false;
            }
            start = i;
        }
    }
    true
}

/// Whether event `i` starts a new boot after the one starting at `start`: a `kernel_boot`
/// whose clock went back, after something other than the daemon's own records.
fn starts_boot<E: std::borrow::Borrow<Event>>(events: &[E], start: usize, i: usize) -> bool {
    let (event, before) = (events[i].borrow(), events[i - 1].borrow());
    matches!(event.detail, Detail::KernelBoot { .. })
        && event.ts_ns < before.ts_ns
        && events[start..i]
            .iter()
            .any(|e| e.borrow().source != Source::Observer)
}

/// Sorts by time, but keeps boots in input order (each boot's clock starts near zero).
/// A daemon's timeline starts with its own `observer_started` record and then replays the
/// kernel log from boot, so an earlier `kernel_boot` after only the daemon's records is the same
/// boot, not a new one.
fn sort_within_boots<E: std::borrow::Borrow<Event>>(events: &mut [E]) {
    let mut start = 0;
    for i in 1..=events.len() {
        if i == events.len() || starts_boot(events, start, i) {
            events[start..i].sort_by_key(|e| e.borrow().ts_ns);
            start = i;
        }
    }
}

fn cmdline_of(events: &[Event]) -> Option<&str> {
    events.iter().find_map(|e| match &e.detail {
        Detail::KernelCmdline { cmdline } => Some(cmdline.as_str()),
        _ => None,
    })
}

/// The aggressive reset: the log line, an adoption fallback, or a boot-trace CR0 write that
/// cleared SMMUEN.
fn is_reset(event: &Event) -> bool {
    match &event.detail {
        Detail::SmmuReset { .. } | Detail::SmmuAdoptFallback { .. } => true,
        Detail::SmmuRegWrite {
            register, value, ..
        } => {
            event.source == Source::BootTrace
                && register == "CR0"
                && u64::from_str_radix(value.trim_start_matches("0x"), 16)
                    .is_ok_and(|v| v & smmu::CR0_SMMUEN == 0)
        }
        _ => false,
    }
}

/// Why `event` is a fatal sign, if it is one.
#[must_use]
pub fn fatal_sign(event: &Event) -> Option<&'static str> {
    match &event.detail {
        Detail::Aer {
            severity: AerSeverity::Fatal,
            ..
        } => Some("uncorrectable fatal AER"),
        Detail::Aer {
            severity: AerSeverity::Nonfatal,
            ..
        } => Some("uncorrectable non-fatal AER"),
        Detail::Dpc { .. } => Some("DPC containment"),
        Detail::Ghes {
            severity: Some(s), ..
        } if s == "fatal" => Some("fatal GHES error"),
        Detail::Ghes {
            severity: Some(s), ..
        } if ghes::is_fatal_severity(s) => Some("uncorrected (recoverable) GHES error"),
        Detail::GhesFatal => Some("fatal GHES error"),
        Detail::MemoryError { error_type, .. } if error_type == "fatal" => {
            Some("fatal memory error")
        }
        Detail::MemoryError { error_type, .. } if error_type == "uncorrected" => {
            Some("uncorrected memory error")
        }
        Detail::Serror { .. } => Some("SError"),
        Detail::ExternalAbort { .. } => Some("synchronous external abort"),
        Detail::Panic { .. } => Some("panic"),
        Detail::CaptureOutcome {
            complete: false, ..
        } => Some("failed capture"),
        Detail::PciDevice(d) => pci_config::fatal_sign(d),
        _ => None,
    }
}

fn weaker(a: Confidence, b: Confidence) -> Confidence {
    match (a, b) {
        (Confidence::Low, _) | (_, Confidence::Low) => Confidence::Low,
        (Confidence::Medium, _) | (_, Confidence::Medium) => Confidence::Medium,
        _ => Confidence::High,
    }
}

fn evidence(index: usize, event: &Event) -> EvidenceRef {
    EvidenceRef {
        index,
        ts_ns: event.ts_ns,
        kind: event.detail.kind().to_owned(),
        sources: if event.sources.is_empty() {
            vec![event.source]
        } else {
            event.sources.clone()
        },
        summary: describe(event),
        fatal: fatal_sign(event).is_some(),
    }
}

/// One line describing an event, for evidence lists and reports.
#[must_use]
#[expect(clippy::too_many_lines, reason = "one arm per event kind, flat")]
pub fn describe(event: &Event) -> String {
    if let Some(text) = describe_firmware_and_tools(&event.detail) {
        return text;
    }
    match &event.detail {
        Detail::SmmuReset { smmu, writes } if writes.is_empty() => {
            format!("{smmu}: SMMU found enabled and reset (GBPA=ABORT, SMMUEN cleared)")
        }
        Detail::SmmuReset { smmu, writes } => format!(
            "{smmu}: SMMU found enabled and reset; {} register writes recorded",
            writes.len()
        ),
        Detail::SmmuAdoptFallback { smmu, reason } => {
            format!("{smmu}: adoption refused, full reset ({reason})")
        }
        Detail::SmmuAdopt { smmu } => {
            format!("{smmu}: crashed kernel's stream table adopted, SMMUEN retained")
        }
        Detail::SmmuRegWrite {
            smmu,
            register,
            value,
            meaning,
        } => format!("{smmu}: {register} := {value} ({meaning})"),
        Detail::Aer {
            device,
            severity,
            status,
            firmware_first,
            ..
        } => format!(
            "{device}: {} {}AER{}",
            match severity {
                AerSeverity::Correctable => "correctable",
                AerSeverity::Nonfatal => "uncorrectable non-fatal",
                AerSeverity::Fatal => "uncorrectable fatal",
            },
            match firmware_first {
                Some(ff) => match ff.ghes_record {
                    Some(n) => format!("firmware-first (GHES {{{n}}}) "),
                    None => "firmware-first ".to_owned(),
                },
                None => String::new(),
            },
            status
                .as_ref()
                .map(|s| format!(", status {s}"))
                .unwrap_or_default()
        ),
        Detail::Dpc { device, .. } => {
            format!("{}: DPC containment", device.as_deref().unwrap_or("port"))
        }
        Detail::GhesFatal => "firmware (GHES) fatal error: the kernel panics".into(),
        Detail::Serror { esr, .. } => {
            format!("SError, ESR {}", esr.as_deref().unwrap_or("unknown"))
        }
        Detail::ExternalAbort {
            far,
            esr,
            in_kernel,
            ..
        } => format!(
            "synchronous external abort{} (FAR {}, ESR {})",
            if *in_kernel { " in the kernel" } else { "" },
            far.as_deref().unwrap_or("?"),
            esr.as_deref().unwrap_or("?")
        ),
        Detail::Panic { message } => format!("kernel panic: {message}"),
        Detail::PciDevice(d) => format!(
            "{}: PCI config space ({} snapshot){}{}{}",
            d.bdf,
            d.snapshot,
            if d.errors.is_empty() {
                String::new()
            } else {
                format!(", errors {}", d.errors.join(", "))
            },
            if d.residue.is_empty() {
                String::new()
            } else {
                format!("; residue: {}", d.residue.join("; "))
            },
            if d.new_since_start.is_empty() {
                String::new()
            } else {
                format!("; new since start: {}", d.new_since_start.join(", "))
            },
        ),
        Detail::CaptureOutcome { complete, detail } => {
            format!(
                "dump {}: {detail}",
                if *complete { "complete" } else { "incomplete" }
            )
        }
        Detail::SystemIdentity(id) => format!(
            "system: {}; CPU {}; crashed kernel {}",
            id.machine().unwrap_or_else(|| "unknown machine".into()),
            id.cpu.as_ref().map_or("unknown", |c| c.name.as_str()),
            id.crashed_kernel
                .as_ref()
                .map_or("unknown", |k| k.release.as_str())
        ),
        Detail::PlatformName { source_line, name } => format!("{source_line}: {name}"),
        other => other.kind().replace('_', " "),
    }
}

/// [`describe`] for GHES records, dump tools, the system's name and x86 IOMMU lines.
fn describe_firmware_and_tools(detail: &Detail) -> Option<String> {
    Some(match detail {
        Detail::MemoryError {
            error_type,
            count,
            mc,
            label,
            ..
        } => format!(
            "{} {error_type} memory error{}{}{}",
            count.unwrap_or(1),
            if count.is_some_and(|c| c > 1) {
                "s"
            } else {
                ""
            },
            mc.map(|n| format!(" on MC{n}")).unwrap_or_default(),
            if label.is_empty() {
                String::new()
            } else {
                format!(" ({label})")
            }
        ),
        Detail::Ghes {
            severity,
            record,
            sections,
            ..
        } => {
            let what: Vec<String> = sections
                .iter()
                .map(|s| match s.fields.get("device") {
                    Some(d) => format!("{} on {d}", s.section_type),
                    None => s.section_type.clone(),
                })
                .collect();
            format!(
                "firmware (GHES) error{}, severity {}{}",
                record.map(|n| format!(" {{{n}}}")).unwrap_or_default(),
                severity.as_deref().unwrap_or("unknown"),
                if what.is_empty() {
                    String::new()
                } else {
                    format!(": {}", what.join(", "))
                }
            )
        }
        Detail::DumpTool {
            tool,
            outcome,
            message,
            cause,
        } => format!(
            "{tool} {outcome}: {message}{}",
            cause
                .as_ref()
                .map(|c| format!(" (cause: {c})"))
                .unwrap_or_default()
        ),
        Detail::PlatformName { name, .. } => format!("system: {name}"),
        Detail::IommuTableCopy {
            iommu,
            outcome,
            detail,
        } => format!("{iommu} table hand-over {outcome}: {detail}"),
        Detail::IommuFault { iommu, detail, .. } => format!("{iommu} fault: {detail}"),
        _ => return None,
    })
}

fn smmu_of(event: &Event) -> String {
    match &event.detail {
        Detail::SmmuReset { smmu, .. }
        | Detail::SmmuAdoptFallback { smmu, .. }
        | Detail::SmmuRegWrite { smmu, .. } => smmu.clone(),
        _ => "unknown".into(),
    }
}

/// What limits the evidence of this boot.
fn caveats(range: &[Event], audit: &CmdlineAudit) -> Vec<String> {
    let mut out = Vec::new();
    if range
        .iter()
        .any(|e| matches!(e.detail, Detail::KmsgLost { .. }))
    {
        out.push("the kernel log lost records before they were read (kmsg_lost)".into());
    }
    if range
        .iter()
        .any(|e| matches!(e.detail, Detail::RingBufferDrops { .. }))
    {
        out.push("the eBPF ring buffer overflowed (ring_buffer_drops)".into());
    }
    if audit.cmdline.is_some()
        && !audit.boot_instrumentation
        && !range.iter().any(|e| e.source == Source::BootTrace)
    {
        out.push(
            "no boot trace: the capture kernel ran without `kdump-dma-observer cmdline`".into(),
        );
    }
    out
}

/// `1.234 s`, `12.3 ms`, `45 µs`.
#[must_use]
pub fn human_duration(ns: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    let f = ns as f64;
    if ns >= 1_000_000_000 {
        format!("{:.3} s", f / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.1} ms", f / 1e6)
    } else {
        format!("{} µs", ns / 1000)
    }
}

#[cfg(test)]
mod tests;
