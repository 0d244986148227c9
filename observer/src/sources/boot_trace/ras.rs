//! The `ras:arm_event`, `ras:non_standard_event` and `ras:mc_event` lines of the boot trace,
//! read from their `TP_printk` formats (`include/ras/ras_event.h`):
//! - `arm_event`, up to 6.x: `affinity level: %d; MPIDR: %016llx; MIDR: %016llx; running
//!   state: %d; PSCI state: %d`; kernels with the full ARM processor record prefix
//!   `cpu: %d; error: %d; ` (`error` is the GHES severity) and append the three
//!   `<name> data len: %d; <name> raw data: %s` pairs;
//! - `non_standard_event`: `severity: %d; sec type:%pU; FRU: %pU %s; data len:%d; raw data:%s`;
//! - `mc_event`: `%d %s error%s:%s%s on %s (mc:%d location:%d:%d:%d address:0x%08lx grain:%d
//!   syndrome:0x%08lx%s%s)` (count, type, plural, message, label, controller, layers, ...).
use crate::{
    event::{Detail, hex},
    ras_records,
};

/// `key: value` pairs separated by `; ` (the `arm_event` and `non_standard_event` bodies).
fn pairs(body: &str) -> impl Iterator<Item = (&str, &str)> {
    body.split("; ")
        .filter_map(|part| part.split_once(':').map(|(k, v)| (k.trim(), v.trim())))
}

pub(super) fn arm_event(body: &str) -> Option<Detail> {
    let (mut affinity, mut main_id, mut severity) = (None, None, None);
    for (key, value) in pairs(body) {
        match key {
            "MPIDR" => affinity = u64::from_str_radix(value, 16).ok(),
            "MIDR" => main_id = u64::from_str_radix(value, 16).ok(),
            "error" => severity = value.parse().ok().and_then(ras_records::ghes_severity_word),
            _ => {}
        }
    }
    Some(ras_records::arm_event(affinity?, main_id?, severity))
}

pub(super) fn non_standard_event(body: &str) -> Option<Detail> {
    let (mut severity, mut guid, mut fru_text, mut len) = (None, None, "", 0);
    for (key, value) in pairs(body) {
        match key {
            "severity" => severity = value.parse().ok().and_then(ras_records::ghes_severity_word),
            "sec type" => guid = ras_records::guid_bytes_from_text(value),
            // `<fru_id GUID> <fru_text>`.
            "FRU" => fru_text = value.get(36..).map_or("", str::trim),
            "data len" => len = value.parse().unwrap_or(0),
            _ => {}
        }
    }
    Some(ras_records::non_standard_event(
        &guid?, severity, fru_text, len,
    ))
}

pub(super) fn mc_event(body: &str) -> Option<Detail> {
    let mut words = body.splitn(3, ' ');
    let count = words.next()?.parse().ok();
    let kind = words.next()?.to_ascii_lowercase();
    if !matches!(
        kind.as_str(),
        "corrected" | "uncorrected" | "deferred" | "fatal" | "info"
    ) {
        return None;
    }
    let rest = words.next()?;
    let (_, rest) = rest.split_once(':')?;
    let (what, place) = rest.split_once(" (mc:")?;
    let (message, label) = what.rsplit_once(" on ").unwrap_or(("", what));
    let mc = place
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok());
    let address = place
        .split_once("address:")
        .and_then(|(_, a)| a.split_whitespace().next())
        .and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .map(hex);
    Some(Detail::MemoryError {
        error_type: kind,
        count,
        mc,
        label: label.trim().to_owned(),
        address,
        detail: message.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_event_in_both_layouts() {
        let new = "cpu: 0; error: 2; affinity level: 0; MPIDR: 0000000081080000; \
                   MIDR: 00000000410fd0c1; running state: 1; PSCI state: 0; \
                   ARM Processor Err Info data len: 32; ARM Processor Err Info raw data: 00 20; \
                   ARM Processor Err Context Info data len: 0; ARM Processor Err Context Info raw data: ; \
                   Vendor Specific Err Info data len: 0; Vendor Specific Err Info raw data: ";
        assert_eq!(
            arm_event(new),
            Some(ras_records::arm_event(
                0x8108_0000,
                0x410f_d0c1,
                Some("recoverable")
            ))
        );
        let old = "affinity level: 255; MPIDR: 0000000000000000; MIDR: 00000000410fd0c1; \
                   running state: 0; PSCI state: 0";
        assert_eq!(
            arm_event(old),
            Some(ras_records::arm_event(0, 0x410f_d0c1, None))
        );
        assert_eq!(arm_event("affinity level: 1"), None);
    }

    #[test]
    fn non_standard_event_names_the_section_as_the_log_does() {
        let body = "severity: 3; sec type:54e995d9-c1bb-0f43-ad91-b44dcb3c6f35; \
                    FRU: 00000000-0000-0000-0000-000000000000 PcieError; data len:72; \
                    raw data:00 01 02";
        let Some(Detail::Ghes {
            severity, sections, ..
        }) = non_standard_event(body)
        else {
            panic!()
        };
        assert_eq!(severity.as_deref(), Some("fatal"));
        assert_eq!(
            sections[0].section_type,
            "unknown, d995e954-bbc1-430f-ad91-b44dcb3c6f35"
        );
        assert_eq!(sections[0].fields["fru_text"], "PcieError");
        assert_eq!(sections[0].fields["length"], "72");
        assert_eq!(non_standard_event("severity: 3; sec type:zz"), None);
    }

    #[test]
    fn mc_event_counts_types_and_places() {
        let body = "1 Uncorrected error: memory read error on unknown memory (mc:0 \
                    location:-1:-1:-1 address:0x40001000 grain:1 syndrome:0x00000000 \
                    APEI location: node:0 card:0 module:0)";
        assert_eq!(
            mc_event(body),
            Some(Detail::MemoryError {
                error_type: "uncorrected".into(),
                count: Some(1),
                mc: Some(0),
                label: "unknown memory".into(),
                address: Some("0x40001000".into()),
                detail: "memory read error".into(),
            })
        );
        // No message: `error:` is followed directly by ` on <label>`.
        let Some(Detail::MemoryError {
            error_type,
            count,
            label,
            detail,
            ..
        }) = mc_event(
            "2 Corrected errors: on CPU_SrcID#0_MC#1_Chan#0_DIMM#0 (mc:1 location:0:0:-1 \
             address:0x00001000 grain:32 syndrome:0x00000000)",
        )
        else {
            panic!()
        };
        assert_eq!(
            (error_type.as_str(), count, label.as_str(), detail.as_str()),
            ("corrected", Some(2), "CPU_SrcID#0_MC#1_Chan#0_DIMM#0", "")
        );
        assert_eq!(mc_event("1 Weird error: x on y (mc:0)"), None);
    }
}
