//! Per-probe status: what was attached, and why everything else was not. Part of the timeline
//! vocabulary (`observer_started` carries it), so it lives with the event types.
use std::fmt;

use serde::{Deserialize, Serialize};

/// The outcome for one probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    /// Attached and recording.
    Attached,
    /// The tracepoint or function does not exist on this kernel.
    Absent,
    /// The function name matches several kernel symbols; attaching by name would be refused or
    /// hit the wrong one.
    Ambiguous,
    /// The kernel lacks the mechanism (e.g. built without kprobes) or tracefs is unavailable.
    Unsupported,
    /// The kernel refused to load or attach the program.
    Refused,
    /// Not requested in this run.
    Disabled,
}

impl fmt::Display for ProbeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Attached => "attached",
            Self::Absent => "not present on this kernel",
            Self::Ambiguous => "ambiguous symbol",
            Self::Unsupported => "unsupported by this kernel",
            Self::Refused => "refused",
            Self::Disabled => "disabled",
        })
    }
}

/// Status of one probe, as printed at start and written into the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub name: String,
    /// `tracepoint:<category>/<name>` or `kprobe:<symbol>`.
    pub target: String,
    pub required: bool,
    pub state: ProbeState,
    /// Why it is not attached (empty when attached).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// The errno of a refusal, when the kernel gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<16} {:<42} {}", self.name, self.target, self.state)?;
        if let Some(errno) = self.errno {
            write!(f, " (errno {errno})")?;
        }
        if !self.reason.is_empty() {
            write!(f, ": {}", self.reason)?;
        }
        if self.required && self.state != ProbeState::Attached {
            f.write_str(" [required]")?;
        }
        Ok(())
    }
}
