//! Firmware-first error records: the `{N}[Hardware Error]: ` lines of one APEI GHES record
//! (`drivers/acpi/apei/ghes.c` `__ghes_print_estatus()`, which prefixes every line with
//! `{seqno}` and `[Hardware Error]: `), and the CPER section lines `drivers/firmware/efi/cper.c`
//! `cper_estatus_print()` / `cper_estatus_print_section()` print inside it (5.4 .. 7.x):
//! ```text
//! {3}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 4
//! {3}[Hardware Error]: It has been corrected by h/w and requires no further action
//! {3}[Hardware Error]: event severity: recoverable          (fatal|recoverable|corrected|info)
//! {3}[Hardware Error]:  Error 0, type: recoverable
//! {3}[Hardware Error]:  fru_text: PcieError
//! {3}[Hardware Error]:   section_type: PCIe error
//! ```
//! `PCIe` sections (`cper_print_pcie()`): `port_type: %d, %s`, `version: %d.%d`, `command:
//! 0x%04x, status: 0x%04x`, `device_id: %04x:%02x:%02x.%x`, `slot: %d`, `secondary_bus:
//! 0x%02x`, `vendor_id: 0x%04x, device_id: 0x%04x`, `class_code: %02x%02x%02x`, and for
//! fatal sections `aer_uncor_status: 0x%08x, aer_uncor_mask: 0x%08x`, `aer_uncor_severity:
//! 0x%08x`, `TLP Header: %08x %08x %08x %08x`.
//! ARM processor sections (`drivers/firmware/efi/cper-arm.c` `cper_print_proc_arm()`):
//! `MIDR: 0x%016llx`, `Multiprocessor Affinity Register (MPIDR): 0x%016llx`, `error_type:
//! %d, %s`, `error_info: 0x%016llx`, `virtual fault address: 0x%016llx`, `physical fault
//! address: 0x%016llx`. Memory sections (`cper_print_mem()`): `error_status: %s (0x%016llx)`,
//! `physical_address: 0x%016llx`, `error_type: %d, %s`, and the location line
//! (`cper_mem_err_location()`, `node:%d card:%d ...`).
//!
//! Records of several sources interleave in the log (one `{N}` each); [`OpenRecords`] keeps
//! them apart until each is complete.
use std::collections::BTreeMap;

use super::{append_raw, device::is_bdf, num::parse_dec};
use crate::event::{CperSection, Detail, Event, Source};

/// Most sections, and fields per section, kept for one record.
const MAX_SECTIONS: usize = 8;
const MAX_FIELDS: usize = 24;
/// Most records open at once (distinct `{N}`); the oldest is emitted to make room.
const MAX_OPEN: usize = 16;
/// A record with no new line for this long (log time) is complete.
const QUIET_NS: u64 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GhesLine<'a> {
    /// `Hardware error from APEI Generic Hardware Error Source: <id>`.
    Start {
        seq: Option<u32>,
        source_id: &'a str,
    },
    /// Any other `{seq}[Hardware Error]: ` line, trimmed.
    Detail { seq: Option<u32>, body: &'a str },
}

pub(crate) fn classify(text: &str) -> Option<GhesLine<'_>> {
    let (seq, rest) = match text.strip_prefix('{') {
        Some(inner) => {
            let (seq, rest) = inner.split_once('}')?;
            (Some(parse_dec(seq)?), rest)
        }
        None => (None, text),
    };
    let body = rest.strip_prefix("[Hardware Error]:")?.trim();
    Some(
        match body.strip_prefix("Hardware error from APEI Generic Hardware Error Source: ") {
            Some(source_id) => GhesLine::Start { seq, source_id },
            None => GhesLine::Detail { seq, body },
        },
    )
}

/// One record being read.
#[derive(Debug)]
struct Record {
    seq: Option<u32>,
    event: Event,
    last_ts: u64,
    raw_full: bool,
}

