//! What the numbers in the kernel's `ras:*` tracepoint records mean, and the timeline details
//! built from them: one place for the live eBPF path (`probes::decode`) and the boot trace
//! (`sources::boot_trace`), so both sightings of one record agree and merge.
//!
//! Sources, `include/ras/ras_event.h` and their callers:
//! - `arm_event` (`drivers/ras/ras.c` `log_arm_hw_error()`): `mpidr`, `midr`, `running_state`,
//!   `psci_state`, `affinity`; kernels with the full ARM processor record add the error info,
//!   context and vendor buffers, `sev` and `cpu`. `sev` is what `drivers/acpi/apei/ghes.c`
//!   `ghes_handle_arm_hw_error()` passes: `ghes_severity(gdata->error_severity)`.
//! - `non_standard_event` (`log_non_standard_event()` from `ghes_do_proc()`): `sec_type` and
//!   `fru_id` (16-byte GUIDs), `fru_text`, `sev` (the section's `ghes_severity()`), `len`.
//! - `mc_event` (`drivers/edac/edac_mc.c` `edac_raw_mc_handle_error()`): `error_type` is an
//!   `enum hw_event_mc_err_type`, then `msg`, `label`, `error_count`, `mc_index`, layers,
//!   `address`, `grain_bits`, `syndrome`, `driver_detail`.
use std::collections::BTreeMap;

use crate::event::{CperSection, Detail};

/// The section type the kernel log prints for an ARM processor section
/// (`drivers/firmware/efi/cper.c` `cper_estatus_print_section()`).
pub const ARM_SECTION: &str = "ARM processor error";

/// `enum ghes_severity` (`include/acpi/ghes.h`): `GHES_SEV_NO` 0, `GHES_SEV_CORRECTED` 1,
/// `GHES_SEV_RECOVERABLE` 2, `GHES_SEV_PANIC` 3, named as the log's `event severity:` words
/// name the CPER severities they come from (informational, corrected, recoverable, fatal).
#[must_use]
pub fn ghes_severity_word(value: u64) -> Option<&'static str> {
    Some(match value {
        0 => "info",
        1 => "corrected",
        2 => "recoverable",
        3 => "fatal",
        _ => return None,
    })
}

/// `enum hw_event_mc_err_type` (`include/linux/edac.h`), as `mc_event_error_type()` prints it
/// (`Corrected`, `Uncorrected`, `Deferred`, `Fatal`, `Info`), lower-cased.
#[must_use]
pub fn mc_error_type_word(value: u64) -> Option<&'static str> {
    Some(match value {
        0 => "corrected",
        1 => "uncorrected",
        2 => "deferred",
        3 => "fatal",
        4 => "info",
        _ => return None,
    })
}

/// A GUID's 16 bytes in memory order, printed as the kernel log prints section types
/// (`%pUl`: the first three groups little-endian).
#[must_use]
pub fn guid_le(b: &[u8; 16]) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

/// The bytes of a GUID as `%pU` (`%pUb`, memory order) prints them; `None` if malformed.
#[must_use]
pub fn guid_bytes_from_text(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(|&c| c != b'-').collect();
    if hex.len() != 32 || text.len() != 36 {
        return None;
    }
    let mut out = [0; 16];
    for (i, pair) in hex.as_chunks::<2>().0.iter().enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}

/// An `arm_event` record: one ARM processor section (`affinity` = MPIDR, `main_id` = MIDR),
/// with its severity when the kernel records it.
#[must_use]
pub fn arm_event(affinity: u64, main_id: u64, severity: Option<&str>) -> Detail {
    let fields = BTreeMap::from([
        ("mpidr".to_owned(), format!("{affinity:#018x}")),
        ("midr".to_owned(), format!("{main_id:#018x}")),
    ]);
    section(ARM_SECTION.to_owned(), severity, fields)
}

/// A `non_standard_event` record: a section of a type the kernel does not decode, named as the
/// log names it (`section type: unknown, <guid>`).
#[must_use]
pub fn non_standard_event(
    sec_type: &[u8; 16],
    severity: Option<&str>,
    fru_text: &str,
    len: u64,
) -> Detail {
    let mut fields = BTreeMap::from([("length".to_owned(), len.to_string())]);
    if !fru_text.is_empty() {
        fields.insert("fru_text".to_owned(), fru_text.to_owned());
    }
    section(format!("unknown, {}", guid_le(sec_type)), severity, fields)
}

fn section(
    section_type: String,
    severity: Option<&str>,
    fields: BTreeMap<String, String>,
) -> Detail {
    Detail::Ghes {
        severity: severity.map(str::to_owned),
        detail: String::new(),
        record: None,
        source_id: None,
        sections: vec![CperSection {
            section_type,
            severity: severity.map(str::to_owned),
            fields,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_follow_the_kernel_enums() {
        assert_eq!(ghes_severity_word(2), Some("recoverable"));
        assert_eq!(ghes_severity_word(3), Some("fatal"));
        assert_eq!(ghes_severity_word(0), Some("info"));
        assert_eq!(ghes_severity_word(4), None);
        assert_eq!(mc_error_type_word(1), Some("uncorrected"));
        assert_eq!(mc_error_type_word(2), Some("deferred"));
        assert_eq!(mc_error_type_word(5), None);
    }

    #[test]
    fn guids_print_as_the_kernel_log_does() {
        // CPER_SEC_PCIE, {0xd995e954, 0xbbc1, 0x430f, {0xad,0x91,0xb4,0x4d,0xcb,0x3c,0x6f,0x35}}:
        // the log prints d995e954-bbc1-430f-ad91-b44dcb3c6f35; `%pU` prints the memory order.
        let text = "54e995d9-c1bb-0f43-ad91-b44dcb3c6f35";
        let bytes = guid_bytes_from_text(text).unwrap();
        assert_eq!(guid_le(&bytes), "d995e954-bbc1-430f-ad91-b44dcb3c6f35");
        assert_eq!(guid_bytes_from_text("54e995d9"), None);
        assert_eq!(
            guid_bytes_from_text("54e995d9-c1bb-0f43-ad91-b44dcb3c6fzz"),
            None
        );
    }

    #[test]
    fn arm_records_name_the_section_as_the_log_does() {
        let Detail::Ghes {
            severity, sections, ..
        } = arm_event(0x8108_0000, 0x410f_d0c1, Some("recoverable"))
        else {
            panic!()
        };
        assert_eq!(severity.as_deref(), Some("recoverable"));
        assert_eq!(sections[0].section_type, "ARM processor error");
        assert_eq!(sections[0].fields["mpidr"], "0x0000000081080000");
    }
}
