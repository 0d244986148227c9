//! A snapshot of `/sys/bus/pci/devices/*`: each device's identity (BDF, IDs, class, bound
//! driver, IOMMU group, the IOMMU it sits behind) and its decoded config space.
//!
//! The `config` files are opened once, by the first scan, and kept open: the kernel decides how
//! much of config space a reader may see from the credentials the file was *opened* with
//! (`pci_read_config()` in `drivers/pci/pci-sysfs.c`: `file_ns_capable(filp, &init_user_ns,
//! CAP_SYS_ADMIN)`, else 64 bytes), so a daemon that drops its capabilities after the first scan
//! still reads the AER and DPC capabilities at every rescan.
//!
//! Every problem (unreadable directory, short or unreadable config file, a device that vanished
//! between two reads) is a status line; nothing aborts the snapshot.
#![allow(
    clippy::doc_markdown,
    reason = "PCI register and message names (PCIe, ERR_COR, ERR_FATAL) are prose here, not code"
)]
use std::{
    collections::BTreeMap,
    fs::File,
    os::unix::fs::FileExt as _,
    path::{Path, PathBuf},
    time::Instant,
};

use super::{
    config::{self, Config},
    findings::{Findings, findings},
};

/// At most this many devices are looked at (and config files kept open): bounded memory and
/// file descriptors whatever the machine.
pub const MAX_DEVICES: usize = 4096;
/// A PCIe function's config space.
const CONFIG_SIZE: usize = 4096;

/// One device as seen by one scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// `0000:02:00.0`.
    pub bdf: String,
    /// The bound driver's name (`driver` link), if any.
    pub driver: Option<String>,
    /// `iommu_group` link's number.
    pub iommu_group: Option<u32>,
    /// The IOMMU device the `iommu` link leads to (`9050000.smmuv3`, `dmar0`, ...).
    pub iommu: Option<String>,
    /// The decoded config space, or why it could not be read.
    pub config: Result<Config, String>,
    pub findings: Findings,
}

impl Device {
    /// Bus Master Enable.
    #[must_use]
    pub fn bus_master(&self) -> bool {
        self.config
            .as_ref()
            .is_ok_and(|c| c.command & config::COMMAND_MASTER != 0)
    }

    /// Worth an event: it can master DMA, or it has error bits or residue.
    #[must_use]
    pub fn of_interest(&self) -> bool {
        self.bus_master() || !self.findings.is_clean()
    }
}

/// One scan of every device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub devices: Vec<Device>,
    /// Status lines: what could not be read, and why.
    pub problems: Vec<String>,
    /// Devices with an AER capability.
    pub aer_capable: usize,
    /// Ports with the PCIe port driver's AER / DPC service bound
    /// (`/sys/bus/pci_express/devices/*:pcieXYZ`, `drivers/pci/pcie/portdrv.c`).
    pub aer_service_ports: usize,
    pub dpc_service_ports: usize,
    pub duration_us: u64,
}

/// Scans a sysfs tree, keeping config files open between scans.
#[derive(Debug)]
pub struct Scanner {
    sys: PathBuf,
    open: BTreeMap<String, File>,
    buffer: Vec<u8>,
}

impl Scanner {
    /// A scanner of the sysfs mounted at `sys` (normally `/sys`).
    #[must_use]
    pub fn new(sys: impl Into<PathBuf>) -> Self {
        Self {
            sys: sys.into(),
            open: BTreeMap::new(),
            buffer: vec![0; CONFIG_SIZE],
        }
    }

