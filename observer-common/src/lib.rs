//! Records shared by the eBPF programs (kernel side) and the daemon (user side).
//!
//! Every record that crosses the BPF ring buffer is one fixed-size [`Record`]. The kernel side
//! fills it and never allocates; the user side decodes it into typed timeline events. Keeping a
//! single `#[repr(C)]` layout makes the decoder a bounds check and a copy.
#![warn(unused_crate_dependencies)]
#![no_std]

/// Bytes of text carried by a record (device name, panic message prefix, ...), NUL padded.
pub const TEXT_LEN: usize = 32;

/// What a [`Record`] describes. Stored as `u32` in [`Record::kind`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// The pipeline self-test: a `getpgid(2)` call by the process named in `SELFTEST_TGID`.
    /// `args[0]` is the syscall's argument, which the caller uses as a sequence number.
    SelfTest = 1,
    /// `ras:aer_event`. `text` = device (BDF), `args[0]` = status (already `& ~mask`),
    /// `args[1]` = severity (`AER_NONFATAL` 0, `AER_FATAL` 1, `AER_CORRECTABLE` 2),
    /// `args[2]` = TLP header valid.
    AerEvent = 2,
    /// A kernel function probe hit (kprobe). `args[0]` = the [`FunctionRole`] of the program that
    /// fired (each role has its own program, so no address has to be mapped back to a function),
    /// `args[1..4]` = the function's first three arguments.
    FunctionHit = 3,
    /// `iommu:attach_device_to_domain`. `text` = device.
    IommuAttach = 4,
    /// `iommu:add_device_to_group`. `text` = device, `args[0]` = group id.
    IommuGroupAdd = 5,
    /// `ras:arm_event` (a CPER ARM processor section, `drivers/ras/ras.c`
    /// `log_arm_hw_error()`). `args[0]` = MPIDR, `args[1]` = MIDR, `args[2]` = `sev`, the
    /// section's GHES severity (0 none/info, 1 corrected, 2 recoverable, 3 panic), on kernels
    /// whose event has it; `args[3]` = [`PRESENT_SLOT`] mask.
    ArmEvent = 6,
    /// `ras:non_standard_event` (a CPER section of a type the kernel does not decode).
    /// `text` = FRU text, `args[0]` = `sev` (GHES severity, as for [`Self::ArmEvent`]),
    /// `args[1]` = section length, `args[2..4]` = the section type GUID's 16 bytes (raw, in
    /// memory order).
    NonStandardEvent = 7,
    /// `ras:mc_event` (EDAC, native or through `ghes_edac`). `text` = DIMM label, `args[0]` =
    /// `error_type` (`enum hw_event_mc_err_type`: 0 corrected, 1 uncorrected, 2 deferred,
    /// 3 fatal, 4 info), `args[1]` = error count, `args[2]` = address; `args[3]` =
    /// [`PRESENT_SLOT`] mask.
    McEvent = 8,
    /// `mce:mce_record` (x86 machine check, logged by `mce_log()`). `args[0]` = `status`
    /// (`MCi_STATUS`), `args[1]` = `addr` (`MCi_ADDR`), `args[2]` = `bank`.
    MceRecord = 9,
}

/// Why a kernel function is probed, and so how its hit is read. Each role has its own kprobe
/// program ([`FunctionRole::program_name`]), which writes the role into `args[0]` of its
/// [`RecordKind::FunctionHit`] records.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionRole {
    /// `arm_smmu_write_reg_sync(smmu, val, reg_off, ack_off)`: an SMMUv3 register write.
    SmmuRegWrite = 1,
    /// `arm_smmu_gerror_handler`: the SMMUv3 global error interrupt.
    SmmuGerror = 2,
    /// `do_sea(far, esr, regs)`: a synchronous external abort.
    ExternalAbort = 3,
    /// `do_serror(regs, esr)`: an SError.
    Serror = 4,
    /// `arm64_serror_panic(regs, esr)`: a fatal SError.
    SerrorPanic = 5,
    /// `ghes_proc`: a firmware-first error record.
    Ghes = 6,
    /// `__ghes_panic`: a fatal firmware-first error.
    GhesFatal = 7,
    /// `pcie_do_recovery`: `PCIe` error recovery started.
    AerRecovery = 8,
    /// `dpc_process_error`: downstream port containment.
    Dpc = 9,
    /// Intel VT-d fault interrupt (`dmar_fault`).
    DmarFault = 10,
    /// AMD-Vi interrupt thread (`amd_iommu_int_thread*`): event log (faults) and other logs.
    AmdViInterrupt = 11,
    /// `panic(fmt, ...)`: `text` carries the first bytes of the message.
    Panic = 12,
}

