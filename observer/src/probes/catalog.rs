//! The probes the daemon knows, in one table.
//!
//! Required probes are the ones a capture-kernel verdict depends on; optional ones add detail.
//! Nothing here is assumed to exist: the planner checks each target on the running kernel.
//! Probes of one architecture ([`Arch`]) are reported `absent` (and never required) on the
//! other.
//!
//! x86 functions that cannot be probed at all, so they are not in the table: the machine check
//! handler and its panic path (`do_machine_check`, `mce_panic`, `mce_timed_out` in
//! `arch/x86/kernel/cpu/mce/core.c` are `noinstr`), and the NMI error reporters
//! (`pci_serr_error`, `io_check_error`, `unknown_nmi_error` in `arch/x86/kernel/nmi.c` are
//! `NOKPROBE_SYMBOL`). A machine check is seen through `mce:mce_record` (fired by `mce_log()`
//! for every logged record, before any panic) and through the `panic` probe.

/// The architecture a probe exists on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Any,
    Aarch64,
    X86_64,
}

impl Arch {
    /// Whether this build can attach it (`target_arch` of the daemon = the kernel's).
    #[must_use]
    pub fn is_native(self) -> bool {
        match self {
            Self::Any => true,
            Self::Aarch64 => cfg!(target_arch = "aarch64"),
            Self::X86_64 => cfg!(target_arch = "x86_64"),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Any => "any architecture",
            Self::Aarch64 => "arm64",
            Self::X86_64 => "x86_64",
        })
    }
}

/// What a probe attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A tracefs event `category/name`.
    Tracepoint {
        category: &'static str,
        name: &'static str,
    },
    /// A kernel function, by kallsyms name.
    Kprobe { symbol: &'static str },
}

/// The eBPF program that serves a probe (names of functions in `observer-ebpf/src/main.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    SelfTest,
    AerEvent,
    ArmEvent,
    NonStandardEvent,
    McEvent,
    IommuAttach,
    IommuGroupAdd,
    MceRecord,
    /// A kprobe: one program per role, which tags its records with the role.
    Function(FunctionRole),
}

impl Program {
    /// The program's name in the eBPF object.
    #[must_use]
    pub fn object_name(self) -> &'static str {
        match self {
            Self::SelfTest => "selftest",
            Self::AerEvent => "aer_event",
            Self::ArmEvent => "arm_event",
            Self::NonStandardEvent => "non_standard_event",
            Self::McEvent => "mc_event",
            Self::IommuAttach => "iommu_attach",
            Self::IommuGroupAdd => "iommu_group_add",
            Self::MceRecord => "mce_record",
            Self::Function(role) => role.program_name(),
        }
    }
}

/// How a kprobe hit is turned into a timeline event (shared with the eBPF side).
pub use observer_common::FunctionRole;

/// One row of the catalogue.
#[derive(Clone, Copy, Debug)]
pub struct ProbeSpec {
    /// Stable probe name (status output, metrics labels).
    pub name: &'static str,
    pub target: Target,
    pub program: Program,
    /// Functions that exist once and only in the target's driver: if the symbol name is
    /// ambiguous, the copy beside them is the one probed (see `Kallsyms::resolve_near`).
    pub anchors: &'static [&'static str],
    /// Whether a capture-kernel verdict needs it (reported as such when missing).
    pub required: bool,
    /// The architecture it exists on.
    pub arch: Arch,
    /// One line for `probes` output.
    pub purpose: &'static str,
}

const fn tp(
    name: &'static str,
    category: &'static str,
    event: &'static str,
    program: Program,
    required: bool,
    purpose: &'static str,
) -> ProbeSpec {
    ProbeSpec {
        name,
        target: Target::Tracepoint {
            category,
            name: event,
        },
        program,
        anchors: &[],
        required,
        arch: Arch::Any,
        purpose,
    }
}

const fn kp(
    name: &'static str,
    symbol: &'static str,
    role: FunctionRole,
    required: bool,
    purpose: &'static str,
) -> ProbeSpec {
    ProbeSpec {
        name,
        target: Target::Kprobe { symbol },
        program: Program::Function(role),
        anchors: match role {
            FunctionRole::SmmuRegWrite | FunctionRole::SmmuGerror => crate::smmu::SMMUV3_ANCHORS,
            _ => &[],
        },
        required,
        arch: Arch::Any,
        purpose,
    }
}

impl ProbeSpec {
    /// The same probe, existing on `arch` only.
    const fn only(self, arch: Arch) -> Self {
        Self { arch, ..self }
    }
}

/// Every kernel symbol the daemon may look up (probe targets and anchors), so that kallsyms
/// can be read keeping only these.
#[must_use]
pub fn wanted_symbols() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = CATALOG
        .iter()
        .filter_map(|s| match s.target {
            Target::Kprobe { symbol } => Some(symbol),
            Target::Tracepoint { .. } => None,
        })
        .chain(crate::smmu::SMMUV3_ANCHORS.iter().copied())
        .chain(
            crate::kernel::boot_instrumentation::BOOT_PROBES
                .iter()
                .map(|p| p.symbol),
        )
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The self-test probe, attached only when a self-test process is named.
pub(super) const SELF_TEST: ProbeSpec = tp(
    "self_test",
    "syscalls",
    "sys_enter_getpgid",
    Program::SelfTest,
    false,
    "pipeline self-test: getpgid(2) calls of one process",
);

