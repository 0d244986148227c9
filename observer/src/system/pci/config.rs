//! A PCI/PCIe configuration-space parser, written from the register layout of the PCI Local Bus
//! spec 3.0 (type 0/1 headers, capability list) and the PCIe Base spec (PCI Express capability,
//! extended capabilities: AER 0x0001, DPC 0x001d). Offsets and bit names follow the kernel's
//! `include/uapi/linux/pci_regs.h`; the short error names are those `drivers/pci/pcie/aer.c`
//! prints (`aer_uncorrectable_error_string`, `aer_correctable_error_string`).
//!
//! Input is the bytes of a sysfs `config` file: 64 bytes when read without `CAP_SYS_ADMIN`, 256
//! for conventional PCI, 4096 for PCIe. Anything shorter than the 64-byte header is an error;
//! anything else parses, and what could not be read is said in [`Config::notes`].
#![allow(
    clippy::doc_markdown,
    reason = "PCI register and message names (PCIe, ERR_COR, ERR_FATAL) are prose here, not code"
)]

/// Why a config file could not be parsed at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("config space is {len} bytes, shorter than the 64-byte header")]
    Short { len: usize },
    #[error("vendor ID reads 0xffff: the device does not answer (removed or in reset)")]
    NotResponding,
}

/// Command register (0x04) bits.
pub const COMMAND_MEMORY: u16 = 1 << 1;
pub const COMMAND_MASTER: u16 = 1 << 2;

/// Status register (0x06) error bits, with the names `lspci` and the spec use.
pub const STATUS_ERRORS: &[(u16, &str, &str)] = &[
    (1 << 8, "MasterDataParity", "Master Data Parity Error"),
    (1 << 11, "SigTargetAbort", "Signaled Target Abort"),
    (1 << 12, "RecTargetAbort", "Received Target Abort"),
    (1 << 13, "RecMasterAbort", "Received Master Abort"),
    (1 << 14, "SigSystemError", "Signaled System Error"),
    (1 << 15, "DetParityError", "Detected Parity Error"),
];
const STATUS_CAP_LIST: u16 = 1 << 4;

/// PCIe Device Status (PCIe capability + 0x0a) error bits.
pub const DEVSTA_ERRORS: &[(u16, &str, &str)] = &[
    (1 << 0, "CorrErr", "Correctable Error Detected"),
    (1 << 1, "NonFatalErr", "Non-Fatal Error Detected"),
    (1 << 2, "FatalErr", "Fatal Error Detected"),
    (1 << 3, "UnsupReq", "Unsupported Request Detected"),
];

/// AER Uncorrectable Error Status bits: kernel short name (aer.c), spec name.
pub const UNCOR_BITS: &[(u8, &str, &str)] = &[
    (0, "Undefined", "Undefined (Training Error in PCIe 1.0a)"),
    (4, "DLP", "Data Link Protocol Error"),
    (5, "SDES", "Surprise Down Error"),
    (12, "TLP", "Poisoned TLP Received"),
    (13, "FCP", "Flow Control Protocol Error"),
    (14, "CmpltTO", "Completion Timeout"),
    (15, "CmpltAbrt", "Completer Abort"),
    (16, "UnxCmplt", "Unexpected Completion"),
    (17, "RxOF", "Receiver Overflow"),
    (18, "MalfTLP", "Malformed TLP"),
    (19, "ECRC", "ECRC Error"),
    (20, "UnsupReq", "Unsupported Request"),
    (21, "ACSViol", "ACS Violation"),
    (22, "UncorrIntErr", "Uncorrectable Internal Error"),
    (23, "BlockedTLP", "MC Blocked TLP"),
    (24, "AtomicOpBlocked", "AtomicOp Egress Blocked"),
    (25, "TLPBlockedErr", "TLP Prefix Blocked"),
    (26, "PoisonTLPBlocked", "Poisoned TLP Egress Blocked"),
    (27, "DMWrReqBlocked", "DMWr Request Egress Blocked"),
    (28, "IDECheck", "IDE Check Failed"),
    (29, "MisIDETLP", "Misrouted IDE TLP"),
    (30, "PCRC_CHECK", "PCRC Check Failed"),
    (31, "TLPXlatBlocked", "TLP Translation Egress Blocked"),
];

