//! Rules on PCI config-space evidence (`pci_device`, `pci_snapshot`): what the devices' own
//! error registers say when no log line or tracepoint did.
//!
//! - An uncorrectable error latched in a device behind an IOMMU (unmasked AER uncorrectable
//!   status, Device Status Fatal/NonFatal, a root port that received ERR_FATAL/NONFATAL, DPC
//!   triggered) is a fatal sign; so is residue of one (First Error Pointer or Error Source
//!   Identification naming an uncorrectable error whose status was cleared). Only the start
//!   snapshot's report and reports of bits new since the start count, so one latched bit is one
//!   sign, not one per scan.
//! - Its confidence is its own: bits that appeared during the capture are as good as a log
//!   line; bits already latched at start are `medium` (they may predate the reset); residue alone
//!   is `low` (it proves an error was logged and cleared, not when).
//! - What hid errors (AER/DPC off, no AER capability, no snapshot, errors wiped before any
//!   reader) goes to `missing`.
#![allow(
    clippy::doc_markdown,
    reason = "PCI register and message names (PCIe, ERR_COR, ERR_FATAL) are prose here, not code"
)]
use crate::{
    event::{Detail, Event, PciDevice, Source},
    kernel::cmdline_rules,
};

use super::{CmdlineAudit, Confidence};

/// Why this `pci_device` report is a fatal sign, if it is one.
#[must_use]
pub fn fatal_sign(device: &PciDevice) -> Option<&'static str> {
    device.smmu.as_ref()?;
    let counted = device.snapshot == "start" || !device.new_since_start.is_empty();
    if !counted {
        return None;
    }
    if device.uncorrectable {
        Some("uncorrectable error latched in config space")
    } else if device.uncorrectable_residue {
        Some("uncorrectable error cleared before userspace, residue in config space")
    } else {
        None
    }
}

/// How sure a verdict resting only on these config-space signs can be.
#[must_use]
pub fn confidence<'a>(signs: impl IntoIterator<Item = &'a Event>) -> Option<Confidence> {
    let mut best: Option<Confidence> = None;
    for event in signs {
        let Detail::PciDevice(d) = &event.detail else {
            return None; // another kind of evidence: the usual rule decides
        };
        let c = if d.uncorrectable && !d.new_since_start.is_empty() {
            Confidence::High
        } else if d.uncorrectable {
            Confidence::Medium
        } else {
            Confidence::Low
        };
        best = Some(match (best, c) {
            (Some(Confidence::High), _) | (_, Confidence::High) => Confidence::High,
            (Some(Confidence::Medium), _) | (_, Confidence::Medium) => Confidence::Medium,
            _ => Confidence::Low,
        });
    }
    best
}

