//! x86 IOMMU table hand-over in kdump (kernel-facts §5.3; strings in 6.1 and 7.1).
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
use crate::event::Detail;

pub(crate) fn classify(text: &str) -> Option<Detail> {
    let (iommu, message) = if let Some(m) = text.strip_prefix("DMAR: ") {
        ("dmar", m)
    } else if let Some(m) = text.strip_prefix("AMD-Vi: ") {
        ("amd-vi", m)
    } else {
        return None;
    };
    let message = message.trim_end();
    let outcome = outcome(message)?;
    Some(Detail::IommuTableCopy {
        iommu: iommu.to_owned(),
        outcome: outcome.to_owned(),
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
    {
        Some("copied")
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
        ] {
            assert_eq!(
                outcome_of(text),
                Some((iommu.to_owned(), outcome.to_owned())),
                "{text}"
            );
        }
        assert_eq!(outcome_of("DMAR: IOMMU enabled"), None);
        assert_eq!(outcome_of("AMD-Vi: Interrupt remapping enabled"), None);
    }
}
