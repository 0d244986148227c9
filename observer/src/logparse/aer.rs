//! PCI Express AER lines (`drivers/pci/pcie/aer.c`, `err.c`; `dev_fmt` `"AER: "`), each
//! prefixed `<driver> <BDF>: `.
//!
//! One error (drivers/pci/pcie/aer.c `aer_print_error`, `__aer_print_error`; as the QEMU lab's
//! injected errors print it):
//! ```text
//! pcieport 0000:00:03.0: AER: Uncorrectable (Non-Fatal) error message received from 0000:02:00.0
//! virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Uncorrectable (Non-Fatal), type=Transaction Layer, (Receiver ID)
//! virtio-pci 0000:02:00.0:   device [1af4:1041] error status/mask=00001000/02400000
//! virtio-pci 0000:02:00.0:    [12] TLP                    (First)
//! virtio-pci 0000:02:00.0: AER:   TLP Header: 00000000 00000000 00000000 00000000
//! ```
//! Severity words: 6.1/6.6 `Corrected`, `Uncorrected (Non-Fatal)`, `Uncorrected (Fatal)`;
//! 6.12+ `Correctable`, `Uncorrectable (...)`. Source line `[Multiple ]<sev> error message
//! received from <BDF>` (6.18+ may end ` (no details found`; 5.x and older `<sev> error
//! received: <BDF>`). Detail line `PCIe Bus Error: ...` (7.1 `<bus> Bus Error: ...`, with or
//! without `AER: `). Firmware-first (`pci_print_aer`): `aer_status: 0x%08x, aer_mask:
//! 0x%08x`, `aer_layer=%s, aer_agent=%s`, `aer_uncor_severity: 0x%08x`. Recovery (`err.c`):
//! `device recovery successful|failed`, `can't recover (...)`.
use super::{
    device::{DevLine, is_bdf},
    num::parse_hex,
};
use crate::event::AerSeverity;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AerLine<'a> {
    /// The port's `... error message received from <BDF>`.
    Source {
        reporter: &'a str,
        device: &'a str,
        severity: AerSeverity,
    },
    /// `PCIe Bus Error: severity=..., type=..., (...)` printed for `device`.
    BusError {
        device: &'a str,
        severity: Option<AerSeverity>,
        error_type: Option<&'a str>,
    },
    /// `device [vvvv:dddd] error status/mask=...` or firmware-first `aer_status: ...`: the
    /// unmasked status.
    Status { device: &'a str, status: u64 },
    /// `[12] TLP (First)`.
    Bit { device: &'a str, name: String },
    /// Firmware-first `aer_layer=<layer>, aer_agent=...`.
    Layer { device: &'a str, layer: &'a str },
    /// A line of an error that adds nothing (TLP header, agent, uncorrectable severity mask).
    Quiet { device: &'a str },
    /// `device recovery successful|failed`, `can't recover (...)`.
    Recovery { device: &'a str, outcome: &'a str },
}

impl AerLine<'_> {
    /// The device whose error this line describes (for folding).
    pub(crate) fn device(&self) -> &str {
        match self {
            Self::Source { device, .. }
            | Self::BusError { device, .. }
            | Self::Status { device, .. }
            | Self::Bit { device, .. }
            | Self::Layer { device, .. }
            | Self::Quiet { device }
            | Self::Recovery { device, .. } => device,
        }
    }
}

#[cfg(test)]
pub(crate) fn classify(text: &str) -> Option<AerLine<'_>> {
    classify_pci(&super::device::pci_line(text)?)
}

/// An AER line of a PCI device (the parser splits the device prefix once per line).
pub(crate) fn classify_pci<'a>(line: &DevLine<'a>) -> Option<AerLine<'a>> {
    let device = line.device;
    let body = line
        .message
        .strip_prefix("AER:")
        .unwrap_or(line.message)
        .trim();
    if let Some((severity, source)) = source_line(body) {
        return Some(AerLine::Source {
            reporter: device,
            device: source,
            severity,
        });
    }
    if let Some((severity, error_type)) = bus_error(body) {
        return Some(AerLine::BusError {
            device,
            severity,
            error_type,
        });
    }
    if let Some(status) = status_line(body).or_else(|| firmware_status(body)) {
        return Some(AerLine::Status { device, status });
    }
    if let Some(name) = error_bit(body) {
        return Some(AerLine::Bit { device, name });
    }
    if let Some(layer) = body
        .strip_prefix("aer_layer=")
        .and_then(|r| r.split_once(", aer_agent="))
        .map(|(layer, _)| layer)
    {
        return Some(AerLine::Layer { device, layer });
    }
    if body.starts_with("TLP Header")
        || body.starts_with("Error of this Agent")
        || body.starts_with("aer_uncor_severity: ")
        || body.starts_with("found no error details for ")
    {
        return Some(AerLine::Quiet { device });
    }
    if body == "device recovery successful"
        || body == "device recovery failed"
        || body.starts_with("can't recover (")
    {
        return Some(AerLine::Recovery {
            device,
            outcome: body,
        });
    }
    None
}

