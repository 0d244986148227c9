//! `report` end to end on recorded kernel logs: the verdict for each kernel spelling, and the
//! JSON report against its checked-in schema.
use std::path::{Path, PathBuf};

use observer::report::{Report, html, input, json, markdown, text};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/logs")
        .join(name)
}

fn schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/report.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

fn verdict_of(text: &str) -> (String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("console.log");
    std::fs::write(&path, text).unwrap();
    let loaded = input::load(&path).unwrap();
    let report = Report::build("console.log", loaded.events.clone());
    let value = json::render(&report);
    let errors: Vec<String> = schema()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    // The other formats render too.
    assert!(html::render(&report).starts_with("<!DOCTYPE html>"));
    assert!(markdown::render(&report).starts_with("# kdump DMA observer report"));
    assert_fits_80_columns(&text::render(&report));
    (markdown::verdict_word(&report.verdict), value)
}

fn assert_fits_80_columns(plain: &str) {
    for (n, line) in plain.lines().enumerate() {
        assert!(
            line.len() <= 80 && line.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "text report line {}: {} columns or not ASCII: {line:?}",
            n + 1,
            line.len()
        );
    }
}

/// A daemon timeline: `observer_started`, then `system_identity`, as `run` writes them.
const IDENTITY_TIMELINE: &str = r#"{"ts_ns":1000,"source":"observer","kind":"observer_started","version":"0.1.0","capture_kernel":true,"kernel_release":"6.12.57+deb13-arm64","hostname":"lab","probes":[]}
{"ts_ns":1001,"source":"observer","kind":"system_identity","dmi":{"sys_vendor":"Ampere <b>Computing</b>","product_name":"Mt.Jade","bios_vendor":"Ampere(R)","bios_version":"2.09.20230520","bios_date":"05/20/2023"},"processor":{"midr":"0x413fd0c1","name":"Arm Neoverse N1 r3p1","count":160},"firmware":{"acpi":true,"hest":true,"iort":true,"ghes":[{"source_id":7,"version":2,"notify":"SDEI","enabled":true}],"ghes_devices":1},"smmus":[{"name":"smmu3.0x0000100000000000","devices":[{"device":"0000:01:00.0","group":3}]}],"crashed_kernel":{"release":"6.12.57+deb13-arm64","crash_time":1764840000,"page_size":65536},"running_kernel":{"release":"6.12.57+deb13-arm64","cmdline":"BOOT_IMAGE=/vmlinuz reset_devices nr_cpus=1 systemd.unit=kdump-tools-dump.service irqpoll nousb ata_piix.prefer_ms_hyperv=0 elfcorehdr=4831838208"},"status":["DMI: product serial not read"]}
{"ts_ns":1637153000,"source":"kmsg","kind":"smmu_reset","smmu":"arm-smmu-v3.0.auto","raw":"arm-smmu-v3 arm-smmu-v3.0.auto: SMMU currently enabled! Resetting..."}
"#;

#[test]
fn identity_reaches_every_format_and_schema_2_validates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timeline.jsonl");
    std::fs::write(&path, IDENTITY_TIMELINE).unwrap();
    let loaded = input::load(&path).unwrap();
    let report = Report::build("timeline.jsonl", loaded.events.clone());
    let value = json::render(&report);
    let errors: Vec<String> = schema()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(value["schema_version"], 2);
    let system = &value["header"]["system"];
    assert_eq!(system["machine"], "Ampere <b>Computing</b> Mt.Jade");
    assert_eq!(
        system["cpu"],
        "Arm Neoverse N1 r3p1 (MIDR 0x413fd0c1, 160 CPUs)"
    );
    assert_eq!(value["header"]["crashed_kernel"], "6.12.57+deb13-arm64");
    assert_eq!(value["header"]["crash_time"], "2025-12-04 09:20:00 UTC");
    assert_eq!(value["header"]["host"], "lab");

    let md = markdown::render(&report);
    assert!(
        md.starts_with(
            "# kdump DMA observer report: Ampere &lt;b&gt;Computing&lt;/b&gt; Mt.Jade\n\n## System"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "| error handling | ACPI, HEST with 1 GHES source(s) (SDEI), IORT: firmware-first |"
        ),
        "{md}"
    );
    let page = html::render(&report);
    assert!(
        page.contains(
            "<title>kdump DMA observer report: Ampere &lt;b&gt;Computing&lt;/b&gt; Mt.Jade: reset-no-fatal</title>"
        ),
        "{page}"
    );
    assert!(!page.contains("<b>Computing"));
    let plain = text::render(&report);
    assert_fits_80_columns(&plain);
    assert!(
        plain.contains("  crashed kernel: 6.12.57+deb13-arm64\n"),
        "{plain}"
    );
    assert!(
        plain.contains(
            "  SMMU instances: smmu3.0x0000100000000000: 1 device(s) in 1 group(s):\n                  0000:01:00.0 [group 3]\n"
        ),
        "{plain}"
    );
}

