//! Plain-text kernel logs (`dmesg`, serial console, pstore): line framing and the line parser.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use observer::logparse::{self, MAX_LINE_BYTES, parse_text_line};

fuzz_target!(|data: &[u8]| {
    // Each line on its own: what the framing promises of the text it keeps.
    for line in data.split(|&b| b == b'\n') {
        let Some(framed) = parse_text_line(line) else {
            continue;
        };
        assert!(
            framed.level.is_none_or(|l| l <= 7),
            "level {:?}",
            framed.level
        );
        assert!(
            !framed.text.chars().any(|c| c.is_control() && c != '\t'),
            "control characters survive sanitizing: {:?}",
            framed.text
        );
        // At most MAX_LINE_BYTES input bytes are read; lossy decoding turns one invalid byte
        // into U+FFFD (three bytes).
        assert!(framed.text.len() <= 3 * MAX_LINE_BYTES);
    }
    // The whole input as one log, multi-line groups and all.
    let events = logparse::parse_text_log_bytes(Path::new("fuzz.log"), data);
    // A line yields at most two events (a command line with `elfcorehdr=` is also the
    // capture-kernel marker); a folded group is one event for several lines.
    let lines = data.split(|&b| b == b'\n').count();
    assert!(
        events.len() <= 2 * lines,
        "{} events from {lines} lines",
        events.len()
    );
    for event in &events {
        assert_eq!(event.source, observer::event::Source::Console);
        assert!(event.raw.is_some(), "every log event carries its raw line");
    }
    observer_fuzz::assert_events_round_trip(&events);
});
