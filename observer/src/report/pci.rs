//! The report's PCI section: devices that can master DMA or carry error bits or residue, from
//! the judged boot's `pci_device` events, named from `pci.ids` when the machine writing the
//! report has it.
use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use crate::event::{Detail, Event, PciDevice};

/// Where `pci.ids` is looked for (Debian/Ubuntu `pci.ids` package, Fedora/RHEL `hwdata`).
pub const PCI_IDS: &[&str] = &["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"];

/// What each register in the table means (the same text in every format).
pub const REGISTERS: &[(&str, &str)] = &[
    (
        "Status / SecStatus",
        "PCI Status (0x06) and a bridge's Secondary Status (0x1e): RecMasterAbort = a request of this device got no completion; RecTargetAbort / SigTargetAbort = a completer aborted; SigSystemError = the function sent ERR_FATAL or ERR_NONFATAL (RecSystemError on a bridge's secondary side: one came from below); parity bits",
    ),
    (
        "DevSta",
        "PCIe Device Status: an error of that class (CorrErr, NonFatalErr, FatalErr, UnsupReq) was detected, whether or not it was reported",
    ),
    (
        "UESta",
        "AER Uncorrectable Error Status, with the severity the Severity register gives each bit (fatal / non-fatal) and `masked` when the Mask register keeps it from being reported",
    ),
    ("CESta", "AER Correctable Error Status"),
    (
        "RootSta",
        "AER Root Error Status of a root port: error messages it received from below",
    ),
    (
        "First Error Pointer",
        "bits 4:0 of the AER Capabilities and Control register: the first uncorrectable error logged; sticky, so it stays after the status bit is cleared",
    ),
    (
        "Header Log",
        "the header of the TLP that caused the first uncorrectable error; sticky",
    ),
    (
        "Error Source Identification",
        "a root port's record of which requester sent the last ERR_FATAL/NONFATAL (and ERR_COR) message; not cleared by software",
    ),
    (
        "DPC",
        "Downstream Port Containment status: Trigger = the port contained its link after an error",
    ),
];

/// One device row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PciRow {
    pub bdf: String,
    pub vendor: String,
    pub device: String,
    /// `Vendor Device` from pci.ids, when found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub class: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smmu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iommu_group: Option<u32>,
    pub bus_master: bool,
    /// From the last snapshot that reported the device.
    pub snapshot: String,
    pub errors: Vec<String>,
    pub residue: Vec<String>,
    /// Entries new since the start snapshot, in any scan.
    pub new_since_start: Vec<String>,
    /// `First Error Pointer = 18 (MalfTLP)`, `Header Log = ...`, raw AER registers.
    pub registers: Vec<String>,
}

impl PciRow {
    /// Error bits or residue.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || !self.residue.is_empty()
    }
}

/// The rows of the judged boot's `pci_device` events: one per device, from its last report,
/// with every `new_since_start` entry of any scan; devices with errors first.
#[must_use]
pub fn rows(timeline: &[Event]) -> Vec<PciRow> {
    let mut by_bdf: BTreeMap<&str, (&PciDevice, Vec<String>)> = BTreeMap::new();
    for e in timeline {
        let Detail::PciDevice(d) = &e.detail else {
            continue;
        };
        let entry = by_bdf.entry(d.bdf.as_str()).or_insert((d, Vec::new()));
        entry.0 = d;
        for n in &d.new_since_start {
            if !entry.1.contains(n) {
                entry.1.push(n.clone());
            }
        }
    }
    let ids = PCI_IDS
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .and_then(|p| std::fs::read_to_string(p).ok());
    let mut rows: Vec<PciRow> = by_bdf
        .into_values()
        .map(|(d, new)| row(d, new, ids.as_deref()))
        .collect();
    rows.sort_by_key(|r| (!r.has_errors(), r.bdf.clone()));
    rows
}

fn row(d: &PciDevice, new_since_start: Vec<String>, ids: Option<&str>) -> PciRow {
    let mut registers = Vec::new();
    if let Some(a) = &d.aer {
        registers.push(format!(
            "UESta {} UEMsk {} UESvrt {} CESta {}",
            a.uncor_status, a.uncor_mask, a.uncor_severity, a.cor_status
        ));
        if a.first_error_pointer != 0 {
            registers.push(format!(
                "First Error Pointer = {} ({})",
                a.first_error_pointer, a.first_error
            ));
        }
        if a.header_log.split(' ').any(|w| w != "0x00000000") {
            registers.push(format!("Header Log = {}", a.header_log));
        }
        if let (Some(s), Some(src)) = (&a.root_status, &a.error_source) {
            registers.push(format!("RootSta {s} ErrorSrc {src}"));
        }
    }
    if let Some(s) = &d.devsta {
        registers.push(format!("DevSta {s}"));
    }
    if let Some(s) = &d.dpc_status {
        registers.push(format!(
            "DPC status {s} source {}",
            d.dpc_source.as_deref().unwrap_or("?")
        ));
    }
    PciRow {
        bdf: d.bdf.clone(),
        vendor: d.vendor.clone(),
        device: d.device.clone(),
        name: ids.and_then(|text| lookup(text, &d.vendor, &d.device)),
        class: d.class.clone(),
        driver: d.driver.clone(),
        smmu: d.smmu.clone(),
        iommu_group: d.iommu_group,
        bus_master: d.bus_master,
        snapshot: d.snapshot.clone(),
        errors: d.errors.clone(),
        residue: d.residue.clone(),
        new_since_start,
        registers,
    }
}

