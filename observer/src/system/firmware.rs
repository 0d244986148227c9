//! Firmware-first error handling and IORT, from the ACPI tables the kernel exports under
//! `/sys/firmware/acpi/tables` (drivers/acpi/sysfs.c; root-only files) and the `GHES.<n>`
//! platform devices the kernel registers for each GHES source it will use
//! (drivers/acpi/apei/hest.c, `hest_ghes_dev_register`; readable by anyone).
//!
//! HEST layout (include/acpi/actbl1.h): the 36-byte ACPI header, `error_source_count` (u32),
//! then the error sources, each starting with `type` (u16) and `source_id` (u16). The lengths
//! follow hest.c's `hest_esrc_len()`: fixed per type, plus banks for the IA-32 machine-check types.
use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the firmware tables say about error handling and the IOMMU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firmware {
    /// `/sys/firmware/acpi/tables` exists (an ACPI boot).
    pub acpi: bool,
    /// A HEST table is present: the firmware describes its error sources.
    pub hest: bool,
    /// An IORT table is present (how ACPI arm64 describes SMMUs and their PCI streams).
    pub iort: bool,
    /// GHES (firmware-first) error sources listed in HEST, when HEST could be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ghes: Vec<GhesSource>,
    /// `GHES.<n>` platform devices the kernel registered (HEST parsed, GHES in use).
    #[serde(default)]
    pub ghes_devices: u32,
}

impl Firmware {
    /// Errors go to firmware first (GHES), as far as this system shows.
    #[must_use]
    pub fn firmware_first(&self) -> bool {
        self.ghes_devices > 0 || self.ghes.iter().any(|g| g.enabled)
    }

    /// One line: `ACPI, HEST with 2 GHES sources (SEA, SDEI), IORT` / `device tree (no ACPI)`.
    #[must_use]
    pub fn summary(&self) -> String {
        if !self.acpi {
            return "no ACPI tables (device-tree boot): no firmware-first error handling".into();
        }
        let mut parts = vec!["ACPI".to_owned()];
        if self.hest {
            let n = self.ghes.len().max(self.ghes_devices as usize);
            let mut notify: Vec<&str> = self.ghes.iter().map(|g| g.notify.as_str()).collect();
            notify.dedup();
            let how = if notify.is_empty() {
                String::new()
            } else {
                format!(" ({})", notify.join(", "))
            };
            parts.push(format!("HEST with {n} GHES source(s){how}"));
        } else {
            parts.push("no HEST".into());
        }
        parts.push(if self.iort { "IORT" } else { "no IORT" }.into());
        format!(
            "{}: {}",
            parts.join(", "),
            if self.firmware_first() {
                "firmware-first"
            } else {
                "OS-native error handling"
            }
        )
    }
}

/// One GHES error source of HEST.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhesSource {
    pub source_id: u16,
    /// 1 (GHES, type 9) or 2 (`GHESv2`, type 10).
    pub version: u8,
    /// How the firmware signals it: `SEA`, `SDEI`, `GSIV`, `polled`, ...
    pub notify: String,
    pub enabled: bool,
}

/// Reads what the ACPI tables say; the status lines say what could not be read.
#[must_use]
pub fn read(root: &Path) -> (Firmware, Vec<String>) {
    let tables = root.join("sys/firmware/acpi/tables");
    let mut status = Vec::new();
    let mut fw = Firmware {
        acpi: tables.is_dir(),
        hest: tables.join("HEST").exists(),
        iort: tables.join("IORT").exists(),
        ghes: Vec::new(),
        ghes_devices: ghes_devices(&root.join("sys/bus/platform/devices")),
    };
    if fw.hest {
        match std::fs::read(tables.join("HEST")) {
            Ok(bytes) => match parse_hest(&bytes) {
                Ok(ghes) => fw.ghes = ghes,
                Err(e) => status.push(format!("{}: {e}", tables.join("HEST").display())),
            },
            Err(e) => status.push(format!(
                "cannot read {}: {e} (GHES sources counted from the platform devices)",
                tables.join("HEST").display()
            )),
        }
    }
    (fw, status)
}

fn ghes_devices(dir: &Path) -> u32 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        let n = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("GHES."))
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    })
}

/// The GHES sources of a HEST table. Stops at a source type it does not know, with an error
/// naming it (the sources before it are lost, which is said, never guessed).
pub fn parse_hest(table: &[u8]) -> Result<Vec<GhesSource>, String> {
    const HEADER: usize = 36;
    if table.get(0..4) != Some(b"HEST") {
        return Err("not a HEST table (signature)".into());
    }
    let declared = u32_at(table, 4).ok_or("shorter than its header")? as usize;
    let end = declared.min(table.len());
    let count = u32_at(table, HEADER).ok_or("no error source count")?;
    let mut at = HEADER + 4;
    let mut ghes = Vec::new();
    for n in 0..count {
        if at >= end {
            return Err(format!("error source {n} of {count} past the table's end"));
        }
        let kind = u16_at(table, at).ok_or("truncated error source")?;
        let len = source_len(table, at, kind)
            .ok_or_else(|| format!("error source {n}: unknown type {kind} at offset {at}"))?;
        if at + len > end {
            return Err(format!(
                "error source {n} (type {kind}) runs past the table's end"
            ));
        }
        if kind == 9 || kind == 10 {
            ghes.push(GhesSource {
                source_id: u16_at(table, at + 2).unwrap_or_default(),
                version: if kind == 9 { 1 } else { 2 },
                // acpi_hest_generic: enabled at 7, notify.type at 32.
                enabled: table[at + 7] != 0,
                notify: notify_name(table[at + 32]),
            });
        }
        at += len;
    }
    Ok(ghes)
}

