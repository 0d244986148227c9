//! What a decoded config space says about errors: the error bits that are set now (latched),
//! and the residue an error leaves after its status bit was cleared (First Error Pointer, header
//! log, a root port's Error Source Identification).
//!
//! Names are prefixed with the register they come from, as `lspci -vv` does: `Status.`,
//! `SecStatus.`, `DevSta.`, `UESta.`, `CESta.`, `RootSta.`, `DPC.`.
#![allow(
    clippy::doc_markdown,
    reason = "PCI register and message names (PCIe, ERR_COR, ERR_FATAL) are prose here, not code"
)]
use super::config::{self, COR_BITS, Config, DEVSTA_ERRORS, ROOT_STATUS_BITS, STATUS_ERRORS};

/// The error picture of one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Error bits set now.
    pub errors: Vec<String>,
    /// Traces of errors whose status bits are clear.
    pub residue: Vec<String>,
    /// Whether an uncorrectable error is latched (unmasked UESta bit, DevSta Fatal/NonFatal,
    /// Signaled/Received System Error, a root port that received ERR_FATAL/NONFATAL, DPC
    /// triggered).
    pub uncorrectable: bool,
    /// Whether the residue points at an uncorrectable error (First Error Pointer or the
    /// uncorrectable half of Error Source Identification).
    pub uncorrectable_residue: bool,
}

impl Findings {
    /// Nothing set and nothing left behind.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.residue.is_empty()
    }
}

/// Decodes `config` of a device in PCI `domain`.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one register after the other, in config-space order"
)]
pub fn findings(config: &Config, domain: u16) -> Findings {
    let mut f = Findings::default();
    for (bit, short, _) in STATUS_ERRORS {
        if config.status & bit != 0 {
            f.errors.push(format!("Status.{short}"));
        }
        if config.secondary_status.is_some_and(|s| s & bit != 0) {
            // On the secondary side bit 14 is Received System Error (PCI-to-PCI bridge spec).
            let short = if *bit == 1 << 14 {
                "RecSystemError"
            } else {
                short
            };
            f.errors.push(format!("SecStatus.{short}"));
        }
    }
    // A PCIe function sets Signaled System Error when it sends ERR_FATAL or ERR_NONFATAL; a
    // bridge's Received System Error when one came from below (PCIe r6.0 7.5.1.1.4, 7.5.1.3.7).
    // Nothing in the kernel's AER paths clears these bits.
    if config.status & (1 << 14) != 0 || config.secondary_status.is_some_and(|s| s & (1 << 14) != 0)
    {
        f.uncorrectable = true;
    }
    if let Some(pcie) = config.pcie {
        for (bit, short, _) in DEVSTA_ERRORS {
            if pcie.devsta & bit != 0 {
                f.errors.push(format!("DevSta.{short}"));
            }
        }
        if pcie.devsta & 0b110 != 0 {
            f.uncorrectable = true;
        }
    }
    if let Some(aer) = &config.aer {
        for bit in 0..32u8 {
            if aer.uncor_status & (1 << bit) == 0 {
                continue;
            }
            let (short, _) = config::uncor_name(bit);
            let masked = aer.uncor_mask & (1 << bit) != 0;
            let severity = if aer.uncor_severity & (1 << bit) != 0 {
                "fatal"
            } else {
                "non-fatal"
            };
            f.errors.push(if masked {
                format!("UESta.{short} ({severity}, masked)")
            } else {
                f.uncorrectable = true;
                format!("UESta.{short} ({severity})")
            });
        }
        for short in config::bit_names(aer.cor_status, COR_BITS) {
            f.errors.push(format!("CESta.{short}"));
        }
        let fep = aer.first_error_pointer();
        if fep != 0 && aer.uncor_status & (1 << fep) == 0 {
            let (short, long) = config::uncor_name(fep);
            f.residue.push(format!(
                "First Error Pointer = {fep} ({short}, {long}) while that status bit is clear: an uncorrectable error was logged, then cleared"
            ));
            f.uncorrectable_residue = true;
        }
        if aer.uncor_status == 0 && aer.header_log.iter().any(|&w| w != 0) {
            f.residue.push(format!(
                "Header Log holds a TLP header ({}) while no uncorrectable status bit is set",
                header_log_hex(&aer.header_log)
            ));
        }
        if let Some(root) = aer.root {
            let uncor_src = (root.error_source >> 16) as u16;
            let cor_src = (root.error_source & 0xffff) as u16;
            let uncor_rcv = root.status & (1 << 2) != 0;
            let cor_rcv = root.status & 1 != 0;
            for short in config::bit_names(root.status & 0x7f, ROOT_STATUS_BITS) {
                // While a message is latched, the Error Source Identification names its sender.
                f.errors.push(match short {
                    "ERR_UNCOR" if uncor_src != 0 => format!(
                        "RootSta.ERR_UNCOR from {}",
                        config::requester_bdf(domain, uncor_src)
                    ),
                    "ERR_COR" if cor_src != 0 => format!(
                        "RootSta.ERR_COR from {}",
                        config::requester_bdf(domain, cor_src)
                    ),
                    _ => format!("RootSta.{short}"),
                });
            }
            if uncor_rcv {
                f.uncorrectable = true;
            }
            if uncor_src != 0 && !uncor_rcv {
                f.residue.push(format!(
                    "Error Source Identification names {} as the source of the last ERR_FATAL/NONFATAL",
                    config::requester_bdf(domain, uncor_src)
                ));
                f.uncorrectable_residue = true;
            }
            if cor_src != 0 && !cor_rcv {
                f.residue.push(format!(
                    "Error Source Identification names {} as the source of the last ERR_COR",
                    config::requester_bdf(domain, cor_src)
                ));
            }
        }
    }
    if let Some(dpc) = config.dpc {
        if dpc.triggered() {
            f.errors.push(format!("DPC.Trigger ({})", dpc.reason()));
            f.uncorrectable = true;
        } else if dpc.source_id != 0 {
            f.residue.push(format!(
                "DPC Error Source ID names {} while containment is not active",
                config::requester_bdf(domain, dpc.source_id)
            ));
        }
    }
    f
}

