//! Behaviour of the whole parser: one test per log spelling of the kernels' format strings
//! (6.1, 6.12, 6.18, 7.1 and the kdump series), the real sequences the QEMU lab prints, and
//! hostile input.
use std::{fmt::Write as _, path::Path};

use super::*;
use crate::event::{AerSeverity, Detail, Event, Source};

const KDUMP_CONSOLE: &str = include_str!("../../tests/data/logs/qemu-kdump-612.console.log");
const AER_612: &str = include_str!("../../tests/data/logs/qemu-aer-612.dmesg.log");

/// Feeds message texts (no timestamps) 1 µs apart, then flushes.
fn run(lines: &[&str]) -> Vec<Event> {
    let mut parser = LogParser::new();
    let mut out = Vec::new();
    for (i, line) in (1_u64..).zip(lines) {
        parser.push(i * 1000, Source::Kmsg, line, &mut out);
    }
    parser.flush(&mut out);
    out
}

/// The one event the lines make.
fn one(lines: &[&str]) -> Detail {
    let mut events = run(lines);
    assert_eq!(events.len(), 1, "{events:#?}");
    events.remove(0).detail
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.detail.kind()).collect()
}

fn aer(
    device: &str,
    severity: AerSeverity,
    status: Option<&str>,
    error_type: Option<&str>,
    reporter: Option<&str>,
    errors: &[&str],
) -> Detail {
    Detail::Aer {
        device: device.into(),
        severity,
        status: status.map(Into::into),
        error_type: error_type.map(Into::into),
        reporter: reporter.map(Into::into),
        errors: errors.iter().map(|&e| e.into()).collect(),
        firmware_first: None,
    }
}

// ---- boot ----------------------------------------------------------------------------------

#[test]
fn booting_and_linux_version_are_one_boot() {
    let events = run(&[
        "Booting Linux on physical CPU 0x0000000000 [0x000f0510]",
        "Linux version 6.1.0-56-arm64 (debian-kernel@lists.debian.org) #1 SMP Debian 6.1.192-2",
        "Machine model: linux,dummy-virt",
        "Kernel command line: console=ttyAMA0",
    ]);
    assert_eq!(
        kinds(&events),
        ["kernel_boot", "platform_name", "kernel_cmdline"]
    );
    assert_eq!(
        events[0].detail,
        Detail::KernelBoot {
            version: Some("6.1.0-56-arm64".into())
        }
    );
    assert_eq!(events[0].ts_ns, 1000, "stamped at the first line");
    assert_eq!(
        events[0].raw.as_deref(),
        Some(
            "Booting Linux on physical CPU 0x0000000000 [0x000f0510]\nLinux version 6.1.0-56-arm64 (debian-kernel@lists.debian.org) #1 SMP Debian 6.1.192-2"
        )
    );
}

#[test]
fn x86_linux_version_alone_is_a_boot() {
    assert_eq!(
        one(&["Linux version 6.12.19 (builder@host) (gcc 12) #1 SMP PREEMPT_DYNAMIC"]),
        Detail::KernelBoot {
            version: Some("6.12.19".into())
        }
    );
}

#[test]
fn kernel_command_line() {
    assert_eq!(
        one(&[
            "Kernel command line: console=ttyAMA0 earlycon reset_devices maxcpus=1 nr_cpus=1 panic=-1"
        ]),
        Detail::KernelCmdline {
            cmdline: "console=ttyAMA0 earlycon reset_devices maxcpus=1 nr_cpus=1 panic=-1".into()
        }
    );
}

#[test]
fn x86_elfcorehdr_on_the_command_line_marks_a_capture_kernel() {
    let events = run(&[
        "Kernel command line: BOOT_IMAGE=/vmlinuz-6.12 ro irqpoll nr_cpus=1 reset_devices elfcorehdr=0x73000000 hest_disable",
    ]);
    assert_eq!(kinds(&events), ["kernel_cmdline", "capture_kernel_marker"]);
    assert_eq!(
        events[1].detail,
        Detail::CaptureKernelMarker {
            evidence: "elfcorehdr=0x73000000".into()
        }
    );
    assert_eq!(events[0].ts_ns, events[1].ts_ns);
}

#[test]
fn arm64_dt_elfcorehdr_reservation_marks_a_capture_kernel() {
    assert_eq!(
        one(&["OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr"]),
        Detail::CaptureKernelMarker {
            evidence: "OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr".into()
        }
    );
}

// ---- SMMUv3 --------------------------------------------------------------------------------

