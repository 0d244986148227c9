//! `/proc/kallsyms` text, and the lookups the probe planner makes on it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use observer::kernel::kallsyms::{Kallsyms, KallsymsError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let symbols = match Kallsyms::parse(Path::new("kallsyms"), text) {
        Ok(k) => k,
        Err(KallsymsError::Malformed { line, found, .. }) => {
            assert!(line >= 1 && line <= text.lines().count(), "line {line}");
            assert!(found.chars().count() <= 120);
            return;
        }
        Err(e @ KallsymsError::Read { .. }) => panic!("parse does not read files: {e}"),
    };
    // Oracle: every code symbol line is found under its name.
    let mut names = Vec::new();
    for line in text.lines() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let addr = u64::from_str_radix(addr, 16).expect("parse accepted the address");
        if matches!(kind, "t" | "T") {
            assert!(
                symbols.addresses(name).contains(&addr),
                "{name} at {addr:#x} lost"
            );
            assert!(symbols.addresses_visible() || addr == 0);
            names.push((name, addr));
        }
    }
    let anchors: Vec<&str> = names.iter().map(|(n, _)| *n).take(8).collect();
    for (name, addr) in names.iter().take(16) {
        if let Ok(at) = symbols.resolve_near(name, &anchors) {
            assert!(
                symbols.addresses(name).contains(&at),
                "{name} resolved to {at:#x}"
            );
        }
        for probe in [*addr, addr.wrapping_add(0x40), addr.saturating_sub(1)] {
            if let Some((base, offset)) = symbols.unique_base_of(probe) {
                let [at] = symbols.addresses(base) else {
                    panic!("{base} is not unique");
                };
                assert_eq!(at.checked_add(offset), Some(probe));
            }
        }
    }
});