/// `0x.. 0x.. 0x.. 0x..`.
#[must_use]
pub fn header_log_hex(log: &[u32; 4]) -> String {
    log.iter()
        .map(|w| format!("{w:#010x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::pci::config::{Aer, AerRoot, Dpc, Pcie};

    fn base() -> Config {
        Config {
            vendor: 0x8086,
            device: 0x10d3,
            class: 0x02_0000,
            header_type: 0,
            subsystem: None,
            command: 0x6,
            status: 0x10,
            secondary_status: None,
            pcie: Some(Pcie {
                port_type: 0,
                devsta: 0,
            }),
            aer: Some(Aer {
                uncor_status: 0,
                uncor_mask: 0,
                uncor_severity: 0x0006_2030,
                cor_status: 0,
                cor_mask: 0,
                cap_control: 0,
                header_log: [0; 4],
                root: None,
            }),
            dpc: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_clean_device_has_no_findings() {
        assert!(findings(&base(), 0).is_clean());
    }

    #[test]
    fn latched_uncorrectable_bits_are_named_with_severity_and_mask() {
        let mut c = base();
        let aer = c.aer.as_mut().unwrap();
        aer.uncor_status = (1 << 18) | (1 << 12) | (1 << 20);
        aer.uncor_mask = 1 << 20;
        aer.cap_control = 18;
        c.pcie.as_mut().unwrap().devsta = 0b0110;
        let f = findings(&c, 0);
        assert_eq!(
            f.errors,
            [
                "DevSta.NonFatalErr",
                "DevSta.FatalErr",
                "UESta.TLP (non-fatal)",
                "UESta.MalfTLP (fatal)",
                "UESta.UnsupReq (non-fatal, masked)"
            ]
        );
        assert!(f.uncorrectable);
        assert!(f.residue.is_empty(), "the pointed-at bit is still set");
    }

    #[test]
    fn first_error_pointer_without_status_is_residue() {
        let mut c = base();
        c.aer.as_mut().unwrap().cap_control = 18;
        let f = findings(&c, 0);
        let found = &f.errors;
        assert!(found.is_empty(), "{found:?}");
        assert!(!f.uncorrectable);
        assert!(f.uncorrectable_residue);
        assert!(
            f.residue[0].contains("18 (MalfTLP, Malformed TLP)"),
            "{f:?}"
        );
    }

    #[test]
    fn root_port_error_source_is_residue_naming_the_device() {
        let mut c = base();
        c.pcie.as_mut().unwrap().port_type = 4;
        c.aer.as_mut().unwrap().root = Some(AerRoot {
            status: 0,
            error_source: 0x0200_0000,
        });
        let f = findings(&c, 0);
        assert!(f.uncorrectable_residue);
        assert_eq!(
            f.residue,
            [
                "Error Source Identification names 0000:02:00.0 as the source of the last ERR_FATAL/NONFATAL"
            ]
        );
    }

    #[test]
    fn a_latched_root_message_names_its_source_instead_of_residue() {
        let mut c = base();
        c.pcie.as_mut().unwrap().port_type = 4;
        c.aer.as_mut().unwrap().root = Some(AerRoot {
            status: 0b100,
            error_source: 0x0200_0000,
        });
        let f = findings(&c, 0);
        assert_eq!(f.errors, ["RootSta.ERR_UNCOR from 0000:02:00.0"]);
        assert!(f.uncorrectable);
        assert!(f.residue.is_empty(), "{f:?}");
        assert!(!f.uncorrectable_residue);
    }

    #[test]
    fn status_and_dpc_errors() {
        let mut c = base();
        c.status |= 1 << 13;
        c.dpc = Some(Dpc {
            status: 0b101,
            source_id: 0x0100,
        });
        let f = findings(&c, 0);
        assert_eq!(
            f.errors,
            ["Status.RecMasterAbort", "DPC.Trigger (ERR_FATAL received)"]
        );
        assert!(f.uncorrectable);
    }

    #[test]
    fn system_error_bits_are_latched_uncorrectable_errors() {
        let mut c = base();
        c.status |= 1 << 14;
        let f = findings(&c, 0);
        assert_eq!(f.errors, ["Status.SigSystemError"]);
        assert!(f.uncorrectable);
        let mut bridge = base();
        bridge.secondary_status = Some(1 << 14);
        let f = findings(&bridge, 0);
        assert_eq!(f.errors, ["SecStatus.RecSystemError"]);
        assert!(f.uncorrectable);
    }

    #[test]
    fn header_log_without_status_is_residue() {
        let mut c = base();
        c.aer.as_mut().unwrap().header_log = [0x4a00_0001, 0, 0, 0];
        let f = findings(&c, 0);
        assert!(f.residue[0].contains("0x4a000001"), "{f:?}");
        assert!(!f.uncorrectable_residue);
    }
}
