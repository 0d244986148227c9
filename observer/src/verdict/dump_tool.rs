//! Dump-tool rule (docs/verdict.md, "A failed capture says why"): an incomplete dump
//! (`capture_outcome` with `complete: false`) is a fatal sign of the reset, unless the dump
//! tool itself said why it failed (`dump_tool` `failed` with a `cause`, e.g. makedumpfile's
//! `calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported`). Then the
//! failure is shown, named with its cause, and the reset is judged on the rest. A failure
//! with no named cause stays a fatal sign.
use crate::event::{Detail, Event};

/// The dump tool's own failure in `events`: the position and `tool: message (cause: ...)`
/// of the first failure that names a cause.
#[must_use]
pub fn named_failure(events: &[Event]) -> Option<(usize, String)> {
    events
        .iter()
        .enumerate()
        .find_map(|(i, e)| match &e.detail {
            Detail::DumpTool {
                tool,
                outcome,
                message,
                cause: Some(cause),
            } if outcome == "failed" => Some((i, format!("{tool}: {message} (cause: {cause})"))),
            _ => None,
        })
}

/// The sentence the verdict's summary ends with when the dump tool explained its failure.
#[must_use]
pub fn note(failure: Option<&(usize, String)>) -> String {
    failure.map_or_else(String::new, |(_, text)| {
        format!(
            " The dump is incomplete because the dump tool failed ({text}): a fault of the dump tool, not counted against the SMMU reset."
        )
    })
}

/// Whether `event` is an incomplete dump.
#[must_use]
pub fn is_failed_capture(event: &Event) -> bool {
    matches!(
        event.detail,
        Detail::CaptureOutcome {
            complete: false,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn tool(outcome: &str, cause: Option<&str>) -> Event {
        Event::new(
            1,
            Source::Console,
            Detail::DumpTool {
                tool: "kdump-tools".into(),
                outcome: outcome.into(),
                message: "makedumpfile Failed.".into(),
                cause: cause.map(Into::into),
            },
        )
    }

    #[test]
    fn only_a_failure_with_a_cause_is_named() {
        assert_eq!(named_failure(&[tool("failed", None)]), None);
        assert_eq!(named_failure(&[tool("saved", Some("x"))]), None);
        let (i, text) = named_failure(&[
            tool("failed", None),
            tool(
                "failed",
                Some("calculate_plat_config: VA Bits 52 not supported"),
            ),
        ])
        .unwrap();
        assert_eq!(i, 1);
        assert!(text.contains("calculate_plat_config"), "{text}");
    }
}
