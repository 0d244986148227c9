//! `/dev/kmsg` records: header framing, escapes, the dump splitter and the
//! sequence-number accounting of the decoder.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use observer::{
    event::Detail,
    logparse::{self, MAX_LINE_BYTES, parse_record, split_records},
};

fuzz_target!(|data: &[u8]| {
    // The input as one record.
    if let Ok(record) = parse_record(data) {
        assert!(record.level <= 7);
        assert!(record.text.len() <= MAX_LINE_BYTES, "text is capped");
        let _ = record.ts_ns();
    }
    // The input as a dump: records are non-empty pieces of the input, in order, that start
    // where a record can start.
    let mut covered = 0;
    for record in split_records(data) {
        assert!(!record.is_empty());
        assert!(record[0] != b' ' && record[0] != b'\n', "{record:?}");
        covered += record.len();
        let _ = parse_record(record);
    }
    assert!(covered <= data.len());
    let events = logparse::parse_kmsg_dump(Path::new("kmsg.dump"), data);
    for event in &events {
        if let Detail::KmsgLost { count } = event.detail {
            assert_ne!(count, Some(0), "a loss of zero records");
        }
    }
    observer_fuzz::assert_events_round_trip(&events);
});
