//! Where each kprobe goes, decided against kallsyms: in the capture kernel itself, or ahead of
//! time in the first kernel and carried to the capture kernel on its command line.
//!
//! Reading `/proc/kallsyms` means the kernel formatting ~120 000 symbols: 50 ms on hardware,
//! 0.7 s under QEMU TCG, on the capture kernel's one CPU while the dump waits for the daemon.
//! The capture kernel is normally the same build as the first kernel, so `cmdline` (and
//! `setup`) check every kprobe name of the catalogue there, where time is free, and add
//! `kdump_dma_observer.kprobes=<build id>:<catalogue hash>[,<entry>]*` to the capture command
//! line. An entry is `-<symbol>` (absent), `!<symbol>` (ambiguous, refused) or
//! `<symbol>@<base>+<offset>` (ambiguous; the SMMUv3 copy, named relative to a unique symbol);
//! a catalogue symbol without an entry exists exactly once. The daemon trusts the check only
//! when the running kernel's build ID and the catalogue hash match; otherwise it reads kallsyms
//! as before, and says why.
use std::{collections::BTreeMap, fmt::Write as _};

use super::catalog::{CATALOG, Target};
pub use crate::kernel::kallsyms::KprobePoint;
use crate::{
    event::ProbeState,
    kernel::kallsyms::{Kallsyms, Unplaced},
};

/// The kernel command-line parameter (dotted: the kernel ignores it and keeps it in
/// `/proc/cmdline`).
pub const PARAM: &str = "kdump_dma_observer.kprobes";

/// Why a kprobe cannot be placed: the state to report and the reason.
pub type Refusal = (ProbeState, String);

/// Places `symbol` against `kallsyms` ([`Kallsyms::place`]), as a probe state when it cannot be.
pub fn locate(kallsyms: &Kallsyms, symbol: &str, anchors: &[&str]) -> Result<KprobePoint, Refusal> {
    kallsyms.place(symbol, anchors).map_err(|e| match e {
        Unplaced::Absent => (ProbeState::Absent, String::new()),
        Unplaced::Ambiguous(why) => (ProbeState::Ambiguous, why),
    })
}

/// What the first kernel found for one symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Absent,
    Ambiguous,
    At(KprobePoint),
}

/// The first kernel's check of every kprobe symbol of the catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameCheck {
    build_id: String,
    catalog: String,
    /// Symbols that are not simply unique.
    entries: BTreeMap<String, Entry>,
}

/// A `kdump_dma_observer.kprobes=` value that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{PARAM}={value:?}: {problem}")]
pub struct NameCheckError {
    value: String,
    problem: &'static str,
}

/// The catalogue's kprobe symbols and anchors for this architecture: what a check covers.
fn checked_symbols() -> Vec<(&'static str, &'static [&'static str])> {
    CATALOG
        .iter()
        .filter(|s| s.arch.is_native())
        .filter_map(|s| match s.target {
            Target::Kprobe { symbol } => Some((symbol, s.anchors)),
            Target::Tracepoint { .. } => None,
        })
        .collect()
}

/// A fingerprint of what is checked (symbols and anchors): a check made by another catalogue is
/// not trusted. FNV-1a, written out: eight lines do not need a hashing crate.
fn catalog_hash() -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for (symbol, anchors) in checked_symbols() {
        for part in std::iter::once(symbol).chain(anchors.iter().copied()) {
            for byte in part.bytes().chain([0]) {
                hash ^= u32::from(byte);
                hash = hash.wrapping_mul(0x0100_0193);
            }
        }
    }
    format!("{hash:08x}")
}

impl NameCheck {
    /// Checks every catalogue kprobe symbol against `kallsyms` of the kernel with `build_id`.
    #[must_use]
    pub fn run(kallsyms: &Kallsyms, build_id: &str) -> Self {
        Self::run_for(kallsyms, build_id, &checked_symbols())
    }

