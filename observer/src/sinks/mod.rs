//! Outputs of the timeline.
pub mod jsonl;
pub mod kmsg_mirror;
