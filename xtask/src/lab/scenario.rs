//! The scenarios as data: what each one injects, which console phases it expects and their
//! deadlines. The runner (`runner.rs`) and the checks read these; this module imports neither.
use std::time::Duration;

use super::console::{Phase, Wait};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Scenario {
    /// Boot, observe, stop: the SMMU probe from the kernel log backlog.
    Boot,
    /// Crash into the capture kernel, which resets the SMMU.
    Kdump,
    /// As kdump, then AER errors injected into the NIC while the capture kernel runs.
    KdumpAer,
    /// As kdump, then a synchronous external abort (read of unassigned physical memory).
    ExternalAbort,
    /// As kdump, then one fatal AER error, after which the capture kernel itself panics: only
    /// the serial console (with the observer's mirror lines) is left to judge.
    CapturePanic,
    /// As kdump, with a non-fatal and a fatal AER error injected within milliseconds of the
    /// capture kernel's `SMMU currently enabled! Resetting...` line, when real aborts arrive:
    /// the kernel clears the status before userspace, so only config-space residue is left.
    KdumpResetAer,
    /// As kdump, with the capture kernel booted with `pcie_ports=compat` (AER and DPC off, as
    /// RHEL's x86 kdump does), and one uncorrectable error injected after READY capture: no
    /// kernel line or tracepoint sees it, only the device's config space does.
    KdumpCompat,
}

/// AER injections (HMP `pcie_aer_inject_error`), in order, with ~1.5 s between them.
const INJECTIONS: [(&str, &str); 3] = [
    ("correctable", "pcie_aer_inject_error -c vnet1 0x40"),
    ("nonfatal", "pcie_aer_inject_error vnet1 POISON_TLP"),
    ("fatal", "pcie_aer_inject_error vnet1 MALF_TLP"),
];
pub(crate) const BETWEEN_INJECTIONS: Duration = Duration::from_millis(1500);
/// The capture kernel's SMMUv3 driver line at which `kdump-reset-aer` injects.
pub(crate) const RESET_LINE: &str = "SMMU currently enabled! Resetting...";

impl Scenario {
    pub(crate) const ALL: [Self; 7] = [
        Self::Boot,
        Self::Kdump,
        Self::KdumpAer,
        Self::ExternalAbort,
        Self::CapturePanic,
        Self::KdumpResetAer,
        Self::KdumpCompat,
    ];

    #[must_use]
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Boot => "boot",
            Self::Kdump => "kdump",
            Self::KdumpAer => "kdump-aer",
            Self::ExternalAbort => "external-abort",
            Self::CapturePanic => "capture-panic",
            Self::KdumpResetAer => "kdump-reset-aer",
            Self::KdumpCompat => "kdump-compat",
        }
    }

    /// The AER errors injected once the capture kernel's observer is ready.
    pub(crate) fn injections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::KdumpAer => &INJECTIONS,
            Self::CapturePanic | Self::KdumpCompat => &INJECTIONS[2..],
            Self::Boot | Self::Kdump | Self::ExternalAbort | Self::KdumpResetAer => &[],
        }
    }

    /// The AER errors injected, back to back, as soon as the capture kernel's console shows
    /// the SMMU reset line.
    pub(crate) fn reset_injections(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::KdumpResetAer => &INJECTIONS[1..],
            _ => &[],
        }
    }

    /// Whether it crashes into a capture kernel.
    #[must_use]
    pub(crate) fn is_kdump(self) -> bool {
        self != Self::Boot
    }

    /// The console phases, each with its deadline (multiplied by `scale`).
    #[must_use]
    pub(crate) fn phases(self, scale: f64) -> Vec<Phase> {
        let p = |name, missed, wait, secs| Phase::new(name, missed, wait, secs, scale);
        let mut phases = vec![
            p(
                "first kernel boots",
                "no kernel started (no `Booting Linux` on the console)",
                Wait::Boot(1),
                30.0,
            ),
            p(
                "first kernel reaches /init",
                "first kernel did not reach /init",
                Wait::Marker("INIT first"),
                60.0,
            ),
            p(
                "first observer ready",
                "first kernel's observer did not report ready",
                Wait::Marker("READY first"),
                90.0,
            ),
        ];
        if self.is_kdump() {
            phases.extend([
                p(
                    "capture kernel loaded, first kernel crashed",
                    "first kernel did not load the capture kernel and crash",
                    Wait::Panic("sysrq triggered crash"),
                    90.0,
                ),
                p(
                    "capture kernel boots",
                    "capture kernel did not start after the crash",
                    Wait::Boot(2),
                    30.0,
                ),
                p(
                    "capture kernel reaches /init",
                    "capture kernel did not reach /init",
                    Wait::Marker("INIT capture"),
                    60.0,
                ),
                p(
                    "capture observer ready",
                    "capture kernel did not report ready",
                    Wait::Marker("READY capture"),
                    90.0,
                ),
            ]);
        }
        if self == Self::CapturePanic {
            // No DONE: the capture kernel panics (panic=-1 on its command line, and QEMU runs
            // with -no-reboot, so QEMU ends too; the harness quits it if not).
            phases.extend([
                p(
                    "fatal AER in the capture timeline and kernel log",
                    "the capture kernel did not see the fatal AER error",
                    Wait::Marker("FATAL-AER-SEEN"),
                    60.0,
                ),
                p(
                    "capture kernel panics",
                    "the capture kernel did not panic after the fatal AER error",
                    Wait::Panic("sysrq triggered crash"),
                    30.0,
                ),
            ]);
            return phases;
        }
        phases.push(p(
            "guest done",
            "guest did not report DONE",
            Wait::Marker("DONE"),
            if matches!(self, Self::KdumpAer | Self::KdumpCompat) {
                90.0
            } else {
                60.0
            },
        ));
        phases
    }

    /// The whole run's deadline.
    #[must_use]
    pub(crate) fn deadline(self, scale: f64) -> Duration {
        Duration::from_secs_f64(if self.is_kdump() { 360.0 } else { 180.0 } * scale)
    }

    /// Kernel panics the scenario causes itself.
    pub(crate) fn expected_panics(self) -> u32 {
        u32::from(self.is_kdump()) + u32::from(self == Self::CapturePanic)
    }
}