impl FunctionRole {
    /// Every role, in code order.
    pub const ALL: [Self; 12] = [
        Self::SmmuRegWrite,
        Self::SmmuGerror,
        Self::ExternalAbort,
        Self::Serror,
        Self::SerrorPanic,
        Self::Ghes,
        Self::GhesFatal,
        Self::AerRecovery,
        Self::Dpc,
        Self::DmarFault,
        Self::AmdViInterrupt,
        Self::Panic,
    ];

    /// Decodes `args[0]` of a function hit; `None` for a value this build does not know.
    #[must_use]
    pub fn from_u64(value: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|r| *r as u64 == value)
    }

    /// The name of this role's kprobe program in the eBPF object.
    #[must_use]
    pub const fn program_name(self) -> &'static str {
        match self {
            Self::SmmuRegWrite => "hit_smmu_reg_write",
            Self::SmmuGerror => "hit_smmu_gerror",
            Self::ExternalAbort => "hit_external_abort",
            Self::Serror => "hit_serror",
            Self::SerrorPanic => "hit_serror_panic",
            Self::Ghes => "hit_ghes",
            Self::GhesFatal => "hit_ghes_fatal",
            Self::AerRecovery => "hit_aer_recovery",
            Self::Dpc => "hit_dpc",
            Self::DmarFault => "hit_dmar_fault",
            Self::AmdViInterrupt => "hit_amd_vi_interrupt",
            Self::Panic => "hit_panic",
        }
    }
}

/// The slot of the presence mask in tracepoint records that carry one: bit `i` of
/// `args[PRESENT_SLOT]` is set when `args[i]` was read from a field the running kernel has (a
/// 0 from an absent field is not a value).
pub const PRESENT_SLOT: usize = 3;

impl RecordKind {
    /// Decodes the `kind` field of a record; `None` for a value this build does not know.
    #[must_use]
    pub const fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => Self::SelfTest,
            2 => Self::AerEvent,
            3 => Self::FunctionHit,
            4 => Self::IommuAttach,
            5 => Self::IommuGroupAdd,
            6 => Self::ArmEvent,
            7 => Self::NonStandardEvent,
            8 => Self::McEvent,
            9 => Self::MceRecord,
            _ => return None,
        })
    }
}

/// One event as written into the BPF ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// `bpf_ktime_get_ns()`: `CLOCK_MONOTONIC`, the clock of kmsg timestamps (modulo suspend).
    pub ts_ns: u64,
    /// A [`RecordKind`] as `u32`.
    pub kind: u32,
    /// The CPU the event fired on.
    pub cpu: u32,
    /// Kernel thread id (`pid` in kernel terms) of the current task.
    pub tid: u32,
    /// Thread group id (the userspace PID) of the current task.
    pub tgid: u32,
    /// Kind-specific values, see [`RecordKind`].
    pub args: [u64; 4],
    /// Kind-specific text, NUL padded, see [`RecordKind`].
    pub text: [u8; TEXT_LEN],
}

impl Record {
    /// Size of a record in the ring buffer, without the ring buffer's own 8-byte header.
    pub const SIZE: usize = core::mem::size_of::<Self>();

    /// A record with every field zeroed, as the eBPF side starts from.
    pub const ZERO: Self = Self {
        ts_ns: 0,
        kind: 0,
        cpu: 0,
        tid: 0,
        tgid: 0,
        args: [0; 4],
        text: [0; TEXT_LEN],
    };

    /// The text up to its first NUL.
    #[must_use]
    pub fn text_bytes(&self) -> &[u8] {
        let end = self
            .text
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.text.len());
        &self.text[..end]
    }
}

