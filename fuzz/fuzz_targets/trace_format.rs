//! tracefs `events/<category>/<event>/format` files.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use observer::kernel::trace_format::EventFormat;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match EventFormat::parse(Path::new("format"), text) {
        Ok(format) => {
            for field in &format.fields {
                assert!(!field.name.is_empty());
                assert!(
                    field
                        .name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                    "field name {:?} is not an identifier",
                    field.name
                );
                assert_eq!(
                    format.field(&field.name).map(|f| &f.name),
                    Some(&field.name)
                );
                let _ = field.is_data_loc();
            }
        }
        Err(e) => {
            assert!(
                e.line >= 1 && e.line <= text.lines().count().max(1),
                "line {}",
                e.line
            );
            assert!(e.found.chars().count() <= 120, "found is truncated");
            assert!(e.to_string().starts_with("format:"));
        }
    }
});
