//! Firmware and device-tree strings are hostile: the system-identity parsers (HEST, the
//! VMCOREINFO note of an ELF core, device-tree string lists, /proc/cpuinfo), the bounding of
//! every string, and the reports that show them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use observer::{
    event::{Detail, Event, Source},
    report::{Report, html, markdown, text},
    system::{
        MAX_FIELD_CHARS, SystemIdentity, bounded_to, cpu, devicetree, dmi::Dmi, firmware, smmu,
        vmcoreinfo,
    },
};

fuzz_target!(|data: &[u8]| {
    let _ = firmware::parse_hest(data);
    if let Ok(note) = vmcoreinfo::vmcoreinfo_text(data) {
        let _ = vmcoreinfo::parse(&note);
    }
    let lossy = String::from_utf8_lossy(data);
    if let Ok(k) = vmcoreinfo::parse(&lossy) {
        assert!(k.release.chars().count() <= MAX_FIELD_CHARS);
    }
    if let Some(midr) = cpu::midr_from_cpuinfo(&lossy) {
        let _ = cpu::Midr(midr).name();
    }
    let strings = devicetree::strings(data);
    for s in &strings {
        assert!(s.chars().count() <= MAX_FIELD_CHARS, "unbounded: {s:?}");
        assert!(!s.chars().any(char::is_control), "control character kept: {s:?}");
    }

    // An identity made of the input's strings, raw (as a hand-written timeline could hold
    // them), through every rendering.
    let field = |n: usize| strings.get(n).cloned().unwrap_or_else(|| lossy.clone().into_owned());
    let id = SystemIdentity {
        dmi: Some(Dmi {
            sys_vendor: field(0),
            product_name: field(1),
            bios_version: field(2),
            ..Dmi::default()
        }),
        device_tree: Some(devicetree::DeviceTree {
            model: lossy.clone().into_owned(),
            compatible: strings.clone(),
        }),
        smmus: vec![smmu::SmmuInstance {
            name: field(3),
            devices: vec![smmu::BehindSmmu {
                device: lossy.clone().into_owned(),
                group: Some(0),
            }],
        }],
        status: vec![lossy.clone().into_owned()],
        ..SystemIdentity::default()
    };
    let bounded_id = id.bounded();
    assert_eq!(bounded_id.bounded(), bounded_id, "bounding is idempotent");
    if let Some(m) = bounded_id.machine() {
        // Vendor and product, each bounded, joined by a space.
        assert_eq!(bounded_to(&m, 2 * MAX_FIELD_CHARS + 1), m);
    }
    let events = vec![
        Event::new(0, Source::Observer, Detail::SystemIdentity(Box::new(id))),
        Event::new(
            1,
            Source::Console,
            Detail::PlatformName {
                source_line: field(4),
                name: lossy.clone().into_owned(),
            },
        ),
    ];
    let report = Report::build("fuzz", events.clone());
    let page = html::render(&report);
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "machine text reached the HTML unescaped"
    );
    let _ = markdown::render(&report);
    let plain = text::render(&report);
    for line in plain.lines() {
        assert!(line.len() <= text::WIDTH, "{} columns: {line:?}", line.len());
        assert!(line.bytes().all(|b| (b' '..=b'~').contains(&b)), "not plain ASCII: {line:?}");
    }
});
