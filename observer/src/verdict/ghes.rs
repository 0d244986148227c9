//! Firmware-first rules (docs/verdict.md, "GHES severities"):
//! - a GHES record of severity `fatal` or `recoverable` (uncorrected, the platform survived
//!   it, as native non-fatal AER) is a fatal sign; `corrected` and `info` are not;
//! - the AER lines the kernel prints for a record (`aer` with `firmware_first.ghes_record`)
//!   are the same error: when their record is in the boot, only the record counts.
use std::{collections::HashSet, hash::BuildHasher};

use crate::event::{Detail, Event};

/// Whether a GHES severity word is a fatal sign.
#[must_use]
pub fn is_fatal_severity(severity: &str) -> bool {
    matches!(severity, "fatal" | "recoverable")
}

/// The `{N}` of the GHES records in `events` that are fatal signs.
#[must_use]
pub fn fatal_records(events: &[Event]) -> HashSet<u32> {
    events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Ghes {
                severity: Some(s),
                record: Some(n),
                ..
            } if is_fatal_severity(s) => Some(*n),
            _ => None,
        })
        .collect()
}

/// Whether `event` is a firmware-first AER whose GHES record already counts.
#[must_use]
pub fn counted_by_record<S: BuildHasher>(event: &Event, records: &HashSet<u32, S>) -> bool {
    matches!(&event.detail, Detail::Aer { firmware_first: Some(ff), .. }
        if ff.ghes_record.is_some_and(|n| records.contains(&n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        assert!(is_fatal_severity("fatal"));
        assert!(is_fatal_severity("recoverable"));
        assert!(!is_fatal_severity("corrected"));
        assert!(!is_fatal_severity("info"));
    }
}
