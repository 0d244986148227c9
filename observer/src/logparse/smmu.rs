//! SMMUv3 driver lines (`drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c`), all `dev_printk` so
//! prefixed `arm-smmu-v3 <dev>: ` (`9050000.smmuv3` on DT, `arm-smmu-v3.0.auto` on ACPI).
//!
//! Spellings (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c `dev_*` calls, 6.1 to 7.x, and the
//! kdump adoption series):
//! - probe: `ias %lu-bit, oas %lu-bit (features 0x%08x)` (6.1 .. 6.18), `oas %lu-bit
//!   (features 0x%08x)` (7.1);
//! - reset: `SMMU currently enabled! Resetting...` (all versions);
//! - kdump adoption series: `kdump: retaining SMMUEN for in-flight DMA`; fallbacks `kdump:
//!   non-coherent SMMU unsupported; reset to block all DMAs`, `kdump: SMMU in Service Failure
//!   Mode, must reset`, `kdump: falling back to full reset`, v2 `kdump: in-flight DMA would be
//!   rejected`; other `kdump: ...` errors;
//! - GERROR: `unexpected global error reported (0x%08x), this could be serious`;
//! - event queue: `event 0x%02x received:` + four `\t0x%016llx` (`dev_info` ≤ 6.12, `dev_err`
//!   6.18+), then on 6.18+ decoded `event: %s client: %s sid: ...` and, for translation
//!   faults, `... stag: %#x`;
//! - errors: `failed to ...`, Service Failure Mode, EVTQ/PRIQ overflow, CMDQ error/timeout,
//!   `GBPA not responding to update`, `CMD_SYNC timeout at ...`, queue write aborts, probe
//!   refusals.
use super::num::{parse_dec, parse_hex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SmmuLine<'a> {
    Probe {
        ias_bits: Option<u32>,
        oas_bits: u32,
        features: u64,
    },
    Reset,
    Adopt,
    AdoptFallback(&'a str),
    Gerror(u64),
    FaultStart(u64),
    /// A line that belongs to an event-queue record (raw dword or decoded text).
    FaultDetail(&'a str),
    Error(&'a str),
}

/// `(smmu device, line)` for an SMMUv3 driver line that matters.
pub(crate) fn classify(text: &str) -> Option<(&str, SmmuLine<'_>)> {
    let rest = text.strip_prefix("arm-smmu-v3 ")?;
    let (smmu, message) = super::scan::split_colon_space(rest)?;
    if smmu.is_empty() || smmu.contains(' ') {
        return None;
    }
    classify_message(message).map(|line| (smmu, line))
}

fn classify_message(message: &str) -> Option<SmmuLine<'_>> {
    let trimmed = message.trim();
    if let Some(line) = probe(trimmed) {
        return Some(line);
    }
    if trimmed == "SMMU currently enabled! Resetting..." {
        return Some(SmmuLine::Reset);
    }
    if let Some(kdump) = trimmed.strip_prefix("kdump: ") {
        return kdump_line(kdump);
    }
    if let Some(value) = trimmed
        .strip_prefix("unexpected global error reported (")
        .and_then(|r| r.split_once(')'))
        .and_then(|(v, _)| parse_hex(v))
    {
        return Some(SmmuLine::Gerror(value));
    }
    if let Some(id) = trimmed
        .strip_prefix("event ")
        .and_then(|r| r.strip_suffix(" received:"))
        .and_then(parse_hex)
    {
        return Some(SmmuLine::FaultStart(id));
    }
    if is_raw_dword(trimmed) || trimmed.starts_with("event: ") || trimmed.contains(" stag: ") {
        return Some(SmmuLine::FaultDetail(trimmed));
    }
    is_error(trimmed).then_some(SmmuLine::Error(trimmed))
}

fn probe(message: &str) -> Option<SmmuLine<'static>> {
    let (ias_bits, oas) = match message.strip_prefix("ias ") {
        Some(rest) => {
            let (ias, oas) = rest.split_once("-bit, ")?;
            (Some(parse_dec(ias)?), oas)
        }
        None => (None, message),
    };
    let (oas_bits, features) = oas.strip_prefix("oas ")?.split_once("-bit (features ")?;
    Some(SmmuLine::Probe {
        ias_bits,
        oas_bits: parse_dec(oas_bits)?,
        features: parse_hex(features.strip_suffix(')')?)?,
    })
}

fn kdump_line(message: &str) -> Option<SmmuLine<'_>> {
    const FALLBACKS: [&str; 4] = [
        "non-coherent SMMU unsupported; reset to block all DMAs",
        "SMMU in Service Failure Mode, must reset",
        "falling back to full reset",
        "in-flight DMA would be rejected",
    ];
    if message == "retaining SMMUEN for in-flight DMA" {
        Some(SmmuLine::Adopt)
    } else if FALLBACKS.contains(&message) {
        Some(SmmuLine::AdoptFallback(message))
    } else if message.starts_with("adopting ") {
        // `kdump: adopting crashed kernel's stream table`: progress, not an outcome.
        None
    } else {
        // `kdump: log2size ... out of range`, `kdump: failed to adopt l2 stream table ...`.
        Some(SmmuLine::Error(message))
    }
}

