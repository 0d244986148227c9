//! The CPU, from its Main ID Register: `/sys/devices/system/cpu/cpu0/regs/identification/midr_el1`
//! (arch/arm64/kernel/cpuinfo.c, `cpuregs_attr`: `0x%016llx`) or the `CPU implementer`/`CPU part`
//! lines of `/proc/cpuinfo` (same file, `c_show`: `CPU implementer\t: 0x%02x`, `CPU variant\t:
//! 0x%x`, `CPU part\t: 0x%03x`, `CPU revision\t: %d`). Names of the common server cores follow
//! arch/arm64/include/asm/cputype.h; any other value is shown raw.
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The boot CPU's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cpu {
    /// `MIDR_EL1` as `0x` and 8 hex digits.
    pub midr: String,
    /// The core's name (`Arm Neoverse N1`), or the raw implementer and part when unknown.
    pub name: String,
    /// CPUs online (`processor` lines of /proc/cpuinfo), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// `MIDR_EL1` fields (Arm ARM D23.2: Implementer [31:24], Variant [23:20], Architecture [19:16],
/// `PartNum` [15:4], Revision [3:0]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Midr(pub u32);

impl Midr {
    #[must_use]
    pub fn implementer(self) -> u32 {
        self.0 >> 24
    }
    #[must_use]
    pub fn variant(self) -> u32 {
        (self.0 >> 20) & 0xf
    }
    #[must_use]
    pub fn part(self) -> u32 {
        (self.0 >> 4) & 0xfff
    }
    #[must_use]
    pub fn revision(self) -> u32 {
        self.0 & 0xf
    }

    /// `Arm Neoverse N1 r3p1`, or `implementer 0x.. part 0x... r.p.` when unknown.
    #[must_use]
    pub fn name(self) -> String {
        let rev = format!("r{}p{}", self.variant(), self.revision());
        let vendor = implementer_name(self.implementer());
        match (vendor, part_name(self.implementer(), self.part())) {
            (Some(v), Some(p)) => format!("{v} {p} {rev}"),
            (Some(v), None) => format!("{v} part {:#05x} {rev}", self.part()),
            (None, _) => format!(
                "implementer {:#04x} part {:#05x} {rev}",
                self.implementer(),
                self.part()
            ),
        }
    }
}

/// `ARM_CPU_IMP_*` of cputype.h.
fn implementer_name(implementer: u32) -> Option<&'static str> {
    Some(match implementer {
        // The Arm ARM reserves 0x00 for software use; QEMU's `-cpu max` reports it.
        0x00 => "software-defined (e.g. QEMU -cpu max)",
        0x41 => "Arm",
        0x42 => "Broadcom",
        0x43 => "Cavium/Marvell",
        0x46 => "Fujitsu",
        0x48 => "HiSilicon",
        0x4e => "NVIDIA",
        0x50 => "Applied Micro",
        0x51 => "Qualcomm",
        0x61 => "Apple",
        0xc0 => "Ampere",
        _ => return None,
    })
}

/// `*_CPU_PART_*` of cputype.h, for the server cores and the few others a lab shows.
fn part_name(implementer: u32, part: u32) -> Option<&'static str> {
    Some(match (implementer, part) {
        (0x41, 0xd03) => "Cortex-A53",
        (0x41, 0xd07) => "Cortex-A57",
        (0x41, 0xd08) => "Cortex-A72",
        (0x41, 0xd0b) => "Cortex-A76",
        (0x41, 0xd0c) => "Neoverse N1",
        (0x41, 0xd40) => "Neoverse V1",
        (0x41, 0xd49) => "Neoverse N2",
        (0x41, 0xd4a) => "Neoverse E1",
        (0x41, 0xd4f) => "Neoverse V2",
        (0x41, 0xd83) => "Neoverse V3AE",
        (0x41, 0xd84) => "Neoverse V3",
        (0x41, 0xd8e) => "Neoverse N3",
        (0x42, 0x516) => "Vulcan",
        (0x43, 0x0a1) => "ThunderX",
        (0x43, 0x0a2) => "ThunderX 81xx",
        (0x43, 0x0a3) => "ThunderX 83xx",
        (0x43, 0x0af) => "ThunderX2",
        (0x46, 0x001) => "A64FX",
        (0x48, 0xd01) => "TSV110 (Kunpeng 920)",
        (0x48, 0xd02) => "HIP09",
        (0x48, 0xd06) => "HIP12",
        (0x4e, 0x000) => "Denver",
        (0x4e, 0x003) => "Denver 2",
        (0x4e, 0x004) => "Carmel",
        (0x4e, 0x010) => "Olympus",
        (0x50, 0x000) => "X-Gene",
        (0xc0, 0xac3) => "Ampere-1",
        (0xc0, 0xac4) => "Ampere-1A",
        _ => return None,
    })
}

