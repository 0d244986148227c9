//! Kernel command-line parameters that change what a capture kernel can see or how it ends:
//! one table, read by `setup` (before a crash) and by the verdict's audit (after one).
//!
//! Each rule names what the parameter hides or changes for this tool's evidence; the
//! sources are the kernel's own parameter handling (drivers/acpi/apei/hest.c `hest_disable`,
//! drivers/pci/pci.c `pci=noaer`, drivers/pci/pcie/portdrv.c `pcie_ports=`, arch/x86
//! `mce=off`, kernel/printk `printk.devkmsg=`).

/// How much a parameter matters to the evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impact {
    /// Worth knowing (it changes the capture kernel's behaviour, not what can be seen).
    Note,
    /// Hides evidence, or changes the outcome.
    Warn,
}

/// One parameter rule.
#[derive(Debug)]
pub struct Rule {
    /// The parameter's name (`key` of `key=value`, or a flag); aliases spelled with `_` or `-`
    /// are separate rules.
    pub key: &'static str,
    /// Whether the value (empty for a flag) is the one this rule is about.
    pub applies: fn(&str) -> bool,
    pub impact: Impact,
    /// What it means here, for that value.
    pub explain: fn(&str) -> String,
    /// Whether it keeps AER and DPC from reporting errors (the verdict then reads only the
    /// devices' config space for them).
    pub silences_aer: bool,
}

fn any(_: &str) -> bool {
    true
}

/// The table.
pub const RULES: &[Rule] = &[
    Rule {
        key: "hest_disable",
        applies: any,
        impact: Impact::Warn,
        explain: |_| {
            "APEI/GHES firmware-first error reporting is off: fatal platform errors raised by aborted DMA go unseen".into()
        },
        silences_aer: false,
    },
    Rule {
        key: "pci",
        applies: |v| v.split(',').any(|o| o == "noaer"),
        impact: Impact::Warn,
        explain: |_| {
            "PCIe AER is off: AER errors raised by aborted DMA are not reported (only device registers keep them)".into()
        },
        silences_aer: true,
    },
    Rule {
        key: "pcie_ports",
        applies: |v| v == "compat",
        impact: Impact::Warn,
        explain: |_| {
            "the native PCIe port services (AER, DPC) are not bound: those errors are not reported (only device registers keep them)".into()
        },
        silences_aer: true,
    },
    Rule {
        key: "pcie_ports",
        applies: |v| v != "compat",
        impact: Impact::Note,
        explain: |v| format!("PCIe port services mode {v}"),
        silences_aer: false,
    },
    Rule {
        key: "mce",
        applies: |v| v == "off",
        impact: Impact::Warn,
        explain: |_| {
            "x86 machine-check handling is off: memory and bus errors raised by DMA go unseen"
                .into()
        },
        silences_aer: false,
    },
    Rule {
        key: "printk.devkmsg",
        applies: |v| v == "off",
        impact: Impact::Warn,
        explain: |_| "the daemon cannot mirror its timeline into the kernel log".into(),
        silences_aer: false,
    },
    Rule {
        key: "iommu.passthrough",
        applies: |v| v == "1",
        impact: Impact::Note,
        explain: |_| {
            "the IOMMU is in passthrough: the capture kernel's SMMU reset differs from a translated setup".into()
        },
        silences_aer: false,
    },
    Rule {
        key: "arm-smmu-v3.disable_bypass",
        applies: any,
        impact: Impact::Note,
        explain: |v| format!("SMMUv3 bypass policy {v} (6.1/6.6 only; removed in 6.10)"),
        silences_aer: false,
    },
    Rule {
        key: "arm_smmu_v3.disable_bypass",
        applies: any,
        impact: Impact::Note,
        explain: |v| format!("SMMUv3 bypass policy {v} (6.1/6.6 only; removed in 6.10)"),
        silences_aer: false,
    },
    Rule {
        key: "nr_cpus",
        applies: any,
        impact: Impact::Note,
        explain: |v| {
            format!(
                "the capture kernel is limited to {v} CPU(s) (the usual kdump setting; the observer needs one)"
            )
        },
        silences_aer: false,
    },
    Rule {
        key: "maxcpus",
        applies: any,
        impact: Impact::Note,
        explain: |v| {
            format!("the capture kernel is limited to {v} CPU(s) (the observer needs one)")
        },
        silences_aer: false,
    },
    Rule {
        key: "reset_devices",
        applies: any,
        impact: Impact::Note,
        explain: |_| {
            "asks drivers to reset their devices at probe; the PCI core, AER and the IOMMU drivers ignore it, so it does not stop in-flight DMA before the SMMU reset".into()
        },
        silences_aer: false,
    },
    Rule {
        key: "panic",
        applies: any,
        impact: Impact::Note,
        explain: |v| match v.parse::<i64>() {
            Ok(0) => "a capture-kernel panic never reboots (it hangs)".into(),
            Ok(n) if n < 0 => "a capture-kernel panic reboots immediately".into(),
            _ => format!("a capture-kernel panic reboots after {v} s"),
        },
        silences_aer: false,
    },
];

