//! Inputs shared by the micro-benchmarks: the recorded kernel logs of `tests/data/logs/`, the
//! same lines framed as `/dev/kmsg` records, and ring-buffer records in the real
//! [`observer_common::Record`] layout.
#![allow(
    dead_code,
    reason = "each bench target uses a different part of this module"
)]

use std::fmt::Write as _;

use observer::{
    logparse::parse_text_line,
    probes::{Decoder, FunctionRole},
    smmu,
};
use observer_common::{Record, RecordKind, TEXT_LEN};

/// dmesg of a 6.12 guest with three injected AER errors (as observed in the QEMU lab).
pub(crate) const AER_DMESG: &str = include_str!("../../tests/data/logs/qemu-aer-612.dmesg.log");
/// Serial console of a 6.12 kdump run: the crashed boot, then the capture kernel's.
pub(crate) const KDUMP_CONSOLE: &str =
    include_str!("../../tests/data/logs/qemu-kdump-612.console.log");

/// Both recorded logs, as a report reads them (comments, `LAB:` and trace lines included).
pub(crate) fn text_logs() -> [&'static str; 2] {
    [AER_DMESG, KDUMP_CONSOLE]
}

/// Every line of both logs, without its `\n`.
pub(crate) fn text_lines() -> Vec<&'static [u8]> {
    text_logs()
        .into_iter()
        .flat_map(str::lines)
        .map(str::as_bytes)
        .collect()
}

/// The timestamped lines of both logs as the records `/dev/kmsg` returns for them, one
/// `read()` each: `prio,seq,ts_usec,-,caller=T1;text`, plus ` SUBSYSTEM=`/` DEVICE=` lines
/// for messages of a PCI device, as the kernel attaches them. Sequence numbers run on
/// without gaps, so the decoder reports no loss.
pub(crate) fn kmsg_records() -> Vec<Vec<u8>> {
    text_lines()
        .into_iter()
        .filter_map(parse_text_line)
        .enumerate()
        .map(|(seq, line)| {
            let prio = if line.text.contains("Kernel panic") {
                0
            } else if line.text.contains("AER:") || line.text.contains("PCIe Bus Error") {
                3
            } else {
                6
            };
            let mut record = format!("{prio},{seq},{},-,caller=T1;", line.ts_ns / 1000);
            escape_into(&mut record, &line.text);
            if let Some(bdf) = pci_device(&line.text) {
                let _ = write!(record, "\n SUBSYSTEM=pci\n DEVICE=+pci:{bdf}");
            }
            record.into_bytes()
        })
        .collect()
}

/// `/dev/kmsg` escaping: control bytes, bytes from 0x7f and `\` as `\xNN`.
fn escape_into(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if !(0x20..0x7f).contains(&b) || b == b'\\' {
            let _ = write!(out, "\\x{b:02x}");
        } else {
            out.push(char::from(b));
        }
    }
}

/// The `0000:02:00.0` that a `driver 0000:02:00.0: ...` message is about.
fn pci_device(text: &str) -> Option<&str> {
    let (_, rest) = text.split_once(' ')?;
    let bdf = rest.get(..12)?;
    let b = bdf.as_bytes();
    (b[4] == b':' && b[7] == b':' && b[10] == b'.').then_some(bdf)
}

/// The decoder the daemon uses (stateless: kprobe records carry their role).
pub(crate) fn decoder() -> Decoder {
    Decoder
}

fn text(s: &str) -> [u8; TEXT_LEN] {
    let mut t = [0; TEXT_LEN];
    t[..s.len()].copy_from_slice(s.as_bytes());
    t
}

/// The bytes of a record as the eBPF side writes it into the ring buffer.
pub(crate) fn record_bytes(rec: &Record) -> &[u8] {
    // SAFETY: `Record` is `#[repr(C)]` plain old data without padding (asserted in
    // observer-common); its `SIZE` bytes are initialised and live as long as `rec`.
    unsafe { std::slice::from_raw_parts(std::ptr::from_ref(rec).cast::<u8>(), Record::SIZE) }
}