/// `0x0000000000000010` (a dumped queue entry dword).
fn is_raw_dword(text: &str) -> bool {
    text.strip_prefix("0x")
        .is_some_and(|d| d.len() == 16 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_error(message: &str) -> bool {
    const EXACT: [&str; 11] = [
        "device has entered Service Failure Mode!",
        "EVTQ overflow detected -- events lost",
        "PRIQ overflow detected -- requests lost",
        "CMDQ timeout",
        "GBPA not responding to update",
        "missing #iommu-cells property",
        "no translation support!",
        "AArch64 table format not supported!",
        "embedded implementation not supported",
        "unknown/unsupported TT endianness!",
        "Failed to register iommu",
    ];
    const PREFIXES: [&str; 5] = [
        "CMDQ error (cons ",
        "CMD_SYNC timeout at ",
        "invalid #iommu-cells value",
        "MMIO region too small",
        "RMR SID(",
    ];
    if message.starts_with("failed to ") {
        // A wired-IRQ fallback is not a failure.
        return !message.starts_with("failed to allocate MSIs");
    }
    EXACT.contains(&message)
        || PREFIXES.iter().any(|p| message.starts_with(p))
        || message.ends_with(" write aborted -- events may have been lost")
        || message.ends_with(" MSI write aborted")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "9050000.smmuv3";

    /// Leaks the line so the borrowed result can outlive the helper (tests only).
    fn line(message: &str) -> Option<SmmuLine<'static>> {
        let text: &'static str =
            Box::leak(format!("arm-smmu-v3 {DEV}: {message}").into_boxed_str());
        let (smmu, line) = classify(text)?;
        assert_eq!(smmu, DEV);
        Some(line)
    }

    #[test]
    fn probe_6_1_to_6_18_and_7_1() {
        assert_eq!(
            line("ias 44-bit, oas 44-bit (features 0x00088705)"),
            Some(SmmuLine::Probe {
                ias_bits: Some(44),
                oas_bits: 44,
                features: 0x88705
            })
        );
        assert_eq!(
            line("oas 48-bit (features 0x00001fef)"),
            Some(SmmuLine::Probe {
                ias_bits: None,
                oas_bits: 48,
                features: 0x1fef
            })
        );
        assert_eq!(line("ias x-bit, oas 44-bit (features 0x1)"), None);
        assert_eq!(line("oas 44-bit (features 0x1"), None);
    }

    #[test]
    fn acpi_device_names() {
        let (smmu, line) =
            classify("arm-smmu-v3 arm-smmu-v3.0.auto: SMMU currently enabled! Resetting...")
                .unwrap();
        assert_eq!(smmu, "arm-smmu-v3.0.auto");
        assert_eq!(line, SmmuLine::Reset);
        assert!(
            classify("arm-smmu 2b400000.iommu: SMMU currently enabled! Resetting...").is_none()
        );
    }

    #[test]
    fn benign_lines_are_nothing() {
        for message in [
            "allocated 65536 entries for cmdq",
            "option mask 0x2",
            "msi_domain absent - falling back to wired irqs",
            "failed to allocate MSIs - falling back to wired irqs",
            "kdump: adopting crashed kernel's stream table",
            "no evtq irq - events will not be reported!",
        ] {
            assert_eq!(line(message), None, "{message}");
        }
    }

    #[test]
    fn error_spellings() {
        for message in [
            "failed to clear cr0",
            "failed to enable SMMU interface",
            "failed to setup irqs",
            "GBPA not responding to update",
            "device has entered Service Failure Mode!",
            "EVTQ overflow detected -- events lost",
            "PRIQ overflow detected -- requests lost",
            "CMDQ error (cons 0x01000004): Abort on command fetch",
            "CMDQ timeout",
            "CMD_SYNC timeout at 0x00000104 [hwprod 0x00000105, hwcons 0x00000103]",
            "EVTQ write aborted -- events may have been lost",
            "GERROR MSI write aborted",
            "invalid #iommu-cells value (2)",
            "RMR SID(0x10) bypass failed",
            "kdump: failed to adopt l2 stream table for SID 16",
            "kdump: log2size 30 out of range [1, 24]",
        ] {
            assert!(
                matches!(line(message), Some(SmmuLine::Error(_))),
                "{message}"
            );
        }
    }

    #[test]
    fn fault_lines() {
        assert_eq!(
            line("event 0x10 received:"),
            Some(SmmuLine::FaultStart(0x10))
        );
        assert_eq!(
            line("\t0x0000001000000010"),
            Some(SmmuLine::FaultDetail("0x0000001000000010"))
        );
        assert!(matches!(
            line(
                "event: F_TRANSLATION client: 0000:02:00.0 sid: 0x10 ssid: 0x0 iova: 0x1000 ipa: 0x0"
            ),
            Some(SmmuLine::FaultDetail(_))
        ));
        assert_eq!(line("event 0xzz received:"), None);
    }

    #[test]
    fn gerror_value() {
        assert_eq!(
            line("unexpected global error reported (0x00000100), this could be serious"),
            Some(SmmuLine::Gerror(0x100))
        );
    }
}
