//! The kernel-log mirror format: lines this daemon writes into the kernel log itself
//! (`sinks::kmsg_mirror` writes them), `kdump-dma-observer: v1 <compact JSON>`. They repeat
//! events already in the timeline, so they are never parsed as new evidence; a console or
//! pstore copy is read back into the timeline with [`parse_mirrored`].
use crate::event::{Detail, Event, ProbeState};

/// Start of every mirrored record's text (the mirror adds a format version after it).
pub const MIRROR_PREFIX: &str = "kdump-dma-observer: ";

/// Whether `text` (a record's text, or a console line after its timestamp) is a mirror line.
#[must_use]
pub fn is_mirrored_line(text: &str) -> bool {
    mirrored_payload(text).is_some()
}

/// What follows [`MIRROR_PREFIX`] in a mirror line (e.g. `v1 {...}`), for reading a console or
/// pstore copy of the timeline back.
#[must_use]
pub fn mirrored_payload(text: &str) -> Option<&str> {
    text.trim_start().strip_prefix(MIRROR_PREFIX)
}

/// Prefix of every mirrored record (after the priority).
pub const PREFIX: &str = "kdump-dma-observer: v1 ";
/// The kernel keeps at most 1024 bytes of text per record; longer lines are skipped, counted.
pub const MAX_RECORD: usize = 976;

/// The record for `event`: `<5>` + prefix + compact JSON without the raw line (which is in
/// the log already) and without the probe list (summarised). `None` if too long.
#[must_use]
pub fn record(event: &Event) -> Option<String> {
    let mut slim = event.clone();
    slim.raw = None;
    if let Detail::ObserverStarted { probes, .. } = &mut slim.detail {
        probes.retain(|p| p.state == ProbeState::Attached);
        for p in probes.iter_mut() {
            p.target.clear();
            p.reason.clear();
        }
    }
    let json = serde_json::to_string(&slim).ok()?;
    let line = format!("<5>{PREFIX}{json}\n");
    (line.len() <= MAX_RECORD).then_some(line)
}

/// Parses a mirrored record's text (after any log prefix such as `[  1.2] `) back into an
/// event; `None` if the text is not a mirror record.
#[must_use]
pub fn parse_mirrored(text: &str) -> Option<Event> {
    let at = text.find(PREFIX)?;
    serde_json::from_str(text[at + PREFIX.len()..].trim_end()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Source};

    fn aer() -> Event {
        Event::new(
            9_669_622_000,
            Source::Kmsg,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: None,
                error_type: Some("Inaccessible".into()),
                reporter: Some("0000:00:03.0".into()),
                errors: Vec::new(),
            },
        )
        .with_raw("pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0")
    }

    #[test]
    fn recognises_the_mirror_prefix_only_at_the_start() {
        assert!(is_mirrored_line(
            "kdump-dma-observer: v1 {\"kind\":\"aer\"}"
        ));
        assert_eq!(
            mirrored_payload(" kdump-dma-observer: v1 {}"),
            Some("v1 {}")
        );
        assert!(!is_mirrored_line("kdump-dma-observer v1"));
        assert!(!is_mirrored_line("foo kdump-dma-observer: v1 {}"));
    }

    #[test]
    fn records_start_with_the_prefix_that_is_skipped() {
        assert!(PREFIX.starts_with(MIRROR_PREFIX));
        assert!(is_mirrored_line(
            record(&aer()).unwrap().trim_start_matches("<5>")
        ));
    }

    #[test]
    fn records_round_trip_through_a_console_line() {
        let line = record(&aer()).unwrap();
        assert!(line.starts_with("<5>kdump-dma-observer: v1 {"));
        assert!(line.ends_with("}\n"));
        assert!(!line.contains("pcieport"), "the raw line is not repeated");
        // As it would appear on a serial console.
        let console = format!("[   10.000001] {}", line.trim_start_matches("<5>"));
        let back = parse_mirrored(&console).unwrap();
        let mut expected = aer();
        expected.raw = None;
        assert_eq!(back, expected);
        assert!(
            parse_mirrored("[ 1.0] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled!").is_none()
        );
    }
}
