//! The ring-buffer decoder: whatever bytes a (buggy or newer) eBPF side submits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::probes::{Decoder, FunctionRole};

fuzz_target!(|data: &[u8]| {
    // A decoder that knows a few function addresses, as after attaching kprobes.
    let decoder = Decoder::new(vec![
        (0xffff_8000_0810_0000, FunctionRole::SmmuRegWrite),
        (0xffff_8000_0820_0000, FunctionRole::Panic),
        (0xffff_8000_0830_0000, FunctionRole::SmmuGerror),
    ]);
    if let Ok(event) = decoder.decode(data) {
        observer_fuzz::assert_event_round_trips(&event);
    }
});