/// Every probe of the daemon except [`SELF_TEST`].
pub const CATALOG: &[ProbeSpec] = &[
    tp(
        "aer_event",
        "ras",
        "aer_event",
        Program::AerEvent,
        true,
        "every AER error, native and firmware-first",
    ),
    tp(
        "arm_event",
        "ras",
        "arm_event",
        Program::ArmEvent,
        false,
        "firmware-first ARM processor error section",
    ),
    tp(
        "non_standard_event",
        "ras",
        "non_standard_event",
        Program::NonStandardEvent,
        false,
        "firmware-first error section of a type the kernel does not decode",
    ),
    tp(
        "mc_event",
        "ras",
        "mc_event",
        Program::McEvent,
        false,
        "memory-controller (EDAC) error, native or firmware-first",
    ),
    tp(
        "iommu_attach",
        "iommu",
        "attach_device_to_domain",
        Program::IommuAttach,
        false,
        "a device attached to an IOMMU domain",
    ),
    tp(
        "iommu_group_add",
        "iommu",
        "add_device_to_group",
        Program::IommuGroupAdd,
        false,
        "a device added to an IOMMU group",
    ),
    tp(
        "mce_record",
        "mce",
        "mce_record",
        Program::MceRecord,
        true,
        "x86 machine check logged (status, address, bank), before any MCE panic",
    )
    .only(Arch::X86_64),
    kp(
        "smmu_reg_write",
        "arm_smmu_write_reg_sync",
        FunctionRole::SmmuRegWrite,
        false,
        "SMMUv3 CR0/GBPA/IRQ_CTRL writes after the daemon started",
    )
    .only(Arch::Aarch64),
    kp(
        "smmu_gerror",
        "arm_smmu_gerror_handler",
        FunctionRole::SmmuGerror,
        false,
        "SMMUv3 global error interrupt",
    )
    .only(Arch::Aarch64),
    // drivers/iommu/intel/dmar.c `irqreturn_t dmar_fault(int irq, void *dev_id)` (5.4 .. 7.x):
    // global, called through the fault interrupt, not NOKPROBE.
    kp(
        "dmar_fault",
        "dmar_fault",
        FunctionRole::DmarFault,
        false,
        "Intel VT-d fault interrupt (DMA remapping or interrupt remapping fault)",
    )
    .only(Arch::X86_64),
    // drivers/iommu/amd/iommu.c: `amd_iommu_int_thread` (every version; polls all logs up to
    // 6.6) and `amd_iommu_int_thread_evtlog` (6.7+: event log only, where IO_PAGE_FAULT and
    // the other AMD-Vi events arrive). `iommu_print_event` is static and usually inlined.
    kp(
        "amd_iommu_event",
        "amd_iommu_int_thread_evtlog",
        FunctionRole::AmdViInterrupt,
        false,
        "AMD-Vi event log interrupt thread (6.7+)",
    )
    .only(Arch::X86_64),
    kp(
        "amd_iommu_int",
        "amd_iommu_int_thread",
        FunctionRole::AmdViInterrupt,
        false,
        "AMD-Vi interrupt thread (event, PPR and GA logs)",
    )
    .only(Arch::X86_64),
    kp(
        "external_abort",
        "do_sea",
        FunctionRole::ExternalAbort,
        true,
        "arm64 synchronous external abort",
    )
    .only(Arch::Aarch64),
    kp(
        "serror",
        "do_serror",
        FunctionRole::Serror,
        true,
        "arm64 SError",
    )
    .only(Arch::Aarch64),
    kp(
        "serror_panic",
        "arm64_serror_panic",
        FunctionRole::SerrorPanic,
        false,
        "arm64 fatal SError",
    )
    .only(Arch::Aarch64),
    kp(
        "ghes",
        "ghes_proc",
        FunctionRole::Ghes,
        false,
        "firmware-first (GHES) error record",
    ),
    kp(
        "ghes_fatal",
        "__ghes_panic",
        FunctionRole::GhesFatal,
        true,
        "firmware-first fatal error: panic follows",
    ),
    kp(
        "aer_recovery",
        "pcie_do_recovery",
        FunctionRole::AerRecovery,
        false,
        "AER/DPC recovery of a device",
    ),
    kp(
        "dpc",
        "dpc_process_error",
        FunctionRole::Dpc,
        true,
        "downstream port containment",
    ),
    kp("panic", "panic", FunctionRole::Panic, true, "kernel panic"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_the_catalogue_names_is_in_the_ebpf_object() {
        // Program names are symbols of the object; a renamed or missing one would make its
        // probe fail at attach time on every kernel.
        let object = crate::EBPF_OBJECT;
        let programs = CATALOG
            .iter()
            .chain([&SELF_TEST])
            .map(|s| s.program.object_name())
            .chain(FunctionRole::ALL.map(FunctionRole::program_name));
        for name in programs {
            let needle = [name.as_bytes(), b"\0"].concat();
            assert!(
                object.windows(needle.len()).any(|w| w == needle),
                "{name} is not a symbol of the eBPF object"
            );
        }
    }

    fn names(arch: Arch) -> Vec<&'static str> {
        CATALOG
            .iter()
            .filter(|s| s.arch == arch)
            .map(|s| s.name)
            .collect()
    }

    #[test]
    fn each_architecture_has_its_own_probes() {
        assert_eq!(
            names(Arch::Aarch64),
            [
                "smmu_reg_write",
                "smmu_gerror",
                "external_abort",
                "serror",
                "serror_panic"
            ]
        );
        assert_eq!(
            names(Arch::X86_64),
            [
                "mce_record",
                "dmar_fault",
                "amd_iommu_event",
                "amd_iommu_int"
            ]
        );
        for shared in [
            "aer_event",
            "ghes",
            "ghes_fatal",
            "aer_recovery",
            "dpc",
            "panic",
        ] {
            assert!(names(Arch::Any).contains(&shared), "{shared}");
        }
        assert_eq!(
            Arch::X86_64.is_native(),
            cfg!(target_arch = "x86_64"),
            "native means the build's own target"
        );
        assert!(Arch::Any.is_native());
    }
}
