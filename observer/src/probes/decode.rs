//! Raw ring-buffer records → timeline events.
use observer_common::{PRESENT_SLOT, Record, RecordKind};

use super::catalog::FunctionRole;
use crate::{
    event::{AerSeverity, Detail, Event, Source, hex},
    ras_records, smmu,
};

/// Decodes records. Stateless: every record says what it is (kprobe records carry the role of
/// the program that fired).
#[derive(Debug, Default)]
pub struct Decoder;

/// A record that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("ring buffer record of {0} bytes, expected {size}", size = Record::SIZE)]
    Size(usize),
    #[error("record kind {0} is unknown to this build")]
    Kind(u32),
    #[error("kprobe record of role {0}, unknown to this build")]
    Role(u64),
}

/// `MCI_STATUS_UC` (arch/x86/include/asm/mce.h): the error was not corrected.
const MCI_STATUS_UC: u64 = 1 << 61;

impl Decoder {
    /// Decodes one ring-buffer item.
    pub fn decode(&self, bytes: &[u8]) -> Result<Event, DecodeError> {
        if bytes.len() != Record::SIZE {
            return Err(DecodeError::Size(bytes.len()));
        }
        // SAFETY: length checked; `Record` is plain old data valid for any bit pattern;
        // `read_unaligned` makes no alignment assumption.
        let rec: Record = unsafe { bytes.as_ptr().cast::<Record>().read_unaligned() };
        let kind = RecordKind::from_u32(rec.kind).ok_or(DecodeError::Kind(rec.kind))?;
        let text = || String::from_utf8_lossy(rec.text_bytes()).into_owned();
        let detail = match kind {
            RecordKind::SelfTest => Detail::SelfTest {
                seq: rec.args[0],
                tid: rec.tid,
            },
            RecordKind::AerEvent => match AerSeverity::from_tracepoint(rec.args[1]) {
                Some(severity) => Detail::Aer {
                    device: text(),
                    severity,
                    status: Some(hex(rec.args[0])),
                    error_type: None,
                    reporter: None,
                    errors: Vec::new(),
                    firmware_first: None,
                },
                None => Detail::AerUnknownSeverity {
                    device: text(),
                    severity: rec.args[1],
                    status: hex(rec.args[0]),
                },
            },
            RecordKind::ArmEvent => {
                let has_sev = rec.args[PRESENT_SLOT] & 0b100 != 0;
                let severity = has_sev
                    .then(|| ras_records::ghes_severity_word(rec.args[2]))
                    .flatten();
                ras_records::arm_event(rec.args[0], rec.args[1], severity)
            }
            RecordKind::NonStandardEvent => {
                let mut guid = [0; 16];
                guid[..8].copy_from_slice(&rec.args[2].to_ne_bytes());
                guid[8..].copy_from_slice(&rec.args[3].to_ne_bytes());
                ras_records::non_standard_event(
                    &guid,
                    ras_records::ghes_severity_word(rec.args[0]),
                    &text(),
                    rec.args[1],
                )
            }
            RecordKind::McEvent => {
                let has = |i: u32| rec.args[PRESENT_SLOT] & (1 << i) != 0;
                Detail::MemoryError {
                    error_type: ras_records::mc_error_type_word(rec.args[0])
                        .map_or_else(|| format!("type {}", rec.args[0]), str::to_owned),
                    count: has(1).then(|| u32::try_from(rec.args[1]).ok()).flatten(),
                    mc: None,
                    label: text(),
                    address: has(2).then(|| hex(rec.args[2])),
                    detail: String::new(),
                }
            }
            RecordKind::IommuAttach => Detail::IommuAttach { device: text() },
            RecordKind::IommuGroupAdd => Detail::IommuGroupAdd {
                device: text(),
                group: rec.args[0],
            },
            RecordKind::MceRecord => Detail::Mce {
                status: hex(rec.args[0]),
                addr: hex(rec.args[1]),
                bank: rec.args[2],
                uncorrected: rec.args[0] & MCI_STATUS_UC != 0,
            },
            RecordKind::FunctionHit => {
                let role =
                    FunctionRole::from_u64(rec.args[0]).ok_or(DecodeError::Role(rec.args[0]))?;
                function_detail(role, &rec, text)
            }
        };
        let mut event = Event::new(rec.ts_ns, Source::Ebpf, detail);
        event.cpu = Some(rec.cpu);
        Ok(event)
    }
}

