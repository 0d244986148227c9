//! kdump-dma-observer: watches a kdump capture kernel reset the IOMMU, records what that did to
//! DMA still in flight for the crashed kernel, and streams it as one timeline.
//!
//! Data flows one way: [`sources`] → timeline ([`event::Event`]) → [`sinks`].
pub mod capture_dir;
pub mod clock;
pub mod event;
pub mod kernel;
pub mod logparse;
pub mod privileges;
pub mod probes;
pub mod recover;
pub mod replay;
pub mod report;
pub mod run;
pub mod sd_notify;
pub mod setup;
pub mod sinks;
pub mod smmu;
pub mod sources;
pub mod status;
pub mod system;
pub mod timeline;
pub mod verdict;

/// The eBPF object built from `observer-ebpf` for this target's architecture.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/observer"));
