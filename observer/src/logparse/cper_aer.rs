//! The AER lines the kernel prints for a firmware-first (CPER) `PCIe` error, after the GHES
//! record: `drivers/acpi/apei/ghes.c` `ghes_handle_aer()` → `drivers/pci/pcie/aer.c`
//! `aer_recover_queue()` → `aer_recover_work_func()` → `cper_print_aer()` (5.4 .. 5.x) /
//! `pci_print_aer()` (5.8+; `dev_fmt "AER: "` since 6.0), then `pcie_do_recovery()`:
//! ```text
//! igb 0000:09:00.1: AER: aer_status: 0x00004000, aer_mask: 0x00000000
//! igb 0000:09:00.1: AER:    [14] CmpltTO                (First)
//! igb 0000:09:00.1: AER: aer_layer=Transaction Layer, aer_agent=Requester ID
//! igb 0000:09:00.1: AER: aer_uncor_severity: 0x00062010
//! igb 0000:09:00.1: AER:   TLP Header: 40000001 0000000f 90028090 00000000
//! ```
//! No line says the severity: `aer_uncor_severity` is printed only for uncorrectable errors,
//! and then the unmasked status bits set in that mask are fatal (`PCIe` r6.0 §7.8.4.4).
//!
//! Queue lines (`pr_err`, `pr_fmt "AER: "` since 5.x): `AER recover: Buffer overflow when
//! recovering AER for %04x:%02x:%02x:%x` (`.%x` since 5.12), `AER recover: Can not find
//! pci_dev for %04x:%02x:%02x:%x` (5.4 .. 5.11), then `buffer overflow in recovery for
//! %04x:%02x:%02x.%x` and `no pci_dev for %04x:%02x:%02x.%x` (6.1), and
//! `%04x:%02x:%02x.%x: no pci_dev found` (7.1, ratelimited).
use super::{
    device::{DevLine, is_bdf},
    num::parse_hex,
};
use crate::event::AerSeverity;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CperAerLine<'a> {
    /// `aer_status: 0x%08x, aer_mask: 0x%08x`: a firmware-first error on `device` starts.
    Status {
        device: &'a str,
        status: u64,
        mask: u64,
    },
    /// `aer_uncor_severity: 0x%08x`.
    UncorSeverity { device: &'a str, severity_mask: u64 },
    /// `aer_recover_queue()` / `aer_recover_work_func()` gave up on a device.
    Recover {
        device: String,
        outcome: &'static str,
    },
}

#[cfg(test)]
pub(crate) fn classify(text: &str) -> Option<CperAerLine<'_>> {
    classify_with(text, super::device::pci_line(text).as_ref())
}

/// A firmware-first AER line; `pci` is the line's PCI device prefix, if it has one.
pub(crate) fn classify_with<'a>(
    text: &'a str,
    pci: Option<&DevLine<'a>>,
) -> Option<CperAerLine<'a>> {
    if let Some(line) = recover(text) {
        return Some(line);
    }
    let line = pci?;
    let body = line
        .message
        .strip_prefix("AER:")
        .unwrap_or(line.message)
        .trim();
    if let Some(rest) = body.strip_prefix("aer_status: ") {
        let (status, mask) = rest.split_once(", aer_mask: ")?;
        return Some(CperAerLine::Status {
            device: line.device,
            status: parse_hex(status)?,
            mask: parse_hex(mask.trim())?,
        });
    }
    let value = body.strip_prefix("aer_uncor_severity: ")?;
    Some(CperAerLine::UncorSeverity {
        device: line.device,
        severity_mask: parse_hex(value.trim())?,
    })
}

fn recover(text: &str) -> Option<CperAerLine<'static>> {
    let body = text.strip_prefix("AER: ").unwrap_or(text).trim_end();
    // 7.x: `%04x:%02x:%02x.%x: no pci_dev found`.
    if let Some(address) = body.strip_suffix(": no pci_dev found") {
        return Some(CperAerLine::Recover {
            device: bdf(address)?,
            outcome: "no-device",
        });
    }
    let (outcome, address) = if let Some(a) = body
        .strip_prefix("AER recover: Buffer overflow when recovering AER for ")
        .or_else(|| body.strip_prefix("buffer overflow in recovery for "))
    {
        ("buffer-overflow", a)
    } else {
        let a = body
            .strip_prefix("AER recover: Can not find pci_dev for ")
            .or_else(|| body.strip_prefix("no pci_dev found for "))
            .or_else(|| body.strip_prefix("no pci_dev for "))?;
        ("no-device", a)
    };
    Some(CperAerLine::Recover {
        device: bdf(address)?,
        outcome,
    })
}

