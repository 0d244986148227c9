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
/// How far outside the span of its driver's other functions a static function may sit and
/// still count as theirs.
pub const NEIGHBOURHOOD: u64 = 16 * 1024;

/// Text (code) symbols of the running kernel, by name.
#[derive(Debug, Default)]
pub struct Kallsyms {
    by_name: HashMap<String, Vec<u64>>,
    /// Whether addresses are real (root without `kptr_restrict` hiding them).
    addresses_visible: bool,
}

/// Where a kprobe on a function goes: `base + offset`, `base` a unique symbol (the function
/// itself unless its name is ambiguous). Survives KASLR, and the kernel's probe API takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KprobePoint {
    pub base: String,
    pub offset: u64,
}

/// Why a function cannot be probed by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unplaced {
    /// Not in kallsyms (inlined, not built, or its module is not loaded).
    Absent,
    /// Several functions have the name and none could be told to be the one meant: why.
    Ambiguous(String),
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
    /// Reads `path` and keeps the code symbols named in `names`, plus every `arm_smmu_*`
    /// function (the neighbourhood ambiguous SMMU names are resolved in). A distro kernel has
    /// over a hundred thousand symbols; a capture kernel has little memory.
    pub fn load_only(path: &Path, names: &[&str]) -> Result<Self, KallsymsError> {
        let file = std::fs::File::open(path).map_err(|source| KallsymsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Streamed line by line: the file is 10+ MiB of text on a distro kernel, and holding
        // it whole was the largest allocation of the daemon's start.
        Self::parse_filtered(path, io::BufReader::new(file), |name| {
            names.contains(&name) || name.starts_with("arm_smmu_")
        })
    }

    /// Parses kallsyms text; only code symbols (`t`/`T`) are kept.
    pub fn parse(path: &Path, text: &str) -> Result<Self, KallsymsError> {
        Self::parse_filtered(path, text.as_bytes(), |_| true)
    }

    fn parse_filtered(
        path: &Path,
        mut input: impl io::BufRead,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, KallsymsError> {
        let mut by_name: HashMap<String, Vec<u64>> = HashMap::new();
        let mut addresses_visible = false;
        let mut buffer = String::new();
        for index in 0.. {
            buffer.clear();
            let read = input
                .read_line(&mut buffer)
                .map_err(|source| KallsymsError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
            if read == 0 {
                break;
            }
            let line = buffer.trim_end_matches('\n');
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
            if !keep(name) {
                continue;
            }
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

    /// The copy of an ambiguous `name` that belongs to the same driver as `anchors` (functions
    /// that exist once, only in that driver). A driver's functions are laid out together, so
    /// its copy lies within the span of its anchors (widened by [`NEIGHBOURHOOD`]); exactly one
    /// candidate must. A unique name resolves to itself.
    pub fn resolve_near(&self, name: &str, anchors: &[&str]) -> Result<u64, String> {
        let candidates = self.addresses(name);
        match candidates {
            [] => return Err(format!("{name} is not in kallsyms")),
            [only] => return Ok(*only),
            _ => {}
        }
        let anchor_addrs: Vec<u64> = anchors
            .iter()
            .filter_map(|a| match self.addresses(a) {
                [one] => Some(*one),
                _ => None,
            })
            .collect();
        let (Some(low), Some(high)) = (anchor_addrs.iter().min(), anchor_addrs.iter().max()) else {
            return Err(format!(
                "{} copies of {name} and none of its driver's anchor functions ({}) to tell them apart",
                candidates.len(),
                anchors.join(", ")
            ));
        };
        let span = low.saturating_sub(NEIGHBOURHOOD)..=high.saturating_add(NEIGHBOURHOOD);
        let inside: Vec<u64> = candidates
            .iter()
            .copied()
            .filter(|c| span.contains(c))
            .collect();
        match inside.as_slice() {
            [one] => Ok(*one),
            [] => Err(format!(
                "{} copies of {name}; none beside its driver's functions ({low:#x}..{high:#x})",
                candidates.len()
            )),
            _ => Err(format!(
                "{} copies of {name}; {} of them beside its driver's functions, cannot choose",
                candidates.len(),
                inside.len()
            )),
        }
    }

    /// Places a kprobe on `symbol`: the function itself when its name is unique; when it is
    /// ambiguous, the copy beside `anchors` (functions only its driver has), named relative to
    /// a unique symbol; refused otherwise.
    pub fn place(&self, symbol: &str, anchors: &[&str]) -> Result<KprobePoint, Unplaced> {
        match self.addresses(symbol) {
            [] => Err(Unplaced::Absent),
            [_] => Ok(KprobePoint {
                base: symbol.to_owned(),
                offset: 0,
            }),
            many if anchors.is_empty() => Err(Unplaced::Ambiguous(format!(
                "{} kernel functions are named {symbol}",
                many.len()
            ))),
            _ => {
                let address = self
                    .resolve_near(symbol, anchors)
                    .map_err(Unplaced::Ambiguous)?;
                let (base, offset) = self.unique_base_of(address).ok_or_else(|| {
                    Unplaced::Ambiguous(format!(
                        "no unique symbol before {symbol}'s copy to name it by"
                    ))
                })?;
                Ok(KprobePoint {
                    base: base.to_owned(),
                    offset,
                })
            }
        }
    }

    /// The unique symbol at or before `address` among the kept ones, with the offset from it:
    /// a way to name an address that survives KASLR and that the kernel's probe API accepts.
    #[must_use]
    pub fn unique_base_of(&self, address: u64) -> Option<(&str, u64)> {
        self.by_name
            .iter()
            .filter_map(|(name, addrs)| match addrs.as_slice() {
                [a] if *a <= address => Some((name.as_str(), address - a)),
                _ => None,
            })
            .min_by_key(|(_, offset)| *offset)
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
ffff800080a86000 t arm_smmu_evtq_thread
ffff800080a88400 t arm_smmu_cmdq_init
ffff800080a88700 t arm_smmu_init_one_queue
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
        let found = k.addresses("some_data");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(k.addresses("mod_fn").len(), 1);
        assert!(k.addresses_visible());
    }

    #[test]
    fn ambiguous_name_resolves_to_the_copy_beside_its_driver() {
        let k = Kallsyms::parse(Path::new("k"), SAMPLE).unwrap();
        let v3 = [
            "arm_smmu_write_reg_sync",
            "arm_smmu_cmdq_init",
            "arm_smmu_init_one_queue",
            "arm_smmu_evtq_thread",
        ];
        assert_eq!(
            k.resolve_near("arm_smmu_device_probe", &v3),
            Ok(0xffff_8000_80a8_8960),
            "the SMMUv3 copy, next to arm_smmu_write_reg_sync, not SMMUv2's"
        );
        assert_eq!(k.resolve_near("panic", &v3), Ok(0xffff_8000_8000_1000));
        let e = k
            .resolve_near("arm_smmu_device_probe", &["no_such_fn"])
            .unwrap_err();
        assert!(e.contains("none of its driver's anchor functions"), "{e}");
        let base = k.unique_base_of(0xffff_8000_80a8_8960).unwrap();
        assert_eq!(base, ("arm_smmu_init_one_queue", 0x260));
    }

    #[test]
    fn copies_not_told_apart_by_anchors_are_refused() {
        let k = Kallsyms::parse(
            Path::new("k"),
            "0000000000101000 t f\n0000000000103000 t f\n0000000000102000 t anchor\n\
             0000000000900000 t g\n0000000000a00000 t g\n",
        )
        .unwrap();
        let e = k.resolve_near("f", &["anchor"]).unwrap_err();
        assert!(e.contains("2 of them beside its driver's functions"), "{e}");
        let e = k.resolve_near("g", &["anchor"]).unwrap_err();
        assert!(e.contains("none beside its driver's functions"), "{e}");
    }

    #[test]
    fn load_only_keeps_what_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kallsyms");
        std::fs::write(&path, SAMPLE).unwrap();
        let k = Kallsyms::load_only(&path, &["panic"]).unwrap();
        assert_eq!(k.addresses("panic").len(), 1);
        let found = k.addresses("mod_fn");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(
            k.addresses("arm_smmu_device_probe").len(),
            2,
            "SMMU neighbourhood kept"
        );
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
