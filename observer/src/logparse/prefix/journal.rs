//! `journalctl` output (`src/shared/logs-show.c` `output_short()`), e.g. `journalctl -k`:
//! - `short` / `short-precise`: `May 01 09:46:33 host kernel: text` /
//!   `May 01 09:46:33.123456 host kernel: text` (the BSD syslog header, [`super::syslog`]);
//! - `short-monotonic`: `[   12.345678] host kernel: text` (`[%5llu.%06llu]`, the monotonic
//!   clock of the record, which is printk's for kernel records);
//! - `short-iso` / `short-iso-precise`: `2026-05-01T09:46:33+0000 host kernel: text`;
//! - between boots `journalctl` without `-b` prints `-- Boot <id> --` (older: `-- Reboot --`).
//!
//! Records of other programs keep their identifier (`kdump-tools[278]: makedumpfile Failed.`),
//! so the dump tool's lines read as they do on a console.
use super::split_host_ident_with;

/// What follows `[   12.345678]` on a journal line: ` host ident: text` → the text (the
/// caller reads the stamp, which printk lines share).
pub(crate) fn message_after_stamp(rest: &str) -> Option<&str> {
    split_host_ident_with(rest.strip_prefix(' ')?, true)
}

/// `-- Boot 0123... --`, `-- Reboot --`: a new boot starts.
pub(crate) fn is_boot_separator(text: &str) -> bool {
    text.starts_with("-- Boot ") && text.ends_with(" --") || text == "-- Reboot --"
}

/// `-- Logs begin at ...`, `-- No entries --`, `-- Journal begins at ...`: no log content.
pub(crate) fn is_banner(text: &str) -> bool {
    text.starts_with("-- ") && text.ends_with(" --")
}

#[cfg(test)]
mod tests {
    use super::{super::printk, *};

    /// `[   12.345678] host ident: text` → nanoseconds and the text after the header.
    fn frame_monotonic(text: &str) -> Option<(u64, &str)> {
        let (ts_ns, rest) = printk::split_timestamp(text)?;
        Some((ts_ns, message_after_stamp(rest)?))
    }

    #[test]
    fn short_monotonic() {
        assert_eq!(
            frame_monotonic("[   12.345678] kdumplab kernel: pcieport 0000:00:03.0: AER: x"),
            Some((12_345_678_000, "pcieport 0000:00:03.0: AER: x"))
        );
        assert_eq!(
            frame_monotonic("[   35.122618] kdumplab kdump-tools[278]: makedumpfile Failed."),
            Some((35_122_618_000, "kdump-tools[278]: makedumpfile Failed."))
        );
        // A printk line whose text is a device line is not a journal line.
        for printk in [
            "[    4.427993] pcieport 0000:00:03.0: AER: Correctable error",
            "[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...",
            "[    0.000000] OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr",
        ] {
            assert_eq!(frame_monotonic(printk), None, "{printk}");
        }
    }

    #[test]
    fn separators() {
        assert!(is_boot_separator("-- Boot 0741e28c5c4d4b5e9d1f --"));
        assert!(is_boot_separator("-- Reboot --"));
        assert!(!is_boot_separator("-- No entries --"));
        assert!(is_banner("-- No entries --"));
    }
}
