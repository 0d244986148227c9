//! PCI config space as read from sysfs `config` files (any length), its decoded error bits,
//! and the `pci_device` events made of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{
    sources::pci_snapshot::{Phase, PciSnapshotSource},
    system::pci::{self, ConfigError, Device, Snapshot},
};

const PREFIXES: &[&str] = &[
    "Status.",
    "SecStatus.",
    "DevSta.",
    "UESta.",
    "CESta.",
    "RootSta.",
    "DPC.",
];

fuzz_target!(|data: &[u8]| {
    // Oracle: reading only the parts `parse` needs (as the scanner does) decodes the same.
    if data.len() <= 4096 {
        let mut buf = vec![0u8; 4096];
        let len = pci::config::read_needed(&mut buf, |dest, offset| {
            let rest = data.get(usize::try_from(offset).unwrap()..).unwrap_or_default();
            let n = dest.len().min(rest.len());
            dest[..n].copy_from_slice(&rest[..n]);
            Ok(n)
        })
        .unwrap();
        assert_eq!(pci::parse(&buf[..len]), pci::parse(data), "sparse read differs");
    }
    let config = match pci::parse(data) {
        Ok(c) => c,
        Err(ConfigError::Short { len }) => {
            assert!(len < 64 && len == data.len());
            return;
        }
        Err(ConfigError::NotResponding) => {
            assert_eq!(&data[..2], &[0xff, 0xff]);
            return;
        }
    };
    // Oracles: the header is read from its offsets, whatever follows it.
    let header = pci::parse(&data[..64]).expect("the first 64 bytes parse too");
    assert_eq!((header.vendor, header.device, header.command, header.status),
        (config.vendor, config.device, config.command, config.status));
    if config.aer.is_some() || config.dpc.is_some() {
        assert!(config.pcie.is_some(), "extended capabilities only on PCIe functions");
        assert!(data.len() > 0x100, "extended capabilities need extended space");
    }
    assert!(config.notes.len() <= pci::config::MAX_NOTES, "notes are bounded: {:?}", config.notes);
    let findings = pci::findings(&config, 0);
    for e in &findings.errors {
        assert!(PREFIXES.iter().any(|p| e.starts_with(p)), "unnamed register: {e}");
    }
    if findings.uncorrectable {
        assert!(!findings.errors.is_empty());
    }
    if findings.uncorrectable_residue {
        assert!(!findings.residue.is_empty());
    }
    // The events made of it are valid timeline lines.
    let snap = Snapshot {
        devices: vec![Device {
            bdf: "0000:02:00.0".into(),
            driver: None,
            iommu_group: Some(1),
            iommu: Some("9050000.smmuv3".into()),
            config: Ok(config),
            findings,
        }],
        ..Snapshot::default()
    };
    let mut source = PciSnapshotSource::new("/nonexistent");
    let events = source.events(&snap, Phase::Start, 1);
    observer_fuzz::assert_events_round_trip(&events);
});
