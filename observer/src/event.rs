//! The timeline's event type: what every source produces and every output consumes.
//!
//! One JSON object per event: `ts_ns` (kernel monotonic clock), `kind`, `source`, then the
//! kind's own fields. `docs/timeline.md` documents every kind.
use serde::{Deserialize, Serialize};

mod probe_status;
pub use probe_status::{ProbeReport, ProbeState};

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Records the kernel's boot-time instrumentation (`kprobe_event=`, `trace_event=` on the
    /// command line) left in the tracefs ring buffer before userspace existed.
    BootTrace,
    /// A `/dev/kmsg` record (the kernel log, replayed from boot, then followed).
    Kmsg,
    /// A line of plain log text: `dmesg` output, a serial console log, a pstore file.
    Console,
    /// A live eBPF probe of this daemon.
    Ebpf,
    /// The daemon itself (start, stop, loss accounting).
    Observer,
}

impl Source {
    /// The name used in JSON, metrics labels and reports.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BootTrace => "boot_trace",
            Self::Kmsg => "kmsg",
            Self::Console => "console",
            Self::Ebpf => "ebpf",
            Self::Observer => "observer",
        }
    }
}

/// AER severity, as both the kernel log and `ras:aer_event` distinguish it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AerSeverity {
    Correctable,
    Nonfatal,
    Fatal,
}

impl AerSeverity {
    /// From the tracepoint's `severity` (`AER_NONFATAL` 0, `AER_FATAL` 1, `AER_CORRECTABLE` 2).
    #[must_use]
    pub fn from_tracepoint(value: u64) -> Option<Self> {
        match value {
            0 => Some(Self::Nonfatal),
            1 => Some(Self::Fatal),
            2 => Some(Self::Correctable),
            _ => None,
        }
    }
}

/// One timeline entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Kernel monotonic time in nanoseconds (the clock of kmsg timestamps).
    pub ts_ns: u64,
    /// The source that saw it first.
    pub source: Source,
    /// Every source that saw it, when more than one did (after de-duplication).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// CPU, when the source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// The kernel log line (or trace line) the event was read from: the evidence itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Kind and kind-specific fields.
    #[serde(flatten)]
    pub detail: Detail,
}

/// The fields of [`Event`] around its detail, for [`Event::from_json_line`].
#[derive(Deserialize)]
struct EventHead {
    ts_ns: u64,
    source: Source,
    #[serde(default)]
    sources: Vec<Source>,
    #[serde(default)]
    cpu: Option<u32>,
    #[serde(default)]
    raw: Option<String>,
}

impl Event {
    /// Parses one timeline line, as `serde_json::from_str::<Event>` does, in about half the
    /// time: the head fields and the detail are read in two passes over the line instead of
    /// through serde's `flatten`, which buffers every field of every line first (a quarter of a
    /// million-event report's time). No detail has a field named like a head field, so both
    /// passes see what the flattened one would; a line that fails is parsed again the flattened
    /// way, so errors read the same.
    ///
    /// # Errors
    /// The line is not an event.
    pub fn from_json_line(line: &str) -> Result<Self, serde_json::Error> {
        let fast = serde_json::from_str::<EventHead>(line).and_then(|head| {
            Ok(Self {
                ts_ns: head.ts_ns,
                source: head.source,
                sources: head.sources,
                cpu: head.cpu,
                raw: head.raw,
                detail: serde_json::from_str(line)?,
            })
        });
        fast.or_else(|_| serde_json::from_str(line))
    }

    /// An event with no CPU, raw line or merged sources.
    #[must_use]
    pub fn new(ts_ns: u64, source: Source, detail: Detail) -> Self {
        Self {
            ts_ns,
            source,
            sources: Vec::new(),
            cpu: None,
            raw: None,
            detail,
        }
    }

    /// The same event carrying the line it was read from.
    #[must_use]
    pub fn with_raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }
}

