//! Facts about the running kernel: tracefs, kallsyms, whether this is a capture kernel.
pub mod boot_instrumentation;
pub mod capture;
pub mod cmdline_rules;
pub mod kallsyms;
pub mod trace_format;
pub mod tracefs;
