//! Evidence sources. Each turns one kind of kernel output into timeline events.
pub mod boot_trace;
pub mod dump_tool_journal;
pub mod ebpf;
pub mod kmsg;
pub mod pci_snapshot;
pub mod system;
