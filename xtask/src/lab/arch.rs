//! The guest architecture (`cargo xtask lab --arch`): arm64 on an SMMUv3 `virt` board (the
//! lab's subject), or x86-64 on a q35 board with an Intel VT-d (or AMD-Vi) IOMMU, the baseline
//! the arm64 behaviour is compared against. Everything that differs between the two lives here.
use crate::elf;

/// Which machine the lab boots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum GuestArch {
    /// arm64 `virt` with an SMMUv3 (qemu-system-aarch64).
    #[default]
    Aarch64,
    /// x86-64 q35 with an Intel VT-d IOMMU (qemu-system-x86_64).
    #[value(name = "x86_64")]
    X86_64,
}

/// The x86 machine's IOMMU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum X86Iommu {
    /// `-device intel-iommu,intremap=on,caching-mode=on` (guest: `intel_iommu=on`).
    #[default]
    #[value(name = "intel")]
    Intel,
    /// `-device amd-iommu,intremap=on` (guest: `amd_iommu=on`).
    #[value(name = "amd")]
    Amd,
}

impl GuestArch {
    /// `cargo xtask build --arch` value of the observer the guest runs.
    #[must_use]
    pub(crate) fn build_arch(self) -> &'static str {
        match self {
            Self::Aarch64 => "aarch64",
            Self::X86_64 => "x86_64",
        }
    }

    /// The ELF machine of the guest's binaries.
    #[must_use]
    pub(crate) fn elf_machine(self) -> elf::Machine {
        match self {
            Self::Aarch64 => elf::Machine::Aarch64,
            Self::X86_64 => elf::Machine::X86_64,
        }
    }

    /// Debian's architecture name.
    #[must_use]
    pub(crate) fn debian(self) -> &'static str {
        match self {
            Self::Aarch64 => "arm64",
            Self::X86_64 => "amd64",
        }
    }

    /// The QEMU system emulator.
    #[must_use]
    pub(crate) fn qemu(self) -> &'static str {
        match self {
            Self::Aarch64 => "qemu-system-aarch64",
            Self::X86_64 => "qemu-system-x86_64",
        }
    }

    /// Short label for folder names and tables (`arm64`, `x86_64`).
    #[must_use]
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Aarch64 => "arm64",
            Self::X86_64 => "x86_64",
        }
    }
}
