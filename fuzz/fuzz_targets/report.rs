//! The verdict and the three report renderings on whatever event sequence the loader makes of
//! the input (timeline JSON Lines give arbitrary kinds, orders, times and strings).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use observer::{
    report::{self, Report, html, input, json, markdown},
    verdict,
};
use observer_fuzz::Scratch;

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let path = SCRATCH.get_or_init(|| Scratch::new("report")).write(data);
    let Ok(loaded) = input::load(path) else {
        return;
    };
    let events = loaded.events;

    let v = verdict::judge(&events);
    assert!(
        v.boots == 0 || v.judged_boot < v.boots,
        "judged boot {} of {}",
        v.judged_boot,
        v.boots
    );
    for e in v.evidence.iter().chain(&v.reset).chain(&v.first_fatal) {
        assert!(
            e.index < events.len(),
            "evidence index {} of {}",
            e.index,
            events.len()
        );
    }

    let report = Report::build("fuzz input", events.clone());
    assert_eq!(report.verdict, v, "the report judges as judge does");
    assert_eq!(report.header.events_total, events.len());
    assert_eq!(report.header.events_in_boot, report.timeline.len());
    for row in report.evidence_rows() {
        assert!(
            row < report.timeline.len(),
            "evidence row {row} outside the judged boot"
        );
    }

    let _ = markdown::render(&report);
    let page = html::render(&report);
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "machine text reached the HTML unescaped"
    );
    let value = json::render(&report);
    assert_eq!(value["schema_version"], report::SCHEMA_VERSION);
    serde_json::to_string(&value).expect("the JSON report serializes");
});
