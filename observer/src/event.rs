//! The timeline's event type: what every source produces and every output consumes.
//!
//! One JSON object per event: `ts_ns` (kernel monotonic clock), `kind`, `source`, then the
//! kind's own fields. `docs/timeline.md` documents every kind.
use serde::{Deserialize, Serialize};

use crate::probes::ProbeReport;

/// Where an event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A live eBPF probe of this daemon.
    Ebpf,
    /// The daemon itself (start, stop, loss accounting).
    Observer,
}

/// AER severity as the kernel's `ras:aer_event` encodes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Which source saw it.
    pub source: Source,
    /// CPU, when the source knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Kind and kind-specific fields.
    #[serde(flatten)]
    pub detail: Detail,
}

/// Kind-specific part of an [`Event`]; `kind` in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detail {
    /// The daemon is attached and streaming. Written first.
    ObserverStarted {
        version: String,
        capture_kernel: bool,
        kernel_release: String,
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
    /// A `getpgid(2)` call by the self-test process; `seq` is its argument.
    SelfTest { seq: u64, tid: u32 },
    /// `ras:aer_event`.
    Aer {
        device: String,
        severity: AerSeverity,
        /// Error status bits (already masked), hex.
        status: String,
    },
    /// An AER record whose severity value this build does not know.
    AerUnknownSeverity {
        device: String,
        severity: u64,
        status: String,
    },
    /// `iommu:attach_device_to_domain`.
    IommuAttach { device: String },
    /// `iommu:add_device_to_group`.
    IommuGroupAdd { device: String, group: u64 },
    /// `arm_smmu_write_reg_sync(smmu, val, reg_off, ack_off)`: an SMMUv3 control register write.
    SmmuRegWrite {
        /// Register name (`CR0`, `GBPA`, `IRQ_CTRL`, ...) or its offset in hex.
        register: String,
        value: String,
        /// Kernel address of the `struct arm_smmu_device` (identifies the instance).
        smmu_ptr: String,
    },
    /// `arm_smmu_gerror_handler`: SMMUv3 global error interrupt.
    SmmuGerror,
    /// `do_sea(far, esr, regs)`: synchronous external abort.
    ExternalAbort { far: String, esr: String },
    /// `do_serror(regs, esr)` or `arm64_serror_panic(regs, esr)`.
    Serror { esr: String, fatal: bool },
    /// `ghes_proc`: firmware (APEI GHES) reported a hardware error.
    Ghes,
    /// `__ghes_panic`: firmware reported a fatal hardware error; the kernel panics next.
    GhesFatal,
    /// `pcie_do_recovery(dev, state, ...)`: AER/DPC recovery started.
    AerRecovery {
        /// `pci_channel_state_t`: 1 normal, 2 frozen, 3 `perm_failure`.
        channel_state: u64,
    },
    /// `dpc_process_error`: downstream port containment triggered.
    Dpc,
    /// `panic(fmt, ...)` / `vpanic`: the kernel is going down.
    Panic { message: String },
    /// A probe hit the decoder could not attribute (should not happen; reported, not hidden).
    UnknownFunctionHit { address: String },
}

impl Detail {
    /// The `kind` string of this detail, as written to JSON.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ObserverStarted { .. } => "observer_started",
            Self::ObserverStopped { .. } => "observer_stopped",
            Self::RingBufferDrops { .. } => "ring_buffer_drops",
            Self::SelfTest { .. } => "self_test",
            Self::Aer { .. } => "aer",
            Self::AerUnknownSeverity { .. } => "aer_unknown_severity",
            Self::IommuAttach { .. } => "iommu_attach",
            Self::IommuGroupAdd { .. } => "iommu_group_add",
            Self::SmmuRegWrite { .. } => "smmu_reg_write",
            Self::SmmuGerror => "smmu_gerror",
            Self::ExternalAbort { .. } => "external_abort",
            Self::Serror { .. } => "serror",
            Self::Ghes => "ghes",
            Self::GhesFatal => "ghes_fatal",
            Self::AerRecovery { .. } => "aer_recovery",
            Self::Dpc => "dpc",
            Self::Panic { .. } => "panic",
            Self::UnknownFunctionHit { .. } => "unknown_function_hit",
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
    fn json_has_contract_fields() {
        let e = Event {
            ts_ns: 1_637_153_000,
            source: Source::Ebpf,
            cpu: Some(1),
            detail: Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: hex(0x40000),
            },
        };
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
            Detail::SmmuGerror,
            Detail::Dpc,
            Detail::Panic {
                message: "x".into(),
            },
            Detail::SelfTest { seq: 1, tid: 2 },
            Detail::RingBufferDrops {
                dropped_total: 3,
                new: 1,
            },
        ] {
            let v = serde_json::to_value(&d).unwrap();
            assert_eq!(v["kind"], d.kind());
        }
    }
}
