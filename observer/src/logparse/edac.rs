//! Memory-controller errors as EDAC prints them (`drivers/edac/edac_mc.c`): every line comes
//! through `edac_mc_printk()`, `"EDAC MC%d: "` then, from `edac_ce_error()` /
//! `edac_ue_error()`:
//! - 5.4 .. 5.8: `%d CE %s%son %s (%s %s)` or `(%s %s - %s)` (count, message and its space,
//!   label, location, `page:0x%lx offset:0x%lx grain:%ld syndrome:0x%lx`, other detail), and
//!   the same with `UE`;
//! - 5.9 .. 7.x: `%d CE %s%son %s (%s page:0x%lx offset:0x%lx grain:%ld syndrome:0x%lx%s%s)`
//!   and `%d UE %s%son %s (%s page:0x%lx offset:0x%lx grain:%ld%s%s)`.
//!
//! `UE` covers every type but corrected (`edac_raw_mc_handle_error()` sends all others to
//! `edac_ue_error()`); the `ras:mc_event` sighting of the same error says which.
use super::num::parse_dec;
use crate::event::Detail;

pub(crate) fn classify(text: &str) -> Option<Detail> {
    let rest = text.strip_prefix("EDAC MC")?;
    let (mc, rest) = super::scan::split_colon_space(rest)?;
    let mc = parse_dec(mc)?;
    let (count, rest) = rest.split_once(' ')?;
    let count = parse_dec(count)?;
    let (error_type, rest) = if let Some(r) = rest.strip_prefix("CE ") {
        ("corrected", r)
    } else {
        ("uncorrected", rest.strip_prefix("UE ")?)
    };
    let head = rest.split_once(" (").map_or(rest, |(h, _)| h);
    let (message, label) = match head.strip_prefix("on ") {
        Some(label) => ("", label),
        None => head.rsplit_once(" on ")?,
    };
    Some(Detail::MemoryError {
        error_type: error_type.to_owned(),
        count: Some(count),
        mc: Some(mc),
        label: label.trim().to_owned(),
        address: None,
        detail: message.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(error_type: &str, count: u32, mc: u32, label: &str, detail: &str) -> Detail {
        Detail::MemoryError {
            error_type: error_type.into(),
            count: Some(count),
            mc: Some(mc),
            label: label.into(),
            address: None,
            detail: detail.into(),
        }
    }

    #[test]
    fn current_and_old_formats() {
        // 5.9+ `edac_ue_error()`, as ghes_edac reports a firmware memory section.
        assert_eq!(
            classify(
                "EDAC MC0: 1 UE memory read error on unknown memory (node:0 card:0 module:0 \
                 page:0x40001 offset:0x0 grain:1)"
            ),
            Some(memory(
                "uncorrected",
                1,
                0,
                "unknown memory",
                "memory read error"
            ))
        );
        // 5.4 `edac_ce_error()` with an empty message, and a native driver's label.
        assert_eq!(
            classify(
                "EDAC MC1: 3 CE on CPU_SrcID#0_Ha#0_Chan#1_DIMM#0 (channel:1 slot:0 page:0x0 \
                 offset:0x0 grain:32 syndrome:0x0 -  area:DRAM err_code:0001:0091)"
            ),
            Some(memory(
                "corrected",
                3,
                1,
                "CPU_SrcID#0_Ha#0_Chan#1_DIMM#0",
                ""
            ))
        );
    }

    #[test]
    fn other_edac_lines_are_not_errors() {
        for line in [
            "EDAC MC0: Giving out device to module ghes_edac.c controller ghes_edac: DEV ghes (INTERRUPT)",
            "EDAC MC: Ver: 3.0.0",
            "EDAC MCx: 1 UE on x (",
            "EDAC MC0: 1 XE on x (y)",
            "EDAC ghes: This system has 16 DIMM sockets.",
        ] {
            assert_eq!(classify(line), None, "{line}");
        }
    }
}
