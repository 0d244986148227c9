//! The live verdict: a pipeline stage between the timeline and the outputs. It keeps the
//! evidence seen so far (bounded) and judges again whenever evidence arrives; outputs such as
//! the metrics read its result and never judge themselves.
use super::{Verdict, judge};
use crate::event::{Detail, Event, Source};

/// Evidence events kept for judging (the first ones: a reset and its aftermath come early).
const MAX_RETAINED: usize = 10_000;

/// The verdict on the timeline so far.
#[derive(Debug)]
pub struct LiveVerdict {
    retained: Vec<Event>,
    current: Verdict,
}

impl LiveVerdict {
    /// The verdict before any event, for a daemon that knows whether it runs in a capture
    /// kernel.
    #[must_use]
    pub fn new(capture_kernel: bool) -> Self {
        let started = Event::new(
            0,
            Source::Observer,
            Detail::ObserverStarted {
                version: String::new(),
                capture_kernel,
                kernel_release: String::new(),
                hostname: String::new(),
                probes: Vec::new(),
            },
        );
        let retained = vec![started];
        let current = judge(&retained);
        Self { retained, current }
    }

    /// Takes a batch of timeline events; `true` when evidence arrived and the verdict was
    /// judged again (it may be unchanged).
    pub fn observe(&mut self, batch: &[Event]) -> bool {
        let mut evidence = false;
        for e in batch.iter().filter(|e| e.detail.is_evidence()) {
            evidence = true;
            if matches!(e.detail, Detail::ObserverStarted { .. }) {
                // The daemon's own start record replaces the placeholder.
                self.retained
                    .retain(|r| !matches!(r.detail, Detail::ObserverStarted { .. }));
            }
            if self.retained.len() < MAX_RETAINED {
                self.retained.push(e.clone());
            }
        }
        if evidence {
            self.current = judge(&self.retained);
        }
        evidence
    }

    /// The verdict on what was observed so far.
    #[must_use]
    pub fn current(&self) -> &Verdict {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{AerSeverity, RegWrite},
        verdict::VerdictKind,
    };

    fn reset(ts_ns: u64) -> Event {
        Event::new(
            ts_ns,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: "9050000.smmuv3".into(),
                writes: Vec::<RegWrite>::new(),
            },
        )
    }

    fn fatal_aer(ts_ns: u64) -> Event {
        Event::new(
            ts_ns,
            Source::Ebpf,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: None,
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            },
        )
    }

    #[test]
    fn follows_the_capture_as_evidence_arrives() {
        let mut live = LiveVerdict::new(true);
        assert_eq!(live.current().verdict, VerdictKind::Inconclusive);
        assert!(live.observe(&[reset(1_000_000_000)]));
        assert_eq!(live.current().verdict, VerdictKind::ResetNoFatal);
        assert!(live.observe(&[fatal_aer(2_000_000_000)]));
        assert_eq!(live.current().verdict, VerdictKind::Flagged);
        assert_eq!(live.current().reset_to_first_fatal_ns, Some(1_000_000_000));
    }

    #[test]
    fn bookkeeping_does_not_rejudge_and_a_normal_kernel_is_not_judged_as_capture() {
        let mut live = LiveVerdict::new(false);
        let drops = Event::new(
            5,
            Source::Observer,
            Detail::RingBufferDrops {
                dropped_total: 1,
                new: 1,
            },
        );
        assert!(!live.observe(&[drops]));
        live.observe(&[reset(1), fatal_aer(2)]);
        assert_eq!(live.current().verdict, VerdictKind::NotCaptureKernel);
    }

    #[test]
    fn config_space_residue_behind_a_reset_smmu_flags_the_capture() {
        let mut live = LiveVerdict::new(true);
        let residue = Event::new(
            5_000_000_000,
            Source::Observer,
            Detail::PciDevice(Box::new(crate::event::PciDevice {
                snapshot: "start".into(),
                bdf: "0000:02:00.0".into(),
                smmu: Some("9050000.smmuv3".into()),
                residue: vec!["First Error Pointer = 18 (MalfTLP)".into()],
                uncorrectable_residue: true,
                ..crate::event::PciDevice::default()
            })),
        );
        live.observe(&[reset(1_000_000_000), residue]);
        assert_eq!(live.current().verdict, VerdictKind::Flagged);
    }

    #[test]
    fn an_x86_table_copy_makes_the_live_verdict_preserved() {
        // What the 6.12 amd64 capture kernel printed in the x86 lab (kdump-aer --arch x86_64).
        let copy = |ts_ns, iommu: &str, outcome: &str| {
            Event::new(
                ts_ns,
                Source::Kmsg,
                Detail::IommuTableCopy {
                    iommu: iommu.into(),
                    outcome: outcome.into(),
                    detail: String::new(),
                },
            )
        };
        let mut live = LiveVerdict::new(true);
        assert!(live.observe(&[copy(248_220_660, "dmar-ir", "copied")]));
        assert_ne!(live.current().verdict, VerdictKind::Preserved);
        live.observe(&[
            copy(1_714_458_660, "dmar", "trying"),
            copy(1_715_410_660, "dmar", "copied"),
        ]);
        assert_eq!(live.current().verdict, VerdictKind::Preserved);
    }
}
