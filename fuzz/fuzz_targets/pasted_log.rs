//! Pasted kernel logs in any framing (`dmesg -T`/`-x`, journal, syslog, mail quotes, no
//! stamps): the per-line framing of `logparse::prefix` and the whole-log reader with its
//! `log_read` accounting, which drives every line parser (GHES records, firmware-first AER,
//! dump tools, SError, platform, x86 IOMMU lines).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use observer::{
    event::{Detail, Source},
    logparse::{self, MAX_LINE_BYTES, prefix},
};

fuzz_target!(|data: &[u8]| {
    for line in data.split(|&b| b == b'\n') {
        let framed = prefix::frame(line);
        let text = framed.text();
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\t'),
            "control characters survive framing: {text:?}"
        );
        assert!(text.len() <= 3 * MAX_LINE_BYTES);
        assert!(framed.level.is_none_or(|l| l <= 7), "{:?}", framed.level);
        if line.len() > MAX_LINE_BYTES || std::str::from_utf8(line).is_err() {
            assert!(framed.damaged, "a cut or invalid line is counted");
        }
    }
    let events = logparse::read_text_log(Path::new("fuzz.log"), data);
    let Some((last, rest)) = events.split_last() else {
        panic!("read_text_log always ends with log_read");
    };
    let Detail::LogRead {
        lines,
        unreadable,
        untimed,
        timed,
        ..
    } = &last.detail
    else {
        panic!("the last event is log_read: {last:?}");
    };
    let input_lines = data
        .strip_suffix(b"\n")
        .unwrap_or(data)
        .split(|&b| b == b'\n')
        .count() as u64;
    assert_eq!(*lines, input_lines, "every line is counted");
    assert!(*unreadable <= *lines && untimed + timed <= *lines);
    for event in rest {
        assert_eq!(event.source, Source::Console);
        assert!(event.raw.is_some(), "every log event carries its raw line");
        assert!(!matches!(event.detail, Detail::LogRead { .. }));
    }
    observer_fuzz::assert_events_round_trip(&events);
});
