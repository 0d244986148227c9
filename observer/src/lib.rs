//! kdump-dma-observer: watches a kdump capture kernel reset the IOMMU, records what that did to
//! DMA still in flight for the crashed kernel, and streams it as one timeline.
//!
//! Data flows one way: [`sources`] → [`timeline`] → [`verdict`] → [`sinks`] and [`report`];
//! [`capture`] wires them together for a capture kernel. The binary's command line
//! (`src/main.rs`, `src/cli/`) is the only place that prints for a person.
#![warn(clippy::print_stdout, clippy::print_stderr, unused_crate_dependencies)]

// Dependencies of the package's other targets (the binary's edge; tests and benches), named
// here so that the library's own unused-dependency check stays meaningful.
use anyhow as _;
use clap as _;
use clap_mangen as _;
#[cfg(test)]
use criterion as _;
#[cfg(test)]
use jsonschema as _;
use tracing_subscriber as _;
pub mod atomic_file;
pub mod capture;
pub mod clock;
pub mod dump_files;
pub mod event;
pub mod kernel;
pub mod logparse;
pub mod privileges;
pub mod probes;
pub mod ras_records;
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
pub mod utc;
pub mod verdict;

/// The eBPF object built from `observer-ebpf` for this target's architecture.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/observer"));
