use super::*;
use crate::event::RegWrite;

fn ev(ms: u64, source: Source, detail: Detail) -> Event {
    Event::new(ms * 1_000_000, source, detail)
}

fn boot(ms: u64) -> Event {
    ev(ms, Source::Console, Detail::KernelBoot { version: None })
}

fn marker(ms: u64) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::CaptureKernelMarker {
            evidence: "OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr".into(),
        },
    )
}

fn reset(ms: u64) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::SmmuReset {
            smmu: "9050000.smmuv3".into(),
            writes: Vec::new(),
        },
    )
}

fn aer(ms: u64, severity: AerSeverity) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::Aer {
            device: "0000:02:00.0".into(),
            severity,
            status: None,
            error_type: None,
            reporter: Some("0000:00:03.0".into()),
            errors: Vec::new(),
            firmware_first: None,
        },
    )
}

fn panic(ms: u64, message: &str) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::Panic {
            message: message.into(),
        },
    )
}

fn smmu_probe(ms: u64) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::SmmuProbe {
            smmu: "9050000.smmuv3".into(),
            ias_bits: Some(44),
            oas_bits: 44,
            features: "0x00088705".into(),
        },
    )
}

/// The crashed boot of a console log: its SMMU probes normally, then it panics (that panic is
/// the crash itself, not a finding).
fn crashed_boot() -> Vec<Event> {
    vec![
        boot(0),
        ev(
            0,
            Source::Console,
            Detail::KernelCmdline {
                cmdline: "console=ttyAMA0 crashkernel=256M".into(),
            },
        ),
        smmu_probe(1160),
        panic(6368, "sysrq triggered crash"),
    ]
}

#[test]
fn console_log_of_crash_and_capture_with_aer_is_flagged() {
    let mut events = crashed_boot();
    events.extend([
        boot(0),
        ev(
            0,
            Source::Console,
            Detail::KernelCmdline {
                cmdline: "console=ttyAMA0 reset_devices nr_cpus=1".into(),
            },
        ),
        marker(0),
        reset(1637),
        aer(4427, AerSeverity::Correctable),
        aer(6539, AerSeverity::Nonfatal),
        aer(9668, AerSeverity::Fatal),
    ]);
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.boots, 2);
    assert_eq!(v.judged_boot, 1);
    let first = v.first_fatal.as_ref().unwrap();
    assert_eq!(first.kind, "aer");
    assert!(
        first.summary.contains("uncorrectable non-fatal"),
        "{}",
        first.summary
    );
    assert_eq!(v.reset_to_first_fatal_ns, Some((6539 - 1637) * 1_000_000));
    assert_eq!(
        v.evidence.iter().filter(|e| e.fatal).count(),
        2,
        "the crashed boot's panic is not evidence"
    );
    assert_eq!(v.evidence.len(), 4, "reset + correctable + two fatal signs");
    assert!(v.summary.contains("9050000.smmuv3"));
    assert_eq!(
        v.cmdline_audit
            .findings
            .iter()
            .find(|f| f.parameter == "crashkernel")
            .unwrap()
            .note,
        "256 MiB reserved"
    );
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["verdict"], "flagged");
}

#[test]
fn reset_with_only_correctable_errors_is_reset_no_fatal() {
    let events = vec![
        boot(0),
        marker(0),
        reset(1637),
        aer(4427, AerSeverity::Correctable),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::ResetNoFatal);
    assert!(v.first_fatal.is_none());
    assert_eq!(v.evidence.len(), 2);
    assert_eq!(
        serde_json::to_value(&v).unwrap()["verdict"],
        "reset-no-fatal"
    );
}

#[test]
fn errors_before_the_reset_do_not_flag_it() {
    let events = vec![
        boot(0),
        marker(0),
        aer(500, AerSeverity::Fatal),
        reset(1637),
    ];
    assert_eq!(judge(&events).verdict, VerdictKind::ResetNoFatal);
}

