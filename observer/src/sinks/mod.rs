//! Outputs of the timeline.
pub mod http;
pub mod jsonl;
pub mod kmsg_mirror;
pub mod metrics;
