//! tracefs `trace` text: the boot-time instrumentation's records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{event::Source, sources::boot_trace};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let events = boot_trace::parse(&text);
    assert!(
        events.len() <= text.lines().count(),
        "at most one event per line"
    );
    for event in &events {
        assert_eq!(event.source, Source::BootTrace);
        assert!(event.cpu.is_some(), "a trace line always names its CPU");
        let raw = event
            .raw
            .as_deref()
            .expect("every boot-trace event carries its line");
        assert!(!raw.contains('\n'), "raw is one line: {raw:?}");
        assert_eq!(raw, raw.trim());
    }
    observer_fuzz::assert_events_round_trip(&events);
});
