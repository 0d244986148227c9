//! `report` on what people paste (observer/tests/data/logs/pasted): one capture boot in every
//! framing a log arrives in, mixed framings in one file, an arm64 firmware-first server, an
//! x86 kdump kernel, and the Debian dump-tool failure. Each test fails if the framing or the
//! record type is not read.
use std::path::{Path, PathBuf};

use observer::{
    event::{AerSeverity, Detail, Event},
    report::{Report, input, json, markdown},
    verdict::VerdictKind,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/logs/pasted")
        .join(name)
}

fn report(name: &str) -> (Report, Vec<Event>) {
    let loaded = input::load(&data(name)).unwrap();
    (Report::build(name, loaded.events.clone()), loaded.events)
}

fn kinds(report: &Report) -> Vec<&'static str> {
    report.timeline.iter().map(|e| e.detail.kind()).collect()
}

/// The same capture boot (reset, then an uncorrectable fatal AER) in every framing.
#[test]
fn every_framing_gives_the_same_verdict_and_events() {
    for (name, reset_to_fatal_ns) in [
        ("dmesg-x.log", Some(2_790_840_000)),
        ("dmesg-T.log", Some(3_000_000_000)),
        ("journal-short.log", Some(3_000_000_000)),
        ("journal-short-precise.log", Some(2_790_840_000)),
        ("journal-short-monotonic.log", Some(2_790_840_000)),
        ("syslog-kern.log", Some(2_790_840_000)),
        ("rfc3339-syslog.log", Some(2_790_840_000)),
        ("mail-quote.log", Some(2_790_840_000)),
        ("no-timestamps.log", Some(0)),
    ] {
        let (report, _) = report(name);
        let v = &report.verdict;
        assert_eq!(v.verdict, VerdictKind::Flagged, "{name}: {}", v.summary);
        assert_eq!(v.boots, 1, "{name}");
        assert_eq!(
            v.first_fatal.as_ref().map(|f| f.kind.as_str()),
            Some("aer"),
            "{name}"
        );
        assert_eq!(v.reset_to_first_fatal_ns, reset_to_fatal_ns, "{name}");
        let aer = report
            .timeline
            .iter()
            .find_map(|e| match &e.detail {
                Detail::Aer {
                    severity, errors, ..
                } => Some((*severity, errors.clone())),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            aer,
            (AerSeverity::Fatal, vec!["MalfTLP (First)".to_owned()]),
            "{name}"
        );
        assert!(
            kinds(&report).contains(&"aer_recovery"),
            "{name}: {:?}",
            kinds(&report)
        );
        assert_eq!(
            report.header.system.machine.as_deref(),
            Some("linux,dummy-virt"),
            "{name}"
        );
        assert_eq!(report.header.unreadable_lines, Some(0), "{name}");
        let md = markdown::render(&report);
        assert!(
            md.contains("linux,dummy-virt"),
            "{name}: header shows the system"
        );
        assert_eq!(
            report.header.times_unknown,
            name == "no-timestamps.log",
            "{name}"
        );
        if name == "no-timestamps.log" {
            assert!(md.contains("unknown: no line has a time stamp"), "{md}");
            assert_eq!(json::render(&report)["header"]["times_unknown"], true);
        }
    }
}

#[test]
fn mixed_framings_in_one_file() {
    let (report, _) = report("mixed-prefixes.log");
    let v = &report.verdict;
    assert_eq!(v.verdict, VerdictKind::Flagged, "{}", v.summary);
    assert_eq!(v.first_fatal.as_ref().map(|f| f.kind.as_str()), Some("aer"));
    // The quoted source line, the dmesg -x detail and the journal bit line are one error.
    let errors: Vec<&Detail> = report
        .timeline
        .iter()
        .map(|e| &e.detail)
        .filter(|d| matches!(d, Detail::Aer { .. }))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        matches!(errors[0], Detail::Aer { severity: AerSeverity::Nonfatal, errors, error_type: Some(t), .. }
        if errors == &["TLP (First)"] && t == "Transaction Layer")
    );
    // The bare panic line after them is an SError panic, and comes after the AER error.
    let k = kinds(&report);
    let pos = |kind| k.iter().position(|x| *x == kind).unwrap();
    assert!(
        pos("aer") < pos("serror") && pos("serror") < pos("panic"),
        "{k:?}"
    );
    // One line had invalid UTF-8: counted, not dropped silently.
    assert_eq!(report.header.unreadable_lines, Some(1));
    assert!(markdown::render(&report).contains("unreadable lines"));
    assert!(!report.header.times_unknown);
    assert_eq!(report.header.untimed_lines, Some(3));
}