/// Reads the boot CPU's MIDR under `root` (sysfs, else /proc/cpuinfo).
pub fn read(root: &Path) -> Result<Cpu, String> {
    let sysfs = root.join("sys/devices/system/cpu/cpu0/regs/identification/midr_el1");
    let cpuinfo = std::fs::read_to_string(root.join("proc/cpuinfo")).ok();
    let midr = match super::read_text(&sysfs) {
        Ok(text) => {
            parse_hex(&text).ok_or_else(|| format!("{}: not hex: {text:?}", sysfs.display()))
        }
        Err(sysfs_error) => cpuinfo
            .as_deref()
            .and_then(midr_from_cpuinfo)
            .ok_or_else(|| {
                format!(
                    "{sysfs_error}; and no CPU implementer/part lines in /proc/cpuinfo (not arm64?)"
                )
            }),
    }?;
    let count = cpuinfo.as_deref().map(|t| {
        u32::try_from(t.lines().filter(|l| l.starts_with("processor")).count()).unwrap_or(u32::MAX)
    });
    Ok(Cpu {
        midr: format!("{midr:#010x}"),
        name: Midr(midr).name(),
        count: count.filter(|&n| n > 0),
    })
}

fn parse_hex(text: &str) -> Option<u32> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    u64::from_str_radix(t, 16)
        .ok()
        .and_then(|v| u32::try_from(v & 0xffff_ffff).ok())
}

/// MIDR rebuilt from the first CPU's `/proc/cpuinfo` fields.
#[must_use]
pub fn midr_from_cpuinfo(text: &str) -> Option<u32> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let num = |v: String| match v.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    };
    let implementer = num(field("CPU implementer")?)?;
    let part = num(field("CPU part")?)?;
    let variant = field("CPU variant").and_then(num).unwrap_or(0);
    let revision = field("CPU revision").and_then(num).unwrap_or(0);
    Some(
        ((implementer & 0xff) << 24)
            | ((variant & 0xf) << 20)
            | (0xf << 16)
            | ((part & 0xfff) << 4)
            | (revision & 0xf),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cores_are_named() {
        assert_eq!(Midr(0x413f_d0c1).name(), "Arm Neoverse N1 r3p1");
        assert_eq!(Midr(0x410f_d4f0).name(), "Arm Neoverse V2 r0p0");
        assert_eq!(Midr(0x410f_d840).name(), "Arm Neoverse V3 r0p0");
        assert_eq!(
            Midr(0x481f_d010).name(),
            "HiSilicon TSV110 (Kunpeng 920) r1p0"
        );
        assert_eq!(Midr(0xc00f_ac30).name(), "Ampere Ampere-1 r0p0");
        assert_eq!(Midr(0x431f_0af1).name(), "Cavium/Marvell ThunderX2 r1p1");
        assert_eq!(Midr(0x461f_0010).name(), "Fujitsu A64FX r1p0");
    }

    #[test]
    fn unknown_values_are_shown_raw() {
        assert_eq!(Midr(0x410f_dfe0).name(), "Arm part 0xdfe r0p0");
        assert_eq!(Midr(0x7a0f_0120).name(), "implementer 0x7a part 0x012 r0p0");
        // QEMU `-cpu max` (the lab's CPU): implementer 0x00, part 0x051.
        assert_eq!(
            Midr(0x000f_0510).name(),
            "software-defined (e.g. QEMU -cpu max) part 0x051 r0p0"
        );
    }

    #[test]
    fn sysfs_midr_is_preferred_and_cpuinfo_counts_cpus() {
        let dir = tempfile::tempdir().unwrap();
        let regs = dir
            .path()
            .join("sys/devices/system/cpu/cpu0/regs/identification");
        std::fs::create_dir_all(&regs).unwrap();
        std::fs::write(regs.join("midr_el1"), "0x00000000413fd0c1\n").unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/cpuinfo"),
            "processor\t: 0\nCPU implementer\t: 0x48\nCPU part\t: 0xd01\n\nprocessor\t: 1\n",
        )
        .unwrap();
        let c = read(dir.path()).unwrap();
        assert_eq!(c.midr, "0x413fd0c1");
        assert_eq!(c.name, "Arm Neoverse N1 r3p1");
        assert_eq!(c.count, Some(2));
    }

    #[test]
    fn cpuinfo_alone_rebuilds_the_midr() {
        let text = "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n";
        assert_eq!(midr_from_cpuinfo(text), Some(0x413f_d0c1));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(dir.path().join("proc/cpuinfo"), text).unwrap();
        assert_eq!(read(dir.path()).unwrap().name, "Arm Neoverse N1 r3p1");
    }

    #[test]
    fn no_source_says_which_were_tried() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(e.contains("midr_el1") && e.contains("/proc/cpuinfo"), "{e}");
    }
}
