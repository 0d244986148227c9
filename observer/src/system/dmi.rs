//! SMBIOS/DMI names from `/sys/class/dmi/id` (drivers/firmware/dmi-id.c: one attribute file per
//! DMI string; the serial numbers and UUID are root-only and not read).
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bounded;

/// The DMI strings that name a machine and its firmware.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dmi {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sys_vendor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub product_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub board_vendor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub board_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bios_vendor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bios_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bios_date: String,
}

impl Dmi {
    /// `vendor product`, or the board's names when the product's are empty.
    #[must_use]
    pub fn name(&self) -> Option<String> {
        let join = |a: &str, b: &str| {
            let s = format!("{a} {b}");
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_owned())
        };
        join(&self.sys_vendor, &self.product_name)
            .or_else(|| join(&self.board_vendor, &self.board_name))
    }

    /// `vendor version (date)` of the firmware.
    #[must_use]
    pub fn bios(&self) -> Option<String> {
        let date = if self.bios_date.is_empty() {
            String::new()
        } else {
            format!("({})", self.bios_date)
        };
        let s = [self.bios_vendor.as_str(), &self.bios_version, &date]
            .into_iter()
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        (!s.is_empty()).then_some(s)
    }

    /// Every field bounded (see [`super::bounded`]).
    #[must_use]
    pub fn bounded(&self) -> Self {
        Self {
            sys_vendor: bounded(&self.sys_vendor),
            product_name: bounded(&self.product_name),
            product_version: bounded(&self.product_version),
            board_vendor: bounded(&self.board_vendor),
            board_name: bounded(&self.board_name),
            bios_vendor: bounded(&self.bios_vendor),
            bios_version: bounded(&self.bios_version),
            bios_date: bounded(&self.bios_date),
        }
    }
}

/// Reads the DMI strings under `dir`. An error says why there are none (no directory: no
/// SMBIOS tables, e.g. QEMU `virt` booted without UEFI firmware).
pub fn read(dir: &Path) -> Result<Dmi, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{} absent (no SMBIOS tables: a device-tree boot, or firmware without them)",
            dir.display()
        ));
    }
    let field = |name: &str| {
        std::fs::read(dir.join(name))
            .map(|b| bounded(&String::from_utf8_lossy(&b)))
            .unwrap_or_default()
    };
    let dmi = Dmi {
        sys_vendor: field("sys_vendor"),
        product_name: field("product_name"),
        product_version: field("product_version"),
        board_vendor: field("board_vendor"),
        board_name: field("board_name"),
        bios_vendor: field("bios_vendor"),
        bios_version: field("bios_version"),
        bios_date: field("bios_date"),
    };
    if dmi == Dmi::default() {
        return Err(format!("{}: every name is empty", dir.display()));
    }
    Ok(dmi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_names_and_bounds_hostile_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sys_vendor"), "QEMU\n").unwrap();
        std::fs::write(
            dir.path().join("product_name"),
            format!("KVM <script>\x1b[2J{}\n", "A".repeat(500)),
        )
        .unwrap();
        std::fs::write(dir.path().join("bios_vendor"), "EDK II\n").unwrap();
        std::fs::write(dir.path().join("bios_version"), "edk2-stable202302\n").unwrap();
        std::fs::write(dir.path().join("bios_date"), "02/06/2015\n").unwrap();
        let d = read(dir.path()).unwrap();
        assert_eq!(d.sys_vendor, "QEMU");
        assert!(d.product_name.starts_with("KVM <script> [2J"));
        assert_eq!(
            d.product_name.chars().count(),
            super::super::MAX_FIELD_CHARS
        );
        assert!(d.name().unwrap().starts_with("QEMU KVM"));
        assert_eq!(
            d.bios().as_deref(),
            Some("EDK II edk2-stable202302 (02/06/2015)")
        );
    }

    #[test]
    fn board_names_stand_in_for_an_empty_product() {
        let d = Dmi {
            board_vendor: "Ampere(R)".into(),
            board_name: "Mt.Jade".into(),
            ..Dmi::default()
        };
        assert_eq!(d.name().as_deref(), Some("Ampere(R) Mt.Jade"));
    }

    #[test]
    fn missing_or_empty_dmi_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(&dir.path().join("nope")).unwrap_err();
        assert!(e.contains("absent"), "{e}");
        let e = read(dir.path()).unwrap_err();
        assert!(e.contains("every name is empty"), "{e}");
    }
}
