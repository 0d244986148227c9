//! The timeline: every source's events on one clock, with duplicates merged.
//!
//! Two sources often see the same thing: the kernel log prints an AER error that the
//! `ras:aer_event` probe also records; the boot trace holds the CR0 writes of the reset that the
//! log announces. [`Fusion`] merges such pairs into one event whose `sources` lists every
//! witness, and [`smmu_reset::attach_writes`] folds the boot-trace register writes into the reset
//! they belong to.
//!
//! One clock: the kernel log is stamped by the printk clock, the boot trace and eBPF by
//! `CLOCK_MONOTONIC`. A [`Fusion`] given the measured offset
//! ([`crate::kernel::clock_offset`]) moves every kernel-log sighting onto `CLOCK_MONOTONIC`
//! before it meets the others ([`one_clock`]).
mod identity;
pub mod one_clock;
pub mod smmu_reset;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use identity::{Identity, identity, merge};

use crate::{
    event::{Event, Source},
    kernel::clock_offset::ClockOffset,
};

/// Two sightings of one event by different sources are at most this far apart. Kernel-log
/// timestamps come from the printk clock, eBPF and boot-trace ones from `CLOCK_MONOTONIC`.
/// With the measured offset applied ([`Fusion::with_clock_offset`]) sightings agree to within
/// milliseconds; the window stays at 1 s for inputs without it (a recorded timeline written
/// before the offset was measured, or a kernel where `/dev/kmsg` could not be written), where
/// the two clocks were seen up to 300 ms apart in QEMU capture kernels.
pub const MATCH_WINDOW_NS: u64 = 1_000_000_000;
/// How long a mergeable event waits for its twin from another source before it is released.
pub const HOLD_NS: u64 = 300_000_000;

/// The held sightings of one identity.
#[derive(Debug, Default)]
struct Held {
    /// (timestamp, arrival number), in time order.
    by_ts: BTreeSet<(u64, u64)>,
    /// How many are held per first source: a sighting can only merge with another source's,
    /// so a long single-source log never searches at all.
    per_source: HashMap<Source, usize>,
}

impl Held {
    fn other_sources_present(&self, source: Source) -> bool {
        self.per_source.iter().any(|(s, n)| *s != source && *n > 0)
    }
}

/// Streaming de-duplication. Events that can have a twin ([`identity`] is `Some`) are held for
/// [`HOLD_NS`] after they arrive (backlog and live alike); everything else passes straight
/// through, so the high-rate path costs nothing.
#[derive(Debug, Default)]
pub struct Fusion {
    /// Held events by arrival number, with their arrival time.
    held: BTreeMap<u64, (u64, Event)>,
    /// Held events by identity.
    index: HashMap<Identity, Held>,
    arrivals: u64,
    merged: u64,
    /// `CLOCK_MONOTONIC` minus the printk clock, when measured.
    clock: Option<ClockOffset>,
}

impl Fusion {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A fusion that moves kernel-log sightings onto `CLOCK_MONOTONIC` with `offset` as they
    /// arrive ([`one_clock::onto_monotonic`]).
    #[must_use]
    pub fn with_clock_offset(offset: ClockOffset) -> Self {
        Self {
            clock: Some(offset),
            ..Self::default()
        }
    }

    /// Takes one event arriving at `now_ns`; returns it at once if it cannot have a twin.
    pub fn push(&mut self, mut event: Event, now_ns: u64) -> Option<Event> {
        if let Some(offset) = &self.clock {
            one_clock::onto_monotonic(&mut event, offset);
        }
        let Some(id) = identity(&event.detail) else {
            return Some(event);
        };
        if let Some(key) = self.index.get(&id).and_then(|held| {
            if !held.other_sources_present(event.source) {
                return None;
            }
            nearest_unwitnessed(&held.by_ts, event.ts_ns, |arrival| {
                self.held
                    .get(&arrival)
                    .is_some_and(|(_, h)| !witnessed_by(h, &event))
            })
        }) {
            let (_, held) = self.held.get_mut(&key).expect("indexed events are held");
            merge(held, event);
            self.merged += 1;
            return None;
        }
        self.arrivals += 1;
        let held = self.index.entry(id).or_default();
        held.by_ts.insert((event.ts_ns, self.arrivals));
        *held.per_source.entry(event.source).or_default() += 1;
        self.held.insert(self.arrivals, (now_ns, event));
        None
    }

