//! Who the machine is: DMI or device-tree names, the CPU, firmware-first error handling, the
//! SMMU instances and what sits behind them, the crashed kernel (VMCOREINFO) and the capture
//! kernel. Collected once when `run` starts; a report shows it at the top. [`pci`] reads each
//! PCI function's config space (its own snapshots, at start, while running and at stop).
//!
//! Every string read here comes from firmware or the device tree and is hostile: [`bounded`]
//! strips control characters and caps its length before it goes anywhere. A part that cannot be
//! read leaves a line in [`SystemIdentity::status`], never an error.
pub mod cpu;
pub mod devicetree;
pub mod dmi;
pub mod firmware;
pub mod pci;
pub mod smmu;
pub mod vmcoreinfo;

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Longest string kept from DMI, the device tree or VMCOREINFO, in characters.
pub const MAX_FIELD_CHARS: usize = 128;
/// Most entries kept of any list (compatible strings, SMMU instances, devices behind one).
pub const MAX_LIST: usize = 256;

/// The system the daemon runs on, as one timeline event (`system_identity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemIdentity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dmi: Option<dmi::Dmi>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_tree: Option<devicetree::DeviceTree>,
    /// `processor` in JSON: the event's own `cpu` field is the CPU that saw it.
    #[serde(default, rename = "processor", skip_serializing_if = "Option::is_none")]
    pub cpu: Option<cpu::Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<firmware::Firmware>,
    /// IOMMU instances (`/sys/class/iommu`) and the devices behind each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smmus: Vec<smmu::SmmuInstance>,
    /// The kernel that crashed, from the VMCOREINFO note of `/proc/vmcore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crashed_kernel: Option<vmcoreinfo::CrashedKernel>,
    /// The kernel running now (the capture kernel in kdump).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_kernel: Option<RunningKernel>,
    /// One line per part that could not be read, saying which and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status: Vec<String>,
}

/// The running kernel's release and command line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningKernel {
    pub release: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cmdline: String,
}

impl SystemIdentity {
    /// One line naming the machine: DMI vendor and product, else the device-tree model.
    #[must_use]
    pub fn machine(&self) -> Option<String> {
        self.dmi.as_ref().and_then(dmi::Dmi::name).or_else(|| {
            self.device_tree
                .as_ref()
                .and_then(devicetree::DeviceTree::name)
        })
    }

    /// The same identity with every string bounded again: a timeline read back from disk is
    /// as hostile as the firmware that wrote it.
    #[must_use]
    pub fn bounded(&self) -> Self {
        let b = |s: &String| bounded(s);
        Self {
            dmi: self.dmi.as_ref().map(dmi::Dmi::bounded),
            device_tree: self.device_tree.as_ref().map(|d| devicetree::DeviceTree {
                model: b(&d.model),
                compatible: d.compatible.iter().take(MAX_LIST).map(b).collect(),
            }),
            cpu: self.cpu.as_ref().map(|c| cpu::Cpu {
                midr: b(&c.midr),
                name: b(&c.name),
                ..c.clone()
            }),
            firmware: self.firmware.as_ref().map(|f| firmware::Firmware {
                ghes: f
                    .ghes
                    .iter()
                    .take(MAX_LIST)
                    .map(|g| firmware::GhesSource {
                        notify: b(&g.notify),
                        ..g.clone()
                    })
                    .collect(),
                ..f.clone()
            }),
            smmus: self
                .smmus
                .iter()
                .take(MAX_LIST)
                .map(|s| smmu::SmmuInstance {
                    name: b(&s.name),
                    devices: s
                        .devices
                        .iter()
                        .take(MAX_LIST)
                        .map(|d| smmu::BehindSmmu {
                            device: b(&d.device),
                            group: d.group,
                        })
                        .collect(),
                })
                .collect(),
            crashed_kernel: self
                .crashed_kernel
                .as_ref()
                .map(|k| vmcoreinfo::CrashedKernel {
                    release: b(&k.release),
                    ..k.clone()
                }),
            running_kernel: self.running_kernel.as_ref().map(|k| RunningKernel {
                release: b(&k.release),
                cmdline: bounded_to(&k.cmdline, 4096),
            }),
            status: self
                .status
                .iter()
                .take(MAX_LIST)
                .map(|s| bounded_to(s, 512))
                .collect(),
        }
    }
}

/// Where to look: `/` on a live system, a directory shaped like it in tests.
#[derive(Clone, Debug)]
pub struct Roots<'a> {
    /// Prefix of `/sys` and `/proc`.
    pub root: &'a Path,
    /// The capture kernel's view of the crashed kernel's memory (`/proc/vmcore`).
    pub vmcore: &'a Path,
}

