//! Downstream Port Containment (`drivers/pci/pcie/dpc.c`, `dev_fmt` `"DPC: "`), printed by
//! the port: `pcieport 0000:00:03.0: DPC: ...`.
//!
//! - 6.1: `containment event, status:%#06x source:%#06x`, then `%s detected`
//!   (`unmasked uncorrectable error`, `ERR_NONFATAL`, `ERR_FATAL`, `RP PIO error`, ...);
//! - 7.1: `containment event, status:%#06x: unmasked uncorrectable error detected`,
//!   `containment event, status:%#06x, %s received from %04x:%02x:%02x.%d`,
//!   `containment event, status:%#06x: %s detected`.
//!
//! `DPC: enabled with IRQ %d` and `error containment capabilities: ...` are not events.
use super::{device::DevLine, num::parse_hex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DpcLine<'a> {
    Event {
        device: &'a str,
        status: Option<u64>,
        detail: &'a str,
    },
    /// 6.1's second line, `<reason> detected`.
    Reason { device: &'a str, reason: &'a str },
}

#[cfg(test)]
pub(crate) fn classify(text: &str) -> Option<DpcLine<'_>> {
    classify_pci(&super::device::pci_line(text)?)
}

/// A DPC line of a PCI device.
pub(crate) fn classify_pci<'a>(line: &DevLine<'a>) -> Option<DpcLine<'a>> {
    let body = line.message.strip_prefix("DPC: ")?.trim();
    if let Some(rest) = body.strip_prefix("containment event, status:") {
        let end = rest.find([' ', ':', ',']).unwrap_or(rest.len());
        let (status, detail) = rest.split_at(end);
        let detail = detail.trim_start_matches([':', ',', ' ']);
        return Some(DpcLine::Event {
            device: line.device,
            status: parse_hex(status),
            detail,
        });
    }
    body.ends_with(" detected").then_some(DpcLine::Reason {
        device: line.device,
        reason: body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpc_6_1() {
        assert_eq!(
            classify("pcieport 0000:00:03.0: DPC: containment event, status:0x1f01 source:0x0000"),
            Some(DpcLine::Event {
                device: "0000:00:03.0",
                status: Some(0x1f01),
                detail: "source:0x0000"
            })
        );
        assert_eq!(
            classify("pcieport 0000:00:03.0: DPC: ERR_FATAL detected"),
            Some(DpcLine::Reason {
                device: "0000:00:03.0",
                reason: "ERR_FATAL detected"
            })
        );
    }

    #[test]
    fn dpc_7_1() {
        assert_eq!(
            classify(
                "pcieport 0000:00:03.0: DPC: containment event, status:0x1f05: unmasked uncorrectable error detected"
            ),
            Some(DpcLine::Event {
                device: "0000:00:03.0",
                status: Some(0x1f05),
                detail: "unmasked uncorrectable error detected"
            })
        );
        assert_eq!(
            classify(
                "pcieport 0000:00:03.0: DPC: containment event, status:0x1f09, ERR_FATAL received from 0000:02:00.0"
            ),
            Some(DpcLine::Event {
                device: "0000:00:03.0",
                status: Some(0x1f09),
                detail: "ERR_FATAL received from 0000:02:00.0"
            })
        );
        assert_eq!(
            classify(
                "pcieport 0000:00:03.0: DPC: containment event, status:0x1f0d: RP PIO error detected"
            ),
            Some(DpcLine::Event {
                device: "0000:00:03.0",
                status: Some(0x1f0d),
                detail: "RP PIO error detected"
            })
        );
    }

    #[test]
    fn setup_lines_are_not_events() {
        assert_eq!(
            classify("pcieport 0000:00:03.0: DPC: enabled with IRQ 24"),
            None
        );
        assert_eq!(
            classify(
                "pcieport 0000:00:03.0: DPC: error containment capabilities: Int Msg #0, RPExt+ PoisonedTLP+"
            ),
            None
        );
        assert_eq!(
            classify("pcieport 0000:00:03.0: AER: ERR_FATAL detected"),
            None
        );
    }
}