/// `Vendor Device` of `0x1af4`/`0x1041` in the text of a `pci.ids` file (vendor lines start in
/// column 0 with four hex digits, device lines with one tab).
#[must_use]
pub fn lookup(ids: &str, vendor: &str, device: &str) -> Option<String> {
    let vendor = vendor.trim_start_matches("0x");
    let device = device.trim_start_matches("0x");
    let mut vendor_name = None;
    for line in ids.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('\t') {
            if rest.starts_with('\t') {
                continue;
            }
            if let Some(v) = vendor_name
                && let Some((id, name)) = rest.split_once("  ")
                && id.eq_ignore_ascii_case(device)
            {
                return Some(format!("{v} {}", name.trim()));
            }
        } else if vendor_name.is_some() {
            break; // the next vendor: the device is not listed
        } else if let Some((id, name)) = line.split_once("  ")
            && id.eq_ignore_ascii_case(vendor)
        {
            vendor_name = Some(name.trim());
        }
    }
    vendor_name.map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{PciAer, Source};

    const IDS: &str = "# comment\n1af4  Red Hat, Inc.\n\t1000  Virtio network device\n\t1041  Virtio 1.0 network device\n\t\t1af4 1100  QEMU\n1b36  Red Hat, Inc.\n\t000c  QEMU PCIe Root port\nC 02  Network controller\n";

    #[test]
    fn pci_ids_names_vendor_and_device() {
        assert_eq!(
            lookup(IDS, "0x1af4", "0x1041").as_deref(),
            Some("Red Hat, Inc. Virtio 1.0 network device")
        );
        assert_eq!(
            lookup(IDS, "0x1b36", "0x000c").as_deref(),
            Some("Red Hat, Inc. QEMU PCIe Root port")
        );
        assert_eq!(
            lookup(IDS, "0x1af4", "0x9999").as_deref(),
            Some("Red Hat, Inc.")
        );
        assert_eq!(lookup(IDS, "0xabcd", "0x0001"), None);
    }

    #[test]
    fn one_row_per_device_from_its_last_report_with_every_new_bit() {
        let ev = |snapshot: &str, errors: &[&str], new: &[&str]| {
            Event::new(
                1,
                Source::Observer,
                Detail::PciDevice(Box::new(PciDevice {
                    snapshot: snapshot.into(),
                    bdf: "0000:02:00.0".into(),
                    errors: errors.iter().map(|s| (*s).to_owned()).collect(),
                    new_since_start: new.iter().map(|s| (*s).to_owned()).collect(),
                    aer: Some(PciAer {
                        first_error_pointer: 18,
                        first_error: "MalfTLP".into(),
                        header_log: "0x00000000 0x00000000 0x00000000 0x00000000".into(),
                        ..PciAer::default()
                    }),
                    ..PciDevice::default()
                })),
            )
        };
        let quiet = Event::new(
            1,
            Source::Observer,
            Detail::PciDevice(Box::new(PciDevice {
                snapshot: "start".into(),
                bdf: "0000:00:00.0".into(),
                bus_master: true,
                ..PciDevice::default()
            })),
        );
        let rows = rows(&[
            quiet,
            ev("start", &[], &[]),
            ev(
                "rescan",
                &["UESta.MalfTLP (fatal)"],
                &["UESta.MalfTLP (fatal)"],
            ),
            ev("stop", &["UESta.MalfTLP (fatal)"], &[]),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].bdf, "0000:02:00.0", "devices with errors first");
        assert_eq!(rows[0].snapshot, "stop");
        assert_eq!(rows[0].new_since_start, ["UESta.MalfTLP (fatal)"]);
        assert!(
            rows[0]
                .registers
                .iter()
                .any(|r| r == "First Error Pointer = 18 (MalfTLP)")
        );
        assert!(
            !rows[0]
                .registers
                .iter()
                .any(|r| r.starts_with("Header Log"))
        );
        assert!(!rows[1].has_errors());
    }
}