/// AER Correctable Error Status bits.
pub const COR_BITS: &[(u8, &str, &str)] = &[
    (0, "RxErr", "Receiver Error"),
    (6, "BadTLP", "Bad TLP"),
    (7, "BadDLLP", "Bad DLLP"),
    (8, "Rollover", "REPLAY_NUM Rollover"),
    (12, "Timeout", "Replay Timer Timeout"),
    (13, "NonFatalErr", "Advisory Non-Fatal Error"),
    (14, "CorrIntErr", "Corrected Internal Error"),
    (15, "HeaderOF", "Header Log Overflow"),
];

/// AER Root Error Status bits (root ports and root complex event collectors).
pub const ROOT_STATUS_BITS: &[(u8, &str, &str)] = &[
    (0, "ERR_COR", "ERR_COR Received"),
    (1, "MultiERR_COR", "Multiple ERR_COR Received"),
    (2, "ERR_UNCOR", "ERR_FATAL/NONFATAL Received"),
    (3, "MultiERR_UNCOR", "Multiple ERR_FATAL/NONFATAL Received"),
    (4, "FirstFatal", "First Uncorrectable Fatal"),
    (5, "NonFatalMsg", "Non-Fatal Error Messages Received"),
    (6, "FatalMsg", "Fatal Error Messages Received"),
];

/// DPC Trigger Reason (DPC Status bits 2:1), PCIe r5.0 7.9.15.5.
pub const DPC_REASONS: [&str; 4] = [
    "unmasked uncorrectable error",
    "ERR_NONFATAL received",
    "ERR_FATAL received",
    "RP PIO error or trigger reason extension",
];

/// The PCI Express capability's device/port type (PCIe capabilities register bits 7:4).
#[must_use]
pub fn port_type_name(t: u8) -> &'static str {
    match t {
        0 => "endpoint",
        1 => "legacy_endpoint",
        4 => "root_port",
        5 => "upstream_port",
        6 => "downstream_port",
        7 => "pcie_to_pci_bridge",
        8 => "pci_to_pcie_bridge",
        9 => "rc_integrated_endpoint",
        10 => "rc_event_collector",
        _ => "unknown",
    }
}

const PORT_TYPE_ROOT_PORT: u8 = 4;
const PORT_TYPE_RC_EC: u8 = 10;

/// The PCI Express capability's error view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcie {
    pub port_type: u8,
    /// Device Status register.
    pub devsta: u16,
}

/// The AER extended capability's registers (offsets from the capability, `pci_regs.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Aer {
    /// +0x04 `PCI_ERR_UNCOR_STATUS`.
    pub uncor_status: u32,
    /// +0x08 `PCI_ERR_UNCOR_MASK`.
    pub uncor_mask: u32,
    /// +0x0c `PCI_ERR_UNCOR_SEVER`: a set bit makes that error fatal.
    pub uncor_severity: u32,
    /// +0x10 `PCI_ERR_COR_STATUS`.
    pub cor_status: u32,
    /// +0x14 `PCI_ERR_COR_MASK`.
    pub cor_mask: u32,
    /// +0x18 `PCI_ERR_CAP`: Advanced Error Capabilities and Control; bits 4:0 are the First
    /// Error Pointer.
    pub cap_control: u32,
    /// +0x1c..0x2c `PCI_ERR_HEADER_LOG`: the header of the TLP of the first error.
    pub header_log: [u32; 4],
    /// Root ports and RCECs only: +0x30 `PCI_ERR_ROOT_STATUS`, +0x34 `PCI_ERR_ROOT_ERR_SRC`.
    pub root: Option<AerRoot>,
}

impl Aer {
    /// The First Error Pointer: the bit position of the first error logged in the Uncorrectable
    /// Error Status register. Sticky (ROS): it survives the status bit being cleared.
    #[must_use]
    pub fn first_error_pointer(&self) -> u8 {
        (self.cap_control & 0x1f) as u8
    }
}

/// Root Error Status and Error Source Identification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AerRoot {
    pub status: u32,
    /// Bits 15:0 the requester ID of the last ERR_COR, bits 31:16 that of the last
    /// ERR_FATAL/NONFATAL.
    pub error_source: u32,
}