#[test]
fn a_version_1_reader_is_refused_by_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timeline.jsonl");
    std::fs::write(&path, IDENTITY_TIMELINE).unwrap();
    let loaded = input::load(&path).unwrap();
    let mut value = json::render(&Report::build("t", loaded.events.clone()));
    value["schema_version"] = 1.into();
    assert!(!schema().is_valid(&value), "the schema pins version 2");
    value["schema_version"] = 2.into();
    value["header"].as_object_mut().unwrap().remove("system");
    assert!(!schema().is_valid(&value), "header.system is required");
}

const CAPTURE_HEAD: &str = "\
[    0.000000] Booting Linux on physical CPU 0x0000000001 [0x000f0510]
[    0.000000] Linux version 6.12.95+deb12-arm64 (debian-kernel@lists.debian.org)
[    0.000000] OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr
[    0.000000] Kernel command line: console=ttyAMA0 reset_devices nr_cpus=1
[    1.618359] arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00088705)
";

#[test]
fn recorded_kdump_console_log_is_reset_no_fatal() {
    let text = std::fs::read_to_string(data("qemu-kdump-612.console.log")).unwrap();
    let (verdict, value) = verdict_of(&text);
    assert_eq!(verdict, "reset-no-fatal");
    assert_eq!(
        value["judgement"]["boots"], 2,
        "crashed and capture boot split"
    );
}

#[test]
fn spelling_61_uncorrected_fatal_is_flagged() {
    let text = format!(
        "{CAPTURE_HEAD}[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
[    9.668622] pcieport 0000:00:03.0: AER: Uncorrected (Fatal) error message received from 0000:02:00.0
[    9.669197] virtio-pci 0000:02:00.0: AER: PCIe Bus Error: severity=Uncorrected (Fatal), type=Inaccessible, (Unregistered Agent ID)
"
    );
    let (verdict, value) = verdict_of(&text);
    assert_eq!(verdict, "flagged");
    assert_eq!(value["judgement"]["first_fatal"]["kind"], "aer");
}

#[test]
fn spelling_612_only_correctable_is_reset_no_fatal() {
    let text = format!(
        "{CAPTURE_HEAD}[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
[    4.427993] pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0
[    4.429326] virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Correctable, type=Data Link Layer, (Receiver ID)
"
    );
    assert_eq!(verdict_of(&text).0, "reset-no-fatal");
}