#[test]
fn normal_boot_is_not_a_capture_kernel() {
    let events = crashed_boot();
    let v = judge(&events[..3]);
    assert_eq!(v.verdict, VerdictKind::NotCaptureKernel);
    let daemon = vec![ev(
        5000,
        Source::Observer,
        Detail::ObserverStarted {
            version: "0".into(),
            capture_kernel: false,
            kernel_release: "6.12".into(),
            hostname: String::new(),
            probes: Vec::new(),
        },
    )];
    let v = judge(&daemon);
    assert_eq!(v.verdict, VerdictKind::NotCaptureKernel);
    assert_eq!(v.confidence, Confidence::High);
}

#[test]
fn adoption_without_reset_is_preserved() {
    let events = vec![
        boot(0),
        marker(0),
        ev(
            1637,
            Source::Kmsg,
            Detail::SmmuAdopt {
                smmu: "9050000.smmuv3".into(),
            },
        ),
        aer(4427, AerSeverity::Correctable),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Preserved);
    assert_eq!(serde_json::to_value(&v).unwrap()["verdict"], "preserved");
}

#[test]
fn adoption_fallback_then_serror_is_flagged() {
    let events = vec![
        boot(0),
        marker(0),
        ev(
            1600,
            Source::Kmsg,
            Detail::SmmuAdoptFallback {
                smmu: "arm-smmu-v3.0.auto".into(),
                reason: "kdump: falling back to full reset".into(),
            },
        ),
        ev(
            2000,
            Source::Kmsg,
            Detail::Serror {
                esr: Some("0xbe000000".into()),
                fatal: true,
                detail: String::new(),
            },
        ),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.first_fatal.unwrap().kind, "serror");
}

#[test]
fn capture_without_smmu_evidence_is_inconclusive_and_says_why() {
    let events = vec![
        boot(0),
        ev(
            0,
            Source::Console,
            Detail::KernelCmdline {
                cmdline: "elfcorehdr=0x7f000000 console=ttyS0".into(),
            },
        ),
        ev(10, Source::Kmsg, Detail::KmsgLost { count: Some(812) }),
        aer(4427, AerSeverity::Fatal),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Inconclusive);
    assert_eq!(v.confidence, Confidence::Low);
    assert_eq!(
        v.missing[0],
        "no SMMU reset or adopt evidence in the capture boot"
    );
    assert!(v.missing.iter().any(|m| m.contains("kmsg_lost")));
    assert!(v.missing.iter().any(|m| m.contains("no boot trace")));
    assert!(v.missing.iter().any(|m| m.contains("no SMMUv3 probe line")));
}

#[test]
fn daemon_timeline_with_fused_reset_is_flagged_with_high_confidence() {
    let mut fused = ev(
        1352,
        Source::BootTrace,
        Detail::SmmuReset {
            smmu: "9050000.smmuv3".into(),
            writes: vec![RegWrite {
                ts_ns: 1_352_980_000,
                register: "CR0".into(),
                value: "0x0".into(),
                meaning: "SMMUEN=0 (none)".into(),
            }],
        },
    );
    fused.sources = vec![Source::BootTrace, Source::Kmsg];
    let events = vec![
        ev(
            5000,
            Source::Observer,
            Detail::ObserverStarted {
                version: "0".into(),
                capture_kernel: true,
                kernel_release: "6.12".into(),
                hostname: String::new(),
                probes: Vec::new(),
            },
        ),
        fused,
        ev(
            9669,
            Source::Ebpf,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: Some("0x40000".into()),
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            },
        ),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.confidence, Confidence::High);
    assert_eq!(
        v.reset.as_ref().unwrap().sources,
        [Source::BootTrace, Source::Kmsg]
    );
}

