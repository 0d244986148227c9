//! The ring-buffer decoder: whatever bytes a (buggy or newer) eBPF side submits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::probes::Decoder;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = Decoder.decode(data) {
        observer_fuzz::assert_event_round_trips(&event);
    }
});