#[test]
fn smmu_probe_ias_and_oas_6_1_to_6_18() {
    assert_eq!(
        one(&["arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00088705)"]),
        Detail::SmmuProbe {
            smmu: "9050000.smmuv3".into(),
            ias_bits: Some(44),
            oas_bits: 44,
            features: "0x88705".into()
        }
    );
}

#[test]
fn smmu_probe_oas_only_7_1() {
    assert_eq!(
        one(&["arm-smmu-v3 arm-smmu-v3.0.auto: oas 48-bit (features 0x001c1fef)"]),
        Detail::SmmuProbe {
            smmu: "arm-smmu-v3.0.auto".into(),
            ias_bits: None,
            oas_bits: 48,
            features: "0x1c1fef".into()
        }
    );
}

#[test]
fn smmu_reset_all_versions() {
    let events = run(&["arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting..."]);
    assert_eq!(
        events,
        [Event::new(
            1000,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: "9050000.smmuv3".into(),
                writes: Vec::new()
            }
        )
        .with_raw("arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...")]
    );
}

#[test]
fn smmu_adopt_kdump_series() {
    assert_eq!(
        one(&["arm-smmu-v3 9050000.smmuv3: kdump: retaining SMMUEN for in-flight DMA"]),
        Detail::SmmuAdopt {
            smmu: "9050000.smmuv3".into()
        }
    );
}