    fn run_for(
        kallsyms: &Kallsyms,
        build_id: &str,
        symbols: &[(&'static str, &'static [&'static str])],
    ) -> Self {
        let entries = symbols
            .iter()
            .filter_map(|&(symbol, anchors)| {
                let entry = match locate(kallsyms, symbol, anchors) {
                    Ok(point) if point.base == symbol => return None,
                    Ok(point) => Entry::At(point),
                    Err((ProbeState::Absent, _)) => Entry::Absent,
                    Err(_) => Entry::Ambiguous,
                };
                Some((symbol.to_owned(), entry))
            })
            .collect();
        Self {
            build_id: build_id.to_owned(),
            catalog: catalog_hash(),
            entries,
        }
    }

    /// The command-line parameter carrying this check.
    #[must_use]
    pub fn to_param(&self) -> String {
        let mut out = format!("{PARAM}={}:{}", self.build_id, self.catalog);
        for (symbol, entry) in &self.entries {
            out.push(',');
            match entry {
                Entry::Absent => out.push('-'),
                Entry::Ambiguous => out.push('!'),
                Entry::At(_) => {}
            }
            out.push_str(symbol);
            if let Entry::At(p) = entry {
                let _ = write!(out, "@{}+{:#x}", p.base, p.offset);
            }
        }
        out
    }

    /// The check on a kernel command line, if there is one.
    pub fn from_cmdline(cmdline: &str) -> Option<Result<Self, NameCheckError>> {
        let prefix = format!("{PARAM}=");
        cmdline
            .split_ascii_whitespace()
            .rev()
            .find_map(|token| token.strip_prefix(&prefix))
            .map(Self::parse)
    }

    fn parse(value: &str) -> Result<Self, NameCheckError> {
        let error = |problem| NameCheckError {
            value: value.chars().take(200).collect(),
            problem,
        };
        let mut parts = value.split(',');
        let head = parts.next().unwrap_or_default();
        let (build_id, catalog) = head
            .split_once(':')
            .ok_or_else(|| error("expected `<build id>:<catalogue hash>` first"))?;
        let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(build_id) || !hex(catalog) {
            return Err(error("the build ID and catalogue hash must be hex"));
        }
        let mut entries = BTreeMap::new();
        for part in parts {
            let (symbol, entry) = if let Some(s) = part.strip_prefix('-') {
                (s, Entry::Absent)
            } else if let Some(s) = part.strip_prefix('!') {
                (s, Entry::Ambiguous)
            } else {
                let (symbol, at) = part.split_once('@').ok_or_else(|| {
                    error("expected `-symbol`, `!symbol` or `symbol@base+0xoffset`")
                })?;
                let (base, offset) = at
                    .split_once("+0x")
                    .ok_or_else(|| error("expected `@base+0xoffset`"))?;
                let offset =
                    u64::from_str_radix(offset, 16).map_err(|_| error("the offset is not hex"))?;
                let point = KprobePoint {
                    base: base.to_owned(),
                    offset,
                };
                (symbol, Entry::At(point))
            };
            if symbol.is_empty() {
                return Err(error("an entry without a symbol"));
            }
            entries.insert(symbol.to_owned(), entry);
        }
        Ok(Self {
            build_id: build_id.to_owned(),
            catalog: catalog.to_owned(),
            entries,
        })
    }

    /// Whether this check holds for the running kernel (`build_id`) and this daemon's
    /// catalogue; `Err` says why not.
    pub fn applies_to(&self, build_id: Option<&str>) -> Result<(), String> {
        match build_id {
            None => Err("this kernel has no build ID to match the check against".into()),
            Some(id) if id != self.build_id => Err(format!(
                "the check was made on build {}, this kernel is build {id} (re-run `setup`)",
                self.build_id
            )),
            Some(_) if self.catalog != catalog_hash() => Err(format!(
                "the check was made by another version of the probe catalogue ({} here, {} there)",
                catalog_hash(),
                self.catalog
            )),
            Some(_) => Ok(()),
        }
    }

    /// Places `symbol` as the first kernel's check decided.
    pub fn locate(&self, symbol: &str) -> Result<KprobePoint, Refusal> {
        match self.entries.get(symbol) {
            None => Ok(KprobePoint {
                base: symbol.to_owned(),
                offset: 0,
            }),
            Some(Entry::At(point)) => Ok(point.clone()),
            Some(Entry::Absent) => Err((ProbeState::Absent, String::new())),
            Some(Entry::Ambiguous) => Err((
                ProbeState::Ambiguous,
                format!(
                    "several kernel functions are named {symbol} (checked in the first kernel)"
                ),
            )),
        }
    }

    /// The build ID the check was made on.
    #[must_use]
    pub fn build_id(&self) -> &str {
        &self.build_id
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Debian 6.12-like: SMMUv2 and SMMUv3 both define `arm_smmu_gerror_handler` here (to
    /// exercise the anchored case), `do_sea` twice without anchors, `ghes_proc` missing.
    fn kallsyms() -> Kallsyms {
        Kallsyms::parse(
            Path::new("k"),
            "\
ffff800080a7f000 t arm_smmu_gerror_handler
ffff800080a853d0 t arm_smmu_write_reg_sync
ffff800080a86000 t arm_smmu_evtq_thread
ffff800080a86400 t arm_smmu_gerror_handler
ffff800080a88400 t arm_smmu_cmdq_init
ffff800080a88700 t arm_smmu_init_one_queue
ffff800080a88960 t arm_smmu_device_probe
ffff800080001000 T panic
ffff800080002000 t do_sea
ffff800080003000 t do_sea
ffff800080004000 T do_serror
",
        )
        .unwrap()
    }

    #[test]
    fn the_check_round_trips_through_the_command_line() {
        let check = NameCheck::run(&kallsyms(), "abc123");
        let param = check.to_param();
        let cmdline = format!("root=/dev/vda {param} nr_cpus=1");
        let parsed = NameCheck::from_cmdline(&cmdline).unwrap().unwrap();
        assert_eq!(parsed, check);
        assert_eq!(parsed.applies_to(Some("abc123")), Ok(()));
    }

    #[test]
    fn unique_absent_ambiguous_and_anchored_names_are_kept_apart() {
        let symbols = [
            ("arm_smmu_write_reg_sync", crate::smmu::SMMUV3_ANCHORS),
            ("arm_smmu_gerror_handler", crate::smmu::SMMUV3_ANCHORS),
            ("ghes_proc", &[][..]),
            ("do_sea", &[][..]),
            ("panic", &[][..]),
        ];
        let check = NameCheck::run_for(&kallsyms(), "abc123", &symbols);
        let back = NameCheck::from_cmdline(&check.to_param()).unwrap().unwrap();
        assert_eq!(back, check);
        let unique = check.locate("arm_smmu_write_reg_sync").unwrap();
        assert_eq!(
            (unique.base.as_str(), unique.offset),
            ("arm_smmu_write_reg_sync", 0)
        );
        let anchored = check.locate("arm_smmu_gerror_handler").unwrap();
        assert_eq!(
            (anchored.base.as_str(), anchored.offset),
            ("arm_smmu_evtq_thread", 0x400)
        );
        assert_eq!(check.locate("ghes_proc").unwrap_err().0, ProbeState::Absent);
        assert_eq!(check.locate("do_sea").unwrap_err().0, ProbeState::Ambiguous);
        assert_eq!(check.locate("panic").unwrap().base, "panic");
        // Unique names take no room on the command line.
        assert!(!check.to_param().contains("panic"), "{}", check.to_param());
    }

    #[test]
    fn another_build_or_catalogue_is_not_trusted() {
        let check = NameCheck::run(&kallsyms(), "abc123");
        assert!(
            check
                .applies_to(Some("def456"))
                .unwrap_err()
                .contains("def456")
        );
        assert!(check.applies_to(None).is_err());
        let param = check.to_param().replacen(&catalog_hash(), "00000000", 1);
        let other = NameCheck::from_cmdline(&param).unwrap().unwrap();
        assert!(
            other
                .applies_to(Some("abc123"))
                .unwrap_err()
                .contains("catalogue")
        );
    }

    #[test]
    fn malformed_values_name_the_problem() {
        for (value, problem) in [
            ("", "expected `<build id>:<catalogue hash>` first"),
            ("xyz:12", "must be hex"),
            ("ab:12,do_sea", "expected `-symbol`"),
            ("ab:12,do_sea@panic+12", "expected `@base+0xoffset`"),
            ("ab:12,do_sea@panic+0xzz", "the offset is not hex"),
            ("ab:12,-", "an entry without a symbol"),
        ] {
            let e = NameCheck::from_cmdline(&format!("{PARAM}={value}"))
                .unwrap()
                .unwrap_err();
            assert!(e.to_string().contains(problem), "{value}: {e}");
        }
        assert!(NameCheck::from_cmdline("root=/dev/vda quiet").is_none());
    }
}
