//! Which events are the same event, and how two sightings combine.
use crate::event::{AerSeverity, Detail, Event};

/// What makes two sightings the same event (besides being close in time).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    Aer(String, AerSeverity),
    SmmuReset(String),
    SmmuGerror,
    Dpc,
    GhesFatal,
    /// A firmware record, by the type of its first section (`ARM processor error`,
    /// `unknown, <guid>`, ...): the log's record and the `ras:*` tracepoint of that section.
    GhesSection(String),
    /// A memory-controller error, corrected or not (the log's `CE` / `UE`).
    MemoryError {
        corrected: bool,
    },
    Serror,
    ExternalAbort,
    Panic,
}

/// The identity of an event that other sources may also report; `None` for events only one
/// source can produce.
#[must_use]
pub fn identity(detail: &Detail) -> Option<Identity> {
    Some(match detail {
        Detail::Aer {
            device, severity, ..
        } => Identity::Aer(device.clone(), *severity),
        Detail::SmmuReset { smmu, .. } => Identity::SmmuReset(smmu.clone()),
        Detail::SmmuGerror { .. } => Identity::SmmuGerror,
        Detail::Dpc { .. } => Identity::Dpc,
        Detail::GhesFatal => Identity::GhesFatal,
        Detail::Ghes { sections, .. } => {
            Identity::GhesSection(sections.first()?.section_type.to_ascii_lowercase())
        }
        Detail::MemoryError { error_type, .. } => Identity::MemoryError {
            corrected: error_type == "corrected",
        },
        Detail::Serror { .. } => Identity::Serror,
        Detail::ExternalAbort { .. } => Identity::ExternalAbort,
        Detail::Panic { .. } => Identity::Panic,
        _ => return None,
    })
}

/// Folds `other` (a later-arriving sighting) into `held`: earliest timestamp, every source,
/// and every field either sighting knows.
pub fn merge(held: &mut Event, other: Event) {
    if held.sources.is_empty() {
        held.sources.push(held.source);
    }
    if !held.sources.contains(&other.source) {
        held.sources.push(other.source);
    }
    held.sources.sort();
    if other.ts_ns < held.ts_ns {
        held.ts_ns = other.ts_ns;
        held.source = other.source;
    }
    held.cpu = held.cpu.or(other.cpu);
    // Prefer the kernel log line as the evidence text: it is what a human recognises.
    if held.raw.is_none() || other.source == crate::event::Source::Kmsg {
        held.raw = other.raw.or(held.raw.take());
    }
    merge_detail(&mut held.detail, other.detail);
}

fn fill<T>(slot: &mut Option<T>, other: Option<T>) {
    if slot.is_none() {
        *slot = other;
    }
}

fn fill_str(slot: &mut String, other: String) {
    if slot.is_empty() {
        *slot = other;
    }
}

fn merge_detail(held: &mut Detail, other: Detail) {
    let Some(other) = merge_ras(held, other) else {
        return;
    };
    match (held, other) {
        (
            Detail::Aer {
                status,
                error_type,
                reporter,
                errors,
                ..
            },
            Detail::Aer {
                status: s2,
                error_type: t2,
                reporter: r2,
                errors: e2,
                ..
            },
        ) => {
            fill(status, s2);
            fill(error_type, t2);
            fill(reporter, r2);
            if errors.is_empty() {
                *errors = e2;
            }
        }
        (Detail::SmmuReset { writes, .. }, Detail::SmmuReset { writes: w2, .. })
            if writes.is_empty() =>
        {
            *writes = w2;
        }
        (
            Detail::SmmuGerror { smmu, gerror },
            Detail::SmmuGerror {
                smmu: s2,
                gerror: g2,
            },
        ) => {
            fill(smmu, s2);
            fill(gerror, g2);
        }
        (
            Detail::Dpc {
                device,
                status,
                detail,
            },
            Detail::Dpc {
                device: d2,
                status: s2,
                detail: t2,
            },
        ) => {
            fill(device, d2);
            fill(status, s2);
            fill_str(detail, t2);
        }
        (
            Detail::Serror { esr, fatal, detail },
            Detail::Serror {
                esr: e2,
                fatal: f2,
                detail: t2,
            },
        ) => {
            fill(esr, e2);
            *fatal |= f2;
            fill_str(detail, t2);
        }
        (
            Detail::ExternalAbort {
                far,
                esr,
                in_kernel,
                detail,
            },
            Detail::ExternalAbort {
                far: f2,
                esr: e2,
                in_kernel: k2,
                detail: t2,
            },
        ) => {
            fill(far, f2);
            fill(esr, e2);
            *in_kernel |= k2;
            fill_str(detail, t2);
        }
        (Detail::Panic { message }, Detail::Panic { message: m2 })
            if message.is_empty() || m2.len() > message.len() =>
        {
            *message = m2;
        }
        _ => {}
    }
}

/// Merges firmware and memory-controller records; gives `other` back for any other pair.
fn merge_ras(held: &mut Detail, other: Detail) -> Option<Detail> {
    match (held, other) {
        (
            Detail::Ghes {
                severity,
                detail,
                record,
                source_id,
                sections,
            },
            Detail::Ghes {
                severity: s2,
                detail: d2,
                record: r2,
                source_id: i2,
                sections: sections2,
            },
        ) => {
            fill(severity, s2);
            fill_str(detail, d2);
            fill(record, r2);
            fill(source_id, i2);
            merge_sections(sections, sections2);
        }
        (
            Detail::MemoryError {
                error_type,
                count,
                mc,
                label,
                address,
                detail,
            },
            Detail::MemoryError {
                error_type: t2,
                count: c2,
                mc: m2,
                label: l2,
                address: a2,
                detail: d2,
            },
        ) => {
            // The tracepoint tells `fatal` and `deferred` apart; the log says `UE` for both.
            if error_type == "uncorrected" && t2 != "corrected" {
                *error_type = t2;
            }
            fill(count, c2);
            fill(mc, m2);
            fill_str(label, l2);
            fill(address, a2);
            fill_str(detail, d2);
        }
        (_, other) => return Some(other),
    }
    None
}

/// The log prints a record's sections in full; a tracepoint adds one section's fields the log
/// did not print (or is the only sighting).
fn merge_sections(
    held: &mut Vec<crate::event::CperSection>,
    other: Vec<crate::event::CperSection>,
) {
    let mut other = other.into_iter();
    let Some(first) = held.first_mut() else {
        held.extend(other);
        return;
    };
    if let Some(o) = other.next() {
        fill(&mut first.severity, o.severity);
        for (name, value) in o.fields {
            first.fields.entry(name).or_insert(value);
        }
    }
}