#[test]
fn boot_trace_cr0_clear_alone_counts_as_reset() {
    let events = vec![
        ev(
            0,
            Source::Observer,
            Detail::ObserverStarted {
                version: "0".into(),
                capture_kernel: true,
                kernel_release: "6.12".into(),
                hostname: String::new(),
                probes: Vec::new(),
            },
        ),
        ev(
            1352,
            Source::BootTrace,
            Detail::SmmuRegWrite {
                smmu: "9050000.smmuv3".into(),
                register: "CR0".into(),
                value: "0x0".into(),
                meaning: String::new(),
            },
        ),
        ev(3000, Source::BootTrace, Detail::GhesFatal),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.confidence, Confidence::Medium);
}

#[test]
fn empty_input_is_inconclusive() {
    assert_eq!(judge(&[]).verdict, VerdictKind::Inconclusive);
}

#[test]
fn durations_read_well() {
    assert_eq!(human_duration(4_902_000_000), "4.902 s");
    assert_eq!(human_duration(12_300_000), "12.3 ms");
    assert_eq!(human_duration(45_000), "45 µs");
}

#[test]
fn an_incomplete_dump_after_the_reset_is_a_fatal_sign() {
    let events = vec![
        boot(0),
        marker(0),
        reset(1637),
        ev(
            60_000,
            Source::Observer,
            Detail::CaptureOutcome {
                complete: false,
                detail: "dump-incomplete left behind".into(),
            },
        ),
    ];
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.first_fatal.unwrap().kind, "capture_outcome");
    let complete = vec![
        boot(0),
        marker(0),
        reset(1637),
        ev(
            60_000,
            Source::Observer,
            Detail::CaptureOutcome {
                complete: true,
                detail: "dump.202611241003".into(),
            },
        ),
    ];
    assert_eq!(judge(&complete).verdict, VerdictKind::ResetNoFatal);
}

#[test]
fn a_daemon_timeline_replaying_the_log_is_one_boot() {
    // observer_started is written first (at 5 s), then the kernel-log backlog from 0 s.
    let events = vec![
        ev(
            5000,
            Source::Observer,
            Detail::ObserverStarted {
                version: "0".into(),
                capture_kernel: true,
                kernel_release: "6.12".into(),
                hostname: String::new(),
                probes: Vec::new(),
            },
        ),
        ev(0, Source::Kmsg, Detail::KernelBoot { version: None }),
        ev(
            1637,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: "9050000.smmuv3".into(),
                writes: Vec::new(),
            },
        ),
    ];
    let v = judge(&events);
    assert_eq!(v.boots, 1);
    assert_eq!(v.verdict, VerdictKind::ResetNoFatal);
}

fn pci_residue(ms: u64, snapshot: &str) -> Event {
    ev(
        ms,
        Source::Observer,
        Detail::PciDevice(Box::new(crate::event::PciDevice {
            snapshot: snapshot.into(),
            bdf: "0000:02:00.0".into(),
            smmu: Some("9050000.smmuv3".into()),
            residue: vec![
                "First Error Pointer = 18 (MalfTLP, Malformed TLP) while that status bit is clear"
                    .into(),
            ],
            uncorrectable_residue: true,
            ..crate::event::PciDevice::default()
        })),
    )
}

fn cmdline(ms: u64, line: &str) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::KernelCmdline {
            cmdline: line.into(),
        },
    )
}

// ---- issue 11: GHES severities, dump tools, x86 hand-over --------------------------------

fn ghes(ms: u64, record: u32, severity: &str, device: &str) -> Event {
    let mut fields = std::collections::BTreeMap::new();
    fields.insert("device".to_owned(), device.to_owned());
    ev(
        ms,
        Source::Console,
        Detail::Ghes {
            severity: Some(severity.into()),
            detail: String::new(),
            record: Some(record),
            source_id: Some("1".into()),
            sections: vec![crate::event::CperSection {
                section_type: "PCIe error".into(),
                severity: Some(severity.into()),
                fields,
            }],
        },
    )
}

fn capture_with(later: Vec<Event>) -> Vec<Event> {
    let mut events = vec![boot(0), marker(0), reset(1637)];
    events.extend(later);
    events
}