/// Both generations of the severity words.
pub(crate) fn severity(text: &str) -> Option<AerSeverity> {
    match text {
        "Corrected" | "Correctable" => Some(AerSeverity::Correctable),
        "Uncorrected (Non-Fatal)" | "Uncorrectable (Non-Fatal)" => Some(AerSeverity::Nonfatal),
        "Uncorrected (Fatal)" | "Uncorrectable (Fatal)" => Some(AerSeverity::Fatal),
        _ => None,
    }
}

/// The short word for an outcome string of `can't recover (...)` etc.
pub(crate) fn recovery_outcome(body: &str) -> &str {
    match body {
        "device recovery successful" => "successful",
        "device recovery failed" => "failed",
        other => other,
    }
}

fn source_line(body: &str) -> Option<(AerSeverity, &str)> {
    let body = body.strip_prefix("Multiple ").unwrap_or(body);
    let (words, rest) = body
        .split_once(" error message received from ")
        .or_else(|| body.split_once(" error received: "))?;
    let severity = severity(words)?;
    // 6.18+: `... from 0000:02:00.0 (no details found`.
    let device = rest.split([' ', ',']).next()?;
    is_bdf(device).then_some((severity, device))
}

fn bus_error(body: &str) -> Option<(Option<AerSeverity>, Option<&str>)> {
    let (bus, rest) = body.split_once(" Bus Error: ")?;
    if bus.is_empty() || bus.contains(' ') {
        return None;
    }
    let rest = rest.strip_prefix("severity=")?;
    let (severity_text, rest) = rest.split_once(", type=").unwrap_or((rest, ""));
    let error_type = rest.split(", (").next().filter(|t| !t.is_empty());
    Some((severity(severity_text), error_type))
}

/// `device [1af4:1041] error status/mask=00001000/02400000` → status & !mask.
fn status_line(body: &str) -> Option<u64> {
    let rest = body.strip_prefix("device [")?;
    let (_, values) = rest.split_once("] error status/mask=")?;
    let (status, mask) = values.trim().split_once('/')?;
    Some(parse_hex(status)? & !parse_hex(mask)?)
}

/// `aer_status: 0x00001000, aer_mask: 0x00000000` → status & !mask.
fn firmware_status(body: &str) -> Option<u64> {
    let rest = body.strip_prefix("aer_status: ")?;
    let (status, mask) = rest.split_once(", aer_mask: ")?;
    Some(parse_hex(status)? & !parse_hex(mask.trim())?)
}