    /// Reads every device once.
    pub fn scan(&mut self) -> Snapshot {
        let started = Instant::now();
        let mut snap = Snapshot::default();
        let dir = self.sys.join("bus/pci/devices");
        let mut names: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(e) => {
                snap.problems
                    .push(format!("cannot list {}: {e}", dir.display()));
                Vec::new()
            }
        };
        names.sort();
        if names.len() > MAX_DEVICES {
            snap.problems.push(format!(
                "{} PCI devices; only the first {MAX_DEVICES} were read",
                names.len()
            ));
            names.truncate(MAX_DEVICES);
        }
        // Devices gone since the last scan: close their files.
        self.open.retain(|bdf, _| names.binary_search(bdf).is_ok());
        for bdf in names {
            let device = self.read_device(&dir.join(&bdf), bdf, &mut snap.problems);
            if device.config.as_ref().is_ok_and(|c| c.aer.is_some()) {
                snap.aer_capable += 1;
            }
            snap.devices.push(device);
        }
        let (aer, dpc) = port_services(&self.sys.join("bus/pci_express/devices"));
        snap.aer_service_ports = aer;
        snap.dpc_service_ports = dpc;
        snap.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        snap
    }

    fn read_device(&mut self, path: &Path, bdf: String, problems: &mut Vec<String>) -> Device {
        let domain = bdf
            .split(':')
            .next()
            .and_then(|d| u16::from_str_radix(d, 16).ok())
            .unwrap_or(0);
        let config = self.read_config(path, &bdf).and_then(|bytes_read| {
            config::parse(&self.buffer[..bytes_read])
                .map_err(|e| format!("{}/config: {e}", path.display()))
        });
        match &config {
            Ok(c) => problems.extend(c.notes.iter().map(|n| format!("{bdf}: {n}"))),
            Err(e) => problems.push(format!("{bdf}: {e}")),
        }
        let findings = config
            .as_ref()
            .map(|c| findings(c, domain))
            .unwrap_or_default();
        Device {
            driver: link_name(&path.join("driver")),
            iommu_group: link_name(&path.join("iommu_group")).and_then(|g| g.parse().ok()),
            iommu: iommu_of(&path.join("iommu")),
            bdf,
            config,
            findings,
        }
    }

    /// Reads the parts of the device's config file that are decoded into the buffer; returns
    /// the length to parse.
    fn read_config(&mut self, path: &Path, bdf: &str) -> Result<usize, String> {
        let file_path = path.join("config");
        if !self.open.contains_key(bdf) {
            let file = File::open(&file_path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    format!("{}: vanished before it could be read", file_path.display())
                } else {
                    format!("cannot open {}: {e}", file_path.display())
                }
            })?;
            self.open.insert(bdf.to_owned(), file);
        }
        let file = &self.open[bdf];
        self.buffer.fill(0);
        config::read_needed(&mut self.buffer, |dest, offset| file.read_at(dest, offset)).map_err(
            |e| {
                // ENODEV and friends: the device went away under an open file.
                self.open.remove(bdf);
                format!("cannot read {}: {e}", file_path.display())
            },
        )
    }
}

/// The last component of a symlink's target.
fn link_name(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The IOMMU a device sits behind: its `iommu` link leads to `<iommu device>/iommu/<name>`
/// (`iommu_device_sysfs_add()`), so the device is the component before `iommu`.
fn iommu_of(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    let parts: Vec<_> = target.components().collect();
    let n = parts.len();
    if n >= 3 && parts[n - 2].as_os_str() == "iommu" {
        Some(parts[n - 3].as_os_str().to_string_lossy().into_owned())
    } else {
        Some(parts.last()?.as_os_str().to_string_lossy().into_owned())
    }
}

/// Counts bound AER and DPC port services. Port service devices are named
/// `<bdf>:pcie<port type><service>` (`pcie_device_init()`: `"%s:pcie%03x"` of
/// `get_descriptor_id(port type, service)` = type << 8 | service, `drivers/pci/pcie/portdrv.c`),
/// services `PCIE_PORT_SERVICE_AER` = 2, `PCIE_PORT_SERVICE_DPC` = 8.
fn port_services(dir: &Path) -> (usize, usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut aer, mut dpc) = (0, 0);
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.rsplit_once(":pcie"))
            .and_then(|(_, id)| u32::from_str_radix(id, 16).ok())
        else {
            continue;
        };
        match id & 0xff {
            2 => aer += 1,
            8 => dpc += 1,
            _ => {}
        }
    }
    (aer, dpc)
}

/// Builds a fake sysfs tree for tests, benchmarks and the fuzz target (not for production use).
#[doc(hidden)]
pub mod fake {
    use std::path::Path;

    /// Writes device `bdf` with `config` bytes under `sys`, with a driver, IOMMU group and
    /// SMMU link.
    ///
    /// # Errors
    /// File system errors.
    pub fn add_device(sys: &Path, bdf: &str, config: &[u8]) -> std::io::Result<()> {
        let real = sys
            .join("devices/platform/4010000000.pcie/pci0000:00")
            .join(bdf);
        std::fs::create_dir_all(&real)?;
        std::fs::write(real.join("config"), config)?;
        let drivers = sys.join("bus/pci/drivers/virtio-pci");
        std::fs::create_dir_all(&drivers)?;
        let smmu = sys.join("devices/platform/9050000.smmuv3/iommu/smmu3.0x0000000009050000");
        std::fs::create_dir_all(&smmu)?;
        let group = sys.join("kernel/iommu_groups/3");
        std::fs::create_dir_all(&group)?;
        let link = |target: &Path, at: &Path| {
            if !at.exists() {
                std::os::unix::fs::symlink(target, at)?;
            }
            Ok::<_, std::io::Error>(())
        };
        link(&drivers, &real.join("driver"))?;
        link(&smmu, &real.join("iommu"))?;
        link(&group, &real.join("iommu_group"))?;
        let devices = sys.join("bus/pci/devices");
        std::fs::create_dir_all(&devices)?;
        link(&real, &devices.join(bdf))?;
        Ok(())
    }

