//! Checks shared by the fuzz targets: what must hold of every event a parser emits, and a
//! per-process scratch file for the parsers that read from a path.
use std::path::{Path, PathBuf};

use observer::event::Event;

/// Every event survives the timeline's JSON encoding: it serializes, its `kind` is the one
/// [`observer::event::Detail::kind`] names, and it reads back equal. A parser that produced an
/// event the timeline writer cannot write, or a reader cannot read back, fails here.
pub fn assert_event_round_trips(event: &Event) {
    let value = serde_json::to_value(event).expect("an event serializes to JSON");
    assert_eq!(
        value.get("kind").and_then(serde_json::Value::as_str),
        Some(event.detail.kind()),
        "kind in JSON is the detail's kind: {value}"
    );
    assert!(
        value.get("ts_ns").is_some_and(serde_json::Value::is_u64),
        "ts_ns is an unsigned integer: {value}"
    );
    let line = serde_json::to_string(event).expect("an event serializes to a JSON line");
    assert!(!line.contains('\n'), "one event is one JSON line: {line}");
    let back: Event = serde_json::from_str(&line).expect("a written event reads back");
    assert_eq!(&back, event, "event round-trips through JSON: {line}");
}

/// Checks [`assert_event_round_trips`] for each event.
pub fn assert_events_round_trip(events: &[Event]) {
    for event in events {
        assert_event_round_trips(event);
    }
}

/// A file of this process's own for the loaders that take a path (a fuzz run is one process;
/// `-fork`/`-jobs` workers are separate processes, hence the pid).
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// `<tmp>/observer-fuzz-<pid>-<name>`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("observer-fuzz-{}-{name}", std::process::id()));
        Self { path }
    }

    /// Replaces the file's content with `bytes` and returns its path.
    pub fn write(&self, bytes: &[u8]) -> &Path {
        std::fs::write(&self.path, bytes).expect("writing the scratch input file");
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