/// `n` records, back to back as a drained ring buffer hands them out, of the `getpgid(2)`
/// self-test storm (the daemon's highest-rate path).
pub(crate) fn self_test_records(n: u64) -> Vec<u8> {
    (0..n)
        .flat_map(|seq| {
            let rec = Record {
                ts_ns: 5_000_000_000 + seq * 870,
                kind: RecordKind::SelfTest as u32,
                cpu: u32::from(seq % 2 == 1),
                tid: 4242 + u32::from(seq % 2 == 1),
                tgid: 4242,
                args: [seq, 0, 0, 0],
                ..Record::ZERO
            };
            record_bytes(&rec).to_vec()
        })
        .collect()
}

/// The `ras:aer_event` records of the recorded AER run: correctable `BadTLP` (status 0x40),
/// non-fatal poisoned TLP (0x1000), fatal malformed TLP (0x40000).
pub(crate) fn aer_records() -> Vec<u8> {
    [
        (4_431_237_000, 0x40, 2),
        (6_541_223_000, 0x1000, 0),
        (9_669_641_000, 0x4_0000, 1),
    ]
    .into_iter()
    .flat_map(|(ts_ns, status, severity)| {
        let rec = Record {
            ts_ns,
            kind: RecordKind::AerEvent as u32,
            cpu: 1,
            tid: 135,
            tgid: 135,
            args: [status, severity, 0, 0],
            text: text("0000:02:00.0"),
        };
        record_bytes(&rec).to_vec()
    })
    .collect()
}

/// The kprobe hits of an SMMUv3 reset in a capture kernel: `arm_smmu_write_reg_sync` on
/// `CR0` disabling the queues and `SMMUEN` step by step, then `GBPA` set to abort.
pub(crate) fn smmu_reset_records() -> Vec<u8> {
    let write_reg_sync = FunctionRole::SmmuRegWrite as u64;
    let smmu_base = 0xffff_8000_8250_0000;
    [
        (1_637_300_000, 0x0e, smmu::CR0),
        (1_637_420_000, 0x0c, smmu::CR0),
        (1_637_530_000, 0x08, smmu::CR0),
        (1_637_640_000, 0x00, smmu::CR0),
        (1_637_750_000, smmu::GBPA_ABORT, smmu::GBPA),
    ]
    .into_iter()
    .flat_map(|(ts_ns, value, offset)| {
        let rec = Record {
            ts_ns,
            kind: RecordKind::FunctionHit as u32,
            cpu: 0,
            tid: 1,
            tgid: 1,
            args: [write_reg_sync, smmu_base, value, offset],
            ..Record::ZERO
        };
        record_bytes(&rec).to_vec()
    })
    .collect()
}

/// What a capture kernel's ring buffer holds around a reset: IOMMU group additions, the
/// reset's register writes, AER errors, an AER recovery attempt and the panic.
pub(crate) fn capture_mix_records() -> Vec<u8> {
    let mut out = Vec::new();
    for (i, device) in (0u64..).zip(["0000:00:02.0", "0000:00:03.0", "0000:02:00.0"]) {
        let group = Record {
            ts_ns: 1_632_335_000 + 1000 * i,
            kind: RecordKind::IommuGroupAdd as u32,
            tid: 1,
            tgid: 1,
            args: [i, 0, 0, 0],
            text: text(device),
            ..Record::ZERO
        };
        out.extend_from_slice(record_bytes(&group));
    }
    out.extend(smmu_reset_records());
    out.extend(aer_records());
    let recovery = Record {
        ts_ns: 9_669_700_000,
        kind: RecordKind::FunctionHit as u32,
        cpu: 1,
        tid: 135,
        tgid: 135,
        args: [
            FunctionRole::AerRecovery as u64,
            0xffff_0000_0123_4000,
            3,
            0,
        ],
        ..Record::ZERO
    };
    out.extend_from_slice(record_bytes(&recovery));
    let panic = Record {
        ts_ns: 9_900_000_000,
        kind: RecordKind::FunctionHit as u32,
        cpu: 1,
        tid: 135,
        tgid: 135,
        args: [FunctionRole::Panic as u64, 0xffff_8000_8150_0000, 0, 0],
        text: text("Fatal hardware error!\n"),
    };
    out.extend_from_slice(record_bytes(&panic));
    out
}
