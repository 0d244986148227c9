//! The report input loader on a file: timeline JSON Lines, kmsg records or log text, told apart
//! by the first line, then SMMU reset assembly and boot fusion.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use observer::report::input;
use observer_fuzz::Scratch;

static SCRATCH: OnceLock<Scratch> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let path = SCRATCH.get_or_init(|| Scratch::new("timeline")).write(data);
    match input::load(path) {
        Ok(loaded) => {
            assert_eq!(loaded.files.len(), 1, "one file in, one file read");
            observer_fuzz::assert_events_round_trip(&loaded.events);
        }
        Err(e) => {
            let message = e.to_string();
            assert!(matches!(e, input::InputError::Timeline { .. }), "{message}");
            assert!(message.contains("expected a timeline event"), "{message}");
        }
    }
});