/// DPC extended capability: +0x08 `PCI_EXP_DPC_STATUS`, +0x0a `PCI_EXP_DPC_SOURCE_ID`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dpc {
    pub status: u16,
    pub source_id: u16,
}

impl Dpc {
    /// DPC Trigger Status: the port is in containment.
    #[must_use]
    pub fn triggered(&self) -> bool {
        self.status & 1 != 0
    }

    /// Why it triggered (meaningful while triggered).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        DPC_REASONS[usize::from((self.status >> 1) & 3)]
    }
}

/// A decoded configuration space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub vendor: u16,
    pub device: u16,
    /// Base class, sub-class, programming interface (0x09..0x0b).
    pub class: u32,
    /// Header type (0x0e) bits 6:0: 0 endpoint, 1 PCI-to-PCI bridge, 2 CardBus.
    pub header_type: u8,
    /// Type 0 headers only (0x2c, 0x2e).
    pub subsystem: Option<(u16, u16)>,
    pub command: u16,
    pub status: u16,
    /// Type 1 headers: Secondary Status (0x1e), same error bits as Status, for the secondary
    /// bus.
    pub secondary_status: Option<u16>,
    pub pcie: Option<Pcie>,
    pub aer: Option<Aer>,
    pub dpc: Option<Dpc>,
    /// What could not be read or looked wrong (short file, capability loop, truncated
    /// capability).
    pub notes: Vec<String>,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// The kernel's `PCI_FIND_CAP_TTL`: at most 48 capabilities in the conventional list.
const CAP_TTL: usize = 48;
/// Extended capabilities: at most (4096 - 256) / 8 entries (`pci_find_next_ext_capability`).
const EXT_CAP_TTL: usize = (4096 - 256) / 8;
const CAP_ID_EXP: u8 = 0x10;
const EXT_CAP_ID_ERR: u16 = 0x0001;
const EXT_CAP_ID_DPC: u16 = 0x001d;

/// Parses the bytes of a `config` file.
///
/// # Errors
/// Fewer than 64 bytes, or a vendor ID of 0xffff (the device did not answer).
pub fn parse(bytes: &[u8]) -> Result<Config, ConfigError> {
    if bytes.len() < 64 {
        return Err(ConfigError::Short { len: bytes.len() });
    }
    let r16 = |off| u16_at(bytes, off).unwrap_or(0);
    let vendor = r16(0x00);
    if vendor == 0xffff {
        return Err(ConfigError::NotResponding);
    }
    let header_type = bytes[0x0e] & 0x7f;
    let mut config = Config {
        vendor,
        device: r16(0x02),
        class: u32_at(bytes, 0x08).unwrap_or(0) >> 8,
        header_type,
        subsystem: (header_type == 0).then(|| (r16(0x2c), r16(0x2e))),
        command: r16(0x04),
        status: r16(0x06),
        secondary_status: (header_type == 1).then(|| r16(0x1e)),
        pcie: None,
        aer: None,
        dpc: None,
        notes: Vec::new(),
    };
    if config.status & STATUS_CAP_LIST != 0 && header_type != 2 {
        walk_capabilities(bytes, &mut config);
    }
    if config.pcie.is_some() {
        if bytes.len() >= 0x104 {
            walk_extended(bytes, &mut config);
        } else {
            config.notes.push(format!(
                "only {} bytes of config space readable: extended capabilities (AER, DPC) not seen",
                bytes.len()
            ));
        }
    }
    bound_notes(&mut config.notes);
    Ok(config)
}

