//! x86 IOMMU table hand-over in kdump (drivers/iommu/intel/iommu.c `init_dmars`,
//! drivers/iommu/amd/init.c; strings in 6.1 and 7.1).
//!
//! Intel VT-d (`drivers/iommu/intel/iommu.c`, `pr_fmt "DMAR: "`):
//! `Translation already enabled - trying to copy translation structures`,
//! `Copied translation tables from previous kernel for %s`,
//! `Failed to copy translation tables from previous kernel for %s`,
//! `Translation was enabled for %s but we are not in kdump mode`.
//!
//! AMD-Vi (`drivers/iommu/amd/init.c`, `pr_fmt "AMD-Vi: "`): ≤ 6.12 `Translation is already
//! enabled - trying to copy translation structures`, `Copied DEV table from previous kernel.`,
//! `Failed to copy DEV table from previous kernel.`, `The address of old device table is above
//! 4G, not trustworthy!`, `Failed to allocate memory for copying old device table!`; 6.18+
//! `... trying to reuse translation structures`, `Reused DEV table from previous kernel.`,
//! `Failed to reuse DEV table from previous kernel.`, `Failed to remap memory for reusing old
//! device table!`; both `Translation was enabled for IOMMU:%d but we are not in kdump mode`.
//!
//! VT-d interrupt remapping (`drivers/iommu/intel/irq_remapping.c`, `pr_fmt "DMAR-IR: "`):
//! `Copied IR table for %s from previous kernel`, `Failed to copy IR table for %s from
//! previous kernel`, `IRQ remapping was enabled on %s but we are not in kdump mode`.
//!
//! Failures after the hand-over (`iommu_fault`):
//! - VT-d (`drivers/iommu/intel/dmar.c`): `DRHD: handling fault status reg %x`
//!   (`dmar_fault()`), and `dmar_fault_do_one()`'s records `[%s NO_PASID] Request device
//!   [%02x:%02x.%d] fault addr 0x%llx [fault reason 0x%02x] %s` (5.4: `[%s] Request device
//!   [%02x:%02x.%d] fault addr %llx [fault reason %02d] %s`);
//! - AMD-Vi (`drivers/iommu/amd/iommu.c`): `Completion-Wait loop timed out` (`wait_on_sem()`),
//!   and `Event logged [IO_PAGE_FAULT ...]` (`amd_iommu_report_page_fault()`; 5.10+ through
//!   `dev_err()`, so after a `<driver> <BDF>: ` prefix).
use super::device::DevLine;
use crate::event::Detail;

#[cfg(test)]
pub(crate) fn classify(text: &str) -> Option<Detail> {
    classify_with(text, super::device::split_dev_line(text).as_ref())
}

/// A VT-d / AMD-Vi line; `dev` is the line's `dev_printk()` prefix, if it has one.
pub(crate) fn classify_with(text: &str, dev: Option<&DevLine<'_>>) -> Option<Detail> {
    let (iommu, message) = if let Some(m) = text.strip_prefix("DMAR: ") {
        ("dmar", m)
    } else if let Some(m) = text.strip_prefix("DMAR-IR: ") {
        ("dmar-ir", m)
    } else if let Some(m) = text.strip_prefix("AMD-Vi: ") {
        ("amd-vi", m)
    } else {
        return amd_vi_device_fault(dev?);
    };
    let message = message.trim_end();
    if let Some(fault) = fault(iommu, message) {
        return Some(fault);
    }
    let outcome = outcome(message)?;
    Some(Detail::IommuTableCopy {
        iommu: iommu.to_owned(),
        outcome: outcome.to_owned(),
        detail: message.to_owned(),
    })
}

fn fault(iommu: &str, message: &str) -> Option<Detail> {
    let device = if message.starts_with("DRHD: handling fault status reg ")
        || message == "Completion-Wait loop timed out"
    {
        None
    } else if message.starts_with('[') && message.contains("] Request device [") {
        message
            .split_once("] Request device [")
            .and_then(|(_, rest)| rest.split_once(']'))
            .map(|(d, _)| d.to_owned())
    } else {
        let rest = message.strip_prefix("Event logged [IO_PAGE_FAULT device=")?;
        rest.split([' ', ']']).next().map(str::to_owned)
    };
    Some(Detail::IommuFault {
        iommu: iommu.to_owned(),
        device,
        detail: message.to_owned(),
    })
}

/// `<driver> <BDF>: AMD-Vi: Event logged [IO_PAGE_FAULT domain=... address=... flags=...]`.
fn amd_vi_device_fault(line: &DevLine<'_>) -> Option<Detail> {
    let message = line.message.strip_prefix("AMD-Vi: ")?.trim_end();
    message
        .starts_with("Event logged [IO_PAGE_FAULT ")
        .then(|| Detail::IommuFault {
            iommu: "amd-vi".into(),
            device: Some(line.device.to_owned()),
            detail: message.to_owned(),
        })
}