/// One SMMU register write, from the boot trace or a live probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegWrite {
    pub ts_ns: u64,
    /// `CR0`, `GBPA`, `IRQ_CTRL`, ... or the offset in hex.
    pub register: String,
    pub value: String,
    /// Decoded meaning (e.g. `SMMUEN=0 CMDQEN=1`), when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub meaning: String,
}

/// Kind-specific part of an [`Event`]; `kind` in JSON. `docs/timeline.md` documents each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// The daemon is attached and streaming. Written first.
    ObserverStarted {
        version: String,
        capture_kernel: bool,
        kernel_release: String,
        /// The machine's host name (`uname -n`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        hostname: String,
        probes: Vec<ProbeReport>,
    },
    /// The daemon stopped; final loss accounting. Written last.
    ObserverStopped {
        /// Records the kernel side put into the ring buffer.
        submitted: u64,
        /// Records the kernel side could not store (ring full).
        dropped: u64,
        /// Records decoded by userspace.
        received: u64,
        /// Records userspace could not decode (unknown kind or short).
        undecodable: u64,
    },
    /// The kernel side's drop counter grew since the last report.
    RingBufferDrops { dropped_total: u64, new: u64 },
    /// Kernel log records were overwritten before the daemon read them (`/dev/kmsg` EPIPE).
    KmsgLost {
        /// How many, when known (sequence-number gap).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u64>,
    },
    /// A getpgid(2) call by the self-test process; `seq` is its argument.
    SelfTest { seq: u64, tid: u32 },

    /// A kernel started: `Linux version ...` / `Booting Linux on physical CPU ...`. Splits a
    /// console log holding the crashed and the capture boot.
    KernelBoot {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
    },
    /// `Kernel command line: ...`.
    KernelCmdline { cmdline: String },
    /// Text evidence that this boot is a kdump capture kernel (arm64 DT
    /// `Reserving ... for elfcorehdr`, x86 `elfcorehdr=` on the command line, ...).
    CaptureKernelMarker { evidence: String },

    /// SMMUv3 probe line: `ias 44-bit, oas 44-bit (features 0x...)` (7.1: `oas` only).
    SmmuProbe {
        smmu: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ias_bits: Option<u32>,
        oas_bits: u32,
        features: String,
    },
    /// The aggressive reset of an SMMU found enabled: `SMMU currently enabled! Resetting...`
    /// and/or the boot-trace CR0 writes that cleared SMMUEN.
    SmmuReset {
        smmu: String,
        /// Register writes of the reset, in order (boot trace), when recorded.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        writes: Vec<RegWrite>,
    },
    /// Patched kernels: `kdump: retaining SMMUEN for in-flight DMA` (no reset).
    SmmuAdopt { smmu: String },
    /// Patched kernels that refused or failed to adopt and reset after all.
    SmmuAdoptFallback { smmu: String, reason: String },
    /// An SMMUv3 register write (live kprobe on `arm_smmu_write_reg_sync`, or a boot-trace
    /// record not part of a reset).
    SmmuRegWrite {
        /// Device name when known, else the `struct arm_smmu_device` address.
        smmu: String,
        register: String,
        value: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        meaning: String,
    },
    /// SMMUv3 global error: `unexpected global error reported (0x...)` or the GERROR handler.
    SmmuGerror {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        smmu: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gerror: Option<String>,
    },
    /// SMMUv3 event queue record: `event 0x10 received:` (not expected in kdump: EVTQ is off).
    SmmuFault {
        smmu: String,
        event_id: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// Another SMMUv3 error line (`failed to ...`, Service Failure Mode, CMDQ errors, ...).
    SmmuError { smmu: String, message: String },

    /// An AER error. From `ras:aer_event` (eBPF) or the kernel log's source line
    /// (`AER: Uncorrectable (Fatal) error message received from 0000:02:00.0`) with the detail
    /// lines that follow it folded in.
    Aer {
        /// The device that reported the error (BDF).
        device: String,
        severity: AerSeverity,
        /// Error status bits (already masked), hex, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// `Physical Layer`, `Data Link Layer`, `Transaction Layer`, `Inaccessible`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_type: Option<String>,
        /// The port that received the error message (BDF), when logged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reporter: Option<String>,
        /// Named error bits, e.g. `BadTLP`, `MalfTLP (First)`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<String>,
        /// Set when firmware reported the error (CPER record, `aer_status:` lines).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        firmware_first: Option<FirmwareFirst>,
    },
    /// An AER record whose severity value this build does not know.
    AerUnknownSeverity {
        device: String,
        severity: u64,
        status: String,
    },
    /// Outcome of AER/DPC recovery: `device recovery successful|failed`, `can't recover (...)`,
    /// or the `pcie_do_recovery` probe (then `outcome` is `started` and the channel state set).
    AerRecovery {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        outcome: String,
        /// `pci_channel_state_t`: 1 normal, 2 frozen, 3 permanent failure (probe only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel_state: Option<u64>,
    },
    /// Downstream port containment: `DPC: containment event, status:...` or the probe.
    Dpc {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// Firmware-first (APEI GHES) hardware error: `[Hardware Error]: ...` lines or `ghes_proc`.
    Ghes {
        /// CPER severity: `fatal`, `recoverable`, `corrected`, `info`, when logged.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<String>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        /// The `{N}` the kernel numbered the record's log lines with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        record: Option<u32>,
        /// `Hardware error from APEI Generic Hardware Error Source: <id>`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source_id: Option<String>,
        /// The record's CPER sections, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sections: Vec<CperSection>,
    },
    /// `__ghes_panic`: firmware reported a fatal error; the kernel panics next.
    GhesFatal,
    /// A memory-controller error (EDAC, native or through `ghes_edac`): the `ras:mc_event`
    /// tracepoint, or `EDAC MC<n>: <count> CE|UE ...` in the kernel log.
    MemoryError {
        /// `corrected`, `uncorrected`, `deferred`, `fatal` or `info` (the log's `UE` covers
        /// all but `corrected`).
        error_type: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<u32>,
        /// The memory controller's index (`MC<n>`), when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mc: Option<u32>,
        /// Where: the DIMM label (`CPU_SrcID#0_MC#0_Chan#1_DIMM#0`, `unknown memory`).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        label: String,
        /// Physical address, hex, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        /// The rest of the kernel's message (error message, location, syndrome).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// arm64 SError: `SError Interrupt on CPU%d, code 0x... -- %s`, or the probes.
    Serror {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        esr: Option<String>,
        fatal: bool,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// arm64 synchronous external abort (`do_sea`, or its log lines).
    ExternalAbort {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        far: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        esr: Option<String>,
        /// Whether the kernel itself faulted (`Internal error: ...`), not a user task.
        #[serde(default)]
        in_kernel: bool,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// `Kernel panic - not syncing: <message>` or the `panic` probe.
    Panic { message: String },
    /// x86 IOMMU table hand-over in kdump (`DMAR: ... copy translation structures`, `AMD-Vi:
    /// Copied/Reused DEV table ...`).
    IommuTableCopy {
        /// `dmar` or `amd-vi`.
        iommu: String,
        /// `trying`, `copied`, `reused`, `failed`, `not-kdump`.
        outcome: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
    },
    /// x86 machine check logged (`mce:mce_record`).
    Mce {
        /// `MCi_STATUS` of the record.
        status: String,
        /// `MCi_ADDR` (meaningful when `MCi_STATUS.ADDRV`, bit 58, is set).
        addr: String,
        bank: u64,
        /// `MCi_STATUS.UC` (bit 61): uncorrected.
        uncorrected: bool,
    },
    /// `iommu:attach_device_to_domain`.
    IommuAttach { device: String },
    /// `iommu:add_device_to_group`.
    IommuGroupAdd { device: String, group: u64 },
    /// Who the machine is (DMI or device tree, CPU, firmware-first, IOMMU instances, crashed
    /// kernel from VMCOREINFO, running kernel), collected by `run` when it starts.
    SystemIdentity(Box<crate::system::SystemIdentity>),
    /// A kernel log line naming the machine: `DMI: <name>` (`dmi_setup`, `drivers/firmware/dmi_scan.c)`,
    /// `Hardware name: <name>` (`dump_stack_print_info`, `lib/dump_stack.c)` or `Machine model: <name>`
    /// (`setup_machine_fdt`, arch/arm64/kernel/setup.c). `source_line` is `dmi`, `hardware_name` or
    /// `machine_model`.
    PlatformName { source_line: String, name: String },
    /// Whether the dump was written completely, from the dump directory's files (kdump-tools:
    /// `dump.<stamp>` vs `dump-incomplete`; kdump-utils: `vmcore` vs `vmcore-incomplete`).
    CaptureOutcome { complete: bool, detail: String },

    // --- PCI config space (sources::pci_snapshot) ---
    /// One PCI device of interest in a config-space snapshot: it can master DMA (Bus Master
    /// Enable) or has error bits or residue. Read from `/sys/bus/pci/devices/<bdf>/config`.
    PciDevice(Box<PciDevice>),
    /// One scan of `/sys/bus/pci/devices`: counts and what could not be read.
    PciSnapshot {
        /// `start`, `rescan` or `stop`.
        snapshot: String,
        devices: u64,
        /// Devices reported as `pci_device` events by this scan.
        reported: u64,
        /// Devices with an AER capability.
        aer_capable: u64,
        /// Ports with the AER / DPC port service bound (0 under `pcie_ports=compat`,
        /// `pci=noaer`).
        aer_service_ports: u64,
        dpc_service_ports: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        problems: Vec<String>,
        duration_us: u64,
    },

    // --- Pasted logs (issue 11): input accounting, the system's name, dump tools, x86 ---
    /// One text log was read: how many lines, how many could not be read wholly (invalid
    /// UTF-8, cut at the line limit), and how many had no time stamp of their own.
    LogRead {
        file: String,
        lines: u64,
        unreadable: u64,
        /// Lines without a time stamp, placed by their position.
        untimed: u64,
        /// Lines with a time stamp; when 0 the file's times are unknown.
        timed: u64,
    },
    /// A line of the dump tool (kdump-tools, makedumpfile, kdump-utils).
    DumpTool {
        /// `kdump-tools`, `makedumpfile` or `kdump-utils`.
        tool: String,
        /// `started`, `saved`, `failed` or `diagnostic`.
        outcome: String,
        message: String,
        /// For `failed`: the diagnostic that says why, when the tool printed one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    /// An oops header saying `Kdump: loaded`: this boot is the crashing kernel, with a capture
    /// kernel armed.
    KdumpArmed,
    /// An x86 IOMMU fault or failure after the hand-over (VT-d fault records, AMD-Vi
    /// `Completion-Wait loop timed out`, `IO_PAGE_FAULT`).
    IommuFault {
        /// `dmar` or `amd-vi`.
        iommu: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        detail: String,
    },
}

/// A PCI device's identity and error registers, decoded (`pci_device` events).
#[allow(
    clippy::doc_markdown,
    clippy::struct_excessive_bools,
    reason = "PCI register and flag names are prose; the flags are independent register bits"
)]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciDevice {
    /// `start`, `rescan` or `stop`.
    pub snapshot: String,
    pub bdf: String,
    /// `0x1af4`.
    pub vendor: String,
    pub device: String,
    /// `1af4:1100` (type 0 headers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsystem: Option<String>,
    /// Base class, sub-class, interface: `0x020000`.
    pub class: String,
    /// PCIe device/port type (`endpoint`, `root_port`, ...), for PCIe functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iommu_group: Option<u32>,
    /// The IOMMU (SMMU) the device sits behind (sysfs `iommu` link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smmu: Option<String>,
    pub bus_master: bool,
    pub memory_space: bool,
    /// Command and Status registers, hex.
    pub command: String,
    pub status: String,
    /// PCIe Device Status, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devsta: Option<String>,
    /// AER registers, hex, when the device has the capability and it was readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aer: Option<PciAer>,
    /// DPC Status and Error Source ID, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpc_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpc_source: Option<String>,
    /// Error bits set now, named by register (`UESta.MalfTLP (fatal)`, `DevSta.FatalErr`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Traces of errors whose status was cleared (First Error Pointer, header log, Error
    /// Source Identification).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub residue: Vec<String>,
    /// An uncorrectable error is latched now.
    #[serde(default)]
    pub uncorrectable: bool,
    /// The residue points at an uncorrectable error.
    #[serde(default)]
    pub uncorrectable_residue: bool,
    /// Error bits and residue that were not there at the start snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new_since_start: Vec<String>,
    /// What could not be read of this device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The AER capability's registers, hex (`pci_device.aer`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciAer {
    pub uncor_status: String,
    pub uncor_mask: String,
    pub uncor_severity: String,
    pub cor_status: String,
    pub cap_control: String,
    /// Bits 4:0 of the capabilities and control register, with the error's name.
    pub first_error_pointer: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub first_error: String,
    /// Four dwords, hex.
    pub header_log: String,
    /// Root ports and RCECs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_source: Option<String>,
}

/// A firmware-first AER error: the GHES record it came with, and its severity register.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareFirst {
    /// `{N}` of the GHES record naming this device, when the log holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ghes_record: Option<u32>,
    /// `aer_uncor_severity` (hex), printed for uncorrectable errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uncor_severity: Option<String>,
}

/// One CPER section of a GHES record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CperSection {
    /// `PCIe error`, `ARM processor error`, `memory error`, ...
    pub section_type: String,
    /// The section's own severity (`Error N, type: ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// What identifies the fault, by name: `device` (BDF), `port_type`, `command`, `status`,
    /// `vendor_id`, `device_id`, `class_code`, `aer_uncor_status`, `aer_uncor_mask`,
    /// `aer_uncor_severity`, `tlp_header`, `midr`, `mpidr`, `error_type`, `error_info`,
    /// `physical_fault_address`, `virtual_fault_address`, `physical_address`, `error_status`,
    /// `location`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub fields: std::collections::BTreeMap<String, String>,
}

impl Detail {
    /// The `kind` string of this detail, as written to JSON.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ObserverStarted { .. } => "observer_started",
            Self::ObserverStopped { .. } => "observer_stopped",
            Self::RingBufferDrops { .. } => "ring_buffer_drops",
            Self::KmsgLost { .. } => "kmsg_lost",
            Self::SelfTest { .. } => "self_test",
            Self::KernelBoot { .. } => "kernel_boot",
            Self::KernelCmdline { .. } => "kernel_cmdline",
            Self::CaptureKernelMarker { .. } => "capture_kernel_marker",
            Self::SmmuProbe { .. } => "smmu_probe",
            Self::SmmuReset { .. } => "smmu_reset",
            Self::SmmuAdopt { .. } => "smmu_adopt",
            Self::SmmuAdoptFallback { .. } => "smmu_adopt_fallback",
            Self::SmmuRegWrite { .. } => "smmu_reg_write",
            Self::SmmuGerror { .. } => "smmu_gerror",
            Self::SmmuFault { .. } => "smmu_fault",
            Self::SmmuError { .. } => "smmu_error",
            Self::Aer { .. } => "aer",
            Self::AerUnknownSeverity { .. } => "aer_unknown_severity",
            Self::AerRecovery { .. } => "aer_recovery",
            Self::Dpc { .. } => "dpc",
            Self::Ghes { .. } => "ghes",
            Self::GhesFatal => "ghes_fatal",
            Self::MemoryError { .. } => "memory_error",
            Self::Serror { .. } => "serror",
            Self::ExternalAbort { .. } => "external_abort",
            Self::Panic { .. } => "panic",
            Self::IommuTableCopy { .. } => "iommu_table_copy",
            Self::Mce { .. } => "mce",
            Self::IommuAttach { .. } => "iommu_attach",
            Self::IommuGroupAdd { .. } => "iommu_group_add",
            Self::CaptureOutcome { .. } => "capture_outcome",
            Self::SystemIdentity(_) => "system_identity",
            Self::PlatformName { .. } => "platform_name",
            Self::PciDevice(_) => "pci_device",
            Self::PciSnapshot { .. } => "pci_snapshot",
            Self::LogRead { .. } => "log_read",
            Self::DumpTool { .. } => "dump_tool",
            Self::KdumpArmed => "kdump_armed",
            Self::IommuFault { .. } => "iommu_fault",
        }
    }
}