#[test]
fn arm64_firmware_first_server() {
    let (report, _) = report("arm64-ghes-firmware-first.dmesg.log");
    let v = &report.verdict;
    assert_eq!(v.verdict, VerdictKind::Flagged, "{}", v.summary);
    let first = v.first_fatal.as_ref().unwrap();
    assert_eq!(first.kind, "ghes");
    assert!(first.summary.contains("{1}"), "{}", first.summary);
    assert!(
        first.summary.contains("PCIe error on 0000:01:00.0"),
        "{}",
        first.summary
    );
    // The corrected memory record is shown but is no fatal sign; the firmware-first AER of
    // record {1} is not counted a second time.
    let fatal: Vec<&str> = v
        .evidence
        .iter()
        .filter(|e| e.fatal)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(fatal, ["ghes"], "{:#?}", v.evidence);
    let records: Vec<(Option<u32>, Option<String>)> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::Ghes {
                record, severity, ..
            } => Some((*record, severity.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        records,
        [
            (Some(1), Some("recoverable".into())),
            (Some(2), Some("corrected".into()))
        ]
    );
    let aer = report
        .timeline
        .iter()
        .find_map(|e| match &e.detail {
            Detail::Aer {
                severity,
                firmware_first: Some(ff),
                errors,
                ..
            } => Some((*severity, ff.ghes_record, errors.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        aer,
        (
            AerSeverity::Nonfatal,
            Some(1),
            vec!["CmpltTO (First)".to_owned()]
        )
    );
    let outcomes: Vec<&str> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::AerRecovery { outcome, .. } => Some(outcome.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, ["failed", "buffer-overflow"]);
    assert_eq!(
        report.header.system.machine.as_deref(),
        Some("WIWYNN Mt.Jade Server System B81.03001.0005/Mt.Jade Motherboard")
    );
}

#[test]
fn x86_kdump_kernel_with_copied_tables_is_preserved() {
    let (report, _) = report("x86-kdump-vtd.console.log");
    let v = &report.verdict;
    assert_eq!(v.verdict, VerdictKind::Preserved, "{}", v.summary);
    assert!(v.summary.contains("dmar"), "{}", v.summary);
    let faults = report
        .timeline
        .iter()
        .filter(|e| matches!(e.detail, Detail::IommuFault { .. }))
        .count();
    assert_eq!(faults, 2);
    assert_eq!(
        report.header.system.machine.as_deref(),
        Some("Dell Inc. PowerEdge R750/0PJ80M")
    );
}

#[test]
fn debian_makedumpfile_failure_is_named_and_not_blamed() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("202611240833");
    std::fs::create_dir(&capture).unwrap();
    std::fs::copy(
        data("debian-makedumpfile-failure.journal.log"),
        capture.join("kdump-tools.log"),
    )
    .unwrap();
    std::fs::write(capture.join("dump.202611240833"), b"").unwrap();
    let (recovered, _) = observer::capture::recover::report_capture(&capture, None, false);
    assert_eq!(recovered.verdict, "reset-no-fatal", "{}", recovered.summary);
    assert!(
        recovered
            .summary
            .contains("calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported"),
        "{}",
        recovered.summary
    );
    let md = std::fs::read_to_string(capture.join("report.md")).unwrap();
    assert!(md.contains("makedumpfile Failed."), "{md}");
}

/// A server's capture kernel with several SMMUv3 instances (Grace and Kunpeng show a dozen,
/// `arm-smmu-v3.<n>.auto` from the IORT), each probed and reset on its own: every instance is
/// a reset of its own in the timeline and named in the header, and the fatal AER behind one
/// of them is judged against the resets.
#[test]
fn several_smmus_each_reset_on_their_own() {
    let (report, _) = report("arm64-multi-smmu.dmesg.log");
    let instances = [
        "arm-smmu-v3.0.auto",
        "arm-smmu-v3.1.auto",
        "arm-smmu-v3.9.auto",
        "arm-smmu-v3.10.auto",
    ];
    let of_kind = |kind: &str| -> Vec<String> {
        report
            .timeline
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::SmmuProbe { smmu, .. } if kind == "probe" => Some(smmu.clone()),
                Detail::SmmuReset { smmu, .. } if kind == "reset" => Some(smmu.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(of_kind("probe"), instances);
    assert_eq!(of_kind("reset"), instances);
    assert_eq!(report.header.smmu_instances, instances);
    let v = &report.verdict;
    assert_eq!(v.verdict, VerdictKind::Flagged, "{}", v.summary);
    assert_eq!(
        v.first_fatal.as_ref().map(|f| f.kind.as_str()),
        Some("aer"),
        "{:#?}",
        v.evidence
    );
    let resets_in_evidence = v.evidence.iter().filter(|e| e.kind == "smmu_reset").count();
    assert_eq!(resets_in_evidence, 4, "{:#?}", v.evidence);
    assert!(
        v.summary.starts_with(
            "The capture kernel reset 4 enabled SMMUs (arm-smmu-v3.0.auto, arm-smmu-v3.1.auto, \
             arm-smmu-v3.9.auto, arm-smmu-v3.10.auto) and 1 fatal sign(s) followed"
        ),
        "{}",
        v.summary
    );
}

/// A capture kernel on a firmware-first server whose memory errors reach EDAC through
/// `ghes_edac`: the corrected record and `CE` line are shown, the `UE` line is the fatal sign.
#[test]
fn memory_controller_errors_from_edac() {
    let (report, _) = report("arm64-ghes-edac-memory.dmesg.log");
    let v = &report.verdict;
    assert_eq!(v.verdict, VerdictKind::Flagged, "{}", v.summary);
    let first = v.first_fatal.as_ref().unwrap();
    assert_eq!(first.kind, "memory_error");
    assert!(first.summary.contains("uncorrected"), "{}", first.summary);
    assert!(first.summary.contains("DIMM 000"), "{}", first.summary);
    let memory: Vec<(String, Option<u32>, String)> = report
        .timeline
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::MemoryError {
                error_type,
                mc,
                label,
                ..
            } => Some((error_type.clone(), *mc, label.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        memory,
        [
            ("corrected".into(), Some(0), "unknown memory".into()),
            ("uncorrected".into(), Some(0), "DIMM 000".into())
        ]
    );
    let fatal: Vec<&str> = v
        .evidence
        .iter()
        .filter(|e| e.fatal)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(fatal, ["memory_error"], "{:#?}", v.evidence);
}