/// `[12] TLP                    (First)` → `TLP (First)`.
fn error_bit(body: &str) -> Option<String> {
    let (bit, name) = body.strip_prefix('[')?.split_once(']')?;
    let bit = bit.trim();
    if bit.is_empty() || !bit.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_line_spellings() {
        let cases = [
            (
                "pcieport 0000:00:03.0: AER: Corrected error message received from 0000:02:00.0",
                AerSeverity::Correctable,
            ),
            (
                "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0",
                AerSeverity::Correctable,
            ),
            (
                "pcieport 0000:00:03.0: AER: Uncorrected (Non-Fatal) error message received from 0000:02:00.0",
                AerSeverity::Nonfatal,
            ),
            (
                "pcieport 0000:00:03.0: AER: Uncorrectable (Non-Fatal) error message received from 0000:02:00.0",
                AerSeverity::Nonfatal,
            ),
            (
                "pcieport 0000:00:03.0: AER: Uncorrected (Fatal) error message received from 0000:02:00.0",
                AerSeverity::Fatal,
            ),
            (
                "pcieport 0000:00:03.0: AER: Multiple Uncorrectable (Fatal) error message received from 0000:02:00.0",
                AerSeverity::Fatal,
            ),
            (
                "pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0 (no details found",
                AerSeverity::Fatal,
            ),
            (
                "pcieport 0000:00:1c.0: AER: Multiple Corrected error received: 0000:02:00.0",
                AerSeverity::Correctable,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                classify(text),
                Some(AerLine::Source {
                    reporter: if text.contains("1c.0") {
                        "0000:00:1c.0"
                    } else {
                        "0000:00:03.0"
                    },
                    device: "0000:02:00.0",
                    severity: expected,
                }),
                "{text}"
            );
        }
        assert_eq!(
            classify("pcieport 0000:00:03.0: AER: Fatal error message received from 0000:02:00.0"),
            None
        );
    }

    #[test]
    fn bus_error_spellings() {
        for (text, severity, error_type) in [
            (
                "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Corrected, type=Physical Layer, (Receiver ID)",
                AerSeverity::Correctable,
                "Physical Layer",
            ),
            (
                "virtio-pci 0000:02:00.0: AER: PCIe Bus Error: severity=Uncorrectable (Fatal), type=Inaccessible, (Unregistered Agent ID)",
                AerSeverity::Fatal,
                "Inaccessible",
            ),
            (
                "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Uncorrected (Non-Fatal), type=Transaction Layer, (Requester ID)",
                AerSeverity::Nonfatal,
                "Transaction Layer",
            ),
            // 7.1: `%s Bus Error:` with the bus type.
            (
                "virtio-pci 0000:02:00.0: AER: PCIe Bus Error: severity=Correctable, type=Data Link Layer, (Transmitter ID)",
                AerSeverity::Correctable,
                "Data Link Layer",
            ),
            (
                "cxl_pci 0000:02:00.0: CXL Bus Error: severity=Uncorrectable (Non-Fatal), type=Transaction Layer, (Receiver ID)",
                AerSeverity::Nonfatal,
                "Transaction Layer",
            ),
        ] {
            assert_eq!(
                classify(text),
                Some(AerLine::BusError {
                    device: "0000:02:00.0",
                    severity: Some(severity),
                    error_type: Some(error_type),
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn status_bits_and_quiet_lines() {
        assert_eq!(
            classify(
                "virtio-pci 0000:02:00.0:   device [1af4:1041] error status/mask=00001000/02400000"
            ),
            Some(AerLine::Status {
                device: "0000:02:00.0",
                status: 0x1000
            })
        );
        assert_eq!(
            classify(
                "virtio-pci 0000:02:00.0:   device [1af4:1041] error status/mask=00001040/00000040"
            ),
            Some(AerLine::Status {
                device: "0000:02:00.0",
                status: 0x1000
            })
        );
        assert_eq!(
            classify("virtio-pci 0000:02:00.0:    [12] TLP                    (First)"),
            Some(AerLine::Bit {
                device: "0000:02:00.0",
                name: "TLP (First)".into()
            })
        );
        assert_eq!(
            classify("virtio-pci 0000:02:00.0: AER:    [ 6] BadTLP"),
            Some(AerLine::Bit {
                device: "0000:02:00.0",
                name: "BadTLP".into()
            })
        );
        for quiet in [
            "virtio-pci 0000:02:00.0: AER:   TLP Header: 00000000 00000000 00000000 00000000",
            "virtio-pci 0000:02:00.0:   Error of this Agent is reported first",
            "virtio-pci 0000:02:00.0: AER: aer_uncor_severity: 0x00462030",
            "pcieport 0000:00:03.0: AER: found no error details for 0000:02:00.0",
        ] {
            assert!(
                matches!(classify(quiet), Some(AerLine::Quiet { .. })),
                "{quiet}"
            );
        }
        assert_eq!(
            classify("pcieport 0000:00:03.0: AER: enabled with IRQ 23"),
            None
        );
        assert_eq!(classify("virtio-pci 0000:02:00.0:    [xx] nope"), None);
    }

    #[test]
    fn firmware_first_lines() {
        assert_eq!(
            classify("nvme 0000:81:00.0: AER: aer_status: 0x00004000, aer_mask: 0x00000000"),
            Some(AerLine::Status {
                device: "0000:81:00.0",
                status: 0x4000
            })
        );
        assert_eq!(
            classify("nvme 0000:81:00.0: AER: aer_layer=Transaction Layer, aer_agent=Requester ID"),
            Some(AerLine::Layer {
                device: "0000:81:00.0",
                layer: "Transaction Layer"
            })
        );
    }

    #[test]
    fn recovery_lines() {
        assert_eq!(
            classify("pcieport 0000:00:03.0: AER: device recovery failed"),
            Some(AerLine::Recovery {
                device: "0000:00:03.0",
                outcome: "device recovery failed"
            })
        );
        assert_eq!(recovery_outcome("device recovery successful"), "successful");
        assert_eq!(
            recovery_outcome("can't recover (no error_detected callback)"),
            "can't recover (no error_detected callback)"
        );
        assert_eq!(
            classify("pcieport 0000:00:03.0: AER: Root Port link has been reset (0)"),
            None
        );
    }
}