#[test]
fn spelling_71_bus_error_and_oas_only_probe_is_flagged() {
    let text = "\
[    0.000000] Booting Linux on physical CPU 0x0000000001 [0x000f0510]
[    0.000000] OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr
[    1.618359] arm-smmu-v3 9050000.smmuv3: oas 44-bit (features 0x00088705)
[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
[    6.539370] pcieport 0000:00:03.0: AER: Uncorrectable (Non-Fatal) error message received from 0000:02:00.0 (no details found
[    6.540004] virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Uncorrectable (Non-Fatal), type=Transaction Layer, (Receiver ID)
";
    assert_eq!(verdict_of(text).0, "flagged");
}

#[test]
fn patched_kernel_adopting_is_preserved_and_fallback_is_judged_as_reset() {
    let adopt = format!(
        "{CAPTURE_HEAD}[    1.637153] arm-smmu-v3 9050000.smmuv3: kdump: retaining SMMUEN for in-flight DMA\n"
    );
    assert_eq!(verdict_of(&adopt).0, "preserved");
    let fallback = format!(
        "{CAPTURE_HEAD}[    1.630000] arm-smmu-v3 9050000.smmuv3: kdump: falling back to full reset
[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
[    3.000000] SError Interrupt on CPU0, code 0x00000000be000000 -- SError
[    3.000100] Kernel panic - not syncing: Asynchronous SError Interrupt
"
    );
    let (verdict, value) = verdict_of(&fallback);
    assert_eq!(verdict, "flagged");
    assert_eq!(value["judgement"]["first_fatal"]["kind"], "serror");
}

#[test]
fn ghes_fatal_and_dpc_flag_a_reset() {
    let ghes = format!(
        "{CAPTURE_HEAD}[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
[    5.000000] {{1}}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 1
[    5.000010] {{1}}[Hardware Error]: event severity: fatal
[    5.000100] Kernel panic - not syncing: GHES: Fatal hardware error
"
    );
    assert_eq!(verdict_of(&ghes).0, "flagged");
    let dpc = format!(
        "{CAPTURE_HEAD}[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
[    5.000000] pcieport 0000:00:03.0: DPC: containment event, status:0x1f01 source:0x0000
"
    );
    assert_eq!(verdict_of(&dpc).0, "flagged");
}

#[test]
fn normal_boot_and_capture_without_smmu_lines() {
    let normal = "[    0.000000] Booting Linux on physical CPU 0x0\n[    1.1] arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00088705)\n";
    assert_eq!(verdict_of(normal).0, "not-capture-kernel");
    let bare = "[    0.000000] Booting Linux on physical CPU 0x0\n[    0.000000] OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr\n";
    let (verdict, value) = verdict_of(bare);
    assert_eq!(verdict, "inconclusive");
    assert!(
        value["judgement"]["missing"][0]
            .as_str()
            .unwrap()
            .contains("no SMMU reset")
    );
}

#[test]
fn config_space_evidence_is_decoded_in_every_format() {
    use observer::event::{Detail, Event, PciAer, PciDevice, Source};
    let nic = PciDevice {
        snapshot: "start".into(),
        bdf: "0000:02:00.0".into(),
        vendor: "0x1af4".into(),
        device: "0x1041".into(),
        class: "0x020000".into(),
        driver: Some("virtio-pci".into()),
        smmu: Some("9050000.smmuv3".into()),
        iommu_group: Some(3),
        bus_master: true,
        aer: Some(PciAer {
            uncor_status: "0x00000000".into(),
            first_error_pointer: 18,
            first_error: "MalfTLP".into(),
            header_log: "0x00000000 0x00000000 0x00000000 0x00000000".into(),
            ..PciAer::default()
        }),
        residue: vec!["First Error Pointer = 18 (MalfTLP, Malformed TLP) while that status bit is clear: an uncorrectable error was logged, then cleared".into()],
        uncorrectable_residue: true,
        ..PciDevice::default()
    };
    let events = vec![
        Event::new(0, Source::Console, Detail::KernelBoot { version: None }),
        Event::new(
            1,
            Source::Console,
            Detail::CaptureKernelMarker {
                evidence: "elfcorehdr".into(),
            },
        ),
        Event::new(
            1_154_000_000,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: "9050000.smmuv3".into(),
                writes: Vec::new(),
            },
        ),
        Event::new(
            3_000_000_000,
            Source::Observer,
            Detail::PciDevice(Box::new(nic)),
        ),
    ];
    let report = Report::build("timeline.jsonl", events.clone());
    assert_eq!(markdown::verdict_word(&report.verdict), "flagged");
    let value = json::render(&report);
    let errors: Vec<String> = schema()
        .iter_errors(&value)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(value["pci_devices"][0]["bdf"], "0000:02:00.0");
    assert_eq!(
        value["pci_devices"][0]["registers"][1],
        "First Error Pointer = 18 (MalfTLP)"
    );
    let md = markdown::render(&report);
    assert!(md.contains("## PCI devices that can master DMA or carry errors"));
    assert!(md.contains("First Error Pointer = 18 (MalfTLP)"));
    assert!(md.contains("**First Error Pointer**: bits 4:0"));
    let html = html::render(&report);
    assert!(html.contains("<h2>PCI devices that can master DMA or carry errors</h2>"));
    assert!(html.contains("<dt>Error Source Identification</dt>"));
}