/// One parameter of a command line that a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    /// The parameter as written (`pci=noaer,nomsi`).
    pub token: String,
    pub impact: Impact,
    pub explanation: String,
    /// [`Rule::silences_aer`].
    pub silences_aer: bool,
}

/// Every parameter of `cmdline` that a rule applies to, in command-line order.
#[must_use]
pub fn matches(cmdline: &str) -> Vec<Match> {
    let mut found = Vec::new();
    for token in cmdline.split_whitespace() {
        let (key, value) = token.split_once('=').unwrap_or((token, ""));
        for rule in RULES {
            if rule.key == key && (rule.applies)(value) {
                found.push(Match {
                    token: token.to_owned(),
                    impact: rule.impact,
                    explanation: (rule.explain)(value),
                    silences_aer: rule.silences_aer,
                });
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warned(cmdline: &str) -> Vec<String> {
        matches(cmdline)
            .into_iter()
            .filter(|m| m.impact == Impact::Warn)
            .map(|m| m.token)
            .collect()
    }

    #[test]
    fn what_hides_evidence_is_a_warning() {
        // RHEL's x86 capture line, and kdump-utils' arm64 one.
        assert_eq!(
            warned("irqpoll nr_cpus=1 reset_devices hest_disable pcie_ports=compat mce=off"),
            ["hest_disable", "pcie_ports=compat", "mce=off"]
        );
        assert_eq!(
            warned("pci=realloc,noaer printk.devkmsg=off"),
            ["pci=realloc,noaer", "printk.devkmsg=off"]
        );
    }

    #[test]
    fn other_values_of_the_same_key_are_not_the_same_finding() {
        let found = warned("pci=realloc pcie_ports=native mce=2 printk.devkmsg=on");
        assert!(found.is_empty(), "{found:?}");
        let native = matches("pcie_ports=native");
        assert_eq!(native.len(), 1);
        assert_eq!(native[0].impact, Impact::Note);
        let found = matches("quiet splash");
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn only_pci_noaer_and_pcie_ports_compat_silence_aer() {
        let silencing = |cmdline: &str| -> Vec<String> {
            matches(cmdline)
                .into_iter()
                .filter(|m| m.silences_aer)
                .map(|m| m.token)
                .collect()
        };
        assert_eq!(
            silencing("hest_disable pci=realloc,noaer pcie_ports=compat mce=off"),
            ["pci=realloc,noaer", "pcie_ports=compat"]
        );
        let none = silencing("pci=realloc pcie_ports=native reset_devices");
        assert!(none.is_empty(), "{none:?}");
    }

    #[test]
    fn explanations_carry_the_value() {
        assert!(matches("nr_cpus=1")[0].explanation.contains("1 CPU"));
        assert!(matches("panic=0")[0].explanation.contains("never reboots"));
        assert!(matches("panic=-1")[0].explanation.contains("immediately"));
    }
}