/// The GHES records whose lines are still coming, by `{N}`.
#[derive(Debug, Default)]
pub(crate) struct OpenRecords {
    open: Vec<Record>,
    /// Recently completed records: `{N}`, severity, and the devices of their `PCIe` sections.
    recent: Vec<(Option<u32>, Option<String>, Vec<String>)>,
}

impl OpenRecords {
    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Records quiet for a second of log time are complete.
    pub(crate) fn expire(&mut self, now_ns: u64, out: &mut Vec<Event>) {
        let mut i = 0;
        while i < self.open.len() {
            if now_ns > self.open[i].last_ts.saturating_add(QUIET_NS) {
                let record = self.open.remove(i);
                out.push(self.close(record));
            } else {
                i += 1;
            }
        }
    }

    /// Emits every open record (end of input, a new boot).
    pub(crate) fn flush(&mut self, out: &mut Vec<Event>) {
        for record in std::mem::take(&mut self.open) {
            out.push(self.close(record));
        }
    }

    /// Forgets every record (a new boot numbers its records anew).
    pub(crate) fn reset(&mut self, out: &mut Vec<Event>) {
        self.flush(out);
        self.recent.clear();
    }

    fn close(&mut self, record: Record) -> Event {
        let event = record.finish();
        if let Detail::Ghes {
            record,
            severity,
            sections,
            ..
        } = &event.detail
        {
            let devices: Vec<String> = sections
                .iter()
                .filter_map(|s| s.fields.get("device").cloned())
                .collect();
            if !devices.is_empty() {
                if self.recent.len() >= MAX_OPEN {
                    self.recent.remove(0);
                }
                self.recent.push((*record, severity.clone(), devices));
            }
        }
        event
    }

    /// Reads one line of a record; returns the BDFs of a record it completed (for tying
    /// firmware-first AER lines to it) via `out`.
    pub(crate) fn push(
        &mut self,
        line: GhesLine<'_>,
        ts_ns: u64,
        source: Source,
        text: &str,
        out: &mut Vec<Event>,
    ) {
        match line {
            GhesLine::Start { seq, source_id } => {
                if let Some(i) = self.open.iter().position(|r| r.seq == seq) {
                    let record = self.open.remove(i);
                    out.push(self.close(record));
                }
                if self.open.len() >= MAX_OPEN {
                    let record = self.open.remove(0);
                    out.push(self.close(record));
                }
                let event = Event::new(
                    ts_ns,
                    source,
                    Detail::Ghes {
                        severity: None,
                        detail: String::new(),
                        record: seq,
                        source_id: Some(source_id.trim().to_owned()),
                        sections: Vec::new(),
                    },
                )
                .with_raw(text);
                self.open.push(Record {
                    seq,
                    event,
                    last_ts: ts_ns,
                    raw_full: false,
                });
            }
            GhesLine::Detail { seq, body } => {
                // A line whose start was lost: nothing to attach it to.
                let Some(record) = self.open.iter_mut().find(|r| r.seq == seq) else {
                    return;
                };
                record.last_ts = ts_ns;
                record.append_raw(text);
                if let Detail::Ghes {
                    severity, sections, ..
                } = &mut record.event.detail
                {
                    fold(severity, sections, body);
                }
            }
        }
    }

    /// The latest record (open or completed) whose `PCIe` section names `device`: its `{N}`
    /// and severity, for tying the AER lines printed for it.
    pub(crate) fn record_naming(&self, device: &str) -> Option<(Option<u32>, Option<String>)> {
        let open = self.open.iter().rev().find_map(|r| match &r.event.detail {
            d @ Detail::Ghes { severity, .. } if names_device(d, device) => {
                Some((r.seq, severity.clone()))
            }
            _ => None,
        });
        open.or_else(|| {
            self.recent
                .iter()
                .rev()
                .find(|(_, _, devices)| devices.iter().any(|d| d == device))
                .map(|(seq, severity, _)| (*seq, severity.clone()))
        })
    }
}

