//! What the capture kernel's command line does to the evidence and to the outcome.
use serde::{Deserialize, Serialize};

use crate::kernel::cmdline_rules::{self, Impact};

/// One remark about a command-line parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub parameter: String,
    /// `warn`: hides evidence or changes the outcome; `info`: worth knowing.
    pub level: String,
    pub note: String,
}

/// The audit of one command line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdlineAudit {
    /// The capture kernel's command line, if any source logged it.
    pub cmdline: Option<String>,
    /// Whether `kdump-dma-observer cmdline`'s boot instrumentation was on it.
    pub boot_instrumentation: bool,
    pub findings: Vec<Finding>,
}

/// Smallest crashkernel reservation we consider enough for a capture kernel running the
/// daemon on arm64 (kdump-utils' own default for 2–4 GiB machines is 256 MiB).
pub const MIN_CRASHKERNEL_MIB: u64 = 256;

/// Audits the capture kernel's `cmdline` (and the crashed kernel's, for `crashkernel=`).
#[must_use]
pub fn audit(capture: Option<&str>, crashed: Option<&str>) -> CmdlineAudit {
    let mut a = CmdlineAudit {
        cmdline: capture.map(str::to_owned),
        ..CmdlineAudit::default()
    };
    let mut add = |parameter: &str, level: &str, note: String| {
        a.findings.push(Finding {
            parameter: parameter.to_owned(),
            level: level.to_owned(),
            note,
        });
    };
    for m in cmdline_rules::matches(capture.unwrap_or_default()) {
        let level = match m.impact {
            Impact::Warn => "warn",
            Impact::Note => "info",
        };
        add(&m.token, level, m.explanation);
    }
    let instrumented = capture
        .unwrap_or_default()
        .split_whitespace()
        .any(|p| p.starts_with("kprobe_event=") && p.contains("kdo/"));
    a.boot_instrumentation = instrumented;
    if capture.is_some() && !instrumented {
        add("kprobe_event", "info", "no boot instrumentation: the SMMU register writes were not recorded (add `kdump-dma-observer cmdline`)".into());
    }
    if let Some(size) = crashed.and_then(crashkernel_mib) {
        if size < MIN_CRASHKERNEL_MIB {
            add(
                "crashkernel",
                "warn",
                format!(
                    "{size} MiB reserved; at least {MIN_CRASHKERNEL_MIB} MiB recommended for a capture kernel with the observer"
                ),
            );
        } else {
            add("crashkernel", "info", format!("{size} MiB reserved"));
        }
    }
    a
}

/// The simple `crashkernel=<size>[KMG]` form, in MiB (ranges and offsets are left alone).
fn crashkernel_mib(cmdline: &str) -> Option<u64> {
    let value = cmdline
        .split_whitespace()
        .find_map(|p| p.strip_prefix("crashkernel="))?;
    let size = value.split(['@', ',']).next()?;
    if size.contains(':') {
        return None;
    }
    let (digits, unit) = size.split_at(size.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = digits.parse().ok()?;
    match unit {
        "M" | "m" => Some(n),
        "G" | "g" => Some(n * 1024),
        "K" | "k" => Some(n / 1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_arm64_capture_line() {
        let a = audit(
            Some(
                "console=ttyAMA0 reset_devices systemd.unit=kdump-tools-dump.service nr_cpus=1 kprobe_event=p:kdo/kdo_smmu_write,arm_smmu_write_reg_sync",
            ),
            Some("BOOT_IMAGE=/vmlinuz root=/dev/vda1 crashkernel=256M"),
        );
        assert!(a.boot_instrumentation);
        let params: Vec<_> = a.findings.iter().map(|f| f.parameter.as_str()).collect();
        assert_eq!(params, ["reset_devices", "nr_cpus=1", "crashkernel"]);
        assert_eq!(a.findings[2].note, "256 MiB reserved");
    }

    #[test]
    fn evidence_hiding_parameters_are_warnings() {
        let a = audit(
            Some("hest_disable pci=noaer,nomsi pcie_ports=compat"),
            Some("crashkernel=128M@0x1000"),
        );
        let warns: Vec<_> = a
            .findings
            .iter()
            .filter(|f| f.level == "warn")
            .map(|f| f.parameter.as_str())
            .collect();
        assert_eq!(
            warns,
            [
                "hest_disable",
                "pci=noaer,nomsi",
                "pcie_ports=compat",
                "crashkernel"
            ]
        );
        assert!(!a.boot_instrumentation);
        assert!(a.findings.iter().any(|f| f.parameter == "kprobe_event"));
    }

    #[test]
    fn crashkernel_forms() {
        assert_eq!(crashkernel_mib("crashkernel=1G"), Some(1024));
        assert_eq!(crashkernel_mib("crashkernel=2G-4G:256M,4G-:512M"), None);
        assert_eq!(crashkernel_mib("quiet"), None);
    }
}