#[test]
fn ghes_recoverable_and_fatal_are_fatal_signs_corrected_and_info_are_not() {
    for (severity, want) in [
        ("fatal", VerdictKind::Flagged),
        ("recoverable", VerdictKind::Flagged),
        ("corrected", VerdictKind::ResetNoFatal),
        ("info", VerdictKind::ResetNoFatal),
    ] {
        let v = judge(&capture_with(vec![ghes(3000, 4, severity, "0000:01:00.0")]));
        assert_eq!(v.verdict, want, "{severity}: {}", v.summary);
    }
}

#[test]
fn firmware_first_aer_of_a_record_is_not_counted_twice() {
    let mut ff = aer(3001, AerSeverity::Nonfatal);
    if let Detail::Aer {
        device,
        firmware_first,
        ..
    } = &mut ff.detail
    {
        *device = "0000:01:00.0".into();
        *firmware_first = Some(crate::event::FirmwareFirst {
            ghes_record: Some(4),
            uncor_severity: Some("0x62010".into()),
        });
    }
    let v = judge(&capture_with(vec![
        ghes(3000, 4, "recoverable", "0000:01:00.0"),
        ff.clone(),
    ]));
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.evidence.iter().filter(|e| e.fatal).count(), 1);
    assert_eq!(v.first_fatal.unwrap().kind, "ghes");
    // Without its record in the log, the firmware-first AER is the fatal sign.
    let v = judge(&capture_with(vec![ff]));
    assert_eq!(v.first_fatal.unwrap().kind, "aer");
}

fn dump_tool(ms: u64, cause: Option<&str>) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::DumpTool {
            tool: "kdump-tools".into(),
            outcome: "failed".into(),
            message: "makedumpfile Failed.".into(),
            cause: cause.map(Into::into),
        },
    )
}

fn failed_capture(ms: u64) -> Event {
    ev(
        ms,
        Source::Observer,
        Detail::CaptureOutcome {
            complete: false,
            detail: "dump.202611240833 is empty".into(),
        },
    )
}

#[test]
fn wiped_uncorrectable_error_in_config_space_flags_with_low_confidence() {
    let v = judge(&[
        boot(0),
        marker(1),
        reset(1154),
        pci_residue(2500, "start"),
        pci_residue(9000, "stop"),
    ]);
    assert_eq!(v.verdict, VerdictKind::Flagged, "{v:?}");
    assert_eq!(v.confidence, Confidence::Low);
    assert_eq!(v.first_fatal.as_ref().unwrap().kind, "pci_device");
    assert_eq!(
        v.evidence.iter().filter(|e| e.fatal).count(),
        1,
        "the stop snapshot repeats the start one: {v:?}"
    );
    assert!(
        v.missing
            .iter()
            .any(|m| m.contains("cleared before userspace"))
    );
}

#[test]
fn a_dump_tool_failure_with_a_cause_is_shown_not_blamed() {
    let cause = "calculate_plat_config: PAGE SIZE 0x1000 and VA Bits 52 not supported";
    let v = judge(&capture_with(vec![
        dump_tool(20_000, Some(cause)),
        failed_capture(30_000),
    ]));
    assert_eq!(v.verdict, VerdictKind::ResetNoFatal, "{}", v.summary);
    assert!(v.summary.contains(cause), "{}", v.summary);
    assert!(v.summary.contains("makedumpfile Failed."), "{}", v.summary);
    let shown: Vec<(&str, bool)> = v
        .evidence
        .iter()
        .map(|e| (e.kind.as_str(), e.fatal))
        .collect();
    assert_eq!(
        shown,
        [
            ("smmu_reset", false),
            ("dump_tool", false),
            ("capture_outcome", false)
        ]
    );
}

#[test]
fn aer_off_is_never_a_clean_reset_no_fatal() {
    let v = judge(&[
        boot(0),
        cmdline(0, "console=ttyAMA0 reset_devices pcie_ports=compat"),
        marker(1),
        reset(1154),
    ]);
    assert_eq!(v.verdict, VerdictKind::ResetNoFatal);
    assert_ne!(v.confidence, Confidence::High);
    assert!(
        v.missing.iter().any(|m| m.contains("AER/DPC were off")),
        "{:?}",
        v.missing
    );
}

