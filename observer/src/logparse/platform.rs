//! Lines that name the system:
//! - `DMI: %s` (`drivers/firmware/dmi_scan.c` `dmi_setup()` → `dump_stack_set_arch_desc()`,
//!   printed early at boot on ACPI systems, x86 and arm64): `DMI: Dell Inc. PowerEdge
//!   R750/0PJ80M, BIOS 1.5.4 12/17/2021`;
//! - `Hardware name: %s` (`lib/dump_stack.c` `dump_stack_print_info()`, in every oops and
//!   `dump_stack()`; the same string as `DMI:` or the DT model);
//! - `Machine model: %s` (`drivers/of/fdt.c` `early_init_dt_scan_nodes()` /
//!   `of_flat_dt_get_machine_name()`, device-tree systems): `Machine model: linux,dummy-virt`.
//!
//! The BIOS part of a DMI string (`, BIOS <version> <date>`) is not the system's name and is
//! cut.

/// `(source_line, name)`.
pub(crate) fn classify(text: &str) -> Option<(&'static str, &str)> {
    let (source, rest) = if let Some(r) = text.strip_prefix("DMI: ") {
        ("dmi", r)
    } else if let Some(r) = text.strip_prefix("Hardware name: ") {
        ("hardware_name", r)
    } else {
        let r = text.strip_prefix("Machine model: ")?;
        ("machine_model", r)
    };
    let name = rest.split_once(", BIOS ").map_or(rest, |(n, _)| n).trim();
    (!name.is_empty()).then_some((source, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source() {
        assert_eq!(
            classify("DMI: Dell Inc. PowerEdge R750/0PJ80M, BIOS 1.5.4 12/17/2021"),
            Some(("dmi", "Dell Inc. PowerEdge R750/0PJ80M"))
        );
        assert_eq!(
            classify("Hardware name: GIGABYTE R281-T91-00/MT91-FS1-00, BIOS F34 08/13/2020"),
            Some(("hardware_name", "GIGABYTE R281-T91-00/MT91-FS1-00"))
        );
        assert_eq!(
            classify("Hardware name: linux,dummy-virt (DT)"),
            Some(("hardware_name", "linux,dummy-virt (DT)"))
        );
        assert_eq!(
            classify("Machine model: linux,dummy-virt"),
            Some(("machine_model", "linux,dummy-virt"))
        );
        assert_eq!(classify("DMI: "), None);
        assert_eq!(classify("DMI not present or invalid."), None);
    }
}