impl Detail {
    /// The evidence lane the event belongs to (the report's SVG timeline draws one row per
    /// lane; the live verdict retains only evidence); `None` for bookkeeping and context
    /// events.
    #[must_use]
    pub fn lane(&self) -> Option<&'static str> {
        Some(match self {
            Self::SmmuProbe { .. }
            | Self::SmmuReset { .. }
            | Self::SmmuAdopt { .. }
            | Self::SmmuAdoptFallback { .. }
            | Self::SmmuRegWrite { .. }
            | Self::SmmuGerror { .. }
            | Self::SmmuFault { .. }
            | Self::SmmuError { .. } => "SMMU",
            Self::Aer { .. } | Self::AerUnknownSeverity { .. } | Self::AerRecovery { .. } => "AER",
            Self::Dpc { .. } => "DPC",
            // Memory-controller errors share the firmware lane: on servers they arrive as
            // GHES memory sections (`ghes_edac`), and both are RAS records.
            Self::Ghes { .. } | Self::GhesFatal | Self::MemoryError { .. } => "GHES",
            Self::Serror { .. } | Self::ExternalAbort { .. } => "SError / abort",
            Self::Panic { .. } => "panic",
            // Config-space reports with something to show (not every bus master).
            Self::PciDevice(d) if !d.errors.is_empty() || !d.residue.is_empty() => "PCI",
            Self::IommuFault { .. } => "IOMMU",
            Self::Mce { .. } => "MCE",
            _ => return None,
        })
    }

    /// Whether a verdict may rest on this event: evidence lanes, and the context that says
    /// which boot it is and how the capture ended.
    #[must_use]
    pub fn is_evidence(&self) -> bool {
        self.lane().is_some()
            || matches!(
                self,
                Self::ObserverStarted { .. }
                    | Self::KernelBoot { .. }
                    | Self::CaptureKernelMarker { .. }
                    | Self::KernelCmdline { .. }
                    | Self::CaptureOutcome { .. }
                    // The x86 hand-over decides `preserved` (verdict::x86_handover).
                    | Self::IommuTableCopy { .. }
                    // What the config-space rule weighs: AER services bound, snapshots taken.
                    | Self::PciDevice(_)
                    | Self::PciSnapshot { .. }
            )
    }

    /// The severity the event itself states (not a verdict): AER's three, `fatal` for what
    /// the kernel only reports when it is (DPC containment, fatal or recoverable firmware
    /// records, SErrors, aborts, panics), `None` otherwise.
    #[must_use]
    pub fn stated_severity(&self) -> Option<&'static str> {
        match self {
            Self::Aer { severity, .. } => Some(match severity {
                AerSeverity::Correctable => "correctable",
                AerSeverity::Nonfatal => "nonfatal",
                AerSeverity::Fatal => "fatal",
            }),
            Self::Ghes {
                severity: Some(s), ..
            } if s == "fatal" => Some("fatal"),
            Self::MemoryError { error_type, .. } if error_type == "fatal" => Some("fatal"),
            Self::Mce {
                uncorrected: true, ..
            } => Some("uncorrected"),
            Self::Dpc { .. }
            | Self::GhesFatal
            | Self::Serror { .. }
            | Self::ExternalAbort { .. }
            | Self::Panic { .. }
            | Self::CaptureOutcome {
                complete: false, ..
            } => Some("fatal"),
            _ => None,
        }
    }
}