    /// Releases, in arrival order, the events held for at least [`HOLD_NS`] by `now_ns`.
    pub fn release(&mut self, now_ns: u64) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(entry) = self.held.first_entry() {
            if entry.get().0.saturating_add(HOLD_NS) > now_ns {
                break;
            }
            let (key, (_, event)) = entry.remove_entry();
            self.unindex(&event, key);
            out.push(event);
        }
        out
    }

    /// Releases everything (at shutdown, or at the end of a recorded input).
    pub fn finish(&mut self) -> Vec<Event> {
        self.index.clear();
        std::mem::take(&mut self.held)
            .into_values()
            .map(|(_, event)| event)
            .collect()
    }

    /// Whether events are waiting for a possible twin.
    #[must_use]
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// How many sightings were merged into an earlier one.
    #[must_use]
    pub fn merged(&self) -> u64 {
        self.merged
    }

    fn unindex(&mut self, event: &Event, key: u64) {
        if let Some(id) = identity(&event.detail)
            && let Some(keys) = self.index.get_mut(&id)
        {
            keys.by_ts.remove(&(event.ts_ns, key));
            if let Some(n) = keys.per_source.get_mut(&event.source) {
                *n = n.saturating_sub(1);
            }
            if keys.by_ts.is_empty() {
                self.index.remove(&id);
            }
        }
    }
}

/// At most this many held sightings are examined per new one: in a storm of identical events
/// the twin from another source is among the nearest few, and the cost stays bounded.
const MAX_CANDIDATES: usize = 64;

/// The arrival number of the held sighting nearest in time to `ts` (within
/// [`MATCH_WINDOW_NS`]) that `eligible` accepts.
fn nearest_unwitnessed(
    held: &BTreeSet<(u64, u64)>,
    ts: u64,
    eligible: impl Fn(u64) -> bool,
) -> Option<u64> {
    let mut before = held.range(..(ts, u64::MAX)).rev().peekable();
    let mut after = held.range((ts, u64::MAX)..).peekable();
    for _ in 0..MAX_CANDIDATES {
        let next = match (before.peek(), after.peek()) {
            (Some(b), Some(a)) if ts - b.0 <= a.0 - ts => before.next(),
            (Some(_), None) => before.next(),
            (_, Some(_)) => after.next(),
            (None, None) => None,
        };
        let &(when, arrival) = next?;
        if when.abs_diff(ts) > MATCH_WINDOW_NS {
            // Candidates only get farther from here on, on this side; the other side may
            // still hold one, so keep looking while it does.
            if before.peek().is_none_or(|b| ts - b.0 > MATCH_WINDOW_NS)
                && after.peek().is_none_or(|a| a.0 - ts > MATCH_WINDOW_NS)
            {
                return None;
            }
            continue;
        }
        if eligible(arrival) {
            return Some(arrival);
        }
    }
    None
}

/// Whether `held` already has a sighting from `event`'s source.
fn witnessed_by(held: &Event, event: &Event) -> bool {
    held.source == event.source || held.sources.contains(&event.source)
}

/// De-duplicates a whole recorded input at once (reports, tests): push everything, finish.
#[must_use]
pub fn fuse_all(events: impl IntoIterator<Item = Event>) -> Vec<Event> {
    let mut fusion = Fusion::new();
    let mut out: Vec<Event> = events
        .into_iter()
        .filter_map(|e| fusion.push(e, 0))
        .collect();
    out.extend(fusion.finish());
    out.sort_by_key(|e| e.ts_ns);
    out
}

