//! `setup`'s kdump configuration parser and writer (/etc/default/kdump-tools,
//! /etc/sysconfig/kdump): any file text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::setup::kdump_config::{Flavor, read, write};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for flavor in [Flavor::KdumpTools, Flavor::KdumpUtils] {
        let Ok(current) = read(flavor, text) else {
            continue;
        };
        if let Some(line) = current.line {
            assert!(line >= 1 && line <= text.lines().count());
        }
        // Oracle: what is written reads back as the value that was asked for.
        let wanted = format!("{} kprobe_event=p:kdo/kdo_x,sym", current.effective);
        if let Ok(new_text) = write(flavor, text, &wanted) {
            let back = read(flavor, &new_text).expect("written text reads back");
            assert_eq!(back.effective, wanted, "{flavor:?}");
        }
    }
});