    /// A PCIe endpoint's config space (4096 bytes): PCIe capability at 0x40, AER at 0x100.
    /// `uncor_status`, `first_error_pointer` set the AER registers; `bus_master` the command.
    #[must_use]
    pub fn endpoint(bus_master: bool, uncor_status: u32, first_error_pointer: u8) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..4].copy_from_slice(&[0xf4, 0x1a, 0x41, 0x10]);
        b[4] = if bus_master { 0x06 } else { 0x02 };
        b[6] = 0x10;
        b[0x0b] = 0x02;
        b[0x34] = 0x40;
        b[0x40] = 0x10;
        b[0x42] = 0x02;
        b[0x100..0x104].copy_from_slice(&(0x0001u32 | (2 << 16)).to_le_bytes());
        b[0x104..0x108].copy_from_slice(&uncor_status.to_le_bytes());
        b[0x10c..0x110].copy_from_slice(&0x0006_2030u32.to_le_bytes());
        b[0x118] = first_error_pointer;
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_links_and_findings_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        fake::add_device(sys, "0000:02:00.0", &fake::endpoint(true, 1 << 18, 18)).unwrap();
        fake::add_device(sys, "0000:00:00.0", &fake::endpoint(false, 0, 0)).unwrap();
        let snap = Scanner::new(sys).scan();
        assert!(snap.problems.is_empty(), "{:?}", snap.problems);
        assert_eq!(snap.devices.len(), 2);
        assert_eq!(snap.aer_capable, 2);
        let nic = &snap.devices[1];
        assert_eq!(nic.bdf, "0000:02:00.0");
        assert_eq!(nic.driver.as_deref(), Some("virtio-pci"));
        assert_eq!(nic.iommu_group, Some(3));
        assert_eq!(nic.iommu.as_deref(), Some("9050000.smmuv3"));
        assert!(nic.bus_master());
        assert!(nic.findings.uncorrectable);
        assert!(nic.of_interest());
        assert!(!snap.devices[0].of_interest());
    }

    #[test]
    fn short_unreadable_and_vanished_devices_are_status_lines() {
        let dir = tempfile::tempdir().unwrap();
        let sys = dir.path();
        fake::add_device(sys, "0000:00:01.0", &[0u8; 12]).unwrap();
        fake::add_device(sys, "0000:00:02.0", &fake::endpoint(true, 0, 0)).unwrap();
        fake::add_device(sys, "0000:00:03.0", &fake::endpoint(true, 0, 0)).unwrap();
        let mut scanner = Scanner::new(sys);
        let first = scanner.scan();
        assert_eq!(first.devices.len(), 3);
        assert!(
            first.problems[0].contains("0000:00:01.0")
                && first.problems[0].contains("shorter than the 64-byte header"),
            "{:?}",
            first.problems
        );
        // The link stays but the device directory is gone.
        let real = std::fs::read_link(sys.join("bus/pci/devices/0000:00:03.0")).unwrap();
        std::fs::remove_dir_all(&real).unwrap();
        scanner.open.clear();
        let second = scanner.scan();
        assert!(
            second
                .problems
                .iter()
                .any(|p| p.contains("0000:00:03.0") && p.contains("vanished")),
            "{:?}",
            second.problems
        );
        assert!(second.devices[1].config.is_ok(), "others are still read");
    }

    #[test]
    fn a_missing_sysfs_is_one_status_line() {
        let dir = tempfile::tempdir().unwrap();
        let snap = Scanner::new(dir.path().join("nothing")).scan();
        let found = &snap.devices;
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(snap.problems.len(), 1);
        assert!(snap.problems[0].contains("cannot list"));
    }

    #[test]
    fn port_services_are_counted_by_service_bit() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("bus/pci_express/devices");
        std::fs::create_dir_all(&d).unwrap();
        for n in [
            "0000:00:01.0:pcie002",
            "0000:00:01.0:pcie010",
            "0000:00:01.0:pcie001",
            "0000:00:02.0:pcie008",
        ] {
            std::fs::create_dir(d.join(n)).unwrap();
        }
        assert_eq!(port_services(&d), (1, 1));
    }
}
