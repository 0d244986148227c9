//! Facts about the running kernel: tracefs, kallsyms, whether this is a capture kernel, the
//! offset between its log clock and `CLOCK_MONOTONIC`.
pub mod boot_instrumentation;
pub mod build_id;
pub mod capture;
pub mod clock_offset;
pub mod cmdline_rules;
pub mod kallsyms;
pub mod trace_format;
pub mod tracefs;
