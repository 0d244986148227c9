//! Plain-text framing: `dmesg`, serial console, pstore and `vmcore-dmesg` lines.
//!
//! ```text
//! [    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
//! <4>[    1.637153] ...                  (pstore dmesg, dmesg -r)
//! [    1.637153][    T1] ...             (CONFIG_PRINTK_CALLER)
//! ```
//! The timestamp is printk's `[%5lu.%06lu]` ([`super::prefix::printk`]). This is the printk
//! framing alone; [`super::prefix::frame`] reads every other framing a pasted log may have.
use super::{
    MAX_LINE_BYTES,
    prefix::{printk, sanitize},
};

/// One timestamped line of a text log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextLine {
    /// Kernel monotonic time of the record, nanoseconds.
    pub ts_ns: u64,
    /// Console log level when the line carries a `<N>` prefix.
    pub level: Option<u8>,
    /// The message text, without timestamp and caller id.
    pub text: String,
}

/// Frames one line (without its `\n`). Reads at most [`MAX_LINE_BYTES`]; invalid UTF-8 is
/// replaced; CR, NUL, ANSI escape sequences and other control characters (except tab) are
/// dropped. `None` when the line has no leading printk timestamp.
#[must_use]
pub fn parse_text_line(line: &[u8]) -> Option<TextLine> {
    let line = &line[..line.len().min(MAX_LINE_BYTES)];
    let decoded = String::from_utf8_lossy(line);
    let clean = sanitize(&decoded);
    let (level, ts_ns, text) = printk::frame(clean.trim_start())?;
    Some(TextLine {
        ts_ns,
        level,
        text: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(line: &str) -> Option<(u64, String)> {
        parse_text_line(line.as_bytes()).map(|l| (l.ts_ns, l.text))
    }

    #[test]
    fn dmesg_line() {
        assert_eq!(
            framed(
                "[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting..."
            ),
            Some((
                1_637_153_000,
                "arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...".into()
            ))
        );
    }

    #[test]
    fn priority_prefix_and_caller_id() {
        let line = parse_text_line(b"<4>[   12.000001][    T1] hello").unwrap();
        assert_eq!(line.ts_ns, 12_000_001_000);
        assert_eq!(line.level, Some(4));
        assert_eq!(line.text, "hello");
        assert_eq!(
            framed("[ 3.500000][  C0] irq text"),
            Some((3_500_000_000, "irq text".into()))
        );
        // A bracket after the timestamp that is not a caller id stays in the text.
        assert_eq!(
            framed("[    0.000000] [Firmware Bug]: x"),
            Some((0, "[Firmware Bug]: x".into()))
        );
    }

    #[test]
    fn crlf_ansi_and_nul_noise() {
        assert_eq!(
            framed("\u{1b}[0m\0[    4.427993] pcieport 0000:00:03.0: AER: x\r"),
            Some((4_427_993_000, "pcieport 0000:00:03.0: AER: x".into()))
        );
        assert_eq!(
            framed("[    1.000000] a\u{1b}[1;31mred\u{1b}[0m b\r\r"),
            Some((1_000_000_000, "ared b".into()))
        );
    }

    #[test]
    fn lines_without_a_printk_timestamp_are_skipped() {
        assert_eq!(framed("LAB: READY-AER"), None);
        assert_eq!(framed(""), None);
        assert_eq!(framed("[Tue Mar  3 10:00:00 2026] wall clock"), None);
        assert_eq!(framed("[  OK  ] Started foo"), None);
        assert_eq!(framed("[1.5] too short"), None);
        assert_eq!(framed("[-1.000000] signed"), None);
        assert_eq!(framed("[99999999999999.000000] too long"), None);
        // A timestamp in the middle of a line (e.g. echoed vmcore-dmesg) is not this boot's.
        assert_eq!(
            framed("LAB: vmcore-dmesg: [    6.374952] Starting crashdump kernel..."),
            None
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let line = parse_text_line(b"[    2.000000] bad \xff\xfe bytes").unwrap();
        assert_eq!(line.text, "bad \u{fffd}\u{fffd} bytes");
    }

    #[test]
    fn huge_lines_are_capped() {
        let mut line = b"[    2.000000] ".to_vec();
        line.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE_BYTES));
        let framed = parse_text_line(&line).unwrap();
        assert!(framed.text.len() < MAX_LINE_BYTES);
        assert!(framed.text.len() > MAX_LINE_BYTES - 100);
    }
}