#[test]
fn a_dump_tool_failure_without_a_cause_stays_a_fatal_sign() {
    let v = judge(&capture_with(vec![
        dump_tool(20_000, None),
        failed_capture(30_000),
    ]));
    assert_eq!(v.verdict, VerdictKind::Flagged);
    assert_eq!(v.first_fatal.unwrap().kind, "capture_outcome");
}

fn handover(ms: u64, outcome: &str) -> Event {
    ev(
        ms,
        Source::Console,
        Detail::IommuTableCopy {
            iommu: "dmar".into(),
            outcome: outcome.into(),
            detail: "Copied translation tables from previous kernel for dmar0".into(),
        },
    )
}

#[test]
fn x86_table_copy_marks_the_capture_kernel_and_preserves() {
    let v = judge(&[
        boot(0),
        handover(500, "trying"),
        handover(600, "copied"),
        panic(9000, "Fatal machine check"),
    ]);
    assert_eq!(v.verdict, VerdictKind::Preserved, "{}", v.summary);
    assert!(v.first_fatal.is_none(), "not blamed on the hand-over");
    assert!(v.summary.contains("1 later fatal sign"), "{}", v.summary);
    assert!(v.evidence.iter().any(|e| e.kind == "panic" && e.fatal));
}

#[test]
fn x86_translation_on_outside_kdump_is_not_a_capture_kernel() {
    let v = judge(&[boot(0), handover(500, "not-kdump")]);
    assert_eq!(v.verdict, VerdictKind::NotCaptureKernel);
}

#[test]
fn x86_early_command_line_with_elfcorehdr_is_a_capture_kernel() {
    let events = crate::logparse::parse_text_log(
        std::path::Path::new("x86"),
        "[    0.000000] Linux version 6.1.0-27-amd64 (debian-kernel@lists.debian.org)\n\
         [    0.000000] Command line: BOOT_IMAGE=/vmlinuz root=UUID=1 irqpoll nr_cpus=1 reset_devices elfcorehdr=0x73000000\n\
         [    1.200000] DMAR: Translation already enabled - trying to copy translation structures\n\
         [    1.300000] DMAR: Copied translation tables from previous kernel for dmar0\n",
    );
    let v = judge(&events);
    assert_eq!(v.verdict, VerdictKind::Preserved, "{}", v.summary);
}

#[test]
fn without_times_the_order_decides_what_follows_the_reset() {
    let events = crate::logparse::parse_text_log(
        std::path::Path::new("untimed"),
        "OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr\n\
         pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0\n\
         arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\n",
    );
    assert!(events.iter().all(|e| e.ts_ns == 0));
    assert_eq!(judge(&events).verdict, VerdictKind::ResetNoFatal);
}

#[test]
fn input_in_judging_order_is_borrowed_and_anything_else_sorted_per_boot() {
    // Two boots (the crashed kernel's, then the capture kernel's), each in time order.
    let ordered = vec![boot(0), marker(5), boot(1), reset(900)];
    assert!(matches!(super::ordered(&ordered), Cow::Borrowed(_)));
    assert_eq!(into_ordered(ordered.clone()), ordered);
    // The capture boot's events out of order: sorted within that boot, boots kept in order.
    let shuffled = vec![
        boot(0),
        marker(5),
        boot(1),
        reset(900),
        aer(300, AerSeverity::Fatal),
    ];
    let sorted = super::ordered(&shuffled).into_owned();
    assert!(matches!(super::ordered(&shuffled), Cow::Owned(_)));
    let times: Vec<u64> = sorted.iter().map(|e| e.ts_ns / 1_000_000).collect();
    assert_eq!(times, [0, 5, 1, 300, 900]);
    assert_eq!(into_ordered(shuffled), sorted);
}