/// `0x`-prefixed lower-case hex, the one spelling of register values and addresses.
#[must_use]
pub fn hex(value: u64) -> String {
    format!("{value:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_pass_line_parser_reads_what_the_flattened_one_reads() {
        let lab = include_str!("../tests/data/lab/kdump-aer-612.timeline.jsonl");
        let mut kinds = std::collections::BTreeSet::new();
        for line in lab.lines().filter(|l| !l.trim().is_empty()) {
            let flattened: Event = serde_json::from_str(line).unwrap();
            assert_eq!(Event::from_json_line(line).unwrap(), flattened, "{line}");
            kinds.insert(flattened.detail.kind());
        }
        assert!(kinds.len() >= 10, "a lab capture has many kinds: {kinds:?}");
        // Errors read as the flattened parser's.
        for bad in [
            r#"{"ts_ns":1,"source":"kmsg","kind":"no_such_kind"}"#,
            r#"{"kind":"panic"}"#,
        ] {
            let want = serde_json::from_str::<Event>(bad).unwrap_err().to_string();
            assert_eq!(Event::from_json_line(bad).unwrap_err().to_string(), want);
        }
    }

    #[test]
    fn json_has_contract_fields() {
        let mut e = Event::new(
            1_637_153_000,
            Source::Ebpf,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: Some(hex(0x40000)),
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            },
        );
        e.cpu = Some(1);
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["ts_ns"], 1_637_153_000u64);
        assert_eq!(v["kind"], "aer");
        assert_eq!(v["source"], "ebpf");
        assert_eq!(v["device"], "0000:02:00.0");
        assert_eq!(v["severity"], "fatal");
        assert_eq!(v["status"], "0x40000");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.detail.kind(), "aer");
    }

    #[test]
    fn source_names_match_json() {
        for s in [
            Source::BootTrace,
            Source::Kmsg,
            Source::Console,
            Source::Ebpf,
            Source::Observer,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn severity_follows_kernel_constants() {
        assert_eq!(AerSeverity::from_tracepoint(0), Some(AerSeverity::Nonfatal));
        assert_eq!(AerSeverity::from_tracepoint(1), Some(AerSeverity::Fatal));
        assert_eq!(
            AerSeverity::from_tracepoint(2),
            Some(AerSeverity::Correctable)
        );
        assert_eq!(AerSeverity::from_tracepoint(3), None);
    }

    #[test]
    fn kind_matches_serialized_tag() {
        for d in [
            Detail::SmmuGerror {
                smmu: None,
                gerror: None,
            },
            Detail::GhesFatal,
            Detail::MemoryError {
                error_type: "uncorrected".into(),
                count: Some(1),
                mc: None,
                label: String::new(),
                address: None,
                detail: String::new(),
            },
            Detail::Panic {
                message: "x".into(),
            },
            Detail::SelfTest { seq: 1, tid: 2 },
            Detail::RingBufferDrops {
                dropped_total: 3,
                new: 1,
            },
            Detail::PlatformName {
                source_line: "Machine model".into(),
                name: "linux,dummy-virt".into(),
            },
            Detail::SystemIdentity(Box::default()),
        ] {
            let v = serde_json::to_value(&d).unwrap();
            assert_eq!(v["kind"], d.kind());
        }
    }
}
