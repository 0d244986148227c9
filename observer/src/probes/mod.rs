//! Which probes exist, which of them this kernel offers, attaching them, and decoding what they
//! record.
mod attach;
mod catalog;
mod decode;
mod layout;
pub mod name_check;

pub use crate::event::{ProbeReport, ProbeState};
pub use attach::{Attached, KernelView, KprobeNames, LoadError, LoadOptions, load_and_attach};
pub use catalog::{CATALOG, FunctionRole, ProbeSpec, Program, Target, wanted_symbols};
pub use decode::Decoder;
pub use layout::tracepoint_layout;