fn fallback(line: &str) -> String {
    match one(&[line]) {
        Detail::SmmuAdoptFallback { smmu, reason } => {
            assert_eq!(smmu, "9050000.smmuv3");
            reason
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn smmu_adopt_fallback_non_coherent_v7() {
    assert_eq!(
        fallback(
            "arm-smmu-v3 9050000.smmuv3: kdump: non-coherent SMMU unsupported; reset to block all DMAs"
        ),
        "non-coherent SMMU unsupported; reset to block all DMAs"
    );
}

#[test]
fn smmu_adopt_fallback_service_failure_mode_v7() {
    assert_eq!(
        fallback("arm-smmu-v3 9050000.smmuv3: kdump: SMMU in Service Failure Mode, must reset"),
        "SMMU in Service Failure Mode, must reset"
    );
}

#[test]
fn smmu_adopt_fallback_full_reset_v7() {
    assert_eq!(
        fallback("arm-smmu-v3 9050000.smmuv3: kdump: falling back to full reset"),
        "falling back to full reset"
    );
}

#[test]
fn smmu_adopt_fallback_in_flight_dma_rejected_v2() {
    assert_eq!(
        fallback("arm-smmu-v3 9050000.smmuv3: kdump: in-flight DMA would be rejected"),
        "in-flight DMA would be rejected"
    );
}

#[test]
fn smmu_adopt_progress_line_is_not_an_outcome() {
    let found = run(&["arm-smmu-v3 9050000.smmuv3: kdump: adopting crashed kernel's stream table"]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn smmu_gerror() {
    assert_eq!(
        one(&[
            "arm-smmu-v3 9050000.smmuv3: unexpected global error reported (0x00000100), this could be serious"
        ]),
        Detail::SmmuGerror {
            smmu: Some("9050000.smmuv3".into()),
            gerror: Some("0x100".into())
        }
    );
}

#[test]
fn smmu_fault_6_1_to_6_12_dev_info_with_raw_dwords() {
    let events = run(&[
        "arm-smmu-v3 9050000.smmuv3: event 0x10 received:",
        "arm-smmu-v3 9050000.smmuv3: \t0x0000001000000010",
        "arm-smmu-v3 9050000.smmuv3: \t0x0000020880000000",
        "arm-smmu-v3 9050000.smmuv3: \t0x00000000fffff000",
        "arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000",
        "arm-smmu-v3 9050000.smmuv3: allocated 32768 entries for evtq",
    ]);
    assert_eq!(
        events.iter().map(|e| &e.detail).collect::<Vec<_>>(),
        [&Detail::SmmuFault {
            smmu: "9050000.smmuv3".into(),
            event_id: "0x10".into(),
            detail: "0x0000001000000010 0x0000020880000000 0x00000000fffff000 0x0000000000000000"
                .into()
        }]
    );
    assert_eq!(events[0].raw.as_deref().map(|r| r.lines().count()), Some(5));
}

#[test]
fn smmu_fault_6_18_dev_err_with_decoded_lines() {
    let detail = one(&[
        "arm-smmu-v3 9050000.smmuv3: event 0x10 received:",
        "arm-smmu-v3 9050000.smmuv3: \t0x0000001000000010",
        "arm-smmu-v3 9050000.smmuv3: \t0x0000020880000000",
        "arm-smmu-v3 9050000.smmuv3: \t0x00000000fffff000",
        "arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000",
        "arm-smmu-v3 9050000.smmuv3: event: F_TRANSLATION client: 0000:02:00.0 sid: 0x10 ssid: 0x0 iova: 0xfffff000 ipa: 0x0",
        "arm-smmu-v3 9050000.smmuv3: unpriv data write s1 \"Input address caused fault\" stag: 0x0",
    ]);
    assert_eq!(
        detail,
        Detail::SmmuFault {
            smmu: "9050000.smmuv3".into(),
            event_id: "0x10".into(),
            detail: "event: F_TRANSLATION client: 0000:02:00.0 sid: 0x10 ssid: 0x0 iova: 0xfffff000 ipa: 0x0; unpriv data write s1 \"Input address caused fault\" stag: 0x0".into()
        }
    );
}

#[test]
fn smmu_fault_dump_of_another_smmu_is_not_folded() {
    let events = run(&[
        "arm-smmu-v3 9050000.smmuv3: event 0x02 received:",
        "arm-smmu-v3 9060000.smmuv3: \t0x0000001000000010",
    ]);
    assert_eq!(
        events.iter().map(|e| &e.detail).collect::<Vec<_>>(),
        [&Detail::SmmuFault {
            smmu: "9050000.smmuv3".into(),
            event_id: "0x2".into(),
            detail: String::new()
        }]
    );
}

#[test]
fn smmu_error_lines() {
    for message in [
        "failed to clear cr0",
        "failed to enable command queue",
        "failed to enable event queue",
        "failed to enable PRI queue",
        "failed to enable ATS check",
        "failed to setup irqs",
        "failed to enable SMMU interface",
        "failed to disable queues",
        "GBPA not responding to update",
        "device has entered Service Failure Mode!",
        "EVTQ overflow detected -- events lost",
        "PRIQ overflow detected -- requests lost",
        "CMDQ error (cons 0x01000004): Abort on command fetch",
        "CMDQ timeout",
        "CMD_SYNC timeout at 0x00000104 [hwprod 0x00000105, hwcons 0x00000103]",
        "PRIQ write aborted -- events may have been lost",
        "CMDQ MSI write aborted",
        "missing #iommu-cells property",
        "no translation support!",
    ] {
        assert_eq!(
            one(&[&format!("arm-smmu-v3 9050000.smmuv3: {message}")]),
            Detail::SmmuError {
                smmu: "9050000.smmuv3".into(),
                message: message.into()
            },
            "{message}"
        );
    }
}

// ---- AER -----------------------------------------------------------------------------------

/// The three errors the lab injects (`pcie_aer_inject_error`) as the parser should see them.
fn expected_612_errors() -> [Detail; 3] {
    [
        aer(
            "0000:02:00.0",
            AerSeverity::Correctable,
            Some("0x40"),
            Some("Data Link Layer"),
            Some("0000:00:03.0"),
            &["BadTLP"],
        ),
        aer(
            "0000:02:00.0",
            AerSeverity::Nonfatal,
            Some("0x1000"),
            Some("Transaction Layer"),
            Some("0000:00:03.0"),
            &["TLP (First)"],
        ),
        aer(
            "0000:02:00.0",
            AerSeverity::Fatal,
            None,
            Some("Inaccessible"),
            Some("0000:00:03.0"),
            &[],
        ),
    ]
}

#[test]
fn aer_real_6_12_qemu_sequence() {
    let events = parse_text_log(Path::new("qemu-aer-612.dmesg.log"), AER_612);
    assert_eq!(
        kinds(&events),
        [
            "aer",
            "aer",
            "aer_recovery",
            "aer_recovery",
            "aer",
            "aer_recovery",
            "aer_recovery"
        ]
    );
    let errors: Vec<&Event> = events.iter().filter(|e| e.detail.kind() == "aer").collect();
    let expected = expected_612_errors();
    for (event, expected) in errors.iter().zip(&expected) {
        assert_eq!(&event.detail, expected);
        assert_eq!(event.source, Source::Console);
    }
    assert_eq!(
        errors.iter().map(|e| e.ts_ns).collect::<Vec<_>>(),
        [4_427_993_000, 6_539_370_000, 9_668_622_000]
    );
    assert_eq!(
        errors[1].raw.as_deref().map(|r| r.lines().count()),
        Some(5),
        "source, bus error, status, bit and TLP header lines are the evidence"
    );
    assert_eq!(
        events[2].detail,
        Detail::AerRecovery {
            device: Some("0000:02:00.0".into()),
            outcome: "can't recover (no error_detected callback)".into(),
            channel_state: None
        }
    );
    assert_eq!(
        events[3].detail,
        Detail::AerRecovery {
            device: Some("0000:00:03.0".into()),
            outcome: "failed".into(),
            channel_state: None
        }
    );
}

#[test]
fn aer_same_sequence_as_kmsg_records() {
    // The §5 lines as `/dev/kmsg` would hand them out (levels as the kernel logs them).
    let mut dump = String::new();
    for (seq, line) in AER_612.lines().filter_map(parse_text_line_str).enumerate() {
        writeln!(
            dump,
            "3,{seq},{},-;{}\n SUBSYSTEM=pci",
            line.ts_ns / 1000,
            line.text
        )
        .unwrap();
    }
    let events = parse_kmsg_dump(Path::new("dump"), dump.as_bytes());
    let errors: Vec<&Detail> = events
        .iter()
        .filter(|e| e.source == Source::Kmsg && e.detail.kind() == "aer")
        .map(|e| &e.detail)
        .collect();
    assert_eq!(errors, expected_612_errors().iter().collect::<Vec<_>>());
    assert_eq!(events.len(), 7, "{events:#?}");
}

fn parse_text_line_str(line: &str) -> Option<TextLine> {
    parse_text_line(line.as_bytes())
}

#[test]
fn aer_6_1_wording() {
    let text = AER_612
        .replace("Correctable", "Corrected")
        .replace("Uncorrectable", "Uncorrected");
    let errors: Vec<Detail> = parse_text_log(Path::new("6.1"), &text)
        .into_iter()
        .filter(|e| e.detail.kind() == "aer")
        .map(|e| e.detail)
        .collect();
    assert_eq!(errors, expected_612_errors());
}

#[test]
fn aer_multiple_errors_in_one_message() {
    let events = run(&[
        "pcieport 0000:00:03.0: AER: Multiple Uncorrectable (Non-Fatal) error message received from 0000:02:00.0",
        "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Uncorrectable (Non-Fatal), type=Transaction Layer, (Requester ID)",
        "virtio-pci 0000:02:00.0:   device [1af4:1041] error status/mask=00104000/00400000",
        "virtio-pci 0000:02:00.0:    [14] CmpltTO                (First)",
        "virtio-pci 0000:02:00.0:    [20] UnsupReq",
        "virtio-pci 0000:02:00.1: PCIe Bus Error: severity=Uncorrectable (Non-Fatal), type=Transaction Layer, (Requester ID)",
        "virtio-pci 0000:02:00.1:   device [1af4:1041] error status/mask=00004000/00000000",
        "virtio-pci 0000:02:00.1:    [14] CmpltTO                (First)",
    ]);
    assert_eq!(
        events.iter().map(|e| &e.detail).collect::<Vec<_>>(),
        [
            &aer(
                "0000:02:00.0",
                AerSeverity::Nonfatal,
                Some("0x104000"),
                Some("Transaction Layer"),
                Some("0000:00:03.0"),
                &["CmpltTO (First)", "UnsupReq"],
            ),
            &aer(
                "0000:02:00.1",
                AerSeverity::Nonfatal,
                Some("0x4000"),
                Some("Transaction Layer"),
                Some("0000:00:03.0"),
                &["CmpltTO (First)"],
            ),
        ]
    );
}

#[test]
fn aer_6_18_no_details_found_suffix() {
    assert_eq!(
        one(&[
            "pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0 (no details found"
        ]),
        aer(
            "0000:02:00.0",
            AerSeverity::Fatal,
            None,
            None,
            Some("0000:00:03.0"),
            &[]
        )
    );
}

#[test]
fn aer_7_1_bus_type_spelling() {
    assert_eq!(
        one(&[
            "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0",
            "cxl_pci 0000:02:00.0: AER: CXL Bus Error: severity=Correctable, type=Data Link Layer, (Receiver ID)",
            "cxl_pci 0000:02:00.0:   device [8086:0d93] error status/mask=00000080/00000000",
            "cxl_pci 0000:02:00.0:    [ 7] BadDLLP",
        ]),
        aer(
            "0000:02:00.0",
            AerSeverity::Correctable,
            Some("0x80"),
            Some("Data Link Layer"),
            Some("0000:00:03.0"),
            &["BadDLLP"]
        )
    );
}

#[test]
fn aer_details_without_a_source_line_are_an_error() {
    assert_eq!(
        one(&[
            "nvme 0000:81:00.0: AER: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer, (Completer ID)",
            "nvme 0000:81:00.0:   device [144d:a80a] error status/mask=00008000/00000000",
            "nvme 0000:81:00.0:    [15] CmpltAbrt              (First)",
        ]),
        aer(
            "0000:81:00.0",
            AerSeverity::Fatal,
            Some("0x8000"),
            Some("Transaction Layer"),
            None,
            &["CmpltAbrt (First)"]
        )
    );
}

#[test]
fn aer_firmware_first_lines_fold_into_the_error() {
    assert_eq!(
        one(&[
            "nvme 0000:81:00.0: AER: PCIe Bus Error: severity=Uncorrectable (Non-Fatal), type=Transaction Layer, (Requester ID)",
            "nvme 0000:81:00.0: AER: aer_status: 0x00004000, aer_mask: 0x00000000",
            "nvme 0000:81:00.0: AER:    [14] CmpltTO                (First)",
            "nvme 0000:81:00.0: AER: aer_layer=Transaction Layer, aer_agent=Requester ID",
            "nvme 0000:81:00.0: AER: aer_uncor_severity: 0x00462030",
        ]),
        aer(
            "0000:81:00.0",
            AerSeverity::Nonfatal,
            Some("0x4000"),
            Some("Transaction Layer"),
            None,
            &["CmpltTO (First)"]
        )
    );
    // Alone (no native report pending for the device), they are a firmware-first error of
    // their own (pci_print_aer(): no `aer_uncor_severity` line, so correctable).
    assert!(matches!(
        one(&[
            "nvme 0000:81:00.0: AER: aer_status: 0x00000001, aer_mask: 0x00000000",
            "nvme 0000:81:00.0: AER:    [ 0] RxErr                  (First)",
            "nvme 0000:81:00.0: AER: aer_layer=Physical Layer, aer_agent=Receiver ID",
        ]),
        Detail::Aer { severity: AerSeverity::Correctable, firmware_first: Some(_), errors, .. }
            if errors == ["RxErr (First)"]
    ));
}

#[test]
fn aer_6_1_found_no_error_details_adds_nothing() {
    assert_eq!(
        kinds(&run(&[
            "pcieport 0000:00:03.0: AER: Uncorrected (Fatal) error message received from 0000:02:00.0",
            "pcieport 0000:00:03.0: AER: found no error details for 0000:02:00.0",
        ])),
        ["aer"]
    );
}

#[test]
fn aer_unrelated_lines_between_do_not_split_an_error() {
    assert_eq!(
        one(&[
            "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0",
            "e1000e 0000:01:00.0 eth0: NIC Link is Up 1000 Mbps Full Duplex",
            "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Correctable, type=Physical Layer, (Receiver ID)",
            "virtio-pci 0000:02:00.0:   device [1af4:1041] error status/mask=00000001/00000000",
            "virtio-pci 0000:02:00.0:    [ 0] RxErr                  (First)",
        ]),
        aer(
            "0000:02:00.0",
            AerSeverity::Correctable,
            Some("0x1"),
            Some("Physical Layer"),
            Some("0000:00:03.0"),
            &["RxErr (First)"]
        )
    );
}

#[test]
fn aer_recovery_outcomes() {
    let outcomes: Vec<(Option<String>, String)> = run(&[
        "pcieport 0000:00:03.0: AER: device recovery successful",
        "pcieport 0000:00:03.0: AER: device recovery failed",
        "virtio-pci 0000:02:00.0: AER: can't recover (no error_detected callback)",
        "virtio-pci 0000:02:00.0: AER: can't recover (state transition 3 -> 2 invalid)",
        "pcieport 0000:00:03.0: AER: Root Port link has been reset (0)",
    ])
    .into_iter()
    .map(|e| match e.detail {
        Detail::AerRecovery {
            device, outcome, ..
        } => (device, outcome),
        other => panic!("{other:?}"),
    })
    .collect();
    assert_eq!(
        outcomes,
        [
            (Some("0000:00:03.0".into()), "successful".into()),
            (Some("0000:00:03.0".into()), "failed".into()),
            (
                Some("0000:02:00.0".into()),
                "can't recover (no error_detected callback)".into()
            ),
            (
                Some("0000:02:00.0".into()),
                "can't recover (state transition 3 -> 2 invalid)".into()
            ),
        ]
    );
}

#[test]
fn aer_enabled_with_irq_is_not_an_event() {
    let found = run(&["pcieport 0000:00:03.0: AER: enabled with IRQ 23"]);
    assert!(found.is_empty(), "{found:?}");
}

// ---- DPC -----------------------------------------------------------------------------------

#[test]
fn dpc_6_1_event_folds_its_reason() {
    assert_eq!(
        one(&[
            "pcieport 0000:00:03.0: DPC: containment event, status:0x1f01 source:0x0000",
            "pcieport 0000:00:03.0: DPC: unmasked uncorrectable error detected",
        ]),
        Detail::Dpc {
            device: Some("0000:00:03.0".into()),
            status: Some("0x1f01".into()),
            detail: "source:0x0000; unmasked uncorrectable error detected".into()
        }
    );
}

#[test]
fn dpc_7_1_forms() {
    let events = run(&[
        "pcieport 0000:00:03.0: DPC: containment event, status:0x1f05: unmasked uncorrectable error detected",
        "pcieport 0000:00:03.0: DPC: containment event, status:0x1f09, ERR_FATAL received from 0000:02:00.0",
        "pcieport 0000:00:03.0: DPC: containment event, status:0x1f0d: RP PIO error detected",
    ]);
    assert_eq!(
        events.iter().map(|e| &e.detail).collect::<Vec<_>>(),
        [
            &Detail::Dpc {
                device: Some("0000:00:03.0".into()),
                status: Some("0x1f05".into()),
                detail: "unmasked uncorrectable error detected".into()
            },
            &Detail::Dpc {
                device: Some("0000:00:03.0".into()),
                status: Some("0x1f09".into()),
                detail: "ERR_FATAL received from 0000:02:00.0".into()
            },
            &Detail::Dpc {
                device: Some("0000:00:03.0".into()),
                status: Some("0x1f0d".into()),
                detail: "RP PIO error detected".into()
            },
        ]
    );
}

#[test]
fn dpc_enabled_with_irq_is_not_an_event() {
    let found = run(&["pcieport 0000:00:03.0: DPC: enabled with IRQ 24"]);
    assert!(found.is_empty(), "{found:?}");
}

// ---- GHES, SError, external abort, panic ---------------------------------------------------

#[test]
fn ghes_record_folds_severity_and_sections() {
    for severity in ["fatal", "recoverable", "corrected", "info"] {
        let events = run(&[
            "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 1",
            &format!("{{1}}[Hardware Error]: event severity: {severity}"),
            &format!("{{1}}[Hardware Error]:  Error 0, type: {severity}"),
            "{1}[Hardware Error]:   section_type: PCIe error",
            "{1}[Hardware Error]:   port_type: 0, PCIe end point",
            "{1}[Hardware Error]:   device_id: 0000:02:00.0",
            "{1}[Hardware Error]:   vendor_id: 0x1af4, device_id: 0x1041",
            "{2}[Hardware Error]: event severity: fatal",
        ]);
        assert_eq!(events.len(), 1, "{events:#?}");
        assert!(
            matches!(&events[0].detail, Detail::Ghes { severity: s, detail, record: Some(1), .. }
                if s.as_deref() == Some(severity)
                    && detail == "source 1; section_type: PCIe error; device_id: 0000:02:00.0"),
            "{events:#?}"
        );
        assert_eq!(events[0].raw.as_deref().map(|r| r.lines().count()), Some(7));
    }
}

#[test]
fn ghes_fatal_panic_sequence() {
    let events = run(&[
        "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 2",
        "{1}[Hardware Error]: event severity: fatal",
        "{1}[Hardware Error]:  Error 0, type: fatal",
        "{1}[Hardware Error]:   section_type: ARM processor error",
        "Kernel panic - not syncing: GHES: Fatal hardware error",
    ]);
    assert_eq!(kinds(&events), ["ghes", "panic"]);
    assert_eq!(
        events[1].detail,
        Detail::Panic {
            message: "GHES: Fatal hardware error".into()
        }
    );
}

#[test]
fn serror_panics() {
    let events = run(&[
        "SError Interrupt on CPU0, code 0x00000000bf000002 -- SError",
        "CPU: 0 UID: 0 PID: 0 Comm: swapper/0 Tainted: G   M 6.12.95+deb12-arm64 #1",
        "Kernel panic - not syncing: Asynchronous SError Interrupt",
        "---[ end Kernel panic - not syncing: Asynchronous SError Interrupt ]---",
    ]);
    assert_eq!(kinds(&events), ["serror", "panic"]);
    assert_eq!(
        events[0].detail,
        Detail::Serror {
            esr: Some("0xbf000002".into()),
            fatal: true,
            detail: "SError".into()
        }
    );
    assert_eq!(events[0].cpu, Some(0));
}

#[test]
fn external_abort_from_user_space() {
    assert_eq!(
        one(&[
            "devmem[94]: unhandled exception: DABT (lower EL), ESR 0x0000000092000010, synchronous external abort in busybox[aaaab0b40000+a2000]"
        ]),
        Detail::ExternalAbort {
            far: None,
            esr: Some("0x92000010".into()),
            in_kernel: false,
            detail: "devmem[94]: synchronous external abort".into()
        }
    );
}

#[test]
fn external_abort_in_the_kernel() {
    let events = run(&[
        "Internal error: synchronous external abort: 0000000096000010 [#1] PREEMPT SMP",
        "Kernel panic - not syncing: synchronous external abort: Fatal exception",
    ]);
    assert_eq!(kinds(&events), ["external_abort", "panic"]);
    assert_eq!(
        events[0].detail,
        Detail::ExternalAbort {
            far: None,
            esr: Some("0x96000010".into()),
            in_kernel: true,
            detail: "synchronous external abort".into()
        }
    );
}

#[test]
fn panic_message() {
    assert_eq!(
        one(&["Kernel panic - not syncing: sysrq triggered crash"]),
        Detail::Panic {
            message: "sysrq triggered crash".into()
        }
    );
}

#[test]
fn x86_iommu_table_copy() {
    let events = run(&[
        "DMAR: Translation already enabled - trying to copy translation structures",
        "DMAR: Copied translation tables from previous kernel for dmar0",
        "AMD-Vi: Reused DEV table from previous kernel.",
    ]);
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| match &e.detail {
            Detail::IommuTableCopy { outcome, .. } => outcome.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(outcomes, ["trying", "copied", "reused"]);
}

// ---- framing and hostile input -------------------------------------------------------------

#[test]
fn kdump_console_log_two_boots() {
    let events = parse_text_log(Path::new("qemu-kdump-612.console.log"), KDUMP_CONSOLE);
    assert_eq!(
        kinds(&events),
        [
            "kernel_boot",
            "kernel_cmdline",
            "smmu_probe",
            "panic",
            "kdump_armed",
            "kernel_boot",
            "capture_kernel_marker",
            "smmu_probe",
            "smmu_reset"
        ]
    );
    assert!(events.iter().all(|e| e.source == Source::Console));
    assert_eq!(
        events[0].detail,
        Detail::KernelBoot {
            version: Some("6.12.95+deb12-arm64".into())
        }
    );
    assert_eq!(events[4].detail, Detail::KdumpArmed);
    assert_eq!(events[5].detail, Detail::KernelBoot { version: None });
    assert_eq!(
        events[6].detail,
        Detail::CaptureKernelMarker {
            evidence: "OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr".into()
        }
    );
    let reset = &events[8];
    assert_eq!(reset.ts_ns, 1_637_153_000);
    assert_eq!(
        reset.detail,
        Detail::SmmuReset {
            smmu: "9050000.smmuv3".into(),
            writes: Vec::new()
        }
    );
    assert!(matches!(
        &events[7].detail,
        Detail::SmmuProbe { smmu, ias_bits: Some(44), oas_bits: 44, features }
            if smmu == "9050000.smmuv3" && features == "0x88705"
    ));
    assert_eq!(events[7].ts_ns, 1_618_359_000);
}

#[test]
fn crlf_console_log() {
    let crlf = KDUMP_CONSOLE.replace('\n', "\r\n");
    assert_eq!(
        parse_text_log(Path::new("crlf"), &crlf),
        parse_text_log(Path::new("lf"), KDUMP_CONSOLE)
    );
}

#[test]
fn pstore_and_caller_id_framings() {
    let text = "Panic#1 Part1\n<6>[    1.637153][    T1] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\n<0>[    6.368629][    T1] Kernel panic - not syncing: sysrq triggered crash\n";
    let events = parse_text_log(Path::new("dmesg-ramoops-0"), text);
    assert_eq!(kinds(&events), ["smmu_reset", "panic"]);
    assert_eq!(events[0].ts_ns, 1_637_153_000);
}

#[test]
fn mirrored_lines_are_not_evidence() {
    let text = "[   10.000001] kdump-dma-observer: v1 {\"ts_ns\":1,\"kind\":\"smmu_reset\",\"source\":\"kmsg\",\"smmu\":\"9050000.smmuv3\"}\n";
    let found = parse_text_log(Path::new("console"), text);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn truncated_kmsg_dump() {
    let dump = b"6,0,1618359,-;arm-smmu-v3 9050000.smmuv3: ias 44-bit, oas 44-bit (features 0x00088705)\n6,1,16371";
    let events = parse_kmsg_dump(Path::new("cut"), dump);
    assert_eq!(kinds(&events), ["smmu_probe"]);
    // The cut record's text, had it had a header, is just as safe.
    let dump = b"4,0,1637153,-;arm-smmu-v3 9050000.smmuv3: SMMU curr";
    let found = parse_kmsg_dump(Path::new("cut"), dump);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn huge_lines_do_not_blow_up() {
    let mut text = String::from("[    1.000000] ");
    text.push_str(&"x".repeat(10 * MAX_LINE_BYTES));
    text.push_str(
        "\n[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\n",
    );
    assert_eq!(
        kinds(&parse_text_log(Path::new("huge"), &text)),
        ["smmu_reset"]
    );

    // A long AER group keeps a bounded raw and a bounded error list.
    let mut lines = vec![
        "pcieport 0000:00:03.0: AER: Correctable error message received from 0000:02:00.0"
            .to_owned(),
    ];
    for _ in 0..10_000 {
        lines.push(format!(
            "virtio-pci 0000:02:00.0:    [ 6] BadTLP{}",
            " ".repeat(100)
        ));
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let events = run(&refs);
    assert_eq!(events.len(), 1);
    assert!(
        events[0]
            .raw
            .as_ref()
            .is_some_and(|r| r.len() <= MAX_GROUP_RAW)
    );
    assert!(matches!(&events[0].detail, Detail::Aer { errors, .. } if errors.len() <= 32));
}

/// Deterministic pseudo-random bytes (xorshift), biased towards the parser's own characters.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"[]<>.,:;= -0123456789abcdefx\\\n\r\t\x1b\0\xff\xc3ATsmu{}";
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let pick = usize::try_from(state % 512).unwrap();
            ALPHABET
                .get(pick)
                .copied()
                .unwrap_or(u8::try_from(state >> 56).unwrap())
        })
        .collect()
}

#[test]
fn garbage_and_binary_input_never_panics() {
    for seed in 1..200 {
        let bytes = noise(seed, 4096);
        let _ = parse_text_log_bytes(Path::new("noise"), &bytes);
        let _ = parse_kmsg_dump(Path::new("noise"), &bytes);
        let mut parser = LogParser::new();
        let mut out = Vec::new();
        for chunk in bytes.chunks(97) {
            parser.push(0, Source::Kmsg, &String::from_utf8_lossy(chunk), &mut out);
        }
        parser.flush(&mut out);
    }
    // Pure binary (an ELF header, a gzip header) produces nothing.
    let binary: Vec<u8> = (0_u8..=255).cycle().take(1 << 16).collect();
    let found = parse_text_log_bytes(Path::new("bin"), &binary);
    assert!(found.is_empty(), "{found:?}");
    let found = parse_kmsg_dump(Path::new("bin"), &binary);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn near_misses_make_nothing() {
    let found = run(&[
        "arm-smmu-v3 9050000.smmuv3: SMMU currently enabled!",
        "arm-smmu-v3: SMMU currently enabled! Resetting...",
        "arm-smmu-v3 9050000.smmuv3 SMMU currently enabled! Resetting...",
        "pcieport 0000:00:03.0: AER: Fatal error message received from 0000:02:00.0",
        "pcieport 00:03.0: AER: Correctable error message received from 0000:02:00.0",
        "pcieport 0000:00:03.0: AER: Correctable error message received from nowhere",
        "virtio-pci 0000:02:00.0: PCIe Bus Error: severity=Bogus, type=Physical Layer, (Receiver ID)",
        "SError Interrupt on CPUx",
        "Internal error: Oops: 0000000096000004 [#1] PREEMPT SMP",
        "{1}[Hardware Error]:   section_type: PCIe error",
        "pcieport 0000:00:03.0: DPC: unmasked uncorrectable error detected",
        "",
        "   ",
    ]);
    assert!(found.is_empty(), "{found:?}");
}