fn function_detail(role: FunctionRole, rec: &Record, text: impl Fn() -> String) -> Detail {
    let [_, a0, a1, a2] = rec.args;
    match role {
        FunctionRole::SmmuRegWrite => Detail::SmmuRegWrite {
            smmu: hex(a0),
            register: smmu::register_name(a2).map_or_else(|| hex(a2), str::to_owned),
            value: hex(a1 & 0xffff_ffff),
            meaning: smmu::meaning(a2, a1 & 0xffff_ffff),
        },
        FunctionRole::SmmuGerror => Detail::SmmuGerror {
            smmu: None,
            gerror: None,
        },
        FunctionRole::ExternalAbort => Detail::ExternalAbort {
            far: Some(hex(a0)),
            esr: Some(hex(a1)),
            in_kernel: false,
            detail: String::new(),
        },
        FunctionRole::Serror => Detail::Serror {
            esr: Some(hex(a1)),
            fatal: false,
            detail: String::new(),
        },
        FunctionRole::SerrorPanic => Detail::Serror {
            esr: Some(hex(a1)),
            fatal: true,
            detail: String::new(),
        },
        FunctionRole::Ghes => Detail::Ghes {
            severity: None,
            detail: String::new(),
            record: None,
            source_id: None,
            sections: Vec::new(),
        },
        FunctionRole::GhesFatal => Detail::GhesFatal,
        FunctionRole::AerRecovery => Detail::AerRecovery {
            device: None,
            outcome: "started".into(),
            channel_state: Some(a1),
        },
        FunctionRole::Dpc => Detail::Dpc {
            device: None,
            status: None,
            detail: String::new(),
        },
        // Both are interrupt handlers: `(int irq, void *data)`.
        // The fault records themselves are read by the handler after this hit; the kernel
        // log's lines (`logparse::x86_iommu`) name the device.
        FunctionRole::DmarFault => Detail::IommuFault {
            iommu: "dmar".into(),
            device: None,
            detail: format!("dmar_fault interrupt (irq {a0})"),
        },
        FunctionRole::AmdViInterrupt => Detail::IommuFault {
            iommu: "amd-vi".into(),
            device: None,
            detail: format!("AMD-Vi interrupt thread (irq {a0})"),
        },
        FunctionRole::Panic => Detail::Panic {
            message: text().trim_end().to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use observer_common::TEXT_LEN;

    use super::*;

    fn bytes(rec: &Record) -> Vec<u8> {
        // SAFETY: reading a POD struct's bytes.
        unsafe { std::slice::from_raw_parts(std::ptr::from_ref(rec).cast::<u8>(), Record::SIZE) }
            .to_vec()
    }

    fn text(s: &str) -> [u8; TEXT_LEN] {
        let mut t = [0; TEXT_LEN];
        t[..s.len()].copy_from_slice(s.as_bytes());
        t
    }

    #[test]
    fn aer_record_becomes_aer_event() {
        let rec = Record {
            ts_ns: 9_669_641_000,
            kind: RecordKind::AerEvent as u32,
            cpu: 1,
            args: [0x1000, 0, 1, 0],
            text: text("0000:02:00.0"),
            ..Record::ZERO
        };
        let e = Decoder.decode(&bytes(&rec)).unwrap();
        assert_eq!(e.ts_ns, 9_669_641_000);
        assert_eq!(e.cpu, Some(1));
        assert_eq!(
            e.detail,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Nonfatal,
                status: Some("0x1000".into()),
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            }
        );
    }

    #[test]
    fn ras_records_become_firmware_and_memory_events() {
        let d = Decoder;
        // 6.18+ layout: `sev` present (bit 2), recoverable.
        let arm = Record {
            kind: RecordKind::ArmEvent as u32,
            args: [0x8108_0000, 0x410f_d0c1, 2, 0b111],
            ..Record::ZERO
        };
        let e = d.decode(&bytes(&arm)).unwrap();
        let Detail::Ghes {
            severity, sections, ..
        } = &e.detail
        else {
            panic!("{:?}", e.detail)
        };
        assert_eq!(severity.as_deref(), Some("recoverable"));
        assert_eq!(sections[0].fields["midr"], "0x00000000410fd0c1");
        // Older layout: no `sev`; the 0 read for it is not "info".
        let old = Record {
            args: [1, 2, 0, 0b011],
            ..arm
        };
        let Detail::Ghes { severity, .. } = d.decode(&bytes(&old)).unwrap().detail else {
            panic!()
        };
        assert_eq!(severity, None);

        let mut guid = [0u8; 16];
        guid.copy_from_slice(
            &ras_records::guid_bytes_from_text("54e995d9-c1bb-0f43-ad91-b44dcb3c6f35").unwrap(),
        );
        let ns = Record {
            kind: RecordKind::NonStandardEvent as u32,
            args: [
                3,
                128,
                u64::from_ne_bytes(guid[..8].try_into().unwrap()),
                u64::from_ne_bytes(guid[8..].try_into().unwrap()),
            ],
            text: text("PcieError"),
            ..Record::ZERO
        };
        let Detail::Ghes {
            severity, sections, ..
        } = d.decode(&bytes(&ns)).unwrap().detail
        else {
            panic!()
        };
        assert_eq!(severity.as_deref(), Some("fatal"));
        assert_eq!(
            sections[0].section_type,
            "unknown, d995e954-bbc1-430f-ad91-b44dcb3c6f35"
        );
        assert_eq!(sections[0].fields["fru_text"], "PcieError");

        let mc = Record {
            kind: RecordKind::McEvent as u32,
            args: [1, 1, 0x4000_1000, 0b111],
            text: text("unknown memory"),
            ..Record::ZERO
        };
        assert_eq!(
            d.decode(&bytes(&mc)).unwrap().detail,
            Detail::MemoryError {
                error_type: "uncorrected".into(),
                count: Some(1),
                mc: None,
                label: "unknown memory".into(),
                address: Some("0x40001000".into()),
                detail: String::new(),
            }
        );
    }

    #[test]
    fn function_hits_are_read_by_the_role_their_program_wrote() {
        let d = Decoder;
        let hit = |role: FunctionRole, args: [u64; 3]| Record {
            kind: RecordKind::FunctionHit as u32,
            args: [role as u64, args[0], args[1], args[2]],
            text: text("sysrq triggered crash\n"),
            ..Record::ZERO
        };
        let e = d
            .decode(&bytes(&hit(
                FunctionRole::SmmuRegWrite,
                [0xffff_0000, 0x9, 0x20],
            )))
            .unwrap();
        assert_eq!(
            e.detail,
            Detail::SmmuRegWrite {
                smmu: "0xffff0000".into(),
                register: "CR0".into(),
                value: "0x9".into(),
                meaning: "SMMUEN=1 (SMMUEN|CMDQEN)".into(),
            }
        );
        let e = d.decode(&bytes(&hit(FunctionRole::Panic, [0; 3]))).unwrap();
        assert_eq!(
            e.detail,
            Detail::Panic {
                message: "sysrq triggered crash".into()
            }
        );
        // A role this build does not know is an undecodable record, counted, not an event.
        let unknown = Record {
            args: [99, 0, 0, 0],
            ..hit(FunctionRole::Panic, [0; 3])
        };
        assert_eq!(d.decode(&bytes(&unknown)), Err(DecodeError::Role(99)));
    }

    #[test]
    fn every_role_round_trips_and_has_its_own_program() {
        let mut names = std::collections::BTreeSet::new();
        for role in FunctionRole::ALL {
            assert_eq!(FunctionRole::from_u64(role as u64), Some(role));
            assert!(
                names.insert(role.program_name()),
                "{role:?} shares a program"
            );
        }
        assert_eq!(FunctionRole::from_u64(0), None);
    }

    #[test]
    fn mce_records_and_x86_iommu_interrupts_become_events() {
        // MCi_STATUS with VAL|UC|EN|ADDRV (bits 63, 61, 60, 58): uncorrected.
        let status = 0xb400_0000_0000_0135_u64;
        let rec = Record {
            kind: RecordKind::MceRecord as u32,
            args: [status, 0x1234_5000, 4, 0],
            ..Record::ZERO
        };
        let e = Decoder.decode(&bytes(&rec)).unwrap();
        assert_eq!(
            e.detail,
            Detail::Mce {
                status: "0xb400000000000135".into(),
                addr: "0x12345000".into(),
                bank: 4,
                uncorrected: true,
            }
        );
        assert_eq!(e.detail.kind(), "mce");
        let corrected = Record {
            args: [status & !(1 << 61), 0, 1, 0],
            ..rec
        };
        let e = Decoder.decode(&bytes(&corrected)).unwrap();
        assert!(matches!(
            e.detail,
            Detail::Mce {
                uncorrected: false,
                ..
            }
        ));

        let d = Decoder;
        let hit = |role: FunctionRole| Record {
            kind: RecordKind::FunctionHit as u32,
            args: [role as u64, 24, 0, 0],
            ..Record::ZERO
        };
        let e = d.decode(&bytes(&hit(FunctionRole::DmarFault))).unwrap();
        assert_eq!(
            e.detail,
            Detail::IommuFault {
                iommu: "dmar".into(),
                device: None,
                detail: "dmar_fault interrupt (irq 24)".into(),
            }
        );
        let e = d
            .decode(&bytes(&hit(FunctionRole::AmdViInterrupt)))
            .unwrap();
        assert_eq!(
            e.detail,
            Detail::IommuFault {
                iommu: "amd-vi".into(),
                device: None,
                detail: "AMD-Vi interrupt thread (irq 24)".into(),
            }
        );
    }

    #[test]
    fn malformed_records_are_errors() {
        let d = Decoder;
        assert_eq!(d.decode(&[0; 5]), Err(DecodeError::Size(5)));
        let rec = Record {
            kind: 99,
            ..Record::ZERO
        };
        assert_eq!(d.decode(&bytes(&rec)), Err(DecodeError::Kind(99)));
    }
}
