//! The device tree's `model` and `compatible` properties (`/sys/firmware/devicetree/base`,
//! also `/proc/device-tree`): NUL-terminated strings, `compatible` a NUL-separated list
//! (drivers/of/fdt.c, `of_flat_dt_get_machine_name` reads the same two).
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{MAX_LIST, bounded};

/// The machine as its device tree names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceTree {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compatible: Vec<String>,
}

impl DeviceTree {
    /// The model, else the first compatible string.
    #[must_use]
    pub fn name(&self) -> Option<String> {
        Some(self.model.clone())
            .filter(|m| !m.is_empty())
            .or_else(|| self.compatible.first().cloned())
    }
}

/// Splits a property into its NUL-separated strings, each bounded, empty ones dropped.
#[must_use]
pub fn strings(property: &[u8]) -> Vec<String> {
    property
        .split(|&b| b == 0)
        .map(|s| bounded(&String::from_utf8_lossy(s)))
        .filter(|s| !s.is_empty())
        .take(MAX_LIST)
        .collect()
}

/// Reads the device tree's names under `root`.
pub fn read(root: &Path) -> Result<DeviceTree, String> {
    let base = [
        root.join("sys/firmware/devicetree/base"),
        root.join("proc/device-tree"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
    .ok_or_else(|| {
        format!(
            "{} absent (an ACPI boot has no device tree)",
            root.join("sys/firmware/devicetree/base").display()
        )
    })?;
    let prop = |name: &str| std::fs::read(base.join(name)).unwrap_or_default();
    let dt = DeviceTree {
        model: strings(&prop("model"))
            .into_iter()
            .next()
            .unwrap_or_default(),
        compatible: strings(&prop("compatible")),
    };
    if dt == DeviceTree::default() {
        return Err(format!(
            "{}: no model or compatible property",
            base.display()
        ));
    }
    Ok(dt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatible_is_a_nul_separated_list() {
        assert_eq!(
            strings(b"ampere,mtjade\0arm,sbsa\0\0"),
            vec!["ampere,mtjade", "arm,sbsa"]
        );
    }

    #[test]
    fn model_falls_back_to_compatible_and_hostile_bytes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("proc/device-tree");
        std::fs::create_dir_all(&base).unwrap();
        let mut hostile = b"evil\x1b]0;x\x07".to_vec();
        hostile.extend(std::iter::repeat_n(b'Z', 400));
        hostile.push(0);
        hostile.extend(b"linux,dummy-virt\0");
        std::fs::write(base.join("compatible"), &hostile).unwrap();
        let dt = read(dir.path()).unwrap();
        assert_eq!(dt.compatible.len(), 2);
        assert!(!dt.compatible[0].contains('\x1b'));
        assert!(dt.compatible[0].chars().count() <= super::super::MAX_FIELD_CHARS);
        assert_eq!(dt.name(), Some(dt.compatible[0].clone()));
    }
}
