//! x86 IOMMU hand-over rules (docs/verdict.md, "x86 capture kernels"):
//! - VT-d / AMD-Vi lines that try, copy or reuse the crashed kernel's translation tables
//!   (`iommu_table_copy` with outcome `trying`, `copied`, `reused`, `failed`) only happen in
//!   a kdump kernel: they mark a capture boot; `not-kdump` (`... but we are not in kdump
//!   mode`) marks a normal boot that found translation on;
//! - a copied or reused DMA translation table (VT-d `dmar`, AMD-Vi `amd-vi`) keeps in-flight
//!   DMA mapped: the boot is `preserved`, with any later fatal signs listed but not blamed on
//!   the hand-over. VT-d's interrupt-remapping table (`dmar-ir`, `DMAR-IR: Copied IR table
//!   for dmar0 from previous kernel`, `iommu_load_old_irte()` in
//!   `drivers/iommu/intel/irq_remapping.c`) is copied earlier in boot and says nothing about
//!   DMA mappings: it marks a capture kernel but does not make the boot `preserved`.
use crate::event::{Detail, Event};

/// What an `iommu_table_copy` event says about the boot: `Some(true)` a capture kernel,
/// `Some(false)` not one, `None` not such an event.
#[must_use]
pub fn capture_evidence(event: &Event) -> Option<bool> {
    match &event.detail {
        Detail::IommuTableCopy { outcome, .. } => Some(outcome != "not-kdump"),
        _ => None,
    }
}

/// The first hand-over that kept the DMA translation tables (`copied` or `reused`; not the
/// interrupt-remapping table, `dmar-ir`).
#[must_use]
pub fn preserving_handover(events: &[Event]) -> Option<usize> {
    events.iter().position(|e| {
        matches!(&e.detail, Detail::IommuTableCopy { iommu, outcome, .. }
            if iommu != "dmar-ir" && (outcome == "copied" || outcome == "reused"))
    })
}

/// The `preserved` verdict's sentence for the hand-over `event`, with `later` fatal signs.
#[must_use]
pub fn summary(event: &Event, later: usize) -> String {
    let (iommu, outcome) = match &event.detail {
        Detail::IommuTableCopy { iommu, outcome, .. } => (iommu.as_str(), outcome.as_str()),
        _ => ("iommu", "copied"),
    };
    let later = if later == 0 {
        String::new()
    } else {
        format!(" {later} later fatal sign(s) are listed but not blamed on the hand-over.")
    };
    format!(
        "The capture kernel {outcome} the crashed kernel's IOMMU translation tables ({iommu}): in-flight DMA kept its mappings.{later}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn copy(outcome: &str) -> Event {
        copy_of("dmar", outcome)
    }

    fn copy_of(iommu: &str, outcome: &str) -> Event {
        Event::new(
            1,
            Source::Console,
            Detail::IommuTableCopy {
                iommu: iommu.into(),
                outcome: outcome.into(),
                detail: String::new(),
            },
        )
    }

    #[test]
    fn outcomes() {
        assert_eq!(capture_evidence(&copy("trying")), Some(true));
        assert_eq!(capture_evidence(&copy("not-kdump")), Some(false));
        assert_eq!(
            preserving_handover(&[copy("trying"), copy("copied")]),
            Some(1)
        );
        assert_eq!(preserving_handover(&[copy("reused")]), Some(0));
        assert_eq!(preserving_handover(&[copy("failed")]), None);
    }

    #[test]
    fn the_interrupt_remapping_copy_is_not_the_dma_handover() {
        let ir = copy_of("dmar-ir", "copied");
        assert_eq!(
            capture_evidence(&ir),
            Some(true),
            "it still marks a capture kernel"
        );
        assert_eq!(preserving_handover(std::slice::from_ref(&ir)), None);
        // As the 6.12 capture kernel prints them: IR table first, translation tables later.
        assert_eq!(
            preserving_handover(&[ir, copy("trying"), copy("copied")]),
            Some(2)
        );
        assert_eq!(preserving_handover(&[copy_of("amd-vi", "copied")]), Some(0));
    }
}