/// What hid or may have wiped PCI errors in this capture boot.
#[must_use]
pub fn missing(range: &[Event], audit: &CmdlineAudit) -> Vec<String> {
    let mut out = Vec::new();
    for f in &audit.findings {
        // The audit's findings are the shared table's matches: ask the table, by the token.
        if cmdline_rules::matches(&f.parameter)
            .iter()
            .any(|m| m.silences_aer)
        {
            out.push(format!(
                "AER/DPC were off in the capture kernel ({}): no AER or DPC line or tracepoint could report an error; only the devices' config space could",
                f.parameter
            ));
        }
    }
    let snapshot = range.iter().find_map(|e| match &e.detail {
        Detail::PciSnapshot {
            devices,
            aer_capable,
            aer_service_ports,
            ..
        } => Some((*devices, *aer_capable, *aer_service_ports)),
        _ => None,
    });
    match snapshot {
        Some((devices, 0, _)) if devices > 0 => out.push(
            "no PCI device showed an AER capability (none present, or config space not readable past 256 bytes): no AER status to read".into(),
        ),
        Some((_, capable, 0)) if capable > 0 && out.is_empty() => out.push(
            "no root port had the AER service bound (pcie_ports=compat, pci=noaer or no MSI): errors were only latched, never reported".into(),
        ),
        None if range.iter().any(|e| {
            e.source == Source::Observer && matches!(e.detail, Detail::ObserverStarted { .. })
        }) =>
        {
            out.push("no PCI config-space snapshot: errors the kernel cleared or never reported cannot be seen".into());
        }
        _ => {}
    }
    // Residue of errors the kernel reported (an `aer` event about the device, or about the
    // device the residue names) was not wiped unseen.
    let reported: Vec<&str> = range
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Aer { device, .. } => Some(device.as_str()),
            _ => None,
        })
        .collect();
    let wiped: Vec<&str> = range
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::PciDevice(d)
                if d.uncorrectable_residue
                    && !reported.contains(&d.bdf.as_str())
                    && !d
                        .residue
                        .iter()
                        .any(|r| reported.iter().any(|bdf| r.contains(bdf))) =>
            {
                Some(d.bdf.as_str())
            }
            _ => None,
        })
        .collect();
    if let Some(first) = wiped.first() {
        out.push(format!(
            "uncorrectable errors were cleared before userspace could read them (residue on {first}{}): when they were set cannot be told",
            if wiped.len() > 1 { " and others" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::cmdline_audit;

    fn device(snapshot: &str, uncorrectable: bool, residue: bool, new: &[&str]) -> PciDevice {
        PciDevice {
            snapshot: snapshot.into(),
            bdf: "0000:02:00.0".into(),
            smmu: Some("9050000.smmuv3".into()),
            uncorrectable,
            uncorrectable_residue: residue,
            new_since_start: new.iter().map(|s| (*s).to_owned()).collect(),
            ..PciDevice::default()
        }
    }

    fn event(d: PciDevice) -> Event {
        Event::new(1, Source::Observer, Detail::PciDevice(Box::new(d)))
    }

    #[test]
    fn latched_and_wiped_errors_behind_an_iommu_are_fatal_signs_once() {
        assert!(fatal_sign(&device("start", true, false, &[])).is_some());
        assert!(fatal_sign(&device("start", false, true, &[])).is_some());
        assert!(
            fatal_sign(&device("stop", true, false, &[])).is_none(),
            "counted at start"
        );
        assert!(fatal_sign(&device("rescan", true, false, &["UESta.MalfTLP (fatal)"])).is_some());
        let mut no_iommu = device("start", true, false, &[]);
        no_iommu.smmu = None;
        assert!(fatal_sign(&no_iommu).is_none());
        assert!(fatal_sign(&device("start", false, false, &[])).is_none());
    }

    #[test]
    fn confidence_follows_what_the_bits_prove() {
        let residue = event(device("start", false, true, &[]));
        let latched = event(device("start", true, false, &[]));
        let new = event(device("rescan", true, false, &["x"]));
        assert_eq!(confidence([&residue]), Some(Confidence::Low));
        assert_eq!(confidence([&residue, &latched]), Some(Confidence::Medium));
        assert_eq!(confidence([&latched, &new]), Some(Confidence::High));
        let other = Event::new(1, Source::Kmsg, Detail::GhesFatal);
        assert_eq!(confidence([&residue, &other]), None);
    }

    #[test]
    fn aer_off_and_wiped_errors_are_missing() {
        let audit = cmdline_audit::audit(Some("reset_devices pcie_ports=compat"), None);
        let range = [event(device("start", false, true, &[]))];
        let m = missing(&range, &audit);
        assert!(m[0].contains("pcie_ports=compat"), "{m:?}");
        assert!(m[1].contains("residue on 0000:02:00.0"), "{m:?}");
        let none = missing(&[], &cmdline_audit::audit(Some("reset_devices"), None));
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn residue_of_reported_errors_was_not_wiped_unseen() {
        let mut port = device("start", false, true, &[]);
        port.bdf = "0000:00:03.0".into();
        port.residue = vec![
            "Error Source Identification names 0000:02:00.0 as the source of the last ERR_FATAL/NONFATAL".into(),
        ];
        let aer = Event::new(
            1,
            Source::Kmsg,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: crate::event::AerSeverity::Fatal,
                status: None,
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            },
        );
        let audit = CmdlineAudit::default();
        let found = missing(&[event(port.clone()), aer], &audit);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(missing(&[event(port)], &audit).len(), 1);
    }

    #[test]
    fn no_aer_service_or_capability_is_missing() {
        let snap = |aer_capable, aer_service_ports| {
            Event::new(
                1,
                Source::Observer,
                Detail::PciSnapshot {
                    snapshot: "start".into(),
                    devices: 4,
                    reported: 1,
                    aer_capable,
                    aer_service_ports,
                    dpc_service_ports: 0,
                    problems: Vec::new(),
                    duration_us: 10,
                },
            )
        };
        let audit = CmdlineAudit::default();
        assert!(missing(&[snap(0, 0)], &audit)[0].contains("no PCI device showed an AER"));
        assert!(missing(&[snap(2, 0)], &audit)[0].contains("no root port had the AER service"));
        let found = missing(&[snap(2, 1)], &audit);
        assert!(found.is_empty(), "{found:?}");
    }
}