/// Reads into `buf` (config-space sized, zeroed by the caller) the parts of config space that
/// [`parse`] looks at, through `read(slice, offset)`: the 64-byte header, the capability list
/// entry by entry, then the extended capability chain header by header, and the AER and DPC
/// registers. A file that ends before `buf.len()` (conventional PCI: 256 bytes; a reader
/// without `CAP_SYS_ADMIN`: 64) is read whole instead, as before. Returns the length to hand
/// to [`parse`], which then decodes what a whole read would have given.
///
/// A sysfs `config` read costs one config-space access per dword, a trap on a virtual machine:
/// reading all 4 KiB for the ~100 bytes used was most of a scan's time (22 ms for six virtual
/// devices on the project's machine).
///
/// # Errors
/// The first read error.
pub fn read_needed(
    buf: &mut [u8],
    mut read: impl FnMut(&mut [u8], u64) -> std::io::Result<usize>,
) -> std::io::Result<usize> {
    // Reads `from..to` (clamped to `buf`); returns how far it got (short: the file ended).
    let mut fill = |buf: &mut [u8], from: usize, to: usize| -> std::io::Result<usize> {
        let to = to.min(buf.len());
        let mut at = from;
        while at < to {
            match read(&mut buf[at..to], at as u64) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(at)
    };
    let mut whole = |buf: &mut [u8], from: usize, to: usize| -> std::io::Result<bool> {
        Ok(fill(buf, from, to)? >= to.min(buf.len()))
    };
    if walk_needed(buf, &mut whole)? {
        return Ok(buf.len());
    }
    // A short file: read all of it, as a whole read would.
    fill(buf, 0, buf.len())
}

/// Follows the capability lists as [`parse`] does, reading what it will look at; `Ok(false)`
/// when the file ended first.
fn walk_needed(
    buf: &mut [u8],
    fill: &mut impl FnMut(&mut [u8], usize, usize) -> std::io::Result<bool>,
) -> std::io::Result<bool> {
    if !fill(buf, 0, 0x40)? {
        return Ok(false);
    }
    let mut pos = usize::from(buf[0x34] & 0xfc);
    let mut seen = Vec::new();
    for _ in 0..CAP_TTL {
        if pos < 0x40 || seen.contains(&pos) {
            break;
        }
        seen.push(pos);
        if !fill(buf, pos, pos + 2)? {
            return Ok(false);
        }
        let (id, next) = (buf[pos], buf[pos + 1]);
        if id == 0xff {
            break;
        }
        if id == CAP_ID_EXP && !fill(buf, pos + 2, pos + 0x0c)? {
            return Ok(false);
        }
        pos = usize::from(next & 0xfc);
    }
    let mut pos = 0x100;
    // A chain that loops back has been read in full the first time round.
    let mut seen = Vec::new();
    for _ in 0..EXT_CAP_TTL {
        if seen.contains(&pos) {
            break;
        }
        seen.push(pos);
        if !fill(buf, pos, pos + 4)? {
            return Ok(false);
        }
        let header = u32_at(buf, pos).unwrap_or(0);
        if header == 0 || header == 0xffff_ffff {
            break;
        }
        // The registers `read_aer` and the DPC arm of `walk_extended` use.
        let registers = match (header & 0xffff) as u16 {
            EXT_CAP_ID_ERR => 0x38,
            EXT_CAP_ID_DPC => 0x0c,
            _ => 0,
        };
        if registers > 0 && !fill(buf, pos + 4, pos + registers)? {
            return Ok(false);
        }
        let next = (header >> 20) as usize & !3;
        if next < 0x100 {
            break;
        }
        pos = next;
    }
    Ok(true)
}

fn bound_notes(notes: &mut Vec<String>) {
    notes.dedup();
    if notes.len() > MAX_NOTES {
        notes.truncate(MAX_NOTES - 1);
        notes.push("further problems not listed".into());
    }
}

/// At most this many notes per device: a hostile capability list cannot flood the timeline.
pub const MAX_NOTES: usize = 8;

fn walk_capabilities(bytes: &[u8], config: &mut Config) {
    let mut pos = usize::from(bytes[0x34] & 0xfc);
    for _ in 0..CAP_TTL {
        if pos < 0x40 {
            return;
        }
        let (Some(&id), Some(&next)) = (bytes.get(pos), bytes.get(pos + 1)) else {
            config.notes.push(format!(
                "capability pointer {pos:#x} beyond the {} readable bytes",
                bytes.len()
            ));
            return;
        };
        if id == 0xff {
            return;
        }
        if id == CAP_ID_EXP {
            match (u16_at(bytes, pos + 2), u16_at(bytes, pos + 0x0a)) {
                (Some(flags), Some(devsta)) => {
                    config.pcie = Some(Pcie {
                        port_type: ((flags >> 4) & 0xf) as u8,
                        devsta,
                    });
                }
                _ => config.notes.push(format!(
                    "PCI Express capability at {pos:#x} truncated by the end of the file"
                )),
            }
        }
        pos = usize::from(next & 0xfc);
    }
    config
        .notes
        .push("capability list does not end within 48 entries (loop?)".into());
}

fn walk_extended(bytes: &[u8], config: &mut Config) {
    let mut pos = 0x100;
    for _ in 0..EXT_CAP_TTL {
        let Some(header) = u32_at(bytes, pos) else {
            config.notes.push(format!(
                "extended capability at {pos:#x} beyond the {} readable bytes",
                bytes.len()
            ));
            return;
        };
        if header == 0 || header == 0xffff_ffff {
            return;
        }
        let id = (header & 0xffff) as u16;
        match id {
            EXT_CAP_ID_ERR => config.aer = read_aer(bytes, pos, config),
            EXT_CAP_ID_DPC => {
                if let (Some(status), Some(source_id)) =
                    (u16_at(bytes, pos + 0x08), u16_at(bytes, pos + 0x0a))
                {
                    config.dpc = Some(Dpc { status, source_id });
                } else {
                    config
                        .notes
                        .push(format!("DPC capability at {pos:#x} truncated"));
                }
            }
            _ => {}
        }
        let next = (header >> 20) as usize & !3;
        if next < 0x100 {
            return;
        }
        pos = next;
    }
    config
        .notes
        .push("extended capability list does not end (loop?)".into());
}

fn read_aer(bytes: &[u8], pos: usize, config: &mut Config) -> Option<Aer> {
    let r = |off| u32_at(bytes, pos + off);
    let (Some(uncor_status), Some(uncor_mask), Some(uncor_severity)) = (r(0x04), r(0x08), r(0x0c))
    else {
        config
            .notes
            .push(format!("AER capability at {pos:#x} truncated"));
        return None;
    };
    let is_root = config
        .pcie
        .is_some_and(|p| p.port_type == PORT_TYPE_ROOT_PORT || p.port_type == PORT_TYPE_RC_EC);
    let root = if is_root {
        if let (Some(status), Some(error_source)) = (r(0x30), r(0x34)) {
            Some(AerRoot {
                status,
                error_source,
            })
        } else {
            config.notes.push(format!(
                "AER root registers at {:#x} beyond the readable bytes",
                pos + 0x30
            ));
            None
        }
    } else {
        None
    };
    Some(Aer {
        uncor_status,
        uncor_mask,
        uncor_severity,
        cor_status: r(0x10).unwrap_or(0),
        cor_mask: r(0x14).unwrap_or(0),
        cap_control: r(0x18).unwrap_or(0),
        header_log: [
            r(0x1c).unwrap_or(0),
            r(0x20).unwrap_or(0),
            r(0x24).unwrap_or(0),
            r(0x28).unwrap_or(0),
        ],
        root,
    })
}

/// Names of the set bits of `value` in `table` (short kernel names).
#[must_use]
pub fn bit_names(value: u32, table: &[(u8, &'static str, &'static str)]) -> Vec<&'static str> {
    let mut out = Vec::new();
    for bit in 0..32u8 {
        if value & (1 << bit) == 0 {
            continue;
        }
        out.push(
            table
                .iter()
                .find(|(b, _, _)| *b == bit)
                .map_or("Reserved", |(_, short, _)| short),
        );
    }
    out
}

