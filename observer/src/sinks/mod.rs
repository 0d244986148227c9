//! Outputs of the timeline.
pub mod jsonl;