/// Slots of the per-CPU `COUNTERS` array map.
pub mod counter {
    /// Records successfully reserved and submitted into the ring buffer.
    pub const SUBMITTED: u32 = 0;
    /// Records lost because the ring buffer was full (or a field could not be read).
    pub const DROPPED: u32 = 1;
    /// Number of slots.
    pub const LEN: u32 = 2;
}

/// Names of maps and globals, shared so that a rename breaks the build, not the daemon.
pub mod names {
    /// The BPF ring buffer of [`super::Record`]s.
    pub const EVENTS_MAP: &str = "EVENTS";
    /// The per-CPU `u64` counters, see [`super::counter`].
    pub const COUNTERS_MAP: &str = "COUNTERS";
    /// Global: the thread group id whose `getpgid(2)` calls the self-test probe records (0 = none).
    pub const SELFTEST_TGID: &str = "SELFTEST_TGID";
    /// Global: [`super::TracepointLayout`] of `ras:aer_event` on the running kernel.
    pub const AER_LAYOUT: &str = "AER_LAYOUT";
    /// Global: [`super::TracepointLayout`] of `iommu:attach_device_to_domain`.
    pub const IOMMU_ATTACH_LAYOUT: &str = "IOMMU_ATTACH_LAYOUT";
    /// Global: [`super::TracepointLayout`] of `iommu:add_device_to_group`.
    pub const IOMMU_GROUP_LAYOUT: &str = "IOMMU_GROUP_LAYOUT";
    /// Global: [`super::TracepointLayout`] of `ras:arm_event`.
    pub const ARM_EVENT_LAYOUT: &str = "ARM_EVENT_LAYOUT";
    /// Global: [`super::TracepointLayout`] of `ras:non_standard_event`; `fields[2]` is the
    /// offset of the 16-byte `sec_type` array (size marked 16).
    pub const NON_STANDARD_LAYOUT: &str = "NON_STANDARD_LAYOUT";
    /// Global: [`super::TracepointLayout`] of `ras:mc_event`.
    pub const MC_EVENT_LAYOUT: &str = "MC_EVENT_LAYOUT";
    /// Global: [`super::TracepointLayout`] of `mce:mce_record` (x86 only).
    pub const MCE_LAYOUT: &str = "MCE_LAYOUT";
}

/// Where a tracepoint's fields sit in its raw record on the running kernel.
///
/// Layouts drift between kernel versions (`ras:aer_event` grew from 4 to 14 TLP header words in
/// 6.18 and gained a `bus_type` string in 7.1), so userspace reads the tracefs `format` file and
/// hands the offsets to the eBPF program as a global. An offset of [`TracepointLayout::ABSENT`]
/// means the field does not exist on this kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TracepointLayout {
    /// Offset of a `__data_loc char[]` string field (the device name).
    pub text_loc: u16,
    /// Offsets of up to three integer fields, copied into `args[0..3]`.
    pub fields: [u16; 3],
    /// Sizes in bytes (1, 2, 4 or 8) of the fields in `fields`.
    pub sizes: [u8; 3],
    /// Explicit padding so the layout has no implicit holes.
    pub pad: u8,
}

impl TracepointLayout {
    /// Marks a field that does not exist on this kernel.
    pub const ABSENT: u16 = u16::MAX;

    /// A layout with no fields; programs given it emit nothing but the timestamp.
    pub const EMPTY: Self = Self {
        text_loc: Self::ABSENT,
        fields: [Self::ABSENT; 3],
        sizes: [0; 3],
        pad: 0,
    };
}

#[cfg(feature = "user")]
// SAFETY: plain `#[repr(C)]` data of integers and byte arrays: every bit pattern is valid and
// there is no implicit padding (asserted below).
unsafe impl aya::Pod for Record {}

#[cfg(feature = "user")]
// SAFETY: as for `Record`: integers only, explicit padding.
unsafe impl aya::Pod for TracepointLayout {}

const _: () = assert!(
    Record::SIZE == 88,
    "Record layout changed: update both sides"
);
const _: () = assert!(Record::SIZE.is_multiple_of(8));
const _: () = assert!(core::mem::size_of::<TracepointLayout>() == 12);
