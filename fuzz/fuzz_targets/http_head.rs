//! The HTTP server's request-head parsing: any bytes a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::sinks::http::{Route, head_complete, route, wants_openmetrics};

fuzz_target!(|data: &[u8]| {
    let r = route(data);
    let _ = wants_openmetrics(data);
    let _ = head_complete(data);
    // Oracle: only a GET of a known path is ever served.
    let first = data.split(|&b| b == b'\n').next().unwrap_or_default();
    if matches!(r, Route::Health | Route::Events | Route::Metrics) {
        assert!(first.starts_with(b"GET /"), "{:?} served for {first:?}", r);
    }
    if !first.starts_with(b"GET ") {
        assert!(
            matches!(r, Route::Bad | Route::BadMethod),
            "{r:?} for {first:?}"
        );
    }
});