/// The short and spec name of uncorrectable-status bit `bit`.
#[must_use]
pub fn uncor_name(bit: u8) -> (&'static str, &'static str) {
    UNCOR_BITS
        .iter()
        .find(|(b, _, _)| *b == bit)
        .map_or(("Reserved", "Reserved bit"), |(_, s, l)| (s, l))
}

/// `0000:02:00.0` from a requester ID (bus 15:8, device 7:3, function 2:0) in `domain`.
#[must_use]
pub fn requester_bdf(domain: u16, id: u16) -> String {
    format!(
        "{domain:04x}:{:02x}:{:02x}.{}",
        id >> 8,
        (id >> 3) & 0x1f,
        id & 7
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PCIe endpoint: capability list at 0x40 (PCIe cap), AER at 0x100, DPC at 0x140.
    pub(crate) fn endpoint() -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[0..2].copy_from_slice(&0x1af4u16.to_le_bytes());
        b[2..4].copy_from_slice(&0x1041u16.to_le_bytes());
        b[4..6].copy_from_slice(&(COMMAND_MASTER | COMMAND_MEMORY).to_le_bytes());
        b[6..8].copy_from_slice(&STATUS_CAP_LIST.to_le_bytes());
        b[0x09..0x0c].copy_from_slice(&[0x00, 0x00, 0x02]);
        b[0x2c..0x2e].copy_from_slice(&0x1af4u16.to_le_bytes());
        b[0x2e..0x30].copy_from_slice(&0x1100u16.to_le_bytes());
        b[0x34] = 0x40;
        b[0x40] = CAP_ID_EXP;
        b[0x41] = 0;
        b[0x42..0x44].copy_from_slice(&0x0002u16.to_le_bytes()); // endpoint, version 2
        b[0x100..0x104].copy_from_slice(&(0x0001u32 | (2 << 16) | (0x140 << 20)).to_le_bytes());
        b[0x140..0x144].copy_from_slice(&0x1d_u32.to_le_bytes());
        b
    }

    fn put32(b: &mut [u8], off: usize, v: u32) {
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn header_fields_are_read_from_their_offsets() {
        let c = parse(&endpoint()).unwrap();
        assert_eq!((c.vendor, c.device), (0x1af4, 0x1041));
        assert_eq!(c.class, 0x02_0000);
        assert_eq!(c.subsystem, Some((0x1af4, 0x1100)));
        assert_eq!(c.command & COMMAND_MASTER, COMMAND_MASTER);
        assert_eq!(c.pcie.unwrap().port_type, 0);
        assert!(c.aer.is_some());
        assert!(c.dpc.is_some());
        assert!(c.notes.is_empty(), "{:?}", c.notes);
    }

    #[test]
    fn aer_registers_and_first_error_pointer() {
        let mut b = endpoint();
        put32(&mut b, 0x104, 1 << 18);
        put32(&mut b, 0x10c, 0x0006_2030);
        put32(&mut b, 0x110, 1 << 6);
        put32(&mut b, 0x118, 0x12 | 0xa0);
        put32(&mut b, 0x11c, 0x4000_0001);
        let aer = parse(&b).unwrap().aer.unwrap();
        assert_eq!(aer.uncor_status, 1 << 18);
        assert_eq!(aer.uncor_severity, 0x0006_2030);
        assert_eq!(aer.first_error_pointer(), 18);
        assert_eq!(uncor_name(aer.first_error_pointer()).0, "MalfTLP");
        assert_eq!(aer.header_log[0], 0x4000_0001);
        assert_eq!(bit_names(aer.cor_status, COR_BITS), ["BadTLP"]);
        assert_eq!(aer.root, None, "endpoints have no root registers");
    }

    #[test]
    fn root_port_has_root_status_and_error_source() {
        let mut b = endpoint();
        b[0x0e] = 1;
        b[0x42..0x44].copy_from_slice(&0x0042u16.to_le_bytes()); // root port
        put32(&mut b, 0x130, 0x7c);
        put32(&mut b, 0x134, 0x0200_0000);
        let c = parse(&b).unwrap();
        assert_eq!(c.subsystem, None);
        assert!(c.secondary_status.is_some());
        let root = c.aer.unwrap().root.unwrap();
        assert_eq!(
            bit_names(root.status, ROOT_STATUS_BITS),
            [
                "ERR_UNCOR",
                "MultiERR_UNCOR",
                "FirstFatal",
                "NonFatalMsg",
                "FatalMsg"
            ]
        );
        assert_eq!(
            requester_bdf(0, (root.error_source >> 16) as u16),
            "0000:02:00.0"
        );
    }

    /// Reads `file` through [`read_needed`]; returns the length, the bytes and how many bytes
    /// were read.
    fn sparse(file: &[u8]) -> (usize, Vec<u8>, usize) {
        let mut buf = vec![0u8; 4096];
        let mut read_bytes = 0;
        let len = read_needed(&mut buf, |dest, offset| {
            let offset = usize::try_from(offset).unwrap();
            let rest = file.get(offset..).unwrap_or_default();
            let n = dest.len().min(rest.len());
            dest[..n].copy_from_slice(&rest[..n]);
            read_bytes += n;
            Ok(n)
        })
        .unwrap();
        (len, buf, read_bytes)
    }

    #[test]
    fn reading_only_what_parse_needs_parses_the_same() {
        let mut root = endpoint();
        root[0x0e] = 1;
        root[0x42..0x44].copy_from_slice(&0x0042u16.to_le_bytes());
        put32(&mut root, 0x104, 1 << 18);
        put32(&mut root, 0x130, 0x7c);
        put32(&mut root, 0x134, 0x0200_0000);
        root[0x148..0x14a].copy_from_slice(&0x0005u16.to_le_bytes());
        let mut looped = endpoint();
        put32(&mut looped, 0x140, 0x1d | (0x100 << 20));
        let mut truncated = endpoint();
        truncated.truncate(0x120);
        // Found by the pci_config fuzz target: a 124-byte file whose capability pointer lies
        // past its end.
        let mut pointer_past_end = endpoint()[..124].to_vec();
        pointer_past_end[0x34] = 0xff;
        for (name, file) in [
            ("endpoint", endpoint()),
            ("root port", root),
            ("capability loop", looped),
            ("file ends inside AER", truncated),
            ("conventional 256 bytes", endpoint()[..256].to_vec()),
            ("unprivileged 64 bytes", endpoint()[..64].to_vec()),
            ("capability pointer past the end", pointer_past_end),
        ] {
            let (len, buf, _) = sparse(&file);
            assert_eq!(len, file.len().min(4096), "{name}");
            assert_eq!(parse(&buf[..len]), parse(&file), "{name}");
        }
        let (_, _, read_bytes) = sparse(&endpoint());
        assert!(
            read_bytes < 200,
            "an endpoint needs {read_bytes} bytes, not 4096"
        );
    }

    #[test]
    fn dpc_status_and_reason() {
        let mut b = endpoint();
        b[0x148..0x14a].copy_from_slice(&0x0005u16.to_le_bytes());
        b[0x14a..0x14c].copy_from_slice(&0x0200u16.to_le_bytes());
        let dpc = parse(&b).unwrap().dpc.unwrap();
        assert!(dpc.triggered());
        assert_eq!(dpc.reason(), "ERR_FATAL received");
        assert_eq!(dpc.source_id, 0x200);
    }

    #[test]
    fn a_64_byte_file_parses_the_header_and_says_what_is_missing() {
        let b = endpoint();
        let c = parse(&b[..64]).unwrap();
        assert_eq!(c.vendor, 0x1af4);
        assert!(c.aer.is_none());
        assert!(
            c.notes.iter().any(|n| n.contains("beyond the 64 readable")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn a_256_byte_pcie_file_says_extended_space_was_not_seen() {
        let c = parse(&endpoint()[..256]).unwrap();
        assert!(c.pcie.is_some());
        assert!(c.aer.is_none());
        assert!(
            c.notes[0].contains("extended capabilities"),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn short_and_absent_devices_are_errors() {
        assert_eq!(parse(&[0; 10]), Err(ConfigError::Short { len: 10 }));
        assert_eq!(parse(&[0xff; 4096]), Err(ConfigError::NotResponding));
    }

    #[test]
    fn capability_loops_end() {
        let mut b = endpoint();
        b[0x41] = 0x40; // points at itself
        let c = parse(&b).unwrap();
        assert!(c.notes.iter().any(|n| n.contains("48 entries")));
        let mut b = endpoint();
        put32(&mut b, 0x140, 0x1d | (0x100 << 20)); // DPC points back at AER
        let c = parse(&b).unwrap();
        assert!(c.notes.iter().any(|n| n.contains("does not end")));
    }

    #[test]
    fn notes_are_bounded() {
        let mut notes: Vec<String> = (0..20).map(|i| format!("problem {i}")).collect();
        bound_notes(&mut notes);
        assert_eq!(notes.len(), MAX_NOTES);
        assert_eq!(notes.last().unwrap(), "further problems not listed");
        let mut few = vec!["a".to_owned(), "a".to_owned()];
        bound_notes(&mut few);
        assert_eq!(few, ["a"]);
    }

    #[test]
    fn truncated_aer_capability_is_a_note() {
        let mut b = endpoint();
        put32(&mut b, 0x100, 0x0001 | (0xff8 << 20));
        put32(&mut b, 0xff8, 0x0001);
        let c = parse(&b).unwrap();
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("AER capability at 0xff8 truncated"))
        );
    }
}
