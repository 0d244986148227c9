//! `/proc/kallsyms`: which functions exist, how often a name occurs, and where.
//!
//! A name can occur more than once (static functions of two drivers, e.g. SMMUv2's and
//! SMMUv3's `arm_smmu_device_probe`); a kprobe by such a name is refused by the kernel or lands
//! in the wrong driver, so the probe planner asks [`Kallsyms::addresses`] first.
use std::{
    collections::HashMap,
    io,
    path::{Path, PathBuf},
};

/// The usual path.
pub const KALLSYMS: &str = "/proc/kallsyms";

/// Text (code) symbols of the running kernel, by name.
#[derive(Debug, Default)]
pub struct Kallsyms {
    by_name: HashMap<String, Vec<u64>>,
    /// Whether addresses are real (root without `kptr_restrict` hiding them).
    addresses_visible: bool,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum KallsymsError {
    #[error("cannot read {path}: {source}", path = path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}:{line}: expected `<hex address> <type> <name> [module]`, found {found:?}", path = path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        found: String,
    },
}

impl Kallsyms {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, KallsymsError> {
        let text = std::fs::read_to_string(path).map_err(|source| KallsymsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses kallsyms text; only code symbols (`t`/`T`) are kept.
    pub fn parse(path: &Path, text: &str) -> Result<Self, KallsymsError> {
        let mut by_name: HashMap<String, Vec<u64>> = HashMap::new();
        let mut addresses_visible = false;
        for (index, line) in text.lines().enumerate() {
            let mut parts = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(malformed(path, index, line));
            };
            let addr = u64::from_str_radix(addr, 16).map_err(|_| malformed(path, index, line))?;
            if !matches!(kind, "t" | "T") {
                continue;
            }
            addresses_visible |= addr != 0;
            by_name.entry(name.to_owned()).or_default().push(addr);
        }
        Ok(Self {
            by_name,
            addresses_visible,
        })
    }

    /// Every address of the code symbol `name` (empty when absent).
    #[must_use]
    pub fn addresses(&self, name: &str) -> &[u64] {
        self.by_name.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether the addresses are real rather than zeroed by `kptr_restrict`.
    #[must_use]
    pub fn addresses_visible(&self) -> bool {
        self.addresses_visible
    }
}

fn malformed(path: &Path, index: usize, line: &str) -> KallsymsError {
    KallsymsError::Malformed {
        path: path.to_path_buf(),
        line: index + 1,
        found: line.chars().take(120).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Excerpt shaped like Debian's 6.12 arm64 kallsyms: SMMUv2 and SMMUv3 both define
    /// `arm_smmu_device_probe`; only SMMUv2 has an `arm_smmu_device_reset` symbol.
    const SAMPLE: &str = "\
ffff800080a7f5b8 t arm_smmu_device_reset
ffff800080a7f8b0 t arm_smmu_device_probe
ffff800080a853d0 t arm_smmu_write_reg_sync
ffff800080a88960 t arm_smmu_device_probe
ffff800081234000 D some_data
ffff800080001000 T panic
ffff800080002000 t mod_fn\t[virtio_net]
";

    #[test]
    fn counts_duplicates_and_skips_data() {
        let k = Kallsyms::parse(Path::new("k"), SAMPLE).unwrap();
        assert_eq!(k.addresses("arm_smmu_device_probe").len(), 2);
        assert_eq!(
            k.addresses("arm_smmu_write_reg_sync"),
            &[0xffff_8000_80a8_53d0]
        );
        assert!(k.addresses("some_data").is_empty());
        assert_eq!(k.addresses("mod_fn").len(), 1);
        assert!(k.addresses_visible());
    }

    #[test]
    fn zeroed_addresses_are_detected() {
        let k = Kallsyms::parse(Path::new("k"), "0000000000000000 T panic\n").unwrap();
        assert!(!k.addresses_visible());
        assert_eq!(k.addresses("panic").len(), 1);
    }

    #[test]
    fn malformed_line_is_reported_with_position() {
        let e = Kallsyms::parse(Path::new("/proc/kallsyms"), "ffff T a\nzz T b\n").unwrap_err();
        assert!(
            e.to_string().starts_with("/proc/kallsyms:2: expected"),
            "{e}"
        );
    }
}