/// Length of the error source of `kind` at `at` (hest.c, `hest_esrc_len)`.
fn source_len(table: &[u8], at: usize, kind: u16) -> Option<usize> {
    const BANK: usize = 28; // acpi_hest_ia_error_bank
    let banks = |offset: usize| table.get(at + offset).map(|&b| usize::from(b) * BANK);
    Some(match kind {
        0 => 40 + banks(32)?, // acpi_hest_ia_machine_check, num_hardware_banks at 32
        // acpi_hest_ia_corrected, acpi_hest_ia_deferred_check: banks at 44
        1 | 11 => 48 + banks(44)?,
        2 => 20,  // acpi_hest_ia_nmi
        6 => 48,  // acpi_hest_aer_root
        7 => 44,  // acpi_hest_aer
        8 => 56,  // acpi_hest_aer_bridge
        9 => 64,  // acpi_hest_generic
        10 => 92, // acpi_hest_generic_v2
        _ => return None,
    })
}

/// `ACPI_HEST_NOTIFY_*` (actbl1.h).
fn notify_name(kind: u8) -> String {
    match kind {
        0 => "polled",
        1 => "external interrupt",
        2 => "local interrupt",
        3 => "SCI",
        4 => "NMI",
        5 => "CMCI",
        6 => "MCE",
        7 => "GPIO",
        8 => "SEA",
        9 => "SEI",
        10 => "GSIV",
        11 => "SDEI",
        other => return format!("notify type {other}"),
    }
    .to_owned()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A HEST with an AER root port source, a GHES (SEA) and a `GHESv2` (SDEI, disabled).
    fn hest() -> Vec<u8> {
        let mut t = vec![0u8; 40];
        t[0..4].copy_from_slice(b"HEST");
        t[36..40].copy_from_slice(&3u32.to_le_bytes());
        let mut aer = vec![0u8; 48];
        aer[0..2].copy_from_slice(&6u16.to_le_bytes());
        t.extend(aer);
        let mut g = vec![0u8; 64];
        g[0..2].copy_from_slice(&9u16.to_le_bytes());
        g[2..4].copy_from_slice(&7u16.to_le_bytes());
        g[7] = 1;
        g[32] = 8;
        t.extend(g);
        let mut g2 = vec![0u8; 92];
        g2[0..2].copy_from_slice(&10u16.to_le_bytes());
        g2[2..4].copy_from_slice(&8u16.to_le_bytes());
        g2[32] = 11;
        t.extend(g2);
        let len = u32::try_from(t.len()).unwrap();
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t
    }

    #[test]
    fn ghes_sources_with_their_notification() {
        let g = parse_hest(&hest()).unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(
            (
                g[0].source_id,
                g[0].version,
                g[0].notify.as_str(),
                g[0].enabled
            ),
            (7, 1, "SEA", true)
        );
        assert_eq!(
            (g[1].version, g[1].notify.as_str(), g[1].enabled),
            (2, "SDEI", false)
        );
    }

    #[test]
    fn truncated_or_unknown_sources_are_errors_not_panics() {
        let t = hest();
        for cut in 0..t.len() {
            let _ = parse_hest(&t[..cut]);
        }
        let e = parse_hest(&t[..t.len() - 10]).unwrap_err();
        assert!(e.contains("past the table's end"), "{e}");
        let mut bad = t.clone();
        bad[40] = 42;
        let e = parse_hest(&bad).unwrap_err();
        assert!(e.contains("unknown type 42"), "{e}");
    }

    #[test]
    fn tables_directory_drives_presence_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let (fw, status) = read(dir.path());
        assert!(!fw.acpi && status.is_empty());
        assert!(fw.summary().contains("device-tree boot"));
        let tables = dir.path().join("sys/firmware/acpi/tables");
        std::fs::create_dir_all(&tables).unwrap();
        std::fs::write(tables.join("HEST"), hest()).unwrap();
        std::fs::write(tables.join("IORT"), b"IORT").unwrap();
        let (fw, status) = read(dir.path());
        assert!(status.is_empty(), "{status:?}");
        assert!(fw.acpi && fw.hest && fw.iort && fw.firmware_first());
        assert_eq!(
            fw.summary(),
            "ACPI, HEST with 2 GHES source(s) (SEA, SDEI), IORT: firmware-first"
        );
    }
}