/// `0000:09:00:1` (before 5.12) or `0000:09:00.1` → `0000:09:00.1`.
fn bdf(address: &str) -> Option<String> {
    let address = address.trim();
    if is_bdf(address) {
        return Some(address.to_owned());
    }
    let (head, function) = address.rsplit_once(':')?;
    let dotted = format!("{head}.{function}");
    is_bdf(&dotted).then_some(dotted)
}

/// The severity of a firmware-first error from its registers: uncorrectable when
/// `aer_uncor_severity` was printed, fatal when an unmasked status bit is set in it.
pub(crate) fn severity(status: u64, mask: u64, severity_mask: Option<u64>) -> AerSeverity {
    match severity_mask {
        None => AerSeverity::Correctable,
        Some(s) if status & !mask & s != 0 => AerSeverity::Fatal,
        Some(_) => AerSeverity::Nonfatal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_severity_lines() {
        // pci_print_aer(), 6.x spelling (dev_fmt "AER: ") and 5.4 cper_print_aer() without it.
        for text in [
            "igb 0000:09:00.1: AER: aer_status: 0x00004000, aer_mask: 0x00000000",
            "igb 0000:09:00.1: aer_status: 0x00004000, aer_mask: 0x00000000",
        ] {
            assert_eq!(
                classify(text),
                Some(CperAerLine::Status {
                    device: "0000:09:00.1",
                    status: 0x4000,
                    mask: 0
                })
            );
        }
        assert_eq!(
            classify("igb 0000:09:00.1: AER: aer_uncor_severity: 0x00062010"),
            Some(CperAerLine::UncorSeverity {
                device: "0000:09:00.1",
                severity_mask: 0x62010
            })
        );
        assert_eq!(
            classify("igb 0000:09:00.1: AER: aer_status: bogus, aer_mask: 0x0"),
            None
        );
    }

    #[test]
    fn recover_queue_lines() {
        for (text, device, outcome) in [
            (
                "AER: AER recover: Buffer overflow when recovering AER for 0000:09:00:1",
                "0000:09:00.1",
                "buffer-overflow",
            ),
            (
                "AER recover: Buffer overflow when recovering AER for 0000:09:00.1",
                "0000:09:00.1",
                "buffer-overflow",
            ),
            (
                "AER recover: Can not find pci_dev for 0000:81:00:0",
                "0000:81:00.0",
                "no-device",
            ),
            (
                "AER: no pci_dev for 0000:81:00.0",
                "0000:81:00.0",
                "no-device",
            ),
            (
                "AER: no pci_dev found for 0000:81:00.0",
                "0000:81:00.0",
                "no-device",
            ),
            (
                "AER: 0000:81:00.0: no pci_dev found",
                "0000:81:00.0",
                "no-device",
            ),
            (
                "AER: buffer overflow in recovery for 0000:09:00.1",
                "0000:09:00.1",
                "buffer-overflow",
            ),
        ] {
            assert_eq!(
                classify(text),
                Some(CperAerLine::Recover {
                    device: device.into(),
                    outcome
                }),
                "{text}"
            );
        }
        assert_eq!(classify("AER: no pci_dev for nowhere"), None);
    }

    #[test]
    fn severity_from_registers() {
        // CmpltTO (bit 14) is non-fatal in the default severity mask 0x00062010.
        assert_eq!(severity(0x4000, 0, Some(0x62010)), AerSeverity::Nonfatal);
        // Malformed TLP (bit 18) is fatal there.
        assert_eq!(severity(0x40000, 0, Some(0x62010)), AerSeverity::Fatal);
        // A masked fatal bit does not count.
        assert_eq!(
            severity(0x40000, 0x40000, Some(0x62010)),
            AerSeverity::Nonfatal
        );
        assert_eq!(severity(0x1, 0, None), AerSeverity::Correctable);
    }
}
