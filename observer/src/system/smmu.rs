//! IOMMU instances and what sits behind them: `/sys/class/iommu/<name>/devices/` holds one link
//! per device the instance translates (drivers/iommu/iommu-sysfs.c, `iommu_device_link)`, and
//! each device's `iommu_group` link names its group (drivers/iommu/iommu.c). arm-smmu-v3
//! names its instances `smmu3.0x<base address>` (`arm_smmu_device_probe)`.
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MAX_LIST, bounded};

/// One IOMMU instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmmuInstance {
    /// Its name in /sys/class/iommu (`smmu3.0x0000000009050000`).
    pub name: String,
    /// The devices it translates (PCI BDFs or platform device names), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<BehindSmmu>,
}

/// A device behind an IOMMU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BehindSmmu {
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<u32>,
}

impl SmmuInstance {
    /// `smmu3.0x... (3 devices in 2 groups: 0000:00:01.0 [g0], ...)`.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut groups: Vec<u32> = self.devices.iter().filter_map(|d| d.group).collect();
        groups.sort_unstable();
        groups.dedup();
        let list: Vec<String> = self
            .devices
            .iter()
            .map(|d| match d.group {
                Some(g) => format!("{} [group {g}]", d.device),
                None => d.device.clone(),
            })
            .collect();
        format!(
            "{}: {} device(s) in {} group(s){}{}",
            self.name,
            self.devices.len(),
            groups.len(),
            if list.is_empty() { "" } else { ": " },
            list.join(", ")
        )
    }
}

/// Reads every instance under `root`/sys/class/iommu.
pub fn read(root: &Path) -> Result<Vec<SmmuInstance>, String> {
    let class = root.join("sys/class/iommu");
    let entries = std::fs::read_dir(&class).map_err(|e| {
        format!(
            "cannot read {}: {e} (no IOMMU registered: SMMU off, or not probed)",
            class.display()
        )
    })?;
    let mut out: Vec<SmmuInstance> = entries
        .flatten()
        .take(MAX_LIST)
        .map(|e| SmmuInstance {
            name: bounded(&e.file_name().to_string_lossy()),
            devices: devices(&e.path().join("devices")),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if out.is_empty() {
        return Err(format!("{} is empty: no IOMMU registered", class.display()));
    }
    Ok(out)
}

fn devices(dir: &Path) -> Vec<BehindSmmu> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<BehindSmmu> = entries
        .flatten()
        .take(MAX_LIST)
        .map(|e| BehindSmmu {
            device: bounded(&e.file_name().to_string_lossy()),
            group: std::fs::read_link(e.path().join("iommu_group"))
                .ok()
                .and_then(|l| l.file_name()?.to_str()?.parse().ok()),
        })
        .collect();
    out.sort_by(|a, b| a.device.cmp(&b.device));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_list_their_devices_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let groups = root.join("sys/kernel/iommu_groups");
        let pci = root.join("sys/devices/pci0000:00");
        let smmu = root.join("sys/class/iommu/smmu3.0x0000000009050000/devices");
        std::fs::create_dir_all(&smmu).unwrap();
        for (bdf, g) in [("0000:02:00.0", 3), ("0000:00:01.0", 0)] {
            std::fs::create_dir_all(groups.join(g.to_string())).unwrap();
            let dev = pci.join(bdf);
            std::fs::create_dir_all(&dev).unwrap();
            std::os::unix::fs::symlink(groups.join(g.to_string()), dev.join("iommu_group"))
                .unwrap();
            std::os::unix::fs::symlink(&dev, smmu.join(bdf)).unwrap();
        }
        let s = read(root).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "smmu3.0x0000000009050000");
        assert_eq!(
            s[0].devices,
            vec![
                BehindSmmu {
                    device: "0000:00:01.0".into(),
                    group: Some(0)
                },
                BehindSmmu {
                    device: "0000:02:00.0".into(),
                    group: Some(3)
                },
            ]
        );
        assert_eq!(
            s[0].summary(),
            "smmu3.0x0000000009050000: 2 device(s) in 2 group(s): 0000:00:01.0 [group 0], 0000:02:00.0 [group 3]"
        );
    }

    #[test]
    fn no_iommu_class_says_so() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read(dir.path())
                .unwrap_err()
                .contains("no IOMMU registered")
        );
        std::fs::create_dir_all(dir.path().join("sys/class/iommu")).unwrap();
        assert!(read(dir.path()).unwrap_err().contains("is empty"));
    }
}