/// [`fuse_all`] for an input that may hold several boots (a console log with the crashed
/// and the capture kernel): each boot, delimited by `kernel_boot` events in input order, is
/// fused and sorted on its own, and boots keep their order. Each boot's clock starts at zero,
/// so sightings are never matched across boots.
#[must_use]
pub fn fuse_boots(mut events: Vec<Event>) -> Vec<Event> {
    // Split at each boot without moving events one by one: a timeline can hold millions.
    let starts: Vec<usize> = (1..events.len())
        .filter(|&i| matches!(events[i].detail, crate::event::Detail::KernelBoot { .. }))
        .collect();
    let mut boots = Vec::with_capacity(starts.len() + 1);
    for &start in starts.iter().rev() {
        boots.push(events.split_off(start));
    }
    boots.push(events);
    let mut out: Vec<Event> = Vec::new();
    for boot in boots.into_iter().rev() {
        let fused = fuse_all(boot);
        if out.is_empty() {
            out = fused;
        } else {
            out.extend(fused);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Detail, Source};

    #[test]
    fn docs_state_the_merge_window_and_the_hold_time() {
        let doc = include_str!("../../../docs/timeline.md");
        let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        let window = format!(
            "at most {} s apart (`MATCH_WINDOW_NS`)",
            MATCH_WINDOW_NS / 1_000_000_000
        );
        let hold = format!("{} ms for its twin (`HOLD_NS`)", HOLD_NS / 1_000_000);
        assert!(doc.contains(&window), "docs/timeline.md must say: {window}");
        assert!(doc.contains(&hold), "docs/timeline.md must say: {hold}");
    }

    fn aer(ts_ms: u64, source: Source, severity: AerSeverity, status: Option<&str>) -> Event {
        Event::new(
            ts_ms * 1_000_000,
            source,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity,
                status: status.map(Into::into),
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            },
        )
    }

    #[test]
    fn one_error_seen_by_three_sources_is_one_event() {
        let out = fuse_all([
            aer(4431, Source::Ebpf, AerSeverity::Correctable, Some("0x40")),
            aer(4428, Source::Kmsg, AerSeverity::Correctable, None),
            aer(4431, Source::BootTrace, AerSeverity::Correctable, None),
        ]);
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(
            e.ts_ns, 4_428_000_000,
            "earliest sighting wins the timestamp"
        );
        assert_eq!(e.sources, [Source::BootTrace, Source::Kmsg, Source::Ebpf]);
        let Detail::Aer { status, .. } = &e.detail else {
            panic!()
        };
        assert_eq!(
            status.as_deref(),
            Some("0x40"),
            "fields are filled from every sighting"
        );
    }

    #[test]
    fn firmware_sections_merge_with_their_log_records() {
        // The log's record {3} (ARM section, MIDR printed) and the `ras:arm_event` sightings
        // from the boot trace and eBPF (MPIDR and severity) are one firmware error.
        let log = Event::new(
            2_000_000_000,
            Source::Kmsg,
            Detail::Ghes {
                severity: Some("recoverable".into()),
                detail: String::new(),
                record: Some(3),
                source_id: Some("4".into()),
                sections: vec![crate::event::CperSection {
                    section_type: "ARM processor error".into(),
                    severity: Some("recoverable".into()),
                    fields: [("midr".to_owned(), "0x00000000410fd0c1".to_owned())].into(),
                }],
            },
        );
        let tp = |ts, source| {
            Event::new(
                ts,
                source,
                crate::ras_records::arm_event(0x8108_0000, 0x410f_d0c1, Some("recoverable")),
            )
        };
        let memory = |ts, source, error_type: &str, mc| {
            Event::new(
                ts,
                source,
                Detail::MemoryError {
                    error_type: error_type.into(),
                    count: Some(1),
                    mc,
                    label: "unknown memory".into(),
                    address: None,
                    detail: String::new(),
                },
            )
        };
        let out = fuse_all([
            tp(1_990_000_000, Source::BootTrace),
            log,
            tp(1_995_000_000, Source::Ebpf),
            memory(3_000_000_000, Source::Kmsg, "uncorrected", Some(0)),
            memory(3_001_000_000, Source::Ebpf, "fatal", None),
            // A corrected error nearby is another error.
            memory(3_002_000_000, Source::Ebpf, "corrected", None),
        ]);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(
            out[0].sources,
            [Source::BootTrace, Source::Kmsg, Source::Ebpf]
        );
        let Detail::Ghes {
            record, sections, ..
        } = &out[0].detail
        else {
            panic!()
        };
        assert_eq!(*record, Some(3), "the log's record number is kept");
        assert_eq!(sections[0].fields["mpidr"], "0x0000000081080000");
        let Detail::MemoryError { error_type, mc, .. } = &out[1].detail else {
            panic!()
        };
        assert_eq!(
            (error_type.as_str(), *mc),
            ("fatal", Some(0)),
            "the tracepoint's type and the log's controller"
        );
        assert!(
            matches!(&out[2].detail, Detail::MemoryError { error_type, .. } if error_type == "corrected")
        );
    }

    #[test]
    fn boots_are_fused_apart_and_keep_their_order() {
        let boot = |ms| Event::new(ms, Source::Console, Detail::KernelBoot { version: None });
        let out = fuse_boots(vec![
            boot(0),
            aer(1000, Source::Console, AerSeverity::Fatal, None),
            boot(0),
            aer(1001, Source::Kmsg, AerSeverity::Fatal, None),
            aer(500, Source::Console, AerSeverity::Correctable, None),
        ]);
        let kinds: Vec<_> = out
            .iter()
            .map(|e| (e.detail.kind(), e.ts_ns / 1_000_000))
            .collect();
        assert_eq!(
            kinds,
            [
                ("kernel_boot", 0),
                ("aer", 1000),
                ("kernel_boot", 0),
                ("aer", 500),
                ("aer", 1001)
            ],
            "the two fatal errors at ~1 s are in different boots and stay two events"
        );
    }

    #[test]
    fn a_long_single_source_log_fuses_in_linear_time() {
        // 200k identical errors from one source: nothing can merge, and it must not take
        // quadratic time to find that out.
        let started = std::time::Instant::now();
        let out =
            fuse_all((0..200_000).map(|i| aer(i, Source::Console, AerSeverity::Correctable, None)));
        assert_eq!(out.len(), 200_000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_storm_of_identical_errors_stays_a_storm() {
        // Two errors 100 ms apart, each seen by kmsg and eBPF: two events, not one, not four.
        let out = fuse_all([
            aer(1000, Source::Kmsg, AerSeverity::Fatal, None),
            aer(1001, Source::Ebpf, AerSeverity::Fatal, None),
            aer(1100, Source::Kmsg, AerSeverity::Fatal, None),
            aer(1101, Source::Ebpf, AerSeverity::Fatal, None),
        ]);
        assert_eq!(out.len(), 2);
        assert!(
            out.iter()
                .all(|e| e.sources == [Source::Kmsg, Source::Ebpf])
        );
        assert_eq!(out[1].ts_ns, 1_100_000_000);
    }

    #[test]
    fn different_severity_or_far_apart_do_not_merge() {
        let out = fuse_all([
            aer(1000, Source::Kmsg, AerSeverity::Fatal, None),
            aer(1000, Source::Ebpf, AerSeverity::Nonfatal, None),
            aer(2500, Source::Ebpf, AerSeverity::Fatal, None),
        ]);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|e| e.sources.is_empty()));
    }

    #[test]
    fn resets_of_several_smmus_stay_apart_and_each_merges_with_its_own_twin() {
        let reset = |ms: u64, source: Source, smmu: &str| {
            Event::new(
                ms * 1_000_000,
                source,
                Detail::SmmuReset {
                    smmu: smmu.into(),
                    writes: Vec::new(),
                },
            )
        };
        // Twelve instances reset within 12 ms, each seen by the boot trace and the kernel log.
        let names: Vec<String> = (0..12).map(|n| format!("arm-smmu-v3.{n}.auto")).collect();
        let mut events = Vec::new();
        for (i, name) in names.iter().enumerate() {
            events.push(reset(2000 + i as u64, Source::BootTrace, name));
        }
        for (i, name) in names.iter().enumerate().rev() {
            events.push(reset(2000 + i as u64, Source::Kmsg, name));
        }
        let out = fuse_all(events);
        assert_eq!(out.len(), 12, "{out:#?}");
        for (i, e) in out.iter().enumerate() {
            let Detail::SmmuReset { smmu, .. } = &e.detail else {
                panic!("{e:?}")
            };
            assert_eq!(smmu, &names[i]);
            assert_eq!(e.sources, [Source::BootTrace, Source::Kmsg], "{smmu}");
        }
    }

    #[test]
    fn events_without_identity_pass_through_and_held_ones_are_released_in_time() {
        let mut f = Fusion::new();
        let st = Event::new(5, Source::Ebpf, Detail::SelfTest { seq: 1, tid: 1 });
        assert!(f.push(st, 0).is_some());
        // An old backlog event arriving now is held from its arrival, not its timestamp.
        let backlog = aer(1000, Source::Kmsg, AerSeverity::Fatal, None);
        assert!(f.push(backlog, 7_000_000_000).is_none());
        assert!(f.release(7_200_000_000).is_empty(), "still within the hold");
        // Its live twin arrives late but within the hold: merged.
        let live = aer(1001, Source::Ebpf, AerSeverity::Fatal, None);
        assert!(f.push(live, 7_250_000_000).is_none());
        let out = f.release(7_300_000_000);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].sources, [Source::Kmsg, Source::Ebpf]);
        assert!(!f.is_holding());
        let found = f.finish();
        assert!(found.is_empty(), "{found:?}");
    }
}