/// Whether a `ghes` detail has a `PCIe` section for `device`.
pub(crate) fn names_device(detail: &Detail, device: &str) -> bool {
    matches!(detail, Detail::Ghes { sections, .. }
        if sections.iter().any(|s| s.fields.get("device").is_some_and(|d| d == device)))
}

impl Record {
    fn append_raw(&mut self, text: &str) {
        append_raw(&mut self.event.raw, &mut self.raw_full, text);
    }

    fn finish(mut self) -> Event {
        if let Detail::Ghes {
            detail,
            source_id,
            sections,
            ..
        } = &mut self.event.detail
        {
            let mut parts = vec![format!("source {}", source_id.as_deref().unwrap_or("?"))];
            for s in sections.iter() {
                parts.push(format!("section_type: {}", s.section_type));
                if let Some(d) = s.fields.get("device") {
                    parts.push(format!("device_id: {d}"));
                }
            }
            *detail = parts.join("; ");
        }
        self.event
    }
}

/// Folds one body line into the record's severity and sections.
fn fold(severity: &mut Option<String>, sections: &mut Vec<CperSection>, body: &str) {
    if let Some(value) = body.strip_prefix("event severity: ") {
        if severity.is_none() {
            *severity = Some(value.trim().to_owned());
        }
        return;
    }
    // ` Error 0, type: recoverable`: a new section.
    if let Some((number, kind)) = body
        .strip_prefix("Error ")
        .and_then(|r| r.split_once(", type: "))
        && parse_dec::<u32>(number).is_some()
    {
        if sections.len() < MAX_SECTIONS {
            sections.push(CperSection {
                section_type: String::new(),
                severity: Some(kind.trim().to_owned()),
                fields: BTreeMap::new(),
            });
        }
        return;
    }
    let section_type = body
        .strip_prefix("section_type: ")
        .or_else(|| body.strip_prefix("section type: "));
    if let Some(kind) = section_type {
        // Kernels that print no `Error N` line still start a section here.
        let needs_new = sections.last().is_none_or(|s| !s.section_type.is_empty());
        if needs_new && sections.len() < MAX_SECTIONS {
            sections.push(CperSection {
                section_type: String::new(),
                severity: None,
                fields: BTreeMap::new(),
            });
        }
        if let Some(s) = sections.last_mut()
            && s.section_type.is_empty()
        {
            kind.trim().clone_into(&mut s.section_type);
        }
        return;
    }
    let Some(section) = sections.last_mut() else {
        return;
    };
    for (name, value) in fields(body) {
        if section.fields.len() < MAX_FIELDS {
            section.fields.entry(name.to_owned()).or_insert(value);
        }
    }
}

