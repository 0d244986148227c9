//! Splitting a timeline into boots, and finding the capture boot to judge.
//!
//! A serial console log often holds the crashed kernel's boot and the capture kernel's boot;
//! `kernel_boot` events (`Booting Linux ...`, `Linux version ...`) separate them.
use crate::event::{Detail, Event};

/// One boot: a range of the (time-ordered) timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    pub start: usize,
    pub end: usize,
    /// How we know it is (not) a capture kernel.
    pub capture: CaptureEvidence,
}

/// What says whether a boot is a kdump capture kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureEvidence {
    /// The daemon saw `/proc/vmcore` (or did not).
    Observer(bool),
    /// A log line: `Reserving ... for elfcorehdr`, `elfcorehdr=` on the command line (x86:
    /// also the early `Command line:`), an x86 IOMMU table hand-over.
    Marker(String),
    /// Nothing says it is one.
    None,
}

impl CaptureEvidence {
    #[must_use]
    pub fn is_capture(&self) -> bool {
        matches!(self, Self::Observer(true) | Self::Marker(_))
    }
}

/// Splits `events` (sorted by time within each boot, boots in order) into boots.
#[must_use]
pub fn split(events: &[Event]) -> Vec<Boot> {
    let mut starts: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.detail, Detail::KernelBoot { .. }))
        .map(|(i, _)| i)
        .collect();
    // `Booting Linux` and `Linux version` both mark one boot: keep the first of a close pair.
    starts.dedup_by(|later, earlier| {
        events[*later].ts_ns.saturating_sub(events[*earlier].ts_ns) < 1_000_000_000
            && !events[*earlier..*later].iter().any(|e| {
                !matches!(
                    e.detail,
                    Detail::KernelBoot { .. } | Detail::KernelCmdline { .. }
                )
            })
    });
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    let mut boots = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(events.len());
        if start < end {
            boots.push(Boot {
                start,
                end,
                capture: capture_evidence(&events[start..end]),
            });
        }
    }
    boots
}

fn capture_evidence(events: &[Event]) -> CaptureEvidence {
    for e in events {
        match &e.detail {
            Detail::ObserverStarted { capture_kernel, .. } => {
                return CaptureEvidence::Observer(*capture_kernel);
            }
            Detail::CaptureKernelMarker { evidence } => {
                return CaptureEvidence::Marker(evidence.clone());
            }
            Detail::IommuTableCopy { detail, .. } => match super::x86_handover::capture_evidence(e)
            {
                Some(true) => {
                    return CaptureEvidence::Marker(format!("x86 IOMMU hand-over: {detail}"));
                }
                // `... but we are not in kdump mode`: a normal boot.
                _ => return CaptureEvidence::None,
            },
            Detail::KernelCmdline { cmdline }
                if cmdline
                    .split_whitespace()
                    .any(|p| p.starts_with("elfcorehdr=")) =>
            {
                return CaptureEvidence::Marker(format!(
                    "elfcorehdr= on the command line: {cmdline}"
                ));
            }
            _ => {}
        }
    }
    CaptureEvidence::None
}

/// The boot to judge: the last capture boot, else the last boot.
#[must_use]
pub fn boot_to_judge(boots: &[Boot]) -> Option<&Boot> {
    boots
        .iter()
        .rev()
        .find(|b| b.capture.is_capture())
        .or_else(|| boots.last())
}