fn outcome(message: &str) -> Option<&'static str> {
    const FAILED: [&str; 5] = [
        "Failed to copy translation tables from previous kernel",
        "Failed to copy DEV table from previous kernel",
        "Failed to reuse DEV table from previous kernel",
        "Failed to allocate memory for copying old device table",
        "Failed to remap memory for reusing old device table",
    ];
    if message.starts_with("Translation was enabled for ")
        && message.ends_with("but we are not in kdump mode")
    {
        Some("not-kdump")
    } else if message.starts_with("Translation already enabled - trying to ")
        || message.starts_with("Translation is already enabled - trying to ")
    {
        Some("trying")
    } else if message.starts_with("Copied translation tables from previous kernel")
        || message.starts_with("Copied DEV table from previous kernel")
        || message.starts_with("Copied IR table for ")
    {
        Some("copied")
    } else if message.starts_with("IRQ remapping was enabled on ")
        && message.ends_with("but we are not in kdump mode")
    {
        Some("not-kdump")
    } else if message.starts_with("Failed to copy IR table for ") {
        Some("failed")
    } else if message.starts_with("Reused DEV table from previous kernel") {
        Some("reused")
    } else if FAILED.iter().any(|f| message.starts_with(f))
        || message.starts_with("The address of old device table is above 4G")
    {
        Some("failed")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_of(text: &str) -> Option<(String, String)> {
        match classify(text)? {
            Detail::IommuTableCopy { iommu, outcome, .. } => Some((iommu, outcome)),
            _ => None,
        }
    }

    #[test]
    fn every_spelling() {
        for (text, iommu, outcome) in [
            (
                "DMAR: Translation already enabled - trying to copy translation structures",
                "dmar",
                "trying",
            ),
            (
                "DMAR: Copied translation tables from previous kernel for dmar0",
                "dmar",
                "copied",
            ),
            (
                "DMAR: Failed to copy translation tables from previous kernel for dmar1",
                "dmar",
                "failed",
            ),
            (
                "DMAR: Translation was enabled for dmar0 but we are not in kdump mode",
                "dmar",
                "not-kdump",
            ),
            (
                "AMD-Vi: Translation is already enabled - trying to copy translation structures",
                "amd-vi",
                "trying",
            ),
            (
                "AMD-Vi: Translation is already enabled - trying to reuse translation structures",
                "amd-vi",
                "trying",
            ),
            (
                "AMD-Vi: Copied DEV table from previous kernel.",
                "amd-vi",
                "copied",
            ),
            (
                "AMD-Vi: Reused DEV table from previous kernel.",
                "amd-vi",
                "reused",
            ),
            (
                "AMD-Vi: Failed to copy DEV table from previous kernel.",
                "amd-vi",
                "failed",
            ),
            (
                "AMD-Vi: Failed to reuse DEV table from previous kernel.",
                "amd-vi",
                "failed",
            ),
            (
                "AMD-Vi: The address of old device table is above 4G, not trustworthy!",
                "amd-vi",
                "failed",
            ),
            (
                "AMD-Vi: Failed to allocate memory for copying old device table!",
                "amd-vi",
                "failed",
            ),
            (
                "AMD-Vi: Failed to remap memory for reusing old device table!",
                "amd-vi",
                "failed",
            ),
            (
                "AMD-Vi: Translation was enabled for IOMMU:0 but we are not in kdump mode",
                "amd-vi",
                "not-kdump",
            ),
            (
                "DMAR-IR: Copied IR table for dmar0 from previous kernel",
                "dmar-ir",
                "copied",
            ),
            (
                "DMAR-IR: IRQ remapping was enabled on dmar1 but we are not in kdump mode",
                "dmar-ir",
                "not-kdump",
            ),
        ] {
            assert_eq!(
                outcome_of(text),
                Some((iommu.to_owned(), outcome.to_owned())),
                "{text}"
            );
        }
        assert_eq!(outcome_of("DMAR: IOMMU enabled"), None);
        assert_eq!(classify("DMAR: IOMMU enabled"), None);
        assert_eq!(outcome_of("AMD-Vi: Interrupt remapping enabled"), None);
    }

    fn fault_of(text: &str) -> Option<(String, Option<String>)> {
        match classify(text)? {
            Detail::IommuFault { iommu, device, .. } => Some((iommu, device)),
            _ => None,
        }
    }

    #[test]
    fn faults_after_the_hand_over() {
        for (text, iommu, device) in [
            ("DMAR: DRHD: handling fault status reg 2", "dmar", None),
            (
                "DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0xfed00000 [fault reason 0x05] PTE Write access is not set",
                "dmar",
                Some("00:02.0"),
            ),
            (
                "DMAR: [DMA Write] Request device [03:00.0] fault addr 7ffff000 [fault reason 05] PTE Write access is not set",
                "dmar",
                Some("03:00.0"),
            ),
            ("AMD-Vi: Completion-Wait loop timed out", "amd-vi", None),
            (
                "AMD-Vi: Event logged [IO_PAGE_FAULT device=03:00.0 domain=0x0000 address=0xfffffffdf8000000 flags=0x0010]",
                "amd-vi",
                Some("03:00.0"),
            ),
            (
                "nvme 0000:03:00.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x000d address=0xfd7c0000 flags=0x0000]",
                "amd-vi",
                Some("0000:03:00.0"),
            ),
        ] {
            assert_eq!(
                fault_of(text),
                Some((iommu.to_owned(), device.map(str::to_owned))),
                "{text}"
            );
        }
        assert_eq!(fault_of("nvme 0000:03:00.0: AMD-Vi: something else"), None);
    }
}
