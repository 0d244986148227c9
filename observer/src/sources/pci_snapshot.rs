//! PCI config-space source: a snapshot of every device at start, a cheap rescan every few
//! seconds while running, and one at stop (`system::pci`).
//!
//! The start and stop snapshots report every device of interest (it can master DMA, or has
//! error bits or residue) as a `pci_device` event, plus one `pci_snapshot` event with the counts
//! and every status line. A rescan reports only devices whose error bits or residue changed
//! since the previous scan. A bit that was not there at the start snapshot is listed in
//! `new_since_start`: it appeared during the capture.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use crate::{
    event::{Detail, Event, PciAer, PciDevice, Source, hex},
    system::pci::{
        Device, Scanner, Snapshot,
        config::{self, Config},
        findings::header_log_hex,
    },
};

/// How often the daemon rescans while running.
pub const RESCAN_PERIOD: std::time::Duration = std::time::Duration::from_secs(3);

/// Which scan an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Start,
    Rescan,
    Stop,
}

impl Phase {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Rescan => "rescan",
            Self::Stop => "stop",
        }
    }
}

/// The source: a scanner and what earlier scans saw.
#[derive(Debug)]
pub struct PciSnapshotSource {
    scanner: Scanner,
    /// Error bits and residue per device at the start snapshot.
    at_start: Option<BTreeMap<String, BTreeSet<String>>>,
    /// ... and at the previous scan.
    previous: BTreeMap<String, BTreeSet<String>>,
}

impl PciSnapshotSource {
    /// A source reading the sysfs at `sys` (normally `/sys`).
    #[must_use]
    pub fn new(sys: impl Into<PathBuf>) -> Self {
        Self {
            scanner: Scanner::new(sys),
            at_start: None,
            previous: BTreeMap::new(),
        }
    }

    /// Scans once and returns the events of `phase`, stamped `ts_ns`. The first call should be
    /// the `Start` one (it opens the config files, so it must run while the daemon still has
    /// `CAP_SYS_ADMIN`).
    pub fn scan(&mut self, phase: Phase, ts_ns: u64) -> Vec<Event> {
        let snap = self.scanner.scan();
        for p in &snap.problems {
            tracing::warn!(problem = %p, snapshot = phase.as_str(), "PCI snapshot");
        }
        self.events(&snap, phase, ts_ns)
    }

    /// The events of an already taken snapshot (also used by tests and benchmarks).
    pub fn events(&mut self, snap: &Snapshot, phase: Phase, ts_ns: u64) -> Vec<Event> {
        let current: BTreeMap<String, BTreeSet<String>> = snap
            .devices
            .iter()
            .map(|d| (d.bdf.clone(), marks(d)))
            .collect();
        let start = self.at_start.get_or_insert_with(|| current.clone());
        let mut out = Vec::new();
        for device in &snap.devices {
            let now = &current[&device.bdf];
            let changed = self.previous.get(&device.bdf) != Some(now);
            let report = match phase {
                Phase::Start | Phase::Stop => device.of_interest(),
                Phase::Rescan => changed && !now.is_empty(),
            };
            if !report {
                continue;
            }
            let new_since_start: Vec<String> = match start.get(&device.bdf) {
                Some(before) => now.difference(before).cloned().collect(),
                None if phase == Phase::Start => Vec::new(),
                None => now.iter().cloned().collect(),
            };
            out.push(Event::new(
                ts_ns,
                Source::Observer,
                Detail::PciDevice(Box::new(detail(device, phase, new_since_start))),
            ));
        }
        let reported = out.len() as u64;
        if phase != Phase::Rescan || !snap.problems.is_empty() && self.previous.is_empty() {
            out.push(Event::new(
                ts_ns,
                Source::Observer,
                Detail::PciSnapshot {
                    snapshot: phase.as_str().into(),
                    devices: snap.devices.len() as u64,
                    reported,
                    aer_capable: snap.aer_capable as u64,
                    aer_service_ports: snap.aer_service_ports as u64,
                    dpc_service_ports: snap.dpc_service_ports as u64,
                    problems: snap.problems.clone(),
                    duration_us: snap.duration_us,
                },
            ));
        }
        self.previous = current;
        out
    }
}

/// Error bits and residue of a device, as comparable strings.
fn marks(device: &Device) -> BTreeSet<String> {
    device
        .findings
        .errors
        .iter()
        .chain(&device.findings.residue)
        .cloned()
        .collect()
}

fn detail(device: &Device, phase: Phase, new_since_start: Vec<String>) -> PciDevice {
    let mut d = PciDevice {
        snapshot: phase.as_str().into(),
        bdf: device.bdf.clone(),
        driver: device.driver.clone(),
        iommu_group: device.iommu_group,
        smmu: device.iommu.clone(),
        errors: device.findings.errors.clone(),
        residue: device.findings.residue.clone(),
        uncorrectable: device.findings.uncorrectable,
        uncorrectable_residue: device.findings.uncorrectable_residue,
        new_since_start,
        ..PciDevice::default()
    };
    match &device.config {
        Ok(c) => fill_registers(&mut d, c),
        Err(e) => d.notes.push(e.clone()),
    }
    d
}

