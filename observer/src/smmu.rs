//! SMMUv3 register vocabulary (`arm-smmu-v3.h`, unchanged from 6.1 to 7.1).

/// `CR0` offset.
pub const CR0: u64 = 0x20;
/// `GBPA` offset.
pub const GBPA: u64 = 0x44;
/// `CR0.SMMUEN`.
pub const CR0_SMMUEN: u64 = 1 << 0;
/// `GBPA.ABORT`.
pub const GBPA_ABORT: u64 = 1 << 20;

/// SMMUv3-only functions that are real symbols on Debian's 6.1 and 6.12 arm64 builds. SMMUv2
/// (built in too) shares names such as `arm_smmu_device_probe` and `arm_smmu_device_reset`;
/// its copies sit elsewhere in the text section.
pub const SMMUV3_ANCHORS: &[&str] = &[
    "arm_smmu_write_reg_sync",
    "arm_smmu_cmdq_init",
    "arm_smmu_init_one_queue",
    "arm_smmu_evtq_thread",
    "arm_smmu_gerror_handler",
];

/// Name of the register at `offset`, if it is one the driver writes with
/// `arm_smmu_write_reg_sync` or `arm_smmu_update_gbpa`.
#[must_use]
pub fn register_name(offset: u64) -> Option<&'static str> {
    Some(match offset {
        0x20 => "CR0",
        0x24 => "CR0ACK",
        0x28 => "CR1",
        0x2c => "CR2",
        0x44 => "GBPA",
        0x50 => "IRQ_CTRL",
        0x60 => "GERROR",
        0x64 => "GERRORN",
        0x80 => "STRTAB_BASE",
        0x88 => "STRTAB_BASE_CFG",
        _ => return None,
    })
}

/// Human reading of a value written to the register at `offset`, e.g. `SMMUEN=0 (CMDQEN)`.
#[must_use]
pub fn meaning(offset: u64, value: u64) -> String {
    let bits = |names: &[(u64, &str)]| {
        let set: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| value & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            "none".to_owned()
        } else {
            set.join("|")
        }
    };
    match offset {
        CR0 => format!(
            "SMMUEN={} ({})",
            u64::from(value & CR0_SMMUEN != 0),
            bits(&[
                (1 << 0, "SMMUEN"),
                (1 << 1, "PRIQEN"),
                (1 << 2, "EVTQEN"),
                (1 << 3, "CMDQEN"),
                (1 << 4, "ATSCHK"),
            ])
        ),
        GBPA => bits(&[(1 << 31, "UPDATE"), (GBPA_ABORT, "ABORT")]),
        0x50 => bits(&[
            (1 << 0, "GERROR_IRQEN"),
            (1 << 1, "PRIQ_IRQEN"),
            (1 << 2, "EVTQ_IRQEN"),
        ]),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_kdump_reset_sequence() {
        assert_eq!(meaning(CR0, 0x0), "SMMUEN=0 (none)");
        assert_eq!(meaning(CR0, 0x9), "SMMUEN=1 (SMMUEN|CMDQEN)");
        assert_eq!(meaning(CR0, 0xd), "SMMUEN=1 (SMMUEN|EVTQEN|CMDQEN)");
        assert_eq!(meaning(GBPA, 0x8010_0000), "UPDATE|ABORT");
        assert_eq!(meaning(0x50, 0x5), "GERROR_IRQEN|EVTQ_IRQEN");
        assert_eq!(register_name(0x44), Some("GBPA"));
        assert_eq!(register_name(0x1000), None);
    }
}
