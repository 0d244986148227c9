//! The kmsg mirror's records read back from a console or pstore line, and the mirror's own
//! encoding of whatever was read (`record` then `parse_mirrored` gives the event back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{
    event::Detail,
    logparse::mirror::{self, MAX_RECORD, parse_mirrored},
};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let Some(event) = parse_mirrored(line) else {
            continue;
        };
        observer_fuzz::assert_event_round_trips(&event);
        let Some(record) = mirror::record(&event) else {
            continue;
        };
        assert!(record.len() <= MAX_RECORD);
        assert!(
            record.ends_with('\n') && record.matches('\n').count() == 1,
            "{record:?}"
        );
        let console = format!("[   10.000001] {}", record.trim_start_matches("<5>"));
        let back = parse_mirrored(&console).expect("a mirror record parses back");
        let mut expected = event;
        expected.raw = None;
        if !matches!(
            expected.detail,
            Detail::ObserverStarted { .. } | Detail::SystemIdentity(_)
        ) {
            // (ObserverStarted's probe list is summarised, not copied; so are a
            // SystemIdentity's command line, status lines and SMMU device lists.)
            assert_eq!(back, expected);
        }
    }
});