/// The identifying fields of one CPER line, named as in `docs/timeline.md`.
fn fields(body: &str) -> Vec<(&'static str, String)> {
    const SIMPLE: [(&str, &str); 11] = [
        ("class_code: ", "class_code"),
        ("aer_uncor_severity: ", "aer_uncor_severity"),
        ("TLP Header: ", "tlp_header"),
        ("MIDR: ", "midr"),
        ("Multiprocessor Affinity Register (MPIDR): ", "mpidr"),
        ("error_type: ", "error_type"),
        ("error_info: ", "error_info"),
        ("physical fault address: ", "physical_fault_address"),
        ("virtual fault address: ", "virtual_fault_address"),
        ("physical_address: ", "physical_address"),
        ("error_status: ", "error_status"),
    ];
    let word = |s: &str| s.split_whitespace().next().unwrap_or("").to_owned();
    if let Some(rest) = body.strip_prefix("device_id: ") {
        let rest = rest.trim();
        if is_bdf(rest) {
            return vec![("device", rest.to_owned())];
        }
    }
    if let Some(rest) = body.strip_prefix("vendor_id: ")
        && let Some((vendor, device)) = rest.split_once(", device_id: ")
    {
        return vec![("vendor_id", word(vendor)), ("device_id", word(device))];
    }
    if let Some(rest) = body.strip_prefix("command: ")
        && let Some((command, status)) = rest.split_once(", status: ")
    {
        return vec![("command", word(command)), ("status", word(status))];
    }
    if let Some(rest) = body.strip_prefix("aer_uncor_status: ")
        && let Some((status, mask)) = rest.split_once(", aer_uncor_mask: ")
    {
        return vec![
            ("aer_uncor_status", word(status)),
            ("aer_uncor_mask", word(mask)),
        ];
    }
    if let Some(rest) = body.strip_prefix("port_type: ") {
        let name = rest.split_once(", ").map_or(rest, |(_, n)| n);
        return vec![("port_type", name.trim().to_owned())];
    }
    if body.starts_with("node:") {
        return vec![("location", body.trim().to_owned())];
    }
    for (prefix, name) in SIMPLE {
        if let Some(value) = body.strip_prefix(prefix) {
            return vec![(name, value.trim().to_owned())];
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_classes() {
        assert_eq!(
            classify(
                "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 1"
            ),
            Some(GhesLine::Start {
                seq: Some(1),
                source_id: "1"
            })
        );
        assert_eq!(
            classify("{1}[Hardware Error]:   section_type: PCIe error"),
            Some(GhesLine::Detail {
                seq: Some(1),
                body: "section_type: PCIe error"
            })
        );
        assert_eq!(classify("{x}[Hardware Error]: a"), None);
        assert_eq!(classify("[Firmware Warn]: GHES: x"), None);
    }

    fn read(lines: &[&str]) -> Vec<Event> {
        let mut open = OpenRecords::default();
        let mut out = Vec::new();
        for (i, text) in lines.iter().enumerate() {
            let ts = u64::try_from(i).unwrap() * 1000;
            open.expire(ts, &mut out);
            if let Some(line) = classify(text) {
                open.push(line, ts, Source::Console, text, &mut out);
            }
        }
        open.flush(&mut out);
        out
    }

    #[test]
    fn pcie_section_fields() {
        // cper.c cper_print_pcie(), a fatal section with AER info (6.12 spelling).
        let events = read(&[
            "{4}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 3",
            "{4}[Hardware Error]: event severity: recoverable",
            "{4}[Hardware Error]:  Error 0, type: recoverable",
            "{4}[Hardware Error]:   section_type: PCIe error",
            "{4}[Hardware Error]:   port_type: 4, root port",
            "{4}[Hardware Error]:   version: 3.0",
            "{4}[Hardware Error]:   command: 0x0547, status: 0x4010",
            "{4}[Hardware Error]:   device_id: 0000:00:01.0",
            "{4}[Hardware Error]:   slot: 0",
            "{4}[Hardware Error]:   secondary_bus: 0x01",
            "{4}[Hardware Error]:   vendor_id: 0x1def, device_id: 0xe110",
            "{4}[Hardware Error]:   class_code: 060400",
            "{4}[Hardware Error]:   aer_uncor_status: 0x00004000, aer_uncor_mask: 0x00000000",
            "{4}[Hardware Error]:   aer_uncor_severity: 0x00062010",
            "{4}[Hardware Error]:   TLP Header: 40000001 0000000f 90028090 00000000",
        ]);
        assert_eq!(events.len(), 1);
        let Detail::Ghes {
            severity,
            record,
            source_id,
            sections,
            detail,
        } = &events[0].detail
        else {
            panic!("ghes expected");
        };
        assert_eq!(severity.as_deref(), Some("recoverable"));
        assert_eq!((*record, source_id.as_deref()), (Some(4), Some("3")));
        assert_eq!(
            detail,
            "source 3; section_type: PCIe error; device_id: 0000:00:01.0"
        );
        let s = &sections[0];
        assert_eq!(s.section_type, "PCIe error");
        assert_eq!(s.severity.as_deref(), Some("recoverable"));
        for (k, v) in [
            ("port_type", "root port"),
            ("command", "0x0547"),
            ("status", "0x4010"),
            ("device", "0000:00:01.0"),
            ("vendor_id", "0x1def"),
            ("device_id", "0xe110"),
            ("class_code", "060400"),
            ("aer_uncor_status", "0x00004000"),
            ("aer_uncor_mask", "0x00000000"),
            ("aer_uncor_severity", "0x00062010"),
            ("tlp_header", "40000001 0000000f 90028090 00000000"),
        ] {
            assert_eq!(s.fields.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(names_device(&events[0].detail, "0000:00:01.0"));
    }

    #[test]
    fn arm_and_memory_sections() {
        // cper-arm.c cper_print_proc_arm(), cper.c cper_print_mem().
        let events = read(&[
            "{7}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 0",
            "{7}[Hardware Error]: event severity: fatal",
            "{7}[Hardware Error]:  Error 0, type: fatal",
            "{7}[Hardware Error]:   section_type: ARM processor error",
            "{7}[Hardware Error]:   MIDR: 0x00000000410fd0c1",
            "{7}[Hardware Error]:   Multiprocessor Affinity Register (MPIDR): 0x0000000081010000",
            "{7}[Hardware Error]:   Error info structure 0:",
            "{7}[Hardware Error]:   num errors: 1",
            "{7}[Hardware Error]:    error_type: 3, bus error",
            "{7}[Hardware Error]:    error_info: 0x0000000009011c43",
            "{7}[Hardware Error]:    physical fault address: 0x0000040004000000",
            "{7}[Hardware Error]:  Error 1, type: fatal",
            "{7}[Hardware Error]:   section_type: memory error",
            "{7}[Hardware Error]:   error_status: Storage error in DRAM memory (0x0000000000000400)",
            "{7}[Hardware Error]:   physical_address: 0x0000008f8a8b0000",
            "{7}[Hardware Error]:   node:0 card:0 module:0 rank:0 bank:3 row:5261 column:160",
        ]);
        let Detail::Ghes { sections, .. } = &events[0].detail else {
            panic!("ghes expected");
        };
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].fields["error_type"], "3, bus error");
        assert_eq!(sections[0].fields["error_info"], "0x0000000009011c43");
        assert_eq!(
            sections[0].fields["physical_fault_address"],
            "0x0000040004000000"
        );
        assert_eq!(sections[0].fields["mpidr"], "0x0000000081010000");
        assert_eq!(sections[1].section_type, "memory error");
        assert_eq!(sections[1].fields["physical_address"], "0x0000008f8a8b0000");
        assert!(sections[1].fields["location"].starts_with("node:0 card:0"));
    }

    #[test]
    fn interleaved_records_stay_apart() {
        let events = read(&[
            "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 1",
            "{2}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 2",
            "{1}[Hardware Error]: event severity: corrected",
            "{2}[Hardware Error]: event severity: fatal",
            "{2}[Hardware Error]:  Error 0, type: fatal",
            "{1}[Hardware Error]:  Error 0, type: corrected",
            "{1}[Hardware Error]:   section_type: memory error",
            "{2}[Hardware Error]:   section_type: PCIe error",
            "{3}[Hardware Error]: event severity: fatal",
        ]);
        let got: Vec<(Option<u32>, Option<String>, String)> = events
            .iter()
            .map(|e| match &e.detail {
                Detail::Ghes {
                    record,
                    severity,
                    sections,
                    ..
                } => (*record, severity.clone(), sections[0].section_type.clone()),
                _ => panic!("ghes expected"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some(1), Some("corrected".into()), "memory error".into()),
                (Some(2), Some("fatal".into()), "PCIe error".into()),
            ]
        );
    }

    #[test]
    fn a_quiet_record_is_complete() {
        let mut open = OpenRecords::default();
        let mut out = Vec::new();
        let start =
            "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 1";
        open.push(classify(start).unwrap(), 0, Source::Kmsg, start, &mut out);
        open.expire(QUIET_NS, &mut out);
        let found = &out;
        assert!(found.is_empty(), "{found:?}");
        open.expire(QUIET_NS + 1, &mut out);
        assert_eq!(out.len(), 1);
        assert!(open.is_empty());
    }
}