/// Collects everything; each missing part adds a status line instead of failing.
#[must_use]
pub fn collect(roots: &Roots<'_>) -> SystemIdentity {
    let root = roots.root;
    let mut id = SystemIdentity::default();
    match dmi::read(&root.join("sys/class/dmi/id")) {
        Ok(d) => id.dmi = Some(d),
        Err(why) => id.status.push(format!("DMI: {why}")),
    }
    match devicetree::read(root) {
        Ok(d) => id.device_tree = Some(d),
        // An ACPI machine has no device tree: only worth a line when DMI is missing too.
        Err(why) if id.dmi.is_none() => id.status.push(format!("device tree: {why}")),
        Err(_) => {}
    }
    match cpu::read(root) {
        Ok(c) => id.cpu = Some(c),
        Err(why) => id.status.push(format!("CPU: {why}")),
    }
    let (fw, fw_status) = firmware::read(root);
    id.firmware = Some(fw);
    id.status
        .extend(fw_status.into_iter().map(|s| format!("firmware: {s}")));
    match smmu::read(root) {
        Ok(s) => id.smmus = s,
        Err(why) => id.status.push(format!("SMMU: {why}")),
    }
    match vmcoreinfo::read(roots.vmcore) {
        Ok(k) => id.crashed_kernel = Some(k),
        Err(why) => id.status.push(format!("crashed kernel: {why}")),
    }
    let release = read_text(&root.join("proc/sys/kernel/osrelease"));
    let cmdline = read_text(&root.join("proc/cmdline"));
    match (release, cmdline) {
        (Ok(release), cmdline) => {
            if let Err(why) = &cmdline {
                id.status.push(format!("command line: {why}"));
            }
            id.running_kernel = Some(RunningKernel {
                release: bounded(&release),
                cmdline: bounded_to(&cmdline.unwrap_or_default(), 4096),
            });
        }
        (Err(why), _) => id.status.push(format!("running kernel: {why}")),
    }
    id
}

/// Reads a small text file, trimmed; the error names the file.
pub(crate) fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `text` without control characters (NULs, escapes, newlines become spaces; runs of spaces
/// become one), trimmed, at most
/// [`MAX_FIELD_CHARS`] characters (a longer one ends in `…`).
#[must_use]
pub fn bounded(text: &str) -> String {
    bounded_to(text, MAX_FIELD_CHARS)
}

/// [`bounded`] with a chosen length.
#[must_use]
pub fn bounded_to(text: &str, max_chars: usize) -> String {
    let mut cleaned = String::with_capacity(text.len().min(max_chars * 4));
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && cleaned.ends_with(' ') {
            continue;
        }
        cleaned.push(c);
    }
    let trimmed = cleaned.trim();
    if trimmed.chars().count() <= max_chars {
        return trimmed.to_owned();
    }
    let mut out: String = trimmed.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_strips_controls_and_caps_length() {
        assert_eq!(bounded("  QEMU\0\x1b[31m KVM\n"), "QEMU [31m KVM");
        let long = "x".repeat(1000);
        let b = bounded(&long);
        assert_eq!(b.chars().count(), MAX_FIELD_CHARS);
        assert!(b.ends_with('…'));
    }

    #[test]
    fn empty_root_gives_a_status_line_per_missing_part_and_no_panic() {
        let dir = tempfile::tempdir().unwrap();
        let id = collect(&Roots {
            root: dir.path(),
            vmcore: &dir.path().join("proc/vmcore"),
        });
        let joined = id.status.join("\n");
        for part in [
            "DMI: ",
            "device tree: ",
            "CPU: ",
            "SMMU: ",
            "crashed kernel: ",
            "running kernel: ",
        ] {
            assert!(joined.contains(part), "no `{part}` line in:\n{joined}");
        }
        assert!(id.machine().is_none());
        assert!(id.running_kernel.is_none());
    }

    #[test]
    fn a_device_tree_machine_is_named_by_its_model() {
        let dir = tempfile::tempdir().unwrap();
        let dt = dir.path().join("sys/firmware/devicetree/base");
        std::fs::create_dir_all(&dt).unwrap();
        std::fs::write(dt.join("model"), b"linux,dummy-virt\0").unwrap();
        std::fs::write(dt.join("compatible"), b"linux,dummy-virt\0").unwrap();
        std::fs::create_dir_all(dir.path().join("proc/sys/kernel")).unwrap();
        std::fs::write(dir.path().join("proc/sys/kernel/osrelease"), "6.12.57\n").unwrap();
        std::fs::write(
            dir.path().join("proc/cmdline"),
            "console=ttyAMA0 reset_devices\n",
        )
        .unwrap();
        let id = collect(&Roots {
            root: dir.path(),
            vmcore: &dir.path().join("proc/vmcore"),
        });
        assert_eq!(id.machine().as_deref(), Some("linux,dummy-virt"));
        assert!(!id.status.iter().any(|s| s.starts_with("device tree")));
        let k = id.running_kernel.unwrap();
        assert_eq!(k.release, "6.12.57");
        assert_eq!(k.cmdline, "console=ttyAMA0 reset_devices");
    }
}