fn fill_registers(d: &mut PciDevice, c: &Config) {
    d.vendor = format!("{:#06x}", c.vendor);
    d.device = format!("{:#06x}", c.device);
    d.subsystem = c.subsystem.map(|(v, s)| format!("{v:04x}:{s:04x}"));
    d.class = format!("{:#08x}", c.class);
    d.port_type = c.pcie.map(|p| config::port_type_name(p.port_type).into());
    d.bus_master = c.command & config::COMMAND_MASTER != 0;
    d.memory_space = c.command & config::COMMAND_MEMORY != 0;
    d.command = format!("{:#06x}", c.command);
    d.status = format!("{:#06x}", c.status);
    d.devsta = c.pcie.map(|p| format!("{:#06x}", p.devsta));
    d.aer = c.aer.map(|a| PciAer {
        uncor_status: format!("{:#010x}", a.uncor_status),
        uncor_mask: format!("{:#010x}", a.uncor_mask),
        uncor_severity: format!("{:#010x}", a.uncor_severity),
        cor_status: format!("{:#010x}", a.cor_status),
        cap_control: format!("{:#010x}", a.cap_control),
        first_error_pointer: a.first_error_pointer(),
        // 0 is also the reset value: no name then.
        first_error: match a.first_error_pointer() {
            0 => String::new(),
            fep => config::uncor_name(fep).0.into(),
        },
        header_log: header_log_hex(&a.header_log),
        root_status: a.root.map(|r| format!("{:#010x}", r.status)),
        error_source: a.root.map(|r| format!("{:#010x}", r.error_source)),
    });
    d.dpc_status = c.dpc.map(|p| hex(u64::from(p.status)));
    d.dpc_source = c.dpc.map(|p| hex(u64::from(p.source_id)));
    d.notes.clone_from(&c.notes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::pci::snapshot::fake;

    fn device_events(events: &[Event]) -> Vec<&PciDevice> {
        events
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::PciDevice(d) => Some(d.as_ref()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn start_reports_masters_and_errors_then_a_summary() {
        let dir = tempfile::tempdir().unwrap();
        fake::add_device(dir.path(), "0000:02:00.0", &fake::endpoint(true, 0, 18)).unwrap();
        fake::add_device(dir.path(), "0000:00:00.0", &fake::endpoint(false, 0, 0)).unwrap();
        let mut source = PciSnapshotSource::new(dir.path());
        let events = source.scan(Phase::Start, 5);
        let devices = device_events(&events);
        assert_eq!(devices.len(), 1);
        let nic = devices[0];
        assert_eq!(nic.bdf, "0000:02:00.0");
        assert_eq!(nic.smmu.as_deref(), Some("9050000.smmuv3"));
        assert!(nic.bus_master);
        assert!(nic.uncorrectable_residue);
        assert_eq!(nic.aer.as_ref().unwrap().first_error, "MalfTLP");
        assert!(nic.new_since_start.is_empty(), "nothing is new at start");
        let Detail::PciSnapshot {
            devices, reported, ..
        } = &events.last().unwrap().detail
        else {
            panic!("no summary: {events:?}")
        };
        assert_eq!((*devices, *reported), (2, 1));
        assert_eq!(
            serde_json::to_value(&events[0]).unwrap()["kind"],
            "pci_device"
        );
    }

    #[test]
    fn a_bit_that_appears_is_new_since_start_and_a_quiet_rescan_is_silent() {
        let dir = tempfile::tempdir().unwrap();
        fake::add_device(dir.path(), "0000:02:00.0", &fake::endpoint(true, 0, 0)).unwrap();
        let mut source = PciSnapshotSource::new(dir.path());
        source.scan(Phase::Start, 1);
        let found = source.scan(Phase::Rescan, 2);
        assert!(found.is_empty(), "{found:?}");
        let config = std::fs::read_link(dir.path().join("bus/pci/devices/0000:02:00.0"))
            .unwrap()
            .join("config");
        std::fs::write(&config, fake::endpoint(true, 1 << 18, 18)).unwrap();
        let events = source.scan(Phase::Rescan, 3);
        let devices = device_events(&events);
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].new_since_start, ["UESta.MalfTLP (fatal)"]);
        assert!(source.scan(Phase::Rescan, 4).is_empty(), "reported once");
        let stop = source.scan(Phase::Stop, 5);
        assert_eq!(
            device_events(&stop)[0].new_since_start,
            ["UESta.MalfTLP (fatal)"]
        );
    }
}
